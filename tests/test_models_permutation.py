"""Permutation tests of moderators (``permutest``) against metafor 3.8.

Expected values:
* ``tests/reference/extra/models_permutation_reference.json`` (made by
  ``models_permutation_reference.R``; R 4.2.2, metafor 3.8-1): exact permutation tests with their
  full permutation distributions. For ``rma``: ``permutest(res, exact=TRUE)`` (and the automatic
  exact test of ``permutest(res)`` when there are at most ``iter`` distinct permutations). For
  ``rma.mv``, which has no ``permutest`` in metafor 3.8, the R call stored in the JSON carries out
  the same enumeration with ``rma.mv`` refits. Each permutation is stored as the row order of the
  model matrix (or the signs of ``yi``) with the statistics of its refit, so they are compared
  permutation by permutation.
* ``tests/reference/bangertdrowns2004.json`` ``permutest_grade_length_reml``: 1,000 random
  permutations in R; its p values are Monte-Carlo estimates, compared within 3 Monte-Carlo standard
  errors of the difference of two independent estimates, :math:`3\\sqrt{2p(1-p)/1000}`; the observed
  statistic is compared exactly (1e-6).
Tolerance 1e-6 relative for statistics downstream of ML/REML estimates (README); 1e-10 for the GLS
step at given variance components.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models import ModelError, fit
from intervention_meta.models.likelihood import MarginalLikelihood
from intervention_meta.models.permutation import (
    PermutationTest,
    count_permutations,
    distinct_row_orders,
    permuted_statistics,
    permutest,
)

REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "extra" / "models_permutation_reference.json").read_text())["cases"]
ONE_LEVEL = [name for name in CASES if name.startswith("bcg_rr")]
MULTILEVEL = [name for name in CASES if name.startswith("konstantopoulos2011")]
RTOL = 1e-6


@cache
def _data(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


@cache
def _model(name: str):
    """The observed model of a fixture case, from its R call."""
    call = CASES[name]["call"]
    if name.startswith("bcg_rr"):
        k = int(re.search(r"dat\[1:(\d+), \]", call).group(1))
        df = _data("bcg_rr").iloc[:k]
        kwargs: dict = {"method": re.search(r'res <- rma\(.*method="(\w+)"', call).group(1)}
        m = re.search(r"mods = ~ (\w+)", call)
        kwargs["mods"] = [m.group(1)] if m else None
        kwargs["test"] = "knha" if 'test="knha"' in call else "z"
        return fit(df, **kwargs)
    districts = [int(x) for x in re.search(r"%in% c\(([\d, ]+)\)", call).group(1).split(",")]
    df = _data("konstantopoulos2011")
    df = df[df["district"].isin(districts)].assign(late=lambda d: (d["year"] > 1980) * 1.0)
    mods = ["late"] if "mods = ~ late" in call else None
    return fit(df, mods=mods, random=["district", "school"], method="REML")


def _arr(values) -> np.ndarray:
    """JSON arrays (null = NA) as float arrays."""
    return np.array(values, dtype=float)


def _permutations(r: dict) -> dict:
    if "rows" in r:
        return {"rows": np.array(r["rows"]) - 1}
    return {"signs": _arr(r["signs"])}


@pytest.mark.parametrize("name", ONE_LEVEL)
def test_one_level_permutation_distribution_matches_metafor(name: str) -> None:
    """Each permuted refit (rows of X permuted, or signs of yi flipped) equals metafor's."""
    r = CASES[name]["results"]
    res = _model(name)
    np.testing.assert_allclose(res.QM, r["qm"], rtol=RTOL)
    np.testing.assert_allclose(res.stat, r["zval"], rtol=RTOL)
    ps = permuted_statistics(res, **_permutations(r))
    qm, z, b = _arr(r["qm_perm"]), _arr(r["zval_perm"]), _arr(r["beta_perm"])
    ok = np.isfinite(qm)  # metafor's Fisher scoring failed on some (see the next test)
    np.testing.assert_allclose(ps.QM[ok], qm[ok], rtol=RTOL)
    np.testing.assert_allclose(ps.stat[ok], z[ok], rtol=RTOL)
    np.testing.assert_allclose(ps.b[ok], b[ok], rtol=RTOL, atol=1e-12)
    assert ps.ok.all()


def test_refit_where_metafor_fisher_scoring_fails_is_kept() -> None:
    """On one permutation of the k = 6 REML case metafor's Fisher scoring does not converge in 100
    iterations (tau2 creeps towards 0) and permutest drops it (NA); our L-BFGS-B fallback reaches
    the boundary optimum, so the exact test uses all 360 permutations. Over metafor's 359 the p
    values are metafor's."""
    name = "bcg_rr__ablat_reml_k6_exact"
    r = CASES[name]["results"]
    res = _model(name)
    pt = permutest(res, exact=True)
    assert pt.exact and pt.iterations == 360 == r["exact_iter"] and pt.n_fallback == 1
    failed = np.flatnonzero(~np.isfinite(_arr(r["qm_perm"])))
    assert failed.tolist() == [181]
    ps = permuted_statistics(res, rows=np.array(r["rows"]) - 1)
    assert ps.theta[181, 0] == 0.0  # the REML optimum of that permutation is on the boundary
    keep = np.ones(360, dtype=bool)
    keep[failed] = False
    tol = np.finfo(float).eps ** 0.5
    pval = np.mean(np.abs(ps.stat[keep]) >= np.abs(res.stat) - tol, axis=0)
    np.testing.assert_allclose(pval, r["pval"], rtol=1e-12)
    np.testing.assert_allclose(np.mean(ps.QM[keep] >= res.QM - tol), r["qmp"], rtol=1e-12)


