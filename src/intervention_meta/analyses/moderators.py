"""Moderator analyses: one meta-regression per codebook moderator, and the multiple-moderator model.

Every codebook variable whose role includes ``moderator`` gets its own model (the analysis model of
the config's ``models`` section, by default the three-level model with effect sizes nested in
studies), so a variable added to the codebook is analysed without a code change.

Categorical moderators (types binary, categorical, ordinal; the variable as a factor, levels in the
codebook's order)
    * the mean effect of every category from the intercept-free model
      :math:`y_{ij} = \\sum_c \\beta_c\\,[x_{ij} = c] + u_j + w_{ij} + e_{ij}`
      (metafor ``rma.mv(yi, vi, mods = ~ factor(x) - 1, random = ~ 1 | study/es)``), model-based and
      CR2 cluster-robust (clubSandwich ``coef_test(vcov = "CR2")``, Pustejovsky & Tipton 2018);
    * the omnibus test of differences between categories from the same model with an intercept:
      :math:`Q_M = \\hat\\beta_{-0}'\\,\\mathrm{Var}(\\hat\\beta_{-0})^{-1}\\hat\\beta_{-0}`,
      referred to :math:`F(m, k - p)` as :math:`Q_M/m` for t tests (metafor ``test = "t"``) or to
      :math:`\\chi^2_m` for z tests, and its CR2 version, the Wald test of the same contrasts with
      the HTZ small-sample correction (clubSandwich ``Wald_test(test = "HTZ")``, Tipton &
      Pustejovsky 2015);
    * categories with fewer studies than ``min_studies`` are reported (their means come from the
      model with all categories) but flagged and left out of the test, which is then computed on
      the rows of the other categories; with fewer than two testable categories there is no test.

Continuous moderators (types integer, number)
    the slope and the intercept of :math:`y_{ij} = \\beta_0 + \\beta_1 (x_{ij} - c)/s + u_j +
    w_{ij} + e_{ij}`, model-based and CR2; the test of the slope (F(1, k - 2) = t^2 for t tests)
    and its HTZ version (equal to the squared CR2 t test with its Satterthwaite df). The moderator
    is centred at :math:`c` (``moderators.center``: the mean of its values over the effect sizes
    analysed, by default, a number, or ``none`` for 0) and scaled by :math:`s`
    (``moderators.scale``, e.g. 10 for a slope per 10 years; 1 by default), so that the intercept
    is the predicted effect at :math:`x = c` rather than at a possibly absurd 0 (year 0), and the
    slope is per :math:`s` units (:func:`centring`). Centring changes only the intercept; the
    slope, its test, the variance components and the fit are those of the raw moderator (the
    slope times :math:`s`). Both are recorded per moderator (``centring`` in the JSON).

With every model: the variance components left (:math:`\\hat\\sigma^2` per level) and the
pseudo-:math:`R^2 = 100\\max(0, (S_0 - S)/S_0)` with :math:`S = \\sum_l\\hat\\sigma^2_l` and
:math:`S_0` from the intercept-only model on the same rows (Raudenbush 2009; metafor). Rows
whose moderator value is missing are left out of that moderator's models (counted). The omnibus p
values are adjusted across moderators with Holm's (1979) step-down method, separately for the
model-based and the CR2 tests.

Multiple-moderator model (:func:`multiple_moderator_model`)
    the moderators listed in ``moderators.multiple`` together (by default the intervention
    components, the variables with role ``component`` in the codebook; no other moderator enters
    unless listed), on the complete cases, with the rows left out counted per missing variable and
    the studies lost named, coefficients (model-based and CR2), the omnibus test of all moderators
    (model-based F and CR2 HTZ) and variance inflation factors
    (:func:`variance_inflation_factors`). Without components and without a list the model does
    not apply (``applicable`` false, with the reason).

Cluster wild bootstrap (``moderators.wild_bootstrap``; :mod:`.moderator_bootstrap`)
    with few studies (by default at most 40 in the test) every omnibus test -- each moderator's
    and the multiple-moderator model's test of all moderators -- also gets the p value of the
    cluster wild bootstrap of its HTZ statistic (Joshi, Pustejovsky & Beretvas 2022), which keeps
    its level where the HTZ test of several coefficients is conservative; each test is seeded
    from the config's ``seed`` and its name, so its p value does not depend on the other tests.

Coding coverage (:func:`coding_coverage`, :func:`apply_min_coverage`)
    the share of studies with a value of a variable (on at least one of their effect sizes). A
    joint model (the multiple-moderator model, the component profiles) leaves out every variable
    coded for fewer than ``moderators.min_coverage`` of the studies, with a flag naming it, its
    coverage and the studies the model would otherwise lose, so that one sparsely coded (or newly
    added, uncoded) variable cannot shrink the joint model to the few studies that have it.

References
----------
Assink, M., & Wibbelink, C. J. M. (2016). Fitting three-level meta-analytic models in R: A step-by-
step tutorial. *The Quantitative Methods for Psychology*, 12(3), 154-174.
Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian Journal of
Statistics*, 6(2), 65-70.
Joshi, M., Pustejovsky, J. E., & Beretvas, S. N. (2022). Cluster wild bootstrapping to handle
dependent effect sizes in meta-analysis with a small number of studies. *Research Synthesis
Methods*, 13(4), 457-477.
Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. *Journal of Business & Economic
Statistics*, 36(4), 672-683.
Raudenbush, S. W. (2009). Analyzing effect sizes: Random-effects models. In *The Handbook of
Research Synthesis and Meta-Analysis* (2nd ed., pp. 295-315).
Tipton, E., & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of moderators and model
fit using robust variance estimation in meta-regression. *Journal of Educational and Behavioral
Statistics*, 40(6), 604-634.
Fox, J., & Monette, G. (1992). Generalized collinearity diagnostics. *JASA*, 87(417), 178-183.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.analyses.analysis_model import (
    VI,
    AnalysisData,
    ModelSpec,
    fit_model,
    load_analysis_data,
    model_call,
)
from intervention_meta.analyses.flags import FlagRules, Flags
from intervention_meta.analyses.moderator_bootstrap import (
    WildBootstrapOptions,
    moderator_wild_bootstrap,
)
from intervention_meta.analyses.records import (
    CR2_KEYS,
    MEAN_KEYS,
    ResultTable,
    columns,
    result_table,
    write_tables,
)
from intervention_meta.data.codebook import (
    LEVEL_TYPES,
    NUMERIC_TYPES,
    Codebook,
    Variable,
    component_variables,
    normalise_code,
)
from intervention_meta.io import jsonable, write_json
from intervention_meta.models import MetaResult, ModelError, RobustResult

log = logging.getLogger(__name__)

__all__ = [
    "MIN_COVERAGE",
    "CodingCoverage",
    "CoefficientRow",
    "ModeratorAnalyses",
    "ModeratorResult",
    "ModeratorTest",
    "MultipleModeratorResult",
    "VarianceInflation",
    "analyse_moderator",
    "analyse_moderators",
    "apply_min_coverage",
    "coding_coverage",
    "component_variables",
    "factor_column",
    "moderator_variables",
    "multiple_moderator_model",
    "run_moderators",
    "variance_inflation_factors",
]

_ADJUST = {"holm": "Holm"}

#: the default of ``moderators.min_coverage``: the share of studies a variable must be coded for
#: to enter a joint model (the multiple-moderator model, the component profiles)
MIN_COVERAGE = 0.5

#: why the moderator analyses do not apply to a data set
NO_MODERATORS = (
    "no variable has role moderator (or component) in the codebook, or moderators.exclude "
    "leaves none"
)


# --------------------------------------------------------------------------- variables
def moderator_variables(codebook: Codebook, exclude: Sequence[str] = ()) -> list[Variable]:
    """The variables with role ``moderator``, minus ``exclude``, in the codebook's order."""
    return codebook.moderators(exclude)


