# Rule(s) of the moderators analysis (issue 3); see workflow/rules/common.smk for RES, logfile, ENV.


rule moderators:
    """Every codebook moderator in its own three-level meta-regression (category means, test of
    differences, CR2), Holm-adjusted across moderators; then the multiple-moderator model of the
    components with variance inflation factors."""
    input:
        effect_sizes=f"{RES}/effect_sizes.csv",
        codebook=config["codebook"],
    output:
        moderators=f"{RES}/tables/moderators.csv",
        tests=f"{RES}/tables/moderator_tests.csv",
        multiple=f"{RES}/tables/multiple_moderators.csv",
        json=f"{RES}/models/moderators.json",
        flags=flagfile("moderators"),
    log:
        logfile("moderators"),
    conda:
        ENV
    params:
        models=config.get("models", {}),
        options=config.get("moderators", {}),
    script:
        "../scripts/moderators.py"
