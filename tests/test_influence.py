"""Tests for intervention_meta.methods.influence: case- and cluster-deletion diagnostics against
metafor.

Sources of the expected numbers:

* ``tests/reference/<stem>.json`` (``R/public_reference.R``), case ``influence_reml``: metafor
  3.8-1 ``influence(rma(yi, vi, data=dat, method="REML"))`` on five public data sets.
* ``tests/reference/extra/sensitivity_reference.json`` (``extra/sensitivity_reference.R``):
  metafor 3.8-1 ``cooks.distance(res, cluster=)``, ``dfbetas(res, cluster=)``, ``hatvalues(res)``,
  ``rstudent(res)`` and ``rstudent(res, cluster=)`` for ``res <- rma.mv(yi, vi, random = ~ 1 |
  study/esid, test = "t")`` on assink2016 (also with ``mods = ~ deltype``) and ``~ 1 |
  district/school`` on konstantopoulos2011. The comparison target is the case
  ``influence_reml_t_polished``: metafor's definitions with every refit's variance components
  polished to the REML optimum, because metafor's derivative-free optimiser stops up to 1e-6
  (relative) short of it, which a difference of two coefficient vectors (Cook's distance, DFBETAS)
  magnifies to up to 7e-5; the raw metafor output is stored beside it.

Tolerances: 1e-6 relative (iterative REML refits), 1e-10 for closed forms.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.methods.influence import (
    ModelCall,
    cluster_influence,
    deleted_residuals,
    hat_values,
    influence_one_level,
    refit_without,
)
from intervention_meta.models import fit

REF = Path(__file__).parent / "reference"
ONE_LEVEL = ["bcg_rr", "normand1999_smd", "molloy2014_zcor", "bangertdrowns2004", "hackshaw1998"]
ITERATIVE = 1e-6
CLOSED = 1e-10

# (data set, random levels, moderators, case suffix)
ML3_CASES = [
    ("assink2016", ("study", "esid"), (), ""),
    ("konstantopoulos2011", ("district", "school"), (), ""),
    ("assink2016", ("study", "esid"), ("deltype",), "_mods_deltype"),
]


@cache
def _data(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


@cache
def _sens_ref() -> dict:
    return json.loads((REF / "extra" / "sensitivity_reference.json").read_text())["datasets"]


def _close(actual, expected, rtol: float) -> None:
    a = np.asarray(actual, dtype=float)
    e = np.asarray(
        [np.nan if v is None else v for v in np.ravel(np.asarray(expected, dtype=object))],
        dtype=float,
    ).reshape(a.shape)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
    np.testing.assert_allclose(a[~np.isnan(a)], e[~np.isnan(e)], rtol=rtol, atol=0)


# --------------------------------------------------------------------------- one level
@pytest.mark.parametrize("stem", ONE_LEVEL)
def test_one_level_influence_matches_metafor_influence_reml(stem):
    # expected: <stem>.json case influence_reml = metafor influence(rma(yi, vi, method="REML"))
    ref = json.loads((REF / f"{stem}.json").read_text())["cases"]["influence_reml"]["results"]
    inf = influence_one_level(_data(stem), ModelCall(method="REML"))
    for key in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "dfbetas"):
        _close(getattr(inf, key), ref[key], ITERATIVE)
    # hat values and weights depend only on the full fit's tau2
    _close(inf.hat, ref["hat"], ITERATIVE)
    _close(inf.weight, ref["weight"], ITERATIVE)
    assert inf.is_infl.tolist() == ref["is_infl"]
    assert list(inf.coef_names) == ref["dfbetas_columns"]


def test_one_level_influence_flags_the_study_metafor_marks_influential():
    # bangertdrowns2004 influence_reml: metafor marks row 46 (1-based) with "*"
    inf = influence_one_level(_data("bangertdrowns2004"), ModelCall(method="REML"))
    assert np.flatnonzero(inf.is_infl).tolist() == [45]


def test_one_level_deleted_residuals_are_influence_rstudent():
    # rstudent.rma.uni and influence()$inf$rstudent are the same quantity (metafor 3.8 source)
    call = ModelCall(method="REML")
    refits = refit_without(_data("bcg_rr"), call)
    inf = influence_one_level(_data("bcg_rr"), call, refits=refits)
    res = deleted_residuals(_data("bcg_rr"), call, refits=refits)
    np.testing.assert_allclose(res.z, inf.rstudent, rtol=CLOSED)


def test_hat_values_of_a_one_level_model_are_weight_times_variance_of_the_fit():
    # closed form for the intercept-only model: h_i = w_i / sum(w), w = 1 / (v + tau2)
    d = _data("bcg_rr")
    res = fit(d, method="DL")
    w = 1.0 / (d["vi"].to_numpy() + res.tau2)
    np.testing.assert_allclose(hat_values(res), w / w.sum(), rtol=CLOSED)


@pytest.mark.parametrize("stem, random, mods, suffix", ML3_CASES)
def test_hat_values_sum_to_the_number_of_coefficients(stem, random, mods, suffix):
    # trace(H) = p for any GLS hat matrix
    res = fit(_data(stem), mods=list(mods) or None, random=list(random))
    assert hat_values(res).sum() == pytest.approx(res.p, rel=CLOSED)


# --------------------------------------------------------------------------- multilevel
@pytest.fixture(scope="module", params=ML3_CASES, ids=lambda c: c[0] + c[3])
def ml3(request):
    """One data set's cluster influence and deleted residuals, computed once for the module."""
    stem, random, mods, suffix = request.param
    d = _data(stem)
    call = ModelCall(random=random, mods=mods, test="t")
    # the moderator case has one DFBETAS of 1e-5 (a coefficient difference of 1e-7): its 1e-6
    # relative comparison needs the refits converged beyond the engine's default 1e-10
    tight = ModelCall(random=random, mods=mods, test="t", threshold=1e-13) if mods else call
    ref = _sens_ref()[stem]["cases"][f"influence_reml_t_polished{suffix}"]["results"]
    return {
        "call": call,
        "ref": ref,
        "influence": cluster_influence(d, tight, random[0]),
        "residuals": deleted_residuals(d, call),
        "data": d,
    }


