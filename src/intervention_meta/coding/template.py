"""The coding template: an Excel workbook coders fill in, made from the codebook.

:func:`write_template` writes one sheet per codebook table, named as the table (the name
:func:`intervention_meta.data.reading.read_table` looks for), whose first row holds the table's
columns
(:meth:`Codebook.columns <intervention_meta.data.codebook.Codebook.columns>`: the key, the parent
key,
then the variables in the codebook's order), and a last sheet ``instructions`` with one row per
column. What coders type in is read back by :func:`~intervention_meta.data.reading.read_table`,
:func:`~intervention_meta.data.validation.validate` and
:func:`~intervention_meta.data.cleaning.clean` as
it is: the template holds no values below the header, only cell formats and checks.

Each data sheet has

* the header row frozen and in bold, each header cell with a comment holding the coding
  instruction (label, description, allowed values or range, missing codes, required);
* column widths that fit the names and codes;
* Excel data validation, shown while typing and on entry (it does not replace
  :func:`~intervention_meta.data.validation.validate`, which remains the check that counts):

  - binary / categorical / ordinal: a drop-down list of the codes followed by the missing codes
    (inline when the list fits Excel's 255 characters and no code contains a comma or a quote,
    else a range on a hidden sheet ``lists``);
  - integer / number: a whole-number or decimal rule with the codebook's range (strict bounds as
    ``greaterThan`` / ``lessThan``); when the variable has missing codes (which may lie outside the
    range, e.g. -99) a custom formula instead that admits the range *or* a missing code;
  - the parent key of the child table (e.g. ``study_id`` on the effects sheet): a drop-down of
    the keys typed on the parent sheet;
  - each table's key: a custom rule that the value occurs once in the column;
* id and text columns formatted as text, so that Excel keeps codes such as ``007`` as typed.

Command line::

    python -m intervention_meta coding-template --codebook data/codebook.yaml \\
        --path results/codebook/coding_template.xlsx
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from intervention_meta.data.codebook import Codebook, Variable, load_codebook, parse_number

logger = logging.getLogger(__name__)

__all__ = ["TemplateInfo", "comment_text", "write_template"]

INSTRUCTIONS_SHEET = "instructions"
LISTS_SHEET = "lists"
DEFAULT_ROWS = 2000
MAX_INLINE_LIST = 255  # Excel's limit on a list validation's formula
MAX_MESSAGE = 255  # Excel's limit on an input / error message
MAX_TITLE = 32  # Excel's limit on an input / error title
HEADER_FILL = "DDEBF7"
REQUIRED_FILL = "FCE4D6"


@dataclass(frozen=True)
class TemplateInfo:
    """What :func:`write_template` wrote.

    Attributes
    ----------
    path : the workbook.
    sheets : the sheet names in order (data sheets, then ``instructions``; ``lists`` if used).
    columns : table -> its header row.
    validations : table -> column -> the kind of data validation (``"list"``, ``"whole"``,
        ``"decimal"``, ``"custom"``, ``"parent key"``, ``"unique key"``).
    rows : the number of data rows the validations cover (rows 2 .. rows + 1).
    """

    path: str
    sheets: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    validations: dict[str, dict[str, str]]
    rows: int

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- texts
def comment_text(var: Variable) -> str:
    """The instruction shown as the header cell's comment: label, description, values, flags."""
    lines = [var.label or var.name]
    if var.description:
        lines += ["", var.description]
    lines.append("")
    if var.has_levels:
        lines.append("Codes:")
        lines += [f"  {code} = {label}" for code, label in var.levels.items()]
    elif var.is_numeric:
        words = "a whole number" if var.type == "integer" else "a number (decimal point)"
        if var.range is not None and var.range.describe():
            words += " " + var.range.describe()
        lines.append(f"Value: {words}")
    elif var.type == "id":
        lines.append("Value: an identifier (unique code)")
    else:
        lines.append("Value: free text")
    if var.missing:
        lines.append("Missing (not reported): " + ", ".join(var.missing))
    lines.append("Required: " + ("yes" if var.required else "no"))
    return "\n".join(lines)


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _expected(var: Variable) -> str:
    return var.expected() + var.missing_hint()


# --------------------------------------------------------------------------- validation rules
def _excel_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _excel_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _missing_conditions(var: Variable, cell: str) -> list[str]:
    conds = []
    for code in var.missing:
        number = parse_number(code)
        if number is not None:
            conds.append(f"{cell}={_excel_number(number)}")
        else:
            conds.append(f"EXACT({cell},{_excel_string(code)})")
    return conds


