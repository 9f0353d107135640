"""Tests for intervention_meta.models.robust: CR0/CR1/CR2 sandwiches, Satterthwaite t tests, HTZ
Wald.

Expected numbers come from R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8:
* ``tests/reference/<stem>.json`` (shared references; the exact R call is stored in each case),
* ``tests/reference/extra/che_cr2_reference.json`` (made by ``extra/che_cr2_reference.R``),
* ``tests/reference/extra/robust_extra_reference.json``
  (made by ``extra/robust_extra_reference.R``).

The model core is not used: the blocks are built here from the CSV data and the REML variance
components stored with the matching rma.mv fit, and beta is computed by GLS with numpy.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models.blocks import ClusterBlock
from intervention_meta.models.robust import (
    RobustResult,
    RobustVcov,
    WaldTest,
    coef_test,
    robust_vcov,
    wald_test,
)

REF = Path(__file__).parent / "reference"
RTOL = 1e-6  # results downstream of REML variance components (tests/reference/README.md)

# the moderators of each shared rma.mv fit (its `call` in the reference JSON)
TERMS = {
    "ml3_reml": [],
    "ml3_mods_deltype_year_reml": ["deltype", "year"],
    "ml3_mods_pubstatus_reml": ["pubstatus"],
    "ml3_mods_year_reml": ["year"],
}
CLUSTER = {"assink2016": "study", "konstantopoulos2011": "district", "bcg_rr": "trial"}


# ---------------------------------------------------------------------------------------------
# helpers: reference files, design matrices, blocks, GLS
# ---------------------------------------------------------------------------------------------


@cache
def _json(path: str) -> dict:
    return json.loads((REF / path).read_text())


def _csv(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


def _design(df: pd.DataFrame, terms: list[str]) -> tuple[list[str], np.ndarray]:
    """R's model.matrix with treatment coding (alphabetically first level is reference)."""
    names, cols = ["intrcpt"], [np.ones(len(df))]
    for t in terms:
        if df[t].dtype == object:
            for level in sorted(df[t].unique())[1:]:
                names.append(f"{t}{level}")
                cols.append((df[t] == level).to_numpy(float))
        else:
            names.append(t)
            cols.append(df[t].to_numpy(float))
    return names, np.column_stack(cols)


def _blocks(
    df: pd.DataFrame, X: np.ndarray, cluster: str, sigma2: list[float], rho: float = 0.0
) -> list[ClusterBlock]:
    """Clusters of a model with random intercepts for the cluster and for each row within it.

    Per cluster: V = S + sigma2[0] * J + sigma2[1] * I, where S has vi on the diagonal and
    rho * sqrt(vi_i vi_j) off it (rho = 0: independent sampling errors). With one sigma2 only the
    row-level intercept is present (random = ~ 1 | trial, one row per cluster).
    """
    blocks = []
    for cid, idx in df.groupby(cluster, sort=True).indices.items():
        vi = df["vi"].to_numpy()[idx]
        sd = np.sqrt(vi)
        S = rho * np.outer(sd, sd)
        np.fill_diagonal(S, vi)
        n = len(idx)
        if len(sigma2) == 2:
            V = S + sigma2[0] * np.ones((n, n)) + sigma2[1] * np.eye(n)
        else:
            V = S + sigma2[0] * np.eye(n)
        blocks.append(ClusterBlock(cid, idx, X[idx], df["yi"].to_numpy()[idx], V))
    return blocks


def _gls(blocks: list[ClusterBlock]) -> np.ndarray:
    """GLS coefficients (sum X'V^-1 X)^-1 sum X'V^-1 y, computed directly with numpy."""
    XWX = sum(b.X.T @ np.linalg.solve(b.V, b.X) for b in blocks)
    XWy = sum(b.X.T @ np.linalg.solve(b.V, b.y) for b in blocks)
    return np.linalg.solve(XWX, XWy)


