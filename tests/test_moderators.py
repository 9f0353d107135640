"""Tests for intervention_meta.analyses.moderators and the ``moderators`` rule.

Sources of the expected numbers:

* ``tests/reference/assink2016.json`` (``R/public_reference.R``; metafor 3.8-1, clubSandwich 0.5.8):
  ``ml3_mods_pubstatus_reml_t`` / ``_cr2`` (the pubstatus model), ``ml3_mods_deltype_year_reml_t``
  / ``_cr2`` / ``_wald_htz_deltype`` / ``_wald_htz_all`` (deltype and year together).
* ``tests/reference/extra/moderators_reference.json`` (``extra/moderators_reference.R``): the
  single-moderator models the step reports -- ``~ factor(deltype) - 1`` with its CR2 table,
  ``~ factor(deltype)`` with its HTZ test, the same without the 1-study category, ``~ year``,
  ``~ factor(pubstatus) - 1`` / ``~ factor(pubstatus)`` -- and the VIFs of ``~ deltype + year``.
* Holm's adjustment and the complete-case counts are worked out by hand in the tests.
* ``data/raw/truth.yaml``: the simulated component effects behind the example data.

Tolerances (tests/reference/README.md): 1e-6 relative for anything downstream of the REML
estimates, 1e-5 for the variance components and pseudo-R^2 (a ratio of them).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pipeline_helpers import copy_project, run_snakemake, skip_extras
from statsmodels.stats.outliers_influence import variance_inflation_factor

from intervention_meta.analyses.analysis_model import AnalysisData, ModelSpec, load_analysis_data
from intervention_meta.analyses.moderators import (
    adjust_pvalues,
    analyse_moderator,
    analyse_moderators,
    coding_coverage,
    component_variables,
    moderator_variables,
    multiple_moderator_model,
    variance_inflation_factors,
)
from intervention_meta.data.codebook import load_codebook

REPO = Path(__file__).resolve().parents[1]
REF = Path(__file__).parent / "reference"
ASSINK_CODEBOOK = REPO / "data" / "examples" / "assink2016" / "codebook.yaml"
ITER = 1e-6  # downstream of REML estimates
VC = 1e-5  # variance components (and pseudo-R2, a ratio of them)
SPEC = ModelSpec()  # three-level REML, t tests, CR2 -- the models of config/assink2016.yaml


@cache
def _public(case: str) -> dict:
    return json.loads((REF / "assink2016.json").read_text())["cases"][case]["results"]


@cache
def _extra(case: str) -> dict:
    data = json.loads((REF / "extra" / "moderators_reference.json").read_text())
    return data["cases"][case]["results"]


@cache
def _assink() -> AnalysisData:
    """The reference CSV read with the assink2016 codebook's types (as the pipeline reads it)."""
    return load_analysis_data(REF / "assink2016.csv", ASSINK_CODEBOOK)


def close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol
    )


def _rows(result) -> pd.DataFrame:
    return pd.DataFrame([r.__dict__ for r in result.rows]).set_index("code")


# --------------------------------------------------------------------------- single moderators
def test_category_means_match_metafor_intercept_free_model_assink2016():
    res = analyse_moderator(_assink(), "deltype", SPEC, min_studies=1)
    ref, cr2 = _extra("deltype_means"), _extra("deltype_means_cr2")
    rows = _rows(res).loc[["general", "overt", "covert"]]  # the R call's level order
    close(rows.estimate, ref["b"], ITER)
    close(rows.se, ref["se"], ITER)
    close(rows.stat, ref["tval"], ITER)
    close(rows.df, ref["dfs"], 0)
    close(rows.pval, ref["pval"], ITER)
    close(rows.ci_lb, ref["ci_lb"], ITER)
    close(rows.ci_ub, ref["ci_ub"], ITER)
    close(rows.cr2_se, cr2["coef_test"]["se"], ITER)
    close(rows.cr2_df, cr2["coef_test"]["df_satt"], ITER)
    close(rows.cr2_pval, cr2["coef_test"]["p_satt"], ITER)
    close(rows.cr2_ci_lb, cr2["conf_int"]["ci_l"], ITER)
    close(rows.cr2_ci_ub, cr2["conf_int"]["ci_u"], ITER)
    # counts by hand from the CSV: general 78 rows / 17 studies, overt 13 / 3, covert 9 / 1
    assert rows.k.tolist() == [78, 13, 9] and rows.n_studies.tolist() == [17, 3, 1]
    assert rows.tested.all()


