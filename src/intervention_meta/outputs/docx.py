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
from html import escape
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

    def __init__(self, doc: Any, base: Path, table_hook: Callable[[int], bool] | None):
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
        self._width: int | None = None
        self._styles: dict[str, str | None] = {}  # paragraph style name -> its id

    def paragraph(self, style: str | None = None) -> Any:
        """A new paragraph at the end of the document, in the paragraph style ``style``.

        The same as ``doc.add_paragraph(style=style)``, with the style's id looked up once per
        name: python-docx looks it up, with two searches of the styles part, for every
        paragraph.
        """
        par = self.doc.add_paragraph()
        if style is not None:
            if style not in self._styles:
                from docx.enum.style import WD_STYLE_TYPE

                found = self.doc.styles[style]
                self._styles[style] = self.doc.part.get_style_id(found, WD_STYLE_TYPE.PARAGRAPH)
            par._p.style = self._styles[style]
        return par

    def width(self) -> int:
        """The text width of the current section (EMU; read again after a new section)."""
        if self._width is None:
            self._width = _text_width(self.doc)
        return self._width

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
            data = re.sub(r"[ \t\n\r\f\v]+", " ", data)  # a non-breaking space stays one
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
            level = _HEADING[self.block]
            par = self.paragraph("Title" if level == 0 else f"Heading {level}")
        elif self.block == "li" and self.lists:
            par = self.paragraph("List Number" if self.lists[-1] == "ol" else "List Bullet")
        else:
            par = self.paragraph()
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
        self.doc.add_picture(data, width=self.width())

    def table(self, rows: list[list[_Cell]]) -> None:
        if not rows:
            return
        n_cols = max(len(r) for r in rows)
        if self.table_hook is not None and self.table_hook(n_cols):
            self._width = None  # a new section: landscape or portrait
        _apa_table(self.doc, rows, n_cols, self.width())


def _stripped(runs: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The runs without the white space at the start of the first and the end of the last."""
    if not runs:
        return []
    runs = list(runs)
    runs[0] = (runs[0][0].lstrip(), runs[0][1])
    runs[-1] = (runs[-1][0].rstrip(), runs[-1][1])
    return [(t, st) for t, st in runs if t]


def _add_runs(par: Any, runs: list[tuple[str, dict]], strip: bool = True) -> None:
    from docx.shared import Pt

    for text, style in _stripped(runs) if strip else runs:
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


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_RULE = '<w:{edge} w:val="single" w:sz="6" w:space="0" w:color="000000"/>'


def _run_xml(text: str, style: dict, size: int) -> str:
    """One ``<w:r>``: its properties in the order the schema asks (fonts, b, i, sz, vertAlign);
    ``size`` in half points; a line break inside ``text`` is a ``<w:br/>``."""
    props = '<w:rFonts w:ascii="Courier New" w:hAnsi="Courier New"/>' if style.get("code") else ""
    props += ("<w:b/>" if style.get("bold") else "") + ("<w:i/>" if style.get("italic") else "")
    props += f'<w:sz w:val="{size}"/><w:szCs w:val="{size}"/>'
    if style.get("sup") or style.get("sub"):
        props += f'<w:vertAlign w:val="{"superscript" if style.get("sup") else "subscript"}"/>'
    lines = [f'<w:t xml:space="preserve">{escape(line)}</w:t>' for line in text.split("\n")]
    return f"<w:r><w:rPr>{props}</w:rPr>{'<w:br/>'.join(lines)}</w:r>"


def _apa_table(doc: Any, rows: list[list[_Cell]], n_cols: int, width: int) -> None:
    """An APA table: rules above and below the heads and below the body, no vertical lines.

    ``width`` is the text width (EMU). Written as one piece of WordprocessingML (python-docx
    builds a large table cell by cell about ten times slower), followed by an empty paragraph
    as Word wants between two tables.
    """
    from docx.oxml import parse_xml

    size = 16 if n_cols > LANDSCAPE_COLUMNS else 18
    n_head = 0
    while n_head < len(rows) and all(c.header for c in rows[n_head]):
        n_head += 1
    col = int(width / 635 / n_cols)  # EMU -> twentieths of a point
    xml = [
        f'<w:tbl xmlns:w="{_W}"><w:tblPr><w:tblW w:w="0" w:type="auto"/>'
        '<w:tblLook w:val="04A0"/></w:tblPr><w:tblGrid>'
        + f'<w:gridCol w:w="{col}"/>' * n_cols
        + "</w:tblGrid>"
    ]
    for i, row in enumerate(rows):
        edges = ("top",) if i == 0 else ()
        if i == n_head - 1 or i == len(rows) - 1:
            edges += ("bottom",)
        tc_pr = f'<w:tcPr><w:tcW w:w="{col}" w:type="dxa"/>'
        if edges:
            tc_pr += "<w:tcBorders>" + "".join(_RULE.format(edge=e) for e in edges)
            tc_pr += "</w:tcBorders>"
        tc_pr += "</w:tcPr>"
        xml.append("<w:tr>")
        for j in range(n_cols):
            cell = row[j] if j < len(row) else None
            p_pr = '<w:pPr><w:jc w:val="right"/></w:pPr>' if cell and cell.numeric else ""
            runs = "".join(_run_xml(t, st, size) for t, st in _stripped(cell.runs if cell else []))
            xml.append(f"<w:tc>{tc_pr}<w:p>{p_pr}{runs}</w:p></w:tc>")
        xml.append("</w:tr>")
    xml.append("</w:tbl>")
    par = doc.add_paragraph()
    par._p.addprevious(parse_xml("".join(xml)))


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

    def hook(n_cols: int) -> bool:
        wide = n_cols > LANDSCAPE_COLUMNS
        if wide == state["wide"]:
            return False
        _landscape(doc, wide)
        state["wide"] = wide
        return True

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
