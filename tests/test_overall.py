"""The overall effect (rule ``overall`` and :mod:`intervention_meta.analyses.overall`).

Expected numbers come from R 4.2.2 / metafor 3.8-1 / clubSandwich 0.5.8:

* ``tests/reference/assink2016.json`` (``cases``): ``ml3_reml_t``, ``ml3_lrt_level3_between``,
  ``ml3_lrt_level2_within``, ``ml3_i2_reml``, ``ml3_reml_cr2``, ``ml3_predict_reml``, ``ml3_reml``,
  ``uni_fe``, ``uni_reml`` (calls in tests/reference/README.md);
* ``tests/reference/extra/overall_assink2016.json`` (made by ``extra/overall_assink2016.R``): the
  test="t" versions the pipeline reports (``ml3_reml_t_predict``, ``uni_reml_t``, ``uni_fe_t``)
  and the per-domain fits by ``deltype`` (``deltype_<level>_*``).

Tolerances: 1e-6 relative for iterated quantities, 1e-5 for variance components, 1e-10 for
closed forms (FE); an absolute 1e-12 where R's optimum sits at the boundary (R 3e-13, ours 0).
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pipeline_helpers import ROOT, copy_project, effect_sizes_in_process, run_snakemake

from intervention_meta.analyses.analysis_model import ModelSpec, load_analysis_data
from intervention_meta.analyses.overall import (
    domain_flags,
    domain_levels,
    overall_analysis,
    run_overall,
)
from intervention_meta.data.codebook import load_codebook

REF = ROOT / "tests" / "reference"
ITER, VAR, CLOSED = 1e-6, 1e-5, 1e-10
BOUNDARY = 1e-12

ASSINK_CB = ROOT / "data" / "examples" / "assink2016" / "codebook.yaml"
EXAMPLE_CB = ROOT / "data" / "codebook.yaml"
STUDY, ES = "study", "id"  # the assink2016 codebook keys (R: study/esid, the same nesting)


@cache
def _ref(case: str) -> dict:
    return json.loads((REF / "assink2016.json").read_text())["cases"][case]["results"]


@cache
def _extra(case: str) -> dict:
    data = json.loads((REF / "extra" / "overall_assink2016.json").read_text())
    return data["cases"][case]["results"]


def _close(actual, expected, rtol: float, atol: float = 0.0, what: str = "") -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float),
        np.asarray(expected, dtype=float),
        rtol=rtol,
        atol=atol,
        err_msg=what,
    )


# ------------------------------------------------------------------------------------ fixtures
DELTYPE_DOMAINS = "models:\n  per_domain: true\n  domain_variable: deltype\n"


@pytest.fixture(scope="module")
def assink_domains_run(tmp_path_factory) -> Path:
    """One pipeline run on config/assink2016.yaml (+ per-domain analyses by deltype)."""
    work = copy_project(tmp_path_factory.mktemp("overall_assink"))
    (work / "config" / "deltype_domains.yaml").write_text(DELTYPE_DOMAINS)
    run_snakemake(
        work,
        "results/assink2016/flags/overall.txt",
        "results/assink2016/tables/overall.csv",
        "--configfile",
        "config/assink2016.yaml",
        "config/deltype_domains.yaml",
        check=True,
    )
    return work / "results" / "assink2016"


@pytest.fixture(scope="module")
def assink(assink_domains_run) -> Path:
    return assink_domains_run


@pytest.fixture(scope="module")
def assink_json(assink) -> dict:
    return json.loads((assink / "models" / "overall.json").read_text())


@pytest.fixture(scope="module")
def example(example_run) -> Path:
    """The shared run on the default config (per-domain analyses by outcome_domain)."""
    return example_run.results


@pytest.fixture(scope="module")
def assink_data(tmp_path_factory):
    """The assink2016 effect sizes made by the pipeline's own steps, without Snakemake."""
    folder = tmp_path_factory.mktemp("assink_effect_sizes")
    return load_analysis_data(effect_sizes_in_process("config/assink2016.yaml", folder), ASSINK_CB)


