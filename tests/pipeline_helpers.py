"""Helpers to run the real Snakemake pipeline on a temporary copy of the project."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
COPIED = ["Snakefile", "environment.yml", "workflow", "config", "data", "tests/reference/datasets"]


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


def skip_extras(work: Path, *, multiverse: bool = True) -> None:
    """Switch off, in the copy's default config, the seeded bootstraps that a derived run does not
    test (the moderators' wild bootstrap and, with ``multiverse=True``, the multiverse): they are
    tested on the shared example run, and cost a derived run most of its time."""
    import yaml  # noqa: PLC0415  only the runs that edit their config need it

    path = work / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.setdefault("moderators", {})["wild_bootstrap"] = {"when": "never"}
    if multiverse:
        config["multiverse"] = {"enabled": False}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def run_snakemake(
    workdir: Path, *args: str, check: bool = False, cores: int = 1
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` and return the finished process (stdout+stderr captured)."""
    cmd = [str(SNAKEMAKE), "--cores", str(cores), "--nocolor", *args]
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


def effect_sizes_in_process(config: str, dest: Path) -> Path:
    """validate -> clean -> effect_sizes of a shipped config through the same step functions as
    the rules, in this process (no Snakemake), into ``dest``; the effect sizes' CSV."""
    import yaml

    from intervention_meta.steps import run_step, step_params

    cfg = yaml.safe_load((ROOT / config).read_text(encoding="utf-8"))
    files = {
        "codebook": str(ROOT / cfg["codebook"]),
        "studies": str(ROOT / cfg["data"]["studies"]),
        "effects": str(ROOT / cfg["data"]["effects"]),
    }
    run_step("validate", **files, passed=str(dest / "validation" / "passed.txt"))
    clean = {"clean_effects": str(dest / "clean.csv"), "summary": str(dest / "clean.json")}
    run_step(
        "clean", **files, **clean, dropped=str(dest / "dropped.csv"), **step_params("clean", cfg)
    )
    run_step(
        "effect_sizes",
        codebook=files["codebook"],
        clean_effects=clean["clean_effects"],
        table=str(dest / "effect_sizes.csv"),
        dropped=str(dest / "effect_sizes_dropped.csv"),
        summary=str(dest / "effect_sizes_summary.json"),
        **step_params("effect_sizes", cfg),
    )
    return dest / "effect_sizes.csv"


@dataclass(frozen=True)
class PipelineRun:
    """A whole pipeline run (``snakemake`` with no target: every output) on a copy of the project.

    ``work`` is the project copy, ``results`` its ``results/<analysis>``, ``data_before`` the
    :func:`checksums` of its ``data/`` taken before the run, ``stdout``/``stderr`` Snakemake's.
    """

    work: Path
    results: Path
    data_before: dict
    stdout: str
    stderr: str


def shared_run(
    tmp_path_factory,
    name: str,
    analysis: str,
    *args: str,
    prepare: Callable[[Path], None] | None = None,
) -> PipelineRun:
    """The one whole run ``name`` of this test session, made by whichever test asks first.

    ``prepare`` edits the project copy (config, codebook, data) before Snakemake runs.

    Under pytest-xdist every worker has its own base temp folder; their parent is the session's,
    so the run lives there and a file lock lets the first worker run Snakemake while the others
    wait, then read its record. Without xdist the session's own base temp folder is used (never
    one shared with another test session). A failed run fails every test that asks for it.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    work, record = root / f"shared_{name}", root / f"shared_{name}.json"
    with open(root / f"shared_{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not record.exists():
                shutil.rmtree(work, ignore_errors=True)  # a run that broke off half-way
                work.mkdir(parents=True)
                copy_project(work)
                if prepare is not None:
                    prepare(work)
                before = checksums(work / "data")
                proc = run_snakemake(work, *args, cores=2)
                record.write_text(
                    json.dumps(
                        {
                            "returncode": proc.returncode,
                            "stdout": proc.stdout,
                            "stderr": proc.stderr,
                            "data_before": before,
                        }
                    )
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    done = json.loads(record.read_text())
    if done["returncode"] != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({done['returncode']}):\n"
            f"{done['stdout']}\n{done['stderr']}"
        )
    before = {path: tuple(value) for path, value in done["data_before"].items()}
    return PipelineRun(work, work / "results" / analysis, before, done["stdout"], done["stderr"])
