rule effect_sizes:
    """Turn whatever each study reported into Hedges' g and its sampling variance; rows that
    cannot yield a number go to effect_sizes_dropped.csv with the reason."""
    input:
        effects=rules.clean.output.effects,
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
    log:
        logfile("effect_sizes"),
    conda:
        ENV
    params:
        options=config.get("effect_sizes", {}),
    script:
        "../scripts/effect_sizes.py"
