"""The step registry and the command line: one function per step, called by name.

The rules' side (every rule's named files reach its step function) is exercised by the real
pipeline runs (tests/test_pipeline.py); these check the registry and the command line directly.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pandas as pd
import pytest

from intervention_meta.__main__ import main
from intervention_meta.steps import STEPS, run_rule, run_step, step_of, step_params

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"


@pytest.mark.parametrize("name", list(STEPS))
def test_every_step_names_a_function_and_has_a_command(name, capsys):
    step = STEPS[name]
    function = step.load()
    params = inspect.signature(function).parameters
    for kw in [*step.config_files, *step.config_params, *step.outputs]:
        assert kw in params, f"{name}: {kw} is not a keyword of {step.function}"
    with pytest.raises(SystemExit) as exc:
        main([name.replace("_", "-"), "--help"])
    assert exc.value.code == 0
    assert step.help in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")


def test_rules_that_run_a_step_under_another_name():
    assert step_of("overall_flags") is STEPS["warnings"]
    assert step_of("effect-sizes") is STEPS["effect_sizes"]
    with pytest.raises(KeyError, match="no step named 'nope'"):
        step_of("nope")


def test_the_sensitivity_step_declares_each_of_its_tables_once():
    """The registry lists the step's table files without importing the step (the workflow's
    parse stays light); they are the tables the step writes."""
    from intervention_meta.analyses.sensitivity import TABLES

    outputs = STEPS["sensitivity"].outputs
    assert [name for name in outputs if name not in ("json", "flags")] == list(TABLES)


def test_params_come_from_the_config_and_absent_entries_are_left_out():
    config = {"models": {"method": "ML"}, "moderators": {"min_studies": 2}}
    assert step_params("moderators", config) == {
        "models": {"method": "ML"},
        "options": {"min_studies": 2},
    }
    assert step_params("reliability", {"reliability": {"tolerance": 0.5}}) == {"tolerance": 0.5}
    assert step_params("report", config) == {"config": config}


def test_a_misspelt_rule_entry_fails_naming_it(tmp_path):
    with pytest.raises(TypeError, match="takes no flagz"):
        run_step("warnings", flags=[], combined=str(tmp_path / "w.txt"), flagz="x")


class _Entries(dict):
    """Stands in for a Snakemake Namedlist (``items()`` gives the named entries)."""


class _Job:
    def __init__(self, rule, log, **entries):
        self.rule = rule
        self.log = [log]
        for kind in ("input", "output", "params", "wildcards"):
            setattr(self, kind, _Entries(entries.get(kind, {})))


def test_run_rule_passes_the_jobs_named_entries_and_logs_to_its_log(tmp_path):
    flags = [tmp_path / "a.txt", tmp_path / "b.txt"]
    flags[0].write_text("first\n\n")
    flags[1].write_text("second\n")
    job = _Job(
        "overall_flags",
        str(tmp_path / "logs" / "w.log"),
        input={"flags": [str(p) for p in flags]},
        output={"combined": str(tmp_path / "all.txt")},
    )
    run_rule(job)
    assert (tmp_path / "all.txt").read_text() == "first\nsecond\n"
    assert "2 flag(s) from 2 step(s)" in (tmp_path / "logs" / "w.log").read_text()


def test_command_line_runs_the_data_steps_from_a_config(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the config names the data relative to the project
    out = tmp_path / "res"
    assert main(["validate", "--config", str(CONFIG), "--out", str(out / "validation")]) == 0
    clean = ["clean", "--config", str(CONFIG), "--out", str(out / "clean")]
    assert main([*clean, "--passed", str(out / "validation" / "passed.txt")]) == 0
    es = ["effect-sizes", "--config", str(CONFIG), "--out", str(out)]
    assert main([*es, "--clean-effects", str(out / "clean" / "effects.csv")]) == 0
    kept = pd.read_csv(out / "clean" / "effects.csv")
    table = pd.read_csv(out / "effect_sizes.csv")
    dropped = pd.read_csv(out / "effect_sizes_dropped.csv")
    assert len(table) + len(dropped) == len(kept) > 0
    summary = json.loads((out / "effect_sizes_summary.json").read_text())
    assert summary and json.loads((out / "clean" / "summary.json").read_text())["kept"] == len(kept)


def test_the_data_job_writes_what_the_three_data_steps_write(tmp_path, monkeypatch):
    """Rule ``data`` (validate, clean, effect sizes in one process) writes the same files as the
    three steps run one by one from the command line."""
    monkeypatch.chdir(ROOT)
    apart, together = tmp_path / "apart", tmp_path / "together"
    assert main(["validate", "--config", str(CONFIG), "--out", str(apart / "validation")]) == 0
    clean = ["clean", "--config", str(CONFIG), "--out", str(apart / "clean")]
    assert main([*clean, "--passed", str(apart / "validation" / "passed.txt")]) == 0
    es = ["effect-sizes", "--config", str(CONFIG), "--out", str(apart)]
    flags = ["--flags", str(apart / "flags" / "effect_sizes.txt")]
    assert main([*es, *flags, "--clean-effects", str(apart / "clean" / "effects.csv")]) == 0
    assert main(["data", "--config", str(CONFIG), "--out", str(together)]) == 0
    written = sorted(p.relative_to(together) for p in together.rglob("*") if p.is_file())
    assert {str(p) for p in written} >= set(STEPS["data"].outputs.values())
    for rel in written:  # passed.txt names its report, under each run's own folder
        text = (together / rel).read_text(encoding="utf-8").replace(str(together), str(apart))
        assert text == (apart / rel).read_text(encoding="utf-8"), rel


def test_command_line_names_the_missing_options(tmp_path, capsys):
    assert main(["overall", "--table", str(tmp_path / "t.csv")]) == 2
    message = capsys.readouterr().err
    assert "--effect-sizes" in message and "--json" in message and "--table" not in message


def test_command_line_regenerates_the_simulated_second_coder(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    b, truth = tmp_path / "coder2_studies.csv", tmp_path / "coder2_truth.yaml"
    args = ["second-coder", "--config", str(CONFIG), "--studies-b", str(b), "--truth", str(truth)]
    assert main(args) == 0
    assert b.read_bytes() == (ROOT / "data" / "raw" / "coder2_studies.csv").read_bytes()
    committed = (ROOT / "data" / "raw" / "coder2_truth.yaml").read_text().splitlines()
    made = truth.read_text().splitlines()
    differ = [(c, m) for c, m in zip(committed, made, strict=True) if c != m]
    assert differ == [("data: data/raw/coder2_studies.csv", f"data: {b}")]
