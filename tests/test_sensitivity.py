"""Tests for intervention_meta.analyses.sensitivity and rule sensitivity.

Sources of the expected numbers:

* ``tests/reference/<stem>.json`` (``R/public_reference.R``, metafor 3.8-1): ``leave1out_reml`` /
  ``leave1out_fe`` (``leave1out(rma(yi, vi, method="REML"/"FE"))``), ``uni_<method>``
  (``rma(yi, vi, method=...)``), ``ml3_reml_t`` and ``ml3_reml_cr2`` (``rma.mv(yi, vi, random =
  ~ 1 | study/esid)`` and clubSandwich 0.5.8 ``coef_test(vcov="CR2")``).
* ``tests/reference/extra/sensitivity_reference.json`` (``extra/sensitivity_reference.R``):
  ``loo_cluster_reml_t`` = ``rma.mv(yi, vi, random = ..., subset = study != s, test = "t")`` for
  each study ``s`` (assink2016, konstantopoulos2011), and the influence diagnostics (see
  tests/test_influence.py).
* ``tests/reference/extra/che_cr2_reference.json`` (``extra/che_cr2_reference.R``): the CHE
  working model ``rma.mv(yi, V, random = ~ 1 | study/esid)`` with ``V =
  impute_covariance_matrix(vi, cluster = study, r = rho)`` and clubSandwich CR2, rho = 0.2, 0.6,
  0.8.
* the example data's own coding (``results/example/effect_sizes.csv`` of the pipeline run): which
  rows are prepost rows without a coded r_prepost, or cluster-randomised rows without an ICC.

Tolerances: 1e-6 relative for iterative estimates (variance components 1e-5), 1e-10 for closed
forms (FE, DL).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.analyses.analysis_model import (
    ModelSpec,
    fit_model,
    load_analysis_data,
    model_call,
)
from intervention_meta.analyses.sensitivity import (
    TABLES,
    compare_estimators,
    leave_one_out,
    remove_outliers,
    run_sensitivity,
    sensitivity_analysis,
    vary_assumptions,
)
from intervention_meta.data.cleaning import read_clean
from intervention_meta.data.codebook import load_codebook
from intervention_meta.methods.influence import ModelCall
from intervention_meta.models import fit

REF = Path(__file__).parent / "reference"
REPO = Path(__file__).resolve().parents[1]
ONE_LEVEL = ["bcg_rr", "normand1999_smd", "molloy2014_zcor", "bangertdrowns2004", "hackshaw1998"]
ITERATIVE = 1e-6
VARIANCE = 1e-5
CLOSED = 1e-10
ML3 = {"assink2016": ("study", "esid"), "konstantopoulos2011": ("district", "school")}


@cache
def _data(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


@cache
def _cases(stem: str) -> dict:
    return json.loads((REF / f"{stem}.json").read_text())["cases"]


@cache
def _sens_ref() -> dict:
    return json.loads((REF / "extra" / "sensitivity_reference.json").read_text())["datasets"]


@cache
def _che_ref() -> dict:
    return json.loads((REF / "extra" / "che_cr2_reference.json").read_text())["cases"]


def _close(actual, expected, rtol: float) -> None:
    a = np.asarray(actual, dtype=float)
    e = np.asarray(
        [np.nan if v is None else v for v in np.ravel(np.asarray(expected, dtype=object))],
        dtype=float,
    ).reshape(a.shape)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
    np.testing.assert_allclose(a[~np.isnan(a)], e[~np.isnan(e)], rtol=rtol, atol=0)


# --------------------------------------------------------------------------- leave one out
@pytest.mark.parametrize("stem", ONE_LEVEL)
@pytest.mark.parametrize("method", ["REML", "FE"])
def test_leave_one_out_matches_metafor_leave1out(stem, method):
    # expected: <stem>.json leave1out_reml / leave1out_fe = metafor leave1out(rma(...))
    ref = _cases(stem)[f"leave1out_{method.lower()}"]["results"]
    rtol = ITERATIVE if method == "REML" else CLOSED
    loo = leave_one_out(_data(stem), ModelCall(method=method))
    _close(loo.estimate[:, 0], ref["estimate"], rtol)
    _close(loo.se[:, 0], ref["se"], rtol)
    _close(loo.stat[:, 0], ref["zval"], rtol)
    _close(loo.pval[:, 0], ref["pval"], rtol)
    _close(loo.ci_lb[:, 0], ref["ci_lb"], rtol)
    _close(loo.ci_ub[:, 0], ref["ci_ub"], rtol)
    _close(loo.QE, ref["q"], rtol)
    _close(loo.QEp, ref["qp"], rtol)
    _close(loo.I2, ref["i2"], rtol)
    _close(loo.H2, ref["h2"], rtol)
    if method == "REML":
        _close(loo.tau2, ref["tau2"], rtol)
    assert len(loo.units) == len(_data(stem))


def _check_loo_against_polished(loo: dict, ref: dict, levels: tuple[str, ...]) -> None:
    """Leave-one-cluster-out arrays (units in ref order) against loo_cluster_reml_t_polished."""
    for key, rkey, rtol in [
        ("estimate", "estimate", ITERATIVE),
        ("se", "se", ITERATIVE),
        ("stat", "tval", ITERATIVE),
        ("df", "dfs", CLOSED),
        ("pval", "pval", ITERATIVE),
        ("ci_lb", "ci_lb", ITERATIVE),
        ("ci_ub", "ci_ub", ITERATIVE),
        ("k", "k", CLOSED),
        ("n_clusters", "n_clusters", CLOSED),
    ]:
        actual = np.asarray(loo[key], dtype=float)
        _close(actual.reshape(np.shape(ref[rkey])), ref[rkey], rtol)
    sigma2 = np.column_stack([loo["sigma2"][name] for name in levels])
    _close(sigma2, ref["sigma2"], VARIANCE)


@pytest.mark.parametrize("stem", sorted(ML3))
def test_leave_one_study_out_matches_rma_mv_with_subset(stem):
    # expected: sensitivity_reference.json loo_cluster_reml_t_polished (every number), and the
    # raw loop rma.mv(..., subset = study != s) of loo_cluster_reml_t for the estimates and
    # variance components (its SEs and p values carry nlminb's 1e-6 shortfall, see the R script)
    cases = _sens_ref()[stem]["cases"]
    random = ML3[stem]
    loo = leave_one_out(_data(stem), ModelCall(random=random, test="t"), random[0])
    pol = cases["loo_cluster_reml_t_polished"]["results"]
    assert [str(u) for u in loo.units] == [str(u) for u in pol["cluster"]]
    _check_loo_against_polished(loo.to_dict(), pol, random)
    raw = cases["loo_cluster_reml_t"]["results"]
    _close(loo.estimate, raw["estimate"], ITERATIVE)
    _close(np.column_stack([loo.sigma2[n] for n in random]), raw["sigma2"], VARIANCE)


def test_leave_one_out_frame_has_a_row_per_unit_and_coefficient():
    call = ModelCall(mods=("ablat",), method="DL")
    loo = leave_one_out(_data("bcg_rr"), call)
    frame = loo.to_frame()
    assert len(frame) == 2 * 13  # 13 trials (Colditz et al. 1994) x 2 coefficients
    assert set(frame["coefficient"]) == {"intrcpt", "ablat"}
    assert json.dumps(loo.to_dict())


# --------------------------------------------------------------------------- the model
@pytest.mark.parametrize("structure", ["three_level", "random_effects", "fixed_effect"])
@pytest.mark.parametrize("test", ["t", "knha"])
def test_model_call_refits_the_analysis_model_of_fit_model(structure, test):
    # the sensitivity refits must be the analysis model of the shared fit_model, nothing else
    ad = load_analysis_data(
        REPO / "data" / "examples" / "assink2016" / "effects.csv",
        REPO / "data" / "examples" / "assink2016" / "codebook.yaml",
    )
    spec = ModelSpec(structure=structure, test=test)
    a = fit_model(ad, spec)
    b = model_call(ad, spec).fit(ad.data)
    assert (a.method, a.test, a.random) == (b.method, b.test, b.random)
    # Knapp-Hartung is defined for one-level models only (metafor's rma.mv offers z and t)
    assert b.test == ("t" if structure == "three_level" else test)
    np.testing.assert_allclose(b.b, a.b, rtol=CLOSED)
    np.testing.assert_allclose(b.se, a.se, rtol=CLOSED)


# --------------------------------------------------------------------------- outliers
def test_outliers_removed_are_the_effect_sizes_beyond_the_threshold():
    # which rows exceed 3 (the default): metafor rstudent(res) of the polished reference
    # (konstantopoulos2011: one school, |z| = 3.52)
    d = _data("konstantopoulos2011")
    call = ModelCall(random=("district", "school"), test="t")
    res = _sens_ref()["konstantopoulos2011"]["cases"]["influence_reml_t_polished"]["results"]
    out = remove_outliers(d, call)
    expected = list(d.index[np.abs(np.array(res["rstudent_z"])) > 3])
    assert list(out.removed) == expected and len(expected) == 1
    refit = fit(d.drop(index=expected), random=["district", "school"], test="t")
    np.testing.assert_allclose(out.result.b, refit.b, rtol=CLOSED)
    assert "> 3" in out.rule and out.to_dict()["n_removed"] == 1


def test_no_outlier_means_no_refit():
    d = _data("bcg_rr")
    out = remove_outliers(d, ModelCall(), 10.0)  # every |rstudent| of bcg_rr is below 1.5
    assert out.removed == () and out.result is None and out.error is None
    with pytest.raises(ValueError, match="threshold"):
        remove_outliers(d, ModelCall(), 0.0)


# --------------------------------------------------------------------------- estimators
@pytest.fixture(scope="module")
def assink_estimators():
    return compare_estimators(
        _data("assink2016"),
        study="study",
        es="esid",
        estimators=["FE", "DL", "REML", "ML", "PM"],
        test="z",
        che_rho=0.6,
        rho_values=[0.2, 0.6, 0.8],
    )


def _row(comparison, model: str, inference_start: str):
    rows = [
        r for r in comparison.rows if r.model == model and r.inference.startswith(inference_start)
    ]
    assert len(rows) == 1, (model, inference_start, [r.model for r in comparison.rows])
    return rows[0]


@pytest.mark.parametrize("method", ["FE", "DL", "REML", "ML", "PM"])
def test_one_level_estimator_rows_match_metafor_rma(assink_estimators, method):
    # expected: assink2016.json uni_<method> = rma(yi, vi, method=...) (z tests)
    ref = _cases("assink2016")[f"uni_{method.lower()}"]["results"]
    rtol = CLOSED if method in ("FE", "DL") else ITERATIVE
    name = "Fixed-effect (FE)" if method == "FE" else f"Random-effects ({method})"
    r = _row(assink_estimators, name, "model-based")
    _close(
        [r.estimate, r.se, r.statistic, r.pval, r.ci_lb, r.ci_ub],
        [
            ref["b"][0],
            ref["se"][0],
            ref["zval"][0],
            ref["pval"][0],
            ref["ci_lb"][0],
            ref["ci_ub"][0],
        ],
        rtol,
    )
    _close(r.tau2, ref["tau2"], rtol if method != "FE" else CLOSED)
    _close(r.i2, ref["i2"], rtol)


def test_three_level_rows_match_metafor_and_clubsandwich(assink_estimators):
    # expected: assink2016.json ml3_reml (model-based z) and ml3_reml_cr2 (clubSandwich CR2)
    ref = _cases("assink2016")["ml3_reml"]["results"]
    r = _row(assink_estimators, "Three-level (REML)", "model-based")
    _close([r.estimate, r.se, r.pval], [ref["b"][0], ref["se"][0], ref["pval"][0]], ITERATIVE)
    _close([r.sigma2["study"], r.sigma2["esid"]], ref["sigma2"], VARIANCE)
    cr2 = _cases("assink2016")["ml3_reml_cr2"]["results"]
    r = _row(assink_estimators, "Three-level (REML)", "CR2")
    _close(
        [r.estimate, r.se, r.df, r.pval, r.ci_lb, r.ci_ub],
        [
            cr2["coef_test"]["beta"][0],
            cr2["coef_test"]["se"][0],
            cr2["coef_test"]["df_satt"][0],
            cr2["coef_test"]["p_satt"][0],
            cr2["conf_int"]["ci_l"][0],
            cr2["conf_int"]["ci_u"][0],
        ],
        ITERATIVE,
    )


@pytest.mark.parametrize("rho, tag", [(0.6, "che_r06"), (0.2, "che_r02"), (0.8, "che_r08")])
def test_che_rows_match_clubsandwich_che_cr2_reference(assink_estimators, rho, tag):
    # expected: che_cr2_reference.json <tag>_reml_cr2 and <tag>_reml (Pustejovsky & Tipton 2022)
    cr2 = _che_ref()[f"{tag}_reml_cr2"]["results"]
    r = _row(assink_estimators, f"CHE (rho = {rho:g})", "CR2")
    ct, ci = cr2["coef_test"], cr2["conf_int"]
    _close(
        [r.estimate, r.se, r.statistic, r.df, r.pval, r.ci_lb, r.ci_ub],
        [
            ct["beta"][0],
            ct["se"][0],
            ct["tstat"][0],
            ct["df_satt"][0],
            ct["p_satt"][0],
            ci["ci_l"][0],
            ci["ci_u"][0],
        ],
        ITERATIVE,
    )
    model = _che_ref()[f"{tag}_reml"]["results"]
    _close([r.sigma2["study"], r.sigma2["esid"]], model["sigma2"], VARIANCE)
    assert r.rho == rho


def test_che_rho_of_the_config_is_marked_and_not_repeated(assink_estimators):
    che = [r for r in assink_estimators.rows if r.structure == "CHE"]
    assert [r.rho for r in che] == [0.6, 0.2, 0.8]
    assert che[0].note.startswith("working model")


# --------------------------------------------------------------------------- the pipeline
EXAMPLE_OUT = [f"tables/sensitivity_{name}.csv" for name in TABLES] + [
    "models/sensitivity.json",
    "flags/sensitivity.txt",
]

pipeline = pytest.mark.pipeline


@pytest.fixture(scope="module")
def example(example_run) -> Path:
    """results/example of the session's shared run on the default config (simulated data)."""
    return example_run.results


