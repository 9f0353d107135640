"""Sampling covariance of effect sizes that share a cluster, imputed from an assumed correlation.

When effect sizes from the same study are based on the same participants their sampling errors are
correlated, but the correlations are rarely reported. The usual working assumption (Pustejovsky &
Tipton 2022, the "CHE" model) imputes a common correlation :math:`\\rho` within each cluster:

.. math:: S_{ij} = \\rho \\sqrt{v_i v_j} \\quad (i \\ne j \\text{ in the same cluster}), \\qquad
          S_{ii} = v_i,

and :math:`S_{ij} = 0` across clusters. This is metafor's ``vcalc(vi, cluster, rho=rho)`` and
clubSandwich's ``impute_covariance_matrix(vi, cluster, r=rho)``.

References
----------
Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance estimation: expanding
the range of working models. *Prevention Science*, 23, 425-438.
"""

from __future__ import annotations

import numpy as np

from intervention_meta.models.errors import ModelError


def check_rho(rho: float | None) -> float | None:
    """Validate an assumed within-cluster correlation (``None`` means independent errors)."""
    if rho is None:
        return None
    rho = float(rho)
    if not np.isfinite(rho) or not -1.0 <= rho <= 1.0:
        raise ModelError(f"rho must be a correlation in [-1, 1], got {rho}")
    return rho


def impute_covariance(v: np.ndarray, rho: float | None) -> np.ndarray:
    """Stacked within-cluster sampling covariance matrices.

    Parameters
    ----------
    v : (n_blocks, n) sampling variances of the rows of equally sized clusters
    rho : assumed correlation of sampling errors within a cluster; ``None`` or 0 for independence

    Returns
    -------
    (n_blocks, n, n) array with :math:`S_{ij} = \\rho\\sqrt{v_i v_j}` off the diagonal and
    :math:`v_i` on it.
    """
    v = np.asarray(v, dtype=float)
    n = v.shape[-1]
    eye = np.eye(n, dtype=bool)
    if rho is None or rho == 0.0:
        return v[..., :, None] * eye
    sd = np.sqrt(v)
    S = rho * sd[..., :, None] * sd[..., None, :]
    S[..., eye] = v
    return S
