"""Result objects of a meta-analytic model fit (small frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable
from intervention_meta.models.blocks import ClusterBlock
from intervention_meta.models.design import Design
from intervention_meta.models.errors import ModelError
from intervention_meta.models.heterogeneity import QProfileCI, VarianceDistribution
from intervention_meta.models.inference import (
    WaldTest,
    critical_value,
    resolve_btt,
    wald_test,
)
from intervention_meta.models.likelihood import BlockStructure
from intervention_meta.models.optimize import Convergence

if TYPE_CHECKING:  # imported lazily at run time (these modules import this one)
    from intervention_meta.models.profile import ProfileCI
    from intervention_meta.models.robust import RobustResult


@dataclass(frozen=True)
class Prediction:
    """Predicted (average) effects with confidence and prediction intervals (metafor ``predict``).

    :math:`\\mathrm{pi} = \\mathrm{pred} \\pm \\mathrm{crit}\\sqrt{\\mathrm{se}^2 + \\sum\\sigma^2}`
    with crit from N(0, 1) for z tests and :math:`t_{k-p}` for t/knha tests.
    """

    pred: np.ndarray
    se: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    pi_lb: np.ndarray
    pi_ub: np.ndarray
    level: float

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {n: getattr(self, n) for n in ("pred", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub")}
        )


@dataclass(frozen=True)
class LevelTest:
    """Likelihood-ratio test of one random level: full model vs. that level's variance fixed at 0.

    ``pval`` is anova.rma's (chi-square, df 1, not halved); ``pval_halved`` is the
    boundary-corrected
    value (a 50:50 mixture of chi-square(0) and chi-square(1); Self & Liang 1987).
    """

    level: str
    sigma2_full: dict[str, float]
    sigma2_reduced: dict[str, float]
    loglik_full: float
    loglik_reduced: float
    lrt: float
    df: int
    pval: float
    pval_halved: float
    parms_full: int
    parms_reduced: int
    fit_stats_reduced: dict[str, float]
    b_reduced: np.ndarray
    se_reduced: np.ndarray
    converged_reduced: bool

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class ModelState:
    """What a result needs to rebuild blocks, predict or refit (not part of ``to_dict``).

    ``fixed`` holds the fixed variance components (NaN = estimated) and ``control`` the estimation
    settings of the fit, so that profile likelihoods, permutation tests and comparisons refit the
    model exactly as it was fitted; ``ll_sat`` (the saturated log-likelihood) serves the level
    tests, computed on request.
    """

    design: Design
    structure: BlockStructure
    theta: np.ndarray
    fixed: np.ndarray | None = None
    control: Any = None
    ll_sat: float | None = None


#: the results computed on request, with the field each follows in ``to_dict``
_EXTRAS = (
    ("R2", "vt"),
    ("confint", "R2"),
    ("prediction", "confint"),
    ("variance_distribution", "prediction"),
    ("level_tests", "variance_distribution"),
)


@dataclass(frozen=True)
class MetaResult:
    """A fitted (multilevel) meta-analytic model.

    Variance components are named by their level: ``sigma2["study_id"]`` for a multilevel model;
    ``tau2`` for the one-level model. ``zval`` is set for z tests and ``tval`` (with ``dfs``) for
    t / knha tests. ``QM`` tests ``btt`` (all coefficients but the intercept; the intercept in an
    intercept-only model) and is chi-square (``QMdf = (m, None)``) or F (``QMdf = (m, k - p)``).
    Fit statistics are REML ones for REML fits, ML ones otherwise (``fit_stats_type``).

    Three results that need more model fits are computed on first access and then kept:
    :attr:`R2` (refits the intercept-only model), :attr:`confint` (the Q-profile CI) and
    :attr:`level_tests` (refits each level's reduced model); a caller that does not read them
    does not pay for them. So are :attr:`prediction` and :attr:`variance_distribution`.
    :meth:`to_dict` includes them.
    """

    k: int
    p: int
    method: str
    test: str
    level: float
    coef_names: tuple[str, ...]
    b: np.ndarray
    se: np.ndarray
    zval: np.ndarray | None
    tval: np.ndarray | None
    dfs: np.ndarray | None
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    vb: np.ndarray
    btt: tuple[int, ...]
    QE: float
    QEp: float
    QE_df: int
    QM: float
    QMp: float
    QMdf: tuple[int, float | None]
    random: tuple[str, ...]
    tau2: float | None
    se_tau2: float | None
    sigma2: dict[str, float]
    n_levels: dict[str, int]
    variance_fixed: dict[str, bool]
    rho: float | None
    s2w: float | None
    parms: int
    fit_stats_type: str
    logLik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    fit_stats: dict[str, dict[str, float]]
    I2: float | None
    H2: float | None
    vt: float | None
    weights_pct: np.ndarray | None
    n_dropped: int
    dropped_rows: tuple
    convergence: Convergence
    _state: ModelState = field(repr=False, compare=False)

    # ----------------------------------------------------- extras, computed on request
    @cached_property
    def R2(self) -> float | None:  # noqa: N802 (metafor's name)
        """Pseudo-R^2 in % (moderator models; None otherwise); see the fitting module."""
        from intervention_meta.models.fitting import pseudo_r2

        return pseudo_r2(self)

    @cached_property
    def confint(self) -> QProfileCI | None:
        """Q-profile CI of tau^2, I^2 and H^2 (one-level random-effects models; None otherwise)."""
        from intervention_meta.models.fitting import q_profile

        return q_profile(self)

    @cached_property
    def prediction(self) -> Prediction | None:
        """The average effect with its CI and PI (intercept-only models; None otherwise)."""
        return self.predict() if self._state.design.intercept_only else None

    @cached_property
    def variance_distribution(self) -> VarianceDistribution | None:
        """Multilevel I^2: the shares of the total variance by level (multilevel models)."""
        from intervention_meta.models.fitting import multilevel_variance_distribution

        return multilevel_variance_distribution(self)

    @cached_property
    def level_tests(self) -> tuple[LevelTest, ...]:
        """Likelihood-ratio test of each estimated random level (multilevel models; else empty)."""
        from intervention_meta.models.fitting import level_tests

        return level_tests(self)

    # ------------------------------------------------------------------ views
    @property
    def converged(self) -> bool:
        return self.convergence.converged

    @property
    def multilevel(self) -> bool:
        return bool(self.random)

    @property
    def total_variance_components(self) -> float:
        return float(sum(self.sigma2.values())) if self.multilevel else float(self.tau2 or 0.0)

    @property
    def stat(self) -> np.ndarray:
        return self.zval if self.zval is not None else self.tval

    def to_dict(self) -> dict:
        """All results as plain JSON-able types (lists, floats, None for NaN)."""
        names = [f.name for f in fields(self) if not f.name.startswith("_")]
        for name, after in _EXTRAS:
            names.insert(names.index(after) + 1, name)
        out = {name: jsonable(getattr(self, name)) for name in names}
        out["converged"] = self.converged
        return out

    def to_frame(self) -> pd.DataFrame:
        """Coefficient table, one row per coefficient.

        Columns: estimate, se, zval, pval, ci_lb, ci_ub for z tests; estimate, se, tval, df, pval,
        ci_lb, ci_ub for t / knha tests.
        """
        columns = {"estimate": self.b, "se": self.se}
        if self.zval is not None:
            columns["zval"] = self.zval
        else:
            columns["tval"] = self.tval
            columns["df"] = self.dfs
        columns.update({"pval": self.pval, "ci_lb": self.ci_lb, "ci_ub": self.ci_ub})
        return pd.DataFrame(columns, index=pd.Index(self.coef_names, name="coefficient"))

    # ------------------------------------------------------------ operations
    def wald(self, btt: Sequence[int | str] | int | str) -> WaldTest:
        """Omnibus Wald test that the coefficients ``btt`` (positions or names) are all zero."""
        idx = resolve_btt(btt, self.coef_names)
        df = float(self.k - self.p) if self.test != "z" else None
        return wald_test(self.b, self.vb, idx, self.coef_names, test=self.test, df=df)

    def predict(self, newmods: pd.DataFrame | np.ndarray | None = None) -> Prediction:
        """Predicted average effects, as metafor's ``predict()``.

        ``newmods``: ``None`` (intercept-only model: the pooled effect; moderator model: the fitted
        value of every row), a DataFrame with the moderator columns (coded as in the fit), or an
        array of model-matrix rows without (``p - 1`` columns, intercept added) or with the
        intercept column (``p`` columns).
        """
        design = self._state.design
        if newmods is None:
            Xn = np.ones((1, 1)) if design.intercept_only else design.X
        elif isinstance(newmods, pd.DataFrame):
            Xn = design.encode(newmods)
        else:
            Xn = np.atleast_2d(np.asarray(newmods, dtype=float))
            if design.intercept and Xn.shape[1] == self.p - 1:
                Xn = np.column_stack([np.ones(len(Xn)), Xn])
            if Xn.shape[1] != self.p:
                raise ModelError(f"newmods must have {self.p} (or {self.p - 1}) columns")
        pred = Xn @ self.b
        se = np.sqrt(np.einsum("ij,jk,ik->i", Xn, self.vb, Xn))
        df = float(self.k - self.p) if self.test != "z" else None
        crit = critical_value(self.test, df, self.level)
        pi_se = np.sqrt(se**2 + self.total_variance_components)
        return Prediction(
            pred=pred,
            se=se,
            ci_lb=pred - crit * se,
            ci_ub=pred + crit * se,
            pi_lb=pred - crit * pi_se,
            pi_ub=pred + crit * pi_se,
            level=self.level,
        )

    def confint_profile(self, level: float | None = None, **kwargs: Any) -> ProfileCI:
        """Profile-likelihood CIs of the variance components (metafor ``confint()``).

        See :func:`intervention_meta.models.profile.profile_ci` (keyword arguments are passed on).
        """
        from intervention_meta.models.profile import profile_ci

        return profile_ci(self, level, **kwargs)

    def robust(
        self, cluster: str | None = None, type: str = "CR2", level: float | None = None
    ) -> RobustResult:
        """Cluster-robust coefficient table (Satterthwaite df) with ``wald(constraints)`` (HTZ).

        See :func:`intervention_meta.models.robust.robust_result`; with ``rho`` in the fit this is
        the CHE working model with CR2 inference (Pustejovsky & Tipton 2022). Computed once per
        ``(cluster, type, level)`` and then kept with the result.
        """
        from intervention_meta.models.robust import robust_result

        kept = self.__dict__.setdefault("_robust", {})
        key = (cluster, type, level)
        if key not in kept:
            kept[key] = robust_result(self, cluster=cluster, type=type, level=level)
        return kept[key]

    def cluster_blocks(
        self, cluster: str | None = None, theta: np.ndarray | None = None
    ) -> list[ClusterBlock]:
        """Per-cluster rows, X, y and fitted marginal covariance, for robust (CR2) variance.

        ``cluster=None`` uses the outermost random level (each row its own cluster in a one-level
        model); a column name clusters by that column instead (the marginal covariance of rows of
        the same cluster that lie in different outermost units is zero). ``theta``: the variance
        components (one per random level, outermost first; ``[tau2]`` for a one-level model) at
        which the marginal covariance is formed, instead of the fitted ones.
        """
        st, design = self._state.structure, self._state.design
        V_groups = st.marginal_blocks(self._state.theta if theta is None else theta)
        row_group = np.empty(st.k, dtype=np.int64)
        row_block = np.empty(st.k, dtype=np.int64)
        row_pos = np.empty(st.k, dtype=np.int64)
        for gi, g in enumerate(st.groups):
            row_group[g.index] = gi
            row_block[g.index] = np.arange(g.index.shape[0])[:, None]
            row_pos[g.index] = np.arange(g.n)[None, :]
        if cluster is None:
            if design.random:
                ids = design.data[design.random[0]].to_numpy()
            else:
                ids = design.data.index.to_numpy()
            codes = st.block_codes
            _, firsts = np.unique(codes, return_index=True)
            cluster_ids = ids[firsts]
        else:
            if cluster not in design.data.columns:
                raise ModelError(f"cluster column {cluster!r} not in the data")
            col = design.data[cluster]
            if col.isna().any():
                raise ModelError(f"cluster column {cluster!r} has missing values in the model rows")
            codes, uniques = pd.factorize(col, sort=True)
            cluster_ids = np.asarray(uniques)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        out = []
        for c, rows in enumerate(np.split(order, bounds)):
            rows = np.sort(rows)
            n = len(rows)
            key = row_group[rows] * (st.n_blocks + 1) + row_block[rows]
            V = np.zeros((n, n))
            for kv in np.unique(key):
                sub = np.flatnonzero(key == kv)
                r0 = rows[sub[0]]
                Vb = V_groups[row_group[r0]][row_block[r0]]
                pos = row_pos[rows[sub]]
                V[np.ix_(sub, sub)] = Vb[np.ix_(pos, pos)]
            out.append(
                ClusterBlock(
                    cluster=cluster_ids[c].item()
                    if isinstance(cluster_ids[c], np.generic)
                    else cluster_ids[c],
                    index=rows,
                    X=design.X[rows],
                    y=design.y[rows],
                    V=V,
                )
            )
        return out

    # --------------------------------------------------------------- display
    def summary(self) -> str:
        """A readable text summary (model, variance components, heterogeneity, coefficients)."""
        lines = []
        kind = (
            "Multilevel"
            if self.multilevel
            else ("Fixed-effects" if self.method in ("FE", "EE") else "Random-effects")
        )
        lines.append(f"{kind} meta-analytic model (k = {self.k}; method: {self.method})")
        if self.n_dropped:
            lines.append(f"  {self.n_dropped} row(s) with missing values dropped")
        if self.rho is not None:
            lines.append(f"  sampling errors correlated within {self.random[0]}: rho = {self.rho}")
        fs = self.fit_stats_type
        lines.append(
            f"  logLik ({fs}) = {self.logLik:.4f}  deviance = {self.deviance:.4f}  "
            f"AIC = {self.AIC:.4f}  BIC = {self.BIC:.4f}  AICc = {self.AICc:.4f}"
        )
        lines.append("")
        if self.multilevel:
            lines.append("Variance components:")
            for name, s2 in self.sigma2.items():
                fixed = " (fixed)" if self.variance_fixed.get(name) else ""
                lines.append(
                    f"  sigma2[{name}] = {s2:.4f}  sqrt = {np.sqrt(s2):.4f}  "
                    f"n levels = {self.n_levels[name]}{fixed}"
                )
            if self.variance_distribution is not None:
                vd = self.variance_distribution
                shares = ", ".join(f"{n}: {v:.2f}%" for n, v in vd.i2.items())
                lines.append(
                    f"  variance distribution: {shares}, sampling: {vd.i2_sampling:.2f}% "
                    f"(I2 total {vd.i2_total:.2f}%)"
                )
            for lt in self.level_tests:
                lines.append(
                    f"  LRT sigma2[{lt.level}] = 0: LRT = {lt.lrt:.4f}, p = {lt.pval:.4g} "
                    f"(halved {lt.pval_halved:.4g})"
                )
        elif self.method not in ("FE", "EE"):
            se = f" (SE = {self.se_tau2:.4f})" if self.se_tau2 is not None else ""
            lines.append(f"tau^2 = {self.tau2:.4f}{se}  tau = {np.sqrt(self.tau2):.4f}")
        if self.I2 is not None:
            lines.append(f"I^2 = {self.I2:.2f}%  H^2 = {self.H2:.4f}")
        if self.R2 is not None:
            lines.append(f"R^2 (variance accounted for) = {self.R2:.2f}%")
        lines.append(f"Q_E({self.QE_df}) = {self.QE:.4f}, p = {self.QEp:.4g}")
        if self.QMdf[1] is None:
            lines.append(f"Q_M({self.QMdf[0]}) = {self.QM:.4f}, p = {self.QMp:.4g}")
        else:
            lines.append(f"F({self.QMdf[0]}, {self.QMdf[1]:g}) = {self.QM:.4f}, p = {self.QMp:.4g}")
        lines.append("")
        lines.append(self.to_frame().to_string(float_format=lambda x: f"{x:.4f}"))
        if not self.converged:
            lines.append(f"WARNING: not converged ({self.convergence.reason})")
        return "\n".join(lines)