@pytest.fixture(scope="module")
def assink(assink_run) -> Path:
    """results/assink2016 of the session's shared run on config/assink2016.yaml."""
    return assink_run.results


def _json(res: Path) -> dict:
    return json.loads((res / "models" / "sensitivity.json").read_text())


@pipeline
def test_rule_writes_readable_tables_json_and_flags(example):
    for rel in EXAMPLE_OUT:
        assert (example / rel).is_file(), rel
    est = pd.read_csv(example / "tables" / "sensitivity_estimators.csv")
    assert {
        "Model",
        "Inference",
        "Estimate",
        "SE",
        "95% CI lower",
        "95% CI upper",
        "df",
        "p",
        "k (effect sizes)",
    } <= set(est.columns)
    loo = pd.read_csv(example / "tables" / "sensitivity_leave_one_out.csv")
    es = pd.read_csv(example / "effect_sizes.csv")
    assert len(loo) == es["study_id"].nunique() + 1  # one row per study + the full model
    assert loo["k (effect sizes)"].dtype.kind == "i"
    out = pd.read_csv(example / "tables" / "sensitivity_outliers.csv")
    assert len(out) == len(es)
    assert any(c.startswith("Removed (|residual| > 3") for c in out.columns)
    assert _json(example)["options"]["outlier_threshold"] == 3


