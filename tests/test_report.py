"""The report (rule ``report``, :mod:`intervention_meta.outputs.report`) and the APA tables of a
real run.

The session's shared pipeline runs (``example_run``, ``assink_run`` in ``conftest.py``) make the
report of both shipped analyses (``config/config.yaml``: simulated example with a second coder;
``config/assink2016.yaml``: Assink & Wibbelink 2016). Every expected number is read from the
analysis steps' JSON of that run and formatted with the APA rules of
:mod:`intervention_meta.outputs.tables` (tested in ``tests/test_tables.py``): the report must show
the JSON's numbers, not numbers of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from pipeline_helpers import run_snakemake

from intervention_meta.outputs.report import (
    SECTIONS,
    ReportInputs,
    build_report,
    embedded_image,
    load_report_data,
)
from intervention_meta.outputs.tables import fmt_ci, fmt_df, fmt_est, fmt_p, fmt_pct

pytestmark = pytest.mark.pipeline

CONFIGS = ("example", "assink2016")


@pytest.fixture
def runs(example_run, assink_run) -> dict[str, Path]:
    """The project copy of each analysis, run to the end (the session's shared runs)."""
    return {"example": example_run.work, "assink2016": assink_run.work}


@pytest.fixture
def project(example_run) -> Path:
    """The project copy of the example analysis (default config), run to the end."""
    return example_run.work


@pytest.fixture(params=list(CONFIGS))
def run(request, runs):
    """(results folder, report HTML, analysis name) of one analysis."""
    res = runs[request.param] / "results" / request.param
    return res, (res / "report.html").read_text(encoding="utf-8"), request.param


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def section(doc: str, section_id: str) -> str:
    """The HTML of one section: from its <h2 id=...> to the next section's heading."""
    start = doc.index(f'<h2 id="{section_id}">')
    nxt = doc.find("<h2 id=", start + 1)
    return doc[start : nxt if nxt > 0 else len(doc)]


# ------------------------------------------------------------------------------ structure
def test_report_has_every_section_with_its_id(run):
    _, doc, analysis = run
    ids = re.findall(r'<h2 id="([^"]+)">', doc)
    expected = [s for s in SECTIONS if s != "other-figures"]
    assert [i for i in ids if i != "other-figures"] == expected
    # the inter-rater reliability is computed only where a second coder was configured; elsewhere
    # its section is one line saying why
    reliability = section(doc, "reliability")
    assert ("No second coder" in reliability) == (analysis == "assink2016")
    assert ('id="table-reliability_agreement"' in reliability) == (analysis == "example")


def _not_applicable(part: str) -> list[str]:
    """The one-line notices of a section (``p.not-applicable``), tags stripped."""
    found = re.findall(r'<p class="not-applicable">(.*?)</p>', part, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", text)) for text in found]


def test_assink2016_report_has_one_line_instead_of_the_components_section(assink_run):
    res = assink_run.results
    doc = (res / "report.html").read_text(encoding="utf-8")
    components = _json(res / "models" / "components.json")
    assert components["applicable"] is False and "role: component" in components["reason"]
    part = section(doc, "components")
    (line,) = _not_applicable(part)
    assert line.startswith(
        "No intervention components are coded in this data set (role: component in the "
        "codebook), so "
    )
    # the section is that line: no table, no figure, and the empty tables are nowhere else
    assert "<table" not in part and "<img" not in part and "<p>" not in part
    for name in ("component_profiles", "component_consistency"):
        assert f'id="table-{name}"' not in doc
    assert "<b>Components.</b>" not in section(doc, "methods")
    # pubstatus is a moderator, not a component: there is no default multiple-moderator model
    moderators = _json(res / "models" / "moderators.json")
    assert moderators["multiple"]["applicable"] is False
    mods = section(doc, "moderators")
    assert any(
        t.startswith("No multiple-moderator model: no intervention components")
        for t in _not_applicable(mods)
    )
    assert 'id="table-multiple_moderators"' not in doc
    assert 'id="table-moderator_tests"' in mods  # the single moderators are still analysed


def test_example_report_shows_the_component_and_multiple_moderator_tables(example_run):
    res = example_run.results
    doc = (res / "report.html").read_text(encoding="utf-8")
    assert _json(res / "models" / "components.json")["applicable"] is True
    assert _not_applicable(section(doc, "components")) == []
    for name in ("component_profiles", "component_consistency"):
        assert f'id="table-{name}"' in section(doc, "components")
    assert 'id="table-multiple_moderators"' in section(doc, "moderators")
    assert _not_applicable(section(doc, "moderators")) == []


def _inputs(res: Path, **files: str) -> ReportInputs:
    """The report's inputs from a finished run's folder: the required files and ``files``."""
    return ReportInputs(
        tables_index=str(res / "tables/apa/tables.json"),
        overall=str(res / "models/overall.json"),
        clean_summary=str(res / "clean/summary.json"),
        effect_sizes_summary=str(res / "effect_sizes_summary.json"),
        warnings=str(res / "warnings.txt"),
        **files,
    )


def _variant(res: Path, **changes) -> str:
    """The report of a finished run rebuilt with some of its data replaced."""
    models = res / "models"
    inputs = _inputs(
        res,
        moderators=str(models / "moderators.json"),
        components=str(models / "components.json"),
    )
    data = load_report_data(inputs, {"analysis": res.name})
    return build_report(dataclasses.replace(data, **changes)).html


def test_sections_that_do_not_apply_are_one_line_saying_why(assink_run):
    res = assink_run.results
    moderators = _json(res / "models" / "moderators.json")
    # no moderators at all: the section is the step's reason, without its (empty) tables
    none = {**moderators, "applicable": False, "reason": "no variable has role moderator"}
    doc = _variant(res, moderators=none)
    part = section(doc, "moderators")
    assert _not_applicable(part) == ["No moderator analyses: no variable has role moderator."]
    assert "<table" not in part and 'id="table-moderator_tests"' not in doc
    # per-domain analyses asked for, but no domain level to analyse
    config = {"analysis": "assink2016", "models": {"per_domain": True, "domain_variable": "dom"}}
    doc = _variant(res, config=config)
    assert _not_applicable(section(doc, "overall")) == [
        "No per-domain analyses: models.per_domain is set, but the domain variable dom has no "
        "levels in the analysed data."
    ]
    # a variable left out of the multiple-moderator model for its coding coverage is named
    multiple = {
        **moderators["multiple"],
        "left_out": {"new": {"n_coded": 2, "n_studies": 17, "uncoded": ["3", "4"]}},
    }
    doc = _variant(res, moderators={**moderators, "multiple": multiple, "min_coverage": 0.5})
    assert "<code>new</code> (coded for 2 of 17 studies)" in section(doc, "moderators")
    assert "fewer than 50% of the studies" in section(doc, "moderators")
    # a multiple-moderator model of listed moderators is not called a model of the components
    test = {"test": "F", "stat": 2.5, "df1": 1, "df2": 98, "pval": 0.12}
    listed = {"applicable": True, "variables": ["pubstatus"], "k": 100, "n_studies": 17}
    doc = _variant(res, moderators={**moderators, "multiple": {**listed, "test": test}})
    assert "The multiple-moderator model of <code>pubstatus</code> (<i>k</i> = 100" in doc


def test_report_is_one_self_contained_file(run):
    _, doc, _ = run
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", doc, re.I)
    assert "http://" not in doc and "https://" not in doc
    assert "<link" not in doc.lower()
    assert "<script" not in doc.lower()
    # every image is embedded
    for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', doc):
        assert src.startswith("data:image/png;base64,")


def test_every_figure_of_the_manifest_is_embedded_with_its_caption(run):
    res, doc, _ = run
    manifest = res / "figures" / "figures.json"
    if not manifest.is_file():
        pytest.skip("no rule figures in this checkout yet (see the fake-manifest test below)")
    figures = _json(manifest)["figures"]
    assert figures
    for fig in figures:
        png = res.parents[1] / fig["png"]
        # embedded downscaled, with links to the full-resolution files beside the report
        assert embedded_image(png) in doc, fig["stem"]
        for fmt in ("png", "pdf", "svg"):
            link = Path(fig[fmt]).relative_to(f"results/{res.name}").as_posix()
            assert f'<a href="{link}">{fmt.upper()}</a>' in doc, fig["stem"]
            assert (res / link).is_file()
        assert html.escape(fig["caption"]) in doc
    flow = [f for f in figures if f["section"] == "data"]
    assert flow, "the PRISMA-style flow figure"
    assert f'id="figure-{flow[0]["stem"]}"' in section(doc, "data-flow")


# ------------------------------------------------------------------------------ numbers
def test_summary_shows_the_overall_estimate_of_the_json(run):
    res, doc, _ = run
    ov = _json(res / "models" / "overall.json")
    e, r = ov["estimate"], ov["robust"]
    summary = section(doc, "summary")
    assert f"<i>g</i> = {fmt_est(e['estimate'])}" in summary
    assert f"95% CI {fmt_ci(e['ci_lb'], e['ci_ub'])}" in summary
    assert f"<i>t</i>({fmt_df(e['df'])}) = {fmt_est(e['statistic'])}" in summary
    assert f"<i>t</i>({fmt_df(r['df_satt'])}) = {fmt_est(r['tstat'])}" in summary
    assert fmt_ci(e["pi_lb"], e["pi_ub"]) in summary
    for share in ov["variance_distribution"]["i2"].values():
        assert f"{fmt_pct(share)}%" in summary


def test_moderator_and_bias_sentences_show_the_json_values(run):
    res, doc, _ = run
    mods = _json(res / "models" / "moderators.json")["single"]["moderators"]
    significant = [m for m in mods if ((m.get("test") or {}).get("p_adj") or 1) < 0.05]
    text = section(doc, "moderators")
    for m in significant:
        assert html.escape(m["label"]) in text
        p_adj = fmt_p(m["test"]["p_adj"])
        assert f"adjusted <i>p</i> = {p_adj}" in text or p_adj == "< .001"
    egger = _json(res / "models" / "bias.json")["egger_multilevel"]
    bias = section(doc, "publication-bias")
    assert f"<i>t</i>({fmt_df(egger['dfs'])}) = {fmt_est(egger['statistic'])}" in bias


def test_apa_tables_are_written_for_every_table_and_rounded(run):
    res, _, _ = run
    index = _json(res / "tables" / "apa" / "tables.json")
    names = [t["name"] for t in index["tables"]]
    assert [t["number"] for t in index["tables"]] == list(range(1, len(names) + 1))
    for name in names:
        for ext in ("md", "tex", "html"):
            assert (res / "tables" / "apa" / f"{name}.{ext}").stat().st_size > 0
    sensitivity = {p.stem for p in (res / "tables").glob("sensitivity_*.csv")}
    assert sensitivity <= set(names)
    e = _json(res / "models" / "overall.json")["estimate"]
    md = (res / "tables" / "apa" / "overall.md").read_text()
    row = (
        f"| Mean effect (model-based) | {fmt_est(e['estimate'])} | {fmt_est(e['se'])} | "
        f"{fmt_ci(e['ci_lb'], e['ci_ub'])} | t | {fmt_est(e['statistic'])} | {fmt_df(e['df'])} | "
        f"{fmt_p(e['pval'])} |"
    )
    assert row in md
    tex = (res / "tables" / "apa" / "overall.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex


def test_example_tables_include_the_domains_and_the_reliability(runs):
    project = runs["example"]
    names = [t["name"] for t in _json(project / "results/example/tables/apa/tables.json")["tables"]]
    assert names[:2] == ["overall", "overall_domains"]
    assert {"reliability_agreement", "reliability_disagreements"} <= set(names)
    assink = _json(runs["assink2016"] / "results/assink2016/tables/apa/tables.json")["tables"]
    assert not any(t["name"].startswith(("reliability", "overall_domains")) for t in assink)


# ------------------------------------------------------------------------------ methods, warnings
def test_methods_are_written_from_the_config_and_the_step_summaries(run):
    res, doc, analysis = run
    methods = section(doc, "methods")
    summary = _json(res / "effect_sizes_summary.json")
    used = summary["defaults_used"]["r_prepost"]
    if used:
        assert f"a pre-post correlation of 0.5 (used for {used} effect sizes)" in methods
    else:  # nothing assumed is not reported as "used for 0 effect sizes"
        assert "a pre-post correlation of" not in methods
    assert "three-level meta-analytic model" in methods
    assert "restricted maximum likelihood (REML)" in methods
    assert "Satterthwaite" in methods and "Holm" in methods
    assert "at least 3 studies" in methods
    assert "trim and fill with the L0 estimator" in methods
    if analysis == "example":
        assert "<code>design</code> in {rct, quasi, prepost}" in methods
        assert "Krippendorff" in methods
    else:
        assert "No inclusion criteria were set" in methods
    for reference in ("Viechtbauer, W. (2010)", "Assink, M., &amp; Wibbelink", "Cheung, M. W.-L."):
        assert reference in methods
    for reference in ("Pustejovsky, J. E., &amp; Tipton, E. (2018)", "Duval, S., &amp; Tweedie"):
        assert reference in methods
    assert "Egger, M., Davey Smith" in methods


def test_methods_and_summary_name_the_measure_and_the_declared_direction(run):
    """The measure and the direction come from effect_sizes_summary.json: assink2016's positive
    effects mean more recidivism, so its report never speaks of a benefit."""
    res, doc, analysis = run
    measure = _json(res / "effect_sizes_summary.json")["measure"]
    direction = html.escape(measure["direction"].rstrip("."))
    assert f"Direction: {direction}." in section(doc, "summary")
    methods = section(doc, "methods")
    assert f"Direction: {direction}." in methods
    assert "Every effect was expressed as Hedges&#x27; <i>g</i>" in methods or (
        "Every effect was expressed as Hedges' <i>g</i>" in methods
    )
    if analysis == "assink2016":
        assert "benefit" not in doc.lower() and "favouring the intervention" not in doc
        # every effect size was given as yi/vi: no conversion is described or cited
        assert "were coded ready (yi and vi)" in methods
        assert "Morris" not in methods and "Hasselblad" not in methods
    else:
        assert "Morris (2008)" in methods and "Hedges, L. V. (1981)" in methods


def test_every_warning_line_is_in_the_report(run):
    res, doc, _ = run
    lines = [ln for ln in (res / "warnings.txt").read_text().splitlines() if ln.strip()]
    warnings = section(doc, "warnings")
    assert warnings.count("<li>") == len(lines)
    for line in lines:
        assert html.escape(line) in warnings


def test_provenance_has_checksums_config_versions_and_no_git_outside_a_checkout(run):
    res, doc, analysis = run
    work = res.parents[1]
    prov = section(doc, "provenance")
    config = "config/config.yaml" if analysis == "example" else "config/assink2016.yaml"
    codebook = _json(res / "provenance.json")["config"]["codebook"]
    for path in (config, codebook):
        digest = hashlib.sha256((work / path).read_bytes()).hexdigest()
        assert f"<code>{path}</code>" in prov and digest in prov
    assert "not a git checkout" in prov
    assert f"analysis: {analysis}" in prov
    for package in ("numpy", "scipy", "pandas", "statsmodels", "snakemake"):
        assert f"<td>{package}</td><td>{metadata.version(package)}</td>" in prov


# ------------------------------------------------------------------------------ figures (fake)
def _png(path: Path, colour: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1], color=colour)
    fig.savefig(path, dpi=50)
    plt.close(fig)
    return path


def test_figures_of_a_manifest_are_embedded_in_their_sections(project, tmp_path):
    res = project / "results" / "example"
    figures = [
        ("flow", "data", "red"),
        ("funnel", "bias", "blue"),
        ("extra", "something new", "green"),
    ]
    entries = []
    for stem, part, colour in figures:
        _png(tmp_path / f"{stem}.png", colour)
        entries.append(
            {
                "stem": stem,
                "png": f"{stem}.png",  # relative to the manifest's folder
                "pdf": f"{stem}.pdf",
                "title": f"Title of {stem}",
                "caption": f"Caption of {stem} <with> (Cheung 2014).",
                "section": part,
            }
        )
    manifest = tmp_path / "figures.json"
    manifest.write_text(json.dumps({"figures": entries}))
    inputs = _inputs(res, figures_manifest=str(manifest))
    doc = build_report(load_report_data(inputs, {"analysis": "example"})).html
    for stem, part, _ in figures:
        encoded = embedded_image(tmp_path / f"{stem}.png")
        target = {"data": "data-flow", "bias": "publication-bias"}.get(part, "other-figures")
        assert encoded in section(doc, target), stem
        assert html.escape(f"Caption of {stem} <with> (Cheung 2014).") in doc
    assert re.findall(r'class="apa-number">Figure (\d+)<', doc) == ["1", "2", "3"]
    assert "Cheung, M. W.-L. (2014)" in doc  # a reference named in a caption is listed


# ------------------------------------------------------------------------------ snakemake --report
def test_snakemake_report_zip_of_a_finished_run(project, tmp_path):
    target = tmp_path / "report.zip"
    run_snakemake(project, "--report", str(target), check=True)
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
    assert any(n.endswith("report.html") for n in names)
    assert any("overall" in n for n in names)
