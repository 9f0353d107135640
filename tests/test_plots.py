"""Figures: the real pipeline draws every figure of both configs as a PNG (``style.DPI``), a PDF
and an SVG and lists them in figures/figures.json; the drawing code's own behaviour (forest height
and order, palette, funnel contours, bubble line, flow boxes) is pinned on small data.

Expected numbers and where they come from:

* the Okabe-Ito hex values are those of Okabe & Ito (2008), https://jfly.uni-koeln.de/color/;
* the colour-blindness simulation uses the severity-1.0 matrices of Machado, Oliveira & Fernandes
  (2009, IEEE TVCG 15, 1291-1298, table 1, applied to linear RGB) and CIE76 colour differences;
  a difference above 15 is an obvious one, and matplotlib's default ``tab10`` colours fall below
  it (protanopia: 4.6), which shows the check has teeth;
* the bubble line is compared with the package's own ``MetaResult.predict`` (metafor
  ``predict()``) on a refit of the same moderator model.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pipeline_helpers import SNAKEMAKE

from intervention_meta.analyses.analysis_model import ModelSpec, fit_model, load_analysis_data
from intervention_meta.analyses.moderators import moderator_variables
from intervention_meta.data.codebook import load_codebook
from intervention_meta.plots import forest, funnel, leave_one_out, style
from intervention_meta.plots.bubble import regression_line
from intervention_meta.plots.figures import SECTIONS, moderator_figure_kind
from intervention_meta.plots.flow import flow_steps

CONFIGS = {
    "example": ("data/codebook.yaml", []),
    "assink2016": (
        "data/examples/assink2016/codebook.yaml",
        ["--configfile", "config/assink2016.yaml"],
    ),
}


# --------------------------------------------------------------------------- the pipeline
@pytest.fixture
def runs(example_run, assink_run) -> dict[str, Path]:
    """The project copy of each analysis, run to the end (the session's shared runs)."""
    return {"example": example_run.work, "assink2016": assink_run.work}


@pytest.fixture(params=list(CONFIGS))
def analysis(request, runs) -> tuple[str, Path, dict, Path]:
    """(analysis name, its figures folder, its manifest, its project copy)."""
    name = request.param
    folder = runs[name] / "results" / name / "figures"
    manifest = json.loads((folder / "figures.json").read_text(encoding="utf-8"))
    return name, folder, manifest, runs[name]


@pytest.mark.pipeline
def test_every_figure_is_a_png_a_pdf_and_an_svg(analysis):
    _, _, manifest, project = analysis
    dpi = style.DPI
    for fig in manifest["figures"]:
        png, pdf, svg = project / fig["png"], project / fig["pdf"], project / fig["svg"]
        assert png.stat().st_size > 10_000, fig["stem"]
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000, fig["stem"]
        text = svg.read_text(encoding="utf-8")
        assert "<svg" in text[:1000] and svg.stat().st_size > 5_000, fig["stem"]
        # text stays text, in the one font family of every figure
        families = set(re.findall(r"font-family[:=]\s*['\"]?([^;'\"]+)", text))
        assert families and {f.strip() for f in families} <= {"DejaVu Sans"}, families
        with Image.open(png) as im:
            assert im.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01), fig["stem"]
            # drawn at its size: pixels = inches x DPI (no tight bounding box)
            expected = (round(fig["width_in"] * dpi), round(fig["height_in"] * dpi))
            assert abs(im.size[0] - expected[0]) <= 1 and abs(im.size[1] - expected[1]) <= 1


@pytest.mark.pipeline
def test_manifest_lists_every_figure_file_once_with_its_section(analysis):
    _, folder, manifest, project = analysis
    figures = manifest["figures"]
    stems = [f["stem"] for f in figures]
    assert len(stems) == len(set(stems))
    assert {Path(f["png"]).name for f in figures} == {p.name for p in folder.glob("*.png")}
    assert {Path(f["pdf"]).name for f in figures} == {p.name for p in folder.glob("*.pdf")}
    assert {Path(f["svg"]).name for f in figures} == {p.name for p in folder.glob("*.svg")}
    assert manifest["sections"] == list(SECTIONS)
    order = [SECTIONS.index(f["section"]) for f in figures]
    assert order == sorted(order)  # grouped in the report's order
    for f in figures:
        assert f["title"] and len(f["caption"]) > 80, f["stem"]


