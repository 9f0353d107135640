"""Speed of the step-function selection model with a cluster bootstrap on the example data.

Computes the shipped example's effect sizes with the functions of the package's clean and
effect_sizes steps (``config/config.yaml``: the rows and values the pipeline's
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
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240913


def example_effect_sizes():
    """The example's effect sizes (a DataFrame with ``study_id``, ``yi``, ``vi``): the clean and
    effect-size steps' functions on ``data/raw`` with ``config/config.yaml``."""
    import yaml

    from intervention_meta.data.cleaning import clean, read_clean
    from intervention_meta.data.codebook import load_codebook
    from intervention_meta.effect_sizes.compute import compute_effect_sizes
    from intervention_meta.io import write_table

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    cb = load_codebook(ROOT / "data" / "codebook.yaml")
    raw = ROOT / "data" / "raw"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "effects.csv"
        write_table(
            clean(cb, raw / "studies.csv", raw / "effects.csv", config["inclusion"]).effects, path
        )
        effects = read_clean(path, cb)
    return compute_effect_sizes(
        effects,
        higher_is_worse_levels=cb.higher_is_worse_levels(),
        key=cb.key(cb.child_table),
        requires=cb.statistic_columns(),
        **config.get("effect_sizes", {}),
    ).table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=1999)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the example's validation notes

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
