"""The content of the conversation cards: what each card says, from the analysis JSON only.

A deck has an opening card (what the cards are, the pooled effect over all programmes with its
GRADE certainty, and what is missing), one card per programme component and one per finding of
the vignette study. A component card reads

* the component's label and meaning from the codebook (its optional ``labels`` and ``meaning``
  per language, else ``label`` and ``description``) and its discussion ``prompts`` (else the
  language's defaults);
* from ``models/components.json`` (``consistency``): how many programmes had it, and how many of
  the programmes with a clearly positive effect;
* from ``models/moderators.json`` (the component's single-moderator model): the mean effect of
  the programmes with it and without it (rows ``mean``) and their difference (the second
  coefficient of ``models.test``, the model with an intercept), each with its CI;
* from ``models/grade.json`` (row ``all``): the certainty of the evidence on the overall effect.

Effects are put in words with a size word: by default Cohen's (1988) benchmarks for an SMD,
``|g|`` below 0.2 hardly any, from 0.2 small, from 0.5 medium, from 0.8 large (``cards.sizes``;
none for other measures unless configured). No p value is shown. A component card says that its
evidence is thin when fewer than ``min_studies`` studies had (or lacked) the component, or when
the CI of the difference reaches both a meaningful benefit and a meaningful harm (``threshold``
or more either way, Guyatt et al. 2011, GRADE guidelines 6: imprecision); the threshold is
``cards.threshold``, else ``grade.json``'s ``settings.threshold``, else the measure's default
(:data:`intervention_meta.outputs.grade.DEFAULT_THRESHOLDS`).

A vignette card reads one entry of ``findings`` of the vignette study's ``findings.json`` (the
marginal means per level with their CIs, the highest and lowest level and the joint test), and
shows probabilities as percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from intervention_meta.cards.language import Texts

#: Cohen's (1988) benchmarks for a standardised mean difference (absolute value)
COHEN_SIZES: dict[str, float] = {"small": 0.2, "medium": 0.5, "large": 0.8}


@dataclass(frozen=True)
class Card:
    """One card: its kind (``intro``, ``component``, ``vignette``), texts and numbers.

    ``evidence`` are the sentences under "what the research found"; ``thin`` the sentences that
    say why the evidence is too thin (empty: it is not); ``numbers`` every number the texts
    show, unrounded, as read from the JSON.
    """

    id: str
    kind: str
    heading: str
    title: str
    meaning: str = ""
    evidence: tuple[str, ...] = ()
    certainty: str = ""
    thin: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("evidence", "thin", "prompts"):
            out[key] = list(out[key])
        out["is_thin"] = bool(self.thin)
        return out


@dataclass(frozen=True)
class Deck:
    """A deck of cards in one language, with the notes on what is missing from it."""

    analysis: str
    language: str
    level: float
    title: str
    subtitle: str
    cards: tuple[Card, ...]
    notes: tuple[str, ...] = ()
    sources: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "language": self.language,
            "level": self.level,
            "title": self.title,
            "subtitle": self.subtitle,
            "notes": list(self.notes),
            "sources": dict(self.sources),
            "n_cards": len(self.cards),
            "cards": [card.to_dict() for card in self.cards],
        }


@dataclass(frozen=True)
class CardSettings:
    """The rules of a deck (config section ``cards``)."""

    min_studies: int = 5
    threshold: float | None = None
    sizes: Mapping[str, float] | None = None
    max_prompts: int = 2

    @classmethod
    def from_config(cls, options: Mapping[str, Any] | None) -> CardSettings:
        o = dict(options or {})
        return cls(
            min_studies=int(o.get("min_studies", 5)),
            threshold=None if o.get("threshold") is None else float(o["threshold"]),
            sizes=o.get("sizes"),
            max_prompts=int(o.get("max_prompts", 2)),
        )


@dataclass(frozen=True)
class Measure:
    """The effect measure's symbol and code, the size benchmarks and the meaningful threshold."""

    symbol: str = "g"
    code: str = "SMD"
    sizes: Mapping[str, float] | None = None
    threshold: float | None = None


def size_word(value: float, sizes: Mapping[str, float] | None) -> str | None:
    """The size of ``|value|`` (``trivial``, ``small``, ``medium``, ``large``) by ``sizes``
    (each word's lower bound); None without sizes."""
    if not sizes:
        return None
    word = "trivial"
    for name, bound in sorted(sizes.items(), key=lambda item: item[1]):
        if abs(value) >= bound:
            word = name
    return word


