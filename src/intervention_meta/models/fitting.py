"""Fitting the meta-analytic model: one multilevel (RE)ML engine, of which the one-level
random-effects model is the case of a single level whose units are the rows.

Steps: build the design (:mod:`.design`), arrange the rows in outermost blocks
(:mod:`.likelihood`), estimate the variance components (ML/REML by Fisher scoring on the blockwise
likelihood, :mod:`.optimize`; or, for the one-level model, one of metafor's other estimators,
:mod:`.estimators`), then the GLS step at those components
:math:`\\hat\\beta = (X^\\top M^{-1}X)^{-1}X^\\top M^{-1}y`, :math:`\\mathrm{Var}(\\hat\\beta) =
(X^\\top M^{-1}X)^{-1}`, tests (:mod:`.inference`), heterogeneity (:mod:`.heterogeneity`), fit
statistics and prediction. What needs further fits is computed when first read from the result:
pseudo-R^2 (:func:`pseudo_r2`), likelihood-ratio tests of the random levels (:func:`level_tests`)
and the Q-profile CI (:func:`q_profile`).

Fit statistics (metafor's ``fit.stats``), with ``parms`` = p + number of estimated variance
components and :math:`\\ell_{sat} = -\\frac12(k\\log 2\\pi + \\log|S|)`:
ML deviance :math:`-2(\\ell_{ML} - \\ell_{sat})`, REML deviance :math:`-2\\ell_{REML}`,
AIC :math:`= -2\\ell + 2\\,parms`, BIC :math:`= -2\\ell + parms\\log n`, AICc
:math:`= -2\\ell + 2\\,parms\\,\\max(n, parms+2)/(\\max(n, parms+2) - parms - 1)` with
:math:`n = k` (ML) or :math:`k - p` (REML).

Pseudo-R^2 (metafor; Raudenbush 2009): :math:`100\\max(0, (\\sum\\hat\\sigma^2_0 -
\\sum\\hat\\sigma^2)/\\sum\\hat\\sigma^2_0)` with :math:`\\hat\\sigma^2_0` from the intercept-only
model fitted by the same method; for a FE/EE meta-regression metafor's adjusted R^2 of the weighted
least-squares regression (weights :math:`1/v_i`).

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
Van den Noortgate, W., Lopez-Lopez, J. A., Marin-Martinez, F., & Sanchez-Meca, J. (2013).
Three-level meta-analysis of dependent effect sizes. *Behavior Research Methods*, 45, 576-594.
Konstantopoulos, S. (2011). Fixed effects and variance components estimation in three-level
meta-analysis. *Research Synthesis Methods*, 2, 61-76.
Raudenbush, S. W. (2009). Analyzing effect sizes: random-effects models. In *The Handbook of
Research Synthesis and Meta-Analysis* (2nd ed., pp. 295-315).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from intervention_meta.models.covariance import check_rho
from intervention_meta.models.design import INTERCEPT_NAME, Design, build_design, subset_design
from intervention_meta.models.errors import ModelError
from intervention_meta.models.estimators import (
    NON_LIKELIHOOD,
    DiagonalP,
    estimate_tau2,
    he_estimate,
)
from intervention_meta.models.heterogeneity import (
    QProfileCI,
    VarianceDistribution,
    i2_h2,
    q_profile_ci,
    typical_variance,
    variance_distribution,
)
from intervention_meta.models.inference import TESTS, coefficient_tests, knha_factor, wald_test
from intervention_meta.models.likelihood import (
    LOG_2PI,
    BlockStructure,
    Evaluation,
    MarginalLikelihood,
    NotPositiveDefinite,
    build_structure,
)
from intervention_meta.models.optimize import (
    Convergence,
    Solver,
    maximize,
    maximize_batch,
    projected_gradient_norm,
)
from intervention_meta.models.results import LevelTest, MetaResult, ModelState

logger = logging.getLogger(__name__)

METHODS_ONE_LEVEL = ("FE", "EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM")
METHODS_MULTILEVEL = ("ML", "REML")
NO_HETEROGENEITY = ("FE", "EE")


@dataclass(frozen=True)
class Control:
    """Estimation settings (``fit(control={...})``).

    Attributes
    ----------
    threshold : Fisher scoring (and EB) stop when no variance component changes by more than this.
        Default 1e-5 for the one-level model (metafor ``rma()``; needed to reproduce its numbers)
        and 1e-10 for multilevel models (metafor's ``rma.mv`` optimises to about that precision).
    maxiter : iteration limit of each optimiser (default 100, as metafor; L-BFGS-B gets >= 1000)
    optimizer : ``"fisher"`` (Fisher scoring, L-BFGS-B fallback) or ``"lbfgsb"``
    boundary : Fisher scoring's rule for a step that overshoots zero: ``"halve"`` it (metafor
        ``rma()``, default for the one-level model) or ``"project"`` the component onto zero
        (default for multilevel models); see :mod:`~intervention_meta.models.optimize`
    ll0check : replace a local maximum by 0 if the likelihood is larger there (metafor)
    tau2_init / sigma2_init : starting values (default: HE estimate; rma.mv's data-based values)
    tau2_max : upper end of the PM/PMM search and of the Q-profile search
    level_tests : ``False``: ``result.level_tests`` stays empty (by default the likelihood-ratio
        test of each random level is computed when first read)
    confint : ``False``: ``result.confint`` stays None (by default the Q-profile interval of a
        one-level random-effects model is computed when first read)
    """

    threshold: float
    maxiter: int = 100
    optimizer: str = "fisher"
    boundary: str | None = None
    ll0check: bool = True
    tau2_init: float | None = None
    sigma2_init: Any = None
    tau2_max: float | None = None
    level_tests: bool = True
    confint: bool = True

    @classmethod
    def build(cls, control: Mapping[str, Any] | None, multilevel: bool) -> Control:
        control = dict(control or {})
        defaults = {
            "threshold": 1e-10 if multilevel else 1e-5,
            "boundary": "project" if multilevel else "halve",
        }
        if control.get("boundary") is None:
            control.pop("boundary", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(control) - known)
        if unknown:
            raise ModelError(f"unknown control setting(s) {unknown}; known: {sorted(known)}")
        out = cls(**{**defaults, **control})
        if out.optimizer not in ("fisher", "lbfgsb"):
            raise ModelError(
                f"control['optimizer'] must be 'fisher' or 'lbfgsb', not {out.optimizer!r}"
            )
        if out.boundary not in ("halve", "project"):
            raise ModelError(
                f"control['boundary'] must be 'halve' or 'project', not {out.boundary!r}"
            )
        if not (out.threshold > 0 and int(out.maxiter) >= 1):
            raise ModelError("control['threshold'] must be > 0 and control['maxiter'] >= 1")
        return out

    @property
    def solver(self) -> Solver:
        """The settings of :func:`~intervention_meta.models.optimize.maximize` (and ``_batch``)."""
        return Solver(
            threshold=self.threshold,
            maxiter=int(self.maxiter),
            ll0check=self.ll0check,
            optimizer=self.optimizer,
            boundary=self.boundary,
        )


@dataclass(frozen=True)
class _Components:
    theta: np.ndarray
    free: np.ndarray
    se: np.ndarray | None
    convergence: Convergence
    evaluation: Evaluation | None = None  # at theta with the response design.y, if computed
    projection: DiagonalP | None = None  # P with weights 1/v, if the estimator formed it


def _canonical(value: str, allowed: Sequence[str], what: str) -> str:
    if not isinstance(value, str):
        raise ModelError(f"{what} must be a string, got {value!r}")
    lookup = {a.lower(): a for a in allowed}
    if value.lower() not in lookup:
        raise ModelError(f"unknown {what} {value!r}; choose one of {list(allowed)}")
    return lookup[value.lower()]


def _fixed_components(
    design: Design,
    sigma2_fixed: Mapping[str, float] | Sequence[float | None] | float | None,
    tau2_fixed: float | None,
) -> np.ndarray:
    """Fixed variance components as an array (NaN = estimated), in level order."""
    if design.random:
        if tau2_fixed is not None:
            raise ModelError("tau2_fixed is for one-level models; use sigma2_fixed={level: value}")
        names = design.random
        out = np.full(len(names), np.nan)
        if sigma2_fixed is None:
            pass
        elif isinstance(sigma2_fixed, Mapping):
            unknown = sorted(set(sigma2_fixed) - set(names))
            if unknown:
                raise ModelError(
                    f"sigma2_fixed names unknown level(s) {unknown}; levels: {list(names)}"
                )
            for i, name in enumerate(names):
                val = sigma2_fixed.get(name)
                out[i] = np.nan if val is None else float(val)
        elif np.ndim(sigma2_fixed) == 0:
            out[:] = float(sigma2_fixed)
        else:
            vals = list(sigma2_fixed)
            if len(vals) != len(names):
                raise ModelError(f"sigma2_fixed has {len(vals)} values for {len(names)} levels")
            out[:] = [np.nan if v is None else float(v) for v in vals]
    else:
        if sigma2_fixed is not None:
            raise ModelError("sigma2_fixed is for multilevel models; use tau2_fixed")
        out = np.array([np.nan if tau2_fixed is None else float(tau2_fixed)])
    if np.any(out[~np.isnan(out)] < 0) or np.any(np.isinf(out)):
        raise ModelError(f"fixed variance components must be finite and >= 0, got {out.tolist()}")
    return out


def estimate_components(
    design: Design,
    structure: BlockStructure,
    method: str,
    fixed: np.ndarray,
    control: Control,
    start: np.ndarray | None = None,
    lik: MarginalLikelihood | None = None,
) -> _Components:
    """Variance components of the model (free ones estimated by ``method``).

    ``lik``: the (RE)ML likelihood of a multilevel model to maximise, if the caller already has it
    (its evaluations at repeated points, such as zero, are then shared).
    """
    free = np.isnan(fixed)
    theta = np.where(free, 0.0, fixed)
    if method in NO_HETEROGENEITY:
        conv = Convergence(True, "none", 0, None, False, f"{method}: no variance component")
        return _Components(np.zeros_like(fixed), np.zeros_like(free), None, conv)
    if not free.any():
        conv = Convergence(True, "fixed", 0, None, False, "all variance components fixed")
        return _Components(theta, free, None, conv)

    one_level = not design.random
    y_est = design.y - design.y.mean() if one_level else design.y
    if method in NON_LIKELIHOOD:
        est = estimate_tau2(
            method,
            y_est,
            design.v,
            design.X,
            y_raw=design.y,
            threshold=control.threshold,
            maxiter=control.maxiter,
            tau2_max=control.tau2_max,
        )
        se = None if est.se_tau2 is None else np.array([est.se_tau2])
        return _Components(np.array([est.tau2]), free, se, est.convergence, None, est.projection)

    if lik is None or one_level:
        lik = MarginalLikelihood(structure, y_est, reml=method == "REML")
    if start is None:
        start = _start_values(design, lik, control, free)
    start = np.where(free, start, fixed)
    ev, conv = maximize(lik, start, free, control.solver)
    se = None
    if one_level:
        info = lik.evaluate(ev.theta, order=2).info
        se = np.sqrt(1.0 / np.diag(info)) if info[0, 0] > 0 else np.array([np.nan])
    return _Components(ev.theta, free, se, conv, evaluation=None if one_level else ev)


def _start_values(
    design: Design, lik: MarginalLikelihood, control: Control, free: np.ndarray
) -> np.ndarray:
    """Starting values: the HE estimate (one level, as metafor ``rma``); rma.mv's otherwise.

    rma.mv: :math:`\\max(0.001 L, \\mathrm{var}(y - X\\hat\\beta_{FE}) - 1/\\overline{(1/v)})/L` for
    each of the :math:`L` components, :math:`\\hat\\beta_{FE}` the GLS fit under the sampling
    covariance.
    """
    L = len(free)
    if not design.random:
        if control.tau2_init is not None:
            return np.array([float(control.tau2_init)])
        yc = design.y - design.y.mean()
        return np.array([max(0.0, he_estimate(yc, design.v, design.X))])
    if control.sigma2_init is not None:
        init = control.sigma2_init
        if isinstance(init, Mapping):
            return np.array([float(init.get(n, 0.1)) for n in design.random])
        return np.broadcast_to(np.asarray(init, dtype=float), (L,)).copy()
    beta_fe = lik.evaluate(np.zeros(L)).beta
    resid = design.y - design.X @ beta_fe
    var = float(np.var(resid, ddof=1)) if design.k > 1 else 0.0
    total = max(0.001 * L, var - 1.0 / np.mean(1.0 / design.v))
    return np.full(L, total / L)


def _fit_stats(
    ll_ml: float, ll_reml: float, ll_sat: float, k: int, p: int, parms: int
) -> dict[str, dict[str, float]]:
    out = {}
    for kind, ll, n, dev in (
        ("ML", ll_ml, k, -2.0 * (ll_ml - ll_sat)),
        ("REML", ll_reml, k - p, -2.0 * ll_reml),
    ):
        m = max(n, parms + 2)
        out[kind] = {
            "loglik": ll,
            "deviance": dev,
            "AIC": -2.0 * ll + 2.0 * parms,
            "BIC": -2.0 * ll + parms * np.log(n),
            "AICc": -2.0 * ll + 2.0 * parms * m / (m - parms - 1),
        }
    return out


def _intercept_only(design: Design) -> Design:
    return dataclasses.replace(
        design,
        X=np.ones((design.k, 1)),
        coef_names=(INTERCEPT_NAME,),
        intercept=True,
        terms=(),
    )


def _weighted_adj_r2(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """metafor's R^2 for FE meta-regression: adjusted R^2 of ``lm(y ~ X, weights = 1/v)``, in %."""
    if np.var(y) == 0:
        return 0.0
    w = 1.0 / v
    sw = np.sqrt(w)
    b = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
    rss = float(np.sum(w * (y - X @ b) ** 2))
    ybar = float(np.sum(w * y) / np.sum(w))
    tss = float(np.sum(w * (y - ybar) ** 2))
    k, p = X.shape
    adj = 1.0 - (rss / tss) * (k - 1) / (k - p)
    return max(0.0, 100.0 * adj)


def _check_sizes(design: Design, n_free: int) -> None:
    k, p = design.k, design.p
    if k <= p:
        raise ModelError(
            f"too few effect sizes: k = {k} rows for p = {p} coefficients (need k > p)"
        )
    if n_free > k - p:
        raise ModelError(
            f"no degrees of freedom left for the variance components: k - p = {k - p} but "
            f"{n_free} variance component(s) to estimate"
        )


def fit(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    *,
    mods: Sequence[str] | None = None,
    random: Sequence[str] | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    intercept: bool = True,
    rho: float | None = None,
    sigma2_fixed: Mapping[str, float] | Sequence[float | None] | float | None = None,
    tau2_fixed: float | None = None,
    control: Mapping[str, Any] | None = None,
) -> MetaResult:
    """Fit a (multilevel) meta-analytic model, as metafor 3.8's ``rma()`` / ``rma.mv()``.

    Parameters
    ----------
    data : one row per effect size
    yi, vi : columns with the effect sizes and their sampling variances (> 0)
    mods : moderator columns; numeric ones enter as they are, others are factors with treatment
        coding (reference: first level alphabetically), coefficients named as R names them
    random : nested random-effect id columns, outermost first (``["study", "es"]`` is metafor's
        ``random = ~ 1 | study/es``); ``None`` for the one-level model (``rma``)
    method : one-level: FE, EE, DL, HE, HS, HSk, SJ, ML, REML, EB, PM, PMM; multilevel: ML, REML
    test : ``"z"``, ``"t"`` (df = k - p) or ``"knha"`` (Knapp-Hartung; one-level models only, as
        in metafor)
    level : confidence level (0.95; values above 1 are read as percentages)
    intercept : include an intercept (``False`` with one factor gives per-category means)
    rho : correlation of sampling errors within the outermost cluster (CHE working model)
    sigma2_fixed : fixed variance components of a multilevel model, ``{level: value}`` or a list in
        level order with ``None`` for estimated ones (metafor ``sigma2 = c(0, NA)``) or one value
    tau2_fixed : fixed tau^2 of a one-level model
    control : estimation settings, see :class:`Control`

    Returns
    -------
    MetaResult

    Raises
    ------
    ModelError
        for an invalid specification (see :class:`~intervention_meta.models.errors.ModelError`).

    Examples
    --------
    >>> res = fit(dat, mods=["deltype", "year"], random=["study", "esid"])  # doctest: +SKIP
    >>> res.sigma2["study"], res.to_frame()  # doctest: +SKIP
    """
    multilevel = bool(random)
    if multilevel:
        method = _canonical(method, METHODS_MULTILEVEL, "method for a multilevel model")
        test = _canonical(test, TESTS, "test")
        if test == "knha":
            raise ModelError(
                "test='knha' is defined for one-level models only (metafor's rma.mv offers "
                "'z' and 't'); use test='t' or robust (CR2) inference"
            )
    else:
        method = _canonical(method, METHODS_ONE_LEVEL, "method")
        test = _canonical(test, TESTS, "test")
    level = float(level)
    level = level / 100.0 if level > 1 else level
    if not 0 < level < 1:
        raise ModelError(f"level must be in (0, 1), got {level}")
    rho = check_rho(rho)
    if rho is not None and not multilevel:
        raise ModelError("rho needs a random-effects structure: its outermost level is the cluster")
    ctrl = Control.build(control, multilevel)
    design = build_design(data, yi, vi, mods=mods, random=random, intercept=intercept)
    fixed = _fixed_components(design, sigma2_fixed, tau2_fixed)
    return fit_design(
        design, method=method, test=test, level=level, rho=rho, fixed=fixed, control=ctrl
    )


def fit_design(
    design: Design,
    *,
    method: str,
    test: str,
    level: float,
    rho: float | None,
    fixed: np.ndarray,
    control: Control,
    components: _Components | None = None,
) -> MetaResult:
    """Fit a model to a prepared design (``fit`` without the argument handling).

    ``components``: the variance components if already estimated (by :func:`fit_subsets`).
    """
    k, p = design.k, design.p
    multilevel = bool(design.random)
    n_free = 0 if method in NO_HETEROGENEITY else int(np.isnan(fixed).sum())
    _check_sizes(design, n_free)
    structure = build_structure(design.X, design.v, design.level_codes, rho)
    reml = method == "REML"
    # one likelihood for the multilevel fit, its level tests and the statistics at zero
    lik = MarginalLikelihood(structure, design.y, reml=reml) if multilevel else None
    try:
        if components is None:
            components = estimate_components(design, structure, method, fixed, control, lik=lik)
        comps = components
    except NotPositiveDefinite as err:
        raise ModelError(f"the marginal covariance is not positive definite ({err})") from err
    theta = comps.theta

    # heterogeneity test and saturated likelihood, at zero variance components (residual sum of
    # squares and log-determinant do not depend on the criterion; metafor's one-level model
    # centres the effect sizes here, so its fit and its zero point are one batched evaluation)
    zero = np.zeros_like(theta)
    if lik is not None:
        ev = comps.evaluation if comps.evaluation is not None else lik.evaluate(theta)
        ev0 = lik.evaluate(zero)
    else:
        ys = np.vstack([design.y, design.y - design.y.mean()])
        both = MarginalLikelihood(structure, ys, reml=reml).evaluate_batch(np.vstack([theta, zero]))
        ev, ev0 = both.member(0), both.member(1)
    qe = max(0.0, ev0.rss)
    qe_df = k - p
    qep = float(special.chdtrc(qe_df, qe))  # chi-square upper tail
    ll_sat = -0.5 * (k * LOG_2PI + ev0.logdet)

    # fixed effects
    vb = ev.vb
    s2w = None
    if test == "knha":
        s2w = knha_factor(ev.rss, k, p)
        vb = s2w * vb
    df = float(k - p) if test != "z" else None
    ct = coefficient_tests(ev.beta, vb, test=test, df=df, level=level)
    btt = tuple(range(1, p)) if design.intercept and p > 1 else tuple(range(p))
    qm = wald_test(ev.beta, vb, btt, design.coef_names, test=test, df=df)

    parms = p + n_free
    fs = _fit_stats(ev.loglik_ml, ev.loglik_reml, ll_sat, k, p, parms)
    fs_type = "REML" if reml else "ML"

    names = design.random if multilevel else ("tau2",)
    sigma2 = {n: float(t) for n, t in zip(design.random, theta, strict=True)} if multilevel else {}
    tau2 = None if multilevel else float(theta[0])
    se_tau2 = None
    if not multilevel and comps.se is not None and method not in NO_HETEROGENEITY:
        se_tau2 = float(comps.se[0])

    i2 = h2 = vt = None
    weights_pct = None
    if not multilevel:
        vt = typical_variance(design.v, design.X, comps.projection)
        i2, h2 = i2_h2(tau2, qe, k, p, vt, fixed=method in NO_HETEROGENEITY)
        w = 1.0 / (design.v + tau2)
        weights_pct = 100.0 * w / w.sum()

    return MetaResult(
        k=k,
        p=p,
        method=method,
        test=test,
        level=level,
        coef_names=design.coef_names,
        b=ev.beta,
        se=ct.se,
        zval=ct.stat if test == "z" else None,
        tval=ct.stat if test != "z" else None,
        dfs=np.full(p, df) if df is not None else None,
        pval=ct.pval,
        ci_lb=ct.ci_lb,
        ci_ub=ct.ci_ub,
        vb=vb,
        btt=btt,
        QE=qe,
        QEp=qep,
        QE_df=qe_df,
        QM=qm.stat,
        QMp=qm.pval,
        QMdf=(qm.df1, qm.df2),
        random=design.random,
        tau2=tau2,
        se_tau2=se_tau2,
        sigma2=sigma2,
        n_levels=dict(zip(design.random, design.n_levels, strict=True)),
        variance_fixed={n: bool(not np.isnan(f)) for n, f in zip(names, fixed, strict=True)},
        rho=rho,
        s2w=s2w,
        parms=parms,
        fit_stats_type=fs_type,
        logLik=fs[fs_type]["loglik"],
        deviance=fs[fs_type]["deviance"],
        AIC=fs[fs_type]["AIC"],
        BIC=fs[fs_type]["BIC"],
        AICc=fs[fs_type]["AICc"],
        fit_stats=fs,
        I2=i2,
        H2=h2,
        vt=vt,
        weights_pct=weights_pct,
        n_dropped=len(design.dropped),
        dropped_rows=design.dropped,
        convergence=comps.convergence,
        _state=ModelState(
            design=design,
            structure=structure,
            theta=theta,
            fixed=fixed,
            control=control,
            ll_sat=ll_sat,
        ),
    )


def fit_subset(
    result: MetaResult, keep: np.ndarray, control: Mapping[str, Any] | None = None
) -> MetaResult | None:
    """``result``'s model fitted to the rows ``keep`` (boolean mask) of its data.

    The same as ``fit`` on those rows with the arguments that gave ``result`` (method, test,
    level, rho, fixed variance components) and ``control``, but the coded design is reused
    instead of being built from the data frame again (refits in sensitivity analyses). ``None``
    when a coefficient is not estimable on the subset (see
    :func:`~intervention_meta.models.design.subset_design`): refit with ``fit`` then.
    """
    design = subset_design(result._state.design, keep)
    if design is None:
        return None
    return _fit_as(result, design, Control.build(control, bool(design.random)))


def _fit_as(
    result: MetaResult, design: Design, control: Control, components: _Components | None = None
) -> MetaResult:
    """``design`` fitted with the settings of ``result`` (method, test, level, rho, fixed)."""
    return fit_design(
        design,
        method=result.method,
        test=result.test,
        level=result.level,
        rho=result.rho,
        fixed=result._state.fixed,
        control=control,
        components=components,
    )


_BATCH_CELLS = 4_000_000  # rows x members x columns of one batch of subset fits


def fit_subsets(
    result: MetaResult, keeps: np.ndarray, control: Mapping[str, Any] | None = None
) -> list[MetaResult | None]:
    """:func:`fit_subset` for several subsets of ``result``'s rows (one per row of ``keeps``).

    For a multilevel (RE)ML model whose blocks have the ragged layout and with starting values
    given (``control["sigma2_init"]``), the variance components of the subsets are estimated
    together: the subsets are members of one batched likelihood over the full model's block
    structure, each with the rows it leaves out removed, and each follows exactly the Fisher
    scoring iteration of its own fit (:func:`~intervention_meta.models.optimize.maximize_batch`).
    Subsets the batch does not settle (no convergence, the fallback optimiser, a boundary
    estimate, a design that fails its checks) are fitted one by one by :func:`fit_subset`. An
    entry is ``None`` where that gives ``None`` or fails: refit with ``fit`` then.
    """
    keeps = np.asarray(keeps, dtype=bool)
    ctrl = Control.build(control, bool(result.random))
    state = result._state
    out: list[MetaResult | None] = [None] * len(keeps)
    todo = list(range(len(keeps)))
    if (
        result.random
        and result.method in METHODS_MULTILEVEL
        and state.structure.ragged is not None
        and ctrl.sigma2_init is not None
        and ctrl.optimizer == "fisher"
        and np.isnan(state.fixed).any()
    ):
        size = max(1, _BATCH_CELLS // (len(state.design.y) * (state.design.p + 2)))
        todo = []
        for lo in range(0, len(keeps), size):
            idx = np.arange(lo, min(lo + size, len(keeps)))
            fits = _fit_batch(result, keeps[idx], ctrl)
            for i, res in zip(idx, fits, strict=True):
                out[i] = res
                if res is None:
                    todo.append(i)
    for i in todo:
        try:
            out[i] = fit_subset(result, keeps[i], control)
        except ModelError:
            out[i] = None
    return out


def _fit_batch(result: MetaResult, keeps: np.ndarray, ctrl: Control) -> list[MetaResult | None]:
    """The subsets' variance components by batched Fisher scoring, then their fits (None where
    the batch does not settle them; see :func:`fit_subsets`)."""
    state = result._state
    design, free = state.design, np.isnan(state.fixed)
    lik = MarginalLikelihood(state.structure, design.y, reml=result.method == "REML", keep=keeps)
    start = np.where(free, _start_values(design, lik, ctrl, free), state.fixed)
    est = maximize_batch(lik, np.tile(start, (len(keeps), 1)), free, ctrl.solver)
    settled = est.converged & ~est.fallback_used
    with np.errstate(invalid="ignore"):
        settled &= np.max(np.where(free, est.theta, 0.0), axis=1) > ctrl.threshold
    at = lik.evaluate_batch(np.nan_to_num(est.theta), order=1)
    reason = f"change in variance components <= {ctrl.threshold:g}"
    out: list[MetaResult | None] = []
    for i, keep in enumerate(keeps):
        sub = subset_design(design, keep) if settled[i] else None
        if sub is None:
            out.append(None)
            continue
        theta = est.theta[i].copy()
        gnorm = projected_gradient_norm(at.grad[i], theta, free)
        conv = Convergence(True, "fisher-scoring", int(est.iterations[i]), gnorm, False, reason)
        comps = _Components(theta, free, None, conv, evaluation=at.member(i))
        try:
            _check_sizes(sub, int(free.sum()))
            res = _fit_as(result, sub, ctrl, comps)
        except ModelError:
            res = None
        out.append(res)
    return out


def coefficient_covariance(result: MetaResult, theta: np.ndarray) -> np.ndarray:
    """:math:`(X^\\top M^{-1} X)^{-1}` of ``result``'s model at variance components ``theta``.

    ``theta`` in level order (``[tau2]`` for the one-level model). This is the ``vb`` of the
    model refitted with its variance components fixed at ``theta`` (z or t tests).
    """
    state = result._state
    lik = MarginalLikelihood(state.structure, state.design.y, reml=False)
    return lik.evaluate(np.asarray(theta, dtype=float)).vb


def marginal_covariance(result: MetaResult, rows: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Marginal covariance :math:`S + \\sum_l \\theta_l Z_l Z_l^\\top` of ``result``'s rows
    ``rows`` (positions) at variance components ``theta`` (level order)."""
    design = result._state.design
    rows = np.asarray(rows)
    codes = design.level_codes or (np.arange(design.k),)
    v = design.v[rows]
    same = [c[rows][:, None] == c[rows][None, :] for c in codes]
    M = np.diag(v)
    if result.rho:
        sd = np.sqrt(v)
        M = np.where(same[0] & ~np.eye(len(rows), dtype=bool), result.rho * np.outer(sd, sd), M)
    for t, d in zip(np.asarray(theta, dtype=float), same, strict=True):
        M = M + t * d
    return M


# ------------------------------------------------------------------ extras, computed on request
def _n_free(result: MetaResult) -> int:
    """Number of estimated variance components of a fit."""
    if result.method in NO_HETEROGENEITY:
        return 0
    return int(np.isnan(result._state.fixed).sum())


def multilevel_variance_distribution(result: MetaResult) -> VarianceDistribution | None:
    """The multilevel I^2 shares of a multilevel fit (:func:`variance_distribution`), else None.

    :attr:`MetaResult.variance_distribution` calls this on first access.
    """
    if not result.multilevel:
        return None
    design = result._state.design
    return variance_distribution(result.sigma2, typical_variance(design.v, design.X))


def q_profile(result: MetaResult) -> QProfileCI | None:
    """Q-profile CI of tau^2 (and I^2, H^2) of a one-level random-effects fit, else None.

    :attr:`MetaResult.confint` calls this on first access (metafor ``confint(rma)``; Viechtbauer
    2007); None for multilevel models, fixed tau^2, or ``control={"confint": False}``.
    """
    state = result._state
    if result.multilevel or not state.control.confint or _n_free(result) != 1:
        return None
    d, tau2_max = state.design, state.control.tau2_max
    at = {"tau2": result.tau2, "i2": result.I2, "h2": result.H2, "vt": result.vt}
    return q_profile_ci(d.y, d.v, d.X, level=result.level, tau2_max=tau2_max, **at)


def pseudo_r2(result: MetaResult) -> float | None:
    """Pseudo-R^2 of a moderator model (see the module docstring), else None.

    :attr:`MetaResult.R2` calls this on first access; it refits the intercept-only model by the
    same method (none for an intercept-only model or a model without an intercept).
    """
    state = result._state
    design = state.design
    if not (design.intercept and result.p > 1):
        return None
    if result.method in NO_HETEROGENEITY:
        return None if result.multilevel else _weighted_adj_r2(design.y, design.v, design.X)
    if _n_free(result) == 0:
        return None
    d0 = _intercept_only(design)
    s0 = build_structure(d0.X, d0.v, d0.level_codes, result.rho)
    c0 = estimate_components(d0, s0, result.method, state.fixed, state.control)
    tot0, tot = float(np.sum(c0.theta)), float(np.sum(state.theta))
    return 0.0 if tot0 == 0 else max(0.0, 100.0 * (tot0 - tot) / tot0)


def level_tests(result: MetaResult) -> tuple[LevelTest, ...]:
    """Likelihood-ratio test of each estimated random level of a multilevel fit (anova.rma).

    :attr:`MetaResult.level_tests` calls this on first access; empty for one-level models and
    with ``control={"level_tests": False}``.
    """
    state = result._state
    if not (result.multilevel and state.control.level_tests):
        return ()
    lik = MarginalLikelihood(state.structure, state.design.y, reml=result.method == "REML")
    free = np.flatnonzero(np.isnan(state.fixed))
    return tuple(_level_test(result, int(lev), lik) for lev in free)


def _level_test(result: MetaResult, lev: int, lik: MarginalLikelihood) -> LevelTest:
    """LRT of one level: the model refitted with that level's variance fixed at 0 (anova.rma)."""
    state = result._state
    design, structure, method, theta = state.design, state.structure, result.method, state.theta
    k, p = design.k, design.p
    fixed_r = state.fixed.copy()
    fixed_r[lev] = 0.0
    start = theta.copy()
    start[lev] = 0.0
    comps = estimate_components(design, structure, method, fixed_r, state.control, start, lik)
    ev = comps.evaluation if comps.evaluation is not None else lik.evaluate(comps.theta)
    parms_r = p + int(np.isnan(fixed_r).sum())
    kind = result.fit_stats_type  # "REML" for REML fits, else "ML"
    fs_r = _fit_stats(ev.loglik_ml, ev.loglik_reml, state.ll_sat, k, p, parms_r)[kind]
    fs_full = result.fit_stats[kind]
    parms_full = result.parms
    lrt = max(0.0, fs_r["deviance"] - fs_full["deviance"])
    df = parms_full - parms_r
    pval = float(special.chdtrc(df, lrt))
    names = design.random
    return LevelTest(
        level=names[lev],
        sigma2_full={n: float(t) for n, t in zip(names, theta, strict=True)},
        sigma2_reduced={n: float(t) for n, t in zip(names, comps.theta, strict=True)},
        loglik_full=float(fs_full["loglik"]),
        loglik_reduced=float(fs_r["loglik"]),
        lrt=lrt,
        df=df,
        pval=pval,
        pval_halved=0.5 * pval if lrt > 0 else 1.0,
        parms_full=parms_full,
        parms_reduced=parms_r,
        fit_stats_reduced=fs_r,
        b_reduced=ev.beta,
        se_reduced=np.sqrt(np.diag(ev.vb)),
        converged_reduced=comps.convergence.converged,
    )
