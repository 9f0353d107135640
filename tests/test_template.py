"""The Excel coding template: sheets, header comments, checks, and a round trip through the
pipeline's own reader, validation and cleaning (what coders fill in is read back as it is)."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import TEST_DATA

from intervention_meta.__main__ import main
from intervention_meta.coding.template import _numeric_rule, comment_text, write_template
from intervention_meta.data.cleaning import clean
from intervention_meta.data.codebook import Variable, load_codebook, normalise_code, parse_number
from intervention_meta.data.reading import read_table
from intervention_meta.data.validation import validate

INCLUSION = {"design": ["rct", "quasi", "prepost"]}


@pytest.fixture(scope="module")
def template(tmp_path_factory, codebook):
    path = tmp_path_factory.mktemp("template") / "coding_template.xlsx"
    info = write_template(codebook, path)
    return path, info


def _validations(ws) -> dict[str, object]:
    """Column letter -> its DataValidation."""
    out = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            out[rng.coord.split(":")[0].rstrip("0123456789")] = dv
    return out


def test_one_sheet_per_table_with_the_codebook_header_and_an_instructions_sheet(template, codebook):
    path, info = template
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["studies", "effects", "instructions"] == list(info.sheets)
    for table in codebook.tables:
        ws = wb[table]
        header = [c.value for c in ws[1]]
        assert header == codebook.columns(table) == list(info.columns[table])
        assert ws.freeze_panes == "A2"
        assert ws.max_row == 1  # nothing below the header
        for cell in ws[1]:
            assert cell.font.b
            assert ws.column_dimensions[cell.column_letter].width >= len(cell.value)
    instructions = wb["instructions"]
    listed = {
        (row[0], row[1])
        for row in instructions.iter_rows(values_only=True)
        if row[0] in codebook.tables
    }
    expected = {(t, c) for t in codebook.tables for c in codebook.columns(t)}
    assert listed == expected


def test_each_header_cell_carries_the_instruction_as_a_comment(template, codebook):
    path, _ = template
    wb = openpyxl.load_workbook(path)
    for table in codebook.tables:
        for cell in wb[table][1]:
            var = codebook.variable_for_column(table, cell.value)
            text = cell.comment.text
            assert text.startswith(var.label)
            assert var.description in text
            for code, label in var.levels.items():
                assert f"{code} = {label}" in text
            for code in var.missing:
                assert code in text
    assert "between 1960 and 2030" in comment_text(codebook["year"])


def test_level_columns_offer_their_codes_and_missing_codes_as_a_drop_down(template, codebook):
    path, info = template
    wb = openpyxl.load_workbook(path)
    for table in codebook.tables:
        ws = wb[table]
        rules = _validations(ws)
        for cell in ws[1]:
            var = codebook.variable_for_column(table, cell.value)
            if not var.has_levels:
                continue
            dv = rules[cell.column_letter]
            assert dv.type == "list" and dv.allow_blank and dv.showErrorMessage
            assert dv.formula1 == '"' + ",".join(list(var.levels) + list(var.missing)) + '"'
            assert info.validations[table][cell.value] == "list"
            assert str(dv.sqref) == f"{cell.column_letter}2:{cell.column_letter}{info.rows + 1}"


def test_keys_must_be_unique_and_the_parent_key_offers_the_keys_of_the_parent_sheet(template):
    path, info = template
    wb = openpyxl.load_workbook(path)
    for table in ("studies", "effects"):
        key = _validations(wb[table])["A"]
        assert key.type == "custom"
        assert key.formula1 == f"COUNTIF($A$2:$A${info.rows + 1},A2)=1"
        assert info.validations[table][wb[table]["A1"].value] == "unique key"
    ws = wb["effects"]
    dv = _validations(ws)["B"]  # study_id, right after the effects key
    assert ws["B1"].value == "study_id"
    assert dv.type == "list"
    assert dv.formula1 == f"'studies'!$A$2:$A${info.rows + 1}"


def test_numeric_columns_check_type_range_and_admit_missing_codes(template, codebook):
    path, _ = template
    ws = openpyxl.load_workbook(path)["studies"]
    year = _validations(ws)["C"]
    assert ws["C1"].value == "year"
    assert year.type == "custom"
    assert year.formula1 == "OR(AND(ISNUMBER(C2),C2=INT(C2),C2>=1960,C2<=2030),C2=-99)"
    # without missing codes: Excel's own whole-number / decimal rules with the range
    plain = Variable("k", "studies", "integer", range=codebook["year"].range)
    assert _numeric_rule(plain, "A2") == ("whole", "between", "1960", "2030")
    sd = Variable("sd", "effects", "number", range=codebook["sd_int"].range)
    assert _numeric_rule(sd, "A2") == ("decimal", "greaterThan", "0", None)
    p = Variable("p", "effects", "number", range=codebook["p_value"].range)
    assert _numeric_rule(p, "A2")[2] == "AND(ISNUMBER(A2),A2>0,A2<1)"
    text_missing = Variable("x", "effects", "number", missing=("NR",))
    assert _numeric_rule(text_missing, "D2")[2] == 'OR(ISNUMBER(D2),EXACT(D2,"NR"))'


def _person_value(text: str, var: Variable | None):
    """A cell as a person types it into Excel: numbers become numbers, text stays text."""
    if text == "":
        return None
    if var is not None and var.type in ("id", "text"):
        return text
    number = parse_number(text)
    if number is None:
        return text
    return int(number) if number.is_integer() else number


def _fill(template: Path, target: Path, codebook) -> Path:
    wb = openpyxl.load_workbook(template)
    for table in codebook.tables:
        ws = wb[table]
        header = [c.value for c in ws[1]]
        with open(TEST_DATA / f"{table}.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        rules = _validations(ws)
        for i, row in enumerate(rows, start=2):
            for j, name in enumerate(header, start=1):
                var = codebook.variable_for_column(table, name)
                value = _person_value(row.get(name, ""), var)
                cell = ws.cell(row=i, column=j, value=value)
                dv = rules.get(cell.column_letter)
                if value is not None and dv is not None and dv.formula1.startswith('"'):
                    codes = dv.formula1.strip('"').split(",")  # the drop-down admits it
                    assert normalise_code(value) in codes, (table, name, value)
    wb.save(target)
    return target


def test_filled_template_reads_back_like_the_equivalent_csv(template, codebook, tmp_path):
    path, _ = template
    xlsx = _fill(path, tmp_path / "filled.xlsx", codebook)
    csv_studies, csv_effects = TEST_DATA / "studies.csv", TEST_DATA / "effects.csv"

    for table, csv_path in (("studies", csv_studies), ("effects", csv_effects)):
        from_xlsx, info = read_table(xlsx, table=table)
        from_csv, _ = read_table(csv_path, table=table)
        assert info.sheet == table
        pd.testing.assert_frame_equal(from_xlsx[from_csv.columns], from_csv)

    report_xlsx = validate(codebook, xlsx, xlsx)
    report_csv = validate(codebook, csv_studies, csv_effects)
    assert report_xlsx.ok and report_csv.ok

    def strip(report):
        return [(p.severity, p.row, p.column, p.value, p.check) for p in report.problems]

    assert strip(report_xlsx) == strip(report_csv)

    from_xlsx = clean(codebook, xlsx, xlsx, INCLUSION)
    from_csv = clean(codebook, csv_studies, csv_effects, INCLUSION)
    pd.testing.assert_frame_equal(from_xlsx.effects, from_csv.effects)
    pd.testing.assert_frame_equal(from_xlsx.studies, from_csv.studies)
    assert from_xlsx.counts == from_csv.counts


def test_long_or_comma_code_lists_go_to_a_hidden_lists_sheet(tmp_path):
    many = {f"level_{i:02d}_with_a_long_code_name": f"Level {i}" for i in range(20)}
    cb = load_codebook(
        {
            "tables": {
                "instructions": {"key": "sid"},
                "es": {"key": "eid", "parent": "instructions"},
            },
            "variables": [
                {"name": "sid", "table": "instructions", "type": "id"},
                {"name": "kind", "table": "instructions", "type": "categorical", "levels": many},
                {
                    "name": "odd",
                    "table": "instructions",
                    "type": "categorical",
                    "levels": {"a,b": "with a comma", "c": "plain"},
                    "missing": ["NR"],
                },
                {"name": "eid", "table": "es", "type": "id"},
            ],
        }
    )
    info = write_template(cb, tmp_path / "t.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "t.xlsx")
    # a table called "instructions" keeps its name; the instructions sheet gets another one
    assert wb.sheetnames == ["instructions", "es", "_instructions", "lists"]
    lists = wb["lists"]
    assert lists.sheet_state == "hidden"
    rules = _validations(wb["instructions"])
    assert rules["B"].formula1 == "'lists'!$A$2:$A$21"
    assert [lists.cell(row=i, column=1).value for i in range(2, 22)] == list(many)
    assert rules["C"].formula1 == "'lists'!$B$2:$B$4"
    assert [lists.cell(row=i, column=2).value for i in range(2, 5)] == ["a,b", "c", "NR"]
    assert info.validations["instructions"] == {"sid": "unique key", "kind": "list", "odd": "list"}
    frame, read = read_table(tmp_path / "t.xlsx", table="es")
    assert read.sheet == "es" and list(frame.columns) == ["eid", "sid"]


def test_command_line_writes_the_workbook(tmp_path):
    from conftest import CODEBOOK

    out = tmp_path / "sub" / "template.xlsx"
    args = ["coding-template", "--codebook", str(CODEBOOK), "--path", str(out), "--rows", "50"]
    assert main(args) == 0
    ws = openpyxl.load_workbook(out)["studies"]
    assert str(_validations(ws)["E"].sqref) == "E2:E51"
