# Helper functions of the tables and report stages (functions only: rules live in their own files,
# as snakemake --lint asks). The rules are in workflow/rules/report.smk; they are included after
# every analysis stage, so rules.<step> of those stages is known when these are called.
APA_RES = f"{RES}/tables/apa"
APA_FORMATS = ("md", "tex", "html", "docx")
GRADE_JSON = f"{RES}/models/grade.json"
# APA tables the tables step makes itself (not read from an analysis step), after the others
OWN_TABLES = ["study_characteristics"]


def apa_table_sources():
    """APA table name -> the file it is read from (the step's models/<step>.json; see
    intervention_meta.outputs.tables.table_source for the table in it), in the order of the
    report (the table numbers follow this order)."""
    models = f"{RES}/models"
    sources = {
        "overall": f"{models}/overall.json",
        "variance_distribution": f"{models}/overall.json",
        "overall_comparison": f"{models}/overall.json",
        "moderator_tests": f"{models}/moderators.json",
        "moderators": f"{models}/moderators.json",
        "multiple_moderators": f"{models}/moderators.json",
        "component_profiles": f"{models}/components.json",
        "component_consistency": f"{models}/components.json",
        "bias": f"{models}/bias.json",
    }
    for name in SENSITIVITY_TABLES:  # every table the sensitivity step writes
        sources[f"sensitivity_{name}"] = f"{models}/sensitivity.json"
    if RELIABILITY.get("studies"):
        sources["reliability_agreement"] = f"{RES}/reliability/agreement.csv"
        sources["reliability_disagreements"] = f"{RES}/reliability/disagreements.csv"
    return sources


def apa_table_names():
    """The APA tables the tables step writes (the per-domain table after `overall`)."""
    names = []
    for name in apa_table_sources():
        names.append(name)
        if name == "overall" and OVERALL_DOMAINS:
            names.append("overall_domains")
    return names + OWN_TABLES + ["grade"]


def apa_table_outputs(annotate=False):
    """Every output file of the tables step (<name>.md/.tex/.html/.docx per table, and the index);
    with `annotate`, the HTML tables are marked for `snakemake --report`."""
    out = {}
    for name in apa_table_names():
        for ext in APA_FORMATS:
            path = f"{APA_RES}/{name}.{ext}"
            if annotate and ext == "html":
                path = report(
                    path,
                    caption="../report/tables.rst",
                    category="8. APA tables",
                    labels={"table": name},
                )
            out[f"{name}_{ext}"] = path
    out["index"] = f"{APA_RES}/tables.json"
    return out


def domain_overall_results():
    """The per-domain overall results (models/overall.json), in the order of OVERALL_DOMAINS."""
    return expand(f"{DOMAIN_RES}/models/overall.json", domain=OVERALL_DOMAINS)


def figures_manifest():
    """The figures step's manifest, once the figures stage exists ([] before)."""
    defined = [r.name for r in workflow.rules]
    if "figures" in defined:
        return [f"{RES}/figures/figures.json"]
    return []


def checksummed_inputs():
    """The input files whose SHA-256 the report records: codebook, data, second coder."""
    files = [config["codebook"], config["data"]["studies"], config["data"]["effects"]]
    for key in ("studies", "effects"):
        if RELIABILITY.get(key):
            files.append(RELIABILITY[key])
    return files


def config_path(path):
    """A config file's path as the job records it: relative to the working directory when
    inside it. Snakemake makes a --configfile absolute but keeps the default `configfile:`
    relative, so without this a plain `snakemake -n` after `snakemake --configfile
    config/config.yaml` (what `make run` does) sees a changed set of inputs and reruns the
    report."""
    path = os.path.abspath(path)
    inside = os.path.commonpath([path, os.getcwd()]) == os.getcwd()
    return os.path.relpath(path) if inside else path


def report_inputs(wildcards):
    """Everything the report reads: the steps' JSON and summaries, the APA tables, the figures
    manifest, the warnings, and the input files it checksums."""
    files = {
        "tables_index": f"{APA_RES}/tables.json",
        "apa_html": [f"{APA_RES}/{name}.html" for name in apa_table_names()],
        "validation": f"{RES}/validation/passed.txt",
        "clean_summary": f"{RES}/clean/summary.json",
        "clean_dropped": f"{RES}/clean/dropped.csv",
        "effect_sizes_summary": f"{RES}/effect_sizes_summary.json",
        "effect_sizes_dropped": f"{RES}/effect_sizes_dropped.csv",
        "overall": f"{RES}/models/overall.json",
        "moderators": f"{RES}/models/moderators.json",
        "components": f"{RES}/models/components.json",
        "bias": f"{RES}/models/bias.json",
        "sensitivity": f"{RES}/models/sensitivity.json",
        "grade": GRADE_JSON,
        "warnings": f"{RES}/warnings.txt",
        "figures": figures_manifest(),
        "prisma_flow": f"{RES}/prisma/flow.json",
        "checksummed": checksummed_inputs(),
        "configfiles": [config_path(path) for path in workflow.configfiles],
    }
    if RELIABILITY.get("studies"):
        files["reliability"] = f"{RES}/reliability/agreement.json"
    if MULTIVERSE_CHUNKS:
        files["multiverse"] = f"{RES}/models/multiverse.json"
    return files
