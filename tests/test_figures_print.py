"""Figures a journal accepts: the forest plot fits a page (study rows, pages, weights,
heterogeneity, favours labels), orchard plots carry prediction intervals, an overall mean line and
a size legend, the components figure shows present vs absent and their difference, the funnel's
legend runs from p < .01 up with a pseudo-confidence funnel, and the report embeds small images
with links to the full-resolution files.

Where the expected numbers come from:

* study weights: the pooled estimate of the intercept-only model is
  :math:`\\sum_j \\mathbf 1'V_j^{-1}y_j / \\sum_j \\mathbf 1'V_j^{-1}\\mathbf 1` (GLS), so the
  weights must rebuild the estimate the package's model (checked against metafor in
  test_models_reference) wrote;
* prediction intervals of category means: the package's ``MetaResult.predict`` (metafor
  ``predict()``) on a refit of the category-means model;
* differences present - absent: the difference of the two category means of the intercept-free
  model, the same model as the one with an intercept that the step tests (a reparametrisation);
* the heterogeneity line: the numbers of ``models/overall.json`` themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from synthetic_data import trials

from intervention_meta.analyses.analysis_model import ModelSpec, fit_model, load_analysis_data
from intervention_meta.outputs.labels import read_measure_labels
from intervention_meta.plots import forest, funnel
from intervention_meta.plots.figures import make_forest
from intervention_meta.plots.prediction import category_prediction_intervals, contrast

REPORT_LIMIT = 2_000_000  # bytes: the report a reviewer downloads


def _manifest(results: Path) -> dict:
    return json.loads((results / "figures" / "figures.json").read_text(encoding="utf-8"))


def _figure(results: Path, stem: str) -> dict:
    return next(f for f in _manifest(results)["figures"] if f["stem"] == stem)


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- forest: units
def _rows(kinds: list[str]) -> list[forest.ForestRow]:
    out, block = [], -1
    for kind in kinds:
        block += kind == "study"
        out.append(forest.ForestRow(kind, kind, 0.1, 0.0, 0.2, 0.05, block))
    return out + [
        forest.ForestRow("pooled", "p", 0.1, 0.0, 0.2),
        forest.ForestRow("pi", "", 0, 0, 0),
    ]


def test_forest_pages_split_at_study_boundaries_with_the_pooled_rows_last():
    kinds = ["study", "effect", "effect"] * 4  # 4 studies of 3 rows
    pages = forest.forest_pages(_rows(kinds), max_rows=7)
    assert [len(p) for p in pages] == [6, 6 + 2]  # 2 whole studies per page; pooled + PI last
    assert all(p[0].kind == "study" for p in pages)
    assert [r.kind for r in pages[-1][-2:]] == ["pooled", "pi"]
    # a study longer than a page is split; everything fits: one page
    assert [len(p) for p in forest.forest_pages(_rows(["study"] + ["effect"] * 9), 4)] == [
        4,
        4,
        2 + 2,
    ]
    assert len(forest.forest_pages(_rows(kinds), max_rows=60)) == 1
    with pytest.raises(ValueError, match="forest_max_rows"):
        forest.forest_pages(_rows(kinds), 0)


def test_favours_labels_come_from_the_config_or_the_declared_direction():
    better = "positive = benefit: the intervention group did better (higher-is-worse flipped)"
    assert forest.favours_labels(better, True) == ("control", "intervention")
    assert forest.favours_labels("positive = more harm", True) == ("intervention", "control")
    # neutral: undeclared, or words that do not say which side is better
    assert forest.favours_labels(better, False) is None
    assert forest.favours_labels("positive = more recidivism", True) is None
    # the config's two labels win
    assert forest.favours_labels(None, False, ["usual care", "programme"]) == (
        "usual care",
        "programme",
    )


def test_forest_plot_draws_favours_labels_weights_and_the_heterogeneity_line():
    rows = [
        forest.ForestRow("study", "A (k = 2)", 0.2, 0.0, 0.4, 0.1, 0, 60.0),
        forest.ForestRow("study", "B (k = 1)", 0.5, 0.1, 0.9, 0.2, 1, 40.0),
        forest.ForestRow("pooled", "Pooled effect", 0.3, 0.1, 0.5, 0.1, weight=100.0),
    ]
    fig = forest.forest_plot(
        rows, favours=("control", "intervention"), heterogeneity="Heterogeneity: Q(2) = 3.00"
    )
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "← Favours control" in texts and "Favours intervention →" in texts
    assert {"Weight", "60.0%", "40.0%", "100.0%"} <= set(texts)
    assert "Heterogeneity: Q(2) = 3.00" in texts
    matplotlib.pyplot.close(fig)
    plain = forest.forest_plot(rows[:1])
    assert not any("Favours" in t.get_text() for t in plain.axes[0].texts)
    matplotlib.pyplot.close(plain)


def test_study_weights_rebuild_the_pooled_estimate_of_a_three_level_model():
    """Another shape: 7 trials of 1-4 arms, keys not named study/es."""
    ad = trials([1, 4, 2, 3, 1, 2, 4], seed=3, within=0.35)
    frame = ad.data
    res = fit_model(ad, ModelSpec())
    assert min(res.sigma2.values()) > 0  # both levels in play
    weights = forest.study_weights(frame, res.sigma2, ["trial", "arm"])
    assert sum(weights.values()) == pytest.approx(100.0, abs=1e-10)
    assert _pooled_from_weights(frame, res.sigma2, "trial", weights) == pytest.approx(
        float(res.b[0]), abs=1e-8
    )


def _pooled_from_weights(frame, sigma2, study, weights) -> float:
    """sum_j (w_j / sum w) * (1'V_j^-1 y_j / 1'V_j^-1 1): the GLS mean from the weights."""
    total = 0.0
    for key, block in frame.groupby(frame[study].astype(str)):
        v = block["vi"].to_numpy(float)
        s2 = list(sigma2.values())
        V = np.diag(v) + s2[1] * np.eye(len(v)) + s2[0] * np.ones((len(v), len(v)))
        one = np.ones(len(v))
        mean = (one @ np.linalg.solve(V, block["yi"].to_numpy(float))) / (
            one @ np.linalg.solve(V, one)
        )
        total += weights[key] / 100.0 * mean
    return total


def test_heterogeneity_line_names_each_level_and_the_q_test():
    ov = {
        "sigma2": {"study_id": 0.0407, "es_id": 0.009},
        "variance_distribution": {"i2_total": 70.08, "i2": {"study_id": 57.43, "es_id": 12.64}},
        "heterogeneity": {"QE": 462.058, "QE_df": 130, "QEp": 1e-39},
    }
    text = forest.heterogeneity_text(ov, {"study_id": "Study", "es_id": "Effect size"})
    assert text == (
        "Heterogeneity: τ² study 0.041, effect size 0.009; I² = 70.1% (study 57.4%, effect size "
        "12.6%); Q(130) = 462.06, p < .001"
    )
    assert forest.heterogeneity_text({}) == ""


# --------------------------------------------------------------------------- other units
def test_funnel_legend_runs_from_the_smallest_p_and_draws_a_pseudo_confidence_funnel():
    rows = [
        {"panel": "effect sizes", "kind": "point", "yi": y, "sei": s, "centre": 0.3}
        for y, s in [(0.1, 0.1), (0.5, 0.2), (0.3, 0.15)]
    ]
    for lev in (0.90, 0.95, 0.99):
        z = {0.90: 1.645, 0.95: 1.96, 0.99: 2.576}[lev]
        rows += [
            {"panel": "effect sizes", "kind": "contour", "sei": s, "centre": 0.3, "level": lev}
            | {"lower": 0.3 - z * s, "upper": 0.3 + z * s}
            for s in (0.0, 0.2)
        ]
    fig = funnel.funnel_plot(pd.DataFrame(rows))
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:4] == ["p < .01", ".01 < p < .05", ".05 < p < .10", "p > .10"]
    assert "Pseudo 95% confidence funnel" in labels
    ax = fig.axes[0]
    bottom = ax.get_ylim()[0]
    funnels = [ln.get_xydata() for ln in ax.get_lines() if len(ln.get_xydata()) == 2]
    ends = sorted(
        xy[1, 0] for xy in funnels if xy[0, 0] == pytest.approx(0.3) and xy[1, 0] != xy[0, 0]
    )
    assert ends == pytest.approx([0.3 - funnel.PSEUDO_Z * bottom, 0.3 + funnel.PSEUDO_Z * bottom])
    matplotlib.pyplot.close(fig)


def test_contrast_takes_the_sign_of_the_present_category():
    model = {"coefficients": [{"estimate": 0.3}, {"estimate": 0.2, "ci_lb": 0.05, "ci_ub": 0.35}]}
    up = contrast(model, ["0", "1"], "1")
    assert (up.estimate, up.ci_lb, up.ci_ub) == (0.2, 0.05, 0.35)
    down = contrast(model, ["0", "1"], "0")
    assert (down.estimate, down.ci_lb, down.ci_ub) == (-0.2, -0.35, -0.05)
    assert contrast(model, ["0", "1", "2"], "1") is None


# --------------------------------------------------------------------------- the pipeline
@pytest.mark.pipeline
def test_forest_plot_has_one_row_per_study_with_weights_and_heterogeneity(example_run):
    res = example_run.results
    fig = _figure(res, "forest")
    d = fig["details"]
    ov = _json(res / "models" / "overall.json")
    # the default: one row per study, plus the pooled effect and the prediction interval
    assert d["row_kind"] == "study" and d["pages"] == 1
    assert d["rows"] == d["studies"] + 2 == ov["analysis"]["n_studies"] + 2
    # the weights are the study shares of the pooled estimate the overall step wrote
    weights = d["weights"]
    assert len(weights) == d["studies"] and sum(weights.values()) == pytest.approx(100, abs=0.01)
    effects = pd.read_csv(res / "effect_sizes.csv")
    pooled = _pooled_from_weights(effects, ov["sigma2"], "study_id", weights)
    assert pooled == pytest.approx(ov["estimate"]["estimate"], abs=1e-5)
    q = ov["heterogeneity"]
    assert f"Q({q['QE_df']:g}) = {q['QE']:.2f}" in d["heterogeneity"]
    assert d["heterogeneity"] in fig["caption"]
    assert d["favours"] == ["control", "intervention"]  # the example's declared direction


@pytest.mark.pipeline
def test_forest_plot_of_assink2016_is_neutral_and_fits_one_page(assink_run):
    """Another shape (17 studies, no components); its direction (more recidivism) does not say
    which side is better, so the axis is not labelled."""
    fig = _figure(assink_run.results, "forest")
    assert fig["details"]["favours"] is None and fig["details"]["pages"] == 1
    assert fig["details"]["rows"] == fig["details"]["studies"] + 2
    assert "not labelled" in fig["caption"]


@pytest.mark.pipeline
def test_forest_plot_of_effect_sizes_is_split_into_pages(example_run, tmp_path):
    res = example_run.results
    args = (
        res / "effect_sizes.csv",
        example_run.work / "data" / "codebook.yaml",
        res / "models" / "components.json",
        res / "models" / "overall.json",
    )
    labels = read_measure_labels(res / "effect_sizes_summary.json")
    infos = make_forest(*args, tmp_path / "forest", rows="effect_size", max_rows=60, labels=labels)
    k, studies = infos[0].details["k"], infos[0].details["studies"]
    assert len(infos) >= -(-(k + studies) // 60) >= 2  # at least ceil(rows / 60) pages
    assert [i.stem for i in infos] == ["forest"] + [
        f"forest_page{n}" for n in range(2, len(infos) + 1)
    ]
    assert all(i.details["rows"] <= 60 + 2 for i in infos)
    assert sum(i.details["rows"] for i in infos) == k + studies + 2  # + pooled + PI
    for i in infos:
        assert all(Path(p).is_file() for p in (i.png, i.pdf, i.svg))
    # fewer pages on the next run: the pages of the longer plot do not linger
    make_forest(*args, tmp_path / "forest", rows="study", labels=labels)
    assert sorted(p.name for p in tmp_path.glob("forest*")) == [
        "forest.pdf",
        "forest.png",
        "forest.svg",
    ]


@pytest.mark.pipeline
def test_orchard_prediction_intervals_are_the_category_model_predictions(example_run):
    res = example_run.results
    mj = _json(res / "models" / "moderators.json")
    entry = next(m for m in mj["single"]["moderators"] if m["name"] == "target_group")
    lo, hi = category_prediction_intervals(entry["models"]["means"], mj["level"])
    ad = load_analysis_data(res / "effect_sizes.csv", example_run.work / "data" / "codebook.yaml")
    frame = ad.data[ad.data["target_group"].notna()].copy()
    from intervention_meta.analyses.moderators import factor_column

    frame["target_group"] = factor_column(frame["target_group"], ad.codebook["target_group"])
    refit = fit_model(ad, ModelSpec(), mods=["target_group"], intercept=False, data=frame)
    pred = refit.predict(np.eye(refit.p))
    np.testing.assert_allclose(lo, pred.pi_lb, atol=1e-6)
    np.testing.assert_allclose(hi, pred.pi_ub, atol=1e-6)
    orchards = [f for f in _manifest(res)["figures"] if f["details"].get("kind") == "orchard"]
    assert orchards and all(f["details"]["prediction_interval"] for f in orchards)
    assert all("overall mean" in f["caption"] and "size legend" in f["caption"] for f in orchards)


@pytest.mark.pipeline
def test_components_figure_gives_present_absent_and_their_difference(example_run):
    res = example_run.results
    mj = _json(res / "models" / "moderators.json")
    table = pd.DataFrame(mj["tables"]["moderators"]["rows"])
    fig = _figure(res, "components_orchard")
    diffs = fig["details"]["differences"]
    assert [d["component"] for d in diffs] == fig["details"]["components"]
    for d in diffs:
        means = table[(table["moderator"] == d["component"]) & (table["term"] == "mean")]
        by_code = dict(zip(means["code"].astype(str), means["estimate"], strict=True))
        # the codes are 0 (absent) and 1 (present) in the example's codebook
        assert d["estimate"] == pytest.approx(by_code["1"] - by_code["0"], abs=1e-6)
        assert d["ci_lb"] < d["estimate"] < d["ci_ub"]


@pytest.mark.pipeline
def test_report_embeds_small_images_and_links_the_full_resolution_files(example_run):
    res = example_run.results
    report = res / "report.html"
    assert report.stat().st_size < REPORT_LIMIT
    html = report.read_text(encoding="utf-8")
    for fig in _manifest(res)["figures"]:
        for fmt in ("png", "pdf", "svg"):
            name = Path(fig[fmt]).name
            assert f'href="figures/{name}"' in html, (fig["stem"], fmt)
            assert (report.parent / "figures" / name).is_file()
