"""The vignette models against R (geepack, lme4, ordinal, emmeans), and their input checks.

Every expected number comes from ``tests/reference/vignette/vignette_{a,b}.json``, written by
``tests/reference/vignette/make_fixtures.R`` (R 4.2.2, geepack 1.3.9, lme4 1.1-31, ordinal
2022.11-16, emmeans 1.8.4-1) from the CSVs beside it (``make_data.R``); each model's exact R call
is stored with its results. The two data sets differ in shape and names: (a) 60 respondents x 9
of 36 vignettes, factors role(3) x style(4) x behaviour(3) x location(3) and role:style; (b) 41
persons with 3-6 of 6 vignettes, group(2, unbalanced) x tone(3) x conduct(2) and group:conduct.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.errors import InputError
from intervention_meta.vignette.models import (
    VignetteFit,
    factor_tests,
    fit_vignette_model,
    marginal_means,
)
from intervention_meta.vignette.ordinal import fit_clm, loglik_parts, robust_vcov

REF = Path(__file__).parent / "reference" / "vignette"
DATASETS = ("vignette_a", "vignette_b")
# fixture key -> (model, outcome kind, nagq, rtol); GLMM 1e-4 (the issue), others 1e-6
CASES = {
    "gee": ("gee", "binary", 1, 1e-6),
    "glmm_laplace": ("glmm", "binary", 1, 1e-4),
    "glmm_agq10": ("glmm", "binary", 10, 1e-4),
    "lmm": ("lmm", "likert", 1, 1e-6),
    "clm": ("clm", "likert", 1, 1e-6),
}
RESPONSE = {"binomial": "prob", "gaussian": "emmean", "ordinal": "mean.class"}


@cache
def reference(stem: str) -> dict:
    return json.loads((REF / f"{stem}.json").read_text())


@cache
def data(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


@cache
def fitted(stem: str, key: str) -> VignetteFit:
    ref = reference(stem)
    model, kind, nagq, _ = CASES[key]
    return fit_vignette_model(
        data(stem),
        model=model,
        outcome=ref[kind],
        factors=ref["factors"],
        cluster=ref["cluster"],
        interactions=[tuple(p) for p in ref["interactions"]],
        nagq=nagq,
    )


PAIRS = [(s, k) for s in DATASETS for k in CASES]
IDS = [f"{s}-{k}" for s, k in PAIRS]


@pytest.mark.parametrize(("stem", "key"), PAIRS, ids=IDS)
def test_coefficients_and_ses_match_r(stem, key):
    ref, fit = reference(stem)["models"][key], fitted(stem, key)
    rtol = CASES[key][3]
    assert list(fit.terms) == ref["terms"]
    np.testing.assert_allclose(fit.estimate, ref["estimate"], rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(fit.se, ref["se"], rtol=rtol)
    # the covariance entries relative to its largest (covariances near zero have no rtol);
    # for the GLMM against the Hessian of lme4's deviance by Richardson extrapolation, which is
    # accurate where vcov(glmer)'s step-1e-4 differences are not (see the R script)
    vcov = np.asarray(ref.get("vcov_richardson", ref["vcov"]))
    tol = 1e-5 if "vcov_richardson" in ref else rtol
    np.testing.assert_allclose(fit.vcov, vcov, rtol=tol, atol=tol * np.abs(vcov).max())
    if "se_richardson" in ref:
        np.testing.assert_allclose(fit.se, ref["se_richardson"], rtol=1e-5)
    assert fit.converged
    assert fit.df is None  # Wald z throughout, also for the LMM


@pytest.mark.parametrize(("stem", "key"), PAIRS, ids=IDS)
def test_variance_components_and_loglik_match_r(stem, key):
    ref, fit = reference(stem)["models"][key], fitted(stem, key)
    rtol = max(CASES[key][3], 1e-5)
    cluster = reference(stem)["cluster"]
    vc = fit.variance_components
    if key == "gee":
        np.testing.assert_allclose(vc["alpha"], ref["alpha"], rtol=rtol)
        np.testing.assert_allclose(vc["scale"], ref["scale"], rtol=rtol)
    if "cluster_sd" in ref:
        np.testing.assert_allclose(vc[f"{cluster}_sd"], ref["cluster_sd"], rtol=rtol)
    if "residual_sd" in ref:
        np.testing.assert_allclose(vc["residual_sd"], ref["residual_sd"], rtol=rtol)
    if "loglik" in ref:
        np.testing.assert_allclose(fit.loglik, ref["loglik"], rtol=1e-8)
    if key == "clm":
        th = ref["thresholds"]
        assert [t[0] for t in fit.thresholds] == th["name"]
        np.testing.assert_allclose([t[1] for t in fit.thresholds], th["estimate"], rtol=1e-6)
        np.testing.assert_allclose([t[2] for t in fit.thresholds], th["se"], rtol=1e-6)


@pytest.mark.parametrize(("stem", "key"), PAIRS, ids=IDS)
def test_marginal_means_match_emmeans(stem, key):
    ref, fit = reference(stem)["models"][key], fitted(stem, key)
    rtol = CASES[key][3]
    for spec in ref["emmeans"]:
        mm = marginal_means(fit, data(stem), spec["factor"], by=spec["by"])
        frame = mm.to_frame()
        assert list(frame["level"]) == spec["level"]
        if spec["by"] is not None:
            assert list(frame["by_level"]) == spec["by_level"]
        resp, link = spec["response"], spec["link"]
        np.testing.assert_allclose(frame["estimate"], resp[RESPONSE[fit.family]], rtol=rtol)
        np.testing.assert_allclose(frame["ci_lb"], resp["asymp.LCL"], rtol=rtol)
        np.testing.assert_allclose(frame["ci_ub"], resp["asymp.UCL"], rtol=rtol)
        np.testing.assert_allclose(frame["se"], link["SE"], rtol=rtol)
        if fit.family != "ordinal":
            np.testing.assert_allclose(frame["link_estimate"], link["emmean"], rtol=rtol)


@pytest.mark.parametrize(("stem", "key"), PAIRS, ids=IDS)
def test_factor_tests_match_emmeans_joint_tests(stem, key):
    ref, fit = reference(stem)["models"][key], fitted(stem, key)
    rtol = CASES[key][3]
    got, want = factor_tests(fit), ref["joint_tests"]
    assert list(got["term"]) == want["term"]
    assert list(got["df"]) == want["df1"]
    np.testing.assert_allclose(got["statistic"], want["chi2"], rtol=rtol)
    np.testing.assert_allclose(got["p"], want["p"], rtol=10 * rtol)
    # emmeans prints F to 3 decimals
    np.testing.assert_allclose(got["f_ratio"], want["f_ratio"], atol=5e-4 + 1e-9)


def test_fit_result_shapes_and_json():
    fit = fitted("vignette_a", "gee")
    frame = fit.to_frame()
    assert list(frame.columns) == ["term", "estimate", "se", "statistic", "p", "ci_lb", "ci_ub"]
    assert frame["term"].iloc[0] == "(Intercept)"
    assert "style[permissive]" in set(frame["term"])
    assert "role[professional]:style[permissive]" in set(frame["term"])
    np.testing.assert_allclose(frame["statistic"], frame["estimate"] / frame["se"])
    record = json.loads(json.dumps(fit.to_dict()))
    assert record["family"] == "binomial" and record["n_clusters"] == 60
    assert record["n_obs"] == 540 and record["test"] == "z"
    mm = marginal_means(fit, None, "style")
    assert set(mm.to_frame()["scale"]) == {"probability"}
    assert json.loads(json.dumps(mm.to_dict()))["means"][0]["level"] == "authoritative"
    clm = fitted("vignette_b", "clm")
    assert "(Intercept)" not in clm.terms and clm.family == "ordinal"
    assert [t[0] for t in clm.thresholds] == ["1|2", "2|3", "3|4"]


def test_additive_model_tests_and_other_levels():
    """Without interactions a factor's joint test is the Wald test of its dummy coefficients,
    and a marginal mean's interval at another level is the link-scale estimate +- z se."""
    ref = reference("vignette_a")
    fit = fit_vignette_model(
        data("vignette_a"),
        model="glmm",
        outcome="respond",
        factors=ref["factors"],
        cluster="respondent",
    )
    tests = factor_tests(fit).set_index("term")
    assert list(tests.index) == list(ref["factors"])
    for name in ref["factors"]:
        idx = [i for i, t in enumerate(fit.terms) if t.startswith(f"{name}[")]
        b, v = fit.estimate[idx], fit.vcov[np.ix_(idx, idx)]
        np.testing.assert_allclose(tests.loc[name, "statistic"], b @ np.linalg.solve(v, b))
        assert tests.loc[name, "df"] == len(idx)
    mm = marginal_means(fit, None, "style", level=0.9).to_frame()
    z = 1.6448536269514722  # qnorm(0.95)
    expit = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    np.testing.assert_allclose(mm["ci_lb"], expit(mm["link_estimate"] - z * mm["se"]))
    np.testing.assert_allclose(mm["ci_ub"], expit(mm["link_estimate"] + z * mm["se"]))


