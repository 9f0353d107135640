"""The figures step: read what the analysis steps wrote, draw, write PNG + PDF + a description.

Each ``make_*`` function takes the paths of the analysis outputs it draws and the stem of the figure
(``results/<analysis>/figures/<name>``), writes ``<stem>.png`` (300 dpi) and ``<stem>.pdf``, and
returns a :class:`FigureInfo` (title, caption with the numbers drawn, report section) that it also
writes as JSON to ``meta``. :func:`write_manifest` collects those into ``figures/figures.json``,
the list the report embeds. Nothing is estimated here: where a number the figure would show is not
in the analysis outputs, the caption says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.data.cleaning import read_clean
from intervention_meta.data.codebook import Codebook, load_codebook, normalise_code
from intervention_meta.io import read_json, write_json
from intervention_meta.plots import style
from intervention_meta.plots.bubble import bubble_plot, regression_line
from intervention_meta.plots.flow import flow_diagram, flow_steps
from intervention_meta.plots.forest import SORT_KEYS, forest_plot, forest_rows
from intervention_meta.plots.funnel import funnel_plot
from intervention_meta.plots.labels import study_labels
from intervention_meta.plots.leave_one_out import leave_one_out_plot
from intervention_meta.plots.orchard import orchard_plot
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
    "make_leave_one_out",
    "make_orchard",
    "make_profiles",
    "make_variance",
    "moderator_figure_kind",
    "read_info",
    "write_manifest",
]

#: the report sections a figure belongs to, in the report's order
SECTIONS = ("data", "overall", "moderators", "components", "bias", "sensitivity")

#: codebook types drawn as bubble plots (the rest of the moderators as orchard plots)
CONTINUOUS_TYPES = ("integer", "number")


@dataclass(frozen=True)
class FigureInfo:
    """What the manifest says about one figure."""

    stem: str
    png: str
    pdf: str
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
def _finish(fig, stem: str | Path, meta: str | Path | None, **info: Any) -> FigureInfo:
    width, height = (round(float(v), 4) for v in fig.get_size_inches())
    png, pdf = style.save(fig, stem)
    result = FigureInfo(
        stem=Path(stem).name,
        png=str(png),
        pdf=str(pdf),
        width_in=width,
        height_in=height,
        **info,
    )
    if meta is not None:
        write_json(result.to_dict(), meta)
    return result


def read_info(path: str | Path) -> FigureInfo:
    """A :class:`FigureInfo` written by a ``make_*`` function."""
    return FigureInfo(**read_json(path))


def _num(x: Any, digits: int = 2) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(value):
        return "n/a"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _sig(x: Any, digits: int = 3) -> str:
    """``digits`` significant digits (slopes can be small: 0.000348, not 0.000)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return f"{value:.{digits}g}" if np.isfinite(value) else "n/a"


def _p(x: Any) -> str:
    try:
        p = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(p):
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


@dataclass(frozen=True)
class EffectSizes:
    """The effect sizes as the analysis steps read them (typed codebook columns, ``yi``, ``vi``).

    The same reading as :func:`intervention_meta.analyses.analysis_model.load_analysis_data`,
    without importing
    the model core: every figure job starts a Python process, and the figures need no model.
    """

    data: pd.DataFrame
    codebook: Codebook
    study: str
    es: str

    @property
    def k(self) -> int:
        return len(self.data)

    @property
    def n_studies(self) -> int:
        return int(self.data[self.study].nunique())


def _analysis_data(effect_sizes: str | Path, codebook: str | Path | Codebook) -> EffectSizes:
    cb = codebook if isinstance(codebook, Codebook) else load_codebook(codebook)
    data = read_clean(effect_sizes, cb)
    for col in ("yi", "vi"):
        data[col] = pd.to_numeric(data[col], errors="coerce")
    return EffectSizes(data, cb, cb.key(cb.parent_table), cb.key(cb.child_table))


def _model_text(overall: Mapping) -> str:
    return (overall.get("analysis") or {}).get("description") or "analysis model"


