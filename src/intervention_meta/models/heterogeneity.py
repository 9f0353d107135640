"""Heterogeneity: Q, I^2, H^2, the Q-profile interval, and the multilevel variance distribution.

* **Q** (Cochran 1954; generalised for meta-regression and for correlated sampling errors):
  :math:`Q_E = r^\\top S^{-1} r` with the residuals of the fixed-effects GLS fit under the sampling
  covariance :math:`S`, :math:`\\chi^2_{k-p}` under homogeneity. It is the weighted residual sum of
  squares of the likelihood engine at zero variance components.
* **Typical sampling variance** (Higgins & Thompson 2002; metafor's ``i2def = "1"``):
  :math:`\\tilde v = (k-p)/\\mathrm{tr}(P)` with :math:`P = W - WX(X^\\top WX)^{-1}X^\\top W`,
  :math:`W = \\mathrm{diag}(1/v_i)`.
* **I^2, H^2** (one level): :math:`I^2 = 100\\,\\hat\\tau^2/(\\tilde v + \\hat\\tau^2)`,
  :math:`H^2 = \\hat\\tau^2/\\tilde v + 1`; for the FE/EE model :math:`I^2 = \\max(0, 100(Q_E -
  (k-p))/Q_E)`, :math:`H^2 = Q_E/(k-p)` (metafor).
* **Q-profile interval** for :math:`\\tau^2` (Viechtbauer 2007): the :math:`\\tau^2` values where
  the generalised Q, :math:`y^\\top P_\\tau y`, equals the :math:`\\chi^2_{k-p}` quantiles
  :math:`1-\\alpha/2` (lower limit) and :math:`\\alpha/2` (upper limit), found with R's ``uniroot``
  on :math:`[0, \\max(100, 10\\hat\\tau^2)]` as metafor's ``confint()``; a limit is 0 when Q at 0
  is already below its quantile. I^2 and H^2 limits follow from the :math:`\\tau^2` limits.
* **Multilevel variance distribution** (Cheung 2014; Assink & Wibbelink 2016):
  :math:`I^2_l = 100\\,\\sigma^2_l/(\\sum_m \\sigma^2_m + \\tilde v)`, the sampling share
  :math:`100\\,\\tilde v/(\\sum_m\\sigma^2_m + \\tilde v)`; the shares sum to 100.

References
----------
Cheung, M. W.-L. (2014). Modeling dependent effect sizes with three-level meta-analyses: a
structural equation modeling approach. *Psychological Methods*, 19, 211-229.
Assink, M., & Wibbelink, C. J. M. (2016). Fitting three-level meta-analytic models in R: a
step-by-step tutorial. *The Quantitative Methods for Psychology*, 12, 154-174.
Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a meta-analysis.
*Statistics in Medicine*, 21, 1539-1558.
Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
*Statistics in Medicine*, 26, 37-52.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from intervention_meta.models import distributions as dist
from intervention_meta.models.estimators import DiagonalP, q_statistic
from intervention_meta.models.rootfind import uniroot


def typical_variance(v: np.ndarray, X: np.ndarray, P: DiagonalP | None = None) -> float:
    """:math:`\\tilde v = (k-p)/\\mathrm{tr}(P)` with weights :math:`1/v_i`.

    ``P``: that :class:`DiagonalP` if the caller has it (from the DL, HS or HSk estimator).
    """
    k, p = X.shape
    return (k - p) / (P if P is not None else DiagonalP.of(1.0 / v, X)).trace()


def i2_h2(tau2: float, qe: float, k: int, p: int, vt: float, fixed: bool) -> tuple[float, float]:
    """One-level I^2 (%) and H^2 (metafor's definitions, see the module docstring)."""
    if k <= p:
        return 0.0, 1.0
    if fixed:
        i2 = max(0.0, 100.0 * (qe - (k - p)) / qe) if qe > 0 else 0.0
        return i2, qe / (k - p)
    return 100.0 * tau2 / (vt + tau2), tau2 / vt + 1.0


@dataclass(frozen=True)
class Interval:
    """An estimate with confidence limits."""

    estimate: float
    ci_lb: float
    ci_ub: float

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "ci_lb": self.ci_lb, "ci_ub": self.ci_ub}


