# Multiverse meta-analysis (config section `multiverse`): the specifications are enumerated from
# the config alone, so the chunk jobs are known when the workflow is built; each job fits
# multiverse.chunk_size specifications (and their bootstrap draws under the null), and one job
# gathers them into the specification curve.
from intervention_meta.multiverse.specs import chunk_numbers

MULTIVERSE_CHUNKS = chunk_numbers(config)
MULTIVERSE_RES = f"{RES}/multiverse"


rule multiverse_chunk:
    """Fit one chunk of the multiverse's specifications on the effect sizes, and on every
    bootstrap draw under the null."""
    input:
        effect_sizes=f"{RES}/effect_sizes.csv",
        codebook=config["codebook"],
    output:
        out=f"{MULTIVERSE_RES}/chunks/{{chunk}}.json",
    log:
        f"{RES}/logs/multiverse_chunk_{{chunk}}.log",
    wildcard_constraints:
        chunk=r"\d+",
    priority: 1  # after the analyses (the figures wait for them), before tables and cards
    conda:
        ENV
    resources:
        runtime=30,
        mem_mb=1000,
    params:
        **step_params("multiverse_chunk"),
    script:
        "../scripts/step.py"


rule multiverse:
    """The multiverse's result table, specification curve with its factor panel, and the
    bootstrap test under the null."""
    input:
        chunks=expand(
            f"{MULTIVERSE_RES}/chunks/{{chunk}}.json", chunk=MULTIVERSE_CHUNKS
        ),
        codebook=config["codebook"],
    output:
        json=report(
            f"{RES}/models/multiverse.json",
            caption="../report/multiverse.rst",
            category="7. Multiverse",
        ),
        table=report(
            f"{RES}/tables/multiverse.csv",
            caption="../report/multiverse.rst",
            category="7. Multiverse",
        ),
        figure=report(
            f"{MULTIVERSE_RES}/specification_curve.png",
            caption="../report/multiverse.rst",
            category="7. Multiverse",
        ),
    log:
        logfile("multiverse"),
    priority: 1  # with its chunks: the report waits for this chain
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        **step_params("multiverse"),
    script:
        "../scripts/step.py"
