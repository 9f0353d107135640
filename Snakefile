# The pipeline: data/raw + codebook + config -> data (validate, clean, effect sizes) -> ...
# Rules (workflow/rules/*.smk) are thin: each calls one function of the intervention_meta package
# through a script in workflow/scripts/. Outputs go to results/<analysis>/.
import sys

from snakemake.utils import min_version

from intervention_meta.config import check_config, read_yaml
from intervention_meta.errors import InputError

min_version("9.0")


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