def moderator_figure_kind(codebook: Codebook, moderator: str) -> str:
    """``bubble`` for integer/number moderators, ``orchard`` for binary/categorical/ordinal."""
    return "bubble" if codebook[moderator].type in CONTINUOUS_TYPES else "orchard"


# --------------------------------------------------------------------------- data
def make_flow(
    clean_summary: str | Path,
    effect_sizes_summary: str | Path,
    overall: str | Path,
    codebook: str | Path,
    stem: str | Path,
    *,
    validation_report: str | Path | None = None,
    meta: str | Path | None = None,
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
    labels = dict(cb[req].levels) if req else {}
    steps = flow_steps(clean, es, ov, validation, labels)
    fig = flow_diagram(steps)
    a = ov.get("analysis") or {}
    caption = (
        f"Data flow: {clean.get('rows_in')} coded effect-size rows in {clean.get('studies_in')} "
        f"studies; {clean.get('dropped', 0)} excluded by the inclusion criteria, "
        f"{es.get('dropped', 0)} without a computable effect size; {a.get('k')} effect sizes in "
        f"{a.get('n_studies')} studies analysed. Counts from clean/summary.json, "
        "effect_sizes_summary.json and models/overall.json."
    )
    return _finish(
        fig,
        stem,
        meta,
        title="Data flow",
        caption=caption,
        section="data",
        details={"steps": [s.to_dict() for s in steps]},
    )


# --------------------------------------------------------------------------- overall
def make_forest(
    effect_sizes: str | Path,
    codebook: str | Path,
    study_effects: str | Path,
    overall: str | Path,
    stem: str | Path,
    *,
    sort: str = "effect",
    meta: str | Path | None = None,
) -> FigureInfo:
    """Forest plot of the effect sizes by study (``figures.forest_sort`` orders the studies)."""
    if sort not in SORT_KEYS:
        raise ValueError(f"figures.forest_sort must be one of {SORT_KEYS}, got {sort!r}")
    ad = _analysis_data(effect_sizes, codebook)
    se = pd.read_csv(study_effects, dtype={"Study": str})
    ov = read_json(overall)
    labels = study_labels(ad.data, ad.codebook, ad.study)
    years = None
    if "year" in ad.data.columns:
        yr = pd.to_numeric(ad.data["year"], errors="coerce")
        years = yr.groupby(ad.data[ad.study].astype(str)).min().dropna().to_dict() or None
    rows, used = forest_rows(
        ad.data, se, ov, study=ad.study, es=ad.es, labels=labels, sort=sort, years=years
    )
    order_text = {
        "effect": "by study estimate (smallest first)",
        "precision": "by the precision of the study estimate (most precise first)",
        "year": "by publication year (oldest first)",
        "study": f"by {ad.codebook.label(ad.study).lower()} key",
    }[used]
    est = ov.get("estimate") or {}
    level = float(est.get("level") or 0.95)
    title = f"Forest plot: {ad.k} effect sizes in {ad.n_studies} studies"
    fig = forest_plot(rows, title=title, level=level)
    rule = (
        str(se["Positive rule"].dropna().iloc[0])
        if "Positive rule" in se and se["Positive rule"].notna().any()
        else ""
    )
    study_est = rule.split(";")[0].split(":", 1)[-1].strip() if rule else "study-level estimate"
    pooled = (
        f"The diamond is the pooled effect of the {_model_text(ov)} "
        f"(g = {_num(est.get('estimate'))}, "
        f"{100 * level:g}% CI {_num(est.get('ci_lb'))} to {_num(est.get('ci_ub'))}); the bar "
        f"below it the {100 * level:g}% prediction interval ({_num(est.get('pi_lb'))} to "
        f"{_num(est.get('pi_ub'))})."
        if ov.get("estimable", True) and est.get("estimate") is not None
        else "The pooled model was not estimable; no pooled effect is drawn."
    )
    caption = (
        f"Effect sizes (Hedges' g with {100 * level:g}% CI; blue) of {ad.n_studies} studies, "
        f"grouped by study under each study's estimate (black; {study_est}). Studies sorted "
        f"{order_text}. {pooled} Marker area grows with precision (1/SE)."
    )
    if used != sort:
        caption += f" (Sort '{sort}' was asked for, but the data have no year variable.)"
    return _finish(
        fig,
        stem,
        meta,
        title=title,
        caption=caption,
        section="overall",
        details={"sort": used, "rows": len(rows), "k": ad.k, "studies": ad.n_studies},
    )


def make_variance(
    variance_tables: Sequence[str | Path],
    overall_files: Sequence[str | Path],
    codebook: str | Path,
    stem: str | Path,
    *,
    domains: Sequence[str] = (),
    domain_variable: str | None = None,
    meta: str | Path | None = None,
) -> FigureInfo:
    """Variance distribution of the analysis of all effect sizes (first file) and of each domain
    (the following files, in the order of ``domains``)."""
    if len(variance_tables) != len(overall_files) or len(variance_tables) != len(domains) + 1:
        raise ValueError("one variance table and one overall JSON per analysis (all + domains)")
    cb = load_codebook(codebook)
    names = ["All effect sizes"] + [
        cb.level_label(domain_variable, d) if domain_variable else str(d) for d in domains
    ]
    bars = []
    for name, table, ovf in zip(names, variance_tables, overall_files, strict=True):
        ov = read_json(ovf)
        a = ov.get("analysis") or {}
        try:
            frame = pd.read_csv(table, dtype={"Level": str})
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame()
        note = "" if ov.get("estimable", True) else f"not estimable: {ov.get('reason')}"
        bars.append(VarianceBar(name, frame, a.get("k"), a.get("n_studies"), note))
    title = "Distribution of the total variance over the levels"
    fig = variance_plot(bars, title=title)
    first = bars[0].levels()
    shares = "; ".join(
        f"{r['Source of variance']} {_num(r['% of total variance'], 1)}%"
        for _, r in first.iterrows()
    )
    caption = (
        "Share of the total variance due to sampling error (level 1), differences between effect "
        "sizes within studies (level 2) and differences between studies (level 3) "
        "(Cheung 2014; Assink & Wibbelink 2016), for all effect sizes"
        + (f" and for each {cb.label(domain_variable).lower()} separately" if domains else "")
        + f". All effect sizes: {shares}. Dashed line: 75% of the variance due to sampling error, "
        "below which heterogeneity is taken to be substantial (Hunter & Schmidt 1990)."
    )
    return _finish(
        fig,
        stem,
        meta,
        title=title,
        caption=caption,
        section="overall",
        details={"analyses": names},
    )


# --------------------------------------------------------------------------- moderators
def _test_text(tests: pd.DataFrame, moderator: str) -> str:
    row = tests[tests["Moderator"] == moderator]
    if row.empty:
        return ""
    r = row.iloc[0]
    reason = r.get("Reason no test")
    if isinstance(reason, str) and reason.strip():
        return f"No test: {reason}"
    stat = "F" if pd.notna(r.get("F")) else "Chi2"
    value = r.get("F") if stat == "F" else r.get("Chi-square")
    df = f"{_df(r.get('df1'))}, {_df(r.get('df2'))}" if stat == "F" else _df(r.get("df1"))
    text = f"{stat}({df}) = {_num(value)}, p {_p(r.get('p'))}"
    if pd.notna(r.get("p (Holm)")):
        text += f" (Holm p {_p(r.get('p (Holm)'))})"
    if pd.notna(r.get("CR2 F (HTZ)")):
        text += (
            f"; CR2 HTZ F({_df(r.get('CR2 df1'))}, {_df(r.get('CR2 df2'))}) = "
            f"{_num(r.get('CR2 F (HTZ)'))}, p {_p(r.get('CR2 p'))}"
        )
    return text


def _single(moderators_json: Mapping, moderator: str) -> dict:
    single = (moderators_json.get("single") or {}).get("moderators") or []
    return next((m for m in single if m.get("name") == moderator), {})


def _pi_columns(rows: pd.DataFrame, entry: Mapping) -> tuple[pd.Series, pd.Series] | None:
    """Prediction intervals per category, if the moderator step wrote them (table or JSON)."""
    for lo, hi in (("95% PI lower", "95% PI upper"), ("PI lower", "PI upper")):
        if lo in rows.columns and hi in rows.columns:
            return rows[lo], rows[hi]
    json_rows = [r for r in entry.get("rows") or [] if r.get("term") == "mean"]
    if json_rows and all("pi_lb" in r and "pi_ub" in r for r in json_rows):
        by_code = {str(r.get("code")): r for r in json_rows}
        codes = rows["Category code"].astype(str)
        return (
            codes.map(lambda c: by_code.get(c, {}).get("pi_lb")).astype(float),
            codes.map(lambda c: by_code.get(c, {}).get("pi_ub")).astype(float),
        )
    return None


def _read_moderators(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"Category code": str, "Moderator": str})


