"""The real Snakemake pipeline, run in a temporary copy of the project (the shared whole runs
``example_run`` and ``assink_run`` of tests/conftest.py, and own copies for the tests that change
the project)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from pipeline_helpers import checksums, copy_project, run_snakemake, skip_extras

pytestmark = pytest.mark.pipeline


def test_pipeline_runs_on_example_data_without_touching_raw_files(example_run):
    work, before = example_run.work, example_run.data_before
    res = example_run.results
    for rel in [
        "validation/passed.txt",
        "validation/report.md",
        "validation/report.csv",
        "clean/effects.csv",
        "clean/dropped.csv",
        "effect_sizes.csv",
        "effect_sizes_dropped.csv",
        "effect_sizes_summary.json",
        "logs/data.log",
    ]:
        assert (res / rel).is_file(), rel
    assert checksums(work / "data") == before


def test_row_counts_add_up_through_clean_and_effect_sizes(example_run):
    work, res = example_run.work, example_run.results
    raw = pd.read_csv(work / "data" / "raw" / "effects.csv")
    kept = pd.read_csv(res / "clean" / "effects.csv")
    dropped = pd.read_csv(res / "clean" / "dropped.csv")
    assert len(raw) == len(kept) + len(dropped)
    summary = json.loads((res / "clean" / "summary.json").read_text())
    assert json.dumps(summary)  # readable JSON with the counts
    es = pd.read_csv(res / "effect_sizes.csv")
    es_dropped = pd.read_csv(res / "effect_sizes_dropped.csv")
    assert len(es) + len(es_dropped) == len(kept)
    assert es["yi"].notna().all() and (es["vi"] > 0).all()
    assert (es_dropped["reason"].astype(str).str.len() > 0).all()


def test_rerun_with_nothing_changed_builds_nothing(example_run):
    proc = run_snakemake(example_run.work, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_pipeline_runs_on_assink2016(assink_run):
    es = pd.read_csv(assink_run.results / "effect_sizes.csv")
    assert len(es) == 100  # Assink & Wibbelink (2016): 100 effect sizes in 17 studies
    assert es["study"].nunique() == 17


def test_faulty_data_stops_pipeline_with_report_naming_row_column_value(tmp_path):
    work = copy_project(tmp_path)
    effects = work / "data" / "raw" / "effects.csv"
    df = pd.read_csv(effects, dtype=str, keep_default_na=False)
    df.loc[2, "outcome_domain"] = "happiness"  # not a level of the codebook; spreadsheet row 4
    df.to_csv(effects, index=False)
    before = checksums(work / "data")
    proc = run_snakemake(work)
    assert proc.returncode != 0
    report = work / "results" / "example" / "validation" / "report.md"
    assert report.is_file()
    text = report.read_text()
    assert "happiness" in text and "outcome_domain" in text and "4" in text
    assert "report.md" in proc.stdout + proc.stderr
    assert not (work / "results" / "example" / "validation" / "passed.txt").exists()
    assert checksums(work / "data") == before


def test_bad_config_is_rejected_by_the_schema(tmp_path):
    work = copy_project(tmp_path)
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    cfg["effect_sizes"]["icc_default"] = 1.5  # an ICC must lie in [0, 1]
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(work, "-n", "--configfile", "config/bad.yaml")
    assert proc.returncode != 0
    assert "icc_default" in proc.stdout + proc.stderr


def test_snakemake_lint_reports_nothing(tmp_path):
    work = copy_project(tmp_path)
    proc = run_snakemake(work, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_dry_run_shows_the_dag(tmp_path):
    work = copy_project(tmp_path)
    proc = run_snakemake(work, "-n")
    assert proc.returncode == 0
    for rule in ("data", "overall", "moderators", "figures", "report"):
        assert f"rule {rule}:" in proc.stdout


def test_new_codebook_variable_is_validated_and_carried_without_code(tmp_path):
    """A student adds a variable to the codebook and a column to the data: nothing else."""
    work = copy_project(tmp_path)
    cb_path = work / "data" / "codebook.yaml"
    cb = yaml.safe_load(cb_path.read_text())
    cb["variables"].append(
        {
            "name": "childcare",
            "table": "studies",
            "type": "binary",
            "levels": {0: "no", 1: "yes"},
            "missing": [-99],
            "required": False,
            "role": "moderator",
            "label": "Childcare offered",
            "description": "1 if childcare is offered during meetings.",
        }
    )
    cb_path.write_text(yaml.safe_dump(cb, sort_keys=False))
    studies = work / "data" / "raw" / "studies.csv"
    df = pd.read_csv(studies, dtype=str, keep_default_na=False)
    df["childcare"] = ["1" if i % 2 else "0" for i in range(len(df))]
    df.to_csv(studies, index=False)
    skip_extras(work)
    run_snakemake(work, check=True)
    clean = pd.read_csv(work / "results" / "example" / "clean" / "effects.csv")
    assert "childcare" in clean.columns
    assert set(clean["childcare"].dropna().astype(int)) == {0, 1}
    # and a bad value in it is caught by validate, naming row, column and value
    df.loc[0, "childcare"] = "7"
    df.to_csv(studies, index=False)
    proc = run_snakemake(work)
    assert proc.returncode != 0
    report = (work / "results" / "example" / "validation" / "report.csv").read_text()
    assert "childcare" in report and "7" in report
