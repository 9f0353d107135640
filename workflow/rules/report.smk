# Rules of the report stage (issue 4). Helper functions belong in common.smk (snakemake --lint).
