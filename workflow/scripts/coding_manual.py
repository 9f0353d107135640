from intervention_meta.coding.manual import render_manual
from intervention_meta.io import setup_logging

setup_logging(snakemake.log[0])
manual = render_manual(snakemake.input.codebook)
manual.write(markdown=snakemake.output.md, html_path=snakemake.output.html)
