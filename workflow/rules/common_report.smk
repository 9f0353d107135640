# Helper functions of the report stage (functions only: rules live in their own files, as snakemake --lint asks).
