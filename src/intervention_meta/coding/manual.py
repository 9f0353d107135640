"""The coding manual: the codebook as a document a coder reads while coding.

:func:`render_manual` turns a :class:`~intervention_meta.data.codebook.Codebook` into a
:class:`Manual` with one entry per variable: its label and column name, the table it belongs to
(study level or effect-size level), its type, the coding instruction (the codebook's
``description``), the allowed values with their labels (or the allowed range), the missing codes,
whether a value is required, and which analyses use it. The manual is written as Markdown
(:meth:`Manual.to_markdown`) and as one self-contained HTML page (:meth:`Manual.to_html`: inline
style, no scripts, no links to other sites, so it opens offline and prints as it looks).

Which analyses use a variable follows from its ``role`` in the codebook:

========== ================================================================================
role       used in
========== ================================================================================
id         keys: identifies the rows of its table (and, for the parent table's key, links the
           child rows to their parent row)
moderator  moderator analysis (meta-regression)
statistic  effect-size computation; for a column named in the ``requires`` of a variable such
           as ``es_input``, the levels that need it; for that variable itself, that it selects
           the formula
inclusion  inclusion criteria (rows failing them are dropped by ``clean``)
descriptor descriptive tables
========== ================================================================================

Command line::

    python -m intervention_meta coding-manual --codebook data/codebook.yaml --out results/codebook
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from intervention_meta.data.codebook import Codebook, Variable, load_codebook

logger = logging.getLogger(__name__)

__all__ = ["Manual", "ManualEntry", "ManualTable", "render_manual", "uses_of", "write_manual"]

ROLE_USES = {
    "id": "Keys",
    "moderator": "Moderator analysis (meta-regression)",
    "component": "Component profiles and consistency (an intervention component)",
    "statistic": "Effect-size computation",
    "inclusion": "Inclusion criteria (rows that fail are dropped by the clean step)",
    "descriptor": "Descriptive tables",
}

TYPE_WORDS = {
    "id": "identifier (unique code)",
    "binary": "binary (two codes)",
    "categorical": "categorical (one of the codes below)",
    "ordinal": "ordinal (one of the codes below, in increasing order)",
    "integer": "integer (whole number)",
    "number": "number (decimal point, e.g. 12.5)",
    "text": "free text",
}


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class ManualEntry:
    """What the manual says about one variable.

    Attributes
    ----------
    name, label : the column name and the readable label.
    table : the table (sheet / file) the column belongs to.
    level : ``"study"`` for the parent table, ``"effect size"`` for the child table.
    type : the codebook type (id, binary, categorical, ordinal, integer, number, text).
    instruction : the coding instruction (the codebook's ``description``).
    levels : ``(code, label)`` pairs in the codebook's order (empty unless the type has levels).
    range : the allowed interval in words (``"between 1960 and 2030"``), or ``""``.
    missing : the codes that mean "not reported".
    required : whether every row needs a value (a missing code counts as one).
    roles : the codebook roles.
    uses : the analyses (and other uses) of the variable, one sentence each.
    notes : further facts a coder needs (e.g. levels whose sign is flipped).
    needs : ``(code, columns)``: the columns each code needs (from ``requires``), if any.
    """

    name: str
    label: str
    table: str
    level: str
    type: str
    instruction: str
    levels: tuple[tuple[str, str], ...]
    range: str
    missing: tuple[str, ...]
    required: bool
    roles: tuple[str, ...]
    uses: tuple[str, ...]
    notes: tuple[str, ...] = ()
    needs: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["levels"] = [list(pair) for pair in self.levels]
        out["needs"] = {code: cols for code, cols in self.needs}
        return out

    def allowed(self) -> str:
        """The allowed values in one line: ``"0 = no; 1 = yes"``, a range or the type."""
        if self.levels:
            return "; ".join(f"{code} = {label}" for code, label in self.levels)
        if self.range:
            return f"{self.type}, {self.range}"
        return TYPE_WORDS.get(self.type, self.type)


@dataclass(frozen=True)
class ManualTable:
    """One table of the coding scheme as the manual describes it."""

    name: str
    key: str
    parent: str | None
    level: str
    variables: tuple[str, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One sentence: ``"one row per effect size, identified by es_id; ..."``."""
        text = f"One row per {self.level}, identified by `{self.key}`"
        if self.parent is not None:
            text += f"; each row names its row of the {self.parent} table"
        return text + "."


@dataclass(frozen=True)
class Manual:
    """The coding manual (see :func:`render_manual`).

    Attributes
    ----------
    codebook : the codebook file it was made from.
    title : the manual's title.
    tables : the tables in the codebook's order.
    entries : one :class:`ManualEntry` per variable, in the codebook's order.
    """

    codebook: str
    title: str
    tables: tuple[ManualTable, ...]
    entries: tuple[ManualEntry, ...]

    # ---- access and export
    def entry(self, name: str) -> ManualEntry:
        """The entry of variable ``name``."""
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def entries_of(self, table: str) -> list[ManualEntry]:
        """The entries of the variables defined in ``table``."""
        return [e for e in self.entries if e.table == table]

    def to_dict(self) -> dict:
        return {
            "codebook": self.codebook,
            "title": self.title,
            "tables": [t.to_dict() for t in self.tables],
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per variable: name, label, table, level, type, required, allowed, ..."""
        rows = [
            {
                "name": e.name,
                "label": e.label,
                "table": e.table,
                "level": e.level,
                "type": e.type,
                "required": e.required,
                "allowed": e.allowed(),
                "missing": ", ".join(e.missing),
                "uses": "; ".join(e.uses),
                "instruction": e.instruction,
            }
            for e in self.entries
        ]
        return pd.DataFrame(rows)

    # ---- Markdown
    def to_markdown(self) -> str:
        """The manual as Markdown (tables in GitHub style; anchors as ``<a id>``)."""
        lines = [f"# {self.title}", ""]
        for paragraph in _intro(self):
            lines += [_md(paragraph), ""]
        lines += ["## Contents", ""]
        for t in self.tables:
            lines.append(
                f"- [Table {t.name}](#{_anchor('table', t.name)}) ({_level_words(t.level)})"
            )
            for e in self.entries_of(t.name):
                lines.append(f"    - [{_md(e.label)}](#{_anchor('var', e.name)}) `{e.name}`")
        for t in self.tables:
            lines += ["", f'<a id="{_anchor("table", t.name)}"></a>', ""]
            lines += [f"## Table {t.name}", "", _md(t.describe())]
            if t.parent is not None:
                lines.append(
                    f"Its column `{_parent_key(self, t)}` is defined in the {t.parent} table."
                )
            for e in self.entries_of(t.name):
                lines += _entry_markdown(e)
        return "\n".join(lines).rstrip() + "\n"

    # ---- HTML
    def to_html(self) -> str:
        """The manual as one self-contained HTML page (inline style; no scripts, no URLs)."""
        out = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_h(self.title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            "<main>",
            f"<h1>{_h(self.title)}</h1>",
        ]
        out += [f"<p>{_inline_html(p)}</p>" for p in _intro(self)]
        out += ['<nav class="toc">', "<h2>Contents</h2>", "<ul>"]
        for t in self.tables:
            out.append(
                f'<li><a href="#{_anchor("table", t.name)}">Table {_h(t.name)}</a> '
                f"({_h(_level_words(t.level))})<ul>"
            )
            for e in self.entries_of(t.name):
                out.append(
                    f'<li><a href="#{_anchor("var", e.name)}">{_h(e.label)}</a> '
                    f"<code>{_h(e.name)}</code></li>"
                )
            out.append("</ul></li>")
        out += ["</ul>", "</nav>"]
        for t in self.tables:
            out.append(f'<section id="{_anchor("table", t.name)}">')
            out.append(f"<h2>Table {_h(t.name)}</h2>")
            out.append(f"<p>{_inline_html(t.describe())}</p>")
            if t.parent is not None:
                out.append(
                    f"<p>Its column <code>{_h(_parent_key(self, t))}</code> is defined in the "
                    f"{_h(t.parent)} table.</p>"
                )
            for e in self.entries_of(t.name):
                out += _entry_html(e)
            out.append("</section>")
        out += ["</main>", "</body>", "</html>"]
        return "\n".join(out) + "\n"

    def write(self, markdown: str | Path | None = None, html_path: str | Path | None = None):
        """Write the Markdown and/or HTML version (folders are created); return the paths."""
        written = []
        for path, text in ((markdown, self.to_markdown), (html_path, self.to_html)):
            if path is None:
                continue
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(), encoding="utf-8")
            logger.info("wrote the coding manual to %s", path)
            written.append(path)
        return written


# --------------------------------------------------------------------------- building
def _level_of(codebook: Codebook, table: str) -> str:
    if table == codebook.child_table:
        return "effect size"
    if table == codebook.parent_table:
        return "study"
    return table


def _parent_key(manual: Manual, table: ManualTable) -> str:
    parent = next(t for t in manual.tables if t.name == table.parent)
    return parent.key


def uses_of(codebook: Codebook, var: Variable) -> tuple[str, ...]:
    """The uses of ``var`` derived from its roles (see the module doc), in the roles' order."""
    uses: list[str] = []
    for role in var.roles:
        if role == "id":
            tables = [t for t in codebook.tables.values() if t.key == var.name]
            children = [
                t for t in codebook.tables.values() if codebook.parent_key(t.name) == var.name
            ]
            text = "Keys: identifies each row of the " + " and ".join(t.name for t in tables)
            text += " table" if len(tables) == 1 else " tables"
            if not tables:
                text = "Keys"
            if children:
                text += "; links each row of the " + ", ".join(t.name for t in children)
                text += f" table to its row of the {var.table} table"
            uses.append(text)
        elif role == "statistic":
            uses.append(_statistic_use(codebook, var))
        else:
            uses.append(ROLE_USES.get(role, role))
    return tuple(uses)


def _statistic_use(codebook: Codebook, var: Variable) -> str:
    if var.requires:
        return "Effect-size computation: selects the formula (each code needs the columns listed)"
    needed: dict[str, list[str]] = {}
    for other in codebook.variables.values():
        for level, groups in other.requires.items():
            for group in groups:
                if var.name in group:
                    alternatives = [c for c in group if c != var.name]
                    text = level if not alternatives else f"{level} (or {' / '.join(alternatives)})"
                    needed.setdefault(other.name, []).append(text)
    if not needed:
        return "Effect-size computation (optional input)"
    parts = [f"{name} = {', '.join(levels)}" for name, levels in needed.items()]
    return "Effect-size computation: needed when " + "; ".join(parts)


def _notes(var: Variable) -> tuple[str, ...]:
    notes = []
    if var.higher_is_worse:
        notes.append(
            "Higher scores are worse for: "
            + ", ".join(var.higher_is_worse)
            + " (the effect-size step flips the sign so that positive means benefit)."
        )
    return tuple(notes)


def _needs(var: Variable) -> tuple[tuple[str, str], ...]:
    return tuple(
        (level, ", ".join(" or ".join(group) for group in groups))
        for level, groups in var.requires.items()
    )


def render_manual(
    codebook: Codebook | str | Path,
    analyses_using: Mapping[str, Sequence[str] | str] | None = None,
    title: str = "Coding manual",
) -> Manual:
    """Build the coding manual of a codebook.

    Parameters
    ----------
    codebook : a loaded :class:`~intervention_meta.data.codebook.Codebook` or the codebook file.
    analyses_using : variable name -> further analyses that use it (a text or a list), added
        after the uses derived from the variable's roles (e.g. ``{"year": ["cumulative
        meta-analysis"]}``). Names that are not codebook variables are logged and ignored.
    title : the manual's title.

    Returns
    -------
    Manual
        One entry per variable in the codebook's order, grouped by table in
        :meth:`Manual.to_markdown` and :meth:`Manual.to_html`.

    Examples
    --------
    >>> manual = render_manual("data/codebook.yaml")  # doctest: +SKIP
    >>> manual.entry("risk_of_bias").levels  # doctest: +SKIP
    (('1', 'Low'), ('2', 'Some concerns'), ('3', 'High'))
    """
    cb = load_codebook(codebook)
    extra = dict(analyses_using or {})
    for name in extra:
        if name not in cb.variables:
            logger.warning("analyses_using names %r, which is not a codebook variable", name)
    entries = []
    for var in cb.variables.values():
        more = extra.get(var.name, ())
        more = (more,) if isinstance(more, str) else tuple(more)
        uses = uses_of(cb, var) + tuple(u for u in more if u)
        entries.append(
            ManualEntry(
                name=var.name,
                label=var.label or var.name,
                table=var.table,
                level=_level_of(cb, var.table),
                type=var.type,
                instruction=var.description,
                levels=tuple(var.levels.items()),
                range=var.range.describe() if var.range is not None else "",
                missing=tuple(var.missing),
                required=var.required,
                roles=tuple(var.roles),
                uses=uses,
                notes=_notes(var),
                needs=_needs(var),
            )
        )
    tables = tuple(
        ManualTable(
            name=t.name,
            key=t.key,
            parent=t.parent,
            level=_level_of(cb, t.name),
            variables=tuple(v.name for v in cb.variables_of(t.name)),
        )
        for t in cb.tables.values()
    )
    logger.info("coding manual of %s: %d variables", cb.path, len(entries))
    return Manual(codebook=cb.path, title=title, tables=tables, entries=tuple(entries))


# --------------------------------------------------------------------------- rendering
def _intro(manual: Manual) -> list[str]:
    n = len(manual.entries)
    tables = ", ".join(f"{t.name} ({_level_words(t.level)})" for t in manual.tables)
    return [
        f"Made from the codebook `{manual.codebook}`: {n} variables in the tables {tables}.",
        "Each table is one sheet of the coding template (or one CSV file); the first row holds "
        "the column names below. Write numbers with a decimal point (12.5, not 12,5). Leave a "
        "cell empty when the variable does not apply; write a missing code (such as -99 or NR, "
        "where the variable lists one) when the report does not give the information. A "
        "required variable needs a value or a missing code in every row.",
    ]


def _entry_fields(e: ManualEntry) -> list[tuple[str, str]]:
    fields = [
        ("Column", f"`{e.name}`"),
        ("Table", f"{e.table} ({_level_words(e.level)})"),
        ("Type", TYPE_WORDS.get(e.type, e.type)),
        ("Required", "yes" if e.required else "no"),
    ]
    if e.range:
        fields.append(("Allowed range", e.range))
    fields.append(("Missing codes", ", ".join(f"`{c}`" for c in e.missing) or "none"))
    return fields


def _entry_markdown(e: ManualEntry) -> list[str]:
    lines = ["", f'<a id="{_anchor("var", e.name)}"></a>', ""]
    lines += [f"### {_md(e.label)} (`{e.name}`)", ""]
    lines += [_md(e.instruction) if e.instruction else "_No instruction in the codebook._", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | {_md_cell(v)} |" for k, v in _entry_fields(e)]
    lines.append("| Used in | " + _md_cell("; ".join(e.uses) or "not used by an analysis") + " |")
    if e.levels:
        needs = dict(e.needs)
        if needs:
            lines += ["", "| Code | Meaning | Columns to fill in |", "|---|---|---|"]
            lines += [
                f"| `{_md_cell(c)}` | {_md_cell(label)} | {_md_cell(needs.get(c, ''))} |"
                for c, label in e.levels
            ]
            lines += [f"| `{_md_cell(c)}` | missing: not reported | |" for c in e.missing]
        else:
            lines += ["", "| Code | Meaning |", "|---|---|"]
            lines += [f"| `{_md_cell(c)}` | {_md_cell(label)} |" for c, label in e.levels]
            lines += [f"| `{_md_cell(c)}` | missing: not reported |" for c in e.missing]
    for note in e.notes:
        lines += ["", _md(note)]
    return lines


def _entry_html(e: ManualEntry) -> list[str]:
    out = [f'<article class="var" id="{_anchor("var", e.name)}">']
    out.append(f"<h3>{_h(e.label)} <code>{_h(e.name)}</code></h3>")
    if e.instruction:
        out.append(f'<p class="instruction">{_inline_html(e.instruction)}</p>')
    else:
        out.append('<p class="instruction"><em>No instruction in the codebook.</em></p>')
    out.append('<table class="facts"><tbody>')
    for k, v in _entry_fields(e):
        out.append(f"<tr><th>{_h(k)}</th><td>{_inline_html(v)}</td></tr>")
    uses = "".join(f"<li>{_inline_html(u)}</li>" for u in e.uses) or "<li>not used</li>"
    out.append(f"<tr><th>Used in</th><td><ul>{uses}</ul></td></tr>")
    out.append("</tbody></table>")
    if e.levels:
        needs = dict(e.needs)
        head = "<th>Code</th><th>Meaning</th>" + ("<th>Columns to fill in</th>" if needs else "")
        out.append(f'<table class="levels"><thead><tr>{head}</tr></thead>')
        out.append("<tbody>")
        for c, label in e.levels:
            more = f"<td>{_h(needs.get(c, ''))}</td>" if needs else ""
            out.append(f"<tr><td><code>{_h(c)}</code></td><td>{_h(label)}</td>{more}</tr>")
        for c in e.missing:
            more = "<td></td>" if needs else ""
            out.append(
                f'<tr class="missing"><td><code>{_h(c)}</code></td>'
                f"<td>missing: not reported</td>{more}</tr>"
            )
        out.append("</tbody></table>")
    for note in e.notes:
        out.append(f'<p class="note">{_inline_html(note)}</p>')
    out.append("</article>")
    return out


_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "line-height:1.45;color:#1a1a1a;background:#fff;margin:0}"
    "main{max-width:52rem;margin:0 auto;padding:1.5rem}"
    "h1{font-size:1.8rem}h2{border-bottom:2px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}"
    "h3{margin:0 0 .4rem 0}code{background:#f3f3f3;padding:0 .25em;border-radius:3px}"
    "article.var{border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;margin:1rem 0;"
    "page-break-inside:avoid}"
    "p.instruction{margin:.2rem 0 .6rem 0}"
    "table{border-collapse:collapse;margin:.4rem 0}th,td{text-align:left;vertical-align:top;"
    "padding:.2rem .6rem;border-bottom:1px solid #eee}"
    "table.facts th{width:9rem;color:#555;font-weight:600}"
    "table.levels thead th{border-bottom:2px solid #ccc}tr.missing td{color:#777}"
    "td ul{margin:0;padding-left:1.1rem}p.note{color:#444;font-size:.95em}"
    "nav.toc ul{list-style:none;padding-left:1rem}nav.toc>ul{padding-left:0}"
    "@media print{nav.toc{page-break-after:always}a{color:inherit;text-decoration:none}}"
)


def _level_words(level: str) -> str:
    """``"study"`` -> ``"study level"``, ``"effect size"`` -> ``"effect-size level"``."""
    return level.replace(" ", "-") + " level"


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _h(text: object) -> str:
    """Escape for HTML text; ``://`` is written ``&#58;//`` so no text looks like a link."""
    return html.escape(str(text), quote=True).replace("://", "&#58;//")


def _inline_html(text: str) -> str:
    """Escape text and turn Markdown-style `code` spans into <code> elements."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick stays a backtick
        parts = parts[:-2] + [parts[-2] + "`" + parts[-1]]
    return "".join(
        f"<code>{_h(part)}</code>" if i % 2 == 1 else _h(part) for i, part in enumerate(parts)
    )


def _md(text: str) -> str:
    """Text for a Markdown paragraph: ``<`` escaped, so no text is read as an HTML tag."""
    return str(text).replace("<", "&lt;")


def _md_cell(text: str) -> str:
    """Text for a Markdown table cell (also ``|`` and line breaks escaped)."""
    return _md(text).replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- the step
def write_manual(
    *,
    codebook: str | Path,
    md: str | Path | None = None,
    html: str | Path | None = None,
    title: str = "Coding manual",
) -> Manual:
    """Write the coding manual of ``codebook`` as Markdown (``md``) and/or HTML (``html``)."""
    manual = render_manual(codebook, title=title)
    manual.write(markdown=md, html_path=html)
    return manual
