"""Per-cluster pieces of a fitted model, the contract between the model core and robust variance.

The marginal covariance of a multilevel meta-analytic model is block-diagonal by its top level
(and by any coarser cluster), so everything that needs it works cluster by cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClusterBlock:
    """One cluster of a fitted model.

    Attributes
    ----------
    cluster : the cluster's id value
    index : positions (0-based) of the cluster's rows in the model's data (after dropping NAs)
    X : (n_j, p) design matrix rows
    y : (n_j,) observed effect sizes
    V : (n_j, n_j) fitted marginal covariance (sampling covariance + random effects) of the rows
    """

    cluster: object
    index: np.ndarray
    X: np.ndarray
    y: np.ndarray
    V: np.ndarray
