"""Orchard plots (Nakagawa et al. 2021): every effect size of a group and the group's pooled mean.

One row per group (a category of a moderator, a component, a component profile). The effect sizes
are the "fruit": points jittered vertically within the row, their area growing with the precision
1/SE, in the group's colour. The group's pooled mean from the moderator (or component) model is the
large circle, its confidence interval the thick "branch" and, where the analysis wrote one, its
prediction interval the thin "twig". The number of effect sizes k and of studies is written beside
each row. The overall mean (the analysis model's pooled effect) is a dashed vertical line, and a
size legend gives the precision (1/SE) of three marker sizes (the scale is shared by all rows). A
group that was reported but left out of the moderator test (too few studies) has an open circle
and a note.

The vertical jitter is deterministic (a golden-ratio low-discrepancy sequence over the points in the
order of their effect size), so the figure is the same on every run without a random seed.

Optionally a matrix of dots on the left shows which components each row has (for component
profiles), read as in an UpSet plot (Lex et al. 2014).

References
----------
Nakagawa, S., Lagisz, M., O'Dea, R. E., et al. (2021). The orchard plot: Cultivating a forest plot
for use in ecology, evolution, and beyond. *Research Synthesis Methods*, 12, 4-12.
Lex, A., Gehlenborg, N., Strobelt, H., Vuillemot, R., & Pfister, H. (2014). UpSet: Visualization of
intersecting sets. *IEEE Transactions on Visualization and Computer Graphics*, 20, 1983-1992.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.plots import style
from intervention_meta.plots.labels import wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["GROUP_COLUMNS", "jitter_offsets", "orchard_plot"]

#: the columns of ``groups`` that :func:`orchard_plot` reads (``pi_lb``, ``pi_ub``, ``note``,
#: ``tested`` are optional)
GROUP_COLUMNS = ("group", "estimate", "ci_lb", "ci_ub", "k", "n_studies")

GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def jitter_offsets(n: int, width: float = 0.6) -> np.ndarray:
    """``n`` vertical offsets spread evenly over ``[-width/2, width/2]`` (golden-ratio sequence)."""
    return ((np.arange(1, n + 1) * GOLDEN) % 1.0 - 0.5) * width


def orchard_plot(
    points: pd.DataFrame,
    groups: pd.DataFrame,
    *,
    title: str,
    subtitle: str | None = None,
    xlabel: str = "Hedges' g",
    matrix: pd.DataFrame | None = None,
    label_width: int = 30,
    level: float = 0.95,
    colour: str | Sequence[str] | None = None,
    null: float = 0.0,
    overall: float | None = None,
    contrasts: pd.DataFrame | None = None,
    contrast_label: str = "Difference",
) -> Figure:
    """Draw an orchard plot, one row per group, top to bottom in the order of ``groups``.

    Parameters
    ----------
    points : one row per effect size: ``group`` (a value of ``groups.group``), ``yi``, ``vi``.
    groups : one row per group with :data:`GROUP_COLUMNS`; ``pi_lb``/``pi_ub`` (prediction
        interval) are drawn when present and not missing; ``tested`` False draws an open circle;
        ``note`` is printed under the figure.
    matrix : optional 0/1 frame (rows in the order of ``groups``, one column per component, column
        names the labels) drawn as a dot matrix left of the plot.
    colour : one colour for every row, or one per row (default: a colour per group).
    overall : the overall mean, drawn as a dashed vertical line (None: not drawn).
    contrasts : optional differences between two rows, drawn in a panel on the right at the
        middle of the two rows: ``first`` and ``second`` (row positions), ``estimate``,
        ``ci_lb``, ``ci_ub`` and ``text`` (written beside it); the panel's axis is titled
        ``contrast_label``.
    """

    groups = groups.reset_index(drop=True)
    if groups.empty:
        return style.placeholder(title, subtitle or "nothing to draw")
    for col in ("estimate", "ci_lb", "ci_ub", "k", "n_studies", "pi_lb", "pi_ub"):
        if col in groups.columns:
            groups[col] = pd.to_numeric(groups[col], errors="coerce")
    points = points.assign(
        yi=pd.to_numeric(points["yi"], errors="coerce"),
        vi=pd.to_numeric(points["vi"], errors="coerce"),
    )
    n = len(groups)
    labels = [wrap(g, label_width) for g in groups["group"].astype(str)]
    lines = max((lab.count("\n") + 1 for lab in labels), default=1)
    per_row = max(0.5, 0.14 * lines + 0.16) if matrix is None else 0.42
    notes = [
        str(x) for x in groups.get("note", pd.Series(dtype=object)).fillna("") if str(x).strip()
    ]
    pct = f"{100 * level:g}%"
    has_pi = {"pi_lb", "pi_ub"} <= set(groups.columns) and groups[["pi_lb", "pi_ub"]].notna().any(
        axis=None
    )
    with style.style():
        height = style.rows_height(n, per_row=per_row, fixed=1.7 + 0.15 * len(notes), minimum=2.6)
        fig = style.figure(style.FULL_WIDTH, height)
        cx = None
        if matrix is not None and not matrix.empty:
            # about 0.3 inch per component column, the rest for the plot
            ratio = 0.3 * matrix.shape[1] + 0.2
            gs = fig.add_gridspec(1, 2, width_ratios=[ratio, style.FULL_WIDTH - 1.0 - ratio])
            mx = fig.add_subplot(gs[0, 0])
            ax = fig.add_subplot(gs[0, 1], sharey=mx)
        elif contrasts is not None and len(contrasts):
            mx = None
            gs = fig.add_gridspec(1, 2, width_ratios=[2.0, 1.2])
            ax = fig.add_subplot(gs[0, 0])
            cx = fig.add_subplot(gs[0, 1], sharey=ax)
        else:
            mx = None
            ax = fig.add_subplot()
        y = -np.arange(n, dtype=float)
        ax.axvline(null, color=style.GREY, lw=0.8, zorder=1)
        for b in range(1, n, 2):
            ax.axhspan(y[b] - 0.5, y[b] + 0.5, color="#F4F4F4", zorder=0, lw=0)

        pts = points[np.isfinite(points["yi"]) & np.isfinite(points["vi"])]
        # one size scale for every row, so that the size legend holds for all of them
        all_prec = 1.0 / np.sqrt(pts["vi"].to_numpy(float))
        prec_lo, prec_hi = (
            (float(all_prec.min()), float(all_prec.max())) if len(pts) else (1.0, 1.0)
        )

        def area(prec: np.ndarray) -> np.ndarray:
            return style.precision_sizes(np.r_[prec_lo, prec_hi, prec], 8.0, 70.0)[2:]

        if overall is not None and np.isfinite(overall):
            ax.axvline(overall, color=style.VERMILLION, lw=1.0, ls="--", zorder=1)
        for i, g in groups.iterrows():
            if colour is None:
                row_colour = style.category_colour(int(i))
            else:
                row_colour = colour if isinstance(colour, str) else list(colour)[int(i)]
            mine = pts[pts["group"].astype(str) == str(g["group"])].sort_values("yi")
            if len(mine):
                ax.scatter(
                    mine["yi"],
                    y[i] + jitter_offsets(len(mine)),
                    s=area(1.0 / np.sqrt(mine["vi"].to_numpy(float))),
                    color=row_colour,
                    alpha=0.45,
                    linewidths=0,
                    zorder=2,
                )
            est, lo, hi = g["estimate"], g["ci_lb"], g["ci_ub"]
            if pd.notna(est):
                if has_pi and pd.notna(g.get("pi_lb")) and pd.notna(g.get("pi_ub")):
                    ax.hlines(y[i], g["pi_lb"], g["pi_ub"], color=style.BLACK, lw=1.0, zorder=3)
                ax.hlines(y[i], lo, hi, color=style.BLACK, lw=3.2, zorder=3)
                tested = bool(g.get("tested", True)) if pd.notna(g.get("tested", True)) else True
                ax.scatter(
                    [est],
                    [y[i]],
                    s=70,
                    facecolor=row_colour if tested else "white",
                    edgecolor=style.BLACK,
                    linewidths=1.2,
                    zorder=4,
                )
        for i, g in groups.iterrows():
            k = int(g["k"]) if pd.notna(g["k"]) else 0
            s = int(g["n_studies"]) if pd.notna(g["n_studies"]) else 0
            style.margin_text(
                ax,
                y[i],
                f"k = {k}\n{s} stud{'y' if s == 1 else 'ies'}",
                x=1.01,
                fontsize=7.5,
                linespacing=1.1,
            )
        ax.set_ylim(y.min() - 0.6, 0.6)
        xs = np.r_[pts["yi"].to_numpy(), groups["ci_lb"].to_numpy(), groups["ci_ub"].to_numpy()]
        if has_pi:
            xs = np.r_[xs, groups["pi_lb"].to_numpy(), groups["pi_ub"].to_numpy()]
        xs = xs[np.isfinite(xs)]
        xmin, xmax = (min(xs.min(), 0.0), max(xs.max(), 0.0)) if xs.size else (-1.0, 1.0)
        pad = 0.04 * (xmax - xmin or 1.0)
        ax.set_xlim(xmin - pad, xmax + pad)
        ax.set_xlabel(xlabel)
        ax.tick_params(axis="y", length=0)
        if mx is None:
            ax.set_yticks(y, labels)
            ax.spines["left"].set_visible(False)
        else:
            _matrix(mx, matrix, y)
            ax.tick_params(axis="y", labelleft=False)
            ax.spines["left"].set_visible(False)
        style.title_block(ax, title, subtitle, width=85, title_width=55)
        if cx is not None:
            _contrasts(cx, contrasts, y, null, contrast_label)
        # the size legend: three precisions spanning the data's
        marks = np.unique(np.round(np.linspace(prec_lo, prec_hi, 3), 1)) if len(pts) else []
        handles = [
            style.legend_entry(
                f"1/SE = {m:g}",
                ls="",
                marker="o",
                color=style.GREY,
                alpha=0.5,
                ms=float(np.sqrt(area(np.array([m]))[0])),
            )
            for m in marks
        ]
        handles += [
            style.legend_entry(
                f"Mean ({pct} CI)",
                color=style.BLACK,
                lw=3.2,
                marker="o",
                mfc=style.GREY,
                mec=style.BLACK,
                ms=7,
            ),
        ]
        if has_pi:
            handles.append(style.legend_entry(f"{pct} PI", color=style.BLACK, lw=1.0))
        if overall is not None and np.isfinite(overall):
            handles.append(
                style.legend_entry("Overall mean", color=style.VERMILLION, lw=1.0, ls="--")
            )
        if mx is not None:
            handles.append(
                style.legend_entry("Component present", ls="", marker="o", color=style.BLACK, ms=5)
            )
        if "tested" in groups.columns and not groups["tested"].fillna(True).astype(bool).all():
            handles.append(
                style.legend_entry(
                    "Not in the test", ls="", marker="o", mfc="white", mec=style.BLACK, ms=7
                )
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
        if notes:
            style.footnote(ax, "\n".join(dict.fromkeys(notes)))
    return fig


def _contrasts(ax, contrasts: pd.DataFrame, y: np.ndarray, null: float, label: str) -> None:
    """The differences between pairs of rows, each at the middle of its two rows."""
    ax.axvline(null, color=style.GREY, lw=0.8, zorder=1)
    est = pd.to_numeric(contrasts["estimate"], errors="coerce").to_numpy(float)
    lo = pd.to_numeric(contrasts["ci_lb"], errors="coerce").to_numpy(float)
    hi = pd.to_numeric(contrasts["ci_ub"], errors="coerce").to_numpy(float)
    mid = np.array(
        [
            (y[int(a)] + y[int(b)]) / 2
            for a, b in zip(contrasts["first"], contrasts["second"], strict=True)
        ]
    )
    ok = np.isfinite(est)
    ax.hlines(mid[ok], lo[ok], hi[ok], color=style.BLACK, lw=1.6, zorder=2)
    ax.scatter(est[ok], mid[ok], marker="D", s=28, color=style.BLACK, zorder=3)
    for yy, text in zip(mid, contrasts["text"], strict=True):
        ax.annotate(
            str(text),
            xy=(0.0, yy),
            xycoords=("axes fraction", "data"),
            xytext=(2, -7),
            textcoords="offset points",
            fontsize=6.5,
            color="#333333",
            va="top",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3},
            zorder=4,
        )
    finite = np.r_[lo[ok], hi[ok], null]
    pad = 0.08 * (finite.max() - finite.min() or 1.0)
    ax.set_xlim(finite.min() - pad, finite.max() + pad)
    ax.set_xlabel(label)
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.spines["left"].set_visible(False)


def _matrix(ax, matrix: pd.DataFrame, y: np.ndarray) -> None:
    """Dots for the components each row has (filled) or lacks (light), columns labelled on top."""
    cols = list(matrix.columns)
    xs = np.arange(len(cols), dtype=float)
    values = matrix.to_numpy(dtype=float)
    for i in range(len(y)):
        has = values[i] == 1
        ax.scatter(xs[~has], np.full((~has).sum(), y[i]), s=22, color=style.LIGHT_GREY, zorder=2)
        ax.scatter(xs[has], np.full(has.sum(), y[i]), s=26, color=style.BLACK, zorder=3)
        if has.sum() > 1:
            ax.plot(xs[has][[0, -1]], [y[i], y[i]], color=style.BLACK, lw=1.2, zorder=2)
    ax.set_xlim(-0.6, len(cols) - 0.4)
    ax.set_xticks(xs, [wrap(c, 22) for c in cols], rotation=90, ha="center", va="bottom")
    ax.tick_params(axis="x", labelsize=7.5)
    ax.xaxis.set_ticks_position("top")
    ax.tick_params(axis="x", length=0, pad=2)
    ax.tick_params(axis="y", length=0, labelleft=False)
    for side in ("left", "bottom", "top", "right"):
        ax.spines[side].set_visible(False)
