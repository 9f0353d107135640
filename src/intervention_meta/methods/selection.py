"""Step-function selection models (Vevea & Hedges 1995), also for dependent effect sizes.

The model: effect size :math:`y_i \\sim N(\\mu_i, \\eta_i)` with :math:`\\mu_i = x_i^\\top\\beta`
and :math:`\\eta_i = v_i + \\tau^2`, observed with a relative probability that is a step function of
its one-sided p value :math:`p_i`: weight :math:`\\delta_1 = 1` for :math:`0 < p \\le
\\alpha_1`, :math:`\\delta_j` for :math:`\\alpha_{j-1} < p \\le \\alpha_j` (``steps`` are the
:math:`\\alpha_j`, with :math:`\\alpha_J = 1`). The log-likelihood of one effect size is

.. math::

    \\ell_i = \\log\\delta_{g(i)} + \\log\\phi\\big((y_i - \\mu_i)/\\sqrt{\\eta_i}\\big)
              - \\tfrac12\\log\\eta_i - \\log A_i, \\qquad
    A_i = \\sum_{j=1}^{J} \\delta_j B_{ij},

where :math:`g(i)` is the interval of :math:`p_i` and :math:`B_{ij}` the probability, under
:math:`N(\\mu_i, \\eta_i)`, that the p value falls in interval :math:`j` (Vevea & Hedges 1995,
eq. 4-6). With one effect size per study the sum of the :math:`\\ell_i` is the likelihood that
metafor 3.8's ``selmodel(rma(yi, vi, mods, method = "ML"), type = "stepfun", steps = ...)``
maximises, and :func:`selection_model` reproduces its estimates, standard errors (the inverse of
the observed information) and likelihood-ratio test of selection (``tests/test_selection.py``
against ``tests/reference/selection_metafor.json``).

With several effect sizes per study (``cluster=``), the same sum is a composite marginal
likelihood (CML): each effect's marginal selection likelihood, the dependence left unmodelled, as
Pustejovsky, Citkowicz & Joshi (2025) and their R package metaselection do. The estimates stay
consistent; the variance is the cluster-robust sandwich

.. math::

    V = H^{-1} \\Big(\\sum_c S_c S_c^\\top\\Big) H^{-1},

with :math:`H` the Hessian of the CML and :math:`S_c` the sum of the score contributions of
cluster :math:`c` (metaselection's ``vcov_type = "robust"``: no small-sample factor), and a cluster
bootstrap resamples whole clusters with replacement and refits (percentile intervals). The
estimates, the sandwich and the log-likelihood match metaselection 0.1.5's
``selection_model(estimator = "CML", vcov_type = "robust", priors = NULL)`` to 1e-5
(``tests/reference/selection_metaselection.json``).

Parameters are estimated as :math:`\\theta = (\\beta, \\log\\tau^2, \\log\\delta_2, \\dots,
\\log\\delta_J)` (metaselection's scale); standard errors of :math:`\\tau^2` and
:math:`\\delta_j` are on their own scale (delta method; at the maximum this is the inverse
Hessian on that scale, which metafor reports), and their Wald intervals are computed on the log
scale and exponentiated (metafor uses :math:`\\delta_j \\pm z\\,SE` truncated at 0). Like metafor,
the weights are kept within [0, 100] (:math:`10^{-8}` here for the log) and a model needs at least
one observed p value in every interval. The likelihood-ratio test of selection compares with the
same likelihood at :math:`\\delta \\equiv 1` (the ML random-effects model, metafor's ``ll0``);
with dependent effects this composite LRT ignores the dependence and rejects too often, so the
result also carries the Wald test of :math:`\\log\\delta = 0` with the (cluster-robust) variance.

Two-sided p values (``alternative="two.sided"``, selection on significance in either direction)
use the same likelihood with both tails in every :math:`B_{ij}`, as metafor's selmodel does.

Not supported: the other selection functions of metafor (beta, half-normal, ...), moderators
of the weights or of :math:`\\tau^2`, and metaselection's hybrid and ARGL estimators.

References
----------
Hedges, L. V. (1992). Modeling publication selection effects in meta-analysis. *Statistical
Science*, 7(2), 246-255.

Pustejovsky, J. E., Citkowicz, M., & Joshi, M. (2025). Estimation and inference for step-function
selection models in meta-analysis with dependent effects. *Research Synthesis Methods* (preprint
doi:10.31222/osf.io/qg5x6_v1).

Vevea, J. L., & Hedges, L. V. (1995). A general linear model for estimating effect size in the
presence of publication bias. *Psychometrika*, 60(3), 419-435.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable as _jsonable
from intervention_meta.models import distributions as dist

logger = logging.getLogger(__name__)

__all__ = ["ALTERNATIVES", "Estimate", "SelectionModel", "selection_model"]

#: the p values the steps apply to (metafor's ``alternative``)
ALTERNATIVES = ("greater", "less", "two.sided")

_LOG_2PI = math.log(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_DELTA_MAX = 100.0  # metafor's delta.max for type="stepfun"
_LOG_DELTA_MIN = math.log(1e-8)
_MAX_ITER = 200
_MAX_HALVINGS = 40
_MAX_STEP = 2.0


# --------------------------------------------------------------------------------------------
# the likelihood
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Problem:
    """The data of one fit, oriented so that small p values are large ``y``."""

    y: np.ndarray  # (k,)
    v: np.ndarray  # (k,)
    X: np.ndarray  # (k, p)
    cuts: np.ndarray  # (k, J-1): y above cuts[:, j] has p <= steps[j]
    group: np.ndarray  # (k,) interval of each p value, 0..J-1
    n_steps: int  # J
    two_sided: bool = False  # p values of |y|: y below -cuts[:, j] has p <= steps[j] too

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def n_par(self) -> int:
        return self.p + self.n_steps


def _loglik(
    theta: np.ndarray, pb: _Problem, *, scores: bool = True
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Log-likelihood contributions ``(B, k)`` and the factors of the score contributions.

    ``theta`` is ``(B, P)``: B parameter vectors evaluated at once (the bootstrap replicates).
    The score of effect size i is ``(f_mu * x_i, f_log_tau2, f_log_delta_2, ...)``; the factors
    are returned as a list of ``(B, k)`` arrays in that order (``f_mu`` first).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _loglik_parts(theta, pb, scores)


def _loglik_parts(
    theta: np.ndarray, pb: _Problem, scores: bool
) -> tuple[np.ndarray, list[np.ndarray]]:
    p, J = pb.p, pb.n_steps
    B = theta.shape[0]
    mu = theta[:, :p] @ pb.X.T  # (B, k)
    tau2 = np.exp(theta[:, p : p + 1])
    log_delta = np.zeros((B, J))
    log_delta[:, 1:] = theta[:, p + 1 :]
    delta = np.exp(log_delta)
    eta = pb.v[None, :] + tau2
    inv_s = 1.0 / np.sqrt(eta)
    # h_c: the standardised cut-point c; interval j lies between cuts j-1 and j (cut -1 = +inf,
    # cut J-1 = -inf), so B_j = Phi(h_{j-1}) - Phi(h_j). Two-sided p values: g_c, the cut at
    # -c, adds the lower tail, P(p <= steps[c]) = 1 - Phi(h_c) + Phi(g_c)
    h = [(pb.cuts[None, :, c] - mu) * inv_s for c in range(J - 1)]
    g = [(-pb.cuts[None, :, c] - mu) * inv_s for c in range(J - 1)] if pb.two_sided else []
    upper = [dist.norm_sf(hc) for hc in h]  # P(p <= steps[c])
    for c, gc in enumerate(g):
        upper[c] = upper[c] + dist.norm_cdf(gc)
    probs = [upper[0]]
    probs += [upper[c] - upper[c - 1] for c in range(1, J - 1)]
    probs.append(dist.norm_cdf(h[-1]) - (dist.norm_cdf(g[-1]) if g else 0.0))
    A = probs[0].copy()
    for j in range(1, J):
        A += delta[:, j : j + 1] * probs[j]
    resid = pb.y[None, :] - mu
    ll = log_delta[:, pb.group] - 0.5 * (_LOG_2PI + np.log(eta) + resid**2 / eta) - np.log(A)
    if not scores:
        return ll, []
    # dA/dmu = sum_c phi(h_c) (delta_c - delta_{c+1}) / s; dA/deta: phi(h_c) h_c / (2 eta) instead
    A_mu = np.zeros_like(A)
    A_eta = np.zeros_like(A)
    for c in range(J - 1):
        phi = np.exp(-0.5 * h[c] ** 2) * _INV_SQRT_2PI
        jump = delta[:, c : c + 1] - delta[:, c + 1 : c + 2]
        A_mu += jump * phi
        A_eta += jump * phi * h[c]
        if g:
            phi = np.exp(-0.5 * g[c] ** 2) * _INV_SQRT_2PI
            A_mu -= jump * phi
            A_eta -= jump * phi * g[c]
    A_mu *= inv_s
    A_eta *= 0.5 / eta
    inv_A = 1.0 / A
    factors = [resid / eta - A_mu * inv_A]
    factors.append(tau2 * (0.5 * resid**2 / eta**2 - 0.5 / eta - A_eta * inv_A))
    for j in range(1, J):
        factors.append((pb.group == j)[None, :] - delta[:, j : j + 1] * probs[j] * inv_A)
    return ll, factors


def _scores(theta: np.ndarray, pb: _Problem) -> np.ndarray:
    """Score contributions ``(k, P)`` of one parameter vector ``(P,)``."""
    _, f = _loglik(theta[None, :], pb)
    return np.column_stack([f[0][0][:, None] * pb.X, *(fj[0] for fj in f[1:])])


def _totals(theta: np.ndarray, pb: _Problem, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted total log-likelihood ``(B,)`` and gradient ``(B, P)``."""
    ll, f = _loglik(theta, pb)
    if w is not None:
        ll = ll * w
        f = [fj * w for fj in f]
    grad = np.empty(theta.shape)
    grad[:, : pb.p] = f[0] @ pb.X
    for j, fj in enumerate(f[1:]):
        grad[:, pb.p + j] = fj.sum(axis=1)
    return ll.sum(axis=1), grad


