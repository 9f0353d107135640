"""The effect-size step: one effect size and sampling variance per row of the cleaned effects table.

Each row says in ``es_input`` what its study reported; :func:`compute_effect_sizes` checks that the
statistics that level needs are there and possible, converts them with the functions of
:mod:`intervention_meta.effect_sizes.conversions` to the declared effect measure (one of
:data:`~intervention_meta.effect_sizes.measures.MEASURES`, default SMD) and corrects the variance
of cluster-randomised studies. Rows that cannot give a number go to ``dropped`` with a reason
naming the row, the column and the value.

Choices where the coding scheme is silent (following the Cochrane Handbook, v6.4, where it speaks):

* **Measure.** Every row ends on the declared measure, metafor's ``escalc`` with its defaults
  (``vtype="LS"``, ``add=1/2, to="only0"``). Which ``es_input`` gives which measure is the table
  :data:`~intervention_meta.effect_sizes.measures.INPUT_KINDS`; a row that needs a conversion
  from another measure (2x2 counts or an odds ratio to SMD: from OR; a correlation to SMD: from
  COR) is computed only when the config's ``convert`` lists that source measure. A row whose
  ``es_input`` cannot give the measure, or needs a conversion not allowed, is refused (dropped
  with a problem naming it); when every row is refused the step fails with the list.
  ``yi_vi`` rows are taken to be on the declared measure already.
* **Scale of SMD.** Hedges' g with the exact J (Hedges 1981) and metafor's large-sample
  variance (``vtype="LS"``), the scale of ``escalc(measure="SMD")``.
* **Statistic columns.** Each kind reads its statistics by role (``m_int``, ``events_int``, ...);
  ``requires`` maps a kind's roles to the table's own column names where they differ.
* **Direction.** A row is sign-flipped when its ``higher_is_worse`` is 1, or when that is empty and
  its ``outcome_domain`` is one of ``higher_is_worse_levels`` (or, given as a mapping
  ``{column: levels}`` as the codebook's ``higher_is_worse_levels()`` returns it, its value in any
  such column is one of that column's levels); ``higher_is_worse = 0`` overrides the domain.
  Without an ``outcome_domain`` column only the row column can flip. A flip mirrors the effect
  at the measure's null (``-yi``; ``1 - p`` for a raw proportion). What a positive effect means
  is declared in words (``direction``, per domain ``direction_by``); without it the measure's
  neutral default (e.g. "positive = higher in the first (intervention) group than the second").
  ``t_value``, ``d_value``, ``r_value``, odds and risk ratios carry their own sign; F and p take
  theirs from ``stat_direction``.
* **J after conversions.** Reported Cohen's d (``d_is_g = 0``): J with df = n_int + n_ctl - 2 on
  d and J^2 on its variance (Borenstein et al. 2009, eq. 4.22-4.24). r -> d: J with df = N - 2,
  since r and the independent-groups t are one-to-one, so d from r has Cohen's d's bias. Odds
  ratio -> d (logit method, Hasselblad & Hedges 1995): no J, as metafor's ``OR2DL`` and the Cochrane
  Handbook (10.6): no sample SD is estimated whose bias J would correct. Pre-post (Morris 2008
  d_ppc2): the exact J with df = n_int + n_ctl - 2 in place of Morris's approximate c_P.
* **p values** are converted with the t distribution (df = n_int + n_ctl - 2), not the normal.
* **Zero cells** in 2x2 tables: 1/2 added to all four cells of a table with a zero cell (metafor's
  ``add=1/2, to="only0"``; Cochrane Handbook 10.4.4), for OR, RR, RD and SMD alike; tables with
  no events in both groups are corrected and kept, as metafor does by default. A proportion of
  0 or 1 (``events_n``) gets 1/2 added to its events and non-events, as metafor's PLO and PR.
  Group sizes are taken from the counts; a differing ``n_int``/``n_ctl`` is noted, not used.
* **Pre-post correlation.** ``r_prepost`` if reported, else ``r_prepost_default`` (noted).
* **Cluster-randomised studies** (``cluster_randomised = 1``): the variance is multiplied by the
  design effect 1 + (m - 1) ICC (Cochrane Handbook 23.1.4), with the row's ``cluster_size`` and
  ``icc`` or the defaults (noted). It is applied to every row whose variance the step derives --
  from group sizes or from a reported SE or CI (the Handbook's approximate analysis assumes the
  trial's own analysis ignored the clustering) -- but not to ``yi_vi`` rows, which are taken as
  final. The effect size itself is not changed. A missing or absent ``cluster_randomised`` means
  not cluster-randomised.
* **Impossible input never yields a number**: SD <= 0, n < 2 (N < 4 for r, N < 5 for pre-post,
  where Morris's variance needs N > 4), p outside (0, 1), r outside (-1, 1), a CI not containing
  its estimate, negative counts, events above n, a mean <= 0 for a ratio of means, vi <= 0, a
  non-number, a needed statistic missing, an unknown ``es_input``, a direction code other than
  +1/-1, a cluster size < 1 or ICC outside [0, 1] where used. All problems of a row are
  reported together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intervention_meta.effect_sizes import conversions as cv
from intervention_meta.effect_sizes.measures import INPUT_KINDS, Measure, get_measure
from intervention_meta.errors import InputError, Problem

log = logging.getLogger(__name__)

__all__ = [
    "EffectSizeResult",
    "compute_effect_sizes",
    "effect_size_flags",
    "tiny_variance_lines",
    "tiny_variances",
]


METHODS: dict[str, str] = {
    "means_sds": "SMD from means/SDs (Hedges' g, exact J)",
    "t": "SMD from independent-groups t (Hedges' g, exact J)",
    "f": "SMD from F(1, df) with direction (Hedges' g, exact J)",
    "p": "SMD from two-sided p with direction, via t(df) (Hedges' g, exact J)",
    "d_se_g": "Reported Hedges' g with SE",
    "d_se_d": "Reported Cohen's d with SE (exact J applied)",
    "d_ci_g": "Reported Hedges' g with 95% CI",
    "d_ci_d": "Reported Cohen's d with 95% CI (exact J applied)",
    "or_2x2": "SMD from 2x2 counts via log OR (logit method, Hasselblad & Hedges; no J)",
    "or_ci": "SMD from OR with 95% CI via log OR (logit method, Hasselblad & Hedges; no J)",
    "r": "SMD from point-biserial r (Borenstein et al. eq. 7.5/7.6, exact J)",
    "prepost": "SMD pre-post-control d_ppc2 (Morris 2008, pooled pretest SD, exact J)",
    "yi_vi": "Given yi/vi (taken as final)",
}

#: es_method of the rows computed on a measure other than SMD: (es_input, measure) -> text.
MEASURE_METHODS: dict[tuple[str, str], str] = {
    ("means_sds", "MD"): "MD from means/SDs (escalc MD, vtype LS)",
    ("means_sds", "ROM"): "log ratio of means from means/SDs (escalc ROM, vtype LS)",
    **{(k, "OR"): "log OR from 2x2 counts (escalc OR)" for k in ("or_2x2", "counts_2x2")},
    **{(k, "RR"): "log RR from 2x2 counts (escalc RR)" for k in ("or_2x2", "counts_2x2")},
    **{(k, "RD"): "RD from 2x2 counts (escalc RD, vtype LS)" for k in ("or_2x2", "counts_2x2")},
    ("counts_2x2", "SMD"): METHODS["or_2x2"],
    ("or_ci", "OR"): "log OR from OR with 95% CI (Wald)",
    ("rr_ci", "RR"): "log RR from RR with 95% CI (Wald)",
    ("r", "ZCOR"): "Fisher's z from r (escalc ZCOR)",
    ("r", "COR"): "r with its large-sample variance (escalc COR, vtype LS)",
    ("events_n", "PLO"): "logit proportion from events/n (escalc PLO)",
    ("events_n", "PR"): "proportion from events/n (escalc PR, vtype LS)",
}

OUTPUT_COLUMNS = ("yi", "vi", "sei", "es_method", "direction_flipped", "es_note")

# Column checks: (predicate on the numeric value, what is expected). Applied to every non-missing
# value of a column a row's es_input uses.
_Check = tuple[Callable[[np.ndarray], np.ndarray], str]
_FINITE: _Check = (np.isfinite, "a finite number")
_POSITIVE: _Check = (lambda x: np.isfinite(x) & (x > 0), "a number > 0")
_NONNEG: _Check = (lambda x: np.isfinite(x) & (x >= 0), "a count >= 0")
_N2: _Check = (lambda x: np.isfinite(x) & (x >= 2), "a group size >= 2")
_CORR: _Check = (lambda x: np.abs(x) < 1, "a correlation in (-1, 1)")
COLUMN_CHECKS: dict[str, _Check] = {
    "m_int": _FINITE, "m_ctl": _FINITE, "m_int_pre": _FINITE, "m_ctl_pre": _FINITE,
    "sd_int": (_POSITIVE[0], "an SD > 0"), "sd_ctl": (_POSITIVE[0], "an SD > 0"),
    "sd_int_pre": (_POSITIVE[0], "an SD > 0"), "sd_ctl_pre": (_POSITIVE[0], "an SD > 0"),
    "n_int": _N2, "n_ctl": _N2,
    "n_total": (lambda x: np.isfinite(x) & (x >= 4), "a total sample size >= 4"),
    "t_value": _FINITE,
    "f_value": (_NONNEG[0], "an F statistic >= 0"),
    "p_value": (lambda x: (x > 0) & (x < 1), "a p value in (0, 1)"),
    "d_value": _FINITE, "d_se": (_POSITIVE[0], "a standard error > 0"),
    "d_ci_lower": _FINITE, "d_ci_upper": _FINITE,
    "events_int": _NONNEG, "nonevents_int": _NONNEG, "events_ctl": _NONNEG,
    "nonevents_ctl": _NONNEG,
    "or_value": (_POSITIVE[0], "an odds ratio > 0"),
    "or_ci_lower": (_POSITIVE[0], "an odds ratio > 0"),
    "or_ci_upper": (_POSITIVE[0], "an odds ratio > 0"),
    "rr_value": (_POSITIVE[0], "a risk ratio > 0"),
    "rr_ci_lower": (_POSITIVE[0], "a risk ratio > 0"),
    "rr_ci_upper": (_POSITIVE[0], "a risk ratio > 0"),
    "events": _NONNEG,
    "n": (lambda x: np.isfinite(x) & (x >= 1), "a sample size >= 1"),
    "r_value": _CORR, "r_prepost": _CORR,
    "yi": _FINITE, "vi": (_POSITIVE[0], "a sampling variance > 0"),
    "cluster_size": (lambda x: np.isfinite(x) & (x >= 1), "a cluster size >= 1"),
    "icc": (lambda x: (x >= 0) & (x <= 1), "an ICC in [0, 1]"),
}  # fmt: skip

# Coded columns: allowed numeric codes (strings "1", "-1", "1.0" are accepted too).
CODED_COLUMNS: dict[str, tuple[float, ...]] = {
    "stat_direction": (1.0, -1.0),
    "d_is_g": (0.0, 1.0),
    "higher_is_worse": (0.0, 1.0),
    "cluster_randomised": (0.0, 1.0),
}


@dataclass(frozen=True)
class EffectSizeResult:
    """The result of :func:`compute_effect_sizes`.

    Attributes
    ----------
    table : the computed rows: every input column plus ``yi`` (the declared measure), ``vi``,
        ``sei``, ``es_method``, ``direction_flipped`` and ``es_note``
    dropped : the rows that gave no number: every input column plus ``reason``
    counts : rows in / computed / dropped, per ``es_input`` and per method, and how often a
        direction flip, a design effect or a default was used (plain ints, JSON-ready)
    problems : one :class:`~intervention_meta.errors.Problem` (severity ``"warning"``) per problem
        found in a dropped row
    measure : the measure and its reading: the registry entry's ``to_dict()`` (``code``,
        ``name``, ``axis_label``, ``null``, ``back_transform``, ``back_name``,
        ``plausible_bound``, ``default_direction``) plus ``direction`` (the declared words, or
        the default), ``direction_by`` (per domain), ``direction_declared`` and ``convert``
    """

    table: pd.DataFrame
    dropped: pd.DataFrame
    counts: dict
    problems: tuple[Problem, ...] = field(default=())
    measure: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def summary(self) -> dict:
        """The step's summary JSON: ``counts`` plus ``measure``."""
        return {**self.counts, "measure": self.measure}

    def to_dict(self) -> dict:
        """``counts`` plus the dropped rows as ``{key, source_row, es_input, reason}`` records."""
        key = self.counts["key"]
        cols = [c for c in (key, "source_row", "es_input", "reason") if c in self.dropped.columns]
        records = [
            {c: _plain(v) for c, v in rec.items()}
            for rec in self.dropped[cols].to_dict(orient="records")
        ]
        return {"counts": self.counts, "dropped": records}

    def log_lines(self) -> list[str]:
        """Readable summary lines for the log: totals, per es_input, per method, every drop."""
        c = self.counts
        lines = [
            f"effect sizes: {c['rows_in']} rows in, {c['computed']} computed, "
            f"{c['dropped']} dropped; {c['direction_flipped']} sign-flipped (higher is worse), "
            f"{c['design_effect_applied']} with a cluster design effect"
        ]
        if self.measure:
            m = self.measure
            lines.append(
                f"  measure {m['code']} ({m['name']}): {m['direction']}; "
                f"{c.get('refused_measure', 0)} refused (es_input cannot give it), converted: "
                + (", ".join(f"{k} {v}" for k, v in c.get("converted", {}).items()) or "none")
            )
        for level, n in c["by_es_input"].items():
            lines.append(
                f"  es_input {level}: {n['rows_in']} in, {n['computed']} computed, "
                f"{n['dropped']} dropped"
            )
        for method, n in c["by_method"].items():
            lines.append(f"  method {method}: {n}")
        used = {k: v for k, v in c["defaults_used"].items() if v}
        if used:
            lines.append("  defaults used: " + ", ".join(f"{k} {v}x" for k, v in used.items()))
        lines.extend(f"  dropped: {r}" for r in self.dropped.get("reason", []))
        return lines


