from pathlib import Path

from intervention_meta.io import setup_logging
from intervention_meta.outputs.provenance import collect_provenance
from intervention_meta.outputs.report import ReportInputs, run_report

setup_logging(snakemake.log[0])
inp = snakemake.input
inputs = ReportInputs(
    tables_index=inp.tables_index,
    overall=inp.overall,
    clean_summary=inp.clean_summary,
    effect_sizes_summary=inp.effect_sizes_summary,
    warnings=inp.warnings,
    moderators=inp.moderators,
    components=inp.components,
    bias=inp.bias,
    sensitivity=inp.sensitivity,
    clean_dropped=inp.clean_dropped,
    effect_sizes_dropped=inp.effect_sizes_dropped,
    validation=inp.validation,
    figures_manifest=inp.figures[0] if inp.figures else None,
    reliability=inp.get("reliability"),
)
provenance = collect_provenance(
    list(inp.checksummed),
    snakemake.params.config,
    config_files=list(inp.configfiles),
    workdir=Path.cwd(),
)
run_report(
    inputs,
    snakemake.params.config,
    snakemake.output.html,
    provenance=provenance,
    out_provenance=snakemake.output.provenance,
)
