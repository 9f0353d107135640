"""The flags that must never stay silent (:class:`~intervention_meta.analyses.flags.Flags`
with the thresholds of :class:`~intervention_meta.analyses.flags.FlagRules`, the config's
``flags`` section): each rule is triggered once and left quiet once.

Data: the Credé et al. (2010) effect sizes of ``tests/reference/datasets/crede2010`` (metadat
``dat.crede2010``; yi, vi from R's ``escalc(measure = "ZCOR")``), where R puts the sample-level
variance at 1.4e-12 (``rma.mv(yi, vi, random = ~ 1 | studyid/sampleid/esid)``), and the shipped
example literature (``config/config.yaml``) computed by the clean and effect-size steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from pipeline_helpers import ROOT, copy_project, run_snakemake, skip_extras

from intervention_meta import steps
from intervention_meta.analyses.analysis_model import (
    ModelSpec,
    load_analysis_data,
)
from intervention_meta.analyses.bias import bias_analysis
from intervention_meta.analyses.flags import FlagRules, Flags
from intervention_meta.analyses.moderators import analyse_moderator
from intervention_meta.analyses.sensitivity import sensitivity_analysis
from intervention_meta.effect_sizes.compute import (
    EffectSizeResult,
    effect_size_flags,
    tiny_variances,
)
from intervention_meta.effect_sizes.measures import get_measure
from intervention_meta.models import fit

CREDE = ROOT / "tests" / "reference" / "datasets" / "crede2010"


def _crede() -> pd.DataFrame:
    ref = json.loads((CREDE / "reference.json").read_text(encoding="utf-8"))
    data = pd.read_csv(CREDE / "effects.csv")
    data["yi"], data["vi"] = ref["yi"], ref["vi"]
    return data


# --------------------------------------------------------------------------- the rules
def test_flag_rules_defaults_are_the_config_schema_defaults():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    section = schema["properties"]["flags"]["properties"]
    defaults = FlagRules()
    assert set(section) == set(defaults.__dataclass_fields__)
    for name, entry in section.items():
        assert float(entry["default"]) == getattr(defaults, name), name


def test_flag_rules_from_config_overrides_and_refuses_unknown_keys():
    assert FlagRules.from_config({"robust_se_ratio": 5}).robust_se_ratio == 5.0
    assert FlagRules.from_config(None) == FlagRules()
    with pytest.raises(ValueError, match="tiny_vi"):
        FlagRules.from_config({"tiny_vi": 10})


# --------------------------------------------------------------------------- tiny vi
def test_tiny_vi_is_flagged_by_ratio_and_by_weight_share():
    vi = np.array([0.01, 0.02, 0.015, 1e-12, 0.03])
    assert tiny_variances(vi).tolist() == [False, False, False, True, False]
    # 0.001 is only 15x below the median, but carries over half the fixed-effect weight
    share = np.array([0.02, 0.02, 0.001, 0.02, 0.02])
    assert tiny_variances(share).tolist() == [False, False, True, False, False]
    assert not tiny_variances(share, share=0.9).any()


def test_similar_vi_are_not_flagged():
    assert not tiny_variances(np.array([0.01, 0.02, 0.015, 0.005, 0.03])).any()
    assert not tiny_variances(np.array([1e-12])).any()  # nothing to compare with


def _es_result(yi, vi, measure="SMD") -> EffectSizeResult:
    table = pd.DataFrame({"es_id": [f"e{i}" for i in range(len(yi))], "yi": yi, "vi": vi})
    counts = {"key": "es_id"}
    return EffectSizeResult(table, table.iloc[:0], counts, measure=get_measure(measure).to_dict())


def test_effect_size_step_flags_tiny_vi_and_implausible_effects_per_row():
    lines = effect_size_flags(_es_result([0.2, 6.5, 0.1, 0.3], [0.02, 0.03, 1e-12, 0.04]))
    assert len(lines) == 2
    assert "es_id e2: vi = 1e-12" in lines[0]
    assert "es_id e1" in lines[1] and "implausibly large" in lines[1]
    # Fisher's z has its own bound (arctanh(0.99) = 2.65): 2 is plausible, 3 is not
    z = effect_size_flags(_es_result([2.0, 3.0, 0.1], [0.01, 0.01, 0.01], "ZCOR"))
    assert len(z) == 1 and "es_id e1" in z[0]


def test_effect_size_step_raises_no_flag_on_ordinary_rows():
    assert effect_size_flags(_es_result([0.2, -1.5, 0.1, 0.3], [0.02, 0.03, 0.01, 0.04])) == []


@pytest.fixture(scope="module")
def example_effect_sizes(tmp_path_factory) -> Path:
    """The example literature through the clean and effect-size steps (the default config)."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    out = tmp_path_factory.mktemp("example_es")
    codebook = str(ROOT / config["codebook"])
    steps.clean(
        codebook=codebook,
        studies=str(ROOT / config["data"]["studies"]),
        effects=str(ROOT / config["data"]["effects"]),
        clean_effects=str(out / "effects.csv"),
        dropped=str(out / "dropped.csv"),
        summary=str(out / "summary.json"),
        inclusion=config.get("inclusion"),
    )
    steps.effect_sizes(
        codebook=codebook,
        clean_effects=str(out / "effects.csv"),
        table=str(out / "effect_sizes.csv"),
        dropped=str(out / "es_dropped.csv"),
        summary=str(out / "es_summary.json"),
        flags=str(out / "flags.txt"),
        options=config.get("effect_sizes"),
    )
    return out


