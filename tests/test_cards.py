"""The conversation cards (intervention_meta.cards) on small synthetic JSON: every number a card
shows is the JSON's, in English and in Dutch; thin evidence is said plainly; the vignette cards
come from a findings file of the shared shape (tests/data/cards/vignette_findings.json) and the
deck says when that file was absent; a data set without components gets a deck that says so.
The synthetic numbers are made up for these tests; none is a result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cards_helpers import (
    VIGNETTE_FIXTURE,
    card_sections,
    component_strings,
    vignette_strings,
    visible_text,
)

from intervention_meta.cards.content import (
    COHEN_SIZES,
    CardSettings,
    build_deck,
    in_sentence,
    size_word,
    vignette_card,
)
from intervention_meta.cards.deck import run_cards
from intervention_meta.cards.html import deck_html
from intervention_meta.cards.language import load_texts
from intervention_meta.data.codebook import load_codebook
from intervention_meta.io import read_json, write_json


# --------------------------------------------------------------------------- synthetic inputs
def codebook_spec(prompts: bool = True) -> dict:
    """A codebook of three components, in tables named otherwise than the example's."""
    home = {
        "name": "home_visits",
        "table": "trials",
        "type": "binary",
        "levels": {0: "No", 1: "Yes"},
        "role": "component",
        "label": "Home visits",
        "description": "1 if a worker visits the family at home.",
    }
    if prompts:
        home |= {
            "labels": {"nl": "Huisbezoeken"},
            "meaning": {
                "en": "A worker visits the family at home.",
                "nl": "Een werker komt thuis.",
            },
            "prompts": {"en": ["Who visits {label}?", "Second?", "Third?"], "nl": ["Wie?"]},
        }
    return {
        "tables": {"trials": {"key": "trial"}, "outcomes": {"key": "oid", "parent": "trials"}},
        "variables": [
            {"name": "trial", "table": "trials", "type": "id", "role": "id"},
            {"name": "oid", "table": "outcomes", "type": "id", "role": "id"},
            home,
            {
                "name": "texting",
                "table": "trials",
                "type": "binary",
                "levels": {0: "no", 1: "yes"},
                "role": "component",
                "label": "Text messages",
            },
            {
                "name": "mentors",
                "table": "trials",
                "type": "binary",
                "levels": {0: "no", 1: "yes"},
                "role": "component",
                "label": "Mentors",
            },
        ],
    }


def codebook(prompts: bool = True):
    return load_codebook(codebook_spec(prompts))


def moderator(name, present, absent, with_, without, diff, coefficient):
    """A single-moderator record of moderators.json: the two means and the intercept model."""

    def row(code, values):
        est, lb, ub, k, n = values
        keys = {"estimate": est, "ci_lb": lb, "ci_ub": ub, "k": k, "n_studies": n}
        return {"term": "mean", "code": code, "label": code, **keys}

    est, lb, ub = diff
    return {
        "name": name,
        "kind": "categorical",
        "rows": [row(absent, without), row(present, with_)],
        "models": {
            "test": {
                "coefficients": [
                    {"coefficient": "intrcpt", "estimate": without[0], "ci_lb": 0, "ci_ub": 1},
                    {"coefficient": coefficient, "estimate": est, "ci_lb": lb, "ci_ub": ub},
                ]
            }
        },
    }


COMPONENTS = {
    "applicable": True,
    "level": 0.9,
    "components": ["home_visits", "texting", "mentors"],
    "consistency": {
        "components": ["home_visits", "texting", "mentors"],
        "n_known": [14, 14, 13],
        "n_with": [8, 3, 6],
        "n_positive": [9, 9, 8],
        "n_positive_with": [6, 2, 4],
    },
}
# per component: (estimate, ci_lb, ci_ub, k, studies) with it and without it, and the second
# coefficient of the model with an intercept (its name, estimate, ci_lb, ci_ub). For home visits
# the model's reference is 1 here: its coefficient is 0 minus 1, so the card's difference (with
# minus without) is its negative, 0.213 [0.102, 0.324].
MODELS = {
    "home_visits": (
        (0.512, 0.401, 0.623, 20, 8),
        (0.299, 0.188, 0.41, 15, 6),
        ("home_visits0", -0.213, -0.324, -0.102),
    ),
    "texting": (
        (0.61, 0.2, 1.02, 4, 3),
        (0.35, 0.25, 0.45, 30, 11),
        ("texting1", 0.26, -0.15, 0.67),
    ),
    "mentors": (
        (0.3, 0.05, 0.55, 9, 6),
        (0.33, 0.12, 0.54, 16, 7),
        ("mentors1", -0.03, -0.41, 0.35),
    ),
}
MODERATORS = {
    "level": 0.9,
    "single": {
        "moderators": [
            moderator(name, "1", "0", with_, without, coef[1:], coef[0])
            for name, (with_, without, coef) in MODELS.items()
        ]
    },
}
GRADE = {
    "settings": {"threshold": 0.2},
    "measure": {"code": "SMD", "symbol": "g"},
    "rows": [
        {"key": "all", "estimate": 0.38, "ci_lb": 0.21, "ci_ub": 0.55, "level": 0.9},
        {"key": "other", "estimate": 9.0, "certainty": 4},
    ],
}
GRADE["rows"][0] |= {"n_studies": 14, "k": 35, "certainty": 2}