@pytest.mark.pipeline
def test_each_moderator_gets_the_plot_of_its_type(analysis):
    name, _, manifest, project = analysis
    codebook = load_codebook(project / CONFIGS[name][0])
    expected = {"flow", "prisma", "forest", "variance_distribution", "funnel", "leave_one_out"}
    expected.add("selection_weights")  # drawn, or a placeholder saying why not
    components = {"components_orchard", "components_profiles"}
    if codebook.components():
        expected |= components
    else:  # assink2016 has no intervention components: not drawn, and the manifest says why
        skipped = {f["stem"]: f["reason"] for f in manifest["skipped"]}
        assert set(skipped) == components and all("role: component" in r for r in skipped.values())
    expected |= {
        f"{moderator_figure_kind(codebook, v.name)}_{v.name}" for v in moderator_variables(codebook)
    }
    import yaml

    path = "config/config.yaml" if name == "example" else "config/assink2016.yaml"
    config = yaml.safe_load((project / path).read_text(encoding="utf-8"))
    if (config.get("risk_of_bias") or {}).get("overall"):  # the example: RoB 2 per study
        expected |= {"risk_of_bias_traffic_light", "risk_of_bias_summary"}
    assert {f["stem"] for f in manifest["figures"]} == expected
    sections = {f["stem"]: f["section"] for f in manifest["figures"]}
    assert sections["flow"] == "data" and sections["funnel"] == "bias"
    assert sections["leave_one_out"] == "sensitivity" and sections["forest"] == "overall"
    assert sections["selection_weights"] == "selection"


@pytest.mark.pipeline
def test_forest_plot_of_more_rows_is_taller(runs):
    heights = {}
    for name in CONFIGS:
        manifest = json.loads(
            (runs[name] / "results" / name / "figures" / "figures.json").read_text(encoding="utf-8")
        )
        fig = next(f for f in manifest["figures"] if f["stem"] == "forest")
        heights[name] = (fig["details"]["rows"], fig["height_in"])
    # example: 131 effect sizes in 30 studies; assink2016: 100 in 17 (plus the pooled rows)
    assert heights["example"][0] > heights["assink2016"][0]
    assert heights["example"][1] > heights["assink2016"][1]