# ------------------------------------------------------------------------------------ checks
def _check_model(d: dict, r: dict, test: str = "t") -> None:
    """``models/overall.json``'s analysis model against a metafor rma.mv result ``r``."""
    m = d["model"]
    for key in ("b", "se", "pval", "ci_lb", "ci_ub"):
        _close(m[key], r[key], ITER, what=key)
    _close(m["tval" if test == "t" else "zval"], r["tval" if test == "t" else "zval"], ITER)
    _close([d["sigma2"][STUDY], d["sigma2"][ES]], r["sigma2"], VAR, atol=BOUNDARY, what="sigma2")
    _close(m["QE"], r["qe"], ITER, what="QE")
    _close(m["QEp"], r["qep"], ITER, what="QEp")
    for ours, theirs in (("logLik", "loglik"), ("AIC", "aic"), ("BIC", "bic"), ("AICc", "aicc")):
        _close(m[ours], r["fit_stats"][theirs], ITER, what=ours)
    est = d["estimate"]
    _close(est["estimate"], r["b"][0], ITER)
    _close(est["ci_lb"], r["ci_lb"][0], ITER)
    if test == "t":
        assert est["df"] == r["dfs"][0] == d["analysis"]["k"] - 1


def _check_lrt(lt: dict, r: dict) -> None:
    """One level's LRT against metafor's anova(full, reduced)."""
    _close(lt["lrt"], r["lrt"], ITER, atol=BOUNDARY, what="lrt")
    _close(lt["pval"], r["pval"], ITER, atol=1e-300, what="pval")
    assert lt["df"] == r["df"]
    assert lt["parms_full"] == r["parms_full"] and lt["parms_reduced"] == r["parms_reduced"]
    _close(lt["loglik_reduced"], r["fit_stats_reduced"]["loglik"], ITER, what="loglik_reduced")
    reduced = [lt["sigma2_reduced"][STUDY], lt["sigma2_reduced"][ES]]
    _close(reduced, r["sigma2_reduced"], VAR, atol=BOUNDARY, what="sigma2_reduced")
    _close(lt["b_reduced"], r["b_reduced"], ITER, what="b_reduced")
    # the boundary-corrected p: half the chi-square(1) p (Self & Liang 1987)
    if lt["lrt"] > 0:
        _close(lt["pval_halved"], r["pval"] / 2, ITER, atol=1e-300)


def _check_i2(vd: dict, r: dict, atol: float = 0.0) -> None:
    _close(vd["typical_v"], r["typical_v"], CLOSED, what="typical_v")
    _close(vd["i2_total"], r["i2_total"], VAR, atol=atol, what="i2_total")
    _close(vd["i2"][STUDY], r["i2_level3_between"], VAR, atol=atol, what="i2 between")
    _close(vd["i2"][ES], r["i2_level2_within"], VAR, atol=atol, what="i2 within")
    _close(vd["i2_sampling"], r["i2_level1_sampling"], VAR, atol=atol, what="i2 sampling")


def _check_cr2(rob: dict, r: dict) -> None:
    ct, ci = r["coef_test"], r["conf_int"]
    _close(rob["beta"], ct["beta"][0], ITER)
    _close(rob["se"], ct["se"][0], ITER)
    _close(rob["tstat"], ct["tstat"][0], ITER)
    _close(rob["df_satt"], ct["df_satt"][0], ITER)
    _close(rob["p_satt"], ct["p_satt"][0], ITER)
    _close(rob["ci_lower"], ci["ci_l"][0], ITER)
    _close(rob["ci_upper"], ci["ci_u"][0], ITER)


def _check_uni(fit: dict, r: dict, rtol: float, with_ci: bool) -> None:
    """A one-level comparison fit against metafor rma(); the CI only if the test matches."""
    _close(fit["b"], r["b"], rtol, what="b")
    _close(fit["se"], r["se"], rtol, what="se")
    _close(fit["tau2"], r["tau2"], VAR if rtol == ITER else CLOSED, atol=BOUNDARY, what="tau2")
    _close(fit["logLik"], r["fit_stats"]["loglik"], rtol, what="logLik")
    _close(fit["AIC"], r["fit_stats"]["aic"], rtol, what="AIC")
    _close(fit["QE"], r["qe"], CLOSED, what="QE")
    if with_ci:
        _close(fit["ci_lb"], r["ci_lb"], rtol, what="ci_lb")
        _close(fit["ci_ub"], r["ci_ub"], rtol, what="ci_ub")
        _close(fit["pval"], r["pval"], rtol, what="pval")


