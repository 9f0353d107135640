"""PET-PEESE in the working model: precision-effect regressions with dependent effect sizes.

PET and PEESE (Stanley & Doucouliagos 2014) regress the effect sizes on their standard error and
on their sampling variance; the intercept is the effect expected of a study of infinite precision.
With several effect sizes per study the regressions are fitted in the analysis (working) model --
the three-level model ``rma.mv(yi ~ sqrt(vi), vi, random = ~ 1 | study/es)`` or the CHE model with
sampling errors correlated :math:`\\rho` within a study -- and tested with cluster-robust CR2
t tests with Satterthwaite degrees of freedom, clustered by study (Rodgers & Pustejovsky 2021;
Pustejovsky & Tipton 2022):

.. math::

    \\text{PET:}\\quad y_{ij} = \\beta_0 + \\beta_1 s_{ij} + u_j + w_{ij} + e_{ij}, \\qquad
    \\text{PEESE:}\\quad y_{ij} = \\beta_0 + \\beta_1 s_{ij}^2 + u_j + w_{ij} + e_{ij}.

For standardized mean differences the standard error :math:`s_{ij} = \\sqrt{v_{ij}}` depends on
the estimate itself (:math:`v = 1/n_1 + 1/n_2 + d^2/(2(n_1+n_2))`), which makes the test of
:math:`\\beta_1` reject too often without any selective reporting; Pustejovsky & Rodgers (2019)
replace it by the modified standard error :math:`\\tilde s_{ij} = \\sqrt{1/n_{1ij} + 1/n_{2ij}}`
(and :math:`\\tilde s^2_{ij}` in PEESE). It is used when the group sizes of every effect size are
known; otherwise the regressions use :math:`\\sqrt{v_{ij}}` and the result says so in ``note``.
The model weights stay those of the working model (its :math:`v_{ij}`).

The conditional PET-PEESE estimate (Stanley & Doucouliagos 2014): if PET's intercept differs
significantly from zero (by default one-sided at :math:`\\alpha = .05` in the direction of the
working model's overall effect; CR2 t test), PEESE's intercept, else PET's. ``rule`` states the
rule and the decision in words.

Not covered: other selection-adjusted estimators (selection models, see the bias step), PET-PEESE
with moderators of the mean beyond those of the model call (they are kept as covariates, the
intercept then being the limit effect at their reference values).

References
----------
Pustejovsky, J. E., & Rodgers, M. A. (2019). Testing for funnel plot asymmetry of standardized
mean differences. *Research Synthesis Methods*, 10(1), 57-71.

Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance estimation: expanding
the range of working models. *Prevention Science*, 23, 425-438.

Rodgers, M. A., & Pustejovsky, J. E. (2021). Evaluating meta-analytic methods to detect selective
reporting in the presence of dependent effect sizes. *Psychological Methods*, 26(2), 141-160.

Stanley, T. D., & Doucouliagos, H. (2014). Meta-regression approximations to reduce publication
selection bias. *Research Synthesis Methods*, 5(1), 60-78.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable
from intervention_meta.methods.influence import ModelCall
from intervention_meta.models import MetaResult, ModelError
from intervention_meta.models import distributions as dist
from intervention_meta.models.robust import RobustResult

logger = logging.getLogger(__name__)

__all__ = ["BiasRegression", "PetPeeseFits", "PetPeeseWorkingModel", "pet_peese_working_model"]

ALTERNATIVES = ("greater", "less", "two-sided")

#: the predictor columns added to the data (renamed if the data already use the name)
_PREDICTOR_COLUMNS = {"PET": "pet_se", "PEESE": "peese_var"}

#: the result's names of the chosen intercept's test, and clubSandwich's (``coef_test``)
_INTERCEPT_KEYS = (
    ("estimate", "beta"), ("se", "se"), ("df", "df_satt"), ("pval", "p_satt"),
    ("ci_lb", "ci_lower"), ("ci_ub", "ci_upper"),
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class BiasRegression:
    """One precision-effect regression (PET or PEESE) in the working model, with CR2 tests.

    Attributes
    ----------
    model : ``"PET"`` or ``"PEESE"``
    predictor : ``"se"`` (:math:`\\sqrt{v}`), ``"var"`` (:math:`v`), ``"modified_se"``
        (:math:`\\sqrt{1/n_1 + 1/n_2}`) or ``"modified_var"`` (:math:`1/n_1 + 1/n_2`)
    robust : the CR2 coefficient table (:class:`~intervention_meta.models.robust.RobustResult`:
        ``coef_names`` -- the intercept, the predictor, then any covariates of the model call --
        ``b``, ``se``, ``tval``, ``df`` (Satterthwaite), ``pval``, ``ci_lb``, ``ci_ub``, as
        clubSandwich's ``coef_test`` and ``conf_int``)
    se_model : the model-based standard errors
    sigma2 : variance components by level (the working model's; ``tau2`` for one level)
    rho : the working model's within-study correlation of sampling errors (None: none)
    k : effect sizes
    converged : whether the variance components converged
    """

    model: str
    predictor: str
    robust: RobustResult
    se_model: np.ndarray
    sigma2: dict[str, float]
    rho: float | None
    k: int
    converged: bool

    @property
    def intercept(self) -> dict[str, float]:
        """The limit estimate (the intercept) with its CR2 test, under clubSandwich's names."""
        return self.robust.coef_test(0)

    @property
    def limit(self) -> dict[str, float]:
        """The intercept's test under the result's names: ``estimate, se, df, pval, ci_lb,
        ci_ub`` (what :class:`PetPeeseWorkingModel` reports of the chosen regression)."""
        icpt = self.intercept
        return {name: icpt[key] for name, key in _INTERCEPT_KEYS}

    @property
    def slope(self) -> dict[str, float]:
        """The asymmetry coefficient (the predictor's) with its CR2 test."""
        return self.robust.coef_test(1)

    def pval_one_sided(self, alternative: str) -> float:
        """The intercept's p value for ``alternative`` (``"greater"``, ``"less"``, two-sided)."""
        t, df = float(self.robust.tval[0]), float(self.robust.df[0])
        if alternative == "greater":
            return float(dist.t_sf(t, df))
        if alternative == "less":
            return float(dist.t_cdf(t, df))
        if alternative == "two-sided":
            return float(self.robust.pval[0])
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")

    def shifted(self, by: float) -> BiasRegression:
        """The regression fitted to :math:`y - c` (``by`` :math:`= c`), without refitting.

        Shifting the outcome moves the intercept by :math:`-c` and leaves the slope, the
        residuals, the variance components, the CR2 covariance and its Satterthwaite degrees of
        freedom as they are; only the intercept's test and interval are recomputed
        (:meth:`~intervention_meta.models.robust.RobustResult.at`).
        """
        b = np.array(self.robust.b, dtype=float)
        b[0] -= by
        return replace(self, robust=self.robust.at(b))

    def to_dict(self) -> dict:
        """JSON-able dict of every attribute (``robust`` as its ``to_dict()``)."""
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: model, predictor, term, the CR2 columns, se_model."""
        table = self.robust.to_frame().rename_axis("term").reset_index()
        table.insert(0, "predictor", self.predictor)
        table.insert(0, "model", self.model)
        return table.assign(se_model=self.se_model)


@dataclass(frozen=True, eq=False)
class PetPeeseWorkingModel:
    """PET, PEESE and the conditional PET-PEESE estimate in the working model.

    Attributes
    ----------
    pet, peese : the two regressions
    modified : whether the modified standard error of Pustejovsky & Rodgers (2019) was used
    note : why the modified standard error was not used (empty when it was, or not applicable)
    alternative : the PET test deciding between the two (``"greater"``, ``"less"``,
        ``"two-sided"``)
    alpha : its level
    pet_pval_test : PET intercept's p value in that test
    chosen : ``"PEESE"`` if PET's intercept is significant in that test, else ``"PET"``
    rule : the rule and the decision, in words
    estimate, se, df, pval, ci_lb, ci_ub : the chosen regression's intercept (CR2)
    overall : the working model's overall (intercept-only) estimate, which gives the direction
    k, n_clusters : effect sizes and clusters
    """

    pet: BiasRegression
    peese: BiasRegression
    modified: bool
    note: str
    alternative: str
    alpha: float
    pet_pval_test: float
    chosen: str
    rule: str
    estimate: float
    se: float
    df: float
    pval: float
    ci_lb: float
    ci_ub: float
    overall: float
    k: int
    n_clusters: int

    def to_dict(self) -> dict:
        """JSON-able dict: the decision and estimate, with ``pet`` and ``peese`` nested."""
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient of PET and PEESE, with a ``chosen`` flag."""
        frames = [
            reg.to_frame().assign(chosen=reg.model == self.chosen) for reg in (self.pet, self.peese)
        ]
        return pd.concat(frames, ignore_index=True)


def _regression(
    rows: pd.DataFrame,
    call: ModelCall,
    model: str,
    predictor: str,
    values: np.ndarray,
    cluster: str | None,
) -> BiasRegression:
    col = _PREDICTOR_COLUMNS[model]
    while col in rows.columns:
        col = "_" + col
    data = rows.assign(**{col: values})
    res = replace(call, mods=(col, *call.mods)).fit(data)
    return BiasRegression(
        model=model,
        predictor=predictor,
        robust=res.robust(cluster=cluster),
        se_model=np.asarray(res.se, dtype=float),
        sigma2=_components(res),
        rho=res.rho,
        k=res.k,
        converged=res.converged,
    )


def _components(res: MetaResult) -> dict[str, float]:
    if res.multilevel:
        return {str(k): float(v) for k, v in res.sigma2.items()}
    return {"tau2": float(res.tau2 or 0.0)}


def _predictors(
    rows: pd.DataFrame, call: ModelCall, n1: str | None, n2: str | None, measure: str
) -> tuple[np.ndarray, bool, str]:
    """The PET predictor (PEESE takes its square), whether it is the modified SE, and a note."""
    vi = pd.to_numeric(rows[call.vi], errors="coerce").to_numpy(dtype=float)
    if measure.upper() != "SMD":
        return np.sqrt(vi), False, ""
    if n1 is None or n2 is None:
        note = "group sizes not given: the standard error sqrt(vi) is the predictor"
        return np.sqrt(vi), False, note
    missing = [c for c in (n1, n2) if c not in rows.columns]
    if missing:
        raise ModelError(f"group-size columns {missing} are not in the data")
    a = pd.to_numeric(rows[n1], errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(rows[n2], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0))
    if bad.any():
        note = (
            f"group sizes unknown for {int(bad.sum())} of {len(rows)} effect sizes: the standard "
            "error sqrt(vi) is the predictor instead of the modified sqrt(1/n1 + 1/n2)"
        )
        logger.info("PET-PEESE: %s", note)
        return np.sqrt(vi), False, note
    return np.sqrt(1.0 / a + 1.0 / b), True, ""


def _rule(chosen: str, alternative: str, alpha: float, p: float, df: float) -> str:
    test = {
        "greater": "greater than zero (one-sided",
        "less": "less than zero (one-sided",
        "two-sided": "different from zero (two-sided",
    }[alternative]
    base = (
        f"PEESE's intercept if PET's intercept is significantly {test} CR2 t test, "
        f"alpha = {alpha:g}), otherwise PET's"
    )
    verdict = "is" if chosen == "PEESE" else "is not"
    return f"{base}: it {verdict} (p = {p:.4g}, df = {df:.3g}), so {chosen}'s intercept"


def pet_peese_working_model(
    data: pd.DataFrame, call: ModelCall, **options: Any
) -> PetPeeseWorkingModel:
    """PET, PEESE and the conditional PET-PEESE estimate in the working model, with CR2 tests.

    See the module docstring for the models and the rule. ``data``, ``call`` and the keyword
    ``options`` (``measure``, ``n1``, ``n2``, ``cluster``, ``alpha``, ``alternative``,
    ``overall``) are those of :class:`PetPeeseFits`; the result is its
    :meth:`~PetPeeseFits.working_model`.

    Returns
    -------
    PetPeeseWorkingModel

    Raises
    ------
    ModelError
        for too few effect sizes or clusters, or unknown columns.

    Examples
    --------
    >>> call = ModelCall(random=("study", "esid"), method="REML")  # doctest: +SKIP
    >>> pet_peese_working_model(dat, replace(call, rho=0.6)).rule  # doctest: +SKIP
    """
    return PetPeeseFits(data, call, **options).working_model()


class PetPeeseFits:
    """PET and PEESE in a working model on given rows, each regression fitted when first needed.

    For the effect sizes shifted to :math:`y - c` (``shift`` :math:`= c`) nothing is refitted:
    both intercepts and the overall estimate move by :math:`-c`, the slopes, residuals, variance
    components and CR2 tests' degrees of freedom stay (:meth:`BiasRegression.shifted`), and the
    choice between PET and PEESE is made again on the shifted PET test. :meth:`chosen` fits PEESE
    only when the rule takes it.

    Parameters
    ----------
    data : one row per effect size (rows missing a column of ``call`` are not used)
    call : the working model, e.g. the three-level model
        ``ModelCall(random=("study", "es"), method="REML")`` or the CHE model with ``rho``
    measure : the effect-size measure; the modified standard error is for ``"SMD"`` only
    n1, n2 : the group-size columns (SMD): with both known for every effect size the predictor is
        :math:`\\sqrt{1/n_1 + 1/n_2}` (PEESE: :math:`1/n_1 + 1/n_2`)
    cluster : the clustering column of the CR2 tests (default: the outermost random level)
    alpha : level of PET's test of the intercept
    alternative : that test's direction: ``"greater"``, ``"less"`` or ``"two-sided"``; default
        the direction of the working model's overall estimate, one-sided
    overall : the working model's (intercept-only) estimate on these rows, when already fitted
    """

    def __init__(
        self,
        data: pd.DataFrame,
        call: ModelCall,
        *,
        measure: str = "SMD",
        n1: str | None = None,
        n2: str | None = None,
        cluster: str | None = None,
        alpha: float = 0.05,
        alternative: Literal["greater", "less", "two-sided"] | None = None,
        overall: float | None = None,
    ):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if alternative is not None and alternative not in ALTERNATIVES:
            raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
        rows = call.complete(data)
        fewest = 3 + len(call.mods)
        if len(rows) < fewest:
            raise ModelError(f"PET-PEESE needs at least {fewest} effect sizes, got {len(rows)}")
        self.rows, self.call, self.cluster = rows, call, cluster
        self.alpha, self.alternative = float(alpha), alternative
        self.se, self.modified, self.note = _predictors(rows, call, n1, n2, measure)
        self.kinds = ("modified_se", "modified_var") if self.modified else ("se", "var")
        self._overall = overall

    @cached_property
    def pet(self) -> BiasRegression:
        return _regression(self.rows, self.call, "PET", self.kinds[0], self.se, self.cluster)

    @cached_property
    def peese(self) -> BiasRegression:
        return _regression(self.rows, self.call, "PEESE", self.kinds[1], self.se**2, self.cluster)

    @cached_property
    def overall(self) -> float:
        """The working model's overall (intercept-only) estimate: the default test direction."""
        if self._overall is not None:
            return float(self._overall)
        return float(replace(self.call, mods=()).fit(self.rows).b[0])

    def test(self, shift: float = 0.0) -> tuple[str, float]:
        """The PET test that decides, for :math:`y - c`: its direction and PET's p value."""
        alternative = self.alternative
        if alternative is None:
            alternative = "less" if self.overall - shift < 0 else "greater"
        return alternative, _shifted(self.pet, shift).pval_one_sided(alternative)

    def chosen(self, shift: float = 0.0) -> BiasRegression:
        """The regression whose intercept the rule takes, for :math:`y - c`."""
        _, p_test = self.test(shift)
        return _shifted(self.peese if p_test < self.alpha else self.pet, shift)

    def working_model(self, shift: float = 0.0) -> PetPeeseWorkingModel:
        """PET, PEESE and the conditional estimate, for :math:`y - c`."""
        pet, peese = _shifted(self.pet, shift), _shifted(self.peese, shift)
        alternative, p_test = self.test(shift)
        chosen = "PEESE" if p_test < self.alpha else "PET"
        rule = _rule(chosen, alternative, self.alpha, p_test, float(pet.robust.df[0]))
        logger.info("PET-PEESE (working model): %s", rule)
        limit = (peese if chosen == "PEESE" else pet).limit
        return PetPeeseWorkingModel(
            pet=pet, peese=peese, modified=self.modified, note=self.note,
            alternative=alternative, alpha=self.alpha, pet_pval_test=p_test, chosen=chosen,
            rule=rule, overall=self.overall - shift, k=pet.k, n_clusters=pet.robust.n_clusters,
            **limit,
        )  # fmt: skip


def _shifted(regression: BiasRegression, shift: float) -> BiasRegression:
    return regression.shifted(shift) if shift else regression