def test_test_of_differences_is_metafor_qm_of_the_model_with_intercept_and_htz():
    res = analyse_moderator(_assink(), "deltype", SPEC, min_studies=1)
    ref, htz = _extra("deltype_test"), _extra("deltype_test_htz")
    t = res.test
    assert t.test == "F" and t.df1 == ref["qmdf"][0] and t.df2 == ref["qmdf"][1]
    close(t.stat, ref["qm"], ITER)
    close(t.pval, ref["qmp"], ITER)
    close(t.cr2_fstat, htz["fstat"], ITER)
    close(t.cr2_df2, htz["df_denom"], ITER)
    close(t.cr2_pval, htz["p_val"], ITER)
    close([res.sigma2["study"], res.sigma2["id"]], ref["sigma2"], VC)
    close(res.R2, ref["r2"], VC)


def test_binary_moderator_test_matches_published_pubstatus_model_assink2016():
    """The F test of pubstatus 0 vs 1 is metafor's QM of ~ pubstatus (the public reference)."""
    res = analyse_moderator(_assink(), "pubstatus", SPEC, min_studies=1)
    ref, cr2 = _public("ml3_mods_pubstatus_reml_t"), _public("ml3_mods_pubstatus_reml_cr2")
    close(res.test.stat, ref["qm"], ITER)
    close(res.test.pval, ref["qmp"], ITER)
    assert (res.test.df1, res.test.df2) == tuple(ref["qmdf"])
    # with one contrast the HTZ test is the squared CR2 t test with its Satterthwaite df
    close(res.test.cr2_fstat, cr2["coef_test"]["tstat"][1] ** 2, ITER)
    close(res.test.cr2_df2, cr2["coef_test"]["df_satt"][1], ITER)
    close(res.test.cr2_pval, cr2["coef_test"]["p_satt"][1], ITER)
    close([res.sigma2["study"], res.sigma2["id"]], ref["sigma2"], VC)
    means, mcr2 = _extra("pubstatus_means"), _extra("pubstatus_means_cr2")
    rows = _rows(res).loc[["0", "1"]]
    close(rows.estimate, means["b"], ITER)
    close(rows.se, means["se"], ITER)
    close(rows.cr2_se, mcr2["coef_test"]["se"], ITER)
    close(res.R2, _extra("pubstatus_test")["r2"], VC)


def test_continuous_moderator_reports_slope_and_intercept_as_metafor_assink2016():
    res = analyse_moderator(_assink(), "year", SPEC)
    ref, cr2 = _extra("year"), _extra("year_cr2")
    rows = (
        pd.DataFrame([r.__dict__ for r in res.rows]).set_index("term").loc[["intercept", "slope"]]
    )
    for col, key in [("estimate", "b"), ("se", "se"), ("stat", "tval"), ("pval", "pval")]:
        close(rows[col], ref[key], ITER)
    close(rows.ci_lb, ref["ci_lb"], ITER)
    close(rows.ci_ub, ref["ci_ub"], ITER)
    close(rows.cr2_se, cr2["coef_test"]["se"], ITER)
    close(rows.cr2_df, cr2["coef_test"]["df_satt"], ITER)
    close(rows.cr2_pval, cr2["coef_test"]["p_satt"], ITER)
    close(res.test.stat, ref["qm"], ITER)  # F(1, 98) = t^2 of the slope
    close(res.test.cr2_pval, cr2["coef_test"]["p_satt"][1], ITER)
    close(res.R2, ref["r2"], VC)
    assert res.kind == "continuous" and res.test.df1 == 1 and res.test.df2 == 98


