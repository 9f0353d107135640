from pathlib import Path

from intervention_meta.io import setup_logging
from intervention_meta.outputs.tables import run_tables

setup_logging(snakemake.log[0])
run_tables(
    {name: snakemake.input[name] for name in snakemake.params.tables},
    Path(snakemake.output.index).parent,
    domain_files=dict(zip(snakemake.params.domains, snakemake.input.domains, strict=True)),
    codebook=snakemake.input.codebook,
    domain_variable=snakemake.params.domain_variable,
)