@dataclass(frozen=True)
class CodingCoverage:
    """How many studies have a value of a variable.

    ``n_coded`` of ``n_studies`` studies have a value on at least one effect size (``share`` =
    n_coded / n_studies); ``uncoded`` are the others, the studies a complete-case model with the
    variable would lose.
    """

    variable: str
    n_studies: int
    n_coded: int
    share: float
    uncoded: tuple

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


def coding_coverage(ad: AnalysisData, variable: str) -> CodingCoverage:
    """The studies of ``ad`` with a value of ``variable`` (see :class:`CodingCoverage`)."""
    coded = ad.data[variable].notna().groupby(ad.data[ad.study], sort=True).any()
    n = int(len(coded))
    return CodingCoverage(
        variable=variable,
        n_studies=n,
        n_coded=int(coded.sum()),
        share=float(coded.sum() / n) if n else math.nan,
        uncoded=tuple(coded.index[~coded.to_numpy()]),
    )


def _ids(ids: Sequence, limit: int = 20) -> str:
    """Study keys for a flag: the first ``limit``, then how many more."""
    text = ", ".join(map(str, ids[:limit]))
    return text + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _studies(n: int) -> str:
    return f"{n} stud{'y' if n == 1 else 'ies'}"


def apply_min_coverage(
    ad: AnalysisData, variables: Sequence[str], min_coverage: float, model: str
) -> tuple[list[str], dict[str, CodingCoverage], list[str]]:
    """The ``variables`` coded for at least ``min_coverage`` of the studies, and the others.

    Returns the variables kept (in their order), the left-out ones with their
    :class:`CodingCoverage`, and one flag line per left-out variable naming it, its coverage and
    the studies ``model`` (e.g. ``"multiple-moderator model"``) would lose with it.
    """
    kept, left_out, lines = [], {}, []
    for v in variables:
        cov = coding_coverage(ad, v)
        if not cov.n_studies or cov.share >= min_coverage:
            kept.append(v)
            continue
        left_out[v] = cov
        lines.append(
            f"{model}: {v} ({ad.label(v)}) left out: coded for {cov.n_coded} of "
            f"{_studies(cov.n_studies)} ({100 * cov.share:.0f}%, below moderators.min_coverage "
            f"{100 * min_coverage:g}%); with it the model would lose {_studies(len(cov.uncoded))} "
            f"({_ids(cov.uncoded)})"
        )
    return kept, left_out, lines


def factor_column(series: pd.Series, variable: Variable | None = None) -> pd.Series:
    """A coded column as a pandas Categorical of normalised codes, in the codebook's level order.

    Codes that are not codebook levels (should not occur after cleaning) follow in sorted order;
    missing values stay missing. The model core codes a Categorical with its first observed
    category as the reference (treatment coding) or, without an intercept, one indicator per
    category.
    """
    codes = (
        series.astype("object")
        .where(series.notna(), None)
        .map(lambda x: None if x is None else normalise_code(x))
    )
    order = list(variable.levels) if variable is not None else []
    extra = sorted(set(codes.dropna()) - set(order))
    return pd.Series(
        pd.Categorical(codes, categories=order + extra), index=series.index, name=series.name
    )


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class CoefficientRow:
    """One estimate of a moderator analysis: a category mean, intercept, slope or coefficient.

    ``stat``/``df`` are the model's t (df = k - p) or z (df None); ``cr2_*`` the CR2 cluster-robust
    version (Satterthwaite df); NaN where not computed.
    """

    term: str
    code: str
    label: str
    k: int
    n_studies: int
    estimate: float
    se: float
    stat: float
    df: float | None
    pval: float
    ci_lb: float
    ci_ub: float
    cr2_se: float = math.nan
    cr2_df: float = math.nan
    cr2_pval: float = math.nan
    cr2_ci_lb: float = math.nan
    cr2_ci_ub: float = math.nan
    tested: bool = True
    note: str = ""
    vif_weighted: float = math.nan
    vif_unweighted: float = math.nan

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


@dataclass(frozen=True)
class ModeratorTest:
    """The omnibus test of a moderator (categories differ / slope is zero), model-based and CR2.

    ``test`` is ``"F"`` (t tests: ``stat`` = QM/m with df1 = m, df2 = k - p) or ``"chi-square"``
    (z tests: ``stat`` = QM, df2 None). ``cr2_*`` is the HTZ Wald test (Tipton & Pustejovsky 2015).
    ``p_adj``/``cr2_p_adj`` are filled in across moderators. ``wild_p`` is the cluster wild
    bootstrap p value of the same hypothesis (NaN when not computed) and ``wild_bootstrap`` its
    record (:func:`~intervention_meta.analyses.moderator_bootstrap.moderator_wild_bootstrap`;
    empty when ``moderators.wild_bootstrap.when`` is ``never``).
    """

    test: str
    stat: float
    df1: int
    df2: float | None
    pval: float
    cr2_fstat: float = math.nan
    cr2_df1: float = math.nan
    cr2_df2: float = math.nan
    cr2_pval: float = math.nan
    p_adj: float = math.nan
    cr2_p_adj: float = math.nan
    k: int = 0
    n_studies: int = 0
    categories: tuple[str, ...] = ()
    wild_p: float = math.nan
    wild_bootstrap: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


@dataclass(frozen=True)
class ModeratorResult:
    """Everything reported for one moderator.

    Attributes
    ----------
    name, label : the codebook variable and its label
    kind : ``"categorical"`` or ``"continuous"``
    var_type : the codebook type; ``table``: the table it is coded in
    k, n_studies : effect sizes and studies with a value; ``k_missing``: rows left out (missing)
    rows : category means (categorical) or intercept and slope (continuous)
    test : the omnibus test, or None with ``no_test_reason``
    sigma2, tau2, R2 : variance components left and pseudo-R^2 (%) of the tested model
    models : compact summaries of the fitted models (for the JSON)
    flags : the flag lines raised for this moderator
    centring : continuous moderators: how the moderator entered the model (:class:`Centring`)
    """

    name: str
    label: str
    kind: str
    var_type: str
    table: str
    k: int
    n_studies: int
    k_missing: int
    rows: tuple[CoefficientRow, ...]
    test: ModeratorTest | None
    no_test_reason: str = ""
    sigma2: dict[str, float] = field(default_factory=dict)
    tau2: float | None = None
    R2: float | None = None
    models: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    centring: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("rows", "test")}
        out["rows"] = [r.to_dict() for r in self.rows]
        out["test"] = None if self.test is None else self.test.to_dict()
        return jsonable(out)

    def to_frame(self) -> pd.DataFrame:
        """One row per category (or intercept and slope), with the moderator's name."""
        frame = pd.DataFrame([r.__dict__ for r in self.rows])
        frame.insert(0, "moderator", self.name)
        return frame


@dataclass(frozen=True)
class VarianceInflation:
    """Variance inflation factors of the columns of a design (the intercept has none).

    ``weighted`` uses the whitening of the model's marginal covariance (GLS weights), ``unweighted``
    the plain design (statsmodels' ``variance_inflation_factor`` with a constant).
    """

    names: tuple[str, ...]
    weighted: np.ndarray
    unweighted: np.ndarray

    def to_dict(self) -> dict:
        return jsonable(
            {"names": self.names, "weighted": self.weighted, "unweighted": self.unweighted}
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"vif_weighted": self.weighted, "vif_unweighted": self.unweighted},
            index=pd.Index(self.names, name="coefficient"),
        )