def _model(stem: str, fit: dict, terms: list[str], rho: float = 0.0):
    """Blocks, GLS beta and coefficient names of a stored rma.mv fit; checks beta against R."""
    df = _csv(stem)
    names, X = _design(df, terms)
    assert names == fit["coef_names"]
    sigma2 = np.atleast_1d(fit["sigma2"]).tolist()
    blocks = _blocks(df, X, CLUSTER[stem], sigma2, rho)
    beta = _gls(blocks)
    np.testing.assert_allclose(beta, fit["b"], rtol=RTOL)  # the blocks reproduce R's fit
    return blocks, beta, names


def _shared_model(stem: str, fit_case: str):
    fit = _json(f"{stem}.json")["cases"][fit_case]["results"]
    return _model(stem, fit, TERMS[fit_case])


def _check_coef_test(ct: RobustResult, ref: dict) -> None:
    assert list(ct.coef_names) == ref["coef"]
    np.testing.assert_allclose(ct.b, ref["beta"], rtol=RTOL)
    np.testing.assert_allclose(ct.se, ref["se"], rtol=RTOL)
    np.testing.assert_allclose(ct.tval, ref["tstat"], rtol=RTOL)
    np.testing.assert_allclose(ct.df, ref["df_satt"], rtol=RTOL)
    np.testing.assert_allclose(ct.pval, ref["p_satt"], rtol=RTOL)
    # the steps' JSON carries one coefficient's test under clubSandwich's names
    for j, name in enumerate(ref["coef"]):
        row = ct.coef_test(name)
        for key in ("beta", "se", "tstat", "df_satt", "p_satt"):
            np.testing.assert_allclose(row[key], ref[key][j], rtol=RTOL)


def _check_conf_int(ct: RobustResult, ref: dict) -> None:
    np.testing.assert_allclose(ct.df, ref["df"], rtol=RTOL)
    np.testing.assert_allclose(ct.ci_lb, ref["ci_l"], rtol=RTOL)
    np.testing.assert_allclose(ct.ci_ub, ref["ci_u"], rtol=RTOL)


def _check_wald(w: WaldTest, ref: dict) -> None:
    assert w.test == ref["test"] == "HTZ"
    assert w.df_num == ref["df_num"]
    for name in ("fstat", "delta", "df_denom", "p_val"):
        np.testing.assert_allclose(getattr(w, name), ref[name], rtol=RTOL, err_msg=name)


# ---------------------------------------------------------------------------------------------
# CR2 + Satterthwaite + HTZ against the shared clubSandwich references
# ---------------------------------------------------------------------------------------------

SHARED_CR2 = [
    ("assink2016", "ml3_reml"),
    ("assink2016", "ml3_mods_deltype_year_reml"),
    ("assink2016", "ml3_mods_pubstatus_reml"),
    ("konstantopoulos2011", "ml3_reml"),
    ("konstantopoulos2011", "ml3_mods_year_reml"),
]


@pytest.mark.parametrize(("stem", "fit_case"), SHARED_CR2)
def test_cr2_coef_test_and_conf_int_match_clubsandwich(stem, fit_case):
    # source: tests/reference/<stem>.json, case <fit_case>_cr2 (vcovCR / coef_test / conf_int)
    ref = _json(f"{stem}.json")["cases"][f"{fit_case}_cr2"]["results"]
    blocks, beta, names = _shared_model(stem, fit_case)
    rv = robust_vcov(blocks, beta, type="CR2")
    np.testing.assert_allclose(rv.vcov, ref["vcov_cr2"], rtol=RTOL)
    ct = coef_test(rv, beta, names)
    _check_coef_test(ct, ref["coef_test"])
    _check_conf_int(ct, ref["conf_int"])


