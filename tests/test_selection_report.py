"""The selection-model figure and report section.

The records are ``models/bias.json``'s (keys in docs/results.md); the synthetic ones here are
written by hand in that shape, with two and three p-value intervals; the pipeline tests read the
example's and assink2016's runs. Expected numbers are the records' own (nothing is re-estimated
by the figure or the section).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from intervention_meta.analyses.analysis_model import ModelSpec, load_analysis_data
from intervention_meta.analyses.bias import bias_analysis
from intervention_meta.methods.selection import selection_model
from intervention_meta.outputs.labels import measure_labels
from intervention_meta.outputs.report import SECTIONS
from intervention_meta.outputs.selection_section import estimates_rows, selection_section_html
from intervention_meta.plots.selection import (
    MIN_PER_INTERVAL,
    interval_label,
    selection_usable,
    selection_weights_plot,
)


def _weight(p_lb, p_ub, k, est, lb=None, ub=None, boot=True):
    return {
        "interval": f"{p_lb} < p <= {p_ub}",
        "p_lb": p_lb,
        "p_ub": p_ub,
        "k": k,
        "estimate": est,
        "se": 0.1,
        "ci_lb": None if lb is None else lb * 0.9,
        "ci_ub": None if ub is None else ub * 1.1,
        "boot_ci_lb": lb if boot else None,
        "boot_ci_ub": ub if boot else None,
    }


def _selection(weights, converged=True):
    return {
        "k": sum(w["k"] for w in weights),
        "n_clusters": 12,
        "level": 0.9,
        "converged": converged,
        "weights": weights,
        "adjusted_mean": {"estimate": 0.21, "ci_lb": 0.05, "ci_ub": 0.37, "boot_ci_lb": 0.04,
                          "boot_ci_ub": 0.39},
        "unadjusted_mean": {"estimate": 0.30, "ci_lb": 0.2, "ci_ub": 0.4},
        "wald": {"statistic": 5.5, "df": 2, "pval": 0.064},
        "bootstrap": {"replications": 99, "converged": 99, "seed": 1},
    }  # fmt: skip


THREE = [
    _weight(0.0, 0.025, 20, 1.0),
    _weight(0.025, 0.5, 9, 0.42, 0.18, 0.95),
    _weight(0.5, 1.0, 6, 0.15, 0.04, 0.61),
]


def _bias(selection, **extra):
    return {
        "model_spec": {"level": 0.9},
        "pooled": {"model": "three-level model", "estimate": 0.3, "se": 0.05, "ci_lb": 0.22,
                   "ci_ub": 0.38, "df": 34.0, "pval": 1e-6, "level": 0.9},
        "selection": selection,
        "pet_peese_model": {"chosen": "PET", "estimate": 0.12, "se": 0.08, "df": 7.2,
                            "pval": 0.17, "ci_lb": -0.03, "ci_ub": 0.27},
        "egger_multilevel": {"slope": 1.4, "statistic": 2.2, "dfs": 33.0, "pval": 0.035,
                             "stat_name": "tval"},
        "egger_multilevel_cr2": {"slope": {"tstat": 1.9, "df_satt": 6.1, "p_satt": 0.1}},
        "not_computed": {},
        **extra,
    }  # fmt: skip


# ------------------------------------------------------------------------------ usable
def test_weights_are_usable_when_converged_with_enough_effects_per_interval():
    assert selection_usable(_selection(THREE)) == (True, "")


def test_not_computed_not_converged_and_sparse_intervals_say_why():
    ok, why = selection_usable(None, "an interval has no p value")
    assert not ok and "could not be fitted: an interval has no p value" in why
    ok, why = selection_usable(_selection(THREE, converged=False))
    assert not ok and "did not converge" in why
    sparse = [*THREE[:2], _weight(0.5, 1.0, MIN_PER_INTERVAL - 1, 0.1, 0.01, 0.9)]
    ok, why = selection_usable(_selection(sparse))
    assert not ok
    assert f".5 < p \u2264 1: {MIN_PER_INTERVAL - 1}" in why
    assert f"at least {MIN_PER_INTERVAL} per interval" in why


def test_interval_labels_drop_the_leading_zero():
    assert [interval_label(w) for w in THREE] == [
        "0 < p \u2264 .025",
        ".025 < p \u2264 .5",
        ".5 < p \u2264 1",
    ]


# ------------------------------------------------------------------------------ figure
def test_weights_figure_draws_each_weight_and_its_bootstrap_interval_on_a_log_axis():
    fig = selection_weights_plot(_selection(THREE))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lines = [ln.get_xydata() for ln in ax.get_lines()]
    # the reference line at 1 across the axes, the reference point at 1, each interval's bar
    assert any(len(xy) == 2 and xy[0, 1] == xy[1, 1] == 1.0 and xy[0, 0] != xy[1, 0]
               for xy in lines)  # fmt: skip
    points = {tuple(xy[0]) for xy in lines if len(xy) == 1}
    assert points == {(0.0, 1.0), (1.0, 0.42), (2.0, 0.15)}
    bars = {tuple(map(tuple, xy)) for xy in lines if len(xy) == 2 and xy[0, 0] == xy[1, 0]}
    assert bars == {((1.0, 0.18), (1.0, 0.95)), ((2.0, 0.04), (2.0, 0.61))}
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].endswith("(k = 20)\nreference") and "(k = 6)" in ticks[2]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "90% bootstrap percentile interval" in legend
    lo, hi = ax.get_ylim()
    assert lo < 0.04 and hi > 1.0


def test_weights_figure_falls_back_to_wald_intervals_without_a_bootstrap():
    weights = [_weight(0.0, 0.025, 20, 1.0), _weight(0.025, 1.0, 15, 0.5, 0.2, 1.2, boot=False)]
    fig = selection_weights_plot(_selection(weights))
    bars = [ln.get_xydata() for ln in fig.axes[0].get_lines() if len(ln.get_xydata()) == 2]
    assert any(xy[0, 0] == xy[1, 0] == 1.0 and xy[0, 1] == pytest.approx(0.18) for xy in bars)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "90% cluster-robust Wald interval" in legend


# ------------------------------------------------------------------------------ section
def _cite(*keys):
    return "(" + "; ".join(keys) + ")"


def test_section_shows_the_figure_and_the_table_of_estimates_from_the_record():
    body = selection_section_html(_bias(_selection(THREE)), "<figure>F</figure>", _cite,
                                  measure_labels(None))  # fmt: skip
    assert "<figure>F</figure>" in body
    assert ".025 &lt; p \u2264 .5: 0.42 [0.18, 0.95]" in body
    rows = estimates_rows(_bias(_selection(THREE)))
    assert [r["method"].split(" (")[0] for r in rows] == [
        "Unadjusted mean",
        "Selection-adjusted mean",
        "PET-PEESE conditional estimate",
        "Egger-type test",
    ]
    assert [r["estimate"] for r in rows] == ["0.30", "0.21", "0.12", ""]
    assert rows[1]["ci"] == "[0.04, 0.39] (bootstrap)"
    assert "0.30 [0.20, 0.40]" in rows[1]["note"]  # the same model without selection
    assert "<i>p</i> = .064" in rows[1]["test"]
    assert rows[3]["test"].startswith("slope 1.40: <i>t</i>(33) = 2.20")
    assert "CR2: <i>t</i>(6.1) = 1.90" in rows[3]["test"]
    for key in ("vevea1995", "pustejovsky2025", "rodgers2021", "stanley2017"):
        assert key in body
    assert "Caveats" in body and "one-sided <i>p</i> value" in body


def test_section_says_why_instead_of_the_figure_when_the_model_is_not_usable():
    bias = _bias(None, not_computed={"selection": "needs at least one p value per interval"})
    body = selection_section_html(bias, "<figure>F</figure>", _cite, measure_labels(None))
    assert "<figure>" not in body
    assert "could not be fitted: needs at least one p value per interval" in body
    # the other methods' rows are still there
    assert "PET-PEESE conditional estimate" in body and "Selection-adjusted" not in body


# ------------------------------------------------------------------------------ pipeline
def _section(doc: str, section_id: str) -> str:
    start = doc.index(f'<h2 id="{section_id}">')
    nxt = doc.find("<h2 id=", start + 1)
    return doc[start : nxt if nxt > 0 else len(doc)]


def test_example_report_has_the_selection_section_with_its_figure(example_run):
    res = example_run.results
    doc = (res / "report.html").read_text(encoding="utf-8")
    assert f'<a href="#selection-model">{SECTIONS["selection-model"]}</a>' in doc  # contents
    sec = _section(doc, "selection-model")
    manifest = json.loads((res / "figures" / "figures.json").read_text(encoding="utf-8"))
    fig = next(f for f in manifest["figures"] if f["stem"] == "selection_weights")
    assert fig["section"] == "selection" and fig["details"]["usable"] is True
    assert (res / "figures" / "selection_weights.png").stat().st_size > 0
    assert 'id="figure-selection_weights"' in sec
    bias = json.loads((res / "models" / "bias.json").read_text(encoding="utf-8"))
    w = bias["selection"]["weights"][1]
    assert f"{w['estimate']:.2f} [{w['boot_ci_lb']:.2f}, {w['boot_ci_ub']:.2f}]" in sec
    assert bias["pooled"]["estimate"] == pytest.approx(bias["pooled_estimate"], rel=0, abs=0)
    assert re.search(r"Unadjusted mean \(analysis model\)</td><td class=\"num\">"
                     f"{bias['pooled']['estimate']:.2f}<", sec)  # fmt: skip


def test_assink2016_report_handles_the_selection_model(assink_run):
    res = assink_run.results
    doc = (res / "report.html").read_text(encoding="utf-8")
    sec = _section(doc, "selection-model")
    bias = json.loads((res / "models" / "bias.json").read_text(encoding="utf-8"))
    usable, why = selection_usable(
        bias.get("selection"), (bias.get("not_computed") or {}).get("selection", "")
    )
    manifest = json.loads((res / "figures" / "figures.json").read_text(encoding="utf-8"))
    fig = next(f for f in manifest["figures"] if f["stem"] == "selection_weights")
    assert fig["details"]["usable"] is usable
    assert ('id="figure-selection_weights"' in sec) is usable
    if not usable:
        assert why.split(":")[0] in sec
    assert "Egger-type test" in sec and "Caveats" in sec
    assert math.isfinite(bias["pooled"]["estimate"])


# ------------------------------------------------------------------------------ two-sided
def test_two_sided_model_is_labelled_two_sided_in_the_figure_and_the_section():
    sel = {**_selection(THREE), "alternative": "two.sided"}
    fig = selection_weights_plot(sel)
    assert fig.axes[0].get_xlabel() == "Two-sided p-value interval of the effect sizes"
    assert selection_weights_plot(_selection(THREE)).axes[0].get_xlabel().startswith("One-sided")
    bias = _bias(sel, options={"selection_alternative": "two.sided"})
    body = selection_section_html(bias, "", _cite, measure_labels(None))
    assert "two-sided <i>p</i> value" in body and "one-sided" not in body
    assert "in either direction" in body


def test_bias_step_passes_two_sided_steps_to_the_selection_model():
    repo = Path(__file__).resolve().parents[1]
    ad = load_analysis_data(
        repo / "tests" / "reference" / "assink2016.csv",
        repo / "data" / "examples" / "assink2016" / "codebook.yaml",
    )
    opts = {"selection_alternative": "two.sided", "selection_steps": [0.05],
            "selection_bootstrap": 0}  # fmt: skip
    res = bias_analysis(ad, ModelSpec(), opts, seed=1)
    direct = selection_model(
        ad.data["yi"].to_numpy(float),
        ad.data["vi"].to_numpy(float),
        cluster=ad.data[ad.study].astype(str).to_numpy(),
        steps=(0.05,),
        alternative="two.sided",
    )
    assert res.selection.alternative == "two.sided"
    assert res.selection.k_per_interval == direct.k_per_interval
    np.testing.assert_array_equal(
        [w.estimate for w in res.selection.weights], [w.estimate for w in direct.weights]
    )
    assert res.to_dict()["options"]["selection_alternative"] == "two.sided"