# ---------------------------------------------------------------- assink2016, through the rule
def test_rule_overall_model_matches_metafor_three_level_reml_t_assink2016(assink_json):
    d = assink_json
    assert d["estimable"] and d["analysis"]["study_key"] == STUDY and d["analysis"]["es_key"] == ES
    assert d["analysis"]["k"] == 100 and d["analysis"]["n_studies"] == 17
    _check_model(d, _ref("ml3_reml_t"))


def test_rule_level_lrts_match_metafor_anova_assink2016(assink_json):
    tests = assink_json["level_tests"]
    assert set(tests) == {STUDY, ES}
    _check_lrt(tests[STUDY], _ref("ml3_lrt_level3_between"))
    _check_lrt(tests[ES], _ref("ml3_lrt_level2_within"))


def test_rule_variance_distribution_matches_cheung_i2_assink2016(assink, assink_json):
    _check_i2(assink_json["variance_distribution"], _ref("ml3_i2_reml"))
    table = pd.read_csv(assink / "tables" / "variance_distribution.csv")
    shares = table.set_index("Level")["% of total variance"]
    _close(shares[["1", "2", "3"]].sum(), 100.0, CLOSED)
    _close(shares["3"], _ref("ml3_i2_reml")["i2_level3_between"], VAR)


def test_rule_cr2_result_matches_clubsandwich_assink2016(assink_json):
    rob = assink_json["robust"]
    assert rob["clusters"] == 17 and rob["type"] == "CR2"
    _check_cr2(rob, _ref("ml3_reml_cr2"))


def test_rule_prediction_interval_matches_metafor_predict_assink2016(assink_json):
    est = assink_json["estimate"]
    z = _ref("ml3_predict_reml")  # test="z": same prediction and SE
    _close(est["estimate"], z["pred"], ITER)
    _close(est["se"], z["se"], ITER)
    t = _extra("ml3_reml_t_predict")  # test="t", as the pipeline: t(99) critical values
    for key in ("ci_lb", "ci_ub", "pi_lb", "pi_ub"):
        _close(est[key], t[key], ITER, what=key)


def test_rule_comparison_fits_match_metafor_uni_fe_and_uni_reml_assink2016(assink, assink_json):
    comp = assink_json["comparison"]
    assert set(comp) == {"three_level", "random_effects", "fixed_effect"}
    _check_uni(comp["random_effects"], _ref("uni_reml"), ITER, with_ci=False)
    _check_uni(comp["random_effects"], _extra("uni_reml_t"), ITER, with_ci=True)
    _check_uni(comp["fixed_effect"], _ref("uni_fe"), CLOSED, with_ci=False)
    _check_uni(comp["fixed_effect"], _extra("uni_fe_t"), CLOSED, with_ci=True)
    _check_model({**assink_json, "model": comp["three_level"]}, _ref("ml3_reml_t"))
    table = pd.read_csv(assink / "tables" / "overall_comparison.csv")
    assert table["Analysis model"].fillna("").tolist() == ["yes", "", ""]
    _close(
        table["Mean effect"],
        [_ref("ml3_reml_t")["b"][0], _ref("uni_reml")["b"][0], _ref("uni_fe")["b"][0]],
        ITER,
    )
    _close(table["logLik"].iloc[2], _ref("uni_fe")["fit_stats"]["loglik"], CLOSED)
    assert table["Likelihood"].tolist() == ["REML", "REML", "ML"]


