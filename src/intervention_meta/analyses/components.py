"""Component profiles: which combinations of intervention components occur, what they achieve, and
which components the programmes with a positive effect share.

The components are the binary variables with role ``component`` in the codebook (or the list of
``components.variables``); no other variable is taken for a component because it is binary. A
programme is one study (one evaluation of one programme). A data set without components gets no
profiles and no consistency (``applicable`` false, with the reason); the study-level effects are
still computed (the forest plot draws them). A component coded for fewer than
``moderators.min_coverage`` of the studies is left out of the profiles (a joint model of all
components) with a flag naming the studies it would cost
(:func:`intervention_meta.analyses.moderators.apply_min_coverage`); its consistency, one
component at a time, is still given.

Profiles (:func:`component_profiles`, :func:`pool_profiles`)
    the combinations of components that occur, each with its number of programmes, its number
    of effect sizes k and its pooled effect: the mean of the profile from the three-level model
    with the profile as a factor and no intercept, :math:`y_{ij} = \\sum_q \\beta_q
    [\\text{profile}_j = q] + u_j + w_{ij} + e_{ij}`. A profile is pooled only from
    ``components.min_profile_programmes`` programmes up (default 2: one programme's mean is its
    own effect, not what a combination achieves); smaller profiles are listed but not pooled;
    programmes with a missing component value are left out of the profiles.

Consistency (:func:`component_consistency`)
    a realist synthesis asks which components the programmes that work share. With :math:`P` the
    programmes with a positive effect and :math:`C` those having component c (among the
    programmes whose value of c is known):
    consistency of necessity :math:`|C \\cap P| / |P|` (share of the positive programmes that have
    it; Ragin 2006), coverage :math:`|C| / n` (share of all programmes that have it, as the analysis
    plan defines it) and :math:`|C \\cap P| / |C|` (share of the programmes with it that are
    positive; QCA's coverage of necessity, Ragin 2006).

Positive programmes (``positive_rule``)
    ``study_aggregate`` (:func:`study_aggregate_effects`): the study's effect sizes averaged with an
    assumed correlation :math:`\\rho` of the sampling errors within the study
    (:func:`intervention_meta.methods.bias.aggregate_by_study`, metafor ``aggregate(struct =
    "CS")``), the
    programme is positive when :math:`\\bar y_j - z_{1-\\alpha/2}\\sqrt{\\bar v_j} > 0`;
    ``blup`` (:func:`study_blup_effects`): the study-level estimate of the three-level model,
    fixed part plus the study's BLUP, positive when its interval (prediction-error variance, see
    :func:`study_blups`) lies above 0.

What the positive programmes share (:func:`positive_programmes`)
    the central answer in words: which programmes are positive (by their label), the component
    the most of them have (with the count), the components all of them have, and how many
    positive programmes each profile holds.

References
----------
Henderson, C. R. (1975). Best linear unbiased estimation and prediction under a selection model.
*Biometrics*, 31(2), 423-447.
Ragin, C. C. (2006). Set relations in social research: Evaluating their consistency and coverage.
*Political Analysis*, 14(3), 291-310.
Pawson, R., & Tilley, N. (1997). *Realistic Evaluation*. London: Sage.
Robinson, G. K. (1991). That BLUP is a good thing: The estimation of random effects. *Statistical
Science*, 6(1), 15-32.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from intervention_meta.analyses.analysis_model import (
    VI,
    AnalysisData,
    ModelSpec,
    fit_model,
    load_analysis_data,
)
from intervention_meta.analyses.flags import FlagRules, Flags
from intervention_meta.analyses.moderators import (
    MIN_COVERAGE,
    CodingCoverage,
    apply_min_coverage,
    component_variables,
)
from intervention_meta.analyses.records import (
    ESTIMATE_KEYS,
    MEAN_KEYS,
    ResultTable,
    columns,
    result_table,
    write_tables,
)
from intervention_meta.data.codebook import Variable, normalise_code, present_code
from intervention_meta.io import jsonable, write_json
from intervention_meta.methods.bias import aggregate_by_study
from intervention_meta.models import MetaResult, ModelError
from intervention_meta.models import distributions as dist

log = logging.getLogger(__name__)

__all__ = [
    "MIN_PROFILE_PROGRAMMES",
    "POSITIVE_RULES",
    "ComponentAnalysis",
    "Consistency",
    "PositiveProgrammes",
    "ProfileTable",
    "StudyBlups",
    "StudyEffects",
    "analyse_components",
    "component_consistency",
    "component_profiles",
    "pool_profiles",
    "positive_programmes",
    "present_code",
    "programme_components",
    "run_components",
    "study_aggregate_effects",
    "study_blup_effects",
    "study_blups",
]

POSITIVE_RULES = ("study_aggregate", "blup")

#: a profile is pooled from this many programmes up (``components.min_profile_programmes``)
MIN_PROFILE_PROGRAMMES = 2

#: why the component analyses do not apply to a data set without components
NO_COMPONENTS = (
    "no intervention components are coded in this data set (role: component in the codebook)"
)

_PROFILE = "_profile_"


def _arrays_to_dict(obj: Any) -> dict:
    return jsonable({f.name: getattr(obj, f.name) for f in fields(obj)})


def _arrays_frame(obj: Any, cols: Sequence[str], index: Sequence, name: str) -> pd.DataFrame:
    """The arrays ``cols`` of ``obj`` as the columns of a frame indexed by ``index`` (``name``)."""
    return pd.DataFrame({c: getattr(obj, c) for c in cols}, index=pd.Index(index, name=name))


# --------------------------------------------------------------------------- study effects
@dataclass(frozen=True)
class StudyEffects:
    """One study-level effect per programme with its interval and whether it counts as positive.

    ``rule`` is ``study_aggregate`` or ``blup``; ``description`` says in words what it means.
    """

    rule: str
    description: str
    level: float
    study: tuple
    k: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    positive: np.ndarray

    def to_dict(self) -> dict:
        return _arrays_to_dict(self)

    def to_frame(self) -> pd.DataFrame:
        cols = ("k", "estimate", "se", "ci_lb", "ci_ub", "positive")
        return _arrays_frame(self, cols, self.study, "study")


def _crit(level: float, df: float | None = None) -> float:
    q = 1 - (1 - level) / 2
    return float(dist.norm_ppf(q) if df is None else dist.t_ppf(q, df))


def study_aggregate_effects(
    data: pd.DataFrame,
    study: str,
    yi: str = "yi",
    vi: str = "vi",
    *,
    rho: float = 0.6,
    level: float = 0.95,
) -> StudyEffects:
    """Each study's own average effect and whether its interval lies entirely above 0.

    .. math:: \\bar y_j = \\frac{1'V_j^{-1}y_j}{1'V_j^{-1}1},\\quad
              \\bar v_j = \\frac{1}{1'V_j^{-1}1},\\quad
              \\text{positive} \\iff \\bar y_j - z_{1-\\alpha/2}\\sqrt{\\bar v_j} > 0,

    with :math:`V_j` the sampling covariance of study j's effect sizes under an assumed correlation
    ``rho`` (compound symmetry; :func:`intervention_meta.methods.bias.aggregate_by_study`, metafor
    3.8
    ``aggregate(struct = "CS")``). The interval is normal (the average is a GLS mean with known
    variance); it ignores heterogeneity between the study's effect sizes beyond sampling error.
    """
    agg = aggregate_by_study(data, study, yi, vi, rho=rho)
    se = np.sqrt(agg.vi)
    crit = _crit(level)
    lb, ub = agg.yi - crit * se, agg.yi + crit * se
    return StudyEffects(
        rule="study_aggregate",
        description=(
            "study_aggregate: the study's effect sizes averaged (inverse-variance weights) with "
            f"an assumed within-study correlation of sampling errors rho = {rho:g}; positive if "
            f"the {100 * level:g}% CI (normal) of this average lies entirely above 0"
        ),
        level=level,
        study=agg.study,
        k=np.asarray(agg.ki),
        estimate=agg.yi,
        se=se,
        ci_lb=lb,
        ci_ub=ub,
        positive=lb > 0,
    )


@dataclass(frozen=True)
class StudyBlups:
    """BLUPs of the study random effects of a fitted multilevel model and study-level estimates.

    Attributes
    ----------
    study : the studies (outermost level), in order of first appearance in the model's rows
    k : effect sizes per study
    blup, se_blup : :math:`\\hat u_j` and :math:`\\sqrt{\\mathrm{Var}(\\hat u_j - u_j)}` (metafor
        ``ranef()``)
    fixed : the fixed part :math:`x_j'\\hat\\beta`
    estimate, se : :math:`x_j'\\hat\\beta + \\hat u_j` and the root of its prediction-error variance
    df : degrees of freedom of intervals (None: normal), as the model's test
    """

    level_name: str
    study: tuple
    k: np.ndarray
    blup: np.ndarray
    se_blup: np.ndarray
    fixed: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    df: float | None

    def to_dict(self) -> dict:
        return _arrays_to_dict(self)

    def to_frame(self) -> pd.DataFrame:
        cols = ("k", "blup", "se_blup", "fixed", "estimate", "se")
        return _arrays_frame(self, cols, self.study, "study")


def study_blups(result: MetaResult) -> StudyBlups:
    """Study random effects (BLUPs) and study-level estimates of a fitted multilevel model.

    For study j with rows :math:`y_j`, design :math:`X_j`, marginal covariance :math:`M_j` (all
    variance components plus the sampling variances) and study variance :math:`\\sigma^2_s`
    (the outermost level), with :math:`a_j = 1'M_j^{-1}1` and :math:`b_j = X_j'M_j^{-1}1`:

    .. math::
        \\hat u_j = \\sigma^2_s 1'M_j^{-1}(y_j - X_j\\hat\\beta), \\qquad
        \\mathrm{Var}(\\hat u_j - u_j) = \\sigma^2_s - \\sigma^4_s\\,(a_j - b_j'V_\\beta b_j),

        \\mathrm{PEV}(x_j'\\hat\\beta + \\hat u_j) = x_j'V_\\beta x_j
          + \\mathrm{Var}(\\hat u_j - u_j) - 2\\sigma^2_s\\,x_j'V_\\beta b_j,

    the blocks of the inverse of Henderson's (1975) mixed-model equations, so the uncertainty of
    :math:`\\hat\\beta` is included (Robinson 1991). :math:`\\hat u_j` and its standard error are
    metafor's ``ranef()``; the study-level estimate is what metafor's ``blup()`` gives for a
    one-level model (:math:`x_j` is the study's row of the design, which must be the same on all
    its rows, e.g. the intercept-only model).
    """
    if not result.multilevel:
        raise ValueError("study BLUPs need a multilevel model (random = [study, effect])")
    level_name = result.random[0]
    s2 = float(result.sigma2[level_name])
    beta, vb = result.b, result.vb
    blocks = sorted(result.cluster_blocks(), key=lambda blk: int(np.min(blk.index)))
    n = len(blocks)
    out = {k: np.empty(n) for k in ("k", "blup", "se_blup", "fixed", "estimate", "se")}
    for j, blk in enumerate(blocks):
        x = blk.X[0]
        if not np.allclose(blk.X, x):
            raise ValueError(
                f"the fixed part varies within study {blk.cluster!r}; a study-level estimate "
                "needs moderators that are constant within studies"
            )
        cho = linalg.cho_factor(blk.V, lower=True)
        m1 = linalg.cho_solve(cho, np.ones(len(blk.y)))
        a = float(m1.sum())
        b = blk.X.T @ m1
        u = s2 * float(m1 @ (blk.y - blk.X @ beta))
        var_u = s2 - s2**2 * (a - float(b @ vb @ b))
        pev = float(x @ vb @ x) + var_u - 2 * s2 * float(x @ vb @ b)
        out["k"][j] = len(blk.y)
        out["blup"][j] = u
        out["se_blup"][j] = math.sqrt(max(var_u, 0.0))
        out["fixed"][j] = float(x @ beta)
        out["estimate"][j] = float(x @ beta) + u
        out["se"][j] = math.sqrt(max(pev, 0.0))
    df = None if result.test == "z" else float(result.k - result.p)
    return StudyBlups(
        level_name=level_name,
        study=tuple(b.cluster for b in blocks),
        k=out["k"].astype(int),
        blup=out["blup"],
        se_blup=out["se_blup"],
        fixed=out["fixed"],
        estimate=out["estimate"],
        se=out["se"],
        df=df,
    )


def study_blup_effects(result: MetaResult, level: float | None = None) -> StudyEffects:
    """Study-level estimates (fixed part + BLUP) and whether their interval lies above 0.

    The interval is :math:`\\hat\\theta_j \\pm c\\sqrt{\\mathrm{PEV}_j}` with :math:`c` from
    :math:`t_{k-p}` for t tests (as metafor's ``ranef()`` intervals) or N(0, 1) for z tests.
    """
    level = result.level if level is None else level
    sb = study_blups(result)
    crit = _crit(level, sb.df)
    lb, ub = sb.estimate - crit * sb.se, sb.estimate + crit * sb.se
    dist = "normal" if sb.df is None else f"t with {sb.df:g} df"
    return StudyEffects(
        rule="blup",
        description=(
            "blup: the study-level estimate of the three-level model (pooled mean + the study's "
            "BLUP, shrunken towards the mean); positive if its "
            f"{100 * level:g}% interval (prediction-error variance, {dist}) lies entirely above 0"
        ),
        level=level,
        study=sb.study,
        k=sb.k,
        estimate=sb.estimate,
        se=sb.se,
        ci_lb=lb,
        ci_ub=ub,
        positive=lb > 0,
    )


# --------------------------------------------------------------------------- programmes
def programme_components(
    data: pd.DataFrame,
    study: str,
    components: Sequence[str],
    variables: Mapping[str, Variable] | None = None,
) -> tuple[pd.DataFrame, dict[str, list]]:
    """One row per programme (study): its number of effect sizes and 0/1 per component.

    A component is 1 when the study's value is the variable's :func:`present_code`, 0 for the
    other codes, missing when the value is missing. A value that differs between the study's rows
    (a component coded on the effects) is set to missing and reported in the second return value
    (component -> studies).
    """
    variables = variables or {}
    grouped = data.groupby(study, sort=True)
    out = pd.DataFrame({"k": grouped.size()})
    varying: dict[str, list] = {}
    for c in components:
        present = present_code(variables.get(c))
        ind = (
            data[c]
            .astype("object")
            .map(lambda x, code=present: None if pd.isna(x) else int(normalise_code(x) == code))
        )
        per = pd.DataFrame({study: data[study], "v": ind}).groupby(study, sort=True)["v"]
        n_distinct = per.nunique(dropna=True)
        first = per.first()
        bad = list(n_distinct.index[n_distinct > 1])
        if bad:
            varying[c] = bad
            first.loc[bad] = None
        out[c] = pd.array(first.reindex(out.index).tolist(), dtype="Int64")
    out.index.name = study
    return out, varying


@dataclass(frozen=True)
class ProfileTable:
    """The component profiles that occur.

    ``frame`` has one row per profile: ``profile`` (0/1 key in component order), ``label``,
    ``present`` (codes joined by " + "), ``n_programmes``, ``k``, one 0/1 column per component,
    ``pooled`` and, when pooled, ``estimate, se, stat, df, pval, ci_lb, ci_ub``, and ``note``.
    ``membership`` maps each programme in the profiles to its profile key; ``left_out`` lists the
    programmes with a missing component value.
    """

    components: tuple[str, ...]
    frame: pd.DataFrame
    membership: dict
    left_out: tuple
    min_programmes: int = 1
    model: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return jsonable(
            {
                "components": self.components,
                "min_programmes": self.min_programmes,
                "profiles": self.frame,
                "membership": self.membership,
                "left_out": self.left_out,
                "model": self.model,
            }
        )

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()


def _profile_label(present: Sequence[str], labels: Mapping[str, str]) -> str:
    if not present:
        return "none of the components"
    return " + ".join(labels.get(c, c) for c in present)


def component_profiles(
    programmes: pd.DataFrame,
    components: Sequence[str],
    labels: Mapping[str, str] | None = None,
    *,
    min_programmes: int = 1,
) -> ProfileTable:
    """Count the combinations of components among programmes (rows of :func:`programme_components`).

    Programmes with a missing value on any component are left out (``left_out``). Profiles are
    sorted by number of programmes, then effect sizes (both descending), then key.
    """
    labels = dict(labels or {})
    components = list(components)
    comp = programmes[components]
    complete = comp.notna().all(axis=1).to_numpy()
    left_out = tuple(programmes.index[~complete])
    done = programmes.loc[complete]
    keys = done[components].astype(int).astype(str).agg("".join, axis=1) if components else None
    rows = []
    if keys is not None and len(done):
        for key, members in done.groupby(keys, sort=False):
            present = [c for c, bit in zip(components, key, strict=True) if bit == "1"]
            row = {
                "profile": key,
                "label": _profile_label(present, labels),
                "present": " + ".join(present) if present else "none",
                "n_programmes": len(members),
                "k": int(members["k"].sum()),
            }
            row.update({c: int(b) for c, b in zip(components, key, strict=True)})
            row["pooled"] = len(members) >= min_programmes
            rows.append(row)
    frame = pd.DataFrame(
        rows,
        columns=["profile", "label", "present", "n_programmes", "k", *components, "pooled"],
    )
    frame = frame.sort_values(
        ["n_programmes", "k", "profile"], ascending=[False, False, False], kind="stable"
    ).reset_index(drop=True)
    frame["note"] = [
        "" if p else f"not pooled: {n} programme(s) < {min_programmes}"
        for p, n in zip(frame["pooled"], frame["n_programmes"], strict=True)
    ]
    membership = {} if keys is None else {s: k for s, k in keys.items()}
    return ProfileTable(
        components=tuple(components),
        frame=frame,
        membership=membership,
        left_out=left_out,
        min_programmes=min_programmes,
    )


def pool_profiles(
    ad: AnalysisData, spec: ModelSpec, profiles: ProfileTable, flags: Flags | None = None
) -> tuple[ProfileTable, str]:
    """Pool the effect sizes of every profile marked ``pooled`` (profile as factor, no intercept).

    Returns the table with ``estimate, se, stat, df, pval, ci_lb, ci_ub`` filled in for the
    pooled profiles, and a reason when no model could be fitted ("" otherwise). With a single
    pooled profile the model is the intercept-only model of its rows. ``flags`` (if given) get
    the model's variance components on the boundary.
    """
    frame = profiles.frame.copy()
    for c in ("estimate", "se", "stat", "df", "pval", "ci_lb", "ci_ub"):
        frame[c] = math.nan
    keys = list(frame.loc[frame["pooled"], "profile"])
    if not keys:
        return _replace_frame(profiles, frame, {}), "no profile has enough programmes"
    member = pd.Series(profiles.membership, dtype="object")
    rows = ad.data[ad.study].map(member)
    keep = rows.isin(keys).to_numpy()
    data = ad.data.loc[keep].copy()
    data[_PROFILE] = pd.Categorical(rows[keep], categories=keys)
    try:
        if len(keys) >= 2:
            res = fit_model(ad, spec, mods=[_PROFILE], intercept=False, data=data)
        else:
            res = fit_model(ad, spec, data=data)
    except ModelError as err:
        return _replace_frame(profiles, frame, {}), f"model not estimable ({err})"
    if flags is not None:
        flags.check_boundary(res, "profile model", data[VI])
    pos = {key: i for i, key in enumerate(keys)}
    idx = frame.index[frame["pooled"]]
    at = [pos[k] for k in frame.loc[idx, "profile"]]
    frame.loc[idx, "estimate"] = res.b[at]
    frame.loc[idx, "se"] = res.se[at]
    frame.loc[idx, "stat"] = res.stat[at]
    frame.loc[idx, "df"] = res.dfs[at] if res.dfs is not None else math.nan
    frame.loc[idx, "pval"] = res.pval[at]
    frame.loc[idx, "ci_lb"] = res.ci_lb[at]
    frame.loc[idx, "ci_ub"] = res.ci_ub[at]
    model = {
        "k": res.k,
        "p": res.p,
        "n_studies": int(data[ad.study].nunique()),
        "sigma2": res.sigma2,
        "tau2": res.tau2,
        "QE": res.QE,
        "QEp": res.QEp,
        "converged": res.converged,
        "coef_profiles": keys,
        "vb": res.vb,
    }
    reason = "" if res.converged else f"not converged ({res.convergence.reason})"
    return _replace_frame(profiles, frame, model), reason


def _replace_frame(profiles: ProfileTable, frame: pd.DataFrame, model: dict) -> ProfileTable:
    return ProfileTable(
        components=profiles.components,
        frame=frame,
        membership=profiles.membership,
        left_out=profiles.left_out,
        min_programmes=profiles.min_programmes,
        model=jsonable(model),
    )


# --------------------------------------------------------------------------- consistency
@dataclass(frozen=True)
class Consistency:
    """Per component: how the programmes with a positive effect are distributed over it.

    Counts among the programmes whose value of the component is known: ``n_known``, ``n_with``
    (have it), ``n_positive``, ``n_positive_with``; shares ``consistency`` =
    n_positive_with / n_positive (consistency of necessity), ``coverage`` = n_with / n_known and
    ``positive_share_with`` = n_positive_with / n_with; ``n_missing`` programmes without a value.
    """

    components: tuple[str, ...]
    n_known: np.ndarray
    n_with: np.ndarray
    n_positive: np.ndarray
    n_positive_with: np.ndarray
    n_missing: np.ndarray
    consistency: np.ndarray
    coverage: np.ndarray
    positive_share_with: np.ndarray

    def to_dict(self) -> dict:
        return _arrays_to_dict(self)

    def to_frame(self) -> pd.DataFrame:
        cols = [f.name for f in fields(self) if f.name != "components"]
        return _arrays_frame(self, cols, self.components, "component")


def _share(num: int, den: int) -> float:
    return num / den if den else math.nan


def component_consistency(
    programmes: pd.DataFrame, positive: Mapping | pd.Series, components: Sequence[str]
) -> Consistency:
    """Consistency of necessity and coverage of each component (see the module doc).

    ``programmes``: one row per programme (index = study) with a 0/1 (or missing) column per
    component; ``positive``: study -> bool. Programmes missing in ``positive`` count as not
    positive.
    """
    positive = dict(positive)
    pos = np.array([bool(positive.get(s, False)) for s in programmes.index], dtype=bool)
    res: dict[str, list] = {
        n: []
        for n in (
            "n_known",
            "n_with",
            "n_positive",
            "n_positive_with",
            "n_missing",
            "consistency",
            "coverage",
            "positive_share_with",
        )
    }
    for c in components:
        col = programmes[c]
        known = col.notna().to_numpy()
        has = (col.fillna(0).astype(int).to_numpy() == 1) & known
        n_known, n_with = int(known.sum()), int(has.sum())
        n_pos, n_pos_with = int((pos & known).sum()), int((pos & has).sum())
        res["n_known"].append(n_known)
        res["n_with"].append(n_with)
        res["n_positive"].append(n_pos)
        res["n_positive_with"].append(n_pos_with)
        res["n_missing"].append(int((~known).sum()))
        res["consistency"].append(_share(n_pos_with, n_pos))
        res["coverage"].append(_share(n_with, n_known))
        res["positive_share_with"].append(_share(n_pos_with, n_with))
    arrays = {k: np.array(v, dtype=int if k.startswith("n_") else float) for k, v in res.items()}
    return Consistency(components=tuple(components), **arrays)


# --------------------------------------------------------------------------- positive programmes
@dataclass(frozen=True)
class PositiveProgrammes:
    """What the programmes with a positive effect share: the central answer in words.

    Attributes
    ----------
    n_programmes, n_positive : programmes, and those with a positive effect by the rule
    studies, labels : the positive programmes (study keys, and their labels for reading), in the
        order of the study-level effects
    components, component_labels : the components, in the order of ``n_with``
    n_with, n_known : per component, the positive programmes that have it and those whose value
        of it is known (the consistency's ``n_positive_with`` and ``n_positive``)
    most_shared : the component(s) the largest share of the positive programmes have (ties all
        named; empty without components or positive programmes)
    shared_by_all : the components every positive programme with a known value has
    profiles : per profile holding a positive programme, most positive first: ``profile``,
        ``label``, ``n_programmes``, ``n_positive``, ``pooled``
    outside_profiles : positive programmes left out of the profiles (a missing component value)
    """

    n_programmes: int
    n_positive: int
    studies: tuple
    labels: tuple[str, ...]
    components: tuple[str, ...]
    component_labels: tuple[str, ...]
    n_with: tuple[int, ...]
    n_known: tuple[int, ...]
    most_shared: tuple[str, ...]
    shared_by_all: tuple[str, ...]
    profiles: tuple[dict, ...]
    outside_profiles: int

    def to_dict(self) -> dict:
        return _arrays_to_dict(self)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.profiles))


def positive_programmes(
    effects: StudyEffects,
    consistency: Consistency,
    profiles: ProfileTable,
    labels: Mapping[str, str] | None = None,
    component_labels: Mapping[str, str] | None = None,
) -> PositiveProgrammes:
    """Which programmes are positive, which components they share, and how many per profile.

    A component is shared by all when every positive programme whose value of it is known has it
    (consistency of necessity 1, Ragin 2006); ``most_shared`` names the component(s) with the
    largest consistency (see :func:`component_consistency`), none when no positive programme has
    any component. ``labels`` maps a study key to its label (default: the key).
    """
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    component_labels = dict(component_labels or {})
    positive = [s for s, p in zip(effects.study, effects.positive, strict=True) if p]
    comps = consistency.components
    n_with = tuple(int(x) for x in consistency.n_positive_with)
    n_known = tuple(int(x) for x in consistency.n_positive)
    shares = [w / n if n else 0.0 for w, n in zip(n_with, n_known, strict=True)]
    best = max(shares, default=0.0)
    most = tuple(c for c, sh in zip(comps, shares, strict=True) if best > 0 and sh == best)
    every = tuple(c for c, sh in zip(comps, shares, strict=True) if sh == 1.0)
    member = profiles.membership
    rows = []
    for _, r in profiles.frame.iterrows():
        n_pos = sum(1 for s in positive if member.get(s) == r["profile"])
        if n_pos:
            rows.append(
                {
                    "profile": r["profile"],
                    "label": r["label"],
                    "n_programmes": int(r["n_programmes"]),
                    "n_positive": n_pos,
                    "pooled": bool(r["pooled"]),
                }
            )
    rows.sort(key=lambda row: -row["n_positive"])  # stable: ties keep the profiles' order
    return PositiveProgrammes(
        n_programmes=len(effects.study),
        n_positive=len(positive),
        studies=tuple(positive),
        labels=tuple(labels.get(str(s), str(s)) for s in positive),
        components=tuple(comps),
        component_labels=tuple(component_labels.get(c, c) for c in comps),
        n_with=n_with,
        n_known=n_known,
        most_shared=most,
        shared_by_all=every,
        profiles=tuple(rows),
        outside_profiles=sum(1 for s in positive if s not in member),
    )


# --------------------------------------------------------------------------- the analysis
@dataclass(frozen=True)
class ComponentAnalysis:
    """Profiles, study effects and consistency of the component analysis, with its flags.

    ``applicable`` is false (``reason`` says why) when there are no components; then the
    profiles and the consistency are empty. ``left_out``: the components left out of the
    profiles for their coding coverage; ``positive``: what the positive programmes share
    (:func:`positive_programmes`).
    """

    components: tuple[str, ...]
    rule: str
    study_effects: StudyEffects
    programmes: pd.DataFrame
    profiles: ProfileTable
    consistency: Consistency
    flags: tuple[str, ...] = ()
    applicable: bool = True
    reason: str = ""
    left_out: dict[str, CodingCoverage] = field(default_factory=dict)
    positive: PositiveProgrammes | None = None

    def to_dict(self) -> dict:
        return jsonable(
            {
                "applicable": self.applicable,
                "reason": self.reason,
                "min_profile_programmes": self.profiles.min_programmes,
                "positive_programmes": self.positive.to_dict() if self.positive else None,
                "components": self.components,
                "left_out": {c: cov.to_dict() for c, cov in self.left_out.items()},
                "positive_rule": {
                    "rule": self.rule,
                    "description": self.study_effects.description,
                },
                "study_effects": self.study_effects,
                "programmes": self.programmes.reset_index(),
                "profiles": self.profiles,
                "consistency": self.consistency,
                "flags": list(self.flags),
            }
        )

    def to_frame(self) -> pd.DataFrame:
        return self.profiles.to_frame()


def analyse_components(
    ad: AnalysisData,
    spec: ModelSpec | None = None,
    *,
    components: Sequence[str] | None = None,
    min_programmes: int = MIN_PROFILE_PROGRAMMES,
    positive_rule: str = "study_aggregate",
    rho: float = 0.6,
    min_coverage: float = MIN_COVERAGE,
    rules: FlagRules | None = None,
    study_labels: Mapping[str, str] | None = None,
) -> ComponentAnalysis:
    """Component profiles, study-level effects and the consistency of every component.

    Parameters
    ----------
    ad : the effect sizes with their codebook
    spec : the analysis model (profiles are pooled with it; the ``blup`` rule uses its method and
        test in a three-level model whatever ``spec.structure`` says)
    components : the binary component variables (default: the codebook's variables with role
        ``component``)
    min_programmes : profiles with fewer programmes are listed but not pooled (the config's
        ``components.min_profile_programmes``)
    positive_rule : ``"study_aggregate"`` or ``"blup"`` (see the module doc)
    rho : the within-study correlation of sampling errors assumed by ``study_aggregate``
    min_coverage : components coded for fewer studies (share) are left out of the profiles
    rules : the thresholds of the flags (default :class:`FlagRules`)
    study_labels : study key -> label, naming the positive programmes (default: the key)
    """
    spec = spec or ModelSpec()
    if positive_rule not in POSITIVE_RULES:
        raise ValueError(f"positive_rule must be one of {POSITIVE_RULES}, got {positive_rule!r}")
    flags = Flags("components", rules=rules or FlagRules())
    cb = ad.codebook
    comps = component_variables(cb, components)
    absent = [c for c in comps if c not in ad.data.columns]
    if absent:
        raise ValueError(f"components not in the effect sizes: {absent}")
    for c in comps:
        var = cb.variables.get(c)
        if var is not None and var.type != "binary":
            flags.add(f"{c}: type {var.type}, not binary; '{present_code(var)}' counts as present")

    # study-level effects and the positive programmes
    if positive_rule == "study_aggregate":
        effects = study_aggregate_effects(ad.data, ad.study, rho=rho, level=spec.level)
    else:
        if not spec.multilevel:
            flags.add(
                f"positive rule blup uses the three-level model (models.structure is "
                f"{spec.structure})"
            )
        res = fit_model(ad, replace(spec, structure="three_level"))
        flags.check_fit(res, "three-level model for the study BLUPs")
        flags.check_boundary(res, "three-level model for the study BLUPs", ad.data[VI])
        effects = study_blup_effects(res, spec.level)
    positive = dict(zip(effects.study, effects.positive.tolist(), strict=True))

    # programmes and their profiles
    programmes, varying = programme_components(ad.data, ad.study, comps, cb.variables)
    for c, studies in varying.items():
        flags.add(
            f"{c}: value differs between the effect sizes of {len(studies)} stud"
            f"{'y' if len(studies) == 1 else 'ies'} ({', '.join(map(str, studies[:10]))}); "
            "treated as missing for them"
        )
    labels = {c: ad.label(c) for c in comps}
    joint, left_out, lines = apply_min_coverage(ad, comps, min_coverage, "component profiles")
    for line in lines:
        flags.add(line)
    profiles = component_profiles(programmes, joint, labels, min_programmes=min_programmes)
    if profiles.left_out:
        ids = ", ".join(map(str, profiles.left_out[:20]))
        flags.add(
            f"{len(profiles.left_out)} programme(s) with a missing component value left out of "
            f"the profiles ({ids})"
        )
    small = profiles.frame.loc[~profiles.frame["pooled"]]
    if len(small):
        flags.add(
            f"{len(small)} profile(s) with fewer than {min_programmes} programme(s) listed but not "
            "pooled"
        )
    if joint:
        profiles, reason = pool_profiles(ad, spec, profiles, flags)
        if reason:
            flags.add(f"profile model: {reason}")
    cons = component_consistency(programmes, positive, comps)
    if comps and int(np.sum(effects.positive)) == 0:
        flags.add(
            "no programme has a positive effect by the rule "
            f"{positive_rule}; consistency is undefined"
        )
    return ComponentAnalysis(
        components=tuple(comps),
        rule=positive_rule,
        study_effects=effects,
        programmes=programmes,
        profiles=profiles,
        consistency=cons,
        flags=tuple(flags.lines),
        applicable=bool(comps),
        reason="" if comps else NO_COMPONENTS,
        left_out=left_out,
        positive=positive_programmes(effects, cons, profiles, study_labels, labels),
    )


# --------------------------------------------------------------------------- tables
def _yes_no(x: object) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    return "yes" if int(x) == 1 else "no"


def _component_headers(components: Sequence[str], ad: AnalysisData) -> dict[str, str]:
    """``component.<name>`` -> the component's codebook label."""
    return {f"component.{c}": ad.label(c) for c in components}


def profiles_records(ca: ComponentAnalysis, ad: AnalysisData, spec: ModelSpec) -> ResultTable:
    """The table ``component_profiles``: one row per profile; ``component.<name>`` is ``yes`` or
    ``no`` for each component, ``pooled`` whether the profile has a mean."""
    comps = _component_headers(ca.profiles.components, ad)
    headers = columns(
        "profile present n_programmes k",
        *comps,
        "pooled",
        MEAN_KEYS,
        "note",
        estimate="Mean effect",
        stat="z" if spec.test == "z" else "t",
        **comps,
    )
    f = ca.profiles.frame
    rows = []
    for _, r in f.iterrows():
        row = {
            "profile": r["label"],
            "present": r["present"],
            "n_programmes": r["n_programmes"],
            "k": r["k"],
        }
        row.update({f"component.{c}": _yes_no(r[c]) for c in ca.profiles.components})
        row.update(
            {
                "pooled": "yes" if r["pooled"] else "no",
                "estimate": r["estimate"],
                "se": r["se"],
                "ci_lb": r["ci_lb"],
                "ci_ub": r["ci_ub"],
                "stat": r["stat"],
                "df": r["df"],
                "p": r["pval"],
                "note": r["note"],
            }
        )
        rows.append(row)
    return result_table(rows, headers, spec.level)


def profiles_table(ca: ComponentAnalysis, ad: AnalysisData, spec: ModelSpec) -> pd.DataFrame:
    """The readable ``component_profiles.csv``: one row per profile."""
    return profiles_records(ca, ad, spec).to_frame()


def consistency_records(ca: ComponentAnalysis, ad: AnalysisData) -> ResultTable:
    """The table ``component_consistency``: one row per component."""
    headers = columns(
        "component component_label n_known n_with coverage n_positive n_positive_with",
        "consistency positive_share_with n_missing positive_rule",
    )
    c = ca.consistency
    frame = pd.DataFrame(
        {
            "component": list(c.components),
            "component_label": [ad.label(x) for x in c.components],
            "n_known": c.n_known,
            "n_with": c.n_with,
            "coverage": c.coverage,
            "n_positive": c.n_positive,
            "n_positive_with": c.n_positive_with,
            "consistency": c.consistency,
            "positive_share_with": c.positive_share_with,
            "n_missing": c.n_missing,
            "positive_rule": ca.study_effects.description,
        }
    )
    return result_table(frame, headers)


def consistency_table(ca: ComponentAnalysis, ad: AnalysisData) -> pd.DataFrame:
    """The readable ``component_consistency.csv``: one row per component."""
    return consistency_records(ca, ad).to_frame()


def study_effects_records(ca: ComponentAnalysis, ad: AnalysisData) -> ResultTable:
    """The table ``study_effects``: one row per programme (``study``: its study key) with its
    study-level estimate, whether it is positive, its components and its profile."""
    comps = _component_headers(ca.components, ad)
    headers = columns(
        "study k",
        ESTIMATE_KEYS,
        "positive",
        *comps,
        "in_profiles profile positive_rule",
        study=ad.label(ad.study),
        estimate="Estimate",
        **comps,
    )
    se = ca.study_effects
    frame = pd.DataFrame(
        {
            "study": list(se.study),
            "k": se.k,
            "estimate": se.estimate,
            "se": se.se,
            "ci_lb": se.ci_lb,
            "ci_ub": se.ci_ub,
            "positive": ["yes" if p else "no" for p in se.positive],
        }
    )
    prog = ca.programmes
    for c in ca.components:
        vals = prog[c].reindex(list(se.study))
        frame[f"component.{c}"] = [_yes_no(v) for v in vals]
    left = set(ca.profiles.left_out)
    frame["in_profiles"] = ["no" if s in left else "yes" for s in se.study]
    frame["profile"] = [
        ca.profiles.frame.set_index("profile")["label"].get(ca.profiles.membership.get(s), "")
        for s in se.study
    ]
    frame["positive_rule"] = se.description
    return result_table(frame, headers, se.level)


def study_effects_table(ca: ComponentAnalysis, ad: AnalysisData) -> pd.DataFrame:
    """The readable ``study_effects.csv``: one row per programme with its components."""
    return study_effects_records(ca, ad).to_frame()


# --------------------------------------------------------------------------- the step
def run_components(
    *,
    effect_sizes: str | Path,
    codebook: str | Path,
    profiles: str | Path,
    consistency: str | Path,
    study_effects: str | Path,
    json: str | Path,
    flags: str | Path,
    models: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    moderator_options: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
) -> ComponentAnalysis:
    """The ``components`` step: profiles, study-level effects and consistency of the components.

    ``models`` is the config's ``models`` section, ``options`` its ``components`` section
    (``variables``, ``min_profile_programmes``, ``positive_rule``, ``rho``),
    ``moderator_options`` its
    ``moderators`` section (``min_coverage``); ``profiles``, ``consistency`` and
    ``study_effects`` are the three tables' files, ``json`` the results and ``flags`` the flags
    (thresholds: ``flag_rules``, the config's ``flags``). Without components the JSON says
    ``applicable: false`` with the reason, and the profile and consistency tables have no rows.
    """
    options = dict(options or {})
    min_coverage = float((moderator_options or {}).get("min_coverage", MIN_COVERAGE))
    spec = ModelSpec.from_config(models)
    ad = load_analysis_data(effect_sizes, codebook, levels=spec.levels)
    from intervention_meta.plots.labels import study_labels

    ca = analyse_components(
        ad,
        spec,
        components=options.get("variables"),
        min_programmes=int(options.get("min_profile_programmes", MIN_PROFILE_PROGRAMMES)),
        positive_rule=options.get("positive_rule", "study_aggregate"),
        rho=float(options.get("rho", 0.6)),
        min_coverage=min_coverage,
        rules=FlagRules.from_config(flag_rules),
        study_labels=study_labels(ad.data, ad.codebook, ad.study),
    )
    tables = write_tables(
        {
            "component_profiles": (profiles_records(ca, ad, spec), profiles),
            "component_consistency": (consistency_records(ca, ad), consistency),
            "study_effects": (study_effects_records(ca, ad), study_effects),
        }
    )
    write_json(
        {
            "step": "components",
            "model": spec.describe(ad.level_names()),
            "study": ad.study,
            "definitions": {
                "programme": f"one study ({ad.study})",
                "consistency": "positive programmes with the component / positive programmes",
                "coverage": "programmes with the component / programmes with a known value",
                "positive_share_with": "positive programmes with it / programmes with it",
                "profile mean": "three-level model with the profile as a factor, no intercept",
            },
            **ca.to_dict(),
            "level": spec.level,
            "tables": tables,
        },
        json,
    )
    Flags("components", list(ca.flags)).write(flags)
    log.info(
        "components: %d component(s), %d programme(s), %d profile(s), %d positive (%s)",
        len(ca.components),
        len(ca.programmes),
        len(ca.profiles.frame),
        int(np.sum(ca.study_effects.positive)),
        ca.rule,
    )
    return ca