@pytest.mark.parametrize(("suffix", "indices"), [("deltype", [1, 2]), ("all", [1, 2, 3])])
def test_htz_wald_matches_clubsandwich_assink2016(suffix, indices):
    # source: tests/reference/assink2016.json, ml3_mods_deltype_year_reml_wald_htz_<suffix>
    # (R: constrain_zero(2:3) / constrain_zero(2:4), 1-based)
    ref = _json("assink2016.json")["cases"][f"ml3_mods_deltype_year_reml_wald_htz_{suffix}"]
    blocks, beta, _ = _shared_model("assink2016", "ml3_mods_deltype_year_reml")
    rv = robust_vcov(blocks, beta)
    _check_wald(wald_test(rv, beta, indices), ref["results"])


# ---------------------------------------------------------------------------------------------
# CHE working model (correlated sampling errors within study)
# ---------------------------------------------------------------------------------------------

CHE = [("che_r06", 0.6, []), ("che_r02", 0.2, []), ("che_r08", 0.8, [])]
CHE_MODS = ("che_r06_mods_deltype_year", 0.6, ["deltype", "year"])


@pytest.mark.parametrize(("tag", "rho", "terms"), [*CHE, CHE_MODS])
def test_cr2_matches_clubsandwich_che_working_model(tag, rho, terms):
    # source: tests/reference/extra/che_cr2_reference.json, cases <tag>_reml and <tag>_reml_cr2
    cases = _json("extra/che_cr2_reference.json")["cases"]
    fit = cases[f"{tag}_reml"]["results"]
    ref = cases[f"{tag}_reml_cr2"]["results"]
    blocks, beta, names = _model("assink2016", fit, terms, rho=rho)
    rv = robust_vcov(blocks, beta)
    np.testing.assert_allclose(rv.vcov, ref["vcov_cr2"], rtol=RTOL)
    ct = coef_test(rv, beta, names)
    _check_coef_test(ct, ref["coef_test"])
    _check_conf_int(ct, ref["conf_int"])


def test_htz_wald_matches_clubsandwich_che_working_model():
    # source: extra/che_cr2_reference.json, che_r06_mods_deltype_year_reml_wald_htz_deltype
    cases = _json("extra/che_cr2_reference.json")["cases"]
    fit = cases["che_r06_mods_deltype_year_reml"]["results"]
    blocks, beta, _ = _model("assink2016", fit, ["deltype", "year"], rho=0.6)
    w = wald_test(robust_vcov(blocks, beta), beta, [1, 2])
    _check_wald(w, cases["che_r06_mods_deltype_year_reml_wald_htz_deltype"]["results"])


# ---------------------------------------------------------------------------------------------
# other sandwich types, user target, contrast matrices, one-row clusters
# ---------------------------------------------------------------------------------------------


def _extra(name: str) -> dict:
    return _json("extra/robust_extra_reference.json")["cases"][name]["results"]


@pytest.mark.parametrize("cr_type", ["CR0", "CR1", "CR1p", "CR1S"])
def test_cr0_cr1_sandwiches_and_df_match_clubsandwich(cr_type):
    # source: extra/robust_extra_reference.json, ml3_mods_deltype_year_reml_<type>
    ref = _extra(f"ml3_mods_deltype_year_reml_{cr_type.lower()}")
    blocks, beta, names = _shared_model("assink2016", "ml3_mods_deltype_year_reml")
    rv = robust_vcov(blocks, beta, type=cr_type)
    np.testing.assert_allclose(rv.vcov, ref["vcov"], rtol=RTOL)
    _check_coef_test(coef_test(rv, beta, names), ref["coef_test"])


def test_htz_wald_on_cr1_matches_clubsandwich():
    # source: extra/robust_extra_reference.json, ml3_mods_deltype_year_reml_cr1_wald_htz_all
    ref = _extra("ml3_mods_deltype_year_reml_cr1_wald_htz_all")
    blocks, beta, _ = _shared_model("assink2016", "ml3_mods_deltype_year_reml")
    w = wald_test(robust_vcov(blocks, beta, type="CR1"), beta, np.array(ref["constraints"]))
    _check_wald(w, ref)


