"""The selection weights of the step-function selection model, with their intervals.

One point per p-value interval of the model (``selection.weights`` of ``models/bias.json``,
:func:`intervention_meta.methods.selection.selection_model`): the estimated weight
:math:`\\delta_j`, the relative probability that an effect size whose p value falls in
interval :math:`j` is observed (reported, published, included) compared with one in the first,
most significant interval, whose weight is 1 by definition (Vevea & Hedges 1995). The bars are
the percentile intervals of the cluster bootstrap (studies resampled; Pustejovsky, Citkowicz &
Joshi 2025), or the Wald intervals of the cluster-robust sandwich where there is no bootstrap.
The axis is logarithmic (a weight of 0.5 is as far below 1 as 2 is above it) with a reference
line at 1: no selection.

:func:`selection_usable` says whether the weights are worth drawing: the model converged and
every interval holds at least :data:`MIN_PER_INTERVAL` effect sizes; otherwise the figure (and
the report) says why instead.

References
----------
Pustejovsky, J. E., Citkowicz, M., & Joshi, M. (2025). Estimation and inference for step-function
selection models in meta-analysis with dependent effects. *Research Synthesis Methods*.
Vevea, J. L., & Hedges, L. V. (1995). A general linear model for estimating effect size in the
presence of publication bias. *Psychometrika*, 60(3), 419-435.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from intervention_meta.plots import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["MIN_PER_INTERVAL", "interval_label", "selection_usable", "selection_weights_plot"]

#: fewer effect sizes than this in a p-value interval leave its weight too unstable to show (a
#: rule of thumb of this pipeline; metafor only refuses empty intervals)
MIN_PER_INTERVAL = 4

TITLE = "Selection weights"


def _num(x: Any) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return math.nan
    return value


def selection_usable(selection: Mapping[str, Any] | None, reason: str = "") -> tuple[bool, str]:
    """Whether the selection model's weights can be shown, and if not, why.

    ``selection`` is the ``selection`` record of ``models/bias.json`` (None: not computed, with
    ``reason`` from its ``not_computed``).
    """
    if not selection:
        why = reason or "it was not computed"
        return False, f"The selection model could not be fitted: {why}."
    if not selection.get("converged", False):
        return False, "The selection model's optimizer did not converge; its weights are not shown."
    weights = selection.get("weights") or []
    few = [w for w in weights if int(w.get("k") or 0) < MIN_PER_INTERVAL]
    if few:
        which = "; ".join(f"{interval_label(w)}: {int(w.get('k') or 0)}" for w in few)
        return False, (
            f"Too few effect sizes in some p-value intervals to estimate their weights ({which}; "
            f"at least {MIN_PER_INTERVAL} per interval are needed): the weights are not shown."
        )
    if not any(math.isfinite(_num(w.get("estimate"))) for w in weights[1:]):
        return False, "The selection model estimated no weights."
    return True, ""


def interval_label(weight: Mapping[str, Any]) -> str:
    """``.025 < p ≤ .5`` from an interval's bounds (``0 < p ≤ .025`` for the first)."""

    def p(x: Any) -> str:
        v = _num(x)
        if v in (0.0, 1.0):
            return f"{v:g}"
        return f"{v:.4g}".lstrip("0") if 0 < v < 1 else f"{v:g}"

    return f"{p(weight.get('p_lb'))} < p \u2264 {p(weight.get('p_ub'))}"


def _limits(weight: Mapping[str, Any]) -> tuple[float, float, str]:
    """The interval drawn for a weight: bootstrap percentiles if there are any, else Wald."""
    lb, ub = _num(weight.get("boot_ci_lb")), _num(weight.get("boot_ci_ub"))
    if math.isfinite(lb) and math.isfinite(ub):
        return lb, ub, "bootstrap"
    return _num(weight.get("ci_lb")), _num(weight.get("ci_ub")), "wald"


def selection_weights_plot(selection: Mapping[str, Any], *, title: str = TITLE) -> Figure:
    """Points (the weights) with their intervals on a log axis, one per p-value interval, the
    first (the reference, weight 1) drawn open; the number of effect sizes under each."""
    weights = list(selection.get("weights") or [])
    level = _num(selection.get("level"))
    pct = f"{100 * level:g}%" if math.isfinite(level) else "95%"
    n = len(weights)
    x = np.arange(n, dtype=float)
    kinds = set()
    with style.style():
        fig = style.figure(min(style.FULL_WIDTH, 2.4 + 1.3 * n), 3.4)
        ax = fig.add_subplot()
        ax.set_yscale("log")
        ax.axhline(1.0, color=style.GREY, lw=0.9, ls="--", zorder=0)
        values = [1.0]
        for i, w in enumerate(weights):
            est = _num(w.get("estimate"))
            if i == 0:
                ax.plot(x[i], 1.0, "o", ms=7, mfc="white", mec=style.BLACK, mew=1.2, zorder=3)
                continue
            lb, ub, kind = _limits(w)
            if math.isfinite(lb) and math.isfinite(ub):
                kinds.add(kind)
                lo, hi = max(lb, 1e-3), max(ub, 1e-3)
                ax.plot([x[i], x[i]], [lo, hi], color=style.BLUE, lw=1.6, zorder=2)
                values += [lo, hi]
            if math.isfinite(est) and est > 0:
                ax.plot(x[i], est, "o", ms=7, color=style.BLUE, zorder=3)
                ax.annotate(
                    f"{est:.2f}",
                    (x[i], est),
                    xytext=(8, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                )
                values.append(est)
        lo, hi = min(values), max(values)
        ax.set_ylim(min(lo, 0.5) / 1.6, max(hi, 2.0) * 1.6)
        ax.set_xlim(-0.6, n - 0.4)
        ticks = [
            f"{interval_label(w)}\n(k = {int(w.get('k') or 0)})" + ("\nreference" if i == 0 else "")
            for i, w in enumerate(weights)
        ]
        ax.set_xticks(x, ticks, fontsize=8)
        sided = "Two" if selection.get("alternative") == "two.sided" else "One"
        ax.set_xlabel(f"{sided}-sided p-value interval of the effect sizes")
        ax.set_ylabel("Weight relative to the most\nsignificant interval (log scale)")
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        interval = {
            frozenset({"bootstrap"}): f"{pct} bootstrap percentile interval",
            frozenset({"wald"}): f"{pct} cluster-robust Wald interval",
        }.get(frozenset(kinds), f"{pct} interval")
        handles = [
            style.legend_entry("Reference (weight 1)", marker="o", ls="", mfc="white", mec="black"),
            style.legend_entry("Estimated weight", marker="o", ls="", color=style.BLUE),
            style.legend_entry(interval, color=style.BLUE, lw=1.6),
            style.legend_entry("No selection (1)", color=style.GREY, ls="--", lw=0.9),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
        ax.set_title(title, loc="left")
    return fig