def test_one_tiny_vi_in_the_example_is_named_by_the_bias_step(example_effect_sizes):
    """A single effect size with vi = 1e-12 dominates the Egger-type tests, fail-safe N and
    trim-and-fill: the bias step names it (its key and vi), as does the effect-size step."""
    codebook = ROOT / "data" / "codebook.yaml"
    ad = load_analysis_data(example_effect_sizes / "effect_sizes.csv", codebook)
    clean = bias_analysis(ad, ModelSpec())
    assert not [ln for ln in clean.flags if "tiny" in ln]

    key = ad.data.loc[3, ad.es]
    ad.data.loc[3, "vi"] = 1e-12
    tiny = ad.data.copy()
    result = bias_analysis(ad, ModelSpec())
    named = [ln for ln in result.flags if f"{ad.es} {key}: vi = 1e-12" in ln]
    assert len(named) == 1, result.flags
    assert named[0].startswith("[bias]") and "Egger" in named[0] and "fail-safe N" in named[0]

    # the effect-size step raises the same row from its own table
    path = example_effect_sizes / "tiny.csv"
    tiny.to_csv(path, index=False)
    table = pd.read_csv(path)
    lines = effect_size_flags(
        EffectSizeResult(table, table.iloc[:0], {"key": ad.es}, measure={"code": "SMD"})
    )
    assert any(f"{ad.es} {key}: vi = 1e-12" in ln for ln in lines)


def test_example_effect_size_step_writes_its_flags_file(example_effect_sizes):
    """The step writes its flags file even with nothing to flag (the warnings rule reads it)."""
    text = (example_effect_sizes / "flags.txt").read_text(encoding="utf-8")
    assert all(line.startswith("[effect_sizes] ") for line in text.splitlines())


@pytest.mark.pipeline
def test_the_warnings_file_collects_the_effect_size_step_flags(tmp_path):
    """The warnings rule reads the effect-size step's flags: a reported g of 9 (S01-1 of the
    example, reported as d = -0.71 [-0.92, -0.49]) reaches results/example/warnings.txt."""
    work = copy_project(tmp_path)
    effects = pd.read_csv(work / "data" / "raw" / "effects.csv", dtype=str, keep_default_na=False)
    row = effects["es_id"] == "S01-1"
    effects.loc[row, ["d_value", "d_ci_lower", "d_ci_upper"]] = ["9.0", "8.7", "9.3"]
    effects.to_csv(work / "data" / "raw" / "effects.csv", index=False)
    skip_extras(work)
    run_snakemake(work, "results/example/warnings.txt", check=True)
    res = work / "results" / "example"
    own = (res / "flags" / "effect_sizes.txt").read_text(encoding="utf-8").splitlines()
    assert any(ln.startswith("[effect_sizes] es_id S01-1: ") for ln in own), own
    assert set(own) <= set((res / "warnings.txt").read_text(encoding="utf-8").splitlines())


# --------------------------------------------------------------------------- the boundary
def test_sample_variance_of_crede_on_the_boundary_is_flagged_with_what_it_implies():
    data = _crede()
    res = fit(data, "yi", "vi", random=["studyid", "sampleid", "esid"])
    flags = Flags("overall")
    flags.check_boundary(res, "overall model", data["vi"])
    assert len(flags.lines) == 1
    line = flags.lines[0]
    assert "sigma2[sampleid]" in line and "boundary" in line
    assert "reduces to the one without it (random effects: studyid, esid)" in line


def test_estimated_variances_off_the_boundary_are_not_flagged():
    data = _crede()
    res = fit(data, "yi", "vi", random=["studyid", "esid"])  # 0.023 and 0.033 (R: the same)
    flags = Flags("overall")
    flags.check_boundary(res, "overall model", data["vi"])
    assert flags.lines == []


