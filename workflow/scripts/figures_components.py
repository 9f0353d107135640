from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_components

setup_logging(snakemake.log[0])
make_components(
    snakemake.input.effects,
    snakemake.input.codebook,
    snakemake.input.moderators,
    snakemake.input.components,
    snakemake.output.png.removesuffix(".png"),
    meta=snakemake.output.meta,
)
