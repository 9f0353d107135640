"""Inter-rater reliability: coefficients against published worked examples, the comparison of two
coders' files (missing codes, units only one coder coded), the shipped simulated second coder and
the Snakemake rule.

Sources of the expected numbers
-------------------------------
* Cohen (1960), *Educ. Psychol. Meas.* 20, p. 40-42: the 3-category example in proportions of
  N = 200 units, p_o = .70, p_c = .41, kappa = .492.
* SAS PROC FREQ (AGREE) output for the 3 x 3 table [[0, 4, 1], [0, 8, 0], [0, 1, 5]], as kept in
  statsmodels' ``stats/tests/test_inter_rater.py`` (``TestUnweightedCohens``/``TestWeightedCohens``,
  ``res10_sas``, ``res10w_sas``): simple kappa .4842 (ASE .1380, 95% CI .2137-.7547; ASE under
  H0 .1484, Z 3.2626, two-sided p .0011) and kappa with linear (Cicchetti-Allison) weights .4701
  (ASE .1457, 95% CI .1845-.7558).
* Krippendorff (2011), "Computing Krippendorff's alpha-reliability": example A (binary, two
  observers, 10 units): alpha = .095; example C (4 observers, 12 units, missing values): nominal
  alpha = .743, interval alpha = .849.
* Shrout & Fleiss (1979), *Psychol. Bull.* 86, Table 2 (6 targets x 4 judges): mean squares of
  Table 3 (BMS 11.24, JMS 32.49, EMS 1.02) and ICC(2,1) = .29 of Table 4; F = 11.03 on 5 and 15
  df, p = .00013 and the McGraw & Wong (1996) interval .019-.761 as printed by R ``psych::ICC``
  (row ``ICC2``) for these data (the same formula as ``irr::icc(model = "twoway",
  type = "agreement")``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import CODEBOOK, REPO, TEST_DATA

from intervention_meta.coding.reliability import (
    AGREEMENT_COLUMNS,
    DISAGREEMENT_COLUMNS,
    cohens_kappa,
    compare_coders,
    icc_a1,
    krippendorff_alpha,
    percent_agreement,
)
from intervention_meta.coding.second_coder import simulate_second_coder
from intervention_meta.data.reading import read_table
from intervention_meta.errors import InputError

RAW = REPO / "data" / "raw"

REFERENCE_EXTRA = Path(__file__).parent / "reference" / "extra"


def _pairs_from_table(table: list[list[int]]) -> tuple[list[int], list[int]]:
    """Unit-level codes (coder A = row, coder B = column) from a contingency table."""
    a, b = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [i] * count
            b += [j] * count
    return a, b


SAS_TABLE = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]


# --------------------------------------------------------------------------- kappa
def test_kappa_matches_cohen1960_example():
    # Cohen (1960): proportions .44 .07 .09 / .05 .20 .05 / .01 .03 .06 of N = 200
    table = [[88, 14, 18], [10, 40, 10], [2, 6, 12]]
    a, b = _pairs_from_table(table)
    res = cohens_kappa(a, b, categories=[0, 1, 2])
    assert percent_agreement(a, b) == pytest.approx(70.0)  # p_o = .70
    assert res.kappa == pytest.approx((0.70 - 0.41) / (1 - 0.41), abs=1e-12)
    assert round(res.kappa, 3) == 0.492
    assert res.n == 200


def test_kappa_standard_errors_and_interval_match_sas_example():
    a, b = _pairs_from_table(SAS_TABLE)
    res = cohens_kappa(a, b, categories=[0, 1, 2])
    assert res.kappa == pytest.approx(0.4842, abs=5e-5)
    assert res.se == pytest.approx(0.1380, abs=5e-5)
    assert res.ci_lower == pytest.approx(0.2137, abs=5e-5)
    assert res.ci_upper == pytest.approx(0.7547, abs=5e-5)
    assert res.se0 == pytest.approx(0.1484, abs=5e-5)
    assert res.z == pytest.approx(3.2626, abs=5e-4)
    assert res.p_value == pytest.approx(0.0011, abs=5e-5)
    assert res.weights == "none"


def test_linear_weighted_kappa_matches_sas_example():
    a, b = _pairs_from_table(SAS_TABLE)
    res = cohens_kappa(a, b, categories=[0, 1, 2], weights="linear")
    assert res.kappa == pytest.approx(0.4701, abs=5e-5)
    assert res.se == pytest.approx(0.1457, abs=5e-5)
    assert res.ci_lower == pytest.approx(0.1845, abs=5e-5)
    assert res.ci_upper == pytest.approx(0.7558, abs=5e-5)
    assert res.weights == "linear"


def test_weighted_kappa_spaces_codes_by_all_codebook_levels_even_unused_ones():
    # levels 1 < 2 < 3 < 4, nobody used 2: 1 vs 3 is two steps of three, not one of two
    levels = ["1", "2", "3", "4"]
    a = ["1", "1", "3", "3", "4", "4", "1", "3"]
    b = ["1", "3", "3", "4", "4", "4", "1", "1"]
    res = cohens_kappa(a, b, categories=levels, weights="linear")
    # by hand (Cohen 1968): kappa_w = 1 - sum v_ij p_ij / sum v_ij p_i. p_.j, v_ij = |i-j|/(k-1)
    pos = np.array([levels.index(x) for x in a]), np.array([levels.index(x) for x in b])
    p = np.zeros((4, 4))
    np.add.at(p, pos, 1 / len(a))
    v = np.abs(np.subtract.outer(np.arange(4), np.arange(4))) / 3
    expected = 1 - (v * p).sum() / (v * np.outer(p.sum(1), p.sum(0))).sum()
    assert res.kappa == pytest.approx(expected, abs=1e-12)
    used_only = cohens_kappa(a, b, categories=["1", "3", "4"], weights="linear")
    assert abs(used_only.kappa - res.kappa) > 0.01


def test_kappa_is_nan_when_both_coders_use_one_code_throughout():
    res = cohens_kappa(["1"] * 5, ["1"] * 5, categories=["0", "1"])
    assert np.isnan(res.kappa) and np.isnan(res.ci_lower)
    assert np.isnan(cohens_kappa([], [], categories=["0", "1"]).kappa)


def test_kappa_interval_is_cut_to_plus_minus_one():
    a = [0, 0, 0, 0, 1, 1, 1, 0]
    b = [0, 0, 0, 0, 1, 1, 0, 0]
    res = cohens_kappa(a, b, categories=[0, 1])
    assert -1 <= res.ci_lower <= res.kappa <= res.ci_upper <= 1


# --------------------------------------------------------------------------- alpha
def test_krippendorff_alpha_matches_krippendorff2011_binary_example():
    # Krippendorff (2011), section A: two observers, 10 units, no missing data; alpha = 0.095
    coder_a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    coder_b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert round(krippendorff_alpha([coder_a, coder_b], level="nominal"), 3) == 0.095


def test_krippendorff_alpha_matches_krippendorff2011_example_with_missing_values():
    # Krippendorff (2011), section C: 4 observers, 12 units, missing values;
    # nominal alpha = 0.743, interval alpha = 0.849
    nan = np.nan
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    assert round(krippendorff_alpha(data, level="nominal"), 3) == 0.743
    assert round(krippendorff_alpha(data, level="interval"), 3) == 0.849


def test_krippendorff_alpha_is_nan_without_variation():
    assert np.isnan(krippendorff_alpha([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]], level="interval"))


# --------------------------------------------------------------------------- ICC
SHROUT_FLEISS = [
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
]


def test_icc_matches_shrout_fleiss1979_table2():
    res = icc_a1(SHROUT_FLEISS)
    # Shrout & Fleiss (1979) Table 3 (mean squares) and Table 4 (ICC(2,1) = .29)
    assert res.ms_rows == pytest.approx(11.24, abs=0.005)
    assert res.ms_cols == pytest.approx(32.49, abs=0.005)
    assert res.ms_error == pytest.approx(1.02, abs=0.005)
    assert round(res.icc, 2) == 0.29
    # psych::ICC, row ICC2: F 11 (df 5, 15), p = 0.00013, bounds 0.019 and 0.761
    assert res.f == pytest.approx(11.03, abs=0.005)
    assert (res.df1, res.df2) == (5, 15)
    assert res.p_value == pytest.approx(0.00013, abs=5e-6)
    assert round(res.ci_lower, 3) == 0.019
    assert round(res.ci_upper, 3) == 0.761
    assert (res.n, res.k) == (6, 4)


def test_icc_matches_psych_icc_fixture():
    """psych::ICC on the same data, full precision (tests/reference/extra/irr_icc_psych.R)."""
    ref = json.loads((REFERENCE_EXTRA / "irr_icc_psych.json").read_text())
    res = icc_a1(ref["data"])
    want = ref["results"]
    for got, key in [(res.icc, "icc"), (res.f, "f"), (res.p_value, "p")]:
        assert got == pytest.approx(want[key], rel=1e-10), key
    # the McGraw & Wong (1996) bounds involve an F quantile: iterative, so 1e-6
    assert res.ci_lower == pytest.approx(want["ci_lower"], rel=1e-6)
    assert res.ci_upper == pytest.approx(want["ci_upper"], rel=1e-6)


def test_icc_formula_from_mean_squares():
    # ICC(2,1) = (BMS - EMS) / (BMS + (k-1) EMS + k (JMS - EMS) / n), Shrout & Fleiss eq. 2
    res = icc_a1(SHROUT_FLEISS)
    n, k = 6, 4
    expected = (res.ms_rows - res.ms_error) / (
        res.ms_rows + (k - 1) * res.ms_error + k * (res.ms_cols - res.ms_error) / n
    )
    assert res.icc == pytest.approx(expected, rel=1e-12)


def test_icc_drops_targets_with_a_missing_rating():
    with_gap = SHROUT_FLEISS + [[np.nan, 3, 3, 3]]
    assert icc_a1(with_gap).icc == pytest.approx(icc_a1(SHROUT_FLEISS).icc, rel=1e-12)


def test_icc_of_identical_ratings_is_one_and_of_constant_ratings_undefined():
    same = icc_a1([[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]])
    assert same.icc == pytest.approx(1.0) and np.isnan(same.ci_lower)
    assert np.isnan(icc_a1([[3.0, 3.0], [3.0, 3.0]]).icc)
    assert np.isnan(icc_a1([[1.0, 2.0]]).icc)  # one target


# --------------------------------------------------------------------------- comparing files
def _write(rows: list[list[str]], path: Path) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return path


def _rows(path: Path) -> list[list[str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _set(rows: list[list[str]], key: str, column: str, value: str) -> None:
    j = rows[0].index(column)
    for row in rows[1:]:
        if row[0] == key:
            row[j] = value
            return
    raise KeyError(key)


def test_missing_codes_are_excluded_pairwise_counted_and_listed(tmp_path):
    rows = _rows(TEST_DATA / "studies.csv")
    b = [rows[0]] + [r for r in rows[1:] if r[0] in ("S01", "S02", "S03")]
    _set(b, "S01", "joint_effort", "-99")  # A: 1 -> a value against a missing code
    _set(b, "S02", "joint_effort", "1")  # A: -99
    _set(b, "S03", "risk_of_bias", "2")  # A: 3, a value disagreement
    res = compare_coders(CODEBOOK, TEST_DATA / "studies.csv", _write(b, tmp_path / "b.csv"))
    row = res.agreement.set_index("variable").loc["joint_effort"]
    assert (row.n_units, row.n_pairs, row.n_missing, row.n_agree) == (3, 1, 2, 1)
    assert row.percent_agreement == 100.0
    dis = res.disagreements
    assert list(dis.columns) == DISAGREEMENT_COLUMNS
    got = {(d.unit, d.variable, d.coder_a, d.coder_b, d.kind) for d in dis.itertuples()}
    assert got == {
        ("S01", "joint_effort", "1", "-99", "missing"),
        ("S02", "joint_effort", "-99", "1", "missing"),
        ("S03", "risk_of_bias", "3", "2", "value"),
    }
    rob = res.agreement.set_index("variable").loc["risk_of_bias"]
    assert rob.kappa_weights == "linear" and rob.alpha_level == "ordinal"
    assert (rob.n_pairs, rob.n_agree) == (3, 2)
    assert res.units["studies"] == {"double_coded": 3, "only_a": 0, "only_b": 0}


def test_numbers_agree_within_tolerance_and_text_must_match_exactly(tmp_path):
    rows = _rows(TEST_DATA / "studies.csv")
    b = [list(r) for r in rows]
    _set(b, "S01", "year", "2015")  # A: 2014
    _set(b, "S02", "year", "2009.0")  # the same number written differently
    _set(b, "S01", "programme", "buurtgezinnen")  # A: Buurtgezinnen
    a_path = TEST_DATA / "studies.csv"
    exact = compare_coders(CODEBOOK, a_path, _write(b, tmp_path / "b.csv"))
    year = exact.agreement.set_index("variable").loc["year"]
    assert (year.n_pairs, year.n_agree) == (4, 3)
    assert year.statistic.startswith("ICC(2,1)")
    assert np.isfinite(year.icc) and np.isfinite(year.alpha)
    pairs = {(d.unit, d.variable) for d in exact.disagreements.itertuples()}
    assert pairs == {("S01", "year"), ("S01", "programme")}
    loose = compare_coders(CODEBOOK, a_path, tmp_path / "b.csv", tolerance=1)
    assert loose.agreement.set_index("variable").loc["year"].n_agree == 4
    assert {(d.unit, d.variable) for d in loose.disagreements.itertuples()} == {
        ("S01", "programme")
    }


def test_effect_rows_only_one_coder_coded_are_listed(tmp_path):
    studies = _rows(TEST_DATA / "studies.csv")
    effects = _rows(TEST_DATA / "effects.csv")
    sb = [studies[0]] + [r for r in studies[1:] if r[0] == "S01"]
    eb = [effects[0]] + [list(r) for r in effects[1:] if r[1] == "S01"]
    dropped = eb.pop(2)[0]  # coder B did not code the second effect of S01
    extra = list(eb[1])
    extra[0] = "S01-9"
    eb.append(extra)  # and coded one coder A does not have
    n_int = eb[0].index("n_int")
    eb[1][n_int] = str(int(eb[1][n_int]) + 1)
    res = compare_coders(
        CODEBOOK,
        TEST_DATA / "studies.csv",
        _write(sb, tmp_path / "sb.csv"),
        TEST_DATA / "effects.csv",
        _write(eb, tmp_path / "eb.csv"),
    )
    n_a = sum(1 for r in effects[1:] if r[1] == "S01")
    assert res.units["effects"] == {"double_coded": n_a - 1, "only_a": 1, "only_b": 1}
    dis = res.disagreements[res.disagreements.table == "effects"]
    got = {(d.unit, d.variable, d.coder_a, d.coder_b, d.kind) for d in dis.itertuples()}
    assert (dropped, "es_id", dropped, "", "only coded by A") in got
    assert ("S01-9", "es_id", "", "S01-9", "only coded by B") in got
    first = effects[1]
    assert (first[0], "n_int", first[n_int], eb[1][n_int], "value") in got
    assert len(got) == 3
    assert set(dis.parent_unit) == {"S01"}
    n_int_row = res.agreement.set_index(["table", "variable"]).loc[("effects", "n_int")]
    assert n_int_row.n_disagree == 1


def test_duplicate_keys_in_a_coders_file_are_an_input_error(tmp_path):
    rows = _rows(TEST_DATA / "studies.csv")
    b = rows + [list(rows[1])]
    with pytest.raises(InputError) as err:
        compare_coders(CODEBOOK, TEST_DATA / "studies.csv", _write(b, tmp_path / "b.csv"))
    assert {p.value for p in err.value.problems} == {"S01"}
    assert {p.row for p in err.value.problems} == {2, len(b)}


def test_outputs_are_written_as_csv_and_strict_json(tmp_path):
    res = compare_coders(CODEBOOK, RAW / "studies.csv", RAW / "coder2_studies.csv")
    out = tmp_path / "rel"
    res.write(out / "agreement.csv", out / "agreement.json", out / "disagreements.csv")
    agreement = pd.read_csv(out / "agreement.csv")
    assert list(agreement.columns) == AGREEMENT_COLUMNS
    data = json.loads((out / "agreement.json").read_text())  # NaN would not parse as strict JSON
    assert data["n_disagreements"] == len(pd.read_csv(out / "disagreements.csv"))
    assert len(data["variables"]) == len(agreement)


# --------------------------------------------------------------------------- shipped data
def _truth() -> dict:
    return yaml.safe_load((RAW / "coder2_truth.yaml").read_text(encoding="utf-8"))


def test_shipped_second_coder_disagreements_are_exactly_the_known_ones(codebook):
    truth = _truth()
    res = compare_coders(CODEBOOK, RAW / "studies.csv", RAW / "coder2_studies.csv")
    got = sorted((d.unit, d.variable, d.coder_a, d.coder_b) for d in res.disagreements.itertuples())
    expected = sorted(
        (d["unit"], d["variable"], str(d["coder_a"]), str(d["coder_b"]))
        for d in truth["disagreements"]
    )
    assert got == expected
    assert len(got) == truth["n_disagreements"] == 9
    assert set(res.disagreements.kind) == {"value"}
    assert res.units["studies"]["double_coded"] == truth["n_units"] == 10
    assert int(res.agreement.n_disagree.sum()) == 9
    # spread over binary components, an ordinal and categorical variables
    kinds = {codebook[d["variable"]].type for d in truth["disagreements"]}
    assert kinds == {"binary", "ordinal", "categorical"}


def test_shipped_second_coder_is_reproduced_by_its_seed(tmp_path, codebook):
    truth = _truth()
    frame, _ = read_table(RAW / "studies.csv", table="studies")
    coder2 = simulate_second_coder(codebook, frame, np.random.default_rng(truth["seed"]), seed=0)
    coder2.write(tmp_path / "c2.csv", tmp_path / "truth.yaml")
    assert (tmp_path / "c2.csv").read_bytes() == (RAW / "coder2_studies.csv").read_bytes()
    assert [d.to_dict() for d in coder2.disagreements] == truth["disagreements"]


def test_simulated_second_coder_changes_only_valid_codes_by_plan(codebook):
    frame, _ = read_table(RAW / "studies.csv", table="studies")
    coder2 = simulate_second_coder(
        codebook, frame, np.random.default_rng(1), n_units=12, plan={"binary": 7, "ordinal": 3}
    )
    assert len(coder2.units) == 12 and len(coder2.disagreements) == 10
    for d in coder2.disagreements:
        var = codebook[d.variable]
        assert var.parse(d.coder_a).state == var.parse(d.coder_b).state == "value"
        if var.type == "ordinal":  # one step
            codes = list(var.levels)
            assert abs(codes.index(d.coder_a) - codes.index(d.coder_b)) == 1
    binary = [d.variable for d in coder2.disagreements if codebook[d.variable].type == "binary"]
    assert len(set(binary)) == 6  # the six binary moderators each once before any twice
    with pytest.raises(ValueError):
        simulate_second_coder(codebook, frame, np.random.default_rng(1), plan={"text": 1})


# --------------------------------------------------------------------------- pipeline
def _schema_has_reliability() -> bool:
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    return "reliability" in schema.get("properties", {})


@pytest.mark.pipeline
@pytest.mark.skipif(
    not _schema_has_reliability(), reason="the config schema has no reliability section yet"
)
def test_reliability_rule_writes_agreement_and_the_known_disagreements(example_run):
    # the shipped config names the simulated second coder under `reliability`
    config = yaml.safe_load((example_run.work / "config/config.yaml").read_text())
    assert config["reliability"] == {"studies": "data/raw/coder2_studies.csv"}
    target = example_run.results / "reliability" / "disagreements.csv"
    dis = pd.read_csv(target)
    assert len(dis) == _truth()["n_disagreements"]
    assert target.with_name("agreement.json").is_file()
