r"""Inter-rater reliability: how well two coders agree, variable by variable.

A second coder (coder B) codes a subset of the studies with the same codebook, in files of the
same layout as the main data (coder A). :func:`compare_coders` matches the rows of each table by
the table's key (e.g. ``study_id``, ``es_id``) and, for every codebook column, reports

* the number of double-coded units, the pairs with a value from both coders, and the units left
  out because at least one coder wrote a missing code (e.g. ``-99``), left the cell blank or wrote
  something invalid (missing values are excluded pairwise and counted);
* percent agreement over the pairs (for numbers: equal within ``tolerance``);
* by the variable's type:

  ======================== ==================================================================
  binary, categorical      Cohen's (1960) kappa with its asymptotic standard error and
                           confidence interval (:func:`cohens_kappa`), and Krippendorff's alpha
                           (nominal)
  ordinal                  weighted kappa with linear (Cicchetti-Allison) weights
                           :math:`w_{ij} = 1 - |i - j| / (k - 1)` over the codebook's k levels in
                           their order (also levels nobody used), and Krippendorff's alpha
                           (ordinal)
  integer, number          ICC(2,1) (:func:`icc_a1`) with the F-based interval, and
                           Krippendorff's alpha (interval)
  id, text                 exact agreement only (same text after trimming)
  ======================== ==================================================================

and lists every disagreement (:attr:`ReliabilityResult.disagreements`) for the consensus
meeting: the table, the unit, the column and both coders' cells as written, including a value
against a missing code and units only one coder coded.

Kappa, its standard errors and the weights come from :func:`statsmodels.stats.inter_rater.
cohens_kappa` (standard errors of Fleiss, Cohen & Everitt 1969, as SAS PROC FREQ); alpha from the
``krippendorff`` package (Castro 2017; Krippendorff 2011). The ICC is computed here from the
two-way ANOVA mean squares (no package of the stack has it).

References
----------
Cohen, J. (1960). A coefficient of agreement for nominal scales. *Educational and Psychological
Measurement*, 20, 37-46.
Fleiss, J. L., Cohen, J., & Everitt, B. S. (1969). Large sample standard errors of kappa and
weighted kappa. *Psychological Bulletin*, 72, 323-327.
Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for
Communication, University of Pennsylvania.
McGraw, K. O., & Wong, S. P. (1996). Forming inferences about some intraclass correlation
coefficients. *Psychological Methods*, 1, 30-46.
Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater
reliability. *Psychological Bulletin*, 86, 420-428.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from intervention_meta.data.codebook import Cell, Codebook, Variable, load_codebook, normalise_code
from intervention_meta.data.reading import read_table
from intervention_meta.errors import InputError, Problem
from intervention_meta.io import write_table
from intervention_meta.models import distributions as dist

logger = logging.getLogger(__name__)

__all__ = [
    "AGREEMENT_COLUMNS",
    "DISAGREEMENT_COLUMNS",
    "ICCResult",
    "KappaResult",
    "ReliabilityResult",
    "cohens_kappa",
    "compare_coders",
    "icc_a1",
    "krippendorff_alpha",
    "write_reliability",
    "percent_agreement",
]

AGREEMENT_COLUMNS = [
    "table",
    "variable",
    "label",
    "type",
    "statistic",
    "n_units",
    "n_pairs",
    "n_missing",
    "n_invalid",
    "n_agree",
    "n_disagree",
    "percent_agreement",
    "kappa",
    "kappa_se",
    "kappa_ci_lower",
    "kappa_ci_upper",
    "kappa_weights",
    "alpha",
    "alpha_level",
    "icc",
    "icc_ci_lower",
    "icc_ci_upper",
    "icc_f",
    "icc_df1",
    "icc_df2",
    "icc_p",
    "note",
]
DISAGREEMENT_COLUMNS = [
    "table",
    "key",
    "unit",
    "parent_unit",
    "variable",
    "label",
    "coder_a",
    "coder_b",
    "kind",
    "row_a",
    "row_b",
]
ONLY_A = "only coded by A"
ONLY_B = "only coded by B"


# --------------------------------------------------------------------------- coefficients
@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa (or weighted kappa) of two coders.

    Attributes
    ----------
    kappa : the estimate.
    se : its asymptotic standard error (Fleiss, Cohen & Everitt 1969).
    ci_lower, ci_upper : ``kappa -/+ z * se`` at ``conf_level``, cut to [-1, 1].
    se0 : the standard error under H0: kappa = 0; ``z = kappa / se0`` with two-sided ``p_value``.
    n : number of pairs.
    weights : ``"none"`` or ``"linear"``.
    """

    kappa: float
    se: float
    ci_lower: float
    ci_upper: float
    se0: float
    z: float
    p_value: float
    n: int
    weights: str
    conf_level: float

    def to_dict(self) -> dict:
        return asdict(self)


