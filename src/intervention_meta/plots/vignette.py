"""Figures of the vignette study, drawn from its ``models.json`` alone.

* :func:`marginal_means_figure`: per vignette factor, the marginal mean of every level (points)
  with its CI (lines), one panel per outcome: for all respondents (black, main-effects model of
  the outcome's primary model) and per respondent group (colours, the interaction model), so
  that the figure shows both the factor's effect and whether groups differ in it;
* :func:`heatmap_figure`: the observed share (binary outcome) or mean (otherwise) of every
  cell of the heat map's two factors, one panel per group level, each cell annotated with its
  value and number of ratings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from intervention_meta.plots.style import (
    BLACK,
    FULL_WIDTH,
    category_colour,
    draw_all,
    figure,
    save,
    style,
)

log = logging.getLogger(__name__)

__all__ = ["heatmap_figure", "marginal_means_figure", "vignette_figures"]

SCALE_AXIS = {
    "probability": "Marginal probability",
    "mean": "Marginal mean",
    "mean_score": "Marginal mean score",
}


def _label(models: Mapping[str, Any], name: str) -> str:
    return str(((models.get("labels") or {}).get(name) or {}).get("label") or name)


def _level_label(models: Mapping[str, Any], name: str, level: str) -> str:
    levels = ((models.get("labels") or {}).get(name) or {}).get("levels") or {}
    text = str(levels.get(level) or level)
    return text.split(" (")[0]


def _primary(models: Mapping[str, Any], outcome: str, kind: str) -> Mapping[str, Any] | None:
    for fit in models.get("fits") or []:
        if fit["outcome"] == outcome and fit["primary"] and fit["kind"] == kind:
            return fit
    return None


def _outcomes(models: Mapping[str, Any]) -> list[str]:
    return [o["name"] for o in (models.get("design") or {}).get("outcomes") or []]


def marginal_means_figure(models: Mapping[str, Any], factor: str, stem: str | Path) -> Path:
    """The marginal means of ``factor``'s levels with CIs, per outcome, overall and per group."""
    design = models.get("design") or {}
    levels = list(design["factors"].get(factor) or design["groups"].get(factor) or [])
    outcomes = _outcomes(models)
    groups = design.get("groups") or {}
    level_pct = f"{100 * float(models.get('level') or 0.95):g}%"
    with style():
        fig = figure(FULL_WIDTH, 1.2 + 0.5 * len(levels) * len(outcomes) + 0.4 * len(outcomes))
        axes = fig.subplots(1, len(outcomes), squeeze=False)[0]
        for ax, outcome in zip(axes, outcomes, strict=True):
            main = _primary(models, outcome, "main")
            inter = _primary(models, outcome, "interaction")
            series = [("All respondents", BLACK, None, None, main)]
            for group, group_levels in groups.items():
                for j, gl in enumerate(group_levels):
                    series.append(
                        (_level_label(models, group, gl), category_colour(j), group, gl, inter)
                    )
            n = len(series)
            offsets = np.linspace(-0.3, 0.3, n) if n > 1 else np.zeros(1)
            scale = "mean"
            for (name, colour, _group, gl, fit), dy in zip(series, offsets, strict=True):
                if fit is None:
                    continue
                rows = {
                    str(m["level"]): m
                    for m in fit["marginal_means"]
                    if m["factor"] == factor and (m.get("by_level") or None) == gl
                }
                y, est, lo, hi = [], [], [], []
                for i, level in enumerate(levels):
                    if level in rows:
                        m = rows[level]
                        scale = m.get("scale") or scale
                        y.append(i + dy)
                        est.append(m["estimate"])
                        lo.append(m["ci_lb"])
                        hi.append(m["ci_ub"])
                if not y:
                    continue
                ax.hlines(y, lo, hi, color=colour, lw=1.2)
                ax.plot(est, y, "o", color=colour, ms=4.5 if gl is None else 3.5, label=name)
            ax.set_yticks(range(len(levels)))
            ax.set_yticklabels([_level_label(models, factor, lv) for lv in levels])
            ax.invert_yaxis()
            ax.grid(axis="x", color="#dddddd", lw=0.6)
            ax.set_xlabel(f"{SCALE_AXIS.get(scale, 'Marginal mean')} ({level_pct} CI)")
            fit = main or {}
            ax.set_title(
                f"{_label(models, outcome)} ({str(fit.get('model', '')).upper()})",
                loc="left",
                fontsize=9,
            )
            if scale == "probability":
                ax.set_xlim(0, 1)
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(
            handles, names, loc="outside lower center", ncol=len(names), fontsize=7.5, frameon=False
        )
        fig.suptitle(
            f"{_label(models, factor)}: marginal means by level",
            x=0.01,
            ha="left",
            fontweight="bold",
        )
    return save(fig, stem)[0]


