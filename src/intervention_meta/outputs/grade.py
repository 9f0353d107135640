"""GRADE summary of findings: the certainty of the evidence per outcome domain, rated by rules.

One row per level of ``models.domain_variable`` (from the per-domain overall results) and one for
all outcomes together (key ``all``), each with the number of effect sizes, studies and
participants, the pooled effect with its confidence and prediction intervals (back-transformed
where the measure has a display scale), an absolute interpretation where the measure allows one,
and the five GRADE domains, each rated ``not serious``, ``serious``, ``very serious`` (or ``not
assessed``, which does not rate down) with the reason in words. The certainty starts at high for
randomised evidence (low when ``grade.design`` is ``observational``), goes down one level per
serious and two per very serious rating, and stops at very low (Schünemann et al. 2013, section
5; Guyatt et al. 2011a). Rating up (large effect, dose-response) is not done.

Every rule is a small pure function below; its docstring states the rule and its source. The
numbers come from the steps' JSON (``models/overall.json``, ``domains/<d>/models/overall.json``,
``models/bias.json``), the effect-size table (sample sizes, study-level risk of bias, sampling
variances) and the config (``grade`` and the shared ``risk_of_bias`` section). A reviewer's
judgement replaces a rule's rating through ``grade.overrides`` (always with its reason; an
override without one is refused), and ``grade.indirectness`` gives the indirectness judgement,
which no statistic can make.

Participants are counted once per study: per effect size, the total sample size the effect-size
step knows (``n_int + n_ctl``, else ``n_total``, else the four cells of a 2x2 table, else ``n``,
under the codebook's column names); per study, the largest of these over its effect sizes in the
row (the same participants usually give several outcomes); summed over the studies. Studies
without any sample size are counted as such (``n_studies_participants``).

References
----------
Cohen, J. (1988). *Statistical power analysis for the behavioral sciences* (2nd ed.). Erlbaum.
Guyatt, G. H., Oxman, A. D., Akl, E. A., et al. (2011a). GRADE guidelines: 1. Introduction.
    *Journal of Clinical Epidemiology, 64*(4), 383-394.
Guyatt, G. H., et al. (2011d-h). GRADE guidelines 4 (risk of bias), 5 (publication bias),
    6 (imprecision), 7 (inconsistency), 8 (indirectness). *Journal of Clinical Epidemiology,
    64*(4), 407-415; 64(12), 1277-1282; 1283-1293; 1294-1302; 1303-1310.
Higgins, J. P. T., et al. (Eds.) (2023). *Cochrane handbook for systematic reviews of
    interventions* (version 6.4), section 15.5.3 (re-expressing an SMD).
Schünemann, H., Brożek, J., Guyatt, G., & Oxman, A. (Eds.) (2013). *GRADE handbook for grading
    quality of evidence and strength of recommendations*. The GRADE Working Group.
Sterne, J. A. C., et al. (2011). Recommendations for examining and interpreting funnel plot
    asymmetry in meta-analyses of randomised controlled trials. *BMJ, 343*, d4002.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.analyses.records import ResultTable, result_table
from intervention_meta.data.codebook import normalise_code
from intervention_meta.data.risk_of_bias import RiskOfBiasSpec
from intervention_meta.effect_sizes.measures import role_columns, role_values
from intervention_meta.errors import InputError, Problem
from intervention_meta.outputs.labels import MeasureLabels, read_measure_labels
from intervention_meta.outputs.tables import ApaTable, _as_float, fmt_ci, fmt_count, fmt_est

log = logging.getLogger(__name__)

#: the five GRADE domains, in the order of the summary-of-findings table: key -> label
GRADE_DOMAINS: dict[str, str] = {
    "risk_of_bias": "Risk of bias",
    "inconsistency": "Inconsistency",
    "indirectness": "Indirectness",
    "imprecision": "Imprecision",
    "publication_bias": "Publication bias",
}
#: the ratings a domain takes, and how many levels each rates the certainty down
DOWNGRADE: dict[str, int] = {
    "not serious": 0,
    "serious": 1,
    "very serious": 2,
    "not assessed": 0,
}
#: certainty level (4 = high) -> label and GRADE symbol
CERTAINTY: dict[int, tuple[str, str]] = {
    4: ("High", "⊕⊕⊕⊕"),
    3: ("Moderate", "⊕⊕⊕◯"),
    2: ("Low", "⊕⊕◯◯"),
    1: ("Very low", "⊕◯◯◯"),
}
#: the key of the row of all outcomes together (and of its entries in the config)
ALL = "all"
#: the config key of an entry that applies to every row without its own
DEFAULT = "default"
#: the smallest effect that matters, on the analysis scale, when the config names none:
#: Cohen's small g; a relative risk or odds reduction of 25% (GRADE's default for imprecision,
#: Guyatt et al. 2011f); r = .1
DEFAULT_THRESHOLDS: dict[str, float] = {
    "SMD": 0.2,
    "OR": math.log(1.25),
    "RR": math.log(1.25),
    "ROM": math.log(1.25),
    "ZCOR": math.atanh(0.1),
    "COR": 0.1,
}


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class GradeSettings:
    """The rules' thresholds (``grade`` in the config; defaults as the config schema).

    Attributes
    ----------
    design : ``randomised`` (start at high) or ``observational`` (start at low)
    threshold : the smallest effect that matters, on the analysis scale, as a distance from the
        null (None: :data:`DEFAULT_THRESHOLDS` of the measure, if any)
    i2_serious, i2_very_serious : I2 (%) from which inconsistency is serious / very serious
    pi_reference : what a prediction interval is checked against: ``null`` or ``threshold``
    ois : the optimal information size, in participants (GRADE's rule of thumb: 400 for a
        continuous outcome, Guyatt et al. 2011f)
    rob_basis : ``weight`` (share of the analysis weight) or ``studies`` (share of studies)
    rob_high_serious, rob_high_very_serious : share at high risk from which risk of bias is
        serious / very serious
    rob_not_low_serious : share not at low risk from which risk of bias is serious
    pb_p : p of the Egger-type test below which publication bias is suspected
    pb_min_studies : fewer studies than this: publication bias not assessed (Sterne et al. 2011)
    indirectness : row key (or ``default``) -> ``{rating, reason}``
    overrides : row key (or ``default``) -> GRADE domain -> ``{rating, reason}``
    absolute : ``control_sd``, ``scale``, ``control_risk`` and per-row ``domains``
    """

    design: str = "randomised"
    threshold: float | None = None
    i2_serious: float = 50.0
    i2_very_serious: float = 75.0
    pi_reference: str = "null"
    ois: float = 400.0
    rob_basis: str = "weight"
    rob_high_serious: float = 0.25
    rob_high_very_serious: float = 0.5
    rob_not_low_serious: float = 0.5
    pb_p: float = 0.10
    pb_min_studies: int = 10
    indirectness: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    absolute: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, grade: Mapping[str, Any] | None, measure: str = "SMD") -> GradeSettings:
        """The settings of the config's ``grade`` section (checked: see :func:`check_grade`)."""
        g = dict(grade or {})
        problems = check_grade(g)
        if problems:
            raise InputError(problems, f"{len(problems)} problem(s) in the config's grade section")
        inc = g.get("inconsistency") or {}
        imp = g.get("imprecision") or {}
        rob = g.get("risk_of_bias") or {}
        pub = g.get("publication_bias") or {}
        thr = (g.get("thresholds") or {}).get("small")
        return cls(
            design=str(g.get("design", "randomised")),
            threshold=float(thr) if thr is not None else DEFAULT_THRESHOLDS.get(measure),
            i2_serious=float(inc.get("i2_serious", 50)),
            i2_very_serious=float(inc.get("i2_very_serious", 75)),
            pi_reference=str(inc.get("pi_reference", "null")),
            ois=float(imp.get("ois", 400)),
            rob_basis=str(rob.get("basis", "weight")),
            rob_high_serious=float(rob.get("high_serious", 0.25)),
            rob_high_very_serious=float(rob.get("high_very_serious", 0.5)),
            rob_not_low_serious=float(rob.get("not_low_serious", 0.5)),
            pb_p=float(pub.get("p", 0.10)),
            pb_min_studies=int(pub.get("min_studies", 10)),
            indirectness=dict(g.get("indirectness") or {}),
            overrides={k: dict(v or {}) for k, v in (g.get("overrides") or {}).items()},
            absolute=dict(g.get("absolute") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _judgement_problems(entry: Any, where: str) -> list[Problem]:
    if not isinstance(entry, Mapping):
        return [Problem("config", None, where, entry, "a mapping {rating: ..., reason: ...}")]
    out = []
    rating = entry.get("rating")
    if rating not in ("not serious", "serious", "very serious"):
        out.append(
            Problem(
                "config", None, f"{where}.rating", rating, "not serious, serious or very serious"
            )
        )
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        out.append(
            Problem(
                "config",
                None,
                f"{where}.reason",
                reason,
                "the reviewer's reason in words: a judgement without a reason is not accepted",
            )
        )
    return out


def check_grade(grade: Mapping[str, Any]) -> list[Problem]:
    """Problems of the reviewer's judgements in ``grade``: every override and indirectness entry
    needs a rating (``not serious``, ``serious``, ``very serious``) and a reason in words, and an
    override names one of the five GRADE domains."""
    out: list[Problem] = []
    for key, entry in (grade.get("indirectness") or {}).items():
        out += _judgement_problems(entry, f"grade.indirectness.{key}")
    for key, entries in (grade.get("overrides") or {}).items():
        if not isinstance(entries, Mapping):
            out.append(Problem("config", None, f"grade.overrides.{key}", entries, "a mapping"))
            continue
        for domain, entry in entries.items():
            where = f"grade.overrides.{key}.{domain}"
            if domain not in GRADE_DOMAINS:
                out.append(Problem("config", None, where, domain, f"one of {list(GRADE_DOMAINS)}"))
            out += _judgement_problems(entry, where)
    return out


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Rating:
    """One GRADE domain's rating of one row, with the reason in words.

    ``source`` is ``rule`` (a rule of this module), ``config`` (indirectness from the config) or
    ``override`` (a reviewer's override; ``rule_rating`` keeps what the rule said).
    """

    domain: str
    rating: str
    reason: str
    source: str = "rule"
    rule_rating: str | None = None

    @property
    def downgrade(self) -> int:
        return DOWNGRADE[self.rating]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "downgrade": self.downgrade}


@dataclass(frozen=True)
class SofRow:
    """One row of the summary of findings (one outcome domain, or all outcomes: key ``all``)."""

    key: str
    label: str
    k: int | None
    n_studies: int | None
    participants: int | None
    n_studies_participants: int
    estimate: float | None
    ci_lb: float | None
    ci_ub: float | None
    pi_lb: float | None
    pi_ub: float | None
    level: float
    back: Mapping[str, Any] | None
    absolute: Mapping[str, Any]
    ratings: tuple[Rating, ...]
    start: int
    certainty: int
    note: str = ""

    @property
    def certainty_label(self) -> str:
        return CERTAINTY[self.certainty][0]

    def rating(self, domain: str) -> Rating:
        return next(r for r in self.ratings if r.domain == domain)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "k": self.k,
            "n_studies": self.n_studies,
            "participants": self.participants,
            "n_studies_participants": self.n_studies_participants,
            "estimate": self.estimate,
            "ci_lb": self.ci_lb,
            "ci_ub": self.ci_ub,
            "pi_lb": self.pi_lb,
            "pi_ub": self.pi_ub,
            "level": self.level,
            "back": dict(self.back) if self.back else None,
            "absolute": dict(self.absolute),
            "ratings": {r.domain: r.to_dict() for r in self.ratings},
            "start": self.start,
            "certainty": self.certainty,
            "certainty_label": self.certainty_label,
            "note": self.note,
        }


