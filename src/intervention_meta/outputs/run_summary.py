"""A short summary of finished pipeline runs, for the end of ``make run``: per analysis the pooled
effect with its interval, the number of warnings and where the report is.

Read from what the run wrote (``models/overall.json``, ``effect_sizes_summary.json`` for the
measure's symbol, ``warnings.txt``, ``report.html``/``report.docx``), never from a log; the full
log of every job stays in ``results/<analysis>/logs/`` and Snakemake's in ``.snakemake/log/``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from intervention_meta.io import read_json

log = logging.getLogger(__name__)

__all__ = ["AnalysisSummary", "RunSummary", "print_summary", "summarise_runs"]


@dataclass(frozen=True)
class AnalysisSummary:
    """One analysis: its pooled effect (``text``, empty when not estimable), warnings, report."""

    analysis: str
    config: str
    results: str
    text: str
    n_warnings: int | None
    report: str | None
    heading: str = "pooled effect"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunSummary:
    """The analyses of one ``make run``."""

    analyses: tuple[AnalysisSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"analyses": [a.to_dict() for a in self.analyses]}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([a.to_dict() for a in self.analyses])

    def to_text(self) -> str:
        lines = []
        for a in self.analyses:
            lines.append(f"{a.analysis} ({a.config})")
            lines.append(f"  {a.heading + ':':<14} {a.text}")
            if a.n_warnings is not None:
                lines.append(f"  warnings:      {a.n_warnings} ({a.results}/warnings.txt)")
            lines.append(f"  report:        {a.report or 'not written'}")
        return "\n".join(lines) + "\n"


def _pooled_text(overall: dict, effect_sizes: dict) -> str:
    from intervention_meta.outputs.labels import measure_labels
    from intervention_meta.outputs.tables import fmt_ci, fmt_est

    e = overall.get("estimate") or {}
    if not overall.get("estimable", True) or e.get("estimate") is None:
        return f"not estimable ({overall.get('reason') or 'see the warnings'})"
    labels = measure_labels(effect_sizes)
    level = f"{100 * float(e.get('level') or 0.95):g}%"
    text = (
        f"{labels.symbol} = {fmt_est(e['estimate'])}, {level} CI "
        f"{fmt_ci(e.get('ci_lb'), e.get('ci_ub'))}"
    )
    if e.get("pi_lb") is not None:
        text += f", {level} PI {fmt_ci(e.get('pi_lb'), e.get('pi_ub'))}"
    an = overall.get("analysis") or {}
    counts = [f"k = {an['k']}"] if an.get("k") is not None else []
    if an.get("n_studies") is not None:
        counts.append(f"{an['n_studies']} studies")
    if counts:
        text += f" ({', '.join(counts)})"
    return text


def _vignette_text(path: Path) -> str:
    """A vignette study's findings, one line per outcome: respondents and ratings, then per outcome
    the level of each factor with the highest estimate (from findings.json)."""
    found = read_json(path) if path.is_file() else {}
    if not found:
        return "no results"
    highest: dict[str, list[str]] = {}
    for f in found.get("findings", []):
        if f.get("kind") == "factor":
            level = next(lv["label"] for lv in f["levels"] if lv["level"] == f["highest"])
            top = f"{f['factor_label'].lower()} {level.split(' (')[0]}"
            highest.setdefault(f["outcome_label"], []).append(top)
    head = f"{found.get('n_respondents')} respondents, {found.get('n_ratings')} ratings"
    lines = [f"{outcome}: highest for {', '.join(tops)}" for outcome, tops in highest.items()]
    return f"\n{' ' * 17}".join([head, *lines])


def summarise_runs(configs: Sequence[str | Path], workdir: str | Path = ".") -> RunSummary:
    """The summary of the analyses of ``configs`` (their ``analysis`` names say where their
    results are: ``results/<analysis>/`` under ``workdir``)."""
    from intervention_meta.config import read_yaml

    workdir = Path(workdir)
    out = []
    for cfg in configs:
        config = read_yaml(cfg)[0] or {}
        analysis = str(config.get("analysis", ""))
        res = workdir / "results" / analysis
        overall = read_json(res / "models" / "overall.json") if res.is_dir() else {}
        effect_sizes = read_json(res / "effect_sizes_summary.json") if res.is_dir() else {}
        text = _pooled_text(overall, effect_sizes) if overall else "no results"
        warnings = res / "warnings.txt"
        n_warn = None
        if warnings.is_file():
            n_warn = sum(1 for line in warnings.read_text(encoding="utf-8").splitlines() if line)
        reports = [res / name for name in ("report.html", "report.docx")]
        report = " and ".join(str(p) for p in reports if p.is_file()) or None
        if "vignette" in config:
            text = _vignette_text(res / "vignette" / "findings.json")
            out.append(
                AnalysisSummary(analysis, str(cfg), str(res), text, None, report, "findings")
            )
            continue
        out.append(AnalysisSummary(analysis, str(cfg), str(res), text, n_warn, report))
    return RunSummary(tuple(out))


def print_summary(*, configs: Sequence[str]) -> RunSummary:
    """The ``summary`` command: print :func:`summarise_runs` of ``configs`` to standard output."""
    summary = summarise_runs(configs)
    sys.stdout.write(summary.to_text())
    return summary