def make_orchard(
    effect_sizes: str | Path,
    codebook: str | Path,
    moderators_table: str | Path,
    moderator_tests: str | Path,
    moderators_json: str | Path,
    moderator: str,
    stem: str | Path,
    *,
    meta: str | Path | None = None,
) -> FigureInfo:
    """Orchard plot of a binary, categorical or ordinal moderator."""
    ad = _analysis_data(effect_sizes, codebook)
    table = _read_moderators(moderators_table)
    tests = pd.read_csv(moderator_tests, dtype={"Moderator": str})
    entry = _single(read_json(moderators_json), moderator)
    label = ad.codebook.label(moderator)
    rows = table[(table["Moderator"] == moderator) & (table["Term"] == "mean")].reset_index(
        drop=True
    )
    rows["Category code"] = rows["Category code"].map(normalise_code)
    in_test = rows["In test"].astype(str).str.lower().eq("yes")
    groups = pd.DataFrame(
        {
            "group": rows["Category"].astype(str),
            "estimate": rows["Estimate (g)"],
            "ci_lb": rows["95% CI lower"],
            "ci_ub": rows["95% CI upper"],
            "k": rows["k (effect sizes)"],
            "n_studies": rows["Studies"],
            "tested": in_test if in_test.any() else True,  # no test at all: the subtitle says so
            "note": [
                f"{cat}: {note}" if isinstance(note, str) and note.strip() else ""
                for cat, note in zip(rows["Category"], rows["Note"], strict=True)
            ],
        }
    )
    pi = _pi_columns(rows, entry)
    if pi is not None:
        groups["pi_lb"], groups["pi_ub"] = pi[0].to_numpy(), pi[1].to_numpy()
    codes = _codes(ad.data[moderator]) if moderator in ad.data.columns else pd.Series(dtype=object)
    by_code = dict(zip(rows["Category code"], rows["Category"].astype(str), strict=True))
    points = pd.DataFrame(
        {"group": codes.map(by_code), "yi": ad.data["yi"], "vi": ad.data["vi"]}
    ).dropna(subset=["group"])
    subtitle = _test_text(tests, moderator)
    title = label
    if groups.empty:
        reason = entry.get("no_test_reason") or "no category means in tables/moderators.csv"
        subtitle = f"Not analysed: {reason}"
    fig = orchard_plot(points, groups, title=title, subtitle=subtitle)
    missing = int(entry.get("k_missing") or 0)
    caption = (
        f"Orchard plot (Nakagawa et al. 2021) of {label.lower()}: every effect size (points, area "
        "~ precision, jittered vertically) and each category's mean from the moderator model "
        "(circle) with its 95% confidence interval (thick bar)"
        + (
            ""
            if pi is not None
            else "; no prediction interval per category (not written by the moderator step)"
        )
        + f". k and number of studies beside each row. Test of differences: {subtitle or 'n/a'}."
        + (f" {missing} effect sizes with a missing value left out." if missing else "")
    )
    return _finish(
        fig,
        stem,
        meta,
        title=title,
        caption=caption,
        section="moderators",
        details={"moderator": moderator, "kind": "orchard", "prediction_interval": pi is not None},
    )


