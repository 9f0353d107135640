"""The exploration notebook (``notebooks/explore_results.ipynb``).

The committed notebook carries no outputs; executed with nbclient on the results of a real
pipeline run (the session's shared ``example_run`` of tests/conftest.py), every cell
runs, its refit reproduces the pipeline's model JSON (the notebook asserts that itself) and it
draws its plot.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from pipeline_helpers import ROOT

NOTEBOOK = ROOT / "notebooks" / "explore_results.ipynb"
ENV_VAR = "INTERVENTION_META_RESULTS"


def test_committed_notebook_has_no_outputs_and_no_execution_counts():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.source[:60]
            assert cell.execution_count is None, cell.source[:60]


def test_results_folder_is_the_parameter_of_the_first_code_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "RESULTS = Path(os.environ.get(" in first.source and ENV_VAR in first.source


@pytest.fixture(scope="module")
def results(example_run) -> Path:
    """results/example of a real run: the effect sizes and the model JSON the notebook reads."""
    return example_run.results


def _execute(results: Path, monkeypatch) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    monkeypatch.setenv(ENV_VAR, str(results))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows the plot
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    return nb


@pytest.mark.pipeline
def test_notebook_runs_on_pipeline_results_and_draws_its_plot(results, monkeypatch):
    nb = _execute(results, monkeypatch)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"results: {results.resolve()}" in text
    assert "Multilevel meta-analytic model" in text  # summary() of the refit
    assert "HTZ test of" in text  # the CR2 test of the moderator model
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_notebook_explains_how_to_make_missing_results(tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match="Run the pipeline first"):
        _execute(tmp_path / "nothing", monkeypatch)