def _nan_kappa(n: int, weights: str, conf_level: float) -> KappaResult:
    nan = float("nan")
    return KappaResult(nan, nan, nan, nan, nan, nan, nan, n, weights, conf_level)


def cohens_kappa(
    a: Sequence,
    b: Sequence,
    categories: Sequence | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
) -> KappaResult:
    r"""Cohen's kappa of two coders' codes, optionally with linear weights.

    .. math::

        \kappa = \frac{p_o - p_e}{1 - p_e}, \qquad
        \kappa_w = 1 - \frac{\sum_{ij} v_{ij} p_{ij}}{\sum_{ij} v_{ij} p_{i\cdot} p_{\cdot j}},
        \quad v_{ij} = \frac{|i - j|}{k - 1},

    with :math:`p_{ij}` the share of units coded i by coder A and j by coder B (Cohen 1960; Cohen
    1968 for the weighted form, with the linear Cicchetti-Allison disagreement weights).
    Computed by :func:`statsmodels.stats.inter_rater.cohens_kappa`, whose standard errors follow
    Fleiss, Cohen & Everitt (1969) as SAS PROC FREQ; the confidence interval is
    :math:`\kappa \pm z_{1-(1-\text{conf})/2}\, SE`, cut to [-1, 1] (the Wald interval can
    pass 1 in small samples; kappa cannot).

    Parameters
    ----------
    a, b : the two coders' codes for the same units (no missing values).
    categories : all codes in order (the codebook's levels; needed for the weights' spacing).
        Default: the sorted codes that occur.
    weights : ``None`` (simple kappa) or ``"linear"``.
    conf_level : confidence level of the interval.

    Returns
    -------
    KappaResult
        All NaN when there are no pairs, or when kappa is undefined (both coders used the same
        single code for every unit, :math:`p_e = 1`).
    """
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"a and b differ in length ({len(a)} and {len(b)})")
    wname = "none" if weights is None else str(weights)
    if weights not in (None, "linear"):
        raise ValueError(f"weights must be None or 'linear', got {weights!r}")
    n = len(a)
    if n == 0:
        return _nan_kappa(0, wname, conf_level)
    cats = list(categories) if categories is not None else sorted(set(a) | set(b))
    index = {c: i for i, c in enumerate(cats)}
    unknown = sorted({str(x) for x in a + b if x not in index})
    if unknown:
        raise ValueError(f"codes not among the categories: {', '.join(unknown)}")
    table = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if weights is None:
            res = sm_kappa(table)
        else:
            res = sm_kappa(table, weights=np.arange(len(cats)), wt="linear")
    kappa = float(res.kappa)
    if not math.isfinite(kappa):
        return _nan_kappa(n, wname, conf_level)
    se = float(res.std_kappa)
    se0 = float(res.std_kappa0)
    zcrit = dist.norm_isf((1 - conf_level) / 2)
    z = kappa / se0 if se0 > 0 else float("nan")
    p = float(2 * dist.norm_sf(abs(z))) if math.isfinite(z) else float("nan")
    return KappaResult(
        kappa=kappa,
        se=se,
        ci_lower=max(kappa - zcrit * se, -1.0),
        ci_upper=min(kappa + zcrit * se, 1.0),
        se0=se0,
        z=float(z),
        p_value=p,
        n=n,
        weights=wname,
        conf_level=conf_level,
    )


