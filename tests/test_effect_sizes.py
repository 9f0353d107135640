"""Tests of the table-level effect-size step (``intervention_meta.effect_sizes.compute``).

Expected numbers are metafor 3.8-1 output (``tests/reference/normand1999_smd.csv``,
``escalc_conversions.json``) or R check values
(``tests/reference/extra/effect_size_conversions.json``, made by
``extra/effect_size_conversions.R``); the case used is named beside each number.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from intervention_meta.data.validation import validate
from intervention_meta.effect_sizes import conversions as cv
from intervention_meta.effect_sizes.compute import (
    OUTPUT_COLUMNS,
    EffectSizeResult,
    compute_effect_sizes,
)
from intervention_meta.effect_sizes.measures import (
    CONVERSION_SOURCES,
    INPUT_KINDS,
    MEASURES,
    get_measure,
)
from intervention_meta.errors import InputError

REF = Path(__file__).parent / "reference"
CODEBOOK = Path(__file__).parent.parent / "data" / "codebook.yaml"
TOL = 1e-10
WORSE = ["parenting_stress"]

ESCALC = json.loads((REF / "escalc_conversions.json").read_text(encoding="utf-8"))["cases"]
EXTRA = json.loads((REF / "extra" / "effect_size_conversions.json").read_text(encoding="utf-8"))[
    "cases"
]
NORMAND = pd.read_csv(REF / "normand1999_smd.csv")


def _row(i: int, es_input: str, **stats) -> dict:
    base = {"es_id": f"E{i}", "study_id": f"S{i}", "source_row": i + 2, "es_input": es_input,
            "outcome_domain": "social_support"}  # fmt: skip
    base.update(stats)
    return base


#: The conversions config/config.yaml allows (2x2 counts and odds ratios, correlations -> SMD).
CONVERT = ("OR", "COR")


def _run(rows: list[dict], **kw) -> EffectSizeResult:
    kw.setdefault("higher_is_worse_levels", WORSE)
    kw.setdefault("convert", CONVERT)
    return compute_effect_sizes(pd.DataFrame(rows), **kw)


def _first(ref: dict, i: int = 0) -> tuple[float, float]:
    return ref["results"]["yi"][i], ref["results"]["vi"][i]


# One valid row per es_input level, with its expected (yi, vi) and the source of the numbers.
N0 = NORMAND.iloc[0]
T = ESCALC["smd_from_t"]["inputs"]
F = EXTRA["smd_from_f"]["inputs"]
P = EXTRA["smd_from_p"]["inputs"]
DSE = EXTRA["smd_from_d_se_cohen"]["inputs"]
DCI = EXTRA["smd_from_d_ci_cohen"]["inputs"]
OR = ESCALC["or2dl_from_2x2"]["inputs"]
ORCI = EXTRA["smd_from_or_ci_logit"]["inputs"]
R = EXTRA["smd_from_r_hedges_j"]["inputs"]
MO = EXTRA["morris2008_dppc2_exact_j"]["inputs"]
LEVEL_CASES = {
    # normand1999_smd.csv row 1 (escalc SMD)
    "means_sds": (dict(m_int=N0.m1i, sd_int=N0.sd1i, n_int=N0.n1i, m_ctl=N0.m2i, sd_ctl=N0.sd2i,
                       n_ctl=N0.n2i), (N0.yi, N0.vi)),
    # escalc_conversions.json smd_from_t, case 1
    "t": (dict(t_value=T["ti"][0], n_int=T["n1i"][0], n_ctl=T["n2i"][0]),
          _first(ESCALC["smd_from_t"])),
    # extra smd_from_f, case 2 (direction -1, given as the string "-1")
    "f": (dict(f_value=F["Fi"][1], n_int=F["n1i"][1], n_ctl=F["n2i"][1], stat_direction="-1"),
          _first(EXTRA["smd_from_f"], 1)),
    # extra smd_from_p, case 1
    "p": (dict(p_value=P["p"][0], n_int=P["n1i"][0], n_ctl=P["n2i"][0], stat_direction=1),
          _first(EXTRA["smd_from_p"])),
    # extra smd_from_d_se_cohen, case 1 (d_is_g 0: J applied)
    "d_se": (dict(d_value=DSE["di"][0], d_se=DSE["sei"][0], d_is_g=0, n_int=DSE["n1i"][0],
                  n_ctl=DSE["n2i"][0]), _first(EXTRA["smd_from_d_se_cohen"])),
    # extra smd_from_d_ci_cohen, case 2
    "d_ci": (dict(d_value=DCI["di"][1], d_ci_lower=DCI["lb"][1], d_ci_upper=DCI["ub"][1],
                  d_is_g=0, n_int=DCI["n1i"][1], n_ctl=DCI["n2i"][1]),
             _first(EXTRA["smd_from_d_ci_cohen"], 1)),
    # escalc_conversions.json or2dl_from_2x2, case 1 (escalc OR2DL)
    "or_2x2": (dict(events_int=OR["ai"][0], nonevents_int=OR["bi"][0], events_ctl=OR["ci"][0],
                    nonevents_ctl=OR["di"][0]), _first(ESCALC["or2dl_from_2x2"])),
    # extra smd_from_or_ci_logit, case 1
    "or_ci": (dict(or_value=ORCI["or"][0], or_ci_lower=ORCI["ci_lb"][0],
                   or_ci_upper=ORCI["ci_ub"][0]), _first(EXTRA["smd_from_or_ci_logit"])),
    # extra smd_from_r_hedges_j, case 3 (r = -0.35, N = 30)
    "r": (dict(r_value=R["ri"][2], n_total=R["ni"][2]), _first(EXTRA["smd_from_r_hedges_j"], 2)),
    # extra morris2008_dppc2_exact_j, study 1 (Morris 2008, Table 5), r_prepost reported
    "prepost": (dict(m_int_pre=MO["m_pre_t"][0], sd_int_pre=MO["sd_pre_t"][0],
                     m_int=MO["m_post_t"][0], m_ctl_pre=MO["m_pre_c"][0],
                     sd_ctl_pre=MO["sd_pre_c"][0], m_ctl=MO["m_post_c"][0], n_int=MO["n_t"][0],
                     n_ctl=MO["n_c"][0], r_prepost=MO["ri"][0]),
                _first(EXTRA["morris2008_dppc2_exact_j"])),
    # given numbers
    "yi_vi": (dict(yi=0.31, vi=0.045), (0.31, 0.045)),
}  # fmt: skip


def test_every_codebook_es_input_level_is_handled_with_the_codebook_requires():
    # data/codebook.yaml: es_input levels and their `requires` are the ones the step dispatches on
    book = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    es_input = next(v for v in book["variables"] if v["name"] == "es_input")
    assert set(es_input["levels"]) == set(es_input["requires"]) == set(LEVEL_CASES)
    assert set(LEVEL_CASES) <= set(INPUT_KINDS)
    for level, cols in es_input["requires"].items():
        assert list(INPUT_KINDS[level].roles) == cols


@pytest.mark.parametrize("level", sorted(LEVEL_CASES))
def test_each_es_input_level_gives_the_reference_value(level):
    stats_, (yi, vi) = LEVEL_CASES[level]
    res = _run([_row(0, level, **stats_)])
    assert res.counts["computed"] == 1 and res.counts["dropped"] == 0, res.dropped
    out = res.table.iloc[0]
    assert out["yi"] == pytest.approx(yi, abs=TOL)
    assert out["vi"] == pytest.approx(vi, abs=TOL)
    assert out["sei"] == pytest.approx(math.sqrt(vi), abs=TOL)
    assert not out["direction_flipped"]
    assert out["es_method"]


def test_all_levels_together_keep_input_order_columns_and_counts():
    rows = [_row(i, lv, **LEVEL_CASES[lv][0]) for i, lv in enumerate(sorted(LEVEL_CASES))]
    df = pd.DataFrame(rows)
    res = compute_effect_sizes(df, higher_is_worse_levels=WORSE, convert=CONVERT)
    assert res.table["es_id"].tolist() == df["es_id"].tolist()
    assert list(res.table.columns) == list(df.columns) + [
        c for c in OUTPUT_COLUMNS if c not in df.columns
    ]
    for i, lv in enumerate(sorted(LEVEL_CASES)):
        assert res.table["yi"].iloc[i] == pytest.approx(LEVEL_CASES[lv][1][0], abs=TOL)
    c = res.counts
    assert c["rows_in"] == len(df) == c["computed"] + c["dropped"]
    assert sum(c["by_method"].values()) == c["computed"]
    assert all(v == {"rows_in": 1, "computed": 1, "dropped": 0} for v in c["by_es_input"].values())
    json.dumps(res.to_dict())  # JSON-ready
    assert res.log_lines()[0].startswith(f"effect sizes: {len(df)} rows in")


def test_reported_g_is_taken_as_is_and_cohens_d_gets_j():
    # d_is_g 1: yi = d, vi = se^2; d_is_g 0: as extra smd_from_d_se_cohen case 2
    rows = [_row(0, "d_se", d_value=0.4, d_se=0.2, d_is_g=1),
            _row(1, "d_se", d_value=DSE["di"][1], d_se=DSE["sei"][1], d_is_g=0,
                 n_int=DSE["n1i"][1], n_ctl=DSE["n2i"][1])]  # fmt: skip
    t = _run(rows).table
    assert t["yi"].tolist()[0] == 0.4 and t["vi"].iloc[0] == pytest.approx(0.04, abs=1e-15)
    assert t["yi"].iloc[1] == pytest.approx(EXTRA["smd_from_d_se_cohen"]["results"]["yi"][1])
    assert "Cohen's d" in t["es_method"].iloc[1] and "J = " in t["es_note"].iloc[1]


def test_prepost_without_r_uses_the_default_and_says_so():
    stats_ = dict(LEVEL_CASES["prepost"][0])
    del stats_["r_prepost"]
    res = _run([_row(0, "prepost", **stats_)], r_prepost_default=0.6)
    i = MO
    expected = cv.smd_prepost_control(i["m_pre_t"][0], i["m_post_t"][0], i["sd_pre_t"][0],
                                      i["n_t"][0], i["m_pre_c"][0], i["m_post_c"][0],
                                      i["sd_pre_c"][0], i["n_c"][0], 0.6)  # fmt: skip
    assert res.table["vi"].iloc[0] == pytest.approx(expected.vi[0], abs=TOL)
    assert "pre-post r = 0.6 (default)" in res.table["es_note"].iloc[0]
    assert res.counts["defaults_used"]["r_prepost"] == 1


def test_zero_cell_table_is_corrected_and_noted():
    # extra or2dl_zero_and_double_zero: cases 1 (no events in either group) and 3 (one zero cell)
    z = EXTRA["or2dl_zero_and_double_zero"]
    i = z["inputs"]
    rows = [_row(k, "or_2x2", events_int=i["ai"][k], nonevents_int=i["bi"][k],
                 events_ctl=i["ci"][k], nonevents_ctl=i["di"][k]) for k in range(4)]  # fmt: skip
    t = _run(rows).table
    np.testing.assert_allclose(t["yi"], z["results"]["yi"], atol=TOL, rtol=0)
    np.testing.assert_allclose(t["vi"], z["results"]["vi"], atol=TOL, rtol=0)
    assert ["zero cell" in s for s in t["es_note"]] == [True, True, True, False]


# --------------------------------------------------------------------------- direction


def test_direction_follows_domain_and_the_row_column_overrides_it():
    base = LEVEL_CASES["t"][0]
    g = LEVEL_CASES["t"][1][0]
    rows = [
        _row(0, "t", **base),  # social_support: not flipped
        _row(1, "t", **base, outcome_domain="parenting_stress"),  # domain: flipped
        _row(2, "t", **base, outcome_domain="parenting_stress", higher_is_worse=0),  # override
        _row(3, "t", **base, higher_is_worse=1),  # row column flips a "good" domain
        _row(4, "t", **base, outcome_domain="parenting_stress", higher_is_worse="1"),
    ]
    t = _run(rows).table
    np.testing.assert_allclose(t["yi"], [g, -g, g, -g, -g], atol=TOL, rtol=0)
    assert t["direction_flipped"].tolist() == [False, True, False, True, True]
    assert "overrides" in t["es_note"].iloc[2]
    assert _run(rows).counts["direction_flipped"] == 3


def test_higher_is_worse_levels_may_come_as_the_codebook_mapping():
    # Codebook.higher_is_worse_levels() returns {variable: levels}; any such column can flip
    rows = [_row(0, "yi_vi", yi=0.3, vi=0.04, outcome_domain="parenting_stress"),
            _row(1, "yi_vi", yi=0.3, vi=0.04, informant="child"),
            _row(2, "yi_vi", yi=0.3, vi=0.04)]  # fmt: skip
    mapping = {"outcome_domain": ("parenting_stress",), "informant": ("child",)}
    t = _run(rows, higher_is_worse_levels=mapping).table
    assert t["yi"].tolist() == [-0.3, -0.3, 0.3]
    assert "informant 'child' is higher-is-worse" in t["es_note"].iloc[1]
    # a single level given as a plain string is one level, not its letters
    t = _run(rows, higher_is_worse_levels="parenting_stress").table
    assert t["yi"].tolist() == [-0.3, 0.3, 0.3]


def test_yi_vi_rows_are_flipped_but_otherwise_final():
    rows = [_row(0, "yi_vi", yi=0.3, vi=0.04, outcome_domain="parenting_stress",
                 cluster_randomised=1)]  # fmt: skip
    t = _run(rows).table
    assert t["yi"].iloc[0] == -0.3 and t["vi"].iloc[0] == 0.04
    assert "taken as final" in t["es_note"].iloc[0]


def test_without_outcome_domain_only_the_row_column_flips():
    rows = [_row(0, "yi_vi", yi=0.3, vi=0.04), _row(1, "yi_vi", yi=0.3, vi=0.04, higher_is_worse=1)]
    df = pd.DataFrame(rows).drop(columns="outcome_domain")
    t = compute_effect_sizes(df, higher_is_worse_levels=WORSE, convert=CONVERT).table
    assert t["yi"].tolist() == [0.3, -0.3]


@settings(max_examples=100, deadline=None)
@given(m1=st.floats(-50, 50), m2=st.floats(-50, 50), sd=st.floats(0.1, 20),
       n1=st.integers(2, 300), n2=st.integers(2, 300),
       domain=st.sampled_from(["social_support", "parenting_stress", None]),
       hiw=st.sampled_from([0, 1, None, "0", "1"]))  # fmt: skip
def test_property_sign_flips_iff_higher_is_worse(m1, m2, sd, n1, n2, domain, hiw):
    row = _row(0, "means_sds", m_int=m1, sd_int=sd, n_int=n1, m_ctl=m2, sd_ctl=sd, n_ctl=n2,
               outcome_domain=domain, higher_is_worse=hiw)  # fmt: skip
    t = _run([row]).table
    g = cv.smd_from_means(m1, sd, n1, m2, sd, n2).yi[0]
    worse = (hiw is not None and int(hiw) == 1) or (hiw is None and domain == "parenting_stress")
    assert bool(t["direction_flipped"].iloc[0]) == worse
    assert t["yi"].iloc[0] == (-g if worse else g)
    assert t["vi"].iloc[0] > 0 and np.isfinite(t["vi"].iloc[0])


# --------------------------------------------------------------------------- design effect


def test_design_effect_multiplies_derived_variances_of_cluster_randomised_rows():
    base = LEVEL_CASES["means_sds"][0]
    rows = [
        _row(0, "means_sds", **base, cluster_randomised=1),  # defaults m = 20, ICC = 0.05
        _row(1, "means_sds", **base, cluster_randomised=1, cluster_size=11, icc=0.1),
        _row(2, "means_sds", **base, cluster_randomised=0, cluster_size=11, icc=0.1),
        _row(3, "d_se", d_value=0.4, d_se=0.2, d_is_g=1, cluster_randomised=1),
        _row(4, "yi_vi", yi=0.2, vi=0.05, cluster_randomised=1),
    ]
    res = _run(rows)
    v = res.table["vi"].to_numpy()
    # normand1999 row 1 vi (escalc) times 1 + (m - 1) ICC: 1.95, 2.0, none; 0.04 x 1.95; none
    np.testing.assert_allclose(v, [N0.vi * 1.95, N0.vi * 2.0, N0.vi, 0.04 * 1.95, 0.05],
                               atol=TOL, rtol=0)  # fmt: skip
    assert res.table["yi"].iloc[0] == pytest.approx(N0.yi, abs=TOL)  # yi unchanged
    notes = res.table["es_note"].tolist()
    assert "design effect 1.95" in notes[0] and "(default)" in notes[0]
    assert "design effect 2" in notes[1] and "(reported)" in notes[1]
    assert "variance x design effect" not in notes[2] + notes[4]
    assert res.counts["design_effect_applied"] == 3
    assert res.counts["defaults_used"]["icc"] == 2


def test_no_cluster_column_means_no_design_effect():
    res = _run([_row(0, "means_sds", **LEVEL_CASES["means_sds"][0], icc=0.2)])
    assert res.table["vi"].iloc[0] == pytest.approx(N0.vi, abs=TOL)


# --------------------------------------------------------------------------- impossible input

MEANS = LEVEL_CASES["means_sds"][0]
IMPOSSIBLE = [
    # (es_input, statistics, column named, value shown)
    ("means_sds", {**MEANS, "sd_int": 0}, "sd_int", "0"),
    ("means_sds", {**MEANS, "sd_ctl": -3.5}, "sd_ctl", "-3.5"),
    ("means_sds", {**MEANS, "n_int": 1}, "n_int", "1"),
    ("means_sds", {**MEANS, "m_ctl": np.nan}, "m_ctl", "missing"),
    ("means_sds", {**MEANS, "m_ctl": "abc"}, "m_ctl", "'abc'"),
    ("t", {"t_value": 2.0, "n_int": 20}, "n_ctl", "missing"),
    ("f", {"f_value": 4.0, "n_int": 20, "n_ctl": 20}, "stat_direction", "missing"),
    ("f", {"f_value": 4.0, "n_int": 20, "n_ctl": 20, "stat_direction": 2}, "stat_direction", "2"),
    ("f", {"f_value": -4.0, "n_int": 20, "n_ctl": 20, "stat_direction": 1}, "f_value", "-4"),
    ("p", {"p_value": 1.0, "n_int": 20, "n_ctl": 20, "stat_direction": 1}, "p_value", "1"),
    ("p", {"p_value": 0.0, "n_int": 20, "n_ctl": 20, "stat_direction": 1}, "p_value", "0"),
    ("d_se", {"d_value": 0.3, "d_se": 0.0, "d_is_g": 1}, "d_se", "0"),
    ("d_se", {"d_value": 0.3, "d_se": 0.1, "d_is_g": 0}, "n_int", "missing"),
    ("d_se", {"d_value": 0.3, "d_se": 0.1}, "d_is_g", "missing"),
    ("d_ci", {"d_value": 0.5, "d_ci_lower": 0.6, "d_ci_upper": 0.9, "d_is_g": 1}, "d_value", "0.5"),
    ("or_2x2", {"events_int": -1, "nonevents_int": 5, "events_ctl": 3, "nonevents_ctl": 4},
     "events_int", "-1"),
    ("or_2x2", {"events_int": 1, "nonevents_int": 0, "events_ctl": 3, "nonevents_ctl": 4},
     "events_int + nonevents_int", "1"),
    ("or_ci", {"or_value": 3.0, "or_ci_lower": 1.0, "or_ci_upper": 2.0}, "or_value", "3"),
    ("or_ci", {"or_value": 0.0, "or_ci_lower": 0.5, "or_ci_upper": 2.0}, "or_value", "0"),
    ("r", {"r_value": 1.0, "n_total": 50}, "r_value", "1"),
    ("r", {"r_value": -1.2, "n_total": 50}, "r_value", "-1.2"),
    ("r", {"r_value": 0.2, "n_total": 3}, "n_total", "3"),
    ("prepost", {**LEVEL_CASES["prepost"][0], "r_prepost": 1.0}, "r_prepost", "1"),
    ("prepost", {**LEVEL_CASES["prepost"][0], "n_int": 2, "n_ctl": 2}, "n_int + n_ctl", "4"),
    ("yi_vi", {"yi": 0.2, "vi": 0.0}, "vi", "0"),
    ("yi_vi", {"yi": 0.2, "vi": -0.01}, "vi", "-0.01"),
    ("yi_vi", {"yi": np.inf, "vi": 0.01}, "yi", "inf"),
    ("nonsense", {}, "es_input", "'nonsense'"),
    ("yi_vi", {"yi": 0.2, "vi": 0.01, "higher_is_worse": 3}, "higher_is_worse", "3"),
    ("means_sds", {**MEANS, "cluster_randomised": 1, "icc": 1.5}, "icc", "1.5"),
    ("means_sds", {**MEANS, "cluster_randomised": 1, "cluster_size": 0.5}, "cluster_size", "0.5"),
]  # fmt: skip


@pytest.mark.parametrize("level, stats_, column, value", IMPOSSIBLE)
def test_impossible_input_is_dropped_with_a_reason_naming_row_column_and_value(
    level, stats_, column, value
):
    good = _row(0, "yi_vi", yi=0.1, vi=0.02)
    bad = _row(7, level, **stats_)
    res = _run([good, bad])
    assert res.table["es_id"].tolist() == ["E0"]
    assert res.dropped["es_id"].tolist() == ["E7"]
    reason = res.dropped["reason"].iloc[0]
    assert reason.startswith("es_id E7 (row 9): ")
    assert f"column '{column}' = {value}" in reason
    # all input columns kept, plus the reason
    assert set(pd.DataFrame([good, bad]).columns) | {"reason"} == set(res.dropped.columns)
    c = res.counts
    assert (c["rows_in"], c["computed"], c["dropped"]) == (2, 1, 1)
    assert c["by_es_input"][level]["dropped"] == 1
    assert res.problems and res.problems[0].row == 9 and res.problems[0].column == column


def test_every_problem_of_a_row_is_reported_together():
    res = _run([_row(0, "means_sds", **{**MEANS, "sd_int": -1, "n_ctl": 1, "m_int": np.nan})])
    reason = res.dropped["reason"].iloc[0]
    for col in ("sd_int", "n_ctl", "m_int"):
        assert f"column '{col}'" in reason
    assert len(res.problems) == 3


def test_a_statistic_column_absent_from_the_table_drops_its_rows():
    res = _run([_row(0, "t", n_int=20, n_ctl=20)])
    reason = res.dropped["reason"].iloc[0]
    assert "column 't_value' = missing: expected a value (column absent from the table" in reason


def test_key_column_is_not_hard_coded():
    df = pd.DataFrame([_row(0, "yi_vi", yi=0.1, vi=0.02), _row(1, "yi_vi", yi=0.1, vi=-1)])
    df = df.rename(columns={"es_id": "effect_code"}).drop(columns="study_id")
    res = compute_effect_sizes(df, higher_is_worse_levels=WORSE, key="effect_code")
    assert res.dropped["reason"].iloc[0].startswith("effect_code E1 (row 3)")
    assert res.to_dict()["dropped"][0]["effect_code"] == "E1"
    with pytest.raises(ValueError, match="key column"):
        compute_effect_sizes(df, higher_is_worse_levels=WORSE)


def test_counts_add_up_on_a_mixed_table():
    rows = [_row(i, lv, **LEVEL_CASES[lv][0]) for i, lv in enumerate(sorted(LEVEL_CASES))]
    rows += [_row(20 + k, lv, **st_) for k, (lv, st_, _, _) in enumerate(IMPOSSIBLE)]
    res = _run(rows)
    c = res.counts
    assert c["rows_in"] == len(rows) == c["computed"] + c["dropped"]
    assert (c["computed"], c["dropped"]) == (len(LEVEL_CASES), len(IMPOSSIBLE))
    for n in c["by_es_input"].values():
        assert n["rows_in"] == n["computed"] + n["dropped"]
    assert sum(n["rows_in"] for n in c["by_es_input"].values()) == len(rows)
    assert len(res.log_lines()) > len(IMPOSSIBLE)


def test_empty_table_gives_empty_result():
    df = pd.DataFrame(columns=["es_id", "source_row", "es_input"])
    res = compute_effect_sizes(df, higher_is_worse_levels=WORSE)
    assert res.counts["rows_in"] == res.counts["computed"] == res.counts["dropped"] == 0
    assert set(OUTPUT_COLUMNS) <= set(res.table.columns)


# --------------------------------------------------------------------------- declared measure
def _case_rows(case: str, kind: str, roles: dict[str, str]) -> list[dict]:
    """One row per value of an escalc_conversions.json case, its inputs under the roles."""
    inputs = ESCALC[case]["inputs"]
    k = len(next(iter(inputs.values())))
    return [
        _row(i, kind, **{role: inputs[arg][i] for role, arg in roles.items()}) for i in range(k)
    ]


MEANS_ROLES = {"m_int": "m1i", "sd_int": "sd1i", "n_int": "n1i", "m_ctl": "m2i", "sd_ctl": "sd2i",
         "n_ctl": "n2i"}  # fmt: skip
COUNT_ROLES = {"events_int": "ai", "nonevents_int": "bi", "events_ctl": "ci", "nonevents_ctl": "di"}
MEASURE_CASES = [
    # (analysis measure, es_input, escalc_conversions.json case, roles -> escalc arguments)
    ("MD", "means_sds", "md_from_means", MEANS_ROLES),
    ("ROM", "means_sds", "rom_from_means", MEANS_ROLES),
    ("OR", "or_2x2", "or_zero_cells", COUNT_ROLES),
    ("RR", "counts_2x2", "rr_from_2x2", COUNT_ROLES),
    ("RD", "or_2x2", "rd_from_2x2", COUNT_ROLES),
    ("ZCOR", "r", "zcor_from_r", {"r_value": "ri", "n_total": "ni"}),
    ("COR", "r", "cor_from_r", {"r_value": "ri", "n_total": "ni"}),
    ("PLO", "events_n", "plo_from_events", {"events": "xi", "n": "ni"}),
    ("PR", "events_n", "pr_from_events", {"events": "xi", "n": "ni"}),
    ("SMD", "counts_2x2", "or2dl_from_2x2", COUNT_ROLES),
]


@pytest.mark.parametrize("measure, kind, case, roles", MEASURE_CASES)
def test_each_measure_matches_escalc(measure, kind, case, roles):
    # tests/reference/escalc_conversions.json, the case named (escalc(measure=...) in its call)
    res = _run(_case_rows(case, kind, roles), measure=measure)
    assert res.counts["dropped"] == 0, res.dropped
    np.testing.assert_allclose(res.table["yi"], ESCALC[case]["results"]["yi"], rtol=TOL, atol=0)
    np.testing.assert_allclose(res.table["vi"], ESCALC[case]["results"]["vi"], rtol=TOL, atol=0)
    assert res.measure["code"] == measure
    assert res.summary()["measure"] == res.measure and res.summary()["rows_in"] == len(res.table)


def test_ratio_measures_from_a_confidence_interval():
    # extra smd_from_or_ci_logit inputs: the log OR itself (Wald, Cochrane Handbook 6.3.2), and a
    # risk ratio with its CI on the same formula
    rows = [_row(0, "or_ci", or_value=ORCI["or"][0], or_ci_lower=ORCI["ci_lb"][0],
                 or_ci_upper=ORCI["ci_ub"][0])]  # fmt: skip
    lor = cv.log_odds_ratio_from_ci(ORCI["or"][0], ORCI["ci_lb"][0], ORCI["ci_ub"][0])
    t = _run(rows, measure="OR").table
    assert t["yi"].iloc[0] == lor.yi[0] and t["vi"].iloc[0] == lor.vi[0]
    rows = [_row(0, "rr_ci", rr_value=1.5, rr_ci_lower=1.1, rr_ci_upper=2.2),
            _row(1, "rr_ci", rr_value=2.5, rr_ci_lower=1.1, rr_ci_upper=2.2)]  # fmt: skip
    res = _run(rows, measure="RR")
    assert res.table["yi"].iloc[0] == pytest.approx(math.log(1.5), abs=TOL)
    se = (math.log(2.2) - math.log(1.1)) / (2 * cv.Z_975)
    assert res.table["vi"].iloc[0] == pytest.approx(se**2, abs=TOL)
    assert "rr_ci_lower < rr_value < rr_ci_upper" in res.dropped["reason"].iloc[0]


def test_a_kind_that_cannot_give_the_measure_is_refused_naming_row_column_value():
    rows = [_row(i, lv, **LEVEL_CASES[lv][0]) for i, lv in enumerate(["t", "means_sds", "or_2x2"])]
    res = _run(rows, measure="MD", source_name="effects.csv")
    assert res.counts["computed"] == 1 and res.counts["refused_measure"] == 2
    problems = [p for p in res.problems if p.check == "effect_measure"]
    assert [(p.file, p.row, p.column, p.value) for p in problems] == [
        ("effects.csv", 2, "es_input", "t"),
        ("effects.csv", 4, "es_input", "or_2x2"),
    ]
    assert "the analysis measure MD (mean difference); 't' gives SMD" in problems[0].expected
    assert "'or_2x2' gives OR, RR, RD, SMD" in problems[1].expected
    assert res.dropped["es_id"].tolist() == ["E0", "E2"]


def test_a_conversion_the_config_does_not_allow_is_refused():
    rows = [_row(0, "or_2x2", **LEVEL_CASES["or_2x2"][0]), _row(1, "r", **LEVEL_CASES["r"][0]),
            _row(2, "t", **LEVEL_CASES["t"][0])]  # fmt: skip
    res = _run(rows, convert=["COR"])
    (problem,) = [p for p in res.problems if p.check == "effect_measure"]
    assert problem.value == "or_2x2"
    assert "only by a conversion from OR: add OR to effect_sizes.convert" in problem.expected
    assert res.counts["converted"] == {"COR": 1}
    assert res.measure["convert"] == ["COR"]
    assert res.log_lines()[1].startswith("  measure SMD (Hedges' g): positive = higher in")
    assert "1 refused (es_input cannot give it), converted: COR 1" in res.log_lines()[1]


def test_every_row_refused_fails_with_the_list_instead_of_an_empty_table():
    rows = [_row(i, "t", **LEVEL_CASES["t"][0]) for i in range(3)]
    with pytest.raises(InputError) as info:
        _run(rows, measure="OR", source_name="effects.csv")
    assert [(p.row, p.column, p.severity) for p in info.value.problems] == [
        (2, "es_input", "error"),
        (3, "es_input", "error"),
        (4, "es_input", "error"),
    ]
    assert "no row of effects.csv gives the analysis measure OR" in str(info.value)


def test_given_effect_sizes_take_the_declared_measure_and_its_name():
    rows = [_row(0, "yi_vi", yi=-0.2, vi=0.01), _row(1, "t", **LEVEL_CASES["t"][0])]
    res = _run(rows, measure="GEN", measure_name="log hazard ratio")
    assert res.table["yi"].tolist() == [-0.2]
    assert res.measure["name"] == res.measure["axis_label"] == "log hazard ratio"
    assert res.measure["code"] == "GEN"


def test_direction_is_declared_or_the_measures_neutral_default():
    rows = [_row(0, "yi_vi", yi=0.2, vi=0.01)]
    default = _run(rows).measure
    assert (
        default["direction"]
        == "positive = higher in the first (intervention) group than the second"
    )
    assert default["direction_declared"] is False and "benefit" not in default["direction"]
    assert _run(rows, measure="OR").measure["direction"].startswith("above 1 = higher odds")
    declared = _run(
        rows, direction="positive = better", direction_by={"stress": "positive = less stress"}
    ).measure
    assert declared["direction"] == "positive = better" and declared["direction_declared"]
    assert declared["direction_by"] == {"stress": "positive = less stress"}


def test_a_flip_mirrors_at_the_null_of_the_measure():
    # a raw proportion flips to 1 - p, a logit proportion to -logit(p)
    rows = [_row(0, "events_n", events=3, n=10, higher_is_worse=1)]
    assert _run(rows, measure="PR").table["yi"].iloc[0] == pytest.approx(0.7, abs=TOL)
    assert _run(rows, measure="PLO").table["yi"].iloc[0] == pytest.approx(math.log(7 / 3), abs=TOL)


def test_events_beyond_n_and_nonpositive_means_for_a_ratio_are_refused():
    rows = [_row(0, "events_n", events=12, n=10),
            _row(1, "means_sds", **{**LEVEL_CASES["means_sds"][0], "m_ctl": -1.0})]  # fmt: skip
    reasons = _run(rows, measure="PLO").dropped["reason"].tolist()
    assert "column 'events' = 12: expected at most n" in reasons[0]
    reasons = _run(rows, measure="ROM").dropped["reason"].tolist()
    assert "column 'm_ctl' = -1: expected a mean > 0" in reasons[1]


def test_statistic_columns_are_read_from_the_codebook_mapping():
    # requires in mapping form: the data set's own column names; problems name those columns
    st_ = LEVEL_CASES["means_sds"][0]
    names = {"m_int": "mean_tx", "sd_int": "sd_tx", "n_int": "n_tx", "m_ctl": "mean_cg",
             "sd_ctl": "sd_cg", "n_ctl": "n_cg"}  # fmt: skip
    renamed = {names[k]: v for k, v in st_.items()}
    rows = [_row(0, "means_sds", **renamed), _row(1, "means_sds", **{**renamed, "sd_cg": 0})]
    res = _run(rows, requires={"means_sds": names})
    assert res.table["yi"].iloc[0] == pytest.approx(LEVEL_CASES["means_sds"][1][0], abs=TOL)
    assert "column 'sd_cg' = 0: expected an SD > 0" in res.dropped["reason"].iloc[0]


def test_without_es_input_every_row_takes_the_one_declared_kind():
    rows = [_row(0, "yi_vi", yi=0.1, vi=0.02), _row(1, "yi_vi", yi=0.3, vi=0.04)]
    df = pd.DataFrame(rows).drop(columns="es_input")
    res = compute_effect_sizes(
        df, higher_is_worse_levels=WORSE, requires={"yi_vi": {"yi": "yi", "vi": "vi"}}
    )
    assert res.table["yi"].tolist() == [0.1, 0.3]
    with pytest.raises(ValueError, match="es_input"):
        compute_effect_sizes(df, higher_is_worse_levels=WORSE)


def test_measure_registry_reads_and_back_transforms():
    # exp for log ratios, tanh for Fisher's z, the inverse logit for PLO; bounds as documented
    assert (
        MEASURES["OR"].back(math.log(2)) == pytest.approx(2)
        and MEASURES["OR"].back_name == "odds ratio"
    )
    assert MEASURES["ZCOR"].back(np.arctanh(0.5)) == pytest.approx(0.5)
    assert MEASURES["PLO"].back(0.0) == pytest.approx(0.5)
    assert MEASURES["SMD"].back(0.3) == 0.3 and MEASURES["SMD"].name == "Hedges' g"
    assert MEASURES["ZCOR"].implausible([2.6, 2.7]).tolist() == [False, True]
    assert MEASURES["SMD"].implausible([-5.1, 4.9]).tolist() == [True, False]
    assert not MEASURES["MD"].implausible([1e6]).any()
    d = MEASURES["RR"].to_dict()
    assert (d["code"], d["null"], d["back_transform"]) == ("RR", 0.0, "exp")
    assert json.loads(json.dumps(d)) == d
    with pytest.raises(ValueError, match="unknown effect measure"):
        get_measure("HR")


def test_config_schema_offers_the_registrys_measures_and_conversions():
    schema = yaml.safe_load((Path(__file__).parent.parent / "workflow" / "schemas" /
                             "config.schema.yaml").read_text(encoding="utf-8"))  # fmt: skip
    props = schema["properties"]["effect_sizes"]["properties"]
    assert props["measure"]["enum"] == list(MEASURES)
    assert props["convert"]["items"]["enum"] == list(CONVERSION_SOURCES)
    for kind in INPUT_KINDS.values():
        for measure, source in kind.gives.items():
            assert measure in MEASURES and (source is None or source in CONVERSION_SOURCES)


def test_step_reads_renamed_statistic_columns_through_the_codebook(tmp_path):
    # the example data with the means/SDs columns renamed and requires in mapping form give the
    # same effect sizes as the shipped files (validate, clean and effect_sizes steps)
    from intervention_meta import steps

    root = Path(__file__).parent.parent
    names = {"m_int": "mean_tx", "sd_int": "sd_tx", "m_ctl": "mean_cg", "sd_ctl": "sd_cg"}
    book = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    for v in book["variables"]:
        if v["name"] in ("sd_int", "sd_ctl"):  # used by means_sds only
            v["name"] = names[v["name"]]
        elif v["name"] in ("m_int", "m_ctl"):  # also used by prepost: a new variable
            book["variables"].append({**v, "name": names[v["name"]]})
        elif v["name"] == "es_input":
            req = v["requires"]
            req["means_sds"] = {r: names.get(r, r) for r in req["means_sds"]}
    (tmp_path / "codebook.yaml").write_text(yaml.safe_dump(book, sort_keys=False))
    effects = pd.read_csv(root / "data" / "raw" / "effects.csv", dtype=str, keep_default_na=False)
    means = effects["es_input"] == "means_sds"
    for role, col in names.items():
        effects[col] = effects[role].where(means, "")
        if role in ("sd_int", "sd_ctl"):
            effects = effects.drop(columns=role)
        else:
            effects[role] = effects[role].where(~means, "")
    effects.to_csv(tmp_path / "effects.csv", index=False)
    config = yaml.safe_load((root / "config" / "config.yaml").read_text(encoding="utf-8"))

    def run(codebook: Path, effects_csv: Path, out: Path) -> pd.DataFrame:
        report = validate(codebook, root / "data" / "raw" / "studies.csv", effects_csv)
        assert report.ok, [p.message() for p in report.errors]
        out.mkdir()
        files = {k: str(out / f"{k}.csv") for k in ("clean", "dropped", "es", "es_dropped")}
        steps.clean(codebook=str(codebook), studies=str(root / "data" / "raw" / "studies.csv"),
                    effects=str(effects_csv), clean_effects=files["clean"],
                    dropped=files["dropped"], summary=str(out / "clean.json"),
                    inclusion=config["inclusion"])  # fmt: skip
        steps.effect_sizes(codebook=str(codebook), clean_effects=files["clean"],
                           table=files["es"], dropped=files["es_dropped"],
                           summary=str(out / "es.json"),
                           options=config["effect_sizes"])  # fmt: skip
        summary = json.loads((out / "es.json").read_text(encoding="utf-8"))
        assert summary["measure"]["code"] == "SMD" and summary["measure"]["direction_declared"]
        return pd.read_csv(files["es"])

    shipped = run(CODEBOOK, root / "data" / "raw" / "effects.csv", tmp_path / "shipped")
    renamed = run(tmp_path / "codebook.yaml", tmp_path / "effects.csv", tmp_path / "renamed")
    assert (shipped["es_input"] == "means_sds").sum() > 0
    assert renamed["es_id"].tolist() == shipped["es_id"].tolist()
    np.testing.assert_array_equal(renamed["yi"], shipped["yi"])
    np.testing.assert_array_equal(renamed["vi"], shipped["vi"])