def test_category_with_too_few_studies_is_reported_flagged_and_left_out_of_the_test():
    """min_studies = 3: covert (1 study) is left out; the test is the model on the other rows."""
    res = analyse_moderator(_assink(), "deltype", SPEC, min_studies=3)
    ref, htz = _extra("deltype_min3_test"), _extra("deltype_min3_test_htz")
    rows = _rows(res)
    assert not rows.loc["covert", "tested"] and "1 study (< 3)" in rows.loc["covert", "note"]
    assert rows.loc[["general", "overt"], "tested"].all()
    # the covert mean is still reported, from the model with all categories
    close(rows.loc["covert", "estimate"], _extra("deltype_means")["b"][2], ITER)
    t = res.test
    assert t.categories == ("general", "overt") and t.k == ref["k"] == 91
    assert (t.df1, t.df2) == tuple(ref["qmdf"])
    close(t.stat, ref["qm"], ITER)
    close(t.pval, ref["qmp"], ITER)
    close(t.cr2_fstat, htz["fstat"], ITER)
    close(t.cr2_df2, htz["df_denom"], ITER)
    close(t.cr2_pval, htz["p_val"], ITER)
    close([res.sigma2["study"], res.sigma2["id"]], ref["sigma2"], VC)
    assert any("covert" in f and "left out of the test" in f for f in res.flags)


def test_moderator_with_fewer_than_two_testable_categories_gets_no_test_with_the_reason():
    res = analyse_moderator(_assink(), "pubstatus", SPEC, min_studies=3)  # 0: 2 studies
    assert res.test is None
    assert "fewer than 2 categories with at least 3 studies" in res.no_test_reason
    assert not any(r.tested for r in res.rows)
    assert any("no test" in f for f in res.flags)


def test_holm_adjustment_across_moderators_by_hand():
    an = analyse_moderators(_assink(), SPEC, min_studies=1)
    p = {r.name: r.test.pval for r in an.results}
    order = sorted(p, key=p.get)  # Holm (1979): m = 3 ordered p values
    expected, running = {}, 0.0
    for i, name in enumerate(order):
        running = max(running, min(1.0, (3 - i) * p[name]))
        expected[name] = running
    for r in an.results:
        close(r.test.p_adj, expected[r.name], 1e-12)
    close(adjust_pvalues([0.01, math.nan, 0.04]), [0.02, math.nan, 0.04], 1e-12)


def test_holm_adjustment_is_statsmodels_multipletests_to_the_last_bit():
    # statsmodels' multipletests(method="holm") is the reference implementation; ties, p values
    # whose adjusted value exceeds 1, NaN entries and a single p value included
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(7)
    cases = [rng.uniform(size=n) for n in (1, 2, 5, 17)]
    cases += [np.array([0.3, 0.01, 0.3, 0.04, 0.9, 0.01]), rng.uniform(size=40) ** 4]
    for p in cases:
        assert np.array_equal(adjust_pvalues(p), multipletests(p, method="holm")[1])
    p = np.array([0.2, np.nan, 0.01, 0.03, np.nan])
    out = adjust_pvalues(p)
    assert np.isnan(out[[1, 4]]).all()
    assert np.array_equal(out[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="holm")[1])
    assert np.array_equal(adjust_pvalues(p, "none"), p, equal_nan=True)
    with pytest.raises(ValueError, match="holm"):
        adjust_pvalues(p, "bonferroni")


def test_rows_with_a_missing_moderator_value_are_left_out_and_counted():
    ad = _assink()
    data = ad.data.copy()
    data.loc[[0, 5, 50], "year"] = np.nan
    res = analyse_moderator(AnalysisData(data, ad.codebook, ad.study, ad.es), "year", SPEC)
    assert res.k_missing == 3 and res.k == 97 and res.test.k == 97
    assert any("3 effect size(s) with a missing value" in f for f in res.flags)


def test_every_codebook_moderator_is_analysed_minus_the_excluded():
    ad = _assink()
    assert [v.name for v in moderator_variables(ad.codebook)] == ["pubstatus", "year", "deltype"]
    an = analyse_moderators(ad, SPEC, exclude=["year"])
    assert [r.name for r in an.results] == ["pubstatus", "deltype"]


