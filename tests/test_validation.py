"""Validation: every fault in the coded data is named by file, row, column, value and expectation.

The faults are made by changing single cells of the valid pair in tests/data (see conftest.py);
rows are spreadsheet rows (header = 1). Effects rows: 2 means_sds, 3 t, 4 f, 5 p (cluster study
S02), 6 d_se, 7 d_ci, 8 or_2x2, 9 or_ci, 10 prepost, 11 r, 12 yi_vi. Studies rows: 2 S01 ... 5 S04.
"""

from __future__ import annotations

import csv

import pandas as pd
import pytest
import yaml
from conftest import CODEBOOK, fingerprint, write_xlsx

from intervention_meta.data.cleaning import clean
from intervention_meta.data.validation import validate
from intervention_meta.errors import InputError

S, E = "studies", "effects"

# (edits, (table, row, column, value, part of expected, check))
FAULTS = {
    "wrong type (text for an integer)": (
        [(S, 2, "year", "twenty")],
        (S, 2, "year", "twenty", "an integer between 1960 and 2030", "not_a_number"),
    ),
    "non-integer count": (
        [(E, 2, "n_int", "40.5")],
        (E, 2, "n_int", "40.5", "an integer >= 2", "not_an_integer"),
    ),
    "text in a number": (
        [(E, 2, "m_int", "3.4 points")],
        (E, 2, "m_int", "3.4 points", "a number", "not_a_number"),
    ),
    "decimal comma in a comma-separated file": (
        [(E, 2, "m_int", "3,4")],
        (E, 2, "m_int", "3,4", "with a decimal point", "not_a_number"),
    ),
    "unknown level": (
        [(S, 3, "design", "RCT")],
        (S, 3, "design", "RCT", "one of: rct, quasi, prepost", "unknown_level"),
    ),
    "binary other than 0/1": (
        [(S, 2, "cluster_randomised", "2")],
        (S, 2, "cluster_randomised", "2", "one of: 0, 1", "unknown_level"),
    ),
    "ordinal out of its levels": (
        [(S, 2, "risk_of_bias", "4")],
        (S, 2, "risk_of_bias", "4", "one of: 1, 2, 3", "unknown_level"),
    ),
    "duplicate study id": (
        [(S, 3, "study_id", "S01")],
        (S, 3, "study_id", "S01", "a unique study_id (also in row 2)", "duplicate_key"),
    ),
    "duplicate effect id": (
        [(E, 4, "es_id", "S01-1")],
        (E, 4, "es_id", "S01-1", "a unique es_id (also in row 2)", "duplicate_key"),
    ),
    "orphan effect": (
        [(E, 3, "study_id", "S09")],
        (E, 3, "study_id", "S09", "a study_id present in studies.csv", "orphan"),
    ),
    "effect without its study": (
        [(E, 3, "study_id", "")],
        (E, 3, "study_id", "", "a value (required)", "required"),
    ),
    "missing required statistic": (
        [(E, 2, "sd_ctl", "")],
        (E, 2, "sd_ctl", "", "es_input 'means_sds' needs sd_ctl", "missing_statistic"),
    ),
    "missing direction for an F value": (
        [(E, 4, "stat_direction", "")],
        (E, 4, "stat_direction", "", "es_input 'f' needs stat_direction", "missing_statistic"),
    ),
    "required statistic coded as not reported": (
        [(E, 3, "t_value", "-99")],
        (E, 3, "t_value", "-99", "'-99' means not reported", "missing_statistic"),
    ),
    "negative SD": (
        [(E, 2, "sd_int", "-0.8")],
        (E, 2, "sd_int", "-0.8", "a number > 0", "out_of_range"),
    ),
    "zero pre-test SD": (
        [(E, 10, "sd_int_pre", "0")],
        (E, 10, "sd_int_pre", "0", "a number > 0", "out_of_range"),
    ),
    "p above 1": (
        [(E, 5, "p_value", "1.3")],
        (E, 5, "p_value", "1.3", "a number > 0 and < 1", "out_of_range"),
    ),
    "p of exactly 0": (
        [(E, 5, "p_value", "0")],
        (E, 5, "p_value", "0", "a number > 0 and < 1", "out_of_range"),
    ),
    "n below 2": (
        [(E, 2, "n_ctl", "1")],
        (E, 2, "n_ctl", "1", "an integer >= 2", "out_of_range"),
    ),
    "r of -1": (
        [(E, 11, "r_value", "-1")],
        (E, 11, "r_value", "-1", "a number > -1 and < 1", "out_of_range"),
    ),
    "r above 1": (
        [(E, 11, "r_value", "1.2")],
        (E, 11, "r_value", "1.2", "a number > -1 and < 1", "out_of_range"),
    ),
    "CI not containing the estimate": (
        [(E, 7, "d_value", "0.9")],
        (E, 7, "d_value", "0.9", "inside its confidence interval 0.05 to 0.57", "ci_contains"),
    ),
    "estimate on a CI bound": (
        [(E, 7, "d_value", "0.57")],
        (E, 7, "d_value", "0.57", "inside its confidence interval", "ci_contains"),
    ),
    "Cohen's d without the group sizes for its correction": (
        [(E, 6, "d_is_g", "0")],
        (E, 6, "n_int", "", "d_is_g '0' needs n_int", "missing_statistic"),
    ),
    "CI bounds reversed": (
        [(E, 9, "or_ci_lower", "3.5")],
        (E, 9, "or_ci_upper", "2.9", "a number > or_ci_lower (3.5)", "ci_order"),
    ),
    "negative count": (
        [(E, 8, "events_int", "-3")],
        (E, 8, "events_int", "-3", "an integer >= 0", "out_of_range"),
    ),
    "empty group in a 2x2 table": (
        [(E, 8, "events_ctl", "0"), (E, 8, "nonevents_ctl", "0")],
        (E, 8, "events_ctl", "0", "events_ctl + nonevents_ctl > 0", "empty_group"),
    ),
    "non-positive sampling variance": (
        [(E, 12, "vi", "0")],
        (E, 12, "vi", "0", "a number > 0", "out_of_range"),
    ),
    "required cell blank": (
        [(S, 4, "citation", "")],
        (S, 4, "citation", "", "a value (required)", "required"),
    ),
    "NA in a required cell counts as blank": (
        [(S, 2, "programme", "NA")],
        (S, 2, "programme", "NA", "'NA' counts as blank", "required"),
    ),
    "required binary blank (missing code suggested)": (
        [(S, 2, "peer_support", "")],
        (S, 2, "peer_support", "", "write -99 if not reported", "required"),
    ),
    "blank effect id": (
        [(E, 2, "es_id", "")],
        (E, 2, "es_id", "", "a value (required)", "required"),
    ),
    "unknown es_input": (
        [(E, 12, "es_input", "yi_se")],
        (E, 12, "es_input", "yi_se", "one of: means_sds, t, f, p, d_se", "unknown_level"),
    ),
    "year out of range": (
        [(S, 2, "year", "2045")],
        (S, 2, "year", "2045", "an integer between 1960 and 2030", "out_of_range"),
    ),
    "follow-up out of range": (
        [(E, 2, "followup_months", "130")],
        (E, 2, "followup_months", "130", "a number between 0 and 120", "out_of_range"),
    ),
    "ICC above 1": (
        [(E, 5, "icc", "1.2")],
        (E, 5, "icc", "1.2", "a number between 0 and 1", "out_of_range"),
    ),
}


