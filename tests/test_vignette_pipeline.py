"""The vignette pipeline (``snakemake --configfile config/vignette.yaml``, the ``vignette_run``
fixture) on the shipped simulated study: its outputs, the true effects of data/vignette/raw/
truth.yaml inside the models' intervals, findings.json equal to models.json, the report."""

from __future__ import annotations

import re

import pytest
import yaml
from pipeline_helpers import run_snakemake

from intervention_meta.io import read_json
from intervention_meta.outputs.run_summary import summarise_runs
from intervention_meta.vignette.findings import findings

pytest.importorskip("intervention_meta.vignette.models")

EFFECTS = ("style", "behaviour", "location", "role")


def _truth(run) -> dict:
    return yaml.safe_load((run.work / "data" / "vignette" / "raw" / "truth.yaml").read_text())


def _main_fit(models: dict, outcome: str, model: str) -> dict:
    return next(
        f
        for f in models["fits"]
        if (f["outcome"], f["model"], f["kind"]) == (outcome, model, "main")
    )


def test_every_output_is_written(vignette_run):
    res = vignette_run.results
    for path in (
        "vignette/models.json",
        "vignette/findings.json",
        "tables/vignette_terms.csv",
        "tables/tables.json",
        "figures/figures.json",
        "figures/means_style.png",
        "figures/heatmap_respond.png",
        "validation/passed.txt",
        "report.html",
        "provenance.json",
        "codebook/coding_template.xlsx",
        "codebook/manual.html",
    ):
        assert (res / path).is_file(), path
    assert checksums_unchanged(vignette_run)
    dry = run_snakemake(vignette_run.work, "-n", "--configfile", "config/vignette.yaml")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr


def checksums_unchanged(run) -> bool:
    from pipeline_helpers import checksums

    return checksums(run.work / "data") == run.data_before


@pytest.mark.parametrize("model", ["glmm", "gee"])
def test_the_true_respond_effects_lie_in_the_intervals(vignette_run, model):
    """GLMM: the generating conditional log-odds (truth.yaml conditional.respond); GEE: their
    population-averaged projection (truth.yaml projections.gee; see vignette.simulate)."""
    models = read_json(vignette_run.results / "vignette" / "models.json")
    truth = _truth(vignette_run)
    if model == "glmm":
        cond = truth["conditional"]["respond"]
        expected = {"(Intercept)": cond["intercept"]}
        expected |= {f"{k}[{lv}]": v for k in EFFECTS for lv, v in cond[k].items()}
    else:
        expected = {k: v for k, v in truth["projections"]["gee"].items()}
    terms = {t["term"]: t for t in _main_fit(models, "respond", model)["fit"]["terms"]}
    assert set(expected) <= set(terms)
    for term, value in expected.items():
        assert terms[term]["ci_lb"] <= value <= terms[term]["ci_ub"], (model, term, value)
    if model == "glmm":
        sd = next(iter(_main_fit(models, "respond", "glmm")["fit"]["variance_components"].values()))
        assert sd == pytest.approx(truth["conditional"]["respond"]["respondent_sd"], abs=0.35)


@pytest.mark.parametrize("model", ["lmm", "clm"])
def test_the_true_responsibility_effects_lie_in_the_intervals(vignette_run, model):
    """The projections of the true cumulative-logit model on the LMM (mean ratings) and on the
    CLM (latent logits and thresholds) in truth.yaml."""
    models = read_json(vignette_run.results / "vignette" / "models.json")
    expected = _truth(vignette_run)["projections"][model]
    fit = _main_fit(models, "responsibility", model)["fit"]
    terms = {t["term"]: t for t in fit["terms"]}
    checked = 0
    for term, value in expected.items():
        if term.startswith("threshold"):
            continue
        if term == "(Intercept)" and term not in terms:
            continue
        assert terms[term]["ci_lb"] <= value <= terms[term]["ci_ub"], (model, term, value)
        checked += 1
    assert checked >= 9
    if model == "clm":  # thresholds: estimate +- 1.96 SE
        thresholds = {t["name"]: t for t in fit["thresholds"]}
        for term, value in expected.items():
            name = re.sub(r"^threshold\[(.*)\]$", r"\1", term)
            if term.startswith("threshold") and thresholds.get(name, {}).get("se"):
                t = thresholds[name]
                assert abs(t["estimate"] - value) <= 1.96 * t["se"], (term, value)


def test_the_findings_are_the_models_numbers(vignette_run):
    """findings.json is findings(models.json): every number copied, nothing computed; and the
    simulated pattern: most likely to respond to a permissive style and to externalising
    behaviour; professionals feel more responsible but do not respond more often."""
    res = vignette_run.results / "vignette"
    models, found = read_json(res / "models.json"), read_json(res / "findings.json")
    assert found == findings(models)
    assert found["n_respondents"] == 114 and found["n_ratings"] == 1026
    by_id = {f["id"]: f for f in found["findings"]}
    assert by_id["respond_by_style"]["highest"] == "permissive"
    assert by_id["respond_by_style"]["model"] == "gee"
    assert by_id["respond_by_style"]["scale"] == "probability"
    assert by_id["respond_by_behaviour"]["highest"] == "externalising"
    assert by_id["responsibility_by_role"]["highest"] == "professional"
    assert by_id["responsibility_by_role"]["test"]["p"] < 0.05
    assert by_id["respond_by_role"]["test"]["p"] > 0.05
    assert by_id["respond_by_style"]["test"]["df"] == 3


def test_the_report_opens_offline_with_every_estimate(vignette_run):
    res = vignette_run.results
    page = (res / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']https?://""", page)
    assert page.count("data:image/png;base64,") == len(
        read_json(res / "figures" / "figures.json")["figures"]
    )
    tables = read_json(res / "tables" / "tables.json")["tables"]
    assert len(tables) == 14
    for table in tables:
        assert table["title"].replace("'", "&#x27;") in page
    assert "Provenance" in page and "data/vignette/raw/ratings.csv" in page
    assert "exchangeable working correlation" in page  # methods written from the config


def test_the_run_summary_reads_the_findings(vignette_run):
    summary = summarise_runs(["config/vignette.yaml"], workdir=vignette_run.work)
    text = summary.to_text()
    assert "findings:" in text and "114 respondents, 1026 ratings" in text
    assert "Would respond: highest for parenting style Permissive, child behaviour" in text


@pytest.mark.pipeline
def test_a_bad_vignette_config_stops_at_start_up(tmp_path):
    """The schema (an unknown key) and the codebook check (an unknown factor, a model that
    does not fit the outcome) at once, one short line each, before any job runs."""
    from pipeline_helpers import copy_project

    work = copy_project(tmp_path)
    config = yaml.safe_load((work / "config" / "vignette.yaml").read_text())
    config["vignette"]["factors"] = ["style", "colour"]
    config["vignette"]["outcomes"]["respond"]["models"] = ["gee", "lmm"]
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(work, "-n", "--configfile", "config/bad.yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "vignette.factors.1" in out and "colour" in out
    assert "vignette.outcomes.respond.models" in out and "gee, glmm" in out
    config["vignette"]["factorz"] = config["vignette"].pop("factors")
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(work, "-n", "--configfile", "config/bad.yaml")
    assert proc.returncode != 0 and "factorz" in proc.stdout + proc.stderr
