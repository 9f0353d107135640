"""Random-intercept linear mixed model by REML, profiled to one variance ratio.

The model :math:`y_{ij} = x_{ij}^\\top\\beta + u_i + e_{ij}`, :math:`u_i \\sim N(0, \\sigma_u^2)`,
:math:`e_{ij} \\sim N(0, \\sigma^2)`, has :math:`\\operatorname{Var}(y_i) = \\sigma^2 V_i`,
:math:`V_i = I + \\gamma 1 1^\\top`, :math:`\\gamma = \\sigma_u^2/\\sigma^2`, so that
:math:`V_i^{-1} = I - c_i 1 1^\\top` with :math:`c_i = \\gamma/(1 + n_i\\gamma)` and
:math:`|V_i| = 1 + n_i\\gamma`: every cross-product is a sum over rows minus a sum over clusters.
With :math:`\\hat\\beta(\\gamma) = (X^\\top V^{-1} X)^{-1} X^\\top V^{-1} y`,
:math:`r(\\gamma) = (y - X\\hat\\beta)^\\top V^{-1} (y - X\\hat\\beta)` and
:math:`\\hat\\sigma^2 = r/(n - p)`, the profiled REML criterion is

.. math::

    -2\\ell_R(\\gamma) = (n - p)\\{1 + \\log(2\\pi\\hat\\sigma^2)\\} + \\sum_i \\log(1 + n_i\\gamma)
    + \\log|X^\\top V^{-1} X|,

lme4's REML criterion for ``lmer(y ~ ... + (1 | cluster), REML = TRUE)`` (its :math:`\\log|L|^2`
is :math:`\\sum_i \\log(1 + n_i\\gamma)` and :math:`\\log|R_X|^2 = \\log|X^\\top V^{-1}X|`).
It is minimised over :math:`\\sqrt\\gamma \\ge 0` (lme4's :math:`\\theta`) by bounded Brent
search; the fixed effects' covariance is :math:`\\hat\\sigma^2 (X^\\top V^{-1} X)^{-1}`
(lme4's ``vcov``, conditional on the variance components).

statsmodels' ``MixedLM`` fits the same model, but its optimum agrees with lme4 only to about
1e-4 and its fixed-effect standard errors (from the joint information matrix) to about 3e-3,
short of the 1e-5 this package holds itself to; the one-dimensional profile here is exact.

References
----------
Bates, D., Mächler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. *Journal of Statistical Software*, 67(1), 1-48 (equations 34-42).
Patterson, H. D., & Thompson, R. (1971). Recovery of inter-block information when block sizes are
unequal. *Biometrika*, 58, 545-554.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LmmResult:
    """The REML estimates of a random-intercept linear mixed model."""

    beta: np.ndarray
    vcov: np.ndarray
    cluster_sd: float
    residual_sd: float
    loglik: float  # REML log-likelihood
    converged: bool


class _Profile:
    """Cluster sums of the data, and the profiled REML criterion of the variance ratio."""

    def __init__(self, y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> None:
        _, g = np.unique(groups, return_inverse=True)
        m = int(g.max()) + 1
        self.n, self.p = x.shape
        self.sizes = np.bincount(g, minlength=m).astype(float)
        self.sx = np.zeros((m, self.p))
        np.add.at(self.sx, g, x)
        self.sy = np.bincount(g, weights=y, minlength=m)
        self.xtx, self.xty, self.yty = x.T @ x, x.T @ y, float(y @ y)

    def solve(self, theta: float) -> tuple[float, np.ndarray, np.ndarray, float]:
        """-2 REML log-likelihood, beta, (X'V^-1X)^-1 and sigma^2 at ``theta`` = sqrt(gamma)."""
        gamma = theta * theta
        c = gamma / (1 + self.sizes * gamma)
        xvx = self.xtx - (self.sx * c[:, None]).T @ self.sx
        xvy = self.xty - (self.sx * (c * self.sy)[:, None]).sum(axis=0)
        yvy = self.yty - float(np.sum(c * self.sy**2))
        chol = np.linalg.cholesky(xvx)
        beta = np.linalg.solve(xvx, xvy)
        df = self.n - self.p
        sigma2 = (yvy - float(beta @ xvy)) / df
        dev = (
            df * (1 + np.log(2 * np.pi * sigma2))
            + float(np.sum(np.log1p(self.sizes * gamma)))
            + 2 * float(np.sum(np.log(np.diag(chol))))
        )
        return dev, beta, np.linalg.inv(xvx), sigma2


def fit_lmm(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> LmmResult:
    """Fit the random-intercept LMM by REML, as ``lme4::lmer(..., REML = TRUE)``."""
    from scipy import optimize

    profile = _Profile(np.asarray(y, dtype=float), np.asarray(x, dtype=float), groups)
    upper = 1.0
    while profile.solve(upper * 2)[0] < profile.solve(upper)[0] and upper < 1e6:
        upper *= 2
    opt = optimize.minimize_scalar(
        lambda t: profile.solve(t)[0],
        bounds=(0.0, 2 * upper),
        method="bounded",
        options={"xatol": 1e-12, "maxiter": 500},
    )
    theta = float(opt.x)
    dev, beta, xvx_inv, sigma2 = profile.solve(theta)
    return LmmResult(
        beta=beta,
        vcov=sigma2 * xvx_inv,
        cluster_sd=theta * float(np.sqrt(sigma2)),
        residual_sd=float(np.sqrt(sigma2)),
        loglik=-0.5 * dev,
        converged=bool(opt.success),
    )
