"""Readable names in figures: study labels (the codebook's citation, else the study key) and
wrapped category labels."""

from __future__ import annotations

import re
import textwrap

import pandas as pd

from intervention_meta.data.codebook import Codebook

__all__ = ["citation_variable", "natural_key", "study_labels", "wrap"]


def citation_variable(codebook: Codebook) -> str | None:
    """The studies-table variable that holds the citation (named or labelled ``citation``)."""
    for var in codebook.variables_of(codebook.parent_table):
        if var.name.lower() == "citation" or (var.label or "").strip().lower() == "citation":
            return var.name
    return None


def natural_key(value: object) -> tuple:
    """Sort key that orders ``S2`` before ``S10`` and ``2`` before ``10``."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p != "")


def study_labels(
    data: pd.DataFrame, codebook: Codebook, study: str, prefix: str | None = None
) -> dict[str, str]:
    """Study key -> label for figures.

    The citation (see :func:`citation_variable`) when the data have one, else the study key; a
    key that is only a number gets the study key's codebook label in front (``Study 3``), since a
    bare number on an axis reads as a value. Two studies with the same citation get their key
    appended, so that every label names one study.
    """
    keys = pd.unique(data[study].astype(str))
    prefix = prefix if prefix is not None else codebook.label(study)
    cite = citation_variable(codebook)
    labels: dict[str, str] = {}
    if cite is not None and cite in data.columns:
        first = data.assign(_key=data[study].astype(str)).groupby("_key", sort=False)[cite].first()
        for key in keys:
            text = first.get(key)
            labels[key] = str(text).strip() if pd.notna(text) and str(text).strip() else key
    else:
        labels = {key: (f"{prefix} {key}" if key.isdigit() else key) for key in keys}
    counts = pd.Series(list(labels.values())).value_counts()
    return {
        key: (f"{lab} [{key}]" if counts[lab] > 1 and lab != key else lab)
        for key, lab in labels.items()
    }


def wrap(text: str, width: int = 28) -> str:
    """``text`` broken into lines of at most ``width`` characters (words kept whole)."""
    return "\n".join(
        textwrap.wrap(str(text), width=width, break_long_words=False, break_on_hyphens=False)
    ) or str(text)
