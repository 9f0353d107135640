# Rule(s) of the sensitivity analysis (issue 3); see workflow/rules/common.smk for RES, logfile, ENV.


def sensitivity_outputs():
    """Outputs of the sensitivity analysis that `rule all` asks for."""
    return []