def _plain(v):
    """A JSON-friendly Python scalar (NaN -> None)."""
    if v is None:
        return None
    if isinstance(v, float | np.floating) and np.isnan(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _fmt(v) -> str:
    if v is None or (isinstance(v, float | np.floating) and np.isnan(v)):
        return "missing"
    v = _plain(v)
    if isinstance(v, float) and v.is_integer():
        return repr(int(v)) if abs(v) < 1e15 else repr(v)
    return repr(v)


class _Issues:
    """Problems per row position, in the order found."""

    def __init__(self, n: int):
        self.rows: list[list[tuple[str, object, str]]] = [[] for _ in range(n)]

    def add(self, mask: np.ndarray, column: str, values, expected: str) -> None:
        values = np.asarray(values, dtype=object)
        for i in np.flatnonzero(mask):
            self.rows[i].append((column, values[i], expected))

    def bad(self) -> np.ndarray:
        return np.array([bool(r) for r in self.rows], dtype=bool)


def _blank_to_nan(s: pd.Series) -> pd.Series:
    if s.dtype == object:
        return s.map(lambda v: np.nan if isinstance(v, str) and not v.strip() else v)
    return s


def _numeric(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(raw values as objects, float values); NaN where absent, missing or not a number."""
    n = len(df)
    if col not in df.columns:
        return np.full(n, np.nan, dtype=object), np.full(n, np.nan)
    raw = _blank_to_nan(df[col])
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    return raw.to_numpy(dtype=object), num


def _measure_info(
    measure: Measure,
    direction: str | None,
    direction_by: Mapping[str, str] | None,
    convert: tuple[str, ...],
) -> dict:
    return {
        **measure.to_dict(),
        "direction": direction or measure.default_direction,
        "direction_declared": bool(direction),
        "direction_by": {str(k): str(v) for k, v in (direction_by or {}).items()},
        "convert": list(convert),
    }


def _statistic_columns(
    requires: Mapping[str, Mapping[str, str]] | None,
) -> dict[str, dict[str, str]]:
    """Kind -> {role: column}: the canonical names, overridden by ``requires``."""
    columns = {k: {r: r for r in kind.roles + kind.optional} for k, kind in INPUT_KINDS.items()}
    for k, mapping in (requires or {}).items():
        if k in columns:
            columns[k].update({str(r): str(c) for r, c in mapping.items()})
    return columns


def compute_effect_sizes(
    effects: pd.DataFrame,
    *,
    higher_is_worse_levels: Mapping[str, Iterable[str]] | Iterable[str] | None,
    key: str = "es_id",
    r_prepost_default: float = 0.5,
    icc_default: float = 0.05,
    cluster_size_default: float = 20,
    source_name: str = "effects",
    measure: str = "SMD",
    measure_name: str | None = None,
    convert: Iterable[str] = (),
    direction: str | None = None,
    direction_by: Mapping[str, str] | None = None,
    requires: Mapping[str, Mapping[str, str]] | None = None,
) -> EffectSizeResult:
    """The declared effect measure and its sampling variance for every row of ``effects``.

    Parameters
    ----------
    effects : the cleaned effects table (missing codes already NaN, numbers parsed), with the key
        column, ``es_input``, the statistic columns of the codebook and ``source_row`` (the row in
        the raw file as a spreadsheet shows it); the study-level ``cluster_randomised`` may be
        merged in.
    higher_is_worse_levels : ``outcome_domain`` levels whose scales measure something bad, or a
        mapping ``{column: levels}`` (e.g. ``{"outcome_domain": ("parenting_stress",)}``).
    key : name of the row key column.
    r_prepost_default : pre-post correlation for ``prepost`` rows that report none.
    icc_default, cluster_size_default : ICC and average cluster size m for cluster-randomised
        rows that report none.
    source_name : the file named in :attr:`EffectSizeResult.problems`.
    measure : metafor code of the analysis measure (``SMD``, ``MD``, ``ZCOR``, ``COR``, ``OR``,
        ``RR``, ``RD``, ``ROM``, ``PLO``, ``PR`` or ``GEN`` for given yi/vi).
    measure_name : the readable name of a ``GEN`` measure.
    convert : source measures whose rows may be converted to ``measure`` (e.g. ``["OR", "COR"]``
        lets 2x2 counts, odds ratios and correlations give an SMD).
    direction, direction_by : what a positive effect means, in words, and per level of the
        domain variable where it differs; carried into :attr:`EffectSizeResult.measure`.
    requires : ``{es_input: {role: column}}`` where the table's statistic columns are not named
        by their roles (the codebook's ``requires`` in mapping form); roles not named keep
        their own name.

    Returns
    -------
    EffectSizeResult
        ``table`` (computed rows, input order), ``dropped`` (with ``reason``), ``counts``,
        ``measure``.

    Raises
    ------
    InputError
        when every row is refused because its ``es_input`` cannot give ``measure`` (or needs a
        conversion ``convert`` does not allow); the error lists every such row.

    Notes
    -----
    Dispatch on ``es_input`` (see :data:`~intervention_meta.effect_sizes.measures.INPUT_KINDS`,
    ``METHODS`` and ``MEASURE_METHODS``); the formulas and their references are in
    :mod:`intervention_meta.effect_sizes.conversions`, the choices where the coding scheme is
    silent in this module's docstring. ``computed + dropped == rows_in`` always holds.
    """
    the_measure = get_measure(measure, measure_name)
    convert = tuple(str(c) for c in convert)
    info = _measure_info(the_measure, direction, direction_by, convert)
    stat_cols = _statistic_columns(requires)
    if key not in effects.columns:
        raise ValueError(f"key column {key!r} is not in the effects table")
    declared = list(requires or {})
    if "es_input" not in effects.columns:
        if len(declared) != 1:
            raise ValueError("column 'es_input' is not in the effects table")
        effects = effects.assign(es_input=pd.NA)
    if len(declared) == 1:
        # one kind declared: a row that does not name its kind has that kind
        blank = effects["es_input"].isna() | (
            effects["es_input"].astype("string").str.strip() == ""
        )
        if blank.any():
            log.info("effect sizes: es_input not coded in %d row(s); they are %r (the one kind "
                     "the codebook declares)", int(blank.sum()), declared[0])  # fmt: skip
            effects = effects.assign(es_input=effects["es_input"].where(~blank, declared[0]))
    for name, value in (("r_prepost_default", r_prepost_default), ("icc_default", icc_default),
                        ("cluster_size_default", cluster_size_default)):  # fmt: skip
        if not np.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not -1 < r_prepost_default < 1:
        raise ValueError(f"r_prepost_default must be in (-1, 1), got {r_prepost_default!r}")
    if not 0 <= icc_default <= 1:
        raise ValueError(f"icc_default must be in [0, 1], got {icc_default!r}")
    if not cluster_size_default >= 1:
        raise ValueError(f"cluster_size_default must be >= 1, got {cluster_size_default!r}")
    if isinstance(higher_is_worse_levels, Mapping):
        worse_levels = {str(c): {str(v) for v in lv} for c, lv in higher_is_worse_levels.items()}
    elif isinstance(higher_is_worse_levels, str):
        worse_levels = {"outcome_domain": {higher_is_worse_levels}}
    else:
        worse_levels = {"outcome_domain": {str(v) for v in (higher_is_worse_levels or ())}}

    df = effects.reset_index(drop=True)
    n = len(df)
    issues = _Issues(n)
    notes: list[list[str]] = [[] for _ in range(n)]
    yi = np.full(n, np.nan)
    vi = np.full(n, np.nan)
    method = np.full(n, "", dtype=object)

    level = (
        _blank_to_nan(df["es_input"].astype(object))
        .map(lambda v: v.strip() if isinstance(v, str) else v)
        .map(lambda v: np.nan if pd.isna(v) else v)
    )
    level_arr = level.to_numpy(dtype=object)
    is_kind = level.isin(list(INPUT_KINDS)).to_numpy()
    issues.add(~is_kind, "es_input", level_arr,
               "one of " + ", ".join(INPUT_KINDS))  # fmt: skip

    # ---- measure: which rows can give it (directly or by an allowed conversion)
    code = the_measure.code
    refused = np.zeros(n, dtype=bool)
    conversion = np.full(n, None, dtype=object)
    for lv, kind in INPUT_KINDS.items():
        rows = is_kind & (level_arr == lv)
        if not rows.any():
            continue
        if not kind.can_give(code):
            gives = ", ".join(kind.gives)
            expected = (
                f"an es_input that gives the analysis measure {code} ({the_measure.name}); "
                f"'{lv}' gives {gives}"
            )
        elif kind.source(code) is not None and kind.source(code) not in convert:
            src = kind.source(code)
            expected = (
                f"an es_input that gives {code} ({the_measure.name}) directly; '{lv}' gives "
                f"{code} only by a conversion from {src}: add {src} to effect_sizes.convert "
                "to allow it"
            )
        else:
            conversion[rows] = kind.source(code)
            continue
        refused |= rows
        issues.add(rows, "es_input", level_arr, expected)
    known = is_kind & ~refused

    num: dict[str, np.ndarray] = {}
    raw: dict[str, np.ndarray] = {}

    def get(col: str) -> np.ndarray:
        if col not in num:
            raw[col], num[col] = _numeric(df, col)
        return num[col]

    def column(lv: str, role: str) -> str:
        return stat_cols.get(lv, {}).get(role, role)

    def check_column(rows: np.ndarray, col: str, needed: bool, why: str, role: str = "") -> None:
        """Missing (if needed), not-a-number, coded-value and range problems of ``col``."""
        role = role or col
        x = get(col)
        r = raw[col]
        present = pd.notna(pd.Series(r, dtype=object)).to_numpy()
        if needed:
            where = "column absent from the table" if col not in df.columns else "missing"
            issues.add(rows & ~present, col, r, f"a value ({where}; needed for {why})")
        issues.add(rows & present & np.isnan(x), col, r, "a number")
        ok = present & ~np.isnan(x)
        if role in CODED_COLUMNS:
            allowed = CODED_COLUMNS[role]
            issues.add(rows & ok & ~np.isin(x, allowed), col, r,
                       "one of " + ", ".join(_fmt(a) for a in allowed))  # fmt: skip
        elif role in COLUMN_CHECKS:
            pred, expected = COLUMN_CHECKS[role]
            with np.errstate(invalid="ignore"):
                good = pred(x)
            issues.add(rows & ok & ~good, col, r, expected)

    def check_role(rows: np.ndarray, lv: str, role: str, needed: bool, why: str) -> None:
        check_column(rows, column(lv, role), needed, why, role)

    # ---- direction (all rows)
    hiw = get("higher_is_worse") if "higher_is_worse" in df.columns else np.full(n, np.nan)
    if "higher_is_worse" in df.columns:
        check_column(np.ones(n, dtype=bool), "higher_is_worse", False, "")
    # which column (and value) makes a row higher-is-worse, "" if none
    worse_by = np.full(n, "", dtype=object)
    for col, levels in worse_levels.items():
        if col not in df.columns or not levels:
            continue
        for i, v in enumerate(df[col].to_numpy(dtype=object)):
            if not worse_by[i] and pd.notna(v) and str(v).strip() in levels:
                worse_by[i] = f"{col} '{str(v).strip()}'"
    domain_worse = np.array([bool(w) for w in worse_by], dtype=bool)
    flip = (hiw == 1) | (np.isnan(hiw) & domain_worse)

    # ---- per es_input level: presence and range of the statistics it uses
    def rows_of(lv: str) -> np.ndarray:
        return (level_arr == lv) & known

    for lv, kind in INPUT_KINDS.items():
        rows = rows_of(lv)
        if not rows.any():
            continue
        for role in kind.roles:
            check_role(rows, lv, role, True, f"es_input '{lv}'")

    # conditional needs and cross-column checks
    for lv in ("d_se", "d_ci"):
        rows = rows_of(lv)
        if rows.any():
            cohen = rows & (get(column(lv, "d_is_g")) == 0)
            for role in ("n_int", "n_ctl"):
                check_role(
                    cohen, lv, role, True, f"correcting a Cohen's d (es_input '{lv}', d_is_g 0)"
                )
    for lv, prefix, ratio in (("d_ci", "d", False), ("or_ci", "or", True), ("rr_ci", "rr", True)):
        rows = rows_of(lv)
        if not rows.any():
            continue
        value, lower, upper = (
            column(lv, f"{prefix}_{s}") for s in ("value", "ci_lower", "ci_upper")
        )
        x, lo, up = get(value), get(lower), get(upper)
        with np.errstate(invalid="ignore"):
            outside = rows & np.isfinite(x + lo + up) & ~((lo < x) & (x < up))
            if ratio:
                outside &= x > 0
        for i in np.flatnonzero(outside):
            issues.rows[i].append(
                (
                    value,
                    raw[value][i],
                    f"a value inside its confidence interval [{_fmt(lo[i])}, {_fmt(up[i])}] "
                    f"({lower} < {value} < {upper})",
                )
            )
    for lv in ("or_2x2", "counts_2x2"):
        rows = rows_of(lv)
        if not rows.any():
            continue
        for grp in ("int", "ctl"):
            ev, nev = column(lv, f"events_{grp}"), column(lv, f"nonevents_{grp}")
            tot = get(ev) + get(nev)
            with np.errstate(invalid="ignore"):
                small = rows & np.isfinite(tot) & (get(ev) >= 0) & (tot < 2)
                small &= get(nev) >= 0
            issues.add(small, f"{ev} + {nev}", tot, "a group size >= 2")
    rows = rows_of("events_n")
    if rows.any():
        ev, nn = column("events_n", "events"), column("events_n", "n")
        with np.errstate(invalid="ignore"):
            over = rows & (get(ev) >= 0) & (get(nn) >= 1) & (get(ev) > get(nn))
        issues.add(over, ev, raw[ev], f"at most {nn} (events among n)")
    rows = rows_of("means_sds")
    if rows.any() and code == "ROM":
        for role in ("m_int", "m_ctl"):
            col = column("means_sds", role)
            with np.errstate(invalid="ignore"):
                issues.add(rows & (get(col) <= 0), col, raw[col],
                           "a mean > 0 (a ratio of means needs a ratio scale)")  # fmt: skip
    rows = rows_of("prepost")
    if rows.any():
        check_role(rows, "prepost", "r_prepost", False, "")
        big_n = get(column("prepost", "n_int")) + get(column("prepost", "n_ctl"))
        with np.errstate(invalid="ignore"):
            small = rows & (get(column("prepost", "n_int")) >= 2)
            small &= (get(column("prepost", "n_ctl")) >= 2) & (big_n < 5)
        issues.add(small, "n_int + n_ctl", big_n,
                   "a total >= 5 (the variance of Morris 2008 needs N > 4)")  # fmt: skip

    # ---- cluster design effect (rows whose variance is derived here)
    derived = known & (level_arr != "yi_vi")
    if "cluster_randomised" in df.columns:
        check_column(np.ones(n, dtype=bool), "cluster_randomised", False, "")
        clustered = derived & (get("cluster_randomised") == 1)
    else:
        clustered = np.zeros(n, dtype=bool)
    m_given, icc_given = get("cluster_size"), get("icc")
    if clustered.any():
        check_column(clustered, "cluster_size", False, "")
        check_column(clustered, "icc", False, "")

    bad = issues.bad()

    # ---- compute, per level, on the rows without problems
    def take(lv: str) -> np.ndarray:
        return rows_of(lv) & ~bad

    def put(rows: np.ndarray, res: cv.EffectSizeArrays, name: str) -> None:
        yi[rows], vi[rows], method[rows] = res.yi, res.vi, name

    def stats(lv: str, rows: np.ndarray, *roles: str) -> list[np.ndarray]:
        return [get(column(lv, role))[rows] for role in roles]

    rows = take("means_sds")
    if rows.any():
        args = stats("means_sds", rows, "m_int", "sd_int", "n_int", "m_ctl", "sd_ctl", "n_ctl")
        if code == "SMD":
            put(rows, cv.smd_from_means(*args), METHODS["means_sds"])
        else:
            fn = cv.mean_difference if code == "MD" else cv.log_ratio_of_means
            put(rows, fn(*args), MEASURE_METHODS[("means_sds", code)])
    rows = take("t")
    if rows.any():
        put(rows, cv.smd_from_t(*stats("t", rows, "t_value", "n_int", "n_ctl")), METHODS["t"])
    for lv in ("f", "p"):
        rows = take(lv)
        if rows.any():
            fn = cv.smd_from_f if lv == "f" else cv.smd_from_p
            args = stats(lv, rows, f"{lv}_value", "n_int", "n_ctl", "stat_direction")
            put(rows, fn(*args), METHODS[lv])
    for lv in ("d_se", "d_ci"):
        rows = take(lv)
        if not rows.any():
            continue
        (is_g,) = stats(lv, rows, "d_is_g")
        is_g = is_g == 1
        n1, n2 = stats(lv, rows, "n_int", "n_ctl")
        if lv == "d_se":
            d, se = stats(lv, rows, "d_value", "d_se")
            res = cv.smd_from_d_se(d, se, is_g=is_g, n1=n1, n2=n2)
        else:
            d, lo, up = stats(lv, rows, "d_value", "d_ci_lower", "d_ci_upper")
            res = cv.smd_from_d_ci(d, lo, up, is_g=is_g, n1=n1, n2=n2)
        names = np.where(is_g, METHODS[f"{lv}_g"], METHODS[f"{lv}_d"])
        put(rows, res, "")
        method[rows] = names
        for i, ig, a, b in zip(np.flatnonzero(rows), is_g, n1, n2, strict=True):
            if not ig:
                j = float(cv.hedges_j(a + b - 2)[0])
                notes[i].append(f"Cohen's d corrected: J = {j:.4f} (df = {_fmt(a + b - 2)})")
    count_fns = {"OR": cv.log_odds_ratio, "RR": cv.log_risk_ratio, "RD": cv.risk_difference}
    for lv in ("or_2x2", "counts_2x2"):
        rows = take(lv)
        if not rows.any():
            continue
        a, b, c, d = stats(lv, rows, "events_int", "nonevents_int", "events_ctl", "nonevents_ctl")
        if code == "SMD":
            put(rows, cv.smd_from_counts(a, b, c, d, "logit"), METHODS["or_2x2"])
        else:
            put(rows, count_fns[code](a, b, c, d), MEASURE_METHODS[(lv, code)])
        zero = cv.has_zero_cell(a, b, c, d)
        idx = np.flatnonzero(rows)
        for i in idx[zero]:
            notes[i].append("zero cell: 1/2 added to all four cells (metafor add=1/2, to='only0')")
        for grp, tot in (("int", a + b), ("ctl", c + d)):
            col = column(lv, f"n_{grp}")
            given = get(col)[rows]
            for i, nn, tt in zip(idx, given, tot, strict=True):
                if np.isfinite(nn) and nn != tt:
                    notes[i].append(
                        f"{col} = {_fmt(nn)} differs from the counts' group size {_fmt(tt)}; "
                        "the counts are used"
                    )
    rows = take("or_ci")
    if rows.any():
        lor = cv.log_odds_ratio_from_ci(*stats("or_ci", rows, "or_value", "or_ci_lower",
                                               "or_ci_upper"))  # fmt: skip
        if code == "SMD":
            put(rows, cv.smd_from_log_odds_ratio(lor.yi, lor.vi, "logit"), METHODS["or_ci"])
        else:
            put(rows, lor, MEASURE_METHODS[("or_ci", code)])
    rows = take("rr_ci")
    if rows.any():
        args = stats("rr_ci", rows, "rr_value", "rr_ci_lower", "rr_ci_upper")
        put(rows, cv.log_risk_ratio_from_ci(*args), MEASURE_METHODS[("rr_ci", code)])
    rows = take("r")
    if rows.any():
        r, nt = stats("r", rows, "r_value", "n_total")
        if code == "SMD":
            put(rows, cv.smd_from_r(r, nt), METHODS["r"])
            for i in np.flatnonzero(rows):
                notes[i].append("r -> d assumes equal group sizes")
        else:
            fn = cv.fisher_z_from_r if code == "ZCOR" else cv.correlation
            put(rows, fn(r, nt), MEASURE_METHODS[("r", code)])
    rows = take("events_n")
    if rows.any():
        x, nn = stats("events_n", rows, "events", "n")
        fn = cv.logit_proportion if code == "PLO" else cv.proportion
        put(rows, fn(x, nn), MEASURE_METHODS[("events_n", code)])
        for i in np.flatnonzero(rows)[(x == 0) | (x == nn)]:
            notes[i].append("no or every event: 1/2 added to events and non-events "
                            "(metafor add=1/2, to='only0')")  # fmt: skip
    rows = take("prepost")
    if rows.any():
        (r_given,) = stats("prepost", rows, "r_prepost")
        r_used = np.where(np.isnan(r_given), r_prepost_default, r_given)
        args = stats("prepost", rows, "m_int_pre", "m_int", "sd_int_pre", "n_int", "m_ctl_pre",
                     "m_ctl", "sd_ctl_pre", "n_ctl")  # fmt: skip
        put(rows, cv.smd_prepost_control(*args, r_used), METHODS["prepost"])
        for i, rg, ru in zip(np.flatnonzero(rows), r_given, r_used, strict=True):
            src = "default" if np.isnan(rg) else "reported"
            notes[i].append(f"pre-post r = {ru:g} ({src})")
    rows = take("yi_vi")
    if rows.any():
        y, v = stats("yi_vi", rows, "yi", "vi")
        put(rows, cv.EffectSizeArrays(y, v, code), METHODS["yi_vi"])
        for i in np.flatnonzero(rows):
            notes[i].append("given yi/vi taken as final (no J, no design effect)")

    # given yi/vi on rows that compute their own
    other = known & ~bad & (level_arr != "yi_vi")
    if other.any() and ("yi" in df.columns or "vi" in df.columns):
        gy, gv = get("yi"), get("vi")
        for i in np.flatnonzero(other & (~np.isnan(gy) | ~np.isnan(gv))):
            notes[i].append(
                f"given yi = {_fmt(gy[i])}, vi = {_fmt(gv[i])} replaced (es_input '{level_arr[i]}')"
            )

    ok = known & ~bad
    # ---- design effect
    de_rows = clustered & ok
    m_used = np.where(np.isnan(m_given), cluster_size_default, m_given)
    icc_used = np.where(np.isnan(icc_given), icc_default, icc_given)
    if de_rows.any():
        vi[de_rows] = cv.apply_design_effect(vi[de_rows], m_used[de_rows], icc_used[de_rows])
        for i in np.flatnonzero(de_rows):
            de = 1 + (m_used[i] - 1) * icc_used[i]
            m_src = "default" if np.isnan(m_given[i]) else "reported"
            icc_src = "default" if np.isnan(icc_given[i]) else "reported"
            notes[i].append(
                f"cluster-randomised: variance x design effect {de:.4g} = 1 + (m - 1) ICC with "
                f"m = {m_used[i]:g} ({m_src}), ICC = {icc_used[i]:g} ({icc_src})"
            )
    # ---- direction
    flip_rows = flip & ok
    yi[flip_rows] = the_measure.flip(yi[flip_rows])
    for i in np.flatnonzero(ok):
        if flip_rows[i]:
            why = "higher_is_worse = 1" if hiw[i] == 1 else f"{worse_by[i]} is higher-is-worse"
            notes[i].append(f"sign flipped ({why})")
        elif hiw[i] == 0 and domain_worse[i]:
            notes[i].append(f"not flipped: higher_is_worse = 0 overrides {worse_by[i]}")

    # ---- assemble
    table = df.loc[ok].copy()
    table["yi"] = yi[ok]
    table["vi"] = vi[ok]
    table["sei"] = np.sqrt(vi[ok])
    table["es_method"] = method[ok]
    table["direction_flipped"] = flip_rows[ok]
    table["es_note"] = ["; ".join(notes[i]) for i in np.flatnonzero(ok)]
    table = table.reset_index(drop=True)

    src_rows = (
        df["source_row"].to_numpy(dtype=object)
        if "source_row" in df.columns
        else np.full(n, None, dtype=object)
    )
    keys = df[key].to_numpy(dtype=object)
    reasons: list[str] = []
    problems: list[Problem] = []
    for i in np.flatnonzero(~ok):
        row_txt = _fmt(src_rows[i]) if pd.notna(src_rows[i]) else "?"
        parts = [
            f"column '{col}' = {_fmt(val)}: expected {exp}" for col, val, exp in issues.rows[i]
        ]
        key_txt = str(keys[i]) if pd.notna(keys[i]) else "<missing>"
        reasons.append(f"{key} {key_txt} (row {row_txt}): " + "; ".join(parts))
        srow = _plain(src_rows[i])
        for col, val, exp in issues.rows[i]:
            problems.append(
                Problem(
                    file=source_name,
                    row=int(srow) if isinstance(srow, int | float) and pd.notna(srow) else None,
                    column=col,
                    value=_plain(val),
                    expected=exp,
                    severity="warning",
                    check="effect_measure" if refused[i] else "effect_size",
                )
            )
    if n and refused.all():
        raise InputError(
            [
                Problem(p.file, p.row, p.column, p.value, p.expected, "error", p.check)
                for p in problems
            ],
            f"effect sizes: no row of {source_name} gives the analysis measure {code} "
            f"({the_measure.name}); {n} row(s) refused",
        )
    dropped = df.loc[~ok].copy().reset_index(drop=True)
    dropped["reason"] = reasons

    counts = _counts(key, level_arr, ok, method, flip_rows, de_rows, notes, m_given, icc_given,
                     np.isnan(get(column("prepost", "r_prepost"))) & take("prepost"))  # fmt: skip
    counts["refused_measure"] = int(refused.sum())
    counts["converted"] = {
        str(src): int((ok & (conversion == src)).sum())
        for src in dict.fromkeys(c for c in conversion[ok] if c)
    }
    counts["implausible"] = int(the_measure.implausible(yi[ok]).sum())
    if counts["computed"] + counts["dropped"] != counts["rows_in"]:  # pragma: no cover
        raise RuntimeError(f"effect sizes: rows do not add up: {counts}")
    result = EffectSizeResult(table, dropped, counts, tuple(problems), info)
    log.info(
        "effect sizes (%s, %s): %d rows in, %d computed, %d dropped",
        code,
        the_measure.name,
        counts["rows_in"],
        counts["computed"],
        counts["dropped"],
    )
    return result


def _counts(key, level_arr, ok, method, flip_rows, de_rows, notes, m_given, icc_given, r_default):
    levels = pd.Series(level_arr, dtype=object).map(lambda v: "(missing)" if pd.isna(v) else str(v))
    by_level: dict[str, dict[str, int]] = {}
    for lv in dict.fromkeys(list(INPUT_KINDS) + levels.tolist()):
        sel = (levels == lv).to_numpy()
        if not sel.any():
            continue
        by_level[lv] = {
            "rows_in": int(sel.sum()),
            "computed": int((sel & ok).sum()),
            "dropped": int((sel & ~ok).sum()),
        }
    by_method = {str(m): int(c) for m, c in pd.Series(method[ok]).value_counts(sort=False).items()}
    return {
        "key": key,
        "rows_in": int(len(level_arr)),
        "computed": int(ok.sum()),
        "dropped": int((~ok).sum()),
        "by_es_input": by_level,
        "by_method": by_method,
        "direction_flipped": int(flip_rows.sum()),
        "design_effect_applied": int(de_rows.sum()),
        "defaults_used": {
            "r_prepost": int(r_default.sum()),
            "cluster_size": int((de_rows & np.isnan(m_given)).sum()),
            "icc": int((de_rows & np.isnan(icc_given)).sum()),
        },
    }


# --------------------------------------------------------------------------- flags
def tiny_variances(vi, *, ratio: float = 1000.0, share: float = 0.5) -> np.ndarray:
    """Which sampling variances are tiny relative to the others.

    An effect size is flagged when :math:`v_i < \\operatorname{median}(v) / \\text{ratio}` or when
    its weight share in the fixed-effect model exceeds ``share``,

    .. math:: \\frac{1/v_i}{\\sum_j 1/v_j} > \\text{share}.

    Such an effect size dominates every inverse-variance method that gives it its weight:
    Egger-type regressions, fail-safe N, trim and fill and the fixed-effect model (a vi of
    1e-12 among vi near 0.01 turns an Egger p of .89 into .0005). Fewer than two effect sizes:
    nothing is flagged.

    Parameters
    ----------
    vi : the sampling variances (positive)
    ratio : how many times below the median a variance must be
    share : the fixed-effect weight share above which an effect size is flagged

    Returns
    -------
    numpy.ndarray of bool, one per effect size
    """
    v = np.asarray(vi, dtype=float)
    out = np.zeros(v.shape, dtype=bool)
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return out
    w = 1.0 / v[ok]
    out[ok] = (v[ok] < np.median(v[ok]) / ratio) | (w / w.sum() > share)
    return out


def tiny_variance_lines(
    keys, vi, *, key_name: str, ratio: float = 1000.0, share: float = 0.5
) -> list[str]:
    """One line per effect size :func:`tiny_variances` flags, naming its key and its vi."""
    v = np.asarray(vi, dtype=float)
    keys = np.asarray(keys, dtype=object)
    tiny = tiny_variances(v, ratio=ratio, share=share)
    if not tiny.any():
        return []
    ok = np.isfinite(v) & (v > 0)
    med = float(np.median(v[ok]))
    w = np.where(ok, 1.0 / np.where(ok, v, 1.0), 0.0)
    return [
        f"{key_name} {keys[i]}: vi = {v[i]:.3g} is tiny relative to the others (median vi = "
        f"{med:.3g}; {100 * w[i] / w.sum():.1f}% of the fixed-effect weight)"
        for i in np.flatnonzero(tiny)
    ]


def effect_size_flags(
    result: EffectSizeResult, *, tiny_vi_ratio: float = 1000.0, tiny_vi_share: float = 0.5
) -> list[str]:
    """The effect-size step's flags: one line per row whose vi is tiny relative to the others
    (:func:`tiny_variances`) and per row whose |effect| is implausible for the measure (beyond
    the measure registry's plausible bound, :meth:`Measure.implausible
    <intervention_meta.effect_sizes.measures.Measure.implausible>`)."""
    table, key = result.table, result.counts["key"]
    if table.empty:
        return []
    keys = table[key].to_numpy(dtype=object)
    lines = [
        line + ": check the input; it can dominate the pooled estimate and the bias tests"
        for line in tiny_variance_lines(
            keys, table["vi"], key_name=key, ratio=tiny_vi_ratio, share=tiny_vi_share
        )
    ]
    code = result.measure.get("code", "SMD")
    measure = get_measure(code)
    yi = table["yi"].to_numpy(dtype=float)
    for i in np.flatnonzero(measure.implausible(yi)):
        lines.append(
            f"{key} {keys[i]}: {measure.axis_label} = {yi[i]:.3g} is implausibly large for the "
            f"measure (|effect - {measure.null:g}| > {measure.plausible_bound:.3g}); check the "
            "input"
        )
    return lines
