"""What a vignette config may name, checked against its codebook when the workflow is parsed.

Kept apart from the analysis (:mod:`.analysis`) so that the check needs neither pandas nor the
models: every Snakemake start of the vignette config runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intervention_meta.data.codebook import load_codebook
from intervention_meta.errors import InputError, Problem

#: the models of a binary outcome, and of an ordinal or numeric one
BINARY_MODELS = ("gee", "glmm")
SCALE_MODELS = ("lmm", "clm")


def vignette_config_problems(config: Mapping[str, Any], file: str = "<config>") -> list[Problem]:
    """Everything the ``vignette`` section and ``data`` name, checked against the codebook, all
    at once: a data file per codebook table that exists; the cluster a key column; factors,
    groups and outcomes codebook variables of a fitting type (factors and groups with levels;
    outcomes binary for gee/glmm, ordinal, integer or number for lmm/clm); the primary model one
    of the outcome's models; the heat map's factors among the factors."""
    problems: list[Problem] = []
    try:
        cb = load_codebook(config["codebook"])
    except InputError as exc:
        return list(exc.problems)
    section = config.get("vignette") or {}
    data = config.get("data") or {}

    def add(column: str, value: Any, expected: str) -> None:
        problems.append(Problem(file, None, column, value, expected, check="vignette_config"))

    for table in cb.tables:
        path = data.get(table)
        if not isinstance(path, str) or not Path(path).is_file():
            add(f"data.{table}", path, f"an existing file: the codebook's table {table}")
    if section.get("cluster") not in cb.keys():
        add("vignette.cluster", section.get("cluster"), "a key column: " + ", ".join(cb.keys()))
    with_levels = [v.name for v in cb.variables.values() if v.levels]
    for key in ("factors", "groups"):
        for i, name in enumerate(section.get(key) or ()):
            if name not in with_levels:
                add(
                    f"vignette.{key}.{i}",
                    name,
                    "a codebook variable with levels: " + ", ".join(with_levels),
                )
    for name, entry in dict(section.get("outcomes") or {}).items():
        var = cb.variables.get(name)
        if var is None:
            add(f"vignette.outcomes.{name}", name, "a codebook variable")
            continue
        models = list((entry or {}).get("models") or ())
        fits = BINARY_MODELS if var.type == "binary" else SCALE_MODELS
        if var.type not in ("binary", "ordinal", "integer", "number"):
            add(f"vignette.outcomes.{name}", name, "a binary, ordinal, integer or number variable")
        for model in models:
            if model not in fits:
                add(
                    f"vignette.outcomes.{name}.models",
                    model,
                    f"a model of a {var.type} outcome: " + ", ".join(fits),
                )
        primary = (entry or {}).get("primary")
        if primary is not None and primary not in (models or fits):
            add(
                f"vignette.outcomes.{name}.primary",
                primary,
                "one of the outcome's models: " + ", ".join(models or fits),
            )
    parent = cb.parent_table
    for key, table in (("describe", cb.child_table), ("characteristics", parent)):
        for i, name in enumerate(section.get(key) or ()):
            var = cb.variables.get(name)
            if var is None or var.table != table or (key == "describe" and not var.levels):
                what = "with levels " if key == "describe" else ""
                add(f"vignette.{key}.{i}", name, f"a variable {what}of the table {table}")
    heatmap = section.get("heatmap") or []
    for i, name in enumerate(heatmap):
        if name not in (section.get("factors") or ()):
            add(f"vignette.heatmap.{i}", name, "one of vignette.factors")
    return problems


__all__ = ["BINARY_MODELS", "SCALE_MODELS", "vignette_config_problems"]
