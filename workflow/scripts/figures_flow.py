from pathlib import Path

from intervention_meta.io import setup_logging
from intervention_meta.plots.figures import make_flow

setup_logging(snakemake.log[0])
make_flow(
    snakemake.input.clean,
    snakemake.input.effect_sizes,
    snakemake.input.overall,
    snakemake.input.codebook,
    snakemake.output.png.removesuffix(".png"),
    validation_report=Path(snakemake.input.passed).with_name("report.csv"),
    meta=snakemake.output.meta,
)
