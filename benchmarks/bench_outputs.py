"""CPU time of the output steps (figures, tables, cards, report, multiverse), one source tree
against another, on a copy of a finished run.

The steps are timed as the rules run them: each in its own Python process calling
``intervention_meta.steps.run_step(<step>, **arguments)`` with the arguments Snakemake passed the
rule, the outputs redirected into a scratch folder (the inputs are the run's results). The CPU
time is user + system of that process and of the processes it waited for (the figures step's
workers), best of ``--repeat``, the source trees alternating so that both see the same load; the
machine's load (``os.getloadavg()``) is printed with each line.

The arguments are recorded once: the copy's ``workflow/scripts/step.py`` is replaced by one that
writes each rule's arguments and output files to ``<copy>/bench_args/<rule>.json`` before
running it, and Snakemake reruns the output steps there.

Run: ``.venv/bin/python benchmarks/bench_outputs.py RUN_DIR --src src /path/to/other/src``
where RUN_DIR is a project folder after ``snakemake --cores 2 --configfile config/config.yaml``
(it is copied, not changed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STEPS = ("figures", "tables", "cards", "report", "multiverse")

RECORDER = """\
import json
from pathlib import Path

from intervention_meta.steps import rule_arguments, run_rule

record = {"arguments": dict(rule_arguments(snakemake)), "outputs": list(snakemake.output)}
Path("bench_args").mkdir(exist_ok=True)
Path(f"bench_args/{snakemake.rule}.json").write_text(json.dumps(record, default=str))
run_rule(snakemake)
"""

TIMED = """\
import json, os, resource, sys
from intervention_meta.steps import run_step

step, scratch = sys.argv[1], sys.argv[2]
record = json.load(open(f"bench_args/{step}.json"))
outputs = set(record["outputs"])


def moved(value):
    if isinstance(value, str) and value in outputs:
        return os.path.join(scratch, value)
    if isinstance(value, list):
        return [moved(v) for v in value]
    return value


run_step(step, **{key: moved(value) for key, value in record["arguments"].items()})
own, waited = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime)
"""


def record(copy: Path, configfile: str) -> None:
    """Rerun the output steps in ``copy`` with the recording script."""
    (copy / "workflow" / "scripts" / "step.py").write_text(RECORDER)
    snakemake = Path(sys.executable).with_name("snakemake")
    subprocess.run(
        [str(snakemake), "--cores", "2", "--configfile", configfile, "-q"]
        + ["--rerun-triggers", "mtime", "--forcerun", *STEPS],
        cwd=copy,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def cpu(copy: Path, src: str, step: str) -> float:
    """CPU seconds of one run of ``step`` with the package from ``src``."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
        out = subprocess.run(
            [sys.executable, "-c", TIMED, step, scratch],
            cwd=copy,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--src", nargs="+", default=["src"])
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", nargs="+", default=list(STEPS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(args.run_dir, copy, ignore=shutil.ignore_patterns(".snakemake"))
        record(copy, args.configfile)
        for step in args.steps:
            best = {src: float("inf") for src in args.src}
            for _ in range(args.repeat):
                for src in args.src:
                    best[src] = min(best[src], cpu(copy, src, step))
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            times = "  ".join(f"{src}: {t:6.2f} s" for src, t in best.items())
            print(f"{step:12s} {times}   (load {load})", flush=True)


if __name__ == "__main__":
    main()
