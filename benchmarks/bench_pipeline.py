"""Wall time of the whole pipeline, from empty results to the report, per shipped config.

For each config, copies what the pipeline needs (Snakefile, workflow, config, data,
environment.yml) to a temporary folder, runs ``snakemake --cores N --configfile CONFIG`` there
(every output, empty ``results/``) and prints:

* the wall time of the run against its target (example < 25 s, assink2016 < 15 s on a
  quiet 2-core machine), and the machine's load (``os.getloadavg``) before and after;
* per rule: jobs, summed job time and the longest job, from Snakemake's log (a job's time is
  from the line that starts it to the line that says it finished; second resolution);
* the summed job time of all jobs, and the CPU time (user + system) of Snakemake and all its
  jobs (of the best run, and of every run): the work done, which a busy machine changes much
  less than the wall time.

Usage::

    python benchmarks/bench_pipeline.py                 # both configs, --cores 2
    python benchmarks/bench_pipeline.py --cores 2 --repeat 3 config/config.yaml

The package is imported by the jobs from the environment the ``snakemake`` next to this Python
comes from (set ``PYTHONPATH=src`` to time a working tree that is not installed).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from pipeline_helpers import SNAKEMAKE, copy_project  # noqa: E402  the tests' project copy

TARGETS = {"config/config.yaml": 25.0, "config/assink2016.yaml": 15.0}

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_DONE = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def job_times(log: str) -> dict[str, list[float]]:
    """Rule -> the times (s) of its jobs, from Snakemake's log."""
    stamp = None
    rule = None
    started: dict[str, tuple[str, datetime]] = {}
    times: dict[str, list[float]] = defaultdict(list)
    for line in log.splitlines():
        if m := _STAMP.match(line.strip()):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := _START.match(line.strip()):
            rule = m.group(1)
        elif (m := _JOBID.match(line)) and rule is not None and stamp is not None:
            started[m.group(1)] = (rule, stamp)
            rule = None
        elif (m := _DONE.match(line.strip())) and stamp is not None and m.group(1) in started:
            name, start = started.pop(m.group(1))
            if name != "all":
                times[name].append((stamp - start).total_seconds())
    return times


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(config: str, cores: int) -> tuple[float, float, dict[str, list[float]], tuple, tuple]:
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        work = copy_project(Path(tmp))
        load_before = os.getloadavg()
        cmd = [str(SNAKEMAKE), "--cores", str(cores), "--nocolor", "--configfile", config]
        t0, cpu0 = time.perf_counter(), _cpu()
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
        load_after = os.getloadavg()
        if proc.returncode != 0:
            sys.exit(f"snakemake failed on {config}:\n{proc.stdout}\n{proc.stderr}")
        return wall, cpu, job_times(proc.stdout + proc.stderr), load_before, load_after


def canary_ms(repeat: int = 3) -> float:
    """The machine's speed at the moment: the in-process three-level REML fit of assink2016 (k =
    100; best of 20 calls, ``repeat`` times), in ms. It took 3.1-3.5 ms on a quiet project
    machine; this virtual machine sometimes runs the same code 30-40% slower with no other
    process running, and a pipeline run's wall time moves with it."""
    import pandas as pd  # noqa: PLC0415  only the canary needs them

    from intervention_meta.models import fit  # noqa: PLC0415

    data = pd.read_csv(ROOT / "tests" / "reference" / "assink2016.csv")

    def once() -> object:
        return fit(data, random=["study", "esid"], control={"level_tests": False})

    once()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(20):
            once()
        best = min(best, (time.perf_counter() - t0) / 20)
    return 1000 * best


def _load(load: tuple) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def report(config: str, cores: int, repeat: int) -> float:
    canary = [canary_ms()]
    runs = []
    for _ in range(repeat):
        runs.append(run_once(config, cores))
        canary.append(canary_ms())
    best = min(runs, key=lambda r: r[0])
    wall, cpu, times, before, after = best
    target = TARGETS.get(config)
    print(f"\n## {config}: snakemake --cores {cores}, empty results -> report")
    loads = f"before {_load(before)}, after {_load(after)}"
    print(f"machine: {os.cpu_count()} cores; load (1/5/15 min) {loads}")
    speed = ", ".join(f"{c:.2f}" for c in canary)
    print(f"machine speed: canary fit {speed} ms before and after each run (quiet: 3.1-3.5 ms)")
    walls = ", ".join(f"{r[0]:.1f}" for r in runs)
    cpus = ", ".join(f"{r[1]:.0f}" for r in runs)
    verdict = (
        ""
        if target is None
        else f" (target < {target:.0f} s: {'met' if wall < target else 'NOT met'})"
    )
    print(f"wall time: {wall:.1f} s best of {repeat} [{walls}]{verdict}")
    total = sum(sum(v) for v in times.values())
    n_jobs = sum(len(v) for v in times.values())
    print(
        f"{n_jobs} jobs, summed job time {total:.0f} s (second resolution), CPU time {cpu:.0f} s"
        f" [every run: {cpus}]\n"
    )
    print(f"{'rule':<24} {'jobs':>4} {'sum s':>6} {'max s':>6}")
    for rule, ts in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        print(f"{rule:<24} {len(ts):>4} {sum(ts):>6.0f} {max(ts):>6.0f}")
    return wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("configs", nargs="*", default=list(TARGETS), help="configs (default: both)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="runs per config; the best is shown")
    args = p.parse_args(argv)
    for config in args.configs:
        report(config, args.cores, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