# --------------------------------------------------------------------------- small helpers
def _num(x: Any) -> float | None:
    """``x`` as a float, None if it is not a finite number."""
    v = _as_float(x)
    return v if v is not None and math.isfinite(v) else None


def _f(x: float | None, d: int = 2) -> str:
    return "NA" if x is None else f"{x:.{d}f}"


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _crosses(lb: float | None, ub: float | None, value: float) -> bool:
    return lb is not None and ub is not None and lb < value < ub


# --------------------------------------------------------------------------- the rules
def rate_risk_of_bias(
    share_high: float | None,
    share_not_low: float | None,
    settings: GradeSettings,
    *,
    basis: str = "weight",
    n_assessed: int = 0,
    n_studies: int = 0,
    assessed: bool = True,
) -> Rating:
    """Risk of bias from the share of the evidence at high risk (Guyatt et al. 2011d, GRADE 4).

    Rule: very serious when the share (of the analysis weight, or of the studies) from studies at
    high risk is at least ``rob_high_very_serious``; serious when it is at least
    ``rob_high_serious`` or the share not at low risk (some concerns, high, or not judged) is at
    least ``rob_not_low_serious``; else not serious. Without a ``risk_of_bias`` section in the
    config (``assessed`` False) the domain is ``not assessed`` and does not rate down.
    """
    if not assessed or share_high is None or share_not_low is None:
        return Rating(
            "risk_of_bias",
            "not assessed",
            "not assessed: the config has no risk_of_bias section naming the studies' overall "
            "judgement, so the certainty is not rated down for risk of bias",
        )
    what = "analysis weight" if basis == "weight" else "studies"
    facts = (
        f"{_pct(share_high)} of the {what} from studies at high risk of bias, "
        f"{_pct(share_not_low)} from studies not at low risk ({n_assessed} of {n_studies} "
        "studies judged)"
    )
    if share_high >= settings.rob_high_very_serious:
        rating = "very serious"
    elif share_high >= settings.rob_high_serious or share_not_low >= settings.rob_not_low_serious:
        rating = "serious"
    else:
        rating = "not serious"
    return Rating("risk_of_bias", rating, facts)