def _hessian(
    theta: np.ndarray,
    pb: _Problem,
    w: np.ndarray | None,
    free: np.ndarray,
    *,
    central: bool,
    grad: np.ndarray | None = None,
) -> np.ndarray:
    """Hessian of the total log-likelihood over the ``free`` parameters, ``(B, F, F)``.

    Finite differences of the analytic gradient: forward inside the Newton iterations, central
    (error :math:`O(h^2)`, about 1e-10 relative) for the reported variances.
    """
    idx = np.flatnonzero(free)
    B = theta.shape[0]
    H = np.empty((B, idx.size, idx.size))
    if not central:
        g0 = (_totals(theta, pb, w)[1] if grad is None else grad)[:, idx]
    for a, q in enumerate(idx):
        step = (1e-4 if central else 1e-6) * np.maximum(1.0, np.abs(theta[:, q]))
        up = theta.copy()
        up[:, q] += step
        g_up = _totals(up, pb, w)[1][:, idx]
        if central:
            down = theta.copy()
            down[:, q] -= step
            H[:, a, :] = (g_up - _totals(down, pb, w)[1][:, idx]) / (2.0 * step[:, None])
        else:
            H[:, a, :] = (g_up - g0) / step[:, None]
    return 0.5 * (H + np.swapaxes(H, 1, 2))


