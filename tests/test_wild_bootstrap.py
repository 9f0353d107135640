"""Cluster wild bootstrap Wald tests (``methods.wild_bootstrap``) against wildmeta.

Expected values: ``tests/reference/wild_bootstrap.json``, made by
``tests/reference/R/wild_bootstrap.R`` (R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8, wildmeta 0.3.2
built from its GitHub sources). Models: assink2016 ``rma.mv(yi, vi, mods = ~ deltype + year,
random = ~ 1 | study/esid)``, the same as CHE (``impute_covariance_matrix(vi, study, r = 0.6)``),
konstantopoulos2011 ``mods = ~ year, random = ~ 1 | district/school``; tests of the deltype
dummies (``constrain_zero(2:3)``) and of year (``constrain_zero(2)``), each with (adjust, type,
test) = (CR2, CR2, HTZ), (CR0, CR0, Naive-F) and (CR1, CR1, Naive-F).

* ``draws_*``: Rademacher weights drawn in R and stored, the replicates' statistics computed with
  wildmeta's own refit function: exact targets. The data's statistic to 1e-6; the replicates' to
  1e-5 (absolute 1e-6 for statistics near 0, whose relative error is that of a coefficient near
  0, squared), because each replicate is a new REML fit at which metafor's nlminb stops ~1e-6
  short of the optimum (tests/test_models_che.py shows the same on the data).
* ``cwb_*``: ``Wald_test_cwb(..., R, seed)``: R's random numbers cannot be reproduced, so the p
  value is compared within Monte Carlo error, |p - p_R| < 3 sqrt(p_R (1 - p_R) / R), at the same R.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.methods.influence import ModelCall
from intervention_meta.methods.wild_bootstrap import rademacher_weights, wild_bootstrap_test
from intervention_meta.models import ModelError
from intervention_meta.models.robust import robust_vcov

REF = Path(__file__).parent / "reference"
FIXTURE = json.loads((REF / "wild_bootstrap.json").read_text())
CASES = FIXTURE["cases"]
_THREE = ModelCall(mods=("deltype", "year"), random=("study", "esid"))
MODELS = {
    "assink_ml3_deltype": ("assink2016.csv", _THREE, [1, 2]),
    "assink_che06_deltype": ("assink2016.csv", replace(_THREE, rho=0.6), [1, 2]),
    "konstantopoulos_ml3_year": (
        "konstantopoulos2011.csv",
        ModelCall(mods=("year",), random=("district", "school")),
        [1],
    ),
}
VARIANTS = {
    "cr2": ("CR2", "CR2", "HTZ"),
    "cr0": ("CR0", "CR0", "Naive-F"),
    "cr1": ("CR1", "CR1", "Naive-F"),
}
_DATA = {name: pd.read_csv(REF / csv) for name, (csv, _, _) in MODELS.items()}


def _split(case: str) -> tuple[str, str]:
    body = case.split("_", 1)[1]
    model, variant = body.rsplit("_", 1)
    return model, variant


def _run(case: str, **kwargs):
    model, variant = _split(case)
    _, call, constraints = MODELS[model]
    adjust, type_, test = VARIANTS[variant]
    return wild_bootstrap_test(
        _DATA[model], call, constraints, adjust=adjust, type=type_, test=test, **kwargs
    )


DRAWS = [c for c in CASES if c.startswith("draws_")]
CWB = [c for c in CASES if c.startswith("cwb_")]


def test_fixture_has_every_case() -> None:
    assert not FIXTURE["failures"]
    assert len(DRAWS) == len(MODELS) * len(VARIANTS)
    assert len(CWB) == len(MODELS)


@pytest.mark.parametrize("case", DRAWS)
def test_replicates_match_wildmeta_with_the_same_weights(case: str) -> None:
    r = CASES[case]["results"]
    model, _ = _split(case)
    clusters = sorted(_DATA[model][MODELS[model][1].random[0]].unique())
    assert [int(c) for c in r["clusters"]] == [int(c) for c in clusters]
    res = _run(case, weights=np.array(r["eta"]))
    np.testing.assert_allclose(res.statistic, r["original"], rtol=1e-6)
    np.testing.assert_allclose(list(res.sigma2_null.values()), r["null_sigma2"], rtol=1e-5)
    np.testing.assert_allclose(list(res.sigma2_full.values()), r["full_sigma2"], rtol=1e-5)
    assert res.n_valid == res.replications == 20
    np.testing.assert_allclose(res.boot_statistics, r["statistics"], rtol=1e-5, atol=1e-6)
    assert res.p_value == np.mean(np.asarray(r["statistics"]) >= r["original"])


@pytest.mark.parametrize("case", CWB)
def test_p_value_agrees_with_wildmeta_within_monte_carlo_error(case: str) -> None:
    r = CASES[case]["results"]
    R = int(r["R"])
    res = _run(case, rng=np.random.default_rng(20261203), replications=R)
    np.testing.assert_allclose(res.statistic, r["original"], rtol=1e-6)
    # every refit of ours converges; wildmeta drops a replicate whose rma.mv refit fails
    # (konstantopoulos2011: 1 of 1999, nlminb not converging)
    assert res.n_valid == R and r["n_na"] <= 1
    p_r = r["p_val"]
    assert abs(res.p_value - p_r) < 3 * np.sqrt(max(p_r * (1 - p_r), 1 / R) / R)


def test_the_statistic_is_the_htz_statistic_of_models_robust() -> None:
    """The data's statistic (CR2, HTZ) is ``fit(...).robust().wald(...)`` (models.robust)."""
    _, call, cons = MODELS["assink_che06_deltype"]
    data = _DATA["assink_che06_deltype"]
    res = wild_bootstrap_test(data, call, cons, weights=np.ones((1, 17)))
    direct = call.fit(data).robust().wald(cons)
    np.testing.assert_allclose(res.statistic, direct.fstat, rtol=1e-10)
    assert res.htz["fstat"] == direct.fstat and res.htz["p_val"] == direct.p_val