# --------------------------------------------------------------------------- multiple model
def test_multiple_model_matches_metafor_deltype_year_and_its_htz_tests():
    mm = multiple_moderator_model(_assink(), ["deltype", "year"], SPEC)
    ref = _public("ml3_mods_deltype_year_reml_t")
    cr2 = _public("ml3_mods_deltype_year_reml_cr2")["coef_test"]
    rows = {(r.term, r.code): r for r in mm.rows}
    # year is the same coefficient in both parameterisations (R's reference level is covert,
    # ours the codebook's first level, general); the omnibus tests do not depend on it
    yr = rows[("year", "")]
    close(
        [yr.estimate, yr.se, yr.stat, yr.pval],
        [ref[k][3] for k in ("b", "se", "tval", "pval")],
        ITER,
    )
    close(
        [yr.cr2_se, yr.cr2_df, yr.cr2_pval], [cr2[k][3] for k in ("se", "df_satt", "p_satt")], ITER
    )
    # covert vs general: R's -deltypegeneral
    close(rows[("deltype", "covert")].estimate, -ref["b"][1], ITER)
    close(rows[("deltype", "covert")].se, ref["se"][1], ITER)
    close(rows[("intercept", "")].estimate, ref["b"][0] + ref["b"][1], ITER)
    close(mm.test.stat, ref["qm"], ITER)
    assert (mm.test.df1, mm.test.df2) == tuple(ref["qmdf"])
    close(mm.test.pval, ref["qmp"], ITER)
    for what, test in [("all", mm.test), ("deltype", mm.variable_tests["deltype"])]:
        htz = _public(f"ml3_mods_deltype_year_reml_wald_htz_{what}")
        close(
            [test.cr2_fstat, test.cr2_df2, test.cr2_pval],
            [htz["fstat"], htz["df_denom"], htz["p_val"]],
            ITER,
        )
    close([mm.sigma2["study"], mm.sigma2["id"]], ref["sigma2"], VC)
    assert mm.k == 100 and mm.k_dropped == 0


def test_vif_weighted_by_the_model_and_unweighted_match_r():
    mm = multiple_moderator_model(_assink(), ["deltype", "year"], SPEC)
    ref = _extra("vif_deltype_year")  # R: whitened by chol(res$M); diag(solve(cor(X[, -1])))
    assert mm.vif.names == ("deltypeovert", "deltypecovert", "year")
    close(mm.vif.weighted, ref["vif_weighted"], ITER)
    close(mm.vif.unweighted, ref["vif_unweighted"], 1e-10)


def test_unweighted_vif_is_statsmodels_variance_inflation_factor():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(40), rng.normal(size=(40, 3))])
    X[:, 3] += 0.8 * X[:, 1]
    v = variance_inflation_factors(X, ["c", "a", "b", "d"])
    close(v.unweighted, [variance_inflation_factor(X, j) for j in (1, 2, 3)], 1e-10)
    # weighting by identity blocks changes nothing
    w = variance_inflation_factors(X, ["c", "a", "b", "d"], [(np.arange(40), np.eye(40))])
    close(w.weighted, v.unweighted, 1e-10)


def _toy() -> AnalysisData:
    """6 studies, 2 binary study components with missing values, a hand-countable layout."""
    cb = load_codebook(
        {
            "tables": {"studies": {"key": "sid"}, "effects": {"key": "eid", "parent": "studies"}},
            "variables": [
                {"name": "sid", "table": "studies", "type": "id", "role": "id"},
                {
                    "name": "a",
                    "table": "studies",
                    "type": "binary",
                    "levels": {0: "no", 1: "yes"},
                    "role": "component",
                    "label": "Component A",
                },
                {
                    "name": "b",
                    "table": "studies",
                    "type": "binary",
                    "levels": {0: "no", 1: "yes"},
                    "role": "component",
                    "label": "Component B",
                },
                {"name": "size", "table": "studies", "type": "number", "role": "moderator"},
                {"name": "eid", "table": "effects", "type": "id", "role": "id"},
            ],
        }
    )
    rng = np.random.default_rng(7)
    ks = [3, 2, 4, 1, 3, 2]
    a = [1, 0, 1, None, 0, 1]
    b = [0, 1, None, None, 1, 1]
    rows = []
    for j, k in enumerate(ks):
        for i in range(k):
            rows.append(
                {
                    "sid": f"S{j}",
                    "eid": f"S{j}-{i}",
                    "a": a[j],
                    "b": b[j],
                    "size": float(j),
                    "yi": rng.normal(0.3, 0.3),
                    "vi": 0.02 + 0.01 * i,
                }
            )
    data = pd.DataFrame(rows)
    for c in ("a", "b"):
        data[c] = data[c].astype("Int64")
    return AnalysisData(data, cb, "sid", "eid")


