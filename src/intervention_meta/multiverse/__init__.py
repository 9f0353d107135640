"""Multiverse (specification-curve) meta-analysis: every defensible specification, fitted.

:mod:`.specs` enumerates the specifications from the config alone, :mod:`.fit` fits them in
chunks (with the bootstrap under the null), :mod:`.curve` summarises the curve and tests it,
:mod:`.run` holds the two pipeline steps; the figure is
:func:`intervention_meta.plots.multiverse.specification_curve`.
"""

from intervention_meta.multiverse.curve import BootstrapTest, CurveSummary, summarise
from intervention_meta.multiverse.fit import ChunkResult, FitSettings, SpecFit, fit_chunk
from intervention_meta.multiverse.specs import Multiverse, Spec, enumerate_specs

__all__ = [
    "BootstrapTest",
    "ChunkResult",
    "CurveSummary",
    "FitSettings",
    "Multiverse",
    "Spec",
    "SpecFit",
    "enumerate_specs",
    "fit_chunk",
    "summarise",
]
