"""Step-function selection models: metafor's selmodel on independent effects, the composite
likelihood, its sandwich and the cluster bootstrap on dependent effects.

Expected values come from ``tests/reference/selection_metafor.json`` (R 4.2.2, metafor 3.8-1,
written by ``tests/reference/R/selection.R``; the exact R call is stored with every case), from
``tests/reference/selection_metaselection.json`` (metaselection 0.1.5, same script) or from
properties the estimator must have (Pustejovsky, Citkowicz & Joshi 2025: the CML of one effect per
study is the ordinary likelihood; the sandwich estimates the same variance as the inverse
information when the model is right).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.io import jsonable
from intervention_meta.methods.selection import selection_model

REF = json.loads(
    (Path(__file__).parent / "reference" / "selection_metafor.json").read_text(encoding="utf-8")
)
CASES = REF["cases"]
RTOL = 1e-5


def _fit(case: dict, **kwargs):
    data, res = case["data"], case["results"]
    return selection_model(
        data["yi"],
        data["vi"],
        X=np.array(data["X"], dtype=float),
        steps=res["steps"][:-1],
        alternative=case["alternative"],
        **kwargs,
    )


@pytest.fixture(scope="module", params=sorted(CASES))
def fitted(request):
    case = CASES[request.param]
    return case, _fit(case)


def test_selection_model_matches_metafor_selmodel_estimates(fitted):
    case, res = fitted
    ref = case["results"]
    assert res.converged
    se = np.array([c.se for c in res.coefficients])
    # a coefficient near zero (bangertdrowns2004 ~ length, two steps: -0.0028, SE 0.09) is held
    # to 1e-5 of its standard error (metafor's optimiser stops 4e-7 from the maximum there)
    assert np.all(np.abs(res.beta - ref["b"]) <= RTOL * np.maximum(np.abs(ref["b"]), se))
    np.testing.assert_allclose(se, ref["se"], rtol=RTOL)
    np.testing.assert_allclose(res.vcov[: len(se), : len(se)], ref["vb"], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(res.tau2.estimate, ref["tau2"], rtol=RTOL)
    np.testing.assert_allclose(res.tau2.se, ref["se_tau2"], rtol=RTOL)
    np.testing.assert_allclose(res.delta, ref["delta"], rtol=RTOL)
    np.testing.assert_allclose([w.se for w in res.weights[1:]], ref["se_delta"][1:], rtol=RTOL)
    np.testing.assert_allclose(res.pval, ref["pval"], rtol=RTOL)
    assert list(res.steps) == ref["steps"]
    assert list(res.k_per_interval) == ref["ptable_k"]
    assert list(res.coef_names) == [f"X{j}" for j in range(len(ref["b"]))]


def test_selection_model_matches_metafor_lrt_of_selection(fitted):
    case, res = fitted
    ref = case["results"]
    np.testing.assert_allclose(res.loglik, ref["ll"], rtol=RTOL)
    np.testing.assert_allclose(res.loglik_null, ref["ll0"], rtol=RTOL)
    np.testing.assert_allclose(res.lrt, ref["lrt"], rtol=RTOL)
    assert res.lrt_df == ref["lrtdf"]
    np.testing.assert_allclose(res.lrt_pval, ref["lrtp"], rtol=RTOL)


def test_selection_model_null_is_metafor_ml_fit(fitted):
    """Without selection (all weights 1) the model is rma(yi, vi, mods, method = "ML"); its
    variance is selmodel's with delta = 1 fixed (inverse observed information of beta and tau2)."""
    case, res = fitted
    ml, null = case["ml_fit"], case["results_null"]
    xbar = np.array(case["data"]["X"]).mean(axis=0)
    np.testing.assert_allclose(res.unadjusted_mean.estimate, xbar @ ml["b"], rtol=RTOL)
    np.testing.assert_allclose(res.unadjusted_tau2, ml["tau2"], rtol=RTOL)
    np.testing.assert_allclose(res.loglik_null, ml["loglik"], rtol=RTOL)
    se = np.sqrt(xbar @ np.array(null["vb"]) @ xbar)
    np.testing.assert_allclose(res.unadjusted_mean.se, se, rtol=RTOL)
    if len(ml["b"]) == 1:
        np.testing.assert_allclose(res.adjusted_mean.estimate, res.beta[0], rtol=1e-12)