def deck(language="en", vignette=None, vignette_path=None, cb=None, components=COMPONENTS):
    return build_deck(
        analysis="synthetic",
        codebook=cb or codebook(),
        components=components,
        moderators=MODERATORS,
        texts=load_texts(language),
        grade=GRADE,
        vignette=vignette,
        vignette_path=vignette_path,
        settings=CardSettings(min_studies=4),
    )


def card(d, card_id):
    return next(c for c in d.cards if c.id == card_id)


# --------------------------------------------------------------------------- words and numbers
def test_numbers_are_formatted_per_language():
    en, nl = load_texts("en"), load_texts("nl")
    assert (en.number(0.314), nl.number(0.314)) == ("0.31", "0,31")
    assert en.number(-0.1) == "\u22120.10" and en.number(-0.001) == "0.00"  # no "-0.00"
    assert (en.percent(0.6104), nl.percent(0.0449, 1)) == ("61%", "4,5%")
    assert en.ci(0.12, 0.5, 0.95) == "95% CI 0.12 to 0.50"
    assert nl.ci(0.12, 0.5, 0.9) == "90%-BI 0,12 tot 0,50"
    assert (
        en.certainty(2) == "low" and nl.certainty(1) == "zeer laag" and en.certainty(None) is None
    )
    with pytest.raises(ValueError, match="language 'de'"):
        load_texts("de")


def test_both_languages_have_the_same_texts():
    def keys(value, prefix=""):
        if not isinstance(value, dict):
            return {prefix}
        return set().union(*(keys(v, f"{prefix}.{k}") for k, v in value.items()))

    assert keys(load_texts("en").data) == keys(load_texts("nl").data)


def test_size_words_follow_cohen():
    # Cohen (1988): 0.2 small, 0.5 medium, 0.8 large (absolute value)
    words = [size_word(g, COHEN_SIZES) for g in (0.19, -0.2, 0.49, 0.5, -0.85)]
    assert words == ["trivial", "small", "small", "medium", "large"]
    assert size_word(0.5, None) is None
    assert (
        in_sentence("Parenting style") == "parenting style"
        and in_sentence("GP visits") == "GP visits"
    )


# --------------------------------------------------------------------------- component cards
@pytest.mark.parametrize("language", ["en", "nl"])
def test_component_cards_show_the_jsons_numbers(language):
    d = deck(language)
    t = load_texts(language)
    html = deck_html(d, t)
    sections = card_sections(html)
    assert [c.id for c in d.cards] == [
        "intro",
        "component:home_visits",
        "component:texting",
        "component:mentors",
    ]
    for model in MODERATORS["single"]["moderators"]:
        c = card(d, f"component:{model['name']}")
        rows = {("with" if r["code"] == "1" else "without"): r for r in model["rows"]}
        for side in ("with", "without"):
            for key in ("estimate", "ci_lb", "ci_ub", "k", "n_studies"):
                assert c.numbers[side][key] == rows[side][key]
        for s in component_strings(c.numbers, t):
            assert s in sections[c.id], (c.id, s)
        assert t.ci(c.numbers["with"]["ci_lb"], c.numbers["with"]["ci_ub"], 0.9) in sections[c.id]
    # the flipped reference: the difference is with minus without
    diff = card(d, "component:home_visits").numbers["difference"]
    assert diff == {"estimate": 0.213, "ci_lb": 0.102, "ci_ub": 0.324}
    assert card(d, "component:home_visits").numbers["n_with"] == 8
    assert "p =" not in visible_text(html) and "p<" not in visible_text(html)