def _effect(t: Texts, m: Measure, est: Mapping[str, Any], level: float) -> str:
    """``g = 0.31, 95% CI 0.12 to 0.50``."""
    return t.say(
        "effect",
        symbol=m.symbol,
        estimate=t.number(est["estimate"]),
        ci=t.ci(est["ci_lb"], est["ci_ub"], level),
    )


def _size_effect(t: Texts, m: Measure, value: float) -> str:
    """``a small positive effect`` (without sizes: ``a positive effect``)."""
    word = size_word(value, m.sizes)
    direction = "none" if word == "trivial" else ("positive" if value > 0 else "negative")
    if value == 0:
        direction = "none"
    size = t.get(f"sizes.{word}") if word else ""
    return f"{size} {t.get(f'directions.{direction}')}".strip()


def in_sentence(label: str) -> str:
    """A label inside a sentence: ``Parenting style`` -> ``parenting style`` (an acronym such
    as ``GP visits`` stays as it is)."""
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


def _prompts(texts: Sequence[str], label: str, limit: int) -> tuple[str, ...]:
    return tuple(str(p).format(label=label) for p in list(texts)[:limit])


# --------------------------------------------------------------------------- component cards
def component_numbers(
    name: str, components: Mapping[str, Any], moderators: Mapping[str, Any], present: str
) -> dict[str, Any]:
    """The numbers of one component's card, as read from ``components.json`` and
    ``moderators.json``: ``n_with``, ``n_known``, ``n_positive_with``, ``n_positive`` and
    ``with``, ``without``, ``difference`` (``estimate``, ``ci_lb``, ``ci_ub``, with ``k`` and
    ``n_studies`` for the means; None when the moderator model has no such row)."""
    cons = components.get("consistency") or {}
    out: dict[str, Any] = {"component": name, "level": components.get("level")}
    if name in (cons.get("components") or []):
        i = cons["components"].index(name)
        for key in ("n_with", "n_known", "n_positive_with", "n_positive"):
            out[key] = cons[key][i]
    single = (moderators.get("single") or {}).get("moderators") or []
    model = next((m for m in single if m.get("name") == name), None)
    out["with"] = out["without"] = out["difference"] = None
    out["reason"] = "" if model else "no moderator model of this component"
    if model is None:
        return out
    out["reason"] = model.get("no_test_reason") or ""
    keys = ("estimate", "ci_lb", "ci_ub", "k", "n_studies")
    means = [r for r in model.get("rows") or [] if r.get("term") == "mean"]
    for row in means:
        side = "with" if str(row.get("code")) == present else "without"
        out[side] = {key: row.get(key) for key in keys}
    coefs = ((model.get("models") or {}).get("test") or {}).get("coefficients") or []
    if len(means) == 2 and len(coefs) == 2:
        c = coefs[1]
        sign = 1.0 if str(c.get("coefficient", "")) == f"{name}{present}" else -1.0
        lo, hi = sign * c["ci_lb"], sign * c["ci_ub"]
        out["difference"] = {
            "estimate": sign * c["estimate"],
            "ci_lb": min(lo, hi),
            "ci_ub": max(lo, hi),
        }
    return out


def thin_reasons(
    numbers: Mapping[str, Any], t: Texts, m: Measure, settings: CardSettings
) -> tuple[str, ...]:
    """Why a component's evidence is too thin (empty: it is not)."""
    out = []
    for side in ("with", "without"):
        n = (numbers.get(side) or {}).get("n_studies")
        if n is not None and n < settings.min_studies:
            out.append(
                t.say(
                    "component.thin_few",
                    n_studies=n,
                    min_studies=settings.min_studies,
                    side=t.get(f"component.side_{side}"),
                )
            )
    diff = numbers.get("difference")
    if numbers.get("with") is None or numbers.get("without") is None:
        out.append(t.say("component.no_estimate", reason=numbers.get("reason") or "-"))
    elif diff is not None and m.threshold is not None:
        if diff["ci_lb"] <= -m.threshold and diff["ci_ub"] >= m.threshold:
            threshold = f"{m.symbol} = {t.number(m.threshold)}"
            out.append(t.say("component.thin_wide", threshold=threshold))
    return tuple(out)


