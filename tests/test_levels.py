"""Any nesting: ``models.levels`` (effect sizes nested in samples nested in studies).

Expected numbers: ``tests/reference/datasets/crede2010/reference.json``, made by
``tests/reference/datasets/make_datasets.R`` with R 4.2.2, metafor 3.8.1 and clubSandwich 0.5.8 on
``metadat::dat.crede2010`` (Fisher z of 97 correlations in 88 samples in 68 studies; ``sampleid``
restarts at 1 in every study). The R calls, as the JSON records them:

* ``overall``: ``rma.mv(yi, vi, random = ~ 1 | studyid/sampleid/esid, method = "REML",
  test = "t")``; ``overall_cr2``: ``coef_test(res, vcov = "CR2", cluster = dat$studyid)`` and
  ``conf_int``;
* ``variance``: the typical sampling variance (k - p) / tr(P) and I2 per level (Cheung 2014);
* ``level_lrt``: per level, ``anova(res, reduced)`` with that level's sigma2 fixed at 0;
* ``mods_criterion``: the same model with ``mods = ~ criterion``; ``mods_criterion_cr2``
  (``coef_test``, CR2 by study) and ``mods_criterion_wald_htz`` (``Wald_test(..., test = "HTZ")``).

The effect sizes are the JSON's ``yi``/``vi`` (escalc ``ZCOR``) beside the fixture's CSVs, so
these tests do not depend on the effect-size step. Tolerances: 1e-6 relative, variance components
and I2 1e-5 relative; R puts the sample-level variance on the boundary (1.4e-12, ours 0): such a
component is compared absolutely at 1e-8.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache

import numpy as np
import pandas as pd
import pytest
import yaml
from pipeline_helpers import ROOT

from intervention_meta.analyses.analysis_model import (
    AnalysisData,
    ModelSpec,
    fit_model,
    load_analysis_data,
)
from intervention_meta.analyses.overall import overall_analysis, run_overall
from intervention_meta.config import check_levels, level_columns, load_config
from intervention_meta.data.cleaning import EffectSizeData
from intervention_meta.data.codebook import load_codebook
from intervention_meta.errors import InputError
from intervention_meta.outputs.tables import apa_table

FOLDER = ROOT / "tests" / "reference" / "datasets" / "crede2010"
LEVELS = ["studyid", "sampleid", "esid"]
ITER, VAR, BOUNDARY = 1e-6, 1e-5, 1e-8


@cache
def _reference() -> dict:
    return json.loads((FOLDER / "reference.json").read_text())


def _ref(case: str):
    return _reference()["cases"][case]["results"]


def _close(actual, expected, rtol: float = ITER, atol: float = 0.0, what: str = "") -> None:
    """``actual`` equals R's ``expected`` to ``rtol`` relative (or ``atol`` absolute)."""
    ours, theirs = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def _sigma2(actual, expected, what: str = "sigma2") -> None:
    """Variance components: 1e-5 relative, a component on the boundary absolutely at 1e-8."""
    _close(actual, expected, VAR, atol=BOUNDARY, what=what)


@pytest.fixture(scope="module")
def crede(tmp_path_factory) -> AnalysisData:
    """The fixture's effects with their studies merged in, R's yi/vi, levels from the config.

    The codebook is the fixture's, less ``es_input`` (the effect-size contract of the statistic
    columns belongs to the effect-size step; these tests need the levels' labels only).
    """
    effects = pd.read_csv(FOLDER / "effects.csv")
    studies = pd.read_csv(FOLDER / "studies.csv")
    data = effects.merge(studies, on="studyid", how="left", sort=False)
    ref = _reference()
    data["yi"], data["vi"] = ref["yi"], ref["vi"]
    raw = yaml.safe_load((FOLDER / "codebook.yaml").read_text())
    raw["variables"] = [v for v in raw["variables"] if v["name"] != "es_input"]
    path = tmp_path_factory.mktemp("crede2010") / "codebook.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    codebook = load_codebook(path)
    config = yaml.safe_load((FOLDER / "config.yaml").read_text())
    assert config["models"]["levels"] == LEVELS
    spec = ModelSpec.from_config(config["models"])
    read = EffectSizeData(data, codebook, "studyid", "esid")
    return load_analysis_data(read, codebook, levels=spec.levels)


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return ModelSpec.from_config({"structure": "multilevel", "levels": LEVELS})


