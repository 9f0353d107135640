rule warnings:
    """Collect every flag raised by the effect-size step and the analysis steps into one warnings
    file for the report."""
    input:
        flags=[flagfile(step) for step in ("effect_sizes", *FLAGGED_STEPS)],
    output:
        combined=f"{RES}/warnings.txt",
    log:
        logfile("warnings"),
    priority: 7  # a fraction of a second, and the report waits for it
    conda:
        ENV
    script:
        "../scripts/step.py"