def rate_inconsistency(
    i2: float | None,
    pi_lb: float | None,
    pi_ub: float | None,
    settings: GradeSettings,
    *,
    null: float = 0.0,
    n_studies: int | None = None,
    level: float = 0.95,
) -> Rating:
    """Inconsistency from the prediction interval and I2 (Guyatt et al. 2011g, GRADE 7).

    Rule: with fewer than two studies, ``not assessed``. Otherwise the prediction interval is
    checked against the null (``pi_reference: null``) or against the decision threshold
    (``threshold``: the PI holds effects both below and above the smallest effect that matters);
    I2 is the share of the total variance that is heterogeneity (all levels together). Very
    serious when I2 >= ``i2_very_serious`` and the PI reaches important effects in both
    directions (or, without a threshold, crosses the null); serious when I2 >= ``i2_serious`` or
    the PI crosses its reference; else not serious.
    """
    if n_studies is not None and n_studies < 2:
        return Rating(
            "inconsistency",
            "not assessed",
            "not assessed: a single study, whose effects cannot be compared with other studies'",
        )
    t = settings.threshold
    pct = f"{level * 100:g}%"
    use_threshold = settings.pi_reference == "threshold" and t is not None
    if use_threshold:
        reference = f"the decision threshold ({_f(null + t)} / {_f(null - t)})"
        crosses = _crosses(pi_lb, pi_ub, null + t) or _crosses(pi_lb, pi_ub, null - t)
    else:
        reference = "the null"
        crosses = _crosses(pi_lb, pi_ub, null)
    both_ways = (
        pi_lb is not None and pi_ub is not None and pi_lb <= null - t and pi_ub >= null + t
        if t is not None
        else crosses
    )
    pi_text = (
        f"the {pct} PI [{_f(pi_lb)}, {_f(pi_ub)}] {'crosses' if crosses else 'does not cross'} "
        f"{reference}"
        if pi_lb is not None and pi_ub is not None
        else "no prediction interval"
    )
    i2_text = f"I² = {i2:.0f}%" if i2 is not None else "I² not available"
    for limit in (settings.i2_very_serious, settings.i2_serious):
        if i2 is not None and i2 >= limit:
            i2_text += f" (at least {limit:g}%)"
            break
    high = i2 is not None and i2 >= settings.i2_very_serious
    if high and both_ways and (crosses or not use_threshold):
        rating = "very serious"
    elif crosses or (i2 is not None and i2 >= settings.i2_serious):
        rating = "serious"
    else:
        rating = "not serious"
    return Rating("inconsistency", rating, f"{i2_text}; {pi_text}")


def rate_imprecision(
    ci_lb: float | None,
    ci_ub: float | None,
    settings: GradeSettings,
    *,
    null: float = 0.0,
    participants: int | None = None,
    level: float = 0.95,
) -> Rating:
    """Imprecision from the confidence interval and the information size (Guyatt et al. 2011f,
    GRADE 6).

    Rule, with ``T`` the decision threshold (the smallest effect that matters): very serious
    when the CI holds important effects in both directions (lower <= null - T and upper >= null +
    T); serious when it holds no effect and an important effect (it crosses the null and reaches
    null +- T), or, without a threshold, when it crosses the null; serious also when fewer
    participants than the optimal information size ``ois`` were analysed; else not serious (a CI
    that crosses the null but lies inside +-T excludes any effect that matters).
    """
    pct = f"{level * 100:g}%"
    if ci_lb is None or ci_ub is None:
        return Rating("imprecision", "not assessed", "not assessed: no confidence interval")
    t = settings.threshold
    ci_text = f"the {pct} CI [{_f(ci_lb)}, {_f(ci_ub)}]"
    crosses = _crosses(ci_lb, ci_ub, null)
    if t is not None:
        low, high = ci_lb <= null - t, ci_ub >= null + t
        thr = f"the smallest effect that matters is {_f(t)} from the null"
        if low and high:
            return Rating(
                "imprecision",
                "very serious",
                f"{ci_text} holds important effects in both directions ({thr})",
            )
        if crosses and (low or high):
            return Rating(
                "imprecision",
                "serious",
                f"{ci_text} holds both no effect and an important effect ({thr})",
            )
        ci_verdict = (
            f"{ci_text} excludes the null"
            if not crosses
            else f"{ci_text} crosses the null but excludes every effect that matters ({thr})"
        )
    else:
        if crosses:
            return Rating(
                "imprecision",
                "serious",
                f"{ci_text} crosses the null (no decision threshold known for this measure: "
                "set grade.thresholds.small)",
            )
        ci_verdict = f"{ci_text} excludes the null"
    if participants is not None and participants < settings.ois:
        return Rating(
            "imprecision",
            "serious",
            f"{ci_verdict}, but only {participants} participants were analysed, fewer than the "
            f"optimal information size of {settings.ois:g}",
        )
    size = (
        f"{participants} participants (optimal information size {settings.ois:g})"
        if participants is not None
        else "participants not known (information size not checked)"
    )
    return Rating("imprecision", "not serious", f"{ci_verdict}; {size}")


def rate_indirectness(entry: Mapping[str, str] | None) -> Rating:
    """Indirectness from the config (Guyatt et al. 2011h, GRADE 8): population, intervention,
    comparison and outcomes against the review question is a reviewer's judgement, so the
    config's entry (``grade.indirectness``) is taken as it is; without one, not serious."""
    if entry:
        return Rating(
            "indirectness", str(entry["rating"]), str(entry["reason"]).strip(), source="config"
        )
    return Rating(
        "indirectness",
        "not serious",
        "no concern recorded: the config's grade.indirectness has no entry for this outcome "
        "(populations, interventions and outcomes taken as those of the review question)",
        source="config",
    )


