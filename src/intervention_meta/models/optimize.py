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
boundary step shrank the others').

With the ``"project"`` rule, once the last step changed no free component by more than 10% of the
largest, the observed information :math:`\\mathcal{J}` (the negative Hessian; see
:mod:`~intervention_meta.models.likelihood`) replaces :math:`\\mathcal{I}` wherever it is positive
definite: Newton-Raphson steps, which converge quadratically where Fisher scoring converges only
linearly (half the iterations to the 1e-10 threshold), to the same maximum. A step that lowers the
likelihood is halved (at most 30 times), the boundary rule being applied to each halved step (a
search along the projection arc: halving the step already cut at zero would keep its direction,
which need not be an ascent direction, so that no halving could increase the likelihood).

The ``"halve"`` rule, like metafor's ``rma()``, uses Fisher scoring throughout and does not check
the likelihood (scoring need not increase it at every step, and a check would change metafor's
path: e.g. on the first six bcg trials with ``~ ablat`` it would stop at another point within the
1e-5 threshold). metafor's check that the fit did not stop at a local maximum above zero
(``ll0check``) is applied: if the likelihood at zero exceeds the one at the solution by more than
``ll0_tol``, zero is taken.

Several models that share a block structure (the permutations of a permutation test) are fitted
together by :func:`fisher_scoring_batch` / :func:`maximize_batch`: each member follows exactly the
iteration above, the members being evaluated with batched linear algebra.

If scoring with the ``"halve"`` rule fails (its unguarded steps can cycle around the maximum when
the observed information exceeds twice the expected one), the ``"project"`` iteration, which
checks the likelihood, is run from the same start. If scoring fails (iteration limit, non-finite
or non-positive-definite values, or step-halving cannot increase the likelihood), the likelihood is
maximised with ``scipy.optimize.minimize`` (L-BFGS-B with the analytic gradient and the bound
:math:`\\sigma^2 \\ge 0`). If that fails too the result is returned flagged ``converged=False``.
The iteration counts are bounded; there is no open-ended loop.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

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
    fallback_used : whether Fisher scoring with the requested boundary rule failed, so that a
        fallback (projected scoring after the ``"halve"`` rule, or L-BFGS-B) was needed
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
_NEWTON_SWITCH = 1e-1  # Newton steps once the last step changed no component by more than 10%


_RUNNING, _CONVERGED, _FAILED = 0, 1, 2
_NO_START, _BACKTRACK, _NONFINITE, _MAXITER = 1, 2, 3, 4