def test_cr2_with_user_target_matches_clubsandwich():
    # source: extra/robust_extra_reference.json, ml3_mods_deltype_year_reml_cr2_target_vi
    # (R: vcovCR(res, type="CR2", cluster=dat$study, target=dat$vi), i.e. Phi_j = diag(vi))
    ref = _extra("ml3_mods_deltype_year_reml_cr2_target_vi")
    blocks, beta, names = _shared_model("assink2016", "ml3_mods_deltype_year_reml")
    df = _csv("assink2016")
    target = [df["vi"].to_numpy()[b.index] for b in blocks]
    rv = robust_vcov(blocks, beta, target=target)
    assert rv.target == "user"
    np.testing.assert_allclose(rv.vcov, ref["vcov"], rtol=RTOL)
    ct = coef_test(rv, beta, names)
    _check_coef_test(ct, ref["coef_test"])
    _check_conf_int(ct, ref["conf_int"])
    _check_wald(wald_test(rv, beta, [1, 2]), ref["wald_htz_deltype"])


def test_htz_wald_with_contrast_matrix_matches_clubsandwich():
    # source: extra/robust_extra_reference.json, ml3_mods_deltype_year_reml_wald_htz_equal
    # (R: constrain_equal(2:3) -> C = [0, -1, 1, 0])
    ref = _extra("ml3_mods_deltype_year_reml_wald_htz_equal")
    blocks, beta, _ = _shared_model("assink2016", "ml3_mods_deltype_year_reml")
    C = np.array(ref["constraints"], dtype=float)
    np.testing.assert_array_equal(C, [[0, -1, 1, 0]])
    _check_wald(wald_test(robust_vcov(blocks, beta), beta, C), ref)


def test_htz_wald_of_one_coefficient_is_the_satterthwaite_t_test():
    # source: extra/robust_extra_reference.json, ml3_mods_year_reml_wald_htz_year
    # (q = 1: HTZ F = t^2 with Satterthwaite df; konstantopoulos2011.json ml3_mods_year_reml_cr2)
    ref = _extra("ml3_mods_year_reml_wald_htz_year")
    blocks, beta, names = _shared_model("konstantopoulos2011", "ml3_mods_year_reml")
    rv = robust_vcov(blocks, beta)
    w = wald_test(rv, beta, [1])
    _check_wald(w, ref)
    ct = coef_test(rv, beta, names)
    np.testing.assert_allclose(w.df_denom, ct.df[1], rtol=1e-10)
    np.testing.assert_allclose(w.fstat, ct.tval[1] ** 2, rtol=1e-10)
    np.testing.assert_allclose(w.p_val, ct.pval[1], rtol=1e-10)
    np.testing.assert_allclose(ct.wald([1]).fstat, w.fstat, rtol=1e-12)


def test_tests_at_other_coefficients_are_coef_test_of_those_coefficients():
    """``RobustResult.at(b)`` (the tests of a model fitted to a shifted outcome, used by the
    multiverse's bootstrap) equals a full ``coef_test`` of ``b``: same covariance and df, bit for
    bit, with the t statistics, p values and limits of the new values."""
    blocks, beta, names = _shared_model("konstantopoulos2011", "ml3_mods_year_reml")
    rv = robust_vcov(blocks, beta)
    full = coef_test(rv, beta, names, level=0.9, cluster="district")
    other = np.asarray(beta, dtype=float) - np.array([0.3, -0.01])
    moved, direct = full.at(other), coef_test(rv, other, names, level=0.9, cluster="district")
    for name in ("b", "se", "tval", "df", "pval", "ci_lb", "ci_ub", "vcov"):
        np.testing.assert_array_equal(getattr(moved, name), getattr(direct, name), err_msg=name)
    assert (moved.level, moved.cluster, moved.coef_names) == (0.9, "district", tuple(names))
    assert moved.wald([1]).fstat == direct.wald([1]).fstat
    with pytest.raises(ValueError, match="entries"):
        full.at(np.zeros(3))