def make_bubble(
    effect_sizes: str | Path,
    codebook: str | Path,
    moderators_table: str | Path,
    moderator_tests: str | Path,
    moderators_json: str | Path,
    moderator: str,
    stem: str | Path,
    *,
    meta: str | Path | None = None,
) -> FigureInfo:
    """Bubble plot of an integer or number moderator with its meta-regression line."""
    ad = _analysis_data(effect_sizes, codebook)
    table = _read_moderators(moderators_table)
    tests = pd.read_csv(moderator_tests, dtype={"Moderator": str})
    entry = _single(read_json(moderators_json), moderator)
    label = ad.codebook.label(moderator)
    x = pd.to_numeric(ad.data[moderator], errors="coerce") if moderator in ad.data else None
    points = pd.DataFrame(
        {"x": x if x is not None else np.nan, "yi": ad.data["yi"], "vi": ad.data["vi"]}
    ).astype(float)
    model = (entry.get("models") or {}).get("slope") or {}
    level = 0.95
    line = None
    finite = points["x"].dropna()
    if model and len(finite):
        grid = np.linspace(float(finite.min()), float(finite.max()), 101)
        line = regression_line(model, grid, level)
    slope = table[(table["Moderator"] == moderator) & (table["Term"] == "slope")]
    subtitle = ""
    if not slope.empty:
        s = slope.iloc[0]
        subtitle = (
            f"slope = {_sig(s['Estimate (g)'])} per unit "
            f"[95% CI {_sig(s['95% CI lower'])}, {_sig(s['95% CI upper'])}]; "
        )
    subtitle += _test_text(tests, moderator)
    title = label
    fig = bubble_plot(points, line, title=title, xlabel=label, subtitle=subtitle)
    caption = (
        f"Bubble plot of {label.lower()}: every effect size against the moderator (area ~ "
        "precision 1/SE) with the meta-regression line of the moderator model and its 95% "
        f"confidence band (from the coefficients and their covariance in models/moderators.json). "
        f"{subtitle}."
    )
    if line is None:
        caption += " No regression line: the moderator model was not estimated."
    return _finish(
        fig,
        stem,
        meta,
        title=title,
        caption=caption,
        section="moderators",
        details={"moderator": moderator, "kind": "bubble"},
    )