def _numeric_rule(var: Variable, cell: str):
    """(type, operator, formula1, formula2) of the validation of an integer/number column."""
    rng = var.range
    lo = None if rng is None or rng.min is None else _excel_number(rng.min)
    hi = None if rng is None or rng.max is None else _excel_number(rng.max)
    lo_op = ">" if rng is not None and rng.min_exclusive else ">="
    hi_op = "<" if rng is not None and rng.max_exclusive else "<="
    if var.missing:
        parts = [f"ISNUMBER({cell})"]
        if var.type == "integer":
            parts.append(f"{cell}=INT({cell})")
        if lo is not None:
            parts.append(f"{cell}{lo_op}{lo}")
        if hi is not None:
            parts.append(f"{cell}{hi_op}{hi}")
        value = parts[0] if len(parts) == 1 else "AND(" + ",".join(parts) + ")"
        return (
            "custom",
            None,
            "OR(" + ",".join([value] + _missing_conditions(var, cell)) + ")",
            None,
        )
    kind = "whole" if var.type == "integer" else "decimal"
    if lo is not None and hi is not None:
        if lo_op == ">=" and hi_op == "<=":
            return kind, "between", lo, hi
        parts = [f"ISNUMBER({cell})", f"{cell}{lo_op}{lo}", f"{cell}{hi_op}{hi}"]
        if var.type == "integer":
            parts.append(f"{cell}=INT({cell})")
        return "custom", None, "AND(" + ",".join(parts) + ")", None
    if lo is not None:
        return kind, "greaterThan" if lo_op == ">" else "greaterThanOrEqual", lo, None
    if hi is not None:
        return kind, "lessThan" if hi_op == "<" else "lessThanOrEqual", hi, None
    if var.type == "integer":
        return "custom", None, f"AND(ISNUMBER({cell}),{cell}=INT({cell}))", None
    return "custom", None, f"ISNUMBER({cell})", None


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index)


# --------------------------------------------------------------------------- writing
def _sheet_names(codebook: Codebook) -> tuple[str, str]:
    """Names of the instructions and lists sheets that do not clash with a table's name."""
    taken = {t.lower() for t in codebook.tables}
    names = []
    for base in (INSTRUCTIONS_SHEET, LISTS_SHEET):
        name = base
        while name.lower() in taken:
            name = "_" + name
        names.append(name)
        taken.add(name.lower())
    return names[0], names[1]


