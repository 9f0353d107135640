"""Speed and memory of the three-level REML engine.

Simulates three-level data (studies with a mix of 1 to 5 effect sizes each, as in real
intervention literatures), fits ``random=["study", "esid"]`` by REML for k = 100, 2,000, 20,000 and
100,000 effect sizes, times the anchor data set ``tests/reference/perf/sim_k2000.csv`` (metafor
3.8-1 needs 3.1 s for it on these machines), and a 1,000-permutation test at k = 100 (about 30
studies, a continuous moderator; metafor needs 8.9 s). Every fit is timed twice: with the
likelihood-ratio test of each random level read from the result (computed when first read: one
refit per level) and without. Each case runs in a fresh subprocess so that its peak
memory is its own: the maximum resident set size of the process (interpreter, numpy and pandas
included) and the peak of the allocations traced by ``tracemalloc`` during one extra run (timed
runs are not traced: tracing slows numpy down). Wall-clock seconds are reported with the CPU
seconds of the process (the machine is shared: the CPU time shows what contention adds; numpy may
use more than one thread, so CPU can exceed wall time).

Run: ``.venv/bin/python benchmarks/bench_models.py [--repeat 5]``.
Targets (2-core machine): k = 2,000 < 0.05 s; k = 100,000 < 2 s and < 1 GB; 1,000 permutations at
k = 100 < 1 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = ROOT / "tests" / "reference" / "perf" / "sim_k2000.csv"
SEED = 20240501
RANDOM = ["study", "esid"]


def simulate(k: int, seed: int = SEED):
    """Three-level data: study effects N(0, 0.10), within-study N(0, 0.05), 1-5 effects/study."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < k:
        sizes.append(int(rng.integers(1, 6)))
    sizes[-1] -= sum(sizes) - k
    sizes = [s for s in sizes if s > 0]
    study = np.repeat(np.arange(len(sizes)), sizes)
    es = np.concatenate([np.arange(s) for s in sizes])
    ni = rng.integers(20, 201, size=k)
    vi = 4.0 / ni
    u = rng.normal(0, np.sqrt(0.10), len(sizes))[study]
    w = rng.normal(0, np.sqrt(0.05), k)
    yi = 0.3 + u + w + rng.normal(0, np.sqrt(vi))
    return pd.DataFrame({"study": study, "esid": es, "yi": yi, "vi": vi})


def _case(kind: str, k: int, level_tests: bool, repeat: int) -> dict:
    """Run one case in this process; return timings and memory."""
    import resource
    import tracemalloc

    import numpy as np
    import pandas as pd

    from intervention_meta.models import fit, permutest

    data = pd.read_csv(ANCHOR) if kind == "anchor" else simulate(k)
    if kind == "permutation":
        data = data.assign(x=np.random.default_rng(1).normal(size=len(data)))
        base = fit(data, mods=["x"], random=RANDOM)

        def run():
            return permutest(base, iter=1000, rng=np.random.default_rng(SEED))
    else:

        def run():
            res = fit(data, random=RANDOM, method="REML")
            if level_tests:  # computed when first read
                res.level_tests  # noqa: B018
            return res

    fit(data.iloc[:50], random=RANDOM)  # warm-up (imports, first-call overhead)
    times, cpu = [], []
    res = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {
        "case": kind,
        "k": int(len(data)),
        "studies": int(data["study"].nunique()),
        "level_tests": level_tests if kind != "permutation" else None,
        "seconds_best": min(times),
        "seconds_median": sorted(times)[len(times) // 2],
        "cpu_seconds_best": min(cpu),
        "traced_peak_mb": peak / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if kind == "permutation":
        out["QMp_perm"] = float(res.QMp_perm)
        out["n_fallback"] = int(res.n_fallback)
    else:
        out["sigma2"] = {str(key): float(v) for key, v in res.sigma2.items()}
        out["converged"] = bool(res.converged)
        out["iterations"] = int(res.convergence.iterations)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", nargs=3, metavar=("KIND", "K", "LRT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, k, lrt = args.child
        print(json.dumps(_case(kind, int(k), lrt == "1", args.repeat)))
        return
    sizes = [("sim", 100), ("anchor", 2000), ("sim", 2000), ("sim", 20000), ("sim", 100000)]
    cases = [(kind, k, lrt) for kind, k in sizes for lrt in ("1", "0")]
    cases.append(("permutation", 100, "0"))
    rows = []
    for kind, k, lrt in cases:
        repeat = str(max(1, args.repeat // 2) if k >= 100000 else args.repeat)
        proc = subprocess.run(
            [sys.executable, __file__, "--repeat", repeat, "--child", kind, str(k), lrt],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"{kind} k={k} failed:\n{proc.stderr}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    header = (
        f"{'case':<13}{'k':>8}{'studies':>9}{'LRTs':>6}{'best s':>10}{'median s':>10}"
        f"{'CPU s':>9}{'traced MB':>11}{'RSS MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        lrt = {True: "yes", False: "no", None: "-"}[r["level_tests"]]
        name = "permutations" if r["case"] == "permutation" else r["case"]
        print(
            f"{name:<13}{r['k']:>8}{r['studies']:>9}{lrt:>6}{r['seconds_best']:>10.4f}"
            f"{r['seconds_median']:>10.4f}{r['cpu_seconds_best']:>9.4f}{r['traced_peak_mb']:>11.1f}"
            f"{r['max_rss_mb']:>9.0f}"
        )


if __name__ == "__main__":
    main()
