from intervention_meta.coding.reliability import compare_coders
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
inputs = snakemake.input
result = compare_coders(
    inputs.codebook,
    inputs.studies_a,
    inputs.studies_b,
    getattr(inputs, "effects_a", None),
    getattr(inputs, "effects_b", None),
    conf_level=float(snakemake.params.conf_level),
    tolerance=float(snakemake.params.tolerance),
)
result.write(snakemake.output.agreement, snakemake.output.json, snakemake.output.disagreements)