@pytest.fixture(scope="module")
def example_assumptions(example):
    """Assumption rows of the JSON and the example's coding of the touched rows."""
    es = pd.read_csv(example / "effect_sizes.csv")
    prepost_default = es.loc[(es["es_input"] == "prepost") & es["r_prepost"].isna(), "es_id"]
    icc_default = es.loc[
        (es["cluster_randomised"] == 1) & es["icc"].isna() & (es["es_input"] != "yi_vi"), "es_id"
    ]
    return _json(example)["assumptions"]["rows"], set(prepost_default), set(icc_default)


@pipeline
def test_varying_r_prepost_changes_only_prepost_rows_without_a_coded_r(example_assumptions):
    rows, prepost_default, _ = example_assumptions
    assert prepost_default  # the example data have prepost rows without r_prepost
    for row in (r for r in rows if r["option"] == "r_prepost_default"):
        expected = set() if row["main"] else prepost_default
        assert set(row["changed"]) == expected, row["value"]
        assert row["rows_assumed"] == len(prepost_default)
        if not row["main"]:
            assert row["changed_by_es_input"] == {"prepost": len(prepost_default)}


@pipeline
def test_varying_icc_changes_only_cluster_randomised_rows_without_an_icc(example_assumptions):
    rows, _, icc_default = example_assumptions
    for row in (r for r in rows if r["option"] == "icc_default"):
        expected = set() if row["main"] else icc_default
        assert set(row["changed"]) == expected, row["value"]
        assert row["rows_assumed"] == len(icc_default)


