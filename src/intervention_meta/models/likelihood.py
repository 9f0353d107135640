"""Blockwise (restricted) log-likelihood of the multilevel meta-analytic model.

The model is

.. math:: y = X\\beta + \\sum_{l} Z_l u_l + e, \\qquad u_l \\sim N(0, \\sigma^2_l I),
          \\qquad e \\sim N(0, S),

with nested random effects (level ``l`` groups rows by the tuple of id columns ``0..l``) and
sampling covariance ``S`` (diagonal, or correlated within the outermost cluster; see
:mod:`~intervention_meta.models.covariance`). The marginal covariance
:math:`M = S + \\sum_l \\sigma^2_l Z_l Z_l^\\top` is block-diagonal by the outermost level, so every
quantity below is a sum over blocks :math:`j` of small matrices; no :math:`k \\times k` matrix is
formed. Blocks of equal size are stacked into ``(n_blocks, n, n)`` arrays and handled with batched
linear algebra. The one-level random-effects model is the case of one level whose units are the
rows (blocks of size one, :math:`M = \\mathrm{diag}(v_i + \\tau^2)`).

With :math:`W = M^{-1}`, :math:`\\hat\\beta = (X^\\top W X)^{-1} X^\\top W y`,
:math:`r = y - X\\hat\\beta` and :math:`P = W - W X (X^\\top W X)^{-1} X^\\top W`
(so :math:`Py = Wr`):

.. math::

    \\ell_{ML} &= -\\tfrac12\\left[k\\log 2\\pi + \\log|M| + r^\\top W r\\right] \\\\
    \\ell_{REML} &= -\\tfrac12\\left[(k-p)\\log 2\\pi - \\log|X^\\top X| + \\log|M|
                   + \\log|X^\\top W X| + r^\\top W r\\right]

(the :math:`\\log|X^\\top X|` term is metafor's ``REMLf = TRUE`` convention). Derivatives with
respect to :math:`\\sigma^2_l`, with :math:`D_l = Z_l Z_l^\\top` (Harville 1977):

.. math::

    \\partial\\ell/\\partial\\sigma^2_l &=
        \\tfrac12\\left[r^\\top W D_l W r - \\mathrm{tr}(Q D_l)\\right]
    \\\\
    \\mathcal{I}_{lm} &= \\tfrac12\\,\\mathrm{tr}(Q D_l Q D_m)

with :math:`Q = W` for ML and :math:`Q = P` for REML (expected information). The REML traces are
computed blockwise from :math:`H = (X^\\top W X)^{-1}`:
:math:`\\mathrm{tr}(PD_l) = \\sum_j \\mathrm{tr}(W_j D_{lj}) - \\mathrm{tr}(H M_l)` and
:math:`\\mathrm{tr}(PD_lPD_m) = \\sum_j\\mathrm{tr}(W_jD_{lj}W_jD_{mj}) - 2\\,\\mathrm{tr}(H N_{lm})
+ \\mathrm{tr}(H M_l H M_m)` with :math:`M_l = \\sum_j X_j^\\top W_j D_{lj} W_j X_j` and
:math:`N_{lm} = \\sum_j X_j^\\top W_j D_{lj} W_j D_{mj} W_j X_j`.

References
----------
Harville, D. A. (1977). Maximum likelihood approaches to variance component estimation and to
related problems. *JASA*, 72, 320-338.
Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in the
random-effects model. *Journal of Educational and Behavioral Statistics*, 30, 261-293.
Konstantopoulos, S. (2011). Fixed effects and variance components estimation in three-level
meta-analysis. *Research Synthesis Methods*, 2, 61-76.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from intervention_meta.models.covariance import impute_covariance
from intervention_meta.models.errors import ModelError

LOG_2PI = float(np.log(2.0 * np.pi))


class NotPositiveDefinite(ArithmeticError):
    """The marginal covariance of some block is not positive definite at these parameters."""


@dataclass(frozen=True)
class BlockGroup:
    """Blocks (outermost clusters) of one common size ``n``, stacked.

    Attributes
    ----------
    index : (n_blocks, n) row positions of each block's rows, in data order
    X : (n_blocks, n, p) model-matrix rows
    S : (n_blocks, n, n) sampling covariance
    D : (n_levels, n_blocks, n, n) indicator of two rows sharing the unit of each random level
    """

    index: np.ndarray
    X: np.ndarray
    S: np.ndarray
    D: np.ndarray

    @property
    def n(self) -> int:
        return int(self.index.shape[1])


@dataclass(frozen=True)
class BlockStructure:
    """The model's rows arranged in outermost blocks, grouped by block size.

    Attributes
    ----------
    groups : one :class:`BlockGroup` per block size
    block_codes : (k,) outermost block of each row (blocks numbered in sorted id order)
    n_blocks : number of blocks
    k, p : rows and coefficients
    n_components : number of variance components (random levels)
    """

    groups: tuple[BlockGroup, ...]
    block_codes: np.ndarray
    n_blocks: int
    k: int
    p: int
    n_components: int

    def stack(self, values: np.ndarray) -> list[np.ndarray]:
        """A (k,) row vector as one (n_blocks, n) array per group."""
        return [values[g.index] for g in self.groups]

    def marginal_blocks(self, theta: np.ndarray) -> list[np.ndarray]:
        """(n_blocks, n, n) marginal covariance per group at variance components ``theta``."""
        out = []
        for g in self.groups:
            M = g.S.copy()
            for t, D in zip(np.asarray(theta, dtype=float), g.D, strict=True):
                if t != 0.0:
                    M += t * D
            out.append(M)
        return out


def lower_triangular_inverse(C: np.ndarray) -> np.ndarray:
    """Inverses of stacked lower-triangular matrices (n_blocks, n, n) by forward substitution.

    Vectorised over the blocks and looping over the rows, which for the small blocks of
    meta-analytic data is several times faster than a batched general inverse.
    """
    nb, n, _ = C.shape
    if n > 512:
        return np.tril(np.linalg.inv(C))
    out = np.zeros_like(C)
    diag = np.diagonal(C, axis1=1, axis2=2)
    for i in range(n):
        row = np.zeros((nb, n))
        if i:
            row -= np.einsum("bj,bjk->bk", C[:, i, :i], out[:, :i, :])
        row[:, i] += 1.0
        out[:, i, :] = row / diag[:, i, None]
    return out


def build_structure(
    X: np.ndarray,
    v: np.ndarray,
    level_codes: Sequence[np.ndarray],
    rho: float | None = None,
) -> BlockStructure:
    """Arrange the rows in outermost blocks.

    ``level_codes`` holds one (k,) code vector per random level, outermost first; an empty sequence
    means the one-level model, whose single level is the row itself.
    """
    k, p = X.shape
    if len(level_codes) == 0:
        codes = [np.arange(k, dtype=np.int64)]
    else:
        codes = [np.asarray(c, dtype=np.int64) for c in level_codes]
    outer = codes[0]
    n_blocks = int(outer.max()) + 1 if k else 0
    order = np.argsort(outer, kind="stable")
    sizes = np.bincount(outer, minlength=n_blocks)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    groups = []
    for n in np.unique(sizes):
        if n == 0:
            continue
        blocks = np.flatnonzero(sizes == n)
        index = order[starts[blocks][:, None] + np.arange(n)[None, :]]
        D = np.empty((len(codes), len(blocks), n, n))
        D[0] = 1.0
        for lev in range(1, len(codes)):
            c = codes[lev][index]
            D[lev] = c[:, :, None] == c[:, None, :]
        groups.append(BlockGroup(index=index, X=X[index], S=impute_covariance(v[index], rho), D=D))
    return BlockStructure(
        groups=tuple(groups),
        block_codes=outer,
        n_blocks=n_blocks,
        k=k,
        p=p,
        n_components=len(codes),
    )


@dataclass(frozen=True)
class Evaluation:
    """Likelihood quantities at one value of the variance components.

    ``loglik``, ``grad`` and ``info`` are those of the criterion (ML or REML) the likelihood was
    built for; ``grad``/``info`` are ``None`` unless requested.
    """

    theta: np.ndarray
    loglik: float
    loglik_ml: float
    loglik_reml: float
    beta: np.ndarray
    vb: np.ndarray
    rss: float
    logdet: float
    grad: np.ndarray | None = None
    info: np.ndarray | None = None


class MarginalLikelihood:
    """ML or REML log-likelihood, gradient and expected information of a block structure.

    Parameters
    ----------
    structure : the rows in outermost blocks
    y : (k,) response (metafor's one-level estimators use the mean-centred response)
    reml : whether the criterion is the restricted likelihood
    """

    def __init__(self, structure: BlockStructure, y: np.ndarray, *, reml: bool) -> None:
        self.structure = structure
        self.reml = bool(reml)
        self.y_blocks = structure.stack(np.asarray(y, dtype=float))
        xtx = sum(np.einsum("bip,biq->pq", g.X, g.X) for g in structure.groups)
        sign, self.logdet_xtx = np.linalg.slogdet(xtx)
        if sign <= 0:  # pragma: no cover - design checks catch this first
            raise ModelError("X'X is singular")
        self.n_evaluations = 0

    @property
    def k(self) -> int:
        return self.structure.k

    @property
    def p(self) -> int:
        return self.structure.p

    def evaluate(self, theta: np.ndarray, order: int = 0) -> Evaluation:
        """Log-likelihood (``order`` 0), plus gradient (1), plus expected information (2).

        Raises
        ------
        NotPositiveDefinite
            if a block's marginal covariance is not positive definite.
        """
        self.n_evaluations += 1
        theta = np.asarray(theta, dtype=float)
        st = self.structure
        p, L = st.p, st.n_components
        # whitening: M_j = C_j C_j' (Cholesky), Xt_j = C_j^-1 X_j, yt_j = C_j^-1 y_j, W_j = M_j^-1
        logdet = 0.0
        whitened = []
        for g, yb, M in zip(st.groups, self.y_blocks, st.marginal_blocks(theta), strict=True):
            if g.n == 1:
                m = M[:, 0, 0]
                if np.any(~(m > 0)):
                    raise NotPositiveDefinite("non-positive marginal variance")
                logdet += float(np.log(m).sum())
                Cinv = (1.0 / np.sqrt(m))[:, None, None]
            else:
                try:
                    chol = np.linalg.cholesky(M)
                except np.linalg.LinAlgError as err:
                    raise NotPositiveDefinite(str(err)) from err
                logdet += 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
                Cinv = lower_triangular_inverse(chol)
            whitened.append((Cinv, Cinv @ g.X, np.einsum("bij,bj->bi", Cinv, yb)))
        Xt = np.concatenate([xt.reshape(-1, p) for _, xt, _ in whitened])
        yt = np.concatenate([y.reshape(-1) for _, _, y in whitened])
        Q, R = np.linalg.qr(Xt)
        diag_r = np.abs(np.diag(R))
        if not np.all(diag_r > 0):
            raise NotPositiveDefinite("X'WX is singular")
        logdet_xwx = 2.0 * float(np.log(diag_r).sum())
        beta = np.linalg.solve(R, Q.T @ yt)
        Rinv = np.linalg.inv(R)
        H = Rinv @ Rinv.T
        resid_t = yt - Xt @ beta
        rss = float(resid_t @ resid_t)

        q = np.zeros(L)
        tr_wd = np.zeros(L)
        Ml = np.zeros((L, p, p))
        T = np.zeros((L, L))
        N = np.zeros((L, L, p, p))
        if order >= 1:
            for g, (Cinv, xt, ybt) in zip(st.groups, whitened, strict=True):
                CinvT = np.swapaxes(Cinv, 1, 2)
                W = CinvT @ Cinv
                WX = CinvT @ xt
                Wr = np.einsum("bij,bj->bi", CinvT, ybt - xt @ beta)
                for lev in range(L):
                    D = g.D[lev]
                    DWr = np.einsum("bij,bj->bi", D, Wr)
                    q[lev] += float(np.sum(Wr * DWr))
                    tr_wd[lev] += float(np.sum(W * D))
                    if self.reml:
                        Ml[lev] += np.einsum("bip,biq->pq", WX, D @ WX)
                if order < 2:
                    continue
                WD = [W @ g.D[lev] for lev in range(L)]
                DWX = [g.D[lev] @ WX for lev in range(L)] if self.reml else []
                for a in range(L):
                    for b in range(a, L):
                        T[a, b] += float(np.einsum("bij,bji->", WD[a], WD[b]))
                        if self.reml:
                            N[a, b] += np.einsum("bip,biq->pq", DWX[a], W @ DWX[b])

        k = st.k
        ll_ml = -0.5 * (k * LOG_2PI + logdet + rss)
        ll_reml = -0.5 * ((k - p) * LOG_2PI - self.logdet_xtx + logdet + logdet_xwx + rss)
        grad = info = None
        if order >= 1:
            tr_q = tr_wd.copy()
            if self.reml:
                tr_q -= np.einsum("pq,lqp->l", H, Ml)
            grad = 0.5 * (q - tr_q)
        if order >= 2:
            info = np.zeros((L, L))
            for a in range(L):
                for b in range(a, L):
                    val = T[a, b]
                    if self.reml:
                        val += -2.0 * np.trace(H @ N[a, b]) + np.trace(H @ Ml[a] @ H @ Ml[b])
                    info[a, b] = info[b, a] = 0.5 * val
        return Evaluation(
            theta=theta.copy(),
            loglik=ll_reml if self.reml else ll_ml,
            loglik_ml=float(ll_ml),
            loglik_reml=float(ll_reml),
            beta=beta,
            vb=H,
            rss=rss,
            logdet=logdet,
            grad=grad,
            info=info,
        )
