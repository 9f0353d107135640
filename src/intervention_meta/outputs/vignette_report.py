"""The vignette study's outputs: APA tables, figures and the self-contained HTML report.

:func:`run_vignette_outputs` is the ``vignette_outputs`` step. It reads only ``models.json``,
``findings.json``, the validation summary and the config (never a CSV header or a label to get a
number back) and writes, under the analysis' folder,

* ``tables/``: per outcome the APA tables of the model terms (every fitted model), the joint
  tests and the marginal means (:func:`intervention_meta.outputs.tables.apa_table`, Markdown,
  LaTeX, HTML and Word, with ``tables.json`` listing them);
* ``figures/``: the marginal-means figure of every factor and the heat map of every outcome
  (:mod:`intervention_meta.plots.vignette`);
* ``report.html``: one file that opens offline (figures embedded), with the summary of the
  findings, the methods written from the config, the data, every estimate and test, and the
  provenance block of the meta-analysis report
  (:func:`intervention_meta.outputs.report.provenance_section`); and ``provenance.json``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from intervention_meta.io import read_json, write_json
from intervention_meta.outputs.tables import (
    CI_NOTE,
    ApaTable,
    Column,
    TableSpec,
    apa_table,
    ci,
    fmt_ci,
    fmt_est,
    fmt_p,
    write_apa_tables,
)

log = logging.getLogger(__name__)
esc = html.escape

__all__ = ["finding_sentence", "run_vignette_outputs", "vignette_tables"]

MODEL_TEXT = {
    "gee": (
        "a population-averaged logistic model estimated by generalised estimating equations "
        "(GEE) with an exchangeable working correlation within respondents and robust "
        "(sandwich) standard errors (Liang & Zeger, 1986)"
    ),
    "glmm": (
        "a logistic mixed model with a random intercept per respondent (GLMM), fitted by maximum "
        "likelihood ({quadrature})"
    ),
    "lmm": (
        "a linear mixed model with a random intercept per respondent (LMM), fitted by restricted "
        "maximum likelihood"
    ),
    "clm": (
        "a cumulative-link (proportional-odds logit) model of the ordered categories (CLM), "
        "logit P(Y <= j) = theta_j - x'beta"
    ),
}
MODEL_SHORT = {"gee": "GEE", "glmm": "GLMM", "lmm": "LMM", "clm": "CLM"}
SCALE_WORD = {"probability": "probability", "mean": "mean", "mean_score": "mean score"}
TEST_SYMBOL = {"wald_chi2": "\u03c7\u00b2", "wald_f": "F"}


def _label(models: Mapping[str, Any], name: str) -> str:
    return str(((models.get("labels") or {}).get(name) or {}).get("label") or name)


def _short(label: str) -> str:
    return label.split(" (")[0]


def _term_label(models: Mapping[str, Any], term: str) -> str:
    """``style[permissive]`` -> ``Parenting style: Permissive``; interactions joined by x."""
    if term == "(Intercept)":
        return "Intercept"
    parts = []
    for part in term.split(":"):
        name, _, level = part.partition("[")
        levels = ((models.get("labels") or {}).get(name) or {}).get("levels") or {}
        level = level.rstrip("]")
        parts.append(f"{_label(models, name)}: {_short(str(levels.get(level) or level))}")
    return " \u00d7 ".join(parts)


def _test_text(test: Mapping[str, Any] | None) -> str:
    if not test or test.get("statistic") is None:
        return "no joint test"
    symbol = TEST_SYMBOL.get(str(test.get("kind")), "W")
    df = f"{float(test['df']):g}" if test.get("df") is not None else ""
    if test.get("df2") is not None:
        df += f", {float(test['df2']):.1f}"
    p = fmt_p(test.get("p"))
    p_text = f"p {p}" if p.startswith("<") else f"p = {p}"
    return f"{symbol}({df}) = {float(test['statistic']):.2f}, {p_text}"


def finding_sentence(finding: Mapping[str, Any], level: float = 0.95) -> str:
    """One sentence per finding: the highest and the lowest level with their estimates and CIs,
    and the joint test, e.g. "Would respond was highest for Permissive (probability 0.78, 95% CI
    [0.71, 0.83]) and lowest for Authoritative (...); χ²(3) = 38.34, p < .001 (GEE)."""
    levels = {lv["level"]: lv for lv in finding["levels"]}
    word = SCALE_WORD.get(str(finding.get("scale")), str(finding.get("scale") or "estimate"))
    pct = f"{100 * float(level):g}%"

    def part(code: str) -> str:
        lv = levels[code]
        return (
            f"{_short(lv['label'])} ({word} {fmt_est(lv['estimate'])}, {pct} CI "
            f"{fmt_ci(lv['ci_lb'], lv['ci_ub'])})"
        )

    by = finding["factor_label"].lower()
    return (
        f"{finding['outcome_label']}, by {by}: highest for {part(finding['highest'])}, lowest "
        f"for {part(finding['lowest'])}; {_test_text(finding.get('test'))} "
        f"({MODEL_SHORT.get(finding['model'], finding['model'])})."
    )


# --------------------------------------------------------------------------- tables
def _terms_frame(models: Mapping[str, Any], outcome: str, kind: str) -> pd.DataFrame:
    rows = []
    for fit in models["fits"]:
        if fit["outcome"] != outcome or fit["kind"] != kind:
            continue
        model = f"{MODEL_SHORT.get(fit['model'], fit['model'])} ({fit['kind']} model)"
        for t in fit["fit"]["terms"]:
            rows.append(
                {
                    "model": model,
                    "term": _term_label(models, t["term"]),
                    "estimate": t["estimate"],
                    "se": t["se"],
                    "statistic": t["statistic"],
                    "p": t["p"],
                    "ci_lb": t["ci_lb"],
                    "ci_ub": t["ci_ub"],
                }
            )
        for th in fit["fit"].get("thresholds") or []:
            rows.append(
                {
                    "model": model,
                    "term": f"Threshold {th.get('name')}",
                    "estimate": th.get("estimate"),
                    "se": th.get("se"),
                }
            )
    return pd.DataFrame(rows)


def _fits_frame(models: Mapping[str, Any], outcome: str) -> pd.DataFrame:
    """One row per fit: ratings, respondents, variance components, log-likelihood, converged."""
    rows = []
    for fit in models["fits"]:
        if fit["outcome"] != outcome:
            continue
        f = fit["fit"]
        components = "; ".join(
            f"{name} = {fmt_est(value)}"
            for name, value in (f.get("variance_components") or {}).items()
            if value is not None
        )
        rows.append(
            {
                "model": f"{MODEL_SHORT.get(fit['model'], fit['model'])} ({fit['kind']} model)",
                "n_obs": f.get("n_obs"),
                "n_clusters": f.get("n_clusters"),
                "components": components,
                "loglik": f.get("loglik"),
                "converged": "yes" if f.get("converged") else "no",
            }
        )
    return pd.DataFrame(rows)


def _tests_frame(models: Mapping[str, Any], outcome: str) -> pd.DataFrame:
    rows = []
    for fit in models["fits"]:
        if fit["outcome"] != outcome:
            continue
        model = f"{MODEL_SHORT.get(fit['model'], fit['model'])} ({fit['kind']} model)"
        for t in fit["tests"]:
            rows.append(
                {
                    "model": model,
                    "term": " \u00d7 ".join(_label(models, n) for n in str(t["term"]).split(":")),
                    "test": TEST_SYMBOL.get(str(t.get("kind")), "Wald"),
                    "df": t.get("df"),
                    "statistic": t.get("statistic"),
                    "p": t.get("p"),
                }
            )
    return pd.DataFrame(rows)


def _means_frame(models: Mapping[str, Any], outcome: str, per_group: bool) -> pd.DataFrame:
    rows = []
    for fit in models["fits"]:
        if fit["outcome"] != outcome or not fit["primary"]:
            continue
        for m in fit["marginal_means"]:
            by = m.get("by_level")
            if (by is not None) != per_group:
                continue
            group = (models.get("design") or {}).get("groups") or {}
            by_name = next((g for g in group if by is not None and by in group[g]), None)
            levels = ((models.get("labels") or {}).get(m["factor"]) or {}).get("levels") or {}
            by_levels = ((models.get("labels") or {}).get(by_name) or {}).get("levels") or {}
            rows.append(
                {
                    "factor": _label(models, m["factor"]),
                    "level": _short(str(levels.get(str(m["level"])) or m["level"])),
                    "group": "All" if by is None else _short(str(by_levels.get(by) or by)),
                    "estimate": m["estimate"],
                    "ci_lb": m["ci_lb"],
                    "ci_ub": m["ci_ub"],
                }
            )
    return pd.DataFrame(rows)


def _level_text(models: Mapping[str, Any], name: str | None, level: Any) -> str:
    if name is None or level is None:
        return "All"
    levels = ((models.get("labels") or {}).get(name) or {}).get("levels") or {}
    return _short(str(levels.get(str(level)) or level))


def _respondents_frame(models: Mapping[str, Any]) -> pd.DataFrame:
    """One row per characteristic (level), one column per respondent group: n (%) or M (SD)."""
    rows = pd.DataFrame(models.get("respondents") or [])
    if rows.empty:
        return rows
    group = next(iter((models.get("design") or {}).get("groups") or {}), None)
    columns = list(dict.fromkeys(rows["group_level"].where(rows["group_level"].notna(), None)))
    out: dict[tuple, dict] = {}
    for r in rows.to_dict(orient="records"):
        var = r.get("variable") if isinstance(r.get("variable"), str) else None
        level = r.get("level") if isinstance(r.get("level"), str) else None
        key = (var, level)
        entry = out.setdefault(
            key,
            {
                "characteristic": "Respondents, n" if var is None else _label(models, var),
                "level": "" if level is None else _level_text(models, var, level),
            },
        )
        column = _level_text(
            models, group, r["group_level"] if isinstance(r["group_level"], str) else None
        )
        if var is None:
            entry[column] = f"{int(r['n'])}"
        elif level is None:
            sd = r.get("sd")
            entry[column] = f"{fmt_est(r['mean'])} ({fmt_est(sd)})" if sd == sd else ""
        else:
            entry[column] = f"{int(r['n'])} ({100 * float(r['share']):.0f}%)"
    frame = pd.DataFrame(list(out.values()))
    names = [_level_text(models, group, c) for c in columns]
    return frame[["characteristic", "level", *names]]


def _described_frame(models: Mapping[str, Any], variable: str) -> pd.DataFrame:
    """The shares of ``variable``'s levels (columns) overall and per factor and group level."""
    rows = pd.DataFrame(models.get("described") or [])
    if rows.empty:
        return rows
    rows = rows[rows["variable"] == variable]
    levels = list(dict.fromkeys(rows["level"]))
    out: dict[tuple, dict] = {}
    for r in rows.to_dict(orient="records"):
        by = r["by"] if isinstance(r["by"], str) else None
        by_level = r["by_level"] if isinstance(r["by_level"], str) else None
        entry = out.setdefault(
            (by, by_level),
            {
                "by": "All ratings" if by is None else _label(models, by),
                "by_level": "" if by is None else _level_text(models, by, by_level),
                "n": 0,
            },
        )
        entry["n"] = int(r["of"])
        entry[_level_text(models, variable, r["level"])] = 100 * float(r["share"])
    frame = pd.DataFrame(list(out.values()))
    names = [_level_text(models, variable, lv) for lv in levels]
    return frame[["by", "by_level", "n", *names]]