@pytest.mark.pipeline
def test_snakemake_report_embeds_the_figures(example_run, tmp_path):
    out = tmp_path / "report_figures.html"
    proc = subprocess.run(
        [str(SNAKEMAKE), "--report", str(out), "figures"],
        cwd=example_run.work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(encoding="utf-8")
    assert '"Figures"' in html
    assert "results/example/figures/forest.png" in html
    # each moderator's figure is labelled with the moderator's codebook label
    assert '"labels": {"moderator": "Target group", "figure": "orchard plot"}' in html
    assert "95% confidence interval (thick" in html  # the caption with the configured level


@pytest.mark.pipeline
def test_bubble_line_is_the_moderator_model_prediction(assink_run):
    """The line and bands drawn for assink2016's year equal predict() of a refit of that model
    on the raw year."""
    project = assink_run.work
    res = project / "results" / "assink2016"
    moderators = json.loads((res / "models" / "moderators.json").read_text(encoding="utf-8"))
    entry = next(m for m in moderators["single"]["moderators"] if m["name"] == "year")
    x = np.linspace(-13.5, 5.5, 7)
    # the step centred year at its mean: the line is drawn on year's own scale
    assert entry["centring"]["rule"] == "mean"
    line = regression_line(entry["models"]["slope"], x, centring=entry["centring"])
    ad = load_analysis_data(res / "effect_sizes.csv", project / CONFIGS["assink2016"][0])
    fit = fit_model(ad, ModelSpec.from_config({"structure": "three_level"}), mods=["year"])
    pred = fit.predict(x[:, None])
    np.testing.assert_allclose(line.fit, pred.pred, atol=1e-6)
    np.testing.assert_allclose(line.lower, pred.ci_lb, atol=1e-6)
    np.testing.assert_allclose(line.upper, pred.ci_ub, atol=1e-6)
    # the prediction band: predict()'s prediction interval
    np.testing.assert_allclose(line.pi_lower, pred.pi_lb, atol=1e-6)
    np.testing.assert_allclose(line.pi_upper, pred.pi_ub, atol=1e-6)


# --------------------------------------------------------------------------- forest plot
def _forest_inputs(n_studies: int, per_study: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rng = np.random.default_rng(1)
    effects = pd.DataFrame(
        {
            "study_id": np.repeat([f"S{i + 1}" for i in range(n_studies)], per_study),
            "es_id": [f"E{i}" for i in range(n_studies * per_study)],
            "yi": rng.normal(0.3, 0.2, n_studies * per_study),
            "vi": rng.uniform(0.01, 0.05, n_studies * per_study),
        }
    )
    # the table study_effects of models/components.json, with its machine keys
    study_effects = pd.DataFrame(
        {
            "study": [f"S{i + 1}" for i in range(n_studies)],
            "k": per_study,
            "estimate": np.linspace(0.5, -0.1, n_studies),
            "se": np.linspace(0.05, 0.2, n_studies)[::-1],
            "ci_lb": np.linspace(0.5, -0.1, n_studies) - 0.2,
            "ci_ub": np.linspace(0.5, -0.1, n_studies) + 0.2,
        }
    )
    overall = {
        "estimable": True,
        "estimate": {
            "estimate": 0.3,
            "se": 0.05,
            "ci_lb": 0.2,
            "ci_ub": 0.4,
            "pi_lb": -0.1,
            "pi_ub": 0.7,
            "level": 0.95,
        },
    }
    return effects, study_effects, overall


def _forest_height(n_studies: int, per_study: int) -> tuple[int, float]:
    effects, study_effects, overall = _forest_inputs(n_studies, per_study)
    rows, _ = forest.forest_rows(
        effects,
        study_effects,
        overall,
        study="study_id",
        es="es_id",
        sort="effect",
        rows="effect_size",
    )
    fig = forest.forest_plot(rows)
    height = float(fig.get_size_inches()[1])
    matplotlib.pyplot.close(fig)
    return len(rows), height


def test_forest_plot_height_grows_with_the_number_of_rows():
    n_small, h_small = _forest_height(5, 2)  # 5 + 10 rows + pooled + PI
    n_large, h_large = _forest_height(30, 4)  # 150 effect-size and study rows
    assert (n_small, n_large) == (17, 152)
    # every row keeps its height: the figure grows by ROW_HEIGHT inches per row
    assert h_large - h_small == pytest.approx((n_large - n_small) * forest.ROW_HEIGHT)


def test_forest_sorts_studies_by_the_configured_key():
    _, study_effects, _ = _forest_inputs(4, 1)
    study_effects["study"] = ["S10", "S2", "S1", "S3"]
    years = {"S10": 2001, "S2": 1999, "S1": 2010, "S3": 1999}
    order = {sort: forest.study_order(study_effects, sort, years)[0] for sort in forest.SORT_KEYS}
    assert order["effect"] == ["S3", "S1", "S2", "S10"]  # smallest estimate first
    assert order["precision"] == ["S3", "S1", "S2", "S10"]  # smallest SE first
    assert order["year"] == ["S2", "S3", "S10", "S1"]  # ties in natural key order
    assert order["study"] == ["S1", "S2", "S3", "S10"]  # S2 before S10
    # no year variable: sorted by key, and the order used says so
    assert forest.study_order(study_effects, "year", None) == (order["study"], "study")
    with pytest.raises(ValueError, match="forest_sort"):
        forest.study_order(study_effects, "alphabet")


def test_leave_one_out_plot_takes_the_reference_row_by_its_flag_and_the_level():
    """The fit with every study is the row flagged ``all_studies`` (whatever the study column
    says), and the legend states the level of the intervals."""
    table = pd.DataFrame(
        {
            "study": ["all of them", "P1", "P2", "P3"],
            "all_studies": [True, False, False, False],
            "k": [9, 6, 6, 6],
            "estimate": [0.30, 0.25, 0.35, 0.31],
            "ci_lb": [0.20, 0.10, 0.20, 0.15],
            "ci_ub": [0.40, 0.40, 0.50, 0.47],
            "converged": ["yes", "yes", "no", "yes"],
        }
    )
    fig = leave_one_out.leave_one_out_plot(table, labels={"P1": "Paper one"}, level=0.90)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Paper one",
        "P3",
        "P2",
    ]  # sorted by the estimate, reference row left out
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Without the study (90% CI)" in legend and "All studies: 90% CI" in legend
    assert ax.lines[0].get_xdata()[0] == pytest.approx(0.30)  # the dashed all-studies line
    matplotlib.pyplot.close(fig)


# --------------------------------------------------------------------------- palette
MACHADO_2009 = {
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritanopia": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
}


def _lab(hex_colour: str, matrix: list[list[float]] | None) -> np.ndarray:
    """CIELAB (D65) of a colour as seen with the simulated deficiency ``matrix``."""
    srgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if matrix is not None:
        linear = np.clip(np.asarray(matrix) @ linear, 0, 1)
    to_xyz = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    t = to_xyz @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _smallest_difference(colours, matrix) -> float:
    labs = [_lab(c, matrix) for c in colours]
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(labs, 2))


