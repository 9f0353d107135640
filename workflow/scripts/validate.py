from intervention_meta.io import setup_logging
from intervention_meta.steps import run_validate

setup_logging(snakemake.log[0])
run_validate(
    snakemake.input.codebook,
    snakemake.input.studies,
    snakemake.input.effects,
    snakemake.output.passed,
)
