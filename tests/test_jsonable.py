"""intervention_meta.io.jsonable: numpy and pandas values become plain JSON types, and a step
that imported neither library (the cards) writes its JSON without importing them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable


def test_jsonable_converts_numpy_and_pandas_values():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan]})
    value = {
        "frame": frame,
        "series": pd.Series([1.5, np.inf]),
        "array": np.array([[1, 2], [3, 4]]),
        "scalars": (np.int64(3), np.float64(0.25), np.bool_(True)),
        "missing": [pd.NA, pd.NaT, None, float("nan")],
        1: {"nested": np.float32(2.0)},
    }
    assert jsonable(value) == {
        "frame": [{"a": 1, "b": 0.5}, {"a": 2, "b": None}],
        "series": [1.5, None],
        "array": [[1, 2], [3, 4]],
        "scalars": [3, 0.25, True],
        "missing": [None, None, None, None],
        "1": {"nested": 2.0},
    }


def test_jsonable_without_numpy_or_pandas_imported():
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from intervention_meta.io import jsonable\n"
        "out = jsonable({'a': (1, 2.5, float('nan')), 'p': Path('x/y'), 's': {3}})\n"
        "print(json.dumps([out, 'numpy' in sys.modules, 'pandas' in sys.modules]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out, numpy_imported, pandas_imported = json.loads(run.stdout)
    assert out == {"a": [1, 2.5, None], "p": "x/y", "s": [3]}
    assert not numpy_imported and not pandas_imported