def test_palette_is_okabe_ito():
    assert style.OKABE_ITO == {
        "black": "#000000",
        "orange": "#E69F00",
        "sky_blue": "#56B4E9",
        "bluish_green": "#009E73",
        "yellow": "#F0E442",
        "blue": "#0072B2",
        "vermillion": "#D55E00",
        "reddish_purple": "#CC79A7",
    }
    assert set(style.CATEGORY_COLOURS) <= set(style.OKABE_ITO.values())
    assert style.YELLOW not in style.CATEGORY_COLOURS  # too light for points on white


@pytest.mark.parametrize("deficiency", list(MACHADO_2009))
def test_category_colours_stay_apart_under_simulated_colour_blindness(deficiency):
    matrix = MACHADO_2009[deficiency]
    assert _smallest_difference(style.CATEGORY_COLOURS, matrix) > 15
    if deficiency == "protanopia":  # the check has teeth: matplotlib's default colours fail it
        tab10 = [matplotlib.colors.to_hex(c).upper() for c in matplotlib.colormaps["tab10"].colors]
        assert _smallest_difference(tab10[:6], matrix) < 15


# --------------------------------------------------------------------------- funnel, flow
def test_funnel_regions_are_labelled_by_the_p_values_of_the_contours():
    labels = funnel.region_labels([0.90, 0.95, 0.99])
    assert labels == ["p > .10", ".05 < p < .10", ".01 < p < .05", "p < .01"]
    assert funnel.region_shades(3)[0] == "white"  # non-significance stays white (Peters 2008)
    assert len(funnel.region_shades(5)) == 6


def test_flow_boxes_carry_the_dropped_rows_with_their_reasons():
    clean = {
        "rows_in": 12,
        "kept": 9,
        "dropped": 3,
        "dropped_by_reason": {"design not one of rct": 2, "outcome_domain missing": 1},
        "studies_in": 4,
        "studies_kept": 3,
    }
    es = {
        "rows_in": 9,
        "computed": 8,
        "dropped": 1,
        "by_es_input": {"t": {"rows_in": 3, "computed": 2, "dropped": 1}},
    }
    overall = {"estimable": True, "analysis": {"k": 8, "n_studies": 3}}
    steps = flow_steps(clean, es, overall, {"warning": 2}, {"t": "t statistic"})
    texts = [s.text for s in steps]
    assert texts[0].startswith("Coded data\n12 effect-size rows in 4 studies")
    assert "0 errors, 2 warnings" in texts[0]
    assert steps[0].dropped.splitlines()[:3] == [
        "Excluded by the inclusion criteria: 3 rows",
        "- design not one of rct: 2",
        "- outcome_domain missing: 1",
    ]
    assert "- t statistic: 1" in steps[1].dropped
    assert texts[-1] == "Analysed\n8 effect sizes in 3 studies"


# --------------------------------------------------------------------------- the measure
def _measure(code: str, direction: str) -> dict:
    from intervention_meta.effect_sizes.measures import get_measure

    return {**get_measure(code).to_dict(), "direction": direction}


