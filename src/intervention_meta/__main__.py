"""Command line: ``python -m intervention_meta <step> ...`` runs one step without Snakemake.

The Snakemake rules call the same functions (``intervention_meta.steps``); this entry point is
for working on one step by hand, e.g.::

    python -m intervention_meta validate --codebook data/codebook.yaml \
        --studies data/raw/studies.csv --effects data/raw/effects.csv \
        --out results/example/validation
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intervention_meta.errors import InputError
from intervention_meta.io import setup_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m intervention_meta", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check the data tables against the codebook")
    v.add_argument("--codebook", required=True)
    v.add_argument("--studies", required=True)
    v.add_argument("--effects", required=True)
    v.add_argument("--out", required=True, help="folder for report.md, report.csv, passed.txt")

    c = sub.add_parser("clean", help="merge, recode missing values, apply inclusion criteria")
    c.add_argument("--config", required=True, help="a pipeline config (for the inclusion criteria)")
    c.add_argument("--out", required=True, help="folder for effects.csv, dropped.csv, summary.json")

    e = sub.add_parser("effect-sizes", help="compute Hedges' g and its variance per row")
    e.add_argument("--config", required=True)
    e.add_argument("--clean", required=True, help="clean/effects.csv from the clean step")
    e.add_argument("--out", required=True, help="folder for effect_sizes*.csv")
    p.add_argument("--log", default=None, help="also write the log to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log)
    from intervention_meta import steps as pipeline
    from intervention_meta.config import load_config

    try:
        if args.command == "validate":
            pipeline.run_validate(
                args.codebook, args.studies, args.effects, str(Path(args.out) / "passed.txt")
            )
        elif args.command == "clean":
            cfg = load_config(args.config)
            out = Path(args.out)
            pipeline.run_clean(
                cfg["codebook"],
                cfg["data"]["studies"],
                cfg["data"]["effects"],
                cfg.get("inclusion", {}),
                str(out / "effects.csv"),
                str(out / "dropped.csv"),
                str(out / "summary.json"),
            )
        elif args.command == "effect-sizes":
            cfg = load_config(args.config)
            out = Path(args.out)
            pipeline.run_effect_sizes(
                cfg["codebook"],
                args.clean,
                cfg.get("effect_sizes", {}),
                str(out / "effect_sizes.csv"),
                str(out / "effect_sizes_dropped.csv"),
                str(out / "effect_sizes_summary.json"),
            )
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
