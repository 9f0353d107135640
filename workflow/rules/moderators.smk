# Rule(s) of the moderators analysis (issue 3); see workflow/rules/common.smk for RES, logfile, ENV.


def moderators_outputs():
    """Outputs of the moderators analysis that `rule all` asks for."""
    return []
