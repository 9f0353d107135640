"""Forest plot of every effect size grouped by study, with the study estimates, the pooled effect
and its prediction interval.

Each study gets a block of rows: its study-level estimate (black square, from the table
``study_effects`` of ``models/components.json``) on the first row and its effect sizes (blue
circles) below it. Marker areas grow with the precision 1/SE. The pooled effect of the analysis
model is the diamond at the bottom (its width the confidence interval) and the prediction interval
the bar beneath it (both from ``models/overall.json``). The figure's height grows with the number
of rows, so that every row keeps a readable height however many effect sizes there are.

Nothing is estimated here. The only number drawn that the analysis files do not hold is the
confidence interval of a single effect size, :math:`y_i \\pm z_{1-\\alpha/2}\\sqrt{v_i}`, as in
every forest plot (metafor ``forest()``).

References
----------
Lewis, S., & Clarke, M. (2001). Forest plots: trying to see the wood and the trees. *BMJ*, 322,
1479-1480.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.plots import style
from intervention_meta.plots.labels import natural_key

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from intervention_meta.outputs.labels import BackScale

log = logging.getLogger(__name__)

__all__ = ["SORT_KEYS", "ForestRow", "forest_plot", "forest_rows", "study_order"]

#: the orders of the studies that ``figures.forest_sort`` accepts
SORT_KEYS = ("effect", "year", "precision", "study")

#: machine keys of the table ``study_effects`` (``models/components.json``)
STUDY, K, EST, SE, LO, HI = ("study", "k", "estimate", "se", "ci_lb", "ci_ub")

ROW_HEIGHT = 0.145  # inches per row
FIXED_HEIGHT = 1.6  # title, legend, axis labels


@dataclass(frozen=True)
class ForestRow:
    """One row of the forest plot: ``kind`` is ``study``, ``effect``, ``pooled`` or ``pi``."""

    kind: str
    label: str
    estimate: float
    lower: float
    upper: float
    se: float = float("nan")
    block: int = -1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def study_order(
    study_effects: pd.DataFrame, sort: str = "effect", years: Mapping[str, float] | None = None
) -> tuple[list[str], str]:
    """Study keys in the order of ``sort`` and the order actually used.

    ``effect``: study estimate, smallest first; ``precision``: study SE, most precise first;
    ``year``: ``years`` (oldest first; falls back to ``study`` when there are none);
    ``study``: the keys in natural order (S2 before S10). Ties keep the key order.
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"figures.forest_sort must be one of {SORT_KEYS}, got {sort!r}")
    frame = study_effects.assign(_key=study_effects[STUDY].astype(str))
    frame = frame.iloc[sorted(range(len(frame)), key=lambda i: natural_key(frame["_key"].iat[i]))]
    if sort == "year" and not years:
        log.warning("forest plot: no year variable in the data; studies sorted by key instead")
        sort = "study"
    if sort == "effect":
        frame = frame.sort_values(EST, kind="stable", na_position="last")
    elif sort == "precision":
        frame = frame.sort_values(SE, kind="stable", na_position="last")
    elif sort == "year":
        frame = frame.assign(_year=frame["_key"].map(lambda k: (years or {}).get(k, np.nan)))
        frame = frame.sort_values("_year", kind="stable", na_position="last")
    return list(frame["_key"]), sort


def _row(
    kind: str, label: str, values: Mapping, lower: str, upper: str, **extra: float
) -> ForestRow:
    """A row from the ``estimate`` and the limits ``lower`` and ``upper`` of ``values``."""
    return ForestRow(
        kind, label, float(values[EST]), float(values[lower]), float(values[upper]), **extra
    )