def test_cluster_influence_matches_metafor_cooks_distance_dfbetas_hatvalues(ml3):
    # expected: sensitivity_reference.json influence_reml_t_polished[_mods_deltype]
    inf, ref = ml3["influence"], ml3["ref"]
    assert [str(u) for u in inf.units] == [str(u) for u in ref["cluster"]]
    _close(inf.k, ref["k"], CLOSED)
    _close(inf.cook_d, ref["cook_d"], ITERATIVE)
    _close(inf.dfbetas, ref["dfbetas"], ITERATIVE)
    _close(inf.hat, ref["hat_cluster_sum"], ITERATIVE)
    _close(inf.x2, ref["x2"], ITERATIVE)
    _close(inf.b_del, ref["beta_del"], ITERATIVE)
    comps = np.column_stack([inf.components_del[name] for name in ml3["call"].random])
    _close(comps, ref["sigma2_del"], 1e-5)


def test_deleted_residuals_match_metafor_rstudent_rma_mv(ml3):
    # expected: rstudent(res) (no cluster: each effect size left out in turn), polished
    res, ref = ml3["residuals"], ml3["ref"]
    _close(res.resid, ref["rstudent_resid"], ITERATIVE)
    _close(res.se, ref["rstudent_se"], ITERATIVE)
    _close(res.z, ref["rstudent_z"], ITERATIVE)
    assert list(res.labels) == list(ml3["data"].index)


def test_refit_that_loses_a_factor_level_gives_nan_as_metafor(ml3):
    # assink2016 ~ deltype: study 16 holds every 'covert' effect size (the reference level);
    # metafor's cooks.distance() and dfbetas() give NA for it (influence_reml_t_mods_deltype)
    if not ml3["call"].mods:
        pytest.skip("only the moderator model loses a coefficient")
    inf = ml3["influence"]
    raw = _sens_ref()["assink2016"]["cases"]["influence_reml_t_mods_deltype"]["results"]
    assert [u for u, c in zip(inf.units, inf.cook_d, strict=True) if np.isnan(c)] == [16]
    assert raw["cook_d"][raw["cluster"].index("16")] is None
    assert 16 in inf.errors and "deltypegeneral" in inf.errors[16]


def test_shared_refits_give_the_same_diagnostics():
    d = _data("konstantopoulos2011")
    call = ModelCall(random=("district", "school"), test="t")
    refits = refit_without(d, call, "district")
    assert len(refits.refits) == d["district"].nunique()
    a = cluster_influence(d, call, "district", refits=refits)
    b = cluster_influence(d, call, "district")
    np.testing.assert_array_equal(a.cook_d, b.cook_d)


def test_cluster_influence_to_frame_and_dict_are_plain():
    call = ModelCall(random=("district", "school"), test="t")
    inf = cluster_influence(_data("konstantopoulos2011"), call, "district")
    frame = inf.to_frame()
    assert list(frame.columns) == ["unit", "k", "cook_d", "dfbetas_intrcpt", "hat", "x2"]
    assert len(frame) == 11  # 11 districts (Konstantopoulos 2011)
    assert json.dumps(inf.to_dict())


def test_refit_without_rejects_wrong_use():
    d = _data("bcg_rr")
    call = ModelCall()
    with pytest.raises(ValueError, match="one row at a time"):
        deleted_residuals(d, call, refits=refit_without(d.assign(g=1), call, "g"))
    with pytest.raises(ValueError, match="one-level"):
        influence_one_level(_data("assink2016"), ModelCall(random=("study", "esid")))