def _bounds(pb: _Problem) -> tuple[np.ndarray, np.ndarray]:
    lower = np.full(pb.n_par, -np.inf)
    upper = np.full(pb.n_par, np.inf)
    lower[pb.p] = math.log(1e-10 * float(np.mean(pb.v)))  # tau2 = 0 for all purposes
    lower[pb.p + 1 :] = _LOG_DELTA_MIN
    upper[pb.p + 1 :] = math.log(_DELTA_MAX)
    return lower, upper


def _maximise(
    theta0: np.ndarray,
    pb: _Problem,
    w: np.ndarray | None,
    free: np.ndarray,
    *,
    tol: float = 1e-14,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Maximise B weighted log-likelihoods at once by damped Newton steps within the bounds.

    Returns the estimates ``(B, P)``, the maximised log-likelihoods ``(B,)``, a converged flag per
    replicate and the number of iterations. Directions come from the Hessian with its eigenvalues
    floored (an ascent direction also where it is not negative definite); each step is halved
    until the log-likelihood does not fall. A replicate has converged when the Newton decrement
    of the free parameters off their bounds is below ``tol`` (the log-likelihood is within about
    ``tol / 2`` of the maximum, the parameters within about ``sqrt(tol)`` standard errors).
    """
    lower, upper = _bounds(pb)
    theta = np.clip(theta0.astype(float).copy(), lower, upper)
    ll, g = _totals(theta, pb, w)
    B = theta.shape[0]
    done = np.zeros(B, dtype=bool)
    idx = np.flatnonzero(free)
    iterations = 0
    for iteration in range(1, _MAX_ITER + 1):
        iterations = iteration
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        wa = None if w is None else w[act]
        th = theta[act]
        ga = g[act][:, idx]
        # parameters on a bound with the gradient pushing outwards are held there
        at_lo = (th[:, idx] <= lower[idx]) & (ga < 0)
        at_up = (th[:, idx] >= upper[idx]) & (ga > 0)
        hold = at_lo | at_up
        ga = np.where(hold, 0.0, ga)
        H = _hessian(th, pb, wa, free, central=False, grad=g[act])
        H = np.where(hold[:, :, None] | hold[:, None, :], 0.0, H)
        # eigenvalues floored on the unit-diagonal scale: a tau2 near 0 has a tiny curvature
        # in log tau2 that an unscaled floor would swamp
        scale = 1.0 / np.sqrt(np.maximum(np.abs(np.diagonal(H, axis1=1, axis2=2)), 1e-300))
        lam, vec = np.linalg.eigh(-H * scale[:, :, None] * scale[:, None, :])
        lam = np.maximum(lam, 1e-8 * np.maximum(np.abs(lam).max(axis=1, keepdims=True), 1e-8))
        d = scale * np.einsum("bij,bj,bkj,bk->bi", vec, 1.0 / lam, vec, scale * ga)
        d = np.where(hold, 0.0, d)
        # no step longer than _MAX_STEP in any parameter (log tau2, log weights: a log scale)
        longest = np.abs(d).max(axis=1, keepdims=True)
        d = d * np.minimum(1.0, _MAX_STEP / np.maximum(longest, 1e-300))
        decrement = np.einsum("bi,bi->b", ga, d)
        conv = decrement < tol
        done[act[conv]] = True
        go = ~conv
        act, th, d = act[go], th[go], d[go]
        if act.size == 0:
            break
        t = np.ones(act.size)
        ll_old = ll[act]
        pending = np.ones(act.size, dtype=bool)
        for _ in range(_MAX_HALVINGS):
            sel = np.flatnonzero(pending)
            cand = th[sel].copy()
            cand[:, idx] += t[sel, None] * d[sel]
            cand = np.clip(cand, lower, upper)
            ll_c, g_c = _totals(cand, pb, None if w is None else w[act[sel]])
            ok = np.isfinite(ll_c) & (ll_c >= ll_old[sel] - 1e-12 * np.abs(ll_old[sel]))
            rows = act[sel[ok]]
            theta[rows], ll[rows], g[rows] = cand[ok], ll_c[ok], g_c[ok]
            pending[sel[ok]] = False
            if not pending.any():
                break
            t[pending] *= 0.5
        # no step improved: at the maximum within floating-point accuracy
        done[act[pending]] = True
    g_free = g[:, idx]
    off_bound = (theta[:, idx] > lower[idx]) & (theta[:, idx] < upper[idx])
    converged = done & np.all(np.isfinite(theta), axis=1)
    small = np.abs(g_free) < 1e-3 * np.maximum(1.0, np.abs(ll))[:, None]
    converged &= np.all(~off_bound | small, axis=1)
    return theta, ll, converged, iterations


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """One estimate with its standard error, Wald CI and (with a bootstrap) percentile CI."""

    estimate: float
    se: float
    ci_lb: float
    ci_ub: float
    # the cluster bootstrap's percentile interval; None without a bootstrap
    boot_ci_lb: float | None = None
    boot_ci_ub: float | None = None

    def to_dict(self) -> dict:
        return {k: _jsonable(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass(frozen=True, eq=False)
class SelectionModel:
    """A fitted step-function selection model (see :func:`selection_model`).

    Attributes
    ----------
    coef_names : names of the mean's coefficients
    coefficients : one :class:`Estimate` per coefficient; ``zval``, ``pval`` their Wald tests
    tau2 : the between-effect variance :math:`\\tau^2` (CI on the log scale)
    steps : the p-value cut-points, ending with 1
    intervals : the p-value intervals as text (``"0 < p <= 0.025"``)
    k_per_interval : observed p values per interval
    weights : the selection weights :math:`\\delta_j`, the first fixed at 1 (se 0, no CI)
    adjusted_mean : the mean effect under the selection model: the intercept without moderators,
        otherwise the average of the fitted means :math:`\\bar x^\\top\\beta`
    unadjusted_mean, unadjusted_tau2 : the same from the model without selection
        (:math:`\\delta \\equiv 1`: the ML random-effects model; its variance of the same type)
    loglik, loglik_null : maximised (composite) log-likelihoods with and without selection
    lrt, lrt_df, lrt_pval : the likelihood-ratio test of H0 :math:`\\delta_2 = \\dots = 1`
    wald, wald_df, wald_pval : the Wald test of the same H0 (:math:`\\log\\delta = 0`) with ``vcov``
    vcov : variance of :math:`\\theta = (\\beta, \\log\\tau^2, \\log\\delta_2, \\dots)`,
        ``param_names`` its rows
    vcov_type : ``"model"`` (inverse observed information) or ``"cluster-robust"`` (sandwich)
    converged, iterations : of the maximisation
    k, n_clusters, alternative, level : the input
    bootstrap, bootstrap_converged, seed : replications asked for, those that converged (used for
        the percentile CIs), the seed
    bootstrap_draws : the converged replicates' :math:`\\theta`, ``(R, P)`` (not in ``to_dict``)
    """

    coef_names: tuple[str, ...]
    coefficients: tuple[Estimate, ...]
    zval: np.ndarray
    pval: np.ndarray
    tau2: Estimate
    steps: tuple[float, ...]
    intervals: tuple[str, ...]
    k_per_interval: tuple[int, ...]
    weights: tuple[Estimate, ...]
    adjusted_mean: Estimate
    unadjusted_mean: Estimate
    unadjusted_tau2: float
    loglik: float
    loglik_null: float
    lrt: float
    lrt_df: int
    lrt_pval: float
    wald: float
    wald_df: int
    wald_pval: float
    param_names: tuple[str, ...]
    vcov: np.ndarray
    vcov_type: str
    converged: bool
    iterations: int
    k: int
    n_clusters: int
    alternative: str
    level: float
    bootstrap: int
    bootstrap_converged: int
    seed: int | None
    bootstrap_draws: np.ndarray | None = None

    @property
    def beta(self) -> np.ndarray:
        return np.array([c.estimate for c in self.coefficients])

    @property
    def delta(self) -> np.ndarray:
        return np.array([c.estimate for c in self.weights])

    def to_dict(self) -> dict:
        coefs = [
            {"term": name, **c.to_dict(), "zval": _jsonable(z), "pval": _jsonable(p)}
            for name, c, z, p in zip(
                self.coef_names, self.coefficients, self.zval, self.pval, strict=True
            )
        ]
        weights = [
            {"interval": lab, "p_lb": lo, "p_ub": hi, "k": n, **w.to_dict()}
            for lab, lo, hi, n, w in zip(
                self.intervals,
                (0.0, *self.steps[:-1]),
                self.steps,
                self.k_per_interval,
                self.weights,
                strict=True,
            )
        ]
        return {
            "k": self.k,
            "n_clusters": self.n_clusters,
            "steps": list(self.steps),
            "alternative": self.alternative,
            "level": self.level,
            "vcov_type": self.vcov_type,
            "coefficients": coefs,
            "tau2": self.tau2.to_dict(),
            "weights": weights,
            "adjusted_mean": self.adjusted_mean.to_dict(),
            "unadjusted_mean": self.unadjusted_mean.to_dict(),
            "unadjusted_tau2": self.unadjusted_tau2,
            "loglik": self.loglik,
            "loglik_null": self.loglik_null,
            "lrt": {"statistic": self.lrt, "df": self.lrt_df, "pval": self.lrt_pval},
            "wald": {"statistic": self.wald, "df": self.wald_df, "pval": _jsonable(self.wald_pval)},
            "converged": self.converged,
            "bootstrap": {
                "replications": self.bootstrap,
                "converged": self.bootstrap_converged,
                "seed": self.seed,
            },
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter: coefficients, adjusted and unadjusted mean, tau2, weights."""
        rows = [
            ("coefficient", name, c)
            for name, c in zip(self.coef_names, self.coefficients, strict=True)
        ]
        rows += [
            ("mean", "adjusted", self.adjusted_mean),
            ("mean", "unadjusted", self.unadjusted_mean),
        ]
        rows.append(("tau2", "tau2", self.tau2))
        rows += [("weight", lab, w) for lab, w in zip(self.intervals, self.weights, strict=True)]
        frame = pd.DataFrame(
            [{"kind": kind, "term": term, **est.to_dict()} for kind, term, est in rows]
        )
        frame["level"] = self.level
        return frame


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------
def _design(X: Any, k: int) -> tuple[np.ndarray, tuple[str, ...]]:
    if X is None:
        return np.ones((k, 1)), ("intrcpt",)
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=float), tuple(str(c) for c in X.columns)
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr, tuple(f"X{j}" for j in range(arr.shape[1]))


