"""Provenance of a run: input checksums, the configuration, the git commit, package versions.

The report ends with what someone needs to reproduce (or distrust) it: the SHA-256 of every input
file, the full configuration (with the schema's defaults filled in), the git commit of the
workflow (``"not a git checkout"`` outside a git repository, with a note when the checkout has
uncommitted changes), the versions of Python and the packages that did the work, and the date.

>>> prov = collect_provenance(["data/raw/studies.csv"], {"analysis": "example"})  # doctest: +SKIP
>>> prov.checksums[0].sha256  # doctest: +SKIP
'3f1c...'
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

log = logging.getLogger(__name__)

#: the distributions whose versions the report names (import name -> distribution name)
PACKAGES: dict[str, str] = {
    "intervention_meta": "intervention-meta",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "statsmodels": "statsmodels",
    "matplotlib": "matplotlib",
    "snakemake": "snakemake",
}

NOT_GIT = "not a git checkout"


@dataclass(frozen=True)
class FileChecksum:
    """The SHA-256 of one input file (``sha256`` is None if the file does not exist)."""

    path: str
    sha256: str | None
    size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class GitInfo:
    """The git commit of a folder.

    Attributes
    ----------
    commit : the full commit hash, or None outside a git checkout
    dirty : whether tracked files differ from the commit (None if unknown)
    describe : ``commit`` with ``(uncommitted changes)`` when dirty, or ``"not a git checkout"``
    """

    commit: str | None
    dirty: bool | None = None

    @property
    def describe(self) -> str:
        if self.commit is None:
            return NOT_GIT
        return self.commit + (" (with uncommitted changes)" if self.dirty else "")

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty, "describe": self.describe}


@dataclass(frozen=True)
class Provenance:
    """Everything the report's provenance section shows.

    Attributes
    ----------
    checksums : SHA-256 of every input file
    config : the full configuration of the run (defaults filled in)
    config_files : the config file(s) the run read
    git : the git commit of the workflow folder
    python : the Python version
    platform : the operating system
    packages : distribution name -> version (``"not installed"`` if missing)
    date : when the report was made (ISO 8601, UTC)
    """

    checksums: tuple[FileChecksum, ...]
    config: dict[str, Any]
    config_files: tuple[str, ...] = ()
    git: GitInfo = field(default_factory=lambda: GitInfo(None))
    python: str = ""
    platform: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    date: str = ""

    def config_yaml(self) -> str:
        """The configuration as YAML (keys in their order)."""
        return yaml.safe_dump(
            _plain(self.config), sort_keys=False, allow_unicode=True, default_flow_style=None
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "checksums": [c.to_dict() for c in self.checksums],
            "config": _plain(self.config),
            "config_files": list(self.config_files),
            "git": self.git.to_dict(),
            "python": self.python,
            "platform": self.platform,
            "packages": dict(self.packages),
            "date": self.date,
        }

    def to_frame(self) -> pd.DataFrame:
        """The checksums as a table (path, size in bytes, SHA-256)."""
        return pd.DataFrame(
            [c.to_dict() for c in self.checksums], columns=["path", "size", "sha256"]
        )


def _plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists (Snakemake's config is a subclass)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(paths: Iterable[str | Path]) -> tuple[FileChecksum, ...]:
    """SHA-256 and size of each file, in the given order without repeats."""
    out, seen = [], set()
    for p in paths:
        key = str(p)
        if key in seen:
            continue
        seen.add(key)
        path = Path(p)
        if path.is_file():
            out.append(FileChecksum(key, sha256(path), path.stat().st_size))
        else:
            log.warning("provenance: %s does not exist; no checksum", key)
            out.append(FileChecksum(key, None, None))
    return tuple(out)


def git_info(folder: str | Path = ".") -> GitInfo:
    """The commit of the git checkout holding ``folder`` (``GitInfo(None)`` if there is none)."""

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return proc.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError) as err:
        log.info("provenance: %s is %s (%s)", folder, NOT_GIT, type(err).__name__)
        return GitInfo(None)
    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return GitInfo(commit, dirty)


def package_versions(packages: Mapping[str, str] | None = None) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` if missing)."""
    out = {}
    for dist in (packages or PACKAGES).values():
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _relative(path: str | Path, root: Path) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(root.resolve())) if p.is_absolute() else str(p)
    except ValueError:
        return str(p)


def collect_provenance(
    inputs: Sequence[str | Path],
    config: Mapping[str, Any],
    *,
    config_files: Sequence[str | Path] = (),
    workdir: str | Path = ".",
    now: _dt.datetime | None = None,
) -> Provenance:
    """Collect the provenance of a run.

    Parameters
    ----------
    inputs : the input files to checksum (data, codebook, config files ...)
    config : the configuration of the run
    config_files : the config file(s) read (also checksummed)
    workdir : the folder of the workflow (for the git commit; paths are shown relative to it)
    now : the date to record (default: now, UTC)
    """
    root = Path(workdir)
    files = [_relative(p, root) for p in [*config_files, *inputs]]
    date = (now or _dt.datetime.now(_dt.UTC)).replace(microsecond=0).isoformat()
    return Provenance(
        checksums=file_checksums(files),
        config=_plain(config),
        config_files=tuple(_relative(p, root) for p in config_files),
        git=git_info(root),
        python=platform.python_version(),
        platform=platform.platform(),
        packages=package_versions(),
        date=date,
    )


__all__ = [
    "NOT_GIT",
    "PACKAGES",
    "FileChecksum",
    "GitInfo",
    "Provenance",
    "collect_provenance",
    "file_checksums",
    "git_info",
    "package_versions",
    "sha256",
]
