"""The engine's thin QR decomposition: the one-column closed form agrees with LAPACK's."""

import numpy as np
import pytest

from intervention_meta.models.qr import thin_qr


@pytest.mark.parametrize("shape", [(7, 1), (3, 7, 1), (7, 3), (2, 7, 3)])
def test_thin_qr_reproduces_the_matrix_with_orthonormal_q(shape):
    A = np.random.default_rng(1).normal(size=shape)
    Q, R = thin_qr(A)
    p = shape[-1]
    assert Q.shape == shape and R.shape == (*shape[:-2], p, p)
    np.testing.assert_allclose(Q @ R, A, rtol=0, atol=1e-14)
    np.testing.assert_allclose(
        Q.swapaxes(-1, -2) @ Q, np.broadcast_to(np.eye(p), R.shape), atol=1e-14
    )
    np.testing.assert_array_equal(np.triu(R), R)


def test_one_column_matches_numpy_up_to_sign():
    A = np.random.default_rng(2).uniform(0.5, 2.0, size=(50, 1))
    Q, R = thin_qr(A)
    Qn, Rn = np.linalg.qr(A)
    sign = np.sign(Rn[0, 0])
    np.testing.assert_allclose(Q, sign * Qn, rtol=1e-15, atol=0)
    np.testing.assert_allclose(R, sign * Rn, rtol=1e-15, atol=0)
    assert R[0, 0] > 0


def test_zero_column_gives_zero_r_without_warnings():
    A = np.stack([np.ones((4, 1)), np.zeros((4, 1))])
    with np.errstate(all="raise"):
        Q, R = thin_qr(A)
    assert R[0, 0, 0] == 2.0 and R[1, 0, 0] == 0.0
    np.testing.assert_array_equal(Q[1], 0.0)
    np.testing.assert_allclose(Q[0], 0.5)
