# Figures (issue 4): each rule draws one kind of figure from what the analysis steps wrote and
# writes <stem>.png (300 dpi), <stem>.pdf and a description (figures/meta/<stem>.json: title,
# caption, report section); rule figures collects the descriptions into figures/figures.json.
# Names and helpers (FIGURES, *_MODERATORS, figure_files, ...) are in common_figures.smk.


rule figure_flow:
    """Data flow from the coded rows to the effect sizes analysed (PRISMA-style)."""
    input:
        clean=rules.clean.output.summary,
        effect_sizes=rules.effect_sizes.output.summary,
        overall=rules.overall.output.json,
        passed=rules.validate.output.passed,
        codebook=config["codebook"],
    output:
        png=report(
            f"{FIGURES}/flow.png",
            caption="../report/figures_flow.rst",
            category="Figures",
            subcategory="Data",
        ),
        pdf=f"{FIGURES}/flow.pdf",
        meta=f"{FIGURES}/meta/flow.json",
    log:
        logfile("figures/flow"),
    conda:
        ENV
    script:
        "../scripts/figures_flow.py"


rule figure_forest:
    """Forest plot: every effect size by study, the study estimates, the pooled effect and its
    prediction interval."""
    input:
        effects=rules.effect_sizes.output.table,
        codebook=config["codebook"],
        study_effects=rules.components.output.study_effects,
        overall=rules.overall.output.json,
    output:
        png=report(
            f"{FIGURES}/forest.png",
            caption="../report/figures_forest.rst",
            category="Figures",
            subcategory="Overall effect",
        ),
        pdf=f"{FIGURES}/forest.pdf",
        meta=f"{FIGURES}/meta/forest.json",
    log:
        logfile("figures/forest"),
    conda:
        ENV
    params:
        sort=FIGURE_OPTIONS.get("forest_sort", "effect"),
    script:
        "../scripts/figures_forest.py"


rule figure_variance:
    """Distribution of the variance over the three levels, for all effect sizes and per domain."""
    input:
        variance=[
            rules.overall.output.variance,
            *expand(
                f"{DOMAIN_RES}/tables/variance_distribution.csv",
                domain=OVERALL_DOMAINS,
            ),
        ],
        overall=[
            rules.overall.output.json,
            *expand(f"{DOMAIN_RES}/models/overall.json", domain=OVERALL_DOMAINS),
        ],
        codebook=config["codebook"],
    output:
        png=report(
            f"{FIGURES}/variance_distribution.png",
            caption="../report/figures_variance.rst",
            category="Figures",
            subcategory="Overall effect",
        ),
        pdf=f"{FIGURES}/variance_distribution.pdf",
        meta=f"{FIGURES}/meta/variance_distribution.json",
    log:
        logfile("figures/variance_distribution"),
    conda:
        ENV
    params:
        domains=OVERALL_DOMAINS,
        domain_variable=config.get("models", {}).get(
            "domain_variable", "outcome_domain"
        ),
    script:
        "../scripts/figures_variance.py"


rule figure_orchard:
    """Orchard plot of one binary, categorical or ordinal moderator."""
    input:
        effects=rules.effect_sizes.output.table,
        codebook=config["codebook"],
        moderators=rules.moderators.output.moderators,
        tests=rules.moderators.output.tests,
        json=rules.moderators.output.json,
    output:
        png=report(
            f"{FIGURES}/orchard_{{moderator}}.png",
            caption="../report/figures_orchard.rst",
            category="Figures",
            subcategory="Moderators",
            labels={"moderator": "{moderator}", "figure": "orchard plot"},
        ),
        pdf=f"{FIGURES}/orchard_{{moderator}}.pdf",
        meta=f"{FIGURES}/meta/orchard_{{moderator}}.json",
    log:
        logfile("figures/orchard_{moderator}"),
    wildcard_constraints:
        moderator=moderator_pattern(ORCHARD_MODERATORS),
    conda:
        ENV
    params:
        label=moderator_label,
    script:
        "../scripts/figures_orchard.py"


