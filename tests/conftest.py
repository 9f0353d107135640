"""Shared fixtures: the shipped codebook, a small valid pair of coded tables to break, and one
real pipeline run per shipped config.

``tests/data/studies.csv`` and ``tests/data/effects.csv`` are a hand-made valid pair following
``data/codebook.yaml`` (4 studies, 11 effect sizes, one per es_input level); they validate with no
errors and no warnings. Tests copy them to a temporary folder and change single cells.

The pipeline runs (session scope; one per test session, also under ``pytest -n 2``):

* ``example_run``: ``snakemake`` (every output) on a copy of the project with
  ``config/config.yaml``;
* ``assink_run``: the same with ``--configfile config/assink2016.yaml``.

Each is a :class:`pipeline_helpers.PipelineRun`: ``work`` (the project copy), ``results``
(``work/results/<analysis>``), ``data_before`` (checksums of ``work/data`` before the run),
``stdout``/``stderr``. They are shared by every test of the session, so a test only READS them
(dry runs ``-n`` are fine); a test that changes data, config or results makes its own copy with
``pipeline_helpers.copy_project``.

A fixture that runs Snakemake is named ``*_run`` (these two, and a module's own run of another
config); every test that uses one, directly or through another fixture, is marked ``pipeline``
here. A test that calls Snakemake itself carries ``@pytest.mark.pipeline``.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import pytest
from pipeline_helpers import PipelineRun, shared_run

from intervention_meta.data.codebook import Codebook, load_codebook, parse_number

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"
CODEBOOK = REPO / "data" / "codebook.yaml"


class TablePair:
    """A copy of the valid studies/effects pair in a temporary folder, with cell editors."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths = {}
        for table in ("studies", "effects"):
            target = folder / f"{table}.csv"
            target.write_bytes((TEST_DATA / f"{table}.csv").read_bytes())
            self.paths[table] = target

    @property
    def studies(self) -> Path:
        return self.paths["studies"]

    @property
    def effects(self) -> Path:
        return self.paths["effects"]

    def rows(self, table: str) -> list[list[str]]:
        with open(self.paths[table], newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle))

    def write(self, table: str, rows: list[list[str]]) -> None:
        with open(self.paths[table], "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)

    def get(self, table: str, row: int, column: str) -> str:
        rows = self.rows(table)
        return rows[row - 1][rows[0].index(column)]

    def set(self, table: str, row: int, column: str, value: str) -> None:
        """Set one cell; ``row`` as in a spreadsheet (header = 1)."""
        rows = self.rows(table)
        rows[row - 1][rows[0].index(column)] = value
        self.write(table, rows)

    def add_column(self, table: str, name: str, values: list[str] | str = "") -> None:
        rows = self.rows(table)
        values = [values] * (len(rows) - 1) if isinstance(values, str) else values
        rows[0].append(name)
        for row, value in zip(rows[1:], values, strict=True):
            row.append(value)
        self.write(table, rows)

    def drop_column(self, table: str, name: str) -> None:
        rows = self.rows(table)
        j = rows[0].index(name)
        self.write(table, [row[:j] + row[j + 1 :] for row in rows])

    def rename_column(self, table: str, old: str, new: str) -> None:
        rows = self.rows(table)
        rows[0][rows[0].index(old)] = new
        self.write(table, rows)


def write_xlsx(csv_path: Path, xlsx_path: Path, sheet: str = "Sheet1") -> Path:
    """Write a CSV table to .xlsx as a person would: numbers as numbers, text as text."""
    import openpyxl

    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = sheet
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for i, row in enumerate(csv.reader(handle)):
            if i == 0:
                ws.append(row)
                continue
            cells = []
            for value in row:
                number = parse_number(value)
                if value == "":
                    cells.append(None)
                elif number is not None:
                    cells.append(int(number) if number.is_integer() else number)
                else:
                    cells.append(value)
            ws.append(cells)
    workbook.save(xlsx_path)
    return xlsx_path


def fingerprint(*paths: Path) -> dict:
    """Bytes hash and mtime of each file, to show a step never writes to its inputs."""
    return {
        str(p): (hashlib.sha256(Path(p).read_bytes()).hexdigest(), os.stat(p).st_mtime_ns)
        for p in paths
    }


@pytest.fixture(scope="session")
def codebook() -> Codebook:
    return load_codebook(CODEBOOK)


@pytest.fixture
def pair(tmp_path: Path) -> TablePair:
    return TablePair(tmp_path)


@pytest.fixture(scope="session")
def example_run(tmp_path_factory) -> PipelineRun:
    """The whole pipeline on the default config (simulated example data)."""
    return shared_run(tmp_path_factory, "example", "example")


@pytest.fixture(scope="session")
def assink_run(tmp_path_factory) -> PipelineRun:
    """The whole pipeline on config/assink2016.yaml (Assink & Wibbelink 2016)."""
    return shared_run(
        tmp_path_factory, "assink", "assink2016", "--configfile", "config/assink2016.yaml"
    )


@pytest.fixture(scope="session")
def vignette_run(tmp_path_factory) -> PipelineRun:
    """The vignette pipeline on config/vignette.yaml (the simulated vignette study)."""
    return shared_run(
        tmp_path_factory, "vignette", "vignette", "--configfile", "config/vignette.yaml"
    )


@pytest.hookimpl(tryfirst=True)  # before -m "not pipeline" deselects
def pytest_collection_modifyitems(items):
    """Every test that uses a ``*_run`` fixture runs Snakemake: mark it ``pipeline``."""
    for item in items:
        if any(name.endswith("_run") for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pipeline)
    # The SLURM test first: it mostly waits for its scheduler, so it overlaps the rest of the
    # session instead of ending it (make test runs one worker more than the cores).
    items.sort(key=lambda item: item.get_closest_marker("slurm") is None)
