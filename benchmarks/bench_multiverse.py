"""Speed of a multiverse of 10,000+ specifications of the example data on 2 cores.

Makes the example's effect sizes with the pipeline's validate, clean and effect_sizes steps
(``config/config.yaml``), then runs the multiverse steps as the workflow does: the chunk step
(``run_multiverse_chunk``, one call per chunk of ``--chunk-size`` specifications, ``--cores``
worker processes side by side, as Snakemake runs the chunk jobs) and the gather step
(``run_multiverse``: the result table, the JSON and the specification-curve figure). No
bootstrap draws (``--bootstrap 0``; each draw costs one more pass over every specification).

The multiverse (:data:`MULTIVERSE`): 5 outcome-domain x 4 design x 4 risk-of-bias x 4 informant
subsets = 320, times 34 model specifications (fixed; random with REML, ML, DL; three-level with
REML, ML; CHE (rho 0.4, 0.8) with REML, ML; outliers none or studentized; bias adjustment none or
PET-PEESE (not for CHE), and the selection model for the random structure) = 10,880
specifications.

Prints the number of specifications, fitted and too small, the wall-clock seconds of the chunks
and of the gather, the chunks' CPU seconds (on idle cores the wall time of the fits is about their
sum over the cores) and ``os.getloadavg()`` before and after (the machine is shared).

Run: ``.venv/bin/python benchmarks/bench_multiverse.py [--cores 2] [--chunk-size 500]``.
Target (2-core machine): < 120 s for the whole.

``--jobs N`` instead measures the example pipeline's own multiverse jobs (``config/config.yaml``:
its chunk jobs and the gather job) as Snakemake starts them, one ``python -m intervention_meta``
process each, imports included: the CPU seconds (user + sys) of each, best of ``N`` runs.
Targets: <= 2.5 s per chunk job, <= 1.3 s for the gather.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MULTIVERSE = {
    "which": {
        "outcome_domain": [
            "all",
            "social_support",
            "parenting_stress",
            "child_wellbeing",
            "parenting_competence",
        ],
        "design": ["all", "rct", "quasi", ["rct", "quasi"]],
        "risk_of_bias": ["all", 1, [1, 2], [2, 3]],
        "informant": [
            "all",
            "parent",
            ["child", "observation", "professional"],
            ["parent", "child"],
        ],
    },
    "how": {
        "structure": ["fixed", "random", "three_level", "che"],
        "method": ["REML", "ML", "DL"],
        "rho": [0.4, 0.8],
        "outliers": ["none", "studentized"],
        "bias": ["none", "pet_peese", "selection"],
    },
    # PET-PEESE in the CHE model (two CHE meta-regressions with CR2 tests per spec) would be a
    # third of the specifications' time; the CHE structure's bias adjustment is its own question
    "exclude": [{"structure": "che", "bias": "pet_peese"}],
    "bootstrap": 0,
}


def effect_sizes(config: dict, dest: Path) -> Path:
    """validate -> clean -> effect_sizes of ``config`` into ``dest``; the effect sizes' CSV."""
    from intervention_meta.steps import run_step, step_params

    files = {
        "codebook": str(ROOT / config["codebook"]),
        "studies": str(ROOT / config["data"]["studies"]),
        "effects": str(ROOT / config["data"]["effects"]),
    }
    run_step("validate", **files, passed=str(dest / "passed.txt"))
    clean = {"clean_effects": str(dest / "clean.csv"), "summary": str(dest / "clean.json")}
    run_step(
        "clean", **files, **clean, dropped=str(dest / "dropped.csv"), **step_params("clean", config)
    )
    table = dest / "effect_sizes.csv"
    run_step(
        "effect_sizes",
        codebook=files["codebook"],
        clean_effects=clean["clean_effects"],
        table=str(table),
        dropped=str(dest / "es_dropped.csv"),
        summary=str(dest / "es_summary.json"),
        **step_params("effect_sizes", config),
    )
    return table


