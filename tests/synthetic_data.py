"""Small synthetic data sets of a shape other than the example's, for unit tests: studies called
trials, effect sizes called arms, a continuous moderator that is a dose in mg (not a year)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from intervention_meta.analyses.analysis_model import AnalysisData
from intervention_meta.data.codebook import load_codebook

__all__ = ["trials"]


def trials(
    sizes: Sequence[int], seed: int, slope: float = 0.001, within: float = 0.15
) -> AnalysisData:
    """Trials of ``sizes[j]`` arms each: a trial effect, a dose per trial with effect ``slope``
    per mg, arm-level noise of SD ``within`` and sampling variances between 0.01 and 0.05."""
    rng = np.random.default_rng(seed)
    trial = np.repeat([f"T{i}" for i in range(len(sizes))], sizes)
    dose = np.repeat(rng.uniform(50, 400, len(sizes)), sizes)
    between = np.repeat(rng.normal(0.0, 0.2, len(sizes)), sizes)
    frame = pd.DataFrame(
        {
            "trial": trial,
            "arm": [f"A{i}" for i in range(len(trial))],
            "dose_mg": dose,
            "yi": 0.1 + slope * dose + between + rng.normal(0, within, len(trial)),
            "vi": rng.uniform(0.01, 0.05, len(trial)),
        }
    )
    cb = load_codebook(
        {
            "tables": {"trials": {"key": "trial"}, "arms": {"key": "arm", "parent": "trials"}},
            "variables": [
                {"name": "trial", "table": "trials", "type": "id", "role": "id"},
                {"name": "arm", "table": "arms", "type": "id", "role": "id"},
                {"name": "dose_mg", "table": "trials", "type": "number", "role": "moderator"},
            ],
        }
    )
    return AnalysisData(frame, cb, "trial", "arm")
