"""The result contract: every step keeps its tables in its JSON with fixed machine keys, the CSV
beside it is the same rows renamed, and figures, APA tables and report read only the JSON.

One real pipeline run (the example config, target ``all``) on a copy of the project whose config
sets ``models.level: 0.90`` and whose codebook labels the study key "Paper" (and the effect-size
key and the design other than before). Both used to break the presentation layer, which read the
CSVs by header text: the forest plot failed with ``KeyError: '95% CI lower'`` and the
leave-one-out figure looked for the header "Study left out". Expected values come from the steps'
own JSON of the same run (no number is typed in here); the level 0.90 and the labels are the
ones this test sets.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from pipeline_helpers import PipelineRun, shared_run, skip_extras

from intervention_meta.analyses.records import HEADERS, read_tables
from intervention_meta.analyses.sensitivity import TABLES as SENSITIVITY_TABLES
from intervention_meta.io import read_json
from intervention_meta.outputs.tables import fmt_ci

pytestmark = pytest.mark.pipeline

LEVEL = 0.90
LABELS = {"Study": "Paper", "Effect size": "Outcome measure", "Design": "Trial type"}
STEPS = ("overall", "moderators", "components", "bias", "sensitivity")


def _relabel(work: Path) -> None:
    """Level 0.90 in the config, the study key and two other variables relabelled."""
    config = work / "config" / "config.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("models:\n", f"models:\n  level: {LEVEL}\n", 1))
    codebook = work / "data" / "codebook.yaml"
    text = codebook.read_text(encoding="utf-8")
    for old, new in LABELS.items():
        assert text.count(f"\n    label: {old}\n") == 1, old
        text = text.replace(f"\n    label: {old}\n", f"\n    label: {new}\n")
    codebook.write_text(text, encoding="utf-8")
    skip_extras(work, multiverse=False)  # the multiverse's intervals are at the level too


@pytest.fixture(scope="session")
def contract_run(tmp_path_factory) -> PipelineRun:
    """The example analysis at level 0.90 with the relabelled codebook: one run per session,
    shared by the test workers."""
    return shared_run(tmp_path_factory, "contract", "example", prepare=_relabel)


@pytest.fixture
def res(contract_run) -> Path:
    return contract_run.results


def _json(path: Path) -> dict:
    return read_json(path)


# ------------------------------------------------------------------------------ the two bugs
def test_forest_and_leave_one_out_figures_are_drawn_at_the_configured_level(res):
    manifest = _json(res / "figures" / "figures.json")
    figures = {f["stem"]: f for f in manifest["figures"]}
    for stem in ("forest", "leave_one_out"):
        assert (res.parents[1] / figures[stem]["png"]).stat().st_size > 10_000, stem
        assert figures[stem]["details"]["level"] == LEVEL
    assert "90% CI" in figures["forest"]["caption"] and "95%" not in figures["forest"]["caption"]
    loo = figures["leave_one_out"]
    assert loo["title"] == "Leave one paper out"
    n_studies = _json(res / "models" / "overall.json")["analysis"]["n_studies"]
    assert loo["details"]["studies"] == n_studies
    assert "90% CI" in loo["caption"]


def test_report_states_the_level_it_used(res):
    doc = (res / "report.html").read_text(encoding="utf-8")
    est = _json(res / "models" / "overall.json")["estimate"]
    assert est["level"] == LEVEL
    summary = doc.split('<h2 id="summary">', 1)[1].split("<h2 id=", 1)[0]
    assert f"90% CI {fmt_ci(est['ci_lb'], est['ci_ub'])}" in summary
    assert "95% CI" not in summary
    assert "with 90% confidence intervals" in doc or "90% confidence intervals" in doc


def test_apa_tables_show_the_level_and_the_labels_of_the_codebook(res):
    overall = (res / "tables" / "apa" / "overall.md").read_text(encoding="utf-8")
    assert "| 90% CI |" in overall and "95% CI" not in overall
    assert "| 90% PI |" in overall
    loo = (res / "tables" / "apa" / "sensitivity_leave_one_out.md").read_text(encoding="utf-8")
    assert "Paper left out" in loo
    index = _json(res / "tables" / "apa" / "tables.json")
    assert all(t["n_rows"] > 0 for t in index["tables"]), [
        t["name"] for t in index["tables"] if not t["n_rows"]
    ]


# ------------------------------------------------------------------------------ the contract
def test_every_step_keeps_its_tables_with_machine_keys_and_the_level(res):
    for step in STEPS:
        data = _json(res / "models" / f"{step}.json")
        tables = read_tables(data)
        assert tables, step
        for name, table in tables.items():
            assert all(re.fullmatch(r"[a-z0-9_.]+", key) for key in table.columns), (step, name)
            for key in ("ci_lb", "ci_ub", "cr2_ci_lb", "pi_lb"):
                if key in table.columns:
                    assert table.columns[key] == HEADERS[key].replace("{pct}", "90%"), (step, name)
            for row in table.rows:
                assert set(row) <= set(table.columns), (step, name)
    loo = read_tables(_json(res / "models" / "sensitivity.json"))["leave_one_out"]
    assert loo.columns["study"] == "Paper left out"
    full = [r for r in loo.rows if r["all_studies"]]
    assert len(full) == 1 and full[0] == loo.rows[0]
    studies = read_tables(_json(res / "models" / "components.json"))["study_effects"]
    assert studies.columns["study"] == "Paper"


def _same(a: object, b: object) -> bool:
    """Equal as the CSV and the JSON hold them (numbers to 1e-12, missing = missing)."""
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) or v == "" for v in (a, b)]
    if any(missing):
        return all(missing)
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)
    except (TypeError, ValueError):
        return str(a) == str(b)


CSVS = {
    "overall": {
        "overall": "overall",
        "variance_distribution": "variance_distribution",
        "overall_comparison": "overall_comparison",
    },
    "moderators": {
        "moderators": "moderators",
        "moderator_tests": "moderator_tests",
        "multiple_moderators": "multiple_moderators",
    },
    "components": {
        "component_profiles": "component_profiles",
        "component_consistency": "component_consistency",
        "study_effects": "study_effects",
    },
    "bias": {"bias": "bias", "trimfill": "trimfill_data", "funnel": "funnel_data"},
    "sensitivity": {name: f"sensitivity_{name}" for name in SENSITIVITY_TABLES},
}


@pytest.mark.parametrize("step", list(CSVS))
def test_each_csv_is_its_json_table_renamed(res, step):
    tables = read_tables(_json(res / "models" / f"{step}.json"))
    for name, csv in CSVS[step].items():
        table = tables[name]
        frame = pd.read_csv(res / "tables" / f"{csv}.csv", dtype=str, keep_default_na=False)
        shown = {k: h for k, h in table.columns.items() if h is not None}
        assert list(frame.columns) == list(shown.values()), (step, name)
        assert len(frame) == len(table.rows), (step, name)
        for row, (_, line) in zip(table.rows, frame.iterrows(), strict=True):
            for key, header in shown.items():
                assert _same(row.get(key), line[header]), (step, name, key, row.get(key))
