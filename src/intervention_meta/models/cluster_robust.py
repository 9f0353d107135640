"""Cluster-robust inference for a fitted model: the working model plus a sandwich in one call.

``fit(data, random=["study", "es"], rho=0.6).robust()`` is the correlated-and-hierarchical-effects
(CHE) working model with CR2 inference (Pustejovsky & Tipton 2022): the model supplies the GLS
coefficients and its fitted marginal covariance :math:`V_j` per cluster, and
:mod:`intervention_meta.models.robust` turns them into the bias-reduced sandwich

.. math:: V^{CR2} = M\\Big(\\sum_j X_j^\\top W_j A_j e_j e_j^\\top A_j W_j X_j\\Big)M,
          \\qquad M = (X^\\top W X)^{-1},\\ W_j = V_j^{-1},
          \\ A_j = \\text{the CR2 adjustment (Bell \\& McCaffrey 2002)},

with t tests on Satterthwaite degrees of freedom (Pustejovsky & Tipton 2018) and the HTZ Wald
test of several coefficients (Tipton & Pustejovsky 2015), as clubSandwich 0.5.8's ``coef_test``,
``conf_int`` and ``Wald_test`` on an ``rma.mv`` fit. The clusters are the outermost random level
unless another column is named.

References
----------
Bell, R. M., & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear regression
with multi-stage samples. *Survey Methodology*, 28, 169-181.
Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. *JBES*, 36, 672-683.
Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance estimation: expanding
the range of working models. *Prevention Science*, 23, 425-438.
Tipton, E., & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of moderators and model
fit using robust variance estimation in meta-regression. *JEBS*, 40, 604-634.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intervention_meta.models import robust as sandwich
from intervention_meta.models.errors import ModelError
from intervention_meta.models.inference import resolve_btt
from intervention_meta.models.results import MetaResult, jsonable


@dataclass(frozen=True)
class RobustResult:
    """Cluster-robust coefficient table of a fitted model.

    Attributes
    ----------
    type : the sandwich (``"CR2"`` by default; see :data:`intervention_meta.models.robust.CR_TYPES`)
    cluster : the clustering column
    n_clusters : number of clusters
    coef_names, b : the model's coefficients
    se : robust standard errors
    tval, df, pval : t statistics, Satterthwaite degrees of freedom and two-sided p values
    ci_lb, ci_ub : confidence limits :math:`b \\pm t_{df, 1-\\alpha/2}\\,se`
    level : confidence level
    vcov : robust covariance matrix of the coefficients
    """

    type: str
    cluster: str
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
    _rv: sandwich.RobustVcov = field(repr=False, compare=False)

    def wald(
        self, btt: Sequence[int | str] | int | str | np.ndarray, test: str = "HTZ"
    ) -> sandwich.WaldTest:
        """Robust Wald test that the coefficients ``btt`` are zero, or of a contrast matrix.

        ``btt``: coefficient positions or names (clubSandwich ``constrain_zero``), or a q x p
        contrast matrix C for :math:`H_0: C\\beta = 0`. Only the HTZ test is implemented.
        """
        arr = np.asarray(btt) if not isinstance(btt, str) else None
        if arr is not None and arr.ndim == 2:
            constraints = arr
        else:
            constraints = np.asarray(resolve_btt(btt, self.coef_names), dtype=np.int64)
        return sandwich.wald_test(self._rv, self.b, constraints, test=test)

    def to_dict(self) -> dict:
        out = {}
        for name in (
            "type", "cluster", "n_clusters", "coef_names", "b", "se", "tval", "df", "pval",
            "ci_lb", "ci_ub", "level", "vcov",
        ):  # fmt: skip
            out[name] = jsonable(getattr(self, name))
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: estimate, se, tval, df, pval, ci_lb, ci_ub."""
        return pd.DataFrame(
            {
                "estimate": self.b,
                "se": self.se,
                "tval": self.tval,
                "df": self.df,
                "pval": self.pval,
                "ci_lb": self.ci_lb,
                "ci_ub": self.ci_ub,
            },
            index=pd.Index(self.coef_names, name="coefficient"),
        )


def robust_result(
    result: MetaResult,
    type: str = "CR2",
    cluster: str | None = None,
    level: float | None = None,
) -> RobustResult:
    """Cluster-robust (sandwich) inference for a fitted model; see the module docstring.

    Parameters
    ----------
    result : the fitted working model
    type : ``"CR2"`` (default), ``"CR0"``, ``"CR1"``, ``"CR1p"`` or ``"CR1S"``
    cluster : clustering column (default: the outermost random level; each row in a one-level model)
    level : confidence level (default: the model's)

    Raises
    ------
    ModelError
        for an unknown sandwich type, an unknown cluster column or fewer than two clusters.
    """
    if type not in sandwich.CR_TYPES:
        raise ModelError(f"type must be one of {sandwich.CR_TYPES}, not {type!r}")
    level = result.level if level is None else float(level)
    level = level / 100.0 if level > 1 else level
    if not 0 < level < 1:
        raise ModelError(f"level must be in (0, 1), got {level}")
    blocks = result.cluster_blocks(cluster)
    if len(blocks) < 2:
        raise ModelError(f"cluster-robust variance needs at least 2 clusters, got {len(blocks)}")
    rv = sandwich.robust_vcov(blocks, result.b, type=type)
    ct = sandwich.coef_test(rv, result.b, list(result.coef_names), level=level)
    if cluster is not None:
        name = cluster
    elif result.multilevel:
        name = result.random[0]
    else:
        name = "row"
    return RobustResult(
        type=type,
        cluster=name,
        n_clusters=len(blocks),
        coef_names=tuple(result.coef_names),
        b=np.asarray(result.b, dtype=float),
        se=ct.se,
        tval=ct.tstat,
        df=ct.df_satt,
        pval=ct.p_satt,
        ci_lb=ct.ci_lower,
        ci_ub=ct.ci_upper,
        level=level,
        vcov=rv.vcov,
        _rv=rv,
    )
