# Rule(s) of the bias analysis (issue 3); see workflow/rules/common.smk for RES, logfile, ENV.


def bias_outputs():
    """Outputs of the bias analysis that `rule all` asks for."""
    return []