def _scaling(X: np.ndarray) -> np.ndarray:
    """metafor's rescaling of the moderators (``scaleX``): ``X @ A`` has the non-dummy columns
    centred and divided by their SD when there is an intercept; coefficients ``beta = A beta_s``."""
    p = X.shape[1]
    A = np.eye(p)
    intercept = np.flatnonzero(np.all(X == 1.0, axis=0))
    if intercept.size == 0 or p == 1:
        return A
    i0 = intercept[0]
    for j in range(p):
        col = X[:, j]
        if j == i0 or np.all((col == 0) | (col == 1)):
            continue
        sd = float(np.std(col, ddof=1))
        A[j, j] = 1.0 / sd
        A[i0, j] = -float(np.mean(col)) / sd
    return A


def _prepare(
    yi: Any, vi: Any, cluster: Any, X: Any, steps: Sequence[float], alternative: str
) -> tuple[_Problem, np.ndarray, tuple[str, ...], tuple[float, ...], np.ndarray]:
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.shape != v.shape:
        raise ValueError(f"yi and vi differ in length ({y.size} vs {v.size})")
    Xm, names = _design(X, y.size)
    if Xm.shape[0] != y.size:
        raise ValueError(f"X has {Xm.shape[0]} rows, yi has {y.size}")
    cl = np.arange(y.size) if cluster is None else pd.factorize(pd.Series(np.asarray(cluster)))[0]
    if cl.size != y.size:
        raise ValueError(f"cluster has {cl.size} values, yi has {y.size}")
    bad = np.isnan(y) | np.isnan(v) | np.isnan(Xm).any(axis=1) | (cl < 0)
    if bad.any():
        logger.warning("selection_model: %d row(s) with missing values omitted", int(bad.sum()))
        y, v, Xm, cl = y[~bad], v[~bad], Xm[~bad], cl[~bad]
        cl = pd.factorize(cl)[0]
    if np.any(v <= 0):
        raise ValueError("selection_model: sampling variances must be positive")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    st = sorted({float(s) for s in steps})
    if not st or st[0] <= 0 or st[-1] > 1:
        raise ValueError(f"steps must lie in (0, 1], got {list(steps)}")
    if st[-1] != 1.0:
        st.append(1.0)
    if len(st) < 2:
        raise ValueError("steps must contain at least one cut-point below 1")
    two_sided = alternative == "two.sided"
    sign = -1.0 if alternative == "less" else 1.0
    sei = np.sqrt(v)
    pvals = 2.0 * dist.norm_sf(np.abs(y) / sei) if two_sided else dist.norm_sf(sign * y / sei)
    group = np.searchsorted(np.array(st), pvals, side="left")
    counts = np.bincount(group, minlength=len(st))
    if np.any(counts == 0):
        raise ValueError(
            "selection_model: one or more p-value intervals contain no observed p value "
            f"(counts {counts.tolist()} for steps {st})"
        )
    if np.linalg.matrix_rank(Xm) < Xm.shape[1]:
        raise ValueError("selection_model: the design matrix X is not of full column rank")
    scale = _scaling(Xm)
    tail = np.array(st[:-1]) / (2.0 if two_sided else 1.0)
    cuts = sei[:, None] * dist.norm_isf(tail)[None, :]
    pb = _Problem(
        y=sign * y,
        v=v,
        X=sign * (Xm @ scale),
        cuts=cuts,
        group=group,
        n_steps=len(st),
        two_sided=two_sided,
    )
    if y.size < pb.n_par:
        raise ValueError(f"selection_model: k = {y.size} is too small for {pb.n_par} parameters")
    return pb, cl, names, tuple(st), scale


