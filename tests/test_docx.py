"""Word versions of the APA tables and the report (:mod:`intervention_meta.outputs.docx`).

Unit tests convert small hand-made tables and pages; the pipeline tests open every .docx of the
session's shared runs (``example_run``, ``assink_run``) with python-docx and look in them for the
numbers of the steps' JSON, formatted with the APA rules of :mod:`intervention_meta.outputs.tables`
(as in the HTML tables): the Word files must hold the JSON's numbers.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import docx
import pytest
from docx.enum.section import WD_ORIENT

from intervention_meta.outputs.docx import html_to_docx, write_report_docx, write_table_docx
from intervention_meta.outputs.tables import LANDSCAPE_COLUMNS, ApaTable, fmt_ci, fmt_est

CONFIGS = ("example", "assink2016")


def _cells(document) -> list[list[list[str]]]:
    """Every table of a document as rows of cell texts."""
    return [[[c.text for c in row.cells] for row in t.rows] for t in document.tables]


def _text(document) -> str:
    return "\n".join(p.text for p in document.paragraphs)


def _table(n_cols: int = 3) -> ApaTable:
    columns = ("Result", "k", *(f"c{j}" for j in range(n_cols - 2)))
    return ApaTable(
        name="demo",
        number=4,
        title="A demonstration table",
        columns=columns,
        rows=(("Mean", "131", *("0.42" for _ in range(n_cols - 2))),),
        note="k = number of effect sizes.",
        align=("l", *("r" for _ in range(n_cols - 1))),
    )


# ------------------------------------------------------------------------------ units
def test_table_docx_has_number_title_cells_and_note(tmp_path):
    path = write_table_docx(_table(), tmp_path / "demo.docx")
    d = docx.Document(str(path))
    assert _cells(d) == [[["Result", "k", "c0"], ["Mean", "131", "0.42"]]]
    text = _text(d)
    assert "Table 4" in text and "A demonstration table" in text
    assert "Note. k = number of effect sizes." in text
    title = next(p for p in d.paragraphs if "A demonstration table" in p.text)
    assert all(r.italic for r in title.runs if "demonstration" in r.text)  # APA: title italic
    number = next(r for p in d.paragraphs for r in p.runs if r.text == "Table 4")
    assert number.bold
    assert d.sections[0].orientation == WD_ORIENT.PORTRAIT


def test_wide_table_docx_is_landscape(tmp_path):
    d = docx.Document(str(write_table_docx(_table(LANDSCAPE_COLUMNS + 1), tmp_path / "w.docx")))
    section = d.sections[0]
    assert section.orientation == WD_ORIENT.LANDSCAPE
    assert section.page_width > section.page_height
    assert len(d.tables[0].columns) == LANDSCAPE_COLUMNS + 1


def test_html_headings_lists_formatting_and_images(tmp_path):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    (tmp_path / "fig.png").write_bytes(buffer.getvalue())
    page = (
        "<html><head><title>not shown</title><style>p {}</style></head><body>"
        "<nav>contents, not shown</nav><h1>Report</h1><h2>Summary</h2>"
        "<p>The pooled effect was <b>g = 0.42</b>, <i>p</i> &lt; .001.</p>"
        "<ul><li>first</li><li>second</li></ul>"
        f'<figure><img src="{uri}"><figcaption>Figure one</figcaption></figure>'
        '<img src="fig.png"><pre>a: 1\n  b: 2</pre></body></html>'
    )
    d = html_to_docx(page, base=tmp_path)
    styles = [(p.style.name, p.text) for p in d.paragraphs]
    assert ("Title", "Report") in styles and ("Heading 1", "Summary") in styles
    assert ("List Bullet", "first") in styles and ("List Bullet", "second") in styles
    assert "not shown" not in _text(d)
    summary = next(p for p in d.paragraphs if p.text.startswith("The pooled effect"))
    assert summary.text == "The pooled effect was g = 0.42, p < .001."
    assert [r.text for r in summary.runs if r.bold] == ["g = 0.42"]
    assert [r.text for r in summary.runs if r.italic] == ["p"]
    assert len(d.inline_shapes) == 2  # the data: URI and the file next to the page
    section = d.sections[-1]
    width = section.page_width - section.left_margin - section.right_margin
    assert all(abs(s.width - width) <= 1 for s in d.inline_shapes)  # at the width of the text
    assert "a: 1\n  b: 2" in _text(d)


# ------------------------------------------------------------------------------ the real runs
@pytest.fixture
def runs(example_run, assink_run) -> dict[str, Path]:
    return {"example": example_run.results, "assink2016": assink_run.results}


@pytest.mark.parametrize("name", CONFIGS)
def test_every_apa_table_has_a_docx_with_the_cells_of_its_html(runs, name):
    apa = runs[name] / "tables" / "apa"
    index = json.loads((apa / "tables.json").read_text())
    assert index["tables"]
    for entry in index["tables"]:
        path = apa / f"{entry['name']}.docx"
        assert entry["files"]["docx"].endswith(f"{entry['name']}.docx")
        d = docx.Document(str(path))
        assert f"Table {entry['number']}" in _text(d)
        # the rows of the HTML table (heads and body) that have cells; a table of a step that
        # does not apply (assink2016's components) has none: the title and note remain
        html_table = (apa / f"{entry['name']}.html").read_text()
        rows = [r for r in re.findall(r"<tr>(.*?)</tr>", html_table, flags=re.S) if "<t" in r]
        assert len(rows) in (0, entry["n_rows"] + 1)
        assert len(d.tables) == (1 if rows else 0)
        if rows:
            assert len(d.tables[0].rows) == len(rows)
            cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", rows[-1])
            assert [c.text for c in d.tables[0].rows[-1].cells] == [
                html.unescape(re.sub("<[^>]+>", "", c)) for c in cells
            ]


@pytest.mark.parametrize("name", CONFIGS)
def test_overall_docx_holds_the_pooled_estimate_of_the_json(runs, name):
    res = runs[name]
    e = json.loads((res / "models" / "overall.json").read_text())["estimate"]
    est, ci = fmt_est(e["estimate"]), fmt_ci(e["ci_lb"], e["ci_ub"])
    html_table = (res / "tables" / "apa" / "overall.html").read_text()
    assert f">{est}<" in html_table and f">{ci}<" in html_table  # as in the HTML table
    rows = _cells(docx.Document(str(res / "tables" / "apa" / "overall.docx")))[0]
    model_based = next(r for r in rows if r[0] == "Mean effect (model-based)")
    assert model_based[1] == est and ci in model_based


@pytest.mark.parametrize("name", CONFIGS)
def test_report_docx_has_the_sections_tables_figures_and_the_pooled_estimate(runs, name):
    res = runs[name]
    d = docx.Document(str(res / "report.docx"))
    headings = [p.text for p in d.paragraphs if p.style.name == "Heading 1"]
    assert headings[:2] == ["Summary", "Methods"]
    assert "Warnings" in headings and "Provenance" in headings
    e = json.loads((res / "models" / "overall.json").read_text())["estimate"]
    summary = next(p.text for p in d.paragraphs if p.text.startswith("The pooled effect"))
    assert f"g = {fmt_est(e['estimate'])}" in summary
    assert f"CI {fmt_ci(e['ci_lb'], e['ci_ub'])}" in summary
    manifest = json.loads((res / "figures" / "figures.json").read_text())
    # the figures step's figures, and the multiverse's specification curve when it ran
    path = res / "models" / "multiverse.json"
    multiverse = json.loads(path.read_text()).get("figure") if path.is_file() else None
    assert (multiverse is not None) == (name == "example")  # only the example runs one
    if multiverse:
        assert (res / "models" / multiverse).is_file()
    expected = len(manifest["figures"]) + (1 if multiverse else 0)
    assert len(d.inline_shapes) == expected > 0
    # every APA table the HTML report shows, with its number and title
    shown = re.findall(
        r'<span class="apa-number">(Table \d+)</span><span class="apa-title">(.*?)</span>',
        (res / "report.html").read_text(),
    )
    lines = {line for p in d.paragraphs for line in p.text.split("\n")}
    assert shown and {html.unescape(t) for n, t in shown} <= lines
    assert {n for n, t in shown} <= lines
    overall = next(t for t in _cells(d) if any(r[0] == "Mean effect (model-based)" for r in t))
    assert any(fmt_est(e["estimate"]) in r for r in overall)


def test_report_docx_written_from_a_page_with_wide_tables_goes_landscape_and_back(tmp_path):
    wide = _table(LANDSCAPE_COLUMNS + 2).to_html_fragment()
    narrow = _table().to_html_fragment()
    path = write_report_docx(f"<p>start</p>{narrow}{wide}{narrow}", tmp_path / "r.docx")
    d = docx.Document(str(path))
    assert [s.orientation for s in d.sections] == [
        WD_ORIENT.PORTRAIT,
        WD_ORIENT.LANDSCAPE,
        WD_ORIENT.PORTRAIT,
    ]
    assert len(d.tables) == 3


def test_paragraph_styles_as_python_docx_sets_them():
    """The converter sets each paragraph's style id itself (looked up once per style); the
    paragraphs' XML is what python-docx's ``add_paragraph(style=...)`` writes."""
    html = (
        "<h1>T</h1><h2>A</h2><h3>B</h3><h4>C</h4><p>plain</p>"
        "<ul><li>u</li></ul><ol><li>n</li></ol><h2>again</h2>"
    )
    converted = html_to_docx(html)
    expected = docx.Document()
    for style, text in [
        ("Title", "T"),
        ("Heading 1", "A"),
        ("Heading 2", "B"),
        ("Heading 3", "C"),
        (None, "plain"),
        ("List Bullet", "u"),
        ("List Number", "n"),
        ("Heading 1", "again"),
    ]:
        expected.add_paragraph(style=style).add_run(text)
    got = [p._p.pPr.xml if p._p.pPr is not None else None for p in converted.paragraphs]
    want = [p._p.pPr.xml if p._p.pPr is not None else None for p in expected.paragraphs]
    assert got == want
    assert [p.text for p in converted.paragraphs] == [p.text for p in expected.paragraphs]
