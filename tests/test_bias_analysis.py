"""The publication-bias step (rule ``bias`` and :mod:`intervention_meta.analyses.bias`).

The methods themselves are tested in test_bias.py; here the step: that the rule runs them on the
right data with the config's settings and writes what it computed. Expected numbers (R 4.2.2,
metafor 3.8-1, clubSandwich 0.5.8):

* ``tests/reference/extra/bias_reference.json`` (``datasets.assink2016.cases``):
  ``ml3_egger_sei_reml_t`` (three-level Egger-type test) and ``aggregate_rho06`` (study averages);
* ``tests/reference/extra/bias_analysis_assink2016.json`` (``extra/bias_analysis_assink2016.R``):
  the univariate methods on those study averages (``agg_*``) and the CR2 version of the
  three-level Egger-type test;
* ``tests/reference/hackshaw1998.json``: ``trimfill_reml``, ``regtest_lm_sei``, ``ranktest``,
  ``fsn_rosenthal``, ``fsn_orwin`` (one effect size per study, so the study averages are the data).

Tolerances: 1e-6 relative for iterated quantities, 1e-5 for variance components, 1e-10 for
closed forms (aggregation, weighted least squares, fail-safe N).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import ROOT

from intervention_meta.analyses.analysis_model import AnalysisData, ModelSpec, load_analysis_data
from intervention_meta.analyses.bias import BiasOptions, bias_analysis
from intervention_meta.data.codebook import load_codebook

REF = ROOT / "tests" / "reference"
ITER, VAR, CLOSED = 1e-6, 1e-5, 1e-10
ASSINK_CB = ROOT / "data" / "examples" / "assink2016" / "codebook.yaml"
OUTPUTS = ("tables/bias.csv", "tables/trimfill_data.csv", "tables/funnel_data.csv")


@cache
def _bias_ref(case: str) -> dict:
    data = json.loads((REF / "extra" / "bias_reference.json").read_text())
    return data["datasets"]["assink2016"]["cases"][case]["results"]


@cache
def _ours(case: str) -> dict:
    data = json.loads((REF / "extra" / "bias_analysis_assink2016.json").read_text())
    return data["cases"][case]["results"]


@cache
def _hackshaw(case: str) -> dict:
    return json.loads((REF / "hackshaw1998.json").read_text())["cases"][case]["results"]


def _close(actual, expected, rtol: float, atol: float = 0.0, what: str = "") -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float),
        np.asarray(expected, dtype=float),
        rtol=rtol,
        atol=atol,
        err_msg=what,
    )


@pytest.fixture(scope="module")
def assink(assink_run) -> Path:
    """results/assink2016 of the session's shared run (default bias settings)."""
    for name in OUTPUTS:
        assert (assink_run.results / name).is_file(), name
    return assink_run.results


@pytest.fixture(scope="module")
def assink_json(assink) -> dict:
    return json.loads((assink / "models" / "bias.json").read_text())


def _check_regtest(ours: dict, r: dict, rtol: float) -> None:
    """A RegTest dict against metafor's regtest() result."""
    stat = "tval" if "tval" in r else "zval"
    _close(ours["statistic"], r[stat], rtol, what=stat)
    _close(ours["pval"], r["pval"], rtol, what="pval")
    if "dfs" in r:
        assert ours["dfs"] == r["dfs"]
    for key in ("limit_estimate", "limit_ci_lb", "limit_ci_ub"):
        _close(ours[key], r[key], rtol, what=key)


# ------------------------------------------------------------------ through the rule (assink)
def test_rule_three_level_egger_test_matches_metafor_rma_mv(assink_json):
    e = assink_json["egger_multilevel"]
    r = _bias_ref("ml3_egger_sei_reml_t")  # rma.mv(yi, vi, mods = ~ sqrt(vi), ..., test="t")
    assert e["model"] == "rma.mv" and e["test"] == "t" and e["k"] == 100
    _close(e["statistic"], r["tval"][1], ITER)
    _close(e["pval"], r["pval"][1], ITER)
    assert e["dfs"] == r["dfs"][1] == 98
    _close(e["slope"], r["b"][1], ITER)
    _close(e["slope_se"], r["se"][1], ITER)
    _close(e["limit_estimate"], r["b"][0], ITER)
    _close([e["limit_ci_lb"], e["limit_ci_ub"]], [r["ci_lb"][0], r["ci_ub"][0]], ITER)
    _close([e["sigma2"]["study"], e["sigma2"]["id"]], r["sigma2"], VAR)


