"""Forest plot of the studies (or of every effect size grouped by study), with the study weights,
the pooled effect, its prediction interval and the heterogeneity under it.

``rows="study"`` (the default, ``figures.forest_rows``) draws one row per study: its study-level
estimate (black square, from the table ``study_effects`` of ``models/components.json``).
``rows="effect_size"`` gives each study a block: its estimate on the first row and its effect sizes
(blue circles) below it. Marker areas grow with the precision 1/SE. The weight column is each
study's share of the pooled estimate (:func:`study_weights`). The pooled effect of the analysis
model is the diamond at the bottom (its width the confidence interval), the prediction interval
the bar beneath it, and the heterogeneity (variance components per level, :math:`I^2`, the Q test)
the line under them (all from ``models/overall.json``). "Favours ..." labels under the axis say
which side is which (:func:`favours_labels`). A plot of more rows than ``max_rows`` is split into
pages at study boundaries (:func:`forest_pages`); each row keeps its height.

Nothing is estimated here. The numbers drawn that the analysis files do not hold are the
confidence interval of a single effect size, :math:`y_i \\pm z_{1-\\alpha/2}\\sqrt{v_i}`, as in
every forest plot (metafor ``forest()``), and the weights,
:math:`w_j = \\mathbf 1'V_j^{-1}\\mathbf 1` from the variance components the overall step
estimated.

References
----------
Lewis, S., & Clarke, M. (2001). Forest plots: trying to see the wood and the trees. *BMJ*, 322,
1479-1480.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
Schriger, D. L., Altman, D. G., Vetter, J. A., Heafner, T., & Moher, D. (2010). Forest plots in
reports of systematic reviews: a cross-sectional study reviewing current practice. *International
Journal of Epidemiology*, 39, 421-429.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from intervention_meta.plots import style
from intervention_meta.plots.labels import natural_key

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from intervention_meta.outputs.labels import BackScale

log = logging.getLogger(__name__)

__all__ = [
    "MAX_ROWS",
    "ROW_KINDS",
    "SORT_KEYS",
    "ForestRow",
    "favours_labels",
    "forest_pages",
    "forest_plot",
    "forest_rows",
    "heterogeneity_text",
    "study_order",
    "study_weights",
]

#: the orders of the studies that ``figures.forest_sort`` accepts
SORT_KEYS = ("effect", "year", "precision", "study")
#: what a row of the forest plot is (``figures.forest_rows``)
ROW_KINDS = ("study", "effect_size")
#: rows of one page (``figures.forest_max_rows``): 60 rows of 0.145 in fit an A4 or letter page
MAX_ROWS = 60

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
    weight: float = float("nan")

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


def study_weights(
    effects: pd.DataFrame, sigma2: Mapping[str, float], levels: Sequence[str], vi: str = "vi"
) -> dict[str, float]:
    """Each study's weight in the pooled estimate of a multilevel model, in percent.

    With :math:`V_j = \\mathrm{diag}(v_i) + \\sum_l \\sigma^2_l Z_{lj}Z_{lj}'` the marginal
    covariance of study :math:`j`'s effect sizes (one random effect per unit of every level
    ``levels``, outermost first, the first being the study), the pooled estimate of the
    intercept-only model is :math:`\\sum_j \\mathbf 1'V_j^{-1}y_j / \\sum_j w_j` with
    :math:`w_j = \\mathbf 1'V_j^{-1}\\mathbf 1`; the weight shown is :math:`100\\,w_j/\\sum w`
    (metafor ``weights(res)`` summed by study). A level missing from ``sigma2`` counts as 0, so
    a fixed-effect model weighs by :math:`\\sum_i 1/v_i`.

    Parameters
    ----------
    effects : one row per effect size with the columns of ``levels`` and ``vi``
    sigma2 : the variance component of each level (``sigma2`` of ``models/overall.json``)
    levels : the level columns, outermost (the study) first
    """
    if not levels:
        return {}
    study = levels[0]
    raw: dict[str, float] = {}
    for key, block in effects.groupby(effects[study].astype(str), sort=False):
        V = np.diag(block[vi].to_numpy(dtype=float))
        for level in levels:
            s2 = float(sigma2.get(level) or 0.0)
            if s2:  # a level that is not a column is the innermost: one unit per row
                units = (
                    block[level].astype(str).to_numpy()
                    if level in block.columns
                    else np.arange(len(block)).astype(str)
                )
                V = V + s2 * (units[:, None] == units[None, :])
        ones = np.ones(len(block))
        try:
            raw[str(key)] = float(ones @ np.linalg.solve(V, ones))
        except np.linalg.LinAlgError:
            raw[str(key)] = float("nan")
    total = np.nansum(list(raw.values()))
    return {key: 100.0 * w / total for key, w in raw.items()} if total > 0 else {}


def favours_labels(
    direction: str | None, declared: bool, given: Sequence[str] | None = None
) -> tuple[str, str] | None:
    """The "favours ..." labels left and right of the null, or None (neutral).

    ``given`` (the config's ``effect_sizes.favours``: ``[left, right]``) wins. Otherwise a
    declared direction (``direction_declared`` in ``effect_sizes_summary.json``) that says a
    positive effect is better/a benefit gives ``(control, intervention)``; one that says it is
    worse/a harm gives ``(intervention, control)``. An undeclared or other direction is neutral.
    """
    if given:
        left, right = (str(x) for x in given)
        return left, right
    if not declared or not direction:
        return None
    # the words after "positive =" up to a parenthesis (which may name the sign flip of
    # higher-is-worse scales)
    words = direction.lower().split("=", 1)[-1].split("(", 1)[0]
    good = any(w in words for w in ("better", "benefit", "improve"))
    bad = any(w in words for w in ("worse", "harm"))
    if good and not bad:
        return "control", "intervention"
    if bad and not good:
        return "intervention", "control"
    return None


def _num3(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return f"{v:.3f}" if np.isfinite(v) else "n/a"


def _p(p: Any) -> str:
    try:
        v = float(p)
    except (TypeError, ValueError):
        return "p = n/a"
    return "p < .001" if v < 0.001 else "p = " + f"{v:.3f}".lstrip("0")


def heterogeneity_text(overall: Mapping, level_labels: Mapping[str, str] | None = None) -> str:
    """The heterogeneity line under the pooled effect, from ``models/overall.json``.

    ``tau^2`` (``sigma2``) per level, :math:`I^2` in total and per level
    (``variance_distribution``) and the Q test of residual heterogeneity (``heterogeneity``):
    e.g. ``Heterogeneity: τ² study 0.041, effect size 0.009; I² = 70.1% (study 57.4%,
    effect size 12.6%); Q(130) = 462.06, p < .001``. Parts the JSON lacks are left out.
    """
    names = dict(level_labels or {})
    parts = []
    sigma2 = overall.get("sigma2") or {}
    if sigma2:
        parts.append(
            "τ² "
            + ", ".join(f"{names.get(lev, lev).lower()} {_num3(v)}" for lev, v in sigma2.items())
        )
    elif (overall.get("tau2")) is not None:
        parts.append(f"τ² = {_num3(overall['tau2'])}")
    vd = overall.get("variance_distribution") or {}
    if vd.get("i2_total") is not None:
        by = vd.get("i2") or {}
        each = ", ".join(f"{names.get(lev, lev).lower()} {float(v):.1f}%" for lev, v in by.items())
        parts.append(f"I² = {float(vd['i2_total']):.1f}%" + (f" ({each})" if len(by) > 1 else ""))
    het = overall.get("heterogeneity") or {}
    if het.get("QE") is not None:
        df = het.get("QE_df")
        df_text = f"{float(df):g}" if df is not None else "?"
        parts.append(f"Q({df_text}) = {float(het['QE']):.2f}, {_p(het.get('QEp'))}")
    return ("Heterogeneity: " + "; ".join(parts)) if parts else ""


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
    rows: str = "study",
    weights: Mapping[str, float] | None = None,
) -> tuple[list[ForestRow], str]:
    """The rows of the forest plot, top to bottom, and the study order used.

    ``effects`` has one row per effect size with ``study``, ``es``, ``yi`` and ``vi``;
    ``study_effects`` is the table ``study_effects`` (machine keys) of
    ``models/components.json``; ``overall`` is ``models/overall.json``. ``rows`` is
    ``"study"`` (one row per study) or ``"effect_size"`` (each study's row followed by its effect
    sizes); ``weights`` (study key -> percent, :func:`study_weights`) fill the study rows' weight.
    """
    if rows not in ROW_KINDS:
        raise ValueError(f"figures.forest_rows must be one of {ROW_KINDS}, got {rows!r}")
    labels = dict(labels or {})
    weights = dict(weights or {})
    level = float((overall.get("estimate") or {}).get("level") or 0.95)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    order, used = study_order(study_effects, sort, years)
    by_study = study_effects.assign(_key=study_effects[STUDY].astype(str)).set_index("_key")
    eff = effects.assign(_key=effects[study].astype(str), _es=effects[es].astype(str))
    out: list[ForestRow] = []
    for block, key in enumerate(order):
        s = by_study.loc[key]
        k = int(s[K]) if pd.notna(s[K]) else 0
        label = f"{labels.get(key, key)} (k = {k})"
        weight = float(weights.get(key, np.nan))
        out.append(_row("study", label, s, LO, HI, se=float(s[SE]), block=block, weight=weight))
        if rows == "study":
            continue
        own = eff[eff["_key"] == key]
        own = own.iloc[sorted(range(len(own)), key=lambda i: natural_key(own["_es"].iat[i]))]
        for _, r in own.iterrows():
            se = float(np.sqrt(r["vi"]))
            y = float(r["yi"])
            name = str(r["_es"])
            name = f"ES {name}" if name.isdigit() else name  # a bare number reads as a value
            out.append(ForestRow("effect", name, y, y - z * se, y + z * se, se, block))
    est = overall.get("estimate") or {}
    if overall.get("estimable", True) and est.get("estimate") is not None:
        se = float(est.get("se") or np.nan)
        total = 100.0 if weights else float("nan")
        out.append(_row("pooled", "Pooled effect", est, "ci_lb", "ci_ub", se=se, weight=total))
        if est.get("pi_lb") is not None and est.get("pi_ub") is not None:
            out.append(_row("pi", "Prediction interval", est, "pi_lb", "pi_ub"))
    return out, used


def forest_pages(rows: Sequence[ForestRow], max_rows: int = MAX_ROWS) -> list[list[ForestRow]]:
    """``rows`` split into pages of at most ``max_rows`` study and effect-size rows.

    A page ends at a study's last row where possible (a study longer than a page is split); the
    pooled rows go on the last page. One page when everything fits.
    """
    if max_rows < 1:
        raise ValueError(f"figures.forest_max_rows must be at least 1, got {max_rows}")
    body = [r for r in rows if r.kind in ("study", "effect")]
    tail = [r for r in rows if r.kind not in ("study", "effect")]
    pages: list[list[ForestRow]] = [[]]
    blocks: list[list[ForestRow]] = []
    for r in body:
        if r.kind == "study" or not blocks:
            blocks.append([])
        blocks[-1].append(r)
    for block in blocks:
        if pages[-1] and len(pages[-1]) + len(block) > max_rows:
            pages.append([])
        for r in block:
            if len(pages[-1]) >= max_rows:
                pages.append([])
            pages[-1].append(r)
    pages[-1].extend(tail)
    return pages


def _num(x: float) -> str:
    """Two decimals, without a minus sign on a value that rounds to zero."""
    text = f"{x:.2f}"
    return text[1:] if text in ("-0.00",) else text


def _fmt(est: float, lo: float, hi: float) -> str:
    return f"{_num(est)} [{_num(lo)}, {_num(hi)}]"


def _weight(w: float) -> str:
    return f"{w:.1f}%" if np.isfinite(w) else ""


def forest_plot(
    rows: list[ForestRow],
    *,
    title: str = "Forest plot",
    xlabel: str = "Hedges' g",
    level: float = 0.95,
    symbol: str = "g",
    null: float = 0.0,
    back_scale: BackScale | None = None,
    heterogeneity: str = "",
    favours: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
) -> Figure:
    """Draw :func:`forest_rows` (or one page of :func:`forest_pages`); the height grows with the
    number of rows.

    ``xlabel`` titles the axis of the analysis scale and ``symbol`` the column of numbers; the
    reference line is at ``null``. With ``back_scale`` the axis at the top shows the
    back-transformed scale (odds ratio, correlation, ...) at the same positions.
    ``heterogeneity`` is written under the pooled rows (:func:`heterogeneity_text`), ``favours``
    (left, right) under the axis either side of the null; a weight column is drawn when any
    row has a weight. ``xlim`` fixes the axis (the same on every page).
    """
    from matplotlib.patches import Polygon

    n = len(rows)
    pct = f"{100 * level:g}%"
    het_lines = style.wrap_parts(heterogeneity, 78) if heterogeneity else []
    with style.style():
        fig = style.figure(
            style.FULL_WIDTH,
            style.rows_height(
                n + 2 + len(het_lines),
                per_row=ROW_HEIGHT,
                fixed=FIXED_HEIGHT + (0.2 if favours else 0.0),
                minimum=3.0,
            ),
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
        weights = np.array([r.weight for r in rows])
        has_effects = bool((kinds == "effect").any())

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
                tick.set_fontweight("bold" if has_effects or r.kind != "study" else "normal")
        ax.tick_params(axis="y", length=0, pad=4)
        show_weights = bool(np.isfinite(weights).any())
        for yy, r in zip(y, rows, strict=True):
            text = (
                f"[{_num(r.lower)}, {_num(r.upper)}]"
                if r.kind == "pi"
                else _fmt(r.estimate, r.lower, r.upper)
            )
            bold = r.kind in ("pooled", "pi") or (has_effects and r.kind == "study")
            small = r.kind == "effect"
            font = {
                "fontsize": 6.5 if small else 7.5,
                "fontweight": "bold" if bold else "normal",
                "color": style.GREY if small else style.BLACK,
            }
            style.margin_text(ax, yy, text, x=NUMBERS_X if show_weights else 1.02, **font)
            if show_weights and np.isfinite(r.weight):
                style.margin_text(ax, yy, _weight(r.weight), x=WEIGHT_X, ha="right", **font)
        style.margin_header(ax, f"{symbol} [{pct} CI]", x=NUMBERS_X if show_weights else 1.02)
        if show_weights:
            ax.text(
                WEIGHT_X,
                1.0,
                "Weight",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
                fontweight="bold",
            )
        if het_lines:
            ybase = y.min() - 1.0
            for j, line in enumerate(het_lines):
                ax.text(
                    0.01,
                    ybase - j,
                    line,
                    transform=_blended(ax),
                    ha="left",
                    va="center",
                    fontsize=7,
                    color="#333333",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
                    zorder=4,
                )
        if xlim is None:
            finite = np.isfinite(lo) & np.isfinite(hi)
            xmin = float(np.min(lo[finite], initial=-1.0))
            xmax = float(np.max(hi[finite], initial=1.0))
            xmin, xmax = min(xmin, null), max(xmax, null)
            pad = 0.03 * (xmax - xmin or 1.0)
            xlim = (xmin - pad, xmax + pad)
        ax.set_xlim(*xlim)
        ax.set_ylim(y.min() - 0.8 - len(het_lines), 0.8)
        ax.set_xlabel(xlabel, labelpad=18 if favours else 4)
        if favours:
            _favours(ax, null, favours)
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

        handles = []
        if has_effects:
            handles.append(
                style.legend_entry(
                    f"Effect size ({pct} CI)", color=style.BLUE, marker="o", ms=5, lw=0.7
                )
            )
        if (kinds == "study").any():
            handles.append(
                style.legend_entry(
                    f"Study estimate ({pct} CI)", color=style.BLACK, marker="s", ms=5, lw=1.3
                )
            )
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
            "Marker area grows with precision (1/SE)."
            + (" Weight: the study's share of the pooled estimate." if show_weights else ""),
            fontsize=7,
            color=style.GREY,
            va="bottom",
        )
    return fig


#: where the weight column ends and the numbers column starts (axes fractions)
WEIGHT_X, NUMBERS_X = 1.12, 1.15


def _blended(ax):
    """x in axes fractions, y in data units."""
    from matplotlib.transforms import blended_transform_factory

    return blended_transform_factory(ax.transAxes, ax.transData)


def _favours(ax, null: float, favours: tuple[str, str]) -> None:
    """ "Favours <left>" and "Favours <right>" under the axis, either side of the null line."""
    from matplotlib.transforms import blended_transform_factory

    at = blended_transform_factory(ax.transData, ax.transAxes)
    left, right = favours
    for text, ha, dx in ((f"← Favours {left}", "right", -4), (f"Favours {right} →", "left", 4)):
        ax.annotate(
            text,
            xy=(null, 0.0),
            xycoords=at,
            xytext=(dx, -22),
            textcoords="offset points",
            ha=ha,
            va="top",
            fontsize=7.5,
            color="#333333",
            annotation_clip=False,
        )
