"""The batched likelihood's two computations: whitened model and weighted row sums.

``MarginalLikelihood(..., row_sums=True)`` evaluates the ragged layout (blocks diagonal plus a
constant) through sums over the rows; every quantity must equal the whitened computation (the
engine's core, itself checked against metafor in test_models_reference.py) up to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from intervention_meta.models.likelihood import MarginalLikelihood, build_structure
from intervention_meta.models.optimize import Solver, maximize_batch

FIELDS = ("loglik", "loglik_ml", "loglik_reml", "beta", "vb", "rss", "logdet", "grad", "info")


def _data(seed: int, levels: str, p: int, members: int = 40):
    """Unbalanced blocks (1 to 7 rows), p coefficients, a response per member."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, size=23)
    k = int(sizes.sum())
    study = np.repeat(np.arange(len(sizes)), sizes)
    X = np.column_stack([np.ones(k), rng.normal(size=(k, p - 1))])
    X[:, 1:] += rng.normal(size=(len(sizes), p - 1))[study]  # study-level parts too
    v = rng.uniform(0.01, 0.3, size=k)
    codes = {"three": [study, np.arange(k)], "study": [study], "one": []}[levels]
    L = max(len(codes), 1)
    st = build_structure(X, v, codes)
    Y = X @ rng.normal(size=p) + rng.normal(size=(members, k)) * np.sqrt(v + 0.1)
    theta = rng.uniform(0.0, 0.4, size=(members, L))
    theta[:3, 0] = 0.0  # on the boundary
    theta[3:6, -1] = 0.0
    return st, Y, theta


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.max(np.abs(a)) if np.size(a) else 1.0
    return float(np.max(np.abs(a - b)) / max(scale, 1e-300))


@pytest.mark.parametrize("levels", ["three", "study", "one"])
@pytest.mark.parametrize("p", [1, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_row_sums_equal_the_whitened_likelihood(levels, p, reml):
    st, Y, theta = _data(10 * p + 2 * reml + len(levels), levels, p)
    assert st.ragged is not None
    whitened = MarginalLikelihood(st, Y, reml=reml)
    sums = MarginalLikelihood(st, Y, reml=reml, row_sums=True)
    assert sums.row_sums and not whitened.row_sums
    for order in (0, 1, 2):
        a, b = whitened.evaluate_batch(theta, order), sums.evaluate_batch(theta, order)
        assert np.array_equal(a.ok, b.ok)
        for f in FIELDS[: 7 + order]:
            assert _rel(getattr(a, f), getattr(b, f)) < 1e-11, (f, order)
        if order == 2:
            assert _rel(a.obs_info, b.obs_info) < 1e-10
    # a subset of the members, in another order, and a single member alone
    idx = np.array([7, 2, 30])
    a = whitened.evaluate_batch(theta[idx], 2, members=idx)
    b = sums.evaluate_batch(theta[idx], 2, members=idx)
    for f in FIELDS:
        assert _rel(getattr(a, f), getattr(b, f)) < 1e-11, f
    one = sums.member(30)
    assert one.row_sums
    assert _rel(one.evaluate(theta[30], 2).grad, a.grad[2]) < 1e-11


def test_row_sums_flag_members_whose_covariance_is_not_positive_definite():
    st, Y, theta = _data(3, "three", 2)
    theta[5, 1] = -1.0  # a_i = v_i - 1 < 0
    ev = MarginalLikelihood(st, Y, reml=True, row_sums=True).evaluate_batch(theta, 2)
    assert not ev.ok[5] and ev.ok[np.arange(len(theta)) != 5].all()


def test_row_sums_are_used_only_where_they_apply():
    st, Y, _ = _data(4, "three", 2)
    X = np.broadcast_to(st.X, (len(Y), *st.X.shape))
    keep = np.ones(Y.shape, dtype=bool)
    assert not MarginalLikelihood(st, Y, reml=True, X=X, row_sums=True).row_sums
    assert not MarginalLikelihood(st, Y, reml=True, keep=keep, row_sums=True).row_sums
    correlated = build_structure(st.X, st.v, st.level_codes, rho=0.6)  # dense blocks
    assert not MarginalLikelihood(correlated, Y, reml=True, row_sums=True).row_sums


def test_batch_fits_by_row_sums_reach_the_whitened_estimates():
    st, Y, _ = _data(5, "three", 3, members=60)
    start = np.full((len(Y), 2), 0.1)
    free = np.ones(2, dtype=bool)
    solver = Solver(threshold=1e-10, boundary="project")
    a = maximize_batch(MarginalLikelihood(st, Y, reml=True), start, free, solver)
    b = maximize_batch(MarginalLikelihood(st, Y, reml=True, row_sums=True), start, free, solver)
    assert a.converged.all() and b.converged.all()
    assert (a.theta == 0).any()  # some members on the boundary
    np.testing.assert_allclose(b.theta, a.theta, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(b.theta == 0, a.theta == 0)
