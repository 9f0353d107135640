"""Properties of the model core that hold for any data (no reference numbers needed).

Expected values are computed in the tests from their definitions (inverse-variance weighted mean;
dense k x k formulas of the likelihood, its score and information, Harville 1977) or are the same
model fitted another way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from intervention_meta.models import fit
from intervention_meta.models.design import build_design
from intervention_meta.models.likelihood import MarginalLikelihood, build_structure

REF = Path(__file__).parent / "reference"
ASSINK = pd.read_csv(REF / "assink2016.csv")
# metafor's one-level Fisher scoring converges linearly: stopped at a change of 1e-12 it can still
# be 5e-13 from the maximum (5e-10 relative on a log-likelihood near 0), where the Newton steps of
# the multilevel path reach it to rounding; at 1e-14 both are at the maximum to rounding
TIGHT = {"threshold": 1e-14, "maxiter": 500}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def one_effect_per_study(draw) -> pd.DataFrame:
    k = draw(st.integers(min_value=4, max_value=14))
    seed = draw(st.integers(min_value=0, max_value=2**31 - 1))
    tau = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return _one_effect_per_study(k, seed, tau)


def _one_effect_per_study(k: int, seed: int, tau: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.3, k)
    yi = 0.3 + rng.normal(0, tau, k) + rng.normal(0, np.sqrt(vi))
    return pd.DataFrame({"study": rng.permutation(k) + 100, "es": 1, "yi": yi, "vi": vi})


@st.composite
def three_level(draw) -> pd.DataFrame:
    n_studies = draw(st.integers(min_value=3, max_value=8))
    seed = draw(st.integers(min_value=0, max_value=2**31 - 1))
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 5, n_studies)  # k >= 6: enough df for two components and a slope
    study = np.repeat(np.arange(n_studies), sizes)
    es = np.concatenate([np.arange(s) for s in sizes])
    vi = rng.uniform(0.02, 0.2, len(study))
    u = rng.normal(0, 0.3, n_studies)[study]
    yi = 0.2 + u + rng.normal(0, 0.2, len(study)) + rng.normal(0, np.sqrt(vi))
    x = rng.normal(size=len(study))
    return pd.DataFrame({"study": study, "es": es, "x": x, "yi": yi, "vi": vi})


@SETTINGS
@given(one_effect_per_study())
def test_one_level_reml_equals_two_level_reml_with_inner_variance_fixed_at_zero(df) -> None:
    one = fit(df, method="REML", control=TIGHT)
    two = fit(df, random=["study", "es"], sigma2_fixed={"es": 0.0}, control=TIGHT)
    np.testing.assert_allclose(two.sigma2["study"], one.tau2, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(two.b, one.b, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(two.se, one.se, rtol=1e-7)
    np.testing.assert_allclose(two.logLik, one.logLik, rtol=1e-10)
    np.testing.assert_allclose(two.QE, one.QE, rtol=1e-10)
    assert two.parms == one.parms


@SETTINGS
@given(one_effect_per_study())
# metafor's scoring cycles there (off by 5e-9 when L-BFGS-B, which stopped short, finished it)
@example(_one_effect_per_study(12, 1237376963, 0.0))
@example(_one_effect_per_study(8, 1727238021, 0.1))  # it converges slowly there (42 iterations)
def test_one_level_model_is_the_single_level_multilevel_model(df) -> None:
    """random=None and random=[unique row id] are the same likelihood (metafor rma vs rma.mv)."""
    for method in ("REML", "ML"):
        one = fit(df, method=method, control=TIGHT)
        mv = fit(df, random=["study"], method=method, control=TIGHT)
        assert one.converged and mv.converged
        np.testing.assert_allclose(mv.sigma2["study"], one.tau2, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(mv.b, one.b, rtol=1e-8, atol=1e-12)
        for kind in ("ML", "REML"):
            for key, val in one.fit_stats[kind].items():
                np.testing.assert_allclose(mv.fit_stats[kind][key], val, rtol=1e-9)


@SETTINGS
@given(three_level(), st.integers(min_value=0, max_value=10_000))
def test_multilevel_fit_is_invariant_to_row_order(df, seed) -> None:
    shuffled = df.sample(frac=1.0, random_state=seed)
    a = fit(df, mods=["x"], random=["study", "es"])
    b = fit(shuffled, mods=["x"], random=["study", "es"])
    np.testing.assert_allclose(
        list(b.sigma2.values()), list(a.sigma2.values()), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(b.b, a.b, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(b.se, a.se, rtol=1e-6)
    np.testing.assert_allclose(b.logLik, a.logLik, rtol=1e-10)


@pytest.mark.parametrize("method", ["REML", "DL", "PM", "SJ", "EB", "HE", "FE"])
def test_one_level_fit_is_invariant_to_row_order(method: str) -> None:
    shuffled = ASSINK.sample(frac=1.0, random_state=7)
    a = fit(ASSINK, mods=["year"], method=method)
    b = fit(shuffled, mods=["year"], method=method)
    np.testing.assert_allclose(b.tau2, a.tau2, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(b.b, a.b, rtol=1e-9)
    np.testing.assert_allclose(b.QE, a.QE, rtol=1e-10)


def test_fixed_effect_estimate_is_the_inverse_variance_weighted_mean() -> None:
    """FE: b = sum(w y)/sum(w), se = 1/sqrt(sum(w)), Q = sum(w (y - b)^2), w = 1/v (by hand)."""
    y, v = ASSINK["yi"].to_numpy(), ASSINK["vi"].to_numpy()
    w = 1.0 / v
    mean = np.sum(w * y) / np.sum(w)
    res = fit(ASSINK, method="FE")
    np.testing.assert_allclose(res.b[0], mean, rtol=1e-13)
    np.testing.assert_allclose(res.se[0], 1.0 / np.sqrt(np.sum(w)), rtol=1e-13)
    np.testing.assert_allclose(res.QE, np.sum(w * (y - mean) ** 2), rtol=1e-12)
    assert res.tau2 == 0.0


def test_per_category_means_without_intercept_are_subgroup_weighted_means() -> None:
    """intercept=False with one factor (R's ~ deltype - 1): FE coefficients are subgroup means."""
    res = fit(ASSINK, mods=["deltype"], intercept=False, method="FE")
    assert res.coef_names == ("deltypecovert", "deltypegeneral", "deltypeovert")
    for name, level in zip(res.coef_names, ["covert", "general", "overt"], strict=True):
        sub = ASSINK[ASSINK["deltype"] == level]
        w = 1.0 / sub["vi"]
        np.testing.assert_allclose(
            res.b[res.coef_names.index(name)], np.sum(w * sub["yi"]) / w.sum()
        )
    assert res.R2 is None and res.btt == (0, 1, 2)


def test_nesting_uses_the_tuple_of_ids() -> None:
    """esid restarts at 1 in every study; metafor's study/esid nests it; unique ids fit the same."""
    assert ASSINK.groupby("esid")["study"].nunique().max() > 1  # the inner ids do repeat
    repeated = fit(ASSINK, random=["study", "esid"])
    unique = fit(ASSINK, random=["study", "id"])
    relabelled = ASSINK.assign(esid=ASSINK.groupby("study").cumcount(ascending=False))
    relab = fit(relabelled, random=["study", "esid"])
    for other in (unique, relab):
        np.testing.assert_allclose(
            list(other.sigma2.values()), list(repeated.sigma2.values()), rtol=1e-9
        )
        np.testing.assert_allclose(other.b, repeated.b, rtol=1e-10)
        np.testing.assert_allclose(other.logLik, repeated.logLik, rtol=1e-12)
    assert repeated.n_levels == {"study": 17, "esid": 100}


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("rho", [None, 0.5])
def test_blockwise_likelihood_score_and_information_equal_dense_formulas(reml, rho) -> None:
    """The blockwise engine against the k x k formulas (Harville 1977) on assink2016 (k = 100)."""
    design = build_design(ASSINK, mods=["year"], random=["study", "esid"])
    structure = build_structure(design.X, design.v, design.level_codes, rho)
    theta = np.array([0.15, 0.07])
    ev = MarginalLikelihood(structure, design.y, reml=reml).evaluate(theta, order=2)

    X, y, v = design.X, design.y, design.v
    k, p = X.shape
    study = design.level_codes[0]
    same_study = (study[:, None] == study[None, :]).astype(float)
    S = np.diag(v) if rho is None else np.where(same_study > 0, rho * np.sqrt(np.outer(v, v)), 0.0)
    np.fill_diagonal(S, v)
    D = [same_study, np.eye(k)]
    M = S + theta[0] * D[0] + theta[1] * D[1]
    W = np.linalg.inv(M)
    H = np.linalg.inv(X.T @ W @ X)
    b = H @ X.T @ W @ y
    r = y - X @ b
    P = W - W @ X @ H @ X.T @ W
    ll_ml = -0.5 * (k * np.log(2 * np.pi) + np.linalg.slogdet(M)[1] + r @ W @ r)
    ll_reml = -0.5 * (
        (k - p) * np.log(2 * np.pi)
        - np.linalg.slogdet(X.T @ X)[1]
        + np.linalg.slogdet(M)[1]
        + np.linalg.slogdet(X.T @ W @ X)[1]
        + r @ W @ r
    )
    Qm = P if reml else W
    grad = [0.5 * (r @ W @ Dl @ W @ r - np.trace(Qm @ Dl)) for Dl in D]
    info = [[0.5 * np.trace(Qm @ Dl @ Qm @ Dm) for Dm in D] for Dl in D]
    np.testing.assert_allclose(ev.beta, b, rtol=1e-10)
    np.testing.assert_allclose(ev.vb, H, rtol=1e-10)
    np.testing.assert_allclose(ev.loglik_ml, ll_ml, rtol=1e-12)
    np.testing.assert_allclose(ev.loglik_reml, ll_reml, rtol=1e-12)
    np.testing.assert_allclose(ev.grad, grad, rtol=1e-9)
    np.testing.assert_allclose(ev.info, info, rtol=1e-9)


def test_score_is_the_derivative_of_the_log_likelihood() -> None:
    design = build_design(ASSINK, random=["study", "esid"])
    structure = build_structure(design.X, design.v, design.level_codes, 0.3)
    lik = MarginalLikelihood(structure, design.y, reml=True)
    theta = np.array([0.2, 0.1])
    grad = lik.evaluate(theta, order=1).grad
    h = 1e-6
    for lev in range(2):
        e = np.zeros(2)
        e[lev] = h
        numeric = (lik.evaluate(theta + e).loglik - lik.evaluate(theta - e).loglik) / (2 * h)
        np.testing.assert_allclose(grad[lev], numeric, rtol=1e-6)


def test_variance_component_at_the_boundary_is_exactly_zero() -> None:
    """An added top level without variance: estimate exactly 0, score there <= 0 (KKT)."""
    df = ASSINK.assign(grp=(ASSINK["study"] - 1) // 4)
    res = fit(df, random=["grp", "study", "esid"])
    assert res.converged
    assert res.sigma2["grp"] == 0.0
    nested = fit(ASSINK, random=["study", "esid"])
    np.testing.assert_allclose(res.logLik, nested.logLik, rtol=1e-12)
    design = build_design(df, random=["grp", "study", "esid"])
    structure = build_structure(design.X, design.v, design.level_codes)
    theta = np.array(list(res.sigma2.values()))
    grad = MarginalLikelihood(structure, design.y, reml=True).evaluate(theta, order=1).grad
    assert grad[0] <= 0


def test_lbfgsb_and_fisher_scoring_reach_the_same_optimum() -> None:
    a = fit(ASSINK, mods=["deltype", "year"], random=["study", "esid"])
    b = fit(
        ASSINK, mods=["deltype", "year"], random=["study", "esid"], control={"optimizer": "lbfgsb"}
    )
    assert a.convergence.optimizer == "fisher-scoring" and b.convergence.optimizer == "L-BFGS-B"
    np.testing.assert_allclose(list(b.sigma2.values()), list(a.sigma2.values()), rtol=1e-6)
    np.testing.assert_allclose(b.logLik, a.logLik, rtol=1e-12)


def test_scoring_failure_falls_back_to_lbfgsb(caplog) -> None:
    res = fit(ASSINK, random=["study", "esid"], control={"maxiter": 1})
    ref = fit(ASSINK, random=["study", "esid"])
    assert res.convergence.fallback_used and res.convergence.optimizer == "L-BFGS-B"
    assert res.converged
    np.testing.assert_allclose(list(res.sigma2.values()), list(ref.sigma2.values()), rtol=1e-6)
    assert "falling back" in caplog.text


def test_non_convergence_is_flagged_not_silent(caplog) -> None:
    res = fit(ASSINK, random=["study", "esid"], control={"optimizer": "lbfgsb", "maxiter": 1})
    assert not res.converged
    assert res.convergence.reason
    assert res.to_dict()["converged"] is False
    assert "did not converge" in caplog.text
    assert "WARNING: not converged" in res.summary()


@pytest.mark.parametrize("random", [None, ["study", "esid"]])
def test_blocks_of_one_row_skip_block_sums_with_the_same_likelihood(random):
    """The one-level model's blocks are single rows: no block sums, the same evaluation."""
    data = ASSINK
    if random is not None:  # one effect size per study: blocks of one row in a two-level model
        data = ASSINK.drop_duplicates("study")
    design = build_design(data, random=random)
    structure = build_structure(design.X, design.v, design.level_codes)
    assert structure.ragged.singletons
    general = dataclasses.replace(
        structure, ragged=dataclasses.replace(structure.ragged, singletons=False)
    )
    theta = np.full((1, structure.n_components), 0.05)
    for reml in (False, True):
        fast = MarginalLikelihood(structure, design.y, reml=reml).evaluate(theta[0], order=2)
        slow = MarginalLikelihood(general, design.y, reml=reml).evaluate(theta[0], order=2)
        for name in ("loglik", "beta", "vb", "rss", "grad", "info", "obs_info"):
            np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-13)
