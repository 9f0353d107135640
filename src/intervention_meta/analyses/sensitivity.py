"""Sensitivity analyses of the pooled effect: does it hang on one study, a few outlying effect
sizes, the estimator, the working model, or the assumptions of the effect-size step?

1. **Leave one study out** (:func:`leave_one_out`): the analysis model refitted without each study
   (or, for a one-level model, each row) in turn -- estimate, SE, CI, p and the variance
   components of every refit, as metafor's ``leave1out()`` (which exists for ``rma`` only; for the
   three-level model it is ``rma.mv(..., subset = study != s)`` for each study ``s``).
2. **Influence** (:mod:`intervention_meta.methods.influence`): Cook's distance, DFBETAS, leverage
and the
   studentized deleted residual of each study, as metafor 3.8's ``cooks.distance(res, cluster=)``,
   ``dfbetas(res, cluster=)``, ``hatvalues(res)`` and ``rstudent(res, cluster=)``; and the
   studentized deleted residual of each effect size (``rstudent(res)``).
3. **Outliers removed** (:func:`remove_outliers`): the model without the effect sizes whose
   absolute studentized deleted residual exceeds a threshold (default 3; Viechtbauer & Cheung
   2010).
4. **Estimator and working model** (:func:`compare_estimators`): one-level estimators (FE, DL,
   REML, ML, PM, ...) that treat the effect sizes as independent, the three-level model with
   model-based and CR2 cluster-robust inference (Pustejovsky & Tipton 2018), and the correlated
   and hierarchical effects (CHE) working model -- sampling errors correlated :math:`\\rho` within
   a study, random study and effect-size effects -- with CR2 inference (Pustejovsky & Tipton 2022),
   at the configured :math:`\\rho` and over a range of values.
5. **Assumptions of the effect-size step** (:func:`vary_assumptions`): the effect sizes recomputed
   with :func:`intervention_meta.effect_sizes.compute.compute_effect_sizes` for other values of a
   default
   (the pre-post correlation ``r_prepost_default``, the ICC ``icc_default``), the model refitted.
   Only rows that use the default change; rows with a reported value keep it.
6. **Risk of bias** (:func:`restrict_risk_of_bias`, with a ``risk_of_bias`` section in the
   config): the analysis model refitted on the results at low risk of bias only, and on those at
   low risk or with some concerns (not high), by the overall judgement of each study or result.

References
----------
Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics for meta-analysis.
*Research Synthesis Methods*, 1, 112-125.
Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. *Journal of Business & Economic
Statistics*, 36, 672-683.
Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance estimation: expanding
the range of working models. *Prevention Science*, 23, 425-438.
Assink, M., & Wibbelink, C. J. M. (2016). Fitting three-level meta-analytic models in R: a
step-by-step tutorial. *The Quantitative Methods for Psychology*, 12, 154-174.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.analyses.analysis_model import (
    AnalysisData,
    ModelSpec,
    load_analysis_data,
    model_call,
    model_test,
)
from intervention_meta.analyses.flags import FlagRules, Flags
from intervention_meta.analyses.records import (
    ESTIMATE_KEYS,
    ResultTable,
    columns,
    result_table,
)
from intervention_meta.data.cleaning import read_clean
from intervention_meta.data.codebook import Codebook, normalise_code
from intervention_meta.data.risk_of_bias import RiskOfBiasSpec
from intervention_meta.effect_sizes.compute import compute_effect_sizes
from intervention_meta.io import jsonable, write_json, write_table
from intervention_meta.methods.influence import (
    ClusterInfluence,
    DeletedResiduals,
    ModelCall,
    Refits,
    cluster_influence,
    deleted_residuals,
    refit_without,
)
from intervention_meta.models import MetaResult, ModelError

log = logging.getLogger(__name__)

STEP = "sensitivity"

#: defaults of ``config["sensitivity"]`` (as workflow/schemas/config.schema.yaml)
DEFAULTS: dict[str, Any] = {
    "outlier_rule": "studentized_residual",
    "outlier_threshold": 3.0,
    "estimators": ["FE", "DL", "REML", "ML", "PM"],
    "che_rho": 0.6,
    "rho_values": [0.2, 0.4, 0.6, 0.8],
    "r_prepost_values": [0.3, 0.5, 0.7],
    "icc_values": [0.01, 0.05, 0.1, 0.2],
}

#: the tables of the step (``tables/sensitivity_<name>.csv``)
TABLES = ("summary", "leave_one_out", "influence", "outliers", "estimators", "assumptions")

#: the keys of the table ``summary`` (and of the one row written when nothing could be fitted)
SUMMARY_HEADERS = columns("analysis changed k n_studies", ESTIMATE_KEYS, "df p note", kind=None)

#: the ``study`` of the first row of the table ``leave_one_out``: the fit with every study
FULL = "none (all studies)"

#: keys written as integers in the CSVs
COUNTS = ("k", "n_studies")

#: effect-size options that can be varied: option -> (name in the effect-size step's
#: ``counts["defaults_used"]``, what it is)
ASSUMPTIONS: dict[str, tuple[str, str]] = {
    "r_prepost_default": ("r_prepost", "pre-post correlation (prepost rows without r_prepost)"),
    "icc_default": ("icc", "ICC (cluster-randomised rows without icc)"),
    "cluster_size_default": ("cluster_size", "cluster size (cluster-randomised rows without one)"),
}


# --------------------------------------------------------------------------- the model
def _coef_summary(result: MetaResult, j: int = 0) -> dict[str, Any]:
    """Estimate, SE, test, df, p, CI and variance components of coefficient ``j``."""
    out = {
        "coefficient": result.coef_names[j],
        "estimate": float(result.b[j]),
        "se": float(result.se[j]),
        "statistic": float(result.stat[j]),
        "df": None if result.dfs is None else float(result.dfs[j]),
        "pval": float(result.pval[j]),
        "ci_lb": float(result.ci_lb[j]),
        "ci_ub": float(result.ci_ub[j]),
        "k": int(result.k),
        "converged": bool(result.converged),
    }
    if result.multilevel:
        out["sigma2"] = dict(result.sigma2)
        out["n_levels"] = dict(result.n_levels)
        if result.variance_distribution is not None:
            out["i2_total"] = float(result.variance_distribution.i2_total)
    else:
        out["tau2"] = float(result.tau2 or 0.0)
        out["i2"] = None if result.I2 is None else float(result.I2)
    return out


# --------------------------------------------------------------------------- leave one out
@dataclass(frozen=True)
class LeaveOneOut:
    """The model refitted without each unit (study, or row) in turn.

    Arrays have one entry per unit (clusters sorted, rows in data order); coefficient arrays are
    (n, p). ``tau2``, ``I2``, ``H2`` are set for one-level models, ``sigma2`` (by level) for
    multilevel ones. ``n_clusters`` counts the outermost random level's units of each refit (the
    rows for a one-level model). A failed refit has NaN and its reason in ``errors``.
    """

    by: str | None
    units: tuple
    coef_names: tuple[str, ...]
    test: str
    k: np.ndarray
    n_clusters: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    df: np.ndarray | None
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    QE: np.ndarray
    QEp: np.ndarray
    tau2: np.ndarray | None
    I2: np.ndarray | None
    H2: np.ndarray | None
    sigma2: dict[str, np.ndarray]
    converged: np.ndarray
    errors: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per left-out unit and coefficient (machine names)."""
        frames = []
        for j, name in enumerate(self.coef_names):
            cols: dict[str, Any] = {
                "unit": list(self.units),
                "coefficient": name,
                "k": self.k,
                "n_clusters": self.n_clusters,
                "estimate": self.estimate[:, j],
                "se": self.se[:, j],
                "stat": self.stat[:, j],
                "df": self.df if self.df is not None else np.nan,
                "pval": self.pval[:, j],
                "ci_lb": self.ci_lb[:, j],
                "ci_ub": self.ci_ub[:, j],
                "QE": self.QE,
                "QEp": self.QEp,
            }
            if self.tau2 is not None:
                cols.update({"tau2": self.tau2, "I2": self.I2, "H2": self.H2})
            for level, values in self.sigma2.items():
                cols[f"sigma2_{level}"] = values
            cols["converged"] = self.converged
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})