def test_rule_three_level_egger_test_cr2_matches_clubsandwich(assink_json):
    rob = assink_json["egger_multilevel_cr2"]
    r = _ours("ml3_egger_sei_reml_t_cr2")
    for j, term in enumerate(("intercept", "slope")):
        for key in ("beta", "se", "tstat", "df_satt", "p_satt"):
            _close(rob[term][key], r["coef_test"][key][j], ITER, what=f"{term} {key}")
        _close(rob[term]["ci_lower"], r["conf_int"]["ci_l"][j], ITER)
        _close(rob[term]["ci_upper"], r["conf_int"]["ci_u"][j], ITER)
    assert rob["clusters"] == 17


def test_rule_study_averages_match_metafor_aggregate_with_config_rho(assink_json):
    agg = assink_json["aggregated"]
    r = _bias_ref("aggregate_rho06")  # aggregate(escalc(...), cluster=study, rho=0.6)
    assert agg["rho"] == 0.6 == assink_json["options"]["aggregate_rho"]
    assert [int(s) for s in agg["study"]] == r["cluster"]
    _close(agg["yi"], r["yi"], CLOSED)
    _close(agg["vi"], r["vi"], CLOSED)
    assert agg["ki"] == r["ki"]


def test_rule_univariate_methods_on_study_averages_match_metafor(assink_json):
    d = assink_json
    un, r = d["unadjusted"], _ours("agg_uni_reml")
    for key in ("b", "se", "ci_lb", "ci_ub", "pval"):
        _close(un[key], r[key], ITER, what=key)
    _close(un["tau2"], r["tau2"], VAR)
    _check_regtest(d["egger_lm"], _ours("agg_regtest_lm_sei"), CLOSED)
    _check_regtest(d["egger_rma"], _ours("agg_regtest_rma_sei_reml"), ITER)
    _close(d["ranktest"]["tau"], _ours("agg_ranktest")["tau"], CLOSED)
    _close(d["ranktest"]["pval"], _ours("agg_ranktest")["pval"], CLOSED)
    tf, r = d["trimfill"], _ours("agg_trimfill_reml_l0")
    assert tf["k0"] == r["k0"] and tf["side"] == r["side"] and tf["estimator"] == "L0"
    _close(
        [tf["estimate"], tf["se"], tf["ci_lb"], tf["ci_ub"]],
        [r["b"][0], r["se"][0], r["ci_lb"][0], r["ci_ub"][0]],
        ITER,
    )
    _close(tf["se_k0"], r["se_k0"], ITER)
    for ours, theirs in (("pet", "agg_pet_lm"), ("peese", "agg_peese_lm")):
        fit, r = d["pet_peese"][ours], _ours(theirs)
        for key in ("b", "se", "tval", "pval", "ci_lb", "ci_ub"):
            _close(fit[key], r[key], CLOSED, what=f"{ours} {key}")
    # PET's intercept is not significant (one-sided p = 0.367 > 0.05): PET is the estimate
    assert d["pet_peese"]["chosen"] == "PET"
    _close(d["pet_peese"]["pet_pval_one_sided"], _ours("agg_pet_lm")["pval_greater"][0], CLOSED)
    for ours, theirs in (("fsn_rosenthal", "agg_fsn_rosenthal"), ("fsn_orwin", "agg_fsn_orwin")):
        r = _ours(theirs)
        assert d[ours]["fsnum"] == r["fsnum"]
        for key in ("pval", "meanes", "target"):
            if r[key] is not None:
                _close(d[ours][key], r[key], CLOSED, what=f"{ours} {key}")


def test_rule_bias_table_has_one_readable_row_per_method(assink):
    table = pd.read_csv(assink / "tables" / "bias.csv")
    for col in (
        "Method",
        "Data",
        "Why these data",
        "k",
        "Statistic",
        "df",
        "p",
        "Adjusted estimate",
        "95% CI lower",
        "95% CI upper",
        "Note",
    ):
        assert col in table.columns
    assert table["Method"].is_unique and len(table) == 14
    ml = table[table["Method"].str.startswith("Egger-type test, three-level")]
    assert len(ml) == 2 and (ml["k"] == 100).all()
    # the selection model and PET-PEESE in the working model: all effect sizes
    dep = table[table["Method"].str.startswith(("Selection model", "PET-PEESE in the three"))]
    assert len(dep) == 2 and (dep["k"] == 100).all() and dep["Adjusted estimate"].notna().all()
    agg = table[table["Data"].str.startswith("study averages")]
    assert len(agg) == 10 and (agg["k"] == 17).all()
    # why the univariate methods run on study averages
    assert agg["Why these data"].str.contains("independent effect sizes").all()
    assert agg["Why these data"].str.contains("rho = 0.6").all()
    egger = table.set_index("Method").loc[
        "Egger-type test, three-level model (REML; SE as moderator)"
    ]
    _close(egger["p"], _bias_ref("ml3_egger_sei_reml_t")["pval"][1], ITER)
    assert table["Note"].notna().all() and not table["Note"].str.startswith("not computed").any()


