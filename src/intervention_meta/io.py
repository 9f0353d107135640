"""Reading and writing a step's files: logging set-up, JSON (full precision) and CSV tables.

One writer per kind of file, so every step's outputs look the same:

* :func:`setup_logging`: one log file per rule, plus the console;
* :func:`jsonable`: result objects, frames and numpy values as plain JSON types;
* :func:`write_json` / :func:`read_json`: the machine-readable result of a step;
* :func:`write_table`: the human-readable CSV beside it.

Spreadsheet-formula injection
-----------------------------
A spreadsheet opening a CSV reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` (also
after a tab or carriage return) as a formula, so a text cell of the coded data such as
``=HYPERLINK(...)`` would run when a results table is opened. :func:`write_table` writes such
text cells with a single quote in front (``'=HYPERLINK(...)``), as OWASP recommends ("CSV
Injection"); numbers (``-0.5``, also when held as text) and other cells are written as they are,
and the data in memory and the raw files are never changed. :func:`unquote_formula` undoes it
exactly, for the steps that read a table written here back as data.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

#: the first characters that make a spreadsheet read a cell as a formula (OWASP, CSV Injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def setup_logging(logfile: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the package's log records to ``logfile`` (created with its folder) and to stderr."""
    root = logging.getLogger("intervention_meta")
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile is not None:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.propagate = False
    return root


def jsonable(value: Any) -> Any:
    """Plain JSON types, recursively.

    Objects with ``to_dict()`` (result dataclasses) are converted through it; DataFrames become a
    list of row records; mappings become dicts with string keys; arrays, lists and tuples become
    lists; numpy scalars become Python scalars; NaN, infinities and pandas' missing values become
    ``None``; paths and any other object become their text.
    """
    # no value is a numpy or pandas object unless that library was imported: a step that uses
    # neither (the cards) does not import them only to write its JSON
    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
    frames = (pd.DataFrame, pd.Series) if pd is not None else ()
    if hasattr(value, "to_dict") and not isinstance(value, frames):
        return jsonable(value.to_dict())
    if pd is not None and isinstance(value, pd.DataFrame):
        return jsonable(value.to_dict(orient="records"))
    if pd is not None and isinstance(value, pd.Series):
        return jsonable(value.to_list())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if np is not None and isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    if value is None or (pd is not None and (value is pd.NA or value is pd.NaT)):
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` (through :func:`jsonable`) as indented UTF-8 JSON, creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(jsonable(obj), fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")


def read_json(path: str | Path | None) -> dict:
    """The JSON object in ``path`` (``{}`` when there is no path or no file)."""
    if path is None or not Path(path).exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _formula_like(text: str) -> bool:
    """Whether ``text``, after any single quotes, starts as a formula and is not a number."""
    return text.lstrip("'").startswith(FORMULA_START) and not _NUMBER.match(text)


def quote_formula(value: Any) -> Any:
    """``value`` with a single quote in front when it is text a spreadsheet would read as a
    formula (see the module doc); anything else as it is.

    Text that already starts with quotes before such a character gets one more, so that
    :func:`unquote_formula` gives every text back exactly.
    """
    if isinstance(value, str) and _formula_like(value):
        return "'" + value
    return value


def unquote_formula(value: Any) -> Any:
    """The inverse of :func:`quote_formula`."""
    if isinstance(value, str) and value.startswith("'") and _formula_like(value[1:]):
        return value[1:]
    return value


def _holds_text(dtype: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_object_dtype(dtype) or isinstance(
        dtype, pd.StringDtype | pd.CategoricalDtype
    )


def write_table(frame: Any, path: str | Path) -> None:
    """Write a table as CSV (full precision; headers are the readable labels), creating the
    folder. Text cells and headers a spreadsheet would read as a formula are quoted
    (:func:`quote_formula`); ``frame`` itself is not changed."""
    import pandas as pd

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    end = "\n"
    if isinstance(frame, pd.DataFrame):
        text = [j for j, dtype in enumerate(frame.dtypes) if _holds_text(dtype)]
        frame = frame.copy()
        frame.columns = [quote_formula(name) for name in frame.columns]
        for j in text:
            frame.isetitem(j, frame.iloc[:, j].map(quote_formula))
        cells = [frame.columns] + [frame.iloc[:, j] for j in text]
        if any(isinstance(v, str) and "\r" in v for values in cells for v in values):
            end = "\r\n"  # Python's csv quotes a carriage return only when lines end in one
    frame.to_csv(path, index=False, lineterminator=end)
