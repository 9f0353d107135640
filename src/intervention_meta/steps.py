"""The steps the Snakemake rules (and the command line) run: paths in, files out, everything logged.

Each step reads its inputs, calls the package's functions, writes its outputs and logs what it did
(rows in, rows out, rows dropped and why). No statistics live here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from intervention_meta.data.cleaning import clean, read_clean
from intervention_meta.data.codebook import load_codebook
from intervention_meta.data.validation import validate
from intervention_meta.effect_sizes.compute import compute_effect_sizes
from intervention_meta.io import write_json

log = logging.getLogger(__name__)


def run_validate(codebook: str, studies: str, effects: str, passed: str) -> None:
    """Validate both tables; write ``report.md``/``report.csv`` beside ``passed``.

    ``passed`` is written only when there is no error, so the pipeline stops at this step, while the
    report files (not declared as outputs, so Snakemake does not delete them on failure) stay.
    """
    outdir = Path(passed).parent
    cb = load_codebook(codebook)
    report = validate(cb, studies, effects)
    paths = report.write(outdir)
    for p in report.warnings:
        log.warning("%s", p.message())
    if not report.ok:
        for p in report.errors:
            log.error("%s", p.message())
        report.raise_for_errors(paths["md"])
    Path(passed).write_text(report.summary(paths["md"]) + "\n", encoding="utf-8")


def run_clean(
    codebook: str,
    studies: str,
    effects: str,
    inclusion: dict,
    out_effects: str,
    out_dropped: str,
    out_summary: str,
) -> None:
    """Merge, recode missing values, apply inclusion criteria; write kept and dropped rows."""
    cb = load_codebook(codebook)
    result = clean(cb, studies, effects, inclusion)
    Path(out_effects).parent.mkdir(parents=True, exist_ok=True)
    result.effects.to_csv(out_effects, index=False)
    result.dropped.to_csv(out_dropped, index=False)
    counts = result.counts
    write_json(counts, out_summary)
    log.info(
        "clean: %d rows in, %d kept, %d dropped (%d of %d studies kept)",
        counts["rows_in"],
        counts["kept"],
        counts["dropped"],
        counts["studies_kept"],
        counts["studies_in"],
    )
    for reason, n in counts["dropped_by_reason"].items():
        log.info("clean: dropped %d row(s): %s", n, reason)


def run_effect_sizes(
    codebook: str,
    clean_effects: str,
    options: dict,
    out_table: str,
    out_dropped: str,
    out_summary: str,
) -> None:
    """Compute Hedges' g and its variance per row; log computed vs dropped (they add up)."""
    cb = load_codebook(codebook)
    data = read_clean(clean_effects, cb)
    result = compute_effect_sizes(
        data,
        higher_is_worse_levels=cb.higher_is_worse_levels(),
        key=cb.key(cb.child_table),
        source_name=Path(clean_effects).name,
        **options,
    )
    result.table.to_csv(out_table, index=False)
    result.dropped.to_csv(out_dropped, index=False)
    write_json(result.counts, out_summary)
    for line in result.log_lines():
        log.info("%s", line)


def run_collect_warnings(flag_files: list[str], out: str) -> None:
    """Concatenate the steps' flag files (one line per flag) into one warnings file."""
    lines: list[str] = []
    for path in flag_files:
        lines += [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    log.info("warnings: %d flag(s) from %d step(s)", len(lines), len(flag_files))
