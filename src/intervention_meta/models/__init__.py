"""The meta-analytic model core: one multilevel (RE)ML engine.

``fit`` fits the one-level random-effects / fixed-effects model (metafor ``rma()``) and nested
multilevel models (metafor ``rma.mv(random = ~ 1 | outer/.../inner)``), with moderators, correlated
sampling errors within the outermost cluster (``rho``, the CHE working model) and fixed variance
components. The one-level model is the single-level case of the same blockwise likelihood.

>>> from intervention_meta.models import fit
>>> res = fit(df, mods=["deltype"], random=["study", "esid"])  # doctest: +SKIP
"""

from intervention_meta.models.errors import ModelError
from intervention_meta.models.fitting import (
    METHODS_MULTILEVEL,
    METHODS_ONE_LEVEL,
    Control,
    fit,
)
from intervention_meta.models.heterogeneity import QProfileCI, VarianceDistribution
from intervention_meta.models.inference import WaldTest
from intervention_meta.models.optimize import Convergence
from intervention_meta.models.results import LevelTest, MetaResult, Prediction

__all__ = [
    "METHODS_MULTILEVEL",
    "METHODS_ONE_LEVEL",
    "Control",
    "Convergence",
    "LevelTest",
    "MetaResult",
    "ModelError",
    "Prediction",
    "QProfileCI",
    "VarianceDistribution",
    "WaldTest",
    "fit",
]
