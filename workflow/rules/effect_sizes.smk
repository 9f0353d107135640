rule effect_sizes:
    """Turn whatever each study reported into Hedges' g and its sampling variance; rows that
    cannot yield a number go to effect_sizes_dropped.csv with the reason."""
    input:
        effects=rules.clean.output.effects,
        codebook=config["codebook"],
    output:
        table=f"{RES}/effect_sizes.csv",
        dropped=f"{RES}/effect_sizes_dropped.csv",
        summary=f"{RES}/effect_sizes_summary.json",
    params:
        options=config.get("effect_sizes", {}),
    log:
        logfile("effect_sizes"),
    conda:
        ENV
    script:
        "../scripts/effect_sizes.py"