@pipeline
def test_main_value_of_an_assumption_reproduces_the_analysis_model(example):
    d = _json(example)
    full_b = d["full"]["b"][0]
    for row in d["assumptions"]["rows"]:
        if row["main"]:
            assert row["result"]["estimate"] == pytest.approx(full_b, rel=CLOSED)


@pipeline
def test_vary_assumptions_through_the_package_on_the_example_tables(example):
    # the same variation called directly: a changed r_prepost moves the estimate
    cb = load_codebook(REPO / "data" / "codebook.yaml")
    clean = read_clean(example / "clean" / "effects.csv", cb)
    ad = load_analysis_data(example / "effect_sizes.csv", cb)
    call = model_call(ad, ModelSpec())
    var = vary_assumptions(
        clean,
        ad.data,
        call,
        key="es_id",
        variations={"r_prepost_default": [0.1, 0.5]},
        effect_options={"r_prepost_default": 0.5, "icc_default": 0.05, "cluster_size_default": 20},
        higher_is_worse_levels=cb.higher_is_worse_levels(),
    )
    low, main = var.rows
    assert main.main and main.rows_changed == 0 and low.rows_changed > 0
    assert low.result["estimate"] != main.result["estimate"]
    with pytest.raises(ValueError, match="cannot vary"):
        vary_assumptions(clean, ad.data, call, key="es_id", variations={"alpha": [0.1]})


