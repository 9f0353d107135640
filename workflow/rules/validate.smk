rule validate:
    """Check both data tables against the codebook; write validation/report.md and report.csv
    (all problems at once) and stop the pipeline on any error."""
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
    log:
        logfile("validate"),
    priority: 10  # before the coding jobs: every analysis waits for this chain
    conda:
        ENV
    script:
        "../scripts/step.py"
