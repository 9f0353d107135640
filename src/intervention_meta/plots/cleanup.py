"""Figures that no longer belong to the analysis are removed from its figures folder.

The figures job writes every figure of the current codebook and config and lists them in its
manifest (``figures/figures.json``). A figure of a variable since removed from the codebook (or no
longer a moderator, or of a domain no longer analysed) is no output of the job any more, so
Snakemake would leave its old files behind, where they look current. After the manifest is
written, :func:`remove_unlisted_figures` deletes every image file in the folder that the manifest
does not name. Removing by manifest rather than making the folder a ``directory()`` output keeps
each figure a file of its own for Snakemake (its ``report()`` caption, a rule that needs one
figure) and the folder's other files (the manifest) untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["IMAGE_SUFFIXES", "remove_unlisted_figures"]

#: the files a figure is made of; nothing else in the folder is ever removed
IMAGE_SUFFIXES = frozenset({".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".eps"})


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def remove_unlisted_figures(folder: str | Path, manifest: Mapping[str, Any]) -> list[Path]:
    """Delete the image files in ``folder`` (not in its subfolders) that ``manifest`` does not name.

    A file is kept when its stem is the ``stem`` of a figure of the manifest or its name is the
    file name of any path the manifest's figures give (``png``, ``pdf``, ``svg``, a smaller copy,
    ...). Only files with a suffix of :data:`IMAGE_SUFFIXES` are considered.

    Returns
    -------
    list of Path
        The files removed.
    """
    folder = Path(folder)
    figures = list(manifest.get("figures") or [])
    stems = {str(f.get("stem")) for f in figures if f.get("stem")}
    names = {Path(s).name for s in _strings(figures)}
    removed = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in stems or path.name in names:
            continue
        path.unlink()
        removed.append(path)
    if removed:
        log.info(
            "figures: removed %d file(s) no longer in the manifest: %s",
            len(removed),
            ", ".join(p.name for p in removed),
        )
    return removed
