# The pipeline: data/raw + codebook + config -> data (validate, clean, effect sizes) -> ...
# Rules (workflow/rules/*.smk) are thin: each calls one function of the intervention_meta package
# through a script in workflow/scripts/. Outputs go to results/<analysis>/.
import os
import sys

from snakemake.utils import min_version

from intervention_meta.config import check_config, read_yaml
from intervention_meta.errors import InputError

min_version("9.0")

# The environment of every job (set here, inherited by the job processes; a value the user set
# wins). Each job is one process on one core (threads: 1), so OpenBLAS's own threads would only
# compete with the other jobs for the cores. glibc's malloc hands an array above its (adaptive)
# mmap threshold back to the system when freed, and the fits allocate many such arrays, each then
# page-faulted in anew: a fixed threshold of 32 MiB (glibc's maximum) and a trim threshold twice
# that keep them in the heap (the moderators job of the example: 6.2 -> 4.2 s of CPU, the same
# peak memory).
for _name, _value in {
    "OPENBLAS_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
}.items():
    os.environ.setdefault(_name, _value)


# The default config is read only when no --configfile is given: Snakemake merges config files
# recursively, so a second data set's config would otherwise inherit the default's inclusion criteria.
# Snakemake's own reader would say only "not valid JSON or YAML": a syntax error says where and why.
if not workflow.config_settings.configfiles:
    try:
        read_yaml("config/config.yaml")
    except InputError as error:
        sys.exit(error.short())

    configfile: "config/config.yaml"


# The schema (filling in its defaults) and every file and variable the config names, all problems
# at once, one short line each; nothing runs when there is one.
try:
    # a config with a `vignette` section is a vignette study: its own schema and rules
    kind = "vignette" if "vignette" in config else "config"
    schema = f"{workflow.basedir}/workflow/schemas/{kind}.schema.yaml"
    for warning in check_config(config, workflow.configfiles, schema=schema):
        print(warning.short(), file=sys.stderr)
except InputError as error:
    sys.exit(error.short())


if "vignette" in config:

    include: "workflow/rules/vignette.smk"

else:

    include: "workflow/rules/common.smk"
    include: "workflow/rules/common_figures.smk"
    include: "workflow/rules/common_report.smk"
    include: "workflow/rules/data.smk"
    include: "workflow/rules/overall.smk"
    include: "workflow/rules/moderators.smk"
    include: "workflow/rules/components.smk"
    include: "workflow/rules/bias.smk"
    include: "workflow/rules/sensitivity.smk"
    include: "workflow/rules/warnings.smk"
    include: "workflow/rules/figures.smk"
    include: "workflow/rules/report.smk"
    include: "workflow/rules/coding.smk"
    include: "workflow/rules/cards.smk"
    include: "workflow/rules/multiverse.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
