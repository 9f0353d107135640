# Tools for coders: coding manual, coding template, inter-rater reliability (filled in by issue 5).


def coding_outputs():
    """Outputs of the coding tools that `rule all` asks for."""
    return []
