"""Permutation tests of moderators, as metafor 3.8 ``permutest()``.

The model's test statistics are compared with their distribution under random reassignment of the
moderators to the effect sizes (Higgins & Thompson 2004; Viechtbauer et al. 2015):

* **Meta-regression**: the rows of the model matrix :math:`X` are permuted relative to
  :math:`(y_i, v_i)` (and, for a multilevel model, relative to the random-effects grouping and the
  sampling covariance, which stay with the effect sizes) and the model is refitted, variance
  components included. Only *distinct* permutations count: with :math:`n_1, \\ldots, n_g` rows
  sharing each distinct row of :math:`X` there are :math:`k!/\\prod_c n_c!` of them.
* **Intercept-only models**: the signs of the effect sizes are flipped
  (:math:`y_i \\to s_i y_i`, :math:`s_i = \\pm 1`, :math:`2^k` possibilities).

If ``exact`` is requested, or if the number of distinct permutations is at most ``iter``, all of
them are enumerated (the exact test); otherwise ``iter`` random ones are drawn, the first being
the observed arrangement (metafor's convention). The permutation p value of coefficient :math:`j`
(two-sided) and of the omnibus test are

.. math:: p_j = \\frac{1}{N}\\sum_{b=1}^{N} 1\\{|z_j^{(b)}| \\ge |z_j| - \\epsilon\\},
          \\qquad p_{QM} = \\frac{1}{N}\\sum_{b=1}^{N} 1\\{Q_M^{(b)} \\ge Q_M - \\epsilon\\},

with :math:`\\epsilon = \\sqrt{\\text{machine epsilon}}` and the observed arrangement counted in
the :math:`N` (so :math:`p \\ge 1/N`); :math:`z_j` is the z or t statistic and :math:`Q_M` the
chi-square or F statistic of ``btt``, as the model reports them. Refits that fail are left out of
the proportions (metafor: ``na.rm``); in a random test they are replaced by new draws.

metafor 3.8 has ``permutest()`` for ``rma`` only; for multilevel models the same test is applied
(the permutation of the rows of :math:`X`, all random-effects and sampling-error structure staying
with the effect sizes), as metafor >= 4.0 does for ``rma.mv``.

Speed: the refits of all permutations are done together. They share the block structure of the
model (only :math:`X`, or the signs of :math:`y`, change), so the marginal covariances, Cholesky
factors and scores of all permuted models are computed with batched linear algebra and the
variance components are found by batched Fisher scoring
(:func:`~intervention_meta.models.optimize.maximize_batch`), warm-started from the observed
estimates (multilevel models; the one-level model starts from the HE estimate, as metafor). Each
refit gives the estimate :func:`~intervention_meta.models.fit` gives for the permuted data: only
the variance components, coefficients and test statistics are computed.

References
----------
Higgins, J. P. T., & Thompson, S. G. (2004). Controlling the risk of spurious findings from
meta-regression. *Statistics in Medicine*, 23, 1663-1682.
Good, P. (2005). *Permutation, Parametric and Bootstrap Tests of Hypotheses* (3rd ed.). Springer.
Viechtbauer, W., Lopez-Lopez, J. A., Sanchez-Meca, J., & Marin-Martinez, F. (2015). A comparison
of procedures to test for moderators in mixed-effects meta-regression models. *Psychological
Methods*, 20, 360-374.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from intervention_meta.models.errors import ModelError
from intervention_meta.models.estimators import NON_LIKELIHOOD, estimate_tau2, he_estimate
from intervention_meta.models.fitting import NO_HETEROGENEITY, Control
from intervention_meta.models.inference import knha_factor
from intervention_meta.models.likelihood import MarginalLikelihood
from intervention_meta.models.optimize import maximize_batch
from intervention_meta.models.results import MetaResult, jsonable

logger = logging.getLogger(__name__)

COMPARISON_TOL = float(np.finfo(float).eps ** 0.5)
MAX_EXACT = 5_000_000
_REDRAWS = 10
_CHUNK_CELLS = 4_000_000  # batch members x rows x (p + block size) per chunk of refits


@dataclass(frozen=True)
class PermutedStatistics:
    """Statistics of the model refitted to permuted data (one row per permutation).

    ``stat`` holds the z (or t) statistics, ``QM`` the omnibus statistic of the model's ``btt``,
    ``theta`` the variance components; rows of failed refits are NaN.
    """

    b: np.ndarray
    stat: np.ndarray
    QM: np.ndarray
    theta: np.ndarray
    n_fallback: int

    @property
    def ok(self) -> np.ndarray:
        return np.isfinite(self.QM) & np.all(np.isfinite(self.stat), axis=1)


@dataclass(frozen=True)
class PermutationTest:
    """A permutation test of the coefficients of a fitted model (metafor ``permutest``).

    Attributes
    ----------
    kind : ``"permutation"`` (rows of X permuted) or ``"sign-flip"`` (intercept-only model)
    exact : whether all distinct permutations were enumerated
    iterations : number of permutations used (including the observed arrangement; failed refits
        excluded)
    n_distinct : number of distinct permutations (:math:`k!/\\prod n_c!` or :math:`2^k`; a float
        beyond :math:`2^{64}`, see :func:`count_permutations`)
    method, test : of the model
    coef_names, b, stat : coefficients and their observed z (or t) statistics
    pval : the model's (asymptotic) p values
    pval_perm : permutation p values
    btt : the coefficients of the omnibus test
    QM, QMdf, QMp : the model's omnibus statistic, its df and p value
    QMp_perm : permutation p value of the omnibus test
    b_perm, stat_perm, QM_perm : the permutation distributions (rows = permutations)
    n_failed : refits that failed (left out)
    n_fallback : refits for which Fisher scoring failed and a fallback optimiser was used
    """

    kind: str
    exact: bool
    iterations: int
    n_distinct: int | float
    method: str
    test: str
    coef_names: tuple[str, ...]
    b: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    pval_perm: np.ndarray
    btt: tuple[str, ...]
    QM: float
    QMdf: tuple
    QMp: float
    QMp_perm: float
    b_perm: np.ndarray
    stat_perm: np.ndarray
    QM_perm: np.ndarray
    n_failed: int
    n_fallback: int

    def to_dict(self, distributions: bool = False) -> dict:
        """Plain JSON types; the permutation distributions only if ``distributions``."""
        skip = set() if distributions else {"b_perm", "stat_perm", "QM_perm"}
        return jsonable({f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip})

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: estimate, stat, pval (model), pval_perm."""
        return pd.DataFrame(
            {"estimate": self.b, "stat": self.stat, "pval": self.pval, "pval_perm": self.pval_perm},
            index=pd.Index(self.coef_names, name="coefficient"),
        )


