# Sensitivity analyses (issue 3, part 5): leave one study out, influence per study, outliers
# removed, estimators and working models compared, assumptions of the effect-size step varied.
# See workflow/rules/common.smk for RES, logfile, flagfile, ENV.


rule sensitivity:
    """Is the pooled effect robust? Refits without each study (with Cook's distance, DFBETAS,
    leverage), without outlying effect sizes (studentized deleted residuals), under other
    estimators and the CHE working model with CR2 inference, and with the effect sizes recomputed
    under other pre-post correlations and ICCs."""
    input:
        effects=f"{RES}/effect_sizes.csv",
        clean=f"{RES}/clean/effects.csv",
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
    conda:
        ENV
    params:
        models=config.get("models", {}),
        sensitivity=config.get("sensitivity", {}),
        effect_sizes=config.get("effect_sizes", {}),
        tables=SENSITIVITY_TABLES,
    script:
        "../scripts/sensitivity.py"
