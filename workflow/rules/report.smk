# Rules of the tables and report stages: APA-style tables of every result table the analysis
# steps keep in their JSON, and the self-contained HTML report. Helper functions are in
# workflow/rules/common_report.smk.


rule tables:
    """APA-style tables (Markdown, LaTeX booktabs, HTML, Word) of the result tables: rounded for
    reading, numbered, with a title and a note naming the effect measure and its direction
    (from effect_sizes_summary.json); the steps' JSON keep full precision. Also the GRADE
    summary of findings (models/grade.json, tables/grade.csv) from the overall, per-domain and
    bias results, the effect sizes and the config's grade and risk_of_bias sections."""
    input:
        **apa_table_sources(),
        domain_results=domain_overall_results(),
        codebook=config["codebook"],
        effect_sizes_summary=rules.data.output.summary,
        effect_sizes=rules.data.output.table,
        components_json=rules.components.output.json,
    output:
        **apa_table_outputs(annotate=True),
        grade_json=GRADE_JSON,
        grade_csv=f"{RES}/tables/grade.csv",
        study_characteristics=f"{RES}/prisma/characteristics.json",
        characteristics_csv=f"{RES}/tables/study_characteristics.csv",
    log:
        logfile("tables"),
    conda:
        ENV
    params:
        **step_params("tables"),
        tables=[*apa_table_sources(), *OWN_TABLES],
        domains=OVERALL_DOMAINS,
        domain_variable=config.get("models", {}).get(
            "domain_variable", "outcome_domain"
        ),
    script:
        "../scripts/step.py"


rule report:
    """The report: one self-contained HTML file (summary, methods written from the config and
    the model JSON, data flow, every result table and figure, warnings, provenance), and the
    same as a Word file."""
    input:
        unpack(report_inputs),
    output:
        html=report(
            f"{RES}/report.html",
            caption="../report/report.rst",
            category="9. Report",
        ),
        provenance=f"{RES}/provenance.json",
        docx=f"{RES}/report.docx",
    log:
        logfile("report"),
    conda:
        ENV
    threads: 2
    params:
        config=config,
        workers=lambda wildcards, threads: threads,
    script:
        "../scripts/step.py"