def _chunk(args: tuple) -> tuple[float, float]:
    from intervention_meta.multiverse.run import run_multiverse_chunk

    logging.getLogger("intervention_meta").setLevel(logging.WARNING)
    table, codebook, out, chunk, section, models = args
    start, cpu = time.perf_counter(), time.process_time()
    run_multiverse_chunk(
        effect_sizes=table,
        codebook=codebook,
        out=out,
        chunk=chunk,
        multiverse=section,
        models=models,
        seed=1,
    )
    return time.perf_counter() - start, time.process_time() - cpu


def _cpu(command: list[str]) -> float:
    """CPU seconds (user + sys) of ``command`` run from the project's root."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def pipeline_jobs(config: dict, repeats: int) -> dict:
    """CPU seconds of the example pipeline's multiverse jobs (best of ``repeats``)."""
    from intervention_meta.multiverse.run import chunk_numbers

    step = [sys.executable, "-m", "intervention_meta"]
    settings = ["--config", "config/config.yaml", "--codebook", config["codebook"]]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table = str(effect_sizes(config, tmp))
        chunks = [str(tmp / f"{c}.json") for c in chunk_numbers(config)]
        jobs = {
            f"multiverse_chunk {c}": [
                *step, "multiverse-chunk", *settings, "--effect-sizes", table,
                "--out", out, "--chunk", str(c),
            ]
            for c, out in enumerate(chunks)
        }  # fmt: skip
        jobs["multiverse (gather)"] = [
            *step, "multiverse", *settings, "--chunks", *chunks, "--json", str(tmp / "mv.json"),
            "--table", str(tmp / "mv.csv"), "--figure", str(tmp / "mv.png"),
        ]  # fmt: skip
        cpu = {name: [] for name in jobs}
        for _ in range(repeats):
            for name, command in jobs.items():
                cpu[name].append(_cpu(command))
    return {
        "cpu_seconds_best": {name: round(min(times), 2) for name, times in cpu.items()},
        "cpu_seconds_all": {name: [round(t, 2) for t in times] for name, times in cpu.items()},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=0, metavar="N")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("intervention_meta").setLevel(logging.WARNING)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    if args.jobs:
        json.dump(pipeline_jobs(config, args.jobs), sys.stdout, indent=2)
        print()
        return
    from intervention_meta.multiverse.run import run_multiverse
    from intervention_meta.multiverse.specs import enumerate_specs

    section = {**MULTIVERSE, "chunk_size": args.chunk_size}
    mv = enumerate_specs(section)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table = effect_sizes(config, tmp)
        codebook = str(ROOT / config["codebook"])
        jobs = [
            (str(table), codebook, str(tmp / f"chunk{c}.json"), c, section, config["models"])
            for c in range(mv.n_chunks)
        ]
        start = time.perf_counter()
        with ProcessPoolExecutor(args.cores) as pool:
            per_chunk = list(pool.map(_chunk, jobs))
        fitting = time.perf_counter() - start
        start = time.perf_counter()
        record = run_multiverse(
            chunks=[j[2] for j in jobs],
            json=str(tmp / "multiverse.json"),
            table=str(tmp / "multiverse.csv"),
            figure=str(tmp / "curve.png"),
            codebook=codebook,
            multiverse=section,
            models=config["models"],
        )
        gather = time.perf_counter() - start
    summary = record["summary"]
    out = {
        "specifications": len(mv),
        "excluded_by_rules": mv.excluded,
        "status": summary["status_counts"],
        "chunks": mv.n_chunks,
        "cores": args.cores,
        "chunk_wall_seconds_max": round(max(w for w, _ in per_chunk), 1),
        # what the chunks cost the CPU: on 2 otherwise idle cores the fits take about half
        "chunk_cpu_seconds_total": round(sum(c for _, c in per_chunk), 1),
        "fit_wall_seconds": round(fitting, 1),
        "gather_wall_seconds": round(gather, 1),
        "total_wall_seconds": round(fitting + gather, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