def forest_rows(
    effects: pd.DataFrame,
    study_effects: pd.DataFrame,
    overall: Mapping,
    *,
    study: str,
    es: str,
    labels: Mapping[str, str] | None = None,
    sort: str = "effect",
    years: Mapping[str, float] | None = None,
) -> tuple[list[ForestRow], str]:
    """The rows of the forest plot, top to bottom, and the study order used.

    ``effects`` has one row per effect size with ``study``, ``es``, ``yi`` and ``vi``;
    ``study_effects`` is the table ``study_effects`` (machine keys) of
    ``models/components.json``; ``overall`` is ``models/overall.json``.
    """
    labels = dict(labels or {})
    level = float((overall.get("estimate") or {}).get("level") or 0.95)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    order, used = study_order(study_effects, sort, years)
    by_study = study_effects.assign(_key=study_effects[STUDY].astype(str)).set_index("_key")
    eff = effects.assign(_key=effects[study].astype(str), _es=effects[es].astype(str))
    rows: list[ForestRow] = []
    for block, key in enumerate(order):
        s = by_study.loc[key]
        k = int(s[K]) if pd.notna(s[K]) else 0
        label = f"{labels.get(key, key)} (k = {k})"
        rows.append(_row("study", label, s, LO, HI, se=float(s[SE]), block=block))
        own = eff[eff["_key"] == key]
        own = own.iloc[sorted(range(len(own)), key=lambda i: natural_key(own["_es"].iat[i]))]
        for _, r in own.iterrows():
            se = float(np.sqrt(r["vi"]))
            y = float(r["yi"])
            name = str(r["_es"])
            name = f"ES {name}" if name.isdigit() else name  # a bare number reads as a value
            rows.append(ForestRow("effect", name, y, y - z * se, y + z * se, se, block))
    est = overall.get("estimate") or {}
    if overall.get("estimable", True) and est.get("estimate") is not None:
        se = float(est.get("se") or np.nan)
        rows.append(_row("pooled", "Pooled effect", est, "ci_lb", "ci_ub", se=se))
        if est.get("pi_lb") is not None and est.get("pi_ub") is not None:
            rows.append(_row("pi", "Prediction interval", est, "pi_lb", "pi_ub"))
    return rows, used


def _num(x: float) -> str:
    """Two decimals, without a minus sign on a value that rounds to zero."""
    text = f"{x:.2f}"
    return text[1:] if text in ("-0.00",) else text


def _fmt(est: float, lo: float, hi: float) -> str:
    return f"{_num(est)} [{_num(lo)}, {_num(hi)}]"