def _apply(pair, edits):
    for table, row, column, value in edits:
        pair.set(table, row, column, value)


def _find(report, table, row, column, pair):
    path = str(pair.paths[table])
    return [p for p in report.problems if (p.file, p.row, p.column) == (path, row, column)]


def test_the_valid_pair_passes_without_errors_or_warnings(pair, codebook):
    report = validate(codebook, pair.studies, pair.effects)
    assert report.ok and report.problems == ()
    assert set(report.reads) == {"studies", "effects"}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_reported_with_row_column_value_and_expectation(fault, pair, codebook):
    edits, (table, row, column, value, expected, check) = FAULTS[fault]
    _apply(pair, edits)
    report = validate(codebook, pair.studies, pair.effects)
    assert not report.ok
    found = _find(report, table, row, column, pair)
    assert found, [p.message() for p in report.problems]
    problem = next((p for p in found if p.check == check), found[0])
    assert problem.severity == "error"
    assert problem.check == check
    assert problem.value == value
    assert expected in problem.expected
    assert str(row) in problem.message() and column in problem.message()


def test_all_problems_in_one_file_are_reported_at_once(pair, codebook):
    edits = [
        (E, 2, "sd_int", "-1"),
        (E, 3, "t_value", ""),
        (E, 5, "p_value", "2"),
        (E, 7, "d_value", "0.9"),
        (E, 9, "study_id", "S77"),
        (E, 11, "r_value", "abc"),
        (E, 12, "es_input", "z"),
    ]
    _apply(pair, edits)
    report = validate(codebook, pair.studies, pair.effects)
    found = {(p.row, p.column) for p in report.errors}
    assert found == {
        (2, "sd_int"),
        (3, "t_value"),
        (5, "p_value"),
        (7, "d_value"),
        (9, "study_id"),
        (11, "r_value"),
        (12, "es_input"),
    }
    # ordered by row as a person fixes them
    assert [p.row for p in report.errors] == sorted(p.row for p in report.errors)


