# Figures: one job per analysis draws every figure from what the analysis steps wrote (their
# models/<step>.json) as <stem>.png (screen), <stem>.pdf and <stem>.svg (print), and writes the
# manifest the report reads. Names and helpers (FIGURES, *_MODERATORS, figure_outputs) are in
# common_figures.smk.


rule figures:
    """Every figure of the analysis, and the manifest figures/figures.json: each figure's stem,
    PNG and PDF, title, caption (with the numbers drawn, the effect measure and its direction
    from effect_sizes_summary.json) and report section."""
    input:
        **PRISMA_COUNTS,
        effects=rules.data.output.table,
        codebook=config["codebook"],
        clean=rules.data.output.clean_summary,
        effect_sizes=rules.data.output.summary,
        passed=rules.data.output.passed,
        overall=rules.overall.output.json,
        domain_results=expand(
            f"{DOMAIN_RES}/models/overall.json", domain=OVERALL_DOMAINS
        ),
        moderators=rules.moderators.output.json,
        components=rules.components.output.json,
        bias=rules.bias.output.json,
        sensitivity=rules.sensitivity.output.json,
    output:
        **figure_outputs(),
        manifest=f"{FIGURES}/figures.json",
        prisma_flow=f"{RES}/prisma/flow.json",
    log:
        logfile("figures"),
    priority: 6  # on the way to the report: before the multiverse chunks and the coding jobs
    conda:
        ENV
    params:
        sort=FIGURE_OPTIONS.get("forest_sort", "effect"),
        forest_rows=FIGURE_OPTIONS.get("forest_rows", "study"),
        forest_max_rows=FIGURE_OPTIONS.get("forest_max_rows", 60),
        favours=FIGURE_OPTIONS.get("favours"),
        workers=FIGURE_WORKERS,
        level=f"{100 * float(config.get('models', {}).get('level', 0.95)):g}%",
        measure=measure_note(),
        orchard=ORCHARD_MODERATORS,
        bubble=BUBBLE_MODERATORS,
        domains=OVERALL_DOMAINS,
        domain_variable=config.get("models", {}).get(
            "domain_variable", "outcome_domain"
        ),
        risk_of_bias=config.get("risk_of_bias") or {},
    script:
        "../scripts/step.py"
