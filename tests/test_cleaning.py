"""Cleaning: typed columns, missing codes, the studies merged in, inclusion criteria, bookkeeping.

Expected values come from the hand-made pair in tests/data (see conftest.py): 4 studies
(S01 rct, S02 quasi and cluster-randomised, S03 prepost, S04 rct) and 11 effect sizes
(S01: 3, S02: 3, S03: 3, S04: 2).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import write_xlsx

from intervention_meta.data.cleaning import check_inclusion, clean, read_clean
from intervention_meta.data.codebook import load_codebook
from intervention_meta.errors import InputError

S, E = "studies", "effects"


def test_columns_are_typed_by_the_codebook(pair, codebook):
    result = clean(codebook, pair.studies, pair.effects)
    eff = result.effects
    assert str(eff["year"].dtype) == "Int64"  # integer
    assert eff["m_int"].dtype == np.float64  # number
    assert str(eff["joint_effort"].dtype) == "Int64"  # binary as 0/1
    assert set(eff["cluster_randomised"].dropna()) == {0, 1}
    assert str(eff["design"].dtype) == "string"  # categorical codes
    assert str(eff["risk_of_bias"].dtype) == "string"  # ordinal codes
    assert set(eff["risk_of_bias"]) == {"1", "2", "3"}
    assert str(eff["es_id"].dtype) == "string" and str(eff["citation"].dtype) == "string"
    assert eff["source_row"].tolist() == list(range(2, 13))


def test_missing_codes_and_blanks_become_missing_values(pair, codebook):
    pair.set(E, 2, "m_int", "NA")
    result = clean(codebook, pair.studies, pair.effects)
    eff = result.effects.set_index("es_id")
    assert pd.isna(eff.loc["S02-1", "joint_effort"])  # -99 in the studies table
    assert pd.isna(eff.loc["S02-1", "country"])  # NR
    assert pd.isna(eff.loc["S02-1", "informant"])  # -99
    assert pd.isna(eff.loc["S02-1", "followup_months"])  # -99 in a number column
    assert pd.isna(eff.loc["S04-1", "target_group"])  # blank
    assert pd.isna(eff.loc["S01-1", "m_int"])  # NA counts as blank
    assert eff.loc["S01-1", "sd_int"] == 0.8
    assert eff.loc["S02-2", "higher_is_worse"] == 1


def test_studies_columns_are_merged_into_each_effect_row(pair, codebook):
    result = clean(codebook, pair.studies, pair.effects)
    eff = result.effects.set_index("es_id")
    assert eff.loc["S03-2", "design"] == "prepost"
    assert eff.loc["S03-2", "citation"] == "Müller (2021)"
    assert eff.loc["S02-3", "year"] == 2009
    assert list(result.effects.columns[:2]) == ["es_id", "study_id"]
    assert list(result.studies["study_id"]) == ["S01", "S02", "S03", "S04"]


def test_inclusion_by_levels_drops_all_effects_of_excluded_studies(pair, codebook):
    result = clean(codebook, pair.studies, pair.effects, {"design": ["rct", "quasi"]})
    assert set(result.effects["study_id"]) == {"S01", "S02", "S04"}
    dropped = result.dropped
    assert dropped["es_id"].tolist() == ["S03-1", "S03-2", "S03-3"]
    assert dropped["source_row"].tolist() == [8, 9, 10]
    assert set(dropped["reason"]) == {"design not in: rct, quasi (study-level)"}
    assert set(dropped["value"]) == {"prepost"}
    assert set(dropped["source_file"]) == {str(pair.effects)}
    assert result.counts["rows_in"] == 11
    assert result.counts["kept"] == 8 and result.counts["dropped"] == 3
    assert result.counts["studies_kept"] == 3


def test_inclusion_by_range_drops_missing_values_with_their_own_reason(pair, codebook):
    # followup_months: 0, 6, 0, -99 (missing), 12, 3, 0, 0, 0, 0, 1.5
    result = clean(codebook, pair.studies, pair.effects, {"followup_months": {"min": 0, "max": 6}})
    assert result.counts["dropped_by_reason"] == {
        "followup_months missing": 1,
        "followup_months outside 0 to 6": 1,
    }
    assert sorted(result.dropped["es_id"]) == ["S02-1", "S02-2"]
    assert result.effects["followup_months"].between(0, 6).all()


def test_each_dropped_row_is_listed_once_with_the_first_failed_criterion(pair, codebook):
    inclusion = {"design": ["rct"], "outcome_domain": ["social_support", "parenting_stress"]}
    result = clean(codebook, pair.studies, pair.effects, inclusion)
    assert result.dropped["es_id"].is_unique
    counts = result.counts
    assert counts["rows_in"] == counts["kept"] + counts["dropped"]
    assert sum(counts["dropped_by_reason"].values()) == counts["dropped"]
    # S02 and S03 fail design first; of S01/S04 the competence and wellbeing rows fail domain
    assert counts["dropped_by_reason"] == {
        "design not in: rct (study-level)": 6,
        "outcome_domain not in: social_support, parenting_stress": 3,
    }
    assert sorted(result.effects["es_id"]) == ["S01-1", "S01-2"]
    frame = result.to_frame()
    assert frame["rows"].iloc[0] == 11 and frame["rows"].iloc[-1] == 2


def test_integer_codes_in_the_config_match_text_codes(pair, codebook):
    result = clean(codebook, pair.studies, pair.effects, {"risk_of_bias": [1, 2.0]})
    assert set(result.effects["study_id"]) == {"S01", "S02", "S04"}
    result = clean(codebook, pair.studies, pair.effects, {"cluster_randomised": [1]})
    assert set(result.effects["study_id"]) == {"S02"}


def test_written_files_have_headers_even_when_nothing_is_dropped(pair, codebook, tmp_path):
    result = clean(codebook, pair.studies, pair.effects)
    paths = result.write(tmp_path / "clean")
    assert paths["dropped"].read_text(encoding="utf-8").strip() == (
        "es_id,study_id,source_file,source_row,reason,criterion,value"
    )
    back = read_clean(paths["effects"], codebook)
    pd.testing.assert_frame_equal(back, result.effects)


def test_criteria_that_keep_no_row_say_what_each_removes_on_its_own(pair, codebook, caplog):
    # design: S01 rct, S02 quasi, S03 prepost (3 rows each), S04 rct (2 rows); years 2014, 2009,
    # 2021, 2018; followup_months per row 0, 6, 0, -99, 12, 3, 0, 0, 0, 0, 1.5 (tests/data)
    inclusion = {
        "design": ["prepost"],
        "year": {"max": 2015},
        "followup_months": {"max": 6},
    }
    caplog.set_level(logging.INFO, logger="intervention_meta")
    with pytest.raises(InputError) as info:
        clean(codebook, pair.studies, pair.effects, inclusion)
    assert str(info.value).splitlines()[0] == (
        "your inclusion criteria keep 0 of 11 rows: "
        "inclusion.design removed 8 rows (design not in: prepost), "
        "inclusion.year removed 5 rows (year above 2015), "
        "inclusion.followup_months removed 2 rows "
        "(followup_months above 6; 1 of them with no value)"
    )
    assert info.value.problems[0].column == "inclusion"
    assert "effects.csv" not in str(info.value)  # the config's keys, not a file, are to blame
    assert "11 effect rows in, 0 kept, 11 dropped" in caplog.text  # the usual bookkeeping


def test_one_criterion_that_removes_every_row_is_named(pair, codebook):
    with pytest.raises(InputError) as info:
        clean(codebook, pair.studies, pair.effects, {"year": {"min": 2030}})
    assert str(info.value).splitlines()[0] == (
        "your inclusion criteria keep 0 of 11 rows: "
        "inclusion.year removed 11 rows (year below 2030)"
    )


def test_no_row_kept_for_want_of_a_study_says_so(pair, codebook):
    rows = pair.rows(E)
    for i in range(1, len(rows)):
        pair.set(E, i + 1, "study_id", "S99")
    with pytest.raises(InputError) as info:
        clean(codebook, pair.studies, pair.effects, {"design": ["rct", "quasi", "prepost"]})
    assert str(info.value).splitlines()[0] == (
        "your inclusion criteria keep 0 of 11 rows: inclusion.design removed 11 rows "
        "(design not in: rct, quasi, prepost; 11 of them with no value), "
        "11 rows had study_id not in studies.csv"
    )


@pytest.mark.parametrize(
    ("inclusion", "column", "value"),
    [
        ({"desgin": ["rct"]}, "inclusion.desgin", "desgin"),
        ({"design": ["rct", "RTC"]}, "inclusion.design", "RTC"),
        ({"year": {"min": 2020, "max": 2000}}, "inclusion.year", {"min": 2020, "max": 2000}),
        ({"design": {"min": 1}}, "inclusion.design", {"min": 1}),
        ({"design": []}, "inclusion.design", []),
    ],
)
def test_bad_inclusion_criteria_are_input_errors(pair, codebook, inclusion, column, value):
    (problem,) = check_inclusion(codebook, inclusion, file="config/config.yaml")
    assert (problem.file, problem.column, problem.value) == ("config/config.yaml", column, value)
    with pytest.raises(InputError):
        clean(codebook, pair.studies, pair.effects, inclusion)


def test_odd_input_does_not_crash(pair, codebook, caplog):
    pair.set(E, 2, "sd_int", "a lot")  # invalid: becomes missing, logged
    pair.set(E, 3, "study_id", "S99")  # orphan: dropped
    pair.set(E, 4, "study_id", "")  # no study: dropped
    pair.set(S, 5, "study_id", "S01")  # duplicate study: the first is used
    pair.add_column(E, "notes", "ignored")
    with caplog.at_level(logging.WARNING):
        result = clean(codebook, pair.studies, pair.effects, {"design": ["rct", "quasi"]})
    assert "sd_int" in caplog.text
    assert pd.isna(result.effects.set_index("es_id").loc["S01-1", "sd_int"])
    reasons = result.counts["dropped_by_reason"]
    assert reasons["study_id missing"] == 1
    assert reasons["study_id not in studies.csv"] == 3  # S99, and S04's two rows
    assert "notes" not in result.effects.columns
    assert result.counts["rows_in"] == result.counts["kept"] + result.counts["dropped"]


def test_unreadable_input_is_an_input_error(pair, codebook):
    pair.effects.write_bytes(b"")
    with pytest.raises(InputError) as info:
        clean(codebook, pair.studies, pair.effects)
    assert info.value.problems[0].file == str(pair.effects)


def test_xlsx_input_cleans_the_same_as_csv(pair, codebook, tmp_path):
    studies = write_xlsx(pair.studies, tmp_path / "studies.xlsx", sheet="studies")
    effects = write_xlsx(pair.effects, tmp_path / "effects.xlsx", sheet="effects")
    from_csv = clean(codebook, pair.studies, pair.effects, {"design": ["rct"]})
    from_xlsx = clean(codebook, studies, effects, {"design": ["rct"]})
    pd.testing.assert_frame_equal(from_csv.effects, from_xlsx.effects)
    assert from_csv.counts == from_xlsx.counts


def test_keys_are_taken_from_the_codebook(tmp_path):
    (tmp_path / "codebook.yaml").write_text(
        """
