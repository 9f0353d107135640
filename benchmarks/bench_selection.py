"""Speed of the step-function selection model with a cluster bootstrap on the example data.

Computes the shipped example's effect sizes with the package's own steps (validate, clean and
effect_sizes with ``config/config.yaml``, in a temporary folder: the rows and values the pipeline's
``results/example/effect_sizes.csv`` holds), then times
``selection_model(yi, vi, cluster=study, steps=(0.025,), bootstrap=1999, seed=...)``: the fit, the
sandwich and 1,999 cluster-bootstrap refits. Prints the wall-clock and CPU seconds of each of
``--repeat`` runs, their minimum, and ``os.getloadavg()`` before and after (the machine is shared:
other jobs slow it down).

Run: ``.venv/bin/python benchmarks/bench_selection.py [--repeat 3] [--bootstrap 1999]``.
Target (2-core machine): < 5 s for 1,999 replications.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240913


def example_effect_sizes():
    """The example's effect sizes (a DataFrame with ``study_id``, ``yi``, ``vi``)."""
    import yaml

    from intervention_meta import steps

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    codebook = str(ROOT / "data" / "codebook.yaml")
    raw = ROOT / "data" / "raw"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        steps.validate(
            codebook=codebook,
            studies=str(raw / "studies.csv"),
            effects=str(raw / "effects.csv"),
            passed=str(out / "passed.txt"),
        )
        steps.clean(
            codebook=codebook,
            studies=str(raw / "studies.csv"),
            effects=str(raw / "effects.csv"),
            clean_effects=str(out / "clean.csv"),
            dropped=str(out / "dropped.csv"),
            summary=str(out / "summary.json"),
            inclusion=config.get("inclusion"),
            passed=str(out / "passed.txt"),
        )
        steps.effect_sizes(
            codebook=codebook,
            clean_effects=str(out / "clean.csv"),
            table=str(out / "effect_sizes.csv"),
            dropped=str(out / "es_dropped.csv"),
            summary=str(out / "es_summary.json"),
            options=config.get("effect_sizes"),
        )
        import pandas as pd

        return pd.read_csv(out / "effect_sizes.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=1999)
    args = parser.parse_args()

    from intervention_meta.methods.selection import selection_model

    es = example_effect_sizes().dropna(subset=["yi", "vi"])
    print(
        f"example data: k = {len(es)} effect sizes in {es['study_id'].nunique()} studies; "
        f"loadavg before: {os.getloadavg()}"
    )
    times = []
    for r in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        res = selection_model(
            es["yi"], es["vi"], cluster=es["study_id"], bootstrap=args.bootstrap, seed=SEED
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        times.append(wall)
        print(
            f"run {r + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU; "
            f"{res.bootstrap_converged}/{res.bootstrap} replicates converged"
        )
    m, w = res.adjusted_mean, res.weights[1]
    print(
        f"adjusted mean {m.estimate:.4f} (sandwich CI {m.ci_lb:.4f} to {m.ci_ub:.4f}; "
        f"bootstrap {m.boot_ci_lb:.4f} to {m.boot_ci_ub:.4f}); weight p > .025: {w.estimate:.3f}"
    )
    print(
        f"min {min(times):.2f} s for {args.bootstrap} replications "
        f"(target < 5 s); loadavg after: {os.getloadavg()}"
    )


if __name__ == "__main__":
    sys.exit(main())