def _start(pb: _Problem) -> np.ndarray:
    """Starting values: weighted least squares for beta, a moment tau2, weights 1."""
    w = 1.0 / pb.v
    Xw = pb.X * w[:, None]
    beta = np.linalg.solve(pb.X.T @ Xw, Xw.T @ pb.y)
    resid = pb.y - pb.X @ beta
    tau2 = max(float(np.mean(resid**2 - pb.v)), 0.01 * float(np.mean(pb.v)))
    theta = np.zeros(pb.n_par)
    theta[: pb.p] = beta
    theta[pb.p] = math.log(tau2)
    return theta


def _fit_one(
    theta0: np.ndarray, pb: _Problem, free: np.ndarray
) -> tuple[np.ndarray, float, bool, int]:
    theta, ll, conv, it = _maximise(theta0[None, :], pb, None, free)
    if not conv[0]:
        from scipy.optimize import minimize

        logger.info("selection_model: Newton steps did not converge; trying L-BFGS-B first")
        lower, upper = _bounds(pb)
        fixed = theta0.copy()
        idx = np.flatnonzero(free)

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            th = fixed.copy()
            th[idx] = x
            value, grad = _totals(th[None, :], pb, None)
            return -float(value[0]), -grad[0, idx]

        res = minimize(
            objective,
            theta0[idx],
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(lower[idx], upper[idx], strict=True)),
        )
        start = fixed.copy()
        start[idx] = res.x
        theta, ll, conv, it2 = _maximise(start[None, :], pb, None, free)
        it += it2
    return theta[0], float(ll[0]), bool(conv[0]), it


