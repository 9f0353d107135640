"""Check the coded data against the codebook before anything is computed.

:func:`validate` reads both tables with :func:`intervention_meta.data.reading.read_table` (it never
writes to them) and reports every problem at once, each naming the file, the spreadsheet row
(header = row 1), the column, the raw value and what was expected.

Errors (the pipeline stops)
    unreadable/empty/header-only files; missing key or required columns; cells of the wrong type
    (integer, number, level codes, ranges incl. exclusive bounds); blank required cells (an
    explicit missing code such as -99 is allowed there); blank, missing-coded or duplicate keys in
    both tables; effect rows naming a study that does not exist; for each row, the statistics its
    ``requires`` level (e.g. ``es_input``) needs, taken from the codebook (plus ``n_int`` and
    ``n_ctl`` where ``d_is_g`` is 0: a Cohen's d needs them for the small-sample correction);
    and cross-column checks: a confidence interval ``<x>_ci_lower`` < ``<x>_ci_upper`` that
    strictly contains the estimate ``<x>_value`` (or ``<x>``), and count pairs
    ``events_<g>``/``nonevents_<g>`` that are not both zero. Plausibility of single statistics
    (SD > 0, n >= 2, p and r strictly inside their bounds, counts >= 0, vi > 0) comes from the
    codebook's ranges.
Warnings (reported, the pipeline goes on)
    studies without effect sizes; unknown extra columns (ignored unless added to the codebook);
    optional columns absent from the file (treated as empty); statistics filled in that the row's
    level does not require; unusual values (|d_value| or |yi| > 3; p values of exactly .05, .01
    or .001, which look like "p < .05"); effects of a cluster-randomised study (a parent-table
    binary ``cluster_randomised`` = 1) without ``cluster_size`` / ``icc`` (config defaults will
    be used). These conventions apply only to columns the codebook defines.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from intervention_meta.data.codebook import (
    Cell,
    Codebook,
    Variable,
    load_codebook,
    normalise_code,
    parse_number,
)
from intervention_meta.data.reading import ReadInfo, read_table
from intervention_meta.errors import InputError, Problem, WithProblems, problems_frame
from intervention_meta.io import write_table

logger = logging.getLogger(__name__)

# conventions on column names (applied only where the codebook defines the columns)
CI_LOWER_SUFFIX = "_ci_lower"
CI_UPPER_SUFFIX = "_ci_upper"
EVENTS_PREFIX = "events_"
NONEVENTS_PREFIX = "nonevents_"
UNUSUAL_ABOVE = {"d_value": 3.0, "yi": 3.0}
ROUND_P_COLUMN = "p_value"
ROUND_P_VALUES = (0.05, 0.01, 0.001)
# needs the codebook states only in prose: (column, code) -> columns a row then needs as well
CONDITIONAL_NEEDS = {("d_is_g", "0"): ("n_int", "n_ctl")}
CLUSTER_FLAG = "cluster_randomised"
CLUSTER_COLUMNS = ("cluster_size", "icc")

__all__ = ["ValidationReport", "validate"]


@dataclass(frozen=True)
class ValidationReport(WithProblems):
    """All problems found in the data files.

    Attributes
    ----------
    codebook : the codebook file used.
    files : table name -> data file as given.
    problems : every problem (errors and warnings), by file, row and column.
    reads : table name -> :class:`ReadInfo` of how the file was read.
    """

    codebook: str
    files: dict[str, str]
    problems: tuple[Problem, ...]
    reads: dict[str, ReadInfo] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not self.errors

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: severity, file, row, column, value, expected, check."""
        frame = problems_frame(self.problems)
        frame["row"] = frame["row"].astype("Int64")
        return frame

    def to_dict(self) -> dict:
        return {
            "codebook": self.codebook,
            "files": dict(self.files),
            "ok": self.ok,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
            "reads": {t: r.to_dict() for t, r in self.reads.items()},
        }

    def summary(self, report: str | Path | None = None) -> str:
        """A short line: verdict, counts and the report file (default ``report.md``)."""
        verdict = "passed" if self.ok else "FAILED"
        files = ", ".join(Path(f).name for f in self.files.values())
        where = Path(report) if report is not None else Path("report.md")
        if where.suffix != ".md":
            where = where / "report.md"
        return (
            f"validation {verdict}: {len(self.errors)} error(s), {len(self.warnings)} "
            f"warning(s) in {files}; see {where}"
        )

    def raise_for_errors(self, report: str | Path | None = None) -> None:
        """Raise :class:`InputError` (with all problems) if there are errors."""
        if not self.ok:
            raise InputError(self.problems, summary=self.summary(report))

    def to_markdown(self) -> str:
        """The readable report: verdict, then per file how it was read and its problems."""
        verdict = "passed" if self.ok else "**failed**"
        lines = [
            "# Validation report",
            "",
            f"- Codebook: `{self.codebook}`",
            f"- Result: {verdict} ({len(self.errors)} error(s), {len(self.warnings)} warning(s))",
            "",
            "Rows are numbered as in a spreadsheet (the header is row 1). Errors must be fixed "
            "before the analysis runs; warnings are worth a look.",
        ]
        files = list(self.files.items())
        known = {f for _, f in files}
        files += [(None, f) for f in dict.fromkeys(p.file for p in self.problems) if f not in known]
        for table, file in files:
            mine = [p for p in self.problems if p.file == file]
            title = f"`{file}`" + (f" ({table})" if table else "")
            lines += ["", f"## {title}", ""]
            if table in self.reads:
                lines.append(f"Read as: {self.reads[table].describe()}.")
                lines.append("")
            if not mine:
                lines.append("No problems.")
                continue
            for severity, heading in (("error", "Errors"), ("warning", "Warnings")):
                group = [p for p in mine if p.severity == severity]
                if not group:
                    continue
                lines += [f"### {heading} ({len(group)})", ""]
                lines += ["| Row | Column | Value | Expected | Check |", "|---:|---|---|---|---|"]
                for p in group:
                    lines.append(
                        f"| {'' if p.row is None else p.row} | {_md(p.column)} | "
                        f"{_md_value(p.value)} | {_md(p.expected)} | {_md(p.check)} |"
                    )
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def write(self, outdir: str | Path) -> dict[str, Path]:
        """Write ``report.md`` and ``report.csv`` (one row per problem) to ``outdir``."""
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        md, csv = outdir / "report.md", outdir / "report.csv"
        md.write_text(self.to_markdown(), encoding="utf-8")
        write_table(self.to_frame(), csv)
        logger.info(self.summary(md))
        return {"md": md, "csv": csv}