def test_rule_overall_table_is_readable_with_codebook_labels_assink2016(assink):
    table = pd.read_csv(assink / "tables" / "overall.csv")
    results = table["Result"].tolist()
    assert results[:2] == ["Mean effect (model-based)", "Mean effect (CR2 cluster-robust)"]
    assert "Variance between studies (Study): sigma2[study]" in results
    assert "Variance within studies (Effect size): sigma2[id]" in results
    assert results[-1] == "Heterogeneity: Q test"
    for col in ("95% CI lower", "95% PI upper", "p (halved, boundary)", "k (effect sizes)"):
        assert col in table.columns
    row = table.set_index("Result").loc["Mean effect (model-based)"]
    _close(row["Estimate"], _ref("ml3_reml_t")["b"][0], ITER)  # CSV keeps full precision
    _close(row["95% PI lower"], _extra("ml3_reml_t_predict")["pi_lb"], ITER)


def test_rule_flags_of_assink2016_collect_the_domain_flags(assink):
    lines = (assink / "flags" / "overall.txt").read_text().splitlines()
    # overt has 3 studies (CR2 df ~ 2) and covert one study (tau fixed at 0, no CR2)
    assert any(
        ln.startswith("[overall:deltype=overt]") and "Satterthwaite df" in ln for ln in lines
    )
    covert = [ln for ln in lines if ln.startswith("[overall:deltype=covert]")]
    assert any("only one study" in ln for ln in covert)
    assert any("CR2" in ln for ln in covert)
    assert not any(ln.startswith("[overall]") for ln in lines)  # the pooled model is fine


# ------------------------------------------------------------------ per domain (deltype, R)
@pytest.mark.parametrize("level", ["general", "overt"])
def test_rule_per_domain_fits_match_metafor_on_the_subset(assink, level):
    d = json.loads((assink / "domains" / level / "models" / "overall.json").read_text())
    assert d["analysis"]["subset"] == {"deltype": level}
    tag = f"deltype_{level}"
    _check_model(d, _extra(f"{tag}_ml3_reml_t"))
    est, pred = d["estimate"], _extra(f"{tag}_predict")
    for key in ("pi_lb", "pi_ub"):
        _close(est[key], pred[key], ITER, what=key)
    # the overt optimum has sigma2[id] on the boundary (R 3e-13, 1.4e-10 %): 1e-9 on the % scale
    _check_i2(d["variance_distribution"], _extra(f"{tag}_i2"), atol=1e-9)
    _check_cr2(d["robust"], _extra(f"{tag}_cr2"))
    _check_lrt(d["level_tests"][STUDY], _extra(f"{tag}_lrt_level3_between"))
    _check_lrt(d["level_tests"][ES], _extra(f"{tag}_lrt_level2_within"))


def test_rule_domain_with_one_study_fixes_the_between_study_variance_as_metafor(assink):
    d = json.loads((assink / "domains" / "covert" / "models" / "overall.json").read_text())
    assert d["estimable"] and d["analysis"]["n_studies"] == 1
    assert d["analysis"]["fixed_levels"] == [STUDY]
    _check_model(d, _extra("deltype_covert_ml3_reml_t"))  # metafor fixes sigma2[study] at 0
    _check_i2(d["variance_distribution"], _extra("deltype_covert_i2"))
    _check_lrt(d["level_tests"][ES], _extra("deltype_covert_lrt_level2_within"))
    assert STUDY not in d["level_tests"] and d["robust"] is None
    assert any("only one study" in f for f in d["flags"])
    table = pd.read_csv(assink / "domains" / "covert" / "tables" / "overall.csv")
    note = table.set_index("Result").loc["Variance between studies (Study): sigma2[study]", "Note"]
    assert "fixed at 0" in note


# ---------------------------------------------------------- assink2016, the package function
def test_package_function_matches_the_same_metafor_references(assink_data):
    res = overall_analysis(assink_data, ModelSpec())
    d = res.to_dict()
    _check_model(d, _ref("ml3_reml_t"))
    _check_lrt(d["level_tests"][STUDY], _ref("ml3_lrt_level3_between"))
    _check_lrt(d["level_tests"][ES], _ref("ml3_lrt_level2_within"))
    _check_i2(d["variance_distribution"], _ref("ml3_i2_reml"))
    _check_cr2(d["robust"], _ref("ml3_reml_cr2"))
    _check_uni(d["comparison"]["random_effects"], _ref("uni_reml"), ITER, with_ci=False)
    _check_uni(d["comparison"]["fixed_effect"], _ref("uni_fe"), CLOSED, with_ci=False)
    assert res.flags == ()