rule figure_bubble:
    """Bubble plot of one integer or number moderator with its meta-regression line."""
    input:
        effects=rules.effect_sizes.output.table,
        codebook=config["codebook"],
        moderators=rules.moderators.output.moderators,
        tests=rules.moderators.output.tests,
        json=rules.moderators.output.json,
    output:
        png=report(
            f"{FIGURES}/bubble_{{moderator}}.png",
            caption="../report/figures_bubble.rst",
            category="Figures",
            subcategory="Moderators",
            labels={"moderator": "{moderator}", "figure": "bubble plot"},
        ),
        pdf=f"{FIGURES}/bubble_{{moderator}}.pdf",
        meta=f"{FIGURES}/meta/bubble_{{moderator}}.json",
    log:
        logfile("figures/bubble_{moderator}"),
    wildcard_constraints:
        moderator=moderator_pattern(BUBBLE_MODERATORS),
    conda:
        ENV
    params:
        label=moderator_label,
    script:
        "../scripts/figures_bubble.py"


rule figure_components:
    """Orchard plot of the effect sizes of the programmes with each intervention component."""
    input:
        effects=rules.effect_sizes.output.table,
        codebook=config["codebook"],
        moderators=rules.moderators.output.moderators,
        components=rules.components.output.json,
    output:
        png=report(
            f"{FIGURES}/components_orchard.png",
            caption="../report/figures_components.rst",
            category="Figures",
            subcategory="Components",
        ),
        pdf=f"{FIGURES}/components_orchard.pdf",
        meta=f"{FIGURES}/meta/components_orchard.json",
    log:
        logfile("figures/components_orchard"),
    conda:
        ENV
    script:
        "../scripts/figures_components.py"


rule figure_profiles:
    """Orchard plot of the component profiles with a dot matrix of their components."""
    input:
        effects=rules.effect_sizes.output.table,
        codebook=config["codebook"],
        profiles=rules.components.output.profiles,
        study_effects=rules.components.output.study_effects,
        components=rules.components.output.json,
    output:
        png=report(
            f"{FIGURES}/components_profiles.png",
            caption="../report/figures_profiles.rst",
            category="Figures",
            subcategory="Components",
        ),
        pdf=f"{FIGURES}/components_profiles.pdf",
        meta=f"{FIGURES}/meta/components_profiles.json",
    log:
        logfile("figures/components_profiles"),
    conda:
        ENV
    script:
        "../scripts/figures_profiles.py"


rule figure_funnel:
    """Contour-enhanced funnel plots of the effect sizes and the study averages."""
    input:
        funnel=rules.bias.output.funnel,
        trimfill=rules.bias.output.trimfill,
        json=rules.bias.output.json,
    output:
        png=report(
            f"{FIGURES}/funnel.png",
            caption="../report/figures_funnel.rst",
            category="Figures",
            subcategory="Publication bias",
        ),
        pdf=f"{FIGURES}/funnel.pdf",
        meta=f"{FIGURES}/meta/funnel.json",
    log:
        logfile("figures/funnel"),
    conda:
        ENV
    script:
        "../scripts/figures_funnel.py"


rule figure_leave_one_out:
    """The pooled effect refitted without each study in turn."""
    input:
        leave_one_out=rules.sensitivity.output.leave_one_out,
        effects=rules.effect_sizes.output.table,
        codebook=config["codebook"],
    output:
        png=report(
            f"{FIGURES}/leave_one_out.png",
            caption="../report/figures_leave_one_out.rst",
            category="Figures",
            subcategory="Sensitivity",
        ),
        pdf=f"{FIGURES}/leave_one_out.pdf",
        meta=f"{FIGURES}/meta/leave_one_out.json",
    log:
        logfile("figures/leave_one_out"),
    conda:
        ENV
    script:
        "../scripts/figures_leave_one_out.py"


rule figures:
    """Every figure, and the manifest the report reads: figures/figures.json lists each figure's
    stem, PNG and PDF, title, caption and report section."""
    input:
        figures=figure_files(),
        meta=figure_meta_files(),
    output:
        manifest=f"{FIGURES}/figures.json",
    log:
        logfile("figures/manifest"),
    conda:
        ENV
    script:
        "../scripts/figures_manifest.py"