@pytest.mark.parametrize("name", [n for n in ONE_LEVEL if n != "bcg_rr__ablat_reml_k6_exact"])
def test_exact_one_level_permutest_matches_metafor(name: str) -> None:
    r = CASES[name]["results"]
    res = _model(name)
    auto = "auto_exact" in name  # permutest(res) itself switches to the exact test
    pt = permutest(res, iter=1000) if auto else permutest(res, exact=True)
    assert isinstance(pt, PermutationTest)
    assert pt.exact and pt.iterations == r["exact_iter"] == pt.n_distinct
    assert pt.kind == ("sign-flip" if "signs" in r else "permutation")
    np.testing.assert_allclose(pt.pval_perm, r["pval"], rtol=1e-12)
    np.testing.assert_allclose(pt.QMp_perm, r["qmp"], rtol=1e-12)
    # our enumeration gives metafor's permutation distribution (as a multiset)
    np.testing.assert_allclose(np.sort(pt.QM_perm), np.sort(_arr(r["qm_perm"])), rtol=RTOL)


@pytest.mark.parametrize("name", MULTILEVEL)
def test_multilevel_gls_step_at_metafor_components_matches_metafor(name: str) -> None:
    """At metafor's variance components of each permuted rma.mv refit, the coefficients and test
    statistics of the permuted model are metafor's to 1e-10 (checks the permutation of X / the
    sign flips and the statistics, independently of the optimiser)."""
    r = CASES[name]["results"]
    res = _model(name)
    qm = _arr(r["qm_perm"])
    ok = np.isfinite(qm)
    perms = {k: v[ok] for k, v in _permutations(r).items()}
    ps = permuted_statistics(res, **perms, theta=_arr(r["sigma2_perm"])[ok])
    np.testing.assert_allclose(ps.QM, qm[ok], rtol=1e-10)
    np.testing.assert_allclose(ps.stat, _arr(r["zval_perm"])[ok], rtol=1e-10)
    np.testing.assert_allclose(ps.b, _arr(r["beta_perm"])[ok], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", MULTILEVEL)
def test_multilevel_refits_reach_at_least_metafors_likelihood(name: str) -> None:
    """rma.mv's nlminb stops up to ~2e-5 (relative) short on these tiny data sets, so the variance
    components are compared through the REML log-likelihood: ours is at least metafor's for every
    permutation (and equal to it to 1e-6, absolute, where metafor converged)."""
    r = CASES[name]["results"]
    res = _model(name)
    perms = _permutations(r)
    ps = permuted_statistics(res, **perms)
    assert ps.ok.all()
    state = res._state
    key, perm = next(iter(perms.items()))
    X = state.design.X[perm] if key == "rows" else None
    y = state.design.y[None, :] * (perm if key == "signs" else 1.0)
    y = np.broadcast_to(y, (len(perm), state.design.k))
    ll = MarginalLikelihood(state.structure, y, reml=True, X=X).evaluate_batch(ps.theta).loglik
    theirs = _arr(r["loglik_perm"])
    ok = np.isfinite(theirs)
    assert np.all(ll[ok] >= theirs[ok] - 1e-9)
    np.testing.assert_allclose(ll[ok], theirs[ok], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MULTILEVEL)
def test_exact_multilevel_permutest_p_values_match_metafor(name: str) -> None:
    """p values over the permutations that metafor could refit (all for the moderator model; two
    sign flips of the intercept-only model fail in nlminb and are left out, as permutest does)."""
    r = CASES[name]["results"]
    res = _model(name)
    pt = permutest(res, exact=True)
    assert pt.exact and pt.iterations == r["exact_iter"] and pt.n_failed == 0
    ps = permuted_statistics(res, **_permutations(r))
    ok = np.isfinite(_arr(r["qm_perm"]))
    tol = np.finfo(float).eps ** 0.5
    pval = np.mean(np.abs(ps.stat[ok]) >= np.abs(res.stat) - tol, axis=0)
    np.testing.assert_allclose(pval, r["pval"], rtol=1e-12)
    np.testing.assert_allclose(np.mean(ps.QM[ok] >= res.QM - tol), r["qmp"], rtol=1e-12)
    if ok.all():
        np.testing.assert_allclose(pt.pval_perm, r["pval"], rtol=1e-12)
        np.testing.assert_allclose(pt.QMp_perm, r["qmp"], rtol=1e-12)


def test_batched_refits_equal_single_fits_of_the_permuted_data() -> None:
    """Permuting the rows of X = permuting the moderator values; each batched refit equals fit()
    on the permuted data frame (three-level model, CHE working model, continuous moderator)."""
    df = _data("assink2016")
    res = fit(df, mods=["year"], random=["study", "esid"], rho=0.6)
    rows = np.random.default_rng(20261125).permuted(np.tile(np.arange(res.k), (4, 1)), axis=1)
    ps = permuted_statistics(res, rows=rows)
    for i, order in enumerate(rows):
        single = fit(
            df.assign(year=df["year"].to_numpy()[order]),
            mods=["year"],
            random=["study", "esid"],
            rho=0.6,
            control={"level_tests": False},
        )
        np.testing.assert_allclose(ps.theta[i], list(single.sigma2.values()), rtol=1e-7)
        np.testing.assert_allclose(ps.stat[i], single.stat, rtol=1e-8)
        np.testing.assert_allclose(ps.QM[i], single.QM, rtol=1e-8)


def test_random_permutest_agrees_with_metafor_within_monte_carlo_error() -> None:
    """bangertdrowns2004 ``~ factor(grade) + length`` (REML), 1,000 random permutations."""
    entry = json.loads((REF / "bangertdrowns2004.json").read_text())["cases"]
    r = entry["permutest_grade_length_reml"]["results"]
    df = _data("bangertdrowns2004").copy()
    df["factor(grade)"] = df["grade"].map(lambda x: None if pd.isna(x) else str(int(x)))
    res = fit(df, mods=["factor(grade)", "length"], method="REML")
    pt = permutest(res, iter=r["iter"], rng=np.random.default_rng(1234))
    assert list(pt.coef_names) == r["coef_names"]
    np.testing.assert_allclose(pt.QM, r["qm"], rtol=RTOL)
    assert not pt.exact and pt.iterations == 1000 and pt.n_failed == 0
    np.testing.assert_array_equal(pt.stat_perm[0], res.stat)  # the observed arrangement first
    for ours, theirs in zip([*pt.pval_perm, pt.QMp_perm], [*r["pval"], r["qmp"]], strict=True):
        se_diff = math.sqrt(2 * theirs * (1 - theirs) / 1000)
        assert abs(ours - theirs) <= 3 * se_diff + 1e-12, (ours, theirs)


def test_same_seed_same_result_other_seed_other_draws() -> None:
    res = _model("bcg_rr__ablat_ml_knha_k6_exact")
    a = permutest(res, iter=200, rng=np.random.default_rng(7), exact=False)
    b = permutest(res, iter=200, rng=np.random.default_rng(7), exact=False)
    c = permutest(res, iter=200, rng=np.random.default_rng(8), exact=False)
    np.testing.assert_array_equal(a.QM_perm, b.QM_perm)
    assert not np.array_equal(a.QM_perm, c.QM_perm)
    assert a.pval_perm.shape == (2,) and 1 / 200 <= a.QMp_perm <= 1


def test_random_test_approximates_the_exact_test() -> None:
    """2,000 random permutations of the k = 6 knha case vs its exact p (metafor: 0.0222)."""
    res = _model("bcg_rr__ablat_ml_knha_k6_exact")
    exact = CASES["bcg_rr__ablat_ml_knha_k6_exact"]["results"]["qmp"]
    pt = permutest(res, iter=2000, rng=np.random.default_rng(11), exact=False)
    assert abs(pt.QMp_perm - exact) <= 3 * math.sqrt(exact * (1 - exact) / 2000)


def test_distinct_row_orders_enumerate_each_arrangement_once() -> None:
    """k!/(n_1! n_2! ...) arrangements (6!/(3! 2! 1!) = 60), all distinct, the identity first."""
    X = np.array([[1, 0], [1, 1], [1, 0], [1, 2], [1, 1], [1, 0]], dtype=float)
    rows = distinct_row_orders(X)
    assert rows.shape == (60, 6)
    np.testing.assert_array_equal(rows[0], np.arange(6))
    permuted = X[rows].reshape(60, -1)
    assert len(np.unique(permuted, axis=0)) == 60
    assert all(sorted(r) == list(range(6)) for r in rows.tolist())


def test_counts_and_refusals() -> None:
    res = _model("bcg_rr__intercept_reml_k8_exact")
    assert count_permutations(res) == 2**8
    big = fit(_data("assink2016"), mods=["year"], random=["study", "esid"])
    assert count_permutations(big) > 10**50
    with pytest.raises(ModelError, match="rng"):
        permutest(big, iter=100)
    with pytest.raises(ModelError, match="exact test needs"):
        permutest(big, exact=True)
    with pytest.raises(ModelError, match="iter"):
        permutest(big, iter=1, rng=np.random.default_rng(1))


def test_result_table_and_dict() -> None:
    pt = permutest(_model("bcg_rr__ablat_reml_k6_exact"), exact=True)
    frame = pt.to_frame()
    assert list(frame.columns) == ["estimate", "stat", "pval", "pval_perm"]
    assert list(frame.index) == ["intrcpt", "ablat"]
    json.dumps(pt.to_dict(), allow_nan=False)
    full = pt.to_dict(distributions=True)
    assert len(full["QM_perm"]) == pt.iterations