@pytest.fixture(scope="module")
def overall(crede, spec):
    return overall_analysis(crede, spec)


# ------------------------------------------------------------------------- the model
def test_levels_are_the_random_effects_and_the_outermost_is_the_cluster(crede):
    assert crede.random == LEVELS and crede.cluster == "studyid"
    assert crede.n_clusters == 68 and crede.k == 97
    assert crede.level_names() == ["studies", "samples", "effect sizes"]


def test_four_level_model_matches_metafor_rma_mv_crede2010(overall):
    r = _ref("overall")
    m = overall.model
    assert m.random == tuple(LEVELS) and m.k == r["k"]
    assert [m.n_levels[lev] for lev in LEVELS] == r["s_nlevels"] == [68, 88, 97]
    assert [overall.n_units[lev] for lev in LEVELS] == r["s_nlevels"]
    for ours, theirs in (("b", "b"), ("se", "se"), ("pval", "pval"), ("ci_lb", "ci_lb")):
        _close(getattr(m, ours), [r[theirs]], what=ours)
    _close(m.ci_ub, [r["ci_ub"]], what="ci_ub")
    assert m.dfs[0] == r["dfs"] == 96
    _sigma2([m.sigma2[lev] for lev in LEVELS], r["sigma2"])
    _close(m.QE, r["qe"], what="QE")
    _close(m.QEp, r["qep"], what="QEp")
    _close(m.logLik, r["loglik"], what="logLik")
    est = overall.estimate_dict()
    _close([est["pi_lb"], est["pi_ub"]], [r["pi_lb"], r["pi_ub"]], what="prediction interval")


def test_cr2_clusters_by_the_outermost_level_as_clubsandwich(overall):
    r, rob = _ref("overall_cr2"), overall.robust
    assert rob["cluster"] == "studyid" and rob["clusters"] == 68
    for ours, theirs in (
        ("beta", "beta"),
        ("se", "se"),
        ("tstat", "tstat"),
        ("df_satt", "df_satt"),
        ("p_satt", "p_satt"),
        ("ci_lower", "ci_l"),
        ("ci_upper", "ci_u"),
    ):
        _close(rob[ours], r[theirs], what=ours)


def test_variance_distribution_has_one_i2_per_level_as_cheung(overall):
    r = _ref("variance")
    vd = overall.model.variance_distribution
    _close(vd.typical_v, r["typical_v"], what="typical_v")
    _close([vd.i2[lev] for lev in LEVELS], r["i2"], VAR, atol=BOUNDARY, what="I2 per level")
    _close(vd.i2_total, r["i2_total"], VAR, what="I2 total")
    table = overall.variance_frame().set_index("Level")
    assert table.index.tolist() == ["1", "2", "3", "4", "2 + 3 + 4"]
    shares = table["% of total variance"]
    _close(shares[["1", "2", "3", "4"]].sum(), 100.0, 1e-12)
    # level 2 is the innermost random level, level 4 the outermost
    _close(shares[["2", "3", "4"]], r["i2"][::-1], VAR, atol=BOUNDARY)
    assert table.loc["3", "Source of variance"] == "Within studies (Sample)"
    assert table.loc["2", "Source of variance"] == "Within samples (Correlation)"


def test_level_lrts_match_metafor_anova_per_level(overall):
    tests = {lt.level: lt for lt in overall.model.level_tests}
    assert list(tests) == LEVELS
    for lev, r in zip(LEVELS, _ref("level_lrt"), strict=True):
        lt = tests[lev]
        assert [s is not None for s in r["sigma2_fixed"]] == [x == lev for x in LEVELS]
        # the sample level's LRT is 0 in R (its variance is on the boundary): absolutely
        _close(lt.lrt, r["lrt"], ITER, atol=BOUNDARY, what=f"LRT {lev}")
        _close(lt.pval, r["pval"], ITER, what=f"p {lev}")
        assert lt.df == 1
        _sigma2([lt.sigma2_reduced[x] for x in LEVELS], r["sigma2_reduced"], f"reduced {lev}")


