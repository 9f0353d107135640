"""The multiverse steps: fit one chunk of specifications; gather the chunks into the curve.

``multiverse_chunk`` (one Snakemake job per chunk of ``multiverse.chunk_size`` specs) writes
``multiverse/chunks/<n>.json``; ``multiverse`` gathers them into ``models/multiverse.json`` (keys
in docs/results.md), ``tables/multiverse.csv`` and the specification-curve figure
``figures/multiverse_curve.png``. The specs come from the config alone
(:func:`~intervention_meta.multiverse.specs.enumerate_specs`), so the chunks are known before any
data are read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from intervention_meta.errors import InputError
from intervention_meta.io import read_json, write_json, write_table
from intervention_meta.multiverse.curve import by_choice, summarise
from intervention_meta.multiverse.results import ChunkResult, configured_level
from intervention_meta.multiverse.specs import (
    Multiverse,
    check_which,
    enumerate_specs,
)

log = logging.getLogger(__name__)


def _labels(mv: Multiverse, codebook: str | None) -> dict[str, Any]:
    """The codebook labels of the ``which`` variables and their options (``all`` stays)."""
    if codebook is None:
        return {}
    from intervention_meta.data.codebook import load_codebook

    cb = load_codebook(codebook)
    out: dict[str, Any] = {}
    for variable, options in mv.which.items():
        levels = {
            o.label: " + ".join(cb.level_label(variable, c) for c in o.codes) or "all"
            for o in options
        }
        out[variable] = {"label": cb.label(variable), "levels": levels}
    return out


def run_multiverse_chunk(
    *,
    effect_sizes: str,
    codebook: str,
    out: str,
    chunk: int | str,
    multiverse: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> ChunkResult:
    """Fit chunk ``chunk`` (0-based) of the multiverse of the config's ``multiverse`` section on
    ``effect_sizes`` (with the bootstrap draws under the null) and write it to ``out``."""
    from intervention_meta.analyses.analysis_model import ModelSpec, load_analysis_data
    from intervention_meta.multiverse.fit import fit_chunk, run_settings

    mv = enumerate_specs(multiverse)
    spec = ModelSpec.from_config(models)
    ad = load_analysis_data(effect_sizes, codebook, levels=spec.levels or None)
    problems = check_which(mv, list(ad.data.columns), ad.codebook, file=str(effect_sizes))
    if problems:
        raise InputError(problems, summary="multiverse.which names unknown variables or levels")
    settings = run_settings(mv, ad.study, ad.random, models)
    specs = mv.chunk(int(chunk))
    log.info("multiverse chunk %s: specs %s to %s", chunk, specs[0].id, specs[-1].id)
    result = fit_chunk(
        ad.data,
        specs,
        settings,
        draws=int(mv.settings["bootstrap"]),
        seed=int(seed),
        chunk=int(chunk),
    )
    write_json(result, out)
    return result


def run_multiverse(
    *,
    chunks: Sequence[str],
    json: str,
    table: str,
    figure: str | None = None,
    codebook: str | None = None,
    multiverse: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Gather the chunk files into the result table, the curve's summaries and its figure
    (the ``which`` variables and options labelled from ``codebook`` when given); reads the chunk
    files without the model engine."""
    mv = enumerate_specs(multiverse)
    paths = [chunks] if isinstance(chunks, str) else list(chunks)
    results = [ChunkResult.from_dict(read_json(p)) for p in paths]
    alpha = float(mv.settings["alpha"])
    frame, summary = summarise(mv, results, alpha=alpha, seed=int(seed))
    record: dict[str, Any] = {
        "analysis": "multiverse",
        "level": configured_level(models),
        "alpha": alpha,
        "multiverse": mv.to_dict(),
        "factors": mv.factors(),
        "labels": _labels(mv, codebook),
        "summary": summary.to_dict(),
        "by_choice": by_choice(frame, mv.factors()),
        "specs": frame.to_dict(orient="records"),
    }
    if figure is not None:
        record["figure"] = os.path.relpath(figure, Path(json).parent)
    write_json(record, json)
    write_table(frame, table)
    if figure is not None:
        from intervention_meta.plots.multiverse import specification_curve

        specification_curve(read_json(json), figure)
    log.info(
        "multiverse: %d specs, %d fitted, median %.3f",
        summary.n_specs,
        summary.n_fitted,
        summary.median_estimate if summary.median_estimate is not None else float("nan"),
    )
    return record
