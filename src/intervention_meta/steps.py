"""The steps of the pipeline, and the one registry from a step's name to the function that does it.

A step is a rule's job: read its files, call the package, write its files, log what it did. No
statistics live here. :data:`STEPS` maps every step name (the Snakemake rule's name; the command
line's ``python -m intervention_meta <name>``, with ``-`` for ``_``) to one package function, whose
keyword arguments are named like the rule's ``input``, ``output``, ``params`` and ``wildcards``.
Both front ends call that function the same way:

* the rules run ``workflow/scripts/step.py``, which calls :func:`run_rule`: it looks the rule up in
  :data:`STEPS`, sends the log to the rule's ``log:`` file and passes the rule's named files and
  params by name;
* the command line (:mod:`intervention_meta.__main__`) builds its options from the same function's
  signature (:func:`run_step`).

So from a rule name to the code is one hop: ``STEPS["bias"]`` names
:func:`intervention_meta.analyses.bias.run_bias` itself, whose keywords are the rule's names; where
the rule's entries need translating (the ``overall`` step's ``domain``, the data steps, figures,
tables, report) ``STEPS`` names a thin function below, named like the rule, whose body is one call
into the package. Modules are imported only when a step runs (inside the functions below, and by
:meth:`Step.load`), so a step pays only for what it uses.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Paths = str | Sequence[str]


# --------------------------------------------------------------------------- data
def validate(*, codebook: str, studies: str, effects: str, passed: str) -> None:
    """Validate both tables; write ``report.md``/``report.csv`` beside ``passed``.

    ``passed`` is written only when there is no error, so the pipeline stops at this step, while the
    report files (not declared as outputs, so Snakemake does not delete them on failure) stay.
    """
    from intervention_meta.data.codebook import load_codebook
    from intervention_meta.data.validation import validate as validate_tables

    outdir = Path(passed).parent
    report = validate_tables(load_codebook(codebook), studies, effects)
    paths = report.write(outdir)
    for p in report.warnings:
        log.warning("%s", p.message())
    if not report.ok:
        for p in report.errors:
            log.error("%s", p.message())
        report.raise_for_errors(paths["md"])
    Path(passed).write_text(report.summary(paths["md"]) + "\n", encoding="utf-8")


def clean(
    *,
    codebook: str,
    studies: str,
    effects: str,
    clean_effects: str,
    dropped: str,
    summary: str,
    inclusion: Mapping[str, Any] | None = None,
    passed: str | None = None,
) -> None:
    """Merge, recode missing values, apply the inclusion criteria; write kept and dropped rows.

    ``passed`` (the validate step's file) is only checked to exist: cleaning runs on valid data.
    """
    from intervention_meta.data.cleaning import clean as clean_tables
    from intervention_meta.data.codebook import load_codebook
    from intervention_meta.io import write_json, write_table

    if passed is not None and not Path(passed).is_file():
        raise FileNotFoundError(f"{passed}: run the validate step first")
    result = clean_tables(load_codebook(codebook), studies, effects, dict(inclusion or {}))
    write_table(result.effects, clean_effects)
    write_table(result.dropped, dropped)
    counts = result.counts
    write_json(counts, summary)
    log.info(
        "clean: %d rows in, %d kept, %d dropped (%d of %d studies kept)",
        counts["rows_in"],
        counts["kept"],
        counts["dropped"],
        counts["studies_kept"],
        counts["studies_in"],
    )
    for reason, n in counts["dropped_by_reason"].items():
        log.info("clean: dropped %d row(s): %s", n, reason)


def effect_sizes(
    *,
    codebook: str,
    clean_effects: str,
    table: str,
    dropped: str,
    summary: str,
    flags: str | None = None,
    options: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
) -> None:
    """Compute the declared effect measure and its variance per row; log computed vs dropped;
    write the rows with a tiny vi or an implausible effect to ``flags``."""
    from intervention_meta.analyses.flags import FlagRules, Flags
    from intervention_meta.data.cleaning import read_clean
    from intervention_meta.data.codebook import load_codebook
    from intervention_meta.effect_sizes.compute import compute_effect_sizes, effect_size_flags
    from intervention_meta.io import write_json, write_table

    cb = load_codebook(codebook)
    result = compute_effect_sizes(
        read_clean(clean_effects, cb),
        higher_is_worse_levels=cb.higher_is_worse_levels(),
        key=cb.key(cb.child_table),
        source_name=Path(clean_effects).name,
        requires=cb.statistic_columns(),
        **dict(options or {}),
    )
    write_table(result.table, table)
    write_table(result.dropped, dropped)
    write_json(result.summary(), summary)
    for line in result.log_lines():
        log.info("%s", line)
    rules = FlagRules.from_config(flag_rules)
    step_flags = Flags("effect_sizes", rules=rules)
    for line in effect_size_flags(
        result, tiny_vi_ratio=rules.tiny_vi_ratio, tiny_vi_share=rules.tiny_vi_share
    ):
        step_flags.add(line)
    if flags is not None:
        step_flags.write(flags)


def data(
    *,
    codebook: str,
    studies: str,
    effects: str,
    passed: str,
    clean_effects: str,
    clean_dropped: str,
    clean_summary: str,
    table: str,
    dropped: str,
    summary: str,
    flags: str | None = None,
    inclusion: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
) -> None:
    """The data steps in one job: :func:`validate`, :func:`clean`, :func:`effect_sizes`, in turn,
    with the same files (``clean_dropped``/``clean_summary`` are the clean step's ``dropped``/
    ``summary``). One process instead of three: each would spend most of its time importing."""
    validate(codebook=codebook, studies=studies, effects=effects, passed=passed)
    clean(
        codebook=codebook,
        studies=studies,
        effects=effects,
        clean_effects=clean_effects,
        dropped=clean_dropped,
        summary=clean_summary,
        inclusion=inclusion,
        passed=passed,
    )
    effect_sizes(
        codebook=codebook,
        clean_effects=clean_effects,
        table=table,
        dropped=dropped,
        summary=summary,
        flags=flags,
        options=options,
        flag_rules=flag_rules,
    )


# --------------------------------------------------------------------------- analyses
def overall(
    *,
    effect_sizes: str,
    codebook: str,
    table: str,
    comparison: str,
    variance: str,
    json: str,
    flags: str,
    models: Mapping[str, Any] | None = None,
    inclusion: Mapping[str, Any] | None = None,
    domain: str | None = None,
    flag_rules: Mapping[str, Any] | None = None,
) -> None:
    """The pooled effect (:func:`~intervention_meta.analyses.overall.run_overall`); with
    ``domain``, of the effect sizes whose ``models.domain_variable`` is that level."""
    from intervention_meta.analyses.overall import run_overall

    models = dict(models or {})
    subset = {} if domain is None else {models.get("domain_variable", "outcome_domain"): domain}
    run_overall(
        effect_sizes,
        codebook,
        models,
        table=table,
        json_path=json,
        flags_path=flags,
        comparison=comparison,
        variance=variance,
        subset=subset,
        inclusion=dict(inclusion or {}),
        flag_rules=flag_rules,
    )


def overall_domains(
    *,
    effect_sizes: str,
    codebook: str,
    domains: Sequence[str],
    table: Sequence[str],
    comparison: Sequence[str],
    variance: Sequence[str],
    json: Sequence[str],
    flags: Sequence[str],
    models: Mapping[str, Any] | None = None,
    inclusion: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
) -> None:
    """:func:`overall` of each of ``domains`` in turn, in one process; the files are lists in
    the order of ``domains``."""
    files = (table, comparison, variance, json, flags)
    if any(len(paths) != len(domains) for paths in files):
        raise ValueError("one table, comparison, variance, json and flags file per domain")
    for i, domain in enumerate(domains):
        overall(
            effect_sizes=effect_sizes,
            codebook=codebook,
            table=table[i],
            comparison=comparison[i],
            variance=variance[i],
            json=json[i],
            flags=flags[i],
            models=models,
            inclusion=inclusion,
            domain=domain,
            flag_rules=flag_rules,
        )


def collect_flags(*, flags: Paths, combined: str) -> None:
    """Concatenate flag files (one line per flag) into one file: the warnings file of the
    report, or the flags of the overall step (all data and every domain)."""
    files = [flags] if isinstance(flags, str) else list(flags)
    lines: list[str] = []
    for path in files:
        lines += [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    Path(combined).parent.mkdir(parents=True, exist_ok=True)
    Path(combined).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    log.info("warnings: %d flag(s) from %d step(s)", len(lines), len(files))


# --------------------------------------------------------------------------- outputs
def figures(
    *,
    effects: str,
    codebook: str,
    clean: str,
    effect_sizes: str,
    passed: str,
    overall: str,
    moderators: str,
    components: str,
    bias: str,
    sensitivity: str,
    manifest: str,
    domain_results: Sequence[str] = (),
    domains: Sequence[str] = (),
    domain_variable: str | None = None,
    orchard: Sequence[str] = (),
    bubble: Sequence[str] = (),
    sort: str = "effect",
    forest_rows: str = "study",
    forest_max_rows: int = 60,
    favours: Sequence[str] | None = None,
    level: str | None = None,
    measure: str | None = None,
    workers: int = 1,
    risk_of_bias: Mapping[str, Any] | None = None,
    prisma_counts: str | None = None,
    prisma_flow: str | None = None,
    **figure_files: str,
) -> None:
    """Every figure of an analysis in one job, drawn by ``workers`` processes
    (:func:`~intervention_meta.plots.figures.run_figures`) beside ``manifest`` (the list of
    figures the report reads). ``figure_files`` are the rule's names for the files drawn, and
    ``level`` and ``measure`` the level and the effect measure its captions show; none is read
    here (the figures name the measure from ``effect_sizes``, the step's summary);
    ``risk_of_bias`` is the config's section (empty: no risk-of-bias figures).
    ``prisma_counts`` is the PRISMA counts file (``prisma.counts``; None: none), ``prisma_flow``
    where the flow diagram's joined counts go."""
    from intervention_meta.plots.figures import FigureInputs, run_figures

    run_figures(
        FigureInputs(
            effect_sizes=effects,
            codebook=codebook,
            clean_summary=clean,
            effect_sizes_summary=effect_sizes,
            overall=overall,
            moderators=moderators,
            components=components,
            bias=bias,
            sensitivity=sensitivity,
            overall_domains=list(domain_results),
            validation_report=Path(passed).with_name("report.csv"),
            prisma_counts=prisma_counts,
        ),
        Path(manifest).parent,
        orchard=list(orchard),
        bubble=list(bubble),
        domains=list(domains),
        domain_variable=domain_variable,
        forest_sort=sort,
        forest_rows=forest_rows,
        forest_max_rows=int(forest_max_rows),
        favours=list(favours) if favours else None,
        workers=int(workers),
        risk_of_bias=dict(risk_of_bias or {}),
        prisma_flow=prisma_flow,
    )


def tables(
    *,
    tables: Sequence[str],
    index: str,
    codebook: str | None = None,
    domains: Sequence[str] = (),
    domain_results: Sequence[str] = (),
    domain_variable: str | None = None,
    effect_sizes_summary: str | None = None,
    effect_sizes: str | None = None,
    components_json: str | None = None,
    characteristics: Sequence[str] = (),
    characteristics_csv: str | None = None,
    grade_json: str | None = None,
    grade_csv: str | None = None,
    grade: Mapping[str, Any] | None = None,
    risk_of_bias: Mapping[str, Any] | None = None,
    **files: str,
) -> None:
    """APA tables (:func:`~intervention_meta.outputs.tables.run_tables`) of the result tables of
    the steps' JSON ``files[name]`` for each name in ``tables`` (in the report's order), written
    beside ``index`` (their list); ``domain_results`` are the per-domain ``overall.json``, in the
    order of ``domains``; ``effect_sizes_summary`` names the effect measure and its direction.
    With ``files["study_characteristics"]``, first the characteristics of the included studies
    (the studies of ``effect_sizes``; columns ``characteristics``, default
    :func:`~intervention_meta.outputs.prisma.characteristic_columns`; their components from
    ``components_json``), written there (and to ``characteristics_csv``) and shown as one more
    table. With ``grade_json``, first the GRADE summary of findings
    (:func:`~intervention_meta.outputs.grade.run_grade`, from ``effect_sizes`` and the config's
    ``grade`` and ``risk_of_bias`` sections), written to ``grade_json``/``grade_csv`` and shown
    as one more table. Other ``files`` (the rule's names for the tables written) are not read."""
    from intervention_meta.outputs.tables import run_tables

    if files.get("study_characteristics") and effect_sizes and codebook:
        from intervention_meta.outputs.prisma import write_characteristics

        write_characteristics(
            effect_sizes,
            codebook,
            files["study_characteristics"],
            columns=list(characteristics) or None,
            domain_variable=domain_variable,
            components_json=components_json,
            csv=characteristics_csv,
        )
    if grade_json and grade_csv and effect_sizes:
        from intervention_meta.outputs.grade import run_grade

        run_grade(
            files["overall"],
            effect_sizes,
            grade_json,
            grade_csv,
            bias=files.get("bias"),
            domain_files=dict(zip(domains, domain_results, strict=True)),
            codebook=codebook,
            domain_variable=domain_variable,
            effect_sizes_summary=effect_sizes_summary,
            grade=grade,
            risk_of_bias=risk_of_bias,
        )

    run_tables(
        {name: files[name] for name in tables},
        Path(index).parent,
        domain_files=dict(zip(domains, domain_results, strict=True)),
        codebook=codebook,
        domain_variable=domain_variable,
        effect_sizes_summary=effect_sizes_summary,
        grade=grade_json,
    )


def report(
    *,
    config: Mapping[str, Any],
    html: str,
    provenance: str,
    docx: str | None = None,
    checksummed: Sequence[str] = (),
    configfiles: Sequence[str] = (),
    figures: Paths = (),
    apa_html: Paths = (),
    workers: int = 1,
    **inputs: str,
) -> None:
    """The self-contained HTML report (:func:`~intervention_meta.outputs.report.run_report`), its
    Word version ``docx`` (if given) and the provenance record
    (:func:`~intervention_meta.outputs.provenance.collect_provenance`).

    ``inputs`` are the other fields of :class:`~intervention_meta.outputs.report.ReportInputs`
    (the steps' result files); ``figures`` is the figures manifest (none: no figures);
    ``apa_html`` (the APA tables, read through ``tables_index``) only orders the rule after them;
    ``workers`` threads downscale the figures' images for embedding.
    """
    from intervention_meta.outputs.provenance import collect_provenance
    from intervention_meta.outputs.report import ReportInputs, run_report

    manifest = [figures] if isinstance(figures, str) else list(figures)
    report_inputs = ReportInputs(**inputs, figures_manifest=manifest[0] if manifest else None)
    record = collect_provenance(
        list(checksummed), dict(config), config_files=list(configfiles), workdir=Path.cwd()
    )
    run_report(
        report_inputs,
        dict(config),
        html,
        provenance=record,
        out_provenance=provenance,
        out_docx=docx,
        workers=int(workers),
    )


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Step:
    """One step: the function that does it and where the command line finds its arguments.

    ``function`` is ``"module:name"`` (imported only when the step runs). ``config_files`` and
    ``config_params`` name the config entry (dotted, ``""`` for the whole config) each keyword
    comes from, for ``--config``; the rules take the params from the same place
    (``step_params`` in ``workflow/rules/common.smk``). ``outputs`` are default file names
    under ``--out``.
    """

    function: str
    help: str
    config_files: Mapping[str, str] = field(default_factory=dict)
    config_params: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


def _analysis(
    name: str, text: str, tables: Mapping[str, str], function: str = "", **params: str
) -> Step:
    """An analysis step: ``run_<name>`` of ``analyses/<name>.py`` unless ``function`` says
    otherwise; the codebook and ``models`` from the config, with its own ``params``; its
    ``tables`` under ``tables/``, ``models/<name>.json`` and ``flags/<name>.txt``."""
    return Step(
        function or f"intervention_meta.analyses.{name}:run_{name}",
        text,
        config_files={"codebook": "codebook"},
        config_params={"models": "models", "flag_rules": "flags", **params},
        outputs={
            **{kw: f"tables/{file}" for kw, file in tables.items()},
            "json": f"models/{name}.json",
            "flags": f"flags/{name}.txt",
        },
    )


_DATA = {"codebook": "codebook", "studies": "data.studies", "effects": "data.effects"}
_CODEBOOK = {"codebook": "codebook"}
_HERE = "intervention_meta.steps"

STEPS: dict[str, Step] = {
    "validate": Step(
        f"{_HERE}:validate",
        "check the data tables against the codebook",
        config_files=_DATA,
        outputs={"passed": "passed.txt"},
    ),
    "clean": Step(
        f"{_HERE}:clean",
        "merge, recode missing values, apply the inclusion criteria",
        config_files=_DATA,
        config_params={"inclusion": "inclusion"},
        outputs={
            "clean_effects": "effects.csv",
            "dropped": "dropped.csv",
            "summary": "summary.json",
        },
    ),
    "effect_sizes": Step(
        f"{_HERE}:effect_sizes",
        "compute the declared effect measure (default SMD) and its variance per row",
        config_files=_CODEBOOK,
        config_params={"options": "effect_sizes", "flag_rules": "flags"},
        outputs={
            "table": "effect_sizes.csv",
            "dropped": "effect_sizes_dropped.csv",
            "summary": "effect_sizes_summary.json",
            "flags": "flags/effect_sizes.txt",
        },
    ),
    "data": Step(
        f"{_HERE}:data",
        "validate, clean and effect-sizes in one run (the pipeline's data job)",
        config_files=_DATA,
        config_params={
            "inclusion": "inclusion",
            "options": "effect_sizes",
            "flag_rules": "flags",
        },
        outputs={
            "passed": "validation/passed.txt",
            "clean_effects": "clean/effects.csv",
            "clean_dropped": "clean/dropped.csv",
            "clean_summary": "clean/summary.json",
            "table": "effect_sizes.csv",
            "dropped": "effect_sizes_dropped.csv",
            "summary": "effect_sizes_summary.json",
            "flags": "flags/effect_sizes.txt",
        },
    ),
    "overall": _analysis(
        "overall",
        "the pooled effect (optionally of one --domain)",
        {
            "table": "overall.csv",
            "comparison": "overall_comparison.csv",
            "variance": "variance_distribution.csv",
        },
        function=f"{_HERE}:overall",
        inclusion="inclusion",
    ),
    "overall_domains": Step(
        f"{_HERE}:overall_domains",
        "the pooled effect of each of --domains (files: one per domain, in that order)",
        config_files=_CODEBOOK,
        config_params={"models": "models", "inclusion": "inclusion", "flag_rules": "flags"},
    ),
    "moderators": _analysis(
        "moderators",
        "one meta-regression per moderator, and the multiple-moderator model",
        {
            "moderators": "moderators.csv",
            "tests": "moderator_tests.csv",
            "multiple": "multiple_moderators.csv",
        },
        options="moderators",
        seed="seed",
    ),
    "components": _analysis(
        "components",
        "intervention components: profiles and consistency",
        {
            "profiles": "component_profiles.csv",
            "consistency": "component_consistency.csv",
            "study_effects": "study_effects.csv",
        },
        options="components",
        moderator_options="moderators",
    ),
    "bias": _analysis(
        "bias",
        "publication bias: Egger-type tests, selection model, trim and fill, PET-PEESE, funnel",
        {"table": "bias.csv", "trimfill": "trimfill_data.csv", "funnel": "funnel_data.csv"},
        options="bias",
        seed="seed",
        measure="effect_sizes.measure",
    ),
    "sensitivity": _analysis(
        "sensitivity",
        "leave one study out, influence, outliers, estimators, assumptions",
        {
            name: f"sensitivity_{name}.csv"
            for name in (
                "summary",
                "leave_one_out",
                "influence",
                "outliers",
                "estimators",
                "assumptions",
            )
        },
        options="sensitivity",
        effect_size_options="effect_sizes",
        risk_of_bias="risk_of_bias",
    ),
    "warnings": Step(
        f"{_HERE}:collect_flags",
        "collect the steps' flag files into one warnings file",
        outputs={"combined": "warnings.txt"},
    ),
    "figures": Step(f"{_HERE}:figures", "every figure of the analysis and their manifest"),
    "tables": Step(
        f"{_HERE}:tables",
        "APA tables (Markdown, LaTeX, HTML, Word) of the analysis tables and the GRADE summary",
        config_params={
            "grade": "grade",
            "risk_of_bias": "risk_of_bias",
            "characteristics": "prisma.characteristics",
        },
    ),
    "report": Step(
        f"{_HERE}:report",
        "the self-contained HTML report and the provenance record",
        config_params={"config": ""},
        outputs={"html": "report.html", "provenance": "provenance.json", "docx": "report.docx"},
    ),
    "cards": Step(
        "intervention_meta.cards.deck:run_cards",
        "conversation cards for practice (A6 PDF, HTML, JSON) from the analysis JSON",
        config_files={"codebook": "codebook"},
        config_params={"options": "cards", "analysis": "analysis"},
        outputs={"json": "cards.json", "html": "cards.html", "pdf": "cards.pdf"},
    ),
    "check_yaml": Step(
        "intervention_meta.config:check_yaml",
        "check that config files and their codebooks are valid YAML (file, line, column, why)",
    ),
    "summary": Step(
        "intervention_meta.outputs.run_summary:print_summary",
        "a short summary of finished runs (pooled effect, warnings, report) per config",
    ),
    "coding_manual": Step(
        "intervention_meta.coding.manual:write_manual",
        "the coding manual (Markdown and HTML) of a codebook",
        config_files=_CODEBOOK,
        outputs={"md": "manual.md", "html": "manual.html"},
    ),
    "coding_template": Step(
        "intervention_meta.coding.template:write_template",
        "the Excel coding template of a codebook",
        config_files=_CODEBOOK,
        outputs={"path": "coding_template.xlsx"},
    ),
    "reliability": Step(
        "intervention_meta.coding.reliability:write_reliability",
        "agreement of a second coder with the main data, and every disagreement",
        config_files={
            **_CODEBOOK,
            "studies_a": "data.studies",
            "studies_b": "reliability.studies",
        },
        config_params={
            "conf_level": "reliability.conf_level",
            "tolerance": "reliability.tolerance",
        },
        outputs={
            "agreement": "agreement.csv",
            "json": "agreement.json",
            "disagreements": "disagreements.csv",
        },
    ),
    "second_coder": Step(
        "intervention_meta.coding.second_coder:write_second_coder",
        "simulate a second coder with known disagreements",
        config_files={**_CODEBOOK, "studies_a": "data.studies"},
        outputs={"studies_b": "coder2_studies.csv", "truth": "coder2_truth.yaml"},
    ),
    "simulate": Step(
        "intervention_meta.example.literature:write_literature",
        "write a SIMULATED example literature (studies.csv, effects.csv, truth.yaml)",
    ),
    "vignette": Step(
        "intervention_meta.vignette.analysis:run_vignette",
        "the vignette study: validate, clean, fit the models, write models.json and findings.json",
        config_files=_CODEBOOK,
        config_params={"data": "data", "vignette": "vignette"},
        outputs={
            "json": "vignette/models.json",
            "findings": "vignette/findings.json",
            "terms": "tables/vignette_terms.csv",
            "tests": "tables/vignette_tests.csv",
            "means": "tables/vignette_means.csv",
            "passed": "validation/passed.txt",
        },
    ),
    "vignette_outputs": Step(
        "intervention_meta.outputs.vignette_report:run_vignette_outputs",
        "the vignette study's APA tables, figures and self-contained HTML report",
        config_params={"config": ""},
        outputs={
            "html": "report.html",
            "provenance": "provenance.json",
            "tables_index": "tables/tables.json",
            "figures_manifest": "figures/figures.json",
        },
    ),
    "simulate_vignette": Step(
        "intervention_meta.vignette.simulate:write_vignette_study",
        "write a SIMULATED vignette study (respondents.csv, ratings.csv, truth.yaml)",
    ),
    "multiverse_chunk": Step(
        "intervention_meta.multiverse.run:run_multiverse_chunk",
        "fit one chunk (--chunk, 0-based) of the multiverse's specifications",
        config_files={"codebook": "codebook"},
        config_params={"multiverse": "multiverse", "models": "models", "seed": "seed"},
        outputs={"out": "multiverse/chunks/0.json"},
    ),
    "multiverse": Step(
        "intervention_meta.multiverse.run:run_multiverse",
        "gather the multiverse's chunks: result table, specification curve, bootstrap test",
        config_files={"codebook": "codebook"},
        config_params={"multiverse": "multiverse", "models": "models", "seed": "seed"},
        outputs={
            "json": "models/multiverse.json",
            "table": "tables/multiverse.csv",
            "figure": "multiverse/specification_curve.png",
        },
    ),
}

# rules that run a step under another name
RULE_STEPS = {"overall_flags": "warnings"}


def step_of(name: str) -> Step:
    """The step of a rule or command (``-`` and ``_`` alike)."""
    name = name.replace("-", "_")
    try:
        return STEPS[RULE_STEPS.get(name, name)]
    except KeyError:
        raise KeyError(f"no step named {name!r}; the steps are {', '.join(STEPS)}") from None


def config_value(config: Mapping[str, Any], key: str) -> Any:
    """The config entry at the dotted ``key`` (``""``: the whole config); None if absent."""
    value: Any = config
    for part in key.split(".") if key else []:
        if not isinstance(value, Mapping) or value.get(part) is None:
            return None
        value = value[part]
    return value


def step_params(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The params a step takes from the config (absent entries left out, so the step's
    defaults apply)."""
    params = {kw: config_value(config, key) for kw, key in step_of(name).config_params.items()}
    return {kw: value for kw, value in params.items() if value is not None}


def run_step(name: str, **kwargs: Any) -> Any:
    """Run step ``name`` with keyword arguments named like its rule's files and params.

    Every keyword must be a parameter of the step's function (a misspelt rule entry fails
    here, naming it, rather than being ignored).
    """
    function = step_of(name).load()
    params = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(kwargs) - set(params)) if not takes_any else []
    if unknown:
        raise TypeError(f"step {name!r} takes no {', '.join(unknown)} ({function.__module__})")
    return function(**kwargs)


def _plain(value: Any) -> Any:
    """A rule's entry as plain Python: one file as ``str``, several as a list of ``str``."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple):
        return [str(v) if isinstance(v, str) else v for v in value]
    return value


def rule_arguments(snakemake: Any) -> dict[str, Any]:
    """The named input, output, params and wildcards of a Snakemake job, by name."""
    kwargs: dict[str, Any] = {}
    for entries in (snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards):
        for key, value in entries.items():
            if key in kwargs:
                raise ValueError(f"rule {snakemake.rule}: {key!r} is named twice")
            kwargs[key] = _plain(value)
    return kwargs


def run_rule(snakemake: Any) -> Any:
    """Run the step of a Snakemake job: log to its ``log:`` file, pass its entries by name."""
    from intervention_meta.io import setup_logging

    setup_logging(snakemake.log[0] if snakemake.log else None)
    return run_step(snakemake.rule, **rule_arguments(snakemake))
