"""Influence diagnostics of a (multilevel) meta-analytic model, as metafor 3.8 defines them.

Every diagnostic compares the fitted model with refits that leave out one unit -- one effect size
(one row) or one cluster (all effect sizes of a study). A refit re-estimates the variance
components; for a multilevel model it starts from the full model's estimates (as metafor's
``cooks.distance(res, cluster=...)`` does with ``reestimate=TRUE``); a one-level refit starts
where ``rma()`` starts (the Hedges estimate), so that its Fisher-scoring iterations, which stop at
a change of 1e-5, end where metafor's ``leave1out()`` and ``influence()`` end.

Notation: :math:`b, V_b` the full model's coefficients and their covariance, :math:`b_{(j)},
V_{b(j)}` those of the refit without unit :math:`j`, :math:`M` the marginal covariance of the
effect sizes (sampling covariance plus random effects), :math:`M_{(j)}` the *full* data's marginal
covariance at the refit's variance components, :math:`X_j, y_j` the rows of unit :math:`j`.

* **Hat values** (metafor ``hatvalues.rma.mv`` / ``.rma.uni``): the diagonal of
  :math:`H = X(X^\\top M^{-1}X)^{-1}X^\\top M^{-1}`; per cluster their sum (the cluster's
  leverage; the trace of H is p).
* **Cook's distance** (``cooks.distance``; Cook 1977, Viechtbauer & Cheung 2010):
  :math:`D_j = (b - b_{(j)})^\\top V_b^{-1} (b - b_{(j)})` over all coefficients.
* **DFBETAS** (``dfbetas.rma.mv``): :math:`(b - b_{(j)}) / \\sqrt{\\mathrm{diag}\\,V_b(M_{(j)})}`,
  where :math:`V_b(M_{(j)}) = (X^\\top M_{(j)}^{-1} X)^{-1}` uses all rows.
* **Studentized deleted residuals** (``rstudent.rma.mv``): for a row :math:`i`,
  :math:`(y_i - x_i b_{(i)})/\\sqrt{M_{(i),ii} + x_i V_{b(i)} x_i^\\top}`; for a cluster the
  quadratic form :math:`X^2_j = r_j^\\top (M_{(j),jj} + X_j V_{b(j)} X_j^\\top)^{-1} r_j` with
  :math:`r_j = y_j - X_j b_{(j)}`. For nested random intercepts :math:`M_{(i),ii} = v_i +
  \\sum_l \\hat\\sigma^2_{l(i)}`. With Knapp-Hartung tests (one level) the variances are scaled by
  the refit's :math:`s^2_w` as in ``influence.rma.uni``.
* **One-level influence** (``influence.rma.uni``; Viechtbauer & Cheung 2010): rstudent as above,
  DFFITS :math:`(\\hat y_i - x_i b_{(i)})/\\sqrt{s^2_{w(i)} h_i (\\hat\\tau^2_{(i)} + v_i)}`,
  Cook's distance, COVRATIO :math:`\\det V_{b(i)}/\\det V_b`, the refit's :math:`\\tau^2` and
  :math:`Q_E`, hat value, weight (%), DFBETAS :math:`(b - b_{(i)})/\\sqrt{s^2_{w(i)}\\,
  \\mathrm{diag}(X^\\top W_{(i)} X)^{-1}}` with :math:`W_{(i)} = \\mathrm{diag}(1/(v +
  \\hat\\tau^2_{(i)}))` over all rows, and metafor's "influential" mark: :math:`|DFFITS| >
  3\\sqrt{p/(k-p)}`, or :math:`P(\\chi^2_p \\le D) > 0.5`, or :math:`h > 3p/k`, or any
  :math:`|DFBETAS| > 1`.

A refit that fails, or that loses a coefficient (a factor level found only in the left-out
rows), gives NaN for that unit, as metafor gives NA.

References
----------
Cook, R. D. (1977). Detection of influential observation in linear regression. *Technometrics*,
19, 15-18.
Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics for meta-analysis.
*Research Synthesis Methods*, 1, 112-125.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable as _plain
from intervention_meta.models import MetaResult, ModelError, fit
from intervention_meta.models import distributions as dist
from intervention_meta.models.fitting import (
    coefficient_covariance,
    fit_subsets,
    marginal_covariance,
)

log = logging.getLogger(__name__)

__all__ = [
    "ClusterInfluence",
    "DeletedResiduals",
    "ModelCall",
    "OneLevelInfluence",
    "Refit",
    "Refits",
    "cluster_influence",
    "deleted_residuals",
    "hat_values",
    "influence_one_level",
    "refit_without",
]

_EPS = np.finfo(float).eps


# --------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class ModelCall:
    """How a model is fitted: the arguments of :func:`intervention_meta.models.fit` but the data.

    Refits of a sensitivity analysis are the same call on other rows. ``random=()`` is the
    one-level model (metafor ``rma``), ``("study", "es")`` the three-level model
    (``rma.mv(random = ~ 1 | study/es)``); ``rho`` the CHE working model's within-study
    correlation of sampling errors; ``threshold`` the convergence threshold of the variance
    components (None: the engine's default, see :class:`intervention_meta.models.Control`).
    The analysis model of a step is the call that
    :func:`intervention_meta.analyses.analysis_model.model_call` builds from the config.
    """

    yi: str = "yi"
    vi: str = "vi"
    mods: tuple[str, ...] = ()
    random: tuple[str, ...] = ()
    method: str = "REML"
    test: str = "z"
    level: float = 0.95
    intercept: bool = True
    rho: float | None = None
    threshold: float | None = None

    @property
    def multilevel(self) -> bool:
        return bool(self.random)

    @property
    def columns(self) -> list[str]:
        """The columns a fit uses (a row missing any of them is not part of the model)."""
        return list(dict.fromkeys([self.yi, self.vi, *self.mods, *self.random]))

    def complete(self, data: pd.DataFrame) -> pd.DataFrame:
        """The rows the model uses: those without a missing value in :attr:`columns`."""
        missing = [c for c in self.columns if c not in data.columns]
        if missing:
            raise ModelError(f"columns {missing} are not in the data")
        keep = ~data[self.columns].isna().any(axis=1).to_numpy()
        return data.loc[keep]

    def fit(
        self,
        data: pd.DataFrame,
        *,
        start: Mapping[str, float] | None = None,
        sigma2_fixed: Mapping[str, float] | None = None,
        tau2_fixed: float | None = None,
    ) -> MetaResult:
        """Fit the model to ``data``.

        ``start``: starting values of the variance components (multilevel models);
        ``sigma2_fixed`` / ``tau2_fixed``: fixed variance components (see
        :func:`intervention_meta.models.fit`).
        """
        return fit(
            data,
            self.yi,
            self.vi,
            mods=list(self.mods) or None,
            random=list(self.random) or None,
            method=self.method,
            test=self.test,
            level=self.level,
            intercept=self.intercept,
            rho=self.rho,
            sigma2_fixed=dict(sigma2_fixed) if sigma2_fixed is not None else None,
            tau2_fixed=tau2_fixed,
            control=self.control(start),
        )

    def control(self, start: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The estimation settings (``fit(control=...)``) of :meth:`fit`."""
        control: dict[str, Any] = {}
        if start is not None and self.multilevel:
            control["sigma2_init"] = dict(start)
        if self.threshold is not None:
            control["threshold"] = float(self.threshold)
        return control

    def fit_at(self, data: pd.DataFrame, result: MetaResult) -> MetaResult:
        """The model on ``data`` with its variance components fixed at those of ``result``."""
        if self.multilevel:
            return self.fit(data, sigma2_fixed=result.sigma2)
        if self.method in ("FE", "EE"):
            return self.fit(data)
        return self.fit(data, tau2_fixed=float(result.tau2 or 0.0))

    def to_dict(self) -> dict:
        return _plain({f.name: getattr(self, f.name) for f in fields(self)})


def _components(result: MetaResult) -> dict[str, float]:
    """The variance components by name (``tau2`` for a one-level model)."""
    if result.multilevel:
        return dict(result.sigma2)
    return {"tau2": float(result.tau2 or 0.0)}


def _total_variance(result: MetaResult) -> float:
    return float(sum(_components(result).values()))


def _model_arrays(result: MetaResult) -> tuple[np.ndarray, np.ndarray]:
    """The full model's model matrix and response, rows in data order."""
    blocks = result.cluster_blocks()
    X = np.empty((result.k, result.p))
    y = np.empty(result.k)
    for b in blocks:
        X[b.index] = b.X
        y[b.index] = b.y
    return X, y


# --------------------------------------------------------------------------- refits
@dataclass(frozen=True)
class Refit:
    """The model refitted without one unit.

    Attributes
    ----------
    unit : the left-out row's index label, or the left-out cluster's id
    rows : positions (0-based, in the model's rows) of the left-out rows
    result : the refit, or None when it failed or lost a coefficient
    error : why there is no result
    """

    unit: object
    rows: np.ndarray
    result: MetaResult | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass(frozen=True)
class Refits:
    """A full model and its refits without each unit (row or cluster) in turn.

    Attributes
    ----------
    call : how the models are fitted
    data : the model's rows (complete cases of ``call.columns``, original index)
    full : the fit to all rows
    by : the cluster column, or None for one row at a time
    refits : one per unit; clusters in sorted order (as metafor orders them), rows in data order
    """

    call: ModelCall
    data: pd.DataFrame
    full: MetaResult
    by: str | None
    refits: tuple[Refit, ...] = field(repr=False)

    @property
    def units(self) -> tuple:
        return tuple(r.unit for r in self.refits)

    @property
    def failures(self) -> list[str]:
        return [f"{r.unit}: {r.error}" for r in self.refits if not r.ok]

    @property
    def not_converged(self) -> list[object]:
        return [r.unit for r in self.refits if r.ok and not r.result.converged]


def _same_rows(result: MetaResult, rows: pd.DataFrame) -> bool:
    """Whether ``result`` was fitted to exactly the rows ``rows`` (same index, same order)."""
    return result._state.design.data.index.equals(rows.index)


def _unit_values(values: pd.Series) -> list:
    uniques = pd.unique(values)
    try:
        return sorted(uniques.tolist())
    except TypeError:  # mixed types: sort by their text
        return sorted(uniques.tolist(), key=str)


def refit_without(
    data: pd.DataFrame,
    call: ModelCall,
    by: str | None = None,
    *,
    full: MetaResult | None = None,
) -> Refits:
    """Refit ``call`` without each row (``by=None``) or each cluster of column ``by`` in turn.

    Parameters
    ----------
    data : one row per effect size; rows missing a column of ``call`` are not used
    call : the model
    by : cluster column (e.g. the study key), or None to leave out one row at a time
    full : the full model's fit to ``data`` if already at hand

    Returns
    -------
    Refits
        with a :class:`Refit` per unit. Multilevel refits start from the full model's variance
        components; one-level refits from the default (metafor's) starting value. Refits reuse
        the full model's coded design and are fitted together where the engine can batch them
        (:func:`~intervention_meta.models.fitting.fit_subsets`).
    """
    rows = call.complete(data)
    if full is None:
        full = call.fit(rows)
    start = full.sigma2 if call.multilevel else None
    if by is None:
        units = list(rows.index)
        masks = [np.arange(len(rows)) == i for i in range(len(rows))]
    else:
        if by not in rows.columns:
            raise ModelError(f"cluster column {by!r} is not in the data")
        if rows[by].isna().any():
            raise ModelError(f"cluster column {by!r} has missing values in the model's rows")
        units = _unit_values(rows[by])
        col = rows[by].to_numpy()
        masks = [col == u for u in units]
    if _same_rows(full, rows) and masks:
        fits = fit_subsets(full, ~np.array(masks), call.control(start))
    else:
        fits = [None] * len(masks)
    out = []
    for unit, mask, res in zip(units, masks, fits, strict=True):
        positions = np.flatnonzero(mask)
        try:
            if res is None:
                res = call.fit(rows.loc[~mask], start=start)
        except ModelError as err:
            out.append(Refit(unit, positions, None, str(err)))
            log.warning("refit without %s = %s failed: %s", by or "row", unit, err)
            continue
        if res.coef_names != full.coef_names:
            lost = sorted(set(full.coef_names) - set(res.coef_names))
            msg = f"the refit lacks coefficient(s) {lost or list(full.coef_names)}"
            out.append(Refit(unit, positions, None, msg))
            log.warning("refit without %s = %s: %s", by or "row", unit, msg)
            continue
        out.append(Refit(unit, positions, res))
    return Refits(call=call, data=rows, full=full, by=by, refits=tuple(out))


# --------------------------------------------------------------------------- hat values
def hat_values(result: MetaResult) -> np.ndarray:
    """Diagonal of the hat matrix :math:`X(X^\\top M^{-1}X)^{-1}X^\\top M^{-1}` (metafor
    ``hatvalues``), rows in data order; values within 10 machine epsilons of 1 are set to 1."""
    blocks = result.cluster_blocks()
    p = result.p
    A = np.zeros((p, p))
    winv = []
    for b in blocks:
        W = np.linalg.inv(b.V)
        winv.append(W)
        A += b.X.T @ W @ b.X
    Ainv = np.linalg.inv(A)
    h = np.empty(result.k)
    for b, W in zip(blocks, winv, strict=True):
        h[b.index] = np.einsum("ij,jk,ki->i", b.X @ Ainv, b.X.T, W)
    h[h > 1 - 10 * _EPS] = 1.0
    return h


# --------------------------------------------------------------------------- residuals
@dataclass(frozen=True)
class DeletedResiduals:
    """Studentized deleted residuals per effect size (metafor ``rstudent``).

    Attributes
    ----------
    labels : the rows' index labels (data order)
    resid : :math:`y_i - x_i b_{(i)}`
    se : its standard error
    z : ``resid / se``
    """

    labels: tuple
    resid: np.ndarray
    se: np.ndarray
    z: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"resid": self.resid, "se": self.se, "z": self.z}, index=pd.Index(self.labels)
        )

    def to_dict(self) -> dict:
        return _plain(
            {"labels": list(self.labels), "resid": self.resid, "se": self.se, "z": self.z}
        )


