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
linear algebra. When every block is diagonal plus a constant (independent sampling errors, each
level either the whole block or the single rows: nested random intercepts), no block matrix is
needed at all: the rows stay in one ragged array sorted by block and every block quantity is a sum
over its rows (:class:`RaggedBlocks`), so an evaluation costs the same few array operations
whatever the mix of block sizes. The one-level random-effects model is the case of one level
whose units are the rows (blocks of size one, :math:`M = \\mathrm{diag}(v_i + \\tau^2)`).

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
:math:`N_{lm} = \\sum_j X_j^\\top W_j D_{lj} W_j D_{mj} W_j X_j`. The observed information (the
negative Hessian of the log-likelihood with :math:`\\beta` profiled out; Harville 1977) is

.. math:: \\mathcal{J}_{lm} = u_l^\\top P u_m - \\mathcal{I}_{lm}, \\qquad u_l = D_l P y,

with :math:`u_l^\\top P u_m = \\sum_j u_{lj}^\\top W_j u_{mj} - (X^\\top W u_l)^\\top H
(X^\\top W u_m)` for ML and REML alike.

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

import functools
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from intervention_meta.models.covariance import impute_covariance
from intervention_meta.models.errors import ModelError
from intervention_meta.models.qr import thin_qr

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
    kinds : per level, ``"ones"`` if every D of the group is all ones (the outermost level),
        ``"identity"`` if it is the identity (every row its own unit, or blocks of one row), else
        ``"general"``; the likelihood uses it to replace products with D by sums
    diagonal : whether the sampling covariance S is diagonal (independent sampling errors); with
        levels that are all ones or the identity the blocks are then diagonal plus a constant
    """

    index: np.ndarray
    X: np.ndarray
    S: np.ndarray
    D: np.ndarray
    kinds: tuple[str, ...] = ()
    diagonal: bool = False

    @property
    def n(self) -> int:
        return int(self.index.shape[1])

    @property
    def n_blocks(self) -> int:
        return int(self.index.shape[0])

    @property
    def sdiag(self) -> np.ndarray:
        """(n_blocks, n) sampling variances."""
        return np.diagonal(self.S, axis1=-2, axis2=-1)

    def blocksum(self, A: np.ndarray) -> np.ndarray:
        """Sums over each block's rows: (B, n_blocks, n, ...) -> (B, n_blocks, ...)."""
        return A.sum(axis=2)

    def expand(self, x: np.ndarray) -> np.ndarray:
        """Per-block values (B, n_blocks, ...) broadcastable against the rows."""
        return np.expand_dims(x, 2)


@dataclass(frozen=True)
class RaggedBlocks:
    """All outermost blocks in one array, rows sorted by block (blocks of any size).

    The layout of models whose blocks are all diagonal plus a constant (see
    :class:`_DiagPlusOnesInverse`), where no :math:`n \\times n` matrix is needed: sums over each
    block's rows (``np.add.reduceat``) take the place of stacking the blocks by size.

    Attributes
    ----------
    index : (k,) row positions, sorted by block (data order within a block)
    starts : (n_blocks,) position of each block's first row in ``index``
    block : (k,) block of each sorted row
    X : (k, p) model-matrix rows, sorted
    sdiag : (k,) sampling variances, sorted
    kinds : per level ``"ones"`` (the level's unit is the block) or ``"identity"`` (each row)
    singletons : every block is one row (the one-level model): sums over a block and values
        repeated for its rows are the values themselves
    """

    index: np.ndarray
    starts: np.ndarray
    block: np.ndarray
    X: np.ndarray
    sdiag: np.ndarray
    kinds: tuple[str, ...]
    diagonal: bool = True
    singletons: bool = False

    @property
    def n_blocks(self) -> int:
        return int(self.starts.shape[0])

    def blocksum(self, A: np.ndarray) -> np.ndarray:
        """Sums over each block's rows: (B, k, ...) -> (B, n_blocks, ...)."""
        if self.singletons:
            return A
        return np.add.reduceat(A, self.starts, axis=1)

    def expand(self, x: np.ndarray) -> np.ndarray:
        """Per-block values (B, n_blocks, ...) repeated for each row: (B, k, ...)."""
        if self.singletons:
            return x
        return np.take(x, self.block, axis=1)  # a copy, as x[:, block], several times faster


@dataclass(frozen=True)
class BlockStructure:
    """The model's rows arranged in outermost blocks.

    Attributes
    ----------
    X, v : (k, p) model matrix and (k,) sampling variances, rows in data order
    level_codes : per level, (k,) codes of the units (outermost first; the one-level model's single
        level is the row)
    rho : correlation of sampling errors within a block (None: independent)
    block_codes : (k,) outermost block of each row (blocks numbered in sorted id order)
    n_blocks : number of blocks
    k, p : rows and coefficients
    n_components : number of variance components (random levels)
    ragged : the ragged layout, for models whose blocks are diagonal plus a constant (else None)
    groups : one :class:`BlockGroup` per block size (built when first used)
    """

    X: np.ndarray
    v: np.ndarray
    level_codes: tuple[np.ndarray, ...]
    rho: float | None
    block_codes: np.ndarray
    n_blocks: int
    k: int
    p: int
    n_components: int
    ragged: RaggedBlocks | None = None

    @functools.cached_property
    def groups(self) -> tuple[BlockGroup, ...]:
        return _block_groups(self.X, self.v, self.level_codes, self.rho)

    @property
    def parts(self) -> tuple[BlockGroup, ...] | tuple[RaggedBlocks]:
        """The layout the likelihood evaluates: the ragged one if there is one, else the groups."""
        return (self.ragged,) if self.ragged is not None else self.groups

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
            row -= (C[:, i : i + 1, :i] @ out[:, :i, :])[:, 0, :]
        row[:, i] += 1.0
        out[:, i, :] = row / diag[:, i, None]
    return out