def heatmap_figure(models: Mapping[str, Any], outcome: str, stem: str | Path) -> Path:
    """The observed share or mean of ``outcome`` per heat-map cell, one panel per group level."""
    import pandas as pd

    observed = pd.DataFrame(models.get("observed") or [])
    design = models.get("design") or {}
    rows_f, cols_f = design["heatmap"]
    data = observed[observed["outcome"] == outcome] if len(observed) else observed
    group = next(iter(design.get("groups") or {}), None)
    panels = list(design["groups"][group]) if group else [None]
    row_levels, col_levels = design["factors"][rows_f], design["factors"][cols_f]
    binary = next(
        (o["models"][0] in ("gee", "glmm") for o in design["outcomes"] if o["name"] == outcome),
        False,
    )
    values = data["mean"].to_numpy(dtype=float) if len(data) else np.array([0.0, 1.0])
    vmin, vmax = (0.0, 1.0) if binary else (float(np.nanmin(values)), float(np.nanmax(values)))
    with style():
        fig = figure(FULL_WIDTH, 0.9 + 0.42 * len(row_levels) + 0.8)
        axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
        image = None
        for ax, panel in zip(axes, panels, strict=True):
            cells = data if panel is None else data[data["group_level"] == panel]
            grid = np.full((len(row_levels), len(col_levels)), np.nan)
            counts = np.zeros_like(grid)
            for _, c in cells.iterrows():
                if c["row_level"] in row_levels and c["col_level"] in col_levels:
                    i, j = row_levels.index(c["row_level"]), col_levels.index(c["col_level"])
                    grid[i, j], counts[i, j] = c["mean"], c["n"]
            image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
            for i in range(len(row_levels)):
                for j in range(len(col_levels)):
                    if np.isnan(grid[i, j]):
                        continue
                    shade = (grid[i, j] - vmin) / (vmax - vmin or 1)
                    text = f"{grid[i, j]:.2f}\nn={int(counts[i, j])}"
                    ax.text(
                        j,
                        i,
                        text,
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="black" if shade > 0.6 else "white",
                    )
            ax.set_xticks(range(len(col_levels)))
            ax.set_xticklabels(
                [_level_label(models, cols_f, lv) for lv in col_levels], rotation=30, ha="right"
            )
            ax.set_yticks(range(len(row_levels)))
            ax.set_yticklabels([_level_label(models, rows_f, lv) for lv in row_levels])
            name = "All respondents" if panel is None else _level_label(models, group, panel)
            ax.set_title(name, fontsize=9, loc="left")
        what = "share answering yes" if binary else "mean rating"
        cbar = fig.colorbar(image, ax=list(axes), shrink=0.8)
        cbar.set_label(f"Observed {what}", fontsize=8)
        fig.suptitle(
            f"{_label(models, outcome)}: {_label(models, rows_f)} x {_label(models, cols_f)}"
            + (f" by {_label(models, group).lower()}" if group else ""),
            x=0.01,
            ha="left",
            fontweight="bold",
        )
    return save(fig, stem)[0]


def vignette_figures(
    models: Mapping[str, Any], outdir: str | Path, workers: int = 1
) -> list[dict[str, str]]:
    """Every figure of the study into ``outdir`` (drawn by ``workers`` processes); returns the
    manifest entries (``stem``, ``png``, ``title``, ``caption``) in the report's order."""
    outdir = Path(outdir)
    design = models.get("design") or {}
    level_pct = f"{100 * float(models.get('level') or 0.95):g}%"
    factors = list(design.get("factors") or {})
    outcomes = _outcomes(models) if design.get("heatmap") else []
    tasks = [(marginal_means_figure, (models, f, outdir / f"means_{f}"), {}) for f in factors]
    tasks += [(heatmap_figure, (models, o, outdir / f"heatmap_{o}"), {}) for o in outcomes]
    pngs = draw_all(tasks, workers)
    entries = []
    for factor, png in zip(factors, pngs, strict=False):
        entries.append(
            {
                "stem": png.stem,
                "png": str(png),
                "title": f"Marginal means by {_label(models, factor).lower()}",
                "caption": (
                    f"Points: marginal means (emmeans' equally weighted reference grid over the "
                    f"other factors), lines: {level_pct} confidence intervals, from each "
                    "outcome's primary model; black: all respondents (main-effects model), "
                    "colours: each respondent group (the model with group x factor "
                    "interactions)."
                ),
            }
        )
    for outcome, png in zip(outcomes, pngs[len(factors) :], strict=True):
        rows_f, cols_f = design["heatmap"]
        entries.append(
            {
                "stem": png.stem,
                "png": str(png),
                "title": f"{_label(models, outcome)} per {_label(models, rows_f).lower()} "
                f"and {_label(models, cols_f).lower()}",
                "caption": (
                    "Observed values of the ratings in each cell (not model estimates), "
                    "with the number of ratings; one panel per respondent group."
                ),
            }
        )
    log.info("vignette figures: %d -> %s", len(entries), outdir)
    return entries
