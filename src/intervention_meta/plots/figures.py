"""The figures step: read what the analysis steps wrote, draw, write PNG + PDF + SVG + a manifest.

Each ``make_*`` function takes the files it draws from (the steps' JSON, ``models/<step>.json``,
whose ``tables`` hold the rows with machine keys; the effect sizes and the codebook) and the stem
of the figure (``results/<analysis>/figures/<name>``), writes ``<stem>.png`` (the screen copy,
:data:`~intervention_meta.plots.style.DPI` dpi), ``<stem>.pdf`` and ``<stem>.svg`` (the print
files), and returns a :class:`FigureInfo` (title, caption with the numbers drawn, report
section). :func:`run_figures` draws every figure of an analysis in one process and
:func:`write_manifest` writes their descriptions into ``figures/figures.json``, the list the
report embeds. Nothing is estimated here, no CSV header is
read: numbers come from the JSON by machine key, labels (study key, variables, levels) from the
codebook, and the confidence level from the step that computed the intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.analyses.records import ResultTable, read_tables
from intervention_meta.data.cleaning import EffectSizeData, read_effect_sizes
from intervention_meta.data.codebook import (
    Codebook,
    load_codebook,
    moderator_figure_kind,
    normalise_code,
)
from intervention_meta.data.risk_of_bias import JUDGEMENTS, ROB_FIGURES, RiskOfBiasSpec
from intervention_meta.io import read_json, write_json
from intervention_meta.outputs.labels import MeasureLabels, measure_labels, read_measure_labels
from intervention_meta.outputs.prisma import PrismaCounts, read_counts
from intervention_meta.plots import style
from intervention_meta.plots.bubble import bubble_plot, regression_line
from intervention_meta.plots.cleanup import remove_unlisted_figures
from intervention_meta.plots.flow import flow_diagram, flow_steps
from intervention_meta.plots.forest import (
    MAX_ROWS,
    SORT_KEYS,
    favours_labels,
    forest_pages,
    forest_plot,
    forest_rows,
    heterogeneity_text,
    study_weights,
)
from intervention_meta.plots.funnel import funnel_plot
from intervention_meta.plots.labels import study_labels
from intervention_meta.plots.leave_one_out import leave_one_out_plot
from intervention_meta.plots.orchard import orchard_plot
from intervention_meta.plots.prediction import category_prediction_intervals, contrast
from intervention_meta.plots.prisma import prisma_boxes, prisma_diagram
from intervention_meta.plots.risk_of_bias import risk_of_bias_data, summary_plot, traffic_light_plot
from intervention_meta.plots.variance import VarianceBar, variance_plot

log = logging.getLogger(__name__)

__all__ = [
    "SECTIONS",
    "FigureInfo",
    "make_bubble",
    "make_components",
    "make_flow",
    "make_forest",
    "make_funnel",
    "make_selection",
    "make_leave_one_out",
    "make_orchard",
    "make_prisma",
    "make_profiles",
    "make_risk_of_bias",
    "make_variance",
    "moderator_figure_kind",
    "FigureInputs",
    "run_figures",
    "write_manifest",
]

#: the report sections a figure belongs to, in the report's order
SECTIONS = (
    "data",
    "risk_of_bias",
    "overall",
    "moderators",
    "components",
    "bias",
    "selection",
    "sensitivity",
)


@dataclass(frozen=True)
class FigureInfo:
    """What the manifest says about one figure."""

    stem: str
    png: str
    pdf: str
    svg: str
    title: str
    caption: str
    section: str
    width_in: float = 0.0
    height_in: float = 0.0
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"section must be one of {SECTIONS}, got {self.section!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- helpers
def _finish(
    fig, stem: str | Path, section: str, title: str, caption: str, **details: Any
) -> FigureInfo:
    """Save ``fig`` as ``<stem>.png``/``.pdf``/``.svg`` and describe it for the report's
    ``section``."""
    width, height = (round(float(v), 4) for v in fig.get_size_inches())
    files = style.save(fig, stem)
    paths = (Path(stem).name, *(str(f) for f in files))
    return FigureInfo(*paths, title, caption, section, width, height, details)


def _finite(x: Any) -> float | None:
    """``x`` as a float, None if it is not a finite number."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _num(x: Any, digits: int = 2) -> str:
    value = _finite(x)
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _sig(x: Any, digits: int = 3) -> str:
    """``digits`` significant digits (slopes can be small: 0.000348, not 0.000)."""
    value = _finite(x)
    return "n/a" if value is None else f"{value:.{digits}g}"


def _p(x: Any) -> str:
    p = _finite(x)
    if p is None:
        return "n/a"
    return "< .001" if p < 0.001 else "= " + f"{p:.3f}".lstrip("0")