@dataclass(frozen=True)
class ICCResult:
    """ICC(2,1) of Shrout & Fleiss (1979) (= ICC(A,1) of McGraw & Wong 1996).

    Attributes
    ----------
    icc : the estimate.
    ci_lower, ci_upper : the F-based interval of McGraw & Wong (1996) at ``conf_level``.
    f, df1, df2, p_value : the F test of H0: ICC = 0 (``MSR / MSE`` on ``n-1`` and
        ``(n-1)(k-1)`` df, one-sided).
    ms_rows, ms_cols, ms_error : the two-way ANOVA mean squares (targets, raters, residual).
    n, k : targets (units) and raters.
    """

    icc: float
    ci_lower: float
    ci_upper: float
    f: float
    df1: float
    df2: float
    p_value: float
    ms_rows: float
    ms_cols: float
    ms_error: float
    n: int
    k: int
    conf_level: float

    def to_dict(self) -> dict:
        return asdict(self)


def icc_a1(ratings: np.ndarray | Sequence[Sequence[float]], conf_level: float = 0.95) -> ICCResult:
    r"""ICC(2,1): two-way random effects, absolute agreement, single rater.

    From the two-way ANOVA of the n x k ratings (targets in rows, raters in columns) with mean
    squares for targets (MSR, Shrout & Fleiss's BMS), raters (MSC, JMS) and residual (MSE, EMS):

    .. math::

        \text{ICC}(2,1) = \frac{MSR - MSE}{MSR + (k-1) MSE + k (MSC - MSE) / n}.

    The confidence interval is McGraw & Wong's (1996, Table 7, case 2A; the approximation of
    Shrout & Fleiss 1979, eq. for ICC(2,1)) with Satterthwaite degrees of freedom

    .. math::

        a = \frac{k \hat\rho}{n (1-\hat\rho)}, \quad
        b = 1 + \frac{k \hat\rho (n-1)}{n (1-\hat\rho)}, \quad
        v = \frac{(a\,MSC + b\,MSE)^2}{\frac{(a\,MSC)^2}{k-1} + \frac{(b\,MSE)^2}{(n-1)(k-1)}},

    :math:`F_L = F_{1-\alpha/2}(n-1, v)`, :math:`F_U = F_{1-\alpha/2}(v, n-1)`,

    .. math::

        L = \frac{n (MSR - F_L MSE)}{F_L (k\,MSC + (kn - k - n) MSE) + n\,MSR}, \quad
        U = \frac{n (F_U MSR - MSE)}{k\,MSC + (kn - k - n) MSE + n F_U MSR}.

    This is what R's ``irr::icc(model = "twoway", type = "agreement", unit = "single")`` and
    ``psych::ICC`` (``ICC2``) report. Rows with a missing rating are dropped.

    Parameters
    ----------
    ratings : n x k array (targets x raters).
    conf_level : confidence level of the interval.

    Returns
    -------
    ICCResult
        NaN where undefined: fewer than 2 complete targets, no variance at all, or (for the
        interval) perfect agreement.

    Examples
    --------
    Shrout & Fleiss (1979), Table 2 (6 targets, 4 judges): ICC(2,1) = .29 (their Table 4).

    >>> r = icc_a1([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
    ...             [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    >>> round(r.icc, 2), round(r.ci_lower, 3), round(r.ci_upper, 3)
    (0.29, 0.019, 0.761)
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be a 2-d array (targets x raters), got shape {x.shape}")
    x = x[~np.isnan(x).any(axis=1)]
    n, k = x.shape
    nan = float("nan")
    if n < 2 or k < 2:
        return ICCResult(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, n, k, conf_level)
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_error = max(ss_total - ss_rows - ss_cols, 0.0)
    df1, df_cols, df2 = n - 1, k - 1, (n - 1) * (k - 1)
    msr, msc, mse = ss_rows / df1, ss_cols / df_cols, ss_error / df2
    scale = max(abs(msr), abs(msc), abs(mse), 1e-300)
    if abs(mse) < 1e-12 * scale:
        mse = 0.0
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    with np.errstate(all="ignore"):
        icc = (msr - mse) / denom if denom > 0 else nan
        f = msr / mse if mse > 0 else (math.inf if msr > 0 else nan)
    p = float(dist.f_sf(f, df1, df2)) if not math.isnan(f) else nan
    lower = upper = nan
    if math.isfinite(icc) and icc < 1:
        a = k * icc / (n * (1 - icc))
        b = 1 + k * icc * (n - 1) / (n * (1 - icc))
        num = (a * msc + b * mse) ** 2
        den = (a * msc) ** 2 / df_cols + (b * mse) ** 2 / df2
        v = num / den if den > 0 else nan
        if math.isfinite(v) and v > 0:
            q = 1 - (1 - conf_level) / 2
            fl = dist.f_ppf(q, df1, v)
            fu = dist.f_ppf(q, v, df1)
            c = k * msc + (k * n - k - n) * mse
            lower = float(n * (msr - fl * mse) / (fl * c + n * msr))
            upper = float(n * (fu * msr - mse) / (c + n * fu * msr))
    return ICCResult(
        icc=float(icc),
        ci_lower=lower,
        ci_upper=upper,
        f=float(f),
        df1=float(df1),
        df2=float(df2),
        p_value=p,
        ms_rows=float(msr),
        ms_cols=float(msc),
        ms_error=float(mse),
        n=n,
        k=k,
        conf_level=conf_level,
    )


def krippendorff_alpha(
    data: np.ndarray | Sequence[Sequence[float]],
    level: str = "interval",
    value_domain: Sequence | None = None,
) -> float:
    r"""Krippendorff's alpha, :math:`\alpha = 1 - D_o / D_e`, of a coders x units matrix.

    A thin wrapper of ``krippendorff.alpha`` (Castro 2017), which follows Krippendorff (2011):
    missing values (NaN) are allowed; units with fewer than two values are not pairable and drop
    out. Returns NaN (instead of raising) when alpha is undefined, e.g. when every value is the
    same (no expected disagreement).

    Parameters
    ----------
    data : coders x units, numbers (codes of a nominal or ordinal variable as their positions).
    level : ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``.
    value_domain : all possible values in order (nominal/ordinal: the positions of all levels).
    """
    import krippendorff

    x = np.asarray(data, dtype=float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            value = krippendorff.alpha(
                reliability_data=x, level_of_measurement=level, value_domain=value_domain
            )
        except ValueError:
            return float("nan")
    return float(value)


def percent_agreement(a: Sequence, b: Sequence, tolerance: float | None = None) -> float:
    """Percent of pairs on which both coders agree (numbers: within ``tolerance``); NaN if none."""
    a, b = list(a), list(b)
    if not a:
        return float("nan")
    if tolerance is None:
        agree = sum(x == y for x, y in zip(a, b, strict=True))
    else:
        agree = sum(abs(float(x) - float(y)) <= tolerance for x, y in zip(a, b, strict=True))
    return 100.0 * agree / len(a)


# --------------------------------------------------------------------------- comparing files
@dataclass(frozen=True)
class ReliabilityResult:
    """Agreement of two coders (see :func:`compare_coders`).

    Attributes
    ----------
    agreement : one row per compared column (:data:`AGREEMENT_COLUMNS`).
    disagreements : one row per disagreeing cell or unit (:data:`DISAGREEMENT_COLUMNS`).
    units : table -> ``{"double_coded", "only_a", "only_b"}`` unit counts.
    files : ``{"coder_a": {table: file}, "coder_b": {table: file}}``.
    settings : the options used (confidence level, numeric tolerance, ordinal weights).
    """

    agreement: pd.DataFrame
    disagreements: pd.DataFrame
    units: dict
    files: dict
    settings: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The agreement table (one row per column)."""
        return self.agreement.copy()

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "settings": self.settings,
            "units": self.units,
            "n_disagreements": int(len(self.disagreements)),
            "variables": _records(self.agreement),
            "disagreements": _records(self.disagreements),
        }

    def write(
        self,
        agreement_csv: str | Path,
        agreement_json: str | Path | None = None,
        disagreements_csv: str | Path | None = None,
    ) -> None:
        """Write the agreement table (CSV and JSON) and the disagreement list (CSV)."""
        for path in (agreement_csv, agreement_json, disagreements_csv):
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_table(self.agreement, agreement_csv)
        if agreement_json is not None:
            with open(agreement_json, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=2, allow_nan=False)
                fh.write("\n")
        if disagreements_csv is not None:
            write_table(self.disagreements, disagreements_csv)
        logger.info(
            "wrote inter-rater agreement of %d columns and %d disagreements to %s",
            len(self.agreement),
            len(self.disagreements),
            agreement_csv,
        )


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            elif v is pd.NA:
                v = None
            clean[k] = v
        out.append(clean)
    return out


