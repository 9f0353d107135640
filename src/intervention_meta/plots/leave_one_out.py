"""Leave-one-study-out plot: the pooled effect refitted without each study in turn.

One row per study left out: the pooled estimate and confidence interval of the analysis model
without that study (the table ``leave_one_out`` of ``models/sensitivity.json``),
against the estimate (dashed line) and confidence interval (shaded band) with all studies. Rows are
sorted by the estimate, so the studies whose removal moves the pooled effect most are at the two
ends. A fit that did not converge is drawn with an open marker.

References
----------
Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics for meta-analysis.
*Research Synthesis Methods*, 1, 112-125.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.plots import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["leave_one_out_plot"]

#: machine keys of the table ``leave_one_out`` (``models/sensitivity.json``)
LEFT_OUT, K, EST, LO, HI, CONVERGED, FULL = (
    "study",
    "k",
    "estimate",
    "ci_lb",
    "ci_ub",
    "converged",
    "all_studies",
)


def leave_one_out_plot(
    table: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    title: str = "Leave one study out",
    xlabel: str = "Pooled effect without the study",
    level: float = 0.95,
    symbol: str = "g",
    null: float = 0.0,
) -> Figure:
    """Draw the table ``leave_one_out`` (machine keys); its row with ``all_studies`` true is
    the reference; ``level`` is the confidence level of its intervals, ``symbol`` heads the
    column of numbers and ``null`` (the measure's value of no effect) is marked when in range."""
    from matplotlib.patches import Patch

    labels = dict(labels or {})
    pct = f"{100 * level:g}%"
    if FULL not in table.columns:
        return style.placeholder(title, "No leave-one-out fits in the sensitivity table.")
    is_full = table[FULL].fillna(False).astype(bool)
    full = table[is_full].head(1)
    rows = table[~is_full].copy()
    rows["_key"] = rows[LEFT_OUT].astype(str)
    rows = rows.sort_values(EST, kind="stable", na_position="last").reset_index(drop=True)
    n = len(rows)
    if n == 0:
        return style.placeholder(title, "No leave-one-out fits in the sensitivity table.")
    with style.style():
        fig = style.figure(
            style.FULL_WIDTH * 0.85, style.rows_height(n, per_row=0.19, fixed=1.5, minimum=2.6)
        )
        ax = fig.add_subplot()
        y = -np.arange(n, dtype=float)
        if not full.empty:
            f = full.iloc[0]
            ax.axvspan(f[LO], f[HI], color=style.VERMILLION, alpha=0.12, lw=0, zorder=0)
            ax.axvline(f[EST], color=style.VERMILLION, lw=1.2, ls="--", zorder=1)
        converged = (
            rows[CONVERGED].astype(str).str.lower().isin(["yes", "true", "1"])
            if CONVERGED in rows.columns
            else pd.Series(True, index=rows.index)
        )
        ax.hlines(y, rows[LO], rows[HI], color=style.BLACK, lw=1.0, zorder=2)
        ax.scatter(
            rows[EST][converged],
            y[converged.to_numpy()],
            s=22,
            marker="s",
            color=style.BLACK,
            zorder=3,
        )
        if (~converged).any():
            ax.scatter(
                rows[EST][~converged],
                y[~converged.to_numpy()],
                s=22,
                marker="s",
                facecolor="white",
                edgecolor=style.BLACK,
                zorder=3,
            )
        ticks = [f"{labels.get(key, key)}" for key in rows["_key"]]
        ax.set_yticks(y, ticks)
        ax.tick_params(axis="y", length=0, labelsize=7.5)
        ax.spines["left"].set_visible(False)
        for yy, (_, r) in zip(y, rows.iterrows(), strict=True):
            style.margin_text(
                ax,
                yy,
                f"{r[EST]:.3f} [{r[LO]:.3f}, {r[HI]:.3f}]",
                fontsize=7,
            )
        style.margin_header(ax, f"{symbol} [{pct} CI]")
        # the range of the intervals (0 only if it is near them: the differences matter here)
        xs = np.r_[rows[LO].to_numpy(float), rows[HI].to_numpy(float)]
        if not full.empty:
            xs = np.r_[xs, float(full.iloc[0][LO]), float(full.iloc[0][HI])]
        xs = xs[np.isfinite(xs)]
        pad = 0.05 * (xs.max() - xs.min() or 1.0)
        ax.set_xlim(xs.min() - pad, xs.max() + pad)
        if xs.min() - pad < null < xs.max() + pad:
            ax.axvline(null, color=style.GREY, lw=0.8, zorder=1)
        ax.set_ylim(y.min() - 0.7, 0.7)
        ax.set_xlabel(xlabel)
        ax.set_title(title, loc="left")
        handles = [
            style.legend_entry(
                f"Without the study ({pct} CI)", color=style.BLACK, marker="s", ms=4, lw=1.0
            ),
        ]
        if not full.empty:
            handles += [
                style.legend_entry("All studies", color=style.VERMILLION, ls="--", lw=1.2),
                Patch(color=style.VERMILLION, alpha=0.12, label=f"All studies: {pct} CI"),
            ]
        if (~converged).any():
            handles.append(
                style.legend_entry(
                    "Fit did not converge", ls="", marker="s", mfc="white", mec=style.BLACK
                )
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig
