"""One look for every figure: a colour-blind-safe palette, print-size fonts, and :func:`save`.

The palette is Okabe & Ito's (2008) eight colours, chosen to stay distinguishable for people with
protanopia, deuteranopia and tritanopia; categories cycle through :data:`CATEGORY_COLOURS` (the
yellow is left out of it: too light for points on white). Greys mark reference elements (zero
lines, contour regions) so that colour always means data.

Sizes are in inches and points for print: a figure is drawn at the width it will have on the page
(:data:`FULL_WIDTH` for a two-column page, :data:`COLUMN_WIDTH` for one column), so 8-9 pt text
prints at 8-9 pt. Figures whose rows grow with the data take their height from :func:`rows_height`.

References
----------
Okabe, M., & Ito, K. (2008). *Color universal design (CUD): How to make figures and
presentations that are friendly to colorblind people*. https://jfly.uni-koeln.de/color/
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from numpy.typing import ArrayLike

log = logging.getLogger(__name__)


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display), imported when a figure
    is drawn: importing the plots costs nothing until then."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_all(
    tasks: Sequence[tuple[Callable[..., Any], tuple, dict]],
    workers: int = 1,
    *,
    first: Mapping[Callable[..., Any], int] | None = None,
    preload: Sequence[str] = (),
) -> list[Any]:
    """Run the figure ``tasks`` (function, positional and keyword arguments) and return their
    results in the tasks' order: in this process, or with ``workers`` > 1 in that many processes
    forked from it (on Linux).

    Before forking, pyplot, the PNG, PDF and SVG backends and the ``preload`` modules (those the
    figures import when drawn) are imported here once, so that the workers share them instead of
    each importing them again. ``first`` ranks the tasks' functions (lower starts first; a
    function it does not name ranks 0), so that the largest figures start first and no worker
    is left with a long one at the end.
    """
    if workers <= 1 or len(tasks) <= 1:
        return [f(*args, **kwargs) for f, args, kwargs in tasks]
    import importlib
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    pyplot()
    for module in (
        "matplotlib.backends.backend_agg",
        "matplotlib.backends.backend_pdf",
        "matplotlib.backends.backend_svg",
        *preload,
    ):
        importlib.import_module(module)
    order = range(len(tasks))
    if first is not None:
        order = sorted(order, key=lambda j: first.get(tasks[j][0], 0))
    fork = multiprocessing.get_context("fork") if sys.platform == "linux" else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=fork) as pool:
        futures = {j: pool.submit(tasks[j][0], *tasks[j][1], **tasks[j][2]) for j in order}
        return [futures[j].result() for j in range(len(tasks))]


__all__ = [
    "BLACK",
    "BLUE",
    "BLUISH_GREEN",
    "CATEGORY_COLOURS",
    "COLUMN_WIDTH",
    "DPI",
    "FULL_WIDTH",
    "GREY",
    "LIGHT_GREY",
    "OKABE_ITO",
    "ORANGE",
    "REDDISH_PURPLE",
    "SKY_BLUE",
    "VERMILLION",
    "YELLOW",
    "category_colour",
    "draw_all",
    "figure",
    "footnote",
    "placeholder",
    "rows_height",
    "save",
    "style",
    "title_block",
    "wrap_parts",
]

#: Okabe & Ito's (2008) colour-blind-safe palette, by name
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
BLACK = OKABE_ITO["black"]
ORANGE = OKABE_ITO["orange"]
SKY_BLUE = OKABE_ITO["sky_blue"]
BLUISH_GREEN = OKABE_ITO["bluish_green"]
YELLOW = OKABE_ITO["yellow"]
BLUE = OKABE_ITO["blue"]
VERMILLION = OKABE_ITO["vermillion"]
REDDISH_PURPLE = OKABE_ITO["reddish_purple"]

#: colours of groups (categories, profiles), in the order they are given out
CATEGORY_COLOURS: tuple[str, ...] = (
    BLUE,
    ORANGE,
    BLUISH_GREEN,
    VERMILLION,
    REDDISH_PURPLE,
    SKY_BLUE,
)

#: reference elements (zero line, axes of no interest)
GREY = "#6E6E6E"
LIGHT_GREY = "#D9D9D9"

#: width of a figure spanning a two-column page / one column (inches)
FULL_WIDTH = 7.2
COLUMN_WIDTH = 3.5
#: resolution of the PNG files: the screen copy (the report, slides); the PDF and the SVG are the
#: print files, vector graphics at any size. 200 dpi keeps 8 pt text sharp on a high-density screen
#: at a third of the drawing time of 300 dpi.
DPI = 200

#: matplotlib settings of every figure (fonts readable when printed at the figure's size)
RC: dict[str, object] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.2,
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,  # TrueType in the PDF: text stays text
    "figure.dpi": 100,
}


def category_colour(i: int) -> str:
    """The colour of the ``i``-th group (cycling through :data:`CATEGORY_COLOURS`)."""
    return CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)]


def rows_height(n_rows: int, *, per_row: float, fixed: float, minimum: float = 2.5) -> float:
    """Height (inches) of a figure with ``n_rows`` rows of ``per_row`` inches plus ``fixed``.

    Used by the figures whose rows are the data (forest, orchard, leave-one-out), so that 100 or
    more effect sizes keep a readable row height instead of being squeezed into a fixed page.
    """
    return max(minimum, fixed + per_row * max(n_rows, 1))


@contextmanager
def style() -> Iterator[None]:
    """Apply :data:`RC` for the figures made inside the block."""
    with pyplot().rc_context(RC):
        yield


def figure(width: float, height: float, **kwargs: object) -> Figure:
    """A new figure of ``width`` x ``height`` inches with constrained layout (call inside
    :func:`style`)."""
    kwargs.setdefault("layout", "constrained")
    return pyplot().figure(figsize=(width, height), **kwargs)


def title_block(
    ax: Axes,
    title: str,
    subtitle: str | None = None,
    *,
    width: int = 110,
    title_width: int = 60,
) -> None:
    """A bold left-aligned title (wrapped at ``title_width`` characters) with an optional smaller
    subtitle under it (wrapped at ``width`` characters, preferably at "; ")."""
    import textwrap

    lines = wrap_parts(subtitle, width) if subtitle else []
    title = "\n".join(textwrap.wrap(title, title_width)) or title
    ax.set_title(title, loc="left", pad=6 + 10.5 * len(lines))
    if lines:
        ax.annotate(
            "\n".join(lines),
            xy=(0, 1),
            xycoords="axes fraction",
            xytext=(0, 4),
            textcoords="offset points",
            fontsize=7.5,
            va="bottom",
            ha="left",
            color="#333333",
            linespacing=1.2,
        )


def wrap_parts(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken after "; " where possible."""
    lines: list[str] = []
    current = ""
    for part in text.split("; "):
        candidate = f"{current}; {part}" if current else part
        if len(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current + ";")
        while len(part) > width:  # a single part longer than a line: break at spaces
            cut = part.rfind(" ", 0, width)
            cut = cut if cut > 0 else width
            lines.append(part[:cut])
            part = part[cut:].lstrip()
        current = part
    if current:
        lines.append(current)
    return lines