def test_rule_trimfill_and_funnel_tables_hold_the_plot_data(assink, assink_json):
    tf = pd.read_csv(assink / "tables" / "trimfill_data.csv")
    r = _ours("agg_trimfill_reml_l0")
    assert len(tf) == 17 + r["k0"] and list(tf["filled"]) == r["fill"]
    _close(tf["yi"], r["yi"], ITER)
    funnel = pd.read_csv(assink / "tables" / "funnel_data.csv")
    counts = funnel.groupby(["panel", "kind"]).size().to_dict()
    assert counts[("effect sizes", "point")] == 100
    assert counts[("study averages", "point")] == 17
    assert counts[("effect sizes", "contour")] == 3 * 50  # 90/95/99% at 50 standard errors
    assert ("study averages", "filled") not in counts  # k0 = 0 on assink2016
    centres = funnel.groupby("panel")["centre"].unique()
    _close(centres["effect sizes"], [assink_json["pooled_estimate"]], CLOSED)
    _close(centres["study averages"], _ours("agg_uni_reml")["b"], ITER)
    pts = funnel[(funnel["panel"] == "effect sizes") & (funnel["kind"] == "point")]
    assert pts["study"].nunique() == 17 and pts["effect_size"].is_unique
    _close(pts["sei"], np.sqrt(pts["vi"]), CLOSED)


def test_rule_flags_nothing_for_assink2016(assink):
    assert (assink / "flags" / "bias.txt").read_text() == ""


# --------------------------------------------------------------------- the package function
def _one_effect_per_study(stem: str) -> AnalysisData:
    """A reference data set with one effect size per study: the study averages are the data."""
    data = pd.read_csv(REF / f"{stem}.csv")
    data = data.assign(study=data["study"].astype(str), es=np.arange(1, len(data) + 1).astype(str))
    return AnalysisData(data=data, codebook=load_codebook(ASSINK_CB), study="study", es="es")


def test_package_function_reproduces_univariate_trimfill_and_regtest_hackshaw1998():
    ad = _one_effect_per_study("hackshaw1998")
    res = bias_analysis(ad, ModelSpec(), {"univariate_method": "REML", "trimfill_estimator": "L0"})
    _close(res.aggregated.yi, ad.data["yi"], CLOSED)  # averages of single effects
    tf, r = res.trimfill, _hackshaw("trimfill_reml")  # trimfill(rma(yi, vi, method="REML"))
    assert tf.k0 == r["k0"] == 7 and tf.side == r["side"]
    _close(tf.yi, r["yi"], ITER)
    _close(
        [tf.estimate, tf.se, tf.ci_lb, tf.ci_ub, tf.tau2],
        [r["b"][0], r["se"][0], r["ci_lb"][0], r["ci_ub"][0], r["tau2"]],
        ITER,
    )
    _check_regtest(res.egger_lm.to_dict(), _hackshaw("regtest_lm_sei"), CLOSED)
    _close(res.ranktest.pval, _hackshaw("ranktest")["pval"], CLOSED)
    assert res.fsn_rosenthal.fsnum == _hackshaw("fsn_rosenthal")["fsnum"]
    assert res.fsn_orwin.fsnum == _hackshaw("fsn_orwin")["fsnum"]
    # the filled-in studies appear in the funnel data and in the trim-and-fill table
    funnel = res.funnel_frame()
    filled = funnel[funnel["kind"] == "filled"]
    assert len(filled) == 7 and (filled["panel"] == "study averages").all()
    _close(filled["yi"], np.asarray(r["yi"])[np.asarray(r["fill"])], ITER)
    assert res.trimfill_frame()["study"].isna().sum() == 7


