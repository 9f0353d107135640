"""Comparing fitted models: likelihood-ratio tests of nested models and information criteria.

* **Likelihood-ratio test** (metafor 3.8 ``anova(full, reduced)``): with the deviances of the two
  fits under the same criterion (ML, or REML when both models have the same fixed effects),

  .. math:: LRT = \\max(0, D_{reduced} - D_{full}) = 2(\\ell_{full} - \\ell_{reduced}),
            \\qquad p = P(\\chi^2_{df} > LRT), \\quad df = parms_{full} - parms_{reduced},

  where ``parms`` counts the coefficients and the estimated variance components. As in metafor the
  p value is not corrected for a variance component tested on the boundary of its space (a 50:50
  mixture of :math:`\\chi^2_0` and :math:`\\chi^2_1` would halve it; Self & Liang 1987).
  REML likelihoods of models with different fixed effects are not comparable (the restricted
  likelihood depends on the model matrix; Verbeke & Molenberghs 2000, sec. 6.2), so such pairs
  are refused; fit both by ML instead (metafor only warns).
* **Information criteria** (metafor ``fitstats``): :math:`AIC = -2\\ell + 2\\,parms`,
  :math:`BIC = -2\\ell + parms\\log n`, :math:`AICc = -2\\ell + 2\\,parms\\,n/(n - parms - 1)`
  (:math:`n = k`, or :math:`k - p` for REML), the differences to the best model
  :math:`\\Delta_i = IC_i - \\min_j IC_j` and the Akaike weights
  :math:`w_i = \\exp(-\\Delta_i/2)/\\sum_j\\exp(-\\Delta_j/2)` (Burnham & Anderson 2002, sec. 2.9;
  Wagenmakers & Farrell 2004).

References
----------
Burnham, K. P., & Anderson, D. R. (2002). *Model Selection and Multimodel Inference* (2nd ed.).
Springer.
Self, S. G., & Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood estimators and
likelihood ratio tests under nonstandard conditions. *JASA*, 82, 605-610.
Verbeke, G., & Molenberghs, G. (2000). *Linear Mixed Models for Longitudinal Data*. Springer.
Wagenmakers, E.-J., & Farrell, S. (2004). AIC model selection using Akaike weights. *Psychonomic
Bulletin & Review*, 11, 192-196.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from intervention_meta.models import distributions as dist
from intervention_meta.models.errors import ModelError
from intervention_meta.models.results import MetaResult, jsonable

logger = logging.getLogger(__name__)

_LIKELIHOOD = ("ML", "REML")
_NO_HETEROGENEITY = ("FE", "EE")
_FIT_KEYS = ("logLik", "deviance", "AIC", "BIC", "AICc")
CRITERIA = ("AIC", "BIC", "AICc")


def _fit_stats(result: MetaResult) -> dict[str, float]:
    fs = result.fit_stats[result.fit_stats_type]
    return {key: float(fs["loglik" if key == "logLik" else key]) for key in _FIT_KEYS}


def _same_data(a: MetaResult, b: MetaResult) -> bool:
    """Same effect sizes, sampling variances and sampling correlation, in the same row order."""
    da, db = a._state.design, b._state.design
    return (
        da.k == db.k
        and np.array_equal(da.y, db.y)
        and np.array_equal(da.v, db.v)
        and (a.rho or 0.0) == (b.rho or 0.0)
    )


def _same_fixed_effects(a: MetaResult, b: MetaResult) -> bool:
    return a.coef_names == b.coef_names and np.array_equal(a._state.design.X, b._state.design.X)


def _spans(full: np.ndarray, reduced: np.ndarray, tol: float = 1e-8) -> bool:
    """Whether every column of ``reduced`` lies in the column space of ``full``."""
    coef = np.linalg.lstsq(full, reduced, rcond=None)[0]
    resid = reduced - full @ coef
    scale = np.maximum(np.linalg.norm(reduced, axis=0), 1.0)
    return bool(np.all(np.linalg.norm(resid, axis=0) <= tol * scale))


def _criterion_family(results: Sequence[MetaResult]) -> str:
    """The common likelihood of several fits ("ML" or "REML"), or ModelError."""
    types = {r.fit_stats_type for r in results}
    if len(types) > 1:
        raise ModelError(
            "fits mix ML and REML likelihoods (their log-likelihoods are not comparable); refit "
            "all models with the same method"
        )
    return types.pop()


@dataclass(frozen=True)
class ModelComparison:
    """Likelihood-ratio test of a reduced model against a full model (metafor ``anova``).

    ``fit_stats_full`` / ``fit_stats_reduced`` hold logLik, deviance, AIC, BIC and AICc under the
    criterion of the fits (``criterion``: ML or REML). ``tau2_*`` and ``R2`` (the proportional
    reduction of tau^2, %) are set for one-level models, as in metafor.
    """

    names: tuple[str, str]
    criterion: str
    method: str
    parms_full: int
    parms_reduced: int
    df: int
    lrt: float
    pval: float
    fit_stats_full: dict[str, float]
    fit_stats_reduced: dict[str, float]
    QE_full: float
    QE_reduced: float
    tau2_full: float | None
    tau2_reduced: float | None
    R2: float | None

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})

    def to_frame(self) -> pd.DataFrame:
        """Two rows (full, reduced): parms, fit statistics, QE; LRT and p on the reduced row."""
        rows = []
        for which in ("full", "reduced"):
            fs = getattr(self, f"fit_stats_{which}")
            row = {"df": getattr(self, f"parms_{which}"), **fs, "QE": getattr(self, f"QE_{which}")}
            if self.tau2_full is not None:
                row["tau2"] = getattr(self, f"tau2_{which}")
            row["LRT"] = self.lrt if which == "reduced" else np.nan
            row["pval"] = self.pval if which == "reduced" else np.nan
            rows.append(row)
        return pd.DataFrame(rows, index=pd.Index(list(self.names), name="model"))


def compare(
    full: MetaResult, reduced: MetaResult, *, names: Sequence[str] = ("full", "reduced")
) -> ModelComparison:
    """Likelihood-ratio test between two nested fits, as metafor 3.8 ``anova(full, reduced)``.

    The fit with more parameters is taken as the full model (the arguments may come in either
    order, as in metafor).

    Parameters
    ----------
    full, reduced : fits to the same effect sizes and sampling (co)variances, both by ML or both
        by REML (FE/EE fits count as ML); REML fits must have the same fixed effects
    names : labels of the two models in the output (in the order given)

    Returns
    -------
    ModelComparison

    Raises
    ------
    ModelError
        for fits to different data, different likelihoods (ML vs REML), REML fits with different
        fixed effects, a non-likelihood method (DL, PM, ...), a fixed-effects full model with a
        random-effects reduced model, equal numbers of parameters, or fixed effects of the reduced
        model that are not in the span of the full model's.

    Examples
    --------
    >>> full = fit(dat, mods=["deltype"], random=["study", "esid"], method="ML")  # doctest: +SKIP
    >>> reduced = fit(dat, random=["study", "esid"], method="ML")  # doctest: +SKIP
    >>> compare(full, reduced).pval  # doctest: +SKIP
    """
    names = tuple(names)
    if len(names) != 2:
        raise ModelError("names must hold two labels")
    for res in (full, reduced):
        if res.method not in _LIKELIHOOD + _NO_HETEROGENEITY:
            raise ModelError(
                f"likelihood-ratio tests need ML or REML fits (FE/EE count as ML), not "
                f"method={res.method!r}"
            )
    if full.parms == reduced.parms:
        raise ModelError("the models have the same number of parameters; an LRT is not meaningful")
    if full.parms < reduced.parms:
        full, reduced = reduced, full
        names = (names[1], names[0])
    if not _same_data(full, reduced):
        raise ModelError(
            "the models were not fitted to the same effect sizes and sampling (co)variances"
        )
    if full.method in _NO_HETEROGENEITY and reduced.method not in _NO_HETEROGENEITY:
        raise ModelError("the full model is a fixed-effects model but the reduced one is not")
    criterion = _criterion_family([full, reduced])
    same_x = _same_fixed_effects(full, reduced)
    if criterion == "REML" and not same_x:
        raise ModelError(
            "REML likelihoods of models with different fixed effects are not comparable; fit "
            "both models with method='ML' (metafor's anova(refit=TRUE))"
        )
    if not same_x and not _spans(full._state.design.X, reduced._state.design.X):
        raise ModelError(
            "the models are not nested: the reduced model's fixed effects are not in the span of "
            "the full model's"
        )
    fs_f, fs_r = _fit_stats(full), _fit_stats(reduced)
    lrt = max(0.0, fs_r["deviance"] - fs_f["deviance"])
    df = full.parms - reduced.parms
    pval = float(dist.chi2_sf(lrt, df))
    tau2_f = tau2_r = r2 = None
    if not full.multilevel and not reduced.multilevel:
        tau2_f, tau2_r = float(full.tau2), float(reduced.tau2)
        if full.method in _NO_HETEROGENEITY:
            s2_f = full.QE / full.QE_df
            s2_r = reduced.QE / reduced.QE_df
            r2 = 100.0 * max(0.0, (s2_r - s2_f) / s2_r) if s2_r > 0 else 0.0
        else:
            r2 = 0.0 if tau2_r == 0 else 100.0 * max(0.0, (tau2_r - tau2_f) / tau2_r)
    return ModelComparison(
        names=names,
        criterion=criterion,
        method=full.method,
        parms_full=int(full.parms),
        parms_reduced=int(reduced.parms),
        df=int(df),
        lrt=float(lrt),
        pval=pval,
        fit_stats_full=fs_f,
        fit_stats_reduced=fs_r,
        QE_full=float(full.QE),
        QE_reduced=float(reduced.QE),
        tau2_full=tau2_f,
        tau2_reduced=tau2_r,
        R2=r2,
    )


@dataclass(frozen=True)
class AICTable:
    """Fit statistics of several models with differences and Akaike weights.

    Attributes
    ----------
    names : model labels, in the order given
    criterion : the likelihood of the fits (ML or REML)
    ranked_by : the information criterion of ``delta`` and ``weight`` (AIC, BIC or AICc)
    logLik, deviance, parms, AIC, BIC, AICc : per model
    delta : IC minus the smallest IC
    weight : Akaike weights :math:`\\exp(-\\Delta_i/2)/\\sum_j \\exp(-\\Delta_j/2)`
    """

    names: tuple[str, ...]
    criterion: str
    ranked_by: str
    logLik: np.ndarray
    deviance: np.ndarray
    parms: np.ndarray
    AIC: np.ndarray
    BIC: np.ndarray
    AICc: np.ndarray
    delta: np.ndarray
    weight: np.ndarray

    @property
    def best(self) -> str:
        return self.names[int(np.argmin(self.delta))]

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})

    def to_frame(self) -> pd.DataFrame:
        cols = ("logLik", "deviance", "parms", "AIC", "BIC", "AICc")
        frame = pd.DataFrame(
            {c: getattr(self, c) for c in cols}, index=pd.Index(list(self.names), name="model")
        )
        frame[f"delta_{self.ranked_by}"] = self.delta
        frame["weight"] = self.weight
        return frame


def aic_table(
    *results: MetaResult, names: Sequence[str] | None = None, criterion: str = "AIC"
) -> AICTable:
    """Information criteria of fits to the same data, with deltas and Akaike weights.

    Parameters
    ----------
    *results : two or more fits to the same effect sizes and sampling (co)variances, all by ML or
        all by REML (REML fits must share their fixed effects)
    names : labels (default ``model1``, ``model2``, ...)
    criterion : ``"AIC"`` (default), ``"AICc"`` or ``"BIC"``: what ``delta`` and ``weight`` use

    Raises
    ------
    ModelError
        for fewer than two fits, fits to different data, mixed ML/REML likelihoods or REML fits
        with different fixed effects.
    """
    if len(results) < 2:
        raise ModelError("give at least two fitted models")
    if criterion not in CRITERIA:
        raise ModelError(f"criterion must be one of {CRITERIA}, not {criterion!r}")
    names = (
        tuple(names) if names is not None else tuple(f"model{i + 1}" for i in range(len(results)))
    )
    if len(names) != len(results) or len(set(names)) != len(names):
        raise ModelError("names must be distinct and one per model")
    first = results[0]
    for res in results[1:]:
        if not _same_data(first, res):
            raise ModelError("the models were not all fitted to the same data")
    fam = _criterion_family(results)
    if fam == "REML" and not all(_same_fixed_effects(first, r) for r in results[1:]):
        raise ModelError(
            "REML fits with different fixed effects cannot be compared by information criteria; "
            "fit the models with method='ML'"
        )
    fs = [_fit_stats(r) for r in results]
    ic = np.array([f[criterion] for f in fs])
    delta = ic - ic.min()
    rel = np.exp(-0.5 * delta)
    return AICTable(
        names=names,
        criterion=fam,
        ranked_by=criterion,
        logLik=np.array([f["logLik"] for f in fs]),
        deviance=np.array([f["deviance"] for f in fs]),
        parms=np.array([r.parms for r in results]),
        AIC=np.array([f["AIC"] for f in fs]),
        BIC=np.array([f["BIC"] for f in fs]),
        AICc=np.array([f["AICc"] for f in fs]),
        delta=delta,
        weight=rel / rel.sum(),
    )
