from intervention_meta.analyses.sensitivity import run_sensitivity
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
run_sensitivity(
    snakemake.input.effects,
    snakemake.input.clean,
    snakemake.input.codebook,
    models=dict(snakemake.params.models),
    sensitivity=dict(snakemake.params.sensitivity),
    effect_options=dict(snakemake.params.effect_sizes),
    tables={name: snakemake.output[name] for name in snakemake.params.tables},
    json_path=snakemake.output.json,
    flags_path=snakemake.output.flags,
)