def test_covariates_take_sorted_levels_from_the_data():
    """A categorical covariate is a factor whose levels are the data's, sorted (R's default)."""
    ref = reference("vignette_b")
    factors = {k: v for k, v in ref["factors"].items() if k != "group"}
    fit = fit_vignette_model(
        data("vignette_b"),
        model="lmm",
        outcome="likert",
        factors=factors,
        cluster="pid",
        covariates=["group"],
    )
    as_factor = fit_vignette_model(
        data("vignette_b"),
        model="lmm",
        outcome="likert",
        factors={**factors, "group": ["other", "professional"]},
        cluster="pid",
    )
    assert fit.factors["group"] == ("other", "professional")
    np.testing.assert_allclose(fit.estimate, as_factor.estimate, rtol=1e-12)


def test_number_coded_factors_and_covariates_fit_as_their_labels():
    """Levels coded as numbers (ints in the factors, floats in the data) are the same levels,
    and a numeric covariate's levels sort numerically (2 before 10), as R's factor()."""
    frame = data("vignette_b").copy()
    frame["tone"] = frame["tone"].map({"warm": 1, "harsh": 2, "neutral": 3}).astype(float)
    frame["group"] = frame["group"].map({"other": 10, "professional": 2})
    fit = fit_vignette_model(
        frame,
        model="clm",
        outcome="likert",
        factors={"tone": [1, 2, 3], "conduct": ["calm", "disruptive"]},
        cluster="pid",
        covariates=["group"],
    )
    assert fit.factors["tone"] == ("1", "2", "3") and fit.factors["group"] == ("2", "10")
    assert fit.terms[:2] == ("tone[2]", "tone[3]")
    labelled = fit_vignette_model(
        data("vignette_b"),
        model="clm",
        outcome="likert",
        factors={
            "tone": ["warm", "harsh", "neutral"],
            "conduct": ["calm", "disruptive"],
            "group": ["professional", "other"],
        },
        cluster="pid",
    )
    np.testing.assert_allclose(fit.estimate, labelled.estimate, rtol=1e-10)