def rate_publication_bias(
    n_studies: int | None,
    egger_p: float | None,
    pooled: float | None,
    adjusted: Mapping[str, float | None],
    settings: GradeSettings,
    *,
    null: float = 0.0,
) -> Rating:
    """Publication bias from the bias step (Guyatt et al. 2011e, GRADE 5).

    Rule: with fewer than ``pb_min_studies`` studies, ``not assessed`` (the tests have too little
    power; Sterne et al. 2011). Otherwise serious when the Egger-type test of small-study
    effects has p < ``pb_p`` or a bias-adjusted estimate (trim and fill, PET-PEESE) lies on the
    other side of the null, or of the decision threshold, than the pooled estimate; else not
    serious. GRADE rates publication bias down by one level at most ("strongly suspected").
    """
    if n_studies is None or n_studies < settings.pb_min_studies:
        return Rating(
            "publication_bias",
            "not assessed",
            f"not assessed: {n_studies if n_studies is not None else 'no'} studies, fewer than "
            f"the {settings.pb_min_studies} the tests of small-study effects need",
        )
    reasons, concerns = [], []
    if egger_p is not None:
        below = "below" if egger_p < settings.pb_p else "not below"
        reasons.append(f"Egger-type test p = {egger_p:.3f} ({below} {settings.pb_p:g})")
        if egger_p < settings.pb_p:
            concerns.append("small-study effects")
    t = settings.threshold
    for name, value in adjusted.items():
        if value is None or pooled is None:
            continue
        moved = (pooled - null) * (value - null) < 0
        label = "null"
        if not moved and t is not None:
            moved = abs(pooled - null) >= t > abs(value - null)
            label = "decision threshold"
        reasons.append(f"{name} estimate {_f(value)} vs. {_f(pooled)}")
        if moved:
            concerns.append(f"{name} moves the estimate across the {label}")
    if concerns:
        return Rating(
            "publication_bias", "serious", "; ".join(reasons) + ": " + "; ".join(concerns)
        )
    return Rating(
        "publication_bias",
        "not serious",
        "; ".join(reasons) + ": no sign of small-study effects, no adjusted estimate across the "
        "null or the decision threshold"
        if reasons
        else "no test results",
    )


def certainty_level(start: int, ratings: Sequence[Rating]) -> int:
    """The certainty: ``start`` (4 = high, 2 = low) down one level per serious and two per very
    serious rating, never below 1 (very low) (Schünemann et al. 2013, section 5)."""
    return max(1, start - sum(r.downgrade for r in ratings))


def apply_overrides(
    key: str, ratings: Sequence[Rating], overrides: Mapping[str, Mapping[str, Mapping[str, str]]]
) -> tuple[Rating, ...]:
    """The ratings of row ``key`` with the reviewer's overrides (``overrides[key]`` or, for
    domains it does not name, ``overrides["default"]``) in place of the rules' ratings."""
    mine = {**(overrides.get(DEFAULT) or {}), **(overrides.get(key) or {})}
    out = []
    for r in ratings:
        entry = mine.get(r.domain)
        if entry:
            out.append(
                Rating(
                    r.domain,
                    str(entry["rating"]),
                    f"reviewer's judgement: {str(entry['reason']).strip()} (the rule said "
                    f"{r.rating}: {r.reason})",
                    source="override",
                    rule_rating=r.rating,
                )
            )
        else:
            out.append(r)
    return tuple(out)


# --------------------------------------------------------------------------- absolute effects
def cohen_size(g: float) -> str:
    """Cohen's (1988) words for an SMD: below 0.2 trivial, small, medium from 0.5, large from
    0.8 (of the absolute value)."""
    a = abs(g)
    if a < 0.2:
        return "trivial"
    if a < 0.5:
        return "small"
    if a < 0.8:
        return "medium"
    return "large"


def risk_per_1000(measure: str, value: float, control_risk: float | None) -> float | None:
    """The risk difference per 1,000 at the assumed control risk ``p0`` (GRADE's absolute effect,
    Schünemann et al. 2013, section 5.2.1): log OR ``x``: ``p1 = e^x p0 / (1 - p0 + e^x p0)``;
    log RR: ``p1 = min(1, e^x p0)``; RD: ``1000 x`` (no ``p0`` needed)."""
    if measure == "RD":
        return 1000 * value
    if control_risk is None:
        return None
    p0 = float(control_risk)
    ratio = math.exp(value)
    if measure == "OR":
        p1 = ratio * p0 / (1 - p0 + ratio * p0)
    elif measure == "RR":
        p1 = min(1.0, ratio * p0)
    else:
        return None
    return 1000 * (p1 - p0)


def _more_fewer(x: float) -> str:
    n = round(abs(x))
    return "no difference" if n == 0 else f"{n} {'more' if x > 0 else 'fewer'}"


