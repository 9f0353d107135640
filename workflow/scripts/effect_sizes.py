from intervention_meta.io import setup_logging
from intervention_meta.steps import run_effect_sizes

setup_logging(snakemake.log[0])
run_effect_sizes(
    snakemake.input.codebook,
    snakemake.input.effects,
    dict(snakemake.params.options),
    snakemake.output.table,
    snakemake.output.dropped,
    snakemake.output.summary,
)
