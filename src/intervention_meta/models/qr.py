"""Thin QR decomposition of (stacked) model matrices, with the one-column case in closed form.

For an :math:`n \\times 1` matrix :math:`a` the thin QR decomposition is :math:`Q = a/\\|a\\|`,
:math:`R = \\|a\\|`: intercept-only models (the common one-level meta-analysis) need no LAPACK call
and none of ``numpy.linalg.qr``'s per-call overhead. Every QR decomposition of the engine (the
weighted projections of the one-level estimators, the GLS step of the likelihood) goes through
:func:`thin_qr`.

Reference: Golub, G. H., & Van Loan, C. F. (2013). *Matrix Computations* (4th ed.), section 5.2.
"""

from __future__ import annotations

import numpy as np


def thin_qr(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin QR decomposition :math:`A = QR` of ``A`` with shape (..., n, p), n >= p.

    Returns ``Q`` (..., n, p) with orthonormal columns and ``R`` (..., p, p) upper triangular, as
    ``numpy.linalg.qr(A)`` (whose signs of the rows of ``R`` may differ: for p = 1, ``R`` is the
    column's length, >= 0). A zero column gives a zero ``Q`` column and ``R = 0``.
    """
    if A.shape[-1] != 1:
        return np.linalg.qr(A)
    norm = np.sqrt(np.einsum("...i,...i->...", A[..., 0], A[..., 0]))[..., None, None]
    if np.all(norm > 0):
        return A / norm, norm
    return A / np.where(norm > 0, norm, 1.0), norm