@dataclass(frozen=True)
class QProfileCI:
    """Q-profile confidence intervals for tau^2, tau, I^2 (%) and H^2 (metafor ``confint()``)."""

    level: float
    tau2: Interval
    tau: Interval
    i2: Interval
    h2: Interval
    converged: bool

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "tau2": self.tau2.to_dict(),
            "tau": self.tau.to_dict(),
            "i2": self.i2.to_dict(),
            "h2": self.h2.to_dict(),
            "converged": self.converged,
        }

    def to_frame(self):  # noqa: ANN201 - pandas import kept local
        import pandas as pd

        rows = {"tau2": self.tau2, "tau": self.tau, "i2": self.i2, "h2": self.h2}
        return pd.DataFrame({n: iv.to_dict() for n, iv in rows.items()}).T


def q_profile_ci(
    y: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    *,
    tau2: float,
    i2: float,
    h2: float,
    vt: float,
    level: float = 0.95,
    tau2_max: float | None = None,
    maxiter: int = 1000,
) -> QProfileCI:
    """Q-profile CI of :math:`\\tau^2` (Viechtbauer 2007), computed as metafor's ``confint()``.

    Parameters
    ----------
    y, v, X : effect sizes, sampling variances, model matrix
    tau2, i2, h2 : the fitted model's estimates (reported as the interval's estimates)
    vt : the typical sampling variance used to turn the tau^2 limits into I^2 / H^2 limits
    level : confidence level
    tau2_max : upper end of the search (default metafor's ``max(100, 10 * tau2)``)
    """
    k, p = X.shape
    alpha = 1.0 - level
    crit_u = float(dist.chi2_isf(alpha / 2.0, k - p))
    crit_l = float(dist.chi2_ppf(alpha / 2.0, k - p))
    lo = min(0.0, tau2)
    hi = max(100.0, tau2 * 10.0, lo * 10.0) if tau2_max is None else float(tau2_max)

    def qfun(t: float) -> float:
        return q_statistic(t, y, v, X)

    q_hi, q_lo = qfun(hi), qfun(lo)
    converged = True
    if q_lo < crit_l:
        ub = lo
    elif q_hi > crit_l:
        ub = hi
    else:
        r = uniroot(lambda t: qfun(t) - crit_l, lo, hi, maxiter=maxiter)
        ub, converged = r.root, converged and r.converged
    if q_hi > crit_u:
        lb = hi
        ub = hi
    elif q_lo < crit_u:
        lb = lo
    else:
        r = uniroot(lambda t: qfun(t) - crit_u, lo, hi, maxiter=maxiter)
        lb, converged = r.root, converged and r.converged
    return QProfileCI(
        level=level,
        tau2=Interval(tau2, lb, ub),
        tau=Interval(*(float(np.sqrt(x)) if x >= 0 else float("nan") for x in (tau2, lb, ub))),
        i2=Interval(i2, 100.0 * lb / (vt + lb), 100.0 * ub / (vt + ub)),
        h2=Interval(h2, lb / vt + 1.0, ub / vt + 1.0),
        converged=converged,
    )


@dataclass(frozen=True)
class VarianceDistribution:
    """Share (%) of the total variance at each level (Cheung 2014; Assink & Wibbelink 2016).

    Attributes
    ----------
    typical_v : typical sampling variance :math:`(k-p)/\\mathrm{tr}(P)`,
        :math:`W = \\mathrm{diag}(1/v)`
    i2_total : 100 * sum(sigma2) / (sum(sigma2) + typical_v)
    i2 : per random level (keyed by the level's column), 100 * sigma2_l / (sum + typical_v)
    i2_sampling : 100 * typical_v / (sum(sigma2) + typical_v)
    """

    typical_v: float
    i2_total: float
    i2: dict[str, float]
    i2_sampling: float

    def to_dict(self) -> dict:
        return {
            "typical_v": self.typical_v,
            "i2_total": self.i2_total,
            "i2": dict(self.i2),
            "i2_sampling": self.i2_sampling,
        }


def variance_distribution(sigma2: Mapping[str, float], typical_v: float) -> VarianceDistribution:
    """The multilevel I^2 shares from the variance components and the typical sampling variance."""
    total = float(sum(sigma2.values())) + typical_v
    return VarianceDistribution(
        typical_v=typical_v,
        i2_total=100.0 * float(sum(sigma2.values())) / total,
        i2={name: 100.0 * s / total for name, s in sigma2.items()},
        i2_sampling=100.0 * typical_v / total,
    )