def test_forest_plot_of_a_log_ratio_has_the_ratio_scale_at_the_top():
    """Axis titles from the measure; the top axis maps each position x to exp(x)."""
    from intervention_meta.outputs.labels import measure_labels

    lab = measure_labels(_measure("OR", "above 1 = more events"))
    effects, study_effects, overall = _forest_inputs(4, 2)
    rows, _ = forest.forest_rows(
        effects, study_effects, overall, study="study_id", es="es_id", sort="effect"
    )
    fig = forest.forest_plot(
        rows, xlabel=lab.axis_title, symbol=lab.symbol, back_scale=lab.back_scale()
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Log odds ratio"
    top = [a for a in ax.child_axes if a.get_xlabel()]
    assert [a.get_xlabel() for a in top] == ["Odds ratio (OR)"]
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    assert top[0].get_xlim() == pytest.approx((np.exp(lo), np.exp(hi)))
    assert any(t.get_text() == "log OR [95% CI]" for t in ax.texts)
    matplotlib.pyplot.close(fig)
    # a measure without a back-transform: no second scale, the ticks repeated at the top
    plain = forest.forest_plot(rows, xlabel="Mean difference", symbol="MD")
    assert not plain.axes[0].child_axes
    matplotlib.pyplot.close(plain)


def test_flow_names_the_measure_computed():
    es = {"rows_in": 5, "computed": 5, "dropped": 0, "measure": _measure("ZCOR", "positive = up")}
    steps = flow_steps({"rows_in": 5, "kept": 5, "dropped": 0}, es)
    assert steps[-1].text == "Effect sizes computed (Fisher's z)\n5 rows"
    es.pop("measure")  # a summary written before the measure was declared: SMD
    assert flow_steps({}, es)[-1].text.startswith("Effect sizes computed (Hedges' g)")


def test_funnel_axis_is_titled_by_the_measure():
    funnel_data = pd.DataFrame(
        {
            "panel": ["effect sizes"] * 3,
            "kind": ["point"] * 3,
            "yi": [0.1, 0.4, -0.2],
            "sei": [0.1, 0.2, 0.15],
            "centre": [0.1] * 3,
            "level": [np.nan] * 3,
            "lower": [np.nan] * 3,
            "upper": [np.nan] * 3,
        }
    )
    fig = funnel.funnel_plot(funnel_data, xlabel="Log risk ratio")
    assert fig.axes[0].get_xlabel() == "Log risk ratio"
    matplotlib.pyplot.close(fig)


@pytest.mark.pipeline
def test_captions_give_the_declared_direction(analysis):
    """Every figure caption ends with the measure and the direction of the config; assink2016's
    direction is more recidivism, so its figures never speak of a benefit."""
    import yaml

    name, _, manifest, project = analysis
    config = "config/config.yaml" if name == "example" else "config/assink2016.yaml"
    direction = yaml.safe_load((project / config).read_text())["effect_sizes"]["direction"]
    for fig in manifest["figures"]:
        assert f"Direction: {direction.rstrip('.')}" in fig["caption"], fig["stem"]
        assert "Effect measure: Hedges' g." in fig["caption"]
        if name == "assink2016":
            assert "benefit" not in fig["caption"].lower()


def test_ratio_axis_marks_round_ratios_within_the_range():
    """A log RR axis from -2.8 to 2 marks 0.1 ... 5 at log(0.1) ... log(5) (exp(-2.8) = 0.06)."""
    from intervention_meta.outputs.labels import measure_labels

    lab = measure_labels(_measure("RR", "below 1 = fewer cases"))
    effects, study_effects, overall = _forest_inputs(3, 1)
    rows, _ = forest.forest_rows(
        effects, study_effects, overall, study="study_id", es="es_id", sort="effect"
    )
    rows = [dataclasses.replace(r, lower=-2.8, upper=2.0) for r in rows]
    fig = forest.forest_plot(rows, back_scale=lab.back_scale())
    top = fig.axes[0].child_axes[0]
    fig.canvas.draw()
    assert [t.get_text() for t in top.get_xticklabels()] == ["0.1", "0.2", "0.5", "1", "2", "5"]
    np.testing.assert_allclose(top.get_xticks(), [0.1, 0.2, 0.5, 1, 2, 5])
    matplotlib.pyplot.close(fig)
