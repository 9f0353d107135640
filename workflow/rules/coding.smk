# Tools for coders: the coding manual and the coding template (made from the codebook, shared by
# all analyses, in results/codebook/), and the inter-rater reliability of a second coder (only
# when the config names the second coder's file(s) under `reliability`).
rule coding_manual:
    """The coding manual: every variable with its instruction, codes, missing codes and uses."""
    input:
        codebook=config["codebook"],
    output:
        md=f"{CODING_RES}/manual.md",
        html=report(
            f"{CODING_RES}/manual.html",
            caption="../report/coding.rst",
            category="7. Coding and reliability",
        ),
    log:
        f"{CODING_RES}/logs/coding_manual.log",
    conda:
        ENV
    script:
        "../scripts/step.py"


rule coding_template:
    """The Excel coding template: one sheet per table, drop-down lists, checks, instructions."""
    input:
        codebook=config["codebook"],
    output:
        path=f"{CODING_RES}/coding_template.xlsx",
    log:
        f"{CODING_RES}/logs/coding_template.log",
    conda:
        ENV
    script:
        "../scripts/step.py"


if RELIABILITY.get("studies"):

    rule reliability:
        """Agreement of a second coder with the main data, per variable, and every
        disagreement for the consensus meeting."""
        input:
            unpack(reliability_inputs),
        output:
            agreement=report(
                f"{RES}/reliability/agreement.csv",
                caption="../report/reliability.rst",
                category="7. Coding and reliability",
            ),
            json=f"{RES}/reliability/agreement.json",
            disagreements=report(
                f"{RES}/reliability/disagreements.csv",
                caption="../report/reliability.rst",
                category="7. Coding and reliability",
            ),
        log:
            logfile("reliability"),
        conda:
            ENV
        params:
            **step_params("reliability"),
        script:
            "../scripts/step.py"
