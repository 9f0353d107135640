rule components:
    """Component profiles (the combinations of binary components that occur, pooled per profile)
    and, per component, the share of programmes with a positive effect that have it."""
    input:
        effect_sizes=f"{RES}/effect_sizes.csv",
        codebook=config["codebook"],
    output:
        profiles=report(
            f"{RES}/tables/component_profiles.csv",
            caption="../report/components.rst",
            category="4. Components",
        ),
        consistency=report(
            f"{RES}/tables/component_consistency.csv",
            caption="../report/components.rst",
            category="4. Components",
        ),
        study_effects=report(
            f"{RES}/tables/study_effects.csv",
            caption="../report/components.rst",
            category="4. Components",
        ),
        json=report(
            f"{RES}/models/components.json",
            caption="../report/components.rst",
            category="4. Components",
        ),
        flags=flagfile("components"),
    log:
        logfile("components"),
    priority: 2  # longest analysis jobs first, so that no core idles at the end
    conda:
        ENV
    params:
        **step_params("components"),
    script:
        "../scripts/step.py"