def deleted_residuals(
    data: pd.DataFrame, call: ModelCall, *, refits: Refits | None = None
) -> DeletedResiduals:
    """Studentized deleted residual of every effect size, as metafor 3.8's ``rstudent(res)``.

    :math:`z_i = (y_i - x_i b_{(i)}) / \\sqrt{s^2_{w(i)} (v_i + \\sum_l\\hat\\sigma^2_{l(i)}) +
    x_i V_{b(i)} x_i^\\top}` with the refit without row :math:`i` (its variance components
    re-estimated; :math:`s^2_w = 1` unless Knapp-Hartung). For rma.mv models this is
    ``rstudent.rma.mv`` without ``cluster``; for one-level models ``rstudent.rma.uni``
    (Viechtbauer & Cheung 2010).

    ``refits``: the result of ``refit_without(data, call)`` (one row at a time) if at hand.
    """
    if refits is None:
        refits = refit_without(data, call)
    if refits.by is not None:
        raise ValueError("deleted_residuals needs refits without one row at a time (by=None)")
    X, y = _model_arrays(refits.full)
    v = refits.data[call.vi].to_numpy(dtype=float)
    k = len(y)
    resid, se = np.full(k, np.nan), np.full(k, np.nan)
    for r in refits.refits:
        if not r.ok:
            continue
        i = int(r.rows[0])
        res = r.result
        s2w = res.s2w if res.s2w is not None else 1.0
        xi = X[i]
        resid[i] = y[i] - xi @ res.b
        se[i] = np.sqrt(s2w * (v[i] + _total_variance(res)) + xi @ res.vb @ xi)
    resid[np.abs(resid) < 100 * _EPS] = 0.0
    return DeletedResiduals(labels=refits.units, resid=resid, se=se, z=resid / se)


