from intervention_meta.io import setup_logging
from intervention_meta.steps import run_collect_warnings

setup_logging(snakemake.log[0])
run_collect_warnings(list(snakemake.input), snakemake.output[0])