def _read(path: str | Path, table: str, key: str, coder: str) -> pd.DataFrame:
    frame, info = read_table(path, table=table)
    file = str(path)
    problems = [p for p in info.errors if p.check != "read_header_only"]
    if key not in frame.columns:
        problems.append(
            Problem(file, info.header_row, key, None, f"a key column '{key}'", check="reliability")
        )
        raise InputError(problems, summary=f"coder {coder}: {file} has no column {key}")
    keys = frame[key]
    blank = keys == ""
    if blank.any():
        logger.warning("%s: %d row(s) without %s are ignored", file, int(blank.sum()), key)
    frame = frame[~blank]
    dup = frame[key][frame[key].duplicated(keep=False)]
    if len(dup):
        problems = [
            Problem(file, int(row), key, value, f"a unique {key}", check="reliability_key")
            for row, value in dup.items()
        ]
        raise InputError(problems, summary=f"coder {coder}: duplicate {key} in {file}")
    return frame


def _cell_text(cell: Cell | None) -> str:
    return "" if cell is None else cell.raw


def _same(var: Variable, x: Cell, y: Cell, tolerance: float) -> bool:
    if x.state != y.state:
        return False
    if x.state == "blank":
        return True
    if x.state == "value":
        if var.is_numeric:
            return abs(float(x.value) - float(y.value)) <= tolerance
        return x.value == y.value
    if x.state == "missing":
        return normalise_code(x.raw) == normalise_code(y.raw)
    return x.raw == y.raw  # invalid


