"""What a person sees at the console: the summary at the end of ``make run``, YAML syntax errors
(file, line, column and why, no traceback), a dry run after a finished run that has nothing to do,
figures of a removed variable that do not linger, and the README's codebook snippet that can be
pasted as it stands.

The expected numbers of the summary are read from the run's own ``models/overall.json`` and
``warnings.txt`` and formatted with the APA rules of :mod:`intervention_meta.outputs.tables`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import copy_project, run_snakemake

from intervention_meta.config import check_yaml, read_yaml
from intervention_meta.data.codebook import load_codebook
from intervention_meta.errors import InputError
from intervention_meta.outputs.run_summary import summarise_runs
from intervention_meta.outputs.tables import fmt_ci, fmt_est
from intervention_meta.plots.cleanup import remove_unlisted_figures

ROOT = Path(__file__).resolve().parents[1]

# a list left open on line 3 (column 11): PyYAML stops at line 4, column 7 (the ":" of "test:")
BROKEN = "analysis: x\nmodels:\n  method: [REML\n  test: t\n"


# ------------------------------------------------------------------------------ YAML errors
def test_yaml_syntax_error_says_file_line_column_and_why(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(BROKEN)
    with pytest.raises(InputError) as err:
        read_yaml(path)
    (problem,) = err.value.problems
    assert (problem.file, problem.row, problem.check) == (str(path), 4, "yaml_syntax")
    short = err.value.short()
    assert f"{path}:4:" in short and "(column 7)" in short
    assert "did not find expected ',' or ']'" in short
    assert "in a list [...] that starts at line 3, column 11" in short
    assert "Traceback" not in short


def test_a_tab_in_the_indentation_is_named_as_the_cause(tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text("variables:\n\t- name: x\n")
    with pytest.raises(InputError) as err:
        load_codebook(path)
    short = err.value.short()
    assert f"{path}:2:" in short and "(column 1)" in short
    assert "a tab on this line: YAML indents with spaces, not tabs" in short


def test_check_yaml_reports_a_config_and_the_codebook_it_names_at_once(tmp_path):
    codebook = tmp_path / "codebook.yaml"
    codebook.write_text("variables:\n  - name: a\n    levels: {0: no\n")
    good = tmp_path / "good.yaml"
    good.write_text(f"analysis: x\ncodebook: {codebook}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    with pytest.raises(InputError) as err:
        check_yaml(files=[good, bad])
    assert [(p.file, p.row) for p in err.value.problems] == [(str(codebook), 4), (str(bad), 4)]
    assert err.value.summary == "2 file(s) not valid YAML; nothing run"
    check_yaml(files=[ROOT / "config" / "config.yaml", ROOT / "config" / "assink2016.yaml"])


def test_check_yaml_command_fails_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    proc = subprocess.run(
        [sys.executable, "-m", "intervention_meta", "check-yaml", "--files", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert f"{bad}, row 4" in proc.stderr and "(column 7)" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.pipeline
@pytest.mark.parametrize("broken", ["config/config.yaml", "data/codebook.yaml"])
def test_snakemake_with_a_yaml_syntax_error_says_where_and_why(tmp_path, broken):
    work = copy_project(tmp_path)
    path = work / broken
    lines = path.read_text().splitlines()
    j = next(i for i, line in enumerate(lines) if re.match(r"^\s+(method|type): ", line))
    lines[j] = lines[j].replace(": ", ": [", 1)  # a list left open
    path.write_text("\n".join(lines) + "\n")
    proc = run_snakemake(work, "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(rf"{re.escape(broken)}:{j + 2}: .*did not find expected.*\(column \d+\)", out)
    assert "Traceback" not in out


# ------------------------------------------------------------------------------ after a run
@pytest.mark.pipeline
def test_dry_run_after_a_run_with_configfile_has_nothing_to_do(example_run):
    """``make run`` passes --configfile config/config.yaml (which Snakemake makes absolute); a
    plain ``snakemake -n`` afterwards, and one with the config named, have nothing to do."""
    work = example_run.work
    for args in ((), ("--configfile", "config/config.yaml")):
        proc = run_snakemake(work, "-n", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Nothing to be done" in proc.stdout + proc.stderr, args


@pytest.mark.pipeline
def test_summary_of_a_run_gives_the_pooled_effect_warnings_and_report(example_run, assink_run):
    configs = [example_run.work / "config" / "config.yaml"]
    summary = summarise_runs(configs, example_run.work)
    configs = [assink_run.work / "config" / "assink2016.yaml"]
    summary = summary.analyses + summarise_runs(configs, assink_run.work).analyses
    for a, run in zip(summary, (example_run, assink_run), strict=True):
        e = json.loads((run.results / "models" / "overall.json").read_text())["estimate"]
        assert a.analysis == run.results.name
        assert a.text.startswith(f"g = {fmt_est(e['estimate'])}, 95% CI ")
        assert fmt_ci(e["ci_lb"], e["ci_ub"]) in a.text
        warnings = (run.results / "warnings.txt").read_text().splitlines()
        assert a.n_warnings == len([w for w in warnings if w])
        assert a.report.endswith("report.html and " + str(run.results / "report.docx"))
    text = summary[0].text
    assert len(text.splitlines()) == 1


def test_summary_command_prints_a_few_lines_per_config(tmp_path):
    res = tmp_path / "results" / "demo"
    (res / "models").mkdir(parents=True)
    estimate = {"estimate": 0.5, "ci_lb": 0.25, "ci_ub": 0.75, "level": 0.95}
    (res / "models" / "overall.json").write_text(
        json.dumps({"estimable": True, "estimate": estimate, "analysis": {"k": 9}})
    )
    (res / "warnings.txt").write_text("one\ntwo\n")
    (res / "report.html").write_text("<html></html>")
    (tmp_path / "demo.yaml").write_text("analysis: demo\n")
    (tmp_path / "none.yaml").write_text("analysis: never_run\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "intervention_meta",
            "summary",
            "--configs",
            "demo.yaml",
            "none.yaml",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "demo (demo.yaml)",
        "  pooled effect: g = 0.50, 95% CI [0.25, 0.75] (k = 9)",
        "  warnings:      2 (results/demo/warnings.txt)",
        "  report:        results/demo/report.html",
        "never_run (none.yaml)",
        "  pooled effect: no results",
        "  report:        not written",
    ]


# ------------------------------------------------------------------------------ stale figures
def test_figures_the_manifest_does_not_list_are_removed(tmp_path):
    names = ["forest.png", "forest.pdf", "forest.svg", "forest_small.png"]
    names += ["orchard_gone.png", "orchard_gone.pdf", "figures.json", "notes.txt"]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "orchard_gone.png").write_text("x")
    manifest = {
        "figures": [
            {"stem": "forest", "png": "results/x/figures/forest.png", "small": "forest_small.png"}
        ]
    }
    removed = remove_unlisted_figures(tmp_path, manifest)
    assert sorted(p.name for p in removed) == ["orchard_gone.pdf", "orchard_gone.png"]
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted(
        ["forest.png", "forest.pdf", "forest.svg", "forest_small.png"]
        + ["figures.json", "notes.txt", "sub"]
    )
    assert (tmp_path / "sub" / "orchard_gone.png").is_file()  # subfolders are not touched


@pytest.mark.pipeline
def test_the_figures_folder_holds_only_the_figures_of_the_manifest(example_run):
    folder = example_run.results / "figures"
    manifest = json.loads((folder / "figures.json").read_text())
    stems = {f["stem"] for f in manifest["figures"]}
    images = [p for p in folder.iterdir() if p.suffix in (".png", ".pdf", ".svg")]
    assert images and {p.stem for p in images} <= stems


# ------------------------------------------------------------------------------ README
def test_readme_codebook_snippet_pastes_into_the_codebook_as_it_stands():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("Add an entry at the end of the `variables:` list")
    fence = re.search(r"\n( *)```yaml\n(.*?)\n\1```", readme[start:], flags=re.S)
    indent, body = fence.group(1), fence.group(2)
    snippet = "\n".join(line.removeprefix(indent) for line in body.splitlines()) + "\n"
    codebook = (ROOT / "data" / "codebook.yaml").read_text()
    assert list(yaml.safe_load(codebook))[-1] == "variables"  # the snippet goes at the end
    merged = yaml.safe_load(codebook.rstrip("\n") + "\n" + snippet)
    new = merged["variables"][-1]
    assert new["name"] == "childcare" and new["role"] == "component"
    assert len(merged["variables"]) == len(yaml.safe_load(codebook)["variables"]) + 1
    cb = load_codebook(merged)
    assert cb.variables["childcare"].type == "binary"
