rule effect_sizes:
    """Turn whatever each study reported into the declared effect measure and its sampling
    variance, and record the measure and its direction in the summary; rows that cannot yield
    a number go to effect_sizes_dropped.csv with the reason, rows with a tiny variance or an
    implausible effect are flagged."""
    input:
        clean_effects=rules.clean.output.clean_effects,
        codebook=config["codebook"],
    output:
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
        logfile("effect_sizes"),
    priority: 10  # before the coding jobs: every analysis waits for this chain
    conda:
        ENV
    params:
        **step_params("effect_sizes"),
    script:
        "../scripts/step.py"
