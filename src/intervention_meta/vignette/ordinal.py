"""Cumulative-link (proportional-odds) logit model by maximum likelihood.

For an ordered outcome with categories :math:`1, \\dots, K` the model is

.. math::

    \\operatorname{logit} P(Y_i \\le j) = \\theta_j - x_i^\\top\\beta, \\qquad j = 1, \\dots, K-1,

with increasing thresholds :math:`\\theta_j` and no intercept in :math:`x_i` (the sign convention
of ``ordinal::clm``: a positive :math:`\\beta` moves ratings up). With :math:`F` the logistic
distribution function, :math:`f = F(1-F)` its density, :math:`\\eta^{u}_i = \\theta_{y_i} -
x_i^\\top\\beta` and :math:`\\eta^{l}_i = \\theta_{y_i-1} - x_i^\\top\\beta`
(:math:`\\theta_0 = -\\infty`, :math:`\\theta_K = \\infty`), the log-likelihood is
:math:`\\sum_i \\log p_i`, :math:`p_i = F(\\eta^u_i) - F(\\eta^l_i)`. Writing :math:`d^u_i,
d^l_i` for the derivatives of :math:`\\eta^u_i, \\eta^l_i` over :math:`a = (\\theta, \\beta)`,
the gradient and the (observed) Hessian are exact:

.. math::

    \\nabla \\log p_i = \\frac{f(\\eta^u_i) d^u_i - f(\\eta^l_i) d^l_i}{p_i}, \\qquad
    \\nabla^2 \\log p_i = \\frac{f'(\\eta^u_i) d^u_i d^{u\\top}_i
    - f'(\\eta^l_i) d^l_i d^{l\\top}_i}{p_i} - \\nabla \\log p_i \\nabla \\log p_i^\\top,

:math:`f' = f(1 - 2F)`. Newton's method with step halving from the marginal cumulative logits
finds the maximum; the covariance is the inverse of the negative Hessian (as ``clm``'s
``vcov``). The cluster-robust covariance (``robust=True``) is the sandwich
:math:`H^{-1} \\big(\\sum_c s_c s_c^\\top\\big) H^{-1}` with :math:`s_c` the sum of cluster
:math:`c`'s score vectors, without a small-sample factor (as geepack's ``san.se``).

References
----------
Agresti, A. (2010). *Analysis of Ordinal Categorical Data* (2nd ed.). Wiley, chapter 3.
Christensen, R. H. B. (2022). ordinal: Regression Models for Ordinal Data. R package 2022.11-16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class ClmResult:
    """The ML estimates of a cumulative logit model: thresholds, then the coefficients."""

    thresholds: np.ndarray
    beta: np.ndarray
    vcov: np.ndarray  # of (thresholds, beta)
    loglik: float
    converged: bool
    iterations: int


def _pieces(params: np.ndarray, codes: np.ndarray, x: np.ndarray, k: int):
    """Per-row probabilities, densities and derivative rows of the two linear predictors."""
    n, p = x.shape
    theta = params[: k - 1]
    beta = params[k - 1 :]
    xb = x @ beta
    ext = np.concatenate([[-np.inf], theta, [np.inf]])
    eta_u = ext[codes + 1] - xb
    eta_l = ext[codes] - xb
    fu, fl = special.expit(eta_u), special.expit(eta_l)
    prob = fu - fl
    du = np.zeros((n, k - 1 + p))
    dl = np.zeros((n, k - 1 + p))
    rows = np.arange(n)
    top = codes < k - 1
    bottom = codes > 0
    du[rows[top], codes[top]] = 1.0
    dl[rows[bottom], codes[bottom] - 1] = 1.0
    du[:, k - 1 :] = -x
    dl[:, k - 1 :] = -x
    dens_u = fu * (1 - fu)
    dens_l = fl * (1 - fl)
    return prob, fu, fl, dens_u, dens_l, du, dl


def loglik_parts(params: np.ndarray, codes: np.ndarray, x: np.ndarray, k: int):
    """The log-likelihood, the per-row scores (n x q) and the Hessian at ``params``."""
    prob, fu, fl, dens_u, dens_l, du, dl = _pieces(params, codes, x, k)
    prob = np.clip(prob, 1e-300, None)
    scores = (dens_u[:, None] * du - dens_l[:, None] * dl) / prob[:, None]
    d2u = dens_u * (1 - 2 * fu) / prob
    d2l = dens_l * (1 - 2 * fl) / prob
    hess = (du * d2u[:, None]).T @ du - (dl * d2l[:, None]).T @ dl - scores.T @ scores
    return float(np.sum(np.log(prob))), scores, hess


def fit_clm(codes: np.ndarray, x: np.ndarray, k: int) -> ClmResult:
    """Fit the cumulative logit model to category codes ``0..k-1`` and the design ``x`` (no
    intercept column), as ``ordinal::clm(..., link = "logit")``."""
    codes = np.asarray(codes, dtype=int)
    x = np.asarray(x, dtype=float)
    cum = np.cumsum(np.bincount(codes, minlength=k))[:-1] / len(codes)
    params = np.concatenate([special.logit(cum), np.zeros(x.shape[1])])
    value, scores, hess = loglik_parts(params, codes, x, k)
    converged = False
    iterations = 0
    while iterations < 100:
        iterations += 1
        grad = scores.sum(axis=0)
        step = np.linalg.solve(hess, grad)
        scale, accepted = 1.0, None
        while scale > 1e-10:
            trial = params - scale * step
            if np.all(np.diff(trial[: k - 1]) > 0):
                parts = loglik_parts(trial, codes, x, k)
                if parts[0] >= value - 1e-12 * abs(value):
                    accepted = trial, parts
                    break
            scale /= 2
        if accepted is None:
            break
        params, (value, scores, hess) = accepted
        if np.max(np.abs(scale * step)) < 1e-10 and np.max(np.abs(scores.sum(axis=0))) < 1e-8:
            converged = True
            break
    return ClmResult(
        thresholds=params[: k - 1].copy(),
        beta=params[k - 1 :].copy(),
        vcov=np.linalg.inv(-hess),
        loglik=value,
        converged=converged,
        iterations=iterations,
    )


def robust_vcov(
    result: ClmResult, codes: np.ndarray, x: np.ndarray, k: int, groups: np.ndarray
) -> np.ndarray:
    """The cluster-robust (sandwich) covariance of ``(thresholds, beta)``, clusters ``groups``."""
    params = np.concatenate([result.thresholds, result.beta])
    _, scores, hess = loglik_parts(params, np.asarray(codes, dtype=int), x, k)
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    summed = np.zeros((g.max() + 1, scores.shape[1]))
    np.add.at(summed, g, scores)
    bread = np.linalg.inv(-hess)
    return bread @ (summed.T @ summed) @ bread
