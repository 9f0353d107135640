"""Every rule's script: run the rule's step (intervention_meta.steps.STEPS[rule name]), passing
the rule's named input, output, params and wildcards by name, with the log in the rule's log."""

from intervention_meta.steps import run_rule

run_rule(snakemake)