@pipeline
def test_rule_leave_one_study_out_matches_rma_mv_on_assink2016(assink):
    # expected: sensitivity_reference.json loo_cluster_reml_t_polished (the config's model:
    # three-level REML, t tests; the pipeline's inner level is the key id, unique like study/esid)
    ref = _sens_ref()["assink2016"]["cases"]["loo_cluster_reml_t_polished"]["results"]
    loo = _json(assink)["leave_one_out"]
    units = [str(u) for u in loo["units"]]
    order = [units.index(str(u)) for u in ref["cluster"]]
    picked = {
        key: (np.asarray(value, dtype=float)[order] if isinstance(value, list) else value)
        for key, value in loo.items()
        if key in ("estimate", "se", "stat", "df", "pval", "ci_lb", "ci_ub", "k", "n_clusters")
    }
    picked["sigma2"] = {n: np.asarray(v, dtype=float)[order] for n, v in loo["sigma2"].items()}
    _check_loo_against_polished(picked, ref, ("study", "id"))


@pipeline
def test_rule_influence_matches_metafor_on_assink2016(assink):
    # expected: sensitivity_reference.json influence_reml_t_polished
    ref = _sens_ref()["assink2016"]["cases"]["influence_reml_t_polished"]["results"]
    d = _json(assink)
    inf = d["influence"]
    order = [[str(u) for u in inf["units"]].index(str(u)) for u in ref["cluster"]]
    _close(np.array(inf["cook_d"])[order], ref["cook_d"], ITERATIVE)
    _close(np.array(inf["dfbetas"])[order], ref["dfbetas"], ITERATIVE)
    _close(np.array(inf["hat"])[order], ref["hat_cluster_sum"], ITERATIVE)
    _close(np.array(inf["x2"])[order], ref["x2"], ITERATIVE)
    # per effect size, matched by the key (id = the CSV row of assink2016.csv)
    res = d["deleted_residuals"]
    ids = [str(i) for i in _data("assink2016")["id"]]
    pos = [[str(i) for i in res["id"]].index(i) for i in ids]
    _close(np.array(res["z"])[pos], ref["rstudent_z"], ITERATIVE)


