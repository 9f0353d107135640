# Helper functions of the figures stage (functions only: rules live in their own files, as snakemake --lint asks).