def footnote(ax: Axes, text: str, *, width: int = 120) -> None:
    """Small grey text under the axes (inside the layout, above a figure legend below it)."""
    import textwrap

    lines = [line for para in text.split("\n") for line in textwrap.wrap(para, width)]
    ax.annotate(
        "\n".join(lines),
        xy=(0, 0),
        xycoords="axes fraction",
        xytext=(0, -34),
        textcoords="offset points",
        fontsize=7,
        va="top",
        ha="left",
        color=GREY,
    )


def margin_text(ax: Axes, y: float, text: str, *, x: float = 1.02, **kwargs: object) -> None:
    """``text`` right of the axes (``x`` in axes fractions) at the data height ``y``, left-aligned
    (unless ``ha`` says otherwise) and centred on the row: the numbers column of a forest-type
    plot."""
    from matplotlib.transforms import blended_transform_factory

    kwargs.setdefault("va", "center")
    kwargs.setdefault("ha", "left")
    right = blended_transform_factory(ax.transAxes, ax.transData)
    ax.text(x, y, text, transform=right, **kwargs)


def margin_header(ax: Axes, text: str, *, x: float = 1.02) -> None:
    """The bold header of the numbers column right of the axes (see :func:`margin_text`)."""
    ax.text(
        x, 1.0, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=8, fontweight="bold"
    )