def component_card(
    variable: Any,
    numbers: Mapping[str, Any],
    t: Texts,
    m: Measure,
    settings: CardSettings,
    certainty: int | None,
) -> Card:
    """The card of one component (``variable``: its codebook entry)."""
    lang = t.language
    label = (getattr(variable, "labels", {}) or {}).get(lang) or variable.label
    meaning = (getattr(variable, "meaning", {}) or {}).get(lang) or variable.description
    level = numbers.get("level") or 0.95
    evidence = []
    if numbers.get("n_known") is not None:
        k = (numbers.get("with") or {}).get("k")
        evidence.append(
            t.say(
                "component.programmes",
                n_with=numbers["n_with"],
                n_known=numbers["n_known"],
                k="-" if k is None else k,
            )
        )
    for side in ("with", "without"):
        est = numbers.get(side)
        if est is not None:
            evidence.append(
                t.say(
                    f"component.{side}",
                    size_effect=_size_effect(t, m, est["estimate"]),
                    effect=_effect(t, m, est, level),
                    n_studies=est.get("n_studies"),
                )
            )
    diff = numbers.get("difference")
    if diff is not None:
        key = "unclear"
        if diff["ci_lb"] > 0:
            key = "better"
        elif diff["ci_ub"] < 0:
            key = "worse"
        evidence.append(t.say(f"component.{key}", effect=_effect(t, m, diff, level)))
    if numbers.get("n_positive"):
        evidence.append(
            t.say(
                "component.positive_share",
                n_positive_with=numbers["n_positive_with"],
                n_positive=numbers["n_positive"],
            )
        )
    word = t.certainty(certainty)
    prompts = (getattr(variable, "prompts", {}) or {}).get(lang) or t.get("prompts.component")
    return Card(
        id=f"component:{variable.name}",
        kind="component",
        heading=t.get("headings.component"),
        title=label,
        meaning=meaning,
        evidence=tuple(evidence),
        certainty=t.say("component.certainty", certainty=word)
        if word
        else t.say("component.no_grade"),
        thin=thin_reasons(numbers, t, m, settings),
        prompts=_prompts(prompts, label, settings.max_prompts),
        numbers={**dict(numbers), "certainty": certainty, "certainty_word": word},
    )


# --------------------------------------------------------------------------- vignette cards
def vignette_card(finding: Mapping[str, Any], t: Texts, level: float, max_prompts: int) -> Card:
    """The card of one finding of the vignette study (an entry of ``findings.json``'s
    ``findings``): every level's estimate with its CI, the highest and the lowest."""
    probability = finding.get("scale") == "probability"
    fmt = "percent" if probability else "number"
    value = t.percent if probability else t.number
    factor = finding.get("factor_label") or finding.get("factor", "")
    outcome = finding.get("outcome_label") or finding.get("outcome", "")
    levels = [lv for lv in finding.get("levels") or [] if lv.get("estimate") is not None]
    by_code = {str(lv.get("level")): lv for lv in levels}

    def show(lv: Mapping[str, Any]) -> str:
        if lv.get("ci_lb") is None or lv.get("ci_ub") is None:
            return value(lv["estimate"])
        return t.say(
            "vignette.value",
            estimate=value(lv["estimate"]),
            ci=t.ci(lv["ci_lb"], lv["ci_ub"], level, fmt=fmt),
        )

    group = finding.get("kind") == "group"
    running = in_sentence(factor)
    evidence = [t.say("vignette.intro_group" if group else "vignette.intro_factor", factor=running)]
    high, low = (by_code.get(str(finding.get(key))) for key in ("highest", "lowest"))
    if high is not None and low is not None:
        evidence.append(
            t.say(
                "vignette.extremes",
                highest=high.get("label", high["level"]),
                high=value(high["estimate"]),
                lowest=low.get("label", low["level"]),
                low=value(low["estimate"]),
            )
        )
    ranked = sorted(levels, key=lambda lv: -lv["estimate"])
    evidence += [
        t.say("vignette.level", label=lv.get("label", lv["level"]), value=show(lv)) for lv in ranked
    ]
    test = finding.get("test") or {}
    if test.get("p") is not None:
        clear = test["p"] < 1 - level
        evidence.append(t.say("vignette.clear" if clear else "vignette.unclear", factor=running))
    scale = str(finding.get("scale") or "").replace(".", "_")
    note = t.get("vignette.scale").get(scale, "")
    return Card(
        id=f"vignette:{finding.get('id', '')}",
        kind="vignette",
        heading=t.get("headings.vignette"),
        title=t.say("vignette.title", outcome=outcome, factor=running),
        meaning=note,
        evidence=tuple(evidence),
        prompts=_prompts(t.get("prompts.vignette"), factor, max_prompts),
        numbers={
            "finding": finding.get("id"),
            "scale": finding.get("scale"),
            "level": level,
            "highest": finding.get("highest"),
            "lowest": finding.get("lowest"),
            "levels": [
                {key: lv.get(key) for key in ("level", "label", "estimate", "ci_lb", "ci_ub")}
                for lv in levels
            ],
        },
    )


