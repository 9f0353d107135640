"""Variance components on the boundary of the parameter space, on real data.

Expected numbers: ``tests/reference/datasets/crede2010/reference.json`` (metafor 3.8.1
``rma.mv``, made by ``make_datasets.R``; each case carries its R call). The sample-level variance
of crede2010 is on the boundary (R: 1.4e-12 without, 1.3e-12 with ``~ year``); rma.mv converges
there, so must the engine, whatever the type and order of the ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models import fit
from intervention_meta.models.design import build_design
from intervention_meta.models.likelihood import MarginalLikelihood, build_structure
from intervention_meta.models.optimize import fisher_scoring_batch

FOLDER = Path(__file__).parent / "reference" / "datasets" / "crede2010"
LEVELS = ["studyid", "sampleid", "esid"]
REF = json.loads((FOLDER / "reference.json").read_text())


def _crede(ids: str = "int", shuffle: int | None = None) -> pd.DataFrame:
    """The effects with the studies merged in, R's yi/vi; ids as read (int) or as text (str)."""
    effects = pd.read_csv(FOLDER / "effects.csv")
    effects["yi"], effects["vi"] = REF["yi"], REF["vi"]
    data = effects.merge(pd.read_csv(FOLDER / "studies.csv"), on="studyid", how="left")
    if ids == "str":
        data[LEVELS] = data[LEVELS].astype(str)
    if shuffle is not None:
        data = data.sample(frac=1.0, random_state=shuffle)
    return data


def _fits(mods: list[str] | None) -> dict[str, object]:
    variants = {"int": _crede("int"), "str": _crede("str"), "str shuffled": _crede("str", 3)}
    return {
        name: fit(data, mods=mods, random=LEVELS, method="REML", test="t")
        for name, data in variants.items()
    }


@pytest.mark.parametrize(("mods", "case"), [(None, "overall"), (["year"], "mods_year")])
def test_boundary_fit_converges_and_does_not_depend_on_id_type_or_order(mods, case) -> None:
    r = REF["cases"][case]["results"]
    fits = _fits(mods)
    first = fits["int"]
    for name, res in fits.items():
        conv = res.convergence
        assert res.converged, f"{name}: {conv.reason}"
        assert conv.optimizer == "fisher-scoring" and not conv.fallback_used, name
        assert res.sigma2["sampleid"] == 0.0, name
        sigma2 = [res.sigma2[lev] for lev in LEVELS]
        np.testing.assert_allclose(sigma2, [first.sigma2[lev] for lev in LEVELS], rtol=1e-10)
        np.testing.assert_allclose(res.b, first.b, rtol=1e-10)
        np.testing.assert_allclose(res.se, first.se, rtol=1e-10)
        np.testing.assert_allclose(res.logLik, first.logLik, rtol=1e-10)
        # metafor: components 1e-5 relative (the boundary one 1e-8 absolute), the rest 1e-6
        np.testing.assert_allclose(sigma2, r["sigma2"], rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(res.b, r["b"], rtol=1e-6)
        np.testing.assert_allclose(res.se, r["se"], rtol=1e-6)
        np.testing.assert_allclose(res.logLik, r["loglik"], rtol=1e-6)
        np.testing.assert_allclose(res.QM, r["qm"], rtol=1e-6)
        np.testing.assert_allclose(res.QE, r["qe"], rtol=1e-6)


def test_scoring_cut_at_zero_searches_along_the_projection_arc() -> None:
    """From rma.mv's start the first steps cut the sample level at 0 with a direction along which
    the likelihood decreases; halving that cut step never helped, halving before the cut does."""
    design = build_design(_crede("str", 3), random=LEVELS)
    lik = MarginalLikelihood(
        build_structure(design.X, design.v, design.level_codes), design.y, reml=True
    )
    free = np.ones(3, dtype=bool)
    theta, _, converged, reasons = fisher_scoring_batch(
        lik, np.full((1, 3), 0.019326225254101770), free, 1e-10, 100, "project"
    )
    assert converged[0], reasons[0]
    grad = lik.evaluate(theta[0], order=1).grad
    assert theta[0, 1] == 0.0 and grad[1] < 0  # Kuhn-Tucker: held at zero by a negative score
    assert np.max(np.abs(grad[[0, 2]])) < 1e-6


def test_genuine_failure_at_the_boundary_is_still_reported() -> None:
    res = fit(_crede("str"), random=LEVELS, control={"optimizer": "lbfgsb", "maxiter": 2})
    assert not res.converged
    assert res.convergence.reason


def test_cycling_one_level_scoring_is_finished_by_projected_scoring() -> None:
    """metafor's unguarded Fisher scoring cycles on these seven trials (the observed information
    exceeds twice the expected one near the maximum); the guarded iteration takes over and reaches
    the maximum the single-level multilevel model reaches."""
    rng = np.random.default_rng(1577291459)
    vi = rng.uniform(0.01, 0.3, 7)
    yi = 0.3 + rng.normal(0, 0.1, 7) + rng.normal(0, np.sqrt(vi))
    df = pd.DataFrame({"study": rng.permutation(7) + 100, "yi": yi, "vi": vi})
    tight = {"threshold": 1e-12, "maxiter": 500}
    one = fit(df, method="REML", control=tight)
    mv = fit(df, random=["study"], method="REML", control=tight)
    assert one.converged and one.convergence.fallback_used
    assert one.convergence.optimizer == "fisher-scoring"
    assert "projected scoring" in one.convergence.reason
    assert one.convergence.gradient_norm < 1e-9
    np.testing.assert_allclose(one.tau2, mv.sigma2["study"], rtol=1e-12)
    for kind in ("ML", "REML"):
        for key, val in one.fit_stats[kind].items():
            np.testing.assert_allclose(mv.fit_stats[kind][key], val, rtol=1e-12)
