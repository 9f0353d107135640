"""Word (.docx) versions of the APA tables and of the report, for journals and co-authors who
edit in Word.

Both are converted from the HTML the pipeline already writes, so a Word table holds exactly the
cells of its HTML table (the same rounding, the same symbols) and the Word report the same
sections, paragraphs, tables and figures as ``report.html``: one converter
(:func:`html_to_docx`) for the small set of HTML the tables and the report use (headings,
paragraphs, lists, bold/italic/code/sub/superscript, tables, images as ``data:`` URIs or files,
preformatted text). APA layout of the tables: the number in bold, the title in italics, rules
above and below the column heads and below the table, no vertical lines, the note below; a
table with more than :data:`LANDSCAPE_COLUMNS` columns is set on a landscape page. Figures are
embedded at the width of the text block.

python-docx is imported only when a file is written.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from intervention_meta.outputs.tables import LANDSCAPE_COLUMNS

log = logging.getLogger(__name__)

__all__ = ["html_to_docx", "write_report_docx", "write_table_docx"]

_SKIP = {"head", "style", "script", "title", "nav"}
_BLOCKS = {"p", "li", "figcaption", "dt", "dd", "pre", "summary", "h1", "h2", "h3", "h4"}
_HEADING = {"h1": 0, "h2": 1, "h3": 2, "h4": 3}
_FONT = "Times New Roman"


class _Cell:
    def __init__(self, header: bool, numeric: bool):
        self.header = header
        self.numeric = numeric
        self.runs: list[tuple[str, dict]] = []


class _Converter(HTMLParser):
    """Feeds the HTML into a python-docx Document (see :func:`html_to_docx`)."""

    def __init__(self, doc: Any, base: Path, table_hook: Callable[[int], None] | None):
        super().__init__(convert_charrefs=True)
        self.doc = doc
        self.base = base
        self.table_hook = table_hook
        self.skip = 0
        self.fmt = {"bold": 0, "italic": 0, "code": 0, "sup": 0, "sub": 0}
        self.runs: list[tuple[str, dict]] = []
        self.block = "p"
        self.pre = False
        self.rows: list[list[_Cell]] | None = None
        self.cell: _Cell | None = None
        self.lists: list[str] = []
        self.spans: list[str] = []

    # ------------------------------------------------------------------ text
    def _style(self) -> dict:
        return {k: v > 0 for k, v in self.fmt.items()}

    def _add(self, text: str, **extra: Any) -> None:
        style = {**self._style(), **extra}
        target = self.cell.runs if self.cell is not None else self.runs
        target.append((text, style))

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        if data:
            self._add(data)

    # ------------------------------------------------------------------ tags
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        cls = a.get("class", "")
        if self.skip or tag in _SKIP:
            self.skip += tag in _SKIP
            return
        if tag == "span":
            self.spans.append(cls)
        if tag in ("b", "strong") or "apa-number" in cls:
            self.fmt["bold"] += 1
        if tag in ("i", "em") or "apa-title" in cls:
            self.fmt["italic"] += 1
        if tag in ("code", "pre"):
            self.fmt["code"] += 1
        if tag in ("sup", "sub"):
            self.fmt[tag] += 1
        if tag in ("ul", "ol"):
            self.flush()
            self.lists.append(tag)
        elif tag == "table":
            self.flush()
            self.rows = []
        elif tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif tag in ("td", "th") and self.rows is not None:
            if not self.rows:
                self.rows.append([])
            self.cell = _Cell(tag == "th", "num" in cls.split())
            self.rows[-1].append(self.cell)
        elif tag == "br":
            self._add("\n")
        elif tag == "img":
            self.flush()
            self.image(a.get("src", ""))
        elif tag in _BLOCKS and self.cell is None:
            self.flush()
            self.block = tag
            self.pre = tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip -= tag in _SKIP
            return
        if tag == "span" and self.spans:
            cls = self.spans.pop()
            if "apa-number" in cls:  # the number stands on its own line above the title
                self._close_format("b")
                self._add("\n")
            if "apa-title" in cls:
                self._close_format("i")
        else:
            self._close_format(tag)
        if tag in ("td", "th"):
            self.cell = None
        elif tag == "table" and self.rows is not None:
            rows, self.rows = self.rows, None
            self.table([r for r in rows if r])
        elif tag in ("ul", "ol") and self.lists:
            self.flush()
            self.lists.pop()
        elif tag in _BLOCKS and self.cell is None:
            self.flush()
            self.pre = False

    def _close_format(self, tag: str) -> None:
        if tag in ("b", "strong"):
            self.fmt["bold"] = max(0, self.fmt["bold"] - 1)
        elif tag in ("i", "em"):
            self.fmt["italic"] = max(0, self.fmt["italic"] - 1)
        elif tag in ("code", "pre"):
            self.fmt["code"] = max(0, self.fmt["code"] - 1)
        elif tag in ("sup", "sub"):
            self.fmt[tag] = max(0, self.fmt[tag] - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    # ------------------------------------------------------------------ output
    def flush(self) -> None:
        runs, self.runs = self.runs, []
        text = "".join(t for t, _ in runs)
        if not text.strip():
            return
        if self.block in _HEADING:
            par = self.doc.add_heading(level=_HEADING[self.block])
        elif self.block == "li" and self.lists:
            style = "List Number" if self.lists[-1] == "ol" else "List Bullet"
            par = self.doc.add_paragraph(style=style)
        else:
            par = self.doc.add_paragraph()
        _add_runs(par, runs, strip=not self.pre)

    def image(self, src: str) -> None:
        if src.startswith("data:"):
            data = io.BytesIO(base64.b64decode(src.split(",", 1)[1]))
        else:
            path = Path(src) if Path(src).is_absolute() else self.base / src
            if not path.is_file():
                log.warning("image %s not found; left out of the Word file", src)
                return
            data = io.BytesIO(path.read_bytes())
        self.doc.add_picture(data, width=_text_width(self.doc))

    def table(self, rows: list[list[_Cell]]) -> None:
        if not rows:
            return
        n_cols = max(len(r) for r in rows)
        if self.table_hook is not None:
            self.table_hook(n_cols)
        _apa_table(self.doc, rows, n_cols)


def _add_runs(par: Any, runs: list[tuple[str, dict]], strip: bool = True) -> None:
    from docx.shared import Pt

    if strip and runs:
        runs = list(runs)
        runs[0] = (runs[0][0].lstrip(), runs[0][1])
        runs[-1] = (runs[-1][0].rstrip(), runs[-1][1])
    for text, style in runs:
        if not text:
            continue
        for j, line in enumerate(text.split("\n")):
            if j:
                par.add_run().add_break()
            if not line:
                continue
            run = par.add_run(line)
            run.bold = style.get("bold") or None
            run.italic = style.get("italic") or None
            if style.get("sup"):
                run.font.superscript = True
            if style.get("sub"):
                run.font.subscript = True
            if style.get("code"):
                run.font.name = "Courier New"
                run.font.size = Pt(9)


def _text_width(doc: Any) -> Any:
    section = doc.sections[-1]
    return section.page_width - section.left_margin - section.right_margin


def _border(cell: Any, **edges: str) -> None:
    """Single rules on the given edges of a cell (``top="single"``, ...)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tc_pr = cell._tc.get_or_add_tcPr()
    borders = tc_pr.find(qn("w:tcBorders"))
    if borders is None:
        borders = OxmlElement("w:tcBorders")
        tc_pr.append(borders)
    for edge, val in edges.items():
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), val)
        el.set(qn("w:sz"), "6")
        el.set(qn("w:space"), "0")
        el.set(qn("w:color"), "000000")
        borders.append(el)