def _md(text: object) -> str:
    if text is None:
        return ""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_value(value: object) -> str:
    if value is None:
        return ""
    if value == "":
        return "(blank)"
    return "`" + str(value).replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


# --------------------------------------------------------------------------- the checks
class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, file, row, column, value, expected, check) -> None:
        self.problems.append(Problem(file, row, column, value, expected, "error", check))

    def warn(self, file, row, column, value, expected, check) -> None:
        self.problems.append(Problem(file, row, column, value, expected, "warning", check))


def _key_of(cell: Cell) -> str:
    """A key value as comparable text (numbers normalised, identifiers as written)."""
    return cell.value if isinstance(cell.value, str) else normalise_code(cell.value)


def _invalid_check(var: Variable, raw: str) -> str:
    if var.has_levels:
        return "unknown_level"
    if var.is_numeric:
        number = parse_number(raw)
        if number is None:
            return "not_a_number"
        if var.type == "integer" and not number.is_integer():
            return "not_an_integer"
        return "out_of_range"
    return "invalid_value"


def _blank_expected(var: Variable, raw: str, what: str = "a value (required") -> str:
    text = what
    if var.missing:
        text += f"; write {var.missing[0]} if not reported"
    text += ")"
    if raw:
        text += f"; '{raw}' counts as blank"
    return text


def _check_columns(cb: Codebook, table: str, df: pd.DataFrame, file: str, out: _Collector) -> None:
    expected = cb.columns(table)
    keys = {cb.key(table), cb.parent_key(table)}
    present = set(df.columns)
    absent = [c for c in expected if c not in present]
    for name in absent:
        var = cb.variable_for_column(table, name)
        if name in keys:
            role = "the key" if name == cb.key(table) else "the link to the parent table"
            out.error(file, None, name, None, f"a column '{name}' ({role})", "missing_column")
        elif var is not None and var.required:
            out.error(file, None, name, None, f"a column '{name}' (required)", "missing_column")
        else:
            out.warn(
                file,
                None,
                name,
                None,
                f"a column '{name}' (optional; treated as empty)",
                "absent_optional_column",
            )
    for name in df.columns:
        if name in expected:
            continue
        lower = {c.lower(): c for c in absent or expected}
        guess = lower.get(name.lower()) or next(
            iter(difflib.get_close_matches(name, absent or expected, n=1, cutoff=0.7)), None
        )
        hint = f"; did you mean '{guess}'?" if guess else ""
        out.warn(
            file,
            None,
            name,
            name,
            f"a column of the codebook's {table} table (this one is ignored unless added to "
            f"the codebook{hint})",
            "unknown_column",
        )


