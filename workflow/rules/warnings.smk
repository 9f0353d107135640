rule warnings:
    """Collect every flag raised by the analysis steps into one warnings file for the report."""
    input:
        lambda wildcards: [
            flagfile(step)
            for step in ("overall", "moderators", "components", "bias", "sensitivity")
            if globals()[f"{step}_outputs"]()
        ],
    output:
        f"{RES}/warnings.txt",
    log:
        logfile("warnings"),
    conda:
        ENV
    script:
        "../scripts/warnings.py"
