from intervention_meta.analyses.bias import run_bias
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
run_bias(
    snakemake.input.effects,
    snakemake.input.codebook,
    dict(snakemake.params.models),
    dict(snakemake.params.bias),
    table=snakemake.output.table,
    trimfill_table=snakemake.output.trimfill,
    funnel_table=snakemake.output.funnel,
    json_path=snakemake.output.json,
    flags_path=snakemake.output.flags,
)