# --------------------------------------------------------------------------- components
def make_components(
    effect_sizes: str | Path,
    codebook: str | Path,
    moderators_table: str | Path,
    components_json: str | Path,
    stem: str | Path,
    *,
    meta: str | Path | None = None,
) -> FigureInfo:
    """Orchard plot of the effect sizes of the programmes with each component (its "present"
    category in the moderator analyses)."""
    from intervention_meta.analyses.components import (
        present_code,
    )  # the one figure that needs the components module

    ad = _analysis_data(effect_sizes, codebook)
    table = _read_moderators(moderators_table)
    components = list(read_json(components_json).get("components") or [])
    groups, points = [], []
    for c in components:
        var = ad.codebook[c] if c in ad.codebook else None
        code = present_code(var)
        name = ad.codebook.label(c)
        row = table[(table["Moderator"] == c) & (table["Term"] == "mean")]
        row = row[row["Category code"].map(normalise_code) == code]
        if row.empty:
            groups.append(
                {
                    "group": name,
                    "estimate": np.nan,
                    "ci_lb": np.nan,
                    "ci_ub": np.nan,
                    "k": np.nan,
                    "n_studies": np.nan,
                    "tested": True,
                    "note": f"{name}: not among the moderators analysed; no mean",
                }
            )
        else:
            r = row.iloc[0]
            groups.append(
                {
                    "group": name,
                    "estimate": r["Estimate (g)"],
                    "ci_lb": r["95% CI lower"],
                    "ci_ub": r["95% CI upper"],
                    "k": r["k (effect sizes)"],
                    "n_studies": r["Studies"],
                    "tested": True,  # this figure is not about the moderator test
                    "note": f"{name}: {r['Note']}" if isinstance(r["Note"], str) else "",
                }
            )
        if c in ad.data.columns:
            has = (_codes(ad.data[c]) == code).fillna(False).to_numpy(dtype=bool)
            points.append(ad.data.loc[has, ["yi", "vi"]].assign(group=name))
    points_frame = pd.concat(points) if points else pd.DataFrame(columns=["group", "yi", "vi"])
    groups_frame = pd.DataFrame(
        groups, columns=["group", "estimate", "ci_lb", "ci_ub", "k", "n_studies", "tested", "note"]
    )
    title = "Intervention components"
    subtitle = (
        "effect sizes of the programmes with each component; mean of the component's 'present' "
        "category in its moderator model"
    )
    fig = orchard_plot(points_frame, groups_frame, title=title, subtitle=subtitle)
    caption = (
        "Orchard plot (Nakagawa et al. 2021) of the intervention components: for each component, "
        "the effect sizes of the programmes that have it (points, area ~ precision) and the mean "
        "of the 'present' category from that component's moderator model (circle, 95% CI; "
        "tables/moderators.csv). A programme with several components appears in several rows. "
        "No prediction interval per category (not written by the moderator step)."
    )
    return _finish(
        fig,
        stem,
        meta,
        title="Intervention components",
        caption=caption,
        section="components",
        details={"components": components},
    )


