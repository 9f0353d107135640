"""Marginal means per factor level and joint Wald tests per model term (emmeans semantics).

**Marginal means.** The reference grid is every combination of the model's factor levels
(:meth:`.design.Design.grid`), each weighted equally (emmeans' default ``weights = "equal"``). The
marginal mean of level :math:`a` of factor :math:`A` (within level :math:`b` of ``by``) averages the
grid rows :math:`x_r` with :math:`A = a` (and ``by`` = :math:`b`):

* binomial and gaussian models, on the link scale: :math:`\\hat m = \\bar x^\\top\\hat\\beta`,
  :math:`\\mathrm{se} = \\sqrt{\\bar x^\\top V \\bar x}`, interval :math:`\\hat m \\pm z_{1-
  \\alpha/2}\\mathrm{se}`, then back-transformed (the inverse logit gives probabilities; identity
  for the LMM) -- ``summary(emmeans(fit, ~ A | B), type = "response")``;
* the cumulative logit model, on the mean-score scale (emmeans ``mode = "mean.class"``): each grid
  row's expected score :math:`m_r = s_1 + \\sum_{j<K} (s_{j+1} - s_j)\\{1 - F(\\theta_j -
  x_r^\\top\\beta)\\}` is averaged over the rows, its standard error by the delta method over
  :math:`(\\theta, \\beta)`, the interval symmetric. The scores :math:`s_k` are the numeric
  categories (emmeans uses :math:`1, \\dots, K`: the same for a 1..K Likert scale) or
  :math:`1, \\dots, K` for text categories.

For the GLMM the back-transformed means are conditional on a random intercept of zero (a
"typical" respondent), not population-averaged, as emmeans gives them; the GEE's are
population-averaged. The intervals are asymptotic (z), as emmeans' for glmer, geeglm, clm, and
for lmer with ``emm_options(lmer.df = "asymptotic")``. For the GEE the covariance is the robust
one, as emmeans uses for geeglm.

**Joint tests.** For each factor and each interaction the hypothesis that all of its contrasts
among the marginal means are zero -- for factor :math:`A`, :math:`C_A M_A\\beta = 0`; for
:math:`A{:}B`, :math:`(C_A \\otimes C_B) M_{AB}\\beta = 0` -- with :math:`M` the equally weighted
cell means of the term's factors and :math:`C` the differences from the first level. The Wald
statistic :math:`X^2 = (L\\hat\\beta)^\\top (L V L^\\top)^{-1} L\\hat\\beta` is referred to
:math:`\\chi^2_{\\mathrm{rank}(L)}`. These are ``emmeans::joint_tests`` (which reports
:math:`F = X^2/\\mathrm{df}` with ``df2 = Inf``), i.e. type III tests for the equally weighted
means; for the cumulative logit model on the latent (linear-predictor) scale.

References
----------
Lenth, R. V. (2023). emmeans: Estimated Marginal Means, aka Least-Squares Means. R package 1.8.4
(vignettes "basics", "models": ordinal models, ``mode = "mean.class"``).
Searle, S. R., Speed, F. M., & Milliken, G. A. (1980). Population marginal means in the linear
model. *The American Statistician*, 34, 216-221.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from intervention_meta.models.distributions import chi2_sf, norm_isf

if TYPE_CHECKING:
    from intervention_meta.vignette.models import VignetteFit

SCALES = {"binomial": "probability", "gaussian": "mean", "ordinal": "mean_score"}


@dataclass(frozen=True)
class MarginalMeans:
    """Marginal means of one factor's levels (within each level of ``by``)."""

    model: str
    outcome: str
    factor: str
    by: str | None
    levels: tuple[str, ...]
    by_levels: tuple[str | None, ...]
    link_estimate: np.ndarray
    se: np.ndarray
    estimate: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    scale: str
    level: float

    def to_frame(self) -> pd.DataFrame:
        """One row per level: factor, level, by_level, estimate, se, ci_lb, ci_ub, scale,
        link_estimate (``se`` is on the link scale, except the mean score's own)."""
        return pd.DataFrame(
            {
                "factor": self.factor,
                "level": list(self.levels),
                "by_level": list(self.by_levels),
                "estimate": self.estimate,
                "se": self.se,
                "ci_lb": self.ci_lb,
                "ci_ub": self.ci_ub,
                "scale": self.scale,
                "link_estimate": self.link_estimate,
            }
        )

    def to_dict(self) -> dict:
        """JSON-ready: the facts and one record per level."""
        return {
            "model": self.model,
            "outcome": self.outcome,
            "factor": self.factor,
            "by": self.by,
            "scale": self.scale,
            "level": self.level,
            "means": self.to_frame().drop(columns=["factor", "scale"]).to_dict(orient="records"),
        }


