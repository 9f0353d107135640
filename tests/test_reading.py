"""The one reader: separators, decimal marks, encodings, Excel, and files that are not tables."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import TEST_DATA, write_xlsx

from intervention_meta.data.reading import read_table
from intervention_meta.errors import InputError
from intervention_meta.io import quote_formula, unquote_formula, write_table


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_reads_every_cell_as_trimmed_text_indexed_by_spreadsheet_row(tmp_path):
    path = _write(tmp_path / "t.csv", b"id, name ,n\n a ,NA,-99\n\nb,NR, 12 \n")
    frame, info = read_table(path)
    assert list(frame.columns) == ["id", "name", "n"]
    # the blank line keeps its number: b is on spreadsheet row 4
    assert list(frame.index) == [2, 4]
    assert frame.loc[2].tolist() == ["a", "NA", "-99"]  # NA and -99 are left to the codebook
    assert frame.loc[4].tolist() == ["b", "NR", "12"]
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())
    assert (info.format, info.separator, info.decimal, info.n_rows) == ("csv", ",", ".", 2)
    assert info.problems == ()


def test_quoted_cells_keep_their_commas(tmp_path):
    path = _write(tmp_path / "t.csv", b'id,citation\nS1,"Smith, Brown (2009)"\n')
    frame, _ = read_table(path)
    assert frame.loc[2, "citation"] == "Smith, Brown (2009)"


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_a_cell_of_200000_characters_is_read_whole(tmp_path, separator):
    # Python's csv module refuses fields over csv.field_size_limit(), 131,072 by default
    sentence = 'Abstract, with a comma; a semicolon, a "quote"\nand a line break. '
    long = (sentence * 4000)[:199_999] + "."
    quoted = '"' + long.replace('"', '""') + '"'
    text = separator.join(["id", "notes", "n"]) + "\n" + separator.join(["S1", quoted, "3"]) + "\n"
    path = _write(tmp_path / "t.csv", text.encode())
    frame, info = read_table(path)
    assert len(long) == 200_000
    assert frame.loc[2, "notes"] == long
    assert frame.loc[2].tolist()[::2] == ["S1", "3"]
    assert (info.separator, info.n_rows, info.problems) == (separator, 1, ())
    # pandas' own reader, which the output steps use on the pipeline's tables, takes it too
    assert pd.read_csv(path, sep=separator)["notes"][0] == long


def test_semicolons_with_decimal_comma_are_read_as_numbers_with_a_point(tmp_path):
    path = _write(
        tmp_path / "t.csv", "id;m;sd;citation\nS1;3,4;0,85;Müller, A.\nS2;-1,5;2;x\n".encode()
    )
    frame, info = read_table(path)
    assert (info.separator, info.decimal) == (";", ",")
    assert frame["m"].tolist() == ["3.4", "-1.5"]
    assert frame["sd"].tolist() == ["0.85", "2"]
    assert frame["citation"].tolist() == ["Müller, A.", "x"]  # text is not touched
    assert "decimal ','" in info.describe()


def test_semicolons_with_decimal_point_stay_as_they_are(tmp_path):
    path = _write(tmp_path / "t.csv", b"id;m\nS1;3.4\n")
    frame, info = read_table(path)
    assert (info.separator, info.decimal) == (";", ".")
    assert frame.loc[2, "m"] == "3.4"


def test_mixed_decimal_marks_are_left_alone_with_a_warning(tmp_path):
    path = _write(tmp_path / "t.csv", b"id;m\nS1;3.4\nS2;3,5\n")
    frame, info = read_table(path)
    assert frame["m"].tolist() == ["3.4", "3,5"]
    (warning,) = info.warnings
    assert warning.check == "read_decimal"


def test_decimal_comma_is_not_accepted_with_comma_separator(tmp_path):
    path = _write(tmp_path / "t.csv", b'id,m\nS1,"3,4"\n')
    frame, info = read_table(path)
    assert frame.loc[2, "m"] == "3,4"  # validation then says: a number with a decimal point
    assert info.decimal == "."


def test_tab_separated(tmp_path):
    path = _write(tmp_path / "t.tsv", b"id\tm\nS1\t3.4\n")
    frame, info = read_table(path)
    assert info.separator == "\t" and frame.loc[2, "m"] == "3.4"


def test_utf8_bom_is_removed_from_the_first_column_name(tmp_path):
    path = _write(tmp_path / "t.csv", "\ufeffstudy_id,country\nS1,Österreich\n".encode())
    frame, info = read_table(path)
    assert list(frame.columns) == ["study_id", "country"]
    assert frame.loc[2, "country"] == "Österreich"
    assert info.bom and info.encoding == "utf-8-sig"


def test_cp1252_is_read_with_a_warning(tmp_path):
    path = _write(tmp_path / "t.csv", "study_id,country\nS1,Curaçao\n".encode("cp1252"))
    frame, info = read_table(path)
    assert frame.loc[2, "country"] == "Curaçao"
    assert info.encoding == "cp1252"
    (warning,) = info.problems
    assert warning.severity == "warning" and warning.file == str(path)


def test_utf16_excel_unicode_text_is_read(tmp_path):
    path = _write(tmp_path / "t.txt", "id\tname\nS1\tZoë\n".encode("utf-16"))
    frame, info = read_table(path)
    assert frame.loc[2, "name"] == "Zoë" and info.separator == "\t"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b" ,  , \n"])
def test_empty_file_is_a_problem_naming_the_file(tmp_path, content):
    path = _write(tmp_path / "empty.csv", content)
    with pytest.raises(InputError) as info:
        read_table(path)
    (problem,) = info.value.problems
    assert problem.file == str(path) and problem.check == "read_empty"
    assert "empty" in problem.expected


def test_header_only_file_gives_an_empty_table_and_a_problem(tmp_path):
    path = _write(tmp_path / "h.csv", b"study_id,year\n")
    frame, info = read_table(path)
    assert frame.empty and list(frame.columns) == ["study_id", "year"]
    (problem,) = info.errors
    assert problem.file == str(path) and problem.check == "read_header_only"


@pytest.mark.parametrize("name", ["data.xls", "data.json", "data"])
def test_unknown_extension_is_a_problem_naming_the_file(tmp_path, name):
    path = _write(tmp_path / name, b"a,b\n1,2\n")
    with pytest.raises(InputError) as info:
        read_table(path)
    (problem,) = info.value.problems
    assert problem.file == str(path) and problem.check == "read_extension"


def test_missing_file_is_a_problem_naming_the_file(tmp_path):
    with pytest.raises(InputError) as info:
        read_table(tmp_path / "nope.csv")
    assert info.value.problems[0].check == "read_missing_file"


def test_excel_workbook_named_csv_is_recognised(tmp_path):
    xlsx = write_xlsx(TEST_DATA / "studies.csv", tmp_path / "s.xlsx")
    path = _write(tmp_path / "s.csv", xlsx.read_bytes())
    with pytest.raises(InputError) as info:
        read_table(path)
    assert "name it .xlsx" in info.value.problems[0].expected


def test_damaged_workbook_is_unreadable(tmp_path):
    path = _write(tmp_path / "bad.xlsx", b"this is not a zip file")
    with pytest.raises(InputError) as info:
        read_table(path)
    assert info.value.problems[0].check == "read_unreadable"


def test_binary_file_is_unreadable(tmp_path):
    path = _write(tmp_path / "bin.csv", b"a,b\n\x00\x01\x02,\xff\xfe\x00\n")
    with pytest.raises(InputError) as info:
        read_table(path)
    assert info.value.problems[0].file == str(path)


def test_cells_beyond_the_header_are_an_error_naming_the_row(tmp_path):
    path = _write(tmp_path / "t.csv", b"id,m\nS1,1\nS2,2,oops\n")
    frame, info = read_table(path)
    (problem,) = info.errors
    assert problem.row == 1 and "row 3" in str(problem.value)
    assert list(frame.columns) == ["id", "m"]


def test_trailing_separators_are_ignored(tmp_path):
    path = _write(tmp_path / "t.csv", b"id,m,,\nS1,1,,\n")
    frame, info = read_table(path)
    assert list(frame.columns) == ["id", "m"] and info.problems == ()


def test_duplicate_column_names_are_an_error(tmp_path):
    path = _write(tmp_path / "t.csv", b"id,m,m\nS1,1,2\n")
    frame, info = read_table(path)
    (problem,) = info.errors
    assert (problem.column, problem.row) == ("m", 1)
    assert frame.loc[2, "m"] == "1"


def test_xlsx_is_read_the_same_as_csv(tmp_path):
    for table in ("studies", "effects"):
        csv_frame, _ = read_table(TEST_DATA / f"{table}.csv")
        xlsx = write_xlsx(TEST_DATA / f"{table}.csv", tmp_path / f"{table}.xlsx")
        xlsx_frame, info = read_table(xlsx)
        assert info.format == "xlsx" and info.problems == ()
        pd.testing.assert_frame_equal(xlsx_frame, csv_frame)


def test_xlsx_prefers_the_sheet_named_as_the_table(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.title = "notes"
    workbook.active.append(["just notes"])
    sheet = workbook.create_sheet("studies")
    sheet.append(["study_id", "year", "when"])
    sheet.append(["S1", 2014.0, None])
    sheet.append([None, None, None])
    sheet.append(["S2", 0.1 + 0.2, True])
    workbook.save(tmp_path / "book.xlsx")
    frame, info = read_table(tmp_path / "book.xlsx", table="studies")
    assert info.sheet == "studies"
    assert list(frame.index) == [2, 4]
    assert frame["year"].tolist() == ["2014", "0.3"]  # as Excel shows them
    assert frame["when"].tolist() == ["", "TRUE"]
    _, first = read_table(tmp_path / "book.xlsx")
    assert first.sheet == "notes"


# --------------------------------------------------------------------------- formula injection
# OWASP, "CSV Injection": cells starting with = + - @ (or a tab / carriage return) are formulas
FORMULAS = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "-"]


def test_written_tables_quote_text_a_spreadsheet_would_run(tmp_path):
    frame = pd.DataFrame(
        {
            "text": FORMULAS,
            "=header": ["plain", "-0.5", "-1e5", "+3", "a-b", "'quoted", "'=already"],
            "number": [-0.5, -1.0, 2.0, -3e5, 0.0, -7.25, 1.0],
            "integer": pd.array([-1, None, 3, -4, 5, 6, -7], dtype="Int64"),
            "string": pd.array(["=1", None, "ok", "@x", "-", "+", "2"], dtype="string"),
        }
    )
    before = frame.copy()
    path = tmp_path / "t.csv"
    write_table(frame, path)
    pd.testing.assert_frame_equal(frame, before)  # the data in memory are not changed
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["text", "'=header", "number", "integer", "string"]
    assert written["text"].tolist() == ["'" + f for f in FORMULAS]
    # numbers held as text and text that cannot start a formula stay; quotes get one more
    assert written["'=header"].tolist() == [
        "plain", "-0.5", "-1e5", "+3", "a-b", "'quoted", "''=already"
    ]  # fmt: skip
    assert written["number"].tolist() == ["-0.5", "-1.0", "2.0", "-300000.0", "0.0", "-7.25", "1.0"]
    assert written["integer"].tolist() == ["-1", "", "3", "-4", "5", "6", "-7"]
    assert written["string"].tolist() == ["'=1", "", "ok", "'@x", "'-", "'+", "2"]


def test_a_written_table_reads_back_exactly_and_coded_data_is_read_as_it_is(tmp_path):
    notes = ["=1", "'=1", "''-x", "-", "x"]
    frame = pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "=note": notes})
    path = tmp_path / "t.csv"
    write_table(frame, path)
    back, info = read_table(path, written=True)
    assert back.to_numpy().tolist() == frame.to_numpy().tolist()
    assert info.columns == ("id", "=note") and list(back.columns) == ["id", "=note"]
    raw, _ = read_table(path)  # a coded data file is never unquoted
    assert raw["'=note"].tolist() == ["'" + n if n != "x" else n for n in notes]


@pytest.mark.parametrize(
    "text", ["=1", "'=1", "''=1", "'a", "'", "-5", "'-5", "-", "", "x", "@", "\t=1", "' =1"]
)
def test_quoting_is_undone_exactly(text):
    assert unquote_formula(quote_formula(text)) == text
