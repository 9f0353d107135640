from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_forest

setup_logging(snakemake.log[0])
make_forest(
    snakemake.input.effects,
    snakemake.input.codebook,
    snakemake.input.study_effects,
    snakemake.input.overall,
    snakemake.output.png.removesuffix(".png"),
    sort=snakemake.params.sort,
    meta=snakemake.output.meta,
)
