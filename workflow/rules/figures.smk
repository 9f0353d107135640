# Rules of the figures stage (issue 4). Helper functions belong in common.smk (snakemake --lint).
