"""The effect-size step: one Hedges' g and sampling variance per row of the cleaned effects table.

Each row says in ``es_input`` what its study reported; :func:`compute_effect_sizes` checks that the
statistics that level needs are there and possible, converts them with the functions of
:mod:`intervention_meta.effect_sizes.conversions`, puts every result on one scale (Hedges' g,
positive = benefit)
and corrects the variance of cluster-randomised studies. Rows that cannot give a number go to
``dropped`` with a reason naming the row, the column and the value.

Choices where the coding scheme is silent (following the Cochrane Handbook, v6.4, where it speaks):

* **Scale.** Every row ends as Hedges' g with the exact J (Hedges 1981) and metafor's large-sample
  variance (``vtype="LS"``), the scale of ``escalc(measure="SMD")``.
* **Direction.** A row is sign-flipped when its ``higher_is_worse`` is 1, or when that is empty and
  its ``outcome_domain`` is one of ``higher_is_worse_levels`` (or, given as a mapping
  ``{column: levels}`` as the codebook's ``higher_is_worse_levels()`` returns it, its value in any
  such column is one of that column's levels); ``higher_is_worse = 0`` overrides the domain.
  Without an ``outcome_domain`` column only the row column can flip. ``t_value``,
  ``d_value``, ``r_value`` and odds ratios carry their own sign; F and p take theirs from
  ``stat_direction``.
* **J after conversions.** Reported Cohen's d (``d_is_g = 0``): J with df = n_int + n_ctl - 2 on
  d and J^2 on its variance (Borenstein et al. 2009, eq. 4.22-4.24). r -> d: J with df = N - 2,
  since r and the independent-groups t are one-to-one, so d from r has Cohen's d's bias. Odds
  ratio -> d (logit method, Hasselblad & Hedges 1995): no J, as metafor's ``OR2DL`` and the Cochrane
  Handbook (10.6): no sample SD is estimated whose bias J would correct. Pre-post (Morris 2008
  d_ppc2): the exact J with df = n_int + n_ctl - 2 in place of Morris's approximate c_P.
* **p values** are converted with the t distribution (df = n_int + n_ctl - 2), not the normal.
* **Zero cells** in 2x2 tables: 1/2 added to all four cells of a table with a zero cell (metafor's
  ``add=1/2, to="only0"``; Cochrane Handbook 10.4.4); tables with no events in both groups are
  corrected and kept, as metafor does by default. Group sizes are taken from the counts; a
  differing ``n_int``/``n_ctl`` is noted, not used.
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
  its estimate, negative counts, vi <= 0, a non-number, a needed statistic missing, an unknown
  ``es_input``, a direction code other than +1/-1, a cluster size < 1 or ICC outside [0, 1] where
  used. All problems of a row are reported together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intervention_meta.effect_sizes import conversions as cv
from intervention_meta.errors import Problem

log = logging.getLogger(__name__)

__all__ = ["ES_INPUT_REQUIRES", "EffectSizeResult", "compute_effect_sizes"]

#: Columns each ``es_input`` level needs (the codebook's ``requires``). Reported Cohen's d
#: (``d_is_g = 0``) needs ``n_int`` and ``n_ctl`` too; ``prepost`` uses ``r_prepost`` if given.
ES_INPUT_REQUIRES: dict[str, tuple[str, ...]] = {
    "means_sds": ("m_int", "sd_int", "n_int", "m_ctl", "sd_ctl", "n_ctl"),
    "t": ("t_value", "n_int", "n_ctl"),
    "f": ("f_value", "n_int", "n_ctl", "stat_direction"),
    "p": ("p_value", "n_int", "n_ctl", "stat_direction"),
    "d_se": ("d_value", "d_se", "d_is_g"),
    "d_ci": ("d_value", "d_ci_lower", "d_ci_upper", "d_is_g"),
    "or_2x2": ("events_int", "nonevents_int", "events_ctl", "nonevents_ctl"),
    "or_ci": ("or_value", "or_ci_lower", "or_ci_upper"),
    "r": ("r_value", "n_total"),
    "prepost": ("m_int_pre", "sd_int_pre", "m_int", "m_ctl_pre", "sd_ctl_pre", "m_ctl", "n_int",
                "n_ctl"),
    "yi_vi": ("yi", "vi"),
}  # fmt: skip

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
    table : the computed rows: every input column plus ``yi`` (Hedges' g, positive = benefit),
        ``vi``, ``sei``, ``es_method``, ``direction_flipped`` and ``es_note``
    dropped : the rows that gave no number: every input column plus ``reason``
    counts : rows in / computed / dropped, per ``es_input`` and per method, and how often a
        direction flip, a design effect or a default was used (plain ints, JSON-ready)
    problems : one :class:`~intervention_meta.errors.Problem` (severity ``"warning"``) per problem
        found in a dropped row
    """

    table: pd.DataFrame
    dropped: pd.DataFrame
    counts: dict
    problems: tuple[Problem, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        return self.table

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


def compute_effect_sizes(
    effects: pd.DataFrame,
    *,
    higher_is_worse_levels: Mapping[str, Iterable[str]] | Iterable[str] | None,
    key: str = "es_id",
    r_prepost_default: float = 0.5,
    icc_default: float = 0.05,
    cluster_size_default: float = 20,
    source_name: str = "effects",
) -> EffectSizeResult:
    """Hedges' g (positive = benefit) and its sampling variance for every row of ``effects``.

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

    Returns
    -------
    EffectSizeResult
        ``table`` (computed rows, input order), ``dropped`` (with ``reason``), ``counts``.

    Notes
    -----
    Dispatch on ``es_input`` (see ``ES_INPUT_REQUIRES`` and ``METHODS``); the formulas and their
    references are in :mod:`intervention_meta.effect_sizes.conversions`, the choices where the
    coding scheme is
    silent in this module's docstring. ``computed + dropped == rows_in`` always holds.
    """
    if key not in effects.columns:
        raise ValueError(f"key column {key!r} is not in the effects table")
    if "es_input" not in effects.columns:
        raise ValueError("column 'es_input' is not in the effects table")
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

    level = _blank_to_nan(df["es_input"]).map(lambda v: v.strip() if isinstance(v, str) else v)
    level_arr = level.to_numpy(dtype=object)
    known = level.isin(list(ES_INPUT_REQUIRES)).to_numpy()
    issues.add(~known, "es_input", level_arr,
               "one of " + ", ".join(ES_INPUT_REQUIRES))  # fmt: skip

    num: dict[str, np.ndarray] = {}
    raw: dict[str, np.ndarray] = {}

    def get(col: str) -> np.ndarray:
        if col not in num:
            raw[col], num[col] = _numeric(df, col)
        return num[col]

    def check_column(rows: np.ndarray, col: str, needed: bool, why: str) -> None:
        """Missing (if needed), not-a-number, coded-value and range problems of ``col``."""
        x = get(col)
        r = raw[col]
        present = pd.notna(pd.Series(r, dtype=object)).to_numpy()
        if needed:
            where = "column absent from the table" if col not in df.columns else "missing"
            issues.add(rows & ~present, col, r, f"a value ({where}; needed for {why})")
        issues.add(rows & present & np.isnan(x), col, r, "a number")
        ok = present & ~np.isnan(x)
        if col in CODED_COLUMNS:
            allowed = CODED_COLUMNS[col]
            issues.add(rows & ok & ~np.isin(x, allowed), col, r,
                       "one of " + ", ".join(_fmt(a) for a in allowed))  # fmt: skip
        elif col in COLUMN_CHECKS:
            pred, expected = COLUMN_CHECKS[col]
            with np.errstate(invalid="ignore"):
                good = pred(x)
            issues.add(rows & ok & ~good, col, r, expected)

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

    for lv, cols in ES_INPUT_REQUIRES.items():
        rows = rows_of(lv)
        if not rows.any():
            continue
        for col in cols:
            check_column(rows, col, True, f"es_input '{lv}'")

    # conditional needs and cross-column checks
    for lv in ("d_se", "d_ci"):
        rows = rows_of(lv)
        if rows.any():
            cohen = rows & (get("d_is_g") == 0)
            for col in ("n_int", "n_ctl"):
                check_column(
                    cohen, col, True, f"correcting a Cohen's d (es_input '{lv}', d_is_g 0)"
                )
    for lv, value, ratio in (("d_ci", "d_value", False), ("or_ci", "or_value", True)):
        rows = rows_of(lv)
        if not rows.any():
            continue
        prefix = value.removesuffix("_value")
        x, lo, up = get(value), get(f"{prefix}_ci_lower"), get(f"{prefix}_ci_upper")
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
                    f"({prefix}_ci_lower < {value} < {prefix}_ci_upper)",
                )
            )
    rows = rows_of("or_2x2")
    if rows.any():
        for grp in ("int", "ctl"):
            tot = get(f"events_{grp}") + get(f"nonevents_{grp}")
            with np.errstate(invalid="ignore"):
                small = rows & np.isfinite(tot) & (get(f"events_{grp}") >= 0) & (tot < 2)
                small &= get(f"nonevents_{grp}") >= 0
            issues.add(small, f"events_{grp} + nonevents_{grp}", tot, "a group size >= 2")
    rows = rows_of("prepost")
    if rows.any():
        check_column(rows, "r_prepost", False, "")
        big_n = get("n_int") + get("n_ctl")
        with np.errstate(invalid="ignore"):
            small = rows & (get("n_int") >= 2) & (get("n_ctl") >= 2) & (big_n < 5)
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

    g = get
    rows = take("means_sds")
    if rows.any():
        put(rows, cv.smd_from_means(g("m_int")[rows], g("sd_int")[rows], g("n_int")[rows],
                                    g("m_ctl")[rows], g("sd_ctl")[rows], g("n_ctl")[rows]),
            METHODS["means_sds"])  # fmt: skip
    rows = take("t")
    if rows.any():
        put(rows, cv.smd_from_t(g("t_value")[rows], g("n_int")[rows], g("n_ctl")[rows]),
            METHODS["t"])  # fmt: skip
    rows = take("f")
    if rows.any():
        put(rows, cv.smd_from_f(g("f_value")[rows], g("n_int")[rows], g("n_ctl")[rows],
                                g("stat_direction")[rows]), METHODS["f"])  # fmt: skip
    rows = take("p")
    if rows.any():
        put(rows, cv.smd_from_p(g("p_value")[rows], g("n_int")[rows], g("n_ctl")[rows],
                                g("stat_direction")[rows]), METHODS["p"])  # fmt: skip
    for lv in ("d_se", "d_ci"):
        rows = take(lv)
        if not rows.any():
            continue
        is_g = g("d_is_g")[rows] == 1
        n1, n2 = g("n_int")[rows], g("n_ctl")[rows]
        if lv == "d_se":
            res = cv.smd_from_d_se(g("d_value")[rows], g("d_se")[rows], is_g=is_g, n1=n1, n2=n2)
        else:
            res = cv.smd_from_d_ci(g("d_value")[rows], g("d_ci_lower")[rows],
                                   g("d_ci_upper")[rows], is_g=is_g, n1=n1, n2=n2)  # fmt: skip
        names = np.where(is_g, METHODS[f"{lv}_g"], METHODS[f"{lv}_d"])
        put(rows, res, "")
        method[rows] = names
        for i, ig, a, b in zip(np.flatnonzero(rows), is_g, n1, n2, strict=True):
            if not ig:
                j = float(cv.hedges_j(a + b - 2)[0])
                notes[i].append(f"Cohen's d corrected: J = {j:.4f} (df = {_fmt(a + b - 2)})")
    rows = take("or_2x2")
    if rows.any():
        a, b = g("events_int")[rows], g("nonevents_int")[rows]
        c, d = g("events_ctl")[rows], g("nonevents_ctl")[rows]
        put(rows, cv.smd_from_counts(a, b, c, d, "logit"), METHODS["or_2x2"])
        zero = cv.has_zero_cell(a, b, c, d)
        idx = np.flatnonzero(rows)
        for i in idx[zero]:
            notes[i].append("zero cell: 1/2 added to all four cells (metafor add=1/2, to='only0')")
        for grp, tot in (("int", a + b), ("ctl", c + d)):
            given = g(f"n_{grp}")[rows]
            for i, nn, tt in zip(idx, given, tot, strict=True):
                if np.isfinite(nn) and nn != tt:
                    notes[i].append(
                        f"n_{grp} = {_fmt(nn)} differs from the counts' group size {_fmt(tt)}; "
                        "the counts are used"
                    )
    rows = take("or_ci")
    if rows.any():
        lor = cv.log_odds_ratio_from_ci(g("or_value")[rows], g("or_ci_lower")[rows],
                                        g("or_ci_upper")[rows])  # fmt: skip
        put(rows, cv.smd_from_log_odds_ratio(lor.yi, lor.vi, "logit"), METHODS["or_ci"])
    rows = take("r")
    if rows.any():
        put(rows, cv.smd_from_r(g("r_value")[rows], g("n_total")[rows]), METHODS["r"])
        for i in np.flatnonzero(rows):
            notes[i].append("r -> d assumes equal group sizes")
    rows = take("prepost")
    if rows.any():
        r_given = g("r_prepost")[rows]
        r_used = np.where(np.isnan(r_given), r_prepost_default, r_given)
        put(rows, cv.smd_prepost_control(
            g("m_int_pre")[rows], g("m_int")[rows], g("sd_int_pre")[rows], g("n_int")[rows],
            g("m_ctl_pre")[rows], g("m_ctl")[rows], g("sd_ctl_pre")[rows], g("n_ctl")[rows],
            r_used), METHODS["prepost"])  # fmt: skip
        for i, rg, ru in zip(np.flatnonzero(rows), r_given, r_used, strict=True):
            src = "default" if np.isnan(rg) else "reported"
            notes[i].append(f"pre-post r = {ru:g} ({src})")
    rows = take("yi_vi")
    if rows.any():
        put(rows, cv.EffectSizeArrays(g("yi")[rows], g("vi")[rows], "SMD"), METHODS["yi_vi"])
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
    yi[flip_rows] = -yi[flip_rows]
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
                    check="effect_size",
                )
            )
    dropped = df.loc[~ok].copy().reset_index(drop=True)
    dropped["reason"] = reasons

    counts = _counts(key, level_arr, ok, method, flip_rows, de_rows, notes, m_given, icc_given,
                     np.isnan(g("r_prepost")) & take("prepost"))  # fmt: skip
    if counts["computed"] + counts["dropped"] != counts["rows_in"]:  # pragma: no cover
        raise RuntimeError(f"effect sizes: rows do not add up: {counts}")
    result = EffectSizeResult(table, dropped, counts, tuple(problems))
    log.info(
        "effect sizes: %d rows in, %d computed, %d dropped",
        counts["rows_in"],
        counts["computed"],
        counts["dropped"],
    )
    return result


def _counts(key, level_arr, ok, method, flip_rows, de_rows, notes, m_given, icc_given, r_default):
    levels = pd.Series(level_arr, dtype=object).map(lambda v: "(missing)" if pd.isna(v) else str(v))
    by_level: dict[str, dict[str, int]] = {}
    for lv in dict.fromkeys(list(ES_INPUT_REQUIRES) + levels.tolist()):
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
