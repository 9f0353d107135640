"""CHE working model (correlated and hierarchical effects): ``fit(..., rho=...)`` against metafor.

Expected values: ``tests/reference/extra/che_cr2_reference.json`` (made by
``che_cr2_reference.R``; R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8):
``V <- impute_covariance_matrix(dat$vi, cluster=dat$study, r=rho); rma.mv(yi, V,
random=~1|study/esid, data=dat, method="REML")`` on assink2016, rho 0.2 / 0.6 / 0.8, intercept-only
and ``mods = ~ deltype + year``. Tolerances: 1e-6 relative, variance components 1e-5.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models import fit

REF = Path(__file__).parent / "reference"
CHE = json.loads((REF / "extra" / "che_cr2_reference.json").read_text())
DATA = pd.read_csv(REF / "assink2016.csv")
FIT_CASES = [name for name in CHE["cases"] if name.endswith("_reml")]


def che_fit(call: str):
    rho = float(re.search(r"r=([\d.]+)", call).group(1))
    m = re.search(r"mods = ~ ([^,)]+)", call)
    mods = [t.strip() for t in m.group(1).split("+")] if m else None
    return fit(DATA, random=["study", "esid"], rho=rho, mods=mods, method="REML")


@pytest.mark.parametrize("case", FIT_CASES)
def test_che_fit_matches_metafor_with_imputed_covariance(case: str) -> None:
    """Estimated components, likelihood, b and se of the free fit.

    metafor's nlminb stops up to ~6e-7 (relative) short of the REML optimum here (its Newton step
    from there is ~3e-8; our Fisher scoring and L-BFGS-B agree to 4e-10 at a likelihood at least as
    high); that is within the 1e-5 for variance components but moves small p values by up to 2e-6,
    so inference is checked at metafor's own components in the next test.
    """
    entry = CHE["cases"][case]
    r = entry["results"]
    res = che_fit(entry["call"])
    assert res.converged
    assert list(res.coef_names) == r["coef_names"]
    np.testing.assert_allclose(list(res.sigma2.values()), r["sigma2"], rtol=1e-5)
    assert res.logLik >= r["fit_stats"]["loglik"] - 1e-9
    for key in ("b", "se", "ci_lb", "ci_ub"):
        np.testing.assert_allclose(getattr(res, key), r[key], rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(res.QE, r["qe"], rtol=1e-6)
    np.testing.assert_allclose(res.QEp, r["qep"], rtol=1e-6)
    fs = r["fit_stats"]
    for ours, theirs in [("logLik", "loglik"), ("deviance", "deviance"), ("AIC", "aic")]:
        np.testing.assert_allclose(getattr(res, ours), fs[theirs], rtol=1e-6, err_msg=theirs)
    np.testing.assert_allclose(res.BIC, fs["bic"], rtol=1e-6)
    np.testing.assert_allclose(res.AICc, fs["aicc"], rtol=1e-6)


@pytest.mark.parametrize("case", FIT_CASES)
def test_che_inference_at_metafor_components_matches_metafor(case: str) -> None:
    """GLS step and tests at metafor's variance components (fixed) reproduce metafor to 1e-10."""
    entry = CHE["cases"][case]
    r = entry["results"]
    rho = float(re.search(r"r=([\d.]+)", entry["call"]).group(1))
    m = re.search(r"mods = ~ ([^,)]+)", entry["call"])
    mods = [t.strip() for t in m.group(1).split("+")] if m else None
    res = fit(DATA, random=["study", "esid"], rho=rho, mods=mods, sigma2_fixed=r["sigma2"])
    for key in ("b", "se", "zval", "pval", "ci_lb", "ci_ub"):
        np.testing.assert_allclose(getattr(res, key), r[key], rtol=1e-10, err_msg=key)
    np.testing.assert_allclose(res.vb, r["vb"], rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(res.QM, r["qm"], rtol=1e-10)
    np.testing.assert_allclose(res.QMp, r["qmp"], rtol=1e-10)
    np.testing.assert_allclose(res.logLik, r["fit_stats"]["loglik"], rtol=1e-10)


def test_che_cluster_blocks_hold_imputed_sampling_covariance_plus_random_effects() -> None:
    """V_j = rho*sqrt(v_i v_j) off the diagonal + v_i on it + sigma2_study J + sigma2_esid I."""
    rho = 0.6
    res = fit(DATA, random=["study", "esid"], rho=rho)
    s_study, s_esid = res.sigma2["study"], res.sigma2["esid"]
    blocks = res.cluster_blocks()
    assert [b.cluster for b in blocks] == sorted(DATA["study"].unique().tolist())
    for block in blocks:
        v = DATA["vi"].to_numpy()[block.index]
        n = len(v)
        expected = rho * np.sqrt(np.outer(v, v))
        np.fill_diagonal(expected, v)
        expected += s_study * np.ones((n, n)) + s_esid * np.eye(n)
        np.testing.assert_allclose(block.V, expected, rtol=1e-13)


def test_rho_zero_is_the_independent_model() -> None:
    a = fit(DATA, random=["study", "esid"], rho=0.0)
    b = fit(DATA, random=["study", "esid"])
    np.testing.assert_allclose(list(a.sigma2.values()), list(b.sigma2.values()), rtol=1e-12)
    np.testing.assert_allclose(a.b, b.b, rtol=1e-12)