@dataclass(frozen=True)
class MultipleModeratorResult:
    """The multiple-moderator model on the complete cases.

    ``missing_by_variable`` counts, per moderator, the rows whose value is missing (a row may miss
    several); ``k_dropped``/``studies_dropped`` the rows and the studies that lose all their rows.
    ``reason`` says why there is no model (then ``rows`` is empty); ``applicable`` is false when
    no moderator was given at all (no components, no list). ``left_out``: the variables left out
    for their coding coverage (:func:`apply_min_coverage`); ``lost``: the studies that lose all
    their rows to missing values. ``variable_tests``: per moderator, the test of all its
    coefficients in this model (model-based Wald and CR2 HTZ).
    """

    variables: tuple[str, ...]
    k: int
    n_studies: int
    k_dropped: int
    studies_dropped: int
    missing_by_variable: dict[str, int]
    rows: tuple[CoefficientRow, ...]
    test: ModeratorTest | None
    sigma2: dict[str, float] = field(default_factory=dict)
    tau2: float | None = None
    R2: float | None = None
    vif: VarianceInflation | None = None
    vif_weights: str = ""
    reason: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    variable_tests: dict[str, ModeratorTest] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    applicable: bool = True
    left_out: dict[str, CodingCoverage] = field(default_factory=dict)
    lost: tuple = ()

    def to_dict(self) -> dict:
        skip = ("rows", "test", "vif", "variable_tests", "left_out")
        out = {k: v for k, v in self.__dict__.items() if k not in skip}
        out["left_out"] = {k: c.to_dict() for k, c in self.left_out.items()}
        out["rows"] = [r.to_dict() for r in self.rows]
        out["test"] = None if self.test is None else self.test.to_dict()
        out["vif"] = None if self.vif is None else self.vif.to_dict()
        out["variable_tests"] = {k: t.to_dict() for k, t in self.variable_tests.items()}
        return jsonable(out)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.__dict__ for r in self.rows])


