"""APA-style tables of the analysis results, in Markdown, LaTeX (booktabs) and HTML.

The analysis steps keep their full-precision tables in their JSON (``models/<step>.json``, key
``tables``: rows with machine keys and the readable header of each key; ``docs/results.md``). This
module turns each into a table a person reads: a table number and title, the columns that matter,
numbers rounded as the APA Publication Manual (7th ed., sections 6.36 and 7.21) asks, and a note
saying what the abbreviations mean. It computes nothing: every cell is a value of the step's
table, only rounded (and a lower and upper confidence limit shown together as ``[lower, upper]``).
Columns are chosen by machine key, never by header text; the headers shown are the step's own
(with its confidence level: ``90% CI`` at level 0.90) unless the table's spec names others.

Rounding rules (the column *kinds* below):

====== ===================================================== ==================
kind   used for                                              example
====== ===================================================== ==================
est    g, SE, confidence and prediction limits, statistics   ``0.42``, ``-1.05``
p      p values: 3 decimals, no leading zero, ``< .001``     ``.034``, ``< .001``
r      values that cannot exceed 1 (kappa, alpha, ICC,       ``.84``, ``-.09``
       Kendall's tau, shares): 2 decimals, no leading zero
df     degrees of freedom: integer, or 1 decimal if          ``130``, ``27.8``
       fractional
pct    percentages (I2, R2, % of variance): 1 decimal        ``57.4``
count  k, studies, programmes, rows                          ``131``
var    variance components and other small quantities       ``0.041``
       (sigma2, tau2, Cook's distance, leverage): 3 decimals
value  a statistic that may be a count (trim-and-fill k0,    ``0``, ``3340``,
       fail-safe N): integer if whole, else 2 decimals       ``0.27``
raw    a value as the step wrote it (e.g. an assumed r)     ``0.3``
text   text
====== ===================================================== ==================

A column is given its kind by the table's :class:`TableSpec`, else by its machine key
(:func:`column_kind`). Missing values are empty cells; a minus zero (``-0.00``) is shown as
``0.00``.

>>> fmt_p(0.0004)
'< .001'
>>> fmt_p(0.0346)
'.035'
>>> fmt_df(27.7726)
'27.8'
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from intervention_meta.analyses.records import (
    MEAN_KEYS,
    ResultTable,
    columns,
    read_tables,
    result_table,
)
from intervention_meta.io import read_json, write_json
from intervention_meta.outputs.labels import MeasureLabels, measure_labels, read_measure_labels

log = logging.getLogger(__name__)

FORMATS = ("md", "tex", "html")

#: tables with more columns are set on a landscape page (LaTeX: sideways; Word: a landscape section)
LANDSCAPE_COLUMNS = 8

#: LaTeX tables with more rows run over pages (``longtable``) instead of being shrunk to one
LONG_ROWS = 40

# --------------------------------------------------------------------------- number formatting


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, str):
        return value.strip() == "" or value.strip().lower() == "nan"
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_float(value: Any) -> float | None:
    """The value as a float (None if missing or not a number)."""
    if _missing(value) or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x


def _no_minus_zero(text: str) -> str:
    """``-0.00`` -> ``0.00`` (a value that rounds to zero has no sign)."""
    if text.startswith("-") and not re.search(r"[1-9]", text):
        return text[1:]
    return text


def _drop_leading_zero(text: str) -> str:
    """``0.34`` -> ``.34``, ``-0.09`` -> ``-.09`` (APA: for values that cannot exceed 1)."""
    return re.sub(r"^(-?)0\.", r"\1.", text)


def fmt_fixed(value: Any, decimals: int = 2) -> str:
    """A number rounded to ``decimals`` decimals (``""`` if missing; text passes through)."""
    x = _as_float(value)
    if x is None:
        return "" if _missing(value) else str(value)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return _no_minus_zero(f"{x:.{decimals}f}")


def fmt_est(value: Any) -> str:
    """An estimate (g, SE, a confidence limit, a test statistic): 2 decimals."""
    return fmt_fixed(value, 2)


def fmt_p(value: Any) -> str:
    """A p value: 3 decimals without the leading zero; below .001 as ``< .001``."""
    x = _as_float(value)
    if x is None:
        return "" if _missing(value) else str(value)
    if x < 0.001:
        return "< .001"
    return _drop_leading_zero(f"{x:.3f}")


def fmt_r(value: Any, decimals: int = 2) -> str:
    """A value that cannot exceed 1 in absolute value: no leading zero (``.84``, ``-.09``)."""
    x = _as_float(value)
    if x is None:
        return "" if _missing(value) else str(value)
    return _drop_leading_zero(_no_minus_zero(f"{x:.{decimals}f}"))


def fmt_df(value: Any) -> str:
    """Degrees of freedom: an integer as an integer, a fractional value with 1 decimal."""
    x = _as_float(value)
    if x is None:
        return "" if _missing(value) else str(value)
    if math.isinf(x):
        return "∞"
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.1f}"


def fmt_pct(value: Any) -> str:
    """A percentage: 1 decimal (the % sign is in the header)."""
    return fmt_fixed(value, 1)


def fmt_count(value: Any) -> str:
    """A count (k, studies): an integer."""
    x = _as_float(value)
    if x is None or not math.isfinite(x):
        return "" if _missing(value) else str(value)
    if not float(x).is_integer():
        return fmt_fixed(x, 1)
    return str(int(x))


def fmt_var(value: Any) -> str:
    """A small quantity (a variance component, Cook's distance): 3 decimals."""
    return fmt_fixed(value, 3)


def fmt_value(value: Any) -> str:
    """A statistic that may be a count: an integer if whole, else 2 decimals."""
    x = _as_float(value)
    if x is not None and math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return fmt_est(value)


def fmt_raw(value: Any) -> str:
    """The value as written in the CSV, numbers in their shortest form (``0.3``)."""
    x = _as_float(value)
    if x is None:
        return "" if _missing(value) else str(value)
    return f"{x:g}"


def fmt_text(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "est": fmt_est,
    "p": fmt_p,
    "r": fmt_r,
    "df": fmt_df,
    "pct": fmt_pct,
    "count": fmt_count,
    "var": fmt_var,
    "value": fmt_value,
    "raw": fmt_raw,
    "text": fmt_text,
}


def fmt(value: Any, kind: str) -> str:
    """Format ``value`` as a number of ``kind`` (one of :data:`FORMATTERS`)."""
    try:
        return FORMATTERS[kind](value)
    except KeyError:
        raise ValueError(f"unknown column kind {kind!r}; one of {sorted(FORMATTERS)}") from None


def fmt_ci(lower: Any, upper: Any, kind: str = "est") -> str:
    """A confidence interval as ``[lower, upper]`` (``""`` if both limits are missing)."""
    if _missing(lower) and _missing(upper):
        return ""
    return f"[{fmt(lower, kind)}, {fmt(upper, kind)}]"


_P_KEY = re.compile(r"^(cr2_)?p(_|$)")
_DF_KEY = re.compile(r"^(cr2_)?df\d?$")
_COUNT_KEY = re.compile(r"^(k|n|rows)(_|$)|^(clusters|n_pairs|row_a|row_b)$")
_PCT_KEYS = {"pct", "r2", "i2", "percent_agreement"}
_VAR_KEY = re.compile(r"^(sigma2|tau2|variance|sd$|vi$|cook_d$|hat$)")
_R_KEYS = {"coverage", "consistency", "positive_share_with", "kappa", "alpha", "icc"}


def column_kind(key: str, values: pd.Series | None = None) -> str:
    """The kind of a column from its machine key (and its values, when given).

    A column whose values are not all numbers is text. Otherwise: ``p``, ``p_adj``,
    ``cr2_p`` ... -> p; ``df``, ``df1``, ``cr2_df2`` -> df; ``pct``, ``r2``, ``i2`` -> pct;
    ``k``, ``k_test``, ``n_studies``, ``rows_changed`` ... -> count; ``sigma2...``, ``tau2``,
    ``variance``, ``cook_d``, ``hat`` -> var; shares, coverage, consistency, kappa, alpha, ICC ->
    r; any other number -> est.
    """
    if values is not None:
        present = values[~values.map(_missing)]
        numeric = pd.to_numeric(present, errors="coerce")
        if len(present) and numeric.isna().any():
            return "text"
    if _P_KEY.search(key):
        return "p"
    if _DF_KEY.search(key):
        return "df"
    if key in _PCT_KEYS:
        return "pct"
    if _COUNT_KEY.search(key):
        return "count"
    if _VAR_KEY.search(key):
        return "var"
    if key in _R_KEYS:
        return "r"
    return "est"


# --------------------------------------------------------------------------- specifications
@dataclass(frozen=True)
class Column:
    """One column of an APA table.

    Attributes
    ----------
    source : the machine key of the column (for a CI: the lower limit's key)
    header : the header shown (default: the key's readable header in the step's table; for a
        CI that header without " lower")
    kind : the number kind (default: :func:`column_kind` of the key)
    upper : for a confidence interval shown as ``[lower, upper]``: the upper limit's key
    """

    source: str
    header: str | None = None
    kind: str | None = None
    upper: str | None = None

    def shown(self, headers: Mapping[str, str | None] | None = None) -> str:
        """The header shown, given the readable headers of the table's keys."""
        if self.header:
            return self.header
        readable = (headers or {}).get(self.source) or self.source
        if self.upper:
            return re.sub(r"\s*lower$", "", readable)
        return readable


def plain(*keys: str) -> list[Column]:
    """Columns shown with the header and kind of their key."""
    return [Column(key) for key in keys]


def ci(lower: str = "ci_lb", header: str | None = None, kind: str = "est") -> Column:
    """A CI column from the keys ``<x>_lb``/``<x>_ub`` (``ci_lb``, ``cr2_ci_lb``) or
    ``<x>_lower``/``<x>_upper``."""
    upper = (
        re.sub(r"_lb$", "_ub", lower)
        if lower.endswith("_lb")
        else re.sub(r"_lower$", "_upper", lower)
    )
    return Column(lower, header=header, kind=kind, upper=upper)


RowKinds = Callable[[pd.Series], Mapping[str, str]]
NoteFn = Callable[[pd.DataFrame], str]


@dataclass(frozen=True)
class TableSpec:
    """How one result table becomes an APA table.

    Attributes
    ----------
    title : the table's title (APA: italic title case, below the number)
    columns : the columns shown, in order (``None``: every column of the table)
    note : the general note (what abbreviations mean); a string or a function of the table
        (its rows with their machine keys)
    group : a column whose repeated values are shown once (the first row of each run)
    row_kinds : a function of a row giving other kinds for some of its columns (e.g. the
        variance rows of the overall table get 3 decimals)
    """

    title: str
    columns: Sequence[Column | str] | None = None
    note: str | NoteFn = ""
    group: str | None = None
    row_kinds: RowKinds | None = None


# Notes shared by several tables.
K_NOTE = "k = number of effect sizes"
CI_NOTE = "CI = confidence interval"
CR2_NOTE = (
    "CR2 = cluster-robust (bias-reduced linearization) variance estimator, clustered by study "
    "(the outermost level), "
    "with Satterthwaite degrees of freedom (Pustejovsky & Tipton, 2018)"
)
HTZ_NOTE = (
    "HTZ = the CR2 Wald test with the Hotelling's T-squared approximation "
    "(Tipton & Pustejovsky, 2015)"
)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p) + "."


