rule clean:
    """Merge studies into effects, turn missing codes into missing values, apply the inclusion
    criteria; every dropped row is written to clean/dropped.csv with its reason."""
    input:
        passed=rules.validate.output.passed,
        codebook=config["codebook"],
        studies=config["data"]["studies"],
        effects=config["data"]["effects"],
    output:
        clean_effects=f"{RES}/clean/effects.csv",
        dropped=report(
            f"{RES}/clean/dropped.csv",
            caption="../report/clean.rst",
            category="1. Data",
            subcategory="cleaning",
        ),
        summary=report(
            f"{RES}/clean/summary.json",
            caption="../report/clean.rst",
            category="1. Data",
            subcategory="cleaning",
        ),
    log:
        logfile("clean"),
    priority: 10  # before the coding jobs: every analysis waits for this chain
    conda:
        ENV
    params:
        **step_params("clean"),
    script:
        "../scripts/step.py"