def test_component_card_words():
    d = deck("en")
    home = card(d, "component:home_visits")
    assert home.evidence[1] == (
        "Programmes with it had on average a medium-sized positive effect "
        "(g = 0.51, 90% CI 0.40 to 0.62)."
    )
    assert home.evidence[3].startswith("Programmes with it did better on average")
    assert card(d, "component:mentors").evidence[3].startswith("Whether programmes with it")
    assert home.meaning == "A worker visits the family at home."
    assert home.certainty.startswith(
        "Certainty of the evidence on the overall effect (GRADE): low."
    )
    # the codebook's prompts, at most max_prompts, {label} filled in; else the defaults
    assert home.prompts == ("Who visits Home visits?", "Second?")
    assert card(d, "component:texting").prompts[0].startswith("Which part of Text messages")
    nl = deck("nl")
    assert card(nl, "component:home_visits").title == "Huisbezoeken"
    assert card(nl, "component:home_visits").prompts == ("Wie?",)
    assert card(nl, "component:texting").title == "Text messages"  # no Dutch label: the label


def test_thin_evidence_is_said_plainly():
    d = deck("en")
    texting, mentors = card(d, "component:texting"), card(d, "component:mentors")
    assert card(d, "component:home_visits").thin == ()
    # 3 studies with text messages, fewer than min_studies = 4
    assert texting.thin[0] == (
        "Only 3 studies (fewer than 4) had this component: too few to say much."
    )
    # the difference's CI [-0.41, 0.35] reaches both -0.2 and 0.2 (grade.json's threshold)
    assert mentors.thin[0].startswith("The difference is too uncertain to draw a conclusion")
    assert "g = 0.20" in mentors.thin[0]
    html = deck_html(d, load_texts("en"))
    assert "Thin evidence" in card_sections(html)["component:mentors"]
    assert "Thin evidence" not in card_sections(html)["component:home_visits"]
    assert card(deck("nl"), "component:texting").thin[0].startswith("Maar 3 studies")
    assert d.to_dict()["cards"][2]["is_thin"] is True


def test_a_data_set_without_components_gets_a_deck_that_says_so():
    none = {"applicable": False, "reason": "no variable has role component", "components": []}
    d = deck("en", components=none)
    assert [c.kind for c in d.cards] == ["intro"]
    assert "no programme components coded (no variable has role component)" in d.notes[0]
    assert d.notes[0] in card(d, "intro").evidence


# --------------------------------------------------------------------------- vignette cards
@pytest.mark.parametrize("language", ["en", "nl"])
def test_vignette_cards_show_the_findings_numbers(language):
    findings = read_json(VIGNETTE_FIXTURE)
    t = load_texts(language)
    d = deck(language, vignette=findings, vignette_path=str(VIGNETTE_FIXTURE))
    sections = card_sections(deck_html(d, t))
    for finding in findings["findings"]:
        c = card(d, f"vignette:{finding['id']}")
        assert c.numbers["levels"] == [
            {key: lv[key] for key in ("level", "label", "estimate", "ci_lb", "ci_ub")}
            for lv in finding["levels"]
        ]
        for s in vignette_strings(finding, t):
            assert s in sections[c.id], (c.id, s)
    respond = card(d, "vignette:respond_by_style")
    if language == "en":
        assert respond.title == "Would respond: by parenting style"
        assert respond.evidence[1] == "Highest: Permissive (61%); lowest: Authoritative (38%)."
        assert respond.evidence[2] == "Permissive: 61% (95% CI 52% to 69%)"
    else:
        assert respond.evidence[2] == "Permissive: 61% (95%-BI 52% tot 69%)"
        assert "3,50 (95%-BI 3,29 tot 3,71)" in sections["vignette:responsible_by_role"]
    assert "114" in d.notes[0] and "1026" in d.notes[0]


def test_the_deck_says_when_the_vignette_findings_were_absent():
    d = deck("en", vignette=None, vignette_path="results/vignette/vignette/findings.json")
    assert not [c for c in d.cards if c.kind == "vignette"]
    assert "(results/vignette/vignette/findings.json) did not exist" in d.notes[0]
    assert d.notes[0] in visible_text(deck_html(d, load_texts("en")))
    assert deck("en").notes == ()  # no vignette study named: nothing to say


