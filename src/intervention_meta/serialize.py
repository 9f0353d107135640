"""One conversion of results to plain JSON types, used by every result object's ``to_dict()``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """Plain JSON types, recursively.

    Objects with ``to_dict()`` (result dataclasses) are converted through it; DataFrames become a
    list of row records; mappings become dicts with string keys; arrays, lists and tuples become
    lists; numpy scalars become Python scalars; NaN, infinities and pandas' missing values become
    ``None``; paths and any other object become their text.
    """
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