def _row_codes(X: np.ndarray) -> np.ndarray:
    """Integer code of each row of X; equal rows share a code."""
    _, codes = np.unique(X, axis=0, return_inverse=True)
    return codes.reshape(-1)


def count_permutations(result: MetaResult) -> int | float:
    """Number of distinct permutations of the model's test.

    :math:`2^k` sign flips for an intercept-only model, :math:`k!/\\prod_c n_c!` distinct row
    orders of X otherwise (:math:`n_c` rows equal to the c-th distinct row). Exact (an int) up to
    :math:`2^{64}`, beyond that a float (``inf`` beyond the floating-point range).
    """
    design = result._state.design
    k = design.k
    if design.intercept_only:
        log_count = k * math.log(2.0)
        counts = None
    else:
        counts = np.bincount(_row_codes(design.X))
        log_count = math.lgamma(k + 1) - sum(math.lgamma(int(c) + 1) for c in counts)
    if log_count > 64 * math.log(2.0):
        return math.exp(log_count) if log_count < 709.0 else math.inf
    if counts is None:
        return 2**k
    out, left = 1, k
    for c in counts:
        out *= math.comb(left, int(c))
        left -= int(c)
    return out


def distinct_row_orders(X: np.ndarray) -> np.ndarray:
    """All distinct permutations of the rows of X, as (N, k) row orders (permuted X = X[rows]).

    Rows that are equal are interchangeable, so each distinct arrangement appears once; the
    identity is the first.
    """
    codes = _row_codes(X)
    k = len(codes)
    n_codes = int(codes.max()) + 1
    remaining = np.bincount(codes, minlength=n_codes)[None, :]
    arrangements = np.empty((1, 0), dtype=np.int64)
    order = list(dict.fromkeys(codes.tolist()))
    for _ in range(k):
        parts, rems = [], []
        for c in order:
            has = remaining[:, c] > 0
            if not has.any():
                continue
            a = arrangements[has]
            parts.append(np.column_stack([a, np.full(len(a), c)]))
            r = remaining[has].copy()
            r[:, c] -= 1
            rems.append(r)
        arrangements = np.concatenate(parts)
        remaining = np.concatenate(rems)
    rows = np.empty_like(arrangements)
    for c in range(n_codes):
        members = np.flatnonzero(codes == c)
        mask = arrangements == c
        rank = np.cumsum(mask, axis=1) - 1
        rows[mask] = members[rank[mask]]
    identity = np.flatnonzero(np.all(arrangements == codes[None, :], axis=1))
    if identity.size and identity[0] != 0:
        rows[[0, identity[0]]] = rows[[identity[0], 0]]
    return rows