def _cells(
    fit: VignetteFit, names: tuple[str, ...]
) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
    """The cells of the factors ``names`` (first slowest), the equal weights of the grid rows
    in each cell (cells x rows) and the grid's design matrix."""
    design = fit.design
    for name in names:
        if name not in design.factors:
            raise ValueError(f"{name!r} is not a factor of the model: {list(design.factors)}")
    grid = design.grid()
    x = design.matrix(grid)
    cells = list(itertools.product(*(design.factors[n] for n in names)))
    keys = list(zip(*(grid[n] for n in names), strict=True))
    index = {c: i for i, c in enumerate(cells)}
    which = np.array([index[k] for k in keys])
    weights = np.zeros((len(cells), len(grid)))
    weights[which, np.arange(len(grid))] = 1.0
    weights /= weights.sum(axis=1, keepdims=True)
    return cells, weights, x


def marginal_means(
    fit: VignetteFit,
    frame: pd.DataFrame | None = None,
    factor: str = "",
    by: str | None = None,
    level: float | None = None,
) -> MarginalMeans:
    """Equally weighted marginal means of ``factor``'s levels (within each level of ``by``).

    ``frame`` (the data) is accepted for a uniform call but not needed: with equal weights the
    reference grid comes from the fit's factor levels alone. ``level`` defaults to the fit's.
    """
    level = fit.level if level is None else level
    names = (factor,) if by is None else (by, factor)
    if by == factor:
        raise ValueError(f"by ({by!r}) must differ from the factor")
    cells, weights, x = _cells(fit, names)
    crit = norm_isf((1 - level) / 2)
    if fit.family == "ordinal":
        est, se = _mean_scores(fit, weights, x[:, 1:])
        link, lo, hi = est, est - crit * se, est + crit * se
    else:
        beta = np.asarray(fit.estimate)
        xbar = weights @ x
        link = xbar @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", xbar, fit.vcov, xbar))
        inv = special.expit if fit.family == "binomial" else (lambda v: v)
        est, lo, hi = inv(link), inv(link - crit * se), inv(link + crit * se)
    levels = tuple(c[-1] for c in cells)
    by_levels = tuple(c[0] for c in cells) if by is not None else (None,) * len(cells)
    return MarginalMeans(
        model=fit.model,
        outcome=fit.outcome,
        factor=factor,
        by=by,
        levels=levels,
        by_levels=by_levels,
        link_estimate=np.asarray(link),
        se=np.asarray(se),
        estimate=np.asarray(est),
        ci_lb=np.asarray(lo),
        ci_ub=np.asarray(hi),
        scale=SCALES[fit.family],
        level=level,
    )


def _mean_scores(
    fit: VignetteFit, weights: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean scores of the grid rows ``x`` (no intercept) averaged with ``weights`` per cell, with
    delta-method SEs over (thresholds, coefficients)."""
    theta = np.array([t[1] for t in fit.thresholds])
    beta = np.asarray(fit.estimate)
    steps = np.diff(np.asarray(fit.scores))
    cdf = special.expit(theta[None, :] - (x @ beta)[:, None])  # (rows, K-1)
    dens = cdf * (1 - cdf)
    mean_row = fit.scores[0] + (1 - cdf) @ steps
    grad_row = np.hstack([-dens * steps[None, :], (dens @ steps)[:, None] * x])
    est = weights @ mean_row
    grad = weights @ grad_row
    se = np.sqrt(np.einsum("ij,jk,ik->i", grad, fit.vcov_full, grad))
    return est, se


def factor_tests(fit: VignetteFit) -> pd.DataFrame:
    """Joint Wald tests of each factor and interaction (``emmeans::joint_tests``).

    Columns: term (``"style"``, ``"role:style"``), df, statistic (the Wald chi-square), f_ratio
    (statistic / df, emmeans' ``F.ratio`` with ``df2 = Inf``), p, kind (``"wald_chi2"``).
    """
    beta = np.asarray(fit.estimate)
    terms = [(name,) for name in fit.factors] + [tuple(p) for p in fit.interactions]
    rows = []
    for names in terms:
        _, weights, x = _cells(fit, names)
        xbar = weights @ x
        contrast = np.ones((1, 1))
        for name in names:
            k = len(fit.factors[name])
            contrast = np.kron(contrast, np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)]))
        lmat = contrast @ xbar
        if fit.family == "ordinal":
            lmat = lmat[:, 1:]
        est = lmat @ beta
        cov = lmat @ fit.vcov @ lmat.T
        vals, vecs = np.linalg.eigh(cov)
        keep = vals > vals.max() * 1e-10
        proj = vecs[:, keep].T @ est
        stat = float(np.sum(proj**2 / vals[keep]))
        df = int(keep.sum())
        rows.append(
            {
                "term": ":".join(names),
                "df": df,
                "statistic": stat,
                "f_ratio": stat / df,
                "p": chi2_sf(stat, df),
                "kind": "wald_chi2",
            }
        )
    return pd.DataFrame(rows)
