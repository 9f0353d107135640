from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_variance

setup_logging(snakemake.log[0])
make_variance(
    list(snakemake.input.variance),
    list(snakemake.input.overall),
    snakemake.input.codebook,
    snakemake.output.png.removesuffix(".png"),
    domains=list(snakemake.params.domains),
    domain_variable=snakemake.params.domain_variable,
    meta=snakemake.output.meta,
)
