"""The codebook: the coding scheme that defines the data tables and every variable.

A codebook file (e.g. ``data/codebook.yaml``; its header documents every field) has two parts:

``tables``
    The tables by name with their key column, e.g. ``studies: {key: study_id}`` and
    ``effects: {key: es_id, parent: studies}``. Every row of the child table names its parent row
    in a column named like the parent's key. Key names always come from here; nothing in the
    package assumes ``study_id`` or ``es_id``.
``variables``
    One entry per column: ``name``, ``table``, ``type``, and optionally ``levels``, ``missing``,
    ``range``, ``required``, ``role``, ``label``, ``description``, ``higher_is_worse`` and
    ``requires``; for the conversation cards ``prompts``, ``meaning`` and ``labels`` (each per
    language code).

Roles
-----
``role`` says what a variable is for; a variable may have several. ``moderator``: analysed in
its own meta-regression (and listed for the multiple-moderator model). ``component``: an
intervention component, a binary variable whose code ``1`` (or its last level) means "the
programme has it"; only components enter the component profiles and consistency, and they are
the default set of the multiple-moderator model. A component is always also a moderator:
``role: component`` means ``role: [component, moderator]`` (:attr:`Variable.roles` lists both).

:func:`load_codebook` checks the file first against the JSON schema shipped with the package
(``schemas/codebook.schema.yaml``: known fields, field types, types and roles), then for its
meaning (duplicate names, levels that fit the type, ranges, keys, ``requires`` and
``higher_is_worse`` naming known columns and levels), and reports *all* problems at once.

Codes
-----
Level and missing codes may be written as numbers or text in YAML and in the data; they are
compared as text after :func:`normalise_code` (``1 == "1" == "1.0"``; ``"-99.0" == -99``).

Cells
-----
:meth:`Variable.parse` reads one raw cell (a string) into a :class:`Cell` whose ``state`` is

* ``"blank"``: empty. The text ``NA`` (as R writes a missing value) also counts as blank, unless
  the variable lists ``NA`` as a level or missing code. A blank cell breaks ``required: true``.
* ``"missing"``: one of the variable's explicit missing codes (e.g. ``-99``, ``NR``), meaning
  "not reported"; allowed in a required column, a missing value after cleaning.
* ``"value"``: a valid value (``Cell.value`` is the int, float or canonical code).
* ``"invalid"``: not a valid value (``Cell.expected`` says what was expected).
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from intervention_meta.config import duplicate_key_problems, line_of, read_yaml, schema_problems
from intervention_meta.errors import InputError, Problem

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

TYPES = ("id", "binary", "categorical", "ordinal", "integer", "number", "text")
LEVEL_TYPES = ("binary", "categorical", "ordinal")
NUMERIC_TYPES = ("integer", "number")
# columns that clean adds; a codebook variable may not use these names
RESERVED_NAMES = ("source_row", "source_file", "reason")
NA_TEXT = "NA"

__all__ = [
    "Cell",
    "Codebook",
    "Range",
    "Table",
    "Variable",
    "codebook_schema",
    "load_codebook",
    "normalise_code",
    "parse_number",
]

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def parse_number(raw: object) -> float | None:
    """The number written in ``raw`` (decimal point; ``1e3`` allowed), or ``None``.

    Text such as ``nan``, ``inf``, ``1,5`` or ``12 kg`` is not a number.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw) if math.isfinite(raw) else None
    text = str(raw).strip()
    if not _NUMBER.match(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _format_number(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(float(x))


def normalise_code(value: object) -> str:
    """A code as comparable text: ``1``, ``"1"``, ``"1.0"`` and ``1.0`` all become ``"1"``.

    Numbers (and numeric text) are written without a trailing ``.0`` and in the shortest form
    that reads back the same; other text is only trimmed; ``None`` becomes ``""``; booleans
    become ``"true"``/``"false"``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).strip()
    if _INTEGER.match(text):
        return str(int(text))
    number = parse_number(value)
    if number is not None:
        return _format_number(number)
    return text


def codebook_schema() -> dict:
    """The JSON schema of codebook files, shipped with the package."""
    schema = resources.files("intervention_meta").joinpath("schemas/codebook.schema.yaml")
    text = schema.read_text("utf-8")
    return yaml.safe_load(text)


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class Range:
    """Allowed interval of a number; bounds inclusive unless ``*_exclusive``."""

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies in the interval."""
        if self.min is not None and (x <= self.min if self.min_exclusive else x < self.min):
            return False
        if self.max is not None and (x >= self.max if self.max_exclusive else x > self.max):
            return False
        return True

    def describe(self) -> str:
        """The interval in words: ``"> 0"``, ``"between 1960 and 2030"``, ``"> -1 and < 1"``."""
        lo = None if self.min is None else _format_number(self.min)
        hi = None if self.max is None else _format_number(self.max)
        if lo is not None and hi is not None:
            if not self.min_exclusive and not self.max_exclusive:
                return f"between {lo} and {hi}"
            return (
                f"{'>' if self.min_exclusive else '>='} {lo} and "
                f"{'<' if self.max_exclusive else '<='} {hi}"
            )
        if lo is not None:
            return f"{'>' if self.min_exclusive else '>='} {lo}"
        if hi is not None:
            return f"{'<' if self.max_exclusive else '<='} {hi}"
        return ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Cell:
    """One parsed cell: ``state`` is blank, missing, value or invalid (see the module doc)."""

    state: str
    raw: str
    value: object = None
    expected: str = ""


@dataclass(frozen=True)
class Variable:
    """One column of the coding scheme.

    ``levels`` maps normalised codes to labels (in the codebook's order, which is the order of an
    ordinal); ``missing`` holds normalised missing codes; ``requires`` maps a level to groups of
    columns, each group satisfied by any one of its columns; ``statistic_columns`` maps a level
    to ``{role: column}`` (the mapping form of ``requires``; role = column in the list form).
    """

    name: str
    table: str
    type: str
    levels: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    range: Range | None = None
    required: bool = False
    roles: tuple[str, ...] = ()
    label: str = ""
    description: str = ""
    higher_is_worse: tuple[str, ...] = ()
    requires: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    statistic_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    prompts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    meaning: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def has_levels(self) -> bool:
        return self.type in LEVEL_TYPES

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    def expected(self) -> str:
        """What a valid value looks like, in words (used in Problems)."""
        if self.has_levels:
            text = "one of: " + ", ".join(self.levels)
        elif self.type == "integer":
            text = "an integer"
        elif self.type == "number":
            text = "a number"
        elif self.type == "id":
            text = "an identifier"
        else:
            text = "a text"
        if self.range is not None and self.is_numeric and self.range.describe():
            text += " " + self.range.describe()
        return text

    def missing_hint(self) -> str:
        """``" (or -99 if not reported)"`` when the variable has missing codes, else ``""``."""
        if not self.missing:
            return ""
        return f" (or {' / '.join(self.missing)} if not reported)"

    def parse(self, raw: object) -> Cell:
        """Read one raw cell into a :class:`Cell` (see the module doc for the states)."""
        text = "" if raw is None else str(raw).strip()
        if text == "":
            return Cell("blank", text)
        code = normalise_code(text)
        if code in self.missing:
            return Cell("missing", text)
        if text == NA_TEXT and NA_TEXT not in self.levels:
            return Cell("blank", text)
        if self.has_levels:
            if code in self.levels:
                return Cell("value", text, code)
            return Cell("invalid", text, None, self._level_expected(code))
        if self.is_numeric:
            number = parse_number(text)
            if number is None:
                hint = " (with a decimal point)" if re.match(r"^[+-]?\d*,\d+$", text) else ""
                return Cell("invalid", text, None, self.expected() + hint + self.missing_hint())
            if self.type == "integer":
                if not number.is_integer():
                    return Cell("invalid", text, None, self.expected() + self.missing_hint())
                value: float | int = int(text) if _INTEGER.match(text) else int(number)
            else:
                value = number
            if self.range is not None and not self.range.contains(value):
                return Cell("invalid", text, None, self.expected() + self.missing_hint())
            return Cell("value", text, value)
        return Cell("value", text, text)

    def _level_expected(self, code: str) -> str:
        text = self.expected()
        lower = {c.lower(): c for c in self.levels}
        guess = lower.get(code.lower()) or next(
            iter(difflib.get_close_matches(code, list(self.levels), n=1, cutoff=0.75)), None
        )
        if guess is not None:
            text += f" (did you mean '{guess}'?)"
        return text + self.missing_hint()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["range"] = None if self.range is None else self.range.to_dict()
        return out


@dataclass(frozen=True)
class Table:
    """A data table of the coding scheme: its name, key column and parent table (if any)."""

    name: str
    key: str
    parent: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Codebook:
    """A checked coding scheme (see :func:`load_codebook`).

    Attributes
    ----------
    path : the codebook file as given (named in Problems).
    tables : table name -> :class:`Table`.
    variables : variable name -> :class:`Variable`, in the codebook's order.
    """

    path: str
    tables: dict[str, Table]
    variables: dict[str, Variable]

    # ---- tables and keys
    @property
    def child_table(self) -> str:
        """The table whose rows belong to rows of another table (e.g. effects)."""
        return next(t.name for t in self.tables.values() if t.parent is not None)

    @property
    def parent_table(self) -> str:
        """The table the child's rows belong to (e.g. studies)."""
        return self.tables[self.child_table].parent  # type: ignore[return-value]

    def key(self, table: str) -> str:
        """The key column of ``table``."""
        return self.tables[table].key

    def parent_key(self, table: str) -> str | None:
        """The column through which rows of ``table`` name their parent row (None: no parent)."""
        parent = self.tables[table].parent
        return None if parent is None else self.tables[parent].key

    def keys(self) -> tuple[str, ...]:
        """The key columns of all tables."""
        return tuple(t.key for t in self.tables.values())

    # ---- variables
    def __contains__(self, name: object) -> bool:
        return name in self.variables

    def __getitem__(self, name: str) -> Variable:
        return self.variables[name]

    def variables_of(self, table: str) -> list[Variable]:
        """The variables of ``table`` in the codebook's order."""
        return [v for v in self.variables.values() if v.table == table]

    def columns(self, table: str) -> list[str]:
        """The columns a data file of ``table`` has: its key, its parent key, its variables."""
        cols = [self.key(table)]
        parent_key = self.parent_key(table)
        if parent_key is not None:
            cols.append(parent_key)
        cols += [v.name for v in self.variables_of(table) if v.name not in cols]
        return cols

    def variable_for_column(self, table: str, column: str) -> Variable | None:
        """The variable that defines ``column`` of ``table``'s file (the parent key included)."""
        if column == self.parent_key(table):
            return self.variables.get(column)
        var = self.variables.get(column)
        return var if var is not None and var.table == table else None

    def with_role(self, role: str) -> list[Variable]:
        """The variables with ``role`` among their roles."""
        return [v for v in self.variables.values() if role in v.roles]

    def moderators(self, exclude: Sequence[str] = ()) -> list[Variable]:
        """The variables whose role includes ``moderator``, minus ``exclude``, in codebook order."""
        return [v for v in self.with_role("moderator") if v.name not in set(exclude)]

    def components(self, exclude: Sequence[str] = ()) -> list[Variable]:
        """The variables with role ``component``, minus ``exclude``, in codebook order."""
        return [v for v in self.with_role("component") if v.name not in set(exclude)]

    def label(self, name: str) -> str:
        """The readable label of a variable (its name if it has none or is unknown)."""
        var = self.variables.get(name)
        return var.label if var is not None and var.label else name

    def level_label(self, name: str, code: object) -> str:
        """The label of level ``code`` of variable ``name`` (the code itself if unknown)."""
        var = self.variables.get(name)
        key = normalise_code(code)
        if var is None:
            return key
        return var.levels.get(key, key)

    def higher_is_worse_levels(self) -> dict[str, tuple[str, ...]]:
        """Variable name -> its ``higher_is_worse`` levels, for variables that have them.

        E.g. ``{"outcome_domain": ("parenting_stress",)}``.
        """
        return {v.name: v.higher_is_worse for v in self.variables.values() if v.higher_is_worse}

    def requires_variable(self) -> str | None:
        """The (first) variable with ``requires`` (e.g. es_input), or None."""
        return next((v.name for v in self.variables.values() if v.requires), None)

    def requires(self, name: str | None = None) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Level -> column groups the level needs, of ``name`` (default: the requires variable).

        Each group is a tuple of columns of which one must be filled in. Empty if none.
        """
        name = name or self.requires_variable()
        if name is None or name not in self.variables:
            return {}
        return self.variables[name].requires

    def statistic_columns(self, name: str | None = None) -> dict[str, dict[str, str]]:
        """Level -> ``{role: column}`` of ``name`` (default: the requires variable).

        The list form of ``requires`` names each role by itself (``{"t_value": "t_value"}``);
        the mapping form ``{role: column}`` gives the data set's own column names.
        """
        name = name or self.requires_variable()
        if name is None or name not in self.variables:
            return {}
        return self.variables[name].statistic_columns

    # ---- export
    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "tables": {k: t.to_dict() for k, t in self.tables.items()},
            "variables": {k: v.to_dict() for k, v in self.variables.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per variable: name, table, type, label, roles, required, levels, range."""
        rows = []
        for v in self.variables.values():
            rows.append(
                {
                    "name": v.name,
                    "table": v.table,
                    "type": v.type,
                    "label": v.label,
                    "roles": ", ".join(v.roles),
                    "required": v.required,
                    "levels": "; ".join(f"{c} = {lab}" for c, lab in v.levels.items()),
                    "missing": ", ".join(v.missing),
                    "range": v.range.describe() if v.range is not None else "",
                }
            )
        import pandas as pd

        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- loading
def load_codebook(source: str | Path | Mapping | Codebook) -> Codebook:
    """Read and check a codebook file.

    Parameters
    ----------
    source : the codebook YAML file, or its already loaded content (a mapping); a
        :class:`Codebook` is returned as it is.

    Returns
    -------
    Codebook

    Raises
    ------
    InputError
        With every problem found: the schema's (unknown fields, wrong field types, unknown
        ``type`` or ``role``) and the semantic ones (duplicate names, levels missing for a
        categorical/ordinal/binary or given for a number, a binary without exactly two integer
        codes, a range with min > max or on a non-number, a table without its key variable,
        ``requires`` or ``higher_is_worse`` naming unknown columns or levels, ...). Each Problem
        names the codebook file, the line (as ``row``), the variable (as ``column``), the value
        and, in ``expected``, the field.
    """
    if isinstance(source, Codebook):
        return source
    if isinstance(source, Mapping):
        file, node, data = "<codebook>", None, dict(source)
    else:
        file = str(source)
        data, node = read_yaml(source)
    if not isinstance(data, dict):
        raise InputError(
            [
                Problem(
                    file, None, None, data, "a mapping with tables and variables", check="codebook"
                )
            ]
        )
    raw_vars = data.get("variables") if isinstance(data.get("variables"), list) else []

    def column_of(path: Sequence[Any]) -> str | None:
        if len(path) >= 2 and path[0] == "variables" and isinstance(path[1], int):
            entry = raw_vars[path[1]] if path[1] < len(raw_vars) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            return str(name) if name is not None else f"variables[{path[1]}]"
        return ".".join(str(p) for p in path) or None

    def field_of(path: Sequence[Any]) -> str | None:
        if len(path) >= 3 and path[0] == "variables":
            return ".".join(str(p) for p in path[2:] if not isinstance(p, int)) or None
        return None

    problems = duplicate_key_problems(node, file, column_of)
    problems += schema_problems(
        data, codebook_schema(), file, node, column_of=column_of, field_of=field_of
    )
    problems += _semantic_problems(data, file, node)
    problems = _unique(problems)
    if problems:
        raise InputError(problems, summary=f"codebook {file}: {len(problems)} problem(s)")
    return _build(data, file)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        key = (p.row, p.column, repr(p.value), p.expected)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _as_list(x: object) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, list | tuple) else [x]


def _semantic_problems(data: dict, file: str, node: yaml.Node | None) -> list[Problem]:
    """The checks of meaning the JSON schema cannot express (robust to malformed entries)."""
    problems: list[Problem] = []

    def add(path: list, column: str | None, value: object, expected: str, check: str) -> None:
        problems.append(Problem(file, line_of(node, path), column, value, expected, check=check))

    tables = data.get("tables") if isinstance(data.get("tables"), dict) else {}
    variables = data.get("variables") if isinstance(data.get("variables"), list) else []
    entries = [(i, v) for i, v in enumerate(variables) if isinstance(v, dict)]

    # names: unique, not reserved
    seen: dict[str, int] = {}
    for i, v in entries:
        name = v.get("name")
        if not isinstance(name, str):
            continue
        if name != name.strip():
            add(
                ["variables", i, "name"],
                name,
                name,
                "field 'name': no leading/trailing spaces",
                "codebook_name",
            )
        if name in RESERVED_NAMES:
            add(
                ["variables", i, "name"],
                name,
                name,
                f"field 'name': not one of {', '.join(RESERVED_NAMES)} (added by clean)",
                "codebook_name",
            )
        if name in seen:
            add(
                ["variables", i, "name"],
                name,
                name,
                f"field 'name': a unique name (also entry {seen[name] + 1} of variables)",
                "codebook_duplicate_name",
            )
        else:
            seen[name] = i
    names = {v.get("name"): v for _, v in entries if isinstance(v.get("name"), str)}

    # tables: one child with an existing parent; keys are variables of their table
    children = [t for t, spec in tables.items() if isinstance(spec, dict) and spec.get("parent")]
    if tables and (len(tables) != 2 or len(children) != 1):
        add(
            ["tables"],
            "tables",
            ", ".join(map(str, tables)),
            "two tables, one with the other as parent (e.g. studies, and effects with "
            "parent: studies)",
            "codebook_tables",
        )
    table_keys = [spec.get("key") for spec in tables.values() if isinstance(spec, dict)]
    if len(table_keys) != len(set(table_keys)):
        add(
            ["tables"],
            "tables",
            ", ".join(map(str, table_keys)),
            "a different key column for each table",
            "codebook_key",
        )
    for tname, spec in tables.items():
        if not isinstance(spec, dict):
            continue
        parent = spec.get("parent")
        if parent is not None and (parent not in tables or parent == tname):
            add(
                ["tables", tname, "parent"],
                f"tables.{tname}",
                parent,
                "field 'parent': another table of the codebook ("
                + ", ".join(map(str, tables))
                + ")",
                "codebook_parent",
            )
        key = spec.get("key")
        if isinstance(key, str):
            var = names.get(key)
            if var is None:
                add(
                    ["tables", tname, "key"],
                    key,
                    key,
                    f"field 'key': a variable named '{key}' in table {tname}",
                    "codebook_key",
                )
            elif var.get("table") != tname:
                add(
                    ["tables", tname, "key"],
                    key,
                    var.get("table"),
                    f"field 'table' of the key '{key}': {tname}",
                    "codebook_key",
                )

    for i, v in entries:
        name = v.get("name") if isinstance(v.get("name"), str) else f"variables[{i}]"
        vtype = v.get("type") if v.get("type") in TYPES else None
        base = ["variables", i]

        table = v.get("table")
        if isinstance(table, str) and tables and table not in tables:
            add(
                base + ["table"],
                name,
                table,
                "field 'table': one of: " + ", ".join(map(str, tables)),
                "codebook_table",
            )

        levels = v.get("levels")
        level_codes: list[str] = []
        if isinstance(levels, dict):
            level_codes = [normalise_code(c) for c in levels]
            dup = {c for c in level_codes if level_codes.count(c) > 1}
            for c in sorted(dup):
                add(
                    base + ["levels"],
                    name,
                    c,
                    "field 'levels': each code once (1, '1' and 1.0 are the same code)",
                    "codebook_levels",
                )
            if "" in level_codes:
                add(
                    base + ["levels"],
                    name,
                    "",
                    "field 'levels': non-empty codes",
                    "codebook_levels",
                )
        if vtype in LEVEL_TYPES and "levels" not in v:
            add(
                base,
                name,
                None,
                f"field 'levels' (required for a {vtype} variable)",
                "codebook_levels",
            )
        if vtype is not None and vtype not in LEVEL_TYPES and "levels" in v:
            add(
                base + ["levels"],
                name,
                levels,
                f"no field 'levels' for a {vtype} variable (only binary, categorical, ordinal)",
                "codebook_levels",
            )
        if vtype == "binary" and isinstance(levels, dict):
            if len(levels) != 2:
                add(
                    base + ["levels"],
                    name,
                    ", ".join(level_codes),
                    f"field 'levels': exactly two levels for a binary variable (got {len(levels)})",
                    "codebook_binary",
                )
            elif not all(_INTEGER.match(c) for c in level_codes):
                add(
                    base + ["levels"],
                    name,
                    ", ".join(level_codes),
                    "field 'levels': integer codes (e.g. 0 and 1) for a binary variable; "
                    "use categorical for text codes",
                    "codebook_binary",
                )

        missing = [normalise_code(c) for c in _as_list(v.get("missing"))]
        for c in missing:
            if c in level_codes:
                add(
                    base + ["missing"],
                    name,
                    c,
                    "field 'missing': codes that are not also levels",
                    "codebook_missing",
                )
            if c == "":
                add(
                    base + ["missing"],
                    name,
                    c,
                    "field 'missing': non-empty codes",
                    "codebook_missing",
                )

        rng = v.get("range")
        if rng is not None and vtype is not None and vtype not in NUMERIC_TYPES:
            add(
                base + ["range"],
                name,
                rng,
                f"no field 'range' for a {vtype} variable (only integer and number)",
                "codebook_range",
            )
        if isinstance(rng, dict):
            lo, hi = rng.get("min"), rng.get("max")
            numeric = all(
                x is None or (isinstance(x, int | float) and not isinstance(x, bool))
                for x in (lo, hi)
            )
            if lo is None and hi is None:
                add(
                    base + ["range"],
                    name,
                    rng,
                    "field 'range': a min and/or a max",
                    "codebook_range",
                )
            elif numeric and lo is not None and hi is not None:
                strict = rng.get("min_exclusive") is True or rng.get("max_exclusive") is True
                if lo > hi or (lo == hi and strict):
                    add(
                        base + ["range"],
                        name,
                        f"min {lo}, max {hi}",
                        "field 'range': min < max",
                        "codebook_range",
                    )

        roles = [r for r in _as_list(v.get("role")) if isinstance(r, str)]
        dup_roles = {r for r in roles if roles.count(r) > 1}
        for r in sorted(dup_roles):
            add(base + ["role"], name, r, "field 'role': each role once", "codebook_role")
        if "component" in roles and vtype is not None and vtype != "binary":
            add(
                base + ["role"],
                name,
                vtype,
                "type binary for role component (an intervention component is present or "
                "absent); use role moderator for other types",
                "codebook_role",
            )

        hiw = v.get("higher_is_worse")
        if hiw is not None:
            if not isinstance(levels, dict):
                add(
                    base + ["higher_is_worse"],
                    name,
                    hiw,
                    "field 'higher_is_worse' only on a variable with levels",
                    "codebook_hiw",
                )
            else:
                for c in _as_list(hiw):
                    if normalise_code(c) not in level_codes:
                        add(
                            base + ["higher_is_worse"],
                            name,
                            c,
                            "field 'higher_is_worse': levels of the variable (one of: "
                            + ", ".join(level_codes)
                            + ")",
                            "codebook_hiw",
                        )

        req = v.get("requires")
        if req is not None and isinstance(req, dict):
            if not isinstance(levels, dict):
                add(
                    base + ["requires"],
                    name,
                    None,
                    "field 'requires' only on a variable with levels",
                    "codebook_requires",
                )
            if name == "es_input":
                for path, value, expected in _input_kind_problems(req):
                    add(base + ["requires", *path], name, value, expected, "codebook_requires")
            for level, cols in req.items():
                if isinstance(cols, dict):
                    cols = list(cols.values())
                if isinstance(levels, dict) and normalise_code(level) not in level_codes:
                    add(
                        base + ["requires", level],
                        name,
                        level,
                        "field 'requires': levels of the variable (one of: "
                        + ", ".join(level_codes)
                        + ")",
                        "codebook_requires",
                    )
                for entry in _as_list(cols):
                    for col in _as_list(entry):
                        if not isinstance(col, str):
                            continue
                        target = names.get(col)
                        if target is None:
                            add(
                                base + ["requires", level],
                                name,
                                col,
                                f"field 'requires' ({level}): a variable of the codebook",
                                "codebook_requires",
                            )
                        elif target.get("table") != v.get("table"):
                            add(
                                base + ["requires", level],
                                name,
                                col,
                                f"field 'requires' ({level}): a variable of table {v.get('table')}",
                                "codebook_requires",
                            )
    return problems


def _input_kind_problems(req: dict) -> list[tuple[list, object, str]]:
    """(path, value, expected) for each ``requires`` entry of es_input that does not fit its kind.

    Unknown kinds, roles a kind does not have, missing roles, list entries that are not role
    names, all at once; the roles are those of
    :data:`intervention_meta.effect_sizes.measures.INPUT_KINDS`.
    """
    from intervention_meta.effect_sizes.measures import INPUT_KINDS

    out: list[tuple[list, object, str]] = []
    for level, cols in req.items():
        kind = INPUT_KINDS.get(normalise_code(level))
        if kind is None:
            out.append(([level], level, "field 'requires': a kind of effect-size input (one of: "
                        + ", ".join(INPUT_KINDS) + ")"))  # fmt: skip
            continue
        allowed = kind.roles + kind.optional
        given = list(cols) if isinstance(cols, dict) else _as_list(cols)
        mapping = ", ".join(f"{r}: <your column>" for r in kind.roles)
        for role in given:
            if not isinstance(role, str) or role not in allowed:
                hint = (
                    f"; to use your own column names write the mapping form, {level}: {{{mapping}}}"
                    if not isinstance(cols, dict)
                    else ""
                )
                out.append(([level], role, f"field 'requires' ({level}): a role of "
                            f"'{level}' (one of: {', '.join(allowed)}){hint}"))  # fmt: skip
        for role in kind.roles:
            if role not in given:
                out.append(([level], None, f"field 'requires' ({level}): role {role} "
                            f"(every role of '{level}': {', '.join(kind.roles)})"))  # fmt: skip
    return out


def _roles(role: object) -> tuple[str, ...]:
    """The roles as written, with ``moderator`` added to a component (a component is a
    moderator)."""
    roles = tuple(_as_list(role))
    if "component" in roles and "moderator" not in roles:
        roles += ("moderator",)
    return roles


def _build(data: dict, file: str) -> Codebook:
    tables = {
        name: Table(name=name, key=spec["key"], parent=spec.get("parent"))
        for name, spec in data["tables"].items()
    }
    variables: dict[str, Variable] = {}
    for v in data["variables"]:
        levels = {normalise_code(c): str(lab) for c, lab in (v.get("levels") or {}).items()}
        rng = v.get("range")
        req = v.get("requires") or {}
        statistic_columns = {
            normalise_code(level): (
                {str(r): str(c) for r, c in cols.items()}
                if isinstance(cols, dict)
                else {c: c for c in _as_list(cols) if isinstance(c, str)}
            )
            for level, cols in req.items()
        }
        requires = {
            normalise_code(level): (
                tuple((str(c),) for c in cols.values())
                if isinstance(cols, dict)
                else tuple(tuple(_as_list(entry)) for entry in _as_list(cols))
            )
            for level, cols in req.items()
        }
        variables[v["name"]] = Variable(
            name=v["name"],
            table=v["table"],
            type=v["type"],
            levels=levels,
            missing=tuple(normalise_code(c) for c in _as_list(v.get("missing"))),
            range=None
            if rng is None
            else Range(
                min=None if rng.get("min") is None else float(rng["min"]),
                max=None if rng.get("max") is None else float(rng["max"]),
                min_exclusive=bool(rng.get("min_exclusive", False)),
                max_exclusive=bool(rng.get("max_exclusive", False)),
            ),
            required=bool(v.get("required", False)),
            roles=_roles(v.get("role")),
            label=str(v.get("label", v["name"])),
            description=str(v.get("description", "")).strip(),
            higher_is_worse=tuple(normalise_code(c) for c in _as_list(v.get("higher_is_worse"))),
            requires=requires,
            statistic_columns=statistic_columns,
            prompts={str(k): tuple(map(str, p)) for k, p in (v.get("prompts") or {}).items()},
            meaning={str(k): str(s).strip() for k, s in (v.get("meaning") or {}).items()},
            labels={str(k): str(s) for k, s in (v.get("labels") or {}).items()},
        )
    logger.debug("codebook %s: %d variables", file, len(variables))
    return Codebook(path=file, tables=tables, variables=variables)


def present_code(variable: Variable | None) -> str:
    """The code that means "the programme has the component": ``1``, else the last level."""
    if variable is None or not variable.levels:
        return "1"
    return "1" if "1" in variable.levels else list(variable.levels)[-1]


def component_variables(
    codebook: Codebook, listed: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> list[str]:
    """The intervention components: ``listed``, or the variables with role ``component``.

    The default (``listed=None``) is the codebook's components (role ``component``), minus
    ``exclude``, in the codebook's order; no other variable is swept in because it happens to be
    binary. A given list is taken as it is (its names must be codebook variables).
    """
    if listed is not None:
        unknown = [name for name in listed if name not in codebook]
        if unknown:
            raise ValueError(f"not codebook variables: {unknown}")
        return list(listed)
    return [v.name for v in codebook.components(exclude)]


def domain_levels(
    codebook: str | Path | Codebook,
    variable: str,
    inclusion: Mapping[str, Any] | None = None,
) -> list[str]:
    """The levels of ``variable`` that get their own per-domain analysis.

    The variable's codebook levels (in codebook order), restricted to the codes the inclusion
    criterion of ``variable`` allows, if it has one (a list of codes; an interval criterion does
    not restrict levels). Empty if the codebook has no such variable or it has no levels.
    """
    cb = load_codebook(codebook)
    var = cb.variables.get(variable)
    if var is None or not var.has_levels:
        return []
    levels = list(var.levels)
    rule = (inclusion or {}).get(variable)
    if isinstance(rule, list | tuple):
        allowed = {normalise_code(code) for code in rule}
        levels = [lev for lev in levels if lev in allowed]
    return levels


def check_inclusion(
    codebook: Codebook, inclusion: Mapping | None, file: str = "config"
) -> list[Problem]:
    """Problems with inclusion criteria: unknown variables or codes, wrong forms, min > max.

    ``column`` of each Problem is ``inclusion.<variable>``.
    """
    problems: list[Problem] = []
    for name, rule in (inclusion or {}).items():
        column = f"inclusion.{name}"
        var = codebook.variables.get(name)
        if var is None:
            problems.append(
                Problem(file, None, column, name, "a variable of the codebook", check="inclusion")
            )
            continue
        if isinstance(rule, Mapping):
            extra = [k for k in rule if k not in ("min", "max")]
            if extra:
                problems.append(
                    Problem(file, None, column, extra[0], "only min and max", check="inclusion")
                )
            if not var.is_numeric:
                problems.append(
                    Problem(
                        file,
                        None,
                        column,
                        dict(rule),
                        f"a list of allowed codes ({name} is {var.type}; min/max only for numbers)",
                        check="inclusion",
                    )
                )
                continue
            bounds = [rule.get(k) for k in ("min", "max")]
            if any(b is not None and parse_number(b) is None for b in bounds):
                problems.append(
                    Problem(
                        file, None, column, dict(rule), "numbers for min and max", check="inclusion"
                    )
                )
            elif all(b is not None for b in bounds) and float(bounds[0]) > float(bounds[1]):
                problems.append(
                    Problem(file, None, column, dict(rule), "min <= max", check="inclusion")
                )
            elif all(b is None for b in bounds):
                problems.append(
                    Problem(file, None, column, dict(rule), "a min and/or a max", check="inclusion")
                )
            continue
        codes = list(rule) if isinstance(rule, list | tuple) else [rule]
        if not codes:
            problems.append(
                Problem(file, None, column, [], "at least one allowed code", check="inclusion")
            )
        if var.has_levels:
            for code in codes:
                if normalise_code(code) not in var.levels:
                    hint = (
                        " (YAML reads yes/no/on/off as true/false: quote the code)"
                        if isinstance(code, bool)
                        else ""
                    )
                    problems.append(
                        Problem(
                            file, None, column, code, var.expected() + hint, check="inclusion_level"
                        )
                    )
    return problems


def moderator_figure_kind(codebook: Codebook, moderator: str) -> str:
    """How a moderator is drawn: ``bubble`` (a scatter with the meta-regression line) for
    integer/number moderators, ``orchard`` for binary/categorical/ordinal ones."""
    return "bubble" if codebook[moderator].type in NUMERIC_TYPES else "orchard"
