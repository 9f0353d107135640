from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_funnel

setup_logging(snakemake.log[0])
make_funnel(
    snakemake.input.funnel,
    snakemake.input.trimfill,
    snakemake.input.json,
    snakemake.output.png.removesuffix(".png"),
    meta=snakemake.output.meta,
)