def write_template(
    codebook: Codebook | str | Path, path: str | Path, rows: int = DEFAULT_ROWS
) -> TemplateInfo:
    """Write the coding template workbook (see the module doc).

    Parameters
    ----------
    codebook : a loaded :class:`~intervention_meta.data.codebook.Codebook` or the codebook file.
    path : the ``.xlsx`` file to write (its folder is created).
    rows : how many data rows (below the header) the data validations cover.

    Returns
    -------
    TemplateInfo
        The sheets, header rows and validations written.
    """
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    cb = load_codebook(codebook)
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    instructions_name, lists_name = _sheet_names(cb)
    wb = Workbook()
    wb.remove(wb.active)
    lists_ws = None
    list_col = 0
    columns: dict[str, tuple[str, ...]] = {}
    kinds: dict[str, dict[str, str]] = {}
    last = rows + 1
    parent_ranges = {}  # table -> the range of its key column (key columns come first)
    for table in cb.tables.values():
        key_col = _column_letter(cb.columns(table.name).index(table.key) + 1)
        parent_ranges[table.name] = f"'{table.name}'!${key_col}$2:${key_col}${last}"

    for table in cb.tables.values():
        ws = wb.create_sheet(title=table.name)
        header = cb.columns(table.name)
        columns[table.name] = tuple(header)
        kinds[table.name] = {}
        parent_key = cb.parent_key(table.name)
        for j, name in enumerate(header, start=1):
            var = cb.variable_for_column(table.name, name)
            letter = _column_letter(j)
            cell = ws.cell(row=1, column=j, value=name)
            cell.font = Font(bold=True)
            fill = REQUIRED_FILL if var is not None and var.required else HEADER_FILL
            cell.fill = PatternFill("solid", fgColor=fill)
            cell.alignment = Alignment(vertical="top")
            width = len(name) + 3
            if var is None:
                ws.column_dimensions[letter].width = max(width, 10)
                continue
            text = comment_text(var)
            if name == parent_key:
                text += f"\n\nThe {table.parent} row this row belongs to: a {name} typed on the "
                text += f"{table.parent} sheet."
            comment = Comment(text, "codebook")
            n_lines = sum(1 + len(line) // 48 for line in text.splitlines())
            comment.width = 360
            comment.height = min(max(80, 15 * n_lines), 600)
            cell.comment = comment
            if var.has_levels:
                width = max(width, *(len(c) + 4 for c in list(var.levels) + list(var.missing)))
            elif var.type in ("id", "text"):
                width = max(width, 14 if var.type == "id" else 24)
            else:
                width = max(width, 10)
            ws.column_dimensions[letter].width = min(width, 40)
            if var.type in ("id", "text"):
                ws.column_dimensions[letter].number_format = "@"

            sqref = f"{letter}2:{letter}{last}"
            first_cell = f"{letter}2"
            dv = None
            if name == parent_key and table.parent in parent_ranges:
                dv = DataValidation(type="list", formula1=parent_ranges[table.parent])
                kinds[table.name][name] = "parent key"
            elif name == table.key:
                column = f"${letter}$2:${letter}${last}"
                dv = DataValidation(type="custom", formula1=f"COUNTIF({column},{first_cell})=1")
                kinds[table.name][name] = "unique key"
            elif var.has_levels:
                codes = list(var.levels) + list(var.missing)
                inline = ",".join(codes)
                if len(inline) + 2 <= MAX_INLINE_LIST and not any(
                    ("," in c or '"' in c) for c in codes
                ):
                    formula = _excel_string(inline)
                else:
                    if lists_ws is None:
                        lists_ws = wb.create_sheet(title=lists_name)
                        lists_ws.sheet_state = "hidden"
                    list_col += 1
                    lcol = _column_letter(list_col)
                    lists_ws.cell(row=1, column=list_col, value=f"{table.name}.{name}")
                    for i, code in enumerate(codes, start=2):
                        lists_ws.cell(row=i, column=list_col, value=code).number_format = "@"
                    formula = f"'{lists_name}'!${lcol}$2:${lcol}${len(codes) + 1}"
                dv = DataValidation(type="list", formula1=formula)
                kinds[table.name][name] = "list"
            elif var.is_numeric:
                kind, operator, f1, f2 = _numeric_rule(var, first_cell)
                dv = DataValidation(type=kind, operator=operator, formula1=f1, formula2=f2)
                kinds[table.name][name] = kind
            if dv is not None:
                dv.allow_blank = True
                dv.showErrorMessage = True
                dv.showInputMessage = True
                dv.errorStyle = "stop"
                dv.errorTitle = _short(f"{name}: not allowed", MAX_TITLE)
                expected = _expected(var)
                if kinds[table.name][name] == "unique key":
                    expected = f"a {name} that is not yet in this column"
                elif kinds[table.name][name] == "parent key":
                    expected = f"a {name} of the {table.parent} sheet"
                dv.error = _short(f"{var.label}: expected {expected}.", MAX_MESSAGE)
                dv.promptTitle = _short(var.label or name, MAX_TITLE)
                dv.prompt = _short(var.description or _expected(var), MAX_MESSAGE)
                dv.add(sqref)
                ws.add_data_validation(dv)
        ws.freeze_panes = "A2"

    _write_instructions(wb.create_sheet(title=instructions_name), cb)
    if lists_ws is not None:  # last: data sheets, instructions, then the hidden lists
        wb.move_sheet(lists_ws, offset=len(wb.sheetnames) - 1 - wb.index(lists_ws))
    wb.active = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    info = TemplateInfo(
        path=str(path),
        sheets=tuple(wb.sheetnames),
        columns=columns,
        validations=kinds,
        rows=rows,
    )
    logger.info(
        "wrote the coding template %s: sheets %s; validations cover rows 2-%d",
        path,
        ", ".join(wb.sheetnames),
        last,
    )
    return info


def _write_instructions(ws, cb: Codebook) -> None:
    from openpyxl.styles import Alignment, Font

    intro = [
        "Coding template made from the codebook " + str(cb.path),
        "Fill in one sheet per table: "
        + "; ".join(
            f"'{t.name}': one row per "
            + ("effect size" if t.name == cb.child_table else "study")
            + f", identified by {t.key}"
            for t in cb.tables.values()
        )
        + ". Keep the header row and the sheet names as they are.",
        "Hover over a column name for its coding instruction. Choose codes from the drop-down "
        "lists; write numbers with a decimal point. Leave a cell empty when the variable does "
        "not apply; write the missing code (e.g. -99) when the report does not say. Columns with "
        "an orange header are required.",
        "Excel checks each entry while you type; the pipeline's validation step checks everything "
        "again, including rules across columns"
        + (
            f" (such as the statistics each {cb.requires_variable()} code needs)."
            if cb.requires_variable()
            else "."
        ),
    ]
    for i, text in enumerate(intro, start=1):
        cell = ws.cell(row=i, column=1, value=text)
        if i == 1:
            cell.font = Font(bold=True, size=13)
    start = len(intro) + 2
    head = ["table", "column", "label", "type", "required", "allowed values", "missing codes"]
    head.append("instruction")
    for j, name in enumerate(head, start=1):
        ws.cell(row=start, column=j, value=name).font = Font(bold=True)
    r = start
    for table in cb.tables.values():
        for name in cb.columns(table.name):
            var = cb.variable_for_column(table.name, name)
            if var is None:
                continue
            r += 1
            if var.has_levels:
                allowed = "; ".join(f"{c} = {lab}" for c, lab in var.levels.items())
            else:
                allowed = var.expected()
            values = [
                table.name,
                name,
                var.label,
                var.type,
                "yes" if var.required else "no",
                allowed,
                ", ".join(var.missing),
                var.description,
            ]
            for j, value in enumerate(values, start=1):
                cell = ws.cell(row=r, column=j, value=value)
                cell.number_format = "@"
                cell.alignment = Alignment(wrap_text=j >= 6, vertical="top")
    widths = [10, 22, 28, 12, 9, 45, 14, 80]
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[_column_letter(j)].width = width
    ws.freeze_panes = ws.cell(row=start + 1, column=1)
