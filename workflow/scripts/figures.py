from pathlib import Path

from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import FigureInputs, run_figures

setup_logging(snakemake.log[0])
inp = snakemake.input
run_figures(
    FigureInputs(
        effect_sizes=inp.effects,
        codebook=inp.codebook,
        clean_summary=inp.clean,
        effect_sizes_summary=inp.effect_sizes,
        overall=inp.overall,
        moderators=inp.moderators,
        components=inp.components,
        bias=inp.bias,
        sensitivity=inp.sensitivity,
        overall_domains=list(inp.domains),
        validation_report=Path(inp.passed).with_name("report.csv"),
    ),
    Path(snakemake.output.manifest).parent,
    orchard=list(snakemake.params.orchard),
    bubble=list(snakemake.params.bubble),
    domains=list(snakemake.params.domains),
    domain_variable=snakemake.params.domain_variable,
    forest_sort=snakemake.params.sort,
)