@pytest.mark.parametrize("type_", ["CR0", "CR1", "CR2"])
def test_all_plus_weights_reproduce_the_data(type_: str) -> None:
    """With unadjusted residuals and every weight +1 the bootstrap outcome is the data, so the
    replicate's refit and statistic (batched) equal the data's (Naive-F: Q/q of robust_vcov)."""
    _, call, cons = MODELS["assink_ml3_deltype"]
    data = _DATA["assink_ml3_deltype"]
    res = wild_bootstrap_test(
        data, call, cons, weights=np.ones((3, 17)), adjust="CR0", type=type_, test="Naive-F"
    )
    full = call.fit(data)
    rv = robust_vcov(full.cluster_blocks(), full.b, type=type_)
    C = np.eye(full.p)[cons]
    Cb = C @ full.b
    q_over = Cb @ np.linalg.solve(C @ rv.vcov @ C.T, Cb) / len(cons)
    np.testing.assert_allclose(res.statistic, q_over, rtol=1e-10)
    np.testing.assert_allclose(res.boot_statistics, q_over, rtol=1e-7)


def test_same_seed_same_bytes_other_seed_other_draws() -> None:
    _, call, cons = MODELS["konstantopoulos_ml3_year"]
    data = _DATA["konstantopoulos_ml3_year"]
    a = wild_bootstrap_test(data, call, cons, rng=np.random.default_rng(7), replications=60)
    b = wild_bootstrap_test(data, call, cons, rng=np.random.default_rng(7), replications=60)
    c = wild_bootstrap_test(data, call, cons, rng=np.random.default_rng(8), replications=60)
    assert a.boot_statistics.tobytes() == b.boot_statistics.tobytes()
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    assert a.boot_statistics.tobytes() != c.boot_statistics.tobytes()
    w = rademacher_weights(np.random.default_rng(7), 60, 11)
    assert set(np.unique(w)) == {-1.0, 1.0} and w.shape == (60, 11)


def test_p_value_is_roughly_uniform_under_a_simulated_null() -> None:
    """Small simulation: three-level data without a moderator effect (20 studies, 1-4 effects),
    40 data sets x 49 replicates: the p values spread over (0, 1) (mean near 1/2, 5% rejections
    within binomial error) -- the benchmark sim_wild_bootstrap.py measures this at scale."""
    rng = np.random.default_rng(20261203)
    pvals = []
    for _ in range(40):
        sizes = rng.integers(1, 5, size=20)
        study = np.repeat(np.arange(20), sizes)
        x = np.repeat(rng.choice(["a", "b", "c"], size=20), sizes)
        vi = rng.uniform(0.02, 0.2, size=study.size)
        yi = 0.3 + rng.normal(0, 0.2, 20)[study] + rng.normal(0, 0.1, study.size)
        yi = yi + rng.normal(0, np.sqrt(vi))
        data = pd.DataFrame(
            {"study": study, "es": np.arange(study.size), "x": x, "yi": yi, "vi": vi}
        )
        call = ModelCall(mods=("x",), random=("study", "es"))
        res = wild_bootstrap_test(data, call, [1, 2], rng=rng, replications=49)
        pvals.append(res.p_value)
    pvals = np.asarray(pvals)
    assert 0.3 < pvals.mean() < 0.7
    assert np.mean(pvals < 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 40)
    assert np.all((pvals >= 0) & (pvals <= 1))


def test_result_faces() -> None:
    _, call, cons = MODELS["assink_ml3_deltype"]
    res = wild_bootstrap_test(
        _DATA["assink_ml3_deltype"],
        call,
        ["deltypegeneral", "deltypeovert"],
        weights=np.ones((2, 17)),
    )
    d = res.to_dict()
    json.dumps(d)
    assert "boot_statistics" not in d and d["constraints"] == ["deltypegeneral", "deltypeovert"]
    assert d["adjust"] == "CR2" and d["type"] == "CR2" and d["test"] == "HTZ" and d["q"] == 2
    frame = res.to_frame()
    assert frame.loc[0, "constraints"] == "deltypegeneral, deltypeovert"
    assert frame.loc[0, "htz_p_val"] == res.htz["p_val"]


def test_bad_requests_are_errors() -> None:
    _, call, cons = MODELS["konstantopoulos_ml3_year"]
    data = _DATA["konstantopoulos_ml3_year"]
    with pytest.raises(ValueError, match="adjust"):
        wild_bootstrap_test(data, call, cons, rng=np.random.default_rng(1), adjust="CR3")
    with pytest.raises(ValueError, match="test"):
        wild_bootstrap_test(data, call, cons, rng=np.random.default_rng(1), test="EDT")
    with pytest.raises(ModelError, match="rng"):
        wild_bootstrap_test(data, call, cons)
    with pytest.raises(ModelError, match="not constrained"):
        wild_bootstrap_test(data, call, [0, 1], rng=np.random.default_rng(1))
    with pytest.raises(ModelError, match="weights"):
        wild_bootstrap_test(data, call, cons, weights=np.ones((3, 4)))
    with pytest.raises(ModelError, match="unknown coefficient"):
        wild_bootstrap_test(data, call, ["nope"], rng=np.random.default_rng(1))
