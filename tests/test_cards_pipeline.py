"""The rule ``cards`` in the real pipeline (the session's example and Assink runs): every number
of every card is the analysis JSON's, in cards.json and in the HTML's text; the deck says that the
vignette findings were absent; the Assink data (no components) get a deck that says so; with the
vignette findings file present the rule makes the vignette cards."""

from __future__ import annotations

import shutil
from pathlib import Path

from cards_helpers import VIGNETTE_FIXTURE, card_sections, component_strings, vignette_strings
from pipeline_helpers import run_snakemake

from intervention_meta.cards.language import load_texts
from intervention_meta.io import read_json

VIGNETTE = Path("results/vignette/vignette/findings.json")  # config/config.yaml's cards.vignette


def _deck(results: Path) -> tuple[dict, str]:
    folder = results / "cards"
    assert (folder / "cards.pdf").read_bytes().startswith(b"%PDF")
    return read_json(folder / "cards.json"), (folder / "cards.html").read_text(encoding="utf-8")


def test_example_cards_show_the_analysis_numbers(example_run):
    deck, html = _deck(example_run.results)
    models = example_run.results / "models"
    components, moderators = (
        read_json(models / "components.json"),
        read_json(models / "moderators.json"),
    )
    grade = read_json(models / "grade.json")
    t = load_texts(deck["language"])
    sections = card_sections(html)
    cards = {c["id"]: c for c in deck["cards"]}
    assert [c["id"] for c in deck["cards"] if c["kind"] == "component"] == [
        f"component:{name}" for name in components["components"]
    ]
    cons = components["consistency"]
    single = {m["name"]: m for m in moderators["single"]["moderators"]}
    for i, name in enumerate(cons["components"]):
        numbers = cards[f"component:{name}"]["numbers"]
        for key in ("n_with", "n_known", "n_positive_with", "n_positive"):
            assert numbers[key] == cons[key][i]
        rows = {r["code"]: r for r in single[name]["rows"] if r["term"] == "mean"}
        for side, code in (("with", "1"), ("without", "0")):
            for key in ("estimate", "ci_lb", "ci_ub", "k", "n_studies"):
                assert numbers[side][key] == rows[code][key]
        diff = single[name]["models"]["test"]["coefficients"][1]
        assert diff["coefficient"] == f"{name}1"
        assert [numbers["difference"][k] for k in ("estimate", "ci_lb", "ci_ub")] == [
            diff["estimate"],
            diff["ci_lb"],
            diff["ci_ub"],
        ]
        assert numbers["certainty"] == grade["rows"][0]["certainty"]
        for s in component_strings(numbers, t):
            assert s in sections[f"component:{name}"], (name, s)
        if min(numbers["with"]["n_studies"], numbers["without"]["n_studies"]) < 5:
            assert cards[f"component:{name}"]["is_thin"]
    # the simulated peer support: 4 programmes had it, fewer than cards.min_studies = 5
    assert cards["component:peer_support"]["thin"][0].startswith("Only 4 studies")
    assert cards["intro"]["numbers"]["estimate"] == grade["rows"][0]["estimate"]
    # no vignette run in this project copy: the deck says so
    assert not [c for c in deck["cards"] if c["kind"] == "vignette"]
    assert f"({VIGNETTE}) did not exist" in sections["intro"]


def test_assink_deck_says_there_are_no_components(assink_run):
    deck, html = _deck(assink_run.results)
    assert [c["kind"] for c in deck["cards"]] == ["intro"]
    assert "no programme components coded" in card_sections(html)["intro"]


def test_the_rule_uses_the_vignette_findings_when_they_exist(example_run, tmp_path):
    """A copy of the finished example run (so the shared run stays as it is) with the findings
    file in place: the rule runs again (its input changed) and makes the vignette cards. Only
    the cards job runs."""
    work = tmp_path / "work"
    shutil.copytree(example_run.work, work, symlinks=True)
    (work / VIGNETTE).parent.mkdir(parents=True)
    shutil.copy(VIGNETTE_FIXTURE, work / VIGNETTE)
    proc = run_snakemake(work, "results/example/cards/cards.json", check=True)
    assert "rule cards:" in proc.stderr + proc.stdout
    assert "rule overall:" not in proc.stderr + proc.stdout
    deck, html = _deck(work / "results" / "example")
    findings = read_json(VIGNETTE_FIXTURE)["findings"]
    t = load_texts(deck["language"])
    sections = card_sections(html)
    vignette = [c for c in deck["cards"] if c["kind"] == "vignette"]
    assert [c["numbers"]["finding"] for c in vignette] == [f["id"] for f in findings]
    for finding in findings:
        for s in vignette_strings(finding, t):
            assert s in sections[f"vignette:{finding['id']}"]
    assert deck["sources"]["vignette"] == str(VIGNETTE)


def test_the_cards_command_in_dutch(example_run, tmp_path):
    """``python -m intervention_meta cards`` on the example run's JSON, in Dutch."""
    from intervention_meta.__main__ import main

    models = example_run.results / "models"
    code = main(
        [
            "cards",
            "--config",
            str(example_run.work / "config" / "config.yaml"),
            "--components",
            str(models / "components.json"),
            "--moderators",
            str(models / "moderators.json"),
            "--grade",
            str(models / "grade.json"),
            "--options",
            '{"language": "nl"}',
            "--out",
            str(tmp_path),
        ]
    )
    assert code in (0, None)
    deck = read_json(tmp_path / "cards.json")
    html = (tmp_path / "cards.html").read_text(encoding="utf-8")
    assert deck["language"] == "nl" and 'lang="nl"' in html
    joint = card_sections(html)["component:joint_effort"]
    assert "Samenwerking van professionals en bewoners" in joint
    assert load_texts("nl").number(deck["cards"][1]["numbers"]["with"]["estimate"]) in joint
