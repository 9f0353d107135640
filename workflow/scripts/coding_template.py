from intervention_meta.logs import setup_logging
from intervention_meta.template import write_template

setup_logging(snakemake.log[0])
write_template(snakemake.input.codebook, snakemake.output.xlsx)
