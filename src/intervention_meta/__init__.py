"""intervention_meta: a reproducible meta-analysis pipeline for coded intervention studies.

The statistics live here; the Snakemake workflow under ``workflow/`` only calls this package.
"""

__version__ = "0.1.0"
