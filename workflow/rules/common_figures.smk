# Helper functions and names of the figures stage (functions only: rules live in
# workflow/rules/figures.smk, as snakemake --lint asks). Which moderator gets which plot is read
# from the codebook when the workflow is parsed: integer/number moderators get a bubble plot,
# binary/categorical/ordinal ones an orchard plot (moderators.exclude left out, as in rule
# moderators).

FIGURES = f"{RES}/figures"
FIGURE_OPTIONS = config.get("figures", {}) or {}


def figure_moderators(kind):
    """The moderators drawn as `kind` ("orchard" or "bubble") plots, in the codebook's order."""
    from intervention_meta.data.codebook import load_codebook
    from intervention_meta.analyses.moderators import moderator_variables
    from intervention_meta.plots.figures import moderator_figure_kind

    exclude = (config.get("moderators", {}) or {}).get("exclude", []) or []
    try:
        codebook = load_codebook(config["codebook"])
    except Exception as err:  # a broken codebook is reported by rule validate
        logger.warning(f"figures: cannot read the codebook ({err}); no moderator plots")
        return []
    return [
        var.name
        for var in moderator_variables(codebook, exclude)
        if moderator_figure_kind(codebook, var.name) == kind
    ]


def moderator_pattern(names):
    """A wildcard constraint matching exactly `names` (nothing if there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def moderator_label(wildcards):
    """The codebook label of the moderator of a figure (for its report caption)."""
    from intervention_meta.data.codebook import load_codebook

    try:
        return load_codebook(config["codebook"]).label(wildcards.moderator)
    except Exception:
        return wildcards.moderator


ORCHARD_MODERATORS = figure_moderators("orchard")
BUBBLE_MODERATORS = figure_moderators("bubble")

# every figure by stem; each has <stem>.png, <stem>.pdf and meta/<stem>.json under FIGURES
FIGURE_STEMS = [
    "flow",
    "forest",
    "variance_distribution",
    *[f"orchard_{m}" for m in ORCHARD_MODERATORS],
    *[f"bubble_{m}" for m in BUBBLE_MODERATORS],
    "components_orchard",
    "components_profiles",
    "funnel",
    "leave_one_out",
]


def figure_files(suffixes=("png", "pdf")):
    """The files of every figure with the given suffixes."""
    return [
        f"{FIGURES}/{stem}.{suffix}" for stem in FIGURE_STEMS for suffix in suffixes
    ]


def figure_meta_files():
    """The description (title, caption, section) each figure rule writes beside its figure."""
    return [f"{FIGURES}/meta/{stem}.json" for stem in FIGURE_STEMS]
