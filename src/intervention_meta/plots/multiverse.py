"""The specification curve of a multiverse meta-analysis with its which/how factor panel.

Top: every fitted specification's estimate, sorted, with its confidence interval, coloured by
significance and sign (Simonsohn, Simmons & Nelson 2020); the median as a dashed line. Bottom: a
dot matrix (Voracek, Kossmeier & Tran 2019) with one row per option of each factor that varies
and a dot in the column of every specification that uses it, so a band of dots shows where the
specifications with that choice sit on the curve. Drawn from ``models/multiverse.json`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from intervention_meta.plots.style import (
    BLUE,
    DPI,
    FULL_WIDTH,
    GREY,
    LIGHT_GREY,
    VERMILLION,
    figure,
    legend_entry,
    placeholder,
    pyplot,
    style,
    title_block,
)

log = logging.getLogger(__name__)

#: the which/how keys' names in the panel
FACTOR_NAMES = {
    "structure": "Structure",
    "method": "Estimator",
    "rho": "CHE rho",
    "outliers": "Outliers",
    "bias": "Bias adjustment",
}

#: the how options' names in the panel (the codes stay in the JSON and the CSV)
OPTION_NAMES = {
    "structure": {
        "fixed": "fixed effect",
        "random": "random effects (one level)",
        "three_level": "three-level",
        "che": "CHE",
    },
    "method": {"FE": "none (fixed)"},
    "outliers": {
        "none": "none removed",
        "studentized": "large studentized residuals removed",
        "deleted": "large deleted residuals removed",
    },
    "bias": {"none": "none", "pet_peese": "PET-PEESE", "selection": "selection model"},
}


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def specification_curve(record: Mapping[str, Any], path: str | Path) -> Path:
    """Draw the curve of ``record`` (the multiverse JSON) to the PNG ``path``.

    ``record["factors"]`` gives the panel's rows (factor -> options), ``record["specs"]`` the
    specifications (``status``, ``estimate``, ``ci_lb``, ``ci_ub``, ``significant`` and the
    choices). Without a fitted specification the figure says so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    specs = [s for s in record.get("specs", []) if s.get("status") == "ok"]
    if not specs:
        fig = placeholder("Specification curve", "No specification could be fitted.")
        fig.savefig(path, dpi=DPI)
        pyplot().close(fig)
        return path
    specs.sort(key=lambda s: (s["estimate"], s["id"]))
    est = np.array([s["estimate"] for s in specs], dtype=float)
    lo = np.array([s["ci_lb"] for s in specs], dtype=float)
    hi = np.array([s["ci_ub"] for s in specs], dtype=float)
    sig = np.array([bool(s.get("significant")) for s in specs])
    colours = np.where(sig & (est > 0), BLUE, np.where(sig & (est < 0), VERMILLION, GREY))
    x = np.arange(1, len(specs) + 1)
    factors = {k: v for k, v in dict(record.get("factors", {})).items() if len(v) > 1}
    rows = [(name, option) for name, options in factors.items() for option in options]
    summary = record.get("summary", {})
    with style():
        fig = figure(FULL_WIDTH, 3.2 + 0.16 * len(rows))
        grid = fig.add_gridspec(2, 1, height_ratios=[3.0, 0.16 * max(len(rows), 1) + 0.3])
        ax = fig.add_subplot(grid[0])
        panel = fig.add_subplot(grid[1], sharex=ax)
        width = max(0.3, min(1.2, 150.0 / len(specs)))
        ax.vlines(x, lo, hi, colors=colours, linewidth=width, alpha=0.5)
        ax.scatter(x, est, c=colours, s=max(1.0, min(12.0, 600.0 / len(specs))), zorder=3)
        ax.axhline(0.0, color=GREY, linewidth=0.8)
        median = summary.get("median_estimate")
        if median is not None:
            ax.axhline(median, color=GREY, linestyle="--", linewidth=0.8)
        ax.set_ylabel(f"Estimate ({record.get('level', 0.95):.0%} CI)")
        ax.tick_params(labelbottom=False)
        share = summary.get("share_significant")
        test = summary.get("bootstrap") or {}
        subtitle = f"{len(specs)} of {summary.get('n_specs', len(specs))} specifications fitted"
        if share is not None:
            subtitle += f"; {share:.0%} with p < {record.get('alpha', 0.05):g}"
        if test.get("p_median") is not None:
            subtitle += (
                f"; bootstrap under the null ({test['draws']} draws): p(median) = "
                f"{test['p_median']:.3g}, p(share significant) = {test['p_share']:.3g}"
            )
        title_block(ax, "Specification curve", subtitle)
        alpha = record.get("alpha", 0.05)
        ax.legend(
            handles=[
                legend_entry(f"p < {alpha:g}, positive", color=BLUE, marker="o", linestyle=""),
                legend_entry(
                    f"p < {alpha:g}, negative", color=VERMILLION, marker="o", linestyle=""
                ),
                legend_entry("not significant", color=GREY, marker="o", linestyle=""),
            ],
            loc="upper left",
            fontsize=7,
        )
        names = dict(record.get("labels") or {})
        labels = []
        for r, (name, option) in enumerate(rows):
            hit = np.array([_text(s.get(name)) == option for s in specs])
            panel.scatter(x[hit], np.full(hit.sum(), r), s=3, color=colours[hit], marker="s")
            panel.axhline(r, color=LIGHT_GREY, linewidth=0.3, zorder=0)
            if r and rows[r - 1][0] != name:
                panel.axhline(r - 0.5, color=GREY, linewidth=0.6)
            named = names.get(name, {})
            shown = named.get("levels", {}).get(
                option, OPTION_NAMES.get(name, {}).get(option, option)
            )
            labels.append(f"{named.get('label', FACTOR_NAMES.get(name, name))}: {shown}")
        panel.set_yticks(range(len(rows)), labels, fontsize=6.5)
        panel.set_ylim(len(rows) - 0.5, -0.5)
        panel.set_xlim(0.5, len(specs) + 0.5)
        panel.set_xlabel("Specification (sorted by estimate)")
        fig.savefig(path, dpi=DPI)
        pyplot().close(fig)
    log.info("figure written: %s", path)
    return path
