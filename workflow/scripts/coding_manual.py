from intervention_meta.logs import setup_logging
from intervention_meta.manual import render_manual

setup_logging(snakemake.log[0])
manual = render_manual(snakemake.input.codebook)
manual.write(markdown=snakemake.output.md, html_path=snakemake.output.html)
