"""Random-intercept logistic GLMM by maximum likelihood (Laplace and adaptive Gauss-Hermite).

The model: :math:`\\operatorname{logit} P(y_{ij} = 1 \\mid u_i) = x_{ij}^\\top\\beta + \\theta u_i`,
:math:`u_i \\sim N(0, 1)` independently per cluster :math:`i` (lme4's parametrisation: the
random-intercept SD is :math:`|\\theta|`). With

.. math::

    g_i(u) = \\sum_j \\big[y_{ij}\\eta_{ij}(u) - \\log(1 + e^{\\eta_{ij}(u)})\\big] - u^2/2,
    \\qquad \\eta_{ij}(u) = x_{ij}^\\top\\beta + \\theta u,

the conditional mode :math:`\\hat u_i` maximises :math:`g_i` (Newton's method, all clusters at
once), :math:`H_i = -g_i''(\\hat u_i) = 1 + \\theta^2 \\sum_j \\mu_{ij}(1 - \\mu_{ij})`, and the
adaptive Gauss-Hermite approximation with :math:`K` nodes :math:`z_k`, weights :math:`w_k` (for
the weight :math:`e^{-z^2}`) and :math:`s_i = \\sqrt{2/H_i}` is

.. math::

    \\log L_i \\approx \\log \\sum_k w_k \\exp\\{g_i(\\hat u_i + s_i z_k) + z_k^2\\}
    + \\log s_i - \\tfrac12 \\log(2\\pi).

:math:`K = 1` (:math:`z = 0`, :math:`w = \\sqrt\\pi`) is the Laplace approximation
:math:`g_i(\\hat u_i) - \\tfrac12\\log H_i`. This is the deviance lme4's ``glmer`` minimises
over :math:`(\\theta, \\beta)` for ``nAGQ = K`` (for 0/1 data the deviance is
:math:`-2\\sum_i \\log L_i`). Its gradient is exact (the conditional modes' derivatives by implicit
differentiation of :math:`g_i'(\\hat u_i) = 0`); the optimiser is BFGS from the ordinary logistic
fit, polished by Newton steps. The covariance of :math:`\\hat\\beta` is the
:math:`\\beta` block of the inverse of the negative Hessian of the log-likelihood over
:math:`(\\theta, \\beta)` (central differences of the exact gradient), as lme4's default
``vcov(use.hessian = TRUE)``.

References
----------
Bates, D., Mächler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. *Journal of Statistical Software*, 67(1), 1-48 (section 5 and the glmer vignette).
Pinheiro, J. C., & Bates, D. M. (1995). Approximations to the log-likelihood function in the
nonlinear mixed-effects model. *Journal of Computational and Graphical Statistics*, 4, 12-35.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import special

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GlmmResult:
    """The ML estimates of a random-intercept logistic GLMM."""

    beta: np.ndarray
    theta: float
    vcov: np.ndarray  # of beta
    vcov_full: np.ndarray  # of (theta, beta)
    loglik: float
    modes: np.ndarray  # conditional modes of u (standardised)
    converged: bool
    nagq: int


class _Problem:
    """The data of one fit and its objective (log-likelihood) with exact gradient."""

    def __init__(self, y: np.ndarray, x: np.ndarray, groups: np.ndarray, nagq: int) -> None:
        _, codes = np.unique(groups, return_inverse=True)
        order = np.argsort(codes, kind="stable")  # each cluster's rows together, for reduceat
        self.y, self.x, self.g = y[order], x[order], codes[order]
        self.m = int(self.g.max()) + 1
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.g) != 0])
        z, w = np.polynomial.hermite.hermgauss(nagq)
        self.z, self.w = z, w
        self.u = np.zeros(self.m)

    def _sum(self, v: np.ndarray) -> np.ndarray:
        """Per-cluster sums of the rows of ``v`` (1-d, or 2-d summing each column)."""
        return np.add.reduceat(v, self.starts, axis=0)

    def modes(self, beta: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
        """The conditional modes and :math:`H_i` at the given parameters."""
        off = self.x @ beta
        u = self.u.copy()
        for _ in range(100):
            mu = special.expit(off + theta * u[self.g])
            grad = theta * self._sum(self.y - mu) - u
            h = 1.0 + theta**2 * self._sum(mu * (1 - mu))
            step = np.clip(grad / h, -5, 5)
            u += step
            if np.max(np.abs(step)) < 1e-12:
                break
        mu = special.expit(off + theta * u[self.g])
        h = 1.0 + theta**2 * self._sum(mu * (1 - mu))
        self.u = u
        return u, h

    def value_grad(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """The log-likelihood and its gradient over ``params = (theta, beta)``."""
        theta, beta = float(params[0]), params[1:]
        y, x, g = self.y, self.x, self.g
        u, h = self.modes(beta, theta)
        off = x @ beta
        mu = special.expit(off + theta * u[g])
        w = mu * (1 - mu)
        dw = w * (1 - 2 * mu)
        # derivatives of the mode (implicit function theorem on g'(u) = 0)
        du_dbeta = -theta * self._sum(w[:, None] * x) / h[:, None]  # (m, p)
        du_dtheta = (self._sum(y - mu) - theta * self._sum(w * u[g])) / h  # (m,)
        # total derivatives of H = 1 + theta^2 sum w(eta(u_hat))
        dh_du = theta**3 * self._sum(dw)
        dh_dbeta = theta**2 * self._sum(dw[:, None] * x) + dh_du[:, None] * du_dbeta
        dh_dtheta = 2 * theta * self._sum(w) + theta**2 * self._sum(dw * u[g]) + dh_du * du_dtheta
        s = np.sqrt(2.0 / h)
        ds_dbeta = -0.5 * s[:, None] * dh_dbeta / h[:, None]
        ds_dtheta = -0.5 * s * dh_dtheta / h
        # nodes t_ik = u_i + s_i z_k
        t = u[:, None] + s[:, None] * self.z[None, :]  # (m, K)
        eta = off[:, None] + theta * t[g]  # (n, K)
        ll_obs = y[:, None] * eta - np.logaddexp(0.0, eta)
        gk = self._sum(ll_obs) - t**2 / 2 + self.z[None, :] ** 2  # (m, K)
        logw = np.log(self.w)[None, :] + gk
        top = logw.max(axis=1)
        lse = top + np.log(np.exp(logw - top[:, None]).sum(axis=1))
        pi = np.exp(logw - lse[:, None])  # (m, K)
        value = float(np.sum(lse + np.log(s)) - 0.5 * self.m * np.log(2 * np.pi))
        r = y[:, None] - special.expit(eta)  # (n, K)
        gprime = theta * self._sum(r) - t  # g'(t), (m, K)
        # d g(t)/d beta (direct) summed with the node weights: sum_k pi_k sum_j r_jk x_j
        direct_beta = self._sum((r * pi[g]).sum(axis=1)[:, None] * x)  # (m, p)
        direct_theta = self._sum((r * t[g] * pi[g]).sum(axis=1))  # (m,)
        pg = (pi * gprime).sum(axis=1)  # (m,)
        pgz = (pi * gprime * self.z[None, :]).sum(axis=1)
        grad_beta = direct_beta + pg[:, None] * du_dbeta + pgz[:, None] * ds_dbeta
        grad_beta += ds_dbeta / s[:, None]
        grad_theta = direct_theta + pg * du_dtheta + pgz * ds_dtheta + ds_dtheta / s
        return value, np.concatenate([[grad_theta.sum()], grad_beta.sum(axis=0)])


def _logistic_start(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The ordinary logistic regression (IRLS), the starting values of the fixed effects."""
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        mu = special.expit(x @ beta)
        w = np.clip(mu * (1 - mu), 1e-10, None)
        step = np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def _hessian(problem: _Problem, params: np.ndarray) -> np.ndarray:
    """The Hessian of the log-likelihood by central differences of the exact gradient."""
    q = len(params)
    hess = np.empty((q, q))
    for k in range(q):
        step = 1e-5 * max(1.0, abs(params[k]))
        up, down = params.copy(), params.copy()
        up[k] += step
        down[k] -= step
        hess[:, k] = (problem.value_grad(up)[1] - problem.value_grad(down)[1]) / (2 * step)
    return (hess + hess.T) / 2


