from intervention_meta.logs import setup_logging
from intervention_meta.pipeline import run_validate

setup_logging(snakemake.log[0])
run_validate(
    snakemake.input.codebook,
    snakemake.input.studies,
    snakemake.input.effects,
    snakemake.output.passed,
)