def _kind(D: np.ndarray) -> str:
    """How a stack of indicator matrices D (n_blocks, n, n) can be applied: see BlockGroup."""
    n = D.shape[-1]
    if n == 1 or np.array_equal(D, np.broadcast_to(np.eye(n), D.shape)):
        return "identity"
    if np.all(D == 1.0):
        return "ones"
    return "general"


def _gram(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Sum of :math:`A^\\top B` over the middle axes: (m, ..., p), (m, ..., q) -> (m, p, q).

    A batched matrix product of the flattened arrays (much faster than the equivalent einsum).
    """
    m = max(A.shape[0], B.shape[0])
    A = A.reshape(A.shape[0], -1, A.shape[-1])
    B = B.reshape(B.shape[0], -1, B.shape[-1])
    return A.swapaxes(1, 2) @ B if m else np.zeros((0, A.shape[-1], B.shape[-1]))


def _inner(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Sum of the elementwise product over all but the first axis: (m, ...), (m, ...) -> (m,)."""
    m = A.shape[0]
    return np.einsum("bi,bi->b", A.reshape(m, -1), B.reshape(m, -1))


def _dmul(kind: str, D: np.ndarray, A: np.ndarray) -> np.ndarray:
    """:math:`D A` for stacked blocks (A: (..., n_blocks, n, m)), by sums where D allows it."""
    if kind == "identity":
        return A
    if kind == "ones":
        return np.broadcast_to(A.sum(axis=-2, keepdims=True), A.shape)
    return D @ A


class _DenseInverse:
    """:math:`W_j = M_j^{-1}` of stacked dense blocks (Bc, nb, n, n), through the Cholesky factor.

    ``whiten`` applies :math:`F_j = C_j^{-1}` (:math:`M_j = C_jC_j^\\top`, so
    :math:`F_j^\\top F_j = W_j`), ``unwhiten`` applies :math:`F_j^\\top`.
    """

    def __init__(self, M: np.ndarray) -> None:
        chol, self.ok = batched_cholesky(M)
        self.logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
        Bc, nb, n, _ = chol.shape
        self.F = lower_triangular_inverse(chol.reshape(-1, n, n)).reshape(Bc, nb, n, n)
        self._W: np.ndarray | None = None

    @property
    def W(self) -> np.ndarray:
        if self._W is None:
            self._W = np.swapaxes(self.F, -1, -2) @ self.F
        return self._W

    def whiten(self, V: np.ndarray) -> np.ndarray:
        return self.F @ V

    def unwhiten(self, V: np.ndarray) -> np.ndarray:
        return np.swapaxes(self.F, -1, -2) @ V

    def apply(self, V: np.ndarray) -> np.ndarray:
        return self.W @ V

    def rowsum(self) -> np.ndarray:
        return self.W.sum(axis=-1)

    def total(self) -> np.ndarray:
        return self.W.sum(axis=(-2, -1))

    def trace(self) -> np.ndarray:
        return np.trace(self.W, axis1=-2, axis2=-1)

    def frob2(self) -> np.ndarray:
        W = self.W
        return np.einsum("bkij,bkij->bk", W, W)


class _DiagPlusOnesInverse:
    """:math:`W_j = M_j^{-1}` for :math:`M_j = \\mathrm{diag}(a_j) + b\\,11^\\top`.

    Sherman-Morrison.

    The blocks of a nested model with independent sampling errors whose levels are the block
    itself (:math:`b` = sum of those variance components) or the single rows (added to the
    diagonal), and of the one-level model (:math:`b = 0`). With :math:`\\tilde a = 1/a`,
    :math:`t = \\sum\\tilde a`, :math:`d = 1 + bt`, :math:`\\gamma = b/d`:

    .. math:: W = \\mathrm{diag}(\\tilde a) - \\gamma\\,\\tilde a\\tilde a^\\top, \\qquad
              \\log|M| = \\sum\\log a + \\log d,

    and the square root :math:`F = (I - \\kappa\\,\\hat w\\hat w^\\top)\\,\\mathrm{diag}(w)`,
    :math:`w = \\tilde a^{1/2}`, :math:`\\hat w = w/\\sqrt t`, :math:`\\kappa = 1 - d^{-1/2}`
    (:math:`F^\\top F = W`) whitens in :math:`O(n)` per block: no :math:`n \\times n` matrix is
    formed.
    """

    def __init__(
        self,
        a: np.ndarray,
        b: np.ndarray,
        layout: BlockGroup | RaggedBlocks,
        keep: np.ndarray | None = None,
    ) -> None:
        n = a.shape[0]
        self.ok = np.all(a.reshape(n, -1) > 0, axis=1) & np.all(b.reshape(n, -1) >= 0, axis=1)
        a = np.where(a > 0, a, 1.0)
        self.layout = layout
        self.ainv = 1.0 / a
        loga = np.log(a)
        if keep is not None:  # removed rows: 1/a = 0, no share of the determinant
            self.ainv = np.where(keep, self.ainv, 0.0)
            loga = np.where(keep, loga, 0.0)
        self.t = layout.blocksum(self.ainv)
        d = 1.0 + b * self.t
        self.gamma = b / d
        self.logdet = layout.blocksum(loga) + np.log(d)
        self.w = np.sqrt(self.ainv)
        # kappa / t (0 for a block with every row removed)
        self.kt = (1.0 - 1.0 / np.sqrt(d)) / np.where(self.t > 0, self.t, 1.0)
        # per row, (kappa / t)_j w_i: the whitening's rank-one term
        self._kw = layout.expand(self.kt)[..., None] * self.w[..., None]
        self._ga_rows: np.ndarray | None = None
        self._a2_blocks: np.ndarray | None = None

    @property
    def _ga(self) -> np.ndarray:
        """Per row, :math:`\\gamma_j\\,\\tilde a_i` (the inverse's rank-one term)."""
        if self._ga_rows is None:
            self._ga_rows = self.layout.expand(self.gamma)[..., None] * self.ainv[..., None]
        return self._ga_rows

    @property
    def _a2(self) -> np.ndarray:
        """Per block, :math:`\\sum_i \\tilde a_i^2`."""
        if self._a2_blocks is None:
            self._a2_blocks = self.layout.blocksum(np.square(self.ainv))
        return self._a2_blocks

    def _rank_one(self, cu: np.ndarray, u: np.ndarray, V: np.ndarray) -> np.ndarray:
        """:math:`c_j\\,u\\,(u^\\top V)` per block, rows of V being the block's rows
        (``cu``: :math:`c_j u` per row)."""
        lay = self.layout
        return cu * lay.expand(lay.blocksum(u * V))

    def whiten(self, V: np.ndarray) -> np.ndarray:
        w = self.w[..., None]
        wV = w * V
        return wV - self._rank_one(self._kw, w, wV)

    def unwhiten(self, V: np.ndarray) -> np.ndarray:
        w = self.w[..., None]
        return w * (V - self._rank_one(self._kw, w, V))

    def apply(self, V: np.ndarray) -> np.ndarray:
        ai = self.ainv[..., None]
        return ai * V - self._rank_one(self._ga, ai, V)

    def rowsum(self) -> np.ndarray:
        return self.ainv * self.layout.expand(1.0 - self.gamma * self.t)

    def total(self) -> np.ndarray:
        return self.t - self.gamma * self.t**2

    def trace(self) -> np.ndarray:
        return self.t - self.gamma * self._a2

    def frob2(self) -> np.ndarray:
        a2 = self._a2
        a3 = self.layout.blocksum(self.ainv**3)
        return a2 - 2.0 * self.gamma * a3 + np.square(self.gamma * a2)


@functools.cache
def _kind_weights(kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Indicators of the levels that add to the diagonal (identity) and to the constant (ones)."""
    ident = np.array([k == "identity" for k in kinds], dtype=float)
    return ident, 1.0 - ident


@functools.cache
def _upper(L: int) -> np.ndarray:
    """(L, L) mask of the pairs above the diagonal."""
    return np.triu(np.ones((L, L), dtype=bool), 1)


def _inverse(
    g: BlockGroup | RaggedBlocks, theta: np.ndarray, keep: np.ndarray | None = None
) -> _DenseInverse | _DiagPlusOnesInverse:
    """The inverse marginal covariance of a block group at (Bc, L) variance components.

    ``keep``: (Bc, rows) the rows of each member (the others removed), diagonal-plus-ones only.
    """
    kinds = g.kinds or tuple(_kind(d) for d in g.D)
    if g.diagonal and all(k in ("ones", "identity") for k in kinds):
        ident, ones = _kind_weights(kinds)
        sdiag = g.sdiag
        a = sdiag[None] + (theta @ ident).reshape(-1, *(1,) * sdiag.ndim)
        return _DiagPlusOnesInverse(a, (theta @ ones)[:, None], g, keep)
    M = g.S[None] + (theta @ g.D.reshape(len(g.D), -1)).reshape(theta.shape[0], *g.S.shape)
    return _DenseInverse(M)


class _GroupTerms:
    """Score and information terms of one block group, by level (a, b).

    With :math:`W` the inverse marginal covariance, :math:`r` the residuals, :math:`c = W1`,
    :math:`s = X^\\top W1` and :math:`u_l = D_l W r` (sums over the blocks j):

    * ``q(l)`` :math:`= \\sum_j r^\\top W D_l W r`, ``trace(l)`` :math:`= \\sum_j
      \\mathrm{tr}(W D_l)`, ``M(l)`` :math:`= \\sum_j X^\\top W D_l W X`;
    * ``T(a, b)`` :math:`= \\sum_j \\mathrm{tr}(W D_a W D_b)`,
      ``N(a, b)`` :math:`= \\sum_j (D_aWX)^\\top W (D_bWX)`;
    * ``uWu(a, b)`` :math:`= \\sum_j u_a^\\top W u_b`, ``XWu(a)`` :math:`= \\sum_j X^\\top W u_a`.

    Where D is all ones or the identity these are sums: e.g.
    :math:`\\mathrm{tr}(WJWJ) = (1^\\top W1)^2`, :math:`\\mathrm{tr}(WJW) = c^\\top c`,
    :math:`(JWX)^\\top W (JWX) = (1^\\top W 1)\\,ss^\\top`, :math:`(JWX)^\\top W (WX) =
    s\\,(c^\\top WX)`; only a "general" level needs the dense :math:`W`.
    """

    def __init__(
        self,
        g: BlockGroup | RaggedBlocks,
        inv: _DenseInverse | _DiagPlusOnesInverse,
        xt: np.ndarray,
        rt: np.ndarray,
    ) -> None:
        self.g, self.inv = g, inv
        self.kinds = g.kinds or tuple(_kind(d) for d in g.D)
        self.WX = inv.unwhiten(xt)
        self.Wr = inv.unwhiten(rt[..., None])[..., 0]
        self._cache: dict[str, np.ndarray] = {}
        self._u_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _get(self, name: str) -> np.ndarray:
        if name not in self._cache:
            inv, WX, Wr = self.inv, self.WX, self.Wr
            if name == "c":
                val = inv.rowsum()
            elif name == "tot":
                val = inv.total()
            elif name == "s":
                val = self.g.blocksum(WX)
            elif name == "rsum":
                val = self.g.blocksum(Wr)
            elif name == "cWX":
                val = self.g.blocksum(self._get("c")[..., None] * WX)
            elif name == "WWX":
                val = inv.apply(WX)
            else:  # "WWr"
                val = inv.apply(Wr[..., None])[..., 0]
            self._cache[name] = val
        return self._cache[name]

    def q(self, lev: int) -> np.ndarray:
        kind, Wr = self.kinds[lev], self.Wr
        if kind == "identity":
            return _inner(Wr, Wr)
        if kind == "ones":
            return np.square(self._get("rsum")).sum(axis=1)
        return np.einsum("bki,bki->b", Wr, np.einsum("kij,bkj->bki", self.g.D[lev], Wr))

    def trace(self, lev: int) -> np.ndarray:
        kind = self.kinds[lev]
        if kind == "identity":
            return self.inv.trace().sum(axis=1)
        if kind == "ones":
            return self._get("tot").sum(axis=1)
        return np.einsum("bkij,kij->b", self.inv.W, self.g.D[lev])

    def M(self, lev: int) -> np.ndarray:
        kind = self.kinds[lev]
        if kind == "ones":
            s = self._get("s")
            return _gram(s, s)
        if kind == "identity":
            return _gram(self.WX, self.WX)
        return _gram(self.WX, self.g.D[lev] @ self.WX)

    def T(self, a: int, b: int) -> np.ndarray:
        ka, kb = self.kinds[a], self.kinds[b]
        if ka == kb == "ones":
            tot = self._get("tot")
            return np.einsum("bk,bk->b", tot, tot)
        if {ka, kb} == {"ones", "identity"}:
            c = self._get("c")
            return _inner(c, c)
        if ka == kb == "identity":
            return self.inv.frob2().sum(axis=1)
        # tr(W D_a W D_b) = sum((D_a W)' * (D_b W)), W and D symmetric
        W = self.inv.W
        DWa, DWb = _dmul(ka, self.g.D[a], W), _dmul(kb, self.g.D[b], W)
        return np.einsum("bkji,bkij->b", DWa, DWb)

    def N(self, a: int, b: int) -> np.ndarray:
        ka, kb = self.kinds[a], self.kinds[b]
        if ka == kb == "ones":
            s = self._get("s")
            return _gram(self._get("tot")[..., None] * s, s)
        if {ka, kb} == {"ones", "identity"}:
            s, cwx = self._get("s"), self._get("cWX")
            return _gram(s, cwx) if ka == "ones" else _gram(cwx, s)
        if ka == kb == "identity":
            return _gram(self.WX, self._get("WWX"))
        Da, Db = self.g.D[a], self.g.D[b]
        return _gram(_dmul(ka, Da, self.WX), self.inv.apply(_dmul(kb, Db, self.WX)))

    def _u(self, lev: int) -> tuple[np.ndarray, np.ndarray]:
        """:math:`u_l = D_l W r` and :math:`W u_l`, shaped as the rows of ``Wr``."""
        if lev in self._u_cache:
            return self._u_cache[lev]
        kind = self.kinds[lev]
        if kind == "identity":
            out = self.Wr, self._get("WWr")
        elif kind == "ones":
            rsum = self.g.expand(self._get("rsum"))
            u = rsum if rsum.shape == self.Wr.shape else np.broadcast_to(rsum, self.Wr.shape)
            out = u, rsum * self._get("c")
        else:
            u = np.einsum("kij,bkj->bki", self.g.D[lev], self.Wr)
            out = u, self.inv.apply(u[..., None])[..., 0]
        self._u_cache[lev] = out
        return out

    def XWu(self, a: int) -> np.ndarray:
        if self.kinds[a] == "ones":
            return np.einsum("bk,bkp->bp", self._get("rsum"), self._get("s"))
        return _gram(self.WX, self._u(a)[0][..., None])[..., 0]

    def uWu(self, a: int, b: int) -> np.ndarray:
        ua = self._u(a)[0]
        Wub = self._u(b)[1]
        return _inner(ua, Wub)


def build_structure(
    X: np.ndarray,
    v: np.ndarray,
    level_codes: Sequence[np.ndarray],
    rho: float | None = None,
) -> BlockStructure:
    """Arrange the rows in outermost blocks.

    ``level_codes`` holds one (k,) code vector per random level, outermost first; an empty sequence
    means the one-level model, whose single level is the row itself. With independent sampling
    errors and every level either the block or the row, the rows get the ragged layout.
    """
    k, p = X.shape
    if len(level_codes) == 0:
        codes = (np.arange(k, dtype=np.int64),)
    else:
        codes = tuple(np.asarray(c, dtype=np.int64) for c in level_codes)
    outer = codes[0]
    n_blocks = int(outer.max()) + 1 if k else 0
    sizes = np.bincount(outer, minlength=n_blocks)
    ragged = None
    if k and (rho is None or rho == 0.0) and np.all(sizes > 0):
        units = [int(c.max()) + 1 for c in codes]
        kinds = tuple("identity" if u == k else "ones" if u == n_blocks else "" for u in units)
        if all(kinds):
            order = np.argsort(outer, kind="stable")
            ragged = RaggedBlocks(
                index=order,
                starts=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
                block=outer[order],
                X=X[order],
                sdiag=v[order],
                kinds=kinds,
                singletons=n_blocks == k,
            )
    return BlockStructure(
        X=X,
        v=v,
        level_codes=codes,
        rho=rho,
        block_codes=outer,
        n_blocks=n_blocks,
        k=k,
        p=p,
        n_components=len(codes),
        ragged=ragged,
    )


def _block_groups(
    X: np.ndarray, v: np.ndarray, codes: Sequence[np.ndarray], rho: float | None
) -> tuple[BlockGroup, ...]:
    """The blocks stacked by size: one :class:`BlockGroup` per block size."""
    outer = codes[0]
    n_blocks = int(outer.max()) + 1 if len(outer) else 0
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
        S = impute_covariance(v[index], rho)
        groups.append(
            BlockGroup(
                index=index,
                X=X[index],
                S=S,
                D=D,
                kinds=tuple(_kind(d) for d in D),
                diagonal=n == 1 or rho is None or rho == 0.0,
            )
        )
    return tuple(groups)


@dataclass(frozen=True)
class Evaluation:
    """Likelihood quantities at one value of the variance components.

    ``loglik``, ``grad``, ``info`` (expected information) and ``obs_info`` (observed information,
    the negative Hessian of the profile log-likelihood in the variance components) are those of the
    criterion (ML or REML) the likelihood was built for; ``grad``/``info``/``obs_info`` are
    ``None`` unless requested (``order`` 1 / 2).
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
    obs_info: np.ndarray | None = None


@dataclass(frozen=True)
class BatchEvaluation:
    """Likelihood quantities of several models at once (leading axis: the batch members).

    The members share the block structure (sampling covariance and random-effects grouping) and
    differ in their variance components and, optionally, in the rows of the model matrix (a
    permutation) or the response (sign flips). ``ok`` is False for members whose marginal
    covariance (or :math:`X^\\top WX`) is not positive definite; their other entries are
    meaningless.
    """

    theta: np.ndarray
    loglik: np.ndarray
    loglik_ml: np.ndarray
    loglik_reml: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    rss: np.ndarray
    logdet: np.ndarray
    ok: np.ndarray
    grad: np.ndarray | None = None
    info: np.ndarray | None = None
    obs_info: np.ndarray | None = None

    def member(self, i: int) -> Evaluation:
        """The evaluation of member ``i`` (raises NotPositiveDefinite if it is not ok)."""
        if not self.ok[i]:
            raise NotPositiveDefinite("marginal covariance or X'WX not positive definite")
        return Evaluation(
            theta=self.theta[i].copy(),
            loglik=float(self.loglik[i]),
            loglik_ml=float(self.loglik_ml[i]),
            loglik_reml=float(self.loglik_reml[i]),
            beta=self.beta[i],
            vb=self.vb[i],
            rss=float(self.rss[i]),
            logdet=float(self.logdet[i]),
            grad=None if self.grad is None else self.grad[i],
            info=None if self.info is None else self.info[i],
            obs_info=None if self.obs_info is None else self.obs_info[i],
        )


# What MarginalLikelihood.evaluate_batch assembles the evaluation from: ``ok``, ``logdet``
# (log|M|), ``logdet_xwx``, ``rss`` (r'Wr), ``beta`` and ``H`` = (X'WX)^-1; with order >= 1 the
# sums over the blocks of _GroupTerms by level: ``q``, ``tr_wd`` and ``Ml`` (REML); with order 2
# ``T``, ``N`` (REML; pairs a <= b), ``uWu`` (pairs a <= b) and ``XWu``.
_Pieces = namedtuple(
    "_Pieces", "ok logdet logdet_xwx rss beta H q tr_wd Ml T N uWu XWu", defaults=(None,) * 7
)


def batched_cholesky(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors of stacked (B, nb, n, n) matrices and a (B,) flag of members that are PD.

    Members with a non-positive-definite block get the identity in its place (flag False), so the
    other members are unaffected.
    """
    try:
        return np.linalg.cholesky(M), np.ones(M.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        pass
    ok = np.ones(M.shape[0], dtype=bool)
    out = np.empty_like(M)
    eye = np.eye(M.shape[-1])
    for b in range(M.shape[0]):
        try:
            out[b] = np.linalg.cholesky(M[b])
        except np.linalg.LinAlgError:
            ok[b] = False
            out[b] = eye
    return out, ok


class MarginalLikelihood:
    """ML or REML log-likelihood, gradient and expected information of a block structure.

    Parameters
    ----------
    structure : the rows in outermost blocks
    y : (k,) response (metafor's one-level estimators use the mean-centred response), or (B, k)
        one response per batch member (e.g. sign-flipped effect sizes)
    reml : whether the criterion is the restricted likelihood
    X : optional (B, k, p) model matrices, one per batch member (e.g. with permuted rows), in place
        of the structure's own; all members share the sampling covariance and the grouping
    keep : optional (B, k) boolean rows of each batch member (e.g. all but one study's, for
        leave-one-out refits): a member is the model of its rows only. The left-out rows get zero
        weight (:math:`1/a_i = 0` in the blocks' inverses), which removes them exactly; needs the
        ragged layout.
    row_sums : evaluate through weighted sums over the rows instead of the whitened model (see
        :meth:`_by_row_sums`): the same quantities with far fewer passes over the rows, for many
        responses over the same rows (a bootstrap). Used where it applies: the ragged layout, the
        structure's own model matrix and all rows (no ``X``, no ``keep``).

    The batch size is the larger of the numbers of responses and model matrices (1 by default);
    :meth:`evaluate` is for a single model, :meth:`evaluate_batch` evaluates all members (or a
    subset) at once with batched linear algebra.
    """

    def __init__(
        self,
        structure: BlockStructure,
        y: np.ndarray,
        *,
        reml: bool,
        X: np.ndarray | None = None,
        keep: np.ndarray | None = None,
        row_sums: bool = False,
    ) -> None:
        self.structure = structure
        self.reml = bool(reml)
        self.row_sums = (
            bool(row_sums) and structure.ragged is not None and X is None and keep is None
        )
        y = np.asarray(y, dtype=float)
        y2 = y[None, :] if y.ndim == 1 else y
        parts = structure.parts
        self.y_blocks = [y2[:, g.index] for g in parts]
        self.keep_blocks: list[np.ndarray | None] = [None] * len(parts)
        self.n_rows = np.array([structure.k])
        if keep is not None:
            if structure.ragged is None:
                raise ValueError("row subsets (keep) need the ragged layout")
            keep = np.asarray(keep, dtype=bool)
            self.keep_blocks = [keep[:, g.index] for g in parts]
            self.n_rows = keep.sum(axis=1)
            X = (structure.X if X is None else np.asarray(X, dtype=float)) * keep[..., None]
        if X is None:
            self.X_blocks = [g.X[None] for g in parts]
            xtx = (structure.X.T @ structure.X)[None]
        else:
            X = np.asarray(X, dtype=float)
            self.X_blocks = [X[:, g.index] for g in parts]
            xtx = np.einsum("bkp,bkq->bpq", X, X)
        sign, self.logdet_xtx = np.linalg.slogdet(xtx)
        if np.any(sign <= 0):  # pragma: no cover - design checks catch this first
            raise ModelError("X'X is singular")
        self.batch = max(y2.shape[0], self.X_blocks[0].shape[0] if self.X_blocks else 1)
        self.n_evaluations = 0
        self._recent: dict[bytes, tuple[int, Evaluation]] = {}

    @property
    def k(self) -> int:
        return self.structure.k

    @property
    def p(self) -> int:
        return self.structure.p

    def member(self, i: int) -> MarginalLikelihood:
        """The likelihood of batch member ``i`` alone."""
        out = object.__new__(MarginalLikelihood)
        out.structure = self.structure
        out.reml = self.reml
        out.row_sums = self.row_sums
        out.y_blocks = [yb[i : i + 1] if yb.shape[0] > 1 else yb for yb in self.y_blocks]
        out.X_blocks = [xb[i : i + 1] if xb.shape[0] > 1 else xb for xb in self.X_blocks]
        out.keep_blocks = [kb if kb is None else kb[i : i + 1] for kb in self.keep_blocks]
        out.n_rows = self.n_rows[i : i + 1] if self.n_rows.shape[0] > 1 else self.n_rows
        ld = np.atleast_1d(self.logdet_xtx)
        out.logdet_xtx = ld[i : i + 1] if ld.shape[0] > 1 else ld
        out.batch = 1
        out.n_evaluations = 0
        out._recent = {}
        return out

    def evaluate(self, theta: np.ndarray, order: int = 0) -> Evaluation:
        """Log-likelihood (``order`` 0), plus gradient (1), plus expected information (2).

        For a likelihood of one model (batch size 1).

        Raises
        ------
        NotPositiveDefinite
            if a block's marginal covariance is not positive definite.
        """
        if self.batch != 1:
            raise ValueError("evaluate() is for a single model; use evaluate_batch()")
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        hit = self._recent.get(key)
        if hit is not None and hit[0] >= order:  # the same point again (e.g. zero, the estimate)
            return hit[1]
        ev = self.evaluate_batch(theta[None, :], order=order).member(0)
        if len(self._recent) >= 4:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = (order, ev)
        return ev

    def evaluate_batch(
        self, theta: np.ndarray, order: int = 0, members: np.ndarray | None = None
    ) -> BatchEvaluation:
        """Evaluate batch members at their variance components.

        Parameters
        ----------
        theta : (m, L) variance components, one row per evaluated member
        order : 0 log-likelihood, 1 plus gradient, 2 plus expected information
        members : (m,) which batch members the rows of ``theta`` belong to (default: all, in
            order; a likelihood of batch size 1 broadcasts to any number of rows)
        """
        self.n_evaluations += 1
        theta = np.atleast_2d(np.asarray(theta, dtype=float))

        def pick(a: np.ndarray) -> np.ndarray:
            if a.shape[0] == 1 or members is None:
                return a
            return a[members]

        if self.row_sums:
            pieces = self._by_row_sums(theta, order, pick)
        else:
            pieces = self._by_whitening(theta, order, pick)
        return self._assemble(theta, order, pick, pieces)

    def _by_whitening(self, theta: np.ndarray, order: int, pick) -> _Pieces:
        """The pieces of :meth:`evaluate_batch` through the whitened model (any layout)."""
        B = theta.shape[0]
        st = self.structure
        p, L = st.p, st.n_components

        ok = np.ones(B, dtype=bool)
        logdet = np.zeros(B)
        whitened = []
        # members at the same variance components share their marginal covariance: factor it once
        # (unless they differ in their rows)
        same = B > 1 and np.all(theta == theta[0]) and self.keep_blocks[0] is None
        th_c = theta[:1] if same else theta
        # whitening: F_j with F_j'F_j = W_j = M_j^-1; Xt_j = F_j X_j, yt_j = F_j y_j
        for g, yb, xb, kb in zip(
            st.parts, self.y_blocks, self.X_blocks, self.keep_blocks, strict=True
        ):
            yb, xb = pick(yb), pick(xb)
            inv = _inverse(g, th_c, None if kb is None else pick(kb))
            ok &= inv.ok
            logdet += inv.logdet.sum(axis=1)
            xt = inv.whiten(xb)
            yt = inv.whiten(yb[..., None])[..., 0]
            if xt.shape[0] != B:
                xt = np.broadcast_to(xt, (B, *xt.shape[1:]))
            if yt.shape[0] != B:
                yt = np.broadcast_to(yt, (B, *yt.shape[1:]))
            whitened.append((inv, xt, yt))
        if len(whitened) == 1:  # one part (the ragged layout): its rows are all the rows
            Xt, yt = whitened[0][1].reshape(B, -1, p), whitened[0][2].reshape(B, -1)
        else:
            Xt = np.concatenate([xt.reshape(B, -1, p) for _, xt, _ in whitened], axis=1)
            yt = np.concatenate([y.reshape(B, -1) for _, _, y in whitened], axis=1)
        Q, R = thin_qr(Xt)
        diag_r = np.abs(np.diagonal(R, axis1=1, axis2=2))
        good = np.all(diag_r > 0, axis=1)
        ok &= good
        if not good.all():
            R = np.where(good[:, None, None], R, np.eye(p))
            diag_r = np.where(good[:, None], diag_r, 1.0)
        logdet_xwx = 2.0 * np.log(diag_r).sum(axis=1)
        qty = Q.mT @ yt[..., None]
        if p == 1:  # a 1 x 1 triangle: division
            beta = (qty / R)[..., 0]
            Rinv = 1.0 / R
        else:
            beta = np.linalg.solve(R, qty)[..., 0]
            Rinv = np.linalg.inv(R)
        H = Rinv @ Rinv.mT
        resid_t = yt - (Xt @ beta[..., None])[..., 0]
        rss = np.einsum("bk,bk->b", resid_t, resid_t)

        q = tr_wd = Ml = T = N = uWu = XWu = None
        if order >= 1:
            q = np.zeros((B, L))
            tr_wd = np.zeros((B, L))
            Ml = np.zeros((B, L, p, p))
            T = np.zeros((B, L, L))
            N = np.zeros((B, L, L, p, p))
            uWu = np.zeros((B, L, L))
            XWu = np.zeros((B, L, p))
            start = 0
            for g, (inv, xt, ybt) in zip(st.parts, whitened, strict=True):
                # this part's whitened residuals, shaped as its rows
                stop = start + ybt[0].size
                terms = _GroupTerms(g, inv, xt, resid_t[:, start:stop].reshape(ybt.shape))
                start = stop
                for lev in range(L):
                    q[:, lev] += terms.q(lev)
                    tr_wd[:, lev] += terms.trace(lev)
                    if self.reml:
                        Ml[:, lev] += terms.M(lev)
                if order < 2:
                    continue
                for a in range(L):
                    XWu[:, a] += terms.XWu(a)
                    for b in range(a, L):
                        T[:, a, b] += terms.T(a, b)
                        uWu[:, a, b] += terms.uWu(a, b)
                        if self.reml:
                            N[:, a, b] += terms.N(a, b)
        return _Pieces(ok, logdet, logdet_xwx, rss, beta, H, q, tr_wd, Ml, T, N, uWu, XWu)

    def _by_row_sums(self, theta: np.ndarray, order: int, pick) -> _Pieces:
        """The pieces of :meth:`evaluate_batch` as weighted sums over the rows (ragged layout).

        Every block is :math:`M_j = \\mathrm{diag}(a) + b\\,11^\\top` (see
        :class:`_DiagPlusOnesInverse`; :math:`\\tilde a = 1/a`, :math:`t_j = \\sum_{i \\in j}
        \\tilde a_i`, :math:`d_j = 1 + bt_j`, :math:`\\gamma_j = b/d_j`), so with the block sums
        :math:`S^x_j = \\sum_{i \\in j} \\tilde a_i x_i` and :math:`S^y_j = \\sum_{i \\in j}
        \\tilde a_i y_i`

        .. math::

            X^\\top WX &= \\textstyle\\sum_i \\tilde a_i x_ix_i^\\top - \\sum_j \\gamma_j
                S^x_jS^{x\\top}_j, \\\\
            X^\\top Wy &= \\textstyle\\sum_i \\tilde a_i x_iy_i - \\sum_j \\gamma_j S^x_jS^y_j,

        :math:`(WX)_i = \\tilde a_i(x_i - \\gamma_jS^x_j)`, :math:`(Wr)_i = \\tilde a_i(r_i -
        \\gamma_jS^r_j)` and :math:`1^\\top W_j = \\tilde a^\\top/d_j`; :math:`\\hat\\beta` from
        the Cholesky factor of :math:`X^\\top WX`. The score and information terms are those of
        :class:`_GroupTerms` for levels that are the block (``"ones"``) or the row
        (``"identity"``), written with these sums: equal to the whitened computation up to
        rounding, with a few passes over the (members, rows) arrays instead of dozens.
        """
        st = self.structure
        rg = st.ragged
        X = rg.X
        y = pick(self.y_blocks[0])
        B = theta.shape[0]
        ident, ones = _kind_weights(rg.kinds)
        a = rg.sdiag[None] + (theta @ ident)[:, None]
        b = (theta @ ones)[:, None]
        positive = a > 0
        ok = np.all(positive, axis=1) & (b[:, 0] >= 0)
        if not ok.all():
            a[~positive] = 1.0
        ai = 1.0 / a
        t = rg.blocksum(ai)
        d = 1.0 + b * t
        g = b / d
        logdet = np.log(a, out=a).sum(axis=1) + np.log(d).sum(axis=1)  # a is not used again
        # X'WX, X'Wy and beta
        aX = ai[..., None] * X
        Sx = rg.blocksum(aX)
        gSx = g[..., None] * Sx
        XWX = aX.mT @ X - gSx.mT @ Sx
        ay = ai * y
        XWy = ay @ X - np.einsum("bjp,bj->bp", gSx, rg.blocksum(ay))
        chol, good = batched_cholesky(XWX[:, None])
        chol = chol[:, 0]
        ok &= good
        diag = np.diagonal(chol, axis1=1, axis2=2)
        logdet_xwx = 2.0 * np.log(diag).sum(axis=1)
        Linv = np.linalg.inv(chol)
        H = Linv.mT @ Linv
        beta = (H @ XWy[..., None])[..., 0]
        r = y - beta @ X.T
        ar = ai * r
        Sr = rg.blocksum(ar)
        rss = np.einsum("bk,bk->b", ar, r) - np.einsum("bj,bj->b", g, np.square(Sr))
        if order < 1:
            return _Pieces(ok, logdet, logdet_xwx, rss, beta, H)
        # by kind of level: 0 the block ("ones"), 1 the row ("identity")
        ag = ai * rg.expand(g)
        Wr = ar - ag * rg.expand(Sr)  # (Wr)_i = a_i (r_i - g_j Sr_j)
        aX -= ag[..., None] * rg.expand(Sx)  # (WX)_i = a_i (x_i - g_j Sx_j), in place
        WX = aX
        rsum = Sr / d  # 1'W r per block
        tot = t / d  # 1'W 1
        ai2 = np.square(ai)
        a2 = rg.blocksum(ai2)
        s = Sx / d[..., None]  # 1'W X
        q2 = [np.einsum("bj,bj->b", rsum, rsum), np.einsum("bk,bk->b", Wr, Wr)]
        tr2 = [tot.sum(axis=1), (t - g * a2).sum(axis=1)]
        M2 = [s.mT @ s, WX.mT @ WX]
        kinds = [0 if kind == "ones" else 1 for kind in rg.kinds]
        L = len(kinds)
        q = np.stack([q2[c] for c in kinds], axis=1)
        tr_wd = np.stack([tr2[c] for c in kinds], axis=1)
        Ml = np.stack([M2[c] for c in kinds], axis=1) if self.reml else None
        if order < 2:
            return _Pieces(ok, logdet, logdet_xwx, rss, beta, H, q, tr_wd, Ml)
        a3 = rg.blocksum(ai2 * ai)
        aWX = ai[..., None] * WX
        Z = rg.blocksum(aWX)  # 1'W WX per block, times d
        aWr = ai * Wr
        zr = rg.blocksum(aWr)  # 1'W Wr per block, times d
        cWX = Z / d[..., None]
        T2 = np.empty((B, 2, 2))
        T2[:, 0, 0] = np.einsum("bj,bj->b", tot, tot)
        T2[:, 0, 1] = T2[:, 1, 0] = (a2 / np.square(d)).sum(axis=1)
        T2[:, 1, 1] = (a2 - 2.0 * g * a3 + np.square(g * a2)).sum(axis=1)
        uWu2 = np.empty((B, 2, 2))
        uWu2[:, 0, 0] = np.einsum("bj,bj->b", np.square(rsum), tot)
        uWu2[:, 0, 1] = uWu2[:, 1, 0] = np.einsum("bj,bj->b", rsum, zr / d)
        uWu2[:, 1, 1] = np.einsum("bk,bk->b", aWr, Wr) - np.einsum("bj,bj->b", g, np.square(zr))
        XWu2 = [np.einsum("bj,bjp->bp", rsum, s), (WX.mT @ Wr[..., None])[..., 0]]
        T = np.empty((B, L, L))
        uWu = np.empty((B, L, L))
        N = np.empty((B, L, L, st.p, st.p)) if self.reml else None
        if self.reml:
            sc = s.mT @ cWX
            N2 = {
                (0, 0): (tot[..., None] * s).mT @ s,
                (0, 1): sc,
                (1, 0): sc.mT,
                (1, 1): aWX.mT @ WX - (g[..., None] * Z).mT @ Z,
            }
        for i, ci in enumerate(kinds):
            for j, cj in enumerate(kinds):
                T[:, i, j] = T2[:, ci, cj]
                uWu[:, i, j] = uWu2[:, ci, cj]
                if self.reml:
                    N[:, i, j] = N2[ci, cj]
        XWu = np.stack([XWu2[c] for c in kinds], axis=1)
        return _Pieces(ok, logdet, logdet_xwx, rss, beta, H, q, tr_wd, Ml, T, N, uWu, XWu)

    def _assemble(self, theta: np.ndarray, order: int, pick, pc: _Pieces) -> BatchEvaluation:
        """Log-likelihoods, score and informations from the pieces (see the module docstring)."""
        p, L = self.structure.p, self.structure.n_components
        ok, logdet, logdet_xwx, rss, H = pc.ok, pc.logdet, pc.logdet_xwx, pc.rss, pc.H
        q, tr_wd, Ml, T, N, uWu, XWu = pc.q, pc.tr_wd, pc.Ml, pc.T, pc.N, pc.uWu, pc.XWu

        k = pick(self.n_rows)
        ll_ml = -0.5 * (k * LOG_2PI + logdet + rss)
        ll_reml = -0.5 * (
            (k - p) * LOG_2PI - pick(np.atleast_1d(self.logdet_xtx)) + logdet + logdet_xwx + rss
        )
        grad = info = None
        if order >= 1:
            tr_q = tr_wd.copy()
            if self.reml:
                tr_q -= np.einsum("bpq,blqp->bl", H, Ml)
            grad = 0.5 * (q - tr_q)
        obs_info = None
        if order >= 2:
            # T, N and uWu hold the pairs a <= b: mirror them
            upper = _upper(L)
            T = np.where(upper, T, T.mT)
            uWu = np.where(upper, uWu, uWu.mT)
            val = T
            if self.reml:
                N = np.where(upper[..., None, None], N, N.swapaxes(1, 2))
                HM = H[:, None] @ Ml
                val = (
                    T
                    - 2.0 * np.einsum("bpq,blmqp->blm", H, N)
                    + np.einsum("blpq,bmqp->blm", HM, HM)
                )
            info = 0.5 * val
            # u_a' P u_b = u_a' W u_b - (X'W u_a)' H (X'W u_b)
            obs_info = uWu - np.einsum("blp,bpq,bmq->blm", XWu, H, XWu) - info
        return BatchEvaluation(
            theta=theta.copy(),
            loglik=ll_reml if self.reml else ll_ml,
            loglik_ml=ll_ml,
            loglik_reml=ll_reml,
            beta=pc.beta,
            vb=H,
            rss=rss,
            logdet=logdet,
            ok=ok,
            grad=grad,
            info=info,
            obs_info=obs_info,
        )