# --------------------------------------------------------------------------- per cluster
@dataclass(frozen=True)
class ClusterInfluence:
    """Influence of each cluster (study) on a fitted model, as metafor 3.8's
    ``cooks.distance(res, cluster=)``, ``dfbetas(res, cluster=)``, ``rstudent(res, cluster=)``
    and the per-cluster sum of ``hatvalues(res)``.

    Attributes
    ----------
    cluster : the cluster column
    units : cluster ids (sorted)
    k : effect sizes per cluster
    coef_names : the coefficients
    cook_d : Cook's distance (all coefficients)
    dfbetas : (n, p) DFBETAS
    hat : the cluster's summed hat values
    x2 : studentized deleted residual of the cluster (the quadratic form :math:`X^2_j`)
    b_del : (n, p) coefficients of the refits
    components_del : variance components of the refits by name
    converged : whether each refit converged
    errors : ``{unit: reason}`` of refits without a result (their values are NaN)
    """

    cluster: str
    units: tuple
    k: np.ndarray
    coef_names: tuple[str, ...]
    cook_d: np.ndarray
    dfbetas: np.ndarray
    hat: np.ndarray
    x2: np.ndarray
    b_del: np.ndarray
    components_del: dict[str, np.ndarray]
    converged: np.ndarray
    errors: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        cols: dict[str, Any] = {"unit": list(self.units), "k": self.k, "cook_d": self.cook_d}
        for j, name in enumerate(self.coef_names):
            cols[f"dfbetas_{name}"] = self.dfbetas[:, j]
        cols.update({"hat": self.hat, "x2": self.x2})
        return pd.DataFrame(cols)

    def to_dict(self) -> dict:
        return _plain({f.name: getattr(self, f.name) for f in fields(self)})


