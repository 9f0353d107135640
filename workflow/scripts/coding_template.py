from intervention_meta.coding.template import write_template
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
write_template(snakemake.input.codebook, snakemake.output.xlsx)