def test_one_row_clusters_match_clubsandwich():
    # source: extra/robust_extra_reference.json, mv_trial_ablat_reml{,_cr2,_cr0,_wald_htz_ablat}
    # (bcg_rr, rma.mv(yi, vi, random = ~ 1 | trial, mods = ~ ablat): every cluster has one row)
    fit = _extra("mv_trial_ablat_reml")
    blocks, beta, names = _model("bcg_rr", fit, ["ablat"])
    assert all(len(b.y) == 1 for b in blocks)
    rv = robust_vcov(blocks, beta)
    ref = _extra("mv_trial_ablat_reml_cr2")
    np.testing.assert_allclose(rv.vcov, ref["vcov_cr2"], rtol=RTOL)
    ct = coef_test(rv, beta, names)
    _check_coef_test(ct, ref["coef_test"])
    _check_conf_int(ct, ref["conf_int"])
    _check_wald(wald_test(rv, beta, [1]), _extra("mv_trial_ablat_reml_wald_htz_ablat"))
    ref0 = _extra("mv_trial_ablat_reml_cr0")
    rv0 = robust_vcov(blocks, beta, type="CR0")
    np.testing.assert_allclose(rv0.vcov, ref0["vcov"], rtol=RTOL)
    _check_coef_test(coef_test(rv0, beta, names), ref0["coef_test"])


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


def _random_blocks(rng: np.random.Generator, sizes: list[int], p: int = 3) -> list[ClusterBlock]:
    blocks, start = [], 0
    for j, n in enumerate(sizes):
        X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
        vi = rng.uniform(0.02, 0.3, size=n)
        V = np.diag(vi) + 0.05 * np.ones((n, n)) + 0.03 * np.eye(n)
        y = X @ np.arange(p) * 0.1 + rng.multivariate_normal(np.zeros(n), V)
        blocks.append(ClusterBlock(f"c{j}", np.arange(start, start + n), X, y, V))
        start += n
    return blocks


def test_cr0_with_one_row_per_cluster_and_diagonal_v_is_hc0():
    # HC0 by hand (White 1980): (X'WX)^-1 X'W diag(e^2) W X (X'WX)^-1, W = diag(1/v)
    rng = np.random.default_rng(20240501)
    k, p = 30, 3
    X = np.column_stack([np.ones(k), rng.normal(size=(k, p - 1))])
    v = rng.uniform(0.05, 0.5, size=k)
    y = X @ np.array([0.2, -0.1, 0.3]) + rng.normal(scale=np.sqrt(v))
    blocks = [ClusterBlock(i, np.array([i]), X[[i]], y[[i]], np.array([[v[i]]])) for i in range(k)]
    W = np.diag(1 / v)
    bread = np.linalg.inv(X.T @ W @ X)
    beta = bread @ X.T @ W @ y
    e = y - X @ beta
    hc0 = bread @ X.T @ W @ np.diag(e**2) @ W @ X @ bread
    rv = robust_vcov(blocks, type="CR0")  # beta from the blocks by GLS
    np.testing.assert_allclose(rv.beta, beta, rtol=1e-10)
    np.testing.assert_allclose(rv.vcov, hc0, rtol=1e-10)
    np.testing.assert_allclose(rv.bread, bread, rtol=1e-10)


def test_cr2_with_model_as_explicit_target_equals_default():
    # the general-target formulas reduce to the inverse-variance ones when Phi = V
    rng = np.random.default_rng(7)
    blocks = _random_blocks(rng, [1, 2, 3, 3, 4, 1, 5, 2])
    rv = robust_vcov(blocks)
    rv_t = robust_vcov(blocks, target=[b.V for b in blocks])
    np.testing.assert_allclose(rv_t.vcov, rv.vcov, rtol=1e-10)
    ct, ct_t = coef_test(rv, None), coef_test(rv_t, None)
    np.testing.assert_allclose(ct_t.df, ct.df, rtol=1e-8)
    w, w_t = wald_test(rv, None, [1, 2]), wald_test(rv_t, None, [1, 2])
    np.testing.assert_allclose(w_t.df_denom, w.df_denom, rtol=1e-8)


