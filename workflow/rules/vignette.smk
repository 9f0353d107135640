# The vignette study (a config with a `vignette` section; see config/vignette.yaml): validate and
# clean the respondents and ratings, fit the models (rule vignette), then the APA tables, figures
# and report (rule vignette_outputs); the coding manual and template of its codebook come from
# workflow/rules/coding.smk. Results go to results/<analysis>/.
import os
import sys

from intervention_meta.errors import InputError
from intervention_meta.vignette.analysis import vignette_config_problems


include: "common.smk"
include: "coding.smk"


# The variables and files the vignette section names, checked against the codebook at start-up,
# all problems at once.
try:
    _problems = vignette_config_problems(config, file=",".join(map(str, workflow.configfiles)))
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


rule vignette:
    """Validate and clean the two tables (same machinery and errors as the meta-analysis data),
    fit every model of every outcome (main effects, and group x factor interactions), write
    models.json, findings.json and the human CSVs."""
    input:
        codebook=config["codebook"],
        tables=VIGNETTE_DATA,
    output:
        json=f"{VIGNETTE_RES}/models.json",
        findings=f"{VIGNETTE_RES}/findings.json",
        terms=f"{RES}/tables/vignette_terms.csv",
        tests=f"{RES}/tables/vignette_tests.csv",
        means=f"{RES}/tables/vignette_means.csv",
        passed=f"{RES}/validation/passed.txt",
    log:
        logfile("vignette"),
    conda:
        ENV
    params:
        data=config["data"],
        vignette=config["vignette"],
    script:
        "../scripts/step.py"


rule vignette_outputs:
    """APA tables, the marginal-means figure of every factor, the heat map of every outcome and
    the self-contained HTML report (methods from the config, the same provenance block as the
    meta-analysis report)."""
    input:
        json=rules.vignette.output.json,
        findings=rules.vignette.output.findings,
        passed=rules.vignette.output.passed,
        checksummed=[config["codebook"], *VIGNETTE_DATA],
    output:
        html=report(
            f"{RES}/report.html",
            caption="../report/vignette.rst",
            category="9. Report",
        ),
        provenance=f"{RES}/provenance.json",
        tables_index=f"{RES}/tables/tables.json",
        figures_manifest=f"{RES}/figures/figures.json",
    log:
        logfile("vignette_outputs"),
    conda:
        ENV
    params:
        config=config,
        configfiles=vignette_configfiles(),
    script:
        "../scripts/step.py"


def all_outputs():
    """Everything the target `all` asks for in a vignette study."""
    steps = ["vignette", "vignette_outputs", "coding_manual", "coding_template"]
    return [path for step in steps for path in getattr(rules, step).output]
