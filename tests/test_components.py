"""Tests for intervention_meta.analyses.components and the ``components`` rule.

Sources of the expected numbers:

* Profiles, consistency and coverage: counted by hand on a 6-study toy data set (the layout is
  written out beside each test), and recounted independently with pandas groupby from
  ``data/raw/studies.csv`` for the example data.
* ``tests/reference/extra/components_reference.json`` (``extra/components_reference.R``, metafor
  3.8-1): ``ranef()`` of the three-level model of assink2016 (BLUPs of the study effects and their
  prediction-error SDs) and the study-level estimates with their prediction-error variances from
  Henderson's mixed-model equations, solved in R independently of metafor.
* ``tests/reference/extra/bias_reference.json`` (``extra/bias_reference.R``): metafor's
  ``aggregate(struct = "CS", rho = 0.6)`` of assink2016, for the study_aggregate rule.

Tolerances: 1e-10 relative for closed forms (the BLUPs at given variance components, the normal
intervals of the study averages), 1e-6 downstream of the REML estimates.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intervention_meta.analyses.analysis_model import (
    AnalysisData,
    ModelSpec,
    fit_model,
    load_analysis_data,
)
from intervention_meta.analyses.components import (
    NO_COMPONENTS,
    analyse_components,
    component_consistency,
    component_profiles,
    profiles_records,
    programme_components,
    run_components,
    study_aggregate_effects,
    study_blup_effects,
    study_blups,
    study_effects_records,
)
from intervention_meta.data.codebook import load_codebook

REPO = Path(__file__).resolve().parents[1]
REF = Path(__file__).parent / "reference"
ASSINK_CODEBOOK = REPO / "data" / "examples" / "assink2016" / "codebook.yaml"
CLOSED = 1e-10
ITER = 1e-6
SPEC = ModelSpec()


@cache
def _ref(case: str) -> dict:
    data = json.loads((REF / "extra" / "components_reference.json").read_text())
    return data["cases"][case]["results"]


@cache
def _assink() -> AnalysisData:
    return load_analysis_data(REF / "assink2016.csv", ASSINK_CODEBOOK)


def close(actual, expected, rtol):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol)


def _toy() -> AnalysisData:
    """6 studies S0..S5 with k = 3, 2, 4, 1, 3, 2 effect sizes and two binary components.

    ======  ===  ===  ====
    study   k    a    b
    ======  ===  ===  ====
    S0      3    1    0
    S1      2    0    1
    S2      4    1    -
    S3      1    -    -
    S4      3    0    1
    S5      2    1    1
    ======  ===  ===  ====
    """
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
                {"name": "eid", "table": "effects", "type": "id", "role": "id"},
            ],
        }
    )
    ks, a, b = [3, 2, 4, 1, 3, 2], [1, 0, 1, None, 0, 1], [0, 1, None, None, 1, 1]
    rng = np.random.default_rng(3)
    rows = [
        {
            "sid": f"S{j}",
            "eid": f"S{j}-{i}",
            "a": a[j],
            "b": b[j],
            "yi": rng.normal(0.3, 0.2),
            "vi": 0.02 + 0.005 * i,
        }
        for j, k in enumerate(ks)
        for i in range(k)
    ]
    data = pd.DataFrame(rows)
    for c in ("a", "b"):
        data[c] = data[c].astype("Int64")
    return AnalysisData(data, cb, "sid", "eid")


# --------------------------------------------------------------------------- profiles by hand
def test_profiles_counted_by_hand_on_a_toy_data_set():
    ad = _toy()
    prog, varying = programme_components(ad.data, "sid", ["a", "b"], ad.codebook.variables)
    assert varying == {}
    assert prog["k"].tolist() == [3, 2, 4, 1, 3, 2]
    labels = {"a": "Component A", "b": "Component B"}
    pt = component_profiles(prog, ["a", "b"], labels)
    f = pt.frame.set_index("profile")
    # complete programmes: S0 (a), S1 (b), S4 (b), S5 (a + b); S2 and S3 miss a value
    assert pt.left_out == ("S2", "S3")
    assert f.index.tolist() == ["01", "10", "11"]  # 2 programmes first, then by k (3 > 2)
    assert f["n_programmes"].tolist() == [2, 1, 1]
    assert f["k"].tolist() == [2 + 3, 3, 2]
    assert f["label"].tolist() == ["Component B", "Component A", "Component A + Component B"]
    assert pt.membership == {"S0": "10", "S1": "01", "S4": "01", "S5": "11"}


def test_consistency_and_coverage_by_hand_on_a_toy_data_set():
    ad = _toy()
    prog, _ = programme_components(ad.data, "sid", ["a", "b"])
    positive = {"S0": True, "S1": False, "S2": True, "S3": True, "S4": False, "S5": True}
    c = component_consistency(prog, positive, ["a", "b"]).to_frame()
    # a: known S0 S1 S2 S4 S5; with a: S0 S2 S5; positive (known): S0 S2 S5, all with a
    # b: known S0 S1 S4 S5; with b: S1 S4 S5; positive (known): S0 S5, with b: S5
    assert c.loc[
        "a", ["n_known", "n_with", "n_positive", "n_positive_with", "n_missing"]
    ].tolist() == [5, 3, 3, 3, 1]
    assert c.loc[
        "b", ["n_known", "n_with", "n_positive", "n_positive_with", "n_missing"]
    ].tolist() == [4, 3, 2, 1, 2]
    close(
        c.loc["a", ["consistency", "coverage", "positive_share_with"]],
        [3 / 3, 3 / 5, 3 / 3],
        CLOSED,
    )
    close(
        c.loc["b", ["consistency", "coverage", "positive_share_with"]],
        [1 / 2, 3 / 4, 1 / 3],
        CLOSED,
    )


def test_profiles_below_min_programmes_are_listed_not_pooled_and_flagged():
    ad = _toy()
    ca = analyse_components(ad, SPEC, min_programmes=2)
    f = ca.profiles.frame.set_index("profile")
    assert f["pooled"].tolist() == [True, False, False]
    assert f.loc[["10", "11"], "estimate"].isna().all()
    assert f.loc["10", "note"] == "not pooled: 1 programme(s) < 2"
    # a single pooled profile is the intercept-only model of its programmes' rows (S1, S4)
    rows = ad.data[ad.data["sid"].isin(["S1", "S4"])]
    res = fit_model(ad, SPEC, data=rows)
    close(f.loc["01", ["estimate", "se"]], [res.b[0], res.se[0]], CLOSED)
    assert any("2 programme(s) with a missing component value" in x for x in ca.flags)
    assert any("2 profile(s) with fewer than 2" in x for x in ca.flags)


def test_pooled_profile_means_are_the_intercept_free_profile_model():
    ad = _toy()
    ca = analyse_components(ad, SPEC, min_programmes=1)
    f = ca.profiles.frame.set_index("profile")
    keep = ad.data[ad.data["sid"].isin(["S0", "S1", "S4", "S5"])].copy()
    keep["prof"] = keep["sid"].map({"S0": "p10", "S1": "p01", "S4": "p01", "S5": "p11"})
    res = fit_model(ad, SPEC, mods=["prof"], intercept=False, data=keep)
    ref = dict(zip(["01", "10", "11"], res.b, strict=True))  # factor levels sorted: p01 p10 p11
    close(f.loc[["01", "10", "11"], "estimate"], [ref["01"], ref["10"], ref["11"]], CLOSED)


def test_default_components_are_the_role_component_variables_only():
    ad = _toy()
    assert analyse_components(ad, SPEC).components == ("a", "b")
    # assink2016: pubstatus is a binary moderator of the studies table, not a component
    ca = analyse_components(_assink(), SPEC)
    assert ca.components == () and not ca.applicable
    assert ca.reason == NO_COMPONENTS and "role: component" in ca.reason


def test_without_components_no_profiles_or_consistency_but_the_study_effects():
    ca = analyse_components(_assink(), SPEC)
    assert ca.profiles.frame.empty and ca.profiles.components == ()
    assert ca.consistency.components == () and len(ca.consistency.n_known) == 0
    assert ca.flags == ()  # not applicable is not a warning
    # the study effects (the forest plot's study estimates) are those of metafor aggregate()
    agg = json.loads((REF / "extra" / "bias_reference.json").read_text())
    ref = agg["datasets"]["assink2016"]["cases"]["aggregate_rho06"]["results"]
    close(ca.study_effects.estimate, ref["yi"], CLOSED)
    out = ca.to_dict()
    assert out["applicable"] is False and out["reason"] == NO_COMPONENTS


def test_run_components_without_components_writes_applicable_false_and_no_rows(tmp_path):
    effects = tmp_path / "effect_sizes.csv"
    _assink().data.to_csv(effects, index=False)
    files = {
        "profiles": tmp_path / "profiles.csv",
        "consistency": tmp_path / "consistency.csv",
        "study_effects": tmp_path / "study_effects.csv",
        "json": tmp_path / "components.json",
        "flags": tmp_path / "flags.txt",
    }
    run_components(effect_sizes=effects, codebook=ASSINK_CODEBOOK, **files)
    out = json.loads(files["json"].read_text())
    assert out["applicable"] is False and out["reason"] == NO_COMPONENTS
    assert out["tables"]["component_profiles"]["rows"] == []
    assert out["tables"]["component_consistency"]["rows"] == []
    assert len(out["tables"]["study_effects"]["rows"]) == 17  # one per study
    assert pd.read_csv(files["profiles"]).empty and pd.read_csv(files["consistency"]).empty
    assert files["flags"].read_text().strip() == ""


def test_sparsely_coded_component_is_left_out_of_the_profiles_with_a_flag():
    ad = _toy()
    # by hand: b is coded for S0, S1, S4, S5 (4 of 6 studies, 67%); a for 5 of 6 (83%)
    ca = analyse_components(ad, SPEC, min_coverage=0.7)
    assert ca.profiles.components == ("a",) and list(ca.left_out) == ["b"]
    flag = next(f for f in ca.flags if "left out" in f and "b (Component B)" in f)
    assert "component profiles" in flag and "coded for 4 of 6 studies (67%" in flag
    assert "would lose 2 studies (S2, S3)" in flag
    # profiles of a alone: S3 misses a -> left out; a = 1 (S0, S2, S5), a = 0 (S1, S4)
    f = ca.profiles.frame.set_index("profile")
    assert ca.profiles.left_out == ("S3",)
    assert f.loc[["1", "0"], "n_programmes"].tolist() == [3, 2]
    # consistency is one component at a time: b keeps its row
    assert ca.consistency.components == ("a", "b")
    # the tables: the profiles show a alone, the study effects every component
    profiles = profiles_records(ca, ad, SPEC).frame()
    assert "component.a" in profiles.columns and "component.b" not in profiles.columns
    study = study_effects_records(ca, ad).frame()
    assert study["component.b"].tolist() == ["no", "yes", "", "", "yes", "yes"]
    assert study["in_profiles"].tolist() == ["yes", "yes", "yes", "no", "yes", "yes"]
    # the default share 0.5 keeps both
    assert analyse_components(ad, SPEC).profiles.components == ("a", "b")


# --------------------------------------------------------------------------- study effects
def test_study_aggregate_rule_uses_metafor_aggregate_and_a_normal_ci():
    ad = _assink()
    eff = study_aggregate_effects(ad.data, "study", rho=0.6, level=0.95)
    agg = json.loads((REF / "extra" / "bias_reference.json").read_text())
    agg = agg["datasets"]["assink2016"]["cases"]["aggregate_rho06"]["results"]
    close(eff.estimate, agg["yi"], CLOSED)
    z = stats.norm.ppf(0.975)
    lb = np.asarray(agg["yi"]) - z * np.sqrt(agg["vi"])
    close(eff.ci_lb, lb, CLOSED)
    assert eff.positive.tolist() == (lb > 0).tolist()
    assert list(eff.study) == [str(s) for s in agg["cluster"]]


def test_study_blups_match_metafor_ranef_and_henderson_equations():
    """At metafor's variance components the BLUPs are closed form: 1e-10."""
    ad = _assink()
    mme = _ref("study_level_mme")
    res = fit_model(ad, SPEC, sigma2_fixed={"study": mme["sigma2"][0], "id": mme["sigma2"][1]})
    sb = study_blups(res).to_frame().loc[[str(s) for s in mme["study"]]]
    ranef = _ref("ranef_study")
    close(sb["blup"], ranef["blup"], CLOSED)
    close(sb["se_blup"], ranef["se"], CLOSED)
    close(sb["estimate"], mme["estimate"], CLOSED)
    close(sb["se"] ** 2, mme["pev"], CLOSED)
    # with the variance components estimated here: downstream of REML
    sb2 = study_blups(fit_model(ad, SPEC)).to_frame().loc[[str(s) for s in mme["study"]]]
    close(sb2["estimate"], mme["estimate"], ITER)
    close(sb2["se"] ** 2, mme["pev"], ITER)