def test_missing_code_in_a_required_column_is_allowed(pair, codebook):
    # the fixture codes joint_effort of S02 as -99 (not reported); year -99 likewise
    assert pair.get(S, 3, "joint_effort") == "-99"
    pair.set(S, 2, "year", "-99")
    pair.set(S, 4, "positive_content_view", "-99.0")
    report = validate(codebook, pair.studies, pair.effects)
    assert report.ok and report.problems == ()


def test_missing_required_column_is_an_error(pair, codebook):
    pair.drop_column(S, "citation")
    report = validate(codebook, pair.studies, pair.effects)
    (problem,) = report.errors
    assert (problem.file, problem.row, problem.column) == (str(pair.studies), None, "citation")
    assert problem.check == "missing_column"


@pytest.mark.parametrize(("table", "column"), [(E, "es_id"), (E, "study_id"), (S, "study_id")])
def test_missing_key_or_link_column_is_an_error(pair, codebook, table, column):
    pair.drop_column(table, column)
    report = validate(codebook, pair.studies, pair.effects)
    problem = next(p for p in report.errors if p.check == "missing_column")
    assert problem.column == column and problem.file == str(pair.paths[table])


def test_extra_unknown_column_is_a_warning(pair, codebook):
    pair.add_column(E, "coder_notes", "checked")
    report = validate(codebook, pair.studies, pair.effects)
    assert report.ok
    (warning,) = report.warnings
    assert (warning.column, warning.value, warning.check) == (
        "coder_notes",
        "coder_notes",
        "unknown_column",
    )
    assert "ignored unless added to the codebook" in warning.expected


def test_renamed_column_gets_a_did_you_mean(pair, codebook):
    pair.rename_column(E, "sd_int", "SD_int")
    report = validate(codebook, pair.studies, pair.effects)
    unknown = next(p for p in report.warnings if p.check == "unknown_column")
    assert "did you mean 'sd_int'" in unknown.expected
    absent = next(p for p in report.warnings if p.check == "absent_optional_column")
    assert absent.column == "sd_int"
    needed = next(p for p in report.errors if p.check == "missing_statistic")
    assert (needed.row, needed.column) == (2, "sd_int")
    assert "column is missing" in needed.expected