def _data_tables(models: Mapping[str, Any]) -> list[tuple[str, pd.DataFrame, TableSpec]]:
    """The respondents' characteristics and the described (not modelled) rating variables."""
    specs = []
    respondents = _respondents_frame(models)
    if len(respondents):
        columns = [
            Column(c, c if c not in ("characteristic", "level") else c.capitalize(), "text")
            for c in respondents.columns
        ]
        specs.append(
            (
                "respondents",
                respondents,
                TableSpec(
                    "Characteristics of the Respondents",
                    columns,
                    "n (%) of the respondents with a value, or M (SD).",
                    "characteristic",
                ),
            )
        )
    for variable in (models.get("design") or {}).get("describe") or []:
        frame = _described_frame(models, variable)
        if not len(frame):
            continue
        columns = [
            Column("by", "By", "text"),
            Column("by_level", "Level", "text"),
            Column("n", "n", "count"),
        ]
        columns += [Column(c, f"{c} %", "pct") for c in frame.columns[3:]]
        specs.append(
            (
                f"described_{variable}",
                frame,
                TableSpec(
                    f"{_label(models, variable)}: Shares of the Ratings with a Value",
                    columns,
                    "n = ratings with a value (described, not modelled).",
                    "by",
                ),
            )
        )
    return specs


