# The overall effect: the analysis model of config["models"] with the CR2-robust result, the
# prediction interval, the level LRTs, the variance distribution and the comparison fits; and,
# with models.per_domain, the same analysis per level of models.domain_variable (all domains in
# one job).
rule overall:
    """The pooled effect of all effect sizes: model-based and CR2-robust, prediction interval,
    level LRTs, variance distribution, and the two-level and fixed-effect fits for comparison.
    """
    input:
        effect_sizes=f"{RES}/effect_sizes.csv",
        codebook=config["codebook"],
    output:
        table=report(
            f"{RES}/tables/overall.csv",
            caption="../report/overall.rst",
            category="2. Overall effect",
            subcategory="all effect sizes",
        ),
        comparison=report(
            f"{RES}/tables/overall_comparison.csv",
            caption="../report/overall.rst",
            category="2. Overall effect",
            subcategory="all effect sizes",
        ),
        variance=report(
            f"{RES}/tables/variance_distribution.csv",
            caption="../report/overall.rst",
            category="2. Overall effect",
            subcategory="all effect sizes",
        ),
        json=report(
            f"{RES}/models/overall.json",
            caption="../report/overall.rst",
            category="2. Overall effect",
            subcategory="all effect sizes",
        ),
        flags=f"{RES}/flags/overall_all.txt",
    log:
        logfile("overall"),
    priority: 3  # longest analysis jobs first, so that no core idles at the end
    conda:
        ENV
    params:
        **step_params("overall"),
    script:
        "../scripts/step.py"


if OVERALL_DOMAINS:

    rule overall_domains:
        """The overall analysis of the effect sizes of each domain (a level of
        models.domain_variable), every domain in one job; a domain too small for the model gets
        a flagged result file."""
        input:
            effect_sizes=f"{RES}/effect_sizes.csv",
            codebook=config["codebook"],
        output:
            table=domain_files(
                "tables/overall.csv", caption="../report/overall_domain.rst"
            ),
            comparison=domain_files("tables/overall_comparison.csv"),
            variance=domain_files(
                "tables/variance_distribution.csv",
                caption="../report/overall_domain.rst",
            ),
            json=domain_files(
                "models/overall.json", caption="../report/overall_domain.rst"
            ),
            flags=domain_files("flags/overall.txt"),
        log:
            logfile("overall_domains"),
        priority: 2  # the figures need it: before the multiverse chunks
        conda:
            ENV
        params:
            **step_params("overall"),
            domains=OVERALL_DOMAINS,
        script:
            "../scripts/step.py"


rule overall_flags:
    """All flags of the overall step (all data and every domain) in one file."""
    input:
        flags=[
            f"{RES}/flags/overall_all.txt",
            *domain_files("flags/overall.txt"),
        ],
    output:
        combined=flagfile("overall"),
    log:
        logfile("overall_flags"),
    priority: 7  # a fraction of a second, and the report waits for it
    conda:
        ENV
    script:
        "../scripts/step.py"