def test_multiple_model_uses_complete_cases_and_counts_why_rows_left_out():
    mm = multiple_moderator_model(_toy(), ["a", "b"], SPEC)
    # by hand: S2 misses b (4 rows), S3 misses a and b (1 row) -> 5 rows, 2 studies left out
    assert mm.k_dropped == 5 and mm.studies_dropped == 2
    assert mm.missing_by_variable == {"a": 1, "b": 5}
    assert mm.k == 10 and mm.n_studies == 4
    assert any("5 effect size(s) (2 whole studies: S2, S3)" in f for f in mm.flags)
    assert mm.lost == ("S2", "S3") and mm.applicable and mm.left_out == {}


def test_default_multiple_model_takes_the_components_and_no_other_binary_moderator():
    ad = _toy()
    assert component_variables(ad.codebook) == ["a", "b"]
    assert component_variables(ad.codebook, None, exclude=["a"]) == ["b"]
    cb = load_codebook(REPO / "data" / "codebook.yaml")
    truth = yaml.safe_load((REPO / "data" / "raw" / "truth.yaml").read_text())
    assert component_variables(cb) == list(truth["model"]["components"])
    # assink2016: pubstatus is a binary moderator of the studies table, not a component
    assink = load_codebook(ASSINK_CODEBOOK)
    assert assink["pubstatus"].type == "binary" and "moderator" in assink["pubstatus"].roles
    assert component_variables(assink) == []
    assert component_variables(assink, ["pubstatus"]) == ["pubstatus"]


def test_multiple_model_without_components_or_list_does_not_apply_and_raises_no_flag():
    mm = multiple_moderator_model(_assink(), component_variables(_assink().codebook), SPEC)
    assert not mm.applicable and mm.rows == () and mm.test is None
    assert "role: component" in mm.reason and mm.flags == ()
    assert mm.to_dict()["applicable"] is False


def _sparse(n_coded: int = 2) -> AnalysisData:
    """The toy data (6 studies) grown to 10 studies S0..S9, with a study variable ``new`` coded
    for the first ``n_coded`` studies only and ``a``, ``b`` coded everywhere (S9 has a = 0, b = 1
    and so on by the pattern below)."""
    ad = _toy()
    cb = load_codebook(
        {
            "tables": {"studies": {"key": "sid"}, "effects": {"key": "eid", "parent": "studies"}},
            "variables": [
                *[
                    {k: v for k, v in var.to_dict().items() if k in ("name", "table", "type")}
                    | {"role": list(var.roles) or "id"}
                    | ({"levels": var.levels} if var.levels else {})
                    for var in ad.codebook.variables.values()
                ],
                {
                    "name": "new",
                    "table": "studies",
                    "type": "binary",
                    "levels": {0: "no", 1: "yes"},
                    "role": "component",
                    "label": "New component",
                },
            ],
        }
    )
    rng = np.random.default_rng(11)
    rows = []
    for j in range(10):
        for i in range(2 + j % 2):
            rows.append(
                {
                    "sid": f"S{j}",
                    "eid": f"S{j}-{i}",
                    "a": j % 2,
                    "b": int(j % 3 == 0),
                    "new": (j % 2) if j < n_coded else None,
                    "size": float(j),
                    "yi": rng.normal(0.3, 0.3),
                    "vi": 0.02 + 0.01 * i,
                }
            )
    data = pd.DataFrame(rows)
    for c in ("a", "b", "new"):
        data[c] = data[c].astype("Int64")
    return AnalysisData(data, cb, "sid", "eid")