@pipeline
def test_rule_che_row_matches_che_cr2_reference_on_assink2016(assink):
    cr2 = _che_ref()["che_r06_reml_cr2"]["results"]
    rows = _json(assink)["estimators"]["rows"]
    che = [r for r in rows if r["model"] == "CHE (rho = 0.6)"]
    assert len(che) == 1
    r, ct, ci = che[0], cr2["coef_test"], cr2["conf_int"]
    _close(
        [r["estimate"], r["se"], r["df"], r["pval"], r["ci_lb"], r["ci_ub"]],
        [
            ct["beta"][0],
            ct["se"][0],
            ct["df_satt"][0],
            ct["p_satt"][0],
            ci["ci_l"][0],
            ci["ci_u"][0],
        ],
        ITERATIVE,
    )
    table = pd.read_csv(assink / "tables" / "sensitivity_estimators.csv")
    assert "CHE (rho = 0.6)" in set(table["Model"])


@pipeline
def test_rule_notes_that_assink2016_uses_no_assumed_value(assink):
    d = _json(assink)
    assert all(r["rows_changed"] == 0 and r["rows_assumed"] == 0 for r in d["assumptions"]["rows"])
    assert any("r_prepost_default: no effect size uses" in n for n in d["notes"])
    assert (assink / "flags" / "sensitivity.txt").read_text() == ""


# --------------------------------------------------------------------------- the step
ASSINK_EFFECTS = REPO / "data" / "examples" / "assink2016" / "effects.csv"
ASSINK_CODEBOOK = REPO / "data" / "examples" / "assink2016" / "codebook.yaml"


@pytest.mark.parametrize("structure", ["random_effects", "fixed_effect"])
def test_sensitivity_analysis_follows_a_one_level_analysis_model(structure):
    ad = load_analysis_data(ASSINK_EFFECTS, ASSINK_CODEBOOK)
    spec = ModelSpec(structure=structure)
    res = sensitivity_analysis(ad, spec, sensitivity={"rho_values": [0.6]})
    assert res.call.random == () and res.full.method == (
        "FE" if structure == "fixed_effect" else "REML"
    )
    assert len(res.loo.units) == 17  # 17 studies (Assink & Wibbelink 2016)
    assert np.isfinite(res.influence.cook_d).all()
    # a one-level analysis model still gets the three-level and CHE rows for comparison
    assert {"three-level", "CHE"} <= {r.structure for r in res.estimators.rows}
    for frame in res.frames().values():
        assert len(frame) > 0


def test_run_sensitivity_reports_a_model_that_cannot_be_fitted(tmp_path):
    one = pd.read_csv(ASSINK_EFFECTS).head(1)
    one.to_csv(tmp_path / "effect_sizes.csv", index=False)
    tables = {name: tmp_path / f"{name}.csv" for name in TABLES}
    out = run_sensitivity(
        effect_sizes=tmp_path / "effect_sizes.csv",
        clean_effects=tmp_path / "effect_sizes.csv",
        codebook=ASSINK_CODEBOOK,
        models={},
        options={},
        effect_size_options={},
        **tables,
        json=tmp_path / "sensitivity.json",
        flags=tmp_path / "flags.txt",
    )
    assert out is None
    assert "could not be fitted" in (tmp_path / "flags.txt").read_text()
    assert pd.read_csv(tables["summary"])["Analysis"].tolist() == ["not estimable"]
    assert "error" in json.loads((tmp_path / "sensitivity.json").read_text())
