"""Maximising the (restricted) likelihood over the variance components.

Fisher scoring on the variance scale (Harville 1977; Viechtbauer 2005):

.. math:: \\theta^{(t+1)} = \\theta^{(t)} + \\mathcal{I}(\\theta^{(t)})^{-1} U(\\theta^{(t)}),

with the score :math:`U` and expected information :math:`\\mathcal{I}` from
:class:`~intervention_meta.models.likelihood.MarginalLikelihood`. Variance components live on
:math:`[0, \\infty)`, and the boundary value 0 must be reachable, so the iteration works on the
variance scale with one of two boundary rules:

* ``"halve"`` (metafor's ``rma()``): a step that would make a component negative is halved until it
  does not. For the one-level model this is exactly metafor's algorithm (same start, same update,
  same stopping rule), so its ML/REML estimates agree with ``rma()`` to the last digits.
* ``"project"`` (default for multilevel models): a component whose step overshoots zero is set to
  zero (projected scoring), so one component heading for the boundary does not shrink the others'
  steps.

A component at zero whose score points below zero is held there. The iteration stops when no
component changes by more than ``threshold`` and, when several components are estimated, the
Newton decrement :math:`U^\\top\\mathcal{I}^{-1}U` of the components not pushed against the
boundary is below ``1e-6`` (log-likelihood units; a guard against stopping because one component's
boundary step shrank the others'). A step that lowers the likelihood is halved (at most 30
times). metafor's check that the fit did not stop at a local maximum above zero (``ll0check``) is
applied: if the likelihood at zero exceeds the one at the solution by more than ``ll0_tol``, zero
is taken.

If scoring fails (iteration limit, non-finite or non-positive-definite values), the likelihood is
maximised with ``scipy.optimize.minimize`` (L-BFGS-B with the analytic gradient and the bound
:math:`\\sigma^2 \\ge 0`). If that fails too the result is returned flagged ``converged=False``.
The iteration counts are bounded; there is no open-ended loop.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize

from intervention_meta.models.likelihood import Evaluation, MarginalLikelihood, NotPositiveDefinite

logger = logging.getLogger(__name__)

_MAX_HALVINGS = 1100  # enough to shrink any double to zero
_MAX_BACKTRACKS = 30


@dataclass(frozen=True)
class Convergence:
    """How the variance components were obtained.

    Attributes
    ----------
    converged : whether the optimiser met its convergence criterion
    optimizer : ``"fisher-scoring"``, ``"L-BFGS-B"`` (fallback), ``"closed-form"`` or ``"fixed"``
    iterations : iterations of the optimiser that produced the estimate
    gradient_norm : largest absolute score over the free components at the estimate (components at
        zero with a negative score excluded: that is the boundary optimum)
    fallback_used : whether the L-BFGS-B fallback was needed
    reason : a short description (why it stopped, what failed)
    """

    converged: bool
    optimizer: str
    iterations: int
    gradient_norm: float | None
    fallback_used: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def projected_gradient_norm(grad: np.ndarray, theta: np.ndarray, free: np.ndarray) -> float:
    """Largest |score| over free components, ignoring those held at zero by a negative score."""
    g = np.where(free & ~((theta <= 0) & (grad <= 0)), grad, 0.0)
    return float(np.max(np.abs(g))) if g.size else 0.0


_DECREMENT_TOL = 1e-6


def _fisher_scoring(
    lik: MarginalLikelihood,
    theta: np.ndarray,
    free: np.ndarray,
    threshold: float,
    maxiter: int,
    boundary: str,
) -> tuple[np.ndarray, int, bool, str]:
    """Fisher scoring with a boundary rule; returns (theta, iterations, converged, reason)."""
    prev_theta = prev_ll = step = None
    backtracks = 0
    it = 0
    while it < maxiter:
        try:
            ev = lik.evaluate(theta, order=2)
            ok = np.isfinite(ev.loglik)
        except NotPositiveDefinite:
            ok = False
        if prev_theta is not None and (
            not ok or ev.loglik < prev_ll - 1e-10 * (1.0 + abs(prev_ll))
        ):
            if backtracks >= _MAX_BACKTRACKS:
                return theta, it, False, "step-halving could not increase the likelihood"
            backtracks += 1
            step = step / 2.0
            theta = prev_theta + step
            continue
        if not ok:
            return theta, it, False, "non-positive-definite marginal covariance at the start"
        backtracks = 0
        it += 1
        g, info = ev.grad, ev.info
        act = free & ~((theta <= 0) & (g <= 0))
        step = np.zeros_like(theta)
        if act.any():
            sub = info[np.ix_(act, act)]
            try:
                step[act] = np.linalg.solve(sub, g[act])
            except np.linalg.LinAlgError:
                step[act] = np.linalg.lstsq(sub, g[act], rcond=None)[0]
        if not np.all(np.isfinite(step)):
            return theta, it, False, "non-finite Fisher-scoring step"
        feasible = act & (theta + step >= 0)
        decrement = float(g[feasible] @ step[feasible])
        if boundary == "halve":
            halvings = 0
            while np.any(theta + step < 0) and halvings < _MAX_HALVINGS:
                step = step / 2.0
                halvings += 1
        step = np.maximum(theta + step, 0.0) - theta
        prev_theta, prev_ll = theta, ev.loglik
        theta = theta + step
        small_decrement = act.sum() <= 1 or decrement <= _DECREMENT_TOL
        if np.max(np.abs(step)) <= threshold and small_decrement:
            return theta, it, True, f"change in variance components <= {threshold:g}"
    return theta, it, False, f"no convergence in {maxiter} Fisher-scoring iterations"


def _lbfgsb(
    lik: MarginalLikelihood, theta0: np.ndarray, free: np.ndarray, maxiter: int
) -> tuple[np.ndarray, int, bool, str]:
    """L-BFGS-B on the free components with bounds [0, inf) and the analytic gradient."""
    fixed_theta = theta0.copy()
    scale = 1.0

    def full(x: np.ndarray) -> np.ndarray:
        th = fixed_theta.copy()
        th[free] = x
        return th

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            ev = lik.evaluate(full(x), order=1)
        except NotPositiveDefinite:
            return np.inf, np.zeros_like(x)
        return -ev.loglik / scale, -ev.grad[free] / scale

    try:
        scale = max(1.0, abs(lik.evaluate(theta0).loglik))
    except NotPositiveDefinite:
        pass
    res = optimize.minimize(
        fun,
        np.maximum(theta0[free], 0.0),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * int(free.sum()),
        options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-10},
    )
    return full(res.x), int(res.nit), bool(res.success), f"L-BFGS-B: {res.message}"


def maximize(
    lik: MarginalLikelihood,
    start: np.ndarray,
    free: np.ndarray,
    *,
    threshold: float = 1e-5,
    maxiter: int = 100,
    ll0check: bool = True,
    ll0_tol: float = np.finfo(float).eps ** 0.25,
    optimizer: str = "fisher",
    boundary: str = "halve",
) -> tuple[Evaluation, Convergence]:
    """Maximise the likelihood over the free variance components.

    Parameters
    ----------
    lik : the likelihood (its criterion, ML or REML, is what is maximised)
    start : starting values of all components (fixed components at their fixed values)
    free : boolean mask of the components to estimate
    threshold : Fisher scoring stops when no component changes by more than this
    maxiter : iteration limit of each optimiser
    ll0check : take zero if the likelihood there beats the solution by more than ``ll0_tol``
    optimizer : ``"fisher"`` (with L-BFGS-B fallback) or ``"lbfgsb"`` (L-BFGS-B only)
    boundary : ``"halve"`` (metafor ``rma()``) or ``"project"``, see the module docstring

    Returns
    -------
    The evaluation (with gradient) at the estimate, and the convergence record.
    """
    theta = np.maximum(np.asarray(start, dtype=float), 0.0)
    free = np.asarray(free, dtype=bool)
    if not free.any():
        ev = lik.evaluate(theta, order=1)
        return ev, Convergence(True, "fixed", 0, None, False, "all variance components fixed")

    fallback_used = False
    if optimizer == "fisher":
        est, iters, ok, reason = _fisher_scoring(lik, theta, free, threshold, maxiter, boundary)
        name = "fisher-scoring"
    else:
        ok, est, iters, reason, name = False, theta, 0, "", "L-BFGS-B"
    if not ok:
        if optimizer == "fisher":
            logger.warning("Fisher scoring failed (%s); falling back to L-BFGS-B", reason)
            fallback_used = True
        lbfgsb_maxiter = maxiter if optimizer == "lbfgsb" else max(maxiter, 1000)
        est2, iters2, ok2, reason2 = _lbfgsb(lik, theta, free, lbfgsb_maxiter)
        if optimizer == "fisher":
            reason2 = f"Fisher scoring failed ({reason}); {reason2}"
        est, iters, ok, reason, name = est2, iters2, ok2, reason2, "L-BFGS-B"

    try:
        ev = lik.evaluate(est, order=1)
    except NotPositiveDefinite:
        ev = None
        ok = False
        reason += "; marginal covariance not positive definite at the estimate"
    if ev is not None and ll0check and np.max(est[free]) > threshold:
        zero = est.copy()
        zero[free] = 0.0
        try:
            ev0 = lik.evaluate(zero, order=1)
            if ev0.loglik - ev.loglik > ll0_tol:
                logger.warning(
                    "optimiser stopped at a local maximum; the likelihood is larger with the "
                    "free variance components at zero, which is taken"
                )
                ev, est = ev0, zero
                reason += "; local maximum replaced by the boundary value 0 (ll0check)"
        except NotPositiveDefinite:
            pass
    if ev is None:
        raise NotPositiveDefinite(reason)
    gnorm = projected_gradient_norm(ev.grad, est, free)
    conv = Convergence(bool(ok), name, int(iters), gnorm, fallback_used, reason)
    if not ok:
        logger.warning("variance components did not converge: %s", reason)
    return ev, conv
