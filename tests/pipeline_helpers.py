"""Helpers to run the real Snakemake pipeline on a temporary copy of the project."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
COPIED = ["Snakefile", "environment.yml", "workflow", "config", "data"]


def copy_project(dest: Path) -> Path:
    """Copy what the pipeline needs (not results/, not .venv) into ``dest``."""
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "results").mkdir(exist_ok=True)
    return dest


def run_snakemake(workdir: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` and return the finished process (stdout+stderr captured)."""
    cmd = [str(SNAKEMAKE), "--cores", "1", "--nocolor", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def checksums(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime (ns) of every file under ``folder``: to prove raw data was not written."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                path.stat().st_mtime_ns,
            )
    return out