def _df(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "?"
    return f"{v:g}" if float(v).is_integer() else f"{v:.1f}"


def _codes(series: pd.Series) -> pd.Series:
    """Normalised codes as text, missing values as missing."""
    return series.map(lambda v: normalise_code(v) if pd.notna(v) else pd.NA)


def _model_text(overall: Mapping) -> str:
    return (overall.get("analysis") or {}).get("description") or "analysis model"


# --------------------------------------------------------------------------- data
def make_flow(
    clean_summary: str | Path,
    effect_sizes_summary: str | Path,
    overall: str | Path,
    codebook: str | Path | Codebook,
    stem: str | Path,
    *,
    validation_report: str | Path | None = None,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """Data-flow diagram from ``clean/summary.json``, ``effect_sizes_summary.json``,
    ``models/overall.json`` and ``validation/report.csv`` (problems by severity)."""
    clean, es, ov = read_json(clean_summary), read_json(effect_sizes_summary), read_json(overall)
    validation = None
    if validation_report is not None and Path(validation_report).exists():
        report = pd.read_csv(validation_report, dtype=str)
        validation = report["severity"].value_counts().to_dict() if len(report) else {}
    cb = load_codebook(codebook)
    req = cb.requires_variable()
    lab = labels if labels is not None else measure_labels(es)
    input_labels = dict(cb[req].levels) if req else {}
    steps = flow_steps(clean, es, ov, validation, input_labels)
    fig = flow_diagram(steps)
    a = ov.get("analysis") or {}
    caption = (
        f"Data flow: {clean.get('rows_in')} coded effect-size rows in {clean.get('studies_in')} "
        f"studies; {clean.get('dropped', 0)} excluded by the inclusion criteria, "
        f"{es.get('dropped', 0)} without a computable effect size; {a.get('k')} effect sizes in "
        f"{a.get('n_studies')} studies analysed. Counts from clean/summary.json, "
        f"effect_sizes_summary.json and models/overall.json. "
        f"{lab.direction_note()}"
    )
    return _finish(fig, stem, "data", "Data flow", caption, steps=[s.to_dict() for s in steps])


def make_prisma(
    clean_summary: str | Path,
    effect_sizes_summary: str | Path,
    overall: str | Path,
    counts: str | Path | PrismaCounts | None,
    stem: str | Path,
    *,
    flow_json: str | Path | None = None,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """PRISMA 2020 flow diagram: the counts file (``prisma.counts``, or its counts read with
    :func:`~intervention_meta.outputs.prisma.read_counts`; None: none) joined with
    ``clean/summary.json``, ``effect_sizes_summary.json`` and ``models/overall.json``
    (:func:`~intervention_meta.outputs.prisma.prisma_flow`), written to ``flow_json``."""
    from intervention_meta.outputs.prisma import prisma_flow, write_flow

    checked = read_counts(counts) if isinstance(counts, str | Path) else counts
    flow = prisma_flow(
        checked, read_json(clean_summary), read_json(effect_sizes_summary), read_json(overall)
    )
    if flow_json is not None:
        write_flow(flow, flow_json)
    record = flow.to_dict()
    boxes = prisma_boxes(record)
    note = (
        "" if checked else "No PRISMA counts file (prisma.counts): search and screening not shown."
    )
    fig = prisma_diagram(boxes, note=note)
    p = flow.pipeline
    source = f"the counts file {checked.file}" if checked else "no counts file"
    failed = [c.text for c in flow.checks if not c.ok]
    caption = (
        f"PRISMA 2020 flow diagram (Page et al. 2021) from {source} and the pipeline's own counts "
        f"(clean/summary.json, effect_sizes_summary.json, models/overall.json): "
        f"{p['effect_sizes_analysed']} effect sizes from {p['studies_analysed']} studies analysed. "
        + (
            "Every step adds up."
            if not failed
            else "These sums do NOT add up: " + "; ".join(failed) + "."
        )
        + f" {_labels(labels).direction_note()}"
    )
    info = {"boxes": [b.to_dict() for b in boxes], "consistent": flow.consistent}
    return _finish(fig, stem, "data", "PRISMA 2020 flow diagram", caption, **info)


# --------------------------------------------------------------------------- overall
#: what the study estimates of the forest plot are, by ``components.positive_rule``
STUDY_ESTIMATES = {
    "study_aggregate": "the study's effect sizes averaged (inverse-variance weights)",
    "blup": "the study-level estimate of the three-level model (BLUP)",
}


def _step(path: str | Path) -> tuple[dict, dict[str, ResultTable]]:
    """A step's JSON and its tables."""
    data = read_json(path)
    return data, read_tables(data)


def _level(step: Mapping) -> float:
    """The confidence level a step used (``level``; ``models.level`` in the config)."""
    level = step.get("level")
    if level is None:
        level = ((step.get("analysis") or {}).get("model_spec") or {}).get("level")
    return float(level if level is not None else 0.95)


def _pct(level: float) -> str:
    return f"{100 * level:g}%"


def _labels(labels: MeasureLabels | None) -> MeasureLabels:
    """The measure's labels (those of the default measure, SMD, when none are given)."""
    return labels if labels is not None else measure_labels(None)


def _axis(lab: MeasureLabels) -> dict[str, Any]:
    """The orchard plot's axis from the measure: its title and the reference line (the null)."""
    return {"xlabel": lab.axis_title, "null": lab.null}


def _back_text(lab: MeasureLabels, est: Mapping, pct: str) -> str:
    """``; OR = 0.49, 95% CI 0.35 to 0.70, PI 0.2 to 1.1`` on the back-transformed scale."""
    back = lab.back_transformed(
        est.get("estimate"), est.get("ci_lb"), est.get("ci_ub"), est.get("pi_lb"), est.get("pi_ub")
    )
    if back is None or back.estimate is None:
        return ""
    text = (
        f"; back-transformed, {back.symbol} = {_num(back.estimate)}, {pct} CI "
        f"{_num(back.ci_lb)} to {_num(back.ci_ub)}"
    )
    if back.pi_lb is not None:
        text += f", prediction interval {_num(back.pi_lb)} to {_num(back.pi_ub)}"
    return text


def make_forest(
    effect_sizes: str | Path | EffectSizeData,
    codebook: str | Path | Codebook,
    components_json: str | Path,
    overall: str | Path,
    stem: str | Path,
    *,
    sort: str = "effect",
    rows: str = "study",
    max_rows: int = MAX_ROWS,
    favours: Sequence[str] | None = None,
    labels: MeasureLabels | None = None,
    summary: str | Path | None = None,
) -> list[FigureInfo]:
    """Forest plot of the studies (``figures.forest_rows``: ``study``, or ``effect_size`` for every
    effect size under its study; ``figures.forest_sort`` orders the studies) with the study
    estimates of the table ``study_effects`` of ``models/components.json``, their weights, the
    pooled effect and the heterogeneity of ``models/overall.json``.

    A plot of more than ``max_rows`` rows is split into pages: ``<stem>`` and
    ``<stem>_page2``, ``<stem>_page3``, ... (one :class:`FigureInfo` each, pages of an earlier
    run removed). ``favours`` (the config's ``effect_sizes.favours``) or the declared direction
    of ``summary`` (``effect_sizes_summary.json``) labels the two sides of the axis.
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"figures.forest_sort must be one of {SORT_KEYS}, got {sort!r}")
    ad = read_effect_sizes(effect_sizes, codebook)
    comp, tables = _step(components_json)
    se = tables["study_effects"].frame()
    ov = read_json(overall)
    names = study_labels(ad.data, ad.codebook, ad.study)
    years = None
    if "year" in ad.data.columns:
        yr = pd.to_numeric(ad.data["year"], errors="coerce")
        years = yr.groupby(ad.data[ad.study].astype(str)).min().dropna().to_dict() or None
    analysis = ov.get("analysis") or {}
    levels = list(analysis.get("levels") or [ad.study])
    # weights per study: the study is the outermost level of the analysis model
    weights = (
        study_weights(ad.data, ov.get("sigma2") or {}, levels)
        if ov.get("estimable", True) and levels[0] == ad.study
        else {}
    )
    options = {"labels": names, "sort": sort, "years": years, "rows": rows, "weights": weights}
    all_rows, used = forest_rows(ad.data, se, ov, study=ad.study, es=ad.es, **options)
    order_text = {
        "effect": "by study estimate (smallest first)",
        "precision": "by the precision of the study estimate (most precise first)",
        "year": "by publication year (oldest first)",
        "study": f"by {ad.codebook.label(ad.study).lower()} key",
    }[used]
    est = ov.get("estimate") or {}
    level = _level(ov)
    pct = _pct(level)
    lab = _labels(labels)
    es_summary = read_json(summary) if summary is not None and Path(summary).is_file() else {}
    measure = es_summary.get("measure") or {}
    sides = favours_labels(
        measure.get("direction"),
        bool(measure.get("direction_declared")) and not measure.get("direction_by"),
        favours,
    )
    het = heterogeneity_text(ov, analysis.get("level_labels")) if ov.get("estimable", True) else ""
    pages = forest_pages(all_rows, max_rows)
    finite = [v for r in all_rows for v in (r.lower, r.upper) if np.isfinite(v)]
    span = (min([*finite, lab.null]), max([*finite, lab.null])) if finite else (-1.0, 1.0)
    pad = 0.03 * (span[1] - span[0] or 1.0)
    xlim = (span[0] - pad, span[1] + pad)
    rule = (comp.get("positive_rule") or {}).get("rule")
    study_est = STUDY_ESTIMATES.get(rule, "study-level estimate")
    pooled = (
        f"The diamond is the pooled effect of the {_model_text(ov)} "
        f"({lab.symbol} = {_num(est.get('estimate'))}, "
        f"{pct} CI {_num(est.get('ci_lb'))} to {_num(est.get('ci_ub'))}"
        f"{_back_text(lab, est, pct)}); the bar "
        f"below it the {pct} prediction interval ({_num(est.get('pi_lb'))} to "
        f"{_num(est.get('pi_ub'))}). {het}."
        if ov.get("estimable", True) and est.get("estimate") is not None
        else "The pooled model was not estimable; no pooled effect is drawn."
    )
    what = (
        f"Study estimates ({study_est}; black squares, {pct} CI) of {ad.n_studies} studies "
        f"({ad.k} effect sizes)"
        if rows == "study"
        else f"Effect sizes ({lab.name} with {pct} CI; blue) of {ad.n_studies} studies, "
        f"grouped by study under each study's estimate (black; {study_est})"
    )
    caption = (
        f"{what}. Studies sorted {order_text}. {pooled} Weight: each study's share of the pooled "
        "estimate, 1'V⁻¹1 of its effect sizes under the analysis model's variance components "
        "(metafor weights() summed by study). Marker area grows with precision (1/SE)."
        + (
            f" The axis at the top shows the {lab.back_name} scale."
            if lab.back_scale() is not None
            else ""
        )
        + (
            f" Left of the null: favours {sides[0]}; right: favours {sides[1]}."
            if sides
            else " The sides of the axis are not labelled: the declared direction does not say "
            "which side favours the intervention (figures.favours sets the labels)."
        )
        + f" {lab.direction_note()}"
    )
    if used != sort:
        caption += f" (Sort '{sort}' was asked for, but the data have no year variable.)"
    stem = Path(stem)
    for old in stem.parent.glob(f"{stem.name}_page*.*"):  # pages of an earlier, longer plot
        old.unlink()
    unit = "studies" if rows == "study" else "effect sizes"
    base = f"Forest plot: {ad.k} effect sizes in {ad.n_studies} studies"
    infos = []
    for number, page in enumerate(pages, start=1):
        title = base if len(pages) == 1 else f"{base} (page {number} of {len(pages)})"
        fig = forest_plot(
            page,
            title=title,
            level=level,
            xlabel=lab.axis_title,
            symbol=lab.symbol,
            null=lab.null,
            back_scale=lab.back_scale(),
            heterogeneity=het if number == len(pages) else "",
            favours=sides,
            xlim=xlim,
        )
        info = {
            "sort": used,
            "rows": len(page),
            "row_kind": rows,
            "rows_total": len(all_rows),
            "page": number,
            "pages": len(pages),
            "k": ad.k,
            "studies": ad.n_studies,
            "level": level,
            "favours": list(sides) if sides else None,
            "weights": {k: round(v, 4) for k, v in weights.items()},
            "heterogeneity": het,
        }
        text = caption if len(pages) == 1 else f"Page {number} of {len(pages)} ({unit}). {caption}"
        page_stem = stem if number == 1 else stem.with_name(f"{stem.name}_page{number}")
        infos.append(_finish(fig, page_stem, "overall", title, text, **info))
    return infos


def make_variance(
    overall_files: Sequence[str | Path],
    codebook: str | Path | Codebook,
    stem: str | Path,
    *,
    domains: Sequence[str] = (),
    domain_variable: str | None = None,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """Variance distribution of the analysis of all effect sizes (first ``models/overall.json``)
    and of each domain (the following files, in the order of ``domains``)."""
    if len(overall_files) != len(domains) + 1:
        raise ValueError("one overall JSON per analysis (all effect sizes, then each domain)")
    cb = load_codebook(codebook)
    names = ["All effect sizes"] + [
        cb.level_label(domain_variable, d) if domain_variable else str(d) for d in domains
    ]
    bars = []
    for name, ovf in zip(names, overall_files, strict=True):
        ov, tables = _step(ovf)
        a = ov.get("analysis") or {}
        table = tables.get("variance_distribution")
        frame = table.frame() if table is not None else pd.DataFrame()
        note = "" if ov.get("estimable", True) else f"not estimable: {ov.get('reason')}"
        bars.append(VarianceBar(name, frame, a.get("k"), a.get("n_studies"), note))
    title = "Distribution of the total variance over the levels"
    fig = variance_plot(bars, title=title)
    first = bars[0].levels()
    shares = "; ".join(f"{r['source']} {_num(r['pct'], 1)}%" for _, r in first.iterrows())
    caption = (
        "Share of the total variance due to sampling error (level 1), differences between effect "
        "sizes within studies (level 2) and differences between studies (level 3) "
        "(Cheung 2014; Assink & Wibbelink 2016), for all effect sizes"
        + (f" and for each {cb.label(domain_variable).lower()} separately" if domains else "")
        + f". All effect sizes: {shares}. Dashed line: 75% of the variance due to sampling error, "
        "below which heterogeneity is taken to be substantial (Hunter & Schmidt 1990). "
        + _labels(labels).direction_note()
    )
    return _finish(fig, stem, "overall", title, caption, analyses=names)


# --------------------------------------------------------------------------- moderators
def _test_text(tests: pd.DataFrame, moderator: str, p_adjust: str | None) -> str:
    """The moderator's test of differences (table ``moderator_tests``) in words."""
    row = tests[tests["moderator"].astype(str) == moderator]
    if row.empty:
        return ""
    r = row.iloc[0]
    reason = r.get("no_test_reason")
    if isinstance(reason, str) and reason.strip():
        return f"No test: {reason}"
    f_test = pd.notna(r.get("f"))
    value = r.get("f") if f_test else r.get("chi2")
    df = f"{_df(r.get('df1'))}, {_df(r.get('df2'))}" if f_test else _df(r.get("df1"))
    text = f"{'F' if f_test else 'Chi2'}({df}) = {_num(value)}, p {_p(r.get('p'))}"
    if p_adjust and pd.notna(r.get("p_adj")):
        text += f" ({p_adjust} p {_p(r.get('p_adj'))})"
    if pd.notna(r.get("cr2_f")):
        text += (
            f"; CR2 HTZ F({_df(r.get('cr2_df1'))}, {_df(r.get('cr2_df2'))}) = "
            f"{_num(r.get('cr2_f'))}, p {_p(r.get('cr2_p'))}"
        )
    return text


def _single(moderators_json: Mapping, moderator: str) -> dict:
    single = (moderators_json.get("single") or {}).get("moderators") or []
    return next((m for m in single if m.get("name") == moderator), {})


def _rows_of(table: pd.DataFrame, moderator: str, term: str) -> pd.DataFrame:
    """The rows of ``moderator`` with ``term`` of the table ``moderators``."""
    rows = table[(table["moderator"].astype(str) == moderator) & (table["term"] == term)]
    rows = rows.reset_index(drop=True)
    return rows.assign(code=rows["code"].map(normalise_code))


def _groups(rows: pd.DataFrame, names: Sequence[str], tested: Any) -> pd.DataFrame:
    """The orchard plot's groups (name, mean, CI, k, studies, in test, note) from rows of the
    table ``moderators`` (with ``pi_lb``/``pi_ub`` when the step wrote them)."""
    notes = [
        f"{name}: {note}" if isinstance(note, str) and note.strip() else ""
        for name, note in zip(names, rows["note"], strict=True)
    ]
    groups = pd.DataFrame(
        {
            "group": list(names),
            "estimate": rows["estimate"].astype(float),
            "ci_lb": rows["ci_lb"].astype(float),
            "ci_ub": rows["ci_ub"].astype(float),
            "k": rows["k"],
            "n_studies": rows["n_studies"],
            "tested": tested,
            "note": notes,
        }
    )
    if {"pi_lb", "pi_ub"} <= set(rows.columns) and rows["pi_lb"].notna().any():
        groups["pi_lb"] = rows["pi_lb"].astype(float).to_numpy()
        groups["pi_ub"] = rows["pi_ub"].astype(float).to_numpy()
    return groups


def _overall_mean(overall: str | Path | None) -> float | None:
    """The pooled effect of ``models/overall.json`` (None without the file or an estimate)."""
    if overall is None or not Path(overall).is_file():
        return None
    ov = read_json(overall)
    if not ov.get("estimable", True):
        return None
    return _finite((ov.get("estimate") or {}).get("estimate"))


def make_orchard(
    effect_sizes: str | Path | EffectSizeData,
    codebook: str | Path | Codebook,
    moderators_json: str | Path,
    moderator: str,
    stem: str | Path,
    *,
    labels: MeasureLabels | None = None,
    overall: str | Path | None = None,
) -> FigureInfo:
    """Orchard plot of a binary, categorical or ordinal moderator from ``models/moderators.json``
    (its rows of the tables ``moderators`` and ``moderator_tests``; each category's prediction
    interval from its category-means model), with the pooled effect of ``overall``
    (``models/overall.json``) as the overall mean line."""
    ad = read_effect_sizes(effect_sizes, codebook)
    mj, tables = _step(moderators_json)
    level = _level(mj)
    entry = _single(mj, moderator)
    label = ad.codebook.label(moderator)
    rows = _rows_of(tables["moderators"].frame(), moderator, "mean")
    names = [ad.codebook.level_label(moderator, code) for code in rows["code"]]
    in_test = rows["in_test"].astype(str).str.lower().eq("yes")
    # no test at all: every category drawn as tested, the subtitle says there is no test
    groups = _groups(rows, names, in_test if in_test.any() else True)
    means_model = (entry.get("models") or {}).get("means") or {}
    pis = category_prediction_intervals(means_model, level)
    if pis is not None and len(pis[0]) == len(groups) and "pi_lb" not in groups.columns:
        groups["pi_lb"], groups["pi_ub"] = pis
    has_pi = "pi_lb" in groups.columns
    codes = _codes(ad.data[moderator]) if moderator in ad.data.columns else pd.Series(dtype=object)
    by_code = dict(zip(rows["code"], names, strict=True))
    points = pd.DataFrame(
        {"group": codes.map(by_code), "yi": ad.data["yi"], "vi": ad.data["vi"]}
    ).dropna(subset=["group"])
    subtitle = _test_text(tables["moderator_tests"].frame(), moderator, mj.get("p_adjust"))
    title = label
    if groups.empty:
        reason = entry.get("no_test_reason") or "no category means in models/moderators.json"
        subtitle = f"Not analysed: {reason}"
    lab = _labels(labels)
    mean = _overall_mean(overall)
    fig = orchard_plot(
        points,
        groups,
        title=title,
        subtitle=subtitle,
        level=level,
        overall=mean,
        **_axis(lab),
    )
    missing = int(entry.get("k_missing") or 0)
    caption = (
        f"Orchard plot (Nakagawa et al. 2021) of {label.lower()}: every effect size (points, area "
        "proportional to precision 1/SE on one scale for all rows, see the size legend; jittered "
        "vertically) and each category's mean from the moderator model (circle) with its "
        f"{_pct(level)} confidence interval (thick bar)"
        + (
            f" and {_pct(level)} prediction interval (thin bar: mean +- c sqrt(SE^2 + the sum of "
            "the variance components) of the category-means model)"
            if has_pi
            else "; no prediction interval (the category-means model was not estimated)"
        )
        + (
            f". Dashed line: the overall mean of the analysis model ({_num(mean)})"
            if mean is not None
            else ""
        )
        + f". k and number of studies beside each row. Test of differences: {subtitle or 'n/a'}."
        + (f" {missing} effect sizes with a missing value left out." if missing else "")
        + f" {lab.direction_note()}"
    )
    info = {"moderator": moderator, "kind": "orchard", "prediction_interval": has_pi}
    return _finish(fig, stem, "moderators", title, caption, **info)


def make_bubble(
    effect_sizes: str | Path | EffectSizeData,
    codebook: str | Path | Codebook,
    moderators_json: str | Path,
    moderator: str,
    stem: str | Path,
    *,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """Bubble plot of an integer or number moderator with its meta-regression line."""
    ad = read_effect_sizes(effect_sizes, codebook)
    mj, tables = _step(moderators_json)
    level = _level(mj)
    entry = _single(mj, moderator)
    label = ad.codebook.label(moderator)
    x = pd.to_numeric(ad.data[moderator], errors="coerce") if moderator in ad.data else None
    points = pd.DataFrame(
        {"x": x if x is not None else np.nan, "yi": ad.data["yi"], "vi": ad.data["vi"]}
    ).astype(float)
    points["study"] = ad.data[ad.study].astype(str).to_numpy()
    model = (entry.get("models") or {}).get("slope") or {}
    centre = entry.get("centring") or {}
    line = None
    finite = points["x"].dropna()
    if model and len(finite):
        grid = np.linspace(float(finite.min()), float(finite.max()), 101)
        line = regression_line(model, grid, level, centring=centre)
    slope = _rows_of(tables["moderators"].frame(), moderator, "slope")
    scale = float(centre.get("scale", 1.0))
    per = "unit" if scale == 1 else f"{scale:g} units"
    subtitle = ""
    if not slope.empty:
        s = slope.iloc[0]
        subtitle = (
            f"slope = {_sig(s['estimate'])} per {per} "
            f"[{_pct(level)} CI {_sig(s['ci_lb'])}, {_sig(s['ci_ub'])}]; "
        )
    subtitle += _test_text(tables["moderator_tests"].frame(), moderator, mj.get("p_adjust"))
    title = label
    lab = _labels(labels)
    fig = bubble_plot(
        points, line, title=title, xlabel=label, subtitle=subtitle, ylabel=lab.axis_title
    )
    centred = (
        f" The moderator entered the model centred at {_sig(centre.get('center'), 5)}"
        f" ({'its mean' if centre.get('rule') == 'mean' else 'as configured'})"
        + (f" and per {scale:g} units" if scale != 1 else "")
        + "; the axis shows its own values."
        if centre.get("rule") in ("mean", "value")
        else ""
    )
    caption = (
        f"Bubble plot of {label.lower()}: every effect size against the moderator (area ~ "
        "precision 1/SE; one colour per study, the palette repeating) with the meta-regression "
        f"line of the moderator model, its {_pct(level)} confidence band (shaded) and its "
        f"{_pct(level)} prediction band (dashed; from the coefficients, their covariance and the "
        f"variance components in models/moderators.json). {subtitle}.{centred}"
    )
    if line is None:
        caption += " No regression line: the moderator model was not estimated."
    caption += f" {lab.direction_note()}"
    return _finish(fig, stem, "moderators", title, caption, moderator=moderator, kind="bubble")


# --------------------------------------------------------------------------- components
def make_components(
    effect_sizes: str | Path | EffectSizeData,
    codebook: str | Path | Codebook,
    moderators_json: str | Path,
    components_json: str | Path,
    stem: str | Path,
    *,
    labels: MeasureLabels | None = None,
    overall: str | Path | None = None,
) -> FigureInfo:
    """Each intervention component present vs absent: two orchard rows per component (the
    effect sizes of the programmes with and without it, and the mean of each category of its
    moderator model) and, on the right, the difference present - absent with its CI and p (the
    moderator test's model with an intercept, ``models/moderators.json``)."""
    from intervention_meta.analyses.components import (
        present_code,
    )  # the one figure that needs the components module

    ad = read_effect_sizes(effect_sizes, codebook)
    mj, tables = _step(moderators_json)
    level = _level(mj)
    table = tables["moderators"].frame()
    components = list(read_json(components_json).get("components") or [])
    empty = {"estimate": np.nan, "ci_lb": np.nan, "ci_ub": np.nan, "k": np.nan}
    parts, points, colours, pairs = [], [], [], []
    for j, c in enumerate(components):
        name = ad.codebook.label(c)
        var = ad.codebook[c] if c in ad.codebook else None
        code = present_code(var)
        rows = _rows_of(table, c, "mean")
        entry = _single(mj, c)
        pis = category_prediction_intervals((entry.get("models") or {}).get("means") or {}, level)
        if pis is not None and len(pis[0]) == len(rows):
            rows = rows.assign(pi_lb=pis[0], pi_ub=pis[1])
        present = rows[rows["code"] == code].head(1)
        absent = rows[rows["code"] != code].head(1)
        absent_code = str(absent["code"].iat[0]) if len(absent) else None
        for which, row, wanted in (("present", present, code), ("absent", absent, absent_code)):
            if row.empty:
                row = pd.DataFrame([empty]).assign(
                    n_studies=np.nan, note=f"{name} {which}: no mean in models/moderators.json"
                )
            parts.append(row.assign(group=f"{name}: {which}"))
            colours.append(style.category_colour(j))
            if c in ad.data.columns and wanted is not None:
                has = (_codes(ad.data[c]) == wanted).fillna(False).to_numpy(dtype=bool)
                points.append(ad.data.loc[has, ["yi", "vi"]].assign(group=f"{name}: {which}"))
        test = entry.get("test") or {}
        diff = contrast(
            (entry.get("models") or {}).get("test") or {}, test.get("categories") or [], code
        )
        first = len(parts) - 2
        pairs.append(
            {
                "component": c,
                "first": first,
                "second": first + 1,
                "estimate": diff.estimate if diff else np.nan,
                "ci_lb": diff.ci_lb if diff else np.nan,
                "ci_ub": diff.ci_ub if diff else np.nan,
                "pval": diff.pval if diff else np.nan,
                "text": (
                    f"{_num(diff.estimate)} [{_num(diff.ci_lb)}, {_num(diff.ci_ub)}], "
                    f"p {_p(diff.pval)}"
                    if diff
                    else "no test"
                ),
            }
        )
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    points_frame = pd.concat(points) if points else pd.DataFrame(columns=["group", "yi", "vi"])
    names = list(rows["group"]) if len(rows) else []
    groups = (
        _groups(rows, names, True)
        if len(rows)
        else pd.DataFrame(
            columns=["group", "estimate", "ci_lb", "ci_ub", "k", "n_studies", "tested", "note"]
        )
    )
    has_pi = "pi_lb" in groups.columns
    title = "Intervention components: present vs absent"
    subtitle = (
        "effect sizes of the programmes with and without each component, the mean of each "
        "category of the component's moderator model, and their difference (right)"
    )
    lab = _labels(labels)
    mean = _overall_mean(overall)
    fig = orchard_plot(
        points_frame,
        groups,
        title=title,
        subtitle=subtitle,
        level=level,
        colour=colours,
        overall=mean,
        contrasts=pd.DataFrame(pairs) if pairs else None,
        contrast_label=f"Present − absent ({lab.symbol})",
        **_axis(lab),
    )
    caption = (
        "Orchard plot (Nakagawa et al. 2021) of the intervention components, each present and "
        "absent: the effect sizes of the programmes with and without it (points, area ~ "
        "precision 1/SE, one scale for all rows) and the mean of each category from that "
        f"component's moderator model (circle, {_pct(level)} CI thick"
        + (", prediction interval thin" if has_pi else "")
        + "); right: the difference present - absent with its "
        f"{_pct(level)} CI and p (the model with an intercept of the moderator test; "
        "models/moderators.json)."
        + (f" Dashed line: the overall mean ({_num(mean)})." if mean is not None else "")
        + " A programme with several components appears in several rows. "
        + lab.direction_note()
    )
    info = {
        "components": components,
        "differences": [
            {k: v for k, v in pair.items() if k not in ("first", "second", "text")}
            for pair in pairs
        ],
    }
    return _finish(fig, stem, "components", "Intervention components", caption, **info)


def make_profiles(
    effect_sizes: str | Path | EffectSizeData,
    codebook: str | Path | Codebook,
    components_json: str | Path,
    stem: str | Path,
    *,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """Orchard plot of the component profiles with a dot matrix of their components (tables
    ``component_profiles`` and ``study_effects`` of ``models/components.json``)."""
    ad = read_effect_sizes(effect_sizes, codebook)
    cj, tables = _step(components_json)
    level = _level(cj)
    prof = tables["component_profiles"].frame()
    se = tables["study_effects"].frame()
    # the components of the profiles (one coded for too few studies is left out of them)
    components = list((cj.get("profiles") or {}).get("components") or [])
    matrix = pd.DataFrame(
        index=prof.index,
        data={
            ad.codebook.label(c): prof[f"component.{c}"]
            .astype(str)
            .str.lower()
            .eq("yes")
            .astype(int)
            if f"component.{c}" in prof.columns
            else 0
            for c in components
        },
    )
    pooled = prof["pooled"].astype(str).str.lower().eq("yes")
    groups = pd.DataFrame(
        {
            "group": prof["profile"].astype(str),
            "estimate": prof["estimate"].astype(float).where(pooled),
            "ci_lb": prof["ci_lb"].astype(float).where(pooled),
            "ci_ub": prof["ci_ub"].astype(float).where(pooled),
            "k": prof["k"],
            "n_studies": prof["n_programmes"],
        }
    )
    study_profile = dict(zip(se["study"].astype(str), se["profile"], strict=True))
    points = pd.DataFrame(
        {
            "group": ad.data[ad.study].astype(str).map(study_profile),
            "yi": ad.data["yi"],
            "vi": ad.data["vi"],
        }
    ).dropna(subset=["group"])
    points = points[points["group"].astype(str) != ""]
    title = "Component profiles: effect sizes and profile means"
    lab = _labels(labels)
    fig = orchard_plot(
        points,
        groups,
        title=title,
        matrix=matrix,
        colour=style.BLUE,
        level=level,
        **_axis(lab),
    )
    left_out = int(se["in_profiles"].astype(str).str.lower().eq("no").sum())
    missing = (
        f" {left_out} programmes with a missing component value are not in any profile."
        if left_out
        else ""
    )
    caption = (
        f"The {len(groups)} combinations of intervention components (profiles) that occur among "
        "the programmes: the dots on the left show the components of each profile; on the right "
        "the effect sizes of its programmes (points, area ~ precision) and the profile mean from "
        f"the three-level model with the profile as a factor (circle, {_pct(level)} CI; "
        "models/components.json). Profiles not pooled have points only." + missing
    )
    if not components:
        caption = (
            "No component profiles: every component is coded for fewer than "
            "moderators.min_coverage of the studies (see the warnings)."
        )
    caption += f" {lab.direction_note()}"
    info = {"profiles": len(groups), "components": components}
    return _finish(fig, stem, "components", "Component profiles", caption, **info)


# --------------------------------------------------------------------------- bias
def make_funnel(
    bias_json: str | Path,
    stem: str | Path,
    *,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """Contour-enhanced funnel plots of the effect sizes and the study averages (tables
    ``funnel`` and ``trimfill`` of ``models/bias.json``)."""
    bias, tables = _step(bias_json)
    funnel = tables["funnel"].frame()
    trimfill = tables["trimfill"].frame()
    lab = _labels(labels)
    fig = funnel_plot(funnel, trimfill if len(trimfill) else None, bias, xlabel=lab.axis_title)
    tf = bias.get("trimfill") or {}
    eg = bias.get("egger_multilevel") or {}
    rho = (bias.get("options") or {}).get("aggregate_rho", "n/a")
    filled = f"{tf.get('k0', 'n/a')} studies filled in on the {tf.get('side', 'n/a')} side"
    if tf.get("k0"):
        filled += f", adjusted estimate {_num(tf.get('estimate'))}"
    caption = (
        "Contour-enhanced funnel plots (Peters et al. 2008): effect sizes (left) and study "
        f"averages (right, within-study correlation rho = {rho}) against their standard errors. "
        "Shaded regions: two-sided p of a z test against 0 below .01, between .01 and .05, and "
        "between .05 and .10 (white: above .10); dashed line: the pooled estimate; thin dashed "
        "lines: the pseudo 95% confidence funnel around it (estimate +- 1.96 SE). Three-level "
        "Egger-type test: slope on SE "
        f"{_num(eg.get('slope'))}, p {_p(eg.get('pval'))}. Trim and fill "
        f"({tf.get('estimator', 'n/a')}) on the study averages: {filled}. "
        f"{lab.direction_note()}"
    )
    return _finish(fig, stem, "bias", "Funnel plots", caption, k0=tf.get("k0"))


def make_selection(
    bias_json: str | Path,
    stem: str | Path,
    *,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """The selection model's weights with their intervals (``selection`` of
    ``models/bias.json``; :mod:`intervention_meta.plots.selection`), or a placeholder saying why
    they cannot be shown (``details.usable`` false)."""
    import textwrap

    from intervention_meta.plots.selection import (
        TITLE,
        selection_usable,
        selection_weights_plot,
    )

    bias, _ = _step(bias_json)
    sel = bias.get("selection")
    usable, why = selection_usable(sel, str((bias.get("not_computed") or {}).get("selection", "")))
    if not usable:
        fig = style.placeholder(TITLE, "\n".join(textwrap.wrap(why, 100)))
        return _finish(fig, stem, "selection", TITLE, why, usable=False)
    fig = selection_weights_plot(sel)
    adj, un = sel.get("adjusted_mean") or {}, sel.get("unadjusted_mean") or {}
    sided = "two" if sel.get("alternative") == "two.sided" else "one"
    boot = (sel.get("bootstrap") or {}).get("replications")
    pct = _pct(float(sel.get("level") or 0.95))
    interval = (
        f"{pct} percentile intervals of a bootstrap of studies ({boot} replications)"
        if boot
        else f"{pct} cluster-robust Wald intervals"
    )
    caption = (
        "Step-function selection model (Vevea & Hedges 1995) on all "
        f"{sel.get('k')} effect sizes of {sel.get('n_clusters')} studies, composite likelihood "
        "clustered by study (Pustejovsky, Citkowicz & Joshi 2025). Each point is the weight of "
        f"a {sided}-sided p-value interval: how likely an effect size with a p value there is to "
        "be observed relative to one in the most significant interval (weight 1, open circle). "
        f"Below the dashed line (1): less likely to be reported. Bars: {interval}; log scale. "
        f"Selection-adjusted mean {_num(adj.get('estimate'))}, without selection "
        f"{_num(un.get('estimate'))}. {_labels(labels).direction_note()}"
    )
    return _finish(fig, stem, "selection", TITLE, caption, usable=True)


# --------------------------------------------------------------------------- sensitivity
def make_leave_one_out(
    sensitivity_json: str | Path,
    effect_sizes: str | Path | EffectSizeData,
    codebook: str | Path | Codebook,
    stem: str | Path,
    *,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """Leave-one-study-out plot from the table ``leave_one_out`` of ``models/sensitivity.json``."""
    sj, tables = _step(sensitivity_json)
    level = _level(sj)
    lab = _labels(labels)
    table = tables["leave_one_out"].frame()
    ad = read_effect_sizes(effect_sizes, codebook)
    names = study_labels(ad.data, ad.codebook, ad.study)
    study = ad.codebook.label(ad.study)
    fig = leave_one_out_plot(
        table,
        labels=names,
        title=f"Leave one {study.lower()} out",
        xlabel=f"Pooled {lab.axis_title} without the {study.lower()}",
        level=level,
        symbol=lab.symbol,
        null=lab.null,
    )
    if "all_studies" in table.columns:
        rows = table[~table["all_studies"].fillna(False).astype(bool)]
    else:  # the model could not be fitted: no refits
        rows = table.iloc[0:0]
    lo = rows["estimate"].min() if len(rows) else np.nan
    hi = rows["estimate"].max() if len(rows) else np.nan
    pct = _pct(level)
    caption = (
        f"The pooled effect refitted without each {study.lower()} in turn ({len(rows)} refits; "
        f"square, {pct} CI), sorted by the estimate, against the estimate with all of them "
        f"(dashed line, {pct} CI shaded). The estimates range from {_num(lo)} to {_num(hi)}. "
        f"{lab.direction_note()}"
    )
    info = {"studies": len(rows), "level": level}
    return _finish(fig, stem, "sensitivity", f"Leave one {study.lower()} out", caption, **info)


# --------------------------------------------------------------------------- risk of bias
def make_risk_of_bias(
    effect_sizes: str | Path | EffectSizeData,
    codebook: str | Path | Codebook,
    risk_of_bias: Mapping[str, Any],
    stem: str | Path,
    *,
    kind: str,
    labels: MeasureLabels | None = None,
) -> FigureInfo:
    """The robvis-style ``traffic_light`` or weighted ``summary`` plot
    (:mod:`intervention_meta.plots.risk_of_bias`) of the judgements the config's
    ``risk_of_bias`` section names, from the analysed effect sizes and the codebook."""
    spec = RiskOfBiasSpec.from_config(risk_of_bias)
    if spec is None:
        raise ValueError("risk_of_bias: the config names no overall judgement")
    ad = read_effect_sizes(effect_sizes, codebook)
    names = study_labels(ad.data, ad.codebook, ad.study)
    rob = risk_of_bias_data(ad.data, ad.codebook, spec, study=ad.study, es=ad.es, labels=names)
    tool = spec.tool_info.name
    unit = "result" if rob.per_result else ad.codebook.label(ad.study).lower()
    plural = unit[:-1] + "ies" if unit.endswith("y") and unit[-2:-1] not in "aeiou" else unit + "s"
    units = f"{rob.n_units} {unit if rob.n_units == 1 else plural}"
    symbols = ", ".join(f"{JUDGEMENTS[j].symbol} {JUDGEMENTS[j].name.lower()}" for j in rob.scale)
    domains = f"{len(spec.domains)} domains and " if spec.domains else ""
    kinds = {  # title, drawing, what the caption says of it
        "traffic_light": (
            f"Risk of bias ({tool}) of each {unit}",
            traffic_light_plot,
            f": {domains}the overall judgement ({ad.codebook.label(spec.overall)}), one row per "
            f"{unit} ({symbols})",
        ),
        "summary": (
            f"Risk of bias ({tool}): share of the evidence per judgement",
            summary_plot,
            f", per domain and overall: the share of the weight at each judgement, each {unit} "
            "weighted by the precision of its effect sizes (the sum of 1/vi)",
        ),
    }
    if kind not in kinds:
        raise ValueError(f"kind must be one of {list(kinds)}, got {kind!r}")
    title, draw, text = kinds[kind]
    fig = draw(rob, palette=spec.palette, title=title)
    caption = (
        f"Risk-of-bias judgements ({tool}) of the {units} analysed{text}; {spec.palette} "
        f"colours, as robvis. {_labels(labels).direction_note()}"
    )
    info = {"units": rob.n_units, "per_result": rob.per_result, "tool": spec.tool}
    return _finish(fig, stem, "risk_of_bias", title, caption, **info)


# --------------------------------------------------------------------------- manifest
def write_manifest(
    figures: Sequence[FigureInfo], out: str | Path, skipped: Sequence[Mapping[str, str]] = ()
) -> dict:
    """Write the figures' descriptions into ``figures.json``, ordered by report section.

    The manifest lists every figure once: ``stem``, ``png``, ``pdf``, ``svg`` (paths as the rules
    name them, relative to the working directory), ``title``, ``caption``, ``section`` (one of
    :data:`SECTIONS`), ``width_in`` / ``height_in`` (the size the figure was drawn at, inches)
    and ``details``; ``skipped`` lists the figures not drawn because they would be empty
    (``stem``, ``section``, ``reason``).
    """
    infos = list(figures)
    stems = [i.stem for i in infos]
    if len(set(stems)) != len(stems):
        raise ValueError(f"figure stems are not unique: {stems}")
    infos.sort(key=lambda i: SECTIONS.index(i.section))  # stable: keeps the order within a section
    manifest = {
        "sections": list(SECTIONS),
        "figures": [i.to_dict() for i in infos],
        "skipped": [dict(entry) for entry in skipped],
    }
    write_json(manifest, out)
    log.info("figure manifest: %d figures -> %s", len(infos), out)
    return manifest


# --------------------------------------------------------------------------- the step
#: the figures that take longest to draw (most rows and text), drawn first when in parallel
LARGE_FIRST: dict[Callable[..., FigureInfo], int] = {
    make_forest: -3,
    make_leave_one_out: -2,
    make_profiles: -1,
}


#: the modules some figures import when they are drawn (the critical values of the intervals, the
#: component models, the selection model's weights): imported once before the workers fork
WORKER_MODULES = (
    "intervention_meta.analyses.components",
    "intervention_meta.models.inference",
    "intervention_meta.plots.selection",
)


@dataclass(frozen=True)
class FigureInputs:
    """What the figures step reads: the data tables and every analysis step's JSON.

    ``overall_domains`` are the per-domain ``models/overall.json`` files, in the order of
    ``domains``.
    """

    effect_sizes: str | Path
    codebook: str | Path
    clean_summary: str | Path
    effect_sizes_summary: str | Path
    overall: str | Path
    moderators: str | Path
    components: str | Path
    bias: str | Path
    sensitivity: str | Path
    overall_domains: Sequence[str | Path] = ()
    validation_report: str | Path | None = None
    prisma_counts: str | Path | None = None


def run_figures(
    inputs: FigureInputs,
    outdir: str | Path,
    *,
    orchard: Sequence[str] = (),
    bubble: Sequence[str] = (),
    domains: Sequence[str] = (),
    domain_variable: str | None = None,
    forest_sort: str = "effect",
    forest_rows: str = "study",
    forest_max_rows: int = MAX_ROWS,
    favours: Sequence[str] | None = None,
    workers: int = 1,
    risk_of_bias: Mapping[str, Any] | None = None,
    prisma_flow: str | Path | None = None,
) -> dict:
    """The figures step: draw every figure of one analysis into ``outdir`` and write the manifest
    ``outdir/figures.json`` (returned).

    ``orchard`` and ``bubble`` are the moderators drawn as orchard and bubble plots;
    ``forest_*`` and ``favours`` the options of :func:`make_forest`. With
    ``workers`` > 1 the figures are drawn by that many processes (the manifest is the same).
    ``risk_of_bias`` (the config's section; absent: no risk-of-bias figures) adds the
    traffic-light and summary plots.
    ``prisma_flow`` is where the PRISMA flow diagram's joined counts are written.
    """
    out = Path(outdir)
    i = inputs
    cb = load_codebook(i.codebook)  # read once for every figure
    # checked here, so that a bad counts file stops the step before any figure is drawn
    counts = read_counts(i.prisma_counts) if i.prisma_counts else None
    es = read_effect_sizes(i.effect_sizes, cb)
    lab = {"labels": read_measure_labels(i.effect_sizes_summary)}
    mean = {"overall": i.overall, **lab}  # the orchard plots' overall mean line
    flow = dict(validation_report=i.validation_report, **lab)
    variance = dict(domains=domains, domain_variable=domain_variable, **lab)
    tasks: list[tuple[Callable[..., FigureInfo], tuple, dict]] = [
        (make_flow, (i.clean_summary, i.effect_sizes_summary, i.overall, cb, out / "flow"), flow),
        (
            make_prisma,
            (i.clean_summary, i.effect_sizes_summary, i.overall, counts, out / "prisma"),
            {"flow_json": prisma_flow, **lab},
        ),
        (
            make_forest,
            (es, cb, i.components, i.overall, out / "forest"),
            {
                "sort": forest_sort,
                "rows": forest_rows,
                "max_rows": forest_max_rows,
                "favours": favours,
                "summary": i.effect_sizes_summary,
                **lab,
            },
        ),
        (
            make_variance,
            ([i.overall, *i.overall_domains], cb, out / "variance_distribution"),
            variance,
        ),
        *((make_orchard, (es, cb, i.moderators, m, out / f"orchard_{m}"), mean) for m in orchard),
        *((make_bubble, (es, cb, i.moderators, m, out / f"bubble_{m}"), lab) for m in bubble),
        (
            make_components,
            (es, cb, i.moderators, i.components, out / "components_orchard"),
            mean,
        ),
        (make_profiles, (es, cb, i.components, out / "components_profiles"), lab),
        (make_funnel, (i.bias, out / "funnel"), lab),
        (make_selection, (i.bias, out / "selection_weights"), lab),
        (make_leave_one_out, (i.sensitivity, es, cb, out / "leave_one_out"), lab),
        *(
            (
                make_risk_of_bias,
                (es, cb, risk_of_bias, out / f"risk_of_bias_{kind}"),
                {"kind": kind, **lab},
            )
            for kind in (ROB_FIGURES if risk_of_bias and risk_of_bias.get("overall") else ())
        ),
    ]
    # the component figures would be empty without components (the step's JSON says why)
    components = read_json(i.components)
    skipped = []
    if not components.get("applicable", True):
        reason = str(components.get("reason", ""))
        skip = (make_components, make_profiles)
        skipped = [
            {"stem": Path(args[-1]).name, "section": "components", "reason": reason}
            for f, args, _ in tasks
            if f in skip
        ]
        tasks = [task for task in tasks if task[0] not in skip]
    # the largest figures first, so that no worker is left with a long one at the end
    drawn = style.draw_all(tasks, workers, first=LARGE_FIRST, preload=WORKER_MODULES)
    # a figure of several pages (the forest plot) is one entry per page
    figures = [page for d in drawn for page in (d if isinstance(d, list) else [d])]
    manifest = write_manifest(figures, out / "figures.json", skipped)
    remove_unlisted_figures(out, manifest)  # those of a variable removed from the codebook
    return manifest
