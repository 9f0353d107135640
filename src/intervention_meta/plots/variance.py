"""Distribution of the total variance over the levels of the three-level model.

One horizontal bar per analysis (all effect sizes, then each domain analysed on its own), split
into the share of the sampling variance (level 1), the variance within studies (level 2) and the
variance between studies (level 3), as ``tables/variance_distribution.csv`` gives them (Cheung
2014, eq. 14; Assink & Wibbelink 2016). The dashed line marks 75% sampling variance: Hunter and
Schmidt's (1990) rule of thumb that heterogeneity is negligible when sampling error accounts for
at least 75% of the total.

References
----------
Assink, M., & Wibbelink, C. J. M. (2016). Fitting three-level meta-analytic models in R: A
step-by-step tutorial. *The Quantitative Methods for Psychology*, 12(3), 154-174.
Cheung, M. W.-L. (2014). Modeling dependent effect sizes with three-level meta-analyses: A
structural equation modeling approach. *Psychological Methods*, 19, 211-229.
Hunter, J. E., & Schmidt, F. L. (1990). *Methods of meta-analysis: Correcting error and bias in
research findings*. Sage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.plots import style
from intervention_meta.plots.labels import wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["LEVEL_COLOURS", "VarianceBar", "variance_plot"]

#: colours of level 1 (sampling), 2 (within studies), 3 (between studies), ...
LEVEL_COLOURS = (style.SKY_BLUE, style.ORANGE, style.BLUE, style.BLUISH_GREEN, style.REDDISH_PURPLE)

#: machine keys of the table ``variance_distribution`` (``models/overall.json``)
LEVEL, SOURCE, PERCENT = "level", "source", "pct"


@dataclass(frozen=True)
class VarianceBar:
    """One analysis: its label, size and its table ``variance_distribution`` (machine keys;
    empty: none)."""

    label: str
    table: pd.DataFrame
    k: int | None = None
    n_studies: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def levels(self) -> pd.DataFrame:
        """The single-level rows (``1``, ``2``, ``3``; not sums like ``2 + 3``)."""
        if self.table.empty or LEVEL not in self.table.columns:
            return self.table.iloc[0:0]
        single = ~self.table[LEVEL].astype(str).str.contains(r"\+")
        return self.table.loc[single]


def variance_plot(bars: list[VarianceBar], *, title: str = "Distribution of variance") -> Figure:
    """Stacked horizontal bars of the variance shares, one per analysis, top to bottom."""
    from matplotlib.patches import Patch

    n = len(bars)
    with style.style():
        fig = style.figure(style.FULL_WIDTH, style.rows_height(n, per_row=0.5, fixed=1.6))
        ax = fig.add_subplot()
        y = -np.arange(n, dtype=float)
        sources: list[str] = []
        for i, bar in enumerate(bars):
            rows = bar.levels()
            if rows.empty:
                ax.text(
                    1, y[i], bar.note or "not estimable", va="center", fontsize=8, color=style.GREY
                )
                continue
            left = 0.0
            for j, (_, r) in enumerate(rows.iterrows()):
                share = float(r[PERCENT]) if pd.notna(r[PERCENT]) else 0.0
                src = str(r[SOURCE])
                if src not in sources:
                    sources.append(src)
                colour = LEVEL_COLOURS[j % len(LEVEL_COLOURS)]
                ax.barh(
                    y[i], share, left=left, height=0.62, color=colour, edgecolor="white", lw=0.8
                )
                if share >= 7:
                    dark = colour in (style.BLUE,)
                    ax.text(
                        left + share / 2,
                        y[i],
                        f"{share:.0f}%",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else style.BLACK,
                    )
                left += share
        # behind the bars: visible between them, never across a label
        ax.axvline(75, color=style.BLACK, lw=0.9, ls="--", zorder=0)
        ax.set_xlim(0, 100)
        ax.set_ylim(y.min() - 0.6, 0.6)
        ticks = []
        for bar in bars:
            size = ""
            if bar.k is not None:
                size = f"k = {bar.k}" + (f", {bar.n_studies} studies" if bar.n_studies else "")
            ticks.append(wrap(bar.label, 30) + (f"\n({size})" if size else ""))
        ax.set_yticks(y, ticks)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("% of total variance")
        ax.set_title(title, loc="left")
        handles = [
            Patch(color=LEVEL_COLOURS[j % len(LEVEL_COLOURS)], label=f"Level {j + 1}: {src}")
            for j, src in enumerate(sources)
        ]
        handles.append(
            style.legend_entry("75% rule (sampling error)", color=style.BLACK, ls="--", lw=0.9)
        )
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
    return fig