def _vcov(
    theta: np.ndarray, pb: _Problem, free: np.ndarray, cluster: np.ndarray | None
) -> np.ndarray:
    """Variance of the free parameters (zero rows/columns for fixed ones and those on a bound)."""
    lower, upper = _bounds(pb)
    use = free & (theta > lower) & (theta < upper)
    V = np.full((pb.n_par, pb.n_par), 0.0)
    idx = np.flatnonzero(use)
    H = _hessian(theta[None, :], pb, None, use, central=True)[0]
    try:
        Hinv = np.linalg.inv(-H)
    except np.linalg.LinAlgError:
        logger.warning("selection_model: the Hessian is singular; no standard errors")
        V[np.ix_(idx, idx)] = np.nan
        return V
    if cluster is None:
        V[np.ix_(idx, idx)] = Hinv
    else:
        S = _scores(theta, pb)[:, idx]
        Sc = np.zeros((int(cluster.max()) + 1, idx.size))
        np.add.at(Sc, cluster, S)
        V[np.ix_(idx, idx)] = Hinv @ (Sc.T @ Sc) @ Hinv
    return V


def _wald_estimate(
    est: float, se: float, crit: float, log_scale: bool = False
) -> tuple[float, float]:
    if log_scale:
        if not (est > 0 and np.isfinite(se)):
            return math.nan, math.nan
        half = crit * se / est
        return est * math.exp(-half), est * math.exp(half)
    return est - crit * se, est + crit * se


