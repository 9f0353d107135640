rule sensitivity:
    """Is the pooled effect robust? Refits without each study (with Cook's distance, DFBETAS,
    leverage), without outlying effect sizes (studentized deleted residuals), under other
    estimators and the CHE working model with CR2 inference, and with the effect sizes recomputed
    under other pre-post correlations and ICCs."""
    input:
        effect_sizes=f"{RES}/effect_sizes.csv",
        clean_effects=f"{RES}/clean/effects.csv",
        codebook=config["codebook"],
    output:
        **{
            name: report(
                f"{RES}/tables/sensitivity_{name}.csv",
                caption="../report/sensitivity.rst",
                category="6. Sensitivity",
            )
            for name in SENSITIVITY_TABLES
        },
        json=report(
            f"{RES}/models/sensitivity.json",
            caption="../report/sensitivity.rst",
            category="6. Sensitivity",
        ),
        flags=flagfile("sensitivity"),
    log:
        logfile("sensitivity"),
    priority: 4  # longest analysis jobs first, so that no core idles at the end
    conda:
        ENV
    params:
        **step_params("sensitivity"),
    script:
        "../scripts/step.py"
