# The vignette study (a config with a `vignette` section; see config/vignette.yaml): validate and
# clean the respondents and ratings, fit the models (rule vignette), then the APA tables, figures
# and report (rule vignette_outputs); the coding manual and template of its codebook come from
# workflow/rules/coding.smk. Names and helpers are in common_vignette.smk. Results go to
# results/<analysis>/.


include: "common.smk"
include: "common_vignette.smk"
include: "coding.smk"


rule vignette:
    """Validate and clean the two tables (same machinery and errors as the meta-analysis data),
    fit every model of every outcome (main effects, and group x factor interactions), write
    models.json, findings.json and the human CSVs."""
    input:
        codebook=config["codebook"],
        tables=VIGNETTE_DATA,
    output:
        json=f"{VIGNETTE_RES}/models.json",
        findings=f"{VIGNETTE_RES}/findings.json",
        terms=f"{RES}/tables/vignette_terms.csv",
        tests=f"{RES}/tables/vignette_tests.csv",
        means=f"{RES}/tables/vignette_means.csv",
        passed=f"{RES}/validation/passed.txt",
    log:
        logfile("vignette"),
    conda:
        ENV
    params:
        data=config["data"],
        vignette=config["vignette"],
    script:
        "../scripts/step.py"


rule vignette_outputs:
    """APA tables, the marginal-means figure of every factor, the heat map of every outcome and
    the self-contained HTML report (methods from the config, the same provenance block as the
    meta-analysis report)."""
    input:
        json=rules.vignette.output.json,
        findings=rules.vignette.output.findings,
        passed=rules.vignette.output.passed,
        checksummed=[config["codebook"], *VIGNETTE_DATA],
    output:
        html=report(
            f"{RES}/report.html",
            caption="../report/vignette.rst",
            category="9. Report",
        ),
        provenance=f"{RES}/provenance.json",
        tables_index=f"{RES}/tables/tables.json",
        figures_manifest=f"{RES}/figures/figures.json",
    log:
        logfile("vignette_outputs"),
    conda:
        ENV
    threads: 2
    params:
        config=config,
        configfiles=vignette_configfiles(),
        workers=lambda wildcards, threads: threads,
    script:
        "../scripts/step.py"
