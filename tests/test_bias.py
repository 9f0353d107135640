"""Tests for intervention_meta.methods.bias: publication-bias methods against metafor 3.8-1.

Sources of the expected numbers:

* ``tests/reference/<stem>.json`` (``R/public_reference.R``): metafor 3.8-1 ``regtest``,
  ``ranktest``, ``trimfill`` and ``fsn`` on five public data sets; each case stores its R call.
* ``tests/reference/extra/bias_reference.json`` (``extra/bias_reference.R``): further metafor
  3.8-1 calls (regtest variants, ``ranktest(exact=FALSE)``, R0/Q0 and forced-side trim and fill,
  fsn variants), ``aggregate.escalc`` on the three-level data sets, the three-level Egger-type
  ``rma.mv(yi, vi, mods = ~ sqrt(vi), random = ..., test="t")`` and R ``lm(yi ~ sqrt(vi),
  weights = 1/vi)`` / ``lm(yi ~ vi, weights = 1/vi)`` for PET-PEESE.

Tolerances: 1e-10 relative for closed forms (FE/DL fits, WLS, ranks, fail-safe N, aggregation),
1e-6 relative for anything downstream of an iterative estimate (REML/ML).
"""

from __future__ import annotations

import itertools
import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intervention_meta.methods import bias

REF = Path(__file__).parent / "reference"
PUBBIAS = ["bcg_rr", "normand1999_smd", "molloy2014_zcor", "bangertdrowns2004", "hackshaw1998"]
ML3 = {"assink2016": ["study", "esid"], "konstantopoulos2011": ["district", "school"]}
CLOSED = 1e-10
ITERATIVE = 1e-6

try:  # the model core is written in parallel; the model-based methods need it
    from intervention_meta.models import fit as _fit  # noqa: F401

    HAVE_MODELS = True
except ImportError:  # pragma: no cover - only while the model core has not landed
    HAVE_MODELS = False

needs_models = pytest.mark.skipif(
    not HAVE_MODELS,
    reason="intervention_meta.models (the model core) cannot be imported yet",
)


@cache
def _reference(stem: str) -> dict:
    return json.loads((REF / f"{stem}.json").read_text())["cases"]


@cache
def _extra(stem: str) -> dict:
    data = json.loads((REF / "extra" / "bias_reference.json").read_text())
    return data["datasets"][stem]["cases"]


@cache
def _data(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


def _rtol(method: str) -> float:
    return CLOSED if method.upper() in ("FE", "EE", "DL") else ITERATIVE


def _close(actual, expected, rtol: float, atol: float = 0.0) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol
    )


def _ni(stem: str) -> np.ndarray | None:
    d = _data(stem)
    if stem in ("molloy2014_zcor", "bangertdrowns2004"):
        return d["ni"].to_numpy(float)
    if stem == "normand1999_smd":
        return (d["n1i"] + d["n2i"]).to_numpy(float)
    return None


# ----------------------------------------------------------------------------------------------
# rank correlation test
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stem", PUBBIAS)
def test_ranktest_matches_metafor(stem):
    """metafor ``ranktest(rma(yi, vi, method="REML"))``: exact p unless ties (molloy2014 and
    bangertdrowns2004 have tied variances and get the normal approximation, as in R)."""
    d = _data(stem)
    exp = _reference(stem)["ranktest"]
    res = bias.ranktest(d["yi"], d["vi"])
    _close(res.tau, exp["results"]["tau"], CLOSED)
    _close(res.pval, exp["results"]["pval"], CLOSED)
    assert res.exact == ("warnings" not in exp)  # R warns "Cannot compute exact p-value with ties"


@pytest.mark.parametrize("stem", PUBBIAS)
def test_ranktest_normal_approximation_matches_metafor_exact_false(stem):
    """metafor ``ranktest(res, exact=FALSE)`` (extra/bias_reference.json)."""
    d = _data(stem)
    exp = _extra(stem)["ranktest_exact_false"]["results"]
    res = bias.ranktest(d["yi"], d["vi"], exact=False)
    assert not res.exact
    _close(res.tau, exp["tau"], CLOSED)
    _close(res.pval, exp["pval"], CLOSED)