def all_sign_flips(k: int) -> np.ndarray:
    """All :math:`2^k` sign vectors (N, k), the all-positive one first."""
    bits = (np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1
    return 1.0 - 2.0 * bits


def _chunks(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(i, min(n, i + size)) for i in range(0, n, size)]


def permuted_statistics(
    result: MetaResult,
    rows: np.ndarray | None = None,
    signs: np.ndarray | None = None,
    theta: np.ndarray | None = None,
) -> PermutedStatistics:
    """Refit the model to permuted data and return its test statistics.

    Parameters
    ----------
    result : the fitted model
    rows : (N, k) row orders applied to the model matrix (permuted X = X[rows]), or
    signs : (N, k) signs applied to the effect sizes (permuted y = signs * y)
    theta : optional (N, L) variance components to use instead of estimating them (e.g. another
        program's estimates, to compare the coefficients and statistics at the same components)

    Each refit estimates the variance components as ``fit`` does (same method, fixed components,
    estimation settings) and recomputes the coefficients, their z/t statistics and the omnibus
    statistic of the model's ``btt``; see the module docstring for how the refits are batched.
    """
    state = result._state
    design, structure = state.design, state.structure
    if (rows is None) == (signs is None):
        raise ModelError("give either rows (permutations of X) or signs (sign flips of y)")
    perm = np.asarray(rows if rows is not None else signs)
    if perm.ndim != 2 or perm.shape[1] != design.k:
        raise ModelError(f"permutations must be an (N, {design.k}) array")
    n, k, p = perm.shape[0], design.k, design.p
    max_block = max(g.n for g in structure.groups)
    size = max(1, _CHUNK_CELLS // (k * (p + max_block)))
    if theta is not None:
        theta = np.asarray(theta, dtype=float).reshape(n, -1)
    outs = [
        _refit_chunk(result, perm[idx], rows is not None, None if theta is None else theta[idx])
        for idx in _chunks(n, size)
    ]
    return PermutedStatistics(
        b=np.concatenate([o.b for o in outs]),
        stat=np.concatenate([o.stat for o in outs]),
        QM=np.concatenate([o.QM for o in outs]),
        theta=np.concatenate([o.theta for o in outs]),
        n_fallback=sum(o.n_fallback for o in outs),
    )


def _refit_chunk(
    result: MetaResult, perm: np.ndarray, permute_rows: bool, given: np.ndarray | None
) -> PermutedStatistics:
    state = result._state
    design, structure = state.design, state.structure
    control = state.control or Control.build(None, result.multilevel)
    fixed = np.asarray(state.fixed, dtype=float)
    method = result.method
    n, k, p = perm.shape[0], design.k, design.p
    if permute_rows:
        X = design.X[perm]
        y = np.broadcast_to(design.y, (n, k))
    else:  # sign flips: the model matrix is the model's own
        X = None
        y = perm * design.y[None, :]
    free = np.isnan(fixed) & (method not in NO_HETEROGENEITY)
    theta = np.broadcast_to(np.where(np.isnan(fixed), 0.0, fixed), (n, len(fixed))).copy()
    n_fallback = 0
    if given is not None:
        theta = given.copy()
    elif free.any():
        y_est = y - y.mean(axis=1, keepdims=True) if not result.multilevel else y
        if method in NON_LIKELIHOOD:
            for i in range(n):
                est = estimate_tau2(
                    method,
                    y_est[i],
                    design.v,
                    design.X if X is None else X[i],
                    y_raw=y[i],
                    threshold=control.threshold,
                    maxiter=control.maxiter,
                    tau2_max=control.tau2_max,
                )
                theta[i, 0] = est.tau2
        else:
            lik = MarginalLikelihood(structure, y_est, reml=method == "REML", X=X)
            start = _start_values(result, control, y_est, X, theta)
            fitted = maximize_batch(lik, start, free, control.solver)
            theta = fitted.theta
            theta[~fitted.converged] = np.nan
            n_fallback = int(fitted.fallback_used.sum())
    good = np.all(np.isfinite(theta), axis=1)
    b = np.full((n, p), np.nan)
    stat = np.full((n, p), np.nan)
    qm = np.full(n, np.nan)
    if good.any():
        gi = np.flatnonzero(good)
        Xg = None if X is None else X[gi]
        lik = MarginalLikelihood(structure, y[gi], reml=method == "REML", X=Xg)
        ev = lik.evaluate_batch(theta[gi])
        vb = ev.vb
        if result.test == "knha":
            s2w = np.array([knha_factor(r, k, p) for r in ev.rss])
            vb = s2w[:, None, None] * vb
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(np.diagonal(vb, axis1=1, axis2=2))
            st = ev.beta / se
            idx = list(result.btt)
            bb = ev.beta[:, idx]
            sub = vb[:, idx][:, :, idx]
            try:
                q = np.einsum("bi,bi->b", bb, np.linalg.solve(sub, bb[..., None])[..., 0])
            except np.linalg.LinAlgError:
                q = np.array([_quad(bi, si) for bi, si in zip(bb, sub, strict=True)])
        if result.test != "z":
            q = q / len(idx)
        keep = ev.ok
        b[gi[keep]], stat[gi[keep]], qm[gi[keep]] = ev.beta[keep], st[keep], q[keep]
    return PermutedStatistics(b=b, stat=stat, QM=qm, theta=theta, n_fallback=n_fallback)


def _quad(b: np.ndarray, V: np.ndarray) -> float:
    try:
        return float(b @ np.linalg.solve(V, b))
    except np.linalg.LinAlgError:
        return float("nan")


def _start_values(
    result: MetaResult,
    control: Control,
    y_est: np.ndarray,
    X: np.ndarray | None,
    theta: np.ndarray,
) -> np.ndarray:
    """Starting values of the refits: the observed estimates (multilevel) or, for the one-level
    model, the HE estimate of each permuted model (metafor's start; control['tau2_init'] if set).
    """
    start = theta.copy()
    free = np.isnan(np.asarray(result._state.fixed, dtype=float))
    if result.multilevel:
        obs = np.asarray(result._state.theta, dtype=float)
        start[:, free] = obs[free]
        return start
    if control.tau2_init is not None:
        start[:, 0] = float(control.tau2_init)
        return start
    design = result._state.design
    for i in range(len(start)):
        Xi = design.X if X is None else X[i]
        start[i, 0] = max(0.0, he_estimate(y_est[i], design.v, Xi))
    return start


def permutest(
    result: MetaResult,
    iter: int = 1000,  # noqa: A002 - metafor's argument name
    rng: np.random.Generator | None = None,
    exact: bool | None = None,
) -> PermutationTest:
    """Permutation test of the model's coefficients and omnibus test, as metafor ``permutest()``.

    Parameters
    ----------
    result : a fitted model (one-level or multilevel, any method)
    iter : number of random permutations (including the observed arrangement) when the test is
        not exact
    rng : random generator for the random permutations (required unless the test is exact)
    exact : ``True`` enumerates all distinct permutations, ``False`` draws ``iter`` random ones,
        ``None`` (default) is exact when the number of distinct permutations is at most ``iter``
        (metafor's rule)

    Returns
    -------
    PermutationTest

    Raises
    ------
    ModelError
        for ``iter < 2``, a random test without ``rng``, or an exact test with more than
        5,000,000 permutations.

    Examples
    --------
    >>> res = fit(dat, mods=["length"], random=["study", "es"])  # doctest: +SKIP
    >>> permutest(res, iter=1000, rng=np.random.default_rng(20261125)).QMp_perm  # doctest: +SKIP
    """
    iter = int(round(iter))
    if iter < 2:
        raise ModelError("iter must be >= 2")
    design = result._state.design
    k = design.k
    sign_flip = design.intercept_only
    n_distinct = count_permutations(result)
    is_exact = bool(exact) if exact is not None else n_distinct <= iter
    if is_exact:
        if n_distinct > MAX_EXACT:
            raise ModelError(
                f"an exact test needs {n_distinct:.4g} permutations (more than {MAX_EXACT:,}); use "
                "exact=False with iter random permutations"
            )
        perms = all_sign_flips(k) if sign_flip else distinct_row_orders(design.X)
        ps = _refit(result, perms, sign_flip)
    else:
        if rng is None:
            raise ModelError(
                "a random permutation test needs rng=np.random.default_rng(seed) (or exact=True)"
            )
        ps = _random_test(result, iter, rng, sign_flip)
    obs_stat = np.asarray(result.stat, dtype=float)
    ok = ps.ok
    stat_perm, qm_perm, b_perm = ps.stat[ok], ps.QM[ok], ps.b[ok]
    pval_perm = np.mean(np.abs(stat_perm) >= np.abs(obs_stat)[None, :] - COMPARISON_TOL, axis=0)
    qmp_perm = float(np.mean(qm_perm >= result.QM - COMPARISON_TOL))
    n_failed = int((~ok).sum())
    if n_failed:
        logger.warning("permutation test: %d refit(s) failed and were left out", n_failed)
    return PermutationTest(
        kind="sign-flip" if sign_flip else "permutation",
        exact=is_exact,
        iterations=int(ok.sum()),
        n_distinct=n_distinct,
        method=result.method,
        test=result.test,
        coef_names=tuple(result.coef_names),
        b=np.asarray(result.b, dtype=float),
        stat=obs_stat,
        pval=np.asarray(result.pval, dtype=float),
        pval_perm=np.minimum(pval_perm, 1.0),
        btt=tuple(result.coef_names[j] for j in result.btt),
        QM=float(result.QM),
        QMdf=tuple(result.QMdf),
        QMp=float(result.QMp),
        QMp_perm=min(qmp_perm, 1.0),
        b_perm=b_perm,
        stat_perm=stat_perm,
        QM_perm=qm_perm,
        n_failed=n_failed,
        n_fallback=ps.n_fallback,
    )


def _refit(result: MetaResult, perms: np.ndarray, sign_flip: bool) -> PermutedStatistics:
    if sign_flip:
        return permuted_statistics(result, signs=perms)
    return permuted_statistics(result, rows=perms)


def _draw(rng: np.random.Generator, n: int, k: int, sign_flip: bool) -> np.ndarray:
    if sign_flip:
        return rng.choice(np.array([-1.0, 1.0]), size=(n, k))
    return rng.permuted(np.tile(np.arange(k), (n, 1)), axis=1)


def _random_test(
    result: MetaResult, iter: int, rng: np.random.Generator, sign_flip: bool
) -> PermutedStatistics:
    """``iter`` random permutations, the first the observed arrangement (its statistics are the
    observed ones, as metafor); failed refits are replaced by new draws."""
    k, p = result.k, result.p
    perms = _draw(rng, iter - 1, k, sign_flip)
    ps = _refit(result, perms, sign_flip)
    b, stat, qm, theta = ps.b, ps.stat, ps.QM, ps.theta
    n_fallback = ps.n_fallback
    for _ in range(_REDRAWS):
        bad = np.flatnonzero(~(np.isfinite(qm) & np.all(np.isfinite(stat), axis=1)))
        if bad.size == 0:
            break
        more = _refit(result, _draw(rng, bad.size, k, sign_flip), sign_flip)
        b[bad], stat[bad], qm[bad], theta[bad] = more.b, more.stat, more.QM, more.theta
        n_fallback += more.n_fallback
    obs_theta = np.asarray(result._state.theta, dtype=float)[None, :]
    return PermutedStatistics(
        b=np.vstack([np.asarray(result.b, dtype=float).reshape(1, p), b]),
        stat=np.vstack([np.asarray(result.stat, dtype=float).reshape(1, p), stat]),
        QM=np.concatenate([[float(result.QM)], qm]),
        theta=np.vstack([obs_theta, theta]),
        n_fallback=n_fallback,
    )
