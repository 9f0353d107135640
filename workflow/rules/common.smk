# Shared names and helper functions for all rules (rule files hold rules only, as `snakemake
# --lint` asks). Every output of an analysis lives under results/<analysis>/.
import os
import re

from snakemake.logging import logger

from intervention_meta.steps import step_params as config_params

ANALYSIS = config["analysis"]
RES = f"results/{ANALYSIS}"
ENV = "../../environment.yml"

# The analysis steps that write a flag file (one line per flag) for the warnings file.
FLAGGED_STEPS = ("overall", "moderators", "components", "bias", "sensitivity")


def step_params(step):
    """The params a step takes from the config (intervention_meta.steps.STEPS says which)."""
    return config_params(step, config)


def logfile(step):
    return f"{RES}/logs/{step}.log"


def flagfile(step):
    """One line per flag a step raises (small cells, non-convergence, dropped rows)."""
    return f"{RES}/flags/{step}.txt"


# The tables of the sensitivity step (tables/sensitivity_<name>.csv).
SENSITIVITY_TABLES = [
    "summary",
    "leave_one_out",
    "influence",
    "outliers",
    "estimators",
    "assumptions",
]


# --------------------------------------------------------------------------- the codebook
def parse_codebook():
    """The codebook, read once when the workflow is parsed, for the per-domain analyses and the
    figures (None if it cannot be read: rule data reports why)."""
    from intervention_meta.data.codebook import load_codebook

    try:
        return load_codebook(config["codebook"])
    except Exception as err:  # a broken codebook is reported by rule data
        logger.warning(
            f"cannot read the codebook ({err}); no per-domain analyses, no moderator plots"
        )
        return None


CODEBOOK = parse_codebook()


# --------------------------------------------------------------------------- per-domain analyses
def overall_domains():
    """The levels of models.domain_variable that get their own analysis ([] if none)."""
    models = config.get("models", {})
    if CODEBOOK is None or not models.get("per_domain", False):
        return []
    from intervention_meta.data.codebook import domain_levels

    return domain_levels(
        CODEBOOK,
        models.get("domain_variable", "outcome_domain"),
        config.get("inclusion", {}),
    )


OVERALL_DOMAINS = overall_domains()
DOMAIN_RES = f"{RES}/domains/{{domain}}"


def domain_files(name, caption=None):
    """The file `name` of every domain's analysis, in the order of OVERALL_DOMAINS; with
    `caption`, marked for `snakemake --report` (one subcategory per domain)."""
    files = [f"{RES}/domains/{domain}/{name}" for domain in OVERALL_DOMAINS]
    if caption is None:
        return files
    marked = []
    for path, domain in zip(files, OVERALL_DOMAINS):
        path = report(
            path, caption=caption, category="2. Overall effect", subcategory=domain
        )
        marked.append(path)
    return marked


# --------------------------------------------------------------------------- coding tools
# The project's coding scheme (data/codebook.yaml) gets its manual and template in results/codebook/;
# another data set's codebook gets them under its analysis, so two configs never overwrite each other.
CODING_RES = (
    "results/codebook"
    if os.path.normpath(config["codebook"]) == os.path.normpath("data/codebook.yaml")
    else f"{RES}/codebook"
)
RELIABILITY = config.get("reliability") or {}


def reliability_inputs(wildcards):
    """Coder A (the main data files) and coder B (the files under `reliability`)."""
    files = {
        "codebook": config["codebook"],
        "studies_a": config["data"]["studies"],
        "studies_b": RELIABILITY["studies"],
    }
    if RELIABILITY.get("effects"):
        files["effects_a"] = config["data"]["effects"]
        files["effects_b"] = RELIABILITY["effects"]
    return files


# --------------------------------------------------------------------------- the target all
def all_outputs():
    """Everything the target `all` asks for (the outputs of every step)."""
    steps = [
        "data",
        "overall",
        "overall_domains",
        "overall_flags",
        "moderators",
        "components",
        "bias",
        "sensitivity",
        "warnings",
        "coding_manual",
        "coding_template",
        "figures",
        "tables",
        "report",
        "cards",
    ]
    if RELIABILITY.get("studies"):
        steps.append("reliability")
    defined = {rule.name for rule in workflow.rules}
    steps = [
        step for step in steps if step in defined
    ]  # stages not built yet are skipped
    return [path for step in steps for path in getattr(rules, step).output]


# --------------------------------------------------------------------------- conversation cards
def cards_inputs(wildcards):
    """The vignette study's findings (config cards.vignette), only when the file exists now: the
    cards are made without it otherwise, and say so."""
    path = (config.get("cards") or {}).get("vignette")
    return {"vignette": path} if path and os.path.isfile(path) else {}
