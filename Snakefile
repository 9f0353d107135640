# The pipeline: data/raw + codebook + config -> validate -> clean -> effect_sizes -> ...
# Rules (workflow/rules/*.smk) are thin: each calls one function of the intervention_meta package
# through a script in workflow/scripts/. Outputs go to results/<analysis>/.
from snakemake.utils import min_version, validate

min_version("9.0")


# The default config is read only when no --configfile is given: Snakemake merges config files
# recursively, so a second data set's config would otherwise inherit the default's inclusion criteria.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/common_figures.smk"
include: "workflow/rules/common_report.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/clean.smk"
include: "workflow/rules/effect_sizes.smk"
include: "workflow/rules/overall.smk"
include: "workflow/rules/moderators.smk"
include: "workflow/rules/components.smk"
include: "workflow/rules/bias.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/warnings.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/coding.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
