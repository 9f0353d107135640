"""Reading and writing a step's files: logging set-up, JSON (full precision) and CSV tables.

One writer per kind of file, so every step's outputs look the same:

* :func:`setup_logging`: one log file per rule, plus the console;
* :func:`jsonable`: result objects, frames and numpy values as plain JSON types;
* :func:`write_json` / :func:`read_json`: the machine-readable result of a step;
* :func:`write_table`: the human-readable CSV beside it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


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
    import numpy as np
    import pandas as pd

    if hasattr(value, "to_dict") and not isinstance(value, pd.DataFrame | pd.Series):
        return jsonable(value.to_dict())
    if isinstance(value, pd.DataFrame):
        return jsonable(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return jsonable(value.to_list())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
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


def write_table(frame: Any, path: str | Path) -> None:
    """Write a table as CSV (full precision; headers are the readable labels), creating the
    folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
