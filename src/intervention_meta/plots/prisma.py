"""The PRISMA 2020 flow diagram, joined with the pipeline's own counts.

The boxes follow the PRISMA 2020 template for new reviews (Page et al. 2021, figure 1):
identification (records per source; records removed before screening), screening (records
screened and excluded; reports sought and not retrieved; reports assessed and excluded with
their reasons), included (studies and their reports). Below them the pipeline's part of the
flow: the effect sizes coded from the included studies, those kept by the analysis's inclusion
criteria, those with a computable effect size, and those analysed. Each phase has its band on
the left; what leaves the flow goes right. Every number comes from ``prisma/flow.json``
(:class:`~intervention_meta.outputs.prisma.PrismaFlow`); without a counts file only the
pipeline's part is drawn, and the figure says so.

References
----------
Page, M. J., McKenzie, J. E., Bossuyt, P. M., et al. (2021). The PRISMA 2020 statement: an
updated guideline for reporting systematic reviews. *BMJ*, 372, n71.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from intervention_meta.plots import style
from intervention_meta.plots.labels import wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PrismaBox", "prisma_boxes", "prisma_diagram"]

SOURCE_NAMES = {
    "databases": "Databases",
    "registers": "Registers",
    "other_sources": "Other sources",
}
REMOVAL_NAMES = {
    "duplicates": "Duplicate records",
    "automation": "Marked as ineligible by automation tools",
    "other": "Removed for other reasons",
}
#: phase -> band colour
PHASES = {
    "Identification": "#D6E6F2",
    "Screening": "#D6E6F2",
    "Included": "#D6E6F2",
    "Analysis": "#E4F1E4",
}


@dataclass(frozen=True)
class PrismaBox:
    """One row of the diagram: the box on the flow (``text``), the box of what left it there
    (``side``, or None) and the phase it belongs to."""

    phase: str
    text: str
    side: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "text": self.text, "side": self.side}


def _n(value: Any) -> str:
    return "?" if value is None else f"{int(value):,}"


def _lines(head: str, items: Mapping[str, Any], width: int = 50) -> str:
    """``head`` and one line per item, ``name (n = count)``, wrapped but never inside the
    count (no-break spaces)."""
    body = [
        wrap(f"{name} (n\u00a0=\u00a0{_n(n)})", width).replace("\n", "\n   ")
        for name, n in items.items()
    ]
    return "\n".join([head, *body])


def prisma_boxes(flow: Mapping[str, Any]) -> list[PrismaBox]:
    """The rows of the diagram from the joined flow (``prisma/flow.json``)."""
    c, p = flow.get("counts"), flow.get("pipeline") or {}
    boxes = []
    if c:
        detail = c.get("identified_detail") or {}
        found = []
        for source, n in (c.get("identified") or {}).items():
            found.append(f"{SOURCE_NAMES.get(source, source)} (n = {_n(n)})")
            found += [f"   {name} (n = {_n(k)})" for name, k in (detail.get(source) or {}).items()]
        removed = {REMOVAL_NAMES.get(k, k): n for k, n in (c.get("removed") or {}).items()}
        boxes += [
            PrismaBox(
                "Identification",
                "\n".join(["Records identified from:", *found]),
                _lines("Records removed before screening:", removed),
            ),
            PrismaBox(
                "Screening",
                f"Records screened\n(n = {_n(c.get('screened'))})",
                f"Records excluded\n(n = {_n(c.get('records_excluded'))})",
            ),
            PrismaBox(
                "Screening",
                f"Reports sought for retrieval\n(n = {_n(c.get('reports_sought'))})",
                f"Reports not retrieved\n(n = {_n(c.get('reports_not_retrieved'))})",
            ),
            PrismaBox(
                "Screening",
                f"Reports assessed for eligibility\n(n = {_n(c.get('reports_assessed'))})",
                _lines(
                    f"Reports excluded (n = {_n(c.get('n_reports_excluded'))}):",
                    c.get("reports_excluded") or {},
                ),
            ),
        ]
        included = [
            f"Studies included in review (n = {_n(c.get('studies_included'))})",
            f"Reports of included studies (n = {_n(c.get('reports_included'))})",
        ]
        if p.get("studies_coded") != c.get("studies_included"):
            included.append(f"Studies coded in the data (n = {_n(p.get('studies_coded'))})")
    else:
        included = [f"Studies coded (n = {_n(p.get('studies_coded'))})"]
    included.append(f"Effect sizes coded (n = {_n(p.get('effect_sizes_coded'))})")
    criteria = _lines(
        "Excluded by the inclusion criteria of the analysis:\n"
        f"effect sizes (n = {_n(p.get('effect_sizes_excluded_by_criteria'))}), "
        f"studies (n = {_n(p.get('studies_excluded_by_criteria'))})",
        p.get("excluded_by_reason") or {},
    )
    boxes += [
        PrismaBox("Included", "\n".join(included), criteria),
        PrismaBox(
            "Analysis",
            f"Effect sizes meeting the inclusion criteria\n"
            f"(n = {_n(p.get('effect_sizes_after_criteria'))}; "
            f"studies n = {_n(p.get('studies_after_criteria'))})",
            f"No effect size computable\n(n = {_n(p.get('effect_sizes_not_computable'))})",
        ),
        PrismaBox(
            "Analysis",
            "Included in the meta-analysis:\n"
            f"effect sizes (n = {_n(p.get('effect_sizes_analysed'))}) from "
            f"studies (n = {_n(p.get('studies_analysed'))})",
        ),
    ]
    return boxes


def prisma_diagram(
    boxes: list[PrismaBox], *, title: str = "PRISMA 2020 flow diagram", note: str = ""
) -> Figure:
    """Boxes and arrows: the flow top to bottom in the middle column, what leaves it to the
    right, the phases as bands on the left; as tall as its content (sizes measured in inches)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    pad, gap, band = 0.1, 0.32, 0.28
    main_x, main_w = 0.12 + band + 0.15, 3.05
    side_x = main_x + main_w + 0.4
    side_w = style.FULL_WIDTH - side_x - 0.1
    with style.style():
        fig = style.figure(style.FULL_WIDTH, 4.0, layout=None)
        renderer = fig.canvas.get_renderer()
        inch = fig.dpi_scale_trans

        def place(s: str, size: float) -> tuple[Any, float]:
            t = fig.text(0, 0, s, fontsize=size, ha="left", va="center", transform=inch)
            t.set_linespacing(1.3)
            return t, t.get_window_extent(renderer).height / fig.dpi

        mains = [place(b.text, 8) for b in boxes]
        sides = [place(b.side, 7.5) if b.side else None for b in boxes]
        heights = [
            max(h, s[1] if s else 0.0) + 2 * pad for (_, h), s in zip(mains, sides, strict=True)
        ]
        top = 0.45 + (0.25 if note else 0.0)
        height = top + sum(heights) + gap * (len(boxes) - 1) + 0.15
        fig.set_size_inches(style.FULL_WIDTH, height)

        def box(x: float, cy: float, w: float, h: float, fc: str, ec: str) -> None:
            fig.add_artist(
                FancyBboxPatch(
                    (x, cy - h / 2),
                    w,
                    h,
                    boxstyle="square,pad=0",
                    fc=fc,
                    ec=ec,
                    lw=1.0,
                    transform=inch,
                )
            )

        def arrow(a: tuple[float, float], b: tuple[float, float]) -> None:
            fig.add_artist(
                FancyArrowPatch(
                    a,
                    b,
                    arrowstyle="-|>",
                    mutation_scale=9,
                    lw=1.0,
                    color=style.BLACK,
                    transform=inch,
                )
            )

        y = height - top
        spans: dict[str, list[float]] = {}
        previous_bottom = None
        for b, (t, h), side, row_h in zip(boxes, mains, sides, heights, strict=True):
            cy = y - row_h / 2
            box_h = h + 2 * pad
            box(main_x, cy, main_w, box_h, "white", style.BLACK)
            t.set_position((main_x + pad, cy))
            if previous_bottom is not None:
                arrow((main_x + main_w / 2, previous_bottom), (main_x + main_w / 2, cy + box_h / 2))
            if side is not None:
                st, sh = side
                box(side_x, cy, side_w, sh + 2 * pad, "#F7F7F7", style.GREY)
                st.set_position((side_x + pad, cy))
                arrow((main_x + main_w, cy), (side_x, cy))
            span = spans.setdefault(b.phase, [y, y - row_h])
            span[1] = y - row_h
            previous_bottom = cy - box_h / 2
            y -= row_h + gap
        for phase, (hi, lo) in spans.items():
            fig.add_artist(
                Rectangle(
                    (0.12, lo),
                    band,
                    hi - lo,
                    fc=PHASES.get(phase, style.LIGHT_GREY),
                    ec="none",
                    transform=inch,
                )
            )
            label = fig.text(
                0.12 + band / 2,
                (hi + lo) / 2,
                phase,
                rotation=90,
                ha="center",
                va="center",
                fontsize=8.5,
                fontweight="bold",
                transform=inch,
            )
            long = label.get_window_extent(renderer).height / fig.dpi
            if long > hi - lo - 0.1:  # a short band: the label shrinks to fit it
                label.set_fontsize(max(6.0, 8.5 * (hi - lo - 0.1) / long))
        fig.suptitle(
            title,
            x=0.12 / style.FULL_WIDTH,
            y=1 - 0.12 / height,
            ha="left",
            va="top",
            fontsize=10,
            fontweight="bold",
        )
        if note:
            fig.text(
                0.12,
                height - 0.4,
                note,
                ha="left",
                va="top",
                fontsize=7.5,
                style="italic",
                color=style.GREY,
                transform=inch,
            )
    return fig
