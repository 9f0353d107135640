rule data:
    """The data steps in one job (steps.data): check both data tables against the codebook
    (validation/report.md and report.csv, all problems at once; the pipeline stops here on any
    error), merge studies into effects, turn missing codes into missing values and apply the
    inclusion criteria (every dropped row in clean/dropped.csv with its reason), then turn what
    each study reported into the declared effect measure and its sampling variance (rows that
    cannot yield a number in effect_sizes_dropped.csv, tiny variances and implausible effects
    flagged)."""
    input:
        codebook=config["codebook"],
        studies=config["data"]["studies"],
        effects=config["data"]["effects"],
    output:
        passed=report(
            f"{RES}/validation/passed.txt",
            caption="../report/validate.rst",
            category="1. Data",
            subcategory="validation",
        ),
        clean_effects=f"{RES}/clean/effects.csv",
        clean_dropped=report(
            f"{RES}/clean/dropped.csv",
            caption="../report/clean.rst",
            category="1. Data",
            subcategory="cleaning",
        ),
        clean_summary=report(
            f"{RES}/clean/summary.json",
            caption="../report/clean.rst",
            category="1. Data",
            subcategory="cleaning",
        ),
        table=report(
            f"{RES}/effect_sizes.csv",
            caption="../report/effect_sizes.rst",
            category="1. Data",
            subcategory="effect sizes",
        ),
        dropped=report(
            f"{RES}/effect_sizes_dropped.csv",
            caption="../report/effect_sizes.rst",
            category="1. Data",
            subcategory="effect sizes",
        ),
        summary=report(
            f"{RES}/effect_sizes_summary.json",
            caption="../report/effect_sizes.rst",
            category="1. Data",
            subcategory="effect sizes",
        ),
        flags=flagfile("effect_sizes"),
    log:
        logfile("data"),
    priority: 10  # before the coding jobs: every analysis waits for it
    conda:
        ENV
    params:
        **step_params("data"),
    script:
        "../scripts/step.py"
