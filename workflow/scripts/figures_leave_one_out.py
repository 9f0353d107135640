from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_leave_one_out

setup_logging(snakemake.log[0])
make_leave_one_out(
    snakemake.input.leave_one_out,
    snakemake.input.effects,
    snakemake.input.codebook,
    snakemake.output.png.removesuffix(".png"),
    meta=snakemake.output.meta,
)