def test_package_function_with_z_tests_matches_metafor_default_rma_mv(assink_data):
    res = overall_analysis(assink_data, ModelSpec(test="z"))
    d = res.to_dict()
    _check_model(d, _ref("ml3_reml"), test="z")
    pred = _ref("ml3_predict_reml")
    for ours, theirs in (
        ("estimate", "pred"),
        ("se", "se"),
        ("ci_lb", "ci_lb"),
        ("pi_lb", "pi_lb"),
        ("pi_ub", "pi_ub"),
    ):
        _close(d["estimate"][ours], pred[theirs], ITER, what=ours)
    _check_uni(d["comparison"]["random_effects"], _ref("uni_reml"), ITER, with_ci=True)
    _check_uni(d["comparison"]["fixed_effect"], _ref("uni_fe"), CLOSED, with_ci=True)


def test_default_levels_keep_the_three_level_keys_and_values(assink_data):
    """Without models.levels (or with the study and effect keys named) the three-level model
    and its table keys are unchanged; the sigma2 columns are R's ``ml3_reml_t`` values."""
    res = overall_analysis(assink_data, ModelSpec())
    assert assink_data.random == [STUDY, ES] and res.robust["cluster"] == STUDY
    assert res.describe().startswith("three-level model (effect sizes nested in studies), REML")
    table = res.comparison_table()
    assert [k for k in table.columns if k.startswith("sigma2")] == [
        "sigma2_between",
        "sigma2_within",
    ]
    assert table.columns["sigma2_between"] == f"sigma2[{STUDY}] (between studies)"
    assert table.columns["sigma2_within"] == f"sigma2[{ES}] (within studies)"
    row = table.rows[0]
    assert (
        row["structure"] == "three_level"
        and row["model"] == "Three-level model (Effect size in Study)"
    )
    _close(
        [row["sigma2_between"], row["sigma2_within"]], _ref("ml3_reml_t")["sigma2"], VAR, BOUNDARY
    )
    assert res.variance_frame()["Level"].tolist() == ["1", "2", "3", "2 + 3"]
    named = overall_analysis(
        dataclasses.replace(assink_data, levels=(STUDY, ES)),
        ModelSpec.from_config({"structure": "multilevel", "levels": [STUDY, ES]}),
    )
    assert named.model.sigma2 == res.model.sigma2 and named.model.b[0] == res.model.b[0]
    assert named.to_frame().equals(res.to_frame())


def test_two_level_structure_reports_tau2_and_no_level_tests(assink_data):
    res = overall_analysis(assink_data, ModelSpec(structure="random_effects"))
    _close(res.model.tau2, _ref("uni_reml")["tau2"], VAR)
    assert res.model.level_tests == ()
    table = res.to_frame()
    assert "Variance between effect sizes: tau2" in table["Result"].tolist()
    vd = res.variance_frame().set_index("Level")["% of total variance"]
    _close(vd["2"], _ref("uni_reml")["i2"], VAR)  # metafor's I2 with the typical variance
    # CR2 clusters by study also for the one-level model (17 clusters, not 100 rows)
    assert res.robust["clusters"] == 17


def test_fixed_effect_structure_matches_metafor_fe(assink_data):
    res = overall_analysis(assink_data, ModelSpec(structure="fixed_effect", test="z"))
    _check_uni(res.model.to_dict(), _ref("uni_fe"), CLOSED, with_ci=True)
    assert res.to_dict()["comparison"]["fixed_effect"]["method"] == "FE"


def test_too_few_effect_sizes_give_a_flagged_result_file_not_a_crash(assink, tmp_path):
    # study 4 has a single effect size: k = 1 cannot support any model with an intercept
    out = {name: tmp_path / f"{name}" for name in ("table", "json", "flags", "comp", "var")}
    res = run_overall(
        assink / "effect_sizes.csv",
        ASSINK_CB,
        {},
        table=out["table"],
        json_path=out["json"],
        flags_path=out["flags"],
        comparison=out["comp"],
        variance=out["var"],
        subset={STUDY: 4},
    )
    assert not res.estimable and res.k == 1
    d = json.loads(out["json"].read_text())
    assert d["estimable"] is False and "too few effect sizes" in d["reason"]
    table = pd.read_csv(out["table"])
    assert len(table) == 1 and table["Note"].iloc[0].startswith("not estimable")
    assert "not estimable" in out["flags"].read_text()
    assert out["comp"].exists() and out["var"].exists()


