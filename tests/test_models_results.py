"""The result object: serialisation, tables, Wald tests, prediction and cluster blocks.

Expected values come from the result itself or from definitions (``QM`` equals the Wald test of
``btt``; the marginal covariance of a study is ``diag(v) + sigma2_study J + sigma2_esid I``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intervention_meta.models import MetaResult, fit
from intervention_meta.models.blocks import ClusterBlock

REF = Path(__file__).parent / "reference"
ASSINK = pd.read_csv(REF / "assink2016.csv")
BCG = pd.read_csv(REF / "bcg_rr.csv")


@pytest.fixture(scope="module")
def ml3() -> MetaResult:
    return fit(ASSINK, mods=["deltype", "year"], random=["study", "esid"])


def test_to_dict_is_plain_json(ml3) -> None:
    d = ml3.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["sigma2"].keys() == {"study", "esid"}
    assert d["coef_names"] == ["intrcpt", "deltypegeneral", "deltypeovert", "year"]
    assert d["n_levels"] == {"study": 17, "esid": 100}
    assert d["convergence"]["converged"] is True and d["converged"] is True
    assert {"level_tests", "variance_distribution", "fit_stats", "QMdf", "vb"} <= d.keys()
    assert "_state" not in d


def test_one_level_to_dict_carries_tau2_i2_and_q_profile() -> None:
    d = fit(BCG, method="REML").to_dict()
    json.dumps(d, allow_nan=False)
    assert d["sigma2"] == {} and d["tau2"] > 0 and d["se_tau2"] > 0
    assert set(d["confint"]) >= {"tau2", "tau", "i2", "h2"}
    assert len(d["prediction"]["pred"]) == 1


def test_coefficient_table(ml3) -> None:
    frame = ml3.to_frame()
    assert list(frame.columns) == ["estimate", "se", "zval", "pval", "ci_lb", "ci_ub"]
    assert list(frame.index) == list(ml3.coef_names)
    np.testing.assert_array_equal(frame["estimate"], ml3.b)
    t = fit(ASSINK, mods=["year"], random=["study", "esid"], test="t").to_frame()
    assert "tval" in t.columns and (t["df"] == 98).all()


def test_summary_names_levels_and_coefficients(ml3) -> None:
    text = ml3.summary()
    for needle in ("sigma2[study]", "sigma2[esid]", "deltypegeneral", "Q_E(96)", "LRT"):
        assert needle in text


def test_wald_reproduces_qm_and_accepts_names(ml3) -> None:
    w = ml3.wald([1, 2, 3])
    np.testing.assert_allclose(w.stat, ml3.QM, rtol=1e-12)
    np.testing.assert_allclose(w.pval, ml3.QMp, rtol=1e-12)
    by_name = ml3.wald(["deltypegeneral", "deltypeovert"])
    b, V = ml3.b[1:3], ml3.vb[1:3, 1:3]
    np.testing.assert_allclose(by_name.stat, b @ np.linalg.solve(V, b), rtol=1e-12)
    assert by_name.df1 == 2 and by_name.distribution == "chi2"


def test_wald_under_t_test_is_an_f_test() -> None:
    res = fit(ASSINK, mods=["deltype", "year"], random=["study", "esid"], test="t")
    w = res.wald(["year"])
    assert (w.df1, w.df2, w.distribution) == (1, 96.0, "F")
    np.testing.assert_allclose(w.stat, res.tval[3] ** 2, rtol=1e-12)
    np.testing.assert_allclose(w.pval, res.pval[3], rtol=1e-10)


def test_prediction_for_new_moderator_values_from_a_data_frame_or_rows(ml3) -> None:
    new = pd.DataFrame({"deltype": ["covert", "general", "overt"], "year": [3.0, 5.0, -2.0]})
    a = ml3.predict(new)
    b = ml3.predict(np.array([[0, 0, 3], [1, 0, 5], [0, 1, -2]]))
    np.testing.assert_allclose(a.pred, b.pred, rtol=1e-14)
    np.testing.assert_allclose(a.pi_ub, b.pi_ub, rtol=1e-14)
    assert ml3.prediction is None  # only intercept-only models carry it
    fitted = ml3.predict()
    assert len(fitted.pred) == ml3.k


def test_confidence_level_is_used_throughout() -> None:
    res = fit(BCG, method="REML", level=0.90)
    crit = stats.norm.isf(0.05)
    np.testing.assert_allclose(res.ci_ub - res.b, crit * res.se, rtol=1e-12)
    assert res.confint.level == 0.90
    pr = res.prediction
    np.testing.assert_allclose(pr.pi_ub - pr.pred, crit * np.sqrt(pr.se**2 + res.tau2), rtol=1e-12)


def test_level_tests_report_plain_and_halved_p_values(ml3) -> None:
    assert [lt.level for lt in ml3.level_tests] == ["study", "esid"]
    for lt in ml3.level_tests:
        assert lt.sigma2_reduced[lt.level] == 0.0
        np.testing.assert_allclose(lt.pval, stats.chi2.sf(lt.lrt, 1), rtol=1e-12)
        np.testing.assert_allclose(lt.pval_halved, lt.pval / 2, rtol=1e-12)
    off = fit(ASSINK, random=["study", "esid"], control={"level_tests": False})
    assert off.level_tests == ()


def test_cluster_blocks_default_to_the_outermost_level(ml3) -> None:
    blocks = ml3.cluster_blocks()
    assert all(isinstance(b, ClusterBlock) for b in blocks)
    assert [b.cluster for b in blocks] == sorted(ASSINK["study"].unique().tolist())
    np.testing.assert_array_equal(
        np.sort(np.concatenate([b.index for b in blocks])), np.arange(100)
    )
    s_study, s_esid = ml3.sigma2["study"], ml3.sigma2["esid"]
    design_X = np.column_stack(
        [
            np.ones(100),
            (ASSINK["deltype"] == "general").to_numpy(float),
            (ASSINK["deltype"] == "overt").to_numpy(float),
            ASSINK["year"].to_numpy(float),
        ]
    )
    for b in blocks:
        n = len(b.index)
        assert (ASSINK["study"].to_numpy()[b.index] == b.cluster).all()
        expected = np.diag(ASSINK["vi"].to_numpy()[b.index]) + s_study + s_esid * np.eye(n)
        np.testing.assert_allclose(b.V, expected, rtol=1e-14)
        np.testing.assert_array_equal(b.X, design_X[b.index])
        np.testing.assert_array_equal(b.y, ASSINK["yi"].to_numpy()[b.index])


def test_cluster_blocks_of_a_one_level_model_are_single_rows_unless_a_column_is_named() -> None:
    res = fit(BCG, method="REML")
    blocks = res.cluster_blocks()
    assert len(blocks) == 13 and all(b.V.shape == (1, 1) for b in blocks)
    np.testing.assert_allclose([b.V[0, 0] for b in blocks], BCG["vi"] + res.tau2, rtol=1e-14)
    by_alloc = res.cluster_blocks("alloc")
    assert [b.cluster for b in by_alloc] == ["alternate", "random", "systematic"]
    for b in by_alloc:
        np.testing.assert_allclose(b.V, np.diag(BCG["vi"].to_numpy()[b.index] + res.tau2))


def test_cluster_blocks_by_a_coarser_column_are_block_diagonal(ml3) -> None:
    df = ASSINK.assign(grp=(ASSINK["study"] - 1) // 4)
    res = fit(df, random=["study", "esid"])
    for b in res.cluster_blocks("grp"):
        studies = df["study"].to_numpy()[b.index]
        across = studies[:, None] != studies[None, :]
        assert np.all(b.V[across] == 0.0)
        assert np.all(b.V[~across] > 0.0)


def test_cluster_blocks_at_other_components_are_those_of_a_fit_with_them_fixed(ml3) -> None:
    # the marginal covariance at given variance components, without refitting (the wild
    # bootstrap's covariance basis), byte for byte that of a fit with the components fixed
    theta = {"study": 0.3, "esid": 0.0}
    fixed = fit(ASSINK, mods=["deltype", "year"], random=["study", "esid"], sigma2_fixed=theta)
    for cluster in (None, "deltype"):
        at = ml3.cluster_blocks(cluster, theta=np.array([0.3, 0.0]))
        ref = fixed.cluster_blocks(cluster)
        assert [b.cluster for b in at] == [b.cluster for b in ref]
        for a, b in zip(at, ref, strict=True):
            np.testing.assert_array_equal(a.V, b.V)
    one = fit(BCG, method="REML")
    at = one.cluster_blocks(theta=np.array([0.5]))
    np.testing.assert_array_equal([b.V[0, 0] for b in at], BCG["vi"].to_numpy() + 0.5)
    assert one.cluster_blocks()[0].V[0, 0] == BCG["vi"].iloc[0] + one.tau2  # fitted by default


def test_multilevel_pseudo_r2_is_the_reduction_of_the_summed_components(ml3) -> None:
    """R2 = max(0, 100 (sum sigma2_0 - sum sigma2) / sum sigma2_0), sigma2_0 of the
    intercept-only model with the same random structure and method (metafor's definition for rma,
    extended to the total of the variance components)."""
    null = fit(ASSINK, random=["study", "esid"])
    s0, s1 = sum(null.sigma2.values()), sum(ml3.sigma2.values())
    np.testing.assert_allclose(ml3.R2, max(0.0, 100 * (s0 - s1) / s0), rtol=1e-12)
    assert null.R2 is None


def test_extras_are_computed_on_first_access_only() -> None:
    """Level tests, R2 and the Q-profile CI cost extra fits: none is computed by fit() itself,
    each is computed once when read, and to_dict() holds the same values (definition)."""
    res = fit(ASSINK, mods=["deltype"], random=["study", "esid"])
    assert not {"R2", "confint", "level_tests"} & res.__dict__.keys()
    tests, r2 = res.level_tests, res.R2
    assert res.level_tests is tests and [lt.level for lt in tests] == ["study", "esid"]
    assert r2 is not None and res.confint is None  # the Q-profile CI is for one-level models
    d = res.to_dict()
    assert d["R2"] == r2 and [t["level"] for t in d["level_tests"]] == ["study", "esid"]
    assert list(d).index("R2") == list(d).index("vt") + 1
    one = fit(BCG, mods=["ablat"], method="REML")
    assert "confint" not in one.__dict__
    assert (
        one.confint is not None
        and one.to_dict()["confint"]["tau2"] == one.confint.to_dict()["tau2"]
    )


def test_robust_result_is_kept_per_arguments(ml3) -> None:
    rob = ml3.robust()
    assert ml3.robust() is rob and ml3.robust(level=0.9) is not rob
    np.testing.assert_allclose(ml3.robust(type="CR0").b, rob.b, rtol=0)