def _unique_text(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame:
        return []
    values = [str(v) for v in frame[column].dropna().unique() if str(v).strip()]
    return values


def _overall_kinds(row: pd.Series) -> dict[str, str]:
    if row.get("row") in ("sigma2", "tau2"):
        return {"estimate": "var"}
    return {}


#: the keys of a moderator row that are in the units of the slope, not of g
_SLOPE_KEYS = ("estimate", "se", "ci_lb", "ci_ub", "cr2_se", "cr2_ci_lb", "cr2_ci_ub")


def _moderator_kinds(row: pd.Series) -> dict[str, str]:
    # a slope per unit of a continuous moderator is not a g: 3 decimals
    if str(row.get("term", "")) == "slope":
        return dict.fromkeys(_SLOPE_KEYS, "var")
    return {}


def _bias_kinds(row: pd.Series) -> dict[str, str]:
    if row.get("method_key") == "ranktest":  # Kendall's tau
        return {"value": "r"}
    return {}


def _overall_note(frame: pd.DataFrame) -> str:
    model = _unique_text(frame, "model")
    return _join(
        f"Model: {model[0]}" if model else "",
        K_NOTE,
        CI_NOTE,
        "PI = prediction interval, the range in which the true effect of a new study is expected",
        CR2_NOTE,
        "LRT = likelihood-ratio test of a variance component (fixed at 0 vs. free); its p is also "
        "given halved, which accounts for testing on the boundary (Self & Liang, 1987)",
        "Q = test of residual heterogeneity",
    )


def _multiple_note(frame: pd.DataFrame) -> str:
    parts = []
    omnibus = frame[frame["row"] == "omnibus test"] if "row" in frame else frame.iloc[0:0]
    if not omnibus.empty:
        row = omnibus.iloc[0]
        k, studies = fmt_count(row.get("k")), fmt_count(row.get("n_studies"))
        if k:
            parts.append(f"Complete cases: k = {k} effect sizes in {studies} studies")
        if not _missing(row.get("k_left_out")):
            parts.append(f"{fmt_count(row.get('k_left_out'))} effect sizes left out")
        if not _missing(row.get("r2")):
            parts.append(f"pseudo-R² = {fmt_pct(row.get('r2'))}%")
    return _join(
        *parts,
        "coefficients are differences from each factor's reference category, given the others",
        "F rows test all coefficients of a moderator (or all moderators together)",
        "VIF = variance inflation factor (GLS-weighted)",
        CI_NOTE,
        CR2_NOTE,
        HTZ_NOTE,
        _wild_note(frame),
    )


def _wild_note(frame: pd.DataFrame) -> str:
    """How the wild bootstrap p values were computed (the moderator step's ``wild_note``), when
    the table shows some."""
    if "wild_p" not in frame or frame["wild_p"].map(_missing).all():
        return ""
    return "; ".join(_unique_text(frame, "wild_note"))


def _consistency_note(frame: pd.DataFrame) -> str:
    rules = _unique_text(frame, "positive_rule")
    return _join(
        "Programme = one study",
        "coverage = share of programmes with a known value that have the component",
        "consistency = share of programmes with a positive effect that have the component",
        f"positive effect ({rules[0]})" if rules else "",
    )


def _bias_note(frame: pd.DataFrame) -> str:
    aggregated = (
        frame[frame["aggregated"].fillna(False).astype(bool)]
        if "aggregated" in frame
        else frame.iloc[0:0]
    )
    why = _unique_text(aggregated, "why")
    return _join(
        "The Egger-type tests in the three-level model, the selection model (composite "
        "likelihood; sandwich variance and bootstrap of studies) and PET-PEESE in the "
        "three-level model use all effect sizes",
        f"the other methods use study averages ({why[0]})" if why else "",
        "Selection model: Value = likelihood-ratio test of selection, which rejects too often "
        "with dependent effect sizes (Rodgers & Pustejovsky, 2021); the Note gives the "
        "selection weights and the bootstrap CI",
        "Adjusted estimate = the method's bias-adjusted pooled effect (for the regression tests, "
        "the intercept: the expected effect of a study with SE 0)",
        K_NOTE + " (or studies, for study averages)",
        CI_NOTE,
        CR2_NOTE,
    )


def _estimators_note(frame: pd.DataFrame) -> str:
    return _join(
        "Every model fitted to the same effect sizes",
        "one-level models treat effect sizes as independent",
        "τ² = between-effect variance of a one-level model",
        "σ² = variance components of the multilevel model",
        "CHE = correlated and hierarchical effects working model (Pustejovsky & Tipton, 2022)",
        K_NOTE,
        CI_NOTE,
        CR2_NOTE,
    )


_EST = [Column("estimate"), Column("se"), ci()]
#: ``{es}`` in a header is the symbol of the effect measure (``g``, ``log OR``, ``z``, ...)
ES = "{es}"
_G = [Column("estimate", header=ES), Column("se"), ci()]
#: the pooled estimate and its intervals back-transformed (OR, RR, r, ...; see _with_back)
_BACK = [Column("back_estimate"), ci("back_ci_lb"), ci("back_pi_lb")]
_TEST = [Column("stat", kind="est"), Column("df"), Column("p")]
_CR2 = [ci("cr2_ci_lb"), Column("cr2_df"), Column("cr2_p")]
_K = Column("k", header="k")
_K_STUDIES = [_K, Column("n_studies")]
_SIGMA2 = [
    Column("sigma2_between", header="sigma2 between", kind="var"),
    Column("sigma2.*", kind="var"),  # the levels of models.levels besides study and effect
    Column("sigma2_within", header="sigma2 within", kind="var"),
]

SPECS: dict[str, TableSpec] = {
    "overall": TableSpec(
        title="Overall Effect: Pooled Estimate, Variance Components and Heterogeneity",
        columns=[
            Column("result"),
            *_EST,
            Column("test"),
            *_TEST,
            Column("p_halved", header="p (halved)"),
            ci("pi_lb"),
            *_BACK,
            *_K_STUDIES,
        ],
        note=_overall_note,
        row_kinds=_overall_kinds,
    ),
    "overall_domains": TableSpec(
        title="Overall Effect per Outcome Domain",
        columns=[
            Column("domain"),
            *_K_STUDIES,
            *_G,
            Column("stat", header="t/z", kind="est"),
            *plain("df", "p"),
            ci("pi_lb"),
            *_BACK,
            *_CR2,
            Column("note"),
        ],
        note=lambda frame: _join(
            "Each domain analysed separately with the analysis model",
            K_NOTE,
            CI_NOTE,
            "PI = prediction interval",
            CR2_NOTE,
            "with fewer than 4 Satterthwaite df the CR2 results are unreliable (Tipton, 2015)",
        ),
    ),
    "variance_distribution": TableSpec(
        title="Distribution of the Variance over the Levels",
        columns=[
            Column("level", kind="text"),
            *plain("source", "parameter"),
            Column("variance", kind="var"),
            Column("sd", kind="var"),
            Column("pct"),
        ],
        note=_join(
            "Level 1 = sampling error (the typical sampling variance; Higgins & Thompson, 2002)",
            "level 2 = the innermost random level (by default between effect sizes within "
            "studies), the highest level = variance between studies",
            "% of total variance = each level's share of the total variance (Cheung, 2014; "
            "Assink & Wibbelink, 2016)",
        ),
    ),
    "overall_comparison": TableSpec(
        title="The Analysis Model Compared with a Two-Level and a Fixed-Effect Model",
        columns=[
            *plain("model", "analysis_model", "method"),
            *_G,
            *_SIGMA2,
            Column("tau2", kind="var"),
            Column("loglik", kind="est"),
            Column("aic", kind="est"),
            Column("likelihood"),
            *_K_STUDIES,
        ],
        note=_join(
            "The same effect sizes fitted three ways",
            "logLik and AIC compare only fits with the same likelihood (REML fits with the same "
            "fixed effects); the fixed-effect model is fitted by ML",
            "σ² = variance component of the multilevel model; τ² = between-effect variance",
            K_NOTE,
            CI_NOTE,
        ),
    ),
    "moderator_tests": TableSpec(
        title="Moderator Analyses: Tests of Differences between Categories",
        columns=[
            Column("moderator_label", header="Moderator"),
            *_K_STUDIES,
            Column("k_test"),
            Column("f", kind="est"),
            Column("chi2", kind="est"),
            *plain("df1", "df2", "p", "p_adj"),
            Column("cr2_f", kind="est"),
            *plain("cr2_df1", "cr2_df2", "cr2_p", "cr2_p_adj"),
            Column("wild_p", kind="p"),
            *plain("r2", "no_test_reason"),
        ],
        note=lambda frame: _join(
            "Each moderator in its own three-level meta-regression",
            "categories with too few studies are reported but left out of the test",
            "p (Holm) = adjusted for the number of moderators tested (Holm, 1979)",
            "R² = pseudo-R², the reduction of the total variance against the model without the "
            "moderator",
            K_NOTE,
            CR2_NOTE,
            HTZ_NOTE,
            _wild_note(frame),
        ),
    ),
    "moderators": TableSpec(
        title="Moderator Analyses: Mean Effect per Category",
        columns=[
            Column("moderator_label", header="Moderator"),
            Column("category"),
            *_K_STUDIES,
            *_G,
            *_TEST,
            *_CR2,
            Column("in_test"),
        ],
        note=_join(
            "Category means from the three-level model without intercept; for a continuous "
            "moderator the intercept and the slope per unit (3 decimals)",
            "In test = whether the category has enough studies to enter the test of differences",
            K_NOTE,
            CI_NOTE,
            CR2_NOTE,
        ),
        group="moderator_label",
        row_kinds=_moderator_kinds,
    ),
    "multiple_moderators": TableSpec(
        title="Multiple-Moderator Model of the Intervention Components",
        columns=[
            Column("coefficient", header="Term"),
            Column("estimate", header="b"),
            Column("se"),
            ci(),
            Column("stat", kind="est"),
            Column("df"),
            Column("f", kind="est"),
            Column("chi2", kind="est"),
            *plain("df1", "df2", "p"),
            ci("cr2_ci_lb"),
            Column("cr2_df"),
            Column("cr2_f", kind="est"),
            *plain("cr2_df2", "cr2_p"),
            Column("wild_p", kind="p"),
            Column("vif_weighted", header="VIF", kind="est"),
        ],
        note=_multiple_note,
    ),
    "component_profiles": TableSpec(
        title="Component Profiles: Pooled Effect of the Combinations of Components that Occur",
        columns=[
            Column("profile"),
            Column("n_programmes", header="Programmes"),
            _K,
            *_G,
            *_TEST,
            Column("note"),
        ],
        note=_join(
            "Profile = the set of components a programme has (the others absent)",
            "means from one three-level model with the profile as a factor, no intercept",
            K_NOTE,
            CI_NOTE,
        ),
    ),
    "component_consistency": TableSpec(
        title="Components of the Programmes with a Positive Effect",
        columns=[
            Column("component_label", header="Component"),
            Column("n_known", header="Programmes (known)"),
            Column("n_with", header="With it"),
            Column("coverage", header="Coverage"),
            Column("n_positive", header="Positive"),
            Column("n_positive_with", header="Positive with it"),
            Column("consistency", header="Consistency"),
            Column("positive_share_with", header="Positive among those with it"),
            Column("n_missing", header="Missing"),
        ],
        note=_consistency_note,
    ),
    "bias": TableSpec(
        title="Publication Bias and Small-Study Effects",
        columns=[
            *plain("method", "data", "k", "statistic"),
            Column("value", kind="value"),
            *plain("df", "p"),
            Column("estimate", kind="est"),
            Column("se"),
            ci(),
        ],
        note=_bias_note,
        row_kinds=_bias_kinds,
    ),
    "sensitivity_summary": TableSpec(
        title="Sensitivity Analyses: The Pooled Effect under Other Choices",
        columns=[
            *plain("analysis", "changed"),
            *_K_STUDIES,
            *_EST,
            *plain("df", "p"),
        ],
        note=_join(K_NOTE, CI_NOTE, "CHE = correlated and hierarchical effects working model"),
    ),
    "sensitivity_leave_one_out": TableSpec(
        title="Sensitivity Analyses: Leaving One Study Out",
        columns=[
            Column("study", kind="text"),
            *_K_STUDIES,
            *_EST,
            *plain("df", "p"),
            *_SIGMA2,
            Column("converged"),
        ],
        note=_join(
            "The analysis model refitted without each study",
            "σ² = variance component between and within studies",
            K_NOTE,
            CI_NOTE,
        ),
    ),
    "sensitivity_influence": TableSpec(
        title="Sensitivity Analyses: Influence of Each Study",
        columns=[
            Column("study", kind="text"),
            _K,
            Column("cook_d"),
            Column("dfbetas.intrcpt", header="DFBETAS", kind="est"),
            Column("hat", header="Leverage"),
            Column("x2", header="X2", kind="est"),
            Column("estimate_without", header=f"{ES} without it", kind="est"),
        ],
        note=_join(
            "Cluster-level deletion diagnostics as metafor (Viechtbauer & Cheung, 2010)",
            "Leverage = sum of the study's hat values",
            "X² = the study's studentized deleted residuals combined (χ² with k df)",
            K_NOTE,
        ),
    ),
    "sensitivity_outliers": TableSpec(
        title="Sensitivity Analyses: Studentized Deleted Residuals of the Effect Sizes",
        columns=[
            Column("effect_size", kind="text"),
            Column("study", kind="text"),
            Column("yi", header=ES),
            Column("vi"),
            Column("z", header="Residual", kind="est"),
            Column("removed"),
        ],
        note=_join(
            "Each effect size against the model refitted without it (Viechtbauer & Cheung, 2010)",
            "sorted by the size of the residual",
        ),
    ),
    "sensitivity_estimators": TableSpec(
        title="Sensitivity Analyses: Estimators and Working Models",
        columns=[
            *plain("model", "inference"),
            *_EST,
            *plain("df", "p"),
            Column("tau2", header="tau2", kind="var"),
            *_SIGMA2,
            Column("i2"),
            _K,
        ],
        note=_estimators_note,
    ),
    "sensitivity_assumptions": TableSpec(
        title="Sensitivity Analyses: Assumptions of the Effect-Size Computation Varied",
        columns=[
            Column("assumption"),
            Column("value", kind="raw"),
            Column("main"),
            Column("rows_assumed", header="Rows assuming it"),
            Column("rows_changed"),
            *_EST,
            Column("p"),
            _K,
        ],
        note=_join(
            "The effect sizes recomputed with another assumed value where a study did not report "
            "it, and the analysis model refitted",
            K_NOTE,
            CI_NOTE,
        ),
    ),
    "reliability_agreement": TableSpec(
        title="Inter-Rater Reliability of the Double-Coded Studies",
        columns=[
            Column("label", header="Variable"),
            Column("statistic", header="Statistic"),
            Column("n_pairs", header="Pairs", kind="count"),
            Column("percent_agreement", header="% agreement", kind="pct"),
            Column("kappa", header="kappa", kind="r"),
            ci("kappa_ci_lower", header="kappa 95% CI", kind="r"),
            Column("alpha", header="alpha", kind="r"),
            Column("icc", header="ICC", kind="r"),
            ci("icc_ci_lower", header="ICC 95% CI", kind="r"),
            Column("note", header="Note"),
        ],
        note=_join(
            "kappa = Cohen's kappa (Cohen, 1960; linear weights for ordinal variables)",
            "alpha = Krippendorff's alpha (Krippendorff, 2011)",
            "ICC = ICC(2,1), two-way random, absolute agreement (Shrout & Fleiss, 1979)",
            "Pairs = units coded by both coders",
            CI_NOTE,
        ),
    ),
    "reliability_disagreements": TableSpec(
        title="Disagreements between the Coders",
        columns=[
            Column("unit", header="Unit", kind="text"),
            Column("label", header="Variable"),
            Column("coder_a", header="Coder A"),
            Column("coder_b", header="Coder B"),
            Column("kind", header="Kind"),
            Column("row_a", header="Row (A)", kind="count"),
            Column("row_b", header="Row (B)", kind="count"),
        ],
        note=_join(
            "Every value on which the two coders differ, for the consensus meeting",
            "rows are numbered as in a spreadsheet (header = row 1)",
        ),
    ),
    "study_characteristics": TableSpec(
        title="Characteristics of the Included Studies",
        note=_join(
            "One row per study with at least one effect size in the analysis",
            "values are the codebook's labels (empty: not reported); a variable coded per effect "
            "size lists the study's values",
            "Effect sizes = number of effect sizes analysed (k)",
            "Participants = the largest sample of the study's effect sizes",
        ),
        row_kinds=lambda row: {key: "count" if key in ("k", "n") else "text" for key in row.index},
    ),
}


def default_spec(name: str) -> TableSpec:
    """A table without its own spec: every column, kinds from the headers, the name as title."""
    return TableSpec(title=name.replace("_", " ").capitalize())


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class ApaTable:
    """One APA-style table: number, title, formatted cells and a note.

    Attributes
    ----------
    name : short name (the output file stem, e.g. ``overall``)
    number : the table number
    title : the title
    columns : the headers shown
    rows : the formatted cells, row by row (strings)
    note : the general note (without the "Note." label)
    align : per column ``"l"`` (text) or ``"r"`` (numbers)
    source : the CSV it was made from
    """

    name: str
    number: int
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    align: tuple[str, ...] = ()
    source: str = ""

    @property
    def label(self) -> str:
        return f"Table {self.number}"

    def to_frame(self) -> pd.DataFrame:
        """The formatted table (strings) as a DataFrame."""
        return pd.DataFrame(list(self.rows), columns=list(self.columns))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "number": self.number,
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "note": self.note,
            "source": self.source,
        }

    # ------------------------------------------------------------------ Markdown
    def to_markdown(self) -> str:
        """A pipe table with the number in bold and the title in italics above, the note below."""

        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        lines = [f"**{self.label}**", "", f"*{self.title}*", ""]
        lines.append("| " + " | ".join(style_header(c, "md") for c in self.columns) + " |")
        lines.append("|" + "|".join("---:" if a == "r" else "---" for a in self.align) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(cell(c) for c in row) + " |")
        if not self.rows:
            lines.append("| " + " | ".join("" for _ in self.columns) + " |")
        if self.note:
            lines += ["", f"*Note.* {self.note}"]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ LaTeX
    def to_latex(self) -> str:
        """A booktabs table (``\\toprule``/``\\midrule``/``\\bottomrule``) that fits the page.

        A table of more than :data:`LANDSCAPE_COLUMNS` columns is set sideways (``rotating``'s
        ``sidewaystable``; a long one in ``pdflscape``'s ``landscape``). A table of up to
        :data:`LONG_ROWS` rows is shrunk to the text width (and 80% of the page's height) when
        larger (``adjustbox``'s ``max width`` and ``max totalheight``, never enlarged); a longer
        one runs over pages as a ``longtable`` with its column heads repeated on every page.
        Needs ``booktabs``, ``adjustbox`` and ``rotating`` (long tables: ``longtable`` and
        ``pdflscape``), as its first line says."""
        spec = "".join(self.align)
        wide = len(self.columns) > LANDSCAPE_COLUMNS
        head = " & ".join(style_header(c, "tex") for c in self.columns) + " \\\\"
        body = [" & ".join(latex_escape(c) for c in row) + " \\\\" for row in self.rows]
        caption = f"\\caption{{{latex_escape(self.title)}}}"
        label = f"\\label{{tab:{self.name}}}"
        note = []
        if self.note:
            note = [
                "",
                "\\smallskip",
                "\\parbox{\\linewidth}{\\footnotesize \\textit{Note.} "
                + latex_escape(self.note)
                + "}",
            ]
        if len(self.rows) > LONG_ROWS:
            more = f"\\multicolumn{{{len(self.columns)}}}{{r}}{{\\textit{{continued}}}} \\\\"
            lines = [
                "% requires \\usepackage{booktabs, longtable, pdflscape}",
                *(["\\begin{landscape}"] if wide else []),
                "\\begingroup",
                "\\footnotesize",
                f"\\begin{{longtable}}{{{spec}}}",
                f"{caption}{label} \\\\",
                "\\toprule",
                head,
                "\\midrule",
                "\\endfirsthead",
                "\\toprule",
                head,
                "\\midrule",
                "\\endhead",
                "\\midrule",
                more,
                "\\endfoot",
                "\\bottomrule",
                "\\endlastfoot",
                *body,
                "\\end{longtable}",
                *note[1:],
                "\\endgroup",
                *(["\\end{landscape}"] if wide else []),
            ]
            return "\n".join(lines) + "\n"
        env = "sidewaystable" if wide else "table"
        height = "0.8\\textwidth" if wide else "0.8\\textheight"
        lines = [
            "% requires \\usepackage{booktabs, adjustbox, rotating}",
            f"\\begin{{{env}}}" + ("" if wide else "[htbp]"),
            "\\centering",
            "\\small",
            caption,
            label,
            f"\\begin{{adjustbox}}{{max width=\\linewidth, max totalheight={height}}}",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            head,
            "\\midrule",
            *body,
            "\\bottomrule",
            "\\end{tabular}",
            "\\end{adjustbox}",
            *note,
            f"\\end{{{env}}}",
        ]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ HTML
    def to_html_fragment(self) -> str:
        """The table as an HTML ``<figure class="apa-table">`` (for embedding in a page)."""
        esc = html.escape
        out = [f'<figure class="apa-table" id="table-{esc(self.name)}">']
        out.append(
            f'<figcaption><span class="apa-number">{esc(self.label)}</span>'
            f'<span class="apa-title">{esc(self.title)}</span></figcaption>'
        )
        out.append('<div class="apa-scroll"><table class="apa">')
        out.append(
            "<thead><tr>"
            + "".join(
                f'<th class="{"num" if a == "r" else "txt"}">{style_header(c, "html")}</th>'
                for c, a in zip(self.columns, self.align, strict=True)
            )
            + "</tr></thead>"
        )
        out.append("<tbody>")
        for row in self.rows:
            out.append(
                "<tr>"
                + "".join(
                    f'<td class="{"num" if a == "r" else "txt"}">{esc(c)}</td>'
                    for c, a in zip(row, self.align, strict=True)
                )
                + "</tr>"
            )
        out.append("</tbody></table></div>")
        if self.note:
            out.append(f'<p class="apa-note"><em>Note.</em> {esc(self.note)}</p>')
        out.append("</figure>")
        return "\n".join(out)

    def to_html(self) -> str:
        """A standalone HTML page holding the table (inline CSS, no external reference).

        The table itself sits between ``<!-- apa-table:start -->`` and ``<!-- apa-table:end -->``
        (see :func:`html_fragment`), so a report can embed it.
        """
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(self.label)}. {html.escape(self.title)}</title>\n"
            f"<style>\n{APA_CSS}\n</style>\n</head>\n<body>\n"
            f"{FRAGMENT_START}\n{self.to_html_fragment()}\n{FRAGMENT_END}\n"
            "</body>\n</html>\n"
        )

    def render(self, fmt_name: str) -> str:
        """The table in one of :data:`FORMATS`."""
        if fmt_name == "md":
            return self.to_markdown()
        if fmt_name == "tex":
            return self.to_latex()
        if fmt_name == "html":
            return self.to_html()
        raise ValueError(f"unknown format {fmt_name!r}; one of {FORMATS}")


