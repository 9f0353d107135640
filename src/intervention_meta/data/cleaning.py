"""Turn the validated raw tables into one typed analysis table, applying the inclusion criteria.

:func:`clean` reads both tables with the same reader as validation, so it sees the same cells,
and

1. types every codebook column: missing codes and blanks (and ``NA``) become missing values;
   integer -> ``Int64``, number -> ``float64``, binary -> ``Int64`` (its integer codes, 0/1),
   categorical/ordinal -> ``string`` (the codebook's codes), id/text -> ``string``. Optional
   columns absent from a file are added as all-missing; unknown extra columns are dropped;
2. adds ``source_row`` (the effects file's spreadsheet row, header = row 1);
3. merges the studies' columns into the effect rows (left join on the studies key);
4. drops, with a reason, effect rows without a (known) study and rows that fail an inclusion
   criterion (variable -> allowed codes, or ``{min, max}``; a missing value fails; a criterion on
   a study variable drops all of that study's effect rows). Each dropped row is listed once, with
   the first criterion (in the config's order) it fails.

Clean is meant to run after validation passed, but it does not stop on odd cells: a cell that
does not parse becomes a missing value and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intervention_meta.data.codebook import (
    Codebook,
    Variable,
    check_inclusion,
    load_codebook,
    normalise_code,
)
from intervention_meta.data.reading import read_table
from intervention_meta.errors import InputError, Problem
from intervention_meta.io import write_table

logger = logging.getLogger(__name__)

SOURCE_ROW = "source_row"
SOURCE_FILE = "source_file"
REASON = "reason"
CRITERION = "criterion"
VALUE = "value"

__all__ = [
    "CleanResult",
    "check_inclusion",
    "clean",
    "read_clean",
    "type_columns",
]


@dataclass(frozen=True)
class CleanResult:
    """The analysis table and what was left out.

    Attributes
    ----------
    effects : the kept effect rows, typed, with the studies' columns and ``source_row``.
    dropped : every dropped effect row: the keys, ``source_file``, ``source_row``, ``reason``,
        ``criterion`` and ``value`` (the offending value as text; empty if missing).
    studies : the typed studies table (all studies as read; duplicate keys kept once).
    counts : ``rows_in``, ``kept``, ``dropped``, ``dropped_by_reason`` (reason -> rows),
        ``studies_in`` and ``studies_kept``.
    """

    effects: pd.DataFrame
    dropped: pd.DataFrame
    studies: pd.DataFrame
    counts: dict

    def to_dict(self) -> dict:
        return dict(self.counts)

    def to_frame(self) -> pd.DataFrame:
        """The counts as a table: one row per step (rows in, each reason, kept)."""
        rows = [("rows in", self.counts["rows_in"])]
        rows += [(f"dropped: {r}", n) for r, n in self.counts["dropped_by_reason"].items()]
        rows += [("kept", self.counts["kept"])]
        return pd.DataFrame(rows, columns=["step", "rows"])

    def write(self, outdir: str | Path) -> dict[str, Path]:
        """Write ``effects.csv`` and ``dropped.csv`` (with its header even when empty)."""
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        paths = {"effects": outdir / "effects.csv", "dropped": outdir / "dropped.csv"}
        write_table(self.effects, paths["effects"])
        write_table(self.dropped, paths["dropped"])
        return paths


# --------------------------------------------------------------------------- typing
def _typed_series(var: Variable, raw: pd.Series, file: str) -> pd.Series:
    cells = [var.parse(v) for v in raw]
    bad = [(row, c.raw) for row, c in zip(raw.index, cells, strict=True) if c.state == "invalid"]
    if bad:
        logger.warning(
            "%s: %d invalid cell(s) in column %s set to missing (first: row %s, %r); run validate",
            file,
            len(bad),
            var.name,
            bad[0][0],
            bad[0][1],
        )
    values = [c.value if c.state == "value" else None for c in cells]
    if var.type == "number":
        data = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        return pd.Series(data, index=raw.index, name=var.name)
    if var.type == "integer" or var.type == "binary":
        ints = [None if v is None else int(v) for v in values]
        return pd.Series(pd.array(ints, dtype="Int64"), index=raw.index, name=var.name)
    return pd.Series(pd.array(values, dtype="string"), index=raw.index, name=var.name)


def _empty_series(var: Variable, index: pd.Index) -> pd.Series:
    return _typed_series(var, pd.Series([""] * len(index), index=index, dtype=object), "")


def type_columns(
    codebook: Codebook, frame: pd.DataFrame, columns: list[str] | None = None, file: str = ""
) -> pd.DataFrame:
    """Type the codebook columns of a frame of raw strings (see the module doc).

    Parameters
    ----------
    codebook : the coding scheme.
    frame : cells as strings (e.g. from :func:`~intervention_meta.data.reading.read_table`).
    columns : the columns to return, in order (default: the frame's codebook columns); those
        absent from ``frame`` are added as all-missing. Columns that are not codebook variables
        are returned as they are.
    file : named in log messages.
    """
    columns = list(columns) if columns is not None else [c for c in frame if c in codebook]
    out = {}
    for name in columns:
        var = codebook.variables.get(name)
        if var is None:
            out[name] = frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)
        elif name in frame:
            out[name] = _typed_series(var, frame[name].astype(str), file)
        else:
            out[name] = _empty_series(var, frame.index)
    return pd.DataFrame(out, index=frame.index)


def read_clean(path: str | Path, codebook: Codebook | str | Path) -> pd.DataFrame:
    """Read an ``effects.csv`` written by :meth:`CleanResult.write` back with its types."""
    cb = load_codebook(codebook)
    frame, info = read_table(path, written=True)
    if info.errors:
        raise InputError(info.problems, summary=f"cannot read the clean table {path}")
    typed = type_columns(cb, frame, list(frame.columns), file=str(path))
    if SOURCE_ROW in typed:
        typed[SOURCE_ROW] = pd.to_numeric(typed[SOURCE_ROW]).astype("int64")
    return typed.reset_index(drop=True)


@dataclass(frozen=True)
class EffectSizeData:
    """The effect sizes of an analysis as the analysis steps and figures read them.

    Attributes
    ----------
    data : one row per effect size (typed codebook columns plus ``yi``, ``vi``, ...)
    codebook : the coding scheme
    study : the studies key column (outer level of the three-level model)
    es : the effects key column (inner level)
    """

    data: pd.DataFrame
    codebook: Codebook
    study: str
    es: str

    @property
    def k(self) -> int:
        return len(self.data)

    @property
    def n_studies(self) -> int:
        return int(self.data[self.study].nunique())


def read_effect_sizes(
    effect_sizes: str | Path | EffectSizeData, codebook: str | Path | Codebook
) -> EffectSizeData:
    """Read an analysis's ``effect_sizes.csv`` with the codebook's types, ``yi`` and ``vi`` as
    numbers (effect sizes already read are returned as they are)."""
    if isinstance(effect_sizes, EffectSizeData):
        return effect_sizes
    cb = load_codebook(codebook)
    data = read_clean(effect_sizes, cb)
    for col in ("yi", "vi"):
        data[col] = pd.to_numeric(data[col], errors="coerce")
    return EffectSizeData(data, cb, cb.key(cb.parent_table), cb.key(cb.child_table))


# --------------------------------------------------------------------------- inclusion


def _rule_text(var: Variable, rule) -> str:
    if isinstance(rule, Mapping):
        lo, hi = rule.get("min"), rule.get("max")
        if lo is not None and hi is not None:
            return f"{var.name} outside {lo} to {hi}"
        if lo is not None:
            return f"{var.name} below {lo}"
        return f"{var.name} above {hi}"
    codes = list(rule) if isinstance(rule, list | tuple) else [rule]
    return f"{var.name} not in: " + ", ".join(normalise_code(c) for c in codes)


def _passes(series: pd.Series, rule) -> np.ndarray:
    if isinstance(rule, Mapping):
        x = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
        ok = ~np.isnan(x)
        if rule.get("min") is not None:
            ok &= x >= float(rule["min"])
        if rule.get("max") is not None:
            ok &= x <= float(rule["max"])
        return ok
    codes = list(rule) if isinstance(rule, list | tuple) else [rule]
    allowed = {normalise_code(c) for c in codes}
    return np.array([not pd.isna(v) and normalise_code(v) in allowed for v in series], dtype=bool)


# --------------------------------------------------------------------------- clean
def _read(cb: Codebook, table: str, path: str | Path) -> pd.DataFrame:
    frame, info = read_table(path, table=table)
    if info.errors:
        raise InputError(info.problems, summary=f"cannot clean {path}: run validate first")
    return frame


def clean(
    codebook: Codebook | str | Path,
    studies_path: str | Path,
    effects_path: str | Path,
    inclusion: Mapping | None = None,
) -> CleanResult:
    """Read, type, merge and filter the coded data (see the module doc).

    Parameters
    ----------
    codebook : a loaded :class:`Codebook` or the codebook file.
    studies_path : the studies (parent) table.
    effects_path : the effects (child) table.
    inclusion : the config's ``inclusion``: variable -> list of allowed codes, or ``{min, max}``.

    Returns
    -------
    CleanResult

    Raises
    ------
    InputError
        If a file cannot be read as a table, the inclusion criteria name unknown variables or
        codes, or they keep no row ("your inclusion criteria keep 0 of N rows: ...", with the
        rows each criterion removes on its own).
    RuntimeError
        If the row bookkeeping does not add up (rows in != kept + dropped): a bug.
    """
    cb = load_codebook(codebook)
    inclusion = dict(inclusion or {})
    problems = check_inclusion(cb, inclusion)
    if problems:
        raise InputError(problems, summary="inclusion criteria do not fit the codebook")
    parent, child = cb.parent_table, cb.child_table
    skey, ekey = cb.key(parent), cb.key(child)
    studies_file, effects_file = str(studies_path), str(effects_path)

    studies = type_columns(cb, _read(cb, parent, studies_path), cb.columns(parent), studies_file)
    effects_raw = _read(cb, child, effects_path)
    effects = type_columns(cb, effects_raw, cb.columns(child), effects_file)
    effects[SOURCE_ROW] = effects.index.to_numpy(dtype=np.int64)
    rows_in = len(effects)

    dup = studies[skey].duplicated(keep="first") & studies[skey].notna()
    if dup.any():
        logger.warning("%s: %d duplicate %s; the first is used", studies_file, dup.sum(), skey)
    studies = studies[~dup & studies[skey].notna()].reset_index(drop=True)

    merged = effects.reset_index(drop=True).merge(
        studies, on=skey, how="left", validate="many_to_one", indicator="_study"
    )
    reason = pd.Series(pd.NA, index=merged.index, dtype="string")
    criterion = pd.Series(pd.NA, index=merged.index, dtype="string")
    value = pd.Series("", index=merged.index, dtype="string")

    order: list[str] = []

    def drop(mask: np.ndarray, why: str, crit: str, values: pd.Series | None) -> None:
        new = np.asarray(mask, dtype=bool) & reason.isna().to_numpy()
        if new.any():
            order.append(why)
        reason[new] = why
        criterion[new] = crit
        if values is not None:
            codes = [("" if pd.isna(v) else normalise_code(v)) for v in values[new]]
            value[new] = np.array(codes, dtype=object)  # (a list as long as value is misread)

    no_key = merged[skey].isna().to_numpy()
    drop(no_key, f"{skey} missing", skey, None)
    orphan = (merged["_study"] == "left_only").to_numpy() & ~no_key
    drop(orphan, f"{skey} not in {Path(studies_file).name}", skey, merged[skey])
    unmatched = {f"{skey} missing": int(no_key.sum())}
    unmatched[f"{skey} not in {Path(studies_file).name}"] = int(orphan.sum())

    alone: dict[str, tuple[int, int]] = {}  # criterion -> rows it fails alone, of them missing
    for name, rule in inclusion.items():
        var = cb.variables[name]
        if name not in merged:
            logger.warning("inclusion on %s: column not in the data; every row fails", name)
            column = pd.Series(pd.NA, index=merged.index)
        else:
            column = merged[name]
        level = " (study-level)" if var.table == parent else ""
        missing = column.isna().to_numpy()
        fails = ~_passes(column, rule) & ~missing
        alone[name] = (int((missing | fails).sum()), int(missing.sum()))
        drop(missing, f"{name} missing{level}", name, None)
        drop(fails, _rule_text(var, rule) + level, name, column)
    merged = merged.drop(columns="_study")

    dropped_mask = reason.notna().to_numpy()
    columns = cb.columns(child) + [c for c in cb.columns(parent) if c != skey] + [SOURCE_ROW]
    kept = merged.loc[~dropped_mask, columns].reset_index(drop=True)
    dropped = pd.DataFrame(
        {
            ekey: merged.loc[dropped_mask, ekey],
            skey: merged.loc[dropped_mask, skey],
            SOURCE_FILE: effects_file,
            SOURCE_ROW: merged.loc[dropped_mask, SOURCE_ROW],
            REASON: reason[dropped_mask],
            CRITERION: criterion[dropped_mask],
            VALUE: value[dropped_mask],
        },
        columns=[ekey, skey, SOURCE_FILE, SOURCE_ROW, REASON, CRITERION, VALUE],
    ).reset_index(drop=True)

    by_reason = {why: int((dropped[REASON] == why).sum()) for why in order}
    counts = {
        "rows_in": rows_in,
        "kept": len(kept),
        "dropped": len(dropped),
        "dropped_by_reason": by_reason,
        "studies_in": len(studies),
        "studies_kept": int(kept[skey].nunique()),
    }
    if rows_in != counts["kept"] + counts["dropped"] or counts["dropped"] != sum(
        by_reason.values()
    ):
        raise RuntimeError(f"clean: row bookkeeping does not add up: {counts}")
    logger.info(
        "clean: %d effect rows in, %d kept, %d dropped %s",
        rows_in,
        counts["kept"],
        counts["dropped"],
        by_reason,
    )
    if rows_in and not len(kept):
        summary = _nothing_kept(cb, rows_in, inclusion, alone, unmatched)
        logger.error("%s", summary)
        expected = "criteria that keep at least one row"
        kept_none = f"0 of {rows_in} rows kept"
        problem = Problem("config", None, "inclusion", kept_none, expected, check="inclusion_empty")
        raise InputError([problem], summary=summary)
    return CleanResult(effects=kept, dropped=dropped, studies=studies, counts=counts)


def _nothing_kept(
    cb: Codebook,
    rows_in: int,
    inclusion: Mapping,
    alone: Mapping[str, tuple[int, int]],
    unmatched: Mapping[str, int],
) -> str:
    """The message when no row is kept: ``your inclusion criteria keep 0 of N rows: ...`` with
    the rows each criterion removes on its own, in the config's order, then the rows without a
    known study (if any)."""
    parts = []
    for name, rule in inclusion.items():
        n, n_missing = alone[name]
        why = _rule_text(cb.variables[name], rule)
        if n_missing:
            why += f"; {n_missing} of them with no value"
        parts.append(f"inclusion.{name} removed {n} rows ({why})")
    parts += [f"{n} rows had {why}" for why, n in unmatched.items() if n]
    return f"your inclusion criteria keep 0 of {rows_in} rows: " + ", ".join(parts)