def test_blup_rule_counts_a_programme_positive_when_its_interval_is_above_zero():
    ad = _assink()
    mme = _ref("study_level_mme")
    ca = analyse_components(ad, SPEC, positive_rule="blup")
    eff = ca.study_effects.to_frame().loc[[str(s) for s in mme["study"]]]
    crit = stats.t.ppf(0.975, 100 - 1)  # t test of the intercept-only model: k - p = 99 df
    close(eff["estimate"], mme["estimate"], ITER)
    close(eff["se"] ** 2, mme["pev"], ITER)
    close(eff["ci_lb"], eff["estimate"] - crit * eff["se"], CLOSED)
    # the decisions agree with R's bounds (the closest to 0 is 0.0059, far from the 1e-7 noise)
    lb = np.asarray(mme["estimate"]) - crit * np.sqrt(mme["pev"])
    assert eff["positive"].tolist() == (lb > 0).tolist()
    assert ca.study_effects.description.startswith("blup:")
    # the metafor prediction interval of the BLUP itself uses the same critical value
    ranef = _ref("ranef_study")
    close(np.asarray(ranef["blup"]) - crit * np.asarray(ranef["se"]), ranef["pi_lb"], CLOSED)


def test_study_blup_effects_needs_a_multilevel_model():
    ad = _assink()
    one_level = fit_model(ad, ModelSpec(structure="random_effects"))
    with pytest.raises(ValueError, match="multilevel"):
        study_blup_effects(one_level)


