# Helper functions and names of the figures stage (functions only: rules live in
# workflow/rules/figures.smk, as snakemake --lint asks). Which moderator gets which plot is read
# from the codebook when the workflow is parsed: integer/number moderators get a bubble plot,
# binary/categorical/ordinal ones an orchard plot (moderators.exclude left out, as in rule
# moderators).

FIGURES = f"{RES}/figures"
# The figures job draws with two processes but reserves one core, so that it starts as soon as its
# inputs exist instead of waiting for a second core to come free (the two processes then share the
# cores with whatever runs beside them). A constant, not the run's --cores: a param that changed
# between runs would make Snakemake redraw every figure.
FIGURE_WORKERS = 2
FIGURE_OPTIONS = config.get("figures", {}) or {}
# the PRISMA counts file (prisma.counts; none: the flow diagram shows the pipeline's counts only)
PRISMA = config.get("prisma", {}) or {}
PRISMA_COUNTS = {"prisma_counts": PRISMA["counts"]} if PRISMA.get("counts") else {}


def figure_moderators(kind):
    """The moderators drawn as `kind` ("orchard" or "bubble") plots, in the codebook's order."""
    from intervention_meta.data.codebook import moderator_figure_kind

    if CODEBOOK is None:
        return []
    exclude = (config.get("moderators", {}) or {}).get("exclude", []) or []
    return [
        var.name
        for var in CODEBOOK.moderators(exclude)
        if moderator_figure_kind(CODEBOOK, var.name) == kind
    ]


def moderator_label(moderator):
    """The codebook label of a moderator (for the report's labels of its figure)."""
    return CODEBOOK.label(moderator) if CODEBOOK is not None else moderator


def measure_note():
    """The effect measure and what a positive effect means, for the snakemake --report captions:
    the config's effect_sizes entries read as the effect-size step records them (the report's
    own captions read effect_sizes_summary.json)."""
    from intervention_meta.outputs.labels import measure_labels

    es = config.get("effect_sizes", {}) or {}
    record = {
        "code": es.get("measure") or "SMD",
        "name": es.get("measure_name"),
        "direction": es.get("direction"),
        "direction_by": es.get("direction_by"),
    }
    return measure_labels(record).direction_note()


def figure_components():
    """The component figures, or [] when the data set has no intervention components (role
    component in the codebook, or components.variables): they would be empty."""
    from intervention_meta.data.codebook import component_variables

    listed = (config.get("components", {}) or {}).get("variables")
    try:
        drawn = CODEBOOK is not None and component_variables(CODEBOOK, listed)
    except ValueError:  # a listed name not in the codebook: reported by rule components
        drawn = True
    return ["components_orchard", "components_profiles"] if drawn else []


def figure_risk_of_bias():
    """The risk-of-bias figures, or [] when the config has no risk_of_bias section."""
    from intervention_meta.data.risk_of_bias import ROB_FIGURES

    if not (config.get("risk_of_bias") or {}).get("overall"):
        return []
    return [f"risk_of_bias_{kind}" for kind in ROB_FIGURES]


ORCHARD_MODERATORS = figure_moderators("orchard")
BUBBLE_MODERATORS = figure_moderators("bubble")

# every figure by stem; each has <stem>.png, <stem>.pdf and <stem>.svg under FIGURES
FIGURE_STEMS = [
    "flow",
    "prisma",
    *figure_risk_of_bias(),
    "forest",
    "variance_distribution",
    *[f"orchard_{m}" for m in ORCHARD_MODERATORS],
    *[f"bubble_{m}" for m in BUBBLE_MODERATORS],
    *figure_components(),
    "funnel",
    "selection_weights",
    "leave_one_out",
]


# how snakemake --report shows each figure: stem -> (caption file, subcategory, labels)
FIGURE_REPORT = {
    "flow": ("figures_flow", "Data", None),
    "prisma": ("figures_prisma", "Data", None),
    "risk_of_bias_traffic_light": ("figures_risk_of_bias", "Risk of bias", None),
    "risk_of_bias_summary": ("figures_risk_of_bias", "Risk of bias", None),
    "forest": ("figures_forest", "Overall effect", None),
    "variance_distribution": ("figures_variance", "Overall effect", None),
    **{
        f"orchard_{m}": (
            "figures_orchard",
            "Moderators",
            {"moderator": moderator_label(m), "figure": "orchard plot"},
        )
        for m in ORCHARD_MODERATORS
    },
    **{
        f"bubble_{m}": (
            "figures_bubble",
            "Moderators",
            {"moderator": moderator_label(m), "figure": "bubble plot"},
        )
        for m in BUBBLE_MODERATORS
    },
    "components_orchard": ("figures_components", "Components", None),
    "components_profiles": ("figures_profiles", "Components", None),
    "funnel": ("figures_funnel", "Publication bias", None),
    "selection_weights": ("figures_selection", "Publication bias", None),
    "leave_one_out": ("figures_leave_one_out", "Sensitivity", None),
}


def figure_outputs():
    """Every figure file of rule figures (<stem>_png, <stem>_pdf, <stem>_svg); the PNGs are
    marked for snakemake --report."""
    out = {}
    for stem in FIGURE_STEMS:
        caption, subcategory, labels = FIGURE_REPORT[stem]
        out[f"{stem}_png"] = report(
            f"{FIGURES}/{stem}.png",
            caption=f"../report/{caption}.rst",
            category="Figures",
            subcategory=subcategory,
            labels=labels,
        )
        out[f"{stem}_pdf"] = f"{FIGURES}/{stem}.pdf"
        out[f"{stem}_svg"] = f"{FIGURES}/{stem}.svg"
    return out