@dataclass(frozen=True)
class ModeratorAnalyses:
    """All single-moderator analyses, the skipped moderators and the p adjustment."""

    results: tuple[ModeratorResult, ...]
    skipped: dict[str, str]
    p_adjust: str
    spec: ModelSpec
    min_studies: int
    flags: tuple[str, ...] = ()
    wild_bootstrap: WildBootstrapOptions | None = None

    def to_dict(self) -> dict:
        return jsonable(
            {
                "model": self.spec.describe(),
                "p_adjust": self.p_adjust,
                "min_studies": self.min_studies,
                "wild_bootstrap": _wild_dict(self.wild_bootstrap),
                "moderators": [r.to_dict() for r in self.results],
                "skipped": self.skipped,
                "flags": list(self.flags),
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per moderator x category (or intercept/slope)."""
        frames = [r.to_frame() for r in self.results if r.rows]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --------------------------------------------------------------------------- helpers
def _model_summary(result: MetaResult) -> dict:
    """The numbers of a fitted model worth keeping in the JSON (not the whole result)."""
    return jsonable(
        {
            "k": result.k,
            "p": result.p,
            "method": result.method,
            "test": result.test,
            "coefficients": result.to_frame().reset_index().to_dict(orient="records"),
            "vb": result.vb,
            "sigma2": result.sigma2,
            "tau2": result.tau2,
            "n_levels": result.n_levels,
            "QE": result.QE,
            "QEp": result.QEp,
            "QM": result.QM,
            "QMdf": list(result.QMdf),
            "QMp": result.QMp,
            "R2": result.R2,
            "I2": result.I2,
            "variance_distribution": result.variance_distribution,
            "logLik": result.logLik,
            "converged": result.converged,
        }
    )


def _robust(result: MetaResult, ad: AnalysisData, spec: ModelSpec) -> RobustResult | None:
    """CR2 result clustered by the outermost level, or None (robust: none, or not computable)."""
    if spec.robust.upper() != "CR2":
        return None
    try:
        return result.robust(cluster=ad.cluster, level=spec.level)
    except (ValueError, np.linalg.LinAlgError) as err:
        log.warning("CR2 coefficient table not computable: %s", err)
        return None


def _robust_test(
    result: MetaResult, ad: AnalysisData, spec: ModelSpec, constraints: Sequence[int]
) -> dict | None:
    robust = _robust(result, ad, spec)
    if robust is None:
        return None
    try:
        return robust.wald(list(constraints)).to_dict()
    except (ValueError, np.linalg.LinAlgError) as err:
        log.warning("CR2 Wald test not computable: %s", err)
        return None


def _check_model(
    flags: Flags,
    result: MetaResult,
    robust: RobustResult | None,
    ad: AnalysisData,
    what: str,
    *,
    boundary: bool = True,
) -> None:
    """The flags of a fitted model: non-convergence, variance components on the boundary
    (``boundary``) and, for its coefficients, CR2 SEs far below the model SEs and small df."""
    flags.check_fit(result, what)
    if boundary:
        flags.check_boundary(result, what, result._state.design.data[VI])
    if robust is not None:
        flags.check_robust(result, robust, what)


def _check_test(flags: Flags, test: ModeratorTest | None, what: str) -> None:
    """Flag the HTZ Wald test of ``test`` if its denominator df is small."""
    if test is not None:
        flags.check_df(test.cr2_df2, f"{what}: HTZ Wald test")


def _row(
    result: MetaResult,
    robust: RobustResult | None,
    i: int,
    *,
    term: str,
    code: str,
    label: str,
    k: int,
    n_studies: int,
    tested: bool = True,
    note: str = "",
) -> CoefficientRow:
    stat = result.stat
    cr2: dict[str, float] = {}
    if robust is not None:
        cr2 = {
            f"cr2_{name}": float(getattr(robust, name)[i])
            for name in ("se", "df", "pval", "ci_lb", "ci_ub")
        }
    return CoefficientRow(
        term=term,
        code=code,
        label=label,
        k=k,
        n_studies=n_studies,
        estimate=float(result.b[i]),
        se=float(result.se[i]),
        stat=float(stat[i]),
        df=None if result.dfs is None else float(result.dfs[i]),
        pval=float(result.pval[i]),
        ci_lb=float(result.ci_lb[i]),
        ci_ub=float(result.ci_ub[i]),
        tested=tested,
        note=note,
        **cr2,
    )


def _empty_row(term: str, code: str, label: str, k: int, n_studies: int, note: str):
    nan = math.nan
    return CoefficientRow(
        term, code, label, k, n_studies, nan, nan, nan, None, nan, nan, nan, tested=False, note=note
    )


def _omnibus(
    result: MetaResult,
    ad: AnalysisData,
    spec: ModelSpec,
    btt: Sequence[int],
    categories: Sequence[str] = (),
    *,
    wild: WildBootstrapOptions | None = None,
    mods: Sequence[str] = (),
    key: str = "",
) -> ModeratorTest:
    """Model-based omnibus test of ``btt`` (metafor's QM), its CR2 HTZ version and, with
    ``wild``, its cluster wild bootstrap p value (the model ``mods`` with intercept, seeded from
    ``key``)."""
    if tuple(btt) == tuple(result.btt):
        qm, df1, df2, pval = result.QM, result.QMdf[0], result.QMdf[1], result.QMp
    else:
        wt = result.wald(list(btt))
        qm, df1, df2, pval = wt.stat, wt.df1, wt.df2, wt.pval
    rw = _robust_test(result, ad, spec, btt) or {}
    n_studies = _n_studies(result._state.design.data, ad.study)
    boot = {}
    if wild is not None:
        boot = moderator_wild_bootstrap(
            model_call(ad, spec, mods=mods),
            result._state.design.data,
            btt,
            options=wild,
            key=key,
            cluster=ad.cluster,
            n_studies=n_studies,
        )
    return ModeratorTest(
        test="chi-square" if df2 is None else "F",
        stat=float(qm),
        df1=int(df1),
        df2=None if df2 is None else float(df2),
        pval=float(pval),
        cr2_fstat=float(rw.get("fstat", math.nan)),
        cr2_df1=float(rw.get("df_num", math.nan)),
        cr2_df2=float(rw.get("df_denom", math.nan)),
        cr2_pval=float(rw.get("p_val", math.nan)) if rw.get("p_val") is not None else math.nan,
        k=result.k,
        n_studies=n_studies,
        categories=tuple(categories),
        wild_p=float(boot.get("p", math.nan)),
        wild_bootstrap=boot,
    )


def _n_studies(frame: pd.DataFrame, study: str) -> int:
    return int(frame[study].nunique())


# --------------------------------------------------------------------------- centring
@dataclass(frozen=True)
class Centring:
    """How a continuous moderator enters its model: :math:`(x - c)/s`.

    ``rule`` is ``mean`` (``center`` = the mean over the effect sizes with a value), ``value``
    (a number from the config) or ``none`` (``center`` = 0).
    """

    rule: str
    center: float
    scale: float = 1.0

    def apply(self, x: pd.Series) -> pd.Series:
        return (x - self.center) / self.scale

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


def centring(x: pd.Series, center: str | float = "mean", scale: float = 1.0) -> Centring:
    """The centring of a continuous moderator with values ``x`` (see :class:`Centring`).

    ``center``: ``"mean"``, ``"none"`` or a number; ``scale``: a positive number (the slope is
    per ``scale`` units of the moderator).
    """
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"moderators.scale must be a positive number, got {scale!r}")
    if center == "mean":
        return Centring("mean", float(pd.to_numeric(x, errors="coerce").mean()), scale)
    if center == "none" or center is None:
        return Centring("none", 0.0, scale)
    try:
        value = float(center)
    except (TypeError, ValueError):
        raise ValueError(
            f"moderators.center must be 'mean', 'none' or a number, got {center!r}"
        ) from None
    return Centring("value", value, scale)


def _number(x: float) -> str:
    """A centre or scale for a label: up to 4 significant digits (2010.2, 10, 0.5)."""
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.0f}"


# --------------------------------------------------------------------------- one moderator
def analyse_moderator(
    ad: AnalysisData,
    variable: Variable | str,
    spec: ModelSpec | None = None,
    *,
    min_studies: int = 3,
    rules: FlagRules | None = None,
    center: str | float = "none",
    scale: float = 1.0,
    wild_bootstrap: WildBootstrapOptions | None = None,
) -> ModeratorResult:
    """Meta-regression of one moderator (see the module doc for what is computed).

    Parameters
    ----------
    ad : the effect sizes with their codebook (one row per effect size)
    variable : the codebook variable (or its name)
    spec : how the model is fitted (default: three-level REML, t tests, CR2)
    min_studies : categories with fewer studies are reported but left out of the test
    rules : the thresholds of the flags (default :class:`FlagRules`)
    center, scale : a continuous moderator's centring (:func:`centring`)
    wild_bootstrap : when and how the omnibus test gets a cluster wild bootstrap p value
        (:class:`WildBootstrapOptions`; None: never)

    Returns
    -------
    ModeratorResult
    """
    spec = spec or ModelSpec()
    var = ad.codebook[variable] if isinstance(variable, str) else variable
    name = var.name
    flags = Flags("moderators", rules=rules or FlagRules())
    if name not in ad.data.columns:
        raise ValueError(f"moderator {name!r} is not a column of the effect sizes")
    present = ad.data[name].notna().to_numpy()
    k_missing = int((~present).sum())
    frame = ad.data.loc[present].copy()
    label = ad.label(name)
    if k_missing:
        flags.add(f"{name}: {k_missing} effect size(s) with a missing value left out of its models")
    common = {
        "name": name,
        "label": label,
        "var_type": var.type,
        "table": var.table,
        "k": len(frame),
        "n_studies": _n_studies(frame, ad.study),
        "k_missing": k_missing,
    }
    if var.type in NUMERIC_TYPES:
        return _continuous(ad, spec, var, frame, flags, common, center, scale, wild_bootstrap)
    if var.type in LEVEL_TYPES:
        return _categorical(ad, spec, var, frame, flags, common, min_studies, wild_bootstrap)
    raise ValueError(f"moderator {name!r} has type {var.type!r}; only level or numeric types")


def _continuous(ad, spec, var, frame, flags, common, center, scale, wild) -> ModeratorResult:
    name = var.name
    raw = pd.to_numeric(frame[name], errors="coerce").astype(float)
    how = centring(raw, center, scale)
    frame[name] = how.apply(raw)
    try:
        res = fit_model(ad, spec, mods=[name], data=frame)
    except ModelError as err:
        reason = f"model not estimable ({err})"
        flags.add(f"{name}: no test, {reason}")
        return ModeratorResult(
            kind="continuous",
            rows=(),
            test=None,
            no_test_reason=reason,
            flags=tuple(flags.lines),
            centring=how.to_dict(),
            **common,
        )
    robust = _robust(res, ad, spec)
    _check_model(flags, res, robust, ad, f"{name}: slope model")
    k, ns = common["k"], common["n_studies"]
    at = {"mean": f"its mean, {_number(how.center)}", "none": "0"}.get(
        how.rule, _number(how.center)
    )
    per = "unit" if how.scale == 1 else f"{_number(how.scale)} units"
    rows = (
        _row(
            res,
            robust,
            0,
            term="intercept",
            code="",
            label=f"Intercept (predicted effect at {common['label']} = {at})",
            k=k,
            n_studies=ns,
            tested=False,
        ),
        _row(
            res,
            robust,
            1,
            term="slope",
            code="",
            label=f"Slope per {per} of {common['label']}",
            k=k,
            n_studies=ns,
        ),
    )
    test = _omnibus(
        res, ad, spec, [1], categories=("slope",), wild=wild, mods=[name], key=f"single/{name}"
    )
    _check_test(flags, test, f"{name}: slope")
    return ModeratorResult(
        kind="continuous",
        rows=rows,
        test=test,
        sigma2=dict(res.sigma2),
        tau2=res.tau2,
        R2=res.R2,
        models={"slope": _model_summary(res)},
        flags=tuple(flags.lines),
        centring=how.to_dict(),
        **common,
    )


def _categorical(ad, spec, var, frame, flags, common, min_studies, wild) -> ModeratorResult:
    name = var.name
    frame[name] = factor_column(frame[name], var)
    counts = (
        frame.groupby(name, observed=True)
        .agg(k=(ad.study, "size"), n_studies=(ad.study, "nunique"))
        .reindex([c for c in frame[name].cat.categories if c in set(frame[name].dropna())])
    )
    observed = list(counts.index)
    small = [c for c in observed if counts.loc[c, "n_studies"] < min_studies]
    testable = [c for c in observed if c not in small]
    models: dict[str, Any] = {}

    def lab(code: str) -> str:
        return ad.level_label(name, code)

    notes = {
        c: (
            f"left out of the test: {counts.loc[c, 'n_studies']} stud"
            f"{'y' if counts.loc[c, 'n_studies'] == 1 else 'ies'} (< {min_studies})"
        )
        for c in small
    }
    for c in small:
        flags.add(f"{name}: category {c!r} ({lab(c)}) {notes[c]}; reported, not tested")

    # the mean of every category (intercept-free model with all observed categories)
    rows: list[CoefficientRow] = []
    means = None
    try:
        if len(observed) >= 2:
            means = fit_model(ad, spec, mods=[name], intercept=False, data=frame)
        elif observed:
            means = fit_model(ad, spec, data=frame)
    except ModelError as err:
        flags.add(f"{name}: category means not estimable ({err})")
    if means is not None:
        models["means"] = _model_summary(means)
        robust = _robust(means, ad, spec)
        # the boundary is flagged for the test model, the same model on the tested categories
        _check_model(flags, means, robust, ad, f"{name}: category means", boundary=False)
        for i, c in enumerate(observed):
            rows.append(
                _row(
                    means,
                    robust,
                    i,
                    term="mean",
                    code=c,
                    label=lab(c),
                    k=int(counts.loc[c, "k"]),
                    n_studies=int(counts.loc[c, "n_studies"]),
                    tested=c in testable and len(testable) >= 2,
                    note=notes.get(c, ""),
                )
            )
    else:
        for c in observed:
            rows.append(
                _empty_row(
                    "mean",
                    c,
                    lab(c),
                    int(counts.loc[c, "k"]),
                    int(counts.loc[c, "n_studies"]),
                    "not estimable",
                )
            )

    # the test of differences between the testable categories (model with intercept)
    test, reason, tested_model = None, "", None
    if len(observed) < 2:
        reason = f"only {len(observed)} category observed"
    elif len(testable) < 2:
        reason = (
            f"fewer than 2 categories with at least {min_studies} studies "
            f"({len(testable)} of {len(observed)})"
        )
    else:
        sub = frame if not small else frame.loc[frame[name].isin(testable)].copy()
        try:
            tested_model = fit_model(ad, spec, mods=[name], data=sub)
        except ModelError as err:
            reason = f"model not estimable ({err})"
    if tested_model is not None:
        _check_model(flags, tested_model, None, ad, f"{name}: test model")
        models["test"] = _model_summary(tested_model)
        test = _omnibus(
            tested_model,
            ad,
            spec,
            list(range(1, tested_model.p)),
            categories=testable,
            wild=wild,
            mods=[name],
            key=f"single/{name}",
        )
        _check_test(flags, test, f"{name}: differences between categories")
    else:
        flags.add(f"{name}: no test of differences between categories ({reason})")
    ref = tested_model if tested_model is not None else means
    return ModeratorResult(
        kind="categorical",
        rows=tuple(rows),
        test=test,
        no_test_reason=reason,
        sigma2=dict(ref.sigma2) if ref is not None else {},
        tau2=ref.tau2 if ref is not None else None,
        R2=tested_model.R2 if tested_model is not None else None,
        models=models,
        flags=tuple(flags.lines),
        **common,
    )


# --------------------------------------------------------------------------- all moderators
def adjust_pvalues(pvals: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p values; NaN entries stay NaN, ``none`` = as is.

    Holm's (1979) step-down adjustment of the :math:`m` finite p values in ascending order
    :math:`p_{(1)} \\le \\dots \\le p_{(m)}`:

    .. math:: \\tilde p_{(i)} = \\min\\left(1, \\max_{j \\le i} (m - j + 1)\\, p_{(j)}\\right),

    computed as statsmodels' ``multipletests(p, method="holm")`` computes it (same operations, same
    numbers) without importing it.
    """
    p = np.asarray(pvals, dtype=float)
    if method == "none":
        return p.copy()
    if method != "holm":
        raise ValueError(f"p value adjustment must be 'holm' or 'none', got {method!r}")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = np.argsort(p[ok])
        adjusted = np.maximum.accumulate(p[ok][order] * np.arange(ok.size, 0, -1))
        out[ok[order]] = np.minimum(adjusted, 1.0)
    return out


def analyse_moderators(
    ad: AnalysisData,
    spec: ModelSpec | None = None,
    *,
    moderators: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    min_studies: int = 3,
    p_adjust: str = "holm",
    rules: FlagRules | None = None,
    center: str | float = "none",
    scale: Mapping[str, float] | None = None,
    wild_bootstrap: WildBootstrapOptions | None = None,
) -> ModeratorAnalyses:
    """Analyse every moderator of the codebook (or ``moderators``), each in its own model.

    Moderators whose type cannot enter a model (text, id) or whose column is not in the data are
    skipped with the reason. The omnibus p values (model-based, and CR2) are adjusted across the
    moderators with a test (``p_adjust``: ``"holm"`` or ``"none"``). ``rules`` are the
    thresholds of the flags (default :class:`FlagRules`). Continuous moderators are centred at
    ``center`` and scaled by ``scale[name]`` (1 for those not listed; :func:`centring`); the
    default is the raw moderator, the moderator step's (``moderators.center``) the mean.
    ``wild_bootstrap`` says which omnibus tests get a cluster wild bootstrap p value (None: none).
    """
    spec = spec or ModelSpec()
    cb = ad.codebook
    scale = dict(scale or {})
    unscaled = sorted(set(scale) - {v.name for v in cb.moderators()})
    if moderators is None:
        variables = moderator_variables(cb, exclude)
    else:
        variables = [cb[m] for m in moderators if m not in set(exclude)]
    flags = Flags("moderators", rules=rules or FlagRules())
    unknown = sorted(set(exclude) - {v.name for v in cb.moderators()})
    if unknown:
        flags.add(f"moderators.exclude names no moderator of the codebook: {unknown}")
    if unscaled:
        flags.add(f"moderators.scale names no moderator of the codebook: {unscaled}")
    skipped: dict[str, str] = {}
    results: list[ModeratorResult] = []
    for var in variables:
        if var.type not in LEVEL_TYPES + NUMERIC_TYPES:
            skipped[var.name] = f"type {var.type} cannot be a moderator"
        elif var.name not in ad.data.columns:
            skipped[var.name] = "not a column of the effect sizes"
        elif ad.data[var.name].notna().sum() == 0:
            skipped[var.name] = "no effect size has a value"
        else:
            log.info("moderator %s (%s)", var.name, var.type)
            results.append(
                analyse_moderator(
                    ad,
                    var,
                    spec,
                    min_studies=min_studies,
                    rules=flags.rules,
                    center=center,
                    scale=float(scale.get(var.name, 1.0)),
                    wild_bootstrap=wild_bootstrap,
                )
            )
            flags.lines.extend(results[-1].flags)
            continue
        flags.add(f"{var.name}: skipped ({skipped[var.name]})")
    tests = [r.test for r in results]
    p = adjust_pvalues([t.pval if t else math.nan for t in tests], p_adjust)
    p_cr2 = adjust_pvalues([t.cr2_pval if t else math.nan for t in tests], p_adjust)
    adjusted = []
    for i, r in enumerate(results):
        if r.test is not None:
            t = ModeratorTest(**{**r.test.__dict__, "p_adj": p[i], "cr2_p_adj": p_cr2[i]})
            r = ModeratorResult(**{**r.__dict__, "test": t})
        adjusted.append(r)
    return ModeratorAnalyses(
        results=tuple(adjusted),
        skipped=skipped,
        p_adjust=p_adjust,
        spec=spec,
        min_studies=min_studies,
        flags=tuple(flags.lines),
        wild_bootstrap=wild_bootstrap,
    )


# --------------------------------------------------------------------------- VIF
def variance_inflation_factors(
    X: np.ndarray,
    names: Sequence[str],
    cov_blocks: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    intercept: int | None = 0,
) -> VarianceInflation:
    """Variance inflation factor of every non-intercept column of a design.

    .. math:: \\mathrm{VIF}_j = \\frac{\\mathrm{TSS}_j}{\\mathrm{RSS}_j}
              = \\frac{1}{1 - R^2_j},

    with :math:`\\mathrm{RSS}_j` the residual sum of squares of column :math:`j` regressed on the
    other columns and :math:`\\mathrm{TSS}_j` that on the intercept alone (the centred total sum of
    squares), both in the metric of the model's weights: every column is whitened first,
    :math:`X^* = L^{-1}X` with :math:`M = LL'` the marginal covariance of the model, block by block
    (``cov_blocks``: (row positions, covariance) per cluster). Then :math:`\\mathrm{VIF}_j` is the
    factor by which the GLS variance of :math:`\\hat\\beta_j` is inflated by the column's
    correlation with the others (Fox & Monette 1992 for the idea; here with GLS weights). Without
    ``cov_blocks`` the unweighted VIF (statsmodels ``variance_inflation_factor`` on a design with
    a constant; R ``diag(solve(cor(X[, -1])))``). A factor with several indicator columns gets one
    VIF per column (not the generalised VIF).

    Parameters
    ----------
    X : (k, p) design with the intercept column at position ``intercept`` (None: no intercept,
        then TSS is uncentred)
    names : the p column names
    cov_blocks : optional whitening blocks covering all rows
    """
    X = np.asarray(X, dtype=float)
    Xw = X.copy()
    if cov_blocks is not None:
        from scipy import linalg

        for rows, V in cov_blocks:
            L = linalg.cholesky(np.asarray(V, dtype=float), lower=True)
            Xw[rows] = linalg.solve_triangular(L, X[rows], lower=True)

    def rss(y: np.ndarray, A: np.ndarray) -> float:
        if A.shape[1] == 0:
            return float(y @ y)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        r = y - A @ coef
        return float(r @ r)

    cols = [j for j in range(X.shape[1]) if j != intercept]
    base = Xw[:, [intercept]] if intercept is not None else Xw[:, :0]
    vif = []
    for j in cols:
        others = np.delete(Xw, j, axis=1)
        r = rss(Xw[:, j], others)
        vif.append(rss(Xw[:, j], base) / r if r > 0 else math.inf)
    return VarianceInflation(
        names=tuple(names[j] for j in cols),
        weighted=np.array(vif) if cov_blocks is not None else np.full(len(cols), np.nan),
        unweighted=np.array(vif) if cov_blocks is None else np.full(len(cols), np.nan),
    )


def _vif_of(result: MetaResult) -> VarianceInflation:
    """GLS-weighted (model's marginal covariance) and unweighted VIFs of a fitted model."""
    design = result._state.design
    X, names = design.X, list(result.coef_names)
    icpt = 0 if design.intercept else None
    blocks = [(b.index, b.V) for b in result.cluster_blocks()]
    w = variance_inflation_factors(X, names, blocks, intercept=icpt)
    u = variance_inflation_factors(X, names, None, intercept=icpt)
    return VarianceInflation(names=w.names, weighted=w.weighted, unweighted=u.unweighted)


# --------------------------------------------------------------------------- multiple model
def multiple_moderator_model(
    ad: AnalysisData,
    variables: Sequence[str],
    spec: ModelSpec | None = None,
    *,
    min_coverage: float = MIN_COVERAGE,
    rules: FlagRules | None = None,
    wild_bootstrap: WildBootstrapOptions | None = None,
) -> MultipleModeratorResult:
    """All ``variables`` together in one model (with intercept), on the complete cases.

    Variables coded for fewer than ``min_coverage`` of the studies are left out first, each with
    a flag (:func:`apply_min_coverage`). Level-type variables enter as factors (reference: the
    first codebook level observed, e.g. 0 = component absent), numeric ones as they are. Reports
    the coefficients (model-based and CR2), the omnibus test of all moderators (model-based and
    CR2 HTZ), the variance components left, pseudo-R^2 and the variance inflation factors
    (:func:`variance_inflation_factors`, weighted by the fitted model's marginal covariance, and
    unweighted). Without ``variables`` the model does not apply (``applicable`` false, no flag).
    ``rules`` are the thresholds of the flags (default :class:`FlagRules`). With
    ``wild_bootstrap``, the omnibus test of all moderators gets its cluster wild bootstrap p value
    (the tests of each moderator given the others do not).
    """
    spec = spec or ModelSpec()
    variables = list(variables)
    flags = Flags("moderators", rules=rules or FlagRules())
    data = ad.data
    absent = [v for v in variables if v not in data.columns]
    if absent:
        raise ValueError(f"multiple-moderator model: not columns of the effect sizes: {absent}")
    given = bool(variables)
    variables, left_out, lines = apply_min_coverage(
        ad, variables, min_coverage, "multiple-moderator model"
    )
    for line in lines:
        flags.add(line)
    missing = data[variables].isna() if variables else pd.DataFrame(index=data.index)
    by_var = {v: int(missing[v].sum()) for v in variables}
    incomplete = missing.any(axis=1).to_numpy() if variables else np.zeros(len(data), bool)
    frame = data.loc[~incomplete].copy()
    k_dropped = int(incomplete.sum())
    lost = tuple(sorted(set(data[ad.study]) - set(frame[ad.study]), key=str))
    studies_dropped = len(lost)
    common = {
        "variables": tuple(variables),
        "k": len(frame),
        "n_studies": _n_studies(frame, ad.study),
        "k_dropped": k_dropped,
        "studies_dropped": studies_dropped,
        "missing_by_variable": by_var,
        "left_out": left_out,
        "lost": lost,
    }
    if k_dropped:
        why = ", ".join(f"{v} missing in {n}" for v, n in by_var.items() if n)
        whole = f": {_ids(lost)}" if lost else ""
        flags.add(
            f"multiple-moderator model: {k_dropped} effect size(s) ({studies_dropped} whole "
            f"stud{'y' if studies_dropped == 1 else 'ies'}{whole}) left out for missing values "
            f"({why})"
        )
    if not variables:
        if given:
            reason = "every listed moderator is coded for too few studies (moderators.min_coverage)"
            flags.add(f"multiple-moderator model: not fitted ({reason})")
        else:
            reason = (
                "no intervention components are coded (role: component in the codebook) and "
                "moderators.multiple lists no moderators"
            )
        return MultipleModeratorResult(
            rows=(),
            test=None,
            reason=reason,
            flags=tuple(flags.lines),
            applicable=given,
            **common,
        )
    for v in variables:
        var = ad.codebook.variables.get(v)
        if var is not None and var.type in LEVEL_TYPES:
            frame[v] = factor_column(frame[v], var)
        else:
            frame[v] = pd.to_numeric(frame[v], errors="coerce").astype(float)
    try:
        res = fit_model(ad, spec, mods=variables, data=frame)
    except ModelError as err:
        reason = f"model not estimable ({err})"
        flags.add(f"multiple-moderator model: not fitted ({reason})")
        return MultipleModeratorResult(
            rows=(), test=None, reason=reason, flags=tuple(flags.lines), **common
        )
    robust = _robust(res, ad, spec)
    _check_model(flags, res, robust, ad, "multiple-moderator model")
    try:
        vif = _vif_of(res)
    except (np.linalg.LinAlgError, ValueError) as err:
        log.warning("VIF not computable: %s", err)
        vif = None
    vif_map = (
        {}
        if vif is None
        else dict(zip(vif.names, zip(vif.weighted, vif.unweighted, strict=True), strict=True))
    )
    terms = res._state.design.terms
    rows = []
    for i, coef in enumerate(res.coef_names):
        term, code, label = _describe_coefficient(ad, terms, coef)
        vw, vu = vif_map.get(coef, (math.nan, math.nan))
        row = _row(
            res,
            robust,
            i,
            term=term,
            code=code,
            label=label,
            k=res.k,
            n_studies=common["n_studies"],
        )
        rows.append(CoefficientRow(**{**row.__dict__, "vif_weighted": vw, "vif_unweighted": vu}))
    test = _omnibus(
        res,
        ad,
        spec,
        list(range(1, res.p)) if res.p > 1 else [0],
        wild=wild_bootstrap if res.p > 1 else None,
        mods=variables,
        key="multiple/all",
    )
    names = list(res.coef_names)
    variable_tests = {
        t.column: _omnibus(res, ad, spec, [names.index(n) for n in t.names], t.names) for t in terms
    }
    _check_test(flags, test, "multiple-moderator model: all moderators")
    for column, variable_test in variable_tests.items():
        _check_test(flags, variable_test, f"multiple-moderator model: {column}")
    return MultipleModeratorResult(
        rows=tuple(rows),
        test=test,
        variable_tests=variable_tests,
        sigma2=dict(res.sigma2),
        tau2=res.tau2,
        R2=res.R2,
        vif=vif,
        vif_weights=(
            "GLS weights: the design whitened by the fitted model's marginal covariance "
            "(sigma2 per level + sampling variances), then VIF_j = 1/(1 - R2_j) of column j on "
            "the other columns; unweighted: the plain design"
        ),
        model=_model_summary(res),
        flags=tuple(flags.lines),
        **common,
    )


def _describe_coefficient(ad: AnalysisData, terms, coef: str) -> tuple[str, str, str]:
    """(variable, code, readable label) of a coefficient name of the model core."""
    if coef == "intrcpt":
        return "intercept", "", "Intercept (all factors at their reference category)"
    for t in terms:
        if coef not in t.names:
            continue
        if t.kind == "numeric":
            return t.column, "", f"{ad.label(t.column)} (per unit)"
        code = t.coded_levels[t.names.index(coef)]
        ref = t.levels[0] if len(t.coded_levels) < len(t.levels) else None
        vs = f" (vs {ad.level_label(t.column, ref)})" if ref is not None else ""
        return t.column, code, f"{ad.label(t.column)}: {ad.level_label(t.column, code)}{vs}"
    return coef, "", coef


# --------------------------------------------------------------------------- tables
def _variance_header(ad: AnalysisData, level: str) -> str:
    if level == ad.study:
        return f"Between-study variance (sigma2 {ad.label(level)})"
    if level == ad.es:
        return f"Within-study variance (sigma2 {ad.label(level)})"
    return f"sigma2 {ad.label(level)}"


def _yes(x: bool) -> str:
    return "yes" if x else "no"


def _sigma2_headers(ad: AnalysisData, levels: Sequence[str]) -> dict[str, str]:
    """``sigma2.<level>`` -> its readable header, for the variance components of ``levels``."""
    return {f"sigma2.{lv}": _variance_header(ad, lv) for lv in levels}


def moderators_records(analyses: ModeratorAnalyses, ad: AnalysisData) -> ResultTable:
    """The table ``moderators``: one row per moderator x category (or term)."""
    headers = columns(
        "moderator moderator_label coded_per type term code category k n_studies",
        MEAN_KEYS,
        CR2_KEYS,
        "in_test k_missing note",
        estimate="Estimate",
        stat="z" if analyses.spec.test == "z" else "t",
    )
    out = []
    level_name = {ad.codebook.parent_table: "study", ad.codebook.child_table: "effect size"}
    for r in analyses.results:
        for row in r.rows:
            out.append(
                {
                    "moderator": r.name,
                    "moderator_label": r.label,
                    "coded_per": level_name.get(r.table, r.table),
                    "type": r.var_type,
                    "term": row.term,
                    "code": row.code,
                    "category": row.label,
                    "k": row.k,
                    "n_studies": row.n_studies,
                    "estimate": row.estimate,
                    "se": row.se,
                    "ci_lb": row.ci_lb,
                    "ci_ub": row.ci_ub,
                    "stat": row.stat,
                    "df": row.df,
                    "p": row.pval,
                    "cr2_se": row.cr2_se,
                    "cr2_df": row.cr2_df,
                    "cr2_ci_lb": row.cr2_ci_lb,
                    "cr2_ci_ub": row.cr2_ci_ub,
                    "cr2_p": row.cr2_pval,
                    "in_test": _yes(row.tested),
                    "k_missing": r.k_missing,
                    "note": row.note,
                }
            )
    return result_table(out, headers, analyses.spec.level)


def moderators_table(analyses: ModeratorAnalyses, ad: AnalysisData) -> pd.DataFrame:
    """The readable table ``moderators.csv``: one row per moderator x category (or term)."""
    return moderators_records(analyses, ad).to_frame()


def _wild_dict(options: WildBootstrapOptions | None) -> dict | None:
    """The wild bootstrap settings for the JSON, with the method in words (None: not asked)."""
    return None if options is None else {**options.to_dict(), "method": options.describe()}


def _wild_columns(tests: Sequence[ModeratorTest | None]) -> dict[str, str | None]:
    """The wild bootstrap columns of a tests table: its p and the note (JSON only), when a test
    of the table has a bootstrap p value; none otherwise."""
    if not any(t is not None and math.isfinite(t.wild_p) for t in tests):
        return {}
    return {"wild_p": "Wild bootstrap p", "wild_note": None}


def _wild_cells(t: ModeratorTest | None, options: WildBootstrapOptions | None) -> dict:
    return {
        "wild_p": t.wild_p if t else math.nan,
        "wild_note": options.describe() if options else "",
    }


def _test_columns(t: ModeratorTest | None) -> dict:
    nan = math.nan
    return {
        "f": t.stat if t and t.test == "F" else nan,
        "chi2": t.stat if t and t.test != "F" else nan,
        "df1": t.df1 if t else nan,
        "df2": t.df2 if t and t.df2 is not None else nan,
        "p": t.pval if t else nan,
        "cr2_f": t.cr2_fstat if t else nan,
        "cr2_df1": t.cr2_df1 if t else nan,
        "cr2_df2": t.cr2_df2 if t else nan,
        "cr2_p": t.cr2_pval if t else nan,
    }


def moderator_tests_records(analyses: ModeratorAnalyses, ad: AnalysisData) -> ResultTable:
    """The table ``moderator_tests``: one row per moderator; ``p_adj``/``cr2_p_adj`` are the
    p values adjusted across moderators (``moderators.p_adjust``), ``sigma2.<level>`` the
    variance components of its model."""
    adj = _ADJUST.get(analyses.p_adjust)
    levels = list(dict.fromkeys(lv for r in analyses.results for lv in r.sigma2))
    tau2 = any(r.tau2 is not None for r in analyses.results)
    test_keys = ["f", "chi2", "df1", "df2", "p", "p_adj", "cr2_f", "cr2_df1", "cr2_df2", "cr2_p"]
    wild = _wild_columns([r.test for r in analyses.results])
    headers = columns(
        "moderator moderator_label type k n_studies k_missing tested k_test n_studies_test test",
        *(k for k in test_keys if adj or k != "p_adj"),
        *(["cr2_p_adj"] if adj else []),
        *wild,
        *_sigma2_headers(ad, levels),
        *(["tau2"] if tau2 else []),
        "r2 no_test_reason flags",
        p_adj=f"p ({adj})",
        cr2_p_adj=f"CR2 p ({adj})",
        **_sigma2_headers(ad, levels),
        **wild,
    )
    if not adj:
        headers.pop("p_adj")
        headers.pop("cr2_p_adj")
    out = []
    for r in analyses.results:
        t = r.test
        nan = math.nan
        row = {
            "moderator": r.name,
            "moderator_label": r.label,
            "type": r.var_type,
            "k": r.k,
            "n_studies": r.n_studies,
            "k_missing": r.k_missing,
            "tested": (
                "slope" if r.kind == "continuous" else (", ".join(t.categories) if t else "")
            ),
            "k_test": t.k if t else nan,
            "n_studies_test": t.n_studies if t else nan,
            "test": (
                ("F test of the slope" if r.kind == "continuous" else "F test of differences")
                if t and t.test == "F"
                else ("Wald chi-square test" if t else "no test")
            ),
            **_test_columns(t),
        }
        if adj:
            row["p_adj"] = t.p_adj if t else nan
            row["cr2_p_adj"] = t.cr2_p_adj if t else nan
        if wild:
            row.update(_wild_cells(t, analyses.wild_bootstrap))
        for lv in levels:
            row[f"sigma2.{lv}"] = r.sigma2.get(lv, nan)
        if r.tau2 is not None:
            row["tau2"] = r.tau2
        row["r2"] = r.R2 if r.R2 is not None else nan
        row["no_test_reason"] = r.no_test_reason
        row["flags"] = " | ".join(line.split("] ", 1)[-1] for line in r.flags)
        out.append(row)
    return result_table(out, headers)


def moderator_tests_table(analyses: ModeratorAnalyses, ad: AnalysisData) -> pd.DataFrame:
    """The readable table ``moderator_tests.csv``: one row per moderator."""
    return moderator_tests_records(analyses, ad).to_frame()


def multiple_moderators_records(
    mm: MultipleModeratorResult,
    ad: AnalysisData,
    spec: ModelSpec,
    wild_bootstrap: WildBootstrapOptions | None = None,
) -> ResultTable:
    """The table ``multiple_moderators``: coefficients (``row`` = ``coefficient``), the test of
    each moderator (``moderator test``), then the omnibus test (``omnibus test``, with its wild
    bootstrap p value when computed; ``wild_bootstrap`` says how)."""
    wild = _wild_columns([mm.test])
    headers = columns(
        "row variable code coefficient",
        MEAN_KEYS,
        CR2_KEYS,
        "vif_weighted vif_unweighted f chi2 df1 df2 cr2_f cr2_df1 cr2_df2 k",
        "n_studies k_left_out r2 note",
        *_sigma2_headers(ad, list(mm.sigma2)),
        *wild,
        code="Code",
        estimate="Estimate",
        stat="z" if spec.test == "z" else "t",
        **_sigma2_headers(ad, list(mm.sigma2)),
        **wild,
    )
    why = ", ".join(
        f"{v} ({ad.label(v)}) missing in {n}" for v, n in mm.missing_by_variable.items() if n
    )
    used = f"complete cases: {mm.k} effect sizes from {mm.n_studies} studies"
    dropped = (
        f"; {mm.k_dropped} effect size(s) left out ({mm.studies_dropped} whole studies): {why}"
        if mm.k_dropped
        else "; no effect size left out"
    )
    rows = []
    for r in mm.rows:
        rows.append(
            {
                "row": "coefficient",
                "variable": r.term,
                "code": r.code,
                "coefficient": r.label,
                "estimate": r.estimate,
                "se": r.se,
                "ci_lb": r.ci_lb,
                "ci_ub": r.ci_ub,
                "stat": r.stat,
                "df": r.df,
                "p": r.pval,
                "cr2_se": r.cr2_se,
                "cr2_df": r.cr2_df,
                "cr2_ci_lb": r.cr2_ci_lb,
                "cr2_ci_ub": r.cr2_ci_ub,
                "cr2_p": r.cr2_pval,
                "vif_weighted": r.vif_weighted,
                "vif_unweighted": r.vif_unweighted,
            }
        )
    for var, vt in mm.variable_tests.items():
        rows.append(
            {
                "row": "moderator test",
                "variable": var,
                "coefficient": f"{ad.label(var)}: all its coefficients (given the others)",
                **_test_columns(vt),
            }
        )
    t = mm.test
    omni = {
        "row": "omnibus test",
        "variable": ", ".join(mm.variables),
        "coefficient": "All moderators together" if t else f"no model: {mm.reason}",
        **_test_columns(t),
        "k": mm.k,
        "n_studies": mm.n_studies,
        "k_left_out": mm.k_dropped,
        "r2": mm.R2 if mm.R2 is not None else math.nan,
        "note": used + dropped,
    }
    for lv, s2 in mm.sigma2.items():
        omni[f"sigma2.{lv}"] = s2
    if wild:
        omni.update(_wild_cells(t, wild_bootstrap))
    rows.append(omni)
    return result_table(rows, headers, spec.level)


def multiple_moderators_table(
    mm: MultipleModeratorResult,
    ad: AnalysisData,
    spec: ModelSpec,
    wild_bootstrap: WildBootstrapOptions | None = None,
) -> pd.DataFrame:
    """The readable table ``multiple_moderators.csv``: coefficients, then the omnibus test."""
    return multiple_moderators_records(mm, ad, spec, wild_bootstrap).to_frame()


# --------------------------------------------------------------------------- the step
def _no_analysis_reason(analyses: ModeratorAnalyses) -> str:
    """Why no moderator was analysed ("" when one was)."""
    if analyses.results:
        return ""
    if analyses.skipped:
        return "no moderator could be analysed: " + "; ".join(
            f"{name} ({why})" for name, why in analyses.skipped.items()
        )
    return NO_MODERATORS


def run_moderators(
    *,
    effect_sizes: str | Path,
    codebook: str | Path,
    moderators: str | Path,
    tests: str | Path,
    multiple: str | Path,
    json: str | Path,
    flags: str | Path,
    models: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> ModeratorAnalyses:
    """The ``moderators`` step: every moderator alone, then the multiple-moderator model.

    ``models`` is the config's ``models`` section, ``options`` its ``moderators`` section
    (``min_studies``, ``p_adjust``, ``multiple``, ``exclude``, ``min_coverage``,
    ``wild_bootstrap``, whose generators are seeded from ``seed``, the config's);
    ``moderators``, ``tests`` and ``multiple`` are the three tables' files, ``json`` the results
    and ``flags`` the flags (thresholds: ``flag_rules``, the config's ``flags``).
    ``applicable`` in the JSON is false (with ``reason``) when the codebook has no moderator to
    analyse.
    """
    options = dict(options or {})
    rules = FlagRules.from_config(flag_rules)
    spec = ModelSpec.from_config(models)
    ad = load_analysis_data(effect_sizes, codebook, levels=spec.levels)
    min_studies = int(options.get("min_studies", 3))
    p_adjust = options.get("p_adjust", "holm")
    exclude = list(options.get("exclude") or [])
    log.info(
        "moderators: %s; %d effect sizes from %d studies",
        spec.describe(ad.level_names()),
        ad.k,
        ad.n_studies,
    )
    center = options.get("center", "mean")
    wild = WildBootstrapOptions.from_config(options.get("wild_bootstrap"), seed)
    analyses = analyse_moderators(
        ad,
        spec,
        exclude=exclude,
        min_studies=min_studies,
        p_adjust=p_adjust,
        rules=rules,
        center=center,
        scale=options.get("scale") or {},
        wild_bootstrap=wild,
    )
    variables = component_variables(ad.codebook, options.get("multiple"), exclude)
    min_coverage = float(options.get("min_coverage", MIN_COVERAGE))
    mm = multiple_moderator_model(
        ad, variables, spec, min_coverage=min_coverage, rules=rules, wild_bootstrap=wild
    )
    step_flags = Flags("moderators", list(analyses.flags) + list(mm.flags))
    tables = write_tables(
        {
            "moderators": (moderators_records(analyses, ad), moderators),
            "moderator_tests": (moderator_tests_records(analyses, ad), tests),
            "multiple_moderators": (multiple_moderators_records(mm, ad, spec, wild), multiple),
        }
    )
    write_json(
        {
            "step": "moderators",
            "model": spec.describe(ad.level_names()),
            "study": ad.study,
            "effect_size": ad.es,
            "k": ad.k,
            "n_studies": ad.n_studies,
            "applicable": bool(analyses.results),
            "reason": _no_analysis_reason(analyses),
            "min_coverage": min_coverage,
            "notes": {
                "means": "per category: intercept-free model with all observed categories",
                "test": (
                    "omnibus test of differences: the model with intercept on the categories "
                    f"with at least {min_studies} studies (QM; F for t tests); CR2: HTZ Wald "
                    "test of the same contrasts, clustered by study"
                ),
                "p_adjust": f"{p_adjust} across the moderators with a test",
                "wild_bootstrap": wild.describe(),
                "R2": "pseudo-R2 (%) against the intercept-only model on the same rows",
                "centring": (
                    "continuous moderators enter as (x - center) / scale (single.moderators[]."
                    "centring): the intercept is the predicted effect at x = center, the slope "
                    "per scale units"
                ),
            },
            "centring": {"center": center, "scale": dict(options.get("scale") or {})},
            "wild_bootstrap": _wild_dict(wild),
            "single": analyses.to_dict(),
            "multiple": mm.to_dict(),
            "flags": step_flags.lines,
            "level": spec.level,
            "p_adjust": _ADJUST.get(p_adjust),
            "tables": tables,
        },
        json,
    )
    step_flags.write(flags)
    log.info(
        "moderators: %d analysed, %d skipped, %d flag(s)",
        len(analyses.results),
        len(analyses.skipped),
        len(step_flags.lines),
    )
    return analyses