def test_coding_coverage_counts_the_studies_with_a_value():
    ad = _sparse(2)
    cov = coding_coverage(ad, "new")
    # by hand: S0 and S1 have a value, S2..S9 do not
    assert (cov.n_studies, cov.n_coded) == (10, 2) and cov.share == 0.2
    assert cov.uncoded == tuple(f"S{j}" for j in range(2, 10))
    assert coding_coverage(ad, "a").share == 1.0 and coding_coverage(ad, "a").uncoded == ()


def test_variable_coded_for_2_of_10_studies_is_left_out_of_the_multiple_model_with_a_flag():
    ad = _sparse(2)
    mm = multiple_moderator_model(ad, component_variables(ad.codebook), SPEC, min_coverage=0.5)
    # the model keeps its 10 studies and 25 effect sizes (5 studies with 2 rows, 5 with 3)
    assert mm.variables == ("a", "b") and mm.n_studies == 10 and mm.k == 25
    assert mm.k_dropped == 0 and mm.lost == ()
    assert list(mm.left_out) == ["new"] and mm.left_out["new"].n_coded == 2
    flag = next(f for f in mm.flags if "new" in f)
    assert "New component" in flag and "coded for 2 of 10 studies (20%" in flag
    assert "min_coverage 50%" in flag
    assert "would lose 8 studies (S2, S3, S4, S5, S6, S7, S8, S9)" in flag
    assert mm.to_dict()["left_out"]["new"]["uncoded"] == [f"S{j}" for j in range(2, 10)]
    # without the rule the complete cases are the 2 coded studies, and the flag names the 8 lost
    all_in = multiple_moderator_model(ad, ["a", "b", "new"], SPEC, min_coverage=0.0)
    assert all_in.n_studies == 2 and all_in.studies_dropped == 8
    assert any("8 whole studies: S2, S3, S4, S5, S6, S7, S8, S9" in f for f in all_in.flags)


def test_variable_coded_for_half_of_the_studies_stays_in_the_multiple_model():
    ad = _sparse(5)  # 5 of 10 = the default share 0.5: kept
    mm = multiple_moderator_model(ad, ["a", "b", "new"], SPEC)
    assert mm.variables == ("a", "b", "new") and mm.left_out == {}
    assert mm.n_studies == 5 and mm.studies_dropped == 5
    assert any("5 whole studies: S5, S6, S7, S8, S9" in f for f in mm.flags)


def test_new_uncoded_variable_leaves_the_multiple_model_unchanged():
    ad = _sparse(0)
    with_new = multiple_moderator_model(ad, ["a", "b", "new"], SPEC)
    without = multiple_moderator_model(ad, ["a", "b"], SPEC)
    assert with_new.variables == without.variables == ("a", "b")
    assert with_new.k == without.k == 25 and with_new.n_studies == 10
    close([r.estimate for r in with_new.rows], [r.estimate for r in without.rows], 1e-12)
    flag = "new (New component) left out: coded for 0 of 10 studies"
    assert any(flag in f for f in with_new.flags)
    # every listed variable too sparse: not fitted, and said so
    none = multiple_moderator_model(ad, ["new"], SPEC)
    assert none.applicable and none.rows == () and "min_coverage" in none.reason
    assert any("not fitted" in f for f in none.flags)


# --------------------------------------------------------------------------- the real pipeline
@pytest.fixture(scope="module")
def assink_run(tmp_path_factory):
    """assink2016 through the rule, with min_studies = 1 so that every category is tested
    (the shipped config's 3 leaves pubstatus untested: its unpublished category has 2 studies),
    and pubstatus listed for the multiple-moderator model (assink2016 has no components, so
    there is no default one)."""
    work = copy_project(tmp_path_factory.mktemp("mod_assink"))
    cfg_path = work / "config" / "assink2016.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.setdefault("moderators", {})["min_studies"] = 1
    cfg["moderators"]["multiple"] = ["pubstatus"]
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = "results/assink2016"
    run_snakemake(work, f"{res}/tables/moderators.csv", "--configfile", str(cfg_path), check=True)
    return work / res