# --------------------------------------------------------------------------- the real pipeline
def _studies_by_hand() -> tuple[pd.DataFrame, list[str]]:
    """Components per study from data/raw/studies.csv, -99 as missing (the codebook's code)."""
    cb = load_codebook(REPO / "data" / "codebook.yaml")
    comps = [v.name for v in cb.components()]
    studies = pd.read_csv(REPO / "data" / "raw" / "studies.csv")
    studies[comps] = studies[comps].replace(-99, np.nan)
    return studies.set_index("study_id"), comps


@pytest.mark.pipeline
def test_example_profiles_match_a_pandas_count_from_studies_csv(example_run):
    res = example_run.results
    studies, comps = _studies_by_hand()
    k = pd.read_csv(res / "effect_sizes.csv").groupby("study_id").size()
    studies = studies.loc[k.index]
    complete = studies.dropna(subset=comps).copy()
    complete["k"] = k
    expected = complete.groupby(comps).agg(programmes=("k", "size"), k=("k", "sum"))
    cb = load_codebook(REPO / "data" / "codebook.yaml")
    table = pd.read_csv(res / "tables" / "component_profiles.csv")
    bits = table[[cb.label(c) for c in comps]].apply(lambda col: col.map({"yes": 1, "no": 0}))
    got = pd.DataFrame(
        {"programmes": table["Programmes (studies)"].to_numpy(), "k": table["k (effect sizes)"]}
    )
    got.index = pd.MultiIndex.from_frame(bits.set_axis(comps, axis=1))
    got = got.sort_index()
    expected.index = expected.index.set_levels([lv.astype(int) for lv in expected.index.levels])
    pd.testing.assert_frame_equal(got, expected.sort_index(), check_dtype=False)
    assert table["Programmes (studies)"].sum() == len(complete) == 28  # S02, S28 miss a value
    # components.min_profile_programmes defaults to 2: a profile of one programme is not pooled
    pooled = table["Programmes (studies)"] >= 2
    assert table["Pooled"].eq(pooled.map({True: "yes", False: "no"})).all()
    assert table["Mean effect"].notna().eq(pooled).all()
    assert pooled.any() and not pooled.all()


