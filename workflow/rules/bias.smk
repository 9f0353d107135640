rule bias:
    """Egger-type test in the three-level model (plus CR2); classic Egger, rank correlation,
    trim and fill, PET-PEESE and fail-safe N on study-averaged effects; funnel-plot data.
    """
    input:
        effect_sizes=f"{RES}/effect_sizes.csv",
        codebook=config["codebook"],
    output:
        table=report(
            f"{RES}/tables/bias.csv",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        trimfill=report(
            f"{RES}/tables/trimfill_data.csv",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        funnel=report(
            f"{RES}/tables/funnel_data.csv",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        json=report(
            f"{RES}/models/bias.json",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        flags=flagfile("bias"),
    log:
        logfile("bias"),
    priority: 5  # longest analysis jobs first, so that no core idles at the end
    conda:
        ENV
    params:
        **step_params("bias"),
    script:
        "../scripts/step.py"