def _kind(x: Cell, y: Cell) -> str:
    if "invalid" in (x.state, y.state):
        return "invalid"
    if x.state == "value" and y.state == "value":
        return "value"
    return "missing"


def _statistic_name(var: Variable) -> str:
    if var.type in ("binary", "categorical"):
        return "Cohen's kappa; Krippendorff's alpha (nominal)"
    if var.type == "ordinal":
        return "weighted kappa (linear weights); Krippendorff's alpha (ordinal)"
    if var.is_numeric:
        return "ICC(2,1); Krippendorff's alpha (interval)"
    return "exact agreement"


def _agreement_row(var: Variable, column: str, table: str, n_units: int, **values: object) -> dict:
    """A row of the agreement table: the column's description, ``values``, the rest missing."""
    row: dict = {c: float("nan") for c in AGREEMENT_COLUMNS}
    row.update(
        table=table,
        variable=column,
        label=var.label or column,
        type=var.type,
        statistic=_statistic_name(var),
        n_units=n_units,
        kappa_weights="",
        alpha_level="",
        note="",
    )
    row.update(values)
    return row


def _compare_column(
    var: Variable,
    column: str,
    table: str,
    pairs: list[tuple[str, pd.Series | None, pd.Series | None]],
    conf_level: float,
    tolerance: float,
) -> tuple[dict, list[tuple[str, Cell, Cell, str]]]:
    """One agreement row and the disagreeing units of one column over the double-coded units."""
    values_a, values_b, disagree = [], [], []
    n_missing = n_invalid = 0
    for unit, row_a, row_b in pairs:
        x = var.parse(row_a.get(column, "") if row_a is not None else "")
        y = var.parse(row_b.get(column, "") if row_b is not None else "")
        if not _same(var, x, y, tolerance):
            disagree.append((unit, x, y, _kind(x, y)))
        if x.state == "value" and y.state == "value":
            values_a.append(x.value)
            values_b.append(y.value)
        elif "invalid" in (x.state, y.state):
            n_invalid += 1
        else:
            n_missing += 1
    n_pairs = len(values_a)
    if var.is_numeric:
        n_agree = sum(
            abs(float(p) - float(q)) <= tolerance for p, q in zip(values_a, values_b, strict=True)
        )
    else:
        n_agree = sum(p == q for p, q in zip(values_a, values_b, strict=True))
    row = _agreement_row(
        var,
        column,
        table,
        len(pairs),
        n_pairs=n_pairs,
        n_missing=n_missing,
        n_invalid=n_invalid,
        n_agree=n_agree,
        n_disagree=n_pairs - n_agree,
        percent_agreement=100.0 * n_agree / n_pairs if n_pairs else float("nan"),
    )
    notes = []
    if var.has_levels and n_pairs:
        cats = list(var.levels)
        weights = "linear" if var.type == "ordinal" else None
        k = cohens_kappa(values_a, values_b, cats, weights=weights, conf_level=conf_level)
        row.update(
            kappa=k.kappa,
            kappa_se=k.se,
            kappa_ci_lower=k.ci_lower,
            kappa_ci_upper=k.ci_upper,
            kappa_weights=k.weights,
        )
        if math.isnan(k.kappa):
            notes.append("kappa undefined: both coders used one and the same code throughout")
        pos = {c: i for i, c in enumerate(cats)}
        level = "ordinal" if var.type == "ordinal" else "nominal"
        row["alpha"] = krippendorff_alpha(
            [[pos[v] for v in values_a], [pos[v] for v in values_b]],
            level=level,
            value_domain=list(range(len(cats))),
        )
        row["alpha_level"] = level
    elif var.is_numeric and n_pairs:
        data = np.array([values_a, values_b], dtype=float)
        row["alpha"] = krippendorff_alpha(data, level="interval")
        row["alpha_level"] = "interval"
        icc = icc_a1(data.T, conf_level=conf_level)
        row.update(
            icc=icc.icc,
            icc_ci_lower=icc.ci_lower,
            icc_ci_upper=icc.ci_upper,
            icc_f=icc.f,
            icc_df1=icc.df1,
            icc_df2=icc.df2,
            icc_p=icc.p_value,
        )
        if n_pairs < 2:
            notes.append("ICC needs at least 2 pairs")
        elif math.isnan(icc.icc):
            notes.append("ICC undefined: no variance in the values")
        elif icc.icc == 1:
            notes.append("perfect agreement: ICC = 1, no interval")
    if n_pairs == 0 and pairs:
        notes.append("no unit with a value from both coders")
    if n_invalid:
        notes.append(f"{n_invalid} unit(s) with an invalid cell left out")
    row["note"] = "; ".join(notes)
    return row, disagree


