"""The display of the effect measure (``outputs.labels``): symbols, axis titles, direction and
back-transformed values for every measure of the registry.

Expected back-transformed values are the textbook transformations written out with ``math``:
exp for the log ratio measures (Borenstein et al. 2009, eq. 5.3 and 6.3), tanh for Fisher's z
(eq. 6.3 of ch. 6: r = (e^{2z} - 1) / (e^{2z} + 1)) and the inverse logit 1 / (1 + e^{-x}) for a
logit proportion (metafor ``transf.ilogit``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from intervention_meta.effect_sizes.measures import MEASURES, get_measure
from intervention_meta.outputs.labels import (
    BackTransformed,
    measure_labels,
    read_measure_labels,
)

# code -> (symbol, axis title, back symbol, transformation written out)
EXPECTED = {
    "SMD": ("g", "Hedges' g", None, None),
    "MD": ("MD", "Mean difference", None, None),
    "ZCOR": ("z", "Fisher's z", "r", lambda x: (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)),
    "COR": ("r", "Correlation r", None, None),
    "OR": ("log OR", "Log odds ratio", "OR", math.exp),
    "RR": ("log RR", "Log risk ratio", "RR", math.exp),
    "RD": ("RD", "Risk difference", None, None),
    "ROM": ("log RoM", "Log ratio of means", "RoM", math.exp),
    "PLO": ("logit p", "Logit proportion", "p", lambda x: 1 / (1 + math.exp(-x))),
    "PR": ("p", "Proportion", None, None),
}


def record(code: str, **extra) -> dict:
    """The ``measure`` record the effect-size step writes (the registry entry plus direction)."""
    m = get_measure(code)
    return {**m.to_dict(), "direction": m.default_direction, "direction_by": {}, **extra}


def test_every_measure_of_the_registry_has_a_display() -> None:
    assert set(EXPECTED) | {"GEN"} == set(MEASURES)


@pytest.mark.parametrize("code", list(EXPECTED))
def test_symbol_axis_title_and_back_transform_per_measure(code: str) -> None:
    symbol, axis, back_symbol, transform = EXPECTED[code]
    lab = measure_labels({"measure": record(code)})
    assert (lab.code, lab.symbol, lab.axis_title, lab.back_symbol) == (
        code,
        symbol,
        axis,
        back_symbol,
    )
    estimate, lower, upper, pi_lb, pi_ub = 0.5, 0.1, 0.9, -0.3, 1.3
    back = lab.back_transformed(estimate, lower, upper, pi_lb, pi_ub)
    if transform is None:
        assert back is None and lab.back_scale() is None
        return
    assert isinstance(back, BackTransformed) and back.symbol == back_symbol
    got = [back.estimate, back.ci_lb, back.ci_ub, back.pi_lb, back.pi_ub]
    want = [transform(x) for x in (estimate, lower, upper, pi_lb, pi_ub)]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # the secondary axis of the forest plot: forward is the transformation, inverse undoes it
    scale = lab.back_scale()
    x = np.array([-1.2, 0.0, 0.7])
    np.testing.assert_allclose(scale.forward(x), [transform(v) for v in x], rtol=1e-14)
    np.testing.assert_allclose(scale.inverse(scale.forward(x)), x, rtol=1e-12, atol=1e-14)


def test_back_transform_of_a_log_odds_ratio_by_hand() -> None:
    """log OR -0.7 [-1.0, -0.4]: OR exp(-0.7) = 0.4966, CI [0.3679, 0.6703]."""
    back = measure_labels(record("OR")).back_transformed(-0.7, -1.0, -0.4)
    assert back.estimate == pytest.approx(0.496585303791, rel=1e-11)
    assert back.ci_lb == pytest.approx(0.367879441171, rel=1e-11)
    assert back.ci_ub == pytest.approx(0.670320046036, rel=1e-11)
    assert back.pi_lb is None and back.pi_ub is None


def test_missing_bounds_stay_missing() -> None:
    back = measure_labels(record("ZCOR")).back_transformed(0.3, None, float("nan"))
    assert back.estimate == pytest.approx(math.tanh(0.3))
    assert back.ci_lb is None and back.ci_ub is None


def test_declared_direction_and_per_domain_direction_in_the_note() -> None:
    lab = measure_labels(
        record(
            "RR",
            direction="below 1 = fewer cases in the vaccinated group.",
            direction_by={"mortality": "below 1 = fewer deaths"},
        )
    )
    note = lab.direction_note()
    assert note == (
        "Effect measure: Log risk ratio (log RR). Direction: below 1 = fewer cases in the "
        "vaccinated group; by domain: mortality: below 1 = fewer deaths."
    )
    assert lab.direction_for("mortality") == "below 1 = fewer deaths"
    assert lab.direction_for("other") == lab.direction


def test_default_direction_when_none_declared() -> None:
    m = get_measure("ZCOR")
    lab = measure_labels({"code": "ZCOR"})
    assert lab.direction == m.default_direction
    assert "Hedges" not in lab.direction_note() and "benefit" not in lab.direction_note()


def test_named_given_measure_uses_its_name() -> None:
    lab = measure_labels(record("GEN", name="log hazard ratio", axis_label="log hazard ratio"))
    assert (lab.symbol, lab.axis_title, lab.name) == (
        "log hazard ratio",
        "Log hazard ratio",
        "log hazard ratio",
    )
    assert lab.back_transformed(0.2) is None


def test_without_a_record_the_labels_are_those_of_smd() -> None:
    """Results written before the measure was declared: the default measure, SMD."""
    lab = measure_labels(None)
    assert (lab.code, lab.symbol, lab.axis_title) == ("SMD", "g", "Hedges' g")
    assert lab.direction == get_measure("SMD").default_direction


def test_italic_symbols_in_html() -> None:
    assert measure_labels(record("SMD")).symbol_html() == "<i>g</i>"
    assert measure_labels(record("OR")).symbol_html() == "log OR"


def test_read_from_the_summary_file(tmp_path) -> None:
    path = tmp_path / "effect_sizes_summary.json"
    path.write_text(json.dumps({"computed": 3, "measure": record("PLO", direction="up")}))
    lab = read_measure_labels(path)
    assert (lab.code, lab.direction) == ("PLO", "up")
    assert read_measure_labels(tmp_path / "missing.json").code == "SMD"


@pytest.mark.parametrize("code", sorted(MEASURES))
def test_unback_inverts_back_on_the_display_scale(code):
    measure = MEASURES[code]
    x = np.array([-1.2, -0.3, 0.0, 0.4, 1.1])
    np.testing.assert_allclose(measure.unback(measure.back(x)), x, rtol=1e-12, atol=1e-15)