@pytest.mark.parametrize("stem", ["bcg_rr", "normand1999_smd", "hackshaw1998"])
def test_ranktest_exact_p_matches_scipy_kendalltau_exact(stem):
    """Without ties the exact p equals scipy's ``kendalltau(method="exact")`` on the deviates."""
    d = _data(stem)
    y, v = d["yi"].to_numpy(), d["vi"].to_numpy()
    w = 1 / v
    ystar = (y - np.sum(w * y) / np.sum(w)) / np.sqrt(v - 1 / np.sum(w))
    expected = stats.kendalltau(ystar, v, method="exact").pvalue
    _close(bias.ranktest(y, v).pval, expected, CLOSED)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_inversions_cdf_matches_enumeration_of_permutations(n):
    """The null distribution of concordant pairs, by brute-force enumeration of all n! orders."""
    counts = np.zeros(n * (n - 1) // 2 + 1)
    for perm in itertools.permutations(range(n)):
        inv = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        counts[inv] += 1
    cdf = np.cumsum(counts) / math.factorial(n)
    for q in range(-1, n * (n - 1) // 2 + 2):
        expected = 0.0 if q < 0 else cdf[min(q, cdf.size - 1)]
        _close(bias._inversions_cdf(q, n), expected, 1e-12, atol=1e-15)


def test_ranktest_drops_missing_rows():
    """A row with a missing variance is omitted (metafor: "Studies with NAs omitted")."""
    d = _data("bcg_rr")
    y = np.append(d["yi"].to_numpy(), 0.3)
    v = np.append(d["vi"].to_numpy(), np.nan)
    exp = _reference("bcg_rr")["ranktest"]["results"]
    res = bias.ranktest(y, v)
    assert res.k == len(d)
    _close(res.pval, exp["pval"], CLOSED)


# ----------------------------------------------------------------------------------------------
# fail-safe N
# ----------------------------------------------------------------------------------------------
FSN_CASES = {
    "fsn_rosenthal": dict(type="Rosenthal"),
    "fsn_orwin": dict(type="Orwin"),
    "fsn_rosenberg": dict(type="Rosenberg"),
}
FSN_EXTRA = {
    "fsn_orwin_target": dict(type="Orwin", target=0.05),
    "fsn_orwin_weighted": dict(type="Orwin", weighted=True),
    "fsn_rosenthal_alpha01": dict(type="Rosenthal", alpha=0.01),
    "fsn_rosenberg_alpha01": dict(type="Rosenberg", alpha=0.01),
}


def _check_fsn(res: bias.FailSafeN, exp: dict) -> None:
    assert res.type == exp["type"]
    assert res.fsnum == exp["fsnum"]
    _close(res.alpha, exp["alpha"], 0)
    for key in ("pval", "meanes", "target"):
        got = getattr(res, key)
        if exp[key] is None:
            assert got is None, key
        else:
            _close(got, exp[key], CLOSED)


@pytest.mark.parametrize("stem", PUBBIAS)
@pytest.mark.parametrize("case", list(FSN_CASES))
def test_fsn_matches_metafor(stem, case):
    """metafor ``fsn(yi, vi, data=dat, type=...)`` (reference JSON)."""
    d = _data(stem)
    res = bias.fsn(d["yi"], d["vi"], **FSN_CASES[case])
    _check_fsn(res, _reference(stem)[case]["results"])


@pytest.mark.parametrize("stem", PUBBIAS)
@pytest.mark.parametrize("case", list(FSN_EXTRA))
def test_fsn_variants_match_metafor(stem, case):
    """metafor ``fsn()`` with a target, weighted Orwin and alpha = 0.01 (extra JSON)."""
    d = _data(stem)
    res = bias.fsn(d["yi"], d["vi"], **FSN_EXTRA[case])
    _check_fsn(res, _extra(stem)[case]["results"])


def test_fsn_orwin_zero_target_is_infinite_and_needs_no_variances():
    """metafor: ``target = 0`` gives ``fsnum = Inf``; unweighted Orwin does not use ``vi``."""
    y = _data("bcg_rr")["yi"]
    assert bias.fsn(y, type="Orwin", target=0).fsnum == math.inf
    exp = _reference("bcg_rr")["fsn_orwin"]["results"]
    assert bias.fsn(y, type="Orwin").fsnum == exp["fsnum"]
    with pytest.raises(ValueError, match="needs the sampling variances"):
        bias.fsn(y, type="Rosenthal")


# ----------------------------------------------------------------------------------------------
# classical Egger test and PET-PEESE (weighted least squares)
# ----------------------------------------------------------------------------------------------
def _check_regtest(res: bias.RegTest, exp: dict, rtol: float) -> None:
    assert res.model == exp["model"] and res.predictor == exp["predictor"]
    if "tval" in exp:
        assert res.stat_name == "tval"
        _close(res.statistic, exp["tval"], rtol)
        assert res.dfs == exp["dfs"]
    else:
        assert res.stat_name == "zval"
        assert res.dfs is None
        _close(res.statistic, exp["zval"], rtol)
    _close(res.pval, exp["pval"], rtol)
    for key in ("limit_estimate", "limit_ci_lb", "limit_ci_ub"):
        if exp[key] is None:
            assert getattr(res, key) is None, key
        else:
            _close(getattr(res, key), exp[key], rtol)


@pytest.mark.parametrize("stem", PUBBIAS)
def test_classical_egger_matches_metafor_regtest_lm(stem):
    """metafor ``regtest(rma(yi, vi, method="FE"), model="lm", predictor="sei")``."""
    d = _data(stem)
    res = bias.regtest(d["yi"], d["vi"], model="lm")
    _check_regtest(res, _reference(stem)["regtest_lm_sei"]["results"], CLOSED)


@pytest.mark.parametrize("stem", PUBBIAS)
def test_egger_lm_with_variance_predictor_matches_metafor(stem):
    """metafor ``regtest(res, model="lm", predictor="vi")`` (extra JSON)."""
    d = _data(stem)
    res = bias.regtest(d["yi"], d["vi"], model="lm", predictor="vi")
    _check_regtest(res, _extra(stem)["regtest_lm_vi"]["results"], CLOSED)


@pytest.mark.parametrize("stem", ["normand1999_smd", "molloy2014_zcor", "bangertdrowns2004"])
def test_egger_lm_with_inverse_sample_size_matches_metafor(stem):
    """metafor ``regtest(rma(yi, vi, ni=..., method="FE"), model="lm", predictor="ninv")``."""
    d = _data(stem)
    res = bias.regtest(d["yi"], d["vi"], model="lm", predictor="ninv", ni=_ni(stem))
    _check_regtest(res, _extra(stem)["regtest_lm_ninv"]["results"], CLOSED)


def _check_wls(fitted: bias.WlsFit, exp: dict) -> None:
    for key in ("b", "se", "tval", "pval", "ci_lb", "ci_ub"):
        _close(getattr(fitted, key), exp[key], CLOSED)
    assert fitted.df == exp["df"]
    _close(fitted.sigma, exp["sigma"], CLOSED)
    _close(fitted.pval_one_sided(0, "greater"), exp["pval_greater"][0], CLOSED)
    _close(fitted.pval_one_sided(0, "less"), exp["pval_less"][0], CLOSED)


@pytest.mark.parametrize("stem", PUBBIAS)
def test_pet_and_peese_match_r_weighted_lm(stem):
    """R ``lm(yi ~ sqrt(vi), weights = 1/vi)`` (PET) and ``lm(yi ~ vi, weights = 1/vi)`` (PEESE):
    coefficients, SEs, t and p, 95% confint, df, sigma and one-sided p (extra JSON)."""
    d = _data(stem)
    res = bias.pet_peese(d["yi"], d["vi"])
    _check_wls(res.pet, _extra(stem)["pet_lm"]["results"])
    _check_wls(res.peese, _extra(stem)["peese_lm"]["results"])


@pytest.mark.parametrize("stem", PUBBIAS)
def test_pet_peese_picks_pet_when_its_one_sided_test_is_not_significant(stem):
    """Stanley & Doucouliagos (2014): PEESE only if PET's intercept is significant (one-sided,
    5%) in the direction of the effect (here: the sign of the fixed-effect mean). In none of the
    five data sets is it (one-sided p from R ``pt()``, extra JSON), so PET is reported."""
    d = _data(stem)
    exp = _extra(stem)["pet_lm"]["results"]
    y, v = d["yi"].to_numpy(), d["vi"].to_numpy()
    direction = "less" if np.sum(y / v) < 0 else "greater"
    expected_p = exp["pval_less" if direction == "less" else "pval_greater"][0]
    res = bias.pet_peese(y, v)
    assert res.alternative == direction
    _close(res.pet_pval_one_sided, expected_p, CLOSED)
    assert expected_p >= 0.05 and res.chosen == "PET"
    _close(res.estimate, exp["b"][0], CLOSED)
    _close([res.ci_lb, res.ci_ub], [exp["ci_lb"][0], exp["ci_ub"][0]], CLOSED)


def test_pet_peese_picks_peese_when_pet_intercept_is_significant():
    """A genuine effect (all effects near 0.5, no small-study pattern) makes PET's intercept
    significant, so the PEESE intercept is reported (the PET-PEESE rule itself)."""
    rng = np.random.default_rng(20240501)
    v = rng.uniform(0.01, 0.1, size=30)
    y = 0.5 + rng.normal(0, np.sqrt(v))
    res = bias.pet_peese(y, v)
    assert res.alternative == "greater"
    assert res.pet_pval_one_sided < 0.05
    assert res.chosen == "PEESE"
    assert res.estimate == res.peese.b[0]
    forced = bias.pet_peese(y, v, alternative="less")
    assert forced.chosen == "PET" and forced.estimate == forced.pet.b[0]


def test_pet_peese_frames_and_dicts_have_both_models():
    d = _data("hackshaw1998")
    res = bias.pet_peese(d["yi"], d["vi"])
    frame = res.to_frame()
    assert list(frame["model"]) == ["PET", "PET", "PEESE", "PEESE"]
    assert list(frame["term"]) == ["intrcpt", "sei", "intrcpt", "vi"]
    assert frame["chosen"].tolist() == [True, True, False, False]
    out = res.to_dict()
    json.dumps(out)
    assert out["chosen"] == "PET" and out["pet"]["df"] == len(d) - 2


# ----------------------------------------------------------------------------------------------
# aggregation to one effect per study
# ----------------------------------------------------------------------------------------------
AGG_CASES = {
    "aggregate_rho06": 0.6,
    "aggregate_rho0": 0.0,
    "aggregate_rho02": 0.2,
    "aggregate_rho09": 0.9,
}


@pytest.mark.parametrize("stem", list(ML3))
@pytest.mark.parametrize("case", list(AGG_CASES))
def test_aggregate_by_study_matches_metafor_aggregate_escalc(stem, case):
    """metafor ``aggregate(escalc(measure="GEN", yi=yi, vi=vi, data=dat), cluster=<study>,
    rho=<rho>)`` (struct "CS"), extra JSON."""
    d = _data(stem)
    study = ML3[stem][0]
    exp = _extra(stem)[case]["results"]
    res = bias.aggregate_by_study(d, study, rho=AGG_CASES[case])
    assert list(res.study) == exp["cluster"]
    assert res.ki.tolist() == exp["ki"]
    _close(res.yi, exp["yi"], CLOSED)
    _close(res.vi, exp["vi"], CLOSED)
    frame = res.to_frame()
    assert list(frame.columns) == [study, "yi", "vi", "ki"]


@pytest.mark.parametrize("stem", list(ML3))
def test_aggregate_by_study_keeps_order_of_first_appearance(stem):
    """metafor on the rows in reverse order: clusters come out in order of first appearance."""
    d = _data(stem).iloc[::-1]
    exp = _extra(stem)["aggregate_rev_rho06"]["results"]
    res = bias.aggregate_by_study(d, ML3[stem][0], rho=0.6)
    assert list(res.study) == exp["cluster"]
    _close(res.yi, exp["yi"], CLOSED)
    _close(res.vi, exp["vi"], CLOSED)


def test_aggregate_by_study_with_rho_zero_is_the_inverse_variance_mean():
    """rho = 0: sum(y/v)/sum(1/v) and 1/sum(1/v) per study (hand formula)."""
    d = pd.DataFrame({"s": ["a", "a", "b"], "yi": [0.2, 0.6, 1.0], "vi": [0.1, 0.3, 0.2]})
    res = bias.aggregate_by_study(d, "s", rho=0.0)
    w = np.array([10.0, 1 / 0.3])
    _close(res.yi, [np.sum(w * [0.2, 0.6]) / w.sum(), 1.0], 1e-14)
    _close(res.vi, [1 / w.sum(), 0.2], 1e-14)


def test_aggregate_by_study_unweighted_uses_the_plain_mean():
    """weighted=False (metafor ``weighted=FALSE``): mean of y, sum(V)/k^2."""
    d = pd.DataFrame({"s": [1, 1], "yi": [0.2, 0.6], "vi": [0.1, 0.3]})
    res = bias.aggregate_by_study(d, "s", rho=0.5, weighted=False)
    _close(res.yi, [0.4], 1e-14)
    _close(res.vi, [(0.1 + 0.3 + 2 * 0.5 * math.sqrt(0.03)) / 4], 1e-14)


def test_aggregate_by_study_refuses_a_singular_covariance():
    """rho = 1 makes a study's covariance singular: metafor stops, so do we."""
    d = pd.DataFrame({"s": [1, 1], "yi": [0.2, 0.6], "vi": [0.1, 0.1]})
    with pytest.raises(ValueError, match="not positive definite"):
        bias.aggregate_by_study(d, "s", rho=1.0)


# ----------------------------------------------------------------------------------------------
# funnel plot data
# ----------------------------------------------------------------------------------------------
def test_funnel_contours_are_estimate_plus_minus_normal_quantile_times_se():
    """The 95% contour at se is estimate +- qnorm(0.975) * se; qnorm(0.975) = 1.9599639845400536
    (R), 0.95 -> 1.6448536269514715, 0.995 -> 2.5758293035488999."""
    d = _data("bcg_rr")
    res = bias.funnel_data(d["yi"], d["vi"], estimate=-0.7)
    smax = np.sqrt(d["vi"]).max()
    for level, z in [
        (0.90, 1.6448536269514715),
        (0.95, 1.9599639845400536),
        (0.99, 2.5758293035488999),
    ]:
        c = res.contours[res.contours["level"] == level]
        assert c["sei"].iloc[0] == 0 and c["sei"].iloc[-1] == pytest.approx(smax, rel=1e-15)
        _close(c["upper"], -0.7 + z * c["sei"], 1e-14, atol=1e-14)  # crosses 0
        _close(c["lower"], -0.7 - z * c["sei"], 1e-14, atol=1e-14)
    _close(res.points["sei"], np.sqrt(d["vi"]), 1e-15)
    assert set(res.to_frame()["kind"]) == {"point", "contour"}
    json.dumps(res.to_dict())


# ----------------------------------------------------------------------------------------------
# regression tests in the meta-analytic model (need the model core)
# ----------------------------------------------------------------------------------------------
REGTEST_RMA = {
    "regtest_rma_sei_reml": dict(method="REML"),
    "regtest_rma_sei_fe": dict(method="FE"),
}
REGTEST_RMA_EXTRA = {
    "regtest_rma_vi_reml": dict(method="REML", predictor="vi"),
    "regtest_rma_sei_reml_knha": dict(method="REML", test="knha"),
    "regtest_rma_sei_dl": dict(method="DL"),
}


@needs_models
@pytest.mark.parametrize("stem", PUBBIAS)
@pytest.mark.parametrize("case", list(REGTEST_RMA))
def test_egger_meta_regression_matches_metafor_regtest_rma(stem, case):
    """metafor ``regtest(rma(yi, vi, method=...), model="rma", predictor="sei")``."""
    d = _data(stem)
    kw = REGTEST_RMA[case]
    res = bias.regtest(d["yi"], d["vi"], model="rma", **kw)
    _check_regtest(res, _reference(stem)[case]["results"], _rtol(kw["method"]))


@needs_models
@pytest.mark.parametrize("stem", PUBBIAS)
@pytest.mark.parametrize("case", list(REGTEST_RMA_EXTRA))
def test_egger_meta_regression_variants_match_metafor(stem, case):
    """metafor ``regtest()`` with predictor "vi", test "knha", method "DL" (extra JSON)."""
    d = _data(stem)
    kw = REGTEST_RMA_EXTRA[case]
    res = bias.regtest(d["yi"], d["vi"], model="rma", **kw)
    _check_regtest(res, _extra(stem)[case]["results"], _rtol(kw["method"]))


@needs_models
@pytest.mark.parametrize("stem", ["normand1999_smd", "molloy2014_zcor", "bangertdrowns2004"])
@pytest.mark.parametrize("predictor", ["ni", "ninv", "sqrtni", "sqrtninv"])
def test_egger_meta_regression_on_sample_size_matches_metafor(stem, predictor):
    """metafor ``regtest(rma(yi, vi, ni=..., method="REML"), predictor=...)``: no limit
    estimate for ``ni``/``sqrtni`` (extra JSON)."""
    d = _data(stem)
    res = bias.regtest(d["yi"], d["vi"], predictor=predictor, ni=_ni(stem))
    _check_regtest(res, _extra(stem)[f"regtest_rma_{predictor}_reml"]["results"], ITERATIVE)


# ----------------------------------------------------------------------------------------------
# trim and fill (needs the model core)
# ----------------------------------------------------------------------------------------------
TRIMFILL = {"trimfill_reml": dict(method="REML"), "trimfill_fe": dict(method="FE")}
TRIMFILL_EXTRA = {
    "trimfill_reml_r0": dict(method="REML", estimator="R0"),
    "trimfill_fe_r0": dict(method="FE", estimator="R0"),
    "trimfill_reml_q0": dict(method="REML", estimator="Q0"),
    "trimfill_fe_q0": dict(method="FE", estimator="Q0"),
    "trimfill_reml_side_left": dict(method="REML", side="left"),
    "trimfill_reml_side_right": dict(method="REML", side="right"),
    "trimfill_dl": dict(method="DL"),
}


def _check_trimfill(res: bias.TrimFill, exp: dict, rtol: float) -> None:
    assert res.k0 == exp["k0"]
    assert res.side == exp["side"]
    assert res.estimator == exp["k0_estimator"]
    assert res.k == exp["k"]
    _close(res.se_k0, exp["se_k0"], CLOSED)  # a function of integer rank sums and k0
    if exp.get("p_k0") is None:
        assert res.p_k0 is None
    else:
        _close(res.p_k0, exp["p_k0"], CLOSED)
    assert res.fill.tolist() == exp["fill"]
    _close(res.yi, exp["yi"], rtol)
    _close(res.vi, exp["vi"], CLOSED)
    for ours, theirs in [
        ("estimate", "b"),
        ("se", "se"),
        ("zval", "zval"),
        ("pval", "pval"),
        ("ci_lb", "ci_lb"),
        ("ci_ub", "ci_ub"),
    ]:
        _close(getattr(res, ours), exp[theirs][0], rtol)
    _close(res.tau2, exp["tau2"], rtol, atol=1e-12)
    _close(res.qe, exp["qe"], rtol)
    _close(res.qep, exp["qep"], rtol)


@needs_models
@pytest.mark.parametrize("stem", PUBBIAS)
@pytest.mark.parametrize("case", list(TRIMFILL))
def test_trimfill_matches_metafor(stem, case):
    """metafor ``trimfill(rma(yi, vi, method=...))``: side, k0 (L0), se(k0), the augmented data
    and the filled-in model (reference JSON)."""
    d = _data(stem)
    kw = TRIMFILL[case]
    res = bias.trimfill(d["yi"], d["vi"], **kw)
    _check_trimfill(res, _reference(stem)[case]["results"], _rtol(kw["method"]))


@needs_models
@pytest.mark.parametrize("stem", PUBBIAS)
@pytest.mark.parametrize("case", list(TRIMFILL_EXTRA))
def test_trimfill_variants_match_metafor(stem, case):
    """metafor ``trimfill()`` with the R0 / Q0 estimators, a forced side and DL (extra JSON)."""
    d = _data(stem)
    kw = TRIMFILL_EXTRA[case]
    res = bias.trimfill(d["yi"], d["vi"], **kw)
    _check_trimfill(res, _extra(stem)[case]["results"], _rtol(kw["method"]))


@needs_models
def test_trimfill_results_serialise():
    d = _data("bcg_rr")
    res = bias.trimfill(d["yi"], d["vi"], method="FE")
    json.dumps(res.to_dict())
    assert len(res.to_frame()) == 1
    filled = res.filled_data()
    assert filled["fill"].sum() == res.k0 and len(filled) == res.k


# ----------------------------------------------------------------------------------------------
# three-level Egger-type test (needs the model core)
# ----------------------------------------------------------------------------------------------
ML3_EGGER = {
    "ml3_egger_sei_reml_t": dict(predictor="sei", method="REML", test="t"),
    "ml3_egger_sei_reml_z": dict(predictor="sei", method="REML", test="z"),
    "ml3_egger_vi_reml_t": dict(predictor="vi", method="REML", test="t"),
    "ml3_egger_sei_ml_t": dict(predictor="sei", method="ML", test="t"),
}


@needs_models
@pytest.mark.parametrize("stem", list(ML3))
@pytest.mark.parametrize("case", list(ML3_EGGER))
def test_multilevel_egger_test_matches_metafor_rma_mv(stem, case):
    """metafor ``rma.mv(yi, vi, mods = ~ sqrt(vi), random = ~ 1 | outer/inner, data=dat,
    test="t")`` and variants (extra JSON): the slope's test and the intercept with its CI."""
    d = _data(stem)
    kw = ML3_EGGER[case]
    exp = _extra(stem)[case]["results"]
    res = bias.regtest_multilevel(d, "yi", "vi", random=ML3[stem], **kw)
    stat = exp["tval"] if kw["test"] == "t" else exp["zval"]
    assert res.model == "rma.mv" and res.k == exp["k"]
    _close(res.statistic, stat[1], ITERATIVE)
    _close(res.pval, exp["pval"][1], ITERATIVE)
    _close([res.slope, res.slope_se], [exp["b"][1], exp["se"][1]], ITERATIVE)
    _close(res.limit_estimate, exp["b"][0], ITERATIVE)
    _close(res.limit_se, exp["se"][0], ITERATIVE)
    _close([res.limit_ci_lb, res.limit_ci_ub], [exp["ci_lb"][0], exp["ci_ub"][0]], ITERATIVE)
    if kw["test"] == "t":
        assert res.dfs == exp["dfs"][1]
    else:
        assert res.dfs is None
    outer, inner = ML3[stem]
    _close([res.sigma2[outer], res.sigma2[inner]], exp["sigma2"], ITERATIVE)
    row = res.to_frame()
    assert len(row) == 1 and all(f"sigma2_{c}" in row.columns for c in ML3[stem])
