"""A simulated example literature: neighbourhood programmes for families, coded per the codebook.

The data are SIMULATED, not real studies. They come from a known three-level model, so every
step of the pipeline can be checked against the truth. The true effect of effect size i in study
j, as a standardised mean difference in the benefit direction (positive = the programme helps), is

.. math::

    \\delta_{ij} = \\beta_0 + \\sum_c \\beta_c x_{cj} + u_j + w_{ij}, \\qquad
    u_j \\sim N(0, \\sigma^2_{\\text{study}}), \\quad w_{ij} \\sim N(0, \\sigma^2_{\\text{es}}),

with :math:`x_{cj}` the 0/1 programme components of study j. Each effect is then *observed*: the
two groups' data are drawn from their sampling distributions given the group sizes and
:math:`\\delta_{ij}` (individual scores for continuous outcomes, binomial counts with a logit link
for dichotomous ones, with cluster effects in cluster-randomised studies and pre-test scores where
a pre-test is reported), and reported in one of the codebook's ``es_input`` forms (means and SDs,
t, F, p, d with SE or CI, 2x2 counts, odds ratio with CI, r, pre-post means, or a ready g), on the
measure's own scale and rounded as papers round.

Simplifications (documented in ``data/README.md``): the sampling errors of effect sizes of one
study are independent (as in the three-level model; real outcomes measured on the same families
are correlated), and quasi-experimental groups do not differ at baseline in expectation.

Example
-------
>>> import numpy as np
>>> lit = simulate_literature(np.random.default_rng(20261125))
>>> lit.write("data/raw")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import yaml
from scipy import stats

logger = logging.getLogger(__name__)

COMPONENTS: tuple[str, ...] = (
    "joint_effort",
    "positive_content_view",
    "parent_meetings",
    "co_production",
    "professional_led",
    "peer_support",
)

#: the RoB 2 domain judgements of each study (1 low, 2 some concerns, 3 high), D1 to D5
ROB2_DOMAINS: tuple[str, ...] = (
    "rob_d1_randomisation",
    "rob_d2_deviations",
    "rob_d3_missing_data",
    "rob_d4_measurement",
    "rob_d5_reporting",
)

STUDY_COLUMNS: tuple[str, ...] = (
    "study_id",
    "citation",
    "year",
    "country",
    "design",
    "cluster_randomised",
    "programme",
    "target_group",
    "setting",
    *COMPONENTS,
    "risk_of_bias",
    *ROB2_DOMAINS,
)

EFFECT_COLUMNS: tuple[str, ...] = (
    "study_id",
    "es_id",
    "outcome",
    "outcome_domain",
    "higher_is_worse",
    "informant",
    "followup_months",
    "es_input",
    "stat_direction",
    "n_int",
    "n_ctl",
    "n_total",
    "m_int",
    "sd_int",
    "m_ctl",
    "sd_ctl",
    "m_int_pre",
    "sd_int_pre",
    "m_ctl_pre",
    "sd_ctl_pre",
    "r_prepost",
    "t_value",
    "f_value",
    "p_value",
    "d_value",
    "d_is_g",
    "d_se",
    "d_ci_lower",
    "d_ci_upper",
    "events_int",
    "nonevents_int",
    "events_ctl",
    "nonevents_ctl",
    "or_value",
    "or_ci_lower",
    "or_ci_upper",
    "r_value",
    "cluster_size",
    "icc",
    "yi",
    "vi",
)

ES_INPUTS: tuple[str, ...] = (
    "means_sds",
    "t",
    "f",
    "p",
    "d_se",
    "d_ci",
    "or_2x2",
    "or_ci",
    "r",
    "prepost",
    "yi_vi",
)

#: Marginal prevalence of each component over programmes.
COMPONENT_PREVALENCE: Mapping[str, float] = MappingProxyType(
    {
        "joint_effort": 0.50,
        "positive_content_view": 0.55,
        "parent_meetings": 0.50,
        "co_production": 0.40,
        "professional_led": 0.55,
        "peer_support": 0.40,
    }
)

#: Correlations of the latent normal variables behind the components (Gaussian copula). Joint
#: effort goes with co-production and against purely professional-led sessions, parent meetings
#: with peer support, co-produced content is more often viewed positively. The components with a
#: true effect are kept (nearly) independent of each other, so single-component models recover them.
COMPONENT_LATENT_CORRELATION: Mapping[tuple[str, str], float] = MappingProxyType(
    {
        ("joint_effort", "co_production"): 0.55,
        ("joint_effort", "professional_led"): -0.35,
        ("parent_meetings", "peer_support"): 0.55,
        ("positive_content_view", "co_production"): 0.25,
        ("professional_led", "peer_support"): -0.20,
    }
)

#: Share of studies per design (quotas, then shuffled).
DESIGN_SHARES: Mapping[str, float] = MappingProxyType({"rct": 0.55, "quasi": 0.30, "prepost": 0.15})
#: Share of studies that are cluster-randomised (all of them randomised trials).
CLUSTER_SHARE = 0.13
#: Median planned group size (log-normal, sdlog 0.5, within 30-200; 0-15% attrition per outcome).
GROUP_SIZE_MEDIAN = 95
#: Probabilities of 1, 2, ..., 8 effect sizes per study (mean 4.1).
ES_PER_STUDY_PROBS: tuple[float, ...] = (0.10, 0.14, 0.17, 0.19, 0.16, 0.11, 0.07, 0.06)

#: How often a row uses the study's usual reporting form, and the forms drawn otherwise.
_PRIMARY_SHARE = 0.65
_PRIMARY_FORMS = {
    "means_sds": 0.60,
    "t": 0.12,
    "p": 0.03,
    "d_se": 0.08,
    "d_ci": 0.08,
    "r": 0.05,
    "yi_vi": 0.04,
}
_OTHER_FORMS = {
    "means_sds": 0.20,
    "t": 0.10,
    "f": 0.10,
    "p": 0.10,
    "d_se": 0.06,
    "d_ci": 0.06,
    "or_2x2": 0.14,
    "or_ci": 0.10,
    "r": 0.04,
    "prepost": 0.06,
    "yi_vi": 0.04,
}
#: Forms a cluster-randomised study uses (naive group statistics, corrected by the design effect).
_CLUSTER_FORMS = ("means_sds", "t")
_BINARY_FORMS = ("or_2x2", "or_ci")
_POST_FORMS = ("means_sds", "t", "f", "p", "d_se", "d_ci", "r", "yi_vi")

_LOGIT_SCALE = math.pi / math.sqrt(3.0)  # d -> log odds ratio (logistic distribution)

_COUNTRIES = (
    "Netherlands",
    "Belgium",
    "United Kingdom",
    "United States",
    "Australia",
    "Canada",
    "Sweden",
    "Germany",
    "Norway",
    "Ireland",
)
_TARGET_GROUPS = ("universal", "at_risk", "young_parents", "migrant")
_SETTINGS = ("urban", "rural", "mixed")
_NAME_FIRST = (
    "Kite",
    "Lantern",
    "Harbour",
    "Willow",
    "Bridge",
    "Open Door",
    "Cornerstone",
    "Meadow",
    "Beacon",
    "Hearth",
)
_NAME_SECOND = (
    "Families",
    "Neighbours",
    "Parents Together",
    "Street Network",
    "Family Circle",
    "Parent Cafe",
)

_DOMAINS = (
    "social_support",
    "parenting_stress",
    "parenting_competence",
    "child_wellbeing",
    "social_cohesion",
)
_DOMAIN_WEIGHTS = (0.26, 0.26, 0.20, 0.14, 0.14)
_HIGHER_IS_WORSE_DOMAINS = frozenset({"parenting_stress"})


@dataclass(frozen=True)
class _Measure:
    """An outcome measure: a continuous scale (mean, sd) or a dichotomous one (p_ctl)."""

    name: str
    informant: str
    mean: float = 0.0
    sd: float = 1.0
    p_ctl: float | None = None  # control-group event probability for a dichotomous outcome
    higher_is_worse_override: bool = False  # coded in the row's higher_is_worse column
    weight: float = 1.0  # relative frequency among the domain's measures

    @property
    def binary(self) -> bool:
        return self.p_ctl is not None


_MEASURES: Mapping[str, tuple[_Measure, ...]] = MappingProxyType(
    {
        "social_support": (
            _Measure("Perceived social support scale", "parent", 5.1, 1.1),
            _Measure("Practical support received", "parent", 3.4, 0.8),
            _Measure(
                "Loneliness scale", "parent", 2.4, 0.7, higher_is_worse_override=True, weight=0.35
            ),
            _Measure("Has someone to ask for help with the children", "parent", p_ctl=0.55),
        ),
        "parenting_stress": (
            _Measure("Parenting stress index short form total", "parent", 82.0, 17.0),
            _Measure("Parental distress subscale", "parent", 27.0, 7.0),
            _Measure("Parenting stress in the clinical range", "parent", p_ctl=0.30),
        ),
        "parenting_competence": (
            _Measure("Parenting sense of competence", "parent", 64.0, 9.0),
            _Measure("Observed parental sensitivity", "observation", 5.0, 1.2),
            _Measure("Feels confident as a parent", "parent", p_ctl=0.50),
        ),
        "child_wellbeing": (
            _Measure("Child wellbeing questionnaire", "child", 50.0, 10.0),
            _Measure("Child prosocial behaviour", "professional", 7.2, 1.9),
            _Measure("Child wellbeing in the normal range", "parent", p_ctl=0.65),
        ),
        "social_cohesion": (
            _Measure("Neighbourhood social cohesion", "parent", 3.3, 0.7),
            _Measure("Collective efficacy", "parent", 3.1, 0.6),
            _Measure("Knows at least five neighbours by name", "parent", p_ctl=0.40),
        ),
    }
)


@dataclass(frozen=True)
class TrueModel:
    """The true parameter values of the three-level model (Hedges' g scale, benefit direction).

    Attributes
    ----------
    intercept : the true effect of a programme without any of the components
    components : true effect of each component (added to the intercept when present)
    sigma2 : variance components by level: ``study_id`` (between studies, :math:`u_j`) and
        ``es_id`` (between effect sizes within a study, :math:`w_{ij}`)
    """

    intercept: float = 0.05
    components: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType(
            {
                "joint_effort": 0.25,
                "positive_content_view": 0.20,
                "parent_meetings": 0.20,
                "co_production": 0.0,
                "professional_led": 0.0,
                "peer_support": 0.0,
            }
        )
    )
    sigma2: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"study_id": 0.010, "es_id": 0.006})
    )

    def __post_init__(self) -> None:
        if set(self.components) != set(COMPONENTS):
            raise ValueError(f"components must be exactly {COMPONENTS}")
        if set(self.sigma2) != {"study_id", "es_id"} or min(self.sigma2.values()) < 0:
            raise ValueError("sigma2 needs non-negative 'study_id' and 'es_id' entries")

    def to_dict(self) -> dict:
        return {
            "intercept": self.intercept,
            "components": {c: self.components[c] for c in COMPONENTS},
            "sigma2": {k: self.sigma2[k] for k in ("study_id", "es_id")},
        }


@dataclass(frozen=True)
class SimulatedLiterature:
    """A simulated literature as coded data plus the truth it was drawn from.

    Attributes
    ----------
    studies, effects : the coded tables exactly as written to ``studies.csv`` / ``effects.csv``:
        every cell a string ("" = blank), columns in codebook order
    truth : seed, model, true parameter values, per study the true ``u`` and components, per
        effect size the true ``delta`` and the simulated study estimate ``g`` with variance ``v``
        (what the study's own data give, before rounding and reporting)
    """

    studies: pd.DataFrame
    effects: pd.DataFrame
    truth: dict

    def to_dict(self) -> dict:
        return {
            "studies": self.studies.to_dict(orient="records"),
            "effects": self.effects.to_dict(orient="records"),
            "truth": self.truth,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per effect size with its true values: the data for checking a fitted model.

        Columns ``study_id, es_id, delta, g, v, u`` and the study's true components (0/1, also
        where the coded file has the missing code).
        """
        rows = []
        for es_id, e in self.truth["effects"].items():
            s = self.truth["studies"][e["study_id"]]
            rows.append(
                {
                    "study_id": e["study_id"],
                    "es_id": es_id,
                    "delta": e["delta"],
                    "g": e["g"],
                    "v": e["v"],
                    "u": s["u"],
                    **s["components"],
                }
            )
        return pd.DataFrame(rows)

    def write(self, outdir: str | Path) -> dict[str, Path]:
        """Write ``studies.csv``, ``effects.csv`` and ``truth.yaml`` into ``outdir`` (created).

        Same literature, same bytes: fixed column order, values already rendered as strings,
        ``'\\n'`` line endings, UTF-8.
        """
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        paths = {
            "studies": outdir / "studies.csv",
            "effects": outdir / "effects.csv",
            "truth": outdir / "truth.yaml",
        }
        _write_csv(self.studies, paths["studies"])
        _write_csv(self.effects, paths["effects"])
        paths["truth"].write_text(render_truth(self.truth), encoding="utf-8", newline="\n")
        logger.info(
            "wrote %d studies, %d effect sizes to %s", len(self.studies), len(self.effects), outdir
        )
        return paths


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(frame.columns)
        writer.writerows(frame.itertuples(index=False, name=None))


_TRUTH_HEADER = """\
# SIMULATED DATA -- NOT REAL STUDIES.
# The truth behind data/raw/studies.csv and data/raw/effects.csv, written by
#   python -m intervention_meta simulate --seed {seed} --out <folder>
# (intervention_meta.example.literature; see data/README.md). The citations, programmes and
# numbers in those files are invented; they were drawn from the model below.
#
# Model (standardised mean difference, Hedges' g scale, positive = benefit):
#   delta_ij = intercept + sum_c components[c] * x_cj + u_j + w_ij
#   u_j ~ N(0, sigma2.study_id)   (between studies)
#   w_ij ~ N(0, sigma2.es_id)     (between effect sizes within a study)
# studies.<id>: u (true u_j), mu (intercept + components + u_j), components (true x_cj, also
#   where the coded file has -99), and where used the true pre-post correlation, cluster size, ICC.
# effects.<id>: delta (true delta_ij), g and v (the estimate and sampling variance the study's
#   simulated data give, in the benefit direction, before rounding and reporting; v includes the
#   design effect of cluster-randomised studies).
"""


def render_truth(truth: Mapping) -> str:
    """The truth as YAML text with its explanatory header (stable: same truth, same text)."""
    body = yaml.safe_dump(dict(truth), sort_keys=False, default_flow_style=False, width=100)
    return _TRUTH_HEADER.format(seed=truth.get("seed")) + body


def simulate_literature(
    rng: np.random.Generator,
    n_studies: int = 30,
    model: TrueModel | None = None,
    seed: int | None = None,
) -> SimulatedLiterature:
    """Simulate a coded literature of neighbourhood programmes for families (three-level model).

    Parameters
    ----------
    rng : the only source of randomness
    n_studies : number of studies (each with 1 to 8 effect sizes, about 4.1 on average)
    model : true parameter values; :class:`TrueModel` defaults if omitted
    seed : recorded in the truth (the seed ``rng`` was made from), for the reader's information

    Returns
    -------
    SimulatedLiterature
        the coded ``studies`` and ``effects`` tables and the ``truth``

    Notes
    -----
    Study level: the six components from a Gaussian copula (:data:`COMPONENT_PREVALENCE`,
    :data:`COMPONENT_LATENT_CORRELATION`); designs by quota (:data:`DESIGN_SHARES`), a share of
    the randomised trials cluster-randomised (cluster size 8-20, ICC 0.02-0.10); group sizes
    log-normal around 95 per group, within 30-200. Effect level: outcome domain and measure,
    follow-up, informant, attrition per outcome, and a reporting form (mostly the study's usual
    one). Each form appears at least once when there are enough rows. Missing codes are used as
    coders use them: one or two components, a few informants and follow-ups (``-99``), a country
    (``NR``), a target group and a setting (``-99``).
    """
    model = model or TrueModel()
    if n_studies < 1:
        raise ValueError("n_studies must be at least 1")
    studies = _draw_studies(rng, n_studies, model)
    rows = _draw_effect_plans(rng, studies, model)
    _assign_forms(rng, studies, rows)
    _assign_outcomes(rng, studies, rows)
    for row in rows:
        _observe(rng, studies[row["study_index"]], row)
    _ensure_post_forms(rng, studies, rows)
    _apply_missing_codes(rng, studies, rows)
    _code_rob2_domains(rng, studies)

    study_frame = pd.DataFrame([s["coded"] for s in studies], columns=list(STUDY_COLUMNS))
    effect_frame = pd.DataFrame([r["coded"] for r in rows], columns=list(EFFECT_COLUMNS))
    study_frame = study_frame.fillna("").astype(str)
    effect_frame = effect_frame.fillna("").astype(str)
    truth = _truth(seed, n_studies, model, studies, rows)
    logger.info("simulated %d studies with %d effect sizes", len(studies), len(rows))
    return SimulatedLiterature(studies=study_frame, effects=effect_frame, truth=truth)


# ----------------------------------------------------------------------------- study level
def _quota(rng: np.random.Generator, shares: Mapping[str, float], n: int) -> list[str]:
    """``n`` labels in the given shares (largest remainder), shuffled."""
    raw = {k: v * n for k, v in shares.items()}
    counts = {k: int(math.floor(x)) for k, x in raw.items()}
    rest = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (counts[k] - raw[k], list(raw).index(k)))[:rest]:
        counts[k] += 1
    labels = [k for k in shares for _ in range(counts[k])]
    return [labels[i] for i in rng.permutation(n)]


def _latent_correlation() -> np.ndarray:
    R = np.eye(len(COMPONENTS))
    for (a, b), rho in COMPONENT_LATENT_CORRELATION.items():
        i, j = COMPONENTS.index(a), COMPONENTS.index(b)
        R[i, j] = R[j, i] = rho
    return R


def _draw_components(rng: np.random.Generator, n: int) -> np.ndarray:
    L = np.linalg.cholesky(_latent_correlation())
    z = rng.standard_normal((n, len(COMPONENTS))) @ L.T
    cut = stats.norm.ppf([COMPONENT_PREVALENCE[c] for c in COMPONENTS])
    return (z < cut).astype(int)


def _draw_studies(rng: np.random.Generator, n: int, model: TrueModel) -> list[dict]:
    x = _draw_components(rng, n)
    beta = np.array([model.components[c] for c in COMPONENTS])
    u = rng.normal(0.0, math.sqrt(model.sigma2["study_id"]), size=n)
    designs = _quota(rng, DESIGN_SHARES, n)
    rct = [j for j in range(n) if designs[j] == "rct"]
    n_cluster = min(len(rct), int(round(CLUSTER_SHARE * n)))
    cluster = set(rng.choice(rct, size=n_cluster, replace=False).tolist()) if n_cluster else set()
    names = [f"{a} {b}" for a in _NAME_FIRST for b in _NAME_SECOND]
    name_ix = rng.choice(len(names), size=n, replace=n > len(names))
    years = np.sort(rng.integers(1998, 2025, size=n))  # study codes in order of publication
    studies = []
    for j in range(n):
        design = designs[j]
        is_cluster = j in cluster
        rob_levels, rob_p = {
            "rct": ((1, 2, 3), (0.55, 0.35, 0.10)),
            "quasi": ((1, 2, 3), (0.05, 0.55, 0.40)),
            "prepost": ((1, 2, 3), (0.0, 0.45, 0.55)),
        }[design]
        planned = GROUP_SIZE_MEDIAN * math.exp(0.5 * rng.standard_normal())
        base_n = int(np.clip(round(planned), 30, 200))
        study = {
            "index": j,
            "study_id": f"S{j + 1:02d}",
            "design": design,
            "cluster": is_cluster,
            "x": x[j],
            "u": float(u[j]),
            "mu": float(model.intercept + x[j] @ beta + u[j]),
            "base_n": base_n,
            "ratio_ctl": float(rng.uniform(0.8, 1.15)),
            "cluster_size": int(rng.integers(8, 21)) if is_cluster else None,
            "icc": float(rng.uniform(0.02, 0.10)) if is_cluster else None,
            "reports_icc": bool(rng.random() < 0.75) if is_cluster else None,
            "rho_prepost": float(rng.uniform(0.40, 0.75)),
            "reports_r_prepost": bool(rng.random() < 0.5),
            "k": int(rng.choice(np.arange(1, 9), p=ES_PER_STUDY_PROBS)),
            "domains": _draw_domains(rng),
            "primary_form": (
                "prepost"
                if design == "prepost"
                else "means_sds"
                if is_cluster
                else str(rng.choice(list(_PRIMARY_FORMS), p=_probs(_PRIMARY_FORMS)))
            ),
        }
        study["coded"] = {
            "study_id": study["study_id"],
            "citation": f"Simulated study {j + 1:02d} ({years[j]})",
            "year": str(years[j]),
            "country": str(rng.choice(_COUNTRIES)),
            "design": design,
            "cluster_randomised": "1" if is_cluster else "0",
            "programme": names[name_ix[j]],
            "target_group": str(rng.choice(_TARGET_GROUPS, p=(0.35, 0.35, 0.15, 0.15))),
            "setting": str(rng.choice(_SETTINGS, p=(0.65, 0.15, 0.20))),
            **{c: str(x[j, i]) for i, c in enumerate(COMPONENTS)},
            "risk_of_bias": str(rng.choice(rob_levels, p=rob_p)),
        }
        studies.append(study)
    return studies


def _probs(weights: Mapping[str, float]) -> np.ndarray:
    p = np.array(list(weights.values()), dtype=float)
    return p / p.sum()


def _draw_domains(rng: np.random.Generator) -> list[str]:
    k = int(rng.choice([1, 2, 3], p=(0.30, 0.45, 0.25)))
    chosen = rng.choice(len(_DOMAINS), size=k, replace=False, p=_DOMAIN_WEIGHTS)
    return [_DOMAINS[i] for i in sorted(chosen)]


# ----------------------------------------------------------------------------- effect level
def _draw_effect_plans(
    rng: np.random.Generator, studies: list[dict], model: TrueModel
) -> list[dict]:
    rows = []
    sd_w = math.sqrt(model.sigma2["es_id"])
    for s in studies:
        for i in range(s["k"]):
            w = float(rng.normal(0.0, sd_w))
            rows.append(
                {
                    "study_index": s["index"],
                    "es_id": f"{s['study_id']}-{i + 1}",
                    "w": w,
                    "delta": s["mu"] + w,
                }
            )
    return rows


def _eligible_forms(study: dict) -> tuple[str, ...]:
    if study["cluster"]:
        return _CLUSTER_FORMS
    return ES_INPUTS


def _assign_forms(rng: np.random.Generator, studies: list[dict], rows: list[dict]) -> None:
    """A reporting form per row: mostly the study's usual one; every form at least once."""
    for row in rows:
        s = studies[row["study_index"]]
        allowed = _eligible_forms(s)
        if rng.random() < _PRIMARY_SHARE:
            form = s["primary_form"]
        elif s["design"] == "prepost":
            form = "means_sds"
        else:
            other = {f: w for f, w in _OTHER_FORMS.items() if f in allowed}
            form = str(rng.choice(list(other), p=_probs(other)))
        row["form"] = form
    present = {r["form"] for r in rows}
    for form in ES_INPUTS:
        if form in present:
            continue
        counts = pd.Series([r["form"] for r in rows]).value_counts()
        candidates = [
            k
            for k, r in enumerate(rows)
            if form in _eligible_forms(studies[r["study_index"]]) and counts[r["form"]] > 1
        ]
        if candidates:
            rows[candidates[int(rng.integers(len(candidates)))]]["form"] = form
            present.add(form)
    # pre-post correlation: reported by some studies with pre-post rows, not by others
    prepost = sorted({r["study_index"] for r in rows if r["form"] == "prepost"})
    flags = {studies[j]["reports_r_prepost"] for j in prepost}
    if len(prepost) >= 2 and len(flags) == 1:
        j = prepost[int(rng.integers(len(prepost)))]
        studies[j]["reports_r_prepost"] = not studies[j]["reports_r_prepost"]


_FOLLOWUPS = (0, 3, 6, 12, 24)
_FOLLOWUP_PROBS = (0.50, 0.10, 0.18, 0.15, 0.07)


def _assign_outcomes(rng: np.random.Generator, studies: list[dict], rows: list[dict]) -> None:
    """Domain, measure and follow-up per row: a measure of the study's domains that fits the form
    (dichotomous for odds ratios), no measure twice at one time point when avoidable, and at least
    one scale coded with the row override ``higher_is_worse = 1``."""
    used: dict[int, set] = {}
    for row in rows:
        s = studies[row["study_index"]]
        binary = row["form"] in _BINARY_FORMS
        seen = used.setdefault(s["index"], set())
        options = [
            (domain, m, f)
            for domain in s["domains"]
            for m in _MEASURES[domain]
            if m.binary == binary
            for f in _FOLLOWUPS
        ]
        weights = np.array(
            [
                _DOMAIN_WEIGHTS[_DOMAINS.index(d)]
                * m.weight
                / sum(o.weight for o in _MEASURES[d] if o.binary == binary)
                * _FOLLOWUP_PROBS[_FOLLOWUPS.index(f)]
                * (1e-6 if (m.name, f) in seen else 1.0)
                for d, m, f in options
            ]
        )
        domain, measure, followup = options[
            int(rng.choice(len(options), p=weights / weights.sum()))
        ]
        seen.add((measure.name, followup))
        row.update(domain=domain, measure=measure, followup=followup)
    if not any(r["measure"].higher_is_worse_override for r in rows):
        lonely = next(m for m in _MEASURES["social_support"] if m.higher_is_worse_override)
        candidates = [k for k, r in enumerate(rows) if r["form"] not in _BINARY_FORMS]
        social = [k for k in candidates if rows[k]["domain"] == "social_support"]
        pool = social or candidates
        if pool:
            k = pool[int(rng.integers(len(pool)))]
            rows[k].update(domain="social_support", measure=lonely)


@dataclass(frozen=True)
class _Draw:
    """What the data of one effect size are drawn from: the study, the measure, the true
    difference on the measure's own scale and the group sizes."""

    study: dict
    measure: _Measure
    raw_delta: float
    n_int: int
    n_ctl: int

    def unpack(self) -> tuple[dict, _Measure, float, int, int]:
        return self.study, self.measure, self.raw_delta, self.n_int, self.n_ctl


def _observe(rng: np.random.Generator, study: dict, row: dict) -> None:
    """Draw the groups' data for one effect size and code the row in its reporting form."""
    form = row["form"]
    measure = row["measure"]
    worse = measure.higher_is_worse_override or row["domain"] in _HIGHER_IS_WORSE_DOMAINS
    sign = -1.0 if worse else 1.0
    raw_delta = sign * row["delta"]  # on the measure's own scale
    n_int, n_ctl = _group_sizes(rng, study)
    base = {
        "study_id": study["study_id"],
        "es_id": row["es_id"],
        "outcome": measure.name,
        "outcome_domain": row["domain"],
        "higher_is_worse": "1" if measure.higher_is_worse_override else "",
        "informant": measure.informant,
        "followup_months": str(row["followup"]),
        "es_input": form,
    }
    if study["cluster"]:
        base["cluster_size"] = str(study["cluster_size"])
        if study["reports_icc"]:
            base["icc"] = _fmt(study["icc"], 3)
    coded = dict(base)
    draw = _Draw(study, measure, raw_delta, n_int, n_ctl)
    if measure.binary:
        g, v = _observe_binary(rng, draw, form, coded)
    elif form == "prepost":
        g, v = _observe_prepost(rng, draw, coded)
    else:
        post = _observe_post(rng, draw)
        g, v = post["g"], post["v"]
        row["post"] = post
        row["base"] = base
        _render_post(rng, row, form)
        coded = row["coded"]
    row["g"] = sign * g
    row["v"] = v
    row["coded"] = coded


def _ensure_post_forms(rng: np.random.Generator, studies: list[dict], rows: list[dict]) -> None:
    """Re-code a row in any post-test form that no row uses (e.g. when every p was < .001)."""
    for form in _POST_FORMS:
        forms = [r["coded"]["es_input"] for r in rows]
        if form in forms:
            continue
        candidates = [
            k
            for k, r in enumerate(rows)
            if "post" in r
            and form in _eligible_forms(studies[r["study_index"]])
            and forms.count(forms[k]) > 1
            and (form != "p" or _p_reportable(r["post"]["p"]))
        ]
        if candidates:
            _render_post(rng, rows[candidates[int(rng.integers(len(candidates)))]], form)


def _group_sizes(rng: np.random.Generator, study: dict) -> tuple[int, int]:
    if study["cluster"]:
        m = study["cluster_size"]
        k_int = max(3, int(round(study["base_n"] / m)))
        k_ctl = max(3, int(round(study["base_n"] * study["ratio_ctl"] / m)))
        return k_int * m, k_ctl * m
    n_int = study["base_n"] * (1.0 - rng.uniform(0.0, 0.15))
    n_ctl = study["base_n"] * study["ratio_ctl"] * (1.0 - rng.uniform(0.0, 0.15))
    return max(25, int(round(n_int))), max(25, int(round(n_ctl)))


def _draw_scores(
    rng: np.random.Generator, study: dict, n: int, mean: float, sd: float
) -> np.ndarray:
    """Individual scores of one group; in a cluster-randomised study with cluster effects."""
    if not study["cluster"]:
        return rng.normal(mean, sd, size=n)
    m, icc = study["cluster_size"], study["icc"]
    cluster_effects = rng.normal(0.0, sd * math.sqrt(icc), size=n // m)
    return mean + np.repeat(cluster_effects, m) + rng.normal(0.0, sd * math.sqrt(1 - icc), size=n)


def _hedges_j(df: float) -> float:
    return 1.0 - 3.0 / (4.0 * df - 1.0)


def _observe_post(rng: np.random.Generator, draw: _Draw) -> dict:
    """Post-test scores of both groups, summarised; g and v in the measure's own direction."""
    study, measure, raw_delta, n_int, n_ctl = draw.unpack()
    y_int = _draw_scores(rng, study, n_int, measure.mean + raw_delta * measure.sd, measure.sd)
    y_ctl = _draw_scores(rng, study, n_ctl, measure.mean, measure.sd)
    m1, m2 = float(y_int.mean()), float(y_ctl.mean())
    s1, s2 = float(y_int.std(ddof=1)), float(y_ctl.std(ddof=1))
    df = n_int + n_ctl - 2
    sp = math.sqrt(((n_int - 1) * s1**2 + (n_ctl - 1) * s2**2) / df)
    d = (m1 - m2) / sp
    g = _hedges_j(df) * d
    t = d / math.sqrt(1.0 / n_int + 1.0 / n_ctl)
    return {
        "n_int": n_int,
        "n_ctl": n_ctl,
        "m1": m1,
        "m2": m2,
        "s1": s1,
        "s2": s2,
        "df": df,
        "d": d,
        "g": g,
        "v": _smd_variance(g, n_int, n_ctl) * _design_effect(study),
        "t": t,
        "p": float(2.0 * stats.t.sf(abs(t), df)),
    }


def _p_reportable(p: float) -> bool:
    """A p value a paper gives exactly (to 3 decimals, not 0 and not 1)."""
    return 0.001 <= round(p, 3) <= 0.999


def _render_post(rng: np.random.Generator, row: dict, form: str) -> None:
    """Code a post-test comparison in ``form``, rounded as papers round."""
    st = row["post"]
    n_int, n_ctl = st["n_int"], st["n_ctl"]
    ns = {"n_int": str(n_int), "n_ctl": str(n_ctl)}
    if form == "p" and not _p_reportable(st["p"]):
        form = "t"  # a paper gives "p < .001"; the coder takes the t statistic
    coded = dict(row["base"], es_input=form)
    if form == "means_sds":
        coded.update(
            ns,
            m_int=_fmt(st["m1"], 2),
            sd_int=_fmt(st["s1"], 2),
            m_ctl=_fmt(st["m2"], 2),
            sd_ctl=_fmt(st["s2"], 2),
        )
    elif form == "t":
        coded.update(ns, t_value=_fmt(st["t"], 2))
    elif form in ("f", "p"):
        coded.update(ns, stat_direction="1" if st["d"] >= 0 else "-1")
        if form == "f":
            coded["f_value"] = _fmt(st["t"] ** 2, 2)
        else:
            coded["p_value"] = _fmt(st["p"], 3)
    elif form in ("d_se", "d_ci"):
        is_g = bool(rng.random() < 0.5)
        value = st["g"] if is_g else st["d"]
        se = math.sqrt(_smd_variance(value, n_int, n_ctl))
        coded.update(d_value=_fmt(value, 2), d_is_g="1" if is_g else "0")
        if not is_g:  # the small-sample correction needs the group sizes (codebook, d_is_g)
            coded.update(ns)
        if form == "d_se":
            coded["d_se"] = _fmt(se, 3)
        else:
            coded.update(
                d_ci_lower=_fmt(value - 1.96 * se, 2), d_ci_upper=_fmt(value + 1.96 * se, 2)
            )
    elif form == "r":
        r = st["t"] / math.sqrt(st["t"] ** 2 + st["df"])
        coded.update(r_value=_fmt(r, 3), n_total=str(n_int + n_ctl))
    elif form == "yi_vi":
        coded.update(yi=_fmt(st["g"], 3), vi=_fmt(_smd_variance(st["g"], n_int, n_ctl), 4))
    else:  # pragma: no cover - guarded by the form assignment
        raise ValueError(f"form {form!r} is not a post-test form")
    row["coded"] = coded


def _observe_prepost(rng: np.random.Generator, draw: _Draw, coded: dict) -> tuple[float, float]:
    """Pre- and post-test scores; g is Morris's (2008) d_ppc2 with its variance at the true rho.

    Not used for cluster-randomised studies (their forms are post-test group statistics).
    """
    study, measure, raw_delta, n_int, n_ctl = draw.unpack()
    rho = study["rho_prepost"]
    sd = measure.sd
    cov = np.array([[1.0, rho], [rho, 1.0]]) * sd * sd
    L = np.linalg.cholesky(cov)

    def scores(n: int, shift: float) -> np.ndarray:
        y = rng.standard_normal((n, 2)) @ L.T + measure.mean
        y[:, 1] += shift
        return y

    y_int = scores(n_int, raw_delta * sd)
    y_ctl = scores(n_ctl, 0.0)
    pre1, post1 = y_int.mean(axis=0)
    pre2, post2 = y_ctl.mean(axis=0)
    s1_pre, s2_pre = float(y_int[:, 0].std(ddof=1)), float(y_ctl[:, 0].std(ddof=1))
    df = n_int + n_ctl - 2
    sd_pre = math.sqrt(((n_int - 1) * s1_pre**2 + (n_ctl - 1) * s2_pre**2) / df)
    cp = _hedges_j(df)
    g = cp * ((post1 - pre1) - (post2 - pre2)) / sd_pre
    n_sum, n_prod = n_int + n_ctl, n_int * n_ctl
    v = (
        2.0
        * cp**2
        * (1.0 - rho)
        * (n_sum / n_prod)
        * (df / (n_sum - 4.0))
        * (1.0 + g**2 / (2.0 * (1.0 - rho) * n_sum / n_prod))
        - g**2
    )
    coded.update(
        m_int_pre=_fmt(pre1, 2),
        sd_int_pre=_fmt(s1_pre, 2),
        m_int=_fmt(post1, 2),
        m_ctl_pre=_fmt(pre2, 2),
        sd_ctl_pre=_fmt(s2_pre, 2),
        m_ctl=_fmt(post2, 2),
        n_int=str(n_int),
        n_ctl=str(n_ctl),
    )
    if study["reports_r_prepost"]:
        r = np.corrcoef(np.vstack([y_int - y_int.mean(0), y_ctl - y_ctl.mean(0)]).T)[0, 1]
        coded["r_prepost"] = _fmt(float(r), 2)
    return float(g), float(v)


def _observe_binary(
    rng: np.random.Generator, draw: _Draw, form: str, coded: dict
) -> tuple[float, float]:
    """Event counts with a logit link: log OR = d * pi / sqrt(3); g and v on the d scale."""
    _, measure, raw_delta, n_int, n_ctl = draw.unpack()
    logit_ctl = math.log(measure.p_ctl / (1.0 - measure.p_ctl))
    p_int = 1.0 / (1.0 + math.exp(-(logit_ctl + raw_delta * _LOGIT_SCALE)))
    while True:  # no zero cells (a paper with one would not be coded as an OR with CI)
        a = int(rng.binomial(n_int, p_int))
        c = int(rng.binomial(n_ctl, measure.p_ctl))
        b, d = n_int - a, n_ctl - c
        if min(a, b, c, d) > 0:
            break
    log_or = math.log(a * d / (b * c))
    var_log_or = 1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d
    if form == "or_2x2":
        coded.update(
            events_int=str(a), nonevents_int=str(b), events_ctl=str(c), nonevents_ctl=str(d)
        )
    else:
        half = 1.96 * math.sqrt(var_log_or)
        coded.update(
            or_value=_fmt(math.exp(log_or), 2),
            or_ci_lower=_fmt(math.exp(log_or - half), 2),
            or_ci_upper=_fmt(math.exp(log_or + half), 2),
        )
    return log_or / _LOGIT_SCALE, var_log_or / _LOGIT_SCALE**2


def _smd_variance(d: float, n1: int, n2: int) -> float:
    """Large-sample variance of a standardised mean difference (metafor ``vtype="LS"``)."""
    return 1.0 / n1 + 1.0 / n2 + d * d / (2.0 * (n1 + n2))


def _design_effect(study: dict) -> float:
    if not study["cluster"]:
        return 1.0
    return 1.0 + (study["cluster_size"] - 1) * study["icc"]


def _fmt(x: float, decimals: int) -> str:
    """Round half to even at ``decimals`` and render without a negative zero."""
    text = f"{x:.{decimals}f}"
    if float(text) == 0.0:
        text = f"{0.0:.{decimals}f}"
    return text


# ----------------------------------------------------------------------------- missing codes
def _apply_missing_codes(rng: np.random.Generator, studies: list[dict], rows: list[dict]) -> None:
    """Code some non-required values as not reported, as coders do."""
    n = len(studies)
    picks = rng.permutation(n)
    # one component not reported in one or two studies (the truth keeps the real value)
    for j in picks[: 2 if n >= 10 else 1]:
        c = COMPONENTS[int(rng.integers(3, len(COMPONENTS)))]
        studies[j]["coded"][c] = "-99"
        studies[j]["missing_component"] = c
    studies[int(picks[-1])]["coded"]["country"] = "NR"
    studies[int(picks[-2 % n])]["coded"]["target_group"] = "-99"
    studies[int(picks[-3 % n])]["coded"]["setting"] = "-99"
    for row in rows:
        if rng.random() < 0.05:
            row["coded"]["informant"] = "-99"
        if rng.random() < 0.05:
            row["coded"]["followup_months"] = "-99"


# ----------------------------------------------------------------------------- risk of bias
#: how likely each RoB 2 domain is to be the one with concerns: randomised trials spread their
#: concerns over the domains; other designs have them mostly in D1 (no random allocation)
_ROB2_DOMAIN_WEIGHTS = {
    "rct": (0.15, 0.25, 0.25, 0.20, 0.15),
    "other": (0.60, 0.10, 0.10, 0.10, 0.10),
}


def _code_rob2_domains(rng: np.random.Generator, studies: list[dict]) -> None:
    """Code the five RoB 2 domains of each study so that the coded overall ``risk_of_bias``
    follows from them by the RoB 2 algorithm (Sterne et al. 2019): all domains low -> low (1);
    any domain high -> high (3); otherwise some concerns (2).

    Drawn after everything else, so the other columns (and the truth) are those of the same seed
    without the domains. Low: every domain 1. Some concerns: 1 to 3 domains 2, the rest 1. High:
    1 or 2 domains 3, each other domain 2 with probability 0.4, else 1. Which domains is drawn
    with :data:`_ROB2_DOMAIN_WEIGHTS`.
    """
    n_domains = len(ROB2_DOMAINS)
    for study in studies:
        overall = study["coded"]["risk_of_bias"]
        weights = np.array(_ROB2_DOMAIN_WEIGHTS["rct" if study["design"] == "rct" else "other"])
        codes = np.ones(n_domains, dtype=int)
        if overall == "2":
            m = int(rng.choice([1, 2, 3], p=(0.5, 0.35, 0.15)))
            codes[rng.choice(n_domains, size=m, replace=False, p=weights)] = 2
        elif overall == "3":
            m = int(rng.choice([1, 2], p=(0.75, 0.25)))
            high = rng.choice(n_domains, size=m, replace=False, p=weights)
            concerns = rng.random(n_domains) < 0.4
            codes[concerns] = 2
            codes[high] = 3
        elif overall != "1":  # not assessed: no domain judgements either
            study["coded"].update(dict.fromkeys(ROB2_DOMAINS, "-99"))
            continue
        study["coded"].update({d: str(c) for d, c in zip(ROB2_DOMAINS, codes, strict=True)})


def rob2_overall(domains: np.ndarray) -> np.ndarray:
    """The RoB 2 overall judgement (1 low, 2 some concerns, 3 high) of each row of ``domains``
    (studies x domains, codes 1-3): high if any domain is high, low if all are low, else some
    concerns (the algorithm's default; Sterne et al. 2019)."""
    domains = np.asarray(domains, dtype=int)
    return np.where((domains == 3).any(axis=1), 3, np.where((domains == 1).all(axis=1), 1, 2))


# ----------------------------------------------------------------------------- truth
def _r6(x: float) -> float:
    return float(round(float(x), 6))


def _truth(
    seed: int | None, n_studies: int, model: TrueModel, studies: list[dict], rows: list[dict]
) -> dict:
    return {
        "simulated": True,
        "note": "SIMULATED DATA, NOT REAL STUDIES",
        "seed": seed,
        "n_studies": n_studies,
        "n_effects": len(rows),
        "model": {
            "formula": "delta_ij = intercept + sum_c components[c] * x_cj + u_j + w_ij",
            "scale": "standardised mean difference (Hedges' g), positive = benefit",
            **model.to_dict(),
        },
        "design": {
            "component_prevalence": {c: COMPONENT_PREVALENCE[c] for c in COMPONENTS},
            "component_latent_correlation": {
                f"{a}~{b}": rho for (a, b), rho in COMPONENT_LATENT_CORRELATION.items()
            },
            "design_shares": dict(DESIGN_SHARES),
            "cluster_share": CLUSTER_SHARE,
            "es_per_study_probs": list(ES_PER_STUDY_PROBS),
            "group_size": f"log-normal, median {GROUP_SIZE_MEDIAN} per group, sdlog 0.5, within "
            "30-200; 0-15% attrition per outcome (at least 25 analysed)",
            "sampling_errors": "independent across effect sizes (also within a study)",
        },
        "studies": {
            s["study_id"]: {
                "u": _r6(s["u"]),
                "mu": _r6(s["mu"]),
                "components": {c: int(s["x"][i]) for i, c in enumerate(COMPONENTS)},
                **({"coded_missing": s["missing_component"]} if "missing_component" in s else {}),
                **(
                    {"rho_prepost": _r6(s["rho_prepost"])}
                    if any(r["form"] == "prepost" and r["study_index"] == s["index"] for r in rows)
                    else {}
                ),
                **(
                    {
                        "cluster_size": s["cluster_size"],
                        "icc": _r6(s["icc"]),
                        "icc_reported": s["reports_icc"],
                    }
                    if s["cluster"]
                    else {}
                ),
            }
            for s in studies
        },
        "effects": {
            r["es_id"]: {
                "study_id": studies[r["study_index"]]["study_id"],
                "delta": _r6(r["delta"]),
                "g": _r6(r["g"]),
                "v": _r6(r["v"]),
            }
            for r in rows
        },
    }


# ----------------------------------------------------------------------------- CLI
def write_literature(
    *, out: str | Path, seed: int = 20261125, n_studies: int = 30
) -> dict[str, Path]:
    """Write a SIMULATED example literature of ``n_studies`` studies, drawn with ``seed``, to the
    folder ``out``: ``studies.csv``, ``effects.csv`` and ``truth.yaml``."""
    lit = simulate_literature(np.random.default_rng(seed), n_studies=n_studies, seed=seed)
    return lit.write(out)
