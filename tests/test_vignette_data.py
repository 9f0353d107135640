"""The vignette study's data: the shipped simulated example (its design and its bit-identical
regeneration), its codebook under the shared validation machinery, bad data reported all at once,
and the config checks of the vignette section."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from intervention_meta.__main__ import main
from intervention_meta.data.codebook import load_codebook
from intervention_meta.data.validation import validate
from intervention_meta.errors import InputError
from intervention_meta.vignette.analysis import run_vignette, vignette_config_problems
from intervention_meta.vignette.simulate import FACTORS, deck_vignettes, true_projections

ROOT = Path(__file__).resolve().parents[1]
VIGNETTE = ROOT / "data" / "vignette"
CODEBOOK = VIGNETTE / "codebook.yaml"
CONFIG = ROOT / "config" / "vignette.yaml"


def test_the_shipped_data_regenerate_bit_identically(tmp_path):
    """``python -m intervention_meta simulate-vignette`` with the shipped seed (config seed 4)
    writes the same bytes as data/vignette/raw."""
    seed = yaml.safe_load(CONFIG.read_text())["seed"]
    assert main(["simulate-vignette", "--out", str(tmp_path), "--seed", str(seed)]) == 0
    for name in ("respondents.csv", "ratings.csv", "truth.yaml"):
        assert (tmp_path / name).read_bytes() == (VIGNETTE / "raw" / name).read_bytes(), name


def test_the_decks_split_the_full_factorial_once():
    """Blocked design: 4 decks of 9; every one of the 36 vignettes in exactly one deck, every
    behaviour x location cell once per deck."""
    ids = [v[0] for d in range(4) for v in deck_vignettes(d)]
    assert sorted(ids) == list(range(1, 37))
    for d in range(4):
        cells = {(b, loc) for _, _, b, loc in deck_vignettes(d)}
        assert len(cells) == 9


def test_the_example_has_the_designs_shape():
    respondents = pd.read_csv(VIGNETTE / "raw" / "respondents.csv")
    ratings = pd.read_csv(VIGNETTE / "raw" / "ratings.csv", keep_default_na=False)
    assert len(respondents) == 114 and len(ratings) == 114 * 9
    assert ratings.groupby("respondent_id").size().eq(9).all()
    deck = respondents.set_index("respondent_id")["deck"]
    for rid, rows in ratings.groupby("respondent_id"):
        assert sorted(rows["vignette_id"]) == sorted(v[0] for v in deck_vignettes(deck[rid] - 1))
    yes = ratings["respond"] == 1
    assert (ratings.loc[yes, "respond_to"] != "").all()
    assert (ratings.loc[~yes, "respond_to"] == "").all()
    assert set(ratings["responsibility"]) <= {1, 2, 3, 4, 5}


def test_the_example_validates_with_the_shared_machinery():
    report = validate(
        load_codebook(CODEBOOK), VIGNETTE / "raw/respondents.csv", VIGNETTE / "raw/ratings.csv"
    )
    assert report.ok and not report.warnings


def test_projections_of_a_linear_truth_are_the_truth():
    """The projection machinery on a balanced design: the GEE projection of the respond model
    reproduces the sign and order of the true conditional effects, attenuated towards 0 (a
    random intercept with SD 1 shrinks log-odds by about 1/sqrt(1 + 0.346))."""
    cells = pd.DataFrame(
        [
            (s, b, loc, r)
            for s in FACTORS["style"]
            for b in FACTORS["behaviour"]
            for loc in FACTORS["location"]
            for r in ("parent", "volunteer", "professional")
        ],
        columns=["style", "behaviour", "location", "role"],
    )
    gee = true_projections(cells)["gee"]
    assert 0 < gee["style[permissive]"] < 1.2
    assert gee["style[permissive]"] / 1.2 == pytest.approx(1 / np.sqrt(1 + 0.346), abs=0.03)
    assert gee["role[professional]"] == pytest.approx(0, abs=1e-9)


def _copy_data(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name in ("respondents", "ratings"):
        paths[name] = tmp_path / f"{name}.csv"
        shutil.copy(VIGNETTE / "raw" / f"{name}.csv", paths[name])
    return paths


def _set(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell; ``row`` as in a spreadsheet (header = 1)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[row - 1][rows[0].index(column)] = value
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def _section() -> dict:
    return yaml.safe_load(CONFIG.read_text())["vignette"]


def test_bad_vignette_data_are_reported_all_at_once(tmp_path):
    """Several problems in both files: each names file, row, column, value and what was
    expected, and the step stops before any model (the models are never imported)."""
    paths = _copy_data(tmp_path)
    ratings = pd.read_csv(paths["ratings"], keep_default_na=False)
    yes_row = int(np.flatnonzero(ratings["respond"] == 1)[0]) + 2
    no_row = int(np.flatnonzero(ratings["respond"] == 0)[0]) + 2
    _set(paths["respondents"], 3, "role", "teacher")
    _set(paths["respondents"], 4, "age", "7")
    _set(paths["ratings"], 2, "style", "lenient")
    _set(paths["ratings"], 5, "responsibility", "7")
    _set(paths["ratings"], yes_row, "respond_to", "")
    _set(paths["ratings"], 6, "respondent_id", "R999")
    _set(paths["ratings"], no_row, "respond_to", "child")
    with pytest.raises(InputError) as exc:
        run_vignette(
            codebook=str(CODEBOOK),
            data={k: str(v) for k, v in paths.items()},
            vignette=_section(),
            json=str(tmp_path / "models.json"),
            findings=str(tmp_path / "findings.json"),
            terms=str(tmp_path / "t.csv"),
            tests=str(tmp_path / "u.csv"),
            means=str(tmp_path / "m.csv"),
            passed=str(tmp_path / "validation" / "passed.txt"),
        )
    errors = [p for p in exc.value.problems if p.severity == "error"]
    found = {(Path(p.file).name, p.row, p.column, str(p.value)): p.expected for p in errors}
    resp, rat = "respondents.csv", "ratings.csv"
    assert "parent, volunteer, professional" in found[(resp, 3, "role", "teacher")]
    assert "between 18 and 99" in found[(resp, 4, "age", "7")]
    assert "authoritative" in found[(rat, 2, "style", "lenient")]
    assert (
        "between 1 and 5" in found[(rat, 5, "responsibility", "7")]
        or "1, 2, 3, 4, 5" in (found[(rat, 5, "responsibility", "7")])
    )
    missing = [e for (f, r, c, _), e in found.items() if (f, r, c) == (rat, yes_row, "respond_to")]
    assert missing and "respond '1' needs respond_to" in missing[0]
    assert any(k[:3] == (rat, 6, "respondent_id") and k[3] == "R999" for k in found)
    warned = [(p.row, p.column) for p in exc.value.problems if p.severity == "warning"]
    assert (no_row, "respond_to") in warned  # filled in although respond is 0
    assert not (tmp_path / "models.json").exists()
    assert (tmp_path / "validation" / "report.md").is_file()


def test_the_config_section_is_checked_against_the_codebook(tmp_path):
    """Unknown variables, a model that does not fit the outcome's type, a primary model not
    fitted, a missing data file: all at once, each naming its key."""
    config = yaml.safe_load(CONFIG.read_text())
    config["data"]["ratings"] = str(tmp_path / "nope.csv")
    config["vignette"].update(
        cluster="person",
        factors=["style", "colour"],
        heatmap=["style", "location_x"],
        outcomes={
            "respond": {"models": ["lmm"]},
            "responsibility": {"models": ["lmm"], "primary": "clm"},
        },
    )
    problems = vignette_config_problems(config, file="config/vignette.yaml")
    by_key = {p.column: p for p in problems}
    assert set(by_key) >= {
        "data.ratings",
        "vignette.cluster",
        "vignette.factors.1",
        "vignette.heatmap.1",
        "vignette.outcomes.respond.models",
        "vignette.outcomes.responsibility.primary",
    }
    assert "gee, glmm" in by_key["vignette.outcomes.respond.models"].expected
    assert by_key["vignette.factors.1"].value == "colour"
    assert vignette_config_problems(yaml.safe_load(CONFIG.read_text())) == []


def test_the_coding_template_generalises_to_the_vignette_codebook(tmp_path):
    import openpyxl

    out = tmp_path / "template.xlsx"
    assert main(["coding-template", "--codebook", str(CODEBOOK), "--path", str(out)]) == 0
    book = openpyxl.load_workbook(out)
    assert book.sheetnames[:2] == ["respondents", "ratings"]
    header = [c.value for c in book["ratings"][1]]
    assert {"style", "behaviour", "location", "respond", "respond_to"} <= set(header)


def test_the_command_line_reads_a_vignette_config(tmp_path):
    """``python -m intervention_meta vignette --config config/vignette.yaml --out DIR``: the
    config is checked against the vignette schema (defaults filled in) and gives the step its
    codebook, data files and section; --out its files."""
    from intervention_meta.__main__ import _parser, step_arguments
    from intervention_meta.steps import STEPS

    argv = ["vignette", "--config", str(CONFIG), "--out", str(tmp_path)]
    kwargs = step_arguments(STEPS["vignette"], _parser(argv).parse_args(argv))
    assert kwargs["codebook"] == "data/vignette/codebook.yaml"
    assert kwargs["data"] == {
        "respondents": "data/vignette/raw/respondents.csv",
        "ratings": "data/vignette/raw/ratings.csv",
    }
    assert kwargs["vignette"]["cluster"] == "respondent_id"
    assert kwargs["json"] == str(tmp_path / "vignette" / "models.json")
    assert kwargs["findings"] == str(tmp_path / "vignette" / "findings.json")
