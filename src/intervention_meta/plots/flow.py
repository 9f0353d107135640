"""Data-flow diagram (PRISMA-style) from the coded rows to the effect sizes analysed.

Boxes on the left follow the rows through the pipeline: coded and validated, kept by the inclusion
criteria (the data job's clean step), turned into effect sizes (its effect-size step), analysed
(rule overall). Boxes on the right hold the rows dropped at each step with their reasons and
counts, as the steps wrote them (``clean/summary.json``: ``dropped_by_reason``;
``effect_sizes_summary.json``: rows dropped per reported statistic). Every number is read from
those files.

References
----------
Page, M. J., McKenzie, J. E., Bossuyt, P. M., et al. (2021). The PRISMA 2020 statement: an
updated guideline for reporting systematic reviews. *BMJ*, 372, n71.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from intervention_meta.outputs.labels import measure_labels
from intervention_meta.plots import style
from intervention_meta.plots.labels import wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["FlowStep", "flow_diagram", "flow_steps"]


@dataclass(frozen=True)
class FlowStep:
    """A box on the main path (``text``) and, optionally, the box of rows dropped after it."""

    text: str
    dropped: str | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "dropped": self.dropped}


def _reasons(by_reason: Mapping[str, int], limit: int = 8, width: int = 48) -> list[str]:
    items = sorted(by_reason.items(), key=lambda kv: -int(kv[1]))
    lines = [wrap(f"- {why}: {int(n)}", width).replace("\n", "\n   ") for why, n in items[:limit]]
    if len(items) > limit:
        rest = sum(int(n) for _, n in items[limit:])
        lines.append(f"- {len(items) - limit} other reasons: {rest}")
    return lines


def flow_steps(
    clean: Mapping,
    effect_sizes: Mapping,
    overall: Mapping | None = None,
    validation: Mapping[str, int] | None = None,
    es_input_labels: Mapping[str, str] | None = None,
) -> list[FlowStep]:
    """The boxes of the diagram from the steps' summaries.

    Parameters
    ----------
    clean : ``clean/summary.json``.
    effect_sizes : ``effect_sizes_summary.json``.
    overall : ``models/overall.json`` (the numbers analysed), or None.
    validation : problems found by ``validate`` by severity (e.g. ``{"warning": 33}``), or None.
    es_input_labels : labels of the reported-statistic codes (from the codebook).
    """
    labels = dict(es_input_labels or {})
    v = dict(validation or {})
    val = ""
    if validation is not None:
        n_err, n_warn = int(v.get("error", 0)), int(v.get("warning", 0))
        val = f"\nvalidated against the codebook: {n_err} errors, {n_warn} warnings"
    steps = [
        FlowStep(
            f"Coded data\n{clean.get('rows_in', '?')} effect-size rows in "
            f"{clean.get('studies_in', '?')} studies{val}",
            None,
        )
    ]
    n_drop = int(clean.get("dropped", 0) or 0)
    drop_text = f"Excluded by the inclusion criteria: {n_drop} rows"
    if n_drop:
        drop_text += "\n" + "\n".join(_reasons(clean.get("dropped_by_reason") or {}))
    steps[-1] = FlowStep(steps[-1].text, drop_text)
    steps.append(
        FlowStep(
            f"Included\n{clean.get('kept', '?')} rows in {clean.get('studies_kept', '?')} studies",
            None,
        )
    )
    n_es_drop = int(effect_sizes.get("dropped", 0) or 0)
    es_text = f"No effect size computable: {n_es_drop} rows"
    if n_es_drop:
        by_input = {
            f"{labels.get(code, code)}": int(c.get("dropped", 0))
            for code, c in (effect_sizes.get("by_es_input") or {}).items()
            if int(c.get("dropped", 0) or 0) > 0
        }
        es_text += (
            "\nby reported statistic (the reason of each row\nis in effect_sizes_dropped.csv):\n"
        )
        es_text += "\n".join(_reasons(by_input))
    steps[-1] = FlowStep(steps[-1].text, es_text)
    steps.append(
        FlowStep(
            f"Effect sizes computed ({measure_labels(effect_sizes).axis_title})\n"
            f"{effect_sizes.get('computed', '?')} rows"
        )
    )
    if overall is not None:
        a = overall.get("analysis") or {}
        text = f"Analysed\n{a.get('k', '?')} effect sizes in {a.get('n_studies', '?')} studies"
        if not overall.get("estimable", True):
            text += f"\n(model not estimable: {overall.get('reason')})"
        steps.append(FlowStep(text))
    return steps


def flow_diagram(
    steps: list[FlowStep], *, title: str = "From coded rows to effect sizes"
) -> Figure:
    """Boxes and arrows: the main path top to bottom, the rows dropped after a step to its right.

    The layout is computed in inches from the measured text sizes, so boxes never overlap and
    the figure is as tall as its content.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    pad = 0.12  # inches between text and box edge
    with style.style():
        fig = style.figure(style.FULL_WIDTH, 4.0, layout=None)
        renderer = fig.canvas.get_renderer()
        inch = fig.dpi_scale_trans

        def text(s: str, size: float, align: str = "center") -> tuple[Any, float, float]:
            t = fig.text(
                0,
                0,
                s,
                fontsize=size,
                ha="center",
                va="center",
                linespacing=1.35,
                multialignment=align,
                transform=inch,
            )
            bb = t.get_window_extent(renderer)
            return t, bb.width / fig.dpi, bb.height / fig.dpi

        mains = [text(s.text, 8.5) for s in steps]
        sides = [
            text(s.dropped, 7.5, "left") if s.dropped and i + 1 < len(steps) else None
            for i, s in enumerate(steps)
        ]
        main_w = max(w for _, w, _ in mains) + 2 * pad
        main_x = 0.15 + main_w / 2
        side_left = main_x + main_w / 2 + 0.55
        gaps = []
        for side in sides[:-1]:
            gaps.append(max(0.45, (side[2] + 2 * pad + 0.3) if side else 0.45))
        top = 0.5  # room for the title
        height = top + sum(h + 2 * pad for _, _, h in mains) + sum(gaps) + 0.15
        fig.set_size_inches(style.FULL_WIDTH, height)
        y = height - top
        centres = []
        for i, (t, _, h) in enumerate(mains):
            box_h = h + 2 * pad
            cy = y - box_h / 2
            t.set_position((main_x, cy))
            corner = (main_x - main_w / 2, cy - box_h / 2)
            fig.add_artist(
                FancyBboxPatch(
                    corner,
                    main_w,
                    box_h,
                    fc="#EAF3FA",
                    ec=style.BLUE,
                    boxstyle="round,pad=0,rounding_size=0.06",
                    lw=1.2,
                    transform=inch,
                )
            )
            centres.append((cy, box_h))
            y -= box_h + (gaps[i] if i < len(gaps) else 0)
        for i in range(len(mains) - 1):
            (cy0, h0), (cy1, h1) = centres[i], centres[i + 1]
            fig.add_artist(
                FancyArrowPatch(
                    (main_x, cy0 - h0 / 2),
                    (main_x, cy1 + h1 / 2),
                    arrowstyle="-|>",
                    mutation_scale=10,
                    lw=1.1,
                    color=style.BLACK,
                    transform=inch,
                )
            )
            side = sides[i]
            if side is None:
                continue
            t, w, h = side
            mid = (cy0 - h0 / 2 + cy1 + h1 / 2) / 2
            box_w, box_h = w + 2 * pad, h + 2 * pad
            t.set_position((side_left + box_w / 2, mid))
            fig.add_artist(
                FancyBboxPatch(
                    (side_left, mid - box_h / 2),
                    box_w,
                    box_h,
                    boxstyle="round,pad=0,rounding_size=0.06",
                    fc="#FBEDE3",
                    ec=style.VERMILLION,
                    lw=1.0,
                    transform=inch,
                )
            )
            fig.add_artist(
                FancyArrowPatch(
                    (main_x, mid),
                    (side_left, mid),
                    arrowstyle="-|>",
                    mutation_scale=10,
                    lw=1.1,
                    color=style.BLACK,
                    transform=inch,
                )
            )
        fig.text(
            0.1,
            height - 0.12,
            title,
            ha="left",
            va="top",
            fontsize=10,
            fontweight="bold",
            transform=inch,
        )
    return fig