@pytest.mark.pipeline
def test_rule_outputs_match_metafor_on_assink2016(assink_run):
    tests = pd.read_csv(assink_run / "tables" / "moderator_tests.csv").set_index("Moderator")
    dt, pub = _extra("deltype_test"), _public("ml3_mods_pubstatus_reml_t")
    close(tests.loc["deltype", ["F", "df1", "df2", "p"]], [dt["qm"], *dt["qmdf"], dt["qmp"]], ITER)
    htz = _extra("deltype_test_htz")
    close(
        tests.loc["deltype", ["CR2 F (HTZ)", "CR2 df2", "CR2 p"]],
        [htz["fstat"], htz["df_denom"], htz["p_val"]],
        ITER,
    )
    close(tests.loc["pubstatus", ["F", "p"]], [pub["qm"], pub["qmp"]], ITER)
    close(tests.loc["year", ["F", "p"]], [_extra("year")["qm"], _extra("year")["qmp"]], ITER)
    close(tests.loc["deltype", "Between-study variance (sigma2 Study)"], dt["sigma2"][0], VC)
    close(tests.loc["deltype", "R2 (%)"], dt["r2"], VC)
    assert "p (Holm)" in tests.columns and "CR2 p (Holm)" in tests.columns

    mods = pd.read_csv(assink_run / "tables" / "moderators.csv", dtype={"Category code": str})
    d = (
        mods[mods.Moderator == "deltype"]
        .set_index("Category code")
        .loc[["general", "overt", "covert"]]
    )
    ref = _extra("deltype_means")
    close(d["Estimate"], ref["b"], ITER)
    close(d[["95% CI lower", "95% CI upper"]].T, [ref["ci_lb"], ref["ci_ub"]], ITER)
    assert d["Category"].tolist() == [
        "General delinquent behaviour",
        "Overt delinquent behaviour",
        "Covert delinquent behaviour",
    ]
    assert d["Studies"].tolist() == [17, 3, 1]

    # the multiple-moderator model listed in the config is pubstatus alone: the public model
    mm = pd.read_csv(assink_run / "tables" / "multiple_moderators.csv")
    coef = mm[mm.Row == "coefficient"]
    cr2 = _public("ml3_mods_pubstatus_reml_cr2")["coef_test"]
    close(coef["Estimate"], pub["b"], ITER)
    close(coef["SE"], pub["se"], ITER)
    close(coef["p"], pub["pval"], ITER)
    close(coef["CR2 SE"], cr2["se"], ITER)
    close(coef["CR2 p"], cr2["p_satt"], ITER)

    out = json.loads((assink_run / "models" / "moderators.json").read_text())
    by_name = {m["name"]: m for m in out["single"]["moderators"]}
    close(by_name["deltype"]["test"]["stat"], dt["qm"], ITER)
    assert (assink_run / "flags" / "moderators.txt").exists()


@pytest.fixture(scope="module")
def example_results(example_run):
    """results/example of the session's shared run on the default config."""
    return example_run.results


@pytest.mark.pipeline
def test_true_component_effects_recovered_within_their_cis_example_data(example_results):
    truth = yaml.safe_load((REPO / "data" / "raw" / "truth.yaml").read_text())
    effects = {c: b for c, b in truth["model"]["components"].items() if b != 0}
    assert effects  # joint_effort 0.25, positive_content_view 0.2, parent_meetings 0.2
    mm = pd.read_csv(example_results / "tables" / "multiple_moderators.csv")
    coef = mm[mm.Row == "coefficient"].set_index("Variable")
    for name, beta in effects.items():
        lo, hi = coef.loc[name, "95% CI lower"], coef.loc[name, "95% CI upper"]
        assert lo < beta < hi, (name, beta, lo, hi)
    omni = mm[mm.Row == "omnibus test"].iloc[0]
    # by hand from data/raw/studies.csv: co_production is -99 in S02 (3 rows), peer_support in
    # S28 (3 rows)
    assert omni["k left out"] == 6 and "co_production" in omni["Note"]
    assert coef.loc[list(effects), "VIF (GLS-weighted)"].gt(1).all()


