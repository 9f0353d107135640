from intervention_meta.io import setup_logging
from intervention_meta.steps import run_clean

setup_logging(snakemake.log[0])
run_clean(
    snakemake.input.codebook,
    snakemake.input.studies,
    snakemake.input.effects,
    dict(snakemake.params.inclusion),
    snakemake.output.effects,
    snakemake.output.dropped,
    snakemake.output.summary,
)