FRAGMENT_START = "<!-- apa-table:start -->"
FRAGMENT_END = "<!-- apa-table:end -->"

#: CSS of the APA tables (used by the standalone pages and the report)
APA_CSS = """
figure.apa-table { margin: 1.5em 0; }
figure.apa-table figcaption { margin-bottom: .4em; }
.apa-number { display: block; font-weight: bold; }
.apa-title { display: block; font-style: italic; }
.apa-scroll { overflow-x: auto; }
table.apa { border-collapse: collapse; font-size: .85em; border-top: 2px solid #000;
  border-bottom: 2px solid #000; }
table.apa thead th { border-bottom: 1px solid #000; padding: .3em .6em; vertical-align: bottom; }
table.apa td { padding: .2em .6em; vertical-align: top; }
table.apa .num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.apa .txt { text-align: left; }
table.apa td.txt { max-width: 28em; }
table.apa td.txt:first-child { min-width: 9em; }
p.apa-note { font-size: .85em; max-width: 60em; margin-top: .4em; }
""".strip()

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "∞": r"$\infty$",
    "σ": r"$\sigma$",
    "τ": r"$\tau$",
    "χ": r"$\chi$",
    "²": r"\textsuperscript{2}",
    "⊕": r"$\oplus$",
    "◯": r"$\bigcirc$",
    # the footnote marks of the GRADE summary of findings (outputs.grade.FOOTNOTE_MARKS)
    **{
        m: rf"\textsuperscript{{{c}}}"
        for m, c in zip("ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", "abcdefghijklmnoprstuvwxyz", strict=True)
    },
}


