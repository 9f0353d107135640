"""``MetaResult.robust()``: the fitted working model with CR2 inference in one call.

Expected values (R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8; the R call is stored with each case):
* ``tests/reference/extra/che_cr2_reference.json`` (``che_cr2_reference.R``): CHE working model
  ``V <- impute_covariance_matrix(vi, cluster=study, r=rho); rma.mv(yi, V, random=~1|study/esid)``
  with ``coef_test``/``conf_int``/``vcovCR`` (CR2) and ``Wald_test(..., test="HTZ")``;
* ``tests/reference/assink2016.json`` / ``konstantopoulos2011.json`` ``*_cr2`` and
  ``*_wald_htz_*`` cases (independent sampling errors).
Tolerance 1e-6 relative for our own fits (downstream of REML components). At metafor's own
variance components (fixed) the sandwich must agree to 1e-10: that separates the CR2 arithmetic from
metafor's optimiser stopping ~6e-7 short for rho = 0.8 (see test_models_che.py).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models import ModelError, fit
from intervention_meta.models.robust import RobustResult

REF = Path(__file__).parent / "reference"
CHE = json.loads((REF / "extra" / "che_cr2_reference.json").read_text())["cases"]
ASSINK = pd.read_csv(REF / "assink2016.csv")
RTOL = 1e-6


@cache
def _shared(stem: str) -> dict:
    return json.loads((REF / f"{stem}.json").read_text())["cases"]


def _che_args(tag: str) -> dict:
    call = CHE[f"{tag}_reml"]["call"]
    rho = float(re.search(r"r=([\d.]+)", call).group(1))
    m = re.search(r"mods = ~ ([^,)]+)", call)
    mods = [t.strip() for t in m.group(1).split("+")] if m else None
    return {"rho": rho, "mods": mods, "random": ["study", "esid"], "method": "REML"}


def _check(rob: RobustResult, ref: dict, rtol: float) -> None:
    ct, ci = ref["coef_test"], ref["conf_int"]
    assert list(rob.coef_names) == ct["coef"]
    np.testing.assert_allclose(rob.b, ct["beta"], rtol=rtol)
    np.testing.assert_allclose(rob.vcov, ref["vcov_cr2"], rtol=rtol)
    np.testing.assert_allclose(rob.se, ct["se"], rtol=rtol)
    np.testing.assert_allclose(rob.tval, ct["tstat"], rtol=rtol)
    np.testing.assert_allclose(rob.df, ct["df_satt"], rtol=rtol)
    np.testing.assert_allclose(rob.pval, ct["p_satt"], rtol=rtol)
    np.testing.assert_allclose(rob.ci_lb, ci["ci_l"], rtol=rtol)
    np.testing.assert_allclose(rob.ci_ub, ci["ci_u"], rtol=rtol)


CHE_TAGS = ["che_r06", "che_r02", "che_r08", "che_r06_mods_deltype_year"]


@pytest.mark.parametrize("tag", CHE_TAGS)
def test_che_working_model_with_cr2_matches_clubsandwich(tag: str) -> None:
    rob = fit(ASSINK, **_che_args(tag)).robust()
    _check(rob, CHE[f"{tag}_reml_cr2"]["results"], RTOL)
    assert rob.type == "CR2" and rob.cluster == "study" and rob.n_clusters == 17


@pytest.mark.parametrize("tag", CHE_TAGS)
def test_cr2_at_metafor_components_matches_clubsandwich_to_1e10(tag: str) -> None:
    sigma2 = CHE[f"{tag}_reml"]["results"]["sigma2"]
    rob = fit(ASSINK, **_che_args(tag), sigma2_fixed=sigma2).robust()
    _check(rob, CHE[f"{tag}_reml_cr2"]["results"], 1e-10)


def test_che_htz_wald_matches_clubsandwich() -> None:
    """Wald_test(res, constrain_zero(2:3), vcov="CR2", test="HTZ") on the CHE moderator model."""
    ref = CHE["che_r06_mods_deltype_year_reml_wald_htz_deltype"]["results"]
    rob = fit(ASSINK, **_che_args("che_r06_mods_deltype_year")).robust()
    for btt in (["deltypegeneral", "deltypeovert"], [1, 2]):
        w = rob.wald(btt)
        assert w.test == "HTZ" and w.df_num == ref["df_num"]
        for key in ("fstat", "delta", "df_denom", "p_val"):
            np.testing.assert_allclose(getattr(w, key), ref[key], rtol=RTOL, err_msg=key)


SHARED = [
    ("assink2016", "ml3_reml", None, ["study", "esid"]),
    ("assink2016", "ml3_mods_deltype_year_reml", ["deltype", "year"], ["study", "esid"]),
    ("assink2016", "ml3_mods_pubstatus_reml", ["pubstatus"], ["study", "esid"]),
    ("konstantopoulos2011", "ml3_reml", None, ["district", "school"]),
    ("konstantopoulos2011", "ml3_mods_year_reml", ["year"], ["district", "school"]),
]


@pytest.mark.parametrize(("stem", "case", "mods", "random"), SHARED)
def test_three_level_cr2_matches_the_shared_clubsandwich_cases(stem, case, mods, random) -> None:
    df = pd.read_csv(REF / f"{stem}.csv")
    rob = fit(df, mods=mods, random=random).robust()
    _check(rob, _shared(stem)[f"{case}_cr2"]["results"], RTOL)


@pytest.mark.parametrize(("suffix", "btt"), [("deltype", [1, 2]), ("all", [1, 2, 3])])
def test_three_level_htz_wald_matches_the_shared_case(suffix: str, btt: list) -> None:
    ref = _shared("assink2016")[f"ml3_mods_deltype_year_reml_wald_htz_{suffix}"]["results"]
    rob = fit(ASSINK, mods=["deltype", "year"], random=["study", "esid"]).robust()
    w = rob.wald(btt)
    for key in ("fstat", "delta", "df_denom", "p_val"):
        np.testing.assert_allclose(getattr(w, key), ref[key], rtol=RTOL, err_msg=key)


def test_contrast_matrix_and_other_sandwich_types() -> None:
    """A contrast matrix equals the test by names; CR1 = CR0 * J/(J-1) (definition)."""
    res = fit(ASSINK, mods=["deltype", "year"], random=["study", "esid"])
    rob = res.robust()
    C = np.zeros((2, 4))
    C[0, 1] = C[1, 2] = 1.0
    np.testing.assert_allclose(
        rob.wald(C).fstat, rob.wald(["deltypegeneral", "deltypeovert"]).fstat
    )
    cr0, cr1 = res.robust(type="CR0"), res.robust(type="CR1")
    np.testing.assert_allclose(cr1.vcov, cr0.vcov * 17 / 16, rtol=1e-12)


def test_table_dict_level_and_cluster_column() -> None:
    res = fit(ASSINK, mods=["deltype"], random=["study", "esid"], rho=0.6)
    rob = res.robust(level=0.9)
    frame = rob.to_frame()
    assert list(frame.columns) == ["estimate", "se", "tval", "df", "pval", "ci_lb", "ci_ub"]
    assert list(frame.index) == list(res.coef_names)
    json.dumps(rob.to_dict(), allow_nan=False)
    wide = res.robust()
    assert np.all(rob.ci_ub - rob.ci_lb < wide.ci_ub - wide.ci_lb)
    # clustering by a coarser grouping of studies than the outermost level
    df = ASSINK.assign(grp=(ASSINK["study"] - 1) // 2)
    by_grp = fit(df, mods=["deltype"], random=["study", "esid"], rho=0.6).robust(cluster="grp")
    assert by_grp.cluster == "grp" and by_grp.n_clusters == 9
    with pytest.raises(ModelError, match="type"):
        res.robust(type="CR3")
    with pytest.raises(ModelError, match="not in the data"):
        res.robust(cluster="nope")