def absolute_effect(
    measure: str,
    estimate: float | None,
    ci_lb: float | None,
    ci_ub: float | None,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """An absolute interpretation of the pooled effect, where the measure allows one.

    SMD: Cohen's words for its size and, with ``control_sd`` (and the ``scale`` it is on), the
    difference on that scale, ``g x SD`` (Higgins et al. 2023, section 15.5.3.1); OR, RR, RD:
    the risk difference per 1,000 at the assumed ``control_risk`` (:func:`risk_per_1000`); any
    other measure: none (``kind`` ``none`` and the reason in ``text``).

    Returns
    -------
    dict
        ``kind`` (``smd``, ``per_1000``, ``none``), ``text`` and the numbers it states
        (``difference``, ``ci_lb``, ``ci_ub``, ``size``, ``control_sd``, ``control_risk``).
    """
    if estimate is None:
        return {"kind": "none", "text": "none: the pooled effect is not estimable"}
    if measure == "SMD":
        size = cohen_size(estimate)
        text = f"{size} effect"
        out: dict[str, Any] = {"kind": "smd", "size": size}
        sd = _num(settings.get("control_sd"))
        if sd is not None:
            scale = str(settings.get("scale") or "the outcome's scale")
            diff = [None if v is None else v * sd for v in (estimate, ci_lb, ci_ub)]
            text += (
                f"; {_f(diff[0], 1)} ({_f(diff[1], 1)} to {_f(diff[2], 1)}) on {scale} "
                f"(g × control-group SD {sd:g})"
            )
            out.update(difference=diff[0], ci_lb=diff[1], ci_ub=diff[2], control_sd=sd)
        return {**out, "text": text}
    if measure in ("OR", "RR", "RD"):
        p0 = _num(settings.get("control_risk"))
        per = [
            None if v is None else risk_per_1000(measure, v, p0) for v in (estimate, ci_lb, ci_ub)
        ]
        if per[0] is None:
            return {
                "kind": "none",
                "text": "none: no assumed control-group risk in the config "
                "(grade.absolute.control_risk)",
            }
        at = f"at a control risk of {1000 * p0:g} per 1,000: " if measure != "RD" else ""
        ci = (
            f" (from {_more_fewer(per[1])} to {_more_fewer(per[2])})"
            if per[1] is not None and per[2] is not None
            else ""
        )
        return {
            "kind": "per_1000",
            "text": f"{at}{_more_fewer(per[0])} per 1,000{ci}",
            "difference": per[0],
            "ci_lb": per[1],
            "ci_ub": per[2],
            "control_risk": p0,
        }
    return {"kind": "none", "text": f"none: no absolute interpretation for the measure {measure}"}


# --------------------------------------------------------------------------- data of a row
def _first_code(values: Any) -> str | None:
    """The first coded value (as :func:`~intervention_meta.data.codebook.normalise_code` writes
    it) among ``values``; None if all are missing or blank."""
    codes = (normalise_code(v) for v in values if not pd.isna(v))
    return next((c for c in codes if c), None)


def _numeric(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None or column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def sample_sizes(frame: pd.DataFrame, roles: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Per effect size, the total sample size known: ``n_int + n_ctl``, else ``n_total``, else
    the four cells of a 2x2 table, else ``n`` (NaN when none). ``roles`` maps each of these
    roles to the columns that hold it (the codebook's names)."""

    def first(role: str) -> np.ndarray:
        return role_values(frame, roles, role)

    n = first("n_int") + first("n_ctl")
    for alternative in (
        first("n_total"),
        first("events_int") + first("nonevents_int") + first("events_ctl") + first("nonevents_ctl"),
        first("n"),
    ):
        n = np.where(np.isnan(n), alternative, n)
    return n


def participants(frame: pd.DataFrame, study: str, roles: Mapping[str, Sequence[str]]) -> tuple:
    """(participants, studies with a sample size): per study the largest sample size of its
    effect sizes (:func:`sample_sizes`), summed over the studies (counted once per study)."""
    if frame.empty:
        return None, 0
    n = pd.Series(sample_sizes(frame, roles), index=frame.index)
    per_study = n.groupby(frame[study].astype(str)).max().dropna()
    if per_study.empty:
        return None, 0
    return int(round(float(per_study.sum()))), int(len(per_study))


def study_weights(frame: pd.DataFrame, study: str, analysis: Mapping[str, Any]) -> pd.Series | None:
    """Each study's weight in the pooled estimate of the analysis model (intercept only).

    Three-level model (effect sizes nested in studies, variances ``s_b`` between and ``s_w``
    within studies): study ``j``'s block ``V_j = D_j + s_b 11'``, ``D_j = diag(s_w + v_i)``,
    has weight ``1' V_j^-1 1 = a_j / (1 + s_b a_j)`` with ``a_j = sum_i 1 / (s_w + v_i)``
    (Sherman-Morrison); random-effects model: ``sum_i 1 / (v_i + tau2)``; fixed-effect model:
    ``sum_i 1 / v_i``. The weights sum to ``1 / SE^2`` of the model-based estimate. Other
    structures (more levels): None (the shares are then taken over the studies).
    """
    vi = _numeric(frame, "vi")
    ok = np.isfinite(vi) & np.isfinite(_numeric(frame, "yi"))
    data = pd.DataFrame({"study": frame[study].astype(str).to_numpy()[ok], "vi": vi[ok]})
    structure = (_nested(analysis, "analysis", "model_spec", "structure") or "").lower()
    sigma2 = analysis.get("sigma2") or {}
    levels = list(_nested(analysis, "analysis", "levels") or [])
    if structure in ("three_level", "multilevel") and len(levels) == 2 and len(sigma2) == 2:
        s_b, s_w = float(sigma2[levels[0]]), float(sigma2[levels[1]])
        a = (1.0 / (s_w + data["vi"])).groupby(data["study"]).sum()
        return a / (1 + s_b * a)
    if structure == "random_effects":
        tau2 = _num(analysis.get("tau2")) or 0.0
        return (1.0 / (data["vi"] + tau2)).groupby(data["study"]).sum()
    if structure == "fixed_effect":
        return (1.0 / data["vi"]).groupby(data["study"]).sum()
    return None


def risk_of_bias_shares(
    judgements: Mapping[str, str | None],
    low: Sequence[str],
    high: Sequence[str],
    weights: Mapping[str, float] | None = None,
) -> tuple[float, float, int]:
    """(share at high risk, share not at low risk, studies judged) over the studies of
    ``judgements`` (study -> overall code, None = not judged), weighted by ``weights`` when given.
    A study without a judgement counts as not at low risk."""
    studies = list(judgements)
    w = np.array([1.0 if weights is None else float(weights.get(s, 0.0)) for s in studies])
    codes = [judgements[s] for s in studies]
    is_high = np.array([c is not None and c in high for c in codes])
    is_low = np.array([c is not None and c in low for c in codes])
    total = w.sum()
    if total <= 0:
        return 0.0, 0.0, 0
    return (
        float(w[is_high].sum() / total),
        float(w[~is_low].sum() / total),
        sum(c is not None for c in codes),
    )


def _nested(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


@dataclass(frozen=True)
class BiasSummary:
    """What the publication-bias rule reads of ``models/bias.json``."""

    n_studies: int | None
    egger_p: float | None
    pooled: float | None
    adjusted: Mapping[str, float | None]

    @classmethod
    def from_json(cls, bias: Mapping[str, Any]) -> BiasSummary:
        """The Egger-type test in the analysis model (its model-based p; the classic test's p
        when that one is missing), the pooled estimate and the trim-and-fill and PET-PEESE
        estimates."""
        p = _num(_nested(bias, "egger_multilevel", "pval"))
        if p is None:
            p = _num(_nested(bias, "egger_lm", "pval"))
        return cls(
            n_studies=bias.get("n_studies"),
            egger_p=p,
            pooled=_num(bias.get("pooled_estimate")),
            adjusted={
                "trim-and-fill": _num(_nested(bias, "trimfill", "estimate")),
                "PET-PEESE": _num(_nested(bias, "pet_peese", "estimate")),
            },
        )


# --------------------------------------------------------------------------- one row
def grade_row(
    key: str,
    label: str,
    overall: Mapping[str, Any],
    effects: pd.DataFrame,
    settings: GradeSettings,
    labels: MeasureLabels,
    *,
    study: str,
    roles: Mapping[str, Sequence[str]],
    bias: BiasSummary,
    risk_of_bias: RiskOfBiasSpec | None = None,
    bias_note: str = "",
) -> SofRow:
    """The summary-of-findings row of one analysis (``overall``: its ``models/overall.json``;
    ``effects``: its effect sizes, with the study-level columns)."""
    est = overall.get("estimate") or {}
    an = overall.get("analysis") or {}
    level = float(est.get("level") or _nested(an, "model_spec", "level") or 0.95)
    values = {k: _num(est.get(k)) for k in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub")}
    n_studies = an.get("n_studies")
    n_part, n_with = participants(effects, study, roles)
    null = labels.null
    vd = overall.get("variance_distribution") or {}
    i2 = _num(vd.get("i2_total"))
    if i2 is None:
        i2 = _num(_nested(overall, "heterogeneity", "I2"))

    if risk_of_bias is not None and risk_of_bias.overall in effects:
        judged = {
            str(s): _first_code(g)
            for s, g in effects.groupby(effects[study].astype(str))[risk_of_bias.overall]
        }
        weights = study_weights(effects, study, overall) if settings.rob_basis == "weight" else None
        basis = "weight" if weights is not None else "studies"
        high, not_low, n_judged = risk_of_bias_shares(
            judged, risk_of_bias.low, risk_of_bias.high, weights
        )
        rob = rate_risk_of_bias(
            high, not_low, settings, basis=basis, n_assessed=n_judged, n_studies=len(judged)
        )
    elif risk_of_bias is not None:
        rob = Rating(
            "risk_of_bias",
            "not assessed",
            f"not assessed: the risk_of_bias variable {risk_of_bias.overall!r} is not in the "
            "effect-size table",
        )
    else:
        rob = rate_risk_of_bias(None, None, settings, assessed=False)

    pub = rate_publication_bias(bias.n_studies, bias.egger_p, bias.pooled, bias.adjusted, settings)
    if bias_note:
        pub = replace(pub, reason=f"{bias_note}: {pub.reason}")
    indirect = (settings.indirectness or {}).get(key) or (settings.indirectness or {}).get(DEFAULT)
    rules = (
        rob,
        rate_inconsistency(
            i2,
            values["pi_lb"],
            values["pi_ub"],
            settings,
            null=null,
            n_studies=n_studies,
            level=level,
        ),
        rate_indirectness(indirect),
        rate_imprecision(
            values["ci_lb"], values["ci_ub"], settings, null=null, participants=n_part, level=level
        ),
        pub,
    )
    ratings = apply_overrides(key, rules, settings.overrides)
    start = 2 if settings.design == "observational" else 4
    back = labels.back_transformed(*(values[k] for k in values))
    absolute_settings = {
        **{k: v for k, v in settings.absolute.items() if k != "domains"},
        **{
            k: v
            for k, v in ((settings.absolute.get("domains") or {}).get(key) or {}).items()
            if v not in (None, "")
        },
    }
    return SofRow(
        key=key,
        label=label,
        k=an.get("k"),
        n_studies=n_studies,
        participants=n_part,
        n_studies_participants=n_with,
        level=level,
        back=back.to_dict() if back is not None else None,
        absolute=absolute_effect(
            labels.code, values["estimate"], values["ci_lb"], values["ci_ub"], absolute_settings
        ),
        ratings=ratings,
        start=start,
        certainty=certainty_level(start, ratings),
        note="" if overall.get("estimable", True) else str(overall.get("reason") or ""),
        **values,
    )


# --------------------------------------------------------------------------- the whole table
@dataclass(frozen=True)
class GradeResult:
    """The summary of findings: one :class:`SofRow` per outcome domain and all outcomes."""

    rows: tuple[SofRow, ...]
    settings: GradeSettings
    measure: Mapping[str, Any]
    risk_of_bias: RiskOfBiasSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": "grade",
            "settings": self.settings.to_dict(),
            "risk_of_bias": asdict(self.risk_of_bias) if self.risk_of_bias else None,
            "measure": dict(self.measure),
            "domains": dict(GRADE_DOMAINS),
            "rows": [r.to_dict() for r in self.rows],
            "tables": {"grade": self.table().to_dict()},
        }

    def table(self) -> ResultTable:
        """The rows as one flat table (machine keys; the CSV ``tables/grade.csv``)."""
        out = []
        for r in self.rows:
            row: dict[str, Any] = {
                "key": r.key,
                "outcome": r.label,
                "k": r.k,
                "n_studies": r.n_studies,
                "participants": r.participants,
                "estimate": r.estimate,
                "ci_lb": r.ci_lb,
                "ci_ub": r.ci_ub,
                "pi_lb": r.pi_lb,
                "pi_ub": r.pi_ub,
            }
            for k in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"):
                row[f"back_{k}"] = (r.back or {}).get(k)
            row["absolute"] = r.absolute.get("text")
            for rating in r.ratings:
                row[rating.domain] = rating.rating
                row[f"{rating.domain}_reason"] = rating.reason
            row["certainty"] = r.certainty_label
            out.append(row)
        return result_table(out, GRADE_HEADERS, self.rows[0].level if self.rows else None)

    def to_frame(self) -> pd.DataFrame:
        return self.table().to_frame(counts=("k", "n_studies", "participants"))


GRADE_HEADERS: dict[str, str | None] = {
    "key": None,
    "outcome": "Outcome",
    "k": "k (effect sizes)",
    "n_studies": "Studies",
    "participants": "Participants",
    "estimate": "Pooled effect",
    "ci_lb": "{pct} CI lower",
    "ci_ub": "{pct} CI upper",
    "pi_lb": "{pct} PI lower",
    "pi_ub": "{pct} PI upper",
    "back_estimate": "Pooled effect (back-transformed)",
    "back_ci_lb": "{pct} CI lower (back-transformed)",
    "back_ci_ub": "{pct} CI upper (back-transformed)",
    "back_pi_lb": "{pct} PI lower (back-transformed)",
    "back_pi_ub": "{pct} PI upper (back-transformed)",
    "absolute": "Absolute effect",
    **{
        k: h
        for d, label in GRADE_DOMAINS.items()
        for k, h in ((d, label), (f"{d}_reason", f"{label}: reason"))
    },
    "certainty": "Certainty",
}


def grade_summary(
    overall: Mapping[str, Any],
    effects: pd.DataFrame,
    *,
    grade: Mapping[str, Any] | None = None,
    risk_of_bias: Mapping[str, Any] | None = None,
    bias: Mapping[str, Any] | None = None,
    domains: Mapping[str, Mapping[str, Any]] | None = None,
    domain_labels: Mapping[str, str] | None = None,
    domain_variable: str | None = None,
    labels: MeasureLabels | None = None,
    statistic_columns: Mapping[str, Mapping[str, str]] | None = None,
    study: str | None = None,
) -> GradeResult:
    """The GRADE summary of findings of an analysis.

    Parameters
    ----------
    overall : ``models/overall.json`` (all outcomes together)
    effects : the effect-size table (``effect_sizes.csv``: ``yi``, ``vi``, the study key, the
        domain variable, the sample sizes and the study-level columns)
    grade : the config's ``grade`` section (see :class:`GradeSettings`)
    risk_of_bias : the config's ``risk_of_bias`` section (None: not assessed)
    bias : ``models/bias.json`` (publication bias; it is of all outcomes, and the domain rows
        say so)
    domains : domain code -> that domain's ``overall.json``, in the table's order
    domain_labels : domain code -> label (default: the code)
    domain_variable : the column of ``effects`` holding the domain
    labels : the effect measure (default: SMD)
    statistic_columns : the codebook's ``{input kind: {role: column}}`` where it renames the
        standard columns (the sample sizes are read from these)
    study : the study key (default: ``analysis.study_key`` of ``overall``)

    Raises
    ------
    InputError
        For an override or indirectness entry without a rating or reason, or naming a row that
        is not in the table.
    """
    labels = labels if labels is not None else read_measure_labels(None)
    settings = GradeSettings.from_config(grade, labels.code)
    rob = RiskOfBiasSpec.from_config(risk_of_bias)
    study = study or str(_nested(overall, "analysis", "study_key") or "study_id")
    roles = role_columns(statistic_columns)
    summary = BiasSummary.from_json(bias or {})
    domains = dict(domains or {})
    keys = [ALL, *domains]
    unknown = [
        Problem("config", None, f"grade.{section}.{k}", k, f"a row of the table: {keys} or default")
        for section in ("overrides", "indirectness")
        for k in ((grade or {}).get(section) or {})
        if k not in keys and k != DEFAULT
    ]
    if unknown:
        raise InputError(unknown, f"{len(unknown)} problem(s) in the config's grade section")
    common = {"study": study, "roles": roles, "bias": summary, "risk_of_bias": rob}
    analysed = effects[np.isfinite(_numeric(effects, "yi")) & np.isfinite(_numeric(effects, "vi"))]
    rows = [grade_row(ALL, "All outcomes", overall, analysed, settings, labels, **common)]
    names = dict(domain_labels or {})
    for code, result in domains.items():
        subset = (
            analysed[analysed[domain_variable].astype(str) == str(code)]
            if domain_variable and domain_variable in analysed
            else analysed.iloc[0:0]
        )
        rows.append(
            grade_row(
                str(code),
                names.get(code, str(code)),
                result,
                subset,
                settings,
                labels,
                bias_note="as for all outcomes (the bias analyses are not run per domain)",
                **common,
            )
        )
    return GradeResult(tuple(rows), settings, labels.to_dict(), rob)


def grade_rules(settings: Mapping[str, Any], measure: str = "SMD") -> list[str]:
    """The rules of :func:`grade_summary` in words, with the thresholds of ``settings`` (the
    ``settings`` record of ``models/grade.json``), for the methods text."""
    s = GradeSettings(**{k: v for k, v in settings.items() if k in GradeSettings.__annotations__})
    t = s.threshold
    thr = (
        f"the smallest effect that matters is {t:.2f} from the null on the analysis scale"
        if t is not None
        else f"no smallest effect that matters is known for {measure}"
    )
    basis = "analysis weight" if s.rob_basis == "weight" else "studies"
    reference = "the decision threshold" if s.pi_reference == "threshold" else "the null"
    return [
        f"Certainty starts at {'low' if s.design == 'observational' else 'high'} "
        f"({s.design} evidence) and goes down one level per serious and two per very serious "
        "rating, to very low at most; not assessed does not rate down; rating up is not done.",
        f"Risk of bias: very serious when at least {_pct(s.rob_high_very_serious)} of the "
        f"{basis} is from studies at high risk, serious from {_pct(s.rob_high_serious)} at high "
        f"risk or {_pct(s.rob_not_low_serious)} not at low risk (a study without a judgement "
        "counts as not at low risk); not assessed without a risk_of_bias section in the config.",
        f"Inconsistency: serious when I² (all levels of heterogeneity together) is at least "
        f"{s.i2_serious:g}% or the prediction interval crosses {reference}; very serious when "
        f"I² is at least {s.i2_very_serious:g}% and the prediction interval reaches important "
        "effects in both directions; not assessed for a single study.",
        "Indirectness: the reviewer's judgement in the config (grade.indirectness); not serious "
        "without one.",
        f"Imprecision ({thr}): very serious when the confidence interval holds important effects "
        "in both directions; serious when it holds both no effect and an important effect (or, "
        "without a threshold, crosses the null), or when fewer participants than the optimal "
        f"information size ({s.ois:g}) were analysed.",
        f"Publication bias: serious when the Egger-type test has p < {s.pb_p:g} or a "
        "trim-and-fill or PET-PEESE estimate lies across the null or the decision threshold from "
        f"the pooled estimate; not assessed with fewer than {s.pb_min_studies} studies; the bias "
        "analyses are of all outcomes together, so each domain takes their rating.",
        "A reviewer's override in the config (grade.overrides, always with its reason) replaces "
        "a rule's rating and is marked as such.",
    ]


#: superscript letters marking the footnotes of the table (GRADE style)
FOOTNOTE_MARKS = "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ"


def _mark(i: int) -> str:
    """The ``i``-th footnote mark (``ᵃ``, ``ᵇ``, ...; ``ᵃᵃ`` after ``ᶻ``)."""
    n = len(FOOTNOTE_MARKS)
    return FOOTNOTE_MARKS[i % n] * (i // n + 1)


def grade_apa_table(
    grade: Mapping[str, Any], number: int, labels: MeasureLabels, source: str = ""
) -> ApaTable:
    """The summary-of-findings table in APA style, from the JSON :class:`GradeResult` wrote.

    One row per outcome: k, studies, participants, the pooled effect with its CI and PI (and
    back-transformed, where the measure has a display scale), the absolute effect, the certainty
    (GRADE's circles and words) and the five domains' ratings that make it. Every rating that is not
    ``not serious``, and every reviewer's override, carries a footnote mark; the note gives
    each footnote's reason (identical reasons share a mark), as GRADE's tables do.
    """
    rows_in = grade.get("rows") or []
    level = float(rows_in[0].get("level") or 0.95) if rows_in else 0.95
    pct = f"{level * 100:g}%"
    back = labels.has_back
    sym = labels.symbol
    columns = ["Outcome", "k", "Studies", "Participants", f"{sym} [{pct} CI]", f"{pct} PI"]
    if back:
        columns += [f"{labels.back_symbol} [{pct} CI]"]
    columns += ["Absolute effect", "Certainty", *GRADE_DOMAINS.values()]
    notes: dict[str, str] = {}
    rows = []
    for r in rows_in:
        n_part = fmt_count(r.get("participants"))
        if n_part and r.get("n_studies_participants") != r.get("n_studies"):
            n_part += f" (of {r.get('n_studies_participants')} studies)"
        cells = [
            str(r.get("label", "")),
            fmt_count(r.get("k")),
            fmt_count(r.get("n_studies")),
            n_part or "not known",
            f"{fmt_est(r.get('estimate'))} {fmt_ci(r.get('ci_lb'), r.get('ci_ub'))}".strip(),
            fmt_ci(r.get("pi_lb"), r.get("pi_ub")),
        ]
        if back:
            b = r.get("back") or {}
            cells.append(f"{fmt_est(b.get('estimate'))} {fmt_ci(b.get('ci_lb'), b.get('ci_ub'))}")
        cells.append(str((r.get("absolute") or {}).get("text", "")))
        level_label, circles = CERTAINTY[int(r.get("certainty", 1))]
        cells.append(f"{circles}\u00a0{level_label}")
        for domain in GRADE_DOMAINS:
            rating = (r.get("ratings") or {}).get(domain) or {}
            text = str(rating.get("rating", ""))
            if text != "not serious" or rating.get("source") == "override":
                reason = str(rating.get("reason", ""))
                mark = notes.setdefault(reason, _mark(len(notes)))
                text += f"\u00a0{mark}"  # the mark stays with its rating
            cells.append(text)
        rows.append(tuple(cells))
    design = (grade.get("settings") or {}).get("design", "randomised")
    note = (
        "GRADE = Grading of Recommendations Assessment, Development and Evaluation "
        "(Schünemann et al., 2013). Certainty starts at "
        + ("low for observational" if design == "observational" else "high for randomised")
        + " evidence and goes down one level per serious and two per very serious rating; "
        "not assessed does not rate down. "
        "k = number of effect sizes; participants are counted once per study (the largest "
        "sample of its effect sizes); CI = confidence interval; PI = prediction interval. "
        + (
            "Absolute effect: Cohen's (1988) benchmarks, 0.2 small, 0.5 medium, 0.8 large. "
            if labels.code == "SMD"
            else ""
        )
        + "Footnotes give the reason of every rating that rates down, is not assessed or is a "
        "reviewer's judgement. "
        + " ".join(f"{mark} {reason.rstrip('.')}." for reason, mark in notes.items())
        + f" {labels.direction_note()}"
    )
    return ApaTable(
        name="grade",
        number=number,
        title="Summary of Findings: Certainty of the Evidence (GRADE)",
        columns=tuple(columns),
        rows=tuple(rows),
        note=note.strip(),
        align=tuple("l" if j == 0 or j >= 6 + int(back) else "r" for j in range(len(columns))),
        source=str(source),
    )


def run_grade(
    overall: str | Path,
    effects: str | Path,
    out_json: str | Path,
    out_csv: str | Path,
    *,
    bias: str | Path | None = None,
    domain_files: Mapping[str, str | Path] | None = None,
    codebook: str | Path | None = None,
    domain_variable: str | None = None,
    effect_sizes_summary: str | Path | None = None,
    grade: Mapping[str, Any] | None = None,
    risk_of_bias: Mapping[str, Any] | None = None,
) -> GradeResult:
    """The summary of findings of the tables step: read the results (paths), make it
    (:func:`grade_summary`), write ``out_json`` (``models/grade.json``) and ``out_csv``.

    ``domain_files`` maps each domain code to its ``overall.json``; the domain labels and the
    sample-size columns come from the ``codebook``, the measure from ``effect_sizes_summary``.
    """
    from intervention_meta.data.codebook import load_codebook
    from intervention_meta.io import read_json, write_json, write_table

    domain_files = dict(domain_files or {})
    cb = load_codebook(codebook) if codebook else None
    names: dict[str, str] = {}
    if cb is not None and domain_variable:
        from intervention_meta.outputs.tables import level_labels

        names = level_labels(codebook, domain_variable, list(domain_files))
    result = grade_summary(
        read_json(overall),
        pd.read_csv(effects, low_memory=False),
        grade=grade,
        risk_of_bias=risk_of_bias,
        bias=read_json(bias) if bias else None,
        domains={code: read_json(path) for code, path in domain_files.items()},
        domain_labels=names,
        domain_variable=domain_variable,
        labels=read_measure_labels(effect_sizes_summary),
        statistic_columns=cb.statistic_columns() if cb is not None else None,
    )
    write_json(result, out_json)
    write_table(result.to_frame(), out_csv)
    for row in result.rows:
        log.info(
            "GRADE %s: certainty %s (%s)",
            row.key,
            row.certainty_label,
            ", ".join(f"{r.domain} {r.rating}" for r in row.ratings),
        )
    return result


__all__ = [
    "ALL",
    "CERTAINTY",
    "DEFAULT_THRESHOLDS",
    "GRADE_DOMAINS",
    "BiasSummary",
    "GradeResult",
    "GradeSettings",
    "Rating",
    "SofRow",
    "absolute_effect",
    "apply_overrides",
    "certainty_level",
    "check_grade",
    "cohen_size",
    "grade_apa_table",
    "grade_rules",
    "grade_summary",
    "participants",
    "rate_imprecision",
    "rate_inconsistency",
    "rate_indirectness",
    "rate_publication_bias",
    "rate_risk_of_bias",
    "risk_of_bias_shares",
    "risk_per_1000",
    "run_grade",
    "sample_sizes",
    "study_weights",
]
