"""The whole pipeline on three published data sets shaped unlike the shipped example.

Each folder of ``tests/reference/datasets`` holds a data set from R's metadat as a user would bring
it (a studies and an effects table with their own column names), its own codebook and config, and
``reference.json``: metafor 3.8 / clubSandwich results made by ``make_datasets.R`` (read it for the
exact calls).

* ``crede2010``: correlations, effect sizes nested in samples nested in studies, Fisher's z,
  ``models.levels: [studyid, sampleid, esid]`` (metafor ``~ 1 | studyid/sampleid/esid``);
* ``bcg``: 2x2 counts as log risk ratios, one effect per trial, statistic columns renamed in the
  codebook's ``requires``;
* ``normand1999``: means/SDs under renamed columns, a mean difference, a study key called
  ``trial_code``, tables called ``trials``/``outcomes`` and no ``es_input`` column.

Tolerances are the project's: 1e-10 relative for closed-form effect sizes, 1e-6 for estimates and
standard errors, 1e-5 for variance components; a component R puts on the boundary (< 1e-8) is
compared absolutely.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import ROOT, PipelineRun, shared_run

DATASETS = ROOT / "tests" / "reference" / "datasets"
NAMES = ("crede2010", "bcg", "normand1999")


def _dataset_run(tmp_path_factory, name: str) -> PipelineRun:
    """The whole pipeline on one data set's config (one run per test session)."""
    config = f"tests/reference/datasets/{name}/config.yaml"
    return shared_run(tmp_path_factory, name, name, "--configfile", config)


@pytest.fixture(scope="session")
def crede_run(tmp_path_factory) -> PipelineRun:
    return _dataset_run(tmp_path_factory, "crede2010")


@pytest.fixture(scope="session")
def bcg_run(tmp_path_factory) -> PipelineRun:
    return _dataset_run(tmp_path_factory, "bcg")


@pytest.fixture(scope="session")
def normand_run(tmp_path_factory) -> PipelineRun:
    return _dataset_run(tmp_path_factory, "normand1999")


@pytest.fixture
def dataset_run(request) -> PipelineRun:
    return request.getfixturevalue(request.param)


RUNS = {"crede2010": "crede_run", "bcg": "bcg_run", "normand1999": "normand_run"}


def reference(name: str) -> dict:
    return json.loads((DATASETS / name / "reference.json").read_text(encoding="utf-8"))


def overall(run: PipelineRun) -> dict:
    return json.loads((run.results / "models" / "overall.json").read_text(encoding="utf-8"))


def close(actual, expected, rtol: float) -> None:
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol)


def first(value) -> float:
    """The first coefficient's value (R's JSON writes a one-element vector as a scalar)."""
    return float(np.atleast_1d(np.asarray(value, float))[0])


@pytest.mark.parametrize(
    ("dataset_run", "name"),
    [(fixture, name) for name, fixture in RUNS.items()],
    indirect=["dataset_run"],
)
def test_effect_sizes_match_escalc(dataset_run: PipelineRun, name: str) -> None:
    ref = reference(name)
    table = pd.read_csv(dataset_run.results / "effect_sizes.csv")
    assert len(table) == len(ref["yi"])
    close(table["yi"], ref["yi"], 1e-10)
    close(table["vi"], ref["vi"], 1e-10)
    summary = json.loads((dataset_run.results / "effect_sizes_summary.json").read_text())
    config = (DATASETS / name / "config.yaml").read_text()
    assert f"measure: {summary['measure']['code']}" in config
    assert summary["rows_in"] == summary["computed"] == len(ref["yi"])