tables:
  studies: {key: study}
  effects: {key: id, parent: studies}
variables:
  - {name: study, table: studies, type: integer, required: true, role: id}
  - {name: pubstatus, table: studies, type: binary, levels: {0: "no", 1: "yes"}}
  - {name: id, table: effects, type: integer, required: true, role: id}
  - {name: yi, table: effects, type: number, required: true, role: statistic}
""",
        encoding="utf-8",
    )
    (tmp_path / "studies.csv").write_text("study,pubstatus\n1,1\n2,0\n", encoding="utf-8")
    (tmp_path / "effects.csv").write_text(
        "id,study,yi\n1,1,0.5\n2,1,0.25\n3,2,-0.1\n", encoding="utf-8"
    )
    cb = load_codebook(tmp_path / "codebook.yaml")
    result = clean(cb, tmp_path / "studies.csv", tmp_path / "effects.csv", {"pubstatus": [1]})
    assert result.effects["id"].tolist() == [1, 2]
    assert list(result.dropped.columns[:2]) == ["id", "study"]
    assert result.dropped["reason"].tolist() == ["pubstatus not in: 1 (study-level)"]


def test_text_a_spreadsheet_would_run_is_quoted_in_the_files_and_read_back_as_coded(
    pair, codebook, tmp_path
):
    # OWASP "CSV Injection": a cell starting with = + - @ is run as a formula when opened
    pair.set(S, 2, "citation", '=HYPERLINK("http://x","Jansen")')
    pair.set(S, 3, "country", "-")
    pair.set(S, 5, "citation", "@Okafor")
    raw = pair.studies.read_bytes()
    result = clean(codebook, pair.studies, pair.effects, {"year": {"max": 2019}})
    paths = result.write(tmp_path / "clean")
    assert pair.studies.read_bytes() == raw  # the coded data are never changed
    eff = result.effects.set_index("es_id")
    assert eff.loc["S01-1", "citation"] == '=HYPERLINK("http://x","Jansen")'  # nor in memory
    written = pd.read_csv(paths["effects"], dtype=str, keep_default_na=False)
    by_study = written.groupby("study_id")
    assert set(by_study.get_group("S01")["citation"]) == {'\'=HYPERLINK("http://x","Jansen")'}
    assert set(by_study.get_group("S02")["country"]) == {"'-"}
    assert set(by_study.get_group("S04")["citation"]) == {"'@Okafor"}
    assert set(by_study.get_group("S02")["year"]) == {"2009"}  # a number is never quoted
    dropped = pd.read_csv(paths["dropped"], dtype=str, keep_default_na=False)
    assert set(dropped["value"]) == {"2021"}  # S03
    back = read_clean(paths["effects"], codebook)
    pd.testing.assert_frame_equal(back, result.effects)
