# Rule(s) of the overall analysis (issue 3); see workflow/rules/common.smk for RES, logfile, ENV.


def overall_outputs():
    """Outputs of the overall analysis that `rule all` asks for."""
    return []