def vignette_tables(models: Mapping[str, Any]) -> list[ApaTable]:
    """The APA tables of every outcome: terms, joint tests, marginal means."""
    pct = f"{100 * float(models.get('level') or 0.95):g}%"
    tables: list[ApaTable] = []
    for name, frame, spec in _data_tables(models):
        table = apa_table(frame, name, len(tables) + 1, spec, source="models.json")
        tables.append(replace(table, note=str(spec.note)))
    for o in (models.get("design") or {}).get("outcomes") or []:
        outcome = o["name"]
        label = _label(models, outcome)
        terms_columns = [
            Column("model", "Model", "text"),
            Column("term", "Term", "text"),
            Column("estimate", "Estimate", "est"),
            Column("se", "SE", "est"),
            Column("statistic", "z", "est"),
            Column("p", "p", "p"),
            ci(header=f"{pct} CI"),
        ]
        means_columns = [
            Column("factor", "Factor", "text"),
            Column("level", "Level", "text"),
            Column("group", "Respondents", "text"),
            Column("estimate", "Mean", "est"),
            ci(header=f"{pct} CI"),
        ]
        coding = (
            "Treatment coding: each term is the difference from the factor's first (reference) "
            "level on the model's scale (log-odds for GEE and GLMM, the rating for the LMM, the "
            f"latent logit for the CLM). {CI_NOTE}."
        )
        means_note = (
            "Marginal means of the primary model (probabilities for a yes/no outcome), equally "
            "weighted over the other factors' levels{}. " + CI_NOTE + "."
        )
        specs = [
            (
                f"terms_{outcome}",
                _terms_frame(models, outcome, "main"),
                TableSpec(f"{label}: Main-Effects Models", terms_columns, coding, "model"),
            ),
            (
                f"tests_{outcome}",
                _tests_frame(models, outcome),
                TableSpec(
                    f"{label}: Joint Wald Tests of Factors, Groups and Interactions",
                    [
                        Column("model", "Model", "text"),
                        Column("term", "Effect", "text"),
                        Column("test", "Test", "text"),
                        Column("df", "df", "df"),
                        Column("statistic", "Statistic", "est"),
                        Column("p", "p", "p"),
                    ],
                    note="Each test: all coefficients of the effect are zero (Wald).",
                    group="model",
                ),
            ),
            (
                f"means_{outcome}",
                _means_frame(models, outcome, per_group=False),
                TableSpec(
                    f"{label}: Marginal Means", means_columns, means_note.format(""), "factor"
                ),
            ),
            (
                f"group_means_{outcome}",
                _means_frame(models, outcome, per_group=True),
                TableSpec(
                    f"{label}: Marginal Means per Respondent Group",
                    means_columns,
                    means_note.format(", from the model with group x factor interactions"),
                    "factor",
                ),
            ),
            (
                f"interaction_terms_{outcome}",
                _terms_frame(models, outcome, "interaction"),
                TableSpec(
                    f"{label}: Models with Group x Factor Interactions",
                    terms_columns,
                    coding,
                    "model",
                ),
            ),
        ]
        specs.append(
            (
                f"fits_{outcome}",
                _fits_frame(models, outcome),
                TableSpec(
                    f"{label}: Variance Components and Fit",
                    [
                        Column("model", "Model", "text"),
                        Column("n_obs", "Ratings", "count"),
                        Column("n_clusters", "Respondents", "count"),
                        Column("components", "Variance components", "text"),
                        Column("loglik", "Log-likelihood", "est"),
                        Column("converged", "Converged", "text"),
                    ],
                    note=(
                        "Variance components by name: the SD of the respondents' random "
                        "intercept (GLMM, LMM) and the residual SD (LMM); the GEE's working "
                        "correlation (alpha) and scale. The GEE has no likelihood; the LMM's "
                        "is the restricted (REML) log-likelihood."
                    ),
                ),
            )
        )
        specs = [entry for entry in specs if len(entry[1])]
        for name, frame, spec in specs:
            table = apa_table(frame, name, len(tables) + 1, spec, source="models.json")
            # the note of the spec alone (apa_table adds the meta-analysis' effect measure)
            tables.append(replace(table, note=str(spec.note)))
    return tables