def test_moderator_model_and_htz_wald_cluster_by_the_outermost_level(crede, spec):
    r = _ref("mods_criterion")
    res = fit_model(crede, spec, mods=["criterion"])
    assert list(res.coef_names) == r["coef_names"]
    for key in ("b", "se", "pval", "ci_lb", "ci_ub"):
        _close(getattr(res, key), r[key], what=key)
    _sigma2([res.sigma2[lev] for lev in LEVELS], r["sigma2"])
    _close(res.QM, r["qm"], what="QM")
    rob = res.robust(cluster=crede.cluster)
    cr2 = _ref("mods_criterion_cr2")
    for i in range(2):
        ct = rob.coef_test(i)
        for ours, theirs in (("se", "se"), ("tstat", "tstat"), ("df_satt", "df_satt")):
            _close(ct[ours], cr2[theirs][i], what=f"{ours}[{i}]")
        _close(ct["p_satt"], cr2["p_satt"][i], what=f"p_satt[{i}]")
    htz, w = _ref("mods_criterion_wald_htz"), rob.wald([1])
    _close(w.fstat, htz["fstat"], what="F")
    _close(w.df_denom, htz["df_denom"], what="df_denom")
    _close(w.p_val, htz["p_val"], what="p")
    assert w.df_num == htz["df_num"]


# ------------------------------------------------------------------------- outputs
def test_description_names_the_levels_by_their_codebook_labels(overall):
    text = overall.describe()
    assert text.startswith("four-level model (effect sizes nested in samples nested in studies)")
    d = overall.to_dict()
    assert d["analysis"]["levels"] == LEVELS and d["analysis"]["cluster"] == "studyid"
    assert d["analysis"]["description"] == text
    assert d["analysis"]["n_units"] == {"studyid": 68, "sampleid": 88, "esid": 97}
    assert set(d["sigma2"]) == set(LEVELS) and set(d["level_tests"]) == set(LEVELS)
    rows = overall.to_frame().set_index("Result")
    assert "Variance within studies (Sample): sigma2[sampleid]" in rows.index
    note = rows.loc["Variance between studies (Study): sigma2[studyid]", "Note"]
    assert note.startswith("level 4:")
    assert "clustered by Study (68 clusters" in rows.loc["Mean effect (CR2 cluster-robust)", "Note"]


def test_comparison_table_has_one_sigma2_per_level(overall):
    table = overall.comparison_table()
    keys = [k for k in table.columns if k.startswith("sigma2")]
    assert keys == ["sigma2_between", "sigma2.sampleid", "sigma2_within"]
    assert table.columns["sigma2.sampleid"] == "sigma2[sampleid] (within studies)"
    assert table.columns["sigma2_within"] == "sigma2[esid] (within samples)"
    first = table.rows[0]
    assert first["structure"] == "multilevel" and first["analysis_model"] == "yes"
    assert first["model"] == "Four-level model (Correlation in Sample in Study)"
    _sigma2([first[k] for k in keys], _ref("overall")["sigma2"])
    assert [row["structure"] for row in table.rows] == [
        "multilevel",
        "random_effects",
        "fixed_effect",
    ]
    assert all(row.get(k) is None for row in table.rows[1:] for k in keys)
    apa = apa_table(table, "overall_comparison", 1)  # the readable table shows every level
    shown = [c for c in apa.columns if c.startswith("sigma2")]
    assert shown == ["sigma2 between", "sigma2[sampleid] (within studies)", "sigma2 within"]
    assert apa.rows[0][apa.columns.index(shown[1])] == "0.000"


def test_three_level_is_a_synonym_of_multilevel(crede, overall, spec):
    same = overall_analysis(crede, dataclasses.replace(spec, structure="three_level"))
    assert same.model.b[0] == overall.model.b[0]
    assert same.model.sigma2 == overall.model.sigma2
    assert list(same.comparison) == ["three_level", "random_effects", "fixed_effect"]
    assert ModelSpec.from_config({"structure": "multilevel"}).multilevel


def test_default_levels_are_the_study_and_effect_keys(crede):
    default = dataclasses.replace(crede, levels=())
    assert default.random == ["studyid", "esid"] and default.cluster == "studyid"
    assert (
        ModelSpec()
        .describe(default.level_names())
        .startswith("three-level model (effect sizes nested in studies), REML")
    )
    assert ModelSpec().describe() == ModelSpec(structure="multilevel").describe()


