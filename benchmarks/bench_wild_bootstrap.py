"""CPU time of the cluster wild bootstrap test of a moderator (the moderators step's main cost).

One three-level data set (``bench_models.simulate``: 1 to 5 effect sizes per study) with a
three-category study-level moderator and a continuous one; each case is the test of the
categorical moderator (2 constraints) in ``~ category + x`` with ``random = ~ 1 | study/esid``,
999 Rademacher replications (the example config's), the defaults of the moderators step
(CR2-adjusted residuals, CR2/HTZ statistic). The replicates' refits (REML, variance components
re-estimated) are most of the time.

Printed per k: the best CPU time (``time.process_time``) of several runs, the p value (the same
seed gives the same p value on every run and every version that keeps the statistics), and the
machine's load (``os.getloadavg()``), since a loaded two-core machine slows memory-bound array
code.

Run: ``.venv/bin/python benchmarks/bench_wild_bootstrap.py [--replications 999] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import simulate  # noqa: E402

from intervention_meta.methods.influence import ModelCall  # noqa: E402
from intervention_meta.methods.wild_bootstrap import wild_bootstrap_test  # noqa: E402

SIZES = (60, 130, 300)


def data(k: int):
    """simulate(k) with a study-level category (a, b, c) and a continuous row-level moderator."""
    df = simulate(k)
    rng = np.random.default_rng(k)
    n_studies = int(df["study"].max()) + 1
    df["category"] = np.array(["a", "b", "c"])[rng.integers(0, 3, n_studies)][df["study"]]
    df["x"] = rng.normal(size=len(df))
    return df


def run(k: int, replications: int, repeat: int) -> dict:
    df = data(k)
    call = ModelCall(mods=("category", "x"), random=("study", "esid"), test="t")
    best, p = np.inf, None
    for _ in range(repeat):
        start = time.process_time()
        res = wild_bootstrap_test(
            df,
            call,
            ["categoryb", "categoryc"],
            rng=np.random.default_rng(20261125),
            replications=replications,
        )
        best = min(best, time.process_time() - start)
        p = res.p_value
    return {"k": k, "studies": int(df["study"].nunique()), "cpu_s": best, "p_value": p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=999)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"wild bootstrap, {args.replications} replications, best of {args.repeat} (CPU s)")
    print(f"{'k':>6} {'studies':>8} {'CPU s':>8} {'p':>8}")
    for k in SIZES:
        r = run(k, args.replications, args.repeat)
        print(f"{r['k']:>6} {r['studies']:>8} {r['cpu_s']:>8.3f} {r['p_value']:>8.4f}")
    print("load average:", ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
