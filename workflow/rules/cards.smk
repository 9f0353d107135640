rule cards:
    """Conversation cards for practice: one A6 card per programme component and per finding of
    the vignette study (when its findings file exists), in the config's language."""
    input:
        unpack(cards_inputs),
        components=f"{RES}/models/components.json",
        moderators=f"{RES}/models/moderators.json",
        grade=GRADE_JSON,
        effect_sizes_summary=f"{RES}/effect_sizes_summary.json",
        codebook=config["codebook"],
    output:
        json=f"{RES}/cards/cards.json",
        html=report(
            f"{RES}/cards/cards.html",
            caption="../report/cards.rst",
            category="10. Conversation cards",
        ),
        pdf=report(
            f"{RES}/cards/cards.pdf",
            caption="../report/cards.rst",
            category="10. Conversation cards",
        ),
    log:
        logfile("cards"),
    conda:
        ENV
    params:
        **step_params("cards"),
    script:
        "../scripts/step.py"
