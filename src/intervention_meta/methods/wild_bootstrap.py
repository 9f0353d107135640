"""Cluster wild bootstrap Wald tests of moderators in the working model.

Follows Joshi, Pustejovsky & Beretvas (2022) as their R package wildmeta 0.3.2 implements it
(``Wald_test_cwb`` on an ``rma.mv`` fit), for :math:`H_0: C\\beta = 0` (``q`` constraints):

1. Fit the full model and the null model, whose model matrix is :math:`X N` with :math:`N` a
   basis of the null space of :math:`C` (wildmeta's ``constrain_predictors``), with the same
   working model (random levels, :math:`\\rho`, REML).
2. Take the null model's fitted values :math:`\\tilde y` and residuals :math:`\\tilde e_j`,
   adjusted per cluster (``adjust``): ``"CR0"`` none, ``"CR1"`` times :math:`\\sqrt{J/(J-1)}`,
   ``"CR2"`` times the CR2 adjustment matrix of the null model,
   :math:`A_j = L_j [L_j^\\top (V_j - X_j M X_j^\\top) L_j]^{-1/2} L_j^\\top` with
   :math:`V_j = L_j L_j^\\top` (clubSandwich's ``attr(vcovCR(null, type="CR2"), "adjustments")``,
   :mod:`intervention_meta.models.robust`).
3. For replicate :math:`r`, draw Rademacher weights :math:`\\eta_{rj} = \\pm 1` (probability
   1/2) per cluster, form :math:`y^{(r)}_j = \\tilde y_j + \\eta_{rj} A_j\\tilde e_j`, refit
   the full model to :math:`y^{(r)}` -- **variance components re-estimated**, as wildmeta
   refits with ``update()`` -- and compute the test statistic :math:`F^{(r)}`.
4. :math:`p = \\frac{1}{R}\\sum_r 1\\{F^{(r)} \\ge F\\}` over the replicates whose refit worked
   (wildmeta counts :math:`F^{(r)} > F`, ties having probability zero, and drops failed refits).

The statistic (``type``, ``test``): the cluster-robust Wald statistic :math:`Q/q`,
:math:`Q = (C\\hat\\beta)^\\top (C V^R C^\\top)^{-1} C\\hat\\beta` with the sandwich ``type`` (CR0,
CR1 or CR2) for ``test="Naive-F"``, or the HTZ statistic :math:`\\delta Q/q` of
:func:`intervention_meta.models.robust.wald_test` for ``test="HTZ"`` (clubSandwich's ``Fstat``
either way). wildmeta's defaults are ``adjust="CR0", type="CR0", test="Naive-F"``; the defaults
here are the CR2 adjustment and the CR2/HTZ statistic (the "CWB adjusted" test; Joshi et al. found
no difference between adjusted and unadjusted residuals in their simulations, and the adjustment
guards against a misspecified working model).

Speed: every replicate shares the model matrix and the block structure, so the refits run
together (batched Fisher scoring of the engine, started at the full model's estimates) and the
sandwiches and HTZ degrees of freedom of all replicates are computed with stacked arrays; no
per-replicate Python loop.

Not supported: auxiliary distributions other than Rademacher (wildmeta also has Mammen, Webb's
six-point, uniform and normal weights), contrasts other than :math:`C\\beta = 0` with ``C`` of full
row rank, one-level models fitted with a non-likelihood estimator (DL, HE, ...).

References
----------
Joshi, M., Pustejovsky, J. E., & Beretvas, S. N. (2022). Cluster wild bootstrapping to handle
dependent effect sizes in meta-analysis with a small number of studies. *Research Synthesis
Methods*, 13(4), 457-477.

MacKinnon, J. G., & Webb, M. D. (2018). The wild bootstrap for few (treated) clusters. *The
Econometrics Journal*, 21(2), 114-135.

Tipton, E., & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of moderators and
model fit using robust variance estimation in meta-regression. *Journal of Educational and
Behavioral Statistics*, 40(6), 604-634.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable
from intervention_meta.methods.influence import ModelCall
from intervention_meta.models import MetaResult, ModelError
from intervention_meta.models.inference import resolve_btt
from intervention_meta.models.likelihood import MarginalLikelihood
from intervention_meta.models.optimize import maximize_batch
from intervention_meta.models.robust import _matrix_power

logger = logging.getLogger(__name__)

__all__ = ["WildBootstrapTest", "rademacher_weights", "wild_bootstrap_test"]

ADJUSTMENTS = ("CR0", "CR1", "CR2")
TYPES = ("CR0", "CR1", "CR2")
TESTS = ("HTZ", "Naive-F")
_CHUNK_CELLS = 2_000_000  # replicates x sum over clusters of n_j^2 per chunk


@dataclass(frozen=True, eq=False)
class WildBootstrapTest:
    """A cluster wild bootstrap Wald test of :math:`H_0: C\\beta = 0`.

    Attributes
    ----------
    constraints : the names of the coefficients constrained to zero
    q : their number
    statistic : the statistic of the data
    p_value : the bootstrap p value
    adjust : residual adjustment (``"CR0"``, ``"CR1"``, ``"CR2"``)
    type, test : the sandwich and the statistic (``"HTZ"`` or ``"Naive-F"``)
    auxiliary : the weight distribution (``"Rademacher"``)
    replications : replicates drawn
    n_valid : replicates whose refit worked (the p value's denominator)
    n_clusters, k : clusters and effect sizes
    rho : the working model's within-study correlation (None: none)
    sigma2_full, sigma2_null : the variance components of the full and the null model
    htz : the data's HTZ test (``fstat``, ``df_num``, ``df_denom``, ``p_val``) for comparison
    boot_statistics : the statistic of each valid replicate (not in :meth:`to_dict`)
    """

    constraints: tuple[str, ...]
    q: int
    statistic: float
    p_value: float
    adjust: str
    type: str
    test: str
    auxiliary: str
    replications: int
    n_valid: int
    n_clusters: int
    k: int
    rho: float | None
    sigma2_full: dict[str, float]
    sigma2_null: dict[str, float]
    htz: dict
    boot_statistics: np.ndarray

    def to_dict(self) -> dict:
        """JSON-able dict of every attribute but the replicates' statistics."""
        return {
            f.name: jsonable(getattr(self, f.name))
            for f in fields(self)
            if f.name != "boot_statistics"
        }

    def to_frame(self) -> pd.DataFrame:
        """One row: constraints (joined), q, adjust, type, test, replications, statistic, p."""
        row = self.to_dict()
        row["constraints"] = ", ".join(self.constraints)
        for key in ("htz", "sigma2_full", "sigma2_null"):
            row.pop(key)
        row["htz_p_val"] = self.htz["p_val"]
        return pd.DataFrame([row])


def rademacher_weights(rng: np.random.Generator, replications: int, n_clusters: int) -> np.ndarray:
    """(replications, n_clusters) weights, -1 or +1 with probability 1/2 each."""
    return rng.integers(0, 2, size=(replications, n_clusters)).astype(float) * 2.0 - 1.0


# --------------------------------------------------------------------------- cluster arrays
@dataclass(frozen=True)
class _Part:
    """The clusters of one size n: rows (g, n), model matrix (g, n, p)."""

    clusters: np.ndarray
    rows: np.ndarray
    X: np.ndarray


def _parts(result: MetaResult, cluster: str | None) -> tuple[list[_Part], list, int]:
    blocks = result.cluster_blocks(cluster)
    sizes: dict[int, list[int]] = {}
    for i, b in enumerate(blocks):
        sizes.setdefault(len(b.index), []).append(i)
    parts = [
        _Part(
            clusters=np.asarray(idx),
            rows=np.stack([blocks[i].index for i in idx]),
            X=np.stack([blocks[i].X for i in idx]),
        )
        for idx in sizes.values()
    ]
    return parts, [b.cluster for b in blocks], result.k


def _covariance_basis(result: MetaResult, cluster: str | None) -> list[list[np.ndarray]]:
    """Cluster covariances at zero components and per unit component: V(theta) = V0 + sum theta D.

    Each is a list of (n_j, n_j) matrices, one per cluster in cluster_blocks order (no (k, k)
    matrix), stacked below by part.
    """
    units = np.eye(len(_theta(result)) + 1, len(_theta(result)), -1)  # zero, then each level
    out = [[b.V for b in result.cluster_blocks(cluster, theta=unit)] for unit in units]
    base = out[0]
    return [base] + [[v - v0 for v, v0 in zip(vs, base, strict=True)] for vs in out[1:]]


def _stack(per_cluster: list[np.ndarray], parts: list[_Part]) -> list[np.ndarray]:
    return [np.stack([per_cluster[i] for i in part.clusters]) for part in parts]


def _theta(result: MetaResult) -> np.ndarray:
    if result.multilevel:
        return np.array(list(result.sigma2.values()), dtype=float)
    return np.array([float(result.tau2 or 0.0)])


# --------------------------------------------------------------------------- the sandwich
def _gls(parts: list[_Part], V: list[np.ndarray], Y: list[np.ndarray]):
    """Batched GLS: per part W X (B, g, n, p); M = (X'WX)^-1 (B, p, p); beta (B, p)."""
    p = parts[0].X.shape[-1]
    B = V[0].shape[0]
    XWX = np.zeros((B, p, p))
    XWy = np.zeros((B, p))
    WX = []
    for part, Vg, yg in zip(parts, V, Y, strict=True):
        wx = np.linalg.solve(Vg, np.broadcast_to(part.X, Vg.shape[:2] + part.X.shape[1:]))
        flat = wx.reshape(B, -1, p).mT  # (B, p, g n): matrix products instead of einsum
        XWX += flat @ part.X.reshape(-1, p)
        XWy += (flat @ yg.reshape(B, -1, 1))[..., 0]
        WX.append(wx)
    M = np.linalg.inv(XWX)
    return WX, M, np.einsum("bpq,bq->bp", M, XWy)


def _cr2_adjustments(X: np.ndarray, V: np.ndarray, M: np.ndarray) -> np.ndarray:
    """CR2 adjustment matrices A_j = L [L'(V - X M X')L]^{-1/2} L' (B, g, n, n), V = L L'."""
    L = np.linalg.cholesky(V)
    XMX = (X[None] @ M[:, None]) @ X.mT[None]
    G = L.mT @ (V - XMX) @ L
    return L @ _matrix_power(G, -0.5) @ L.mT


def _statistics(
    parts: list[_Part],
    V: list[np.ndarray],
    Y: list[np.ndarray],
    C: np.ndarray,
    type: str,
    test: str,
    n_clusters: int,
) -> np.ndarray:
    """The Wald statistic of H0: C beta = 0 for a batch of responses and covariances (B,).

    As :func:`intervention_meta.models.robust.robust_vcov` and ``wald_test`` (HTZ) compute it for
    one model, here with a leading batch axis.
    """
    WX, M, beta = _gls(parts, V, Y)
    B, p = beta.shape
    q = C.shape[0]
    meat = np.zeros((B, p, p))
    p_diag, mex = [], []
    for part, Vg, yg, wx in zip(parts, V, Y, WX, strict=True):
        E = wx.mT  # (B, g, p, n)
        if type == "CR2":
            E = E @ _cr2_adjustments(part.X, Vg, M)
        elif type == "CR1":
            E = E * np.sqrt(n_clusters / (n_clusters - 1))
        e = yg - (beta @ part.X.reshape(-1, p).T).reshape(yg.shape)
        u = (E @ e[..., None])[..., 0]
        meat += u.mT @ u
        if test == "HTZ":
            ME = M[:, None] @ E
            p_diag.append(ME @ Vg @ ME.mT)
            mex.append(ME @ part.X)
    vcov = M @ meat @ M
    Cb = beta @ C.T
    Q = np.einsum("bs,bs->b", Cb, np.linalg.solve(C @ vcov @ C.T, Cb[..., None])[..., 0])
    if test == "Naive-F":
        return Q / q
    # HTZ degrees of freedom (Tipton & Pustejovsky 2015) from the P-matrix pieces of
    # robust_vcov: p_left = M E X L_M = -p_right, L_M L_M' = M
    left = np.concatenate(mex, axis=1) @ np.linalg.cholesky(M)[:, None]
    d = np.einsum("sp,bjpr,tr->bjst", C, np.concatenate(p_diag, axis=1), C)
    lc = np.einsum("sp,bjpm->bjsm", C, left)
    omega = d.sum(axis=1) - np.einsum("bjsm,bjtm->bst", lc, lc)
    N = _matrix_power(omega, -0.5)
    d = N[:, None] @ d @ N[:, None]
    lc = N[:, None] @ lc
    lr = -np.einsum("bjsm,bjtm->bjst", lc, lc)
    KL = np.einsum("bjum,bjsn->busmn", lc, lc)
    KR = np.einsum("bjtn,bjvm->btvnm", lc, lc)  # the right pieces are -lc: their signs cancel
    T = (
        np.einsum("bjst,bjuv->bstuv", d, d)
        + np.einsum("bjst,bjuv->bstuv", d, lr)
        + np.einsum("bjst,bjuv->bstuv", lr, d)
        + np.einsum("busmn,btvnm->bstuv", KL, KR)
    )
    ii = np.arange(q)
    var = T[:, ii[:, None], ii[None, :], ii[None, :], ii[:, None]]
    var = var + T[:, ii[:, None], ii[:, None], ii[None, :], ii[None, :]]
    nu = q * (q + 1) / var.sum(axis=(1, 2))
    delta = np.maximum((nu - q + 1) / nu, 0.0)
    return delta * Q / q


# --------------------------------------------------------------------------- refits
def _refit_components(full: MetaResult, Y: np.ndarray) -> np.ndarray:
    """REML (or ML) estimates of the full model's variance components for responses Y (B, k),
    rows in the model's order; NaN rows where the estimation failed."""
    state = full._state
    fixed = np.asarray(state.fixed, dtype=float)
    free = np.isnan(fixed) & (full.method not in ("FE", "EE"))
    start = np.broadcast_to(np.where(np.isnan(fixed), state.theta, fixed), (len(Y), len(fixed)))
    if not free.any():
        return start.copy()
    lik = MarginalLikelihood(state.structure, Y, reml=full.method == "REML", row_sums=True)
    fitted = maximize_batch(lik, start.copy(), free, state.control.solver)
    theta = fitted.theta
    theta[~fitted.converged] = np.nan
    return theta


# --------------------------------------------------------------------------- the test
def _constraint_matrix(full: MetaResult, constraints: Sequence[int | str] | int | str):
    idx = resolve_btt(constraints, full.coef_names)
    if len(idx) >= full.p:
        raise ModelError("the null model needs at least one coefficient that is not constrained")
    return np.eye(full.p)[idx], tuple(full.coef_names[i] for i in idx)


def _null_model(call: ModelCall, rows: pd.DataFrame, Xn: np.ndarray) -> MetaResult:
    """The null model: model matrix ``Xn`` (rows in the order of ``rows``)."""
    cols = [f"x_null_{i}" for i in range(Xn.shape[1])]
    while any(c in rows.columns for c in cols):
        cols = ["_" + c for c in cols]
    data = rows.assign(**dict(zip(cols, Xn.T, strict=True)))
    return replace(call, mods=tuple(cols), intercept=False).fit(data)


def wild_bootstrap_test(
    data: pd.DataFrame,
    call: ModelCall,
    constraints: Sequence[int | str] | int | str,
    *,
    rng: np.random.Generator | None = None,
    replications: int = 1999,
    adjust: str = "CR2",
    type: str = "CR2",
    test: str = "HTZ",
    cluster: str | None = None,
    weights: np.ndarray | None = None,
) -> WildBootstrapTest:
    """Cluster wild bootstrap test that the coefficients ``constraints`` of ``call`` are zero.

    See the module docstring for the algorithm (wildmeta's ``Wald_test_cwb``).

    Parameters
    ----------
    data : one row per effect size (rows missing a column of ``call`` are not used)
    call : the full model, e.g. ``ModelCall(mods=("deltype", "year"), random=("study", "es"))``,
        with ``rho`` for the CHE working model
    constraints : the coefficients to test, by name or position (e.g. the dummies of a factor)
    rng : the random generator of the weights (``np.random.default_rng(seed)``); the same seed
        gives the same result, byte for byte
    replications : number of bootstrap replicates R
    adjust : residual adjustment, ``"CR0"``, ``"CR1"`` or ``"CR2"``
    type : the sandwich of the statistic, ``"CR0"``, ``"CR1"`` or ``"CR2"``
    test : ``"HTZ"`` (:math:`\\delta Q/q`) or ``"Naive-F"`` (:math:`Q/q`)
    cluster : the clustering column (default: the outermost random level)
    weights : (R, J) auxiliary weights to use instead of drawing them, columns = clusters in
        sorted order of their ids (as ``cluster_blocks`` orders them)

    Returns
    -------
    WildBootstrapTest

    Raises
    ------
    ModelError
        for an unknown coefficient, nothing left in the null model, fewer than 2 clusters, or a
        one-level model fitted with a non-likelihood estimator.
    """
    for value, allowed, what in ((adjust, ADJUSTMENTS, "adjust"), (type, TYPES, "type")):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    if call.method not in ("REML", "ML", "FE", "EE"):
        raise ModelError(f"the bootstrap refits need a likelihood fit, not method {call.method!r}")
    rows = call.complete(data)
    full = call.fit(rows)
    C, names = _constraint_matrix(full, constraints)
    parts, clusters, k = _parts(full, cluster)
    J = len(clusters)
    if J < 2:
        raise ModelError(f"the cluster wild bootstrap needs at least 2 clusters, got {J}")
    if not full._state.design.data.index.equals(
        rows.index
    ):  # pragma: no cover - engine keeps order
        raise ModelError("the model's rows are not in the order of the data")
    X = np.empty((k, full.p))
    y = np.empty(k)
    for b in full.cluster_blocks(cluster):
        X[b.index], y[b.index] = b.X, b.y
    # the null space of C (wildmeta's constrain_predictors; any basis gives the same fit)
    Xn = X @ np.linalg.svd(C)[2][C.shape[0] :].T
    null = _null_model(call, rows, Xn)
    fitted = Xn @ np.asarray(null.b, dtype=float)
    basis = [_stack(v, parts) for v in _covariance_basis(full, cluster)]

    def covariances(theta: np.ndarray) -> list[np.ndarray]:
        return [
            basis[0][g][None]
            + np.einsum("bl,lgnm->bgnm", theta, np.stack([b[g] for b in basis[1:]]))
            for g in range(len(parts))
        ]

    def by_part(Y: np.ndarray) -> list[np.ndarray]:
        return [Y[:, part.rows] for part in parts]

    # the null model's residuals, adjusted
    resid = y - fitted
    if adjust == "CR2":
        Vn = covariances(_theta(null)[None])
        part_n = [_Part(pt.clusters, pt.rows, Xn[pt.rows]) for pt in parts]
        _, Mn, _ = _gls(part_n, Vn, by_part(resid[None]))
        for pt, pn, Vg in zip(parts, part_n, Vn, strict=True):
            A = _cr2_adjustments(pn.X, Vg, Mn)[0]
            resid[pt.rows] = np.einsum("gnm,gm->gn", A, resid[pt.rows])
    elif adjust == "CR1":
        resid = resid * np.sqrt(J / (J - 1))

    statistic = float(
        _statistics(parts, covariances(_theta(full)[None]), by_part(y[None]), C, type, test, J)[0]
    )
    if weights is None:
        if rng is None:
            raise ModelError("give rng=np.random.default_rng(seed) (or the weights)")
        weights = rademacher_weights(rng, int(replications), J)
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != J:
        raise ModelError(f"weights must be an (R, {J}) array, got shape {weights.shape}")
    row_cluster = np.empty(k, dtype=np.int64)
    for pt in parts:
        row_cluster[pt.rows] = pt.clusters[:, None]
    cells = sum(pt.rows.size * pt.rows.shape[1] for pt in parts)
    size = max(1, _CHUNK_CELLS // max(cells, 1))
    stats = []
    for start in range(0, len(weights), size):
        eta = weights[start : start + size]
        Y = fitted[None] + resid[None] * eta[:, row_cluster]
        theta = _refit_components(full, Y)
        out = np.full(len(eta), np.nan)
        ok = np.all(np.isfinite(theta), axis=1)
        if ok.any():
            out[ok] = _statistics(parts, covariances(theta[ok]), by_part(Y[ok]), C, type, test, J)
        stats.append(out)
    boot = np.concatenate(stats)
    valid = boot[np.isfinite(boot)]
    if valid.size < len(boot):
        logger.warning(
            "wild bootstrap: %d refit(s) failed and were left out", len(boot) - valid.size
        )
    p_value = float(np.mean(valid >= statistic)) if valid.size else float("nan")
    htz = full.robust(cluster=cluster).wald(list(names)).to_dict()
    htz.pop("constraints")
    return WildBootstrapTest(
        constraints=names, q=C.shape[0], adjust=adjust, type=type, test=test,
        auxiliary="Rademacher", replications=len(weights), n_valid=int(valid.size),
        statistic=statistic, p_value=p_value, htz=htz, n_clusters=J, k=k,
        sigma2_full=_named(full), sigma2_null=_named(null), rho=full.rho, boot_statistics=valid,
    )  # fmt: skip


def _named(result: MetaResult) -> dict[str, float]:
    if result.multilevel:
        return {str(k): float(v) for k, v in result.sigma2.items()}
    return {"tau2": float(result.tau2 or 0.0)}