def test_selection_model_reaches_at_least_metafors_default_maximum(fitted):
    """metafor's default optimiser stops short of the maximum; ours may not fall below it."""
    case, res = fitted
    assert res.loglik >= case["results_default_control"]["ll"] - 1e-10


def test_weight_and_tau2_intervals_are_wald_on_the_log_scale(fitted):
    _, res = fitted
    z = 1.959963984540054
    for est in (res.tau2, *res.weights[1:]):
        half = z * est.se / est.estimate
        np.testing.assert_allclose(
            [est.ci_lb, est.ci_ub],
            [est.estimate * np.exp(-half), est.estimate * np.exp(half)],
            rtol=1e-12,
        )


# --------------------------------------------------------------------------------------------
# dependent effect sizes: composite marginal likelihood
# --------------------------------------------------------------------------------------------
def simulate_dependent(
    n_studies: int, seed: int, *, tau: float = 0.2, omega: float = 0.1, mu: float = 0.3
) -> pd.DataFrame:
    """Studies with 1-5 effect sizes; study and effect-size level heterogeneity; no selection."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_studies)
    study = np.repeat(np.arange(n_studies), sizes)
    n = rng.integers(20, 200, n_studies)[study]
    vi = 4.0 / n
    yi = (
        mu
        + rng.normal(0, tau, n_studies)[study]
        + rng.normal(0, omega, study.size)
        + rng.normal(0, np.sqrt(vi))
    )
    return pd.DataFrame({"study": study, "yi": yi, "vi": vi, "x": rng.normal(size=study.size)})


@pytest.fixture(scope="module")
def dependent():
    return simulate_dependent(40, seed=11)


def test_cml_with_one_effect_per_cluster_is_the_independent_model():
    case = CASES["bangertdrowns2004_length_step025"]
    plain = _fit(case)
    clustered = _fit(case, cluster=np.arange(len(case["data"]["yi"])))
    np.testing.assert_allclose(clustered.beta, plain.beta, rtol=1e-12)
    np.testing.assert_allclose(clustered.delta, plain.delta, rtol=1e-12)
    assert clustered.loglik == pytest.approx(plain.loglik, rel=1e-14)
    assert clustered.lrt == pytest.approx(plain.lrt, rel=1e-10)
    assert (plain.vcov_type, clustered.vcov_type) == ("model", "cluster-robust")
    assert clustered.n_clusters == clustered.k == plain.k


def test_sandwich_estimates_the_model_variance_when_the_model_holds():
    """One effect per study, no selection, k = 3000: sandwich and inverse information agree."""
    rng = np.random.default_rng(5)
    vi = rng.uniform(0.01, 0.1, 3000)
    yi = rng.normal(0.2, np.sqrt(vi + 0.04))
    model = selection_model(yi, vi)
    robust = selection_model(yi, vi, cluster=np.arange(yi.size))
    np.testing.assert_allclose(robust.vcov, model.vcov, rtol=0.15, atol=1e-12)
    np.testing.assert_allclose(np.diag(robust.vcov), np.diag(model.vcov), rtol=0.1)


def test_cml_is_invariant_to_the_order_of_rows(dependent):
    order = np.random.default_rng(3).permutation(len(dependent))
    shuffled = dependent.iloc[order]
    a = selection_model(dependent.yi, dependent.vi, cluster=dependent.study)
    b = selection_model(shuffled.yi, shuffled.vi, cluster=shuffled.study)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-9)
    np.testing.assert_allclose(b.delta, a.delta, rtol=1e-9)
    np.testing.assert_allclose(b.vcov, a.vcov, rtol=1e-6)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-12)


def test_cml_sandwich_is_unchanged_by_duplicating_every_effect_within_its_study(dependent):
    """Each duplicate doubles a cluster's score and the Hessian: the sandwich is the same, while
    the model-based variance would halve."""
    doubled = pd.concat([dependent, dependent], ignore_index=True)
    a = selection_model(dependent.yi, dependent.vi, cluster=dependent.study)
    b = selection_model(doubled.yi, doubled.vi, cluster=doubled.study)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-8)
    np.testing.assert_allclose(b.vcov, a.vcov, rtol=1e-5, atol=1e-14)
    assert b.loglik == pytest.approx(2 * a.loglik, rel=1e-12)


def test_cml_with_a_moderator_names_coefficients_from_the_frame(dependent):
    X = pd.DataFrame({"intrcpt": 1.0, "x": dependent.x})
    res = selection_model(dependent.yi, dependent.vi, cluster=dependent.study, X=X)
    assert res.coef_names == ("intrcpt", "x")
    assert res.adjusted_mean.estimate == pytest.approx(X.mean().to_numpy() @ res.beta)
    assert res.n_clusters == dependent.study.nunique()
    assert res.wald_df == res.lrt_df == 1


def test_cluster_bootstrap_is_bit_reproducible_with_the_seed(dependent):
    kwargs = dict(cluster=dependent.study, steps=(0.025,), bootstrap=99, seed=2024)
    a = selection_model(dependent.yi, dependent.vi, **kwargs)
    b = selection_model(dependent.yi, dependent.vi, **kwargs)
    assert a.bootstrap_draws.tobytes() == b.bootstrap_draws.tobytes()
    assert json.dumps(jsonable(a.to_dict())) == json.dumps(jsonable(b.to_dict()))
    c = selection_model(dependent.yi, dependent.vi, **{**kwargs, "seed": 2025})
    assert c.bootstrap_draws.tobytes() != a.bootstrap_draws.tobytes()
    gen = selection_model(
        dependent.yi, dependent.vi, **{**kwargs, "seed": np.random.default_rng(2024)}
    )
    assert gen.bootstrap_draws.tobytes() == a.bootstrap_draws.tobytes()


def test_cluster_bootstrap_percentile_intervals(dependent):
    res = selection_model(
        dependent.yi, dependent.vi, cluster=dependent.study, bootstrap=199, seed=7
    )
    assert res.bootstrap == 199 and res.bootstrap_converged == res.bootstrap_draws.shape[0] > 190
    mean = res.adjusted_mean
    expected = np.quantile(res.bootstrap_draws[:, 0], [0.025, 0.975])
    np.testing.assert_allclose([mean.boot_ci_lb, mean.boot_ci_ub], expected, rtol=1e-12)
    w = res.weights[1]
    expected_w = np.quantile(np.exp(res.bootstrap_draws[:, 2]), [0.025, 0.975])
    np.testing.assert_allclose([w.boot_ci_lb, w.boot_ci_ub], expected_w, rtol=1e-12)
    # every replicate is a maximum of its resampled likelihood: near the full-data fit
    assert mean.boot_ci_lb < mean.estimate < mean.boot_ci_ub


def test_bootstrap_replicate_is_the_fit_of_the_resampled_studies(dependent):
    """The weighted likelihood of a replicate equals refitting the resampled data set."""
    res = selection_model(dependent.yi, dependent.vi, cluster=dependent.study, bootstrap=3, seed=9)
    studies = np.sort(dependent.study.unique())
    draw = np.random.default_rng(9).integers(0, studies.size, size=(3, studies.size))[0]
    resampled = pd.concat(
        [dependent[dependent.study == studies[j]].assign(study=i) for i, j in enumerate(draw)]
    )
    refit = selection_model(resampled.yi, resampled.vi, cluster=resampled.study)
    np.testing.assert_allclose(res.bootstrap_draws[0, 0], refit.beta[0], rtol=1e-5)
    np.testing.assert_allclose(np.exp(res.bootstrap_draws[0, 1]), refit.tau2.estimate, rtol=1e-4)


def test_result_to_dict_and_to_frame(dependent):
    res = selection_model(dependent.yi, dependent.vi, cluster=dependent.study, steps=(0.025, 0.5))
    d = jsonable(res.to_dict())
    json.dumps(d)
    assert [w["interval"] for w in d["weights"]] == [
        "0 < p <= 0.025",
        "0.025 < p <= 0.5",
        "0.5 < p <= 1",
    ]
    assert d["weights"][0]["estimate"] == 1.0 and d["lrt"]["df"] == 2
    assert d["vcov_type"] == "cluster-robust" and d["n_clusters"] == 40
    frame = res.to_frame()
    assert list(frame["kind"]) == [
        "coefficient",
        "mean",
        "mean",
        "tau2",
        "weight",
        "weight",
        "weight",
    ]
    assert {"estimate", "se", "ci_lb", "ci_ub", "boot_ci_lb", "boot_ci_ub", "level"} <= set(frame)


def test_fallback_to_lbfgsb_when_newton_steps_run_out(monkeypatch, caplog):
    """With too few Newton iterations the fit restarts from L-BFGS-B and still finds the maximum."""
    import intervention_meta.methods.selection as selection

    case = CASES["bangertdrowns2004_step025_05"]
    monkeypatch.setattr(selection, "_MAX_ITER", 2)
    with caplog.at_level("INFO", logger=selection.__name__):
        res = _fit(case)
    assert "L-BFGS-B" in caplog.text
    assert res.converged
    np.testing.assert_allclose(res.delta, case["results"]["delta"], rtol=RTOL)


def test_selection_model_rejects_empty_intervals_and_unknown_alternatives():
    yi, vi = np.array([0.1, 0.2, 0.9, 0.05, 0.3]), np.full(5, 0.04)
    with pytest.raises(ValueError, match="no observed p value"):
        selection_model(yi, vi, steps=(1e-7,))
    with pytest.raises(ValueError, match="no observed p value"):  # two-sided p values too
        selection_model(yi, vi, steps=(1e-7,), alternative="two.sided")
    with pytest.raises(ValueError, match="alternative"):
        selection_model(yi, vi, alternative="two-sided")


def test_two_sided_p_values_put_large_negative_effects_in_the_significant_interval():
    # metafor's .selmodel.pval: p = 2 * (1 - Phi(|y| / se)); -0.5 / 0.2 = -2.5 -> p = .012
    yi = np.array([-0.5, 0.45, 0.1, -0.05, 0.2, 0.6, 0.0, -0.3])
    vi = np.full(8, 0.04)
    two = selection_model(yi, vi, steps=(0.05,), alternative="two.sided")
    one = selection_model(yi, vi, steps=(0.05,), alternative="greater")
    assert two.k_per_interval == (3, 5)  # -0.5, 0.45, 0.6
    assert one.k_per_interval == (2, 6)  # 0.45, 0.6 (one-sided p of -0.5 is .994)


def test_missing_rows_are_dropped(dependent, caplog):
    yi = dependent.yi.to_numpy().copy()
    yi[0] = np.nan
    res = selection_model(yi, dependent.vi, cluster=dependent.study)
    assert res.k == len(dependent) - 1
    assert "missing" in caplog.text


# --------------------------------------------------------------------------------------------
# dependent effect sizes: metaselection's CML estimator and sandwich
# --------------------------------------------------------------------------------------------
MS = json.loads(
    (Path(__file__).parent / "reference" / "selection_metaselection.json").read_text(
        encoding="utf-8"
    )
)


@pytest.mark.parametrize("name", sorted(MS["cases"]))
def test_cml_matches_metaselection_estimates_and_cluster_robust_vcov(name):
    """metaselection::selection_model(estimator = "CML", vcov_type = "robust", priors = NULL):
    parameters (beta, log tau2, log delta) and their sandwich variance (R call in the fixture)."""
    case = MS["cases"][name]
    data, ref = case["data"], case["results"]
    res = selection_model(
        data["yi"],
        data["vi"],
        cluster=data["cluster"],
        X=np.array(data["X"], dtype=float),
        steps=(0.025, 0.5) if "step025_05" in name else (0.025,),
    )
    theta = np.concatenate([res.beta, [np.log(res.tau2.estimate)], np.log(res.delta[1:])])
    se = np.sqrt(np.diag(ref["vcov"]))
    assert np.all(np.abs(theta - ref["est"]) <= RTOL * np.maximum(np.abs(ref["est"]), se))
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), ref["se"], rtol=RTOL)
    vref = np.array(ref["vcov"])
    assert np.all(np.abs(res.vcov - vref) <= RTOL * np.maximum(np.abs(vref), np.outer(se, se)))
    np.testing.assert_allclose(res.loglik, ref["ll"], rtol=RTOL)
    assert res.vcov_type == "cluster-robust" and res.n_clusters == len(set(data["cluster"]))
