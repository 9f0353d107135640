"""The meta-analytic model core: one multilevel (RE)ML engine.

``fit`` fits the one-level random-effects / fixed-effects model (metafor ``rma()``) and nested
multilevel models (metafor ``rma.mv(random = ~ 1 | outer/.../inner)``), with moderators, correlated
sampling errors within the outermost cluster (``rho``, the CHE working model) and fixed variance
components. The one-level model is the single-level case of the same blockwise likelihood.

>>> from intervention_meta.models import fit
>>> res = fit(df, mods=["deltype"], random=["study", "esid"])  # doctest: +SKIP

On a fit: ``res.confint_profile()`` (profile-likelihood CIs of the variance components,
:mod:`.profile`), ``res.robust()`` (CR2 cluster-robust inference, :mod:`.robust`); between
fits: ``compare(full, reduced)`` and ``aic_table(...)`` (:mod:`.comparison`); permutation tests of
moderators: ``permutest(res, iter=1000, rng=np.random.default_rng(seed))`` (:mod:`.permutation`).
"""

from intervention_meta.models.comparison import AICTable, ModelComparison, aic_table, compare
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
from intervention_meta.models.permutation import PermutationTest, permutest
from intervention_meta.models.profile import ProfileCI, ProfileInterval, profile_ci
from intervention_meta.models.results import LevelTest, MetaResult, Prediction
from intervention_meta.models.robust import RobustResult, robust_result

__all__ = [
    "METHODS_MULTILEVEL",
    "METHODS_ONE_LEVEL",
    "AICTable",
    "Control",
    "Convergence",
    "LevelTest",
    "MetaResult",
    "ModelComparison",
    "ModelError",
    "PermutationTest",
    "Prediction",
    "ProfileCI",
    "ProfileInterval",
    "QProfileCI",
    "RobustResult",
    "VarianceDistribution",
    "WaldTest",
    "aic_table",
    "compare",
    "fit",
    "permutest",
    "profile_ci",
    "robust_result",
]
