"""The vignette study's regression models: one entry point, four models, one result type.

:func:`fit_vignette_model` fits, to ratings clustered by respondent,

=========  ==========  ====================================================================
model      family      what, and the R call it reproduces (``tests/reference/vignette``)
=========  ==========  ====================================================================
``gee``    binomial    population-averaged logistic model, exchangeable working correlation,
                       robust (sandwich) SEs: ``geepack::geeglm(y ~ ..., family = binomial,
                       id = cluster, corstr = "exchangeable")``
``glmm``   binomial    random-intercept logistic GLMM by ML, Laplace (``nagq = 1``) or
                       adaptive Gauss-Hermite quadrature: ``lme4::glmer(y ~ ... + (1 | cluster),
                       family = binomial, nAGQ = nagq)`` (:mod:`.glmm`)
``lmm``    gaussian    random-intercept linear mixed model by REML:
                       ``lme4::lmer(y ~ ... + (1 | cluster), REML = TRUE)`` (:mod:`.lmm`)
``clm``    ordinal     proportional-odds cumulative logit: ``ordinal::clm(factor(y, ordered =
                       TRUE) ~ ..., link = "logit")`` (:mod:`.ordinal`); ``robust=True`` for
                       respondent-clustered sandwich SEs
=========  ==========  ====================================================================

All predictors are categorical, treatment-coded against each factor's first level
(:mod:`.design`). Tests and intervals of the coefficients are Wald z (normal) for every model,
also the LMM (no Satterthwaite or Kenward-Roger degrees of freedom: ``df`` is ``None``).

GEE: statsmodels' ``GEE`` with its ``Exchangeable`` structure, estimated as geepack does. Both
use Pearson residuals :math:`r_{ij} = (y_{ij} - \\hat\\mu_{ij})/\\sqrt{\\hat\\mu_{ij}(1 -
\\hat\\mu_{ij})}`; geepack's moment estimators have no degrees-of-freedom correction,

.. math::

    \\hat\\phi = \\frac{1}{N}\\sum_{ij} r_{ij}^2, \\qquad
    \\hat\\alpha = \\frac{\\sum_i \\sum_{j<k} r_{ij} r_{ik}}
    {\\hat\\phi \\sum_i n_i(n_i - 1)/2},

while statsmodels' defaults divide by :math:`N - p` and :math:`\\sum_i n_i(n_i-1)/2 - p`; fitting
with ``ddof_scale=0`` gives geepack's estimator exactly. The robust covariance is the
uncorrected sandwich (geepack's ``san.se``), which does not depend on :math:`\\hat\\phi`.

LMM: the REML criterion profiled to the variance ratio (:mod:`.lmm`), lme4's criterion.

References
----------
Liang, K.-Y., & Zeger, S. L. (1986). Longitudinal data analysis using generalized linear models.
*Biometrika*, 73, 13-22.
Halekoh, U., Højsgaard, S., & Yan, J. (2006). The R package geepack for generalized estimating
equations. *Journal of Statistical Software*, 15(2), 1-11.
Bates, D., Mächler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. *Journal of Statistical Software*, 67(1), 1-48.
Christensen, R. H. B. (2022). ordinal: Regression Models for Ordinal Data. R package 2022.11-16.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intervention_meta.models.distributions import norm_isf, norm_sf
from intervention_meta.vignette.design import (
    FAMILIES,
    Design,
    ModelSpec,
    check_rank,
    level_text,
    make_design,
    prepare,
)
from intervention_meta.vignette.marginal import MarginalMeans, factor_tests, marginal_means

log = logging.getLogger(__name__)

__all__ = ["VignetteFit", "fit_vignette_model", "marginal_means", "factor_tests", "MarginalMeans"]

MODELS = tuple(FAMILIES)


@dataclass(frozen=True)
class VignetteFit:
    """A fitted vignette model: coefficients with Wald z tests, variance components, fit facts.

    ``terms`` name the coefficients (``"(Intercept)"``, ``"style[permissive]"``,
    ``"role[professional]:style[permissive]"``; the cumulative logit model has no intercept, its
    ``thresholds`` are ``(name, estimate, se)`` triples named ``"1|2"``, ...). ``vcov`` is the
    coefficients' covariance; ``vcov_full`` that of ``(thresholds, coefficients)`` for ``clm``
    (else ``None``). ``variance_components`` are named by what they are: GEE ``{"alpha",
    "scale"}``, GLMM ``{"<cluster>_sd"}``, LMM ``{"<cluster>_sd", "residual_sd"}``.
    """

    model: str
    outcome: str
    family: str
    terms: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    level: float
    df: float | None
    vcov: np.ndarray
    variance_components: dict[str, float]
    thresholds: tuple[tuple[str, float, float], ...]
    loglik: float | None
    n_obs: int
    n_clusters: int
    converged: bool
    factors: dict[str, tuple[str, ...]]
    interactions: tuple[tuple[str, str], ...] = ()
    cluster: str = ""
    robust: bool = False
    nagq: int | None = None
    categories: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    vcov_full: np.ndarray | None = field(default=None, repr=False)

    @property
    def design(self) -> Design:
        """The design (factors, interactions, terms) the model was fitted with."""
        return make_design(self.factors, self.interactions)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: term, estimate, se, statistic, p, ci_lb, ci_ub."""
        return pd.DataFrame(
            {
                "term": list(self.terms),
                "estimate": self.estimate,
                "se": self.se,
                "statistic": self.statistic,
                "p": self.p,
                "ci_lb": self.ci_lb,
                "ci_ub": self.ci_ub,
            }
        )

    def to_dict(self) -> dict:
        """JSON-ready: the coefficients as a list of records plus the fit's facts."""
        return {
            "model": self.model,
            "outcome": self.outcome,
            "family": self.family,
            "level": self.level,
            "df": self.df,
            "test": "z",
            "coefficients": self.to_frame().to_dict(orient="records"),
            "vcov": np.asarray(self.vcov).tolist(),
            "variance_components": dict(self.variance_components),
            "thresholds": [{"name": n, "estimate": e, "se": s} for n, e, s in self.thresholds],
            "loglik": self.loglik,
            "n_obs": self.n_obs,
            "n_clusters": self.n_clusters,
            "converged": self.converged,
            "robust": self.robust,
            "nagq": self.nagq,
            "cluster": self.cluster,
            "factors": {k: list(v) for k, v in self.factors.items()},
            "interactions": [list(p) for p in self.interactions],
        }