def _compare_table(
    cb: Codebook,
    table: str,
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    scope: set[str] | None,
    conf_level: float,
    tolerance: float,
) -> tuple[list[dict], list[dict], dict]:
    key = cb.key(table)
    parent_key = cb.parent_key(table)
    rows_a = {str(r[key]): (int(i), r) for i, r in frame_a.iterrows()}
    rows_b = {str(r[key]): (int(i), r) for i, r in frame_b.iterrows()}

    def parent_of(k: str) -> str:
        if parent_key is None:
            return ""
        for rows in (rows_a, rows_b):
            if k in rows and parent_key in rows[k][1]:
                return rows[k][1][parent_key]
        return ""

    if scope is None:  # the parent table: the units coder B coded
        in_scope_a = [k for k in rows_a if k in rows_b]
    else:  # the child table: all rows of the parents coder B coded
        in_scope_a = [k for k in rows_a if k in rows_b or parent_of(k) in scope]
    both = [k for k in in_scope_a if k in rows_b]
    only_a = [k for k in in_scope_a if k not in rows_b]
    only_b = [k for k in rows_b if k not in rows_a]
    label = cb.label(key)
    disagreements = []
    for k in only_a:
        disagreements.append(_unit_row(table, key, k, parent_of(k), label, k, "", ONLY_A))
        disagreements[-1]["row_a"] = rows_a[k][0]
    for k in only_b:
        disagreements.append(_unit_row(table, key, k, parent_of(k), label, "", k, ONLY_B))
        disagreements[-1]["row_b"] = rows_b[k][0]
    pairs = [(k, rows_a[k][1], rows_b[k][1]) for k in both]
    agreement = []
    for column in cb.columns(table):
        if column == key:
            continue
        var = cb.variable_for_column(table, column)
        if var is None:
            continue
        in_a, in_b = column in frame_a.columns, column in frame_b.columns
        if not (in_a and in_b):
            if in_a or in_b:
                who = "B" if in_a else "A"
                note = f"not compared: column absent from coder {who}'s file"
                agreement.append(_agreement_row(var, column, table, len(pairs), note=note))
                logger.warning("%s.%s is not in coder %s's file: not compared", table, column, who)
            continue
        row, diffs = _compare_column(var, column, table, pairs, conf_level, tolerance)
        agreement.append(row)
        for unit, x, y, kind in diffs:
            d = _unit_row(table, key, unit, parent_of(unit), var.label or column, "", "", kind)
            d.update(variable=column, coder_a=_cell_text(x), coder_b=_cell_text(y))
            d.update(row_a=rows_a[unit][0], row_b=rows_b[unit][0])
            disagreements.append(d)
    order = {k: i for i, k in enumerate(list(rows_a) + [k for k in rows_b if k not in rows_a])}
    columns = {c: i for i, c in enumerate(cb.columns(table))}
    disagreements.sort(key=lambda d: (order.get(d["unit"], 0), columns.get(d["variable"], -1)))
    units = {"double_coded": len(both), "only_a": len(only_a), "only_b": len(only_b)}
    return agreement, disagreements, units


