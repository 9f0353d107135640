"""The two faces of a step's tables: records with machine keys, and the readable CSV made from them.

Each table a step writes is built once, as a :class:`ResultTable`: rows (one dict per row) whose
keys are fixed machine keys (``estimate``, ``se``, ``ci_lb``, ``ci_ub``, ``df``, ``p``, ``k``,
``n_studies``, ...; every table's keys are listed in ``docs/results.md``) and the readable header
of each key. The step keeps the table in its JSON (``models/<step>.json``, under ``tables``), which
is what figures, APA tables and report read; the CSV beside it is :meth:`ResultTable.to_frame`,
the same rows with the keys renamed to the headers. A header carries the confidence level where it
has one (``"{pct} CI lower"`` is ``"90% CI lower"`` at level 0.90). Nothing downstream reads a CSV
header back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from intervention_meta.io import jsonable, write_table

__all__ = [
    "HEADERS",
    "CR2_KEYS",
    "ESTIMATE_KEYS",
    "MEAN_KEYS",
    "ResultTable",
    "columns",
    "level_pct",
    "read_tables",
    "result_table",
    "write_tables",
]

#: the readable header of every machine key (``{pct}``: the confidence level, e.g. ``95%``); a table
#: may show another header for a key (``columns(..., estimate="Mean effect")``). Headers name no
#: effect measure: the steps do not know it; APA tables, figures and the report take the measure's
#: symbol and direction from ``effect_sizes_summary.json`` (``outputs.labels``)
HEADERS: dict[str, str] = {
    # estimates, intervals and tests
    "estimate": "Estimate",
    "se": "SE",
    "ci_lb": "{pct} CI lower",
    "ci_ub": "{pct} CI upper",
    "pi_lb": "{pct} PI lower",
    "pi_ub": "{pct} PI upper",
    "stat": "Statistic",
    "df": "df",
    "p": "p",
    "p_halved": "p (halved, boundary)",
    "test": "Test",
    "f": "F",
    "chi2": "Chi-square",
    "df1": "df1",
    "df2": "df2",
    "cr2_se": "CR2 SE",
    "cr2_df": "CR2 df",
    "cr2_ci_lb": "CR2 {pct} CI lower",
    "cr2_ci_ub": "CR2 {pct} CI upper",
    "cr2_p": "CR2 p",
    "cr2_f": "CR2 F (HTZ)",
    "cr2_df1": "CR2 df1",
    "cr2_df2": "CR2 df2",
    "note": "Note",
    # sizes
    "k": "k (effect sizes)",
    "n_studies": "Studies",
    "k_missing": "k missing (left out)",
    "k_test": "k in test",
    "n_studies_test": "Studies in test",
    "k_left_out": "k left out",
    # variance components and heterogeneity
    "tau2": "tau2",
    "sigma2_between": "sigma2 between studies",
    "sigma2_within": "sigma2 within studies",
    "r2": "R2 (%)",
    "i2": "I2 (%)",
    "level": "Level",
    "source": "Source of variance",
    "parameter": "Parameter",
    "variance": "Variance",
    "sd": "SD",
    "pct": "% of total variance",
    # overall
    "result": "Result",
    "model": "Model",
    "analysis_model": "Analysis model",
    "method": "Method",
    "loglik": "logLik",
    "aic": "AIC",
    "likelihood": "Likelihood",
    "domain": "Domain",
    # moderators
    "moderator": "Moderator",
    "moderator_label": "Moderator label",
    "coded_per": "Coded per",
    "type": "Type",
    "term": "Term",
    "code": "Category code",
    "category": "Category",
    "in_test": "In test",
    "tested": "Tested",
    "no_test_reason": "Reason no test",
    "flags": "Flags",
    "row": "Row",
    "variable": "Variable",
    "coefficient": "Coefficient",
    "vif_weighted": "VIF (GLS-weighted)",
    "vif_unweighted": "VIF (unweighted)",
    # components
    "profile": "Profile",
    "present": "Components present",
    "n_programmes": "Programmes (studies)",
    "pooled": "Pooled",
    "component": "Component",
    "component_label": "Component label",
    "n_known": "Programmes with a known value",
    "n_with": "Programmes with it",
    "coverage": "Coverage: share of all programmes with it",
    "n_positive": "Positive programmes (known value)",
    "n_positive_with": "Positive programmes with it",
    "consistency": "Consistency of necessity: share of positive programmes with it",
    "positive_share_with": "Share of programmes with it that are positive",
    "n_missing": "Programmes with a missing value",
    "positive_rule": "Positive rule",
    "study": "Study",
    "positive": "Positive",
    "in_profiles": "In profiles",
    # bias
    "data": "Data",
    "why": "Why these data",
    "statistic": "Statistic",
    "value": "Value",
    # sensitivity
    "analysis": "Analysis",
    "changed": "What changed",
    "converged": "Converged",
    "cook_d": "Cook's distance",
    "hat": "Leverage (sum of hat values)",
    "estimate_without": "Estimate without it",
    "effect_size": "Effect size",
    "yi": "Effect size (yi)",
    "vi": "Sampling variance",
    "z": "Studentized deleted residual",
    "inference": "Inference",
    "assumption": "Assumption",
    "option": "Option",
    "main": "Main analysis",
    "rows_assumed": "Rows using the assumed value",
    "rows_reported": "Rows with a reported value (unchanged)",
    "rows_changed": "Rows changed",
    "changed_by_es_input": "Changed rows by es_input",
}

#: an estimate with its confidence interval, and with its test
ESTIMATE_KEYS = "estimate se ci_lb ci_ub"
MEAN_KEYS = f"{ESTIMATE_KEYS} stat df p"
#: the same under CR2 cluster-robust inference
CR2_KEYS = "cr2_se cr2_df cr2_ci_lb cr2_ci_ub cr2_p"


def level_pct(level: float) -> str:
    """The confidence level as headers and text show it: ``0.95`` -> ``"95%"``."""
    return f"{100 * float(level):g}%"


def columns(*keys: str, **headers: str | None) -> dict[str, str | None]:
    """An ordered key -> header map: ``keys`` with their :data:`HEADERS`, then ``headers``.

    Each of ``keys`` may name several keys separated by white space. A key given in ``headers``
    too takes that header at the place of ``keys``; a header ``None`` keeps the key in the JSON
    only (a machine field, e.g. what a row is), not in the CSV.
    """
    out: dict[str, str | None] = {}
    for key in (k for group in keys for k in group.split()):
        out[key] = headers[key] if key in headers else HEADERS[key]
    for key, header in headers.items():
        out.setdefault(key, header)
    return out


@dataclass(frozen=True)
class ResultTable:
    """One table of a step: rows with machine keys and the readable header of each key.

    Attributes
    ----------
    columns : machine key -> readable header (level already filled in), in the CSV's column
        order; a header ``None`` marks a key kept in the JSON only
    rows : one dict per row; a key missing from a row is an empty cell
    """

    columns: dict[str, str | None]
    rows: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def frame(self) -> pd.DataFrame:
        """The rows with their machine keys (one column per key, in the order of ``columns``)."""
        return pd.DataFrame(list(self.rows), columns=list(self.columns))

    def to_frame(self, counts: Iterable[str] = ()) -> pd.DataFrame:
        """The readable CSV: the machine-only keys dropped, every other key renamed to its header.

        ``counts`` names keys written as integers (missing values stay empty).
        """
        frame = self.frame()
        for key in counts:
            if key in frame.columns:
                frame[key] = pd.to_numeric(frame[key]).round().astype("Int64")
        shown = {k: h for k, h in self.columns.items() if h is not None}
        return frame[list(shown)].rename(columns=shown)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"columns": self.columns, "rows": list(self.rows)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultTable:
        return cls(dict(data.get("columns") or {}), tuple(data.get("rows") or ()))

    def header(self, key: str) -> str:
        """The readable header of ``key`` (the key itself if it has none)."""
        return self.columns.get(key) or key


def result_table(
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
    headers: Mapping[str, str | None],
    level: float | None = None,
) -> ResultTable:
    """A :class:`ResultTable` of ``rows`` with ``headers`` (``{pct}`` filled in from ``level``).

    Raises
    ------
    KeyError
        If a row has a key without a header: every key a table writes is documented.
    """
    pct = level_pct(level) if level is not None else "{pct}"
    cols = {k: (None if h is None else h.replace("{pct}", pct)) for k, h in headers.items()}
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    out = []
    for row in rows:
        unknown = [k for k in row if k not in cols]
        if unknown:
            raise KeyError(f"keys without a header: {unknown}")
        out.append(dict(row))
    return ResultTable(cols, tuple(out))


def read_tables(step_json: Mapping[str, Any]) -> dict[str, ResultTable]:
    """The tables a step wrote into its JSON (``tables``), by name."""
    return {name: ResultTable.from_dict(t) for name, t in (step_json.get("tables") or {}).items()}


def write_tables(tables: Mapping[str, tuple[ResultTable, str | Path]]) -> dict[str, Any]:
    """Write each ``name: (table, path)`` as its readable CSV; return the tables for the step's
    JSON (``{name: table.to_dict()}``, what :func:`read_tables` reads back)."""
    for table, path in tables.values():
        write_table(table.to_frame(), path)
    return {name: table.to_dict() for name, (table, _) in tables.items()}