def test_tau2_at_zero_is_flagged_and_positive_tau2_is_not():
    vi = np.full(6, 0.04)
    homogeneous = pd.DataFrame({"yi": [0.30, 0.31, 0.29, 0.30, 0.32, 0.28], "vi": vi})
    heterogeneous = pd.DataFrame({"yi": [-0.6, 0.1, 0.9, 1.4, -0.2, 0.5], "vi": vi})
    flags = Flags("moderators")
    flags.check_boundary(fit(homogeneous, "yi", "vi"), "slope model", vi)
    assert len(flags.lines) == 1 and "tau2 = 0" in flags.lines[0]
    assert "fixed-effect model" in flags.lines[0]
    flags = Flags("moderators")
    flags.check_boundary(fit(heterogeneous, "yi", "vi"), "slope model", vi)
    assert flags.lines == []


# --------------------------------------------------------------------------- CR2 results
def _robust(se, df, names=("intrcpt", "slope")):
    return SimpleNamespace(coef_names=names, se=np.asarray(se), df=np.asarray(df), n_clusters=12)


def test_cr2_se_far_below_the_model_se_names_the_coefficient_and_both_ses():
    model = SimpleNamespace(se=np.array([0.7, 0.2]))
    flags = Flags("overall")
    flags.check_robust(model, _robust([0.01, 0.19], [30.0, 30.0]), "overall model")
    assert len(flags.lines) == 1
    line = flags.lines[0]
    assert "intrcpt" in line and "0.01" in line and "0.7" in line and "df" in line
    flags = Flags("overall", rules=FlagRules(robust_se_ratio=100))
    flags.check_robust(model, _robust([0.01, 0.19], [30.0, 30.0]), "overall model")
    assert flags.lines == []


def test_every_cr2_coefficient_with_df_below_4_is_flagged_not_only_the_intercept():
    model = SimpleNamespace(se=np.array([0.1, 0.1, 0.1]))
    robust = _robust([0.1, 0.1, 0.1], [12.0, 2.5, 3.9], ("intrcpt", "x1", "x2"))
    flags = Flags("moderators")
    flags.check_robust(model, robust, "multiple-moderator model")
    assert len(flags.lines) == 2
    assert "x1: CR2 t test: Satterthwaite df = 2.50 < 4" in flags.lines[0]
    assert "x2" in flags.lines[1] and "Tipton 2015" in flags.lines[1]


def test_htz_wald_tests_with_small_df_are_flagged():
    flags = Flags("moderators")
    flags.check_wald({"df_denom": 3.2}, "criterion")
    flags.check_wald({"df_denom": 11.0}, "source")
    flags.check_wald(None, "not computed")
    assert flags.lines == [
        "[moderators] criterion: HTZ Wald test: Satterthwaite df = 3.20 < 4; the p value and CI "
        "are unreliable with so few df (Tipton 2015)"
    ]


@pytest.fixture
def five_studies(tmp_path):
    """Five studies of Credé et al. (their year merged in) as the analysis data."""
    data = _crede().merge(pd.read_csv(CREDE / "studies.csv"), on="studyid")
    data = data.loc[data["studyid"].isin(data["studyid"].unique()[:5])]
    data.to_csv(tmp_path / "effect_sizes.csv", index=False)
    return load_analysis_data(tmp_path / "effect_sizes.csv", CREDE / "codebook.yaml")


def test_moderator_with_few_clusters_flags_every_coefficient_and_its_wald_test(five_studies):
    """Publication year as a moderator of five studies: the CR2 df of the intercept, of the
    slope and of its HTZ Wald test fall below 4, and each is flagged."""
    res = analyse_moderator(five_studies, "year", ModelSpec(levels=("studyid", "esid")))
    small_df = [ln for ln in res.flags if "df =" in ln]
    for coef in ("intrcpt", "year"):
        assert any(f"year: slope model: {coef}: CR2 t test" in ln for ln in small_df), res.flags
    assert any("year: slope: HTZ Wald test" in ln for ln in small_df), res.flags


def test_sensitivity_flags_its_cr2_rows_with_few_clusters(five_studies):
    """The estimator comparison's CR2 rows (three-level and CHE) on five studies: df < 4."""
    spec = ModelSpec(levels=("studyid", "esid"))
    result = sensitivity_analysis(five_studies, spec, sensitivity={"rho_values": []})
    small_df = [ln for ln in result.flags if "CR2 t test: Satterthwaite df" in ln]
    assert any("Three-level" in ln for ln in small_df), result.flags
    assert any("CHE (rho = 0.6)" in ln for ln in small_df), result.flags


# --------------------------------------------------------------------------- convergence
def test_non_convergence_is_flagged_and_convergence_is_not():
    ok = SimpleNamespace(converged=True, n_dropped=0)
    failed = SimpleNamespace(
        converged=False, n_dropped=0, convergence=SimpleNamespace(reason="iteration limit")
    )
    flags = Flags("sensitivity")
    flags.check_fit(ok, "analysis model")
    assert flags.lines == []
    flags.check_fit(failed, "outliers removed")
    assert flags.lines == [
        "[sensitivity] outliers removed: the optimizer did not converge (iteration limit)"
    ]