@pytest.mark.pipeline
def test_example_consistency_recounted_from_study_effects_and_studies_csv(example_run):
    res = example_run.results
    studies, comps = _studies_by_hand()
    se = pd.read_csv(res / "tables" / "study_effects.csv").set_index("Study")
    # the study_aggregate rule: positive iff the normal 95% CI is above 0
    z = stats.norm.ppf(0.975)
    close(se["95% CI lower"], se["Estimate"] - z * se["SE"], CLOSED)
    assert (se["Positive"] == "yes").tolist() == (se["95% CI lower"] > 0).tolist()
    positive = se["Positive"].eq("yes")
    table = pd.read_csv(res / "tables" / "component_consistency.csv").set_index("Component")
    for c in comps:
        known = studies[c].notna()
        has = studies[c].eq(1) & known
        pos = positive.reindex(studies.index).fillna(False) & known
        assert table.loc[c, "Programmes with it"] == has.sum()
        assert table.loc[c, "Positive programmes (known value)"] == pos.sum()
        assert table.loc[c, "Positive programmes with it"] == (pos & has).sum()
        close(
            table.loc[c, "Consistency of necessity: share of positive programmes with it"],
            (pos & has).sum() / pos.sum(),
            CLOSED,
        )
        close(
            table.loc[c, "Coverage: share of all programmes with it"],
            has.sum() / known.sum(),
            CLOSED,
        )
    assert table["Positive rule"].str.startswith("study_aggregate").all()
    out = json.loads((res / "models" / "components.json").read_text())
    assert (
        out["positive_rule"]["rule"] == "study_aggregate"
        and "rho = 0.6" in out["positive_rule"]["description"]
    )
    flags = (res / "flags" / "components.txt").read_text()
    assert "2 programme(s) with a missing component value" in flags and "S02" in flags