def test_subset_without_effect_sizes_is_flagged(assink_data):
    empty = assink_data.__class__(
        data=assink_data.data.iloc[:0],
        codebook=assink_data.codebook,
        study=STUDY,
        es=ES,
        subset={"deltype": "none"},
    )
    res = overall_analysis(empty, ModelSpec())
    assert res.model is None and res.reason == "no effect sizes" and res.flags


# ------------------------------------------------------------------------- domain selection
def test_domain_levels_are_the_codebook_levels_allowed_by_the_inclusion_criteria():
    cb = load_codebook(EXAMPLE_CB)
    every = list(cb["outcome_domain"].levels)
    assert domain_levels(cb, "outcome_domain") == every
    allowed = {"outcome_domain": ["social_cohesion", "parenting_stress"]}
    assert domain_levels(cb, "outcome_domain", allowed) == ["parenting_stress", "social_cohesion"]
    assert domain_levels(cb, "outcome_domain", {"outcome_domain": {"min": 0}}) == every
    assert domain_levels(cb, "no_such_variable") == []
    assert domain_levels(cb, "year") == []  # a number has no levels


def test_missing_domain_variable_raises_one_flag_line():
    cb = load_codebook(ASSINK_CB)
    lines = domain_flags(cb, {"per_domain": True, "domain_variable": "outcome_domain"})
    assert len(lines) == 1 and "no variable 'outcome_domain'" in lines[0]
    assert domain_flags(cb, {"per_domain": False, "domain_variable": "outcome_domain"}) == []
    assert domain_flags(cb, {"per_domain": True, "domain_variable": "deltype"}) == []
    assert (
        len(
            domain_flags(
                cb, {"per_domain": True, "domain_variable": "deltype"}, {"deltype": ["none"]}
            )
        )
        == 1
    )


@pytest.mark.pipeline
def test_missing_domain_variable_schedules_no_domain_jobs(tmp_path):
    work = copy_project(tmp_path)
    (work / "config" / "domains.yaml").write_text(
        "models:\n  per_domain: true\n  domain_variable: outcome_domain\n"
    )
    proc = run_snakemake(
        work,
        "-n",
        "results/assink2016/flags/overall.txt",
        "--configfile",
        "config/assink2016.yaml",
        "config/domains.yaml",
        check=True,
    )
    assert "overall_flags" in proc.stdout and "overall_domain" not in proc.stdout


# ------------------------------------------------------------------ the default example data
def test_example_runs_one_domain_analysis_per_allowed_outcome_domain(example):
    cb = load_codebook(EXAMPLE_CB)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    expected = domain_levels(cb, "outcome_domain", config["inclusion"])
    assert sorted(p.name for p in (example / "domains").iterdir()) == sorted(expected)
    effects = pd.read_csv(example / "effect_sizes.csv")
    for level in expected:
        d = json.loads((example / "domains" / level / "models" / "overall.json").read_text())
        sub = effects[effects["outcome_domain"] == level]
        assert d["analysis"]["k"] == len(sub)
        assert d["analysis"]["n_studies"] == sub["study_id"].nunique()
        assert set(d["sigma2"]) == {"study_id", "es_id"}  # named by the codebook keys
        for name in ("overall.csv", "overall_comparison.csv", "variance_distribution.csv"):
            assert (example / "domains" / level / "tables" / name).exists()
    pooled = json.loads((example / "models" / "overall.json").read_text())
    assert pooled["analysis"]["k"] == len(effects) and pooled["estimable"]
    flags = (example / "flags" / "overall.txt").read_text().splitlines()
    for level in expected:
        domain = (example / "domains" / level / "flags" / "overall.txt").read_text().splitlines()
        assert set(domain) <= set(flags)