def _parse_cells(
    cb: Codebook, table: str, df: pd.DataFrame, file: str, out: _Collector
) -> dict[str, pd.Series]:
    keys = {cb.key(table), cb.parent_key(table)}
    parsed: dict[str, pd.Series] = {}
    for name in cb.columns(table):
        var = cb.variable_for_column(table, name)
        if var is None or name not in df.columns:
            continue
        cells = pd.Series([var.parse(v) for v in df[name]], index=df.index, dtype=object)
        parsed[name] = cells
        required = var.required or name in keys
        for row, cell in cells.items():
            if cell.state == "invalid":
                out.error(file, row, name, cell.raw, cell.expected, _invalid_check(var, cell.raw))
            elif cell.state == "blank" and required:
                out.error(file, row, name, cell.raw, _blank_expected(var, cell.raw), "required")
    return parsed


def _check_keys(
    cb: Codebook, table: str, parsed: dict[str, pd.Series], file: str, out: _Collector
) -> dict[str, tuple[int, str]]:
    """Blank/missing/duplicate keys; returns key -> (first row, raw)."""
    key = cb.key(table)
    first: dict[str, tuple[int, str]] = {}
    if key not in parsed:
        return first
    for row, cell in parsed[key].items():
        if cell.state == "missing":
            out.error(
                file, row, key, cell.raw, f"an actual {key} (a missing code cannot be a key)", "key"
            )
        if cell.state != "value":
            continue
        k = _key_of(cell)
        if k in first:
            out.error(
                file,
                row,
                key,
                cell.raw,
                f"a unique {key} (also in row {first[k][0]})",
                "duplicate_key",
            )
        else:
            first[k] = (row, cell.raw)
    return first


def _check_links(
    cb: Codebook,
    child: str,
    parsed: dict[str, pd.Series],
    parent_keys: dict[str, tuple[int, str]],
    files: dict[str, str],
    out: _Collector,
) -> None:
    parent = cb.tables[child].parent
    pkey = cb.parent_key(child)
    if pkey not in parsed:
        return
    used = set()
    parent_name = Path(files[parent]).name
    for row, cell in parsed[pkey].items():
        if cell.state == "missing":
            out.error(
                files[child],
                row,
                pkey,
                cell.raw,
                f"an actual {pkey} (every row must name its {parent} row)",
                "key",
            )
        if cell.state != "value":
            continue
        k = _key_of(cell)
        used.add(k)
        if k not in parent_keys:
            out.error(
                files[child], row, pkey, cell.raw, f"a {pkey} present in {parent_name}", "orphan"
            )
    child_name = Path(files[child]).name
    for k, (row, raw) in parent_keys.items():
        if k not in used:
            out.warn(
                files[parent],
                row,
                cb.key(parent),
                raw,
                f"at least one row in {child_name} (this {cb.key(parent)} has none)",
                "no_children",
            )


def _state(parsed: dict[str, pd.Series], column: str, row: int) -> str:
    return parsed[column][row].state if column in parsed else "absent"


def _conditional_needs(
    columns: list[str], parsed: dict[str, pd.Series], row: int
) -> tuple[tuple[str, ...], ...]:
    """Column groups a row needs because of CONDITIONAL_NEEDS (columns the codebook defines)."""
    groups = []
    for (trigger, code), needs in CONDITIONAL_NEEDS.items():
        if trigger in parsed and parsed[trigger][row].value == code:
            groups += [(c,) for c in needs if c in columns]
    return tuple(groups)


def _conditional_reason(parsed: dict[str, pd.Series], row: int, column: str) -> str | None:
    for (trigger, code), columns in CONDITIONAL_NEEDS.items():
        if column in columns and trigger in parsed and parsed[trigger][row].value == code:
            return f"{trigger} '{code}'"
    return None