def cluster_influence(
    data: pd.DataFrame,
    call: ModelCall,
    cluster: str,
    *,
    refits: Refits | None = None,
) -> ClusterInfluence:
    """Cook's distance, DFBETAS, leverage and deleted residual of each cluster (study).

    Definitions as metafor 3.8 for ``rma.mv`` with ``cluster`` (see the module docstring):
    :math:`D_j = (b - b_{(j)})^\\top V_b^{-1}(b - b_{(j)})`; DFBETAS
    :math:`(b - b_{(j)})/\\sqrt{\\mathrm{diag}(X^\\top M_{(j)}^{-1}X)^{-1}}`; hat = the sum of the
    cluster's hat values; :math:`X^2_j = r_j^\\top(M_{(j),jj} + X_jV_{b(j)}X_j^\\top)^{-1}r_j`.

    ``refits``: the result of ``refit_without(data, call, by=cluster)`` if at hand.
    """
    if refits is None:
        refits = refit_without(data, call, by=cluster)
    if refits.by != cluster:
        raise ValueError(f"refits are by {refits.by!r}, not by {cluster!r}")
    full = refits.full
    n, p = len(refits.refits), full.p
    X, y = _model_arrays(full)
    vb_inv = np.linalg.inv(full.vb)
    hat = hat_values(full)
    cook, x2 = np.full(n, np.nan), np.full(n, np.nan)
    dfbs, b_del = np.full((n, p), np.nan), np.full((n, p), np.nan)
    names = list(_components(full))
    comps = {name: np.full(n, np.nan) for name in names}
    k = np.array([len(r.rows) for r in refits.refits])
    hat_sum = np.array([hat[r.rows].sum() for r in refits.refits])
    converged = np.array([r.ok and r.result.converged for r in refits.refits])
    # at the refit's variance components, on all rows: V_b and the cluster's marginal covariance
    # directly (the Knapp-Hartung factor of a one-level model needs the refit at fixed tau^2)
    direct = full.test != "knha" and _same_rows(full, refits.data)
    for j, r in enumerate(refits.refits):
        if not r.ok:
            continue
        res = r.result
        dfb = full.b - res.b
        b_del[j] = res.b
        for name, value in _components(res).items():
            comps[name][j] = value
        cook[j] = dfb @ vb_inv @ dfb
        rows = r.rows
        if direct:
            theta = np.array(list(_components(res).values()))
            vb_at = coefficient_covariance(full, theta)
            V = marginal_covariance(full, rows, theta)
        else:
            at = call.fit_at(refits.data, res)
            vb_at = at.vb
            V = next(b for b in at.cluster_blocks(cluster) if b.cluster == r.unit).V
        dfbs[j] = dfb / np.sqrt(np.diag(vb_at))
        resid = y[rows] - X[rows] @ res.b
        S = V + X[rows] @ res.vb @ X[rows].T
        x2[j] = resid @ np.linalg.solve(S, resid)
    return ClusterInfluence(
        cluster=cluster,
        units=refits.units,
        k=k,
        coef_names=full.coef_names,
        cook_d=cook,
        dfbetas=dfbs,
        hat=hat_sum,
        x2=x2,
        b_del=b_del,
        components_del=comps,
        converged=converged,
        errors={r.unit: r.error for r in refits.refits if not r.ok},
    )


