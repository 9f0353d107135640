# Helper functions of the tables and report stages (functions only: rules live in their own files,
# as snakemake --lint asks). The rules are in workflow/rules/report.smk; they are included after
# every analysis stage, so rules.<step> of those stages is known when these are called.
APA_RES = f"{RES}/tables/apa"
APA_FORMATS = ("md", "tex", "html")


def apa_table_sources():
    """APA table name -> the analysis CSV it is made from, in the order of the report (the
    table numbers follow this order)."""
    sources = {
        "overall": f"{RES}/tables/overall.csv",
        "variance_distribution": f"{RES}/tables/variance_distribution.csv",
        "overall_comparison": f"{RES}/tables/overall_comparison.csv",
        "moderator_tests": f"{RES}/tables/moderator_tests.csv",
        "moderators": f"{RES}/tables/moderators.csv",
        "multiple_moderators": f"{RES}/tables/multiple_moderators.csv",
        "component_profiles": f"{RES}/tables/component_profiles.csv",
        "component_consistency": f"{RES}/tables/component_consistency.csv",
        "bias": f"{RES}/tables/bias.csv",
    }
    for path in rules.sensitivity.output:  # every sensitivity table the rule writes
        name = os.path.basename(str(path))
        if re.fullmatch(r"sensitivity_\w+\.csv", name):
            sources[name[: -len(".csv")]] = str(path)
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
    return names


def apa_table_outputs(annotate=False):
    """Every output file of the tables step (<name>.md/.tex/.html per table, and the index);
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


def domain_overall_tables():
    """The per-domain overall tables, in the order of OVERALL_DOMAINS."""
    return expand(f"{DOMAIN_RES}/tables/overall.csv", domain=OVERALL_DOMAINS)


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
        "sensitivity_summary": f"{RES}/tables/sensitivity_summary.csv",
        "warnings": f"{RES}/warnings.txt",
        "figures": figures_manifest(),
        "checksummed": checksummed_inputs(),
        "configfiles": [str(path) for path in workflow.configfiles],
    }
    if RELIABILITY.get("studies"):
        files["reliability"] = f"{RES}/reliability/agreement.json"
    return files
