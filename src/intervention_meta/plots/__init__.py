"""Figures of the meta-analysis, drawn from what the analysis steps wrote.

One module per figure type (:mod:`.forest`, :mod:`.funnel`, :mod:`.orchard`, :mod:`.bubble`,
:mod:`.variance`, :mod:`.leave_one_out`, :mod:`.flow`), each a function from DataFrames / parsed
JSON to a matplotlib figure; :mod:`.style` holds the one palette, the fonts and :func:`.style.save`;
:mod:`.figures` is the step rule ``figures`` calls (:func:`.figures.run_figures`: the steps' JSON
in, every figure of an analysis as PNG + PDF and the manifest ``figures/figures.json`` out, in one
process). Matplotlib is imported only when a figure is drawn.
"""

from intervention_meta.plots.figures import SECTIONS, FigureInfo, run_figures, write_manifest

__all__ = ["SECTIONS", "FigureInfo", "run_figures", "write_manifest"]
