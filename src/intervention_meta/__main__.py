"""Command line: ``python -m intervention_meta <step> ...`` runs one step without Snakemake.

Every step of the pipeline and every tool (coding manual and template, reliability, the
simulated literature and second coder) is a command, named like its rule (``-`` for ``_``); its
options are the keyword arguments of the step's function (:data:`intervention_meta.steps.STEPS`),
the same names the rule gives its input, output and params. Files are ``--name PATH`` (several
files: ``--name A B``); dicts are JSON (``--models '{"method": "ML"}'``). ``--config FILE`` takes
the data files and params from a pipeline config as the rules do; ``--out DIR`` puts every output
not named one by one in ``DIR`` under its usual file name. For example::

    python -m intervention_meta validate --config config/config.yaml --out results/x/validation
    python -m intervention_meta overall --config config/config.yaml \\
        --effect-sizes results/example/effect_sizes.csv --out /tmp/overall
    python -m intervention_meta simulate --seed 20261125 --out data/raw
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intervention_meta.steps import STEPS, Step, config_value

log = logging.getLogger("intervention_meta")


def _kind(parameter: inspect.Parameter) -> str:
    """How a keyword is given on the command line: json, list, int, float or text."""
    text = str(parameter.annotation)
    for kind, markers in (
        ("json", ("Mapping", "dict")),
        ("list", ("Sequence", "list", "Paths")),
        ("float", ("float",)),
        ("int", ("int",)),
    ):
        if any(marker in text for marker in markers):
            return kind
    return "text"


def _keywords(step: Step) -> dict[str, inspect.Parameter]:
    """The step function's keywords (``config``, the whole config, comes from ``--config``)."""
    return {
        name: p
        for name, p in inspect.signature(step.load()).parameters.items()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def _takes_more(step: Step) -> bool:
    """Whether the step function takes further named files (``**inputs``)."""
    params = inspect.signature(step.load()).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _add_step(sub: Any, name: str, step: Step, *, full: bool = True) -> None:
    """The subcommand of a step; its options only when ``full`` (they come from the step
    function's signature, so listing them imports the step's module)."""
    p = sub.add_parser(name.replace("_", "-"), help=step.help, description=step.help)
    p.set_defaults(step=name)
    if not full:
        return
    keywords = _keywords(step)
    for kw, parameter in keywords.items():
        if kw == "config":
            continue
        kind = _kind(parameter)
        options: dict[str, Any] = {"dest": kw, "default": None}
        if kind == "json":
            options.update(type=json.loads, metavar="JSON")
        elif kind == "list":
            options.update(nargs="*", metavar="PATH")
        elif kind in ("int", "float"):
            options.update(type=int if kind == "int" else float)
        if parameter.default is not inspect.Parameter.empty and parameter.default is not None:
            options["help"] = f"default: {parameter.default}"
        elif parameter.default is inspect.Parameter.empty:
            options["help"] = "required"
        p.add_argument(f"--{kw.replace('_', '-')}", **options)
    if _takes_more(step):
        p.add_argument("--inputs", type=json.loads, default={}, help="further files, as JSON")
    p.add_argument("--config", default=None, help="a pipeline config: data files and params")
    if "out" not in keywords:
        p.add_argument("--out", default=None, help="folder for the outputs not named one by one")
    p.add_argument("--log", default=None, help="also write the log to this file")


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; only the step named in ``argv`` gets its options (building every
    step's would import every step's module, scipy.stats and matplotlib among them)."""
    p = argparse.ArgumentParser(
        prog="python -m intervention_meta", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="<step>")
    words = sys.argv[1:] if argv is None else argv
    named = {w.replace("-", "_") for w in words if not w.startswith("-")}
    for name, step in STEPS.items():
        _add_step(sub, name, step, full=name in named)
    return p


def step_arguments(step: Step, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``step``: given options first, then ``--config``, then
    ``--out`` for the outputs."""
    config: Mapping[str, Any] = {}
    if args.config is not None:
        from intervention_meta.config import (
            check_references,
            default_config_schema,
            load_config,
            read_yaml,
        )

        schema = None  # a vignette study's config has its own schema, as in the Snakefile
        if "vignette" in (read_yaml(args.config)[0] or {}):
            schema = default_config_schema().with_name("vignette.schema.yaml")
        config = load_config(args.config, schema=schema)
        for warning in check_references(config, file=args.config):
            log.warning("%s", warning.short())
    kwargs: dict[str, Any] = {}
    for kw in _keywords(step):
        value = None if kw == "config" else getattr(args, kw, None)
        key = {**step.config_files, **step.config_params}.get(kw)
        if value is None and key is not None and config:
            value = config_value(config, key)
        if value is None and kw in step.outputs and getattr(args, "out", None):
            value = str(Path(args.out) / step.outputs[kw])
        if value is not None:
            kwargs[kw] = value
    return {**getattr(args, "inputs", {}), **kwargs}


def main(argv: list[str] | None = None) -> int:
    args = _parser(argv).parse_args(argv)
    from intervention_meta.errors import InputError
    from intervention_meta.io import setup_logging
    from intervention_meta.steps import run_step

    setup_logging(args.log)
    step = STEPS[args.step]
    try:
        kwargs = step_arguments(step, args)
    except InputError as exc:
        log.error("%s", exc.short())
        return 1
    missing = [
        f"--{kw.replace('_', '-')}"
        for kw, p in _keywords(step).items()
        if p.default is inspect.Parameter.empty and kw not in kwargs
    ]
    if missing:
        log.error("%s needs %s (or --config / --out)", args.command, ", ".join(missing))
        return 2
    try:
        run_step(args.step, **kwargs)
    except InputError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
