"""Fitting the specifications of a multiverse, a chunk at a time, with the bootstrap under the null.

Each specification (:class:`~intervention_meta.multiverse.specs.Spec`) is one fit of the
package's one model engine through :class:`~intervention_meta.methods.influence.ModelCall`, the
same call :func:`intervention_meta.analyses.analysis_model.model_call` builds for the analysis
model:

- ``fixed``: the fixed-effect (equal-effects) model, effect sizes treated as independent
  (metafor ``rma(yi, vi, method = "FE")``);
- ``random``: the one-level random-effects model **ignoring the dependence** of effect sizes from
  one study (``rma(yi, vi, method = m)``), not a model of study averages;
- ``three_level``: random effects at every level of ``models.levels`` (default effect sizes in
  studies; ``rma.mv(yi, vi, random = ~ 1 | study/es, method = m)``);
- ``che``: the three-level model with sampling errors correlated :math:`\\rho` within a study
  (the correlated-and-hierarchical-effects working model, Pustejovsky & Tipton 2022), model-based
  inference.

Outlier rules drop the effect sizes whose absolute residual exceeds ``outlier_threshold`` and
refit: ``studentized`` the internally studentized residual
:math:`e_i / \\sqrt{M_{ii} - x_i V_b x_i^\\top}` (metafor ``rstandard``; :math:`M_{ii} = v_i +
\\sum_l \\hat\\sigma^2_l`), ``deleted`` the studentized deleted residual (metafor ``rstudent``,
:func:`~intervention_meta.methods.influence.deleted_residuals`; one refit per effect size). Bias
adjustments: ``pet_peese`` the conditional PET-PEESE intercept in the spec's model with CR2 tests
clustered by study (:func:`~intervention_meta.methods.pet_peese.pet_peese_working_model`),
``selection`` the three-parameter step-function selection model clustered by study
(:func:`~intervention_meta.methods.selection.selection_model`; its adjusted mean).

The bootstrap under the null (Simonsohn, Simmons & Nelson 2020; Voracek et al. 2019) makes every
specification's null hypothesis true and refits the whole multiverse on resampled data: in draw
:math:`b` the studies are drawn with replacement (``numpy.random.default_rng([seed, b])``; a study
drawn twice enters as two studies), and each specification's effect sizes are shifted by minus its
observed estimate before it is refitted. The draws depend on the seed and the draw number only,
not on the chunk, so any chunking (and any machine running the chunks) gives the same numbers. A
draw is fitted once per subset and model and the shifted specs' numbers derived from those fits
where the model is shift-equivariant (:class:`SpecFitter`): the same numbers as refitting, up to
rounding.

References
----------
Simonsohn, U., Simmons, J. P., & Nelson, L. D. (2020). Specification curve analysis. *Nature Human
Behaviour*, 4, 1208-1214.
Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance estimation: expanding
the range of working models. *Prevention Science*, 23, 425-438.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.analyses.analysis_model import VI, YI, model_test
from intervention_meta.methods.influence import ModelCall, deleted_residuals
from intervention_meta.models import MetaResult, ModelError
from intervention_meta.models.inference import coefficient_tests
from intervention_meta.multiverse.results import (
    ChunkResult,
    SpecFit,
    configured_level,
    fitted_spec,
)
from intervention_meta.multiverse.specs import Multiverse, Spec

log = logging.getLogger(__name__)

#: what a fit can raise on data too small or too odd for it
_FIT_ERRORS = (ModelError, ValueError, np.linalg.LinAlgError, FloatingPointError)


@dataclass(frozen=True)
class FitSettings:
    """How every spec of a multiverse is fitted: the data's names and the rules.

    Attributes
    ----------
    study : the study column (the bootstrap's resampling unit, the CR2 and selection clusters)
    levels : the nested random levels of the multilevel structures, outer to inner
    test, level : the tests and interval level of ``models`` (Knapp-Hartung becomes t for the
        multilevel structures, :func:`~intervention_meta.analyses.analysis_model.model_test`)
    outlier_threshold, min_k, min_studies_multilevel, min_k_pet_peese, min_k_selection : rules
    """

    study: str
    levels: tuple[str, ...]
    test: str = "t"
    level: float = 0.95
    outlier_threshold: float = 3.0
    min_k: int = 3
    min_studies_multilevel: int = 5
    min_k_pet_peese: int = 10
    min_k_selection: int = 20

    @classmethod
    def from_multiverse(
        cls, mv: Multiverse, *, study: str, levels: Sequence[str], test: str, level: float
    ) -> FitSettings:
        s = mv.settings
        return cls(
            study=study,
            levels=tuple(levels),
            test=test,
            level=float(level),
            outlier_threshold=float(s["outlier_threshold"]),
            min_k=int(s["min_k"]),
            min_studies_multilevel=int(s["min_studies_multilevel"]),
            min_k_pet_peese=int(s["min_k_pet_peese"]),
            min_k_selection=int(s["min_k_selection"]),
        )

    def call(self, spec: Spec) -> ModelCall:
        """The model of ``spec`` as a :class:`ModelCall`."""
        random = self.levels if spec.multilevel else ()
        return ModelCall(
            yi=YI,
            vi=VI,
            random=random,
            method=spec.method,
            test=model_test(self.test, bool(random)),
            level=self.level,
            rho=spec.rho,
        )


def _components(res: MetaResult) -> dict[str, float]:
    """Variance components by level (``tau2`` for a one-level model, none for FE)."""
    if res.multilevel:
        return {lev: float(v) for lev, v in res.sigma2.items()}
    return {} if res.method == "FE" else {"tau2": float(res.tau2 or 0.0)}


def _from_result(
    res: MetaResult, k: int, n_studies: int, n_out: int, shift: float = 0.0
) -> SpecFit:
    """A spec's numbers from its fit, or from its fit to :math:`y` when the spec is fitted to
    :math:`y - c` (``shift`` :math:`= c`, intercept-only models): the estimate moves by
    :math:`-c`, the variance components, the standard error and the degrees of freedom stay, and
    the test and interval are recomputed (:func:`~intervention_meta.models.inference.
    coefficient_tests`, the engine's own)."""
    b, se, pval, ci_lb, ci_ub = res.b, res.se, res.pval, res.ci_lb, res.ci_ub
    df = None if res.dfs is None else float(res.dfs[0])
    if shift:
        b = np.asarray(res.b[:1], dtype=float) - shift
        ct = coefficient_tests(b, res.vb[:1, :1], test=res.test, df=df, level=res.level)
        se, pval, ci_lb, ci_ub = ct.se, ct.pval, ct.ci_lb, ct.ci_ub
    numbers = {
        "estimate": b[0],
        "se": se[0],
        "df": df,
        "pval": pval[0],
        "ci_lb": ci_lb[0],
        "ci_ub": ci_ub[0],
    }
    return fitted_spec(k, n_studies, n_out, numbers, _components(res), res.converged)


def studentized_residuals(res: MetaResult, rows: pd.DataFrame) -> np.ndarray:
    """Internally studentized residuals of an intercept-only fit (metafor ``rstandard``).

    .. math:: z_i = \\frac{y_i - \\hat\\mu}{\\sqrt{s^2_w (v_i + \\sum_l \\hat\\sigma^2_l) -
              \\mathrm{Var}(\\hat\\mu)}}

    (:math:`s^2_w = 1` unless Knapp-Hartung); the variance of the residual is the diagonal of
    :math:`M - X V_b X^\\top` with the marginal covariance :math:`M`, whose diagonal does not
    depend on the CHE correlation.
    """
    y = rows[YI].to_numpy(dtype=float)
    v = rows[VI].to_numpy(dtype=float)
    s2w = res.s2w if res.s2w is not None else 1.0
    total = sum(_components(res).values())
    var = s2w * (v + total) - float(res.vb[0, 0])
    return (y - float(res.b[0])) / np.sqrt(np.maximum(var, np.finfo(float).tiny))


def _cached(cache: dict, key: tuple, compute: Callable[[], Any]) -> Any:
    """``cache[key]``, computed once; an error of the computation is kept and raised again."""
    if key not in cache:
        try:
            cache[key] = compute()
        except _FIT_ERRORS as err:
            cache[key] = err
    value = cache[key]
    if isinstance(value, Exception):
        raise value
    return value


class SpecFitter:
    """Fits specs on one data set, reusing what specs share.

    Specs with the same subset share its rows; with the same model too, the fit to the whole
    subset and the outlier rules' verdicts; with the same rows after the outlier rule, the final
    fit and the PET-PEESE regressions. A spec fitted to :math:`y - c` (the bootstrap under the
    null, ``shift``) reuses the fits to :math:`y`: in an intercept-only model the shift moves the
    estimate by :math:`-c` and leaves the variance components, the standard error, the degrees
    of freedom and the residuals (so the outliers) as they are (:func:`_from_result`,
    :class:`~intervention_meta.methods.pet_peese.PetPeeseFits`, which fits PEESE only when the
    shifted PET test takes it; ``converged`` is then PET's and the chosen regression's); only the
    selection model, which is not shift-equivariant, is refitted to the shifted rows.

    Parameters
    ----------
    data : one row per effect size with ``yi``, ``vi``, the level columns and every ``which``
        variable
    settings : :class:`FitSettings`
    """

    def __init__(self, data: pd.DataFrame, settings: FitSettings):
        self.data = data
        self.settings = settings
        self._rows: dict[tuple, pd.DataFrame] = {}
        self._cleaned: dict[tuple, tuple[pd.DataFrame, int, tuple]] = {}
        self._text: dict[str, pd.Series] = {}
        self._fits: dict[tuple, Any] = {}
        self._pet_peese: dict[tuple, Any] = {}

    def _column(self, variable: str) -> pd.Series:
        if variable not in self._text:
            if variable not in self.data.columns:
                raise ModelError(f"multiverse: the effect sizes have no column {variable!r}")
            self._text[variable] = self.data[variable].astype("string")
        return self._text[variable]

    def rows(self, spec: Spec) -> pd.DataFrame:
        """The spec's subset, complete in the columns its model uses."""
        key = spec.subset_key
        if key not in self._rows:
            keep = np.ones(len(self.data), dtype=bool)
            for variable, codes in key:
                if codes:
                    keep &= self._column(variable).isin(codes).fillna(False).to_numpy()
            columns = [YI, VI, *self.settings.levels]
            keep &= ~self.data[columns].isna().any(axis=1).to_numpy()
            self._rows[key] = self.data.loc[keep]
        return self._rows[key]

    def _too_small(self, rows: pd.DataFrame, spec: Spec, n_out: int = 0) -> SpecFit | None:
        s = self.settings
        k, n_studies = len(rows), int(rows[s.study].nunique())
        reason = ""
        if k < s.min_k:
            reason = f"k = {k} < min_k = {s.min_k}"
        elif spec.multilevel and n_studies < s.min_studies_multilevel:
            reason = f"{n_studies} studies < min_studies_multilevel = {s.min_studies_multilevel}"
        elif spec.bias == "pet_peese" and k < s.min_k_pet_peese:
            reason = f"k = {k} < min_k_pet_peese = {s.min_k_pet_peese}"
        elif spec.bias == "selection" and k < s.min_k_selection:
            reason = f"k = {k} < min_k_selection = {s.min_k_selection}"
        if not reason:
            return None
        return SpecFit("too_small", reason, k=k, n_studies=n_studies, n_outliers=n_out)

    def _fit(self, key: tuple, call: ModelCall, rows: pd.DataFrame) -> MetaResult:
        """The fit of the model ``call`` to the rows that ``key`` names (computed once)."""
        return _cached(self._fits, key, lambda: call.fit(rows))

    def _cleaned_rows(self, spec: Spec) -> tuple[pd.DataFrame, int, tuple]:
        """The spec's rows after its outlier rule, how many it dropped, and the key of its model
        on those rows (the outlier rule ``none`` when it dropped none)."""
        model = (spec.subset_key, spec.structure, spec.method, spec.rho)
        key = (*model, spec.outliers)
        if key in self._cleaned:
            return self._cleaned[key]
        rows = self.rows(spec)
        call = self.settings.call(spec)
        base = self._fit((*model, "none"), call, rows)
        if spec.outliers == "none":
            out = (rows, 0, (*model, "none"))
        else:
            if spec.outliers == "studentized":
                z = studentized_residuals(base, rows)
            else:
                z = np.asarray(deleted_residuals(rows, call).z, dtype=float)
            drop = np.abs(z) > self.settings.outlier_threshold
            fitted = key if drop.any() else (*model, "none")
            out = (rows.loc[~drop], int(drop.sum()), fitted)
        self._cleaned[key] = out
        return out

    def fit(self, spec: Spec, shift: float = 0.0) -> SpecFit:
        """Fit ``spec`` to the data with :math:`y - c` (``shift`` :math:`= c`) for :math:`y` (a
        too-small subset or a failed fit is a result with its reason)."""
        rows = self.rows(spec)
        small = self._too_small(rows, spec)
        if small is not None:
            return small
        try:
            rows, n_out, fitted = self._cleaned_rows(spec)
            small = self._too_small(rows, spec, n_out)
            if small is not None:
                return small
            return self._adjusted(spec, rows, n_out, fitted, float(shift))
        except _FIT_ERRORS as err:
            return SpecFit(
                "failed",
                f"{type(err).__name__}: {err}",
                k=len(rows),
                n_studies=int(rows[self.settings.study].nunique()),
            )

    def _adjusted(
        self, spec: Spec, rows: pd.DataFrame, n_out: int, fitted: tuple, shift: float
    ) -> SpecFit:
        s = self.settings
        k, n_studies = len(rows), int(rows[s.study].nunique())
        call = s.call(spec)
        if spec.bias == "none":
            return _from_result(self._fit(fitted, call, rows), k, n_studies, n_out, shift)
        if spec.bias == "pet_peese":
            from intervention_meta.methods.pet_peese import PetPeeseFits

            def regressions() -> PetPeeseFits:
                overall = float(self._fit(fitted, call, rows).b[0])
                return PetPeeseFits(rows, call, measure="generic", cluster=s.study, overall=overall)

            fits = _cached(self._pet_peese, fitted, regressions)
            if not shift:
                pp = fits.working_model()
                chosen = pp.pet if pp.chosen == "PET" else pp.peese
                converged = pp.pet.converged and pp.peese.converged
            else:
                chosen = fits.chosen(shift)
                converged = fits.pet.converged and chosen.converged
            return fitted_spec(k, n_studies, n_out, chosen.limit, chosen.sigma2, converged)
        from intervention_meta.methods.selection import selection_model

        y, v = rows[YI].to_numpy(dtype=float) - shift, rows[VI].to_numpy(dtype=float)
        direction = "greater" if np.sum(y / v) >= 0 else "less"
        sm = selection_model(
            y, v, cluster=rows[s.study].to_numpy(), alternative=direction, level=s.level
        )
        mean = sm.adjusted_mean
        numbers = {key: getattr(mean, key) for key in ("estimate", "se", "ci_lb", "ci_ub")}
        numbers["pval"] = sm.pval[0]
        return fitted_spec(k, n_studies, n_out, numbers, {"tau2": sm.tau2.estimate}, sm.converged)


def bootstrap_data(
    data: pd.DataFrame, study: str, levels: Sequence[str], seed: int, draw: int
) -> pd.DataFrame:
    """Draw ``draw`` of the study bootstrap: studies drawn with replacement.

    ``numpy.random.default_rng([seed, draw]).integers`` picks the studies (sorted study keys); the
    ``j``-th drawn study enters with its level keys suffixed ``#j``, so a study drawn twice is two
    studies. The result depends on ``seed`` and ``draw`` only.
    """
    keys = np.sort(data[study].astype("string").unique().to_numpy(dtype=object))
    rng = np.random.default_rng([int(seed), int(draw)])
    picks = rng.integers(0, len(keys), size=len(keys))
    text = data[study].astype("string").to_numpy(dtype=object)
    where = {key: np.flatnonzero(text == key) for key in keys}
    index = np.concatenate([where[keys[p]] for p in picks])
    copy = np.repeat(np.arange(len(picks)), [len(where[keys[p]]) for p in picks])
    out = data.iloc[index].reset_index(drop=True)
    suffix = pd.Series(copy).map(lambda j: f"#{j}")
    for column in dict.fromkeys([study, *levels]):
        out[column] = out[column].astype("string").str.cat(suffix)
    return out


def used_columns(data: pd.DataFrame, specs: Sequence[Spec], settings: FitSettings) -> pd.DataFrame:
    """``data`` restricted to the columns the specs use: the effect sizes, their variances, the
    study and level keys and the ``which`` variables (those it has)."""
    which = [w.variable for spec in specs for w in spec.which]
    wanted = dict.fromkeys([YI, VI, settings.study, *settings.levels, *which])
    return data[[c for c in wanted if c in data.columns]]


def fit_chunk(
    data: pd.DataFrame,
    specs: Sequence[Spec],
    settings: FitSettings,
    *,
    draws: int = 0,
    seed: int = 0,
    chunk: int = 0,
) -> ChunkResult:
    """Fit ``specs`` on ``data`` and, for each of ``draws`` bootstrap draws under the null, on
    the draw's data shifted by minus each spec's observed estimate (see the module docstring)."""
    data = used_columns(data, specs, settings)
    fitter = SpecFitter(data, settings)
    fits = tuple(fitter.fit(spec) for spec in specs)
    log.info("chunk %d: %d specs, %d fitted", chunk, len(specs), sum(f.ok for f in fits))
    est = np.full((draws, len(specs)), np.nan)
    pval = np.full((draws, len(specs)), np.nan)
    methods = logging.getLogger("intervention_meta.methods")
    before = methods.level
    methods.setLevel(logging.WARNING)  # the methods' per-fit notes, once per draw, say nothing new
    try:
        for b in range(draws):
            boot = SpecFitter(
                bootstrap_data(data, settings.study, settings.levels, seed, b), settings
            )
            for j, (spec, observed) in enumerate(zip(specs, fits, strict=True)):
                if not observed.ok:
                    continue
                result = boot.fit(spec, shift=float(observed.estimate))
                if result.ok:
                    est[b, j], pval[b, j] = result.estimate, result.pval
    finally:
        methods.setLevel(before)
    log.info("chunk %d: %d bootstrap draws under the null", chunk, draws)
    return ChunkResult(chunk, tuple(s.id for s in specs), fits, est, pval, int(seed))


def run_settings(
    mv: Multiverse, study: str, levels: Sequence[str], models: Mapping[str, Any] | None
) -> FitSettings:
    """The :class:`FitSettings` of a multiverse under the config's ``models`` section."""
    models = dict(models or {})
    return FitSettings.from_multiverse(
        mv,
        study=study,
        levels=levels,
        test=str(models.get("test", "t")),
        level=configured_level(models),
    )


__all__ = [
    "ChunkResult",
    "FitSettings",
    "SpecFit",
    "SpecFitter",
    "bootstrap_data",
    "fit_chunk",
    "run_settings",
    "studentized_residuals",
    "used_columns",
]
