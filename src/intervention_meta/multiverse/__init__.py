"""Multiverse (specification-curve) meta-analysis: every defensible specification, fitted.

:mod:`.specs` enumerates the specifications from the config alone, :mod:`.fit` fits them in
chunks (with the bootstrap under the null), :mod:`.curve` summarises the curve and tests it,
:mod:`.results` holds what the fits give, :mod:`.run` the two pipeline steps; the figure is
:func:`intervention_meta.plots.multiverse.specification_curve`.
"""

from importlib import import_module
from typing import Any

#: every name of the package's namespace and its module, imported on first use: the workflow's
#: parse reads the specifications (:mod:`.specs`) without pandas, the gather job the curve
#: without the model engine
_MODULES = {
    "BootstrapTest": "curve",
    "CurveSummary": "curve",
    "summarise": "curve",
    "ChunkResult": "results",
    "SpecFit": "results",
    "Multiverse": "specs",
    "Spec": "specs",
    "enumerate_specs": "specs",
    "chunk_numbers": "specs",
    "FitSettings": "fit",
    "fit_chunk": "fit",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BootstrapTest",
    "ChunkResult",
    "CurveSummary",
    "FitSettings",
    "Multiverse",
    "Spec",
    "SpecFit",
    "chunk_numbers",
    "enumerate_specs",
    "fit_chunk",
    "summarise",
]
