"""Tests of the array-level effect-size conversions
(``intervention_meta.effect_sizes.conversions``).

Expected values come from (1) metafor 3.8-1 ``escalc()`` output in ``tests/reference/`` (see its
README.md for the R calls), (2) R check values in
``tests/reference/extra/effect_size_conversions.json`` (made by
``extra/effect_size_conversions.R``; each case stores its R call), (3) worked examples of
Borenstein et al. (2009) and Morris (2008), cited where used, and (4) round trips.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from intervention_meta.effect_sizes import conversions as cv

REF = Path(__file__).parent / "reference"
TOL = 1e-10  # closed-form quantities (tests/reference/README.md)


def _cases(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


ESCALC = _cases(REF / "escalc_conversions.json")
EXTRA = _cases(REF / "extra" / "effect_size_conversions.json")


def assert_matches(res: cv.EffectSizeArrays, expected: dict) -> None:
    np.testing.assert_allclose(res.yi, np.atleast_1d(expected["yi"]), rtol=0, atol=TOL)
    np.testing.assert_allclose(res.vi, np.atleast_1d(expected["vi"]), rtol=0, atol=TOL)


# --------------------------------------------------------------------------- metafor data sets


def test_smd_matches_metafor_normand1999():
    # tests/reference/normand1999_smd.csv: escalc(measure="SMD", m1i, sd1i, n1i, m2i, sd2i, n2i)
    dat = pd.read_csv(REF / "normand1999_smd.csv")
    res = cv.smd_from_means(dat.m1i, dat.sd1i, dat.n1i, dat.m2i, dat.sd2i, dat.n2i)
    assert_matches(res, {"yi": dat.yi, "vi": dat.vi})
    assert res.measure == "SMD"
    np.testing.assert_allclose(res.sei, np.sqrt(dat.vi), rtol=0, atol=TOL)


def test_log_odds_ratio_matches_metafor_bcg():
    # tests/reference/bcg_or.csv: escalc(measure="OR", ai=tpos, bi=tneg, ci=cpos, di=cneg)
    dat = pd.read_csv(REF / "bcg_or.csv")
    assert_matches(cv.log_odds_ratio(dat.tpos, dat.tneg, dat.cpos, dat.cneg), dat)


def test_fisher_z_matches_metafor_molloy2014():
    # tests/reference/molloy2014_zcor.csv: escalc(measure="ZCOR", ri=ri, ni=ni)
    dat = pd.read_csv(REF / "molloy2014_zcor.csv")
    assert_matches(cv.fisher_z_from_r(dat.ri, dat.ni), dat)


# ------------------------------------------------------------------------ escalc_conversions.json


def _escalc_call(name: str, i: dict) -> cv.EffectSizeArrays:
    calls = {
        "smd_from_t": lambda: cv.smd_from_t(i["ti"], i["n1i"], i["n2i"]),
        "or2dl_from_2x2": lambda: cv.smd_from_counts(i["ai"], i["bi"], i["ci"], i["di"], "logit"),
        "or2dn_from_2x2": lambda: cv.smd_from_counts(i["ai"], i["bi"], i["ci"], i["di"], "normal"),
        "or_zero_cells": lambda: cv.log_odds_ratio(i["ai"], i["bi"], i["ci"], i["di"]),
        "logor_from_or_ci": lambda: cv.log_odds_ratio_from_ci(i["or"], i["ci_lb"], i["ci_ub"]),
        "zcor_from_r": lambda: cv.fisher_z_from_r(i["ri"], i["ni"]),
        "smcr_prepost": lambda: cv.smc_raw(i["m1i"], i["m2i"], i["sd1i"], i["ni"], i["ri"]),
        "smcc_prepost": lambda: cv.smc_change(
            i["m1i"], i["m2i"], i["sd1i"], i["sd2i"], i["ni"], i["ri"]
        ),
        "smd_vtype_ub": lambda: cv.smd_from_means(
            i["m1i"], i["sd1i"], i["n1i"], i["m2i"], i["sd2i"], i["n2i"], vtype="UB"
        ),
        "md_from_means": lambda: cv.mean_difference(
            i["m1i"], i["sd1i"], i["n1i"], i["m2i"], i["sd2i"], i["n2i"]
        ),
        "rom_from_means": lambda: cv.log_ratio_of_means(
            i["m1i"], i["sd1i"], i["n1i"], i["m2i"], i["sd2i"], i["n2i"]
        ),
        "cor_from_r": lambda: cv.correlation(i["ri"], i["ni"]),
        "rr_from_2x2": lambda: cv.log_risk_ratio(i["ai"], i["bi"], i["ci"], i["di"]),
        "rd_from_2x2": lambda: cv.risk_difference(i["ai"], i["bi"], i["ci"], i["di"]),
        "plo_from_events": lambda: cv.logit_proportion(i["xi"], i["ni"]),
        "pr_from_events": lambda: cv.proportion(i["xi"], i["ni"]),
    }
    return calls[name]()


@pytest.mark.parametrize("name", sorted(ESCALC))
def test_conversion_matches_escalc_conversions_json(name):
    # every case of tests/reference/escalc_conversions.json (R call stored in the case)
    case = ESCALC[name]
    assert_matches(_escalc_call(name, case["inputs"]), case["results"])


MEASURE_CASES = {
    "md_from_means": "MD",
    "rom_from_means": "ROM",
    "cor_from_r": "COR",
    "rr_from_2x2": "RR",
    "rd_from_2x2": "RD",
    "plo_from_events": "PLO",
    "pr_from_events": "PR",
}


@pytest.mark.parametrize("name", sorted(MEASURE_CASES))
def test_measure_matches_escalc_at_1e10_relative(name):
    # tests/reference/escalc_conversions.json, cases made by escalc(measure=<code>) (call in the
    # case): every value to 1e-10 relative, and the result names metafor's measure code
    case = ESCALC[name]
    res = _escalc_call(name, case["inputs"])
    assert res.measure == MEASURE_CASES[name]
    np.testing.assert_allclose(res.yi, case["results"]["yi"], rtol=TOL, atol=0)
    np.testing.assert_allclose(res.vi, case["results"]["vi"], rtol=TOL, atol=0)


def test_zero_cells_move_proportions_as_metafor_does():
    # escalc(measure="PR", xi=c(0, 5), ni=c(5, 5)): 0.5 added to events and non-events of tables
    # with a zero, so 0/5 -> 0.5/6 and 5/5 -> 5.5/6; 2x2 tables as for the log odds ratio
    np.testing.assert_allclose(cv.proportion([0, 5, 2], [5, 5, 5]).yi, [0.5 / 6, 5.5 / 6, 0.4])
    rr = cv.log_risk_ratio([0, 2], [10, 8], [3, 3], [7, 7])
    assert rr.yi[0] == pytest.approx(np.log((0.5 / 11) / (3.5 / 11)), abs=TOL)
    assert rr.yi[1] == pytest.approx(np.log(0.2 / 0.3), abs=TOL)


def test_round_trip_log_risk_ratio_to_rr_ci_and_back():
    lrr, se = np.array([-0.4, 0.1, 0.9]), np.array([0.3, 0.2, 0.5])
    res = cv.log_risk_ratio_from_ci(np.exp(lrr), np.exp(lrr - cv.Z_975 * se),
                                    np.exp(lrr + cv.Z_975 * se))  # fmt: skip
    assert res.measure == "RR"
    assert_matches(res, {"yi": lrr, "vi": se**2})


# --------------------------------------------------------------------------- extra R check values


def _morris_args(i: dict) -> list:
    keys = ["m_pre_t", "m_post_t", "sd_pre_t", "n_t", "m_pre_c", "m_post_c", "sd_pre_c", "n_c"]
    return [i[k] for k in keys] + [i["ri"]]


def _extra_call(name: str, i: dict) -> cv.EffectSizeArrays:
    def from_or_ci():
        lor = cv.log_odds_ratio_from_ci(i["or"], i["ci_lb"], i["ci_ub"])
        return cv.smd_from_log_odds_ratio(lor.yi, lor.vi, "logit")

    def with_design_effect():
        res = cv.smd_from_means(i["m1i"], i["sd1i"], i["n1i"], i["m2i"], i["sd2i"], i["n2i"])
        return cv.EffectSizeArrays(res.yi, cv.apply_design_effect(res.vi, i["m"], i["icc"]), "SMD")

    means = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
    calls = {
        "smd_from_p": lambda: cv.smd_from_p(i["p"], i["n1i"], i["n2i"], i["direction"]),
        "smd_from_f": lambda: cv.smd_from_f(i["Fi"], i["n1i"], i["n2i"], i["direction"]),
        "smd_from_r_borenstein": lambda: cv.smd_from_r(i["ri"], i["ni"], hedges_correction=False),
        "smd_from_r_hedges_j": lambda: cv.smd_from_r(i["ri"], i["ni"]),
        "smd_from_d_se_cohen": lambda: cv.smd_from_d_se(
            i["di"], i["sei"], is_g=False, n1=i["n1i"], n2=i["n2i"]
        ),
        "smd_from_d_ci_cohen": lambda: cv.smd_from_d_ci(
            i["di"], i["lb"], i["ub"], is_g=False, n1=i["n1i"], n2=i["n2i"]
        ),
        "smd_from_or_ci_logit": from_or_ci,
        "morris2008_dppc2_approx_cp": lambda: cv.smd_prepost_control(
            *_morris_args(i), correction="approx"
        ),
        "morris2008_dppc2_exact_j": lambda: cv.smd_prepost_control(*_morris_args(i)),
        "design_effect_smd": with_design_effect,
        "or_zero_and_double_zero": lambda: cv.log_odds_ratio(i["ai"], i["bi"], i["ci"], i["di"]),
        "or2dl_zero_and_double_zero": lambda: cv.smd_from_counts(
            i["ai"], i["bi"], i["ci"], i["di"], "logit"
        ),
        "borenstein2009_ch4_ls": lambda: cv.smd_from_means(*(i[k] for k in means)),
        "borenstein2009_ch4_ls2": lambda: cv.smd_from_means(*(i[k] for k in means), vtype="LS2"),
    }
    return calls[name]()


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_conversion_matches_extra_r_check_values(name):
    # tests/reference/extra/effect_size_conversions.json (R call stored in each case)
    case = EXTRA[name]
    assert_matches(_extra_call(name, case["inputs"]), case["results"])


# --------------------------------------------------------------------------- textbook examples


def test_smd_reproduces_borenstein2009_chapter4_example():
    # Borenstein et al. (2009), ch. 4, pp. 26-28: X1 = 103, X2 = 100, S1 = 5.5, S2 = 4.5,
    # n1 = n2 = 50 -> S_within = 5.0249, d = 0.5970, V_d = 0.0418, J = 0.9923, g = 0.5924,
    # V_g = 0.0411 (J^2 V_d, i.e. vtype "LS2"). Printed to 4 decimals.
    res = cv.smd_from_means(103, 5.5, 50, 100, 4.5, 50, vtype="LS2")
    j = cv.hedges_j(98)[0]
    assert round(float(res.yi[0] / j), 4) == 0.5970
    assert round(float(res.vi[0] / j**2), 4) == 0.0418
    assert round(float(j), 4) == 0.9923
    assert round(float(cv.hedges_j_approx(98)[0]), 4) == 0.9923
    assert round(float(res.yi[0]), 4) == 0.5924
    assert round(float(res.vi[0]), 4) == 0.0411


def test_log_odds_ratio_to_d_reproduces_borenstein2009_chapter7_example():
    # Borenstein et al. (2009), ch. 7, p. 47: log OR = 0.9069, V = 0.0676 -> d = 0.5000,
    # V_d = 0.0205 (eq. 7.1 and 7.2).
    res = cv.smd_from_log_odds_ratio(0.9069, 0.0676, "logit")
    assert round(float(res.yi[0]), 4) == 0.5000
    assert round(float(res.vi[0]), 4) == 0.0205


def test_r_to_d_reproduces_borenstein2009_chapter7_example():
    # Borenstein et al. (2009), ch. 7, p. 48, eq. 7.5: r = 0.50 -> d = 1.1547. Eq. 7.6 gives
    # V_d = 4 V_r / (1 - r^2)^3 with V_r = (1 - r^2)^2 / (n - 1) (eq. 6.1); the book's V_r is an
    # input there, so the variance is checked as that identity (and against R above).
    for n in (20, 100, 1000):
        res = cv.smd_from_r(0.5, n, hedges_correction=False)
        assert round(float(res.yi[0]), 4) == 1.1547
        v_r = (1 - 0.25) ** 2 / (n - 1)
        assert res.vi[0] == pytest.approx(4 * v_r / (1 - 0.25) ** 3, rel=1e-12)


def test_dppc2_reproduces_morris2008_table5():
    # Morris (2008), Table 5, d_ppc2 for the five training studies of Carlson & Schmidt (1999),
    # printed to 2 decimals: 0.77, 0.80, 1.20, 1.05, 0.44. The data are those of
    # metafor-project.org/doku.php/analyses:morris2008 (stored with the R check values).
    i = EXTRA["morris2008_dppc2_approx_cp"]["inputs"]
    for correction in ("approx", "exact"):
        res = cv.smd_prepost_control(*_morris_args(i), correction=correction)
        assert np.round(res.yi, 2).tolist() == [0.77, 0.80, 1.20, 1.05, 0.44]


def test_design_effect_is_one_plus_m_minus_one_times_icc():
    # Cochrane Handbook (v6.4) 23.1.4: DE = 1 + (M - 1) ICC. By hand: m = 20, ICC = 0.05 -> 1.95;
    # m = 1 (no clustering) -> 1; ICC = 0 -> 1; m = 30, ICC = 1 -> 30.
    np.testing.assert_allclose(
        cv.design_effect([20, 1, 50, 30], [0.05, 0.3, 0.0, 1.0]), [1.95, 1.0, 1.0, 30.0],
        rtol=0, atol=1e-14,
    )  # fmt: skip
    np.testing.assert_allclose(cv.apply_design_effect(0.04, 20, 0.05), [0.078], rtol=1e-14)


def test_hedges_j_is_the_gamma_ratio_and_undefined_for_df_up_to_one():
    # J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981), written out with math.gamma
    for m in (2, 5, 10, 38.5, 120):
        expected = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
        assert cv.hedges_j(m)[0] == pytest.approx(expected, rel=1e-13)
    assert np.isnan(cv.hedges_j([1, 0.5])).all()
    assert cv.hedges_j(1e6)[0] == pytest.approx(1, abs=1e-6)


def test_se_from_ci_uses_the_normal_quantile():
    # Cochrane Handbook 6.3.1: SE = (upper - lower) / 3.92 for a 95% CI (3.92 = 2 x 1.959964)
    assert cv.Z_975 == pytest.approx(1.959963984540054, abs=1e-15)
    assert cv.se_from_ci(0.1, 0.1 + 2 * cv.Z_975)[0] == pytest.approx(1.0, abs=1e-15)
    assert cv.se_from_ci(-1, 1, level=0.9)[0] == pytest.approx(1 / stats.norm.ppf(0.95))


def test_zero_cell_correction_only_touches_tables_with_a_zero():
    # metafor add=1/2, to="only0": the table without zeros is unchanged; "none" leaves a zero
    # table infinite; "all" corrects every table.
    ai, bi, ci, di = [0, 7], [20, 13], [3, 4], [17, 16]
    assert cv.has_zero_cell(ai, bi, ci, di).tolist() == [True, False]
    only0 = cv.log_odds_ratio(ai, bi, ci, di)
    assert only0.yi[1] == pytest.approx(math.log(7 * 16 / (13 * 4)), abs=TOL)
    assert only0.yi[0] == pytest.approx(math.log(0.5 * 17.5 / (20.5 * 3.5)), abs=TOL)
    assert np.isinf(cv.log_odds_ratio(ai, bi, ci, di, to="none").yi[0])
    every = cv.log_odds_ratio(ai, bi, ci, di, to="all")
    assert every.yi[1] == pytest.approx(math.log(7.5 * 16.5 / (13.5 * 4.5)), abs=TOL)


# --------------------------------------------------------------------------- round trips

N1 = np.array([12.0, 20, 35, 50, 200])
N2 = np.array([15.0, 22, 30, 48, 190])
M1 = np.array([10.2, 25.0, 8.1, 103.0, 0.4])
M2 = np.array([9.0, 27.5, 8.9, 100.0, 0.35])
SD1 = np.array([2.1, 6.0, 3.0, 5.5, 0.2])
SD2 = np.array([2.4, 5.0, 2.7, 4.5, 0.25])


def _t_from_means():
    sp = np.sqrt(((N1 - 1) * SD1**2 + (N2 - 1) * SD2**2) / (N1 + N2 - 2))
    return (M1 - M2) / sp / np.sqrt(1 / N1 + 1 / N2)


def test_round_trip_means_to_t_to_g():
    ref = cv.smd_from_means(M1, SD1, N1, M2, SD2, N2)
    assert_matches(cv.smd_from_t(_t_from_means(), N1, N2), {"yi": ref.yi, "vi": ref.vi})


def test_round_trip_means_to_f_and_p_to_g():
    ref = cv.smd_from_means(M1, SD1, N1, M2, SD2, N2)
    t = _t_from_means()
    sign = np.sign(t)
    assert_matches(cv.smd_from_f(t**2, N1, N2, sign), {"yi": ref.yi, "vi": ref.vi})
    p = 2 * stats.t.sf(np.abs(t), N1 + N2 - 2)
    assert_matches(cv.smd_from_p(p, N1, N2, sign), {"yi": ref.yi, "vi": ref.vi})
    # without its sign a p gives |g|
    np.testing.assert_allclose(cv.smd_from_p(p, N1, N2, 1).yi, np.abs(ref.yi), atol=TOL, rtol=0)


def test_round_trip_d_to_log_odds_ratio_to_d():
    # d -> log OR = d pi / sqrt(3), V = V_d pi^2 / 3 (Borenstein et al. 2009, eq. 7.3/7.4) -> d
    d = np.array([-1.2, -0.3, 0.0, 0.45, 2.0])
    v = np.array([0.05, 0.1, 0.2, 0.03, 0.4])
    back = cv.smd_from_log_odds_ratio(d * np.pi / np.sqrt(3), v * np.pi**2 / 3, "logit")
    assert_matches(back, {"yi": d, "vi": v})
    back = cv.smd_from_log_odds_ratio(d * 1.65, v * 1.65**2, "normal")
    assert_matches(back, {"yi": d, "vi": v})


def test_round_trip_d_to_r_to_d():
    # d -> r = d / sqrt(d^2 + 4) (Borenstein et al. 2009, eq. 7.7 with equal groups) -> d
    d = np.array([-1.2, -0.3, 0.0, 0.45, 2.0])
    r = d / np.sqrt(d**2 + 4)
    np.testing.assert_allclose(cv.smd_from_r(r, 50, hedges_correction=False).yi, d, atol=TOL)


def test_round_trip_d_with_se_to_ci_and_back():
    d = np.array([-0.8, 0.1, 0.45])
    se = np.array([0.3, 0.12, 0.2])
    is_g = np.array([True, False, True])
    n1, n2 = np.array([20, 40, 15]), np.array([22, 38, 15])
    via_se = cv.smd_from_d_se(d, se, is_g=is_g, n1=n1, n2=n2)
    via_ci = cv.smd_from_d_ci(d, d - cv.Z_975 * se, d + cv.Z_975 * se, is_g=is_g, n1=n1, n2=n2)
    assert_matches(via_ci, {"yi": via_se.yi, "vi": via_se.vi})
    # a reported g is taken as is
    assert via_se.yi[0] == d[0] and via_se.vi[0] == pytest.approx(se[0] ** 2, abs=1e-15)


def test_round_trip_log_odds_ratio_to_or_ci_and_back():
    lor, se = np.array([-0.7, 0.2, 1.3]), np.array([0.4, 0.25, 0.6])
    res = cv.log_odds_ratio_from_ci(np.exp(lor), np.exp(lor - cv.Z_975 * se),
                                    np.exp(lor + cv.Z_975 * se))  # fmt: skip
    assert_matches(res, {"yi": lor, "vi": se**2})


def test_round_trip_fisher_z_and_r():
    r = np.array([-0.9, -0.2, 0.0, 0.35, 0.6])
    np.testing.assert_allclose(np.tanh(cv.fisher_z_from_r(r, 30).yi), r, atol=TOL, rtol=0)


# --------------------------------------------------------------------------- impossible input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cv.smd_from_means(1, 0, 10, 0, 1, 10), "sd1"),
        (lambda: cv.smd_from_means(1, 1, 1, 0, 1, 10), "n1"),
        (lambda: cv.smd_from_p(1.0, 10, 10, 1), "p"),
        (lambda: cv.smd_from_p(0.04, 10, 10, 0), "direction"),
        (lambda: cv.smd_from_f(-1, 10, 10, 1), "f"),
        (lambda: cv.smd_from_r(1.0, 50), "r"),
        (lambda: cv.fisher_z_from_r(0.3, 3), "n"),
        (lambda: cv.smd_from_d_ci(0.5, 0.6, 0.9, is_g=True), "inside"),
        (lambda: cv.smd_from_d_se(0.5, 0.1, is_g=False), "n1 and n2"),
        (lambda: cv.log_odds_ratio(-1, 5, 3, 4), "ai"),
        (lambda: cv.log_odds_ratio_from_ci(3.0, 1.0, 2.0), "inside"),
        (lambda: cv.log_risk_ratio_from_ci(3.0, 1.0, 2.0), "inside"),
        (lambda: cv.log_risk_ratio(3, -1, 3, 4), "bi"),
        (lambda: cv.risk_difference(3, 1, 3, 4, to="some"), "to"),
        (lambda: cv.log_ratio_of_means(-1, 1, 10, 2, 1, 10), "m1"),
        (lambda: cv.mean_difference(1, 1, 10, 2, 0, 10), "sd2"),
        (lambda: cv.correlation(1.2, 10), "r"),
        (lambda: cv.proportion(6, 5), "xi"),
        (lambda: cv.logit_proportion(1, 0), "ni"),
        (lambda: cv.smd_prepost_control(1, 2, 1, 2, 1, 1, 1, 2, 0.5), "n1 \\+ n2"),
        (lambda: cv.design_effect(0.5, 0.1), "m"),
        (lambda: cv.design_effect(10, 1.5), "icc"),
        (lambda: cv.smd_from_means(1, 1, 10, 0, 1, 10, vtype="AV"), "vtype"),
    ],
)
def test_impossible_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_missing_values_propagate_as_nan():
    res = cv.smd_from_means([1.0, np.nan], [1, 1], [10, 10], [0, 0], [1, 1], [10, 10])
    assert np.isfinite(res.yi[0]) and np.isnan(res.yi[1]) and np.isnan(res.vi[1])


def test_to_dict_and_to_frame():
    res = cv.smd_from_t([2.0, -1.0], [20, 20], [20, 20])
    assert res.to_dict()["measure"] == "SMD" and len(res.to_dict()["yi"]) == 2
    assert list(res.to_frame().columns) == ["yi", "vi", "sei"]


# --------------------------------------------------------------------------- properties

sizes = st.integers(min_value=2, max_value=500)
sds = st.floats(min_value=0.05, max_value=50)
means = st.floats(min_value=-100, max_value=100)
corr = st.floats(min_value=-0.95, max_value=0.95)


@settings(max_examples=100, deadline=None)
@given(m1=means, m2=means, sd1=sds, sd2=sds, n1=sizes, n2=sizes)
def test_smd_from_means_property_variance_positive_and_g_shrinks_d(m1, m2, sd1, sd2, n1, n2):
    res = cv.smd_from_means(m1, sd1, n1, m2, sd2, n2)
    g, v = res.yi[0], res.vi[0]
    assert np.isfinite(v) and v > 0
    d = (m1 - m2) / math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
    if d != 0:
        assert abs(g) < abs(d)
        assert np.sign(g) == np.sign(m1 - m2)


@settings(max_examples=100, deadline=None)
@given(t=st.floats(-20, 20), n1=sizes, n2=sizes, p=st.floats(1e-12, 1 - 1e-9),
       direction=st.sampled_from([1, -1]))  # fmt: skip
def test_test_statistic_conversions_property_variance_positive_and_sign(t, n1, n2, p, direction):
    for res in (cv.smd_from_t(t, n1, n2), cv.smd_from_f(t * t, n1, n2, direction),
                cv.smd_from_p(p, n1, n2, direction)):  # fmt: skip
        assert np.isfinite(res.vi[0]) and res.vi[0] > 0 and np.isfinite(res.yi[0])
    assert np.sign(cv.smd_from_p(p, n1, n2, direction).yi[0]) == direction
    d = t * math.sqrt(1 / n1 + 1 / n2)
    g = cv.smd_from_t(t, n1, n2).yi[0]
    # g = J d with J < 1 shrinks d; at subnormal d (e.g. t = 5e-324) J d rounds back to d
    assert abs(g) <= abs(d) and np.sign(g) == np.sign(d)
    if abs(d) > 1e-300:
        assert abs(g) < abs(d)


@settings(max_examples=100, deadline=None)
@given(r=corr, n=st.integers(4, 2000), counts=st.lists(st.integers(0, 300), min_size=4, max_size=4))
def test_r_and_count_conversions_property_variance_positive(r, n, counts):
    res = cv.smd_from_r(r, n)
    assert np.isfinite(res.vi[0]) and res.vi[0] > 0
    assert np.sign(res.yi[0]) == np.sign(r)
    raw = cv.smd_from_r(r, n, hedges_correction=False)
    # J < 1 shrinks d; at subnormal d (e.g. r = 5e-324) J d rounds back to d
    assert abs(res.yi[0]) <= abs(raw.yi[0])
    if abs(raw.yi[0]) > 1e-300:
        assert abs(res.yi[0]) < abs(raw.yi[0])
    lor = cv.smd_from_counts(*counts)
    assert np.isfinite(lor.yi[0]) and np.isfinite(lor.vi[0]) and lor.vi[0] > 0


@settings(max_examples=100, deadline=None)
@given(pre1=means, post1=means, pre2=means, post2=means, s1=sds, s2=sds,
       n1=sizes, n2=sizes, r=corr)  # fmt: skip
def test_dppc2_property_variance_positive(pre1, post1, pre2, post2, s1, s2, n1, n2, r):
    if n1 + n2 < 5:
        return
    res = cv.smd_prepost_control(pre1, post1, s1, n1, pre2, post2, s2, n2, r)
    assert np.isfinite(res.vi[0]) and res.vi[0] > 0
    diff = (post1 - pre1) - (post2 - pre2)
    if diff != 0 and res.yi[0] != 0:
        assert np.sign(res.yi[0]) == np.sign(diff)


def test_role_columns_follow_the_codebooks_renames_and_role_values_take_the_first_value():
    import pandas as pd

    from intervention_meta.effect_sizes.measures import INPUT_KINDS, role_columns, role_values

    declared = {"means_sds": {"n_int": "n_treat"}}
    every = role_columns(declared)
    assert "n_treat" in every["n_int"] and "n_int" in every["n_int"]  # t, f, p kinds keep it
    assert set(every) >= {r for kind in INPUT_KINDS.values() for r in kind.roles}
    assert role_columns(declared, every_kind=False) == {"n_int": ["n_treat"]}
    frame = pd.DataFrame({"n_treat": [10, None, None], "n_int": [99, 20, None]})
    values = role_values(frame, every, "n_int")
    assert values[2] != values[2]  # NaN where no column has a value
    first = [c for c in every["n_int"] if c in frame]
    expected = frame[first[0]].fillna(frame[first[1]]).to_numpy(dtype=float)
    assert values[:2].tolist() == expected[:2].tolist()
