"""Centring and scaling of continuous moderators (``moderators.center`` / ``moderators.scale``).

Expected numbers: the same model fitted on the raw moderator, by the package itself. Centring
:math:`x` at :math:`c` reparametrises :math:`\\beta_0 + \\beta_1 x` as
:math:`(\\beta_0 + \\beta_1 c) + \\beta_1 (x - c)`: the slope, its SE and test, the variance
components and the likelihood are unchanged, and the new intercept is the raw model's prediction
at :math:`x = c`. Scaling by :math:`s` multiplies the slope and its SE by :math:`s` and leaves
its test unchanged. Data: Assink & Wibbelink (2016), publication year as the moderator
(``tests/reference/assink2016.csv``), and a small synthetic data set of another shape.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_data import trials

from intervention_meta.analyses.analysis_model import AnalysisData, ModelSpec, load_analysis_data
from intervention_meta.analyses.moderators import analyse_moderator, centring

REPO = Path(__file__).resolve().parents[1]
REF = Path(__file__).parent / "reference"
ASSINK_CODEBOOK = REPO / "data" / "examples" / "assink2016" / "codebook.yaml"
SPEC = ModelSpec()
EXACT = 1e-10  # a reparametrisation: the same numbers up to rounding


@cache
def _assink() -> AnalysisData:
    return load_analysis_data(REF / "assink2016.csv", ASSINK_CODEBOOK)


def _terms(result) -> pd.DataFrame:
    return pd.DataFrame([r.__dict__ for r in result.rows]).set_index("term")


def _same(a, b, rtol=EXACT) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=EXACT)


def _check_reparametrisation(ad: AnalysisData, name: str) -> None:
    raw = analyse_moderator(ad, name, SPEC, center="none")
    mean = float(pd.to_numeric(ad.data[name], errors="coerce").mean())
    centred = analyse_moderator(ad, name, SPEC, center="mean")
    r, c = _terms(raw), _terms(centred)
    cols = ["estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "cr2_se", "cr2_df", "cr2_pval"]
    _same(c.loc["slope", cols], r.loc["slope", cols])
    _same(centred.test.stat, raw.test.stat)
    _same(centred.test.cr2_fstat, raw.test.cr2_fstat)
    _same(list(centred.sigma2.values()), list(raw.sigma2.values()), rtol=1e-8)
    # the intercept is the raw model's prediction at the mean
    b0, b1 = r.loc["intercept", "estimate"], r.loc["slope", "estimate"]
    _same(c.loc["intercept", "estimate"], b0 + b1 * mean)
    assert centred.centring == {"rule": "mean", "center": pytest.approx(mean), "scale": 1.0}
    assert raw.centring["rule"] == "none" and raw.centring["center"] == 0.0
    # scaled by 10: the slope per 10 units, its test unchanged, the intercept as centred
    ten = analyse_moderator(ad, name, SPEC, center="mean", scale=10.0)
    t = _terms(ten)
    _same(t.loc["slope", ["estimate", "se"]], 10 * r.loc["slope", ["estimate", "se"]])
    _same(t.loc["slope", ["stat", "pval"]], r.loc["slope", ["stat", "pval"]])
    _same(t.loc["intercept", "estimate"], c.loc["intercept", "estimate"])
    assert t.loc["slope", "label"].startswith("Slope per 10 units of")


def test_centring_changes_only_the_intercept_assink2016_year():
    _check_reparametrisation(_assink(), "year")


def test_centring_changes_only_the_intercept_on_a_small_synthetic_data_set():
    """Another shape: 8 trials of 1-3 arms, the moderator a dose in mg (not a year)."""
    ad = trials([1, 2, 3, 2, 1, 3, 2, 2], seed=12)
    _check_reparametrisation(ad, "dose_mg")


def test_centre_may_be_a_number_and_bad_settings_are_refused():
    x = pd.Series([2000.0, 2010.0, 2020.0])
    assert centring(x, 2000).to_dict() == {"rule": "value", "center": 2000.0, "scale": 1.0}
    assert centring(x, "mean", 10).center == 2010.0
    assert centring(x, "none").center == 0.0
    with pytest.raises(ValueError, match="moderators.center"):
        centring(x, "median")
    with pytest.raises(ValueError, match="moderators.scale"):
        centring(x, "mean", 0)


@pytest.mark.pipeline
def test_pipeline_centres_continuous_moderators_at_their_mean(example_run):
    """The example config leaves moderators.center at its default (mean): the JSON records the
    centre, the intercept's label names it, and the intercept is the prediction there."""
    res = example_run.results
    mj = json.loads((res / "models" / "moderators.json").read_text(encoding="utf-8"))
    effects = pd.read_csv(res / "effect_sizes.csv")
    continuous = [m for m in mj["single"]["moderators"] if m["kind"] == "continuous"]
    assert continuous
    for m in continuous:
        expected = pd.to_numeric(effects[m["name"]], errors="coerce").mean()
        assert m["centring"]["rule"] == "mean"
        assert m["centring"]["center"] == pytest.approx(expected, rel=1e-12)
        intercept = next(r for r in m["rows"] if r["term"] == "intercept")
        assert "its mean" in intercept["label"]
    assert mj["centring"]["center"] == "mean"