def leave_one_out(
    data: pd.DataFrame,
    call: ModelCall,
    by: str | None = None,
    *,
    refits: Refits | None = None,
) -> LeaveOneOut:
    """Refit ``call`` without each cluster of ``by`` (e.g. each study), or each row.

    As metafor's ``leave1out()`` for ``rma`` models (``by=None``; Viechtbauer 2010), and as
    ``rma.mv(..., subset = study != s)`` for each study ``s`` for multilevel models. Every refit
    re-estimates the variance components.

    Parameters
    ----------
    data : one row per effect size
    call : the model
    by : cluster column (the study key), or None for one row at a time
    refits : ``refit_without(data, call, by)`` if at hand (it is shared with
        :func:`intervention_meta.methods.influence.cluster_influence`)
    """
    if refits is None:
        refits = refit_without(data, call, by)
    if refits.by != by:
        raise ValueError(f"refits are by {refits.by!r}, not by {by!r}")
    full = refits.full
    n, p = len(refits.refits), full.p

    def empty(*shape: int) -> np.ndarray:
        return np.full(shape, np.nan)

    est, se, stat, pval, lb, ub = (empty(n, p) for _ in range(6))
    df = empty(n) if full.dfs is not None else None
    qe, qep, k, ncl = empty(n), empty(n), empty(n), empty(n)
    one_level = not full.multilevel
    tau2, i2, h2 = (empty(n) if one_level else None for _ in range(3))
    sigma2 = {name: empty(n) for name in full.sigma2}
    for j, r in enumerate(refits.refits):
        if not r.ok:
            continue
        res = r.result
        est[j], se[j], stat[j], pval[j] = res.b, res.se, res.stat, res.pval
        lb[j], ub[j] = res.ci_lb, res.ci_ub
        if df is not None:
            df[j] = res.dfs[0]
        qe[j], qep[j], k[j] = res.QE, res.QEp, res.k
        ncl[j] = res.n_levels[res.random[0]] if res.multilevel else res.k
        if one_level:
            tau2[j] = res.tau2 or 0.0
            i2[j], h2[j] = res.I2, res.H2
        for name, value in res.sigma2.items():
            sigma2[name][j] = value
    return LeaveOneOut(
        by=by,
        units=refits.units,
        coef_names=full.coef_names,
        test=full.test,
        k=k,
        n_clusters=ncl,
        estimate=est,
        se=se,
        stat=stat,
        df=df,
        pval=pval,
        ci_lb=lb,
        ci_ub=ub,
        QE=qe,
        QEp=qep,
        tau2=tau2,
        I2=i2,
        H2=h2,
        sigma2=sigma2,
        converged=np.array([r.ok and r.result.converged for r in refits.refits]),
        errors={r.unit: r.error for r in refits.refits if not r.ok},
    )


# --------------------------------------------------------------------------- outliers
@dataclass(frozen=True)
class OutlierAnalysis:
    """The model without the effect sizes whose |studentized deleted residual| > threshold.

    Attributes
    ----------
    threshold : the cut-off
    rule : the rule in words
    residuals : every row's studentized deleted residual
    removed : index labels of the removed rows
    result : the refit without them (None when nothing was removed or the refit failed)
    error : why the refit failed
    """

    threshold: float
    rule: str
    residuals: DeletedResiduals
    removed: tuple
    result: MetaResult | None
    error: str | None = None

    def to_dict(self) -> dict:
        return jsonable(
            {
                "threshold": self.threshold,
                "rule": self.rule,
                "removed": list(self.removed),
                "n_removed": len(self.removed),
                "result": None if self.result is None else _coef_summary(self.result),
                "error": self.error,
            }
        )


