from intervention_meta.analyses.moderators import run_moderators
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
run_moderators(
    snakemake.input.effect_sizes,
    snakemake.input.codebook,
    models=dict(snakemake.params.models),
    options=dict(snakemake.params.options),
    out_moderators=snakemake.output.moderators,
    out_tests=snakemake.output.tests,
    out_multiple=snakemake.output.multiple,
    out_json=snakemake.output.json,
    out_flags=snakemake.output.flags,
)