def test_overall_step_reads_the_levels_from_the_models_section(crede, tmp_path):
    effect_sizes = tmp_path / "effect_sizes.csv"
    crede.data.to_csv(effect_sizes, index=False)
    out = {name: tmp_path / f"{name}.csv" for name in ("table", "comparison", "variance")}
    models = {"structure": "three_level", "levels": LEVELS}
    run_overall(
        effect_sizes,
        crede.codebook,
        models,
        json_path=tmp_path / "o.json",
        flags_path=tmp_path / "flags.txt",
        **out,
    )
    d = json.loads((tmp_path / "o.json").read_text())
    assert d["analysis"]["levels"] == LEVELS and d["robust"]["cluster"] == "studyid"
    _sigma2([d["sigma2"][lev] for lev in LEVELS], _ref("overall")["sigma2"])
    comparison = pd.read_csv(out["comparison"])
    assert "sigma2[sampleid] (within studies)" in comparison.columns
    assert pd.read_csv(out["variance"])["Level"].tolist() == ["1", "2", "3", "4", "2 + 3 + 4"]
    with pytest.raises(InputError, match="models.levels"):
        run_overall(
            effect_sizes,
            crede.codebook,
            {"levels": ["studyid", "sample"]},
            json_path=tmp_path / "x.json",
            flags_path=tmp_path / "x.txt",
            **out,
        )


# ------------------------------------------------------------------------- flags
def test_one_outer_unit_fixes_its_variance_at_zero_and_is_flagged(crede, spec):
    keep = crede.data["studyid"] == crede.data["studyid"].value_counts().idxmax()
    one = dataclasses.replace(crede, data=crede.data.loc[keep].reset_index(drop=True))
    res = overall_analysis(one, spec)
    assert res.fixed_levels == ("studyid",) and res.model.sigma2["studyid"] == 0.0
    assert res.robust is None
    assert any("only one study" in f for f in res.flags)
    assert any("needs at least 2 clusters (studyid)" in f for f in res.flags)


def test_a_level_with_one_unit_per_outer_unit_is_flagged(crede, spec):
    # one row per sample: the sample and effect-size variances are not separately identified
    first = crede.data.drop_duplicates(["studyid", "sampleid"]).reset_index(drop=True)
    res = overall_analysis(dataclasses.replace(crede, data=first), spec)
    flagged = [f for f in res.flags if "not separately identified" in f]
    assert len(flagged) == 1 and "sigma2[sampleid] and sigma2[esid]" in flagged[0]


# ------------------------------------------------------------------------- config errors
def test_a_level_the_data_lack_is_an_error_naming_key_column_and_columns(crede):
    problems = check_levels(["studyid", "sample"], list(crede.data.columns))
    assert len(problems) == 1
    p = problems[0]
    assert (p.column, p.value) == ("models.levels", "sample")
    assert "sampleid" in p.expected and "studyid" in p.expected
    assert check_levels(None, ["a"]) == [] and check_levels(LEVELS, LEVELS) == []
    assert len(check_levels(["studyid", "studyid"], LEVELS)) == 1
    # at start-up, from the codebook alone: effects and studies variables
    assert check_levels(LEVELS + ["source"], level_columns(crede.codebook)) == []
    assert check_levels(["sample"], level_columns(crede.codebook))[0].value == "sample"
    read = EffectSizeData(crede.data, crede.codebook, "studyid", "esid")
    with pytest.raises(InputError, match="models.levels") as err:
        load_analysis_data(read, crede.codebook, levels=["studyid", "sample", "esid"])
    assert "'sample'" in str(err.value) and "sampleid" in str(err.value)


def test_levels_config_is_validated():
    with pytest.raises(ValueError, match="models.levels"):
        ModelSpec.from_config({"levels": "studyid"})
    with pytest.raises(ValueError, match="models.structure"):
        ModelSpec.from_config({"structure": "nested"})
    models = yaml.safe_load((FOLDER / "config.yaml").read_text())["models"]
    assert load_config({"models": models})["models"]["levels"] == LEVELS
    for bad in ([], ["studyid", "studyid"], [1], "studyid"):
        with pytest.raises(InputError, match="models.levels"):
            load_config({"models": {"levels": bad}})