def _apa_table(doc: Any, rows: list[list[_Cell]], n_cols: int) -> None:
    """An APA table: rules above and below the heads and below the body, no vertical lines."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    table = doc.add_table(rows=len(rows), cols=n_cols)
    n_head = 0
    while n_head < len(rows) and all(c.header for c in rows[n_head]):
        n_head += 1
    grid = table._cells  # built once: table.cell(i, j) rebuilds the whole grid at every call
    for i, row in enumerate(rows):
        for j in range(n_cols):
            cell = grid[i * n_cols + j]
            par = cell.paragraphs[0]
            if j < len(row):
                _add_runs(par, row[j].runs)
                if row[j].numeric:
                    par.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            for run in par.runs:
                run.font.size = Pt(8 if n_cols > LANDSCAPE_COLUMNS else 9)
            edges = {}
            if i == 0:
                edges["top"] = "single"
            if i == n_head - 1 or i == len(rows) - 1:
                edges["bottom"] = "single"
            if edges:
                _border(cell, **edges)


def _landscape(doc: Any, on: bool) -> None:
    """Start a new page section in landscape (``on``) or portrait orientation."""
    from docx.enum.section import WD_ORIENT, WD_SECTION

    current = doc.sections[-1]
    if (current.orientation == WD_ORIENT.LANDSCAPE) == on:
        return
    section = doc.add_section(WD_SECTION.NEW_PAGE)
    width, height = section.page_width, section.page_height
    section.orientation = WD_ORIENT.LANDSCAPE if on else WD_ORIENT.PORTRAIT
    if (width < height) == on:
        section.page_width, section.page_height = height, width


def _document() -> Any:
    import docx
    from docx.shared import Pt

    doc = docx.Document()
    normal = doc.styles["Normal"]
    normal.font.name = _FONT
    normal.font.size = Pt(11)
    return doc


def html_to_docx(
    html_text: str, doc: Any | None = None, *, base: str | Path = ".", landscape: bool = True
) -> Any:
    """Convert HTML (the report or an APA table) into a python-docx ``Document``.

    Parameters
    ----------
    html_text : the HTML
    doc : append to this document (default: a new one, Times New Roman 11 pt)
    base : folder that image paths (``<img src>`` that is not a ``data:`` URI) are relative to
    landscape : set a table with more than :data:`LANDSCAPE_COLUMNS` columns on a landscape
        page (and go back to portrait after it)
    """
    doc = doc if doc is not None else _document()
    state = {"wide": False}

    def hook(n_cols: int) -> None:
        wide = n_cols > LANDSCAPE_COLUMNS
        if wide != state["wide"]:
            _landscape(doc, wide)
            state["wide"] = wide

    conv = _Converter(doc, Path(base), hook if landscape else None)
    conv.feed(html_text)
    conv.close()
    conv.flush()
    return doc


def write_table_docx(table: Any, path: str | Path) -> Path:
    """One APA table (:class:`~intervention_meta.outputs.tables.ApaTable`) as a .docx file:
    the cells of its HTML table, on a landscape page when it is wide."""
    doc = _document()
    if len(table.columns) > LANDSCAPE_COLUMNS:
        _landscape_first(doc)
    html_to_docx(table.to_html_fragment(), doc, landscape=False)
    path = Path(path)
    doc.save(path)
    return path


def _landscape_first(doc: Any) -> None:
    from docx.enum.section import WD_ORIENT

    section = doc.sections[0]
    width, height = section.page_width, section.page_height
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = max(width, height), min(width, height)


def write_report_docx(html_text: str, path: str | Path, base: str | Path = ".") -> Path:
    """The report as a .docx file: its headings, paragraphs, tables (wide ones on landscape
    pages) and figures (at the width of the text) from the report's HTML."""
    doc = html_to_docx(html_text, base=base)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    log.info("report (Word): %s", path)
    return path