# --------------------------------------------------------------------------- the report
def _methods(models: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    design = models.get("design") or {}
    labels = models.get("labels") or {}

    def levels_text(name: str, codes: Sequence[str]) -> str:
        lv = (labels.get(name) or {}).get("levels") or {}
        return ", ".join(_short(str(lv.get(c) or c)).lower() for c in codes)

    factors = "; ".join(
        f"{_label(models, f).lower()} ({len(v)} levels: {levels_text(f, v)})"
        for f, v in design.get("factors", {}).items()
    )
    groups = "; ".join(
        f"{_label(models, g).lower()} ({levels_text(g, v)})"
        for g, v in design.get("groups", {}).items()
    )
    n_cells = 1
    for v in design.get("factors", {}).values():
        n_cells *= len(v)
    paras = [
        f"{models.get('n_respondents')} respondents rated {models.get('n_ratings')} vignettes "
        f"in all. The vignettes cross {factors}: {n_cells} combinations. Respondent "
        f"groups: {groups or 'none'}. Ratings are clustered within respondents "
        f"(<code>{esc(str(design.get('cluster')))}</code>)."
    ]
    nagq = int(design.get("nagq") or 1)
    quadrature = (
        "Laplace approximation" if nagq <= 1 else f"adaptive Gauss-Hermite quadrature, {nagq} nodes"
    )
    for o in design.get("outcomes") or []:
        fitted = "; ".join(
            MODEL_TEXT.get(m, m).format(quadrature=quadrature)
            + (" (primary)" if m == o["primary"] else "")
            for m in o["models"]
        )
        paras.append(f"<b>{esc(_label(models, o['name']))}</b> was analysed with {esc(fitted)}.")
    interactions = bool(design.get("interactions")) and bool(design.get("groups"))
    paras.append(
        "Every model has the main effects of all factors and respondent groups (treatment coding, "
        "the first level of each as reference)"
        + (
            "; a second model of each adds the interaction of every group with every factor"
            if interactions
            else ""
        )
        + ". Marginal means (probabilities for a yes/no outcome, mean scores otherwise) average "
        "the linear predictor over an equally weighted grid of the other factors' levels and are "
        "back-transformed with their confidence intervals (as R's emmeans does); per group they "
        "come from the interaction model. Each factor, group and interaction has a joint Wald "
        f"test. Confidence level {100 * float(models.get('level') or 0.95):g}%. The config's "
        "<code>vignette</code> section is in the provenance below."
    )
    return "".join(f"<p>{p}</p>" for p in paras)


def _figure(entry: Mapping[str, str], number: int) -> str:
    from intervention_meta.outputs.report import embedded_image

    return (
        f'<figure class="figure" id="figure-{esc(entry["stem"])}"><div class="figure-head">'
        f'<span class="apa-number">Figure {number}</span>'
        f'<span class="apa-title">{esc(entry["title"])}</span></div>'
        f'<img src="{embedded_image(entry["png"])}" alt="{esc(entry["title"])}">'
        f"<figcaption>{esc(entry['caption'])}</figcaption></figure>"
    )


def _folded(table: ApaTable) -> str:
    """The table's HTML; a long one folded (``<details>``) as in the meta-analysis report."""
    from intervention_meta.outputs.report import FOLD_ROWS

    if len(table.rows) <= FOLD_ROWS:
        return table.to_html()
    return (
        f'<details class="long-table"><summary>{esc(table.label)}. {esc(table.title)} '
        f"({len(table.rows)} rows; click to show)</summary>{table.to_html()}</details>"
    )


def build_vignette_report(
    models: Mapping[str, Any],
    findings: Mapping[str, Any],
    config: Mapping[str, Any],
    tables: Sequence[ApaTable],
    figures: Sequence[Mapping[str, str]],
    validation: str = "",
    provenance: Any = None,
) -> str:
    """The report's HTML document (figures embedded: it opens offline)."""
    from intervention_meta.outputs.report import Section, html_document, provenance_section

    level = float(models.get("level") or 0.95)
    items = "".join(f"<li>{esc(finding_sentence(f, level))}</li>" for f in findings["findings"])
    data_tables = {name for name, _, _ in _data_tables(models)}
    results = []
    for o in (models.get("design") or {}).get("outcomes") or []:
        results.append(f"<h3>{esc(_label(models, o['name']))}</h3>")
        results += [
            _folded(t)
            for t in tables
            if t.name.endswith(f"_{o['name']}") and t.name not in data_tables
        ]
    figs = "".join(_figure(f, i) for i, f in enumerate(figures, start=1))
    sections = [
        Section(
            "summary",
            "Summary",
            f"<p>{findings.get('n_respondents')} respondents, {findings.get('n_ratings')} "
            "ratings. Findings of each outcome's primary model:</p>"
            f"<ul>{items}</ul>",
        ),
        Section("methods", "Methods", _methods(models, config)),
        Section(
            "data",
            "Data",
            f"<p>Validation: {esc(validation.strip() or 'not run')}</p>"
            + "".join(_folded(t) for t in tables if t.name in data_tables),
        ),
        Section("results", "Results", "\n".join(results)),
        Section("figures", "Figures", figs or "<p>No figures.</p>"),
        provenance_section(provenance),
    ]
    title = str((config.get("report") or {}).get("title") or "") or (
        f"Vignette study report: {config.get('analysis', '')}"
    )
    return html_document(title, str(config.get("analysis", "")), sections, provenance)


def run_vignette_outputs(
    *,
    json: str,
    findings: str,
    passed: str,
    config: Mapping[str, Any],
    html: str,
    provenance: str,
    tables_index: str,
    figures_manifest: str,
    checksummed: Sequence[str] = (),
    configfiles: Sequence[str] = (),
    workers: int = 1,
) -> None:
    """The ``vignette_outputs`` step: tables beside ``tables_index``, figures beside
    ``figures_manifest`` (its list, drawn by ``workers`` processes), the report ``html`` and
    ``provenance``; reads only the JSON of the ``vignette`` step, its validation summary
    ``passed`` and the ``config``."""
    from intervention_meta.outputs.provenance import collect_provenance
    from intervention_meta.plots.vignette import vignette_figures

    models = read_json(json)
    found = read_json(findings)
    tables = vignette_tables(models)
    write_apa_tables(tables, Path(tables_index).parent)
    figures = vignette_figures(models, Path(figures_manifest).parent, workers=int(workers))
    write_json({"figures": figures}, figures_manifest)
    record = collect_provenance(
        list(checksummed), dict(config), config_files=list(configfiles), workdir=Path.cwd()
    )
    page = build_vignette_report(
        models,
        found,
        config,
        tables,
        figures,
        validation=Path(passed).read_text(encoding="utf-8"),
        provenance=record,
    )
    Path(html).parent.mkdir(parents=True, exist_ok=True)
    Path(html).write_text(page, encoding="utf-8")
    write_json(record.to_dict(), provenance)
    log.info("vignette report: %d tables, %d figures -> %s", len(tables), len(figures), html)
