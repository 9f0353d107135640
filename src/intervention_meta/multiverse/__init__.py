"""Multiverse (specification-curve) meta-analysis: every defensible specification, fitted.

:mod:`.specs` enumerates the specifications from the config alone, :mod:`.fit` fits them in
chunks (with the bootstrap under the null), :mod:`.curve` summarises the curve and tests it,
:mod:`.results` holds what the fits give, :mod:`.run` the two pipeline steps; the figure is
:func:`intervention_meta.plots.multiverse.specification_curve`.
"""

from typing import Any

from intervention_meta.multiverse.curve import BootstrapTest, CurveSummary, summarise
from intervention_meta.multiverse.results import ChunkResult, SpecFit
from intervention_meta.multiverse.specs import Multiverse, Spec, enumerate_specs

#: names of :mod:`.fit`, imported on first use: the fits need the model engine, the curve not
_FIT = ("FitSettings", "fit_chunk")


def __getattr__(name: str) -> Any:
    if name in _FIT:
        from intervention_meta.multiverse import fit

        return getattr(fit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