def _check_requires(
    cb: Codebook, table: str, parsed: dict[str, pd.Series], file: str, out: _Collector
) -> None:
    columns = cb.columns(table)
    for var in cb.variables_of(table):
        if not var.requires or var.name not in parsed:
            continue
        all_stats = list(dict.fromkeys(c for gs in var.requires.values() for g in gs for c in g))
        for row, cell in parsed[var.name].items():
            if cell.state != "value":
                continue
            groups = var.requires.get(cell.value, ())
            level_columns = {c for group in groups for c in group}
            extra = tuple(
                g for g in _conditional_needs(columns, parsed, row) if not set(g) & level_columns
            )
            who = f"{var.name} '{cell.value}'"
            for group in groups + extra:
                states = [_state(parsed, c, row) for c in group]
                if "value" in states or "invalid" in states:
                    continue  # present, or already reported as invalid
                first = group[0]
                raw = parsed[first][row].raw if first in parsed else None
                why = who if group in groups else _conditional_reason(parsed, row, first)
                if len(group) == 1:
                    expected = f"a value: {why} needs {first}"
                else:
                    expected = f"a value in one of {', '.join(group)}: {who} needs one of them"
                if "missing" in states:
                    expected += (
                        f" ('{raw}' means not reported: code a {var.name} whose statistics "
                        "are reported)"
                    )
                elif all(s == "absent" for s in states):
                    expected += " (the column is missing from the file)"
                out.error(file, row, first, raw, expected, "missing_statistic")
            needed = level_columns | {c for group in extra for c in group}
            for column in all_stats:
                if column not in needed and _state(parsed, column, row) == "value":
                    out.warn(
                        file,
                        row,
                        column,
                        parsed[column][row].raw,
                        f"empty: {who} does not use {column} (check the coding)",
                        "unused_statistic",
                    )


def _number(parsed: dict[str, pd.Series], column: str, row: int) -> float | None:
    if column not in parsed:
        return None
    cell = parsed[column][row]
    if cell.state != "value" or isinstance(cell.value, str):
        return None
    return float(cell.value)


def _check_cross_columns(
    cb: Codebook, table: str, parsed: dict[str, pd.Series], file: str, out: _Collector
) -> None:
    columns = [c for c in cb.columns(table) if c in parsed]
    rows = next(iter(parsed.values())).index if parsed else []
    for lower in columns:
        if not lower.endswith(CI_LOWER_SUFFIX):
            continue
        stem = lower[: -len(CI_LOWER_SUFFIX)]
        upper = stem + CI_UPPER_SUFFIX
        if upper not in parsed:
            continue
        estimate = next((c for c in (stem + "_value", stem) if c in parsed), None)
        for row in rows:
            lo, hi = _number(parsed, lower, row), _number(parsed, upper, row)
            if lo is None or hi is None:
                continue
            if lo >= hi:
                out.error(
                    file,
                    row,
                    upper,
                    parsed[upper][row].raw,
                    f"a number > {lower} ({parsed[lower][row].raw})",
                    "ci_order",
                )
                continue
            est = _number(parsed, estimate, row) if estimate else None
            if est is not None and not lo < est < hi:
                out.error(
                    file,
                    row,
                    estimate,
                    parsed[estimate][row].raw,
                    f"a value inside its confidence interval {parsed[lower][row].raw} to "
                    f"{parsed[upper][row].raw} ({lower}, {upper})",
                    "ci_contains",
                )
    for events in columns:
        if not events.startswith(EVENTS_PREFIX):
            continue
        nonevents = NONEVENTS_PREFIX + events[len(EVENTS_PREFIX) :]
        if nonevents not in parsed:
            continue
        for row in rows:
            e, n = _number(parsed, events, row), _number(parsed, nonevents, row)
            if e is not None and n is not None and e + n <= 0:
                out.error(
                    file,
                    row,
                    events,
                    parsed[events][row].raw,
                    f"{events} + {nonevents} > 0 (the group has no participants)",
                    "empty_group",
                )


def _check_unusual(
    cb: Codebook, table: str, parsed: dict[str, pd.Series], file: str, out: _Collector
) -> None:
    for column, limit in UNUSUAL_ABOVE.items():
        if column not in parsed or cb.variable_for_column(table, column) is None:
            continue
        for row, cell in parsed[column].items():
            x = _number(parsed, column, row)
            if x is not None and abs(x) > limit:
                out.warn(
                    file,
                    row,
                    column,
                    cell.raw,
                    f"|{column}| <= {limit:g} usually (check for a typo, or an SE coded as an SD)",
                    "unusual_value",
                )
    if ROUND_P_COLUMN in parsed:
        for row, cell in parsed[ROUND_P_COLUMN].items():
            x = _number(parsed, ROUND_P_COLUMN, row)
            if x is not None and any(abs(x - p) < 1e-12 for p in ROUND_P_VALUES):
                out.warn(
                    file,
                    row,
                    ROUND_P_COLUMN,
                    cell.raw,
                    f"an exact p value ({cell.raw} looks like 'p < {cell.raw}'; if so, code "
                    "another statistic)",
                    "round_p_value",
                )