#: header words shown as symbols: (HTML/Markdown text, LaTeX)
_SYMBOLS = {
    "tau2": ("τ²", r"$\tau^2$"),
    "sigma2": ("σ²", r"$\sigma^2$"),
    "I2": ("I²", r"$I^2$"),
    "R2": ("R²", r"$R^2$"),
    "X2": ("X²", r"$X^2$"),
    "kappa": ("κ", r"$\kappa$"),
    "alpha": ("α", r"$\alpha$"),
}
#: statistical symbols set in italics (APA 7th ed., section 6.45)
_ITALIC = {"k", "g", "b", "SE", "p", "t", "F", "df", "z", "r", "Q", "N", "I2", "R2", "X2"}
_TOKEN = re.compile(r"^(df)(\d)$")


def style_header(header: str, fmt_name: str) -> str:
    """A header with statistical symbols in italics and Greek letters (``tau2`` -> τ²).

    ``fmt_name`` is ``"md"``, ``"tex"`` or ``"html"``; the result is escaped for that format.
    """
    parts = re.split(r"(\s+|[()/,\[\]])", header)
    out = []
    for part in parts:
        if not part:
            continue
        m = _TOKEN.match(part)
        word, suffix = (m.group(1), m.group(2)) if m else (part, "")
        if word not in _ITALIC and word not in _SYMBOLS:
            out.append(
                latex_escape(part)
                if fmt_name == "tex"
                else html.escape(part)
                if fmt_name == "html"
                else part.replace("|", "\\|")
            )
            continue
        text, tex = _SYMBOLS.get(word, (word, None))
        if fmt_name == "tex":
            styled = tex if tex is not None else f"\\textit{{{latex_escape(word)}}}"
        elif fmt_name == "html":
            styled = f"<i>{html.escape(text)}</i>" if word in _ITALIC else html.escape(text)
        else:
            styled = f"*{text}*" if word in _ITALIC else text
        out.append(styled + suffix)
    return "".join(out)


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``&``, ``%``, ``_``, ``<`` ...) in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def html_fragment(page: str) -> str:
    """The table fragment of a page written by :meth:`ApaTable.to_html`."""
    start, end = page.find(FRAGMENT_START), page.find(FRAGMENT_END)
    if start < 0 or end < 0:
        raise ValueError("not an APA table page (no apa-table markers)")
    return page[start + len(FRAGMENT_START) : end].strip()