WARNINGS = {
    "implausibly large d": ([(E, 6, "d_value", "3.5")], (E, 6, "d_value", "unusual_value")),
    "statistic the es_input does not use": (
        [(E, 11, "n_int", "50")],
        (E, 11, "n_int", "unused_statistic"),
    ),
    "cluster study without icc": ([(E, 5, "icc", "")], (E, 5, "icc", "cluster_default")),
    "cluster study with icc not reported": (
        [(E, 6, "icc", "-99")],
        (E, 6, "icc", "cluster_default"),
    ),
    "p value that looks like p < .05": (
        [(E, 5, "p_value", "0.05")],
        (E, 5, "p_value", "round_p_value"),
    ),
}


@pytest.mark.parametrize("case", list(WARNINGS))
def test_unusual_but_possible_values_are_warnings(case, pair, codebook):
    edits, (table, row, column, check) = WARNINGS[case]
    _apply(pair, edits)
    report = validate(codebook, pair.studies, pair.effects)
    assert report.ok
    (warning,) = report.warnings
    assert (warning.file, warning.row, warning.column, warning.check) == (
        str(pair.paths[table]),
        row,
        column,
        check,
    )


def test_group_sizes_of_a_cohens_d_are_not_unused(pair, codebook):
    _apply(pair, [(E, 6, "d_is_g", "0"), (E, 6, "n_int", "60"), (E, 6, "n_ctl", "58")])
    report = validate(codebook, pair.studies, pair.effects)
    assert report.ok and report.problems == ()


def test_study_without_effects_is_a_warning(pair, codebook):
    rows = pair.rows(E)
    pair.write(E, [r for r in rows if r[1] != "S04"])
    report = validate(codebook, pair.studies, pair.effects)
    assert report.ok
    (warning,) = report.warnings
    assert (warning.file, warning.row, warning.column, warning.value) == (
        str(pair.studies),
        5,
        "study_id",
        "S04",
    )


def test_semicolons_decimal_comma_bom_and_cp1252_validate_like_the_original(pair, codebook):
    for table, encoding in ((S, "cp1252"), (E, "utf-8-sig")):
        rows = pair.rows(table)
        rows = [rows[0]] + [
            [c.replace(".", ",") if _is_decimal(c) else c for c in r] for r in rows[1:]
        ]
        with open(pair.paths[table], "w", newline="", encoding=encoding) as handle:
            csv.writer(handle, delimiter=";", lineterminator="\r\n").writerows(rows)
    report = validate(codebook, pair.studies, pair.effects)
    assert report.ok
    assert [p.check for p in report.warnings] == ["read_encoding"]  # cp1252 studies
    assert report.reads[E].decimal == "," and report.reads[E].separator == ";"
    assert report.reads[E].bom