def remove_outliers(
    data: pd.DataFrame,
    call: ModelCall,
    threshold: float = 3.0,
    *,
    residuals: DeletedResiduals | None = None,
) -> OutlierAnalysis:
    """Refit ``call`` without the rows whose :math:`|z_i| >` ``threshold``, :math:`z_i` the
    studentized deleted residual of :func:`intervention_meta.methods.influence.deleted_residuals`
    (metafor ``rstudent``; Viechtbauer & Cheung 2010).

    ``residuals``: the residuals of ``data`` under ``call`` if at hand.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    rows = call.complete(data)
    if residuals is None:
        residuals = deleted_residuals(rows, call)
    z = np.asarray(residuals.z, dtype=float)
    out = np.abs(z) > threshold
    removed = tuple(lab for lab, o in zip(residuals.labels, out, strict=True) if o)
    rule = (
        f"effect sizes with |studentized deleted residual| > {threshold:g} removed "
        "(residual of each effect size against the model refitted without it; metafor rstudent)"
    )
    result, error = None, None
    if removed:
        try:
            result = call.fit(rows.drop(index=list(removed)))
        except ModelError as err:
            error = str(err)
    return OutlierAnalysis(threshold, rule, residuals, removed, result, error)


# --------------------------------------------------------------------------- estimators
#: what a model fit or a CR2 variance can raise on data too small for it (e.g. one study)
_ROBUST_ERRORS = (ModelError, ValueError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class EstimateRow:
    """The pooled effect under one estimator / working model / inference."""

    model: str
    inference: str
    method: str
    structure: str
    rho: float | None
    estimate: float
    se: float
    statistic: float
    df: float | None
    pval: float
    ci_lb: float
    ci_ub: float
    k: int
    n_studies: int | None
    tau2: float | None = None
    sigma2: dict[str, float] | None = None
    i2: float | None = None
    converged: bool = True
    note: str = ""

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class EstimatorComparison:
    """Pooled effects under several estimators and working models (one row each)."""

    level: float
    rows: tuple[EstimateRow, ...]
    errors: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in self.rows])

    def to_dict(self) -> dict:
        return jsonable(
            {"level": self.level, "rows": [r.to_dict() for r in self.rows], "errors": self.errors}
        )


def _model_row(
    result: MetaResult, model: str, inference: str, structure: str, note: str = ""
) -> EstimateRow:
    s = _coef_summary(result)
    return EstimateRow(
        model=model,
        inference=inference,
        method=result.method,
        structure=structure,
        rho=result.rho,
        estimate=s["estimate"],
        se=s["se"],
        statistic=s["statistic"],
        df=s["df"],
        pval=s["pval"],
        ci_lb=s["ci_lb"],
        ci_ub=s["ci_ub"],
        k=result.k,
        n_studies=result.n_levels[result.random[0]] if result.multilevel else None,
        tau2=s.get("tau2"),
        sigma2=s.get("sigma2"),
        i2=s.get("i2", s.get("i2_total")),
        converged=result.converged,
        note=note,
    )


#: the inference of the estimator comparison's CR2 rows
ROBUST_INFERENCE = "CR2 cluster-robust (Satterthwaite df)"


def _robust_row(
    result: MetaResult, model: str, structure: str, level: float, note: str = ""
) -> EstimateRow:
    rob = result.robust(level=level)
    base = _model_row(result, model, ROBUST_INFERENCE, structure, note)
    return replace(
        base,
        estimate=float(rob.b[0]),
        se=float(rob.se[0]),
        statistic=float(rob.tval[0]),
        df=float(rob.df[0]),
        pval=float(rob.pval[0]),
        ci_lb=float(rob.ci_lb[0]),
        ci_ub=float(rob.ci_ub[0]),
    )


def compare_estimators(
    data: pd.DataFrame,
    *,
    study: str,
    es: str,
    yi: str = "yi",
    vi: str = "vi",
    estimators: Iterable[str] = ("FE", "DL", "REML", "ML", "PM"),
    method: str = "REML",
    test: str = "t",
    level: float = 0.95,
    che_rho: float = 0.6,
    rho_values: Iterable[float] = (0.2, 0.4, 0.6, 0.8),
    three_level: MetaResult | None = None,
) -> EstimatorComparison:
    """The pooled effect (intercept-only models) under several estimators and working models.

    Rows, in order:

    * each one-level estimator of ``estimators`` (metafor ``rma(yi, vi, method=...)``), the
      effect sizes treated as independent, with ``test`` (t: df = k - 1);
    * the three-level model (``random = [study, es]``, ``method``), model-based ``test``;
    * the same with CR2 cluster-robust inference by study (clubSandwich ``coef_test``);
    * the CHE working model: sampling errors correlated :math:`\\rho` within a study
      (:math:`\\mathrm{cov}(e_i, e_j) = \\rho\\sqrt{v_iv_j}`, clubSandwich's
      ``impute_covariance_matrix``) plus random study and effect-size effects, REML, with CR2
      inference (Pustejovsky & Tipton 2022) -- for ``che_rho`` and each of ``rho_values``.

    ``three_level``: the three-level fit if at hand. A model that cannot be fitted is left out
    with its reason in ``errors``.
    """
    rows: list[EstimateRow] = []
    errors: dict[str, str] = {}
    for m in estimators:
        name = "Fixed-effect (FE)" if m in ("FE", "EE") else f"Random-effects ({m})"
        try:
            res = ModelCall(yi=yi, vi=vi, method=m, test=test, level=level).fit(data)
        except ModelError as err:
            errors[name] = str(err)
            continue
        inference = {"t": "model-based t", "z": "model-based z", "knha": "Knapp-Hartung t"}[
            res.test
        ]
        rows.append(
            _model_row(res, name, inference, "one-level", "effect sizes treated as independent")
        )
    three = ModelCall(
        yi=yi, vi=vi, random=(study, es), method=method, test=model_test(test, True), level=level
    )
    try:
        res3 = three_level or three.fit(data)
    except ModelError as err:
        errors["Three-level"] = str(err)
        res3 = None
    if res3 is not None:
        name3 = f"Three-level ({res3.method})"
        nested = "effect sizes nested in studies"
        rows.append(_model_row(res3, name3, f"model-based {res3.test}", "three-level", nested))
        try:
            rows.append(_robust_row(res3, name3, "three-level", level, nested))
        except _ROBUST_ERRORS as err:
            errors[f"{name3}, CR2"] = str(err)
    rhos = list(dict.fromkeys([float(che_rho), *(float(r) for r in rho_values)]))
    for r in rhos:
        name = f"CHE (rho = {r:g})"
        note = "working model of the config (che_rho)" if r == float(che_rho) else "rho varied"
        try:
            res = replace(three, rho=r).fit(data)
            rows.append(_robust_row(res, name, "CHE", level, note))
        except _ROBUST_ERRORS as err:
            errors[name] = str(err)
    return EstimatorComparison(level=level, rows=tuple(rows), errors=errors)


# --------------------------------------------------------------------------- assumptions
@dataclass(frozen=True)
class AssumptionRow:
    """The pooled effect with the effect sizes recomputed under one value of one assumption.

    ``rows_assumed``: rows that use the assumed value (the effect-size step's
    ``defaults_used``); ``rows_reported``: rows that report their own value (unchanged);
    ``rows_changed``: rows whose yi or vi differ from the main analysis (``changed``: their keys,
    ``changed_by_es_input``: counted by ``es_input``).
    """

    option: str
    description: str
    value: float
    main: bool
    rows_assumed: int
    rows_reported: int
    rows_changed: int
    changed_by_es_input: dict[str, int]
    changed: tuple
    missing: tuple
    result: dict | None
    error: str | None = None

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class AssumptionVariation:
    """One :class:`AssumptionRow` per (option, value)."""

    rows: tuple[AssumptionRow, ...]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in self.rows])

    def to_dict(self) -> dict:
        return {"rows": [r.to_dict() for r in self.rows]}


def _rows_reported(counts: Mapping[str, Any], used: str) -> int:
    """Rows that report the quantity themselves (where the assumption would otherwise apply)."""
    assumed = int(counts["defaults_used"].get(used, 0))
    if used == "r_prepost":
        applicable = int(counts["by_es_input"].get("prepost", {}).get("computed", 0))
    else:
        applicable = int(counts.get("design_effect_applied", 0))
    return max(0, applicable - assumed)


def vary_assumptions(
    clean_effects: pd.DataFrame,
    base: pd.DataFrame,
    call: ModelCall,
    *,
    key: str,
    variations: Mapping[str, Iterable[float]],
    effect_options: Mapping[str, Any] | None = None,
    higher_is_worse_levels: Any = None,
    source_name: str = "effects",
) -> AssumptionVariation:
    """Recompute the effect sizes under other values of the effect-size step's defaults, refit.

    For each option of ``variations`` (``r_prepost_default``, ``icc_default``,
    ``cluster_size_default``) and each value,
    :func:`~intervention_meta.effect_sizes.compute.compute_effect_sizes` runs on
    ``clean_effects`` with ``effect_options`` and that one value changed; the new yi/vi replace
    those of ``base`` (the analysis data, matched by ``key``) and ``call`` is refitted. Rows that
    report their own r / ICC / cluster size are computed as before and do not change.

    Parameters
    ----------
    clean_effects : the cleaned effects table (``clean/effects.csv`` read with its codebook)
    base : the analysis data (its yi/vi are the main analysis's)
    call : the analysis model
    key : the effect-size key column
    variations : option -> values
    effect_options : the effect-size step's options (``config["effect_sizes"]``)
    higher_is_worse_levels, source_name : passed to ``compute_effect_sizes``
    """
    options = dict(effect_options or {})
    rows: list[AssumptionRow] = []
    base_keys = base[key].astype(str)
    for option, values in variations.items():
        if option not in ASSUMPTIONS:
            raise ValueError(f"cannot vary {option!r}; one of {sorted(ASSUMPTIONS)}")
        used, description = ASSUMPTIONS[option]
        main_value = options.get(option)
        for value in values:
            value = float(value)
            es = compute_effect_sizes(
                clean_effects,
                higher_is_worse_levels=higher_is_worse_levels,
                key=key,
                source_name=source_name,
                **{**options, option: value},
            )
            new = es.table.assign(_key=es.table[key].astype(str)).set_index("_key")
            present = base_keys.isin(new.index).to_numpy()
            missing = tuple(base.loc[~present, key])
            data = base.loc[present].copy()
            keys = base_keys[present]
            yi_new = new.loc[keys, call.yi].to_numpy(dtype=float)
            vi_new = new.loc[keys, call.vi].to_numpy(dtype=float)
            yi_old = data[call.yi].to_numpy(dtype=float)
            vi_old = data[call.vi].to_numpy(dtype=float)
            changed = ~(
                np.isclose(yi_new, yi_old, rtol=1e-12, atol=1e-15)
                & np.isclose(vi_new, vi_old, rtol=1e-12, atol=1e-15)
            )
            data[call.yi], data[call.vi] = yi_new, vi_new
            by_input: dict[str, int] = {}
            if "es_input" in data.columns and changed.any():
                by_input = {
                    str(k): int(v)
                    for k, v in data.loc[changed, "es_input"].value_counts(sort=False).items()
                }
            result, error = None, None
            try:
                result = _coef_summary(call.fit(data))
            except ModelError as err:
                error = str(err)
            rows.append(
                AssumptionRow(
                    option=option,
                    description=description,
                    value=value,
                    main=main_value is not None and float(main_value) == value,
                    rows_assumed=int(es.counts["defaults_used"].get(used, 0)),
                    rows_reported=_rows_reported(es.counts, used),
                    rows_changed=int(changed.sum()),
                    changed_by_es_input=by_input,
                    changed=tuple(data.loc[changed, key]),
                    missing=missing,
                    result=result,
                    error=error,
                )
            )
    return AssumptionVariation(rows=tuple(rows))


# --------------------------------------------------------------------------- risk of bias
#: a risk-of-bias subset with fewer studies is not fitted (its row says so and a flag is raised)
MIN_RESTRICTED_STUDIES = 3


@dataclass(frozen=True)
class RiskOfBiasRestriction:
    """The analysis model refitted on the results whose overall risk-of-bias judgement is one of
    ``codes`` (``key``: ``low`` or ``not_high``); ``result`` is None when the subset was too small
    or the model could not be fitted (``error`` says why)."""

    key: str
    description: str
    variable: str
    codes: tuple[str, ...]
    k: int
    n_studies: int
    studies: tuple
    result: dict | None = None
    error: str = ""

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


def restrict_risk_of_bias(
    data: pd.DataFrame,
    call: ModelCall,
    spec: RiskOfBiasSpec,
    codebook: Codebook,
    study: str,
    *,
    min_studies: int = MIN_RESTRICTED_STUDIES,
) -> tuple[RiskOfBiasRestriction, ...]:
    """The analysis model ``call`` refitted on the rows of ``data`` at low risk of bias, and on
    those not at high risk (:meth:`RiskOfBiasSpec.restrictions`), by the overall judgement
    ``spec.overall`` -- a studies variable (every effect size of a study is kept or dropped with
    it) or an effects variable (judged per result). Rows without a judgement are in neither
    subset. A subset with fewer than ``min_studies`` studies is not fitted.
    """
    codes = data[spec.overall].map(lambda v: "" if pd.isna(v) else normalise_code(v))
    out = []
    for key, what, keep in spec.restrictions(codebook[spec.overall]):
        subset = data.loc[codes.isin(keep).to_numpy()]
        studies = tuple(pd.unique(subset[study]))
        result, error = None, ""
        if len(studies) < min_studies:
            error = (
                f"{len(studies)} {'study' if len(studies) == 1 else 'studies'} with {what} "
                f"(fewer than {min_studies}): not fitted"
            )
        else:
            try:
                result = _coef_summary(call.fit(subset))
            except ModelError as err:
                error = f"the model could not be fitted ({err})"
        out.append(
            RiskOfBiasRestriction(
                key,
                what,
                spec.overall,
                tuple(keep),
                len(subset),
                len(studies),
                studies,
                result,
                error,
            )  # fmt: skip
        )
    return tuple(out)


# --------------------------------------------------------------------------- the step
@dataclass(frozen=True, eq=False)
class SensitivityResult:
    """Everything the sensitivity step computed (see the module docstring)."""

    ad: AnalysisData = field(repr=False)
    spec: ModelSpec
    call: ModelCall
    options: dict
    full: MetaResult
    loo: LeaveOneOut
    influence: ClusterInfluence
    outliers: OutlierAnalysis
    estimators: EstimatorComparison
    assumptions: AssumptionVariation
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    risk_of_bias: tuple[RiskOfBiasRestriction, ...] = ()

    # ---------------------------------------------------------------- helpers
    def _component_headers(self) -> dict[str, str]:
        """Key of each variance component -> its readable name: ``sigma2_between`` (study
        level), ``sigma2_within`` (effect-size level), ``sigma2.<level>`` (any other), or
        ``tau2`` for a one-level model."""
        if self.full.multilevel:
            study, es = self.ad.study, self.ad.es
            keys = {study: "sigma2_between", es: "sigma2_within"}
            names = {
                study: f"sigma2 between studies ({self.ad.label(study)})",
                es: f"sigma2 within studies ({self.ad.label(es)})",
            }
            return {
                keys.get(lev, f"sigma2.{lev}"): names.get(lev, f"sigma2 {lev}")
                for lev in self.full.sigma2
            }
        return {"tau2": "tau2"}

    def _study_key(self, labels: Sequence) -> list:
        data = self.ad.data
        return [data.loc[lab, self.ad.study] for lab in labels]

    # ---------------------------------------------------------------- tables
    def leave_one_out_table(self) -> ResultTable:
        """The table ``leave_one_out``: the first row (``all_studies`` true) the fit with every
        study, then one row per study left out (``study``: its study key)."""
        comp = self._component_headers()
        # the variance component (sigma2 level or tau2) of each key of comp
        levels = dict(zip(comp, [*self.full.sigma2] or ["tau2"], strict=True))
        headers = columns(
            "study k n_studies",
            ESTIMATE_KEYS,
            "df p",
            *comp,
            "converged",
            study=f"{self.ad.label(self.ad.study)} left out",
            all_studies=None,
            **comp,
        )
        j = 0
        loo = self.loo
        rows = []
        full = _coef_summary(self.full)

        def row(unit, k, n, est, se, df, p, lb, ub, comps, converged):
            out = {
                "study": unit,
                "all_studies": unit is FULL,
                "k": k,
                "n_studies": n,
                "estimate": est,
                "se": se,
                "ci_lb": lb,
                "ci_ub": ub,
                "df": df,
                "p": p,
            }
            out.update({key: comps.get(level) for key, level in levels.items()})
            out["converged"] = "yes" if converged else "no"
            return out

        comps_full = full.get("sigma2", {"tau2": full.get("tau2")})
        n_full = self.ad.n_studies
        rows.append(
            row(
                FULL,
                full["k"],
                n_full,
                full["estimate"],
                full["se"],
                full["df"],
                full["pval"],
                full["ci_lb"],
                full["ci_ub"],
                comps_full,
                full["converged"],
            )
        )
        for i, unit in enumerate(loo.units):
            comps = {name: loo.sigma2[name][i] for name in loo.sigma2}
            if loo.tau2 is not None:
                comps["tau2"] = loo.tau2[i]
            rows.append(
                row(
                    unit,
                    loo.k[i],
                    n_full - 1,
                    loo.estimate[i, j],
                    loo.se[i, j],
                    None if loo.df is None else loo.df[i],
                    loo.pval[i, j],
                    loo.ci_lb[i, j],
                    loo.ci_ub[i, j],
                    comps,
                    loo.converged[i],
                )
            )
        return result_table(rows, headers, self.spec.level)

    def influence_table(self) -> ResultTable:
        """The table ``influence``: one row per study (``study``: its key) with Cook's distance,
        ``dfbetas.<coefficient>``, ``hat`` (sum of its hat values), ``x2`` and the estimate
        without it."""
        inf = self.influence
        study = self.ad.label(self.ad.study)
        dfbetas = {
            f"dfbetas.{name}": f"DFBETAS ({'overall effect' if name == 'intrcpt' else name})"
            for name in inf.coef_names
        }
        headers = columns(
            "study k cook_d",
            *dfbetas,
            "hat x2 estimate_without",
            study=study,
            **dfbetas,
            x2=f"Studentized deleted residual X2 of the {study.lower()}",
        )
        cols: dict[str, Any] = {"study": list(inf.units), "k": inf.k, "cook_d": inf.cook_d}
        for j, key in enumerate(dfbetas):
            cols[key] = inf.dfbetas[:, j]
        cols["hat"] = inf.hat
        cols["x2"] = inf.x2
        cols["estimate_without"] = inf.b_del[:, 0]
        return result_table(pd.DataFrame(cols), headers)

    def outliers_table(self) -> ResultTable:
        """The table ``outliers``: every effect size (``effect_size``, ``study``: their keys) with
        its studentized deleted residual ``z``, largest first; ``removed`` yes/no."""
        res = self.outliers.residuals
        data = self.ad.data
        labels = list(res.labels)
        removed = set(self.outliers.removed)
        headers = columns(
            "effect_size study yi vi z removed",
            effect_size=self.ad.label(self.ad.es),
            study=self.ad.label(self.ad.study),
            removed=f"Removed (|residual| > {self.outliers.threshold:g})",
        )
        frame = pd.DataFrame(
            {
                "effect_size": [data.loc[lab, self.ad.es] for lab in labels],
                "study": self._study_key(labels),
                "yi": [data.loc[lab, self.call.yi] for lab in labels],
                "vi": [data.loc[lab, self.call.vi] for lab in labels],
                "z": res.z,
                "removed": ["yes" if lab in removed else "no" for lab in labels],
            }
        )
        order = np.argsort(-np.abs(np.nan_to_num(res.z, nan=-np.inf)), kind="stable")
        return result_table(frame.iloc[order].reset_index(drop=True), headers)

    def estimators_table(self) -> ResultTable:
        """The table ``estimators``: the pooled effect under each estimator and working model."""
        headers = columns(
            "model inference",
            ESTIMATE_KEYS,
            "df p tau2 sigma2_between sigma2_within i2 k note",
            tau2="tau2 (one-level)",
        )
        study, es = self.ad.study, self.ad.es
        rows = []
        for r in self.estimators.rows:
            s2 = r.sigma2 or {}
            rows.append(
                {
                    "model": r.model,
                    "inference": r.inference,
                    "estimate": r.estimate,
                    "se": r.se,
                    "ci_lb": r.ci_lb,
                    "ci_ub": r.ci_ub,
                    "df": r.df,
                    "p": r.pval,
                    "tau2": r.tau2,
                    "sigma2_between": s2.get(study),
                    "sigma2_within": s2.get(es),
                    "i2": r.i2,
                    "k": r.k,
                    "note": r.note,
                }
            )
        return result_table(rows, headers, self.spec.level)

    def assumptions_table(self) -> ResultTable:
        """The table ``assumptions``: the pooled effect with each assumed value of the
        effect-size computation (``option``, ``value``; ``main`` yes for the main analysis)."""
        headers = columns(
            "assumption option value main rows_assumed rows_reported rows_changed",
            "changed_by_es_input",
            ESTIMATE_KEYS,
            "p k note",
        )
        rows = []
        for a in self.assumptions.rows:
            res = a.result or {}
            changed = ", ".join(f"{k}: {v}" for k, v in a.changed_by_es_input.items())
            rows.append(
                {
                    "assumption": a.description,
                    "option": a.option,
                    "value": a.value,
                    "main": "yes" if a.main else "no",
                    "rows_assumed": a.rows_assumed,
                    "rows_reported": a.rows_reported,
                    "rows_changed": a.rows_changed,
                    "changed_by_es_input": changed,
                    "estimate": res.get("estimate"),
                    "se": res.get("se"),
                    "ci_lb": res.get("ci_lb"),
                    "ci_ub": res.get("ci_ub"),
                    "p": res.get("pval"),
                    "k": res.get("k"),
                    "note": a.error or "",
                }
            )
        if not rows:
            rows.append({"assumption": "none varied", "note": "; ".join(self.notes)})
        return result_table(rows, headers, self.spec.level)

    def summary_table(self) -> ResultTable:
        """The table ``summary``: one row per sensitivity analysis of the pooled effect; ``kind``
        says which (``model``, ``outliers``, ``leave_one_out``, ``che``)."""
        rows = []

        def add(
            kind: str, analysis: str, what: str, s: Mapping[str, Any] | None, n_studies: Any
        ) -> None:
            s = s or {}
            rows.append(
                {
                    "kind": kind,
                    "analysis": analysis,
                    "changed": what,
                    "k": s.get("k"),
                    "n_studies": n_studies,
                    "estimate": s.get("estimate"),
                    "se": s.get("se"),
                    "ci_lb": s.get("ci_lb"),
                    "ci_ub": s.get("ci_ub"),
                    "df": s.get("df"),
                    "p": s.get("pval"),
                }
            )

        add(
            "model",
            "Analysis model",
            self.spec.describe(),
            _coef_summary(self.full),
            self.ad.n_studies,
        )
        o = self.outliers
        if o.result is not None:
            out_studies = o.result.n_levels.get(self.ad.study) if o.result.multilevel else None
            add(
                "outliers",
                "Outliers removed",
                f"{len(o.removed)} effect size(s): {o.rule}",
                _coef_summary(o.result),
                out_studies,
            )
        else:
            why = o.error or f"no effect size beyond {o.threshold:g}; same as the analysis model"
            add(
                "outliers",
                "Outliers removed",
                why,
                _coef_summary(self.full) if not o.error else None,
                self.ad.n_studies,
            )
        loo = self.loo
        est = loo.estimate[:, 0]
        if np.isfinite(est).any():
            study = self.ad.label(self.ad.study).lower()
            for pick, word in ((np.nanargmin(est), "smallest"), (np.nanargmax(est), "largest")):
                s = {
                    "k": loo.k[pick],
                    "estimate": est[pick],
                    "se": loo.se[pick, 0],
                    "ci_lb": loo.ci_lb[pick, 0],
                    "ci_ub": loo.ci_ub[pick, 0],
                    "df": None if loo.df is None else loo.df[pick],
                    "pval": loo.pval[pick, 0],
                }
                n = self.ad.n_studies - 1
                add(
                    "leave_one_out",
                    f"Leave one {study} out ({word} estimate)",
                    f"without {study} {loo.units[pick]}",
                    s,
                    n,
                )
        for r in self.estimators.rows:
            if r.structure == "CHE" and r.note.startswith("working model"):
                add(
                    "che",
                    f"{r.model}, CR2",
                    "CHE working model with cluster-robust inference",
                    r.to_dict() | {"k": r.k},
                    r.n_studies,
                )
        for r in self.risk_of_bias:
            add(
                "risk_of_bias",
                f"Only {r.description}",
                f"{r.variable} = {', '.join(r.codes)}",
                r.result or {"k": r.k},
                r.n_studies,
            )
            if r.error:
                rows[-1]["note"] = r.error
        return result_table(rows, SUMMARY_HEADERS, self.spec.level)

    def tables(self) -> dict[str, ResultTable]:
        """The step's tables by name (:data:`TABLES`; in ``models/sensitivity.json``)."""
        return {
            "summary": self.summary_table(),
            "leave_one_out": self.leave_one_out_table(),
            "influence": self.influence_table(),
            "outliers": self.outliers_table(),
            "estimators": self.estimators_table(),
            "assumptions": self.assumptions_table(),
        }

    def frames(self) -> dict[str, pd.DataFrame]:
        """The readable tables by name (:data:`TABLES`); counts as integers."""
        return {name: t.to_frame(COUNTS) for name, t in self.tables().items()}

    def to_dict(self) -> dict:
        data = self.ad.data
        res = self.outliers.residuals
        labels = list(res.labels)
        return jsonable(
            {
                "analysis_model": self.spec.describe(),
                "call": self.call.to_dict(),
                "study": self.ad.study,
                "es": self.ad.es,
                "k": self.ad.k,
                "n_studies": self.ad.n_studies,
                "options": self.options,
                "full": self.full.to_dict(),
                "leave_one_out": self.loo.to_dict(),
                "influence": self.influence.to_dict(),
                "deleted_residuals": {
                    "definition": "metafor rstudent(res): each effect size against the model "
                    "refitted without it (variance components re-estimated)",
                    self.ad.es: [data.loc[lab, self.ad.es] for lab in labels],
                    self.ad.study: self._study_key(labels),
                    "resid": res.resid,
                    "se": res.se,
                    "z": res.z,
                },
                "outliers": self.outliers.to_dict()
                | {
                    "removed_" + self.ad.es: [
                        data.loc[lab, self.ad.es]
                        for lab in res.labels
                        if lab in set(self.outliers.removed)
                    ],
                },
                "estimators": self.estimators.to_dict(),
                "assumptions": self.assumptions.to_dict(),
                "risk_of_bias": [r.to_dict() for r in self.risk_of_bias],
                "notes": list(self.notes),
                "flags": list(self.flags),
                "level": self.spec.level,
                "tables": {name: t.to_dict() for name, t in self.tables().items()},
            }
        )


def _options(sensitivity: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = {**DEFAULTS, **dict(sensitivity or {})}
    if opts["outlier_rule"] != "studentized_residual":
        raise ValueError(f"unknown outlier_rule {opts['outlier_rule']!r}")
    return opts


def _flag_refits(
    flags: Flags, refits: Refits, analysis: str, unit: str, not_converged: str
) -> None:
    """Flag each refit of ``refits`` that failed (``<analysis>: refit without <unit> <id>:
    <error>``) and, if any did not converge, ``<analysis>: <not_converged> did not converge``."""
    for line in refits.failures:
        flags.add(f"{analysis}: refit without {unit} {line}")
    if refits.not_converged:
        flags.add(f"{analysis}: {not_converged} did not converge")


def sensitivity_analysis(
    ad: AnalysisData,
    spec: ModelSpec,
    *,
    sensitivity: Mapping[str, Any] | None = None,
    clean_effects: pd.DataFrame | None = None,
    effect_options: Mapping[str, Any] | None = None,
    source_name: str = "effects",
    flags: Flags | None = None,
    risk_of_bias: RiskOfBiasSpec | None = None,
) -> SensitivityResult:
    """All sensitivity analyses of the analysis model of ``spec`` on ``ad``.

    ``sensitivity``: ``config["sensitivity"]`` (defaults in :data:`DEFAULTS`);
    ``clean_effects``: the cleaned effects table for the assumption variation (skipped if None);
    ``effect_options``: ``config["effect_sizes"]``; ``risk_of_bias``: the config's
    ``risk_of_bias`` section (None: no risk-of-bias restrictions).
    """
    flags = flags or Flags(STEP)
    opts = _options(sensitivity)
    call = model_call(ad, spec)
    data = call.complete(ad.data)
    notes: list[str] = []
    full = call.fit(data)
    flags.check_fit(full, "analysis model")

    by_study = refit_without(data, call, ad.study, full=full)
    loo = leave_one_out(data, call, ad.study, refits=by_study)
    influence = cluster_influence(data, call, ad.study, refits=by_study)
    _flag_refits(
        flags,
        by_study,
        "leave-one-study-out",
        ad.study,
        f"refit(s) without {ad.study} {by_study.not_converged}",
    )

    by_row = refit_without(data, call, full=full)
    resid = deleted_residuals(data, call, refits=by_row)
    _flag_refits(
        flags,
        by_row,
        "studentized deleted residuals",
        "row",
        f"{len(by_row.not_converged)} refit(s) without one effect size",
    )
    outliers = remove_outliers(data, call, float(opts["outlier_threshold"]), residuals=resid)
    if outliers.removed:
        keys = [data.loc[lab, ad.es] for lab in outliers.removed]
        flags.add(
            f"{len(keys)} effect size(s) with |studentized deleted residual| > "
            f"{outliers.threshold:g} removed in the outlier analysis: {ad.es} {keys}"
        )
    if outliers.error:
        flags.add(f"outliers removed: the model could not be fitted ({outliers.error})")
    elif outliers.result is not None:
        flags.check_fit(outliers.result, "outliers removed")

    three = full if spec.multilevel else None
    estimators = compare_estimators(
        data,
        study=ad.study,
        es=ad.es,
        yi=call.yi,
        vi=call.vi,
        estimators=opts["estimators"],
        method=spec.method,
        test=spec.test,
        level=spec.level,
        che_rho=float(opts["che_rho"]),
        rho_values=opts["rho_values"],
        three_level=three,
    )
    for name, err in estimators.errors.items():
        flags.add(f"estimator comparison: {name} could not be fitted ({err})")
    for r in estimators.rows:
        if not r.converged:
            flags.add(f"estimator comparison: {r.model} did not converge")
        if r.inference == ROBUST_INFERENCE:
            flags.check_df(r.df, f"estimator comparison: {r.model}: CR2 t test")

    if clean_effects is not None:
        variations = {
            "r_prepost_default": opts["r_prepost_values"],
            "icc_default": opts["icc_values"],
        }
        assumptions = vary_assumptions(
            clean_effects,
            data,
            call,
            key=ad.es,
            variations=variations,
            effect_options=effect_options,
            higher_is_worse_levels=ad.codebook.higher_is_worse_levels(),
            source_name=source_name,
        )
        for a in assumptions.rows:
            if a.error:
                flags.add(f"{a.option} = {a.value:g}: the model could not be fitted ({a.error})")
            if a.missing:
                flags.add(
                    f"{a.option} = {a.value:g}: {len(a.missing)} effect size(s) of the "
                    f"analysis not recomputed: {list(a.missing)}"
                )
            if a.result is not None and not a.result["converged"]:
                flags.add(f"{a.option} = {a.value:g}: the model did not converge")
        for option in variations:
            touched = [a for a in assumptions.rows if a.option == option]
            if touched and all(a.rows_assumed == 0 for a in touched):
                notes.append(
                    f"{option}: no effect size uses the assumed value, so varying it "
                    "changes nothing"
                )
    else:
        assumptions = AssumptionVariation(rows=())
        notes.append("assumptions of the effect-size step not varied (no cleaned effects table)")
    notes.append(
        "rows that report their own pre-post correlation or ICC keep it when the default is varied"
    )
    restricted: tuple[RiskOfBiasRestriction, ...] = ()
    if risk_of_bias is not None:
        restricted = restrict_risk_of_bias(data, call, risk_of_bias, ad.codebook, ad.study)
        for r in restricted:
            if r.error:
                flags.add(f"risk of bias: only {r.description}: {r.error}")
            elif not r.result["converged"]:
                flags.add(f"risk of bias: only {r.description}: the model did not converge")
    return SensitivityResult(
        ad=ad,
        spec=spec,
        call=call,
        options=opts,
        full=full,
        loo=loo,
        influence=influence,
        outliers=outliers,
        estimators=estimators,
        assumptions=assumptions,
        flags=tuple(flags.lines),
        notes=tuple(notes),
        risk_of_bias=restricted,
    )


def run_sensitivity(
    *,
    effect_sizes: str | Path,
    clean_effects: str | Path,
    codebook: str | Path,
    summary: str | Path,
    leave_one_out: str | Path,
    influence: str | Path,
    outliers: str | Path,
    estimators: str | Path,
    assumptions: str | Path,
    json: str | Path,
    flags: str | Path,
    models: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    effect_size_options: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
    risk_of_bias: Mapping[str, Any] | None = None,
) -> SensitivityResult | None:
    """The sensitivity step: read the effect sizes (and the cleaned effects), run every analysis,
    write one CSV per table of :data:`TABLES` (the keywords of those names), the JSON and the
    flags. ``options`` is the config's ``sensitivity`` section, ``effect_size_options`` its
    ``effect_sizes`` section, ``flag_rules`` its ``flags`` section, ``risk_of_bias`` its
    ``risk_of_bias`` section (absent: no risk-of-bias restrictions).

    When the analysis model cannot be fitted at all (too few effect sizes), every output says so,
    a flag is raised and None is returned; the step does not fail."""
    paths = (summary, leave_one_out, influence, outliers, estimators, assumptions)
    tables = dict(zip(TABLES, paths, strict=True))
    step_flags = Flags(STEP, rules=FlagRules.from_config(flag_rules))
    spec = ModelSpec.from_config(models)
    ad = load_analysis_data(effect_sizes, codebook, levels=spec.levels)
    log.info(
        "%s: %s on %d effect sizes from %d studies",
        STEP,
        spec.describe(ad.level_names()),
        ad.k,
        ad.n_studies,
    )
    clean = read_clean(clean_effects, ad.codebook)
    try:
        result = sensitivity_analysis(
            ad,
            spec,
            sensitivity=dict(options or {}),
            clean_effects=clean,
            # the statistic columns of the codebook, as the effect-size step reads them
            effect_options={
                **dict(effect_size_options or {}),
                "requires": ad.codebook.statistic_columns(),
            },
            source_name=Path(clean_effects).name,
            flags=step_flags,
            risk_of_bias=RiskOfBiasSpec.from_config(risk_of_bias),
        )
    except ModelError as err:
        # data too small for the analysis model: say so in every output instead of failing
        reason = f"the analysis model could not be fitted ({err})"
        step_flags.add(f"no sensitivity analyses: {reason}")
        note = result_table([{"analysis": "not estimable", "note": reason}], SUMMARY_HEADERS)
        for name in TABLES:
            write_table(note.to_frame(), tables[name])
        write_json(
            {
                "analysis_model": spec.describe(ad.level_names()),
                "error": reason,
                "flags": step_flags.lines,
                "level": spec.level,
                "tables": {name: note.to_dict() for name in TABLES},
            },
            json,
        )
        step_flags.write(flags)
        return None
    for name, frame in result.frames().items():
        write_table(frame, tables[name])
    write_json(result.to_dict(), json)
    step_flags.write(flags)
    return result


__all__ = [
    "ASSUMPTIONS",
    "DEFAULTS",
    "TABLES",
    "AssumptionRow",
    "AssumptionVariation",
    "EstimateRow",
    "EstimatorComparison",
    "LeaveOneOut",
    "OutlierAnalysis",
    "RiskOfBiasRestriction",
    "SensitivityResult",
    "compare_estimators",
    "leave_one_out",
    "remove_outliers",
    "restrict_risk_of_bias",
    "run_sensitivity",
    "sensitivity_analysis",
    "vary_assumptions",
]