def test_clm_robust_covariance_is_the_cluster_sandwich():
    """The cluster-robust covariance: bread = the inverse information, meat = outer products of
    per-respondent score sums, the scores checked against finite differences of the
    log-likelihood."""
    frame = data("vignette_b")
    x = pd.get_dummies(frame[["tone", "conduct"]], drop_first=True).to_numpy(dtype=float)
    codes = frame["likert"].to_numpy() - 1
    res = fit_clm(codes, x, 4)
    params = np.concatenate([res.thresholds, res.beta])
    value, scores, hess = loglik_parts(params, codes, x, 4)
    np.testing.assert_allclose(scores.sum(axis=0), 0, atol=1e-8)
    step = 1e-6
    for j in range(len(params)):
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        rows_up = np.log(_row_probs(up, codes, x, 4))
        rows_down = np.log(_row_probs(down, codes, x, 4))
        np.testing.assert_allclose(scores[:, j], (rows_up - rows_down) / (2 * step), atol=1e-6)
    groups = frame["pid"].to_numpy()
    meat = np.zeros((len(params), len(params)))
    for g in np.unique(groups):
        s = scores[groups == g].sum(axis=0)
        meat += np.outer(s, s)
    bread = np.linalg.inv(-hess)
    np.testing.assert_allclose(robust_vcov(res, codes, x, 4, groups), bread @ meat @ bread)
    fit = fit_vignette_model(
        frame,
        model="clm",
        outcome="likert",
        factors={"tone": ["harsh", "neutral", "warm"], "conduct": ["calm", "disruptive"]},
        cluster="pid",
        robust=True,
    )
    assert fit.robust and fit.to_dict()["robust"]
    np.testing.assert_allclose(fit.estimate, res.beta, rtol=1e-8)
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(bread @ meat @ bread))[3:], rtol=1e-8)