@pytest.mark.pipeline
def test_example_tables_have_one_row_per_category_and_per_moderator(example_results):
    cb = load_codebook(REPO / "data" / "codebook.yaml")
    tests = pd.read_csv(example_results / "tables" / "moderator_tests.csv")
    assert tests["Moderator"].tolist() == [v.name for v in cb.moderators()]
    mods = pd.read_csv(example_results / "tables" / "moderators.csv", dtype={"Category code": str})
    design = mods[mods.Moderator == "design"]
    assert design["Category code"].tolist() == ["rct", "quasi", "prepost"]
    tg = mods[mods.Moderator == "target_group"].set_index("Category code")
    assert tg.loc["migrant", "In test"] == "no"  # 2 studies < min_studies 3
    flags = (example_results / "flags" / "moderators.txt").read_text()
    assert "migrant" in flags


def _binary(name: str, label: str, role: str) -> dict:
    return {
        "name": name,
        "table": "studies",
        "type": "binary",
        "levels": {0: "no", 1: "yes"},
        "missing": [-99],
        "required": False,
        "role": role,
        "label": label,
        "description": f"1 if the programme includes {label.lower()}.",
    }


@pytest.mark.pipeline
def test_variables_added_to_the_codebook_appear_by_their_role_without_code_change(tmp_path):
    """A coded moderator, a coded component and a new component not yet coded for any study."""
    work = copy_project(tmp_path)
    cb_path = work / "data" / "codebook.yaml"
    cb = yaml.safe_load(cb_path.read_text())
    cb["variables"] += [
        _binary("home_visits", "Home visits", "component"),
        _binary("online", "Online delivery", "moderator"),
        _binary("childcare", "Childcare", "component"),
    ]
    cb_path.write_text(yaml.safe_dump(cb, sort_keys=False))
    studies = work / "data" / "raw" / "studies.csv"
    df = pd.read_csv(studies, dtype=str, keep_default_na=False)
    df["home_visits"] = ["1" if i % 3 == 0 else "0" for i in range(len(df))]
    df["online"] = ["1" if i % 2 == 0 else "0" for i in range(len(df))]
    df["childcare"] = "-99"  # not coded yet
    df.to_csv(studies, index=False)
    targets = ["results/example/tables/moderators.csv", "results/example/models/components.json"]
    skip_extras(work)
    run_snakemake(work, *targets, check=True)
    res = work / "results" / "example" / "tables"
    mods = pd.read_csv(res / "moderators.csv", dtype={"Category code": str})
    hv = mods[mods.Moderator == "home_visits"]
    assert hv["Category"].tolist() == ["no", "yes"]
    assert hv["Moderator label"].unique().tolist() == ["Home visits"]
    assert hv["Studies"].tolist() == [20, 10]  # rows 1, 4, ..., 28 of 30 studies have 1
    tests = pd.read_csv(res / "moderator_tests.csv").set_index("Moderator")
    assert np.isfinite(tests.loc["home_visits", "F"])
    mm = pd.read_csv(res / "multiple_moderators.csv")
    assert "home_visits" in set(mm["Variable"])  # role component: in the multiple model
    assert "online" not in set(mm["Variable"])  # a binary study moderator, not a component
    assert "online" in set(tests.index)
    # childcare, coded for no study, is left out of the joint models with a flag naming it: the
    # multiple model keeps its 28 complete studies (S02 and S28 miss co_production, peer_support)
    out = json.loads((work / "results" / "example" / "models" / "moderators.json").read_text())
    multiple = out["multiple"]
    assert multiple["n_studies"] == 28 and "childcare" not in multiple["variables"]
    assert multiple["left_out"]["childcare"]["n_coded"] == 0
    flags = (work / "results" / "example" / "flags" / "moderators.txt").read_text()
    line = next(ln for ln in flags.splitlines() if "childcare (Childcare) left out" in ln)
    assert "coded for 0 of 30 studies (0%" in line and "would lose 30 studies (S01, S02" in line
    components = json.loads(
        (work / "results" / "example" / "models" / "components.json").read_text()
    )
    assert "childcare" in components["components"] and "online" not in components["components"]
    assert "childcare" not in components["profiles"]["components"]
    assert "home_visits" in components["profiles"]["components"]
    assert sum(p["n_programmes"] for p in components["profiles"]["profiles"]) == 28
    flags = (work / "results" / "example" / "flags" / "components.txt").read_text()
    assert "component profiles: childcare (Childcare) left out" in flags