def _check_clusters(
    cb: Codebook,
    child: str,
    parsed_child: dict[str, pd.Series],
    parsed_parent: dict[str, pd.Series],
    parent_keys: dict[str, tuple[int, str]],
    file: str,
    out: _Collector,
) -> None:
    parent = cb.tables[child].parent
    flag = cb.variables.get(CLUSTER_FLAG)
    pkey = cb.parent_key(child)
    targets = [c for c in CLUSTER_COLUMNS if cb.variable_for_column(child, c) is not None]
    if flag is None or flag.table != parent or CLUSTER_FLAG not in parsed_parent or not targets:
        return
    if pkey not in parsed_child:
        return
    clustered = {
        k for k, (row, _) in parent_keys.items() if parsed_parent[CLUSTER_FLAG][row].value == "1"
    }
    for row, cell in parsed_child[pkey].items():
        if cell.state != "value" or _key_of(cell) not in clustered:
            continue
        for column in targets:
            if _state(parsed_child, column, row) not in ("value", "invalid"):
                raw = parsed_child[column][row].raw if column in parsed_child else None
                out.warn(
                    file,
                    row,
                    column,
                    raw,
                    f"a value for a cluster-randomised study ({pkey} {cell.raw}); the config "
                    "default will be used",
                    "cluster_default",
                )


def _sorted(problems: Iterable[Problem], files: list[str], columns: dict[str, list[str]]):
    def key(p: Problem):
        file_pos = files.index(p.file) if p.file in files else len(files)
        cols = columns.get(p.file, [])
        col_pos = cols.index(p.column) if p.column in cols else len(cols)
        return (file_pos, p.row is not None, p.row or 0, col_pos)

    return sorted(problems, key=key)


def validate(
    codebook: Codebook | str | Path, studies_path: str | Path, effects_path: str | Path
) -> ValidationReport:
    """Check the studies and effects tables against the codebook; report every problem.

    Parameters
    ----------
    codebook : a loaded :class:`Codebook` or the codebook file.
    studies_path : the parent table (one row per study), CSV or Excel.
    effects_path : the child table (one row per effect size), CSV or Excel.

    Returns
    -------
    ValidationReport
        Errors and warnings (see the module doc); ``report.ok`` is False if any error. The data
        files are only read.
    """
    cb = load_codebook(codebook)
    child = cb.child_table
    parent = cb.parent_table
    files = {parent: str(studies_path), child: str(effects_path)}
    out = _Collector()
    frames: dict[str, pd.DataFrame] = {}
    reads: dict[str, ReadInfo] = {}
    parsed: dict[str, dict[str, pd.Series]] = {}
    keys: dict[str, dict[str, tuple[int, str]]] = {}
    for table, file in files.items():
        try:
            df, info = read_table(file, table=table)
        except InputError as exc:
            out.problems.extend(exc.problems)
            continue
        frames[table], reads[table] = df, info
        out.problems.extend(info.problems)
        _check_columns(cb, table, df, file, out)
        parsed[table] = _parse_cells(cb, table, df, file, out)
        keys[table] = _check_keys(cb, table, parsed[table], file, out)
        _check_requires(cb, table, parsed[table], file, out)
        _check_cross_columns(cb, table, parsed[table], file, out)
        _check_unusual(cb, table, parsed[table], file, out)
    linked = all(t in frames and len(frames[t]) > 0 for t in files)
    if linked:
        _check_links(cb, child, parsed[child], keys[parent], files, out)
        _check_clusters(cb, child, parsed[child], parsed[parent], keys[parent], files[child], out)
    columns = {files[t]: list(df.columns) for t, df in frames.items()}
    problems = tuple(_sorted(out.problems, list(files.values()), columns))
    report = ValidationReport(codebook=cb.path, files=files, problems=problems, reads=reads)
    logger.info(report.summary())
    return report