def make_profiles(
    effect_sizes: str | Path,
    codebook: str | Path,
    component_profiles: str | Path,
    study_effects: str | Path,
    components_json: str | Path,
    stem: str | Path,
    *,
    meta: str | Path | None = None,
) -> FigureInfo:
    """Orchard plot of the component profiles with a dot matrix of their components."""
    ad = _analysis_data(effect_sizes, codebook)
    prof = pd.read_csv(component_profiles)
    se = pd.read_csv(study_effects, dtype={"Study": str})
    components = list(read_json(components_json).get("components") or [])
    comp_labels = [ad.codebook.label(c) for c in components]
    yes = {"yes", "1", "true"}
    matrix = pd.DataFrame(
        {
            lab: prof[lab].astype(str).str.lower().isin(yes).astype(int)
            if lab in prof.columns
            else 0
            for lab in comp_labels
        }
    )
    pooled = prof.get("Pooled", pd.Series("yes", index=prof.index)).astype(str).str.lower()
    groups = pd.DataFrame(
        {
            "group": prof["Profile"].astype(str),
            "estimate": prof["Mean g"].where(pooled == "yes"),
            "ci_lb": prof["95% CI lower"].where(pooled == "yes"),
            "ci_ub": prof["95% CI upper"].where(pooled == "yes"),
            "k": prof["k (effect sizes)"],
            "n_studies": prof["Programmes (studies)"],
        }
    )
    study_profile = dict(zip(se["Study"].astype(str), se.get("Profile"), strict=True))
    points = pd.DataFrame(
        {
            "group": ad.data[ad.study].astype(str).map(study_profile),
            "yi": ad.data["yi"],
            "vi": ad.data["vi"],
        }
    ).dropna(subset=["group"])
    title = "Component profiles: effect sizes and profile means"
    fig = orchard_plot(points, groups, title=title, matrix=matrix, colour=style.BLUE)
    left_out = 0
    if "In profiles" in se.columns:
        left_out = int(se["In profiles"].astype(str).str.lower().eq("no").sum())
    missing = (
        f" {left_out} programmes with a missing component value are not in any profile."
        if left_out
        else ""
    )
    caption = (
        f"The {len(groups)} combinations of intervention components (profiles) that occur among "
        "the programmes: the dots on the left show the components of each profile; on the right "
        "the effect sizes of its programmes (points, area ~ precision) and the profile mean from "
        "the three-level model with the profile as a factor (circle, 95% CI; "
        "tables/component_profiles.csv). Profiles not pooled have points only." + missing
    )
    return _finish(
        fig,
        stem,
        meta,
        title="Component profiles",
        caption=caption,
        section="components",
        details={"profiles": len(groups), "components": components},
    )


