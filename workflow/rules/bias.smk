# Publication bias (issue 3, part 4): the three-level Egger-type test on all effect sizes, the
# univariate methods on study averages, and the funnel-plot data. See workflow/rules/common.smk
# for RES, logfile, flagfile, ENV.


rule bias:
    """Egger-type test in the three-level model (plus CR2); classic Egger, rank correlation,
    trim and fill, PET-PEESE and fail-safe N on study-averaged effects; funnel-plot data.
    """
    input:
        effects=f"{RES}/effect_sizes.csv",
        codebook=config["codebook"],
    output:
        table=report(
            f"{RES}/tables/bias.csv",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        trimfill=report(
            f"{RES}/tables/trimfill_data.csv",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        funnel=report(
            f"{RES}/tables/funnel_data.csv",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        json=report(
            f"{RES}/models/bias.json",
            caption="../report/bias.rst",
            category="5. Publication bias",
        ),
        flags=flagfile("bias"),
    log:
        logfile("bias"),
    conda:
        ENV
    params:
        models=config.get("models", {}),
        bias=config.get("bias", {}),
    script:
        "../scripts/bias.py"
