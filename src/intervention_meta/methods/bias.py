"""Publication-bias methods: asymmetry tests, trim and fill, PET-PEESE, fail-safe N.

Each function takes effect sizes ``yi`` and sampling variances ``vi`` (or a DataFrame for the
multilevel and aggregation helpers) and returns a small frozen dataclass with ``to_dict()`` and
``to_frame()``. The univariate methods follow metafor 3.8-1 (Viechtbauer 2010): ``regtest()``,
``ranktest()``, ``trimfill()`` and ``fsn()``; the model fits go through the package's one model
core, :func:`intervention_meta.models.fit`.

The univariate methods assume independent effect sizes. With several effect sizes per study either
use :func:`regtest_multilevel` (the standard error as a moderator of the three-level model) or
average the effects per study first with :func:`aggregate_by_study`.

Rows with a missing ``yi`` or ``vi`` (or ``ni`` where it is used) are dropped with a logged
warning, as metafor does with its default ``na.action``.

Not supported (metafor has them): ``fsn(type="REM")`` (simulation based) and the Fisher variant of
Rosenthal's fail-safe N, user weights in ``trimfill()``/``regtest()``, and the ``ilim`` argument of
``trimfill()``.

References
----------
Begg, C. B., & Mazumdar, M. (1994). Operating characteristics of a rank correlation test for
publication bias. *Biometrics*, 50(4), 1088-1101.

Duval, S., & Tweedie, R. (2000a). A nonparametric "trim and fill" method of accounting for
publication bias in meta-analysis. *JASA*, 95(449), 89-98.

Duval, S., & Tweedie, R. (2000b). Trim and fill: A simple funnel-plot-based method of testing and
adjusting for publication bias in meta-analysis. *Biometrics*, 56(2), 455-463.

Egger, M., Davey Smith, G., Schneider, M., & Minder, C. (1997). Bias in meta-analysis detected by
a simple, graphical test. *BMJ*, 315(7109), 629-634.

Orwin, R. G. (1983). A fail-safe N for effect size in meta-analysis. *Journal of Educational
Statistics*, 8(2), 157-159.

Rodgers, M. A., & Pustejovsky, J. E. (2021). Evaluating meta-analytic methods to detect selective
reporting in the presence of dependent effect sizes. *Psychological Methods*, 26(2), 141-160.

Rosenberg, M. S. (2005). The file-drawer problem revisited: A general weighted method for
calculating fail-safe numbers in meta-analysis. *Evolution*, 59(2), 464-468.

Rosenthal, R. (1979). The file drawer problem and tolerance for null results. *Psychological
Bulletin*, 86(3), 638-641.

Stanley, T. D., & Doucouliagos, H. (2014). Meta-regression approximations to reduce publication
selection bias. *Research Synthesis Methods*, 5(1), 60-78.

Sterne, J. A. C., & Egger, M. (2005). Regression methods to detect publication and other bias in
meta-analysis. In H. R. Rothstein et al. (Eds.), *Publication bias in meta-analysis* (pp. 99-110).

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable as _jsonable
from intervention_meta.models import distributions as dist
from intervention_meta.models import fit

logger = logging.getLogger(__name__)

__all__ = [
    "AggregatedEffects",
    "FailSafeN",
    "FunnelData",
    "PetPeese",
    "RankTest",
    "RegTest",
    "TrimFill",
    "WlsFit",
    "aggregate_by_study",
    "fsn",
    "funnel_data",
    "pet_peese",
    "ranktest",
    "regtest",
    "regtest_multilevel",
    "trimfill",
]

PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
# predictors that are 0 for an infinitely precise study: the intercept is then the limit estimate
_LIMIT_PREDICTORS = ("sei", "vi", "ninv", "sqrtninv")
_SQRT_EPS = math.sqrt(np.finfo(float).eps)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def _as_float_array(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _clean(
    yi: Any, vi: Any, *others: tuple[str, Any], what: str
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
    """``yi``, ``vi`` (and optional named extra vectors) as float arrays without missing rows."""
    y = _as_float_array(yi, "yi")
    v = _as_float_array(vi, "vi")
    if y.shape != v.shape:
        raise ValueError(f"yi and vi differ in length ({y.size} vs {v.size})")
    extra = []
    for name, x in others:
        if x is None:
            extra.append(None)
            continue
        a = _as_float_array(x, name)
        if a.shape != y.shape:
            raise ValueError(f"{name} and yi differ in length ({a.size} vs {y.size})")
        extra.append(a)
    bad = np.isnan(y) | np.isnan(v)
    for a in extra:
        if a is not None:
            bad |= np.isnan(a)
    if bad.any():
        logger.warning("%s: %d row(s) with missing values omitted", what, int(bad.sum()))
        y, v = y[~bad], v[~bad]
        extra = [a[~bad] if a is not None else None for a in extra]
    if np.any(v <= 0):
        raise ValueError(f"{what}: sampling variances must be positive")
    return y, v, extra


def _round_fsn(x: float) -> float:
    """metafor's rounding of a fail-safe N: up unless within sqrt(eps) of an integer."""
    if math.isinf(x):
        return x
    if abs(x - round(x)) >= _SQRT_EPS:
        return float(math.ceil(x))
    return float(round(x))


def _coef_stat(res: Any) -> np.ndarray:
    """The per-coefficient test statistics of a model result (z or t, whichever it carries)."""
    for name in ("zval", "tval"):
        val = getattr(res, name, None)
        if val is not None:
            return np.atleast_1d(np.asarray(val, dtype=float))
    raise AttributeError("model result has neither zval nor tval")


def _coef_dfs(res: Any, j: int) -> float | None:
    """Degrees of freedom of coefficient ``j`` for t tests; None for z tests."""
    if getattr(res, "test", "z") == "z":
        return None
    dfs = getattr(res, "dfs", None)
    if dfs is None:
        return None
    arr = np.atleast_1d(np.asarray(dfs, dtype=float))
    return float(arr[j] if arr.size > 1 else arr[0])


