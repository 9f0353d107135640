"""The coding manual: every variable with its instruction, codes and uses; a self-contained HTML
page; the command line; and the Snakemake rules for the manual and the template."""

from __future__ import annotations

import html
import re

import openpyxl
import pytest
from conftest import CODEBOOK

from intervention_meta.__main__ import main
from intervention_meta.coding.manual import render_manual


@pytest.fixture(scope="module")
def manual(codebook):
    return render_manual(codebook)


def _text(document: str) -> str:
    """The document's text with entities resolved and runs of white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", document)).split())


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_manual_has_every_variable_with_its_instruction_codes_and_missing_codes(
    manual, codebook, fmt
):
    document = manual.to_markdown() if fmt == "markdown" else manual.to_html()
    text = _text(document)
    for var in codebook.variables.values():
        assert var.name in text
        assert _norm(var.label) in text
        assert _norm(var.description) in text, var.name
        for code, label in var.levels.items():
            assert code in text and _norm(label) in text, (var.name, code)
        for code in var.missing:
            assert code in text
        if var.range is not None:
            assert var.range.describe() in text


def test_manual_entries_carry_the_codebook_facts(manual, codebook):
    assert [e.name for e in manual.entries] == list(codebook.variables)
    year = manual.entry("year")
    assert (year.table, year.level, year.type, year.required) == (
        "studies",
        "study",
        "integer",
        True,
    )
    assert year.range == "between 1960 and 2030" and year.missing == ("-99",)
    rob = manual.entry("risk_of_bias")
    assert rob.levels == (("1", "Low"), ("2", "Some concerns"), ("3", "High"))
    assert manual.entry("es_id").level == "effect size"
    assert len(manual.to_frame()) == len(codebook.variables)


def test_uses_follow_from_the_roles(manual):
    uses = {e.name: " | ".join(e.uses) for e in manual.entries}
    assert "Moderator analysis" in uses["joint_effort"]
    assert "Descriptive tables" in uses["year"] and "Moderator analysis" in uses["year"]
    assert "Inclusion criteria" in uses["design"]
    assert "identifies each row of the studies table" in uses["study_id"]
    assert "links each row of the effects table" in uses["study_id"]
    # statistics: the es_input levels whose `requires` name the column (data/codebook.yaml)
    assert (
        uses["n_int"]
        == "Effect-size computation: needed when es_input = means_sds, t, f, p, prepost"
    )
    assert uses["stat_direction"].endswith("es_input = f, p")
    assert uses["r_prepost"] == "Effect-size computation (optional input)"
    assert "selects the formula" in uses["es_input"]
    assert dict(manual.entry("es_input").needs)["r"] == "r_value, n_total"


def test_further_analyses_can_be_named_per_variable(codebook):
    manual = render_manual(codebook, analyses_using={"year": "cumulative meta-analysis"})
    assert manual.entry("year").uses[-1] == "cumulative meta-analysis"
    assert "cumulative meta-analysis" in manual.to_markdown()


def test_contents_are_grouped_by_table_in_codebook_order(manual, codebook):
    md = manual.to_markdown()
    contents = md.split("## Contents")[1].split("<a id=")[0]
    links = re.findall(r"\(#(table|var)-([A-Za-z0-9_-]+)\)", contents)
    expected = []
    for table in codebook.tables:
        expected.append(("table", table))
        expected += [("var", v.name) for v in codebook.variables_of(table)]
    assert links == expected
    page = manual.to_html()
    for kind, name in expected:  # every contents link has its target
        assert f'id="{kind}-{name}"' in page


def test_html_is_self_contained(manual):
    page = manual.to_html()
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for forbidden in ("http://", "https://", "<link", "<script", "src=", "@import", "url(", "//"):
        assert forbidden not in lowered, forbidden
    assert "<style>" in page


def test_html_escapes_codebook_text(codebook):
    # the shipped codebook's p_value instruction says: Do not code "p < .05" as 0.05.
    page = render_manual(codebook).to_html()
    assert '"p < .05"' not in page and "&quot;p &lt; .05&quot;" in page


def test_command_line_writes_markdown_and_html(tmp_path):
    out = tmp_path / "codebook"
    assert main(["coding-manual", "--codebook", str(CODEBOOK), "--out", str(out)]) == 0
    assert (out / "manual.md").read_text(encoding="utf-8").startswith("# Coding manual")
    assert "<html" in (out / "manual.html").read_text(encoding="utf-8")
    assert (
        main(["coding-manual", "--codebook", str(CODEBOOK), "--md", str(tmp_path / "only.md")]) == 0
    )
    assert (tmp_path / "only.md").is_file() and not (tmp_path / "only.html").exists()


@pytest.mark.pipeline
def test_snakemake_writes_the_manual_and_the_template(example_run, codebook):
    out = example_run.work / "results" / "codebook"
    md = (out / "manual.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in md for name in codebook.variables)
    assert "https://" not in (out / "manual.html").read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(out / "coding_template.xlsx")
    assert wb.sheetnames == [*codebook.tables, "instructions"]
    assert (out / "logs" / "coding_manual.log").is_file()