def test_package_function_uses_the_configured_estimator_and_method():
    ad = _one_effect_per_study("hackshaw1998")
    opts = BiasOptions.from_config({"trimfill_estimator": "R0", "univariate_method": "FE"})
    res = bias_analysis(ad, ModelSpec(), opts)
    assert res.trimfill.estimator == "R0" and res.trimfill.method == "FE"
    assert res.unadjusted.method == "FE" and res.egger_rma.method == "FE"
    assert res.trimfill.p_k0 is not None  # R0 tests k0 = 0
    assert "Trim and fill (R0, FE)" in res.to_frame()["Method"].tolist()


def test_small_data_gives_not_computed_rows_and_flags_not_a_crash(tmp_path):
    ref = pd.read_csv(REF / "assink2016.csv")
    two = ref[ref["study"].isin([1, 2])].assign(
        study=lambda d: d["study"].astype(str), id=lambda d: d["id"].astype(str)
    )
    ad = AnalysisData(
        data=two.reset_index(drop=True), codebook=load_codebook(ASSINK_CB), study="study", es="id"
    )
    res = bias_analysis(ad, ModelSpec(), {})
    assert res.egger_lm is None and "at least 3" in res.not_computed["egger_lm"]
    assert res.pet_peese is None and res.egger_multilevel is not None
    assert any("too little power" in f for f in res.flags)
    assert any("not computed" in f for f in res.flags)
    table = res.to_frame()
    assert len(table) == 14  # 12 methods and tests, the selection model, PET-PEESE in the model
    assert set(table["method_key"] if "method_key" in table else []) <= set(res.to_dict())
    egger = table.set_index("Method").loc[
        "Egger's regression test (classic, weighted least squares)"
    ]
    assert egger["Note"].startswith("not computed") and np.isnan(egger["Value"])


def test_rule_level_function_reads_the_effect_sizes_file(assink):
    ad = load_analysis_data(assink / "effect_sizes.csv", ASSINK_CB)
    res = bias_analysis(ad, ModelSpec(), {})
    saved = json.loads((assink / "models" / "bias.json").read_text())
    ours, theirs = res.to_dict()["egger_multilevel"], saved["egger_multilevel"]
    for key in ("statistic", "pval", "slope", "limit_estimate"):
        _close(ours[key], theirs[key], ITER, what=key)  # same numbers as the rule wrote


def test_selection_model_and_working_model_pet_peese_are_the_methods_on_the_same_data():
    """The bias step's selection model (clustered by study, seeded bootstrap) and PET-PEESE in
    the three-level model are those of the methods called directly on the analysis data, and
    their rows of the bias table carry their numbers."""
    from intervention_meta.analyses.analysis_model import model_call
    from intervention_meta.methods.pet_peese import pet_peese_working_model
    from intervention_meta.methods.selection import selection_model

    ref = pd.read_csv(REF / "assink2016.csv")
    ad = AnalysisData(data=ref, codebook=load_codebook(ASSINK_CB), study="study", es="id")
    opts = {"selection_steps": [0.025, 0.5], "selection_bootstrap": 49}
    res = bias_analysis(ad, ModelSpec(), opts, seed=7)
    direct = selection_model(
        ref["yi"], ref["vi"], cluster=ref["study"].astype(str), steps=(0.025, 0.5),
        bootstrap=49, seed=7,
    )  # fmt: skip
    assert res.selection.to_dict() == direct.to_dict()  # the same bootstrap draws, bit for bit
    assert len(res.selection.weights) == 3
    call = model_call(ad, ModelSpec(structure="three_level"))
    pp = pet_peese_working_model(ref, call, cluster="study", alpha=0.05)
    assert res.pet_peese_model.to_dict() == pp.to_dict()
    rows = {r["method_key"]: r for r in res.to_dict()["tables"]["bias"]["rows"]}
    sel = rows["selection"]
    assert (sel["value"], sel["df"], sel["p"]) == (direct.lrt, direct.lrt_df, direct.lrt_pval)
    assert (sel["estimate"], sel["ci_lb"]) == (
        direct.adjusted_mean.estimate,
        direct.adjusted_mean.ci_lb,
    )
    assert "bootstrap" in sel["note"] and "dependence" in sel["why"]
    pet = rows["pet_peese_model"]
    assert (pet["estimate"], pet["p"]) == (pp.estimate, pp.pet_pval_test)
    assert pet["value"] == pp.pet.intercept["tstat"] and pp.rule in pet["note"]