# --------------------------------------------------------------------------------------------
# Egger-type regression tests
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegTest:
    """Result of a regression test for funnel-plot asymmetry.

    Attributes
    ----------
    model : ``"lm"`` (weighted least squares), ``"rma"`` (meta-regression) or ``"rma.mv"``
        (multilevel meta-regression)
    predictor : the moderator, one of :data:`PREDICTORS`
    method : the variance-component estimator of the model (``"FE"`` for ``model="lm"``)
    test : ``"z"``, ``"t"``, ``"knha"``
    k : number of effect sizes used
    statistic : z or t statistic of the predictor's coefficient (the asymmetry test)
    dfs : its degrees of freedom (None for a z test)
    pval : its two-sided p value
    slope, slope_se : the predictor's coefficient and standard error
    limit_estimate, limit_se, limit_ci_lb, limit_ci_ub : the intercept (the estimate for a
        study with infinite precision) with its CI; None for predictors ``ni``/``sqrtni``
    level : confidence level of the CI
    tau2 : residual tau^2 of a ``"rma"`` model; sigma2 : variance components by level for
        ``"rma.mv"``
    converged : whether the model's optimizer converged (always True for ``"lm"``)
    """

    model: str
    predictor: str
    method: str
    test: str
    k: int
    statistic: float
    dfs: float | None
    pval: float
    slope: float
    slope_se: float
    limit_estimate: float | None
    limit_se: float | None
    limit_ci_lb: float | None
    limit_ci_ub: float | None
    level: float
    tau2: float | None = None
    sigma2: dict[str, float] | None = None
    converged: bool = True

    @property
    def stat_name(self) -> str:
        """``"zval"`` for z tests, ``"tval"`` otherwise (metafor's naming)."""
        return "zval" if self.dfs is None else "tval"

    def to_dict(self) -> dict:
        out = {k: _jsonable(v) for k, v in asdict(self).items()}
        out["stat_name"] = self.stat_name
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row; ``sigma2`` is spread into ``sigma2_<level>`` columns."""
        row = self.to_dict()
        sigma2 = row.pop("sigma2") or {}
        for name, value in sigma2.items():
            row[f"sigma2_{name}"] = value
        return pd.DataFrame([row])


def _predictor_values(predictor: str, vi: np.ndarray, ni: np.ndarray | None) -> np.ndarray:
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    if predictor == "sei":
        return np.sqrt(vi)
    if predictor == "vi":
        return vi.copy()
    if ni is None:
        raise ValueError(f"predictor {predictor!r} needs the sample sizes ni")
    return {
        "ni": ni,
        "ninv": 1.0 / ni,
        "sqrtni": np.sqrt(ni),
        "sqrtninv": 1.0 / np.sqrt(ni),
    }[predictor]


def regtest(
    yi: Any,
    vi: Any,
    *,
    model: Literal["rma", "lm"] = "rma",
    predictor: str = "sei",
    method: str = "REML",
    test: str = "z",
    ni: Any = None,
    level: float = 0.95,
) -> RegTest:
    """Regression test for funnel-plot asymmetry (Egger et al. 1997), as metafor 3.8 ``regtest()``.

    ``model="rma"`` fits the meta-regression :math:`y_i = \\beta_0 + \\beta_1 x_i + u_i + e_i`,
    :math:`u_i \\sim N(0, \\tau^2)`, :math:`e_i \\sim N(0, v_i)` with the given ``method`` and
    ``test`` (Sterne & Egger 2005); ``model="lm"`` is the classical Egger test, the weighted
    least-squares regression :math:`y_i = \\beta_0 + \\beta_1 x_i + \\varepsilon_i` with weights
    :math:`1/v_i` and a multiplicative residual variance, tested with :math:`t_{k-2}`. The
    predictor :math:`x_i` is ``sei`` (:math:`\\sqrt{v_i}`, default), ``vi``, ``ni``, ``ninv``
    (:math:`1/n_i`), ``sqrtni`` or ``sqrtninv``. The asymmetry test is the test of
    :math:`\\beta_1 = 0`; for predictors that vanish as the precision grows, :math:`\\beta_0` is
    the "limit estimate" (the PET estimate for ``sei``, PEESE for ``vi``).

    Parameters
    ----------
    yi, vi : effect sizes and sampling variances
    model : ``"rma"`` or ``"lm"``
    predictor : see above
    method : variance-component estimator for ``model="rma"`` (``"FE"``, ``"DL"``, ``"REML"``, ...)
    test : ``"z"`` or ``"knha"`` (``model="rma"`` only)
    ni : sample sizes, needed for the ``n``-based predictors
    level : confidence level for the limit estimate's CI

    Notes
    -----
    metafor's ``regtest(res)`` takes ``method`` and ``test`` from the fitted model ``res``; here
    they are passed explicitly. ``model="lm"`` ignores ``method`` and ``test``.
    """
    if model not in ("rma", "lm"):
        raise ValueError(f"model must be 'rma' or 'lm', got {model!r}")
    y, v, (n,) = _clean(yi, vi, ("ni", ni), what="regtest")
    x = _predictor_values(predictor, v, n)
    k = y.size
    if k < 3:
        raise ValueError(f"regtest needs at least 3 effect sizes, got {k}")
    has_limit = predictor in _LIMIT_PREDICTORS

    if model == "lm":
        wls = _wls(y, v, x, predictor=predictor, level=level)
        limit = dict(
            limit_estimate=wls.b[0],
            limit_se=wls.se[0],
            limit_ci_lb=wls.ci_lb[0],
            limit_ci_ub=wls.ci_ub[0],
        )
        if not has_limit:
            limit = dict.fromkeys(limit)
        return RegTest(
            model="lm",
            predictor=predictor,
            method="FE",
            test="t",
            k=k,
            statistic=wls.tval[1],
            dfs=float(wls.df),
            pval=wls.pval[1],
            slope=wls.b[1],
            slope_se=wls.se[1],
            level=level,
            **limit,
        )

    data = pd.DataFrame({"yi": y, "vi": v, predictor: x})
    res = fit(data, yi="yi", vi="vi", mods=[predictor], method=method, test=test, level=level)
    return _regtest_from_fit(res, model="rma", predictor=predictor, k=k, level=level)


def _regtest_from_fit(res: Any, *, model: str, predictor: str, k: int, level: float) -> RegTest:
    b = np.atleast_1d(np.asarray(res.b, dtype=float))
    se = np.atleast_1d(np.asarray(res.se, dtype=float))
    stat = _coef_stat(res)
    pval = np.atleast_1d(np.asarray(res.pval, dtype=float))
    ci_lb = np.atleast_1d(np.asarray(res.ci_lb, dtype=float))
    ci_ub = np.atleast_1d(np.asarray(res.ci_ub, dtype=float))
    has_limit = predictor in _LIMIT_PREDICTORS
    sigma2 = getattr(res, "sigma2", None)
    tau2 = getattr(res, "tau2", None)
    return RegTest(
        model=model,
        predictor=predictor,
        method=str(res.method),
        test=str(res.test),
        k=k,
        statistic=float(stat[1]),
        dfs=_coef_dfs(res, 1),
        pval=float(pval[1]),
        slope=float(b[1]),
        slope_se=float(se[1]),
        limit_estimate=float(b[0]) if has_limit else None,
        limit_se=float(se[0]) if has_limit else None,
        limit_ci_lb=float(ci_lb[0]) if has_limit else None,
        limit_ci_ub=float(ci_ub[0]) if has_limit else None,
        level=level,
        tau2=None if (model == "rma.mv" or tau2 is None) else float(tau2),
        sigma2=(
            {str(kk): float(vv) for kk, vv in dict(sigma2).items()}
            if (model == "rma.mv" and sigma2)
            else None
        ),
        converged=bool(getattr(res, "converged", True)),
    )


def regtest_multilevel(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    *,
    random: Sequence[str],
    predictor: Literal["sei", "vi"] = "sei",
    method: str = "REML",
    test: str = "t",
    level: float = 0.95,
) -> RegTest:
    """Egger-type test in the multilevel model: the standard error as a moderator.

    Fits the three-level (or, generally, nested multilevel) model
    :math:`y_{ij} = \\beta_0 + \\beta_1 \\sqrt{v_{ij}} + u_j + w_{ij} + e_{ij}` with the random
    effects ``random`` (outermost first, e.g. ``["study_id", "es_id"]``) and tests
    :math:`\\beta_1 = 0` with the model's test (default ``"t"``, :math:`t_{k-2}` as metafor's
    ``rma.mv(..., test="t")``). This is the "Egger's regression test with a multilevel model" of
    Rodgers & Pustejovsky (2021); :math:`\\beta_0` is the limit (PET-type) estimate. With
    ``predictor="vi"`` the sampling variance is the moderator (PEESE-type).

    Equivalent R call: ``rma.mv(yi, vi, mods = ~ sqrt(vi), random = ~ 1 | study/esid, data=dat,
    test="t")``. Rodgers & Pustejovsky (2021) recommend combining it with cluster-robust
    variance (``intervention_meta.models.robust``) when the sampling errors within studies are
    correlated.
    """
    if predictor not in ("sei", "vi"):
        raise ValueError(f"predictor must be 'sei' or 'vi', got {predictor!r}")
    if not random:
        raise ValueError("random must name the nested id columns, e.g. ['study_id', 'es_id']")
    missing = [c for c in [yi, vi, *random] if c not in data.columns]
    if missing:
        raise ValueError(f"columns not in data: {missing}")
    col = f"{predictor}__bias"
    while col in data.columns:
        col = "_" + col
    d = data.copy()
    v = pd.to_numeric(d[vi], errors="coerce").to_numpy(dtype=float)
    d[col] = np.sqrt(v) if predictor == "sei" else v
    res = fit(
        d, yi=yi, vi=vi, mods=[col], random=list(random), method=method, test=test, level=level
    )
    return _regtest_from_fit(res, model="rma.mv", predictor=predictor, k=int(res.k), level=level)


# --------------------------------------------------------------------------------------------
# PET-PEESE (weighted least squares)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class WlsFit:
    """A weighted least-squares fit :math:`y_i = b_0 + b_1 x_i`, weights :math:`1/v_i`.

    Attributes
    ----------
    predictor : ``"sei"`` (PET) or ``"vi"`` (PEESE) or another :data:`PREDICTORS` entry
    coef_names : ``("intrcpt", predictor)``
    b, se, tval, pval, ci_lb, ci_ub : per-coefficient arrays (two-sided t tests, df = k - 2)
    df : residual degrees of freedom
    sigma : residual standard error (the multiplicative dispersion; R's ``summary(lm)$sigma``)
    level : confidence level
    """

    predictor: str
    coef_names: tuple[str, str]
    b: np.ndarray
    se: np.ndarray
    tval: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    df: int
    sigma: float
    level: float

    def pval_one_sided(self, j: int = 0, alternative: str = "greater") -> float:
        """One-sided p value of coefficient ``j`` (``"greater"``: H1 b_j > 0; ``"less"``)."""
        if alternative == "greater":
            return float(dist.t_sf(self.tval[j], self.df))
        if alternative == "less":
            return float(dist.t_cdf(self.tval[j], self.df))
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in asdict(self).items()}

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient."""
        return pd.DataFrame(
            {
                "term": list(self.coef_names),
                "b": self.b,
                "se": self.se,
                "tval": self.tval,
                "df": self.df,
                "pval": self.pval,
                "ci_lb": self.ci_lb,
                "ci_ub": self.ci_ub,
            }
        )


def _wls(y: np.ndarray, v: np.ndarray, x: np.ndarray, *, predictor: str, level: float) -> WlsFit:
    """WLS of y on (1, x) with weights 1/v, R's ``lm(y ~ x, weights = 1/v)``.

    It is the engine's fixed-effect meta-regression with the Knapp-Hartung scale (metafor
    ``rma(yi, vi, mods = ~ x, method = "FE", test = "knha")``): the estimates are the WLS ones and
    :math:`\\mathrm{Var}(b) = s^2 (X^\\top W X)^{-1}` with the residual variance
    :math:`s^2 = \\sum_i w_i e_i^2 / (k - 2)` (not truncated at 1), t tests on k - 2 df.
    """
    X = np.column_stack([np.ones_like(x), x])
    if np.linalg.matrix_rank(X) < 2:
        raise ValueError(
            f"the predictor {predictor!r} is constant: the regression cannot be fitted"
        )
    data = pd.DataFrame({"yi": y, "vi": v, "x": x})
    res = fit(data, mods=["x"], method="FE", test="knha", level=level)
    return WlsFit(
        predictor=predictor,
        coef_names=("intrcpt", predictor),
        b=np.asarray(res.b, dtype=float),
        se=np.asarray(res.se, dtype=float),
        tval=np.asarray(res.tval, dtype=float),
        pval=np.asarray(res.pval, dtype=float),
        ci_lb=np.asarray(res.ci_lb, dtype=float),
        ci_ub=np.asarray(res.ci_ub, dtype=float),
        df=int(round(float(np.atleast_1d(res.dfs)[0]))),
        sigma=float(np.sqrt(res.s2w)),
        level=level,
    )


@dataclass(frozen=True, eq=False)
class PetPeese:
    """PET, PEESE and the conditional PET-PEESE estimate (Stanley & Doucouliagos 2014).

    Attributes
    ----------
    pet, peese : the two weighted least-squares fits (on ``sei`` and on ``vi``)
    alternative : direction of PET's one-sided test of the intercept (``"greater"``/``"less"``)
    pet_pval_one_sided : PET intercept's one-sided p value in that direction
    alpha : the significance level of that test
    chosen : ``"PEESE"`` if PET's intercept is significant in that direction, else ``"PET"``
    estimate, se, ci_lb, ci_ub, pval : the chosen model's intercept (two-sided t test)
    k : number of effect sizes
    """

    pet: WlsFit
    peese: WlsFit
    alternative: str
    pet_pval_one_sided: float
    alpha: float
    chosen: str
    estimate: float
    se: float
    ci_lb: float
    ci_ub: float
    pval: float
    k: int

    def to_dict(self) -> dict:
        out = {
            k: _jsonable(getattr(self, k))
            for k in (
                "chosen",
                "estimate",
                "se",
                "ci_lb",
                "ci_ub",
                "pval",
                "alternative",
                "pet_pval_one_sided",
                "alpha",
                "k",
            )
        }
        out["pet"] = self.pet.to_dict()
        out["peese"] = self.peese.to_dict()
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient of PET and PEESE plus a ``model`` column and ``chosen`` flag."""
        pet = self.pet.to_frame().assign(model="PET", chosen=self.chosen == "PET")
        peese = self.peese.to_frame().assign(model="PEESE", chosen=self.chosen == "PEESE")
        cols = ["model", "chosen", "term", "b", "se", "tval", "df", "pval", "ci_lb", "ci_ub"]
        return pd.concat([pet, peese], ignore_index=True)[cols]


def pet_peese(
    yi: Any,
    vi: Any,
    *,
    alpha: float = 0.05,
    alternative: Literal["greater", "less"] | None = None,
    level: float = 0.95,
) -> PetPeese:
    """PET-PEESE (Stanley & Doucouliagos 2014): conditional precision-effect estimate.

    PET is the weighted least-squares regression :math:`y_i = b_0 + b_1 \\sqrt{v_i}` and PEESE
    :math:`y_i = b_0 + b_1 v_i`, both with weights :math:`1/v_i` (R:
    ``lm(yi ~ sqrt(vi), weights = 1/vi)``; the ``"lm"`` Egger test). If PET's intercept is
    significantly different from zero in the one-sided test at ``alpha`` (there is a genuine
    effect), PEESE's intercept is the estimate; otherwise PET's.

    Parameters
    ----------
    yi, vi : effect sizes and sampling variances
    alpha : level of PET's one-sided test (Stanley & Doucouliagos 2014 use 0.05, one-tailed)
    alternative : direction of the one-sided test: ``"greater"`` (H1: b0 > 0) or ``"less"``.
        Default: the sign of the inverse-variance weighted (fixed-effect) mean of ``yi``, i.e. the
        direction of the observed effect.
    level : confidence level of the reported CIs
    """
    y, v, _ = _clean(yi, vi, what="pet_peese")
    if y.size < 3:
        raise ValueError(f"pet_peese needs at least 3 effect sizes, got {y.size}")
    pet = _wls(y, v, np.sqrt(v), predictor="sei", level=level)
    peese = _wls(y, v, v.copy(), predictor="vi", level=level)
    if alternative is None:
        fe_mean = float(np.sum(y / v) / np.sum(1.0 / v))
        alternative = "less" if fe_mean < 0 else "greater"
    p_one = pet.pval_one_sided(0, alternative)
    chosen_fit, chosen = (peese, "PEESE") if p_one < alpha else (pet, "PET")
    logger.info("PET-PEESE: PET one-sided p = %.4g (%s) -> %s", p_one, alternative, chosen)
    return PetPeese(
        pet=pet,
        peese=peese,
        alternative=alternative,
        pet_pval_one_sided=p_one,
        alpha=alpha,
        chosen=chosen,
        estimate=float(chosen_fit.b[0]),
        se=float(chosen_fit.se[0]),
        ci_lb=float(chosen_fit.ci_lb[0]),
        ci_ub=float(chosen_fit.ci_ub[0]),
        pval=float(chosen_fit.pval[0]),
        k=int(y.size),
    )


# --------------------------------------------------------------------------------------------
# rank correlation test
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankTest:
    """Begg & Mazumdar's rank correlation test.

    Attributes
    ----------
    tau : Kendall's tau (tau-b) between the standardized deviates and the sampling variances
    pval : two-sided p value
    exact : whether ``pval`` is exact (no ties) or from the normal approximation
    statistic : the number of concordant pairs ``T`` (exact) or ``z`` (normal approximation)
    k : number of effect sizes
    """

    tau: float
    pval: float
    exact: bool
    statistic: float
    k: int

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in asdict(self).items()}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def _inversions_cdf(q: int, n: int) -> float:
    """P(T <= q) for T the number of inversions of a uniformly random permutation of n items.

    This is the null distribution of the number of concordant pairs of Kendall's tau without ties
    (R's ``pkendall``). Computed by the recursion that inserts item ``i+1`` into a permutation of
    ``i`` items (adding 0..i inversions with equal probability), tracking only the lower tail
    ``0..q`` so that small tail probabilities keep their relative precision.
    """
    if q < 0:
        return 0.0
    total = n * (n - 1) // 2
    if q >= total:
        return 1.0
    dist = np.zeros(q + 1)
    dist[0] = 1.0
    for i in range(1, n):
        csum = np.cumsum(dist)
        new = csum.copy()
        if i + 1 <= q:
            new[i + 1 :] -= csum[: q - i]
        dist = new / (i + 1)
    return float(min(1.0, dist.sum()))


def ranktest(yi: Any, vi: Any, *, exact: bool = True) -> RankTest:
    """Rank correlation test for funnel-plot asymmetry (Begg & Mazumdar 1994), as metafor 3.8.

    With the fixed-effect estimate :math:`\\hat\\theta = \\sum w_i y_i / \\sum w_i`,
    :math:`w_i = 1/v_i`, the standardized deviates are
    :math:`y_i^* = (y_i - \\hat\\theta) / \\sqrt{v_i - 1/\\sum w_i}`; the test is Kendall's
    :math:`\\tau_b` between :math:`y_i^*` and :math:`v_i` (R ``cor.test(..., method="kendall")``).

    The p value is exact when ``exact=True`` and neither variable has ties (the permutation
    distribution of the number of concordant pairs :math:`T`; two-sided as R: twice the smaller
    tail); otherwise the normal approximation :math:`z = S/\\sqrt{\\mathrm{Var}(S)}` with the
    tie-corrected variance of Kendall (1970), :math:`S` = concordant minus discordant pairs.
    metafor 3.8 always asks for the exact p (``exact=TRUE``), and R falls back to the normal
    approximation with a warning when there are ties.

    Notes
    -----
    For very large k R's exact p loses precision (it is computed as ``1 - P(T <= q-1)``; and
    ``gamma(n+1)`` overflows for n > 170); this implementation uses the symmetric lower tail and
    normalised probabilities and stays accurate there.
    """
    y, v, _ = _clean(yi, vi, what="ranktest")
    n = y.size
    if n < 2:
        raise ValueError(f"ranktest needs at least 2 effect sizes, got {n}")
    w = 1.0 / v
    theta = np.sum(y * w) / np.sum(w)
    vb = 1.0 / np.sum(w)
    ystar = (y - theta) / np.sqrt(v - vb)

    from scipy.stats import kendalltau

    tau = float(kendalltau(ystar, v, variant="b").statistic)
    ties = min(np.unique(ystar).size, np.unique(v).size) < n
    if not np.isfinite(tau):
        return RankTest(tau=float("nan"), pval=float("nan"), exact=False, statistic=np.nan, k=n)
    t0 = n * (n - 1) / 2
    if exact and not ties:
        q = int(round((tau + 1) * n * (n - 1) / 4))
        if q > n * (n - 1) / 4:
            p = _inversions_cdf(int(t0) - q, n)  # P(T >= q) by symmetry
        else:
            p = _inversions_cdf(q, n)
        return RankTest(tau=tau, pval=min(2 * p, 1.0), exact=True, statistic=float(q), k=n)
    if exact and ties:
        logger.warning("ranktest: ties present, exact p value not available; normal approximation")
    xt = _tie_counts(ystar)
    yt = _tie_counts(v)
    t1 = np.sum(xt * (xt - 1)) / 2
    t2 = np.sum(yt * (yt - 1)) / 2
    s = tau * np.sqrt((t0 - t1) * (t0 - t2))
    v0 = n * (n - 1) * (2 * n + 5)
    vt = np.sum(xt * (xt - 1) * (2 * xt + 5))
    vu = np.sum(yt * (yt - 1) * (2 * yt + 5))
    v1 = np.sum(xt * (xt - 1)) * np.sum(yt * (yt - 1))
    v2 = np.sum(xt * (xt - 1) * (xt - 2)) * np.sum(yt * (yt - 1) * (yt - 2))
    var_s = (v0 - vt - vu) / 18 + v1 / (2 * n * (n - 1))
    if n > 2:
        var_s += v2 / (9 * n * (n - 1) * (n - 2))
    z = float(s / np.sqrt(var_s))
    pval = float(2 * min(dist.norm_cdf(z), dist.norm_sf(z)))
    return RankTest(tau=tau, pval=pval, exact=False, statistic=z, k=n)


def _tie_counts(x: np.ndarray) -> np.ndarray:
    """Sizes of the groups of tied values (groups of size >= 2 only), as floats."""
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


# --------------------------------------------------------------------------------------------
# trim and fill
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TrimFill:
    """Result of the trim-and-fill method.

    Attributes
    ----------
    k0 : estimated number of missing studies
    se_k0 : its standard error (Duval & Tweedie 2000b)
    p_k0 : for the R0 estimator, the p value of the test of k0 = 0; None otherwise
    side : the side of the funnel plot on which studies were filled in (``"left"``/``"right"``)
    estimator : ``"L0"``, ``"R0"`` or ``"Q0"``
    iterations : iterations of the trimming algorithm
    method : variance-component estimator of the models
    k : number of effect sizes in the filled-in data (observed + k0)
    yi, vi : the augmented data: observed rows first (in input order), then the filled-in rows
    fill : True for filled-in rows
    estimate, se, zval, pval, ci_lb, ci_ub : the filled-in model's pooled estimate (z test)
    tau2 : its tau^2 (0 for FE/EE); qe, qep : its Q test of heterogeneity
    level : confidence level
    fit : the filled-in model (the model core's result object)
    """

    k0: int
    se_k0: float
    p_k0: float | None
    side: str
    estimator: str
    iterations: int
    method: str
    k: int
    yi: np.ndarray
    vi: np.ndarray
    fill: np.ndarray
    estimate: float
    se: float
    zval: float
    pval: float
    ci_lb: float
    ci_ub: float
    tau2: float
    qe: float | None
    qep: float | None
    level: float
    fit: Any = field(repr=False, default=None)

    _SUMMARY = (
        "k0",
        "se_k0",
        "p_k0",
        "side",
        "estimator",
        "iterations",
        "method",
        "k",
        "estimate",
        "se",
        "zval",
        "pval",
        "ci_lb",
        "ci_ub",
        "tau2",
        "qe",
        "qep",
        "level",
    )

    def filled_data(self) -> pd.DataFrame:
        """The augmented data: ``yi``, ``vi``, ``sei`` and ``fill``."""
        return pd.DataFrame(
            {"yi": self.yi, "vi": self.vi, "sei": np.sqrt(self.vi), "fill": self.fill}
        )

    def to_dict(self) -> dict:
        out = {k: _jsonable(getattr(self, k)) for k in self._SUMMARY}
        out["yi"] = _jsonable(self.yi)
        out["vi"] = _jsonable(self.vi)
        out["fill"] = [bool(f) for f in self.fill]
        return out

    def to_frame(self) -> pd.DataFrame:
        """One summary row (the augmented data: :meth:`filled_data`)."""
        return pd.DataFrame([{k: _jsonable(getattr(self, k)) for k in self._SUMMARY}])


def _first_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties broken by order of appearance (R ``rank(ties.method="first")``)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size, dtype=float)
    ranks[order] = np.arange(1, x.size + 1)
    return ranks


def _k0_estimate(resid: np.ndarray, estimator: str) -> tuple[float, float]:
    """Raw (unrounded) k0 and se(k0) from the centred, sorted effects (Duval & Tweedie 2000b)."""
    k = resid.size
    signed = np.sign(resid) * _first_ranks(np.abs(resid))
    if estimator == "R0":
        neg = -signed[signed < 0]
        gamma = neg.max() if neg.size else 0.0
        k0 = (k - gamma) - 1
        se_k0 = math.sqrt(2 * max(0.0, k0) + 2)
        return k0, se_k0
    sr = float(np.sum(signed[signed > 0]))
    if estimator == "L0":
        k0 = (4 * sr - k * (k + 1)) / (2 * k - 1)
    else:  # Q0
        k0 = k - 0.5 - math.sqrt(2 * k**2 - 4 * sr + 0.25)
    var_sr = (
        k * (k + 1) * (2 * k + 1)
        + 10 * k0**3
        + 27 * k0**2
        + 17 * k0
        - 18 * k * k0**2
        - 18 * k * k0
        + 6 * k**2 * k0
    ) / 24
    if estimator == "L0":
        se_k0 = 4 * math.sqrt(var_sr) / (2 * k - 1)
    else:
        se_k0 = 2 * math.sqrt(var_sr) / math.sqrt((k - 0.5) ** 2 - k0 * (2 * k - k0 - 1))
    return k0, se_k0


def trimfill(
    yi: Any,
    vi: Any,
    *,
    method: str = "REML",
    side: Literal["left", "right"] | None = None,
    estimator: Literal["L0", "R0", "Q0"] = "L0",
    level: float = 0.95,
    maxiter: int = 100,
) -> TrimFill:
    """Trim and fill (Duval & Tweedie 2000a, 2000b), as metafor 3.8 ``trimfill()``.

    1. Side: unless given, the side where studies are missing is the opposite of the sign of
       the slope of the meta-regression of :math:`y_i` on :math:`\\sqrt{v_i}` (same ``method``):
       a negative slope means missing studies on the right.
    2. Flip the effects if the side is ``"right"``, sort them; starting from :math:`k_0 = 0`,
       repeat: fit the model (``method``) to the :math:`k - k_0` smallest effects, centre all
       effects at that estimate :math:`\\hat\\theta`, rank the absolute centred effects
       (:math:`r_i`, ties by order) and compute

       * L0: :math:`k_0 = (4 S_r - k(k+1)) / (2k - 1)` with
         :math:`S_r = \\sum_{y_i > \\hat\\theta} r_i`,
       * R0: :math:`k_0 = \\gamma^* - 1`, :math:`\\gamma^*` = length of the rightmost run of
         positive ranks,
       * Q0: :math:`k_0 = k - 1/2 - \\sqrt{2k^2 - 4 S_r + 1/4}`,

       rounded and truncated at 0, until :math:`k_0` no longer changes.
    3. Fill in the mirror images :math:`2\\hat\\theta - y_i` of the :math:`k_0` most extreme
       effects (with their variances) and fit the model to the augmented data.

    The standard error of :math:`k_0` is that of Duval & Tweedie (2000b) as in metafor; for R0
    ``p_k0`` is the p value of the test of :math:`k_0 = 0`.

    Parameters
    ----------
    yi, vi : effect sizes and sampling variances (independent; see :func:`aggregate_by_study`)
    method : estimator of tau^2 for every fit (``"FE"``, ``"DL"``, ``"REML"``, ...)
    side : ``"left"`` or ``"right"``; None estimates it as in step 1
    estimator : ``"L0"`` (default), ``"R0"`` or ``"Q0"``
    level : confidence level of the filled-in model's CI
    maxiter : maximum number of iterations

    Notes
    -----
    As metafor, the filled-in model uses a z test whatever test the original analysis used.
    With :math:`k_0 = 0` the result is the model of the observed data.
    """
    if estimator not in ("L0", "R0", "Q0"):
        raise ValueError(f"estimator must be 'L0', 'R0' or 'Q0', got {estimator!r}")
    y_obs, v_obs, _ = _clean(yi, vi, what="trimfill")
    k = y_obs.size
    if k < 2:
        raise ValueError(f"trimfill needs at least 2 effect sizes, got {k}")

    if side is None:
        data = pd.DataFrame({"yi": y_obs, "vi": v_obs, "sei": np.sqrt(v_obs)})
        res = fit(data, yi="yi", vi="vi", mods=["sei"], method=method)
        slope = float(np.atleast_1d(res.b)[1])
        side = "right" if slope < 0 else "left"
        logger.info("trimfill: slope on sei = %.4g -> missing studies on the %s", slope, side)
    elif side not in ("left", "right"):
        raise ValueError(f"side must be 'left', 'right' or None, got {side!r}")

    y = -y_obs if side == "right" else y_obs.copy()
    order = np.argsort(y, kind="stable")
    y, v = y[order], v_obs[order]

    k0_prev, k0, iterations = -1, 0, 0
    beta = float("nan")
    se_k0 = float("nan")
    while k0 != k0_prev:
        k0_prev = k0
        iterations += 1
        if iterations > maxiter:
            raise RuntimeError("trim and fill did not converge")
        trimmed = pd.DataFrame({"yi": y[: k - k0], "vi": v[: k - k0]})
        res = fit(trimmed, yi="yi", vi="vi", method=method)
        beta = float(np.atleast_1d(res.b)[0])
        k0_raw, se_raw = _k0_estimate(y - beta, estimator)
        k0 = int(max(0, round(k0_raw)))  # R's round(): halves to even, as Python's
        se_k0 = max(0.0, se_raw)
        logger.debug("trimfill iteration %d: k0 = %d, estimate = %.6g", iterations, k0, beta)

    if k0 > 0:
        resid = y - beta
        mirrored = -(resid - beta) if side == "right" else resid - beta
        y_fill = np.concatenate([y_obs, -mirrored[k - k0 :]])
        v_fill = np.concatenate([v_obs, v[k - k0 :]])
    else:
        y_fill, v_fill = y_obs.copy(), v_obs.copy()
    fill = np.concatenate([np.zeros(k, dtype=bool), np.ones(k0, dtype=bool)])
    filled = fit(
        pd.DataFrame({"yi": y_fill, "vi": v_fill}),
        yi="yi",
        vi="vi",
        method=method,
        test="z",
        level=level,
    )
    p_k0 = None
    if estimator == "R0":
        m = np.arange(-1, k0)
        # metafor: 1 - sum(choose(0 + m + 1, m + 1) * 0.5^(0 + m + 2)), m = -1..k0-1
        p_k0 = float(1 - np.sum(0.5 ** (m + 2)))
    logger.info(
        "trimfill: k0 = %d (%s, side %s) after %d iterations", k0, estimator, side, iterations
    )
    return TrimFill(
        k0=k0,
        se_k0=float(se_k0),
        p_k0=p_k0,
        side=side,
        estimator=estimator,
        iterations=iterations,
        method=str(filled.method),
        k=int(y_fill.size),
        yi=y_fill,
        vi=v_fill,
        fill=fill,
        estimate=float(np.atleast_1d(filled.b)[0]),
        se=float(np.atleast_1d(filled.se)[0]),
        zval=float(_coef_stat(filled)[0]),
        pval=float(np.atleast_1d(filled.pval)[0]),
        ci_lb=float(np.atleast_1d(filled.ci_lb)[0]),
        ci_ub=float(np.atleast_1d(filled.ci_ub)[0]),
        tau2=float(getattr(filled, "tau2", 0.0) or 0.0),
        qe=_opt_float(filled.QE),
        qep=_opt_float(filled.QEp),
        level=level,
        fit=filled,
    )


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


# --------------------------------------------------------------------------------------------
# fail-safe N
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailSafeN:
    """Result of a fail-safe N calculation.

    Attributes
    ----------
    type : ``"Rosenthal"``, ``"Orwin"`` or ``"Rosenberg"``
    fsnum : the fail-safe N (rounded up unless within sqrt(eps) of an integer; may be inf)
    alpha : significance level (Rosenthal, Rosenberg)
    pval : p value of the observed combined test (Rosenthal: one-sided Stouffer; Rosenberg:
        two-sided fixed-effect z test); None for Orwin
    meanes : the mean effect (Orwin: unweighted unless ``weighted``; Rosenberg: fixed-effect)
    target : Orwin's target effect
    k : number of effect sizes
    """

    type: str
    fsnum: float
    alpha: float
    pval: float | None
    meanes: float | None
    target: float | None
    k: int

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in asdict(self).items()}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def fsn(
    yi: Any,
    vi: Any = None,
    *,
    type: Literal["Rosenthal", "Orwin", "Rosenberg"] = "Rosenthal",
    alpha: float = 0.05,
    target: float | None = None,
    weighted: bool = False,
) -> FailSafeN:
    """Fail-safe N, as metafor 3.8 ``fsn()``.

    * Rosenthal (1979), Stouffer's method: with :math:`z_i = y_i/\\sqrt{v_i}` and
      :math:`\\bar z = |\\sum z_i| / \\sqrt{k}`, :math:`N = k(\\bar z / z_{1-\\alpha})^2 - k`; the
      p value is the one-sided :math:`1 - \\Phi(\\bar z)`.
    * Orwin (1983): :math:`N = k(\\bar y - y_T)/y_T` with :math:`\\bar y` the unweighted mean
      (``weighted=True``: inverse-variance weighted) and target :math:`y_T` (default
      :math:`\\bar y/2`; its sign is set to that of :math:`\\bar y`; ``target=0`` gives inf).
    * Rosenberg (2005): with :math:`w_i = 1/v_i`,
      :math:`N = k\\,[(\\sum w_i y_i / z_{1-\\alpha/2})^2 - \\sum w_i] / \\sum w_i`; the p value is
      the fixed-effect model's two-sided z test.

    :math:`N` is truncated at 0 and rounded up (unless it is within :math:`\\sqrt{\\epsilon}` of an
    integer, as metafor).
    """
    y = _as_float_array(yi, "yi")
    needs_vi = type in ("Rosenthal", "Rosenberg") or (type == "Orwin" and weighted)
    if type not in ("Rosenthal", "Orwin", "Rosenberg"):
        raise ValueError(f"type must be 'Rosenthal', 'Orwin' or 'Rosenberg', got {type!r}")
    if vi is None:
        if needs_vi:
            raise ValueError(f"fsn(type={type!r}) needs the sampling variances vi")
        vi = np.ones_like(y)
    y, v, _ = _clean(y, vi, what="fsn")
    k = y.size
    pval = meanes = None
    if type == "Rosenthal":
        z_avg = abs(np.sum(y / np.sqrt(v)) / math.sqrt(k))
        pval = float(dist.norm_sf(z_avg))
        n = max(0.0, k * (z_avg / dist.norm_isf(alpha)) ** 2 - k)
        target = None
    elif type == "Orwin":
        meanes = float(np.sum(y / v) / np.sum(1 / v)) if weighted else float(np.mean(y))
        if target is None:
            target = meanes / 2
        if target == 0:
            n = math.inf
        else:
            if np.sign(target) != np.sign(meanes):
                target = -target
            n = max(0.0, k * (meanes - target) / target)
        target = float(target)
    else:
        w = 1.0 / v
        meanes = float(np.sum(w * y) / np.sum(w))
        zval = meanes / math.sqrt(1 / np.sum(w))
        w_p = (np.sum(w * y) / dist.norm_isf(alpha / 2)) ** 2 - np.sum(w)
        pval = float(2 * dist.norm_sf(abs(zval)))
        n = max(0.0, k * w_p / np.sum(w))
        target = None
    return FailSafeN(
        type=type,
        fsnum=_round_fsn(float(n)),
        alpha=alpha,
        pval=pval,
        meanes=meanes,
        target=target,
        k=k,
    )


# --------------------------------------------------------------------------------------------
# aggregation to one effect per study
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class AggregatedEffects:
    """One effect size per study.

    Attributes
    ----------
    study : the study ids, in order of first appearance
    yi, vi : the aggregated effect and its sampling variance
    ki : number of effect sizes averaged
    rho : the assumed within-study correlation of the sampling errors
    weighted : inverse-variance (GLS) weighted (True) or plain means (False)
    study_column : name of the study column
    """

    study: tuple
    yi: np.ndarray
    vi: np.ndarray
    ki: np.ndarray
    rho: float
    weighted: bool
    study_column: str = "study"

    def to_dict(self) -> dict:
        return {
            "study_column": self.study_column,
            "rho": self.rho,
            "weighted": self.weighted,
            "study": _jsonable(list(self.study)),
            "yi": _jsonable(self.yi),
            "vi": _jsonable(self.vi),
            "ki": _jsonable(self.ki),
        }

    def to_frame(self) -> pd.DataFrame:
        """Columns: the study column, ``yi``, ``vi``, ``ki``."""
        return pd.DataFrame(
            {self.study_column: list(self.study), "yi": self.yi, "vi": self.vi, "ki": self.ki}
        )


def aggregate_by_study(
    data: pd.DataFrame,
    study: str,
    yi: str = "yi",
    vi: str = "vi",
    *,
    rho: float = 0.6,
    weighted: bool = True,
) -> AggregatedEffects:
    """Average the effect sizes within each study, as metafor 3.8 ``aggregate.escalc(struct="CS")``.

    Within study :math:`j` the sampling errors are assumed to have the compound-symmetric
    covariance :math:`V_j[a, b] = \\rho\\sqrt{v_a v_b}` (:math:`a \\neq b`),
    :math:`V_j[a, a] = v_a`.
    The aggregate is the GLS (inverse-variance) mean

    .. math:: \\bar y_j = \\frac{1' V_j^{-1} y_j}{1' V_j^{-1} 1}, \\qquad
              \\bar v_j = \\frac{1}{1' V_j^{-1} 1};

    with ``weighted=False`` the plain mean :math:`\\bar y_j = 1'y_j/k_j`,
    :math:`\\bar v_j = 1'V_j 1/k_j^2`. With :math:`\\rho = 0` the weighted version is the usual
    inverse-variance mean. Studies come out in order of first appearance; rows with a missing
    ``yi``/``vi`` are dropped first.

    R equivalent: ``aggregate(escalc(measure="GEN", yi=yi, vi=vi, data=dat), cluster=study,
    rho=rho)``.
    """
    if not -1 <= rho <= 1:
        raise ValueError(f"rho must be in [-1, 1], got {rho}")
    missing = [c for c in (study, yi, vi) if c not in data.columns]
    if missing:
        raise ValueError(f"columns not in data: {missing}")
    if data[study].isna().any():
        raise ValueError(f"study column {study!r} has missing values")
    y_all = pd.to_numeric(data[yi], errors="coerce").to_numpy(dtype=float)
    v_all = pd.to_numeric(data[vi], errors="coerce").to_numpy(dtype=float)
    keep = ~(np.isnan(y_all) | np.isnan(v_all))
    if not keep.all():
        logger.warning(
            "aggregate_by_study: %d row(s) with missing yi/vi dropped", int((~keep).sum())
        )
    ids = data[study].to_numpy()[keep]
    y_all, v_all = y_all[keep], v_all[keep]
    codes, uniques = pd.factorize(ids, sort=False)
    n = len(uniques)
    yi_agg = np.empty(n)
    vi_agg = np.empty(n)
    ki = np.bincount(codes, minlength=n)
    eps = np.finfo(float).eps
    for j in range(n):
        idx = np.flatnonzero(codes == j)
        y, v = y_all[idx], v_all[idx]
        s = np.sqrt(v)
        V = rho * np.outer(s, s)
        np.fill_diagonal(V, v)
        if np.any(np.linalg.eigvalsh(V) <= eps):
            raise ValueError(
                f"the sampling covariance of study {uniques[j]!r} is not positive definite "
                f"(rho = {rho}); cannot aggregate"
            )
        if weighted:
            W = np.linalg.inv(V)
            sum_w = W.sum()
            yi_agg[j] = np.sum(W @ y) / sum_w
            vi_agg[j] = 1.0 / sum_w
        else:
            yi_agg[j] = y.sum() / idx.size
            vi_agg[j] = V.sum() / idx.size**2
    return AggregatedEffects(
        study=tuple(uniques.tolist()),
        yi=yi_agg,
        vi=vi_agg,
        ki=ki,
        rho=float(rho),
        weighted=weighted,
        study_column=study,
    )


# --------------------------------------------------------------------------------------------
# funnel plot data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FunnelData:
    """Points and pseudo-confidence contours of a funnel plot (standard error on the y axis).

    Attributes
    ----------
    estimate : the centre of the funnel
    points : DataFrame with ``yi``, ``vi``, ``sei`` (one row per effect size, input order)
    contours : DataFrame with ``level``, ``sei``, ``lower``, ``upper``: for each level the region
        :math:`\\hat\\theta \\pm z_{(1+\\text{level})/2}\\,\\mathrm{se}` along a grid of standard
        errors from 0 to the largest observed one
    levels : the contour levels
    """

    estimate: float
    points: pd.DataFrame
    contours: pd.DataFrame
    levels: tuple[float, ...]

    def to_dict(self) -> dict:
        return {
            "estimate": _jsonable(self.estimate),
            "levels": list(self.levels),
            "points": {c: _jsonable(self.points[c].to_numpy()) for c in self.points.columns},
            "contours": {c: _jsonable(self.contours[c].to_numpy()) for c in self.contours.columns},
        }

    def to_frame(self) -> pd.DataFrame:
        """Points and contour lines in one long table with a ``kind`` column."""
        pts = self.points.assign(kind="point")
        con = self.contours.assign(kind="contour")
        return pd.concat([pts, con], ignore_index=True)


def funnel_data(
    yi: Any,
    vi: Any,
    estimate: float,
    *,
    levels: Sequence[float] = (0.90, 0.95, 0.99),
    n_grid: int = 50,
) -> FunnelData:
    """Data for a funnel plot: the effect sizes against their standard errors and the
    pseudo-confidence regions :math:`\\hat\\theta \\pm z_{(1+\\ell)/2}\\, \\mathrm{se}` for each
    level :math:`\\ell` (Sterne & Egger 2001; metafor ``funnel(..., level=c(90, 95, 99))``).

    ``estimate`` is the funnel's centre (usually the pooled estimate, or 0 for a
    contour-enhanced funnel). The contours are evaluated at ``n_grid`` standard errors from 0 to the
    largest observed one.
    """
    y = _as_float_array(yi, "yi")
    v = _as_float_array(vi, "vi")
    if y.shape != v.shape:
        raise ValueError(f"yi and vi differ in length ({y.size} vs {v.size})")
    if n_grid < 2:
        raise ValueError("n_grid must be at least 2")
    sei = np.sqrt(v)
    points = pd.DataFrame({"yi": y, "vi": v, "sei": sei})
    se_max = float(np.nanmax(sei)) if np.any(np.isfinite(sei)) else 1.0
    grid = np.linspace(0.0, se_max, n_grid)
    rows = []
    for lev in levels:
        if not 0 < lev < 1:
            raise ValueError(f"levels must be in (0, 1), got {lev}")
        z = dist.norm_isf((1 - lev) / 2)
        rows.append(
            pd.DataFrame(
                {
                    "level": lev,
                    "sei": grid,
                    "lower": estimate - z * grid,
                    "upper": estimate + z * grid,
                }
            )
        )
    contours = pd.concat(rows, ignore_index=True)
    return FunnelData(
        estimate=float(estimate),
        points=points,
        contours=contours,
        levels=tuple(float(x) for x in levels),
    )