# --------------------------------------------------------------------------- the step's files
def test_run_cards_writes_json_html_and_a4_pdf(tmp_path: Path):
    files = {}
    for name, content in (
        ("components", COMPONENTS),
        ("moderators", MODERATORS),
        ("grade", GRADE),
    ):
        files[name] = str(tmp_path / f"{name}.json")
        write_json(content, files[name])
    cb = tmp_path / "codebook.yaml"
    import yaml

    spec = codebook_spec(prompts=False)
    spec["variables"] = [v for v in spec["variables"] if v["name"] in ("trial", "oid", "texting")]
    spec["variables"][-1]["prompts"] = {"nl": ["Wie stuurt de berichten?"]}
    cb.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = {kind: str(tmp_path / "cards" / f"cards.{kind}") for kind in ("json", "html", "pdf")}
    run_cards(
        **files,
        codebook=str(cb),
        **out,
        analysis="synthetic",
        vignette=str(VIGNETTE_FIXTURE),
        options={"language": "nl", "min_studies": 5},
    )
    record = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    assert record["language"] == "nl" and record["n_cards"] == 4  # intro, texting, 2 vignette
    assert [c["kind"] for c in record["cards"]] == ["intro", "component", "vignette", "vignette"]
    assert record["cards"][1]["prompts"] == ["Wie stuurt de berichten?"]
    assert record["sources"]["vignette"] == str(VIGNETTE_FIXTURE)
    html = Path(out["html"]).read_text(encoding="utf-8")
    assert "@page { size: 105mm 148mm" in html and "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html) and "@import" not in html
    pdf = Path(out["pdf"]).read_bytes()
    assert pdf.startswith(b"%PDF")
    # one A4 sheet (595.28 x 841.89 pt) holds the four cards
    boxes = re.findall(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(boxes) == 1 and [round(float(v)) for v in boxes[0]] == [595, 842]


def test_the_opening_card_states_the_direction_and_tolerates_missing_intervals():
    summary = {"measure": {"code": "SMD", "symbol": "d", "direction": "positive = fewer arrests"}}
    d = build_deck(
        analysis="synthetic",
        codebook=codebook(),
        components=COMPONENTS,
        moderators=MODERATORS,
        texts=load_texts("en"),
        grade=GRADE,
        summary=summary,
    )
    assert "Direction of the effects: positive = fewer arrests." in card(d, "intro").evidence
    assert "(d = 0.51, 90% CI 0.40 to 0.62)" in card(d, "component:home_visits").evidence[1]
    finding = read_json(VIGNETTE_FIXTURE)["findings"][1]
    finding["levels"][0] |= {"ci_lb": None, "ci_ub": None}
    finding["levels"].append({"level": "x", "label": "Not estimable", "estimate": None})
    c = vignette_card(finding, load_texts("en"), 0.95, 2)
    assert "Residents: 3.21" in c.evidence and len(c.numbers["levels"]) == 2


# --------------------------------------------------------------------------- bad input
def test_a_bad_cards_section_is_named_by_the_config_check(tmp_path: Path):
    import yaml

    from intervention_meta.config import load_config
    from intervention_meta.errors import InputError

    config = yaml.safe_load(Path("config/config.yaml").read_text(encoding="utf-8"))
    config["cards"] = {"language": "fr", "min_studies": 0}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    problems = {p.column: p for p in info.value.problems}
    assert problems["cards.language"].value == "fr" and problems["cards.language"].file == str(path)
    assert (
        "en" in problems["cards.language"].expected and "nl" in problems["cards.language"].expected
    )
    assert problems["cards.min_studies"].value == 0
    filled = load_config({"analysis": "x"})["cards"]
    assert filled["language"] == "en" and filled["min_studies"] == 5 and filled["vignette"] is None


def test_bad_prompts_in_the_codebook_are_named():
    from intervention_meta.errors import InputError

    spec = codebook_spec()
    spec["variables"][2]["prompts"] = {"en": "Who visits?"}  # a text, not a list
    spec["variables"][3]["meaning"] = ["not", "a", "mapping"]
    with pytest.raises(InputError) as info:
        load_codebook(spec)
    columns = {(p.column, str(p.value)) for p in info.value.problems}
    assert ("home_visits", "Who visits?") in columns
    assert any(column == "texting" for column, _ in columns)
