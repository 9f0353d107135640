"""Read a coded data table (CSV or Excel) as text, exactly as a person sees it.

One reader for all tabular input (validation and cleaning both use it), so both see the same
cells. :func:`read_table` returns every cell as a trimmed string (blanks as ``""``) and leaves
the meaning of cells to the codebook: nothing is turned into a missing value here. In particular
``NA``, ``NR`` or ``-99`` stay as written; the codebook treats its missing codes as "not
reported" and the text ``NA`` (how R writes a missing value) as a blank cell (see
:mod:`intervention_meta.data.codebook`).

Formats
-------
``.csv`` / ``.tsv`` / ``.txt``
    Separator detected from the header line: comma, semicolon or tab. Encoding UTF-8 with or
    without BOM (also UTF-16 with BOM, as Excel's "Unicode text"); a file that is not valid
    UTF-8 is read as Windows-1252 (cp1252) with a warning. A decimal comma (``1,5``) is accepted
    when the separator is not a comma and no cell uses a decimal point: such cells are returned
    with a decimal point (``1.5``) and :class:`ReadInfo` says ``decimal=","``.
``.xlsx`` / ``.xlsm``
    The sheet named like the table (``table=``) if there is one, else the first sheet. Numbers
    are written as Excel shows them (up to 15 significant digits, ``2014`` not ``2014.0``), dates
    as ISO dates.

A cell may be of any length: Python's :mod:`csv` module refuses fields longer than
``csv.field_size_limit()`` (131,072 characters by default), so the reader raises that limit to
the largest value the platform's C ``long`` holds (``sys.maxsize``, or less where a ``long`` has
32 bits).

Rows
----
The returned frame's index is the row number a person sees in a spreadsheet (the header is
row 1 when it is the first line, the first data row row 2); blank rows are skipped but keep their
numbers. Problems that leave a usable table (a header-only file, rows with more cells than the
header, duplicate or empty column names, cp1252) are returned in :attr:`ReadInfo.problems`;
:func:`read_table` raises :class:`InputError` only when there is no table at all (missing or
unreadable file, unknown extension, empty file).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from intervention_meta.errors import InputError, Problem, WithProblems
from intervention_meta.io import unquote_formula

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
SEPARATORS = (",", ";", "\t")

__all__ = ["ReadInfo", "read_table"]

_COMMA_DECIMAL = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")
_POINT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


@dataclass(frozen=True)
class ReadInfo(WithProblems):
    """How a table was read.

    Attributes
    ----------
    file : the path as given.
    format : ``"csv"`` or ``"xlsx"``.
    encoding : the text encoding used (CSV), e.g. ``"utf-8"``, ``"utf-8-sig"``, ``"cp1252"``.
    bom : whether the file started with a byte-order mark.
    separator : the detected separator (CSV).
    decimal : ``"."`` or ``","`` (decimal commas were converted to points).
    sheet : the sheet read (Excel).
    header_row : the spreadsheet row of the header.
    n_rows : number of (non-blank) data rows.
    columns : the column names.
    problems : problems that still left a usable table (errors and warnings).
    """

    file: str
    format: str
    encoding: str | None = None
    bom: bool = False
    separator: str | None = None
    decimal: str | None = "."
    sheet: str | None = None
    header_row: int = 1
    n_rows: int = 0
    columns: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """One line: ``CSV, utf-8, separator ';', decimal ','; 12 data rows``."""
        if self.format == "xlsx":
            head = f"Excel workbook, sheet '{self.sheet}'"
        else:
            enc = self.encoding or "?"
            if self.bom:
                enc += " with BOM"
            sep = _SEP_NAMES.get(self.separator or "", repr(self.separator))
            head = f"CSV, {enc}, {sep}-separated"
        return f"{head}, decimal '{self.decimal}'; {self.n_rows} data rows"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["problems"] = [p.to_dict() for p in self.problems]
        return out


def _fail(file: str, value: object, expected: str, check: str) -> InputError:
    return InputError([Problem(file, None, None, value, expected, check=check)])


def read_table(
    path: str | Path, table: str | None = None, *, written: bool = False
) -> tuple[pd.DataFrame, ReadInfo]:
    """Read a CSV or Excel table with every cell as a trimmed string.

    Parameters
    ----------
    path : the file (``.csv``, ``.tsv``, ``.txt``, ``.xlsx``, ``.xlsm``).
    table : the table's name (e.g. ``"studies"``); an Excel sheet of that name is preferred.
    written : the file is a table the pipeline wrote (:func:`intervention_meta.io.write_table`):
        the quote written before text that a spreadsheet would read as a formula is taken off
        (:func:`intervention_meta.io.unquote_formula`). Never for coded data, which is read as
        it is.

    Returns
    -------
    (frame, info) : the cells as ``str`` (blank ``""``), indexed by spreadsheet row number
        (index name ``"row"``), and a :class:`ReadInfo`.

    Raises
    ------
    InputError
        When there is no table to read: missing or unreadable file, unknown extension, empty
        file. The Problem names the file.
    """
    file = str(path)
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in CSV_SUFFIXES + EXCEL_SUFFIXES:
        raise _fail(
            file,
            p.suffix or "(none)",
            "a file ending in "
            + ", ".join(CSV_SUFFIXES + EXCEL_SUFFIXES)
            + (" (save an .xls workbook as .xlsx)" if suffix == ".xls" else ""),
            "read_extension",
        )
    if not p.is_file():
        raise _fail(file, None, "an existing file", "read_missing_file")
    if suffix in EXCEL_SUFFIXES:
        records, meta = _excel_records(p, file, table)
    else:
        records, meta = _csv_records(p, file)
    frame, info_fields, problems = _build_table(records, file, meta.pop("problems"))
    if written:
        frame = frame.rename(columns=unquote_formula).map(unquote_formula)
        info_fields["columns"] = tuple(frame.columns)
    if meta.get("separator") not in (None, ","):
        frame, decimal, more = _decimal_comma(frame, file)
        meta["decimal"] = decimal
        problems += more
    info = ReadInfo(file=file, **meta, **info_fields, problems=tuple(problems))
    logger.info("read %s: %s", file, info.describe())
    return frame, info


# --------------------------------------------------------------------------- CSV
def _allow_long_fields() -> None:
    """Raise ``csv.field_size_limit`` to the largest value this platform accepts (never lower
    it): ``sys.maxsize`` overflows a 32-bit C ``long`` (e.g. on Windows), so halve until it fits."""
    limit = sys.maxsize
    while limit > csv.field_size_limit():
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def _decode(data: bytes, file: str) -> tuple[str, str, bool, list[Problem]]:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig", True, []
        except UnicodeDecodeError:
            pass
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16", True, []
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8", False, []
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise _fail(file, None, "text in UTF-8 (or Windows-1252)", "read_encoding") from None
    warning = Problem(
        file,
        None,
        None,
        "cp1252",
        "UTF-8 text (read as Windows-1252; save the file as CSV UTF-8 to be sure)",
        severity="warning",
        check="read_encoding",
    )
    return text, "cp1252", False, [warning]


def _detect_separator(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    best, best_n = ",", 1
    for sep in SEPARATORS:
        try:
            n = len(next(csv.reader([header], delimiter=sep)))
        except (csv.Error, StopIteration):
            continue
        if n > best_n:
            best, best_n = sep, n
    return best


def _csv_records(p: Path, file: str) -> tuple[list[tuple[int, list[str]]], dict]:
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise _fail(file, str(exc), "a readable file", "read_unreadable") from None
    if data.startswith(b"PK\x03\x04"):
        raise _fail(
            file,
            p.suffix,
            "a text (CSV) file; this is an Excel workbook: name it .xlsx",
            "read_unreadable",
        )
    text, encoding, bom, problems = _decode(data, file)
    _allow_long_fields()
    if "\x00" in text:
        raise _fail(file, None, "a text (CSV) file, not a binary file", "read_unreadable")
    if not text.strip():
        raise _fail(
            file, None, "a table with a header row and data rows (the file is empty)", "read_empty"
        )
    sep = _detect_separator(text)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    except csv.Error as exc:
        raise _fail(file, str(exc), "a well-formed CSV file", "read_unreadable") from None
    records = [(i + 1, [c for c in row]) for i, row in enumerate(rows)]
    meta = {
        "format": "csv",
        "encoding": encoding,
        "bom": bom,
        "separator": sep,
        "decimal": ".",
        "problems": problems,
    }
    return records, meta


def _decimal_comma(frame: pd.DataFrame, file: str) -> tuple[pd.DataFrame, str, list[Problem]]:
    """Convert ``1,5`` to ``1.5`` when no cell uses a decimal point (separator is not a comma)."""
    if frame.empty:
        return frame, ".", []
    values = frame.to_numpy().ravel()
    commas = [v for v in values if _COMMA_DECIMAL.match(v)]
    if not commas:
        return frame, ".", []
    points = [v for v in values if _POINT_DECIMAL.match(v)]
    if points:
        warning = Problem(
            file,
            None,
            None,
            f"{commas[0]} and {points[0]}",
            "one decimal mark (both decimal commas and decimal points found; commas not converted)",
            severity="warning",
            check="read_decimal",
        )
        return frame, ".", [warning]
    converted = frame.apply(
        lambda col: col.map(lambda v: v.replace(",", ".") if _COMMA_DECIMAL.match(v) else v)
    )
    return converted, ",", []


# --------------------------------------------------------------------------- Excel
def _excel_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _excel_records(p: Path, file: str, table: str | None):
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(p, read_only=False, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise _fail(
            file, type(exc).__name__, "a readable Excel workbook (.xlsx)", "read_unreadable"
        ) from None
    try:
        names = workbook.sheetnames
        if table is not None and table in names:
            sheet = workbook[table]
        else:
            sheet = workbook.worksheets[0]
            if len(names) > 1:
                logger.info("%s: no sheet named %r, reading the first (%s)", file, table, names[0])
        records = [
            (i, [_excel_text(v) for v in row])
            for i, row in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
        title = sheet.title
    finally:
        workbook.close()
    meta = {"format": "xlsx", "sheet": title, "decimal": ".", "problems": []}
    return records, meta


# --------------------------------------------------------------------------- common
def _build_table(
    records: list[tuple[int, list[str]]], file: str, problems: list[Problem]
) -> tuple[pd.DataFrame, dict, list[Problem]]:
    records = [(row, [c.strip() for c in cells]) for row, cells in records]
    records = [(row, cells) for row, cells in records if any(cells)]
    if not records:
        raise _fail(
            file, None, "a table with a header row and data rows (the file is empty)", "read_empty"
        )
    header_row, header = records[0]
    body = records[1:]
    width = max([len(header)] + [len(cells) for _, cells in body])
    header = header + [""] * (width - len(header))
    keep: list[int] = []
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        has_data = any(j < len(cells) and cells[j] for _, cells in body)
        if name == "":
            if has_data:
                first = next(row for row, cells in body if j < len(cells) and cells[j])
                problems.append(
                    Problem(
                        file,
                        header_row,
                        None,
                        f"column {j + 1} (data from row {first})",
                        "a column name in the header for every column with data",
                        check="read_header",
                    )
                )
            continue
        if name in seen:
            problems.append(
                Problem(
                    file,
                    header_row,
                    name,
                    name,
                    f"a column name used once (columns {seen[name] + 1} and {j + 1}; "
                    "the second is ignored)",
                    check="read_header",
                )
            )
            continue
        seen[name] = j
        keep.append(j)
    columns = [header[j] for j in keep]
    data, index = [], []
    for row, cells in body:
        cells = cells + [""] * (width - len(cells))
        data.append([cells[j] for j in keep])
        index.append(row)
    frame = pd.DataFrame(data, columns=columns, index=pd.Index(index, name="row"), dtype=object)
    if not body:
        problems.append(
            Problem(
                file,
                None,
                None,
                None,
                "at least one data row below the header (the file has only a header)",
                check="read_header_only",
            )
        )
    info = {"header_row": header_row, "n_rows": len(body), "columns": tuple(columns)}
    return frame, info, problems
