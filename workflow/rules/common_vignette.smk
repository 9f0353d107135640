# Names and helpers of the vignette rules (workflow/rules/vignette.smk); the config's vignette
# section is checked against the codebook here, at start-up, all problems at once.
import os
import sys

from intervention_meta.errors import InputError
from intervention_meta.vignette.settings import vignette_config_problems

try:
    _problems = vignette_config_problems(
        config, file=",".join(map(str, workflow.configfiles))
    )
    if _problems:
        raise InputError(
            _problems, summary=f"vignette config: {len(_problems)} problem(s)"
        )
except InputError as error:
    sys.exit(error.short())

VIGNETTE_RES = f"{RES}/vignette"
VIGNETTE_DATA = [config["data"][table] for table in CODEBOOK.tables] if CODEBOOK else []


def vignette_configfiles():
    """The config files, relative to the working directory when inside it (as the report
    records them)."""
    return [
        os.path.relpath(p) if os.path.abspath(p).startswith(os.getcwd()) else p
        for p in workflow.configfiles
    ]


def all_outputs():
    """Everything the target `all` asks for in a vignette study."""
    steps = ["vignette", "vignette_outputs", "coding_manual", "coding_template"]
    return [path for step in steps for path in getattr(rules, step).output]
