from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_orchard

setup_logging(snakemake.log[0])
make_orchard(
    snakemake.input.effects,
    snakemake.input.codebook,
    snakemake.input.moderators,
    snakemake.input.tests,
    snakemake.input.json,
    snakemake.wildcards.moderator,
    snakemake.output.png.removesuffix(".png"),
    meta=snakemake.output.meta,
)
