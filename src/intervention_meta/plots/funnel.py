"""Contour-enhanced funnel plots (Peters et al. 2008) of the effect sizes and the study averages.

Each panel plots effects against their standard error (0 at the top). The shaded regions are where
an effect of that size and standard error would have a two-sided p between .10 and .05, between .05
and .01, and below .01 in a z test against 0, so that a gap of studies in the region of
non-significance (white) rather than on one side of the pooled effect points to publication bias
over other causes of asymmetry. The panel's pooled estimate (the funnel's centre written by the
bias step) is the dashed line, and the pseudo-confidence funnel around it (the 95% region
:math:`\\hat\\theta \\pm 1.96\\,\\mathrm{se}` where an unbiased set of studies would lie) the two
thin dashed lines; trim and fill's filled-in studies (Duval & Tweedie 2000) are drawn
as open circles in the study-average panel, and its adjusted estimate as a dotted line when any
were filled.

The contours come from ``tables/funnel_data.csv``, which holds the pseudo-confidence regions
:math:`\\hat\\theta \\pm z_{(1+\\ell)/2}\\,\\mathrm{se}` around each panel's pooled estimate for
:math:`\\ell` = .90, .95, .99; their half-widths :math:`z_{(1+\\ell)/2}\\,\\mathrm{se}` are drawn
around 0 instead, which is Peters' contour of :math:`p = 1 - \\ell`. Nothing is re-estimated.

References
----------
Peters, J. L., Sutton, A. J., Jones, D. R., Abrams, K. R., & Rushton, L. (2008). Contour-enhanced
meta-analysis funnel plots help distinguish publication bias from other causes of asymmetry.
*Journal of Clinical Epidemiology*, 61, 991-996.
Duval, S., & Tweedie, R. (2000). Trim and fill. *Biometrics*, 56, 455-463.
Sterne, J. A. C., et al. (2011). Recommendations for examining and interpreting funnel plot
asymmetry in meta-analyses of randomised controlled trials. *BMJ*, 343, d4002.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.plots import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["PANELS", "SHADES", "funnel_plot", "region_labels", "region_shades"]

#: z of the pseudo-confidence funnel around the pooled estimate (95%)
PSEUDO_Z = 1.959963984540054

#: the panels of tables/funnel_data.csv, in drawing order
PANELS = ("effect sizes", "study averages")

#: shading from the centre outwards: p above the largest alpha (white), then darkest at the
#: conventional thresholds, lighter for smaller p (as metafor's contour-enhanced funnel)
SHADES = ("white", "#A8A8A8", "#CFCFCF", "#EBEBEB")


def region_shades(n_levels: int) -> tuple[str, ...]:
    """The colours of the ``n_levels + 1`` regions, innermost first."""
    if n_levels + 1 <= len(SHADES):
        return SHADES[: n_levels + 1]
    greys = np.linspace(0.66, 0.93, n_levels)
    return ("white", *("#" + f"{int(g * 255):02X}" * 3 for g in greys))


def region_labels(levels: list[float]) -> list[str]:
    """Legend text of the regions of contour ``levels`` (e.g. .90, .95, .99), innermost first:
    ``p > .10``, ``.05 < p < .10``, ``.01 < p < .05``, ``p < .01``."""
    alphas = [1 - lev for lev in sorted(levels)]
    fmt = [f"{a:.2f}".lstrip("0") for a in alphas]
    labels = [f"p > {fmt[0]}"]
    labels += [f"{lo} < p < {hi}" for hi, lo in zip(fmt[:-1], fmt[1:], strict=True)]
    labels.append(f"p < {fmt[-1]}")
    return labels


def _p_text(p: float | None) -> str:
    if p is None or not np.isfinite(p):
        return "p = n/a"
    if p < 0.001:
        return "p < .001"
    return "p = " + f"{p:.3f}".lstrip("0")


def _egger_text(bias: Mapping) -> str | None:
    eg = bias.get("egger_multilevel") or {}
    if eg.get("statistic") is None:
        return None
    df = eg.get("dfs")
    stat = f"t({df:g})" if df is not None else "z"
    return f"Egger-type test (3-level): {stat} = {eg['statistic']:.2f}, {_p_text(eg.get('pval'))}"


def _trimfill_text(bias: Mapping) -> str | None:
    tf = bias.get("trimfill") or {}
    if tf.get("k0") is None:
        return None
    k0 = int(tf["k0"])
    side = tf.get("side", "")
    text = f"Trim and fill ({tf.get('estimator', '')}): {k0} filled on the {side} side".replace(
        " ()", ""
    )
    if k0 > 0 and tf.get("estimate") is not None:
        text += f"; adjusted g = {tf['estimate']:.2f}"
    return text


def _panel(
    ax: Axes,
    funnel: pd.DataFrame,
    panel: str,
    filled: pd.DataFrame,
    adjusted: float | None,
    note: str | None,
    colour: str,
    xlabel: str,
) -> None:
    rows = funnel[funnel["panel"] == panel]
    pts = rows[rows["kind"] == "point"]
    contour = rows[rows["kind"] == "contour"].sort_values(["level", "sei"])
    if pts.empty:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color=style.GREY)
        ax.set_axis_off()
        return
    centre = float(rows["centre"].dropna().iloc[0]) if rows["centre"].notna().any() else None
    se_max = float(np.nanmax(np.r_[pts["sei"].to_numpy(), contour["sei"].to_numpy()]))
    if not filled.empty:
        se_max = max(se_max, float(np.nanmax(filled["sei"])))
    levels = sorted(contour["level"].dropna().unique())  # e.g. .90, .95, .99
    shades = region_shades(len(levels))
    ax.set_facecolor(shades[-1])  # outside the widest contour
    bottom = 1.06 * se_max  # room below the least precise point
    for lev, shade in reversed(list(zip(levels, shades[:-1], strict=True))):
        c = contour[contour["level"] == lev]
        se, half = c["sei"].to_numpy(), (c["upper"] - c["centre"]).to_numpy()
        if se.size and se[-1] > 0 and bottom > se[-1]:
            # the half-width z * se is proportional to se: carry it on to the axis' end
            se, half = np.r_[se, bottom], np.r_[half, half[-1] * bottom / se[-1]]
        ax.fill_betweenx(se, -half, half, color=shade, lw=0, zorder=0)
    ax.axvline(0.0, color=style.GREY, lw=0.8, zorder=1)
    if centre is not None:
        ax.axvline(centre, color=style.VERMILLION, lw=1.2, ls="--", zorder=1)
        half = PSEUDO_Z * bottom  # the pseudo-confidence funnel: centre +- 1.96 se
        for side in (-1.0, 1.0):
            ax.plot(
                [centre, centre + side * half],
                [0.0, bottom],
                color=style.BLACK,
                lw=0.7,
                ls=(0, (4, 2)),
                zorder=2,
            )
    if adjusted is not None:
        ax.axvline(adjusted, color=style.VERMILLION, lw=1.2, ls=":", zorder=1)
    ax.scatter(
        pts["yi"],
        pts["sei"],
        s=16,
        color=colour,
        alpha=0.85,
        linewidths=0.4,
        edgecolors="white",
        zorder=3,
        clip_on=False,
    )
    if not filled.empty:
        ax.scatter(
            filled["yi"],
            filled["sei"],
            s=18,
            facecolors="white",
            edgecolors=style.VERMILLION,
            linewidths=1.0,
            zorder=3,
            clip_on=False,
        )
    ax.set_ylim(bottom, 0.0)
    xs = np.r_[pts["yi"].to_numpy(), filled["yi"].to_numpy() if not filled.empty else []]
    edge = float(np.nanmax(np.abs(xs)))
    if not contour.empty:
        edge = max(edge, float(np.nanmax((contour["upper"] - contour["centre"]).abs())))
    ax.set_xlim(-1.05 * edge, 1.05 * edge)
    ax.set_ylabel("Standard error")
    ax.set_xlabel(xlabel)
    count = f"{len(pts)} studies" if panel == "study averages" else f"k = {len(pts)}"
    style.title_block(ax, f"{panel.capitalize()} ({count})", note, width=55, title_width=40)


def funnel_plot(
    funnel: pd.DataFrame,
    trimfill: pd.DataFrame | None = None,
    bias: Mapping | None = None,
    xlabel: str = "Hedges' g",
) -> Figure:
    """Two contour-enhanced funnel plots side by side: effect sizes, study averages.

    Parameters
    ----------
    funnel : ``tables/funnel_data.csv`` (columns ``panel``, ``kind``, ``yi``, ``sei``, ``centre``,
        ``level``, ``lower``, ``upper``).
    trimfill : ``tables/trimfill_data.csv`` (``filled`` marks the filled-in studies), or None.
    bias : ``models/bias.json`` (test results printed in the panels; trim-and-fill estimate).
    xlabel : the title of the effect-size axis (the measure's axis title).
    """
    from matplotlib.patches import Patch

    bias = dict(bias or {})
    filled = pd.DataFrame(columns=["yi", "sei"])
    if trimfill is not None and "filled" in trimfill.columns:
        flag = trimfill["filled"].astype(str).str.lower().isin(["true", "1"])
        filled = trimfill.loc[flag, ["yi", "sei"]]
    elif "kind" in funnel.columns:
        filled = funnel.loc[funnel["kind"] == "filled", ["yi", "sei"]]
    tf = bias.get("trimfill") or {}
    adjusted = tf.get("estimate") if tf.get("k0") else None
    panels = [p for p in PANELS if (funnel["panel"] == p).any()] or [PANELS[0]]
    with style.style():
        fig = style.figure(style.FULL_WIDTH, 3.9)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=True):
            is_avg = panel == "study averages"
            _panel(
                ax,
                funnel,
                panel,
                filled if is_avg else filled.iloc[0:0],
                adjusted if is_avg else None,
                _trimfill_text(bias) if is_avg else _egger_text(bias),
                style.BLACK if is_avg else style.BLUE,
                xlabel,
            )
        levels = sorted(funnel["level"].dropna().unique()) if "level" in funnel else []
        # the regions from the smallest p (outermost) to p > .10, as a reader looks them up
        handles = [
            Patch(facecolor=shade, edgecolor=style.GREY, lw=0.4, label=label)
            for shade, label in reversed(
                list(
                    zip(
                        region_shades(len(levels)),
                        region_labels(levels) if levels else [],
                        strict=False,
                    )
                )
            )
        ]
        handles.append(style.legend_entry("Pooled estimate", color=style.VERMILLION, ls="--"))
        handles.append(
            style.legend_entry(
                "Pseudo 95% confidence funnel", color=style.BLACK, lw=0.7, ls=(0, (4, 2))
            )
        )
        if not filled.empty:
            handles += [
                style.legend_entry(
                    "Filled in (trim and fill)",
                    ls="",
                    marker="o",
                    mfc="white",
                    mec=style.VERMILLION,
                ),
                style.legend_entry("Trim-and-fill estimate", color=style.VERMILLION, ls=":"),
            ]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    return fig