# --------------------------------------------------------------------------- the deck
def measure_of(
    summary: Mapping[str, Any] | None, grade: Mapping[str, Any] | None, settings: CardSettings
) -> Measure:
    """The measure (``effect_sizes_summary.json``'s ``measure``), its size words and threshold."""
    info = (summary or {}).get("measure") or (grade or {}).get("measure") or {}
    code = str(info.get("code") or "SMD")
    sizes = (
        settings.sizes if settings.sizes is not None else (COHEN_SIZES if code == "SMD" else None)
    )
    threshold = settings.threshold
    if threshold is None:
        threshold = ((grade or {}).get("settings") or {}).get("threshold")
    if threshold is None:
        from intervention_meta.outputs.grade import DEFAULT_THRESHOLDS

        threshold = DEFAULT_THRESHOLDS.get(code)
    return Measure(
        symbol=str(info.get("symbol") or "g"), code=code, sizes=sizes, threshold=threshold
    )


def overall_row(grade: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The GRADE row of all outcomes together (key ``all``), if rated."""
    rows = (grade or {}).get("rows") or []
    return next((r for r in rows if r.get("key") == "all"), None)


def build_deck(
    *,
    analysis: str,
    codebook: Any,
    components: Mapping[str, Any],
    moderators: Mapping[str, Any],
    texts: Texts,
    grade: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    vignette: Mapping[str, Any] | None = None,
    vignette_path: str | None = None,
    settings: CardSettings | None = None,
    sources: Mapping[str, str | None] | None = None,
) -> Deck:
    """The deck of one analysis in the language of ``texts``.

    ``vignette`` is the vignette study's findings (None: not available; with ``vignette_path``
    set, the deck says that this file did not exist).
    """
    from intervention_meta.data.codebook import present_code

    t = texts
    settings = settings or CardSettings()
    m = measure_of(summary, grade, settings)
    level = float(components.get("level") or moderators.get("level") or 0.95)
    all_row = overall_row(grade)
    certainty = None if all_row is None else all_row.get("certainty")
    notes: list[str] = []

    cards: list[Card] = []
    names = list(components.get("components") or []) if components.get("applicable", True) else []
    for name in names:
        variable = codebook.variables.get(name)
        if variable is None:
            continue
        numbers = component_numbers(name, components, moderators, present_code(variable))
        cards.append(component_card(variable, numbers, t, m, settings, certainty))
    if not cards:
        reason = components.get("reason") or "-"
        notes.append(t.say("deck.no_components", reason=reason))

    if vignette is not None:
        vlevel = float(vignette.get("level") or 0.95)
        for finding in vignette.get("findings") or []:
            cards.append(vignette_card(finding, t, vlevel, settings.max_prompts))
        notes.append(
            t.say(
                "deck.vignette_used",
                path=vignette_path or "-",
                n_respondents=vignette.get("n_respondents", "-"),
                n_ratings=vignette.get("n_ratings", "-"),
            )
        )
    elif vignette_path:
        notes.append(t.say("deck.vignette_absent", path=vignette_path))

    intro = [t.say("deck.intro")]
    intro_numbers: dict[str, Any] = {"level": level}
    if all_row is not None and all_row.get("estimate") is not None:
        intro.append(
            t.say(
                "deck.overall",
                size_effect=_size_effect(t, m, all_row["estimate"]),
                effect=_effect(t, m, all_row, all_row.get("level") or level),
                n_studies=all_row.get("n_studies"),
            )
        )
        intro_numbers.update(
            {key: all_row.get(key) for key in ("estimate", "ci_lb", "ci_ub", "n_studies", "k")}
        )
    direction = ((summary or {}).get("measure") or {}).get("direction")
    if direction:
        intro.append(t.say("deck.direction", direction=direction))
    word = t.certainty(certainty)
    opening = Card(
        id="intro",
        kind="intro",
        heading=t.get("headings.intro"),
        title=t.get("deck.title"),
        meaning=t.say("deck.subtitle", analysis=analysis),
        evidence=tuple(intro) + tuple(notes),
        certainty=t.say("deck.certainty", certainty=word) if word else "",
        numbers={**intro_numbers, "certainty": certainty, "certainty_word": word},
    )
    return Deck(
        analysis=analysis,
        language=t.language,
        level=level,
        title=t.get("deck.title"),
        subtitle=t.say("deck.subtitle", analysis=analysis),
        cards=(opening, *cards),
        notes=tuple(notes),
        sources=dict(sources or {}),
    )


__all__ = [
    "COHEN_SIZES",
    "Card",
    "CardSettings",
    "Deck",
    "Measure",
    "build_deck",
    "component_card",
    "component_numbers",
    "in_sentence",
    "size_word",
    "thin_reasons",
    "vignette_card",
]
