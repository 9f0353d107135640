from intervention_meta.analyses.components import run_components
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
run_components(
    snakemake.input.effect_sizes,
    snakemake.input.codebook,
    models=dict(snakemake.params.models),
    options=dict(snakemake.params.options),
    out_profiles=snakemake.output.profiles,
    out_consistency=snakemake.output.consistency,
    out_study_effects=snakemake.output.study_effects,
    out_json=snakemake.output.json,
    out_flags=snakemake.output.flags,
)