def forest_plot(
    rows: list[ForestRow],
    *,
    title: str = "Forest plot",
    xlabel: str = "Hedges' g",
    level: float = 0.95,
    symbol: str = "g",
    null: float = 0.0,
    back_scale: BackScale | None = None,
) -> Figure:
    """Draw :func:`forest_rows`; the height grows with the number of rows.

    ``xlabel`` titles the axis of the analysis scale and ``symbol`` the column of numbers; the
    reference line is at ``null``. With ``back_scale`` the axis at the top shows the
    back-transformed scale (odds ratio, correlation, ...) at the same positions.
    """
    from matplotlib.patches import Polygon

    n = len(rows)
    pct = f"{100 * level:g}%"
    with style.style():
        fig = style.figure(
            style.FULL_WIDTH,
            style.rows_height(n + 2, per_row=ROW_HEIGHT, fixed=FIXED_HEIGHT, minimum=3.0),
        )
        ax = fig.add_subplot()
        y = -np.arange(n, dtype=float)
        # a gap between the last study and the pooled rows
        n_study_rows = sum(r.kind in ("study", "effect") for r in rows)
        y[n_study_rows:] -= 1.0
        kinds = np.array([r.kind for r in rows])
        est = np.array([r.estimate for r in rows])
        lo = np.array([r.lower for r in rows])
        hi = np.array([r.upper for r in rows])
        se = np.array([r.se for r in rows])
        blocks = np.array([r.block for r in rows])

        # light bands behind every other study block
        for b in np.unique(blocks[blocks >= 0])[1::2]:
            ys = y[blocks == b]
            ax.axhspan(ys.min() - 0.5, ys.max() + 0.5, color="#F2F2F2", zorder=0, lw=0)

        ax.axvline(null, color=style.GREY, lw=0.8, zorder=1)
        is_pooled = kinds == "pooled"
        if is_pooled.any():
            ax.axvline(est[is_pooled][0], color=style.VERMILLION, lw=0.8, ls=":", zorder=1)

        sizes = style.precision_sizes(1.0 / se, smallest=6.0, largest=60.0)
        for kind, colour, marker, lw in (
            ("effect", style.BLUE, "o", 0.7),
            ("study", style.BLACK, "s", 1.3),
        ):
            m = kinds == kind
            ax.hlines(y[m], lo[m], hi[m], color=colour, lw=lw, zorder=2)
            ax.scatter(
                est[m], y[m], s=sizes[m], marker=marker, color=colour, zorder=3, linewidths=0
            )
        if is_pooled.any():
            i = int(np.flatnonzero(is_pooled)[0])
            h = 0.42
            diamond = [(lo[i], y[i]), (est[i], y[i] + h), (hi[i], y[i]), (est[i], y[i] - h)]
            ax.add_patch(Polygon(diamond, closed=True, color=style.VERMILLION, zorder=3))
        is_pi = kinds == "pi"
        if is_pi.any():
            i = int(np.flatnonzero(is_pi)[0])
            ax.hlines(y[i], lo[i], hi[i], color=style.VERMILLION, lw=1.2, zorder=2)
            ax.vlines([lo[i], hi[i]], y[i] - 0.3, y[i] + 0.3, color=style.VERMILLION, lw=1.2)

        # labels on the left, numbers on the right
        ax.set_yticks(y)
        ax.set_yticklabels([r.label if r.kind != "effect" else f"   {r.label}" for r in rows])
        for tick, r in zip(ax.get_yticklabels(), rows, strict=True):
            if r.kind == "effect":
                tick.set_fontsize(6.5)
                tick.set_color(style.GREY)
            else:
                tick.set_fontsize(7.5)
                tick.set_fontweight("bold")
        ax.tick_params(axis="y", length=0, pad=4)
        for yy, r in zip(y, rows, strict=True):
            text = (
                f"[{_num(r.lower)}, {_num(r.upper)}]"
                if r.kind == "pi"
                else _fmt(r.estimate, r.lower, r.upper)
            )
            bold = r.kind != "effect"
            style.margin_text(
                ax,
                yy,
                text,
                fontsize=7.5 if bold else 6.5,
                fontweight="bold" if bold else "normal",
                color=style.BLACK if bold else style.GREY,
                family="DejaVu Sans Mono",
            )
        style.margin_header(ax, f"{symbol} [{pct} CI]")
        finite = np.isfinite(lo) & np.isfinite(hi)
        xmin, xmax = float(np.min(lo[finite], initial=-1.0)), float(np.max(hi[finite], initial=1))
        xmin, xmax = min(xmin, null), max(xmax, null)
        pad = 0.03 * (xmax - xmin or 1.0)
        ax.set_xlim(xmin - pad, xmax + pad)
        ax.set_ylim(y.min() - 0.8, 0.8)
        ax.set_xlabel(xlabel)
        if back_scale is None:
            ax.tick_params(axis="x", top=True, labeltop=True)  # tall figures: an axis at both ends
        else:
            top = ax.secondary_xaxis("top", functions=(back_scale.forward, back_scale.inverse))
            top.set_xlabel(back_scale.label)
            if back_scale.ticks:
                lo_back, hi_back = back_scale.forward(np.array(ax.get_xlim()))
                marks = [t for t in back_scale.ticks if lo_back <= t <= hi_back]
                top.set_xticks(marks, [f"{t:g}" for t in marks])
        ax.spines["left"].set_visible(False)
        ax.set_title(title, loc="left")

        handles = [
            style.legend_entry(
                f"Effect size ({pct} CI)", color=style.BLUE, marker="o", ms=5, lw=0.7
            ),
            style.legend_entry(
                f"Study estimate ({pct} CI)", color=style.BLACK, marker="s", ms=5, lw=1.3
            ),
        ]
        if is_pooled.any():
            handles.append(
                style.legend_entry(
                    f"Pooled effect ({pct} CI)", color=style.VERMILLION, marker="D", ms=6, lw=0
                )
            )
        if is_pi.any():
            handles.append(
                style.legend_entry(
                    f"{pct} prediction interval", color=style.VERMILLION, lw=1.2, marker="|", ms=7
                )
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        fig.text(
            0.01,
            0.0,
            "Marker area grows with precision (1/SE).",
            fontsize=7,
            color=style.GREY,
            va="bottom",
        )
    return fig