# --------------------------------------------------------------------------- building
def _as_result_table(table: ResultTable | pd.DataFrame) -> ResultTable:
    """A step's table; a bare frame (columns = machine keys) is its own header map."""
    if isinstance(table, ResultTable):
        return table
    return ResultTable({c: c for c in table.columns}, tuple(table.to_dict("records")))


def _resolve_columns(frame: pd.DataFrame, spec: TableSpec) -> list[Column]:
    """The spec's columns that the table has (all of them when the spec names none); a source
    ending in ``*`` stands for every column of the table that starts with the rest."""
    if spec.columns is None:
        return [Column(c) for c in frame.columns]
    out = []
    for col in spec.columns:
        col = Column(col) if isinstance(col, str) else col
        if col.source.endswith("*"):
            prefix = col.source[:-1]
            out += [replace(col, source=c) for c in frame.columns if c.startswith(prefix)]
        elif col.source in frame.columns and (col.upper is None or col.upper in frame.columns):
            out.append(col)
        else:
            log.debug("column %r not in the table; not shown", col.source)
    return out


def _empty(frame: pd.DataFrame, col: Column) -> bool:
    if col.upper is not None:
        return bool(frame[col.source].map(_missing).all() and frame[col.upper].map(_missing).all())
    return bool(frame[col.source].map(_missing).all())