# --------------------------------------------------------------------------- bias
def make_funnel(
    funnel_data: str | Path,
    trimfill_data: str | Path,
    bias_json: str | Path,
    stem: str | Path,
    *,
    meta: str | Path | None = None,
) -> FigureInfo:
    """Contour-enhanced funnel plots of the effect sizes and the study averages."""
    funnel = pd.read_csv(funnel_data)
    try:
        trimfill = pd.read_csv(trimfill_data)
    except pd.errors.EmptyDataError:
        trimfill = None
    bias = read_json(bias_json)
    fig = funnel_plot(funnel, trimfill, bias)
    tf = bias.get("trimfill") or {}
    eg = bias.get("egger_multilevel") or {}
    rho = (bias.get("options") or {}).get("aggregate_rho", "n/a")
    filled = f"{tf.get('k0', 'n/a')} studies filled in on the {tf.get('side', 'n/a')} side"
    if tf.get("k0"):
        filled += f", adjusted estimate {_num(tf.get('estimate'))}"
    caption = (
        "Contour-enhanced funnel plots (Peters et al. 2008): effect sizes (left) and study "
        f"averages (right, within-study correlation rho = {rho}) against their standard errors. "
        "Shaded regions: two-sided p of a z test against 0 between .10 and .05, .05 and .01, and "
        "below .01; dashed line: the pooled estimate. Three-level Egger-type test: slope on SE "
        f"{_num(eg.get('slope'))}, p {_p(eg.get('pval'))}. Trim and fill "
        f"({tf.get('estimator', 'n/a')}) on the study averages: {filled}."
    )
    return _finish(
        fig,
        stem,
        meta,
        title="Funnel plots",
        caption=caption,
        section="bias",
        details={"k0": tf.get("k0")},
    )


# --------------------------------------------------------------------------- sensitivity
def make_leave_one_out(
    leave_one_out: str | Path,
    effect_sizes: str | Path,
    codebook: str | Path,
    stem: str | Path,
    *,
    meta: str | Path | None = None,
) -> FigureInfo:
    """Leave-one-study-out plot from ``tables/sensitivity_leave_one_out.csv``."""
    table = pd.read_csv(leave_one_out, dtype={"Study left out": str})
    ad = _analysis_data(effect_sizes, codebook)
    labels = study_labels(ad.data, ad.codebook, ad.study)
    fig = leave_one_out_plot(table, labels=labels)
    rows = table[~table["Study left out"].astype(str).str.startswith("none")]
    lo, hi = rows["Estimate"].min(), rows["Estimate"].max()
    caption = (
        f"The pooled effect refitted without each of the {len(rows)} studies in turn (square, "
        "95% CI), sorted by the estimate, against the estimate with all studies (dashed line, "
        f"95% CI shaded). The estimates range from {_num(lo)} to {_num(hi)}."
    )
    return _finish(
        fig,
        stem,
        meta,
        title="Leave one study out",
        caption=caption,
        section="sensitivity",
        details={"studies": len(rows)},
    )


# --------------------------------------------------------------------------- manifest
def write_manifest(meta_files: Sequence[str | Path], out: str | Path) -> dict:
    """Collect the figures' descriptions into ``figures.json``, ordered by report section.

    The manifest lists every figure once: ``stem``, ``png``, ``pdf`` (paths as the rules name
    them, relative to the working directory), ``title``, ``caption``, ``section`` (one of
    :data:`SECTIONS`), ``width_in`` / ``height_in`` (the size the figure was drawn at, inches)
    and ``details``.
    """
    infos = [read_info(p) for p in meta_files]
    stems = [i.stem for i in infos]
    if len(set(stems)) != len(stems):
        raise ValueError(f"figure stems are not unique: {stems}")
    infos.sort(key=lambda i: SECTIONS.index(i.section))  # stable: keeps the order within a section
    manifest = {
        "sections": list(SECTIONS),
        "figures": [i.to_dict() for i in infos],
    }
    write_json(manifest, out)
    log.info("figure manifest: %d figures -> %s", len(infos), out)
    return manifest