def selection_model(
    yi: Any,
    vi: Any,
    *,
    cluster: Any = None,
    X: Any = None,
    steps: Sequence[float] = (0.025,),
    alternative: Literal["greater", "less", "two.sided"] = "greater",
    bootstrap: int = 0,
    seed: int | np.random.Generator | None = None,
    level: float = 0.95,
) -> SelectionModel:
    """Fit the step-function selection model of Vevea & Hedges (1995), by cluster if asked.

    Parameters
    ----------
    yi, vi : effect sizes and their sampling variances
    cluster : study of each effect size. Without it every effect size is its own study and the
        variance is the inverse observed information (metafor's); with it the estimates maximise
        the composite marginal likelihood and the variance is the cluster-robust sandwich
        (Pustejovsky, Citkowicz & Joshi 2025).
    X : the mean's design matrix, intercept column included (a DataFrame names the
        coefficients); default an intercept only
    steps : the one-sided p-value cut-points (1 is added); the default (0.025,) is the
        three-parameter model (mean, tau2, one weight)
    alternative : ``"greater"``: p values of H1 ``mu > 0`` (selection favours large positive
        effects); ``"less"`` for the other direction; ``"two.sided"``: two-sided p values
        :math:`2(1 - \\Phi(|y_i|/\\sqrt{v_i}))` (selection on significance in either direction;
        ``steps`` are then two-sided, e.g. (0.05,), and interval :math:`j` holds
        :math:`|y_i|` between :math:`\\sqrt{v_i}\\,z_{1-\\alpha_j/2}` and
        :math:`\\sqrt{v_i}\\,z_{1-\\alpha_{j-1}/2}`, metafor's ``alternative = "two.sided"``)
    bootstrap : cluster-bootstrap replications (0: none). Studies are drawn with replacement
        (``rng.integers``), every replicate refitted from the estimates; percentile CIs from the
        replicates that converged.
    seed : seed of ``numpy.random.default_rng`` (or a Generator) for the bootstrap; the same seed
        gives bit-identical results
    level : confidence level

    Returns
    -------
    SelectionModel

    Notes
    -----
    Matches metafor 3.8 ``selmodel(rma(yi, vi, mods, method = "ML"), type = "stepfun", steps =
    steps, alternative = alternative)`` to 1e-5 (``tests/reference/selection_metafor.json``):
    coefficients and their variance, tau2 and its SE, the weights and their SEs, the
    log-likelihoods and the LRT. metafor stops its optimiser earlier (``reltol`` 1.5e-8), so its
    default-control estimates can differ from the maximum in the fifth digit.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> vi = rng.uniform(0.01, 0.1, 40)
    >>> yi = rng.normal(0.3, np.sqrt(vi + 0.02))
    >>> res = selection_model(yi, vi, steps=(0.025,))
    >>> res.weights[0].estimate, len(res.weights)
    (1.0, 2)
    """
    pb, cl, names, st, scale = _prepare(yi, vi, cluster, X, steps, alternative)
    n_clusters = int(cl.max()) + 1
    clustered = cluster is not None
    P, p, J = pb.n_par, pb.p, pb.n_steps
    crit = float(dist.norm_isf((1.0 - level) / 2.0))

    # the model without selection (delta = 1) and with it
    free_null = np.arange(P) < p + 1
    theta_null, ll_null, conv_null, _ = _fit_one(_start(pb), pb, free_null)
    free = np.ones(P, dtype=bool)
    theta, ll, conv, iterations = _fit_one(theta_null, pb, free)
    if not (conv and conv_null):
        logger.warning("selection_model: the maximisation did not converge")
    # back from the rescaled moderators: theta = T theta_s, V = T V_s T'
    T = np.eye(P)
    T[:p, :p] = scale
    V = T @ _vcov(theta, pb, free, cl if clustered else None) @ T.T
    V_null = T @ _vcov(theta_null, pb, free_null, cl if clustered else None) @ T.T
    theta_s = theta
    theta, theta_null = T @ theta, T @ theta_null

    # "less" fits -y on -X: the coefficients are those of y on X
    sign = -1.0 if alternative == "less" else 1.0
    beta, se_beta = theta[:p], np.sqrt(np.diag(V)[:p])
    xbar = sign * pb.X.mean(axis=0) @ np.linalg.inv(scale)

    draws = None
    n_boot_ok = 0
    boot_q = None
    if bootstrap > 0:
        draws, n_boot_ok = _bootstrap(
            theta_s, pb, cl, n_clusters, bootstrap, np.random.default_rng(seed)
        )
        draws = draws @ T.T
        alpha = 1.0 - level
        # beta, tau2, delta_2..delta_J, adjusted mean
        natural = np.column_stack([draws[:, :p], np.exp(draws[:, p:]), draws[:, :p] @ xbar])
        boot_q = np.quantile(natural, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)

    def boot(j: int) -> dict:
        if boot_q is None:
            return {}
        return {"boot_ci_lb": float(boot_q[0, j]), "boot_ci_ub": float(boot_q[1, j])}

    coefficients = tuple(
        Estimate(float(b), float(s), *_wald_estimate(float(b), float(s), crit), **boot(j))
        for j, (b, s) in enumerate(zip(beta, se_beta, strict=True))
    )
    zval = beta / se_beta
    pval = 2.0 * dist.norm_sf(np.abs(zval))

    tau2 = math.exp(theta[p])
    se_tau2 = tau2 * math.sqrt(V[p, p]) if V[p, p] > 0 else math.nan
    tau2_est = Estimate(
        tau2, se_tau2, *_wald_estimate(tau2, se_tau2, crit, log_scale=True), **boot(p)
    )

    weights = [Estimate(1.0, 0.0, math.nan, math.nan)]
    for j in range(1, J):
        q = p + j
        d = math.exp(theta[q])
        se_d = d * math.sqrt(V[q, q]) if V[q, q] > 0 else math.nan
        weights.append(Estimate(d, se_d, *_wald_estimate(d, se_d, crit, log_scale=True), **boot(q)))

    adj = float(xbar @ beta)
    se_adj = float(math.sqrt(xbar @ V[:p, :p] @ xbar))
    adjusted = Estimate(adj, se_adj, *_wald_estimate(adj, se_adj, crit), **boot(P))
    unadj = float(xbar @ theta_null[:p])
    se_unadj = float(math.sqrt(xbar @ V_null[:p, :p] @ xbar))
    unadjusted = Estimate(unadj, se_unadj, *_wald_estimate(unadj, se_unadj, crit))

    lrt = max(0.0, 2.0 * (ll - ll_null))
    lrt_df = J - 1
    zeta = theta[p + 1 :]
    Vz = V[p + 1 :, p + 1 :]
    try:
        wald = float(zeta @ np.linalg.solve(Vz, zeta))
    except np.linalg.LinAlgError:
        wald = math.nan
    labels = tuple(
        f"{_fmt(lo)} < p <= {_fmt(hi)}" for lo, hi in zip((0.0, *st[:-1]), st, strict=True)
    )
    return SelectionModel(
        coef_names=names,
        coefficients=coefficients,
        zval=zval,
        pval=pval,
        tau2=tau2_est,
        steps=st,
        intervals=labels,
        k_per_interval=tuple(int(c) for c in np.bincount(pb.group, minlength=J)),
        weights=tuple(weights),
        adjusted_mean=adjusted,
        unadjusted_mean=unadjusted,
        unadjusted_tau2=math.exp(theta_null[p]),
        loglik=ll,
        loglik_null=ll_null,
        lrt=lrt,
        lrt_df=lrt_df,
        lrt_pval=float(dist.chi2_sf(lrt, lrt_df)),
        wald=wald,
        wald_df=lrt_df,
        wald_pval=float(dist.chi2_sf(wald, lrt_df)) if np.isfinite(wald) else math.nan,
        param_names=(*names, "log_tau2", *(f"log_delta{j + 1}" for j in range(1, J))),
        vcov=V,
        vcov_type="cluster-robust" if clustered else "model",
        converged=bool(conv and conv_null),
        iterations=iterations,
        k=int(pb.y.size),
        n_clusters=n_clusters,
        alternative=alternative,
        level=level,
        bootstrap=int(bootstrap),
        bootstrap_converged=n_boot_ok,
        seed=int(seed) if isinstance(seed, int | np.integer) else None,
        bootstrap_draws=draws,
    )


def _fmt(x: float) -> str:
    return f"{x:g}"


def _bootstrap(
    theta: np.ndarray,
    pb: _Problem,
    cluster: np.ndarray,
    n_clusters: int,
    replications: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Cluster bootstrap: ``replications`` resamples of the clusters, all refitted at once.

    A resample is a count per cluster (clusters drawn with replacement); every effect size of a
    cluster enters the likelihood with that count as its weight, which is the likelihood of the
    resampled data set. Returns the converged replicates' estimates and their number.
    """
    draws = rng.integers(0, n_clusters, size=(replications, n_clusters))
    offset = (np.arange(replications) * n_clusters)[:, None]
    counts = np.bincount((draws + offset).ravel(), minlength=replications * n_clusters)
    counts = counts.reshape(replications, n_clusters).astype(float)
    w = counts[:, cluster]
    start = np.repeat(theta[None, :], replications, axis=0)
    est, _, conv, _ = _maximise(start, pb, w, np.ones(pb.n_par, dtype=bool), tol=1e-10)
    if not conv.all():
        logger.info(
            "selection_model: %d of %d bootstrap replicates did not converge",
            int((~conv).sum()),
            replications,
        )
    return est[conv], int(conv.sum())