def _row_probs(params, codes, x, k):
    """Each row's category probability under the cumulative logit (independent of the module)."""
    theta = np.concatenate([[-np.inf], params[: k - 1], [np.inf]])
    eta = x @ params[k - 1 :]
    cdf = 1 / (1 + np.exp(-(theta[None, :] - eta[:, None])))
    return cdf[np.arange(len(codes)), codes + 1] - cdf[np.arange(len(codes)), codes]


# ---- bad input ------------------------------------------------------------------------------

A_FACTORS = reference("vignette_a")["factors"]


def _fit_a(frame, model="gee", outcome="respond", factors=None, **kw):
    return fit_vignette_model(
        frame,
        model=model,
        outcome=outcome,
        factors=factors or A_FACTORS,
        cluster="respondent",
        **kw,
    )


def _messages(err: InputError) -> list[str]:
    return [p.message() for p in err.errors]


def test_value_outside_the_levels_names_row_column_and_value():
    frame = data("vignette_a").copy()
    frame.loc[4, "style"] = "lenient"
    frame.loc[7, "behaviour"] = "Prosocial"
    with pytest.raises(InputError) as info:
        _fit_a(frame)
    problems = {(p.row, p.column, p.value) for p in info.value.errors}
    assert (6, "style", "lenient") in problems  # spreadsheet row: header = row 1
    assert (9, "behaviour", "Prosocial") in problems
    assert any("one of the levels" in m for m in _messages(info.value))


def test_level_without_data_is_named():
    factors = {**A_FACTORS, "location": [*A_FACTORS["location"], "library"]}
    with pytest.raises(InputError) as info:
        _fit_a(data("vignette_a"), factors=factors)
    (problem,) = info.value.errors
    assert (problem.column, problem.value) == ("location", "library")
    assert "occurs in the data" in problem.expected


@pytest.mark.parametrize("model", ["gee", "glmm", "lmm", "clm"])
def test_constant_outcome_is_an_input_error(model):
    frame = data("vignette_a").copy()
    outcome = "respond" if model in ("gee", "glmm") else "responsibility"
    frame[outcome] = 1
    with pytest.raises(InputError) as info:
        _fit_a(frame, model=model, outcome=outcome)
    (problem,) = info.value.errors
    assert problem.column == outcome and "constant" in problem.expected


def test_cluster_with_one_rating_and_non_binary_outcome_all_reported():
    frame = data("vignette_a").copy()
    frame.loc[0, "respondent"] = "R999"  # a respondent with a single rating
    frame.loc[10, "respond"] = 2
    with pytest.raises(InputError) as info:
        _fit_a(frame)
    problems = {(p.row, p.column, p.value) for p in info.value.errors}
    assert (2, "respondent", "R999") in problems
    assert (12, "respond", 2) in problems


def test_missing_column_and_bad_arguments():
    with pytest.raises(InputError, match="'rating'"):
        _fit_a(data("vignette_a"), outcome="rating")
    with pytest.raises(ValueError, match="model must be one of"):
        _fit_a(data("vignette_a"), model="probit")
    with pytest.raises(ValueError, match="'gender'"):
        _fit_a(data("vignette_a"), interactions=[("role", "gender")])
    with pytest.raises(ValueError, match="applies to the clm model"):
        _fit_a(data("vignette_a"), model="lmm", outcome="responsibility", robust=True)
    with pytest.raises(ValueError, match="not a factor"):
        marginal_means(fitted("vignette_a", "gee"), None, "gender")


def test_empty_interaction_cell_is_named():
    frame = data("vignette_b")
    frame = frame[~((frame["group"] == "professional") & (frame["conduct"] == "disruptive"))]
    frame = frame[frame.groupby("pid")["pid"].transform("size") > 1]
    with pytest.raises(InputError) as info:
        fit_vignette_model(
            frame,
            model="gee",
            outcome="helps",
            factors=reference("vignette_b")["factors"],
            cluster="pid",
            interactions=[("group", "conduct")],
        )
    assert [p.column for p in info.value.errors] == ["group[professional]:conduct[disruptive]"]


def test_missing_values_leave_rows_out_as_r_does():
    frame = data("vignette_b").copy()
    frame.loc[[3, 50], "likert"] = np.nan
    fit = fit_vignette_model(
        frame,
        model="clm",
        outcome="likert",
        factors=reference("vignette_b")["factors"],
        cluster="pid",
    )
    assert fit.n_obs == len(frame) - 2
