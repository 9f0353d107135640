"""Bubble plot of a continuous moderator: every effect size against the moderator, with the fitted
meta-regression line, its confidence band and its prediction band.

Bubble areas grow with the precision 1/SE of the effect size; each study has its own colour
(cycling through the palette), so that the effect sizes of one study read as a group. The line is
the moderator model written by the moderator step (``models/moderators.json``: intercept
:math:`b_0` and slope :math:`b_1` with their covariance matrix :math:`V`, the moderator entering
as :math:`u = (x - m)/s`, its ``centring``); the inner band is its pointwise confidence interval
:math:`b_0 + b_1u \\pm c\\,\\sqrt{V_{00} + 2uV_{01} + u^2V_{11}}` with the model's critical value
:math:`c` (:math:`t_{k-p}` for t tests), the outer band the prediction interval
:math:`\\pm c\\sqrt{\\mathrm{se}^2 + \\sum_l \\hat\\sigma^2_l}`, i.e. metafor's ``predict()``
evaluated along the axis. The model is not refitted; no other statistic is computed here.

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
from intervention_meta.plots.prediction import total_variance

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
    pi_lower: np.ndarray | None = None
    pi_upper: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {"x": self.x, "fit": self.fit, "lower": self.lower, "upper": self.upper}
        )
        if self.pi_lower is not None:
            frame["pi_lower"], frame["pi_upper"] = self.pi_lower, self.pi_upper
        return frame


def regression_line(
    model: Mapping, x: np.ndarray, level: float = 0.95, centring: Mapping | None = None
) -> RegressionLine | None:
    """Evaluate a written one-moderator model (``models.slope`` of a moderator in
    ``models/moderators.json``: ``coefficients`` with ``estimate`` and ``df``, ``vb``, ``test``,
    ``sigma2``) along ``x``, the moderator's own scale; ``centring`` (``center``, ``scale``: the
    moderator's ``centring`` in the JSON) says how it entered the model. None if the model has no
    intercept and slope."""
    from intervention_meta.models.inference import critical_value  # scipy's t quantiles, only here

    coefs = model.get("coefficients") or []
    vb = model.get("vb")
    if len(coefs) != 2 or vb is None:
        return None
    b = np.array([c["estimate"] for c in coefs], dtype=float)
    V = np.asarray(vb, dtype=float)
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(V))):
        return None
    c = dict(centring or {})
    u = (np.asarray(x, dtype=float) - float(c.get("center", 0.0))) / float(c.get("scale", 1.0))
    X = np.column_stack([np.ones_like(u), u])
    fit = X @ b
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, V, X))
    crit = critical_value(str(model.get("test", "z")), coefs[1].get("df"), level)
    pi_se = np.sqrt(se**2 + total_variance(model))
    return RegressionLine(
        x, fit, fit - crit * se, fit + crit * se, level, fit - crit * pi_se, fit + crit * pi_se
    )


def bubble_plot(
    points: pd.DataFrame,
    line: RegressionLine | None,
    *,
    title: str,
    xlabel: str,
    subtitle: str | None = None,
    ylabel: str = "Hedges' g",
) -> Figure:
    """Effect sizes (``points``: ``x``, ``yi``, ``vi``, optionally ``study``: one colour per study)
    against the moderator, with ``line`` (its confidence band, and its prediction band when it
    has one)."""
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
        has_pi = line is not None and line.pi_lower is not None
        if has_pi:
            for edge in (line.pi_lower, line.pi_upper):
                ax.plot(line.x, edge, color=style.VERMILLION, lw=0.9, ls="--", zorder=3)
        if line is not None:
            ax.fill_between(
                line.x, line.lower, line.upper, color=style.VERMILLION, alpha=0.18, lw=0, zorder=1
            )
            ax.plot(line.x, line.fit, color=style.VERMILLION, lw=1.6, zorder=3)
        if "study" in pts.columns:
            keys = pd.unique(pts["study"].astype(str))
            index = {k: i for i, k in enumerate(keys)}
            colours = [style.category_colour(index[k]) for k in pts["study"].astype(str)]
        else:
            colours = [style.BLUE] * len(pts)
        ax.scatter(
            pts["x"],
            pts["yi"],
            s=sizes,
            c=colours,
            alpha=0.45,
            edgecolors=colours,
            linewidths=0.6,
            zorder=2,
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        style.title_block(ax, title, subtitle, width=85, title_width=55)
        by_study = "study" in pts.columns
        handles = [
            style.legend_entry(
                f"Effect size (k = {len(pts)}; area ~ precision 1/SE"
                + ("; colour = study)" if by_study else ")"),
                ls="",
                marker="o",
                color=style.GREY if by_study else style.BLUE,
                alpha=0.5,
                ms=6,
            ),
        ]
        if line is not None:
            handles += [
                style.legend_entry("Meta-regression line", color=style.VERMILLION, lw=1.6),
                Patch(color=style.VERMILLION, alpha=0.18, label=f"{pct} CI"),
            ]
        if has_pi:
            handles.append(style.legend_entry(f"{pct} PI", color=style.VERMILLION, lw=0.9, ls="--"))
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
    return fig
