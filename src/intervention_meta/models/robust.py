"""Cluster-robust (sandwich) variance, small-sample t tests and the HTZ Wald test.

Follows clubSandwich 0.5.8 (Pustejovsky 2023) for ``rma.mv`` models, i.e. for a multilevel
meta-analytic model fitted by GLS with inverse-variance weights :math:`W_j = V_j^{-1}`, where
:math:`V_j` is the model's fitted marginal covariance of cluster :math:`j`. Everything works
cluster by cluster on :class:`~intervention_meta.models.blocks.ClusterBlock` objects (clusters of
equal size are processed together as stacked arrays); no dense ``k x k`` matrix is ever formed.

On a fitted model, ``fit(...).robust(cluster=None, type="CR2")`` (:func:`robust_result`) gives a
:class:`RobustResult`: the coefficient table (``to_frame()``, ``to_dict()``, ``coef_test(coef)``)
and the HTZ Wald test (``wald(constraints)``). On blocks built by hand, :func:`robust_vcov` gives
the sandwich and :func:`coef_test` / :func:`wald_test` the tests.

Supported sandwiches (``type``): ``"CR0"``, ``"CR1"``, ``"CR1p"``, ``"CR1S"`` and ``"CR2"``, the
bias-reduced linearization of Bell and McCaffrey (2002) in the form of Pustejovsky and Tipton
(2018). Tests: per-coefficient t tests with Satterthwaite degrees of freedom (Pustejovsky and
Tipton 2018) and the Hotelling's :math:`T^2` approximation with estimated degrees of freedom
("HTZ", Tipton and Pustejovsky 2015). Not supported: CR3/CR4, the other Wald tests of clubSandwich
(HTA, HTB, EDF, EDT, naive), saddlepoint p values, and models whose weights are not the inverse
of the model covariance (e.g. ``robumeta``-style working weights).

References
----------
Bell, R. M., & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear regression
with multi-stage samples. *Survey Methodology*, 28(2), 169-181.

McCaffrey, D. F., Bell, R. M., & Botts, C. H. (2001). Generalizations of biased reduced
linearization. *Proceedings of the Annual Meeting of the American Statistical Association*.

Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. *Journal of Business & Economic
Statistics*, 36(4), 672-683.

Tipton, E., & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of moderators and
model fit using robust variance estimation in meta-regression. *Journal of Educational and
Behavioral Statistics*, 40(6), 604-634.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable as _jsonable
from intervention_meta.models import distributions as dist
from intervention_meta.models.blocks import ClusterBlock
from intervention_meta.models.errors import ModelError
from intervention_meta.models.inference import resolve_btt

if TYPE_CHECKING:
    from intervention_meta.models.results import MetaResult

logger = logging.getLogger(__name__)

__all__ = [
    "CR_TYPES",
    "RobustResult",
    "RobustVcov",
    "WaldTest",
    "coef_test",
    "robust_result",
    "robust_vcov",
    "satterthwaite_df",
    "wald_test",
]

CR_TYPES = ("CR0", "CR1", "CR1p", "CR1S", "CR2")

# clubSandwich's matrix_power(): eigenvalues <= 1e-12 are treated as zero (generalised inverse).
_EIG_TOL = 1e-12


def _matrix_power(x: np.ndarray, power: float) -> np.ndarray:
    """Power of symmetric matrices (stacked on the leading axes) by eigen-decomposition.

    As clubSandwich's ``matrix_power``: eigenvalues at or below 1e-12 are set to zero, so
    ``power=-1/2`` gives the Moore-Penrose inverse square root of a singular matrix.
    """
    vals, vecs = np.linalg.eigh((x + np.swapaxes(x, -1, -2)) / 2)
    keep = vals > _EIG_TOL
    vals_p = np.where(keep, np.where(keep, vals, 1.0) ** power, 0.0)
    return (vecs * vals_p[..., None, :]) @ np.swapaxes(vecs, -1, -2)


@dataclass(frozen=True, eq=False)
class RobustVcov:
    """A cluster-robust covariance matrix of the coefficients, with what its tests need.

    Attributes
    ----------
    type : the small-sample correction, one of :data:`CR_TYPES`
    vcov : (p, p) robust covariance matrix :math:`V^R`
    beta : (p,) coefficients whose residuals entered the sandwich
    bread : (p, p) :math:`M = (\\sum_j X_j' W_j X_j)^{-1}`, the model-based covariance
    clusters : cluster ids, in the order of the blocks
    n_obs : number of rows over all clusters
    target : ``"model"`` (working covariance :math:`\\Phi_j = V_j`) or ``"user"``
    p_diag, p_left, p_right : per-cluster pieces of the matrices :math:`P_{jk}` of
        Pustejovsky and Tipton (2018) that give the Satterthwaite and HTZ degrees of freedom:
        for coefficients (rows of a contrast) :math:`s, t`,
        :math:`P_{jk}[s, t] = \\delta_{jk}\\,\\text{p\\_diag}_j[s, t]
        + \\text{p\\_left}_j[s]\\cdot\\text{p\\_right}_k[t]`.
        Shapes (J, p, p), (J, p, m), (J, p, m).
    """

    type: str
    vcov: np.ndarray
    beta: np.ndarray
    bread: np.ndarray
    clusters: tuple
    n_obs: int
    target: str
    p_diag: np.ndarray = field(repr=False)
    p_left: np.ndarray = field(repr=False)
    p_right: np.ndarray = field(repr=False)

    @property
    def n_clusters(self) -> int:
        """Number of clusters J."""
        return len(self.clusters)

    @property
    def se(self) -> np.ndarray:
        """Robust standard errors, the square roots of the diagonal of :attr:`vcov`."""
        return np.sqrt(np.diag(self.vcov))

    def to_dict(self) -> dict:
        """JSON-able summary: type, target, numbers of clusters and rows, beta, se, vcov."""
        return {
            "type": self.type,
            "target": self.target,
            "n_clusters": self.n_clusters,
            "n_obs": self.n_obs,
            "clusters": _jsonable(list(self.clusters)),
            "beta": _jsonable(self.beta),
            "se": _jsonable(self.se),
            "vcov": _jsonable(self.vcov),
        }

    def to_frame(self, coef_names: Sequence[str] | None = None) -> pd.DataFrame:
        """The robust covariance matrix as a DataFrame labelled by coefficient."""
        names = list(coef_names) if coef_names is not None else _default_names(len(self.beta))
        if len(names) != len(self.beta):
            raise ValueError(f"need {len(self.beta)} coefficient names, got {len(names)}")
        return pd.DataFrame(self.vcov, index=names, columns=names)


@dataclass(frozen=True, eq=False)
class WaldTest:
    """A robust Wald test of :math:`H_0: C\\beta = 0` (fields named as clubSandwich's)."""

    test: str
    type: str
    fstat: float
    delta: float
    df_num: int
    df_denom: float
    p_val: float
    constraints: np.ndarray

    def to_dict(self) -> dict:
        """JSON-able dict of all fields (``constraints`` as a list of rows)."""
        return {
            "test": self.test,
            "type": self.type,
            "fstat": _jsonable(self.fstat),
            "delta": _jsonable(self.delta),
            "df_num": int(self.df_num),
            "df_denom": _jsonable(self.df_denom),
            "p_val": _jsonable(self.p_val),
            "constraints": _jsonable(self.constraints),
        }

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame: test, type, fstat, delta, df_num, df_denom, p_val."""
        d = self.to_dict()
        d.pop("constraints")
        return pd.DataFrame([{k: getattr(self, k) for k in d}])


@dataclass(frozen=True, eq=False)
class RobustResult:
    """Robust t tests of every coefficient, the robust covariance and the HTZ Wald test.

    What :meth:`MetaResult.robust() <intervention_meta.models.results.MetaResult.robust>` (and
    :func:`coef_test` on a :class:`RobustVcov`) returns: per coefficient
    :math:`t = b/\\sqrt{V^R_{ii}}` on Satterthwaite degrees of freedom with two-sided p values and
    confidence limits :math:`b \\pm t_{df, 1-\\alpha/2}\\,se`, as clubSandwich's ``coef_test`` and
    ``conf_int`` (Pustejovsky & Tipton 2018).

    Attributes
    ----------
    type : the sandwich, one of :data:`CR_TYPES`
    cluster : the clustering column (``None`` when built from blocks without a model)
    n_clusters : number of clusters
    coef_names, b : the coefficients
    se : robust standard errors
    tval, df, pval : t statistics, Satterthwaite degrees of freedom and two-sided p values
    ci_lb, ci_ub : confidence limits
    level : confidence level
    vcov : robust covariance matrix of the coefficients
    """

    type: str
    cluster: str | None
    n_clusters: int
    coef_names: tuple[str, ...]
    b: np.ndarray
    se: np.ndarray
    tval: np.ndarray
    df: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    level: float
    vcov: np.ndarray
    _rv: RobustVcov = field(repr=False)

    def wald(
        self, constraints: Sequence[int | str] | int | str | np.ndarray, test: str = "HTZ"
    ) -> WaldTest:
        """Robust Wald test that the coefficients ``constraints`` are zero, or of a contrast.

        ``constraints``: coefficient positions or names (clubSandwich ``constrain_zero``), or a
        q x p contrast matrix C for :math:`H_0: C\\beta = 0`; see :func:`wald_test`.
        """
        arr = None if isinstance(constraints, str) else np.asarray(constraints)
        if arr is None or arr.ndim < 2:
            arr = np.asarray(resolve_btt(constraints, self.coef_names), dtype=np.int64)
        return wald_test(self._rv, self.b, arr, test=test)

    def at(self, beta: np.ndarray) -> RobustResult:
        """The tests of other coefficient values ``beta`` with this robust covariance, e.g. of a
        model fitted to an outcome shifted by a constant: the covariance and the Satterthwaite
        degrees of freedom do not depend on the coefficients, so only the t statistics, p values
        and confidence limits are recomputed (as :func:`coef_test` computes them)."""
        beta = np.asarray(beta, dtype=float).reshape(-1)
        if beta.shape != self.b.shape:
            raise ValueError(f"beta must have {self.b.size} entries, got {beta.shape}")
        tstat, p_val, lower, upper = _t_tests(beta, self.se, self.df, self.level)
        return replace(self, b=beta, tval=tstat, pval=p_val, ci_lb=lower, ci_ub=upper)

    def coef_test(self, coef: int | str = 0) -> dict[str, float]:
        """One coefficient's test under clubSandwich's names (the keys the steps' JSON carries).

        ``beta, se, tstat, df_satt, p_satt, ci_lower, ci_upper`` of the coefficient ``coef``
        (position or name), as clubSandwich's ``coef_test`` and ``conf_int``.
        """
        (i,) = resolve_btt(coef, self.coef_names)
        return {
            key: float(getattr(self, name)[i])
            for key, name in (
                ("beta", "b"), ("se", "se"), ("tstat", "tval"), ("df_satt", "df"),
                ("p_satt", "pval"), ("ci_lower", "ci_lb"), ("ci_upper", "ci_ub"),
            )
        }  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-able dict of every attribute."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name[0] != "_"}

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: estimate, se, tval, df, pval, ci_lb, ci_ub."""
        columns = {"estimate": self.b}
        for name in ("se", "tval", "df", "pval", "ci_lb", "ci_ub"):
            columns[name] = getattr(self, name)
        return pd.DataFrame(columns, index=pd.Index(self.coef_names, name="coefficient"))


def _default_names(p: int) -> list[str]:
    return [f"b{i}" for i in range(p)]


# ---------------------------------------------------------------------------------------------
# the sandwich
# ---------------------------------------------------------------------------------------------


def _check_blocks(blocks: Sequence[ClusterBlock]) -> int:
    """Validate shapes; return the number of coefficients p."""
    blocks = list(blocks)
    if len(blocks) < 2:
        raise ValueError(f"cluster-robust variance needs at least 2 clusters, got {len(blocks)}")
    p = np.asarray(blocks[0].X).shape[-1]
    seen: set = set()
    for b in blocks:
        X, y, V = np.asarray(b.X), np.asarray(b.y), np.asarray(b.V)
        n = y.shape[0] if y.ndim == 1 else -1
        if n < 1 or X.shape != (n, p) or V.shape != (n, n):
            raise ValueError(
                f"cluster {b.cluster!r}: expected y (n,), X (n, {p}), V (n, n); got y "
                f"{y.shape}, X {X.shape}, V {V.shape}"
            )
        try:
            hash(b.cluster)
        except TypeError:  # unhashable ids cannot be compared cheaply; trust the caller
            continue
        if b.cluster in seen:
            raise ValueError(f"cluster {b.cluster!r} appears in more than one block")
        seen.add(b.cluster)
    return p


def _small_sample_factor(type: str, J: int, N: int, p: int) -> float:
    """clubSandwich's CR1-type multipliers of the estimating equations (the vcov gets its square).

    CR1: sqrt(J / (J - 1)); CR1p: sqrt(J / (J - p)); CR1S: sqrt(J (N - 1) / ((J - 1)(N - p))).
    """
    if type == "CR1":
        return np.sqrt(J / (J - 1))
    if type == "CR1p":
        if J <= p:
            raise ValueError(f"CR1p needs more clusters ({J}) than coefficients ({p})")
        return np.sqrt(J / (J - p))
    if type == "CR1S":
        if N <= p:
            raise ValueError(f"CR1S needs more rows ({N}) than coefficients ({p})")
        return np.sqrt(J * (N - 1) / ((J - 1) * (N - p)))
    return 1.0


def robust_vcov(
    blocks: Sequence[ClusterBlock],
    beta: np.ndarray | None = None,
    *,
    type: str = "CR2",
    target: Sequence[np.ndarray] | None = None,
) -> RobustVcov:
    """Cluster-robust sandwich covariance of GLS coefficients, as clubSandwich's ``vcovCR``.

    .. math::

        V^R = M \\Big(\\sum_j X_j' W_j A_j e_j e_j' A_j' W_j X_j\\Big) M, \\qquad
        M = \\Big(\\sum_j X_j' W_j X_j\\Big)^{-1}, \\qquad e_j = y_j - X_j\\beta,

    with :math:`W_j = V_j^{-1}`. For CR0 :math:`A_j = I`; CR1, CR1p, CR1S scale :math:`A_j = cI`
    with :math:`c^2 = J/(J-1)`, :math:`J/(J-p)`, :math:`J(N-1)/((J-1)(N-p))`. CR2 is the
    bias-reduced linearization (Bell and McCaffrey 2002; McCaffrey, Bell and Botts 2001) in the
    form of Pustejovsky and Tipton (2018, eq. 8): with the working covariance (target)
    :math:`\\Phi_j = R_j R_j'` (Cholesky),

    .. math::

        A_j = R_j \\big[R_j' \\, G_j \\, R_j\\big]^{-1/2} R_j',

    where for :math:`\\Phi = V` (the default, clubSandwich's ``inverse_var`` case)
    :math:`G_j = (I - H_{jj})\\Phi_j = V_j - X_j M X_j'`, and for a user target
    :math:`G_j = \\Phi_j - H_{jj}\\Phi_j - \\Phi_j H_{jj}' + X_j M (\\sum_k X_k'W_k\\Phi_k W_k X_k)
    M X_j'`, with :math:`H_{jj} = X_j M X_j' W_j` the diagonal block of the hat matrix. The
    inverse square root is the symmetric (Moore-Penrose) one, eigenvalues at or below 1e-12
    being dropped, as in clubSandwich.
    With this :math:`A_j`, :math:`E(V^R) = M` exactly when :math:`\\Phi` is the true covariance.

    Parameters
    ----------
    blocks : the clusters of the fitted model (at least 2); each block's ``V`` is the fitted
        marginal covariance, whose inverse is the GLS weight.
    beta : (p,) coefficients; default the GLS estimate
        :math:`M\\sum_j X_j'W_j y_j` computed from the blocks.
    type : one of ``"CR0", "CR1", "CR1p", "CR1S", "CR2"``.
    target : optional working covariance :math:`\\Phi_j` per block, in block order, each an
        (n_j, n_j) matrix or an (n_j,) diagonal (as clubSandwich's ``target=`` vector);
        default the model's :math:`V_j`.

    Returns
    -------
    RobustVcov, which also carries what :func:`coef_test` and :func:`wald_test` need for the
    degrees of freedom.

    Notes
    -----
    Clusters of equal size are stacked and handled by batched linear algebra; the cost is
    :math:`O(\\sum_j n_j^3)` and no :math:`k \\times k` matrix is formed. The GLS weights are
    always :math:`V_j^{-1}` (models fitted with other weights are not supported).
    """
    if type not in CR_TYPES:
        raise ValueError(f"type must be one of {CR_TYPES}, got {type!r}")
    blocks = list(blocks)
    p = _check_blocks(blocks)
    J = len(blocks)
    N = int(sum(len(b.y) for b in blocks))
    if target is not None:
        target = list(target)
        if len(target) != J:
            raise ValueError(f"target must have one entry per block ({J}), got {len(target)}")
        thetas = []
        for b, t in zip(blocks, target, strict=True):
            t = np.asarray(t, dtype=float)
            n = len(b.y)
            t = np.diag(t) if t.ndim == 1 else t
            if t.shape != (n, n):
                raise ValueError(f"cluster {b.cluster!r}: target must be ({n}, {n}), got {t.shape}")
            thetas.append(t)

    # group clusters of equal size
    groups: dict[int, list[int]] = {}
    for i, b in enumerate(blocks):
        groups.setdefault(len(b.y), []).append(i)

    stacked = {}
    XWX = np.zeros((p, p))
    XWy = np.zeros(p)
    XWTWX = np.zeros((p, p))
    for n, idx in groups.items():
        X = np.stack([np.asarray(blocks[i].X, dtype=float).reshape(n, p) for i in idx])
        y = np.stack([np.asarray(blocks[i].y, dtype=float) for i in idx])
        V = np.stack([np.asarray(blocks[i].V, dtype=float) for i in idx])
        try:
            WX = np.linalg.solve(V, X)
        except np.linalg.LinAlgError as err:
            raise ValueError(f"a cluster covariance V of size {n} is singular") from err
        T = V if target is None else np.stack([thetas[i] for i in idx])
        XWX += np.einsum("gnp,gnq->pq", X, WX)
        XWy += np.einsum("gnp,gn->p", WX, y)
        if target is not None:
            XWTWX += np.einsum("gnp,gnm,gmq->pq", WX, T, WX)
        stacked[n] = (np.asarray(idx), X, y, V, WX, T)

    try:
        M = np.linalg.inv(XWX)
        L_M = np.linalg.cholesky((M + M.T) / 2)
    except np.linalg.LinAlgError as err:
        raise ValueError("X'WX is singular: the coefficients are not identified") from err
    beta = M @ XWy if beta is None else np.asarray(beta, dtype=float).reshape(-1)
    if beta.shape != (p,):
        raise ValueError(f"beta must have {p} entries, got {beta.shape}")
    if target is not None:
        Omega = M @ XWTWX @ M
        L_Omega = np.linalg.cholesky((Omega + Omega.T) / 2)

    c = _small_sample_factor(type, J, N, p)
    m = p if target is None else 3 * p
    meat = np.zeros((p, p))
    p_diag = np.empty((J, p, p))
    p_left = np.empty((J, p, m))
    p_right = np.empty((J, p, m))
    for idx, X, y, V, WX, T in stacked.values():
        XtW = np.swapaxes(WX, 1, 2)  # (g, p, n)
        if type == "CR2":
            L = np.linalg.cholesky(T)  # T = L L'
            XMXt = X @ M @ np.swapaxes(X, 1, 2)
            if target is None:
                inner = V - XMXt
            else:
                H = X @ M @ XtW
                inner = T - H @ T - T @ np.swapaxes(H, 1, 2) + X @ Omega @ np.swapaxes(X, 1, 2)
            G = np.swapaxes(L, 1, 2) @ inner @ L
            A = L @ _matrix_power(G, -0.5) @ np.swapaxes(L, 1, 2)
            E = XtW @ A  # (g, p, n)
        else:
            E = XtW * c
        e = y - X @ beta
        u = np.einsum("gpn,gn->gp", E, e)
        meat += u.T @ u
        ME = M @ E
        p_diag[idx] = ME @ T @ np.swapaxes(ME, 1, 2)
        MEX = ME @ X
        if target is None:
            h = MEX @ L_M
            p_left[idx] = h
            p_right[idx] = -h
        else:
            h1 = MEX @ L_M
            h2 = ME @ T @ WX @ L_M
            h3 = MEX @ L_Omega
            p_left[idx] = np.concatenate([h3, h1, h2], axis=2)
            p_right[idx] = np.concatenate([h3, -h2, -h1], axis=2)

    vcov = M @ meat @ M
    logger.debug("robust_vcov: %s with %d clusters, %d rows, %d coefficients", type, J, N, p)
    return RobustVcov(
        type=type,
        vcov=vcov,
        beta=beta,
        bread=M,
        clusters=tuple(b.cluster for b in blocks),
        n_obs=N,
        target="model" if target is None else "user",
        p_diag=p_diag,
        p_left=p_left,
        p_right=p_right,
    )


# ---------------------------------------------------------------------------------------------
# moments of the P matrices (degrees of freedom)
# ---------------------------------------------------------------------------------------------


def _contrast_pieces(rv: RobustVcov, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The P-matrix pieces for the rows of the contrast C (q x p)."""
    d = np.einsum("sp,jpr,tr->jst", C, rv.p_diag, C)
    left = np.einsum("sp,jpm->jsm", C, rv.p_left)
    right = np.einsum("sp,jpm->jsm", C, rv.p_right)
    return d, left, right


def _p_trace(d: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """:math:`\\Omega[s,t] = \\sum_j P_{jj}[s,t]`, the expectation of the contrast's sandwich."""
    return d.sum(axis=0) + np.einsum("jsm,jtm->st", left, right)


def _p_cross(d: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """:math:`T[s,t,u,v] = \\sum_{j,k} P_{jk}[s,t]\\,P_{jk}[u,v]` without forming J x J arrays.

    With :math:`P_{jk}[s,t] = \\delta_{jk} d_j[s,t] + l_j[s]\\cdot r_k[t]`:
    :math:`T = \\sum_j d_j[s,t] d_j[u,v] + \\sum_j d_j[s,t]\\,l_j[u]\\cdot r_j[v]
    + \\sum_j d_j[u,v]\\,l_j[s]\\cdot r_j[t] + \\operatorname{tr}(K^l_{us} K^r_{tv})`,
    :math:`K^l_{us} = \\sum_j l_j[u] l_j[s]'`, :math:`K^r_{tv} = \\sum_k r_k[t] r_k[v]'`.
    """
    lr = np.einsum("jsm,jtm->jst", left, right)
    KL = np.einsum("jum,jsn->usmn", left, left)
    KR = np.einsum("jtn,jvm->tvnm", right, right)
    return (
        np.einsum("jst,juv->stuv", d, d)
        + np.einsum("jst,juv->stuv", d, lr)
        + np.einsum("jst,juv->stuv", lr, d)
        + np.einsum("usmn,tvnm->stuv", KL, KR)
    )


def satterthwaite_df(rv: RobustVcov, contrast: np.ndarray) -> float:
    """Satterthwaite degrees of freedom of the robust variance of :math:`c'\\hat\\beta`.

    .. math::

        \\nu = \\frac{2\\,E(c'V^Rc)^2}{\\operatorname{Var}(c'V^Rc)}
             = \\frac{\\big(\\sum_j p_{jj}\\big)^2}{\\sum_{j,k} p_{jk}^2},

    where :math:`p_{jk} = c' M E_j \\Phi_j^{1/2} \\ldots` are the entries of the matrix P of
    Pustejovsky and Tipton (2018, section 3.1; clubSandwich's ``Satterthwaite``), computed with
    the working model (:math:`\\Phi`) as the assumed covariance.
    """
    C = np.asarray(contrast, dtype=float).reshape(1, -1)
    d, left, right = _contrast_pieces(rv, C)
    mean = _p_trace(d, left, right)[0, 0]
    var_half = _p_cross(d, left, right)[0, 0, 0, 0]
    return float(mean**2 / var_half)


def coef_test(
    rv: RobustVcov,
    beta: np.ndarray | None,
    coef_names: Sequence[str] | None = None,
    *,
    level: float = 0.95,
    cluster: str | None = None,
) -> RobustResult:
    """Robust t tests and confidence intervals per coefficient, as clubSandwich's
    ``coef_test(test="Satterthwaite")`` and ``conf_int(test="Satterthwaite")``.

    :math:`t_i = \\hat\\beta_i / \\sqrt{V^R_{ii}}`, referred to a t distribution with the
    Satterthwaite degrees of freedom :math:`\\nu_i` of :func:`satterthwaite_df` (Pustejovsky and
    Tipton 2018, section 3.1); :math:`p = 2\\,P(t_{\\nu_i} > |t_i|)`;
    CI :math:`\\hat\\beta_i \\pm t_{\\nu_i, 1-(1-\\text{level})/2}\\,SE_i`.

    Parameters
    ----------
    rv : the result of :func:`robust_vcov`.
    beta : (p,) coefficients to test; None uses ``rv.beta``.
    coef_names : p names; default ``b0, b1, ...``.
    level : confidence level of the intervals, in (0, 1).
    cluster : the name of the clustering column, recorded in the result.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    p = rv.vcov.shape[0]
    beta = rv.beta if beta is None else np.asarray(beta, dtype=float).reshape(-1)
    if beta.shape != (p,):
        raise ValueError(f"beta must have {p} entries, got {beta.shape}")
    names = tuple(coef_names) if coef_names is not None else tuple(_default_names(p))
    if len(names) != p:
        raise ValueError(f"need {p} coefficient names, got {len(names)}")
    se = rv.se
    eye = np.eye(p)
    df = np.array([satterthwaite_df(rv, eye[i]) for i in range(p)])
    tstat, p_val, lower, upper = _t_tests(beta, se, df, level)
    return RobustResult(
        type=rv.type,
        cluster=cluster,
        n_clusters=rv.n_clusters,
        coef_names=names,
        b=beta,
        se=se,
        tval=tstat,
        df=df,
        pval=p_val,
        ci_lb=lower,
        ci_ub=upper,
        level=level,
        vcov=rv.vcov,
        _rv=rv,
    )


def _t_tests(
    beta: np.ndarray, se: np.ndarray, df: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """t statistics, two-sided p values and confidence limits of coefficients ``beta`` with
    standard errors ``se`` on ``df`` degrees of freedom."""
    tstat = beta / se
    p_val = 2 * dist.t_sf(np.abs(tstat), df)
    crit = dist.t_ppf(1 - (1 - level) / 2, df)
    return tstat, p_val, beta - crit * se, beta + crit * se


def _constraint_matrix(constraints: Sequence[int] | np.ndarray, p: int) -> np.ndarray:
    """A q x p contrast matrix from 0-based coefficient indices or a matrix."""
    arr = np.asarray(constraints)
    if arr.ndim == 1:
        if arr.size == 0:
            raise ValueError("constraints: give at least one coefficient index")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                "constraints: a 1-D list must hold 0-based integer coefficient indices; "
                "give a q x p matrix for general contrasts"
            )
        if arr.min() < 0 or arr.max() >= p:
            raise ValueError(f"constraints: indices must be in 0..{p - 1}, got {arr.tolist()}")
        if len(np.unique(arr)) != arr.size:
            raise ValueError(f"constraints: repeated index in {arr.tolist()}")
        return np.eye(p)[arr]
    if arr.ndim == 2:
        if arr.shape[0] < 1 or arr.shape[1] != p:
            raise ValueError(f"constraints: a contrast matrix must be q x {p}, got {arr.shape}")
        arr = arr.astype(float)
        if not np.all(np.isfinite(arr)):
            raise ValueError("constraints: the contrast matrix has non-finite entries")
        return arr
    raise ValueError("constraints: give coefficient indices or a q x p contrast matrix")


def wald_test(
    rv: RobustVcov,
    beta: np.ndarray | None,
    constraints: Sequence[int] | np.ndarray,
    *,
    test: str = "HTZ",
) -> WaldTest:
    """Robust Wald test of :math:`H_0: C\\beta = 0` with the HTZ small-sample correction.

    As clubSandwich's ``Wald_test(..., test="HTZ")`` (Tipton and Pustejovsky 2015; Pustejovsky
    and Tipton 2018, section 3.2): the Wald statistic
    :math:`Q = (C\\hat\\beta)'(CV^RC')^{-1}C\\hat\\beta` is approximated as Hotelling's
    :math:`T^2` with :math:`\\nu` degrees of freedom,

    .. math::

        F = \\delta\\,Q/q \\sim F(q,\\ \\nu - q + 1), \\qquad \\delta = \\frac{\\nu - q + 1}{\\nu},
        \\qquad \\nu = \\frac{q(q+1)}{\\sum_{s,t}\\operatorname{Var}_{st}},

    where, with :math:`\\Omega = \\sum_j P_{jj}` and :math:`B_{jk} = \\Omega^{-1/2} P_{jk}
    \\Omega^{-1/2}` (the P matrices of the contrast),
    :math:`\\operatorname{Var}_{st} = \\sum_{j,k} (B_{jk}[s,t] B_{jk}[t,s] + B_{jk}[s,s]
    B_{jk}[t,t])`. ``delta`` is truncated at 0; the p value is NaN when
    :math:`\\nu - q + 1 \\le 0`.

    Parameters
    ----------
    rv : the result of :func:`robust_vcov`.
    beta : (p,) coefficients; None uses ``rv.beta``.
    constraints : 0-based indices of coefficients to constrain to zero (clubSandwich's
        ``constrain_zero``, whose R indices are 1-based), or a q x p contrast matrix C.
    test : only ``"HTZ"`` is implemented.
    """
    if test != "HTZ":
        raise ValueError(f"only test='HTZ' is implemented, got {test!r}")
    p = rv.vcov.shape[0]
    beta = rv.beta if beta is None else np.asarray(beta, dtype=float).reshape(-1)
    if beta.shape != (p,):
        raise ValueError(f"beta must have {p} entries, got {beta.shape}")
    C = _constraint_matrix(constraints, p)
    q = C.shape[0]

    if np.linalg.matrix_rank(C) < q:
        raise ValueError(f"constraints: the {q} rows of the contrast matrix are linearly dependent")

    Cb = C @ beta
    CVC = C @ rv.vcov @ C.T
    try:
        L = np.linalg.cholesky(CVC)
    except np.linalg.LinAlgError as err:
        raise ValueError(
            "constraints: C V^R C' is not positive definite (too few clusters to estimate the "
            "robust covariance of these contrasts)"
        ) from err
    z = np.linalg.solve(L, Cb)
    Q = float(z @ z)

    d, left, right = _contrast_pieces(rv, C)
    Omega = _p_trace(d, left, right)
    N = _matrix_power(Omega, -0.5)
    d = N @ d @ N
    left = np.einsum("st,jtm->jsm", N, left)
    right = np.einsum("st,jtm->jsm", N, right)
    T = _p_cross(d, left, right)
    ii = np.arange(q)
    var_mat = (
        T[ii[:, None], ii[None, :], ii[None, :], ii[:, None]]
        + T[ii[:, None], ii[:, None], ii[None, :], ii[None, :]]
    )
    nu = q * (q + 1) / var_mat.sum()
    df_denom = nu - q + 1
    delta = max(df_denom / nu, 0.0)
    fstat = delta * Q / q
    p_val = float(dist.f_sf(fstat, q, df_denom)) if df_denom > 0 else float("nan")
    return WaldTest(
        test="HTZ",
        type=rv.type,
        fstat=float(fstat),
        delta=float(delta),
        df_num=q,
        df_denom=float(df_denom),
        p_val=p_val,
        constraints=C,
    )


# ---------------------------------------------------------------------------------------------
# a fitted model plus the sandwich
# ---------------------------------------------------------------------------------------------


def robust_result(
    result: MetaResult,
    cluster: str | None = None,
    type: str = "CR2",
    level: float | None = None,
) -> RobustResult:
    """Cluster-robust inference for a fitted model: its GLS coefficients with a sandwich.

    The model supplies the coefficients and its fitted marginal covariance :math:`V_j` per cluster
    (:meth:`MetaResult.cluster_blocks`); :func:`robust_vcov` and :func:`coef_test` give the
    sandwich, the t tests and the intervals. With ``rho`` in the fit this is the
    correlated-and-hierarchical-effects (CHE) working model with CR2 inference (Pustejovsky &
    Tipton 2022), as clubSandwich 0.5.8's ``coef_test``, ``conf_int`` and ``Wald_test`` on an
    ``rma.mv`` fit.

    Parameters
    ----------
    result : the fitted working model
    cluster : clustering column (default: the outermost random level; each row in a one-level
        model)
    type : ``"CR2"`` (default), ``"CR0"``, ``"CR1"``, ``"CR1p"`` or ``"CR1S"``
    level : confidence level (default: the model's)

    Raises
    ------
    ModelError
        for an unknown sandwich type, an unknown cluster column or fewer than two clusters.

    References
    ----------
    Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance estimation:
    expanding the range of working models. *Prevention Science*, 23, 425-438.
    """
    if type not in CR_TYPES:
        raise ModelError(f"type must be one of {CR_TYPES}, not {type!r}")
    level = result.level if level is None else float(level)
    level = level / 100.0 if level > 1 else level
    if not 0 < level < 1:
        raise ModelError(f"level must be in (0, 1), got {level}")
    blocks = result.cluster_blocks(cluster)
    if len(blocks) < 2:
        raise ModelError(f"cluster-robust variance needs at least 2 clusters, got {len(blocks)}")
    if cluster is None:
        cluster = result.random[0] if result.multilevel else "row"
    rv = robust_vcov(blocks, result.b, type=type)
    return coef_test(rv, result.b, result.coef_names, level=level, cluster=cluster)
