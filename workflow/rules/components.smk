# Rule(s) of the components analysis (issue 3); see workflow/rules/common.smk for RES, logfile, ENV.


def components_outputs():
    """Outputs of the components analysis that `rule all` asks for."""
    return []