#: the rows of the overall tables whose estimate is a pooled effect (not a variance)
_POOLED_ROWS = ("mean", "mean_cr2")


def _with_back(result: ResultTable, labels: MeasureLabels) -> ResultTable:
    """``result`` with the pooled estimate, CI and PI back-transformed (``back_estimate``,
    ``back_ci_lb``, ..., ``back_pi_ub``) on its pooled rows; unchanged without a back-transform.

    A row without ``row`` (the per-domain table: one pooled row per domain) counts as pooled.
    """
    if not labels.has_back:
        return result
    sym = labels.back_symbol or labels.back_name or ""
    headers = {
        "back_estimate": sym,
        "back_ci_lb": f"{sym} {{pct}} CI lower",
        "back_ci_ub": f"{sym} {{pct}} CI upper",
        "back_pi_lb": f"{sym} {{pct}} PI lower",
        "back_pi_ub": f"{sym} {{pct}} PI upper",
    }
    pct = re.sub(r"\s*CI lower$", "", result.columns.get("ci_lb") or "") or "95%"
    rows = []
    for row in result.rows:
        row = dict(row)
        if row.get("row", "mean") in _POOLED_ROWS and not _missing(row.get("estimate")):
            back = labels.back_transformed(
                row.get("estimate"),
                row.get("ci_lb"),
                row.get("ci_ub"),
                row.get("pi_lb"),
                row.get("pi_ub"),
            )
            row.update({f"back_{k}": v for k, v in back.to_dict().items() if k in _BACK_KEYS})
        rows.append(row)
    cols = {**result.columns, **{k: h.replace("{pct}", pct) for k, h in headers.items()}}
    return ResultTable(cols, tuple(rows))


