from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_profiles

setup_logging(snakemake.log[0])
make_profiles(
    snakemake.input.effects,
    snakemake.input.codebook,
    snakemake.input.profiles,
    snakemake.input.study_effects,
    snakemake.input.components,
    snakemake.output.png.removesuffix(".png"),
    meta=snakemake.output.meta,
)
