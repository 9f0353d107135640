"""Bubble plot of a continuous moderator: every effect size against the moderator, with the fitted
meta-regression line and its confidence band.

Bubble areas grow with the precision 1/SE of the effect size. The line is the moderator model
written by the moderator step (``models/moderators.json``: intercept :math:`b_0` and slope
:math:`b_1` with their covariance matrix :math:`V`); the band is its pointwise confidence interval
:math:`b_0 + b_1x \\pm c\\,\\sqrt{V_{00} + 2xV_{01} + x^2V_{11}}` with the model's critical value
:math:`c` (:math:`t_{k-p}` for t tests), i.e. metafor's ``predict()`` evaluated along the axis. The
model is not refitted; no other statistic is computed here.

References
----------
Thompson, S. G., & Higgins, J. P. T. (2002). How should meta-regression analyses be undertaken and
interpreted? *Statistics in Medicine*, 21, 1559-1573.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.plots import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["RegressionLine", "bubble_plot", "regression_line"]


@dataclass(frozen=True)
class RegressionLine:
    """The fitted line of a one-moderator model along ``x``, with its pointwise CI."""

    x: np.ndarray
    fit: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"x": self.x, "fit": self.fit, "lower": self.lower, "upper": self.upper}
        )


def regression_line(model: Mapping, x: np.ndarray, level: float = 0.95) -> RegressionLine | None:
    """Evaluate a written one-moderator model (``models.slope`` of a moderator in
    ``models/moderators.json``: ``coefficients`` with ``estimate`` and ``df``, ``vb``, ``test``)
    along ``x``. None if the model has no intercept and slope."""
    from intervention_meta.models.inference import critical_value  # scipy's t quantiles, only here

    coefs = model.get("coefficients") or []
    vb = model.get("vb")
    if len(coefs) != 2 or vb is None:
        return None
    b = np.array([c["estimate"] for c in coefs], dtype=float)
    V = np.asarray(vb, dtype=float)
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(V))):
        return None
    X = np.column_stack([np.ones_like(x), x])
    fit = X @ b
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, V, X))
    crit = critical_value(str(model.get("test", "z")), coefs[1].get("df"), level)
    return RegressionLine(x, fit, fit - crit * se, fit + crit * se, level)


def bubble_plot(
    points: pd.DataFrame,
    line: RegressionLine | None,
    *,
    title: str,
    xlabel: str,
    subtitle: str | None = None,
    ylabel: str = "Hedges' g",
) -> Figure:
    """Effect sizes (``points``: ``x``, ``yi``, ``vi``) against the moderator, with ``line``."""
    from matplotlib.patches import Patch

    pts = points[np.isfinite(points["x"]) & np.isfinite(points["yi"]) & np.isfinite(points["vi"])]
    prec = 1.0 / np.sqrt(pts["vi"].to_numpy(dtype=float))
    if prec.size and prec.max() > prec.min():
        sizes = 12 + 140 * (prec - prec.min()) / (prec.max() - prec.min())
    else:
        sizes = np.full(prec.shape, 50.0)
    pct = f"{100 * (line.level if line is not None else 0.95):g}%"
    with style.style():
        fig = style.figure(style.FULL_WIDTH * 0.8, 4.3)
        ax = fig.add_subplot()
        ax.axhline(0.0, color=style.GREY, lw=0.8, zorder=1)
        if line is not None:
            ax.fill_between(
                line.x, line.lower, line.upper, color=style.VERMILLION, alpha=0.18, lw=0, zorder=1
            )
            ax.plot(line.x, line.fit, color=style.VERMILLION, lw=1.6, zorder=3)
        ax.scatter(
            pts["x"],
            pts["yi"],
            s=sizes,
            color=style.BLUE,
            alpha=0.45,
            edgecolors=style.BLUE,
            linewidths=0.6,
            zorder=2,
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        style.title_block(ax, title, subtitle, width=85, title_width=55)
        handles = [
            style.legend_entry(
                f"Effect size (k = {len(pts)}; area ~ precision)",
                ls="",
                marker="o",
                color=style.BLUE,
                alpha=0.5,
                ms=6,
            ),
        ]
        if line is not None:
            handles += [
                style.legend_entry("Meta-regression line", color=style.VERMILLION, lw=1.6),
                Patch(color=style.VERMILLION, alpha=0.18, label=f"{pct} CI"),
            ]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig
