rule moderators:
    """Every codebook moderator in its own three-level meta-regression (category means, test of
    differences, CR2), Holm-adjusted across moderators; then the multiple-moderator model of the
    components with variance inflation factors."""
    input:
        effect_sizes=f"{RES}/effect_sizes.csv",
        codebook=config["codebook"],
    output:
        moderators=report(
            f"{RES}/tables/moderators.csv",
            caption="../report/moderators.rst",
            category="3. Moderators",
        ),
        tests=report(
            f"{RES}/tables/moderator_tests.csv",
            caption="../report/moderators.rst",
            category="3. Moderators",
        ),
        multiple=report(
            f"{RES}/tables/multiple_moderators.csv",
            caption="../report/moderators.rst",
            category="3. Moderators",
        ),
        json=report(
            f"{RES}/models/moderators.json",
            caption="../report/moderators.rst",
            category="3. Moderators",
        ),
        flags=flagfile("moderators"),
    log:
        logfile("moderators"),
    priority: 5  # longest analysis jobs first, so that no core idles at the end
    conda:
        ENV
    params:
        **step_params("moderators"),
    script:
        "../scripts/step.py"
