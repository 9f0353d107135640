"""plots.style.save lays a figure out once (:func:`~intervention_meta.plots.style.lay_out`: the
layout engine alone, at the PNG's resolution) instead of through savefig's draw with drawing
switched off: the files must be those of matplotlib's own path, pixel for pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from intervention_meta.plots import style


def _constrained_rows() -> object:
    """Two axes sharing y (a label matrix beside a plot), wrapped tick labels, a subtitle, a
    figure legend outside below: the shape of the orchard and component figures."""
    with style.style():
        fig = style.figure(style.FULL_WIDTH, 3.4)
        gs = fig.add_gridspec(1, 2, width_ratios=[1.3, 4.0])
        left = fig.add_subplot(gs[0, 0])
        ax = fig.add_subplot(gs[0, 1], sharey=left)
        y = -np.arange(4.0)
        left.scatter(np.zeros(4), y, s=20)
        left.set_xticks([0.0], ["a long\nwrapped label"], rotation=90)
        ax.scatter(np.linspace(-1, 2, 4), y, s=[10, 30, 50, 70], alpha=0.5)
        ax.hlines(y, -0.5, 1.5, lw=3)
        ax.set_yticks(y, [f"row {i}\nsecond line" for i in range(4)])
        style.margin_text(ax, y[0], "k = 4\n2 studies", x=1.01, fontsize=7.5)
        style.title_block(ax, "A title that is long enough to wrap " * 2, "subtitle; more; more")
        handles = [style.legend_entry(f"entry {i}", marker="o", ls="") for i in range(5)]
        fig.legend(handles=handles, loc="outside lower center", ncols=4)
        style.footnote(ax, "a note under the axes")
    return fig


def _plain() -> object:
    """No layout engine: positions as given."""
    with style.style():
        fig = style.figure(style.COLUMN_WIDTH, 2.5, layout=None)
        ax = fig.add_axes((0.15, 0.2, 0.8, 0.7))
        ax.plot([0, 1, 2], [1, 0, 2])
        ax.set_title("plain")
    return fig


def _no_axes() -> object:
    """Constrained layout but only figure text (nothing to lay out)."""
    with style.style():
        fig = style.figure(style.COLUMN_WIDTH, 1.5)
        fig.text(0.1, 0.5, "only text")
    return fig


@pytest.mark.parametrize("make", [_constrained_rows, _plain, _no_axes, style.placeholder])
def test_save_draws_the_pixels_and_positions_of_savefig(make, tmp_path):
    args = ("Nothing here", "no data") if make is style.placeholder else ()
    expected_fig = make(*args)
    buffer = io.BytesIO()
    expected_fig.savefig(buffer, format="png", dpi=style.DPI)  # matplotlib's own layout pass
    expected_positions = [a.get_position().bounds for a in expected_fig.axes]
    expected = np.asarray(Image.open(buffer))

    fig = make(*args)
    png, pdf, svg = style.save(fig, tmp_path / "figure")
    assert [a.get_position().bounds for a in fig.axes] == expected_positions
    assert fig.get_layout_engine() is None  # the PDF and SVG keep the PNG's layout
    got = np.asarray(Image.open(png))
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert pdf.stat().st_size > 0 and svg.stat().st_size > 0