def _is_decimal(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return "." in cell


def test_xlsx_input_validates_like_csv(pair, codebook, tmp_path):
    pair.set(E, 2, "sd_int", "-0.8")
    studies = write_xlsx(pair.studies, tmp_path / "studies.xlsx", sheet="studies")
    effects = write_xlsx(pair.effects, tmp_path / "effects.xlsx", sheet="effects")
    from_csv = validate(codebook, pair.studies, pair.effects)
    from_xlsx = validate(codebook, studies, effects)
    strip = ["severity", "row", "column", "value", "expected", "check"]
    pd.testing.assert_frame_equal(from_csv.to_frame()[strip], from_xlsx.to_frame()[strip])


@pytest.mark.parametrize(("content", "check"), [(b"", "read_empty"), (None, "read_header_only")])
def test_empty_or_header_only_file_is_reported_not_raised(pair, codebook, content, check):
    if content is None:
        content = pair.effects.read_bytes().splitlines(keepends=True)[0]
    pair.effects.write_bytes(content)
    report = validate(codebook, pair.studies, pair.effects)
    assert not report.ok
    problem = next(p for p in report.errors if p.check == check)
    assert problem.file == str(pair.effects)


def test_report_files_are_readable_and_complete(pair, codebook, tmp_path):
    _apply(pair, [(E, 2, "sd_int", "-1"), (S, 2, "year", "1800")])
    pair.add_column(E, "notes", "x|y")
    report = validate(codebook, pair.studies, pair.effects)
    paths = report.write(tmp_path / "out" / "validate")
    md = paths["md"].read_text(encoding="utf-8")
    assert str(pair.studies) in md and str(pair.effects) in md
    assert "### Errors (1)" in md and "### Warnings (1)" in md
    assert "| 2 | sd_int | `-1` | a number > 0" in md
    table = pd.read_csv(paths["csv"], keep_default_na=False, dtype=str)
    assert len(table) == len(report.problems) == 3
    assert set(table["row"]) == {"2", ""}
    assert str(paths["md"]) in report.summary(paths["md"])
    assert report.summary().startswith("validation FAILED: 2 error(s), 1 warning(s)")
    with pytest.raises(InputError) as info:
        report.raise_for_errors()
    assert len(info.value.errors) == 2


def test_raw_files_are_never_written(pair, codebook, tmp_path):
    pair.set(E, 2, "sd_int", "-1")
    before = fingerprint(pair.studies, pair.effects)
    report = validate(codebook, pair.studies, pair.effects)
    report.write(tmp_path / "report")
    clean(codebook, pair.studies, pair.effects, {"design": ["rct"]}).write(tmp_path / "clean")
    assert fingerprint(pair.studies, pair.effects) == before


def test_new_codebook_variable_is_checked_and_carried_without_code(pair, tmp_path):
    data = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    data["variables"].append(
        {
            "name": "sessions",
            "table": "studies",
            "type": "integer",
            "range": {"min": 1, "max": 200},
            "missing": [-99],
            "required": True,
            "role": "moderator",
            "label": "Number of sessions",
            "description": "Number of programme sessions offered.",
        }
    )
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    pair.add_column(S, "sessions", ["12", "0", "-99", "wk"])
    report = validate(path, pair.studies, pair.effects)
    bad = {(p.row, p.value): p.expected for p in report.errors}
    assert set(bad) == {(3, "0"), (5, "wk")}
    assert "an integer between 1 and 200" in bad[(3, "0")]

    pair.set(S, 3, "sessions", "8")
    pair.set(S, 5, "sessions", "30")
    assert validate(path, pair.studies, pair.effects).ok
    result = clean(path, pair.studies, pair.effects, {"sessions": {"min": 10}})
    assert str(result.effects["sessions"].dtype) == "Int64"
    assert set(result.effects["study_id"]) == {"S01", "S04"}  # S02 has 8, S03 not reported
    assert result.counts["dropped_by_reason"] == {
        "sessions below 10 (study-level)": 3,
        "sessions missing (study-level)": 3,
    }


def test_statistic_columns_follow_the_codebooks_requires_mapping(pair, tmp_path):
    # requires in mapping form {role: column}: the data set's own column names are validated
    data = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    sd_ctl = next(v for v in data["variables"] if v["name"] == "sd_ctl")
    sd_ctl["name"] = "sd_cg"
    es_input = next(v for v in data["variables"] if v["name"] == "es_input")
    roles = es_input["requires"]["means_sds"]
    es_input["requires"]["means_sds"] = {r: ("sd_cg" if r == "sd_ctl" else r) for r in roles}
    es_input["requires"]["prepost"] = {r: r for r in es_input["requires"]["prepost"]}
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    pair.rename_column(E, "sd_ctl", "sd_cg")
    assert validate(path, pair.studies, pair.effects).ok
    pair.set(E, 2, "sd_cg", "")
    report = validate(path, pair.studies, pair.effects)
    (problem,) = report.errors
    assert (problem.row, problem.column, problem.check) == (2, "sd_cg", "missing_statistic")
    assert "es_input 'means_sds' needs sd_cg" in problem.expected