def fit_glmm(y: np.ndarray, x: np.ndarray, groups: np.ndarray, nagq: int = 1) -> GlmmResult:
    """Fit the random-intercept logistic GLMM by ML (``nagq = 1``: Laplace; more: adaptive
    Gauss-Hermite quadrature with ``nagq`` nodes), as ``lme4::glmer(..., nAGQ = nagq)``."""
    from scipy import optimize

    if nagq < 1:
        raise ValueError(f"nagq must be at least 1, got {nagq}")
    y = np.asarray(y, dtype=float)
    problem = _Problem(y, np.asarray(x, dtype=float), np.asarray(groups), int(nagq))
    start = np.concatenate([[1.0], _logistic_start(y, problem.x)])

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = problem.value_grad(p)
        return -value, -grad

    opt = optimize.minimize(objective, start, jac=True, method="BFGS", options={"gtol": 1e-8})
    params = opt.x.copy()
    if params[0] < 0:  # the likelihood is symmetric in theta
        params[0] = -params[0]
        problem.u = -problem.u
    # polish: Newton steps with the Hessian at the BFGS solution (BFGS stops short of full
    # precision), then the Hessian again at the optimum if the polish moved noticeably
    hess = _hessian(problem, params)
    start_polish = params.copy()
    converged = False
    for _ in range(30):
        value, grad = problem.value_grad(params)
        step = np.linalg.solve(hess, grad)
        params = params - step
        if np.max(np.abs(step)) < 1e-10:
            converged = True
            break
    value, grad = problem.value_grad(params)
    if not converged:
        converged = bool(np.max(np.abs(grad)) < 1e-6)
        log.warning("GLMM: Newton polish stopped with gradient %.2e", np.max(np.abs(grad)))
    if np.max(np.abs(params - start_polish)) > 1e-8:
        hess = _hessian(problem, params)
    vcov_full = np.linalg.inv(-hess)
    return GlmmResult(
        beta=params[1:].copy(),
        theta=float(params[0]),
        vcov=vcov_full[1:, 1:],
        vcov_full=vcov_full,
        loglik=value,
        modes=problem.u.copy(),
        converged=converged,
        nagq=int(nagq),
    )