def fit_vignette_model(
    frame: pd.DataFrame,
    *,
    model: str,
    outcome: str,
    factors: Mapping[str, Sequence[str]],
    cluster: str,
    covariates: Sequence[str] = (),
    interactions: Sequence[tuple[str, str]] = (),
    level: float = 0.95,
    nagq: int = 1,
    robust: bool = False,
) -> VignetteFit:
    """Fit one vignette model to ratings clustered by ``cluster``.

    Parameters
    ----------
    frame : DataFrame
        One row per rating.
    model : {"gee", "glmm", "lmm", "clm"}
        See the module's table.
    outcome : str
        The outcome column: 0/1 for ``gee``/``glmm``, numeric for ``lmm``, ordered categories
        (numbers, or an ordered pandas Categorical) for ``clm``.
    factors : mapping
        Factor column -> its levels, the first the reference (the respondent's role goes here too).
    cluster : str
        The respondent column.
    covariates : sequence of str
        Further categorical columns, levels from the data in sorted order.
    interactions : sequence of (str, str)
        Two-way interactions between factors, e.g. ``[("role", "style")]``.
    level : float
        Confidence level of the intervals.
    nagq : int
        GLMM only: 1 = Laplace, more = adaptive Gauss-Hermite nodes.
    robust : bool
        CLM only: respondent-clustered sandwich covariance instead of the model-based one.

    Raises
    ------
    InputError
        Missing columns, values outside a factor's levels, levels no row has, a constant or
        malformed outcome, a respondent with one rating, a term without data.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if robust and model != "clm":
        raise ValueError(
            "robust=True applies to the clm model (the GEE's SEs are robust already, the mixed "
            f"models' are model-based), not to {model!r}"
        )
    spec = ModelSpec(model, outcome, factors, cluster, covariates, interactions)
    data, design = prepare(frame, spec)
    x = design.matrix(data)
    check_rank(x, design)
    groups = data[cluster].to_numpy()
    n_clusters = int(pd.unique(groups).size)
    common = {
        "model": model,
        "outcome": outcome,
        "family": FAMILIES[model],
        "level": level,
        "df": None,
        "n_obs": len(data),
        "n_clusters": n_clusters,
        "factors": design.factors,
        "interactions": design.interactions,
        "cluster": cluster,
    }
    fitter = {"gee": _fit_gee, "glmm": _fit_glmm, "lmm": _fit_lmm, "clm": _fit_clm}[model]
    parts = fitter(
        data, x, groups, design, outcome=outcome, nagq=nagq, robust=robust, cluster=cluster
    )
    terms = parts.pop("terms", design.terms)
    est = np.asarray(parts.pop("estimate"), dtype=float)
    vcov = np.asarray(parts.pop("vcov"), dtype=float)
    se = np.sqrt(np.diag(vcov))
    z = est / se
    crit = norm_isf((1 - level) / 2)
    return VignetteFit(
        terms=tuple(terms),
        estimate=est,
        se=se,
        statistic=z,
        p=2 * norm_sf(np.abs(z)),
        ci_lb=est - crit * se,
        ci_ub=est + crit * se,
        vcov=vcov,
        **common,
        **parts,
    )


def _fit_gee(data, x, groups, design, *, outcome, **_) -> dict:
    import warnings

    from statsmodels.genmod import families
    from statsmodels.genmod.cov_struct import Exchangeable
    from statsmodels.genmod.generalized_estimating_equations import GEE

    y = data[outcome].to_numpy(dtype=float)
    _, codes = np.unique(groups, return_inverse=True)
    cov = Exchangeable()
    gee = GEE(y, x, groups=codes, family=families.Binomial(), cov_struct=cov)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gee.fit(maxiter=200, ctol=1e-10, ddof_scale=0)
    if res is None:
        raise ValueError(f"the GEE for {outcome!r} could not be estimated (singular covariance)")
    beta = np.asarray(res.params)
    mu = 1 / (1 + np.exp(-(x @ beta)))
    resid = (y - mu) / np.sqrt(mu * (1 - mu))
    converged = bool(res.converged)
    if not converged:
        log.warning("GEE for %r: no convergence in 200 iterations", outcome)
    return {
        "estimate": beta,
        "vcov": np.asarray(res.cov_robust),
        "variance_components": {
            "alpha": float(cov.dep_params),
            "scale": float(np.mean(resid**2)),
        },
        "thresholds": (),
        "loglik": None,
        "converged": converged,
    }


def _fit_glmm(data, x, groups, design, *, outcome, nagq, cluster, **_) -> dict:
    from intervention_meta.vignette.glmm import fit_glmm

    res = fit_glmm(data[outcome].to_numpy(dtype=float), x, groups, nagq=nagq)
    return {
        "estimate": res.beta,
        "vcov": res.vcov,
        "variance_components": {f"{cluster}_sd": res.theta},
        "thresholds": (),
        "loglik": res.loglik,
        "converged": res.converged,
        "nagq": res.nagq,
    }


def _fit_lmm(data, x, groups, design, *, outcome, cluster, **_) -> dict:
    from intervention_meta.vignette.lmm import fit_lmm

    res = fit_lmm(data[outcome].to_numpy(dtype=float), x, groups)
    return {
        "estimate": res.beta,
        "vcov": res.vcov,
        "variance_components": {f"{cluster}_sd": res.cluster_sd, "residual_sd": res.residual_sd},
        "thresholds": (),
        "loglik": res.loglik,
        "converged": res.converged,
    }


def _categories(values: pd.Series) -> tuple[list, np.ndarray]:
    """The ordered categories of an ordinal outcome and each row's code ``0..K-1``."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.ordered:
        cats = [c for c in values.cat.categories if c in set(values)]
    else:
        num = pd.to_numeric(values, errors="coerce")
        cats = sorted(pd.unique(num if num.notna().all() else values.astype(str)))
        values = num if num.notna().all() else values.astype(str)
    lookup = {c: i for i, c in enumerate(cats)}
    return cats, values.map(lookup).to_numpy(dtype=int)


def _fit_clm(data, x, groups, design, *, outcome, robust, **_) -> dict:
    from intervention_meta.vignette.ordinal import fit_clm, robust_vcov

    cats, codes = _categories(data[outcome])
    k = len(cats)
    xb = x[:, 1:]
    res = fit_clm(codes, xb, k)
    vfull = robust_vcov(res, codes, xb, k, groups) if robust else res.vcov
    text = [level_text(c) for c in cats]
    names = [f"{text[j]}|{text[j + 1]}" for j in range(k - 1)]
    th_se = np.sqrt(np.diag(vfull)[: k - 1])
    try:
        scores = tuple(float(c) for c in cats)
    except (TypeError, ValueError):
        scores = tuple(float(j + 1) for j in range(k))
    return {
        "terms": design.terms[1:],
        "estimate": res.beta,
        "vcov": vfull[k - 1 :, k - 1 :],
        "vcov_full": vfull,
        "variance_components": {},
        "thresholds": tuple(
            (n, float(e), float(s)) for n, e, s in zip(names, res.thresholds, th_se, strict=True)
        ),
        "loglik": res.loglik,
        "converged": res.converged,
        "robust": bool(robust),
        "categories": tuple(text),
        "scores": scores,
    }
