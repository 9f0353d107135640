from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import write_manifest

setup_logging(snakemake.log[0])
write_manifest(list(snakemake.input.meta), snakemake.output.manifest)