# --------------------------------------------------------------------------- one level
@dataclass(frozen=True)
class OneLevelInfluence:
    """Case-deletion diagnostics of a one-level model, as metafor 3.8's ``influence(res)``.

    Arrays have one entry per effect size (data order); ``dfbetas`` is (k, p).
    """

    labels: tuple
    coef_names: tuple[str, ...]
    rstudent: np.ndarray
    dffits: np.ndarray
    cook_d: np.ndarray
    cov_r: np.ndarray
    tau2_del: np.ndarray
    qe_del: np.ndarray
    hat: np.ndarray
    weight: np.ndarray
    dfbetas: np.ndarray
    is_infl: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        cols: dict[str, Any] = {
            n: getattr(self, n)
            for n in (
                "rstudent",
                "dffits",
                "cook_d",
                "cov_r",
                "tau2_del",
                "qe_del",
                "hat",
                "weight",
            )
        }
        for j, name in enumerate(self.coef_names):
            cols[f"dfbetas_{name}"] = self.dfbetas[:, j]
        cols["is_infl"] = self.is_infl
        return pd.DataFrame(cols, index=pd.Index(self.labels))

    def to_dict(self) -> dict:
        return _plain({f.name: getattr(self, f.name) for f in fields(self)})


def influence_one_level(
    data: pd.DataFrame, call: ModelCall, *, refits: Refits | None = None
) -> OneLevelInfluence:
    """Externally studentized residuals, DFFITS, Cook's distance, COVRATIO, leave-one-out
    :math:`\\tau^2` and :math:`Q_E`, hat values, weights and DFBETAS of a one-level model, as
    metafor 3.8's ``influence.rma.uni`` (Viechtbauer & Cheung 2010; formulas in the module
    docstring).

    ``refits``: the result of ``refit_without(data, call)`` (one row at a time) if at hand.
    """
    if call.multilevel:
        raise ValueError("influence_one_level is for one-level models (call.random empty)")
    if refits is None:
        refits = refit_without(data, call)
    if refits.by is not None:
        raise ValueError("influence_one_level needs refits without one row at a time (by=None)")
    full = refits.full
    X, y = _model_arrays(full)
    v = refits.data[call.vi].to_numpy(dtype=float)
    k, p = X.shape
    hat = hat_values(full)
    pred = X @ full.b
    vb_inv = np.linalg.inv(full.vb)
    det_full = np.linalg.det(full.vb)
    tau2_del, qe_del, dffits, cook, cov_r = (np.full(k, np.nan) for _ in range(5))
    delpred, vdelpred, s2w_del = (np.full(k, np.nan) for _ in range(3))
    dfbs = np.full((k, p), np.nan)
    for r in refits.refits:
        if not r.ok:
            continue
        i = int(r.rows[0])
        res = r.result
        t2 = float(res.tau2 or 0.0)
        s2w = res.s2w if res.s2w is not None else 1.0
        tau2_del[i], qe_del[i], s2w_del[i] = t2, res.QE, s2w
        delpred[i] = X[i] @ res.b
        vdelpred[i] = X[i] @ res.vb @ X[i]
        dffits[i] = (pred[i] - delpred[i]) / np.sqrt(s2w * hat[i] * (t2 + v[i]))
        w = 1.0 / (v + t2)
        vb_del = np.linalg.inv(X.T @ (X * w[:, None]))
        dfb = full.b - res.b
        dfbs[i] = dfb / np.sqrt(s2w * np.diag(vb_del))
        cook[i] = dfb @ vb_inv @ dfb
        cov_r[i] = np.linalg.det(res.vb) / det_full
    resid = y - delpred
    resid[np.abs(resid) < 100 * _EPS] = 0.0
    rstudent = resid / np.sqrt(v * s2w_del + vdelpred + tau2_del * s2w_del)
    w_full = 1.0 / (v + float(full.tau2 or 0.0))
    weight = 100.0 * w_full / w_full.sum()
    with np.errstate(invalid="ignore"):
        is_infl = (
            (np.abs(dffits) > 3 * np.sqrt(p / (k - p)))
            | (dist.chi2_cdf(cook, p) > 0.5)
            | (hat > 3 * p / k)
            | np.any(np.abs(dfbs) > 1, axis=1)
        )
    return OneLevelInfluence(
        labels=refits.units,
        coef_names=full.coef_names,
        rstudent=rstudent,
        dffits=dffits,
        cook_d=cook,
        cov_r=cov_r,
        tau2_del=tau2_del,
        qe_del=qe_del,
        hat=hat,
        weight=weight,
        dfbetas=dfbs,
        is_infl=is_infl,
    )
