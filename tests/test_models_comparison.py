"""Model comparison: likelihood-ratio tests of nested fits and information-criterion tables.

Expected values:
* ``tests/reference/extra/models_comparison_reference.json`` (made by
  ``models_comparison_reference.R``; R 4.2.2, metafor 3.8-1): ``anova(full, reduced)`` and
  ``fitstats(full, reduced)``, the exact R call stored with each case;
* ``tests/reference/<stem>.json`` ``ml3_lrt_*`` cases (``anova`` of a REML fit against the fit
  with one variance component fixed at 0).
Akaike weights are checked against their definition computed from metafor's AICs.
Tolerance 1e-6 relative (quantities downstream of ML/REML estimates).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models import ModelError, fit
from intervention_meta.models.comparison import AICTable, ModelComparison, aic_table, compare

REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "extra" / "models_comparison_reference.json").read_text())["cases"]
RTOL = 1e-6
FS = {"loglik": "logLik", "deviance": "deviance", "aic": "AIC", "bic": "BIC", "aicc": "AICc"}
ML3 = ["study", "esid"]


@cache
def _data(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


@cache
def _ml3(mods: tuple = (), method: str = "ML", sigma2_fixed: tuple | None = None):
    return fit(
        _data("assink2016"),
        mods=list(mods),
        random=ML3,
        method=method,
        sigma2_fixed=list(sigma2_fixed) if sigma2_fixed else None,
    )


def _check(cmp: ModelComparison, r: dict) -> None:
    np.testing.assert_allclose(cmp.lrt, r["lrt"], rtol=RTOL)
    np.testing.assert_allclose(cmp.pval, r["pval"], rtol=RTOL)
    assert (cmp.df, cmp.parms_full, cmp.parms_reduced) == (
        r["df"],
        r["parms_full"],
        r["parms_reduced"],
    )
    for which in ("full", "reduced"):
        ours = getattr(cmp, f"fit_stats_{which}")
        for key, val in r[f"fit_stats_{which}"].items():
            np.testing.assert_allclose(ours[FS[key]], val, rtol=RTOL, err_msg=f"{which} {key}")
        np.testing.assert_allclose(getattr(cmp, f"QE_{which}"), r[f"qe_{which}"], rtol=RTOL)


@pytest.mark.parametrize(
    ("case", "full", "reduced"),
    [
        ("assink2016__ml_deltype_vs_intercept", ("deltype",), ()),
        ("assink2016__ml_deltype_year_vs_deltype", ("deltype", "year"), ("deltype",)),
    ],
)
def test_ml_lrt_of_moderators_matches_metafor_anova(case: str, full: tuple, reduced: tuple) -> None:
    cmp = compare(_ml3(full), _ml3(reduced))
    _check(cmp, CASES[case]["results"])
    assert cmp.criterion == "ML" and cmp.R2 is None and cmp.tau2_full is None


def test_arguments_in_either_order_give_the_same_test() -> None:
    """anova(reduced, full) = anova(full, reduced); source: ..._reversed case."""
    cmp = compare(_ml3(), _ml3(("deltype",)), names=("intercept", "deltype"))
    _check(cmp, CASES["assink2016__ml_deltype_vs_intercept_reversed"]["results"])
    assert cmp.names == ("deltype", "intercept")


def test_reml_lrt_of_a_variance_component_matches_metafor_anova() -> None:
    full = _ml3(("deltype",), "REML")
    reduced = _ml3(("deltype",), "REML", (None, 0.0))
    _check(compare(full, reduced), CASES["assink2016__reml_level2_zero"]["results"])


@pytest.mark.parametrize("stem", ["assink2016", "konstantopoulos2011"])
@pytest.mark.parametrize("case", ["ml3_lrt_level3_between", "ml3_lrt_level2_within"])
def test_compare_matches_the_shared_level_lrt_cases(stem: str, case: str) -> None:
    """Source: tests/reference/<stem>.json, ml3_lrt_* (anova of REML fits, sigma2 = c(0, NA))."""
    r = json.loads((REF / f"{stem}.json").read_text())["cases"][case]["results"]
    random = ML3 if stem == "assink2016" else ["district", "school"]
    fixed = [0.0, None] if case.endswith("between") else [None, 0.0]
    full = fit(_data(stem), random=random)
    reduced = fit(_data(stem), random=random, sigma2_fixed=fixed)
    cmp = compare(full, reduced)
    np.testing.assert_allclose(cmp.lrt, r["lrt"], rtol=RTOL)
    np.testing.assert_allclose(cmp.pval, r["pval"], rtol=RTOL)
    assert cmp.df == r["df"] and cmp.parms_reduced == r["parms_reduced"]


def test_one_level_ml_lrt_with_pseudo_r2_matches_metafor_anova() -> None:
    bcg = _data("bcg_rr")
    cmp = compare(fit(bcg, mods=["ablat"], method="ML"), fit(bcg, method="ML"))
    r = CASES["bcg_rr__ml_ablat_vs_intercept"]["results"]
    _check(cmp, r)
    np.testing.assert_allclose(
        [cmp.tau2_full, cmp.tau2_reduced], [r["tau2_full"], r["tau2_reduced"]], rtol=1e-5
    )
    np.testing.assert_allclose(cmp.R2, r["r2"], rtol=1e-5)


def test_reml_fits_with_different_fixed_effects_are_refused() -> None:
    """metafor warns (stored in ..._warns) and computes an LRT that is not meaningful; we refuse."""
    assert (
        "REML comparisons not meaningful"
        in CASES["assink2016__reml_deltype_vs_intercept_warns"]["warnings"][0]
    )
    with pytest.raises(ModelError, match="REML likelihoods of models with different fixed"):
        compare(_ml3(("deltype",), "REML"), _ml3((), "REML"))


def test_invalid_pairs_are_refused() -> None:
    with pytest.raises(ModelError, match="ML and REML"):
        compare(_ml3(("deltype",), "ML"), _ml3((), "REML"))
    with pytest.raises(ModelError, match="same number of parameters"):
        compare(_ml3(("year",)), _ml3(("pubstatus",)))
    with pytest.raises(ModelError, match="same effect sizes"):
        compare(_ml3(("deltype",)), fit(_data("assink2016").iloc[:90], random=ML3, method="ML"))
    with pytest.raises(ModelError, match="not nested"):
        compare(_ml3(("deltype", "year")), _ml3(("pubstatus",)))
    bcg = _data("bcg_rr")
    with pytest.raises(ModelError, match="ML or REML"):
        compare(fit(bcg, mods=["ablat"], method="DL"), fit(bcg, method="DL"))


def test_aic_table_matches_metafor_fitstats_and_weights_follow_their_definition() -> None:
    r = CASES["assink2016__ml_deltype_year_vs_deltype"]["results"]
    table = aic_table(_ml3(("deltype", "year")), _ml3(("deltype",)), names=["full", "reduced"])
    assert isinstance(table, AICTable)
    for i, name in enumerate(r["fitstats_models"]):
        for key, val in r["fitstats"][name].items():
            np.testing.assert_allclose(getattr(table, FS[key])[i], val, rtol=RTOL, err_msg=key)
    aic = np.array([r["fitstats"][n]["aic"] for n in r["fitstats_models"]])
    rel = np.exp(-0.5 * (aic - aic.min()))  # Burnham & Anderson (2002), eq. 2.14 / Akaike weights
    np.testing.assert_allclose(table.weight, rel / rel.sum(), rtol=RTOL)
    np.testing.assert_allclose(table.delta, aic - aic.min(), rtol=RTOL, atol=1e-9)
    assert table.best == "full" and table.parms.tolist() == [6, 5]
    frame = table.to_frame()
    assert list(frame.columns) == [
        "logLik", "deviance", "parms", "AIC", "BIC", "AICc", "delta_AIC", "weight"
    ]  # fmt: skip
    json.dumps(table.to_dict(), allow_nan=False)
    by_bic = aic_table(_ml3(("deltype", "year")), _ml3(("deltype",)), _ml3(), criterion="BIC")
    assert by_bic.names == ("model1", "model2", "model3") and by_bic.ranked_by == "BIC"
    np.testing.assert_allclose(by_bic.weight.sum(), 1.0, rtol=1e-12)


def test_aic_table_refuses_incomparable_fits() -> None:
    with pytest.raises(ModelError, match="REML fits with different fixed effects"):
        aic_table(_ml3(("deltype",), "REML"), _ml3((), "REML"))
    with pytest.raises(ModelError, match="at least two"):
        aic_table(_ml3())
    # REML fits with the same fixed effects but different random parts are fine
    t = aic_table(_ml3((), "REML"), _ml3((), "REML", (None, 0.0)))
    assert t.criterion == "REML" and t.best == "model1"


def test_comparison_to_frame_and_dict() -> None:
    cmp = compare(_ml3(("deltype",)), _ml3())
    frame = cmp.to_frame()
    assert list(frame.index) == ["full", "reduced"]
    assert np.isnan(frame.loc["full", "LRT"]) and frame.loc["reduced", "LRT"] == cmp.lrt
    json.dumps(cmp.to_dict(), allow_nan=False)