def _unit_row(table, key, unit, parent_unit, label, a, b, kind) -> dict:
    return {
        "table": table,
        "key": key,
        "unit": unit,
        "parent_unit": parent_unit,
        "variable": key,
        "label": label,
        "coder_a": a,
        "coder_b": b,
        "kind": kind,
        "row_a": pd.NA,
        "row_b": pd.NA,
    }


def compare_coders(
    codebook: Codebook | str | Path,
    studies_a: str | Path,
    studies_b: str | Path,
    effects_a: str | Path | None = None,
    effects_b: str | Path | None = None,
    conf_level: float = 0.95,
    tolerance: float = 0.0,
) -> ReliabilityResult:
    """Compare two coders' files column by column (see the module doc).

    Parameters
    ----------
    codebook : a loaded :class:`~intervention_meta.data.codebook.Codebook` or the codebook file.
    studies_a, studies_b : the parent table (e.g. studies) of coder A (the main data) and of
        coder B (a subset of the units, same columns). CSV or Excel, read with
        :func:`~intervention_meta.data.reading.read_table`.
    effects_a, effects_b : the child table of both coders; compared only when both are given.
        Coder A's rows of the parents coder B coded are in scope: rows only one coder has are
        listed as disagreements.
    conf_level : confidence level of the kappa and ICC intervals.
    tolerance : numbers that differ by at most this much count as agreeing (default: exact).

    Returns
    -------
    ReliabilityResult

    Raises
    ------
    InputError
        If a file cannot be read, lacks its key column or has duplicate keys.
    """
    cb = load_codebook(codebook)
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must lie between 0 and 1, got {conf_level}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    parent, child = cb.parent_table, cb.child_table
    files_a = {parent: str(studies_a)}
    files_b = {parent: str(studies_b)}
    pa = _read(studies_a, parent, cb.key(parent), "A")
    pb = _read(studies_b, parent, cb.key(parent), "B")
    agreement, disagreements, units = _compare_table(
        cb, parent, pa, pb, None, conf_level, tolerance
    )
    unit_counts = {parent: units}
    if effects_a is not None and effects_b is not None:
        files_a[child], files_b[child] = str(effects_a), str(effects_b)
        ca = _read(effects_a, child, cb.key(child), "A")
        cbf = _read(effects_b, child, cb.key(child), "B")
        pkey = cb.parent_key(child)
        scope = set(pb[cb.key(parent)])
        if pkey in cbf.columns:
            scope |= set(cbf[pkey][cbf[pkey] != ""])
        more_a, more_d, units = _compare_table(cb, child, ca, cbf, scope, conf_level, tolerance)
        agreement += more_a
        disagreements += more_d
        unit_counts[child] = units
    elif (effects_a is None) != (effects_b is None):
        logger.warning("only one coder's %s file given: the %s table is not compared", child, child)
    agreement_frame = pd.DataFrame(agreement, columns=AGREEMENT_COLUMNS)
    for col in ("n_units", "n_pairs", "n_missing", "n_invalid", "n_agree", "n_disagree"):
        agreement_frame[col] = agreement_frame[col].astype("Int64")
    dis = pd.DataFrame(disagreements, columns=DISAGREEMENT_COLUMNS)
    for col in ("row_a", "row_b"):
        dis[col] = dis[col].astype("Int64")
    for table, u in unit_counts.items():
        logger.info(
            "%s: %d double-coded unit(s), %d only coded by A, %d only coded by B",
            table,
            u["double_coded"],
            u["only_a"],
            u["only_b"],
        )
    logger.info("%d disagreement(s) in total", len(dis))
    return ReliabilityResult(
        agreement=agreement_frame,
        disagreements=dis,
        units=unit_counts,
        files={"coder_a": files_a, "coder_b": files_b},
        settings={
            "conf_level": conf_level,
            "tolerance": tolerance,
            "ordinal_kappa_weights": "linear",
            "icc": "ICC(2,1): two-way random, absolute agreement, single rater",
        },
    )


# --------------------------------------------------------------------------- the step
def write_reliability(
    *,
    codebook: Codebook | str | Path,
    studies_a: str | Path,
    studies_b: str | Path,
    effects_a: str | Path | None = None,
    effects_b: str | Path | None = None,
    agreement: str | Path,
    json: str | Path | None = None,
    disagreements: str | Path | None = None,
    conf_level: float = 0.95,
    tolerance: float = 0.0,
) -> ReliabilityResult:
    """Compare two coders (:func:`compare_coders`); write the agreement per variable (CSV and
    ``json``) and the list of disagreements."""
    result = compare_coders(
        codebook,
        studies_a,
        studies_b,
        effects_a,
        effects_b,
        conf_level=float(conf_level),
        tolerance=float(tolerance),
    )
    result.write(agreement, json, disagreements)
    return result
