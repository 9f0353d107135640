from intervention_meta.analyses.overall import run_overall
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
run_overall(
    snakemake.input.effects,
    snakemake.input.codebook,
    dict(snakemake.params.models),
    table=snakemake.output.table,
    json_path=snakemake.output.json,
    flags_path=snakemake.output.flags,
    comparison=snakemake.output.comparison,
    variance=snakemake.output.variance,
    subset=dict(snakemake.params.subset),
    inclusion=dict(snakemake.params.inclusion),
)