def legend_entry(label: str, **kwargs: object) -> Line2D:
    """A legend handle: a line and/or marker with matplotlib's ``Line2D`` keywords."""
    from matplotlib.lines import Line2D

    return Line2D([], [], label=label, **kwargs)


def precision_sizes(precision: ArrayLike, smallest: float, largest: float) -> np.ndarray:
    """Marker areas (pt^2) growing linearly with ``precision`` (1/SE) between ``smallest`` and
    ``largest``; a missing or infinite precision gets ``smallest``."""
    import numpy as np

    prec = np.asarray(precision, dtype=float)
    finite = np.isfinite(prec)
    if not finite.any():
        return np.full(prec.shape, smallest)
    lo, hi = np.nanmin(prec[finite]), np.nanmax(prec[finite])
    scaled = (prec - lo) / (hi - lo) if hi > lo else np.full(prec.shape, 0.5)
    return np.where(finite, smallest + (largest - smallest) * scaled, smallest)


def placeholder(title: str, message: str) -> Figure:
    """A small figure saying why there is nothing to draw (the rule's output must still exist)."""
    with style():
        fig = figure(FULL_WIDTH, 2.0)
        ax = fig.add_subplot()
        ax.set_axis_off()
        title_block(ax, title)
        ax.text(0.0, 0.6, message, fontsize=9, color=GREY, transform=ax.transAxes)
    return fig


def lay_out(fig: Figure, dpi: float) -> None:
    """Place the axes of ``fig`` by its layout engine (if any) as ``savefig`` at ``dpi`` would,
    then switch the engine off, so that every file saved afterwards keeps these positions.

    ``savefig`` with a layout engine first draws the whole figure with drawing switched off (every
    artist's text layout, ticks and legends), only for the layout engine to run at its start; the
    engine alone gives the same positions, with the renderer ``savefig`` then draws the PNG with.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        return
    if fig.axes:  # as Figure.draw: a figure without axes has nothing to lay out
        screen_dpi = fig.dpi
        fig.dpi = dpi  # the renderer the layout measures text with is that of the saved file
        try:
            engine.execute(fig)
        finally:
            fig.dpi = screen_dpi
    fig.set_layout_engine(None)


def save(fig: Figure, stem: str | Path) -> tuple[Path, Path, Path]:
    """Write ``fig`` as ``<stem>.png`` (:data:`DPI`), ``<stem>.pdf`` and ``<stem>.svg``; close it;
    return the three paths.

    The figure is saved at its own size (no tight bounding box), so the PNG has
    ``width * DPI`` x ``height * DPI`` pixels and its resolution recorded in the file. The layout
    (constrained) is computed once, at the PNG's resolution (:func:`lay_out`), and the three files
    reuse it. The SVG keeps its text as text (``svg.fonttype: none``), in the one font family of
    :data:`RC`.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf, svg = (Path(f"{stem}.{ext}") for ext in ("png", "pdf", "svg"))
    import matplotlib

    meta = {"Software": f"intervention_meta (matplotlib {matplotlib.__version__})"}
    lay_out(fig, DPI)
    fig.savefig(png, dpi=DPI, metadata=meta)
    fig.savefig(pdf, metadata={"Creator": meta["Software"]})
    with pyplot().rc_context({"svg.fonttype": "none", "svg.hashsalt": "intervention_meta"}):
        fig.savefig(svg, metadata={"Creator": meta["Software"], "Date": None})
    pyplot().close(fig)
    log.info("figure written: %s (.png, .pdf, .svg)", stem)
    return png, pdf, svg
