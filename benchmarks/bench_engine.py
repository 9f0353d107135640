"""Speed of the engine at the sizes users have, against metafor, PyMARE and pimeta, in one run.

Cases, each on the anchor data set ``tests/reference/assink2016.csv`` (k = 100 effect sizes in 17
studies) and on simulated three-level data (``bench_models.simulate``: 1 to 5 effect sizes per
study) at several k:

* **three-level fit**: REML, ``random = ~ 1 | study/esid`` (ours: ``fit(random=["study",
  "esid"])`` without the likelihood-ratio tests of the levels, which ``rma.mv`` does not compute);
  metafor's dense ``rma.mv`` (its default); pimeta's ``rma_mv`` (the Python port of ``rma.mv``:
  it has the nested random-intercepts model, and forms the dense k x k marginal covariance);
* **leave-one-study-out**: the three-level model refitted without each study (ours:
  ``refit_without(data, call, "study")``; metafor 3.8 has no ``leave1out`` for ``rma.mv``, so
  ``rma.mv(..., subset = study != s)`` for each study, as sensitivity analyses do);
* **Cook's distance per study**: ours ``cluster_influence`` (Cook's distance, DFBETAS, hat values
  and deleted residuals of every study, refits included); metafor ``cooks.distance(res, cluster =
  study)`` (refits re-estimating the variance components);
* **one-level DerSimonian-Laird**: ours ``fit(method="DL")`` without the Q-profile interval of
  tau^2 (so the outputs are PyMARE's: estimate, SE, z, p, CI, tau^2, Q, I^2, H) and with it (our
  default); PyMARE ``DerSimonianLaird().fit_dataset(Dataset(y, v)).summary()`` with
  ``get_fe_stats()`` and ``get_heterogeneity_stats()``.

Every time is the best of several repetitions (each repetition as many calls as last 0.2 s),
measured in-process: ours and PyMARE's/pimeta's in this Python process, metafor's inside one
``Rscript`` process (``system.time``), so R's start-up is not counted. The machine's load
(``os.getloadavg()``) is printed with the results. A competitor that is not installed (R or
metafor, PyMARE, pimeta) is skipped with a line saying so; cases too slow for a competitor
(metafor's dense model and pimeta above a few thousand rows) are marked as not run.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--quick] [--json FILE]``.
Targets: three-level fit at k = 100 >= 20x faster than ``rma.mv``; leave-one-study-out and Cook's
distance >= 20x; one-level DL at least as fast as PyMARE; ahead of pimeta at every k; k = 100,000
in < 1 s.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import simulate  # noqa: E402

from intervention_meta.methods.influence import (  # noqa: E402
    ModelCall,
    cluster_influence,
    refit_without,
)
from intervention_meta.models import ModelError, fit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = ROOT / "tests" / "reference" / "assink2016.csv"
RANDOM = ["study", "esid"]
CALL = ModelCall(random=tuple(RANDOM))
SIZES = (100, 1_000, 10_000, 100_000)
MAX_K = {"metafor_fit": 1_000, "metafor_refits": 100, "pimeta": 1_000, "refits": 1_000}


def best_seconds(fn: Callable[[], object], repeat: int = 5, budget: float = 3.0) -> float:
    """Best time per call: calls batched to last >= 0.2 s, best of ``repeat`` batches."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first >= budget:
        return first
    n = 1 if first >= 0.2 else max(1, int(0.2 / max(first, 1e-6)))
    times = []
    start = time.perf_counter()
    while len(times) < repeat and (not times or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return min(times)


def fit_three_level(data: pd.DataFrame):
    """Our three-level REML fit without the level tests (what ``rma.mv`` computes)."""
    try:
        return fit(data, random=RANDOM, control={"level_tests": False})
    except ModelError:  # a fit() that computes the level tests only on request
        return fit(data, random=RANDOM)


def fit_dl(data: pd.DataFrame, interval: bool = False):
    """Our one-level DL fit, with or without the Q-profile interval of tau^2."""
    try:
        return fit(data, method="DL", control={"confint": interval})
    except ModelError:  # a fit() that computes the interval only on request
        return fit(data, method="DL")


# --------------------------------------------------------------------------- competitors
R_CODE = r"""
suppressPackageStartupMessages(library(metafor))
best <- function(f, repeat_ = 5, budget = 3) {
  t1 <- system.time(f())[["elapsed"]]
  if (t1 >= budget) return(t1)
  n <- if (t1 >= 0.2) 1 else max(1, floor(0.2 / max(t1, 1e-3)))
  times <- c(); start <- proc.time()[["elapsed"]]
  while (length(times) < repeat_ &&
         (length(times) == 0 || proc.time()[["elapsed"]] - start < budget)) {
    times <- c(times, system.time(for (i in seq_len(n)) f())[["elapsed"]] / n)
  }
  min(times)
}
args <- commandArgs(trailingOnly = TRUE)
jobs <- read.csv(args[1], stringsAsFactors = FALSE)
for (j in seq_len(nrow(jobs))) {
  d <- read.csv(jobs$file[j])
  fit <- function() rma.mv(yi, vi, random = ~ 1 | study/esid, data = d)
  cat(sprintf("%s\tfit\t%.6g\n", jobs$case[j], best(fit)))
  if (jobs$refits[j]) {
    res <- fit()
    loo <- function() for (s in unique(d$study))
      rma.mv(yi, vi, random = ~ 1 | study/esid, data = d, subset = study != s)
    cat(sprintf("%s\tloo\t%.6g\n", jobs$case[j], best(loo, 3)))
    cat(sprintf("%s\tcooks\t%.6g\n", jobs$case[j],
                best(function() cooks.distance(res, cluster = d$study), 3)))
  }
}
cat(sprintf("version\t%s\t0\n", as.character(packageVersion("metafor"))))
"""


def metafor_times(cases: dict[str, pd.DataFrame]) -> tuple[dict, str | None]:
    """metafor's times ``{(case, task): seconds}``, timed inside one Rscript process (None and a
    note when R or metafor is missing; nothing for cases above the size limits)."""
    if shutil.which("Rscript") is None:
        return {}, "metafor: skipped (no Rscript; apt-get install r-base-core r-cran-metafor)"
    check = subprocess.run(
        ["Rscript", "-e", "library(metafor)"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        return {}, "metafor: skipped (the R package metafor is not installed)"
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for case, data in cases.items():
            if len(data) > MAX_K["metafor_fit"]:
                continue
            path = Path(tmp) / f"{case}.csv"
            data.to_csv(path, index=False)
            jobs.append(
                {
                    "case": case,
                    "file": str(path),
                    "refits": len(data) <= MAX_K["metafor_refits"],
                }
            )
        if not jobs:
            return {}, None
        pd.DataFrame(jobs).assign(refits=lambda f: f["refits"].map({True: 1, False: 0})).to_csv(
            Path(tmp) / "jobs.csv", index=False
        )
        script = Path(tmp) / "bench.R"
        script.write_text(R_CODE)
        proc = subprocess.run(
            ["Rscript", str(script), str(Path(tmp) / "jobs.csv")],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        return {}, f"metafor: failed ({proc.stderr.strip().splitlines()[-1:]})"
    out, version = {}, "?"
    for line in proc.stdout.splitlines():
        case, task, secs = line.split("\t")
        if case == "version":
            version = task
        else:
            out[(case, task)] = float(secs)
    return out, f"metafor {version} (R, dense rma.mv)"


R_TASKS = {
    "three-level fit": "fit",
    "leave-one-study-out": "loo",
    "Cook's distance by study": "cooks",
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def pymare_dl(data: pd.DataFrame) -> Callable[[], object]:
    from pymare import Dataset
    from pymare.estimators import DerSimonianLaird

    y, v = data["yi"].to_numpy(), data["vi"].to_numpy()

    def run():
        res = DerSimonianLaird().fit_dataset(Dataset(y, v)).summary()
        return res, res.get_fe_stats(), res.get_heterogeneity_stats()

    return run


def pimeta_fit(data: pd.DataFrame) -> Callable[[], object]:
    from pimeta.rma_mv import rma_mv

    y, v = data["yi"].to_numpy(), data["vi"].to_numpy()
    return lambda: rma_mv(y, v, data=data, random="~ 1 | study/esid")


# --------------------------------------------------------------------------- the run
def run(sizes: tuple[int, ...]) -> dict:
    warnings.filterwarnings("ignore")
    load_start = os.getloadavg()
    cases = {"assink2016": pd.read_csv(ANCHOR)}
    cases.update({f"sim{k}": simulate(k) for k in sizes})
    rows: list[dict] = []
    notes: list[str] = []
    r_notes: list[str | None] = []
    have_pymare, have_pimeta = _installed("pymare"), _installed("pimeta")
    if not have_pymare:
        notes.append("PyMARE: skipped (not installed; pip install pymare)")
    if not have_pimeta:
        notes.append("pimeta: skipped (not installed; pip install pimeta)")
    for case, data in cases.items():
        head = {"case": case, "k": len(data), "studies": int(data["study"].nunique())}
        k = head["k"]

        def add(task: str, ours: float, head: dict = head) -> None:
            rows.append({**head, "task": task, "ours": ours})

        add("three-level fit", best_seconds(lambda d=data: fit_three_level(d)))
        if have_pimeta and k <= MAX_K["pimeta"]:
            rows[-1]["pimeta"] = best_seconds(pimeta_fit(data), repeat=3)
        if k <= MAX_K["refits"]:
            full = CALL.fit(data)
            add(
                "leave-one-study-out",
                best_seconds(lambda d=data, f=full: refit_without(d, CALL, "study", full=f)),
            )
            add(
                "Cook's distance by study",
                best_seconds(lambda d=data: cluster_influence(d, CALL, "study")),
            )
        add("one-level DL", best_seconds(lambda d=data: fit_dl(d)))
        if have_pymare:
            rows[-1]["PyMARE"] = best_seconds(pymare_dl(data))
        add("one-level DL + Q-profile CI", best_seconds(lambda d=data: fit_dl(d, True)))
        # metafor right after ours on the same data, so both see about the same machine load
        r_times, r_note = metafor_times({case: data})
        r_notes.append(r_note)
        for row in rows:
            task = R_TASKS.get(row["task"])
            if row["case"] == case and (case, task) in r_times:
                row["metafor"] = r_times[(case, task)]
    notes.extend(dict.fromkeys(n for n in r_notes if n))
    if have_pymare:
        notes.append(f"PyMARE {importlib.metadata.version('pymare')}")
    if have_pimeta:
        notes.append(f"pimeta {importlib.metadata.version('pimeta')}")
    return {
        "rows": rows,
        "notes": [n for n in notes if n],
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.3g} ms" if x < 1 else f"{x:.3g} s"


def print_table(result: dict) -> None:
    print(f"{result['date']}; load average at start {result['loadavg_start']}")
    header = f"{'case':<12}{'k':>8}{'studies':>9}  {'task':<28}{'ours':>10}  competitor"
    print(header)
    print("-" * (len(header) + 30))
    for r in result["rows"]:
        comp = []
        for name in ("metafor", "PyMARE", "pimeta"):
            if r.get(name) is not None:
                comp.append(f"{name} {_fmt(r[name])} ({r[name] / r['ours']:.1f}x)")
        print(
            f"{r['case']:<12}{r['k']:>8}{r['studies']:>9}  {r['task']:<28}{_fmt(r['ours']):>10}  "
            + ("; ".join(comp) or "-")
        )
    for note in result["notes"]:
        print(note)
    print(f"load average at end {result['loadavg_end']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="simulated k = 100 and 1,000 only")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = ap.parse_args()
    result = run(SIZES[:2] if args.quick else SIZES)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