_BACK_KEYS = ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub")


def _back_note(labels: MeasureLabels) -> str:
    """What the back-transformed columns are (empty without a back-transform)."""
    if not labels.has_back:
        return ""
    how = {
        "exp": "exp(x)",
        "tanh": "tanh(x), Fisher's z to r",
        "expit": "1 / (1 + exp(-x)), the inverse logit",
    }[str(labels.back_transform)]
    return (
        f"{labels.back_symbol} = the pooled {labels.name} and its limits back-transformed to the "
        f"{labels.back_name} scale ({how})"
    )


def _measure_spec(spec: TableSpec, labels: MeasureLabels, name: str) -> TableSpec:
    """``spec`` with the measure's symbol in its headers and, for a table of effects, the
    measure and its direction in the note."""
    cols = None
    if spec.columns is not None:
        cols = [
            replace(c, header=c.header.replace(ES, labels.symbol))
            if isinstance(c, Column) and c.header and ES in c.header
            else c
            for c in spec.columns
        ]
    if name.startswith("reliability_") or name == "study_characteristics":  # not about effects
        return replace(spec, columns=cols)
    base = spec.note
    back = any(isinstance(c, Column) and c.source == "back_estimate" for c in cols or ())

    def note(frame: pd.DataFrame) -> str:
        text = base(frame) if callable(base) else base
        if back:
            text = _join(text.rstrip("."), _back_note(labels))
        return f"{text} {labels.direction_note()}".strip()

    return replace(spec, columns=cols, note=note)


def apa_table(
    table: ResultTable | pd.DataFrame,
    name: str,
    number: int,
    spec: TableSpec | None = None,
    *,
    source: str = "",
    labels: MeasureLabels | None = None,
) -> ApaTable:
    """Make the APA table of one result table.

    Parameters
    ----------
    table : the step's table (full precision, machine keys; see ``docs/results.md``); a frame
        is taken as the rows, its column names as the keys and the headers
    name : the table's short name; its spec is ``SPECS[name]`` unless ``spec`` is given
    number : the table number
    spec : how to show it (default: :data:`SPECS` or :func:`default_spec`)
    source : where the table was read from, recorded in the result
    labels : the effect measure (``effect_sizes_summary.json``; default: SMD): its symbol heads
        the effect columns, its direction ends the note, and the pooled rows of the overall
        tables get the back-transformed estimate, CI and PI (OR, RR, r, ...)

    Returns
    -------
    ApaTable
        Columns that are empty in every row are left out; repeated values of the spec's
        ``group`` column are shown once. Headers are the step's readable headers (with its
        confidence level) unless the spec names others.
    """
    labels = labels if labels is not None else measure_labels(None)
    result = _as_result_table(table)
    if name in ("overall", "overall_domains"):
        result = _with_back(result, labels)
    frame = result.frame()
    spec = _measure_spec(spec or SPECS.get(name) or default_spec(name), labels, name)
    columns = [c for c in _resolve_columns(frame, spec) if not _empty(frame, c)]
    kinds = {
        c.source: c.kind or column_kind(c.source, frame[c.source] if c.upper is None else None)
        for c in columns
    }
    rows = []
    previous = None
    for _, row in frame.iterrows():
        override = dict(spec.row_kinds(row)) if spec.row_kinds else {}
        cells = []
        for c in columns:
            kind = override.get(c.source, kinds[c.source])
            if c.upper is not None:
                cells.append(fmt_ci(row[c.source], row[c.upper], kind))
            else:
                cells.append(fmt(row[c.source], kind))
        if spec.group is not None and spec.group in [c.source for c in columns]:
            j = [c.source for c in columns].index(spec.group)
            value = cells[j]
            if value == previous:
                cells[j] = ""
            previous = value
        rows.append(tuple(cells))
    align = tuple("l" if kinds[c.source] == "text" else "r" for c in columns)
    note = spec.note(frame) if callable(spec.note) else spec.note
    if frame.empty:
        note = _join("No rows", note.rstrip(".")) if note else "No rows."
    return ApaTable(
        name=name,
        number=number,
        title=spec.title,
        columns=tuple(c.shown(result.columns) for c in columns),
        rows=tuple(rows),
        note=note,
        align=align,
        source=str(source),
    )


#: the keys of the per-domain table, with the readable headers they differ by
DOMAIN_HEADERS = columns(
    "domain k n_studies", MEAN_KEYS, "pi_lb pi_ub cr2_ci_lb cr2_ci_ub cr2_df cr2_p note"
)


def domain_overall_table(
    tables: Mapping[str, ResultTable],
    labels: Mapping[str, str] | None = None,
    level: float | None = None,
) -> ResultTable:
    """One row per domain from the per-domain overall tables (values copied, none computed).

    Parameters
    ----------
    tables : domain code -> that domain's table ``overall`` (``models/overall.json``)
    labels : domain code -> label (default: the code)
    level : the confidence level of the analyses (for the headers)

    Returns
    -------
    ResultTable
        ``domain``, the model-based row's (``row`` = ``mean``) estimate, SE, CI, statistic, df,
        p, PI, k and studies, and the CR2 row's (``mean_cr2``) CI, df and p; a domain whose
        model is not estimable keeps its note.
    """
    labels = dict(labels or {})
    out = []
    for code, table in tables.items():
        frame = table.frame()
        row: dict[str, Any] = {"domain": labels.get(code, code)}
        model = frame[frame["row"] == "mean"]
        robust = frame[frame["row"] == "mean_cr2"]
        if not model.empty:
            m = model.iloc[0]
            keys = ("k", "n_studies", "estimate", "se", "ci_lb", "ci_ub", "stat", "df", "p")
            row.update({key: m.get(key) for key in (*keys, "pi_lb", "pi_ub")})
            row["note"] = m.get("note") if _missing(m.get("estimate")) else ""
        if not robust.empty:
            r = robust.iloc[0]
            row.update(
                {
                    "cr2_ci_lb": r.get("ci_lb"),
                    "cr2_ci_ub": r.get("ci_ub"),
                    "cr2_df": r.get("df"),
                    "cr2_p": r.get("p"),
                }
            )
        out.append(row)
    return result_table(out, DOMAIN_HEADERS, level)


def apa_tables(
    tables: Mapping[str, ResultTable | pd.DataFrame],
    sources: Mapping[str, str] | None = None,
    labels: MeasureLabels | None = None,
) -> list[ApaTable]:
    """APA tables of several result tables, numbered 1, 2, ... in the given order, labelled
    with the effect measure ``labels`` (see :func:`apa_table`)."""
    sources = dict(sources or {})
    return [
        apa_table(table, name, number, source=sources.get(name, ""), labels=labels)
        for number, (name, table) in enumerate(tables.items(), start=1)
    ]