@pytest.mark.parametrize(
    ("dataset_run", "name"),
    [(fixture, name) for name, fixture in RUNS.items()],
    indirect=["dataset_run"],
)
def test_pooled_estimate_and_cr2_match_metafor(dataset_run: PipelineRun, name: str) -> None:
    ref = reference(name)["cases"]
    res, cr2 = ref["overall"]["results"], ref["overall_cr2"]["results"]
    got = overall(dataset_run)
    est = got["estimate"]
    close(est["estimate"], first(res["b"]), 1e-6)
    close(est["se"], first(res["se"]), 1e-6)
    close([est["ci_lb"], est["ci_ub"]], [first(res["ci_lb"]), first(res["ci_ub"])], 1e-6)
    close([est["pi_lb"], est["pi_ub"]], [res["pi_lb"], res["pi_ub"]], 1e-6)
    close(est["pval"], first(res["pval"]), 1e-6)
    robust = got["robust"]
    close(robust["se"], first(cr2["se"]), 1e-6)
    close(robust["df_satt"], first(cr2["df_satt"]), 1e-6)
    close(robust["p_satt"], first(cr2["p_satt"]), 1e-6)
    close([robust["ci_lower"], robust["ci_upper"]], [first(cr2["ci_l"]), first(cr2["ci_u"])], 1e-6)
    if "sigma2" in res:
        sigma2 = list(got["sigma2"].values())
        assert len(sigma2) == len(res["sigma2"])
        for value, expected in zip(sigma2, res["sigma2"], strict=True):
            if expected < 1e-8:
                assert value == pytest.approx(expected, abs=1e-8)
            else:
                close(value, expected, 1e-5)
    else:
        close(got["model"]["tau2"], res["tau2"], 1e-5)


def test_crede_levels_and_variance_distribution(crede_run: PipelineRun) -> None:
    """Effects nested in samples nested in studies: one sigma2, I2 and LRT per level."""
    ref = reference("crede2010")["cases"]
    got = overall(crede_run)
    assert list(got["sigma2"]) == ["studyid", "sampleid", "esid"]
    assert got["model"]["n_levels"] == dict(
        zip(["studyid", "sampleid", "esid"], ref["overall"]["results"]["s_nlevels"], strict=True)
    )
    vd = got["variance_distribution"]
    close(vd["typical_v"], ref["variance"]["results"]["typical_v"], 1e-6)
    i2_ref = ref["variance"]["results"]["i2"]
    for value, expected in zip(vd["i2"].values(), i2_ref, strict=True):
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-6)
    for level, lrt in zip(
        ["studyid", "sampleid", "esid"], ref["level_lrt"]["results"], strict=True
    ):
        test = got["level_tests"][level]
        assert test["lrt"] == pytest.approx(lrt["lrt"], rel=1e-5, abs=1e-6)
    assert got["robust"]["clusters"] == 68
    # every step names the levels by their codebook labels, not by column
    for step in ("overall", "moderators", "components"):
        record = json.loads((crede_run.results / "models" / f"{step}.json").read_text())
        text = record["analysis"]["description"] if step == "overall" else record["model"]
        assert "effect sizes nested in samples nested in studies" in text, (step, text)


def test_crede_boundary_component_is_flagged(crede_run: PipelineRun) -> None:
    """The sample-level variance is estimated at 0 (R: 1.4e-12): the warnings say so."""
    warnings = (crede_run.results / "warnings.txt").read_text(encoding="utf-8")
    assert "sampleid" in warnings and "boundary" in warnings


@pytest.mark.parametrize(
    ("dataset_run", "name"),
    [(fixture, name) for name, fixture in RUNS.items()],
    indirect=["dataset_run"],
)
def test_report_states_measure_and_direction(dataset_run: PipelineRun, name: str) -> None:
    import html
    import re

    import yaml

    config = yaml.safe_load((DATASETS / name / "config.yaml").read_text())
    text = (dataset_run.results / "report.html").read_text(encoding="utf-8")
    words = html.unescape(re.sub(r"<[^>]+>", "", text))  # the text a reader sees
    assert config["effect_sizes"]["direction"] in words
    assert "Hedges' g" not in words
    assert "benefit" not in words.lower()
    # what did not happen to these data is not reported as "0 effect sizes were ..."
    assert "a pre-post correlation of" not in words and "sign-flipped" not in words


def test_normand_uses_its_own_names(normand_run: PipelineRun) -> None:
    """Renamed statistic columns and a study key called trial_code run without an es_input."""
    table = pd.read_csv(normand_run.results / "effect_sizes.csv")
    assert {"trial_code", "outcome_id", "mean_tx", "sd_cg"} <= set(table.columns)
    got = overall(normand_run)
    assert got["analysis"]["study_key"] == "trial_code"