def test_results_do_not_depend_on_block_order():
    rng = np.random.default_rng(11)
    blocks = _random_blocks(rng, [3, 1, 2, 3, 2, 4, 1])
    perm = rng.permutation(len(blocks))
    rv = robust_vcov(blocks)
    rv_p = robust_vcov([blocks[i] for i in perm])
    np.testing.assert_allclose(rv_p.vcov, rv.vcov, rtol=1e-10)
    np.testing.assert_allclose(coef_test(rv_p, None).df, coef_test(rv, None).df)
    assert rv_p.clusters == tuple(blocks[i].cluster for i in perm)


def test_result_objects_are_json_able_and_tabular():
    rng = np.random.default_rng(3)
    blocks = _random_blocks(rng, [2, 3, 2, 4, 1])
    rv = robust_vcov(blocks)
    ct = coef_test(rv, None, ["a", "b", "c"], level=0.9)
    w = wald_test(rv, None, [1, 2])
    for obj in (rv, ct, w):
        json.dumps(obj.to_dict(), allow_nan=False)
    assert isinstance(rv, RobustVcov)
    assert rv.to_frame(["a", "b", "c"]).shape == (3, 3)
    frame = ct.to_frame()
    assert list(frame.index) == ["a", "b", "c"]
    assert list(frame.columns) == ["estimate", "se", "tval", "df", "pval", "ci_lb", "ci_ub"]
    assert list(ct.coef_test("b")) == [
        "beta", "se", "tstat", "df_satt", "p_satt", "ci_lower", "ci_upper"
    ]  # fmt: skip
    assert w.to_frame().shape == (1, 7)
    assert w.to_dict()["constraints"] == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_fewer_than_two_clusters_is_an_error():
    rng = np.random.default_rng(1)
    blocks = _random_blocks(rng, [5])
    with pytest.raises(ValueError, match="at least 2 clusters"):
        robust_vcov(blocks)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        robust_vcov([])


@pytest.mark.parametrize(
    ("constraints", "match"),
    [
        ([3], "indices must be in 0..2"),
        ([-1], "indices must be in 0..2"),
        ([], "at least one"),
        ([1, 1], "repeated"),
        (np.ones((1, 4)), "q x 3"),
        ([0.5, 1.0], "integer"),
        (np.array([[0, 1, 0], [0, 2, 0]]), "linearly dependent"),
    ],
)
def test_bad_constraints_are_errors(constraints, match):
    rng = np.random.default_rng(2)
    rv = robust_vcov(_random_blocks(rng, [2, 3, 2, 4, 3, 2]))
    with pytest.raises(ValueError, match=match):
        wald_test(rv, None, constraints)


def test_bad_arguments_are_errors():
    rng = np.random.default_rng(4)
    blocks = _random_blocks(rng, [2, 3, 2])
    with pytest.raises(ValueError, match="type must be one of"):
        robust_vcov(blocks, type="CR3")
    with pytest.raises(ValueError, match="beta must have 3"):
        robust_vcov(blocks, np.zeros(2))
    with pytest.raises(ValueError, match="one entry per block"):
        robust_vcov(blocks, target=[b.V for b in blocks[:2]])
    dup = [blocks[0], ClusterBlock("c0", blocks[1].index, blocks[1].X, blocks[1].y, blocks[1].V)]
    with pytest.raises(ValueError, match="more than one block"):
        robust_vcov(dup)
    rv = robust_vcov(blocks)
    with pytest.raises(ValueError, match="only test='HTZ'"):
        wald_test(rv, None, [1], test="HTA")
    with pytest.raises(ValueError, match="level"):
        coef_test(rv, None, level=1.5)