def write_apa_tables(tables: Sequence[ApaTable], outdir: str | Path) -> dict[str, dict[str, str]]:
    """Write every table as ``<name>.md``, ``.tex``, ``.html`` and ``.docx`` (Word, the cells of
    the HTML table: :func:`intervention_meta.outputs.docx.write_table_docx`) and a
    ``tables.json`` index.

    Returns
    -------
    dict
        table name -> format -> path written.
    """
    from intervention_meta.outputs.docx import write_table_docx

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, dict[str, str]] = {}
    for table in tables:
        paths[table.name] = {}
        for ext in FORMATS:
            path = outdir / f"{table.name}.{ext}"
            path.write_text(table.render(ext), encoding="utf-8")
            paths[table.name][ext] = str(path)
        paths[table.name]["docx"] = str(write_table_docx(table, outdir / f"{table.name}.docx"))
        log.info("%s (%s): %d rows", table.label, table.name, len(table.rows))
    index = {
        "tables": [
            {
                "name": t.name,
                "number": t.number,
                "title": t.title,
                "note": t.note,
                "source": t.source,
                "n_rows": len(t.rows),
                "files": paths[t.name],
            }
            for t in tables
        ]
    }
    write_json(index, outdir / "tables.json")
    return paths


def read_result_table(path: str | Path, table: str | None = None) -> ResultTable:
    """Table ``table`` of a step's JSON (``models/<step>.json``), or, with ``table`` None, a data
    CSV whose headers are machine keys (the coding step's reliability tables), as text."""
    if table is not None:
        tables = read_tables(read_json(path))
        if table not in tables:
            raise KeyError(f"{path} has no table {table!r} (it has {sorted(tables)})")
        return tables[table]
    return _as_result_table(pd.read_csv(path, dtype=str, keep_default_na=True))


# --------------------------------------------------------------------------- the step
def level_labels(codebook: str | Path, variable: str, codes: Sequence[str]) -> dict[str, str]:
    """The codebook label of each code of ``variable`` (the code itself if it has none)."""
    from intervention_meta.data.codebook import load_codebook

    cb = load_codebook(codebook)
    out = {}
    for code in codes:
        try:
            out[code] = str(cb.level_label(variable, code))
        except (KeyError, ValueError, AttributeError):
            out[code] = code
    return out


@dataclass(frozen=True)
class TablesResult:
    """What the tables step wrote: the tables and their files."""

    tables: tuple[ApaTable, ...]
    files: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tables": [t.to_dict() for t in self.tables], "files": self.files}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"number": t.number, "name": t.name, "title": t.title, "rows": len(t.rows)}
                for t in self.tables
            ]
        )


#: where each APA table comes from: name -> (step JSON, table in it); a name not listed (the
#: sensitivity tables ``sensitivity_<x>``) is table ``<x>`` of ``sensitivity``
TABLE_SOURCES: dict[str, tuple[str, str]] = {
    "overall": ("overall", "overall"),
    "variance_distribution": ("overall", "variance_distribution"),
    "overall_comparison": ("overall", "overall_comparison"),
    "moderator_tests": ("moderators", "moderator_tests"),
    "moderators": ("moderators", "moderators"),
    "multiple_moderators": ("moderators", "multiple_moderators"),
    "component_profiles": ("components", "component_profiles"),
    "component_consistency": ("components", "component_consistency"),
    "bias": ("bias", "bias"),
    "study_characteristics": ("prisma", "study_characteristics"),
}


def table_source(name: str) -> tuple[str, str | None]:
    """(step, table) of APA table ``name``; step ``reliability`` is a data CSV (table None)."""
    if name in TABLE_SOURCES:
        return TABLE_SOURCES[name]
    if name.startswith("sensitivity_"):
        return "sensitivity", name.removeprefix("sensitivity_")
    if name.startswith("reliability_"):
        return "reliability", None
    raise KeyError(f"no source known for the table {name!r}")


def run_tables(
    sources: Mapping[str, str | Path],
    outdir: str | Path,
    *,
    domain_files: Mapping[str, str | Path] | None = None,
    domain_labels: Mapping[str, str] | None = None,
    codebook: str | Path | None = None,
    domain_variable: str | None = None,
    after: str = "overall",
    effect_sizes_summary: str | Path | None = None,
    grade: str | Path | None = None,
) -> TablesResult:
    """The tables step: read the steps' result tables, write the APA tables and their index.

    Parameters
    ----------
    sources : APA table name -> the file it is read from (its step's JSON, see
        :func:`table_source`), in the order of the report (the table numbers follow it)
    outdir : where ``<name>.md/.tex/.html`` and ``tables.json`` go
    domain_files : domain code -> that domain's ``models/overall.json`` (per-domain analyses),
        shown as one table ``overall_domains`` right after the table ``after``
    domain_labels : domain code -> label (default: the codebook's level labels of
        ``domain_variable``, when both are given; else the codes)
    codebook, domain_variable : where the domain labels come from
    effect_sizes_summary : ``effect_sizes_summary.json``, whose ``measure`` names the scale and
        the direction (without it: SMD with its neutral direction)
    grade : ``models/grade.json`` (:mod:`.grade`): its summary-of-findings table is numbered
        after the analysis tables, before the reliability tables
    """
    if domain_files and domain_labels is None and codebook and domain_variable:
        domain_labels = level_labels(codebook, domain_variable, list(domain_files))
    tables: dict[str, ResultTable] = {}
    paths: dict[str, str] = {}
    for name, path in sources.items():
        _, key = table_source(name)
        tables[name] = read_result_table(path, key)
        paths[name] = str(path) + (f" (table {key})" if key else "")
        if name == after and domain_files:
            per_domain = {code: read_json(p) for code, p in domain_files.items()}
            spec = (next(iter(per_domain.values())).get("analysis") or {}).get("model_spec")
            level = (spec or {}).get("level")
            tables["overall_domains"] = domain_overall_table(
                {code: read_tables(d)["overall"] for code, d in per_domain.items()},
                domain_labels,
                level,
            )
            paths["overall_domains"] = ", ".join(str(p) for p in domain_files.values())
    labels = read_measure_labels(effect_sizes_summary)
    apa = apa_tables(tables, paths, labels)
    if grade is not None:
        from intervention_meta.outputs.grade import grade_apa_table

        at = next((i for i, t in enumerate(apa) if t.name.startswith("reliability_")), len(apa))
        apa.insert(at, grade_apa_table(read_json(grade), 0, labels, source=str(grade)))
        apa = [replace(t, number=i) for i, t in enumerate(apa, start=1)]
    files = write_apa_tables(apa, outdir)
    return TablesResult(tables=tuple(apa), files=files)


__all__ = [
    "APA_CSS",
    "FORMATS",
    "LANDSCAPE_COLUMNS",
    "LONG_ROWS",
    "SPECS",
    "ApaTable",
    "Column",
    "TableSpec",
    "TablesResult",
    "apa_table",
    "apa_tables",
    "ci",
    "column_kind",
    "domain_overall_table",
    "read_result_table",
    "table_source",
    "fmt",
    "fmt_ci",
    "fmt_count",
    "fmt_df",
    "fmt_est",
    "fmt_p",
    "fmt_pct",
    "fmt_r",
    "fmt_var",
    "html_fragment",
    "latex_escape",
    "run_tables",
    "write_apa_tables",
]
