"""Figures of the meta-analysis, drawn from what the analysis steps wrote.

One module per figure type (:mod:`.forest`, :mod:`.funnel`, :mod:`.orchard`, :mod:`.bubble`,
:mod:`.variance`, :mod:`.leave_one_out`, :mod:`.flow`), each a function from DataFrames / parsed
JSON to a matplotlib figure; :mod:`.style` holds the one palette, the fonts and :func:`.style.save`;
:mod:`.figures` is the file-level step the Snakemake rules call (paths in, PNG + PDF + description
out) and writes the manifest ``figures/figures.json``.
"""

from intervention_meta.plots.figures import SECTIONS, FigureInfo, write_manifest

__all__ = ["SECTIONS", "FigureInfo", "write_manifest"]