def fisher_scoring_batch(
    lik: MarginalLikelihood,
    theta: np.ndarray,
    free: np.ndarray,
    threshold: float,
    maxiter: int,
    boundary: str,
    members: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Fisher scoring with a boundary rule for several models at once.

    Each member (row of ``theta``; ``members`` says which batch member of ``lik`` it is, default
    all in order) follows exactly the single-model iteration described in the module docstring;
    the members are evaluated together with batched linear algebra and leave the batch as they
    converge or fail.

    Returns
    -------
    theta (m, L), iterations (m,), converged (m,) and a reason per member.
    """
    theta = np.maximum(np.array(theta, dtype=float, ndmin=2), 0.0)
    m, L = theta.shape
    free = np.asarray(free, dtype=bool)
    members = np.arange(m) if members is None else np.asarray(members)
    prev_theta = np.full_like(theta, np.nan)
    prev_ll = np.full(m, np.nan)
    step = np.zeros_like(theta)
    raw = np.zeros_like(theta)
    backtracks = np.zeros(m, dtype=np.int64)
    it = np.zeros(m, dtype=np.int64)
    status = np.full(m, _RUNNING)
    code = np.zeros(m, dtype=np.int64)
    eye = np.eye(L)
    while True:
        over = (status == _RUNNING) & (it >= maxiter)
        status[over], code[over] = _FAILED, _MAXITER
        idx = np.flatnonzero(status == _RUNNING)
        if idx.size == 0:
            break
        ev = lik.evaluate_batch(theta[idx], order=2, members=members[idx])
        ll = ev.loglik
        ok = ev.ok & np.isfinite(ll)
        pll = prev_ll[idx]
        has_prev = ~np.isnan(pll)
        # metafor's rma() does not check the likelihood: with the "halve" rule, only a step that
        # leaves the parameter space is halved (its iteration is reproduced exactly)
        worse = has_prev & ~ok
        if boundary != "halve" and has_prev.any():
            worse |= has_prev & (
                ll < np.where(has_prev, pll - 1e-10 * (1.0 + np.abs(pll)), -np.inf)
            )
        if worse.any():
            # a step that lowered the likelihood (or left the parameter space) is halved
            back = idx[worse]
            stuck = back[backtracks[back] >= _MAX_BACKTRACKS]
            status[stuck], code[stuck] = _FAILED, _BACKTRACK
            back = back[backtracks[back] < _MAX_BACKTRACKS]
            backtracks[back] += 1
            # halve the step before the boundary rule and apply the rule again (a search along
            # the projection arc): halving the projected step would keep its direction, which
            # need not be an ascent direction when a component was cut at zero
            raw[back] /= 2.0
            theta[back] = np.maximum(prev_theta[back] + raw[back], 0.0)
            step[back] = theta[back] - prev_theta[back]
        sel = ~worse & ok
        if not sel.all():
            bad_start = idx[~worse & ~ok]
            status[bad_start], code[bad_start] = _FAILED, _NO_START
            if not sel.any():
                continue
            si, g, info, obs_info = idx[sel], ev.grad[sel], ev.info[sel], ev.obs_info[sel]
            ll, has_prev = ll[sel], has_prev[sel]
        else:
            si, g, info, obs_info = idx, ev.grad, ev.info, ev.obs_info
        backtracks[si] = 0
        it[si] += 1
        th = theta[si]
        act = free[None, :] & ~((th <= 0) & (g <= 0))
        both = act[:, :, None] & act[:, None, :]
        if boundary == "project":
            # close to the optimum, Newton steps (observed information) where it is positive
            # definite on the free components: quadratic instead of linear convergence
            last = np.max(np.abs(step[si]), axis=1)
            scale = np.max(np.where(act, th, 0.0), axis=1)
            near = has_prev & (last <= _NEWTON_SWITCH * scale)
            if near.any():
                obs = np.where(both[near], obs_info[near], eye)
                pd = np.all(np.linalg.eigvalsh(obs) > 0, axis=1)
                use = np.flatnonzero(near)[pd]
                info = info.copy()
                info[use] = obs_info[use]
        A = np.where(both, info, eye)
        rhs = np.where(act, g, 0.0)
        try:
            stp = np.linalg.solve(A, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            stp = np.zeros_like(rhs)
            for i in range(len(si)):
                a = act[i]
                if not a.any():
                    continue
                sub = info[i][np.ix_(a, a)]
                try:
                    stp[i, a] = np.linalg.solve(sub, g[i, a])
                except np.linalg.LinAlgError:
                    stp[i, a] = np.linalg.lstsq(sub, g[i, a], rcond=None)[0]
        stp = np.where(act, stp, 0.0)
        finite = np.all(np.isfinite(stp), axis=1)
        if not finite.all():
            status[si[~finite]], code[si[~finite]] = _FAILED, _NONFINITE
            si, th, ll, g, stp, act = (x[finite] for x in (si, th, ll, g, stp, act))
        feasible = act & (th + stp >= 0)
        decrement = np.sum(np.where(feasible, g * stp, 0.0), axis=1)
        if boundary == "halve":
            for _ in range(_MAX_HALVINGS):
                neg = np.any(th + stp < 0, axis=1)
                if not neg.any():
                    break
                stp[neg] /= 2.0
        raw[si] = stp
        stp = np.maximum(th + stp, 0.0) - th
        prev_theta[si], prev_ll[si] = th, ll
        theta[si] = th + stp
        step[si] = stp
        small = (act.sum(axis=1) <= 1) | (decrement <= _DECREMENT_TOL)
        done = (np.max(np.abs(stp), axis=1) <= threshold) & small
        status[si[done]] = _CONVERGED
    messages = {
        _NO_START: "non-positive-definite marginal covariance at the start",
        _BACKTRACK: "step-halving could not increase the likelihood",
        _NONFINITE: "non-finite Fisher-scoring step",
        _MAXITER: f"no convergence in {maxiter} Fisher-scoring iterations",
    }
    reasons = [
        f"change in variance components <= {threshold:g}" if s == _CONVERGED else messages[c]
        for s, c in zip(status, code, strict=True)
    ]
    return theta, it, status == _CONVERGED, reasons


def _lbfgsb(
    lik: MarginalLikelihood, theta0: np.ndarray, free: np.ndarray, maxiter: int
) -> tuple[np.ndarray, int, bool, str]:
    """L-BFGS-B on the free components with bounds [0, inf) and the analytic gradient."""
    from scipy import optimize  # a fallback: not imported unless scoring fails

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


@dataclass(frozen=True)
class Solver:
    """How :func:`maximize` and :func:`maximize_batch` search.

    Attributes
    ----------
    threshold : Fisher scoring stops when no component changes by more than this
    maxiter : iteration limit of each optimiser
    ll0check : take zero if the likelihood there beats the solution by more than ``ll0_tol``
    ll0_tol : see ``ll0check``
    optimizer : ``"fisher"`` (with L-BFGS-B fallback) or ``"lbfgsb"`` (L-BFGS-B only)
    boundary : ``"halve"`` (metafor ``rma()``) or ``"project"``, see the module docstring
    """

    threshold: float = 1e-5
    maxiter: int = 100
    ll0check: bool = True
    ll0_tol: float = np.finfo(float).eps ** 0.25
    optimizer: str = "fisher"
    boundary: str = "halve"


def maximize(
    lik: MarginalLikelihood, start: np.ndarray, free: np.ndarray, solver: Solver | None = None
) -> tuple[Evaluation, Convergence]:
    """Maximise the likelihood over the free variance components.

    Parameters
    ----------
    lik : the likelihood (its criterion, ML or REML, is what is maximised)
    start : starting values of all components (fixed components at their fixed values)
    free : boolean mask of the components to estimate
    solver : how to search (default :class:`Solver`)

    Returns
    -------
    The evaluation (with gradient) at the estimate, and the convergence record.
    """
    solver = solver or Solver()
    threshold, maxiter, optimizer = solver.threshold, solver.maxiter, solver.optimizer
    theta = np.maximum(np.asarray(start, dtype=float), 0.0)
    free = np.asarray(free, dtype=bool)
    if not free.any():
        ev = lik.evaluate(theta, order=1)
        return ev, Convergence(True, "fixed", 0, None, False, "all variance components fixed")

    fallback_used = False
    if optimizer == "fisher":
        th, it, conv, reasons = fisher_scoring_batch(
            lik, theta[None, :], free, threshold, maxiter, solver.boundary
        )
        est, iters, ok, reason = th[0], int(it[0]), bool(conv[0]), reasons[0]
        name = "fisher-scoring"
        if not ok and solver.boundary == "halve":
            # metafor's unguarded scoring can cycle (where the observed information exceeds
            # twice the expected one); the guarded iteration reaches the maximum from there
            th, it, conv, reasons = fisher_scoring_batch(
                lik, theta[None, :], free, threshold, maxiter, "project"
            )
            if conv[0]:
                logger.info("Fisher scoring failed (%s); projected scoring converged", reason)
                reason = f"Fisher scoring failed ({reason}); projected scoring: {reasons[0]}"
                est, iters, ok, fallback_used = th[0], int(it[0]), True, True
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
    if ev is not None and solver.ll0check and np.max(est[free]) > threshold:
        zero = est.copy()
        zero[free] = 0.0
        try:
            ev0 = lik.evaluate(zero)
            if ev0.loglik - ev.loglik > solver.ll0_tol:
                ev0 = lik.evaluate(zero, order=1)
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


@dataclass(frozen=True)
class BatchMaximum:
    """Estimates of several models fitted together by :func:`maximize_batch`.

    Attributes
    ----------
    theta : (m, L) estimates (NaN rows where no estimate could be obtained)
    converged : (m,) whether the optimiser converged
    fallback_used : (m,) whether Fisher scoring failed and a fallback (see :func:`maximize`) ran
    iterations : (m,) iterations of the optimiser that produced each estimate
    """

    theta: np.ndarray
    converged: np.ndarray
    fallback_used: np.ndarray
    iterations: np.ndarray


def maximize_batch(
    lik: MarginalLikelihood,
    start: np.ndarray,
    free: np.ndarray,
    solver: Solver | None = None,
    *,
    members: np.ndarray | None = None,
) -> BatchMaximum:
    """:func:`maximize` for several models that share a block structure (a batched likelihood).

    Members are fitted together by :func:`fisher_scoring_batch`; a member for which scoring fails
    is refitted alone by :func:`maximize` (with its L-BFGS-B fallback), and the ``ll0check`` is
    applied as there, so every member gets the estimate :func:`maximize` would give it.

    Parameters
    ----------
    start : (m, L) starting values (fixed components at their fixed values)
    members : (m,) the batch members of ``lik`` the rows belong to (default all, in order)
    others : as :func:`maximize`
    """
    solver = solver or Solver()
    est = np.maximum(np.array(start, dtype=float, ndmin=2), 0.0)
    m = est.shape[0]
    free = np.asarray(free, dtype=bool)
    members = np.arange(m) if members is None else np.asarray(members)
    if not free.any():
        ones = np.ones(m, dtype=bool)
        return BatchMaximum(est, ones, ~ones, np.zeros(m, dtype=np.int64))
    if solver.optimizer == "fisher":
        est, iters, conv, _ = fisher_scoring_batch(
            lik, est, free, solver.threshold, solver.maxiter, solver.boundary, members
        )
    else:
        iters, conv = np.zeros(m, dtype=np.int64), np.zeros(m, dtype=bool)
    alone = np.flatnonzero(~conv)
    fallback = np.zeros(m, dtype=bool)
    start = np.maximum(np.array(start, dtype=float, ndmin=2), 0.0)
    for i in alone:
        try:
            ev, c = maximize(lik.member(int(members[i])), start[i], free, solver)
            est[i], conv[i], iters[i], fallback[i] = ev.theta, c.converged, c.iterations, True
        except NotPositiveDefinite:
            est[i], conv[i] = np.nan, False
    if solver.optimizer != "fisher":
        fallback[:] = False
    scored = np.flatnonzero(conv & ~np.isin(np.arange(m), alone))
    if solver.ll0check and scored.size:
        cand = scored[np.max(est[np.ix_(scored, np.flatnonzero(free))], axis=1) > solver.threshold]
        if cand.size:
            zero = est[cand].copy()
            zero[:, free] = 0.0
            ev = lik.evaluate_batch(est[cand], members=members[cand])
            ev0 = lik.evaluate_batch(zero, members=members[cand])
            take = ev.ok & ev0.ok & (ev0.loglik - ev.loglik > solver.ll0_tol)
            est[cand[take]] = zero[take]
            conv[cand[~ev.ok]] = False
    return BatchMaximum(est, conv, fallback, iters)
