"""Load the pipeline configuration and check YAML files against JSON schemas.

The configuration (``config/*.yaml``) is checked against ``workflow/schemas/config.schema.yaml``;
:func:`load_config` (a config file, for the command line) and :func:`check_config` (the config
Snakemake merged, called by the Snakefile at start-up) fill in the schema's defaults the way
``snakemake.utils.validate(..., set_default=True)`` does, so the package and the workflow see the
same configuration. :func:`check_references` then checks what the config names: the files exist
and every variable is a codebook variable of a type that fits its use. Each reports every problem
at once, one short line each (``config.yaml:23: models.method = 'REMl': expected one of: REML,
ML``), never the schema itself.

The YAML helpers here are shared with :mod:`intervention_meta.data.codebook`:

* YAML is read with YAML 1.2 booleans: only ``true``/``false`` are booleans, so level codes such
  as ``yes``, ``no``, ``on`` or ``NR`` stay text (PyYAML's default would turn ``yes`` into True).
* Every problem carries the line of the offending key (as ``row``) and its key path
  (``effect_sizes.icc_default``) as ``column``; all schema violations are reported at once.
* A key written twice in one mapping (which YAML loaders silently resolve to the last one) is an
  error.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import yaml

from intervention_meta.errors import InputError, Problem

if TYPE_CHECKING:
    from intervention_meta.data.codebook import Codebook

logger = logging.getLogger(__name__)

CONFIG_SCHEMA_NAME = "config.schema.yaml"

__all__ = [
    "LEVELS_KEY",
    "check_config",
    "check_levels",
    "check_references",
    "check_yaml",
    "default_config_schema",
    "duplicate_key_problems",
    "level_columns",
    "line_of",
    "load_config",
    "read_yaml",
    "schema_problems",
    "yaml_syntax_error",
]


# --------------------------------------------------------------------------- YAML reading
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe loader with YAML 1.2 booleans (only true/false), so ``yes``/``no`` stay text; on
    libyaml (C) where PyYAML has it: the same nodes, lines and data, 20 times faster."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """Read a YAML file; return its data and its node tree (for line numbers).

    Parameters
    ----------
    path : the YAML file.

    Returns
    -------
    (data, node) : the loaded data (``None`` for an empty file) and the composed node tree.

    Raises
    ------
    InputError
        If the file cannot be read or is not valid YAML (the Problem names the line).
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(
            [Problem(file, None, None, None, "an existing file", check="yaml_read")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            [Problem(file, None, None, str(exc), "a readable UTF-8 text file", check="yaml_read")]
        ) from None
    try:
        loader = _Loader(text)
        try:  # parsed once: the data are constructed from the node tree
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise yaml_syntax_error(exc, file, text) from None
    return data, node


def yaml_syntax_error(exc: yaml.YAMLError, file: str, text: str = "") -> InputError:
    """The :class:`InputError` of a YAML syntax error, without PyYAML's traceback: the file, the
    line (``row``), the column and why, e.g. ``config/config.yaml:28: "did not find expected ','
    or ']' (in a list [...] that starts at line 27, column 11)": expected valid YAML (column
    3)``. ``text`` (the file's text) lets it say when a tab in the indentation is the cause."""
    mark = getattr(exc, "problem_mark", None)
    row = mark.line + 1 if mark is not None else None
    col = f" (column {mark.column + 1})" if mark is not None else ""
    why = str(getattr(exc, "problem", None) or exc).strip()
    lines = text.splitlines()
    if row is not None and row <= len(lines) and "\t" in lines[row - 1]:
        why += "; a tab on this line: YAML indents with spaces, not tabs"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None and (start.line, start.column) != (mark.line, mark.column):
        for old, words in (
            ("while parsing a flow sequence", "in a list [...]"),
            ("while parsing a flow mapping", "in a mapping {...}"),
            ("while parsing a ", "in a "),
            ("while scanning a ", "in a "),
        ):
            context = context.replace(old, words)
        why += f" ({context} that starts at line {start.line + 1}, column {start.column + 1})"
    return InputError(
        [Problem(file, row, None, why, f"valid YAML{col}", check="yaml_syntax")],
        summary=f"{file} is not valid YAML",
    )


def check_yaml(*, files: Sequence[str | Path]) -> None:
    """Check that config files and the codebooks they name are valid YAML, before a run.

    Snakemake reads a ``--configfile`` itself and says only that it "is not valid JSON or YAML";
    this says where and why (:func:`yaml_syntax_error`), for every file at once, without a
    traceback. The schema and the references are checked by the workflow at start-up
    (:func:`check_config`).

    Raises
    ------
    InputError
        With one problem per file that cannot be read as YAML.
    """
    errors: list[InputError] = []
    for file in files:
        try:
            data = read_yaml(file)[0]
        except InputError as err:
            errors.append(err)
            continue
        codebook = data.get("codebook") if isinstance(data, Mapping) else None
        if isinstance(codebook, str) and Path(codebook).is_file():
            try:
                read_yaml(codebook)
            except InputError as err:
                errors.append(err)
    if errors:
        raise InputError(
            [p for err in errors for p in err.problems],
            summary=f"{len(errors)} file(s) not valid YAML; nothing run",
        )


def line_of(node: yaml.Node | None, path: Sequence[Any]) -> int | None:
    """The 1-based line of the deepest node along ``path`` (keys and list indices), if known."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(step):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                return line
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _walk_mappings(node: yaml.Node, path: tuple) -> Iterator[tuple[tuple, yaml.MappingNode]]:
    if isinstance(node, yaml.MappingNode):
        yield path, node
        for key_node, value_node in node.value:
            yield from _walk_mappings(value_node, path + (key_node.value,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _walk_mappings(item, path + (i,))


def duplicate_key_problems(
    node: yaml.Node | None, file: str, column_of=None, what: str = "key"
) -> list[Problem]:
    """Problems for keys written twice in one YAML mapping (the loader would keep the last).

    ``column_of(path)`` turns a key path into the Problem's column (default: dotted path).
    """
    if node is None:
        return []
    column_of = column_of or _dotted
    problems = []
    for path, mapping in _walk_mappings(node, ()):
        seen: dict[str, int] = {}
        for key_node, _ in mapping.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(
                        file,
                        line,
                        column_of(path + (key,)),
                        key,
                        f"each {what} only once in a mapping (also on line {seen[key]})",
                        check="yaml_duplicate_key",
                    )
                )
            else:
                seen[key] = line
    return problems


def _dotted(path: Sequence[Any]) -> str | None:
    return ".".join(str(p) for p in path) or None


# --------------------------------------------------------------------------- JSON schema
_TYPE_WORDS = {
    "string": "a text",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping (key: value)",
    "null": "nothing",
}


def _type_words(types: Any) -> str:
    types = [types] if isinstance(types, str) else list(types or [])
    return " or ".join(_TYPE_WORDS.get(t, t) for t in types) or "a value"


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _describe_subschema(schema: Mapping) -> str:
    if "enum" in schema:
        return "one of: " + ", ".join(_fmt(v) for v in schema["enum"])
    if "$ref" in schema:
        return "a value as documented"
    words = _type_words(schema.get("type"))
    if schema.get("type") == "object" and schema.get("properties"):
        words += " with " + ", ".join(schema["properties"])
    if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
        inner = schema["items"]
        if "enum" in inner:
            words += " of " + ", ".join(_fmt(v) for v in inner["enum"])
        elif isinstance(inner.get("type"), str):
            words += " of " + _type_words(inner["type"]).removeprefix("a ").removeprefix("an ")
        else:
            words += " of values"
    return words


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    if not error.context:
        return [error]
    out = []
    for sub in error.context:
        out.extend(_leaf_errors(sub))
    return out


def _describe_error(error: jsonschema.ValidationError) -> list[tuple[list, Any, str, str]]:
    """Turn one schema violation into (path, value, expected, check) tuples."""
    path = list(error.absolute_path)
    validator, vval, inst, schema = (
        error.validator,
        error.validator_value,
        error.instance,
        error.schema,
    )
    check = f"schema_{validator}"
    if validator == "additionalProperties" and isinstance(inst, Mapping):
        known = list((schema.get("properties") or {}).keys())
        extra = [k for k in inst if k not in known]
        hint = f"; known: {', '.join(known)}" if known else ""
        return [(path + [k], k, f"no field '{k}' (unknown{hint})", check) for k in extra]
    if validator == "required" and isinstance(inst, Mapping):
        return [
            (path + [r], None, f"a field '{r}' (required)", check) for r in vval if r not in inst
        ]
    if validator == "enum":
        return [(path, inst, "one of: " + ", ".join(_fmt(v) for v in vval), check)]
    if validator == "type":
        return [(path, inst, _type_words(vval), check)]
    bounds = {
        "minimum": ">=",
        "maximum": "<=",
        "exclusiveMinimum": ">",
        "exclusiveMaximum": "<",
    }
    if validator in bounds:
        return [(path, inst, f"a number {bounds[validator]} {_fmt(vval)}", check)]
    if validator == "pattern":
        return [(path, inst, f"a text matching {vval}", check)]
    if validator == "minLength":
        return [(path, inst, "a non-empty text", check)]
    if validator == "minItems":
        return [
            (path, inst, f"a list with at least {vval} entr{'y' if vval == 1 else 'ies'}", check)
        ]
    if validator == "minProperties":
        return [
            (path, inst, f"a mapping with at least {vval} entr{'y' if vval == 1 else 'ies'}", check)
        ]
    if validator in ("anyOf", "oneOf"):
        leaves = _leaf_errors(error)
        enums = [e for e in leaves if e.validator == "enum"]
        if enums:
            # the value had the right shape but an unknown entry: name that entry
            best = max(enums, key=lambda e: len(e.absolute_path))
            return [
                (
                    list(best.absolute_path),
                    best.instance,
                    "one of: " + ", ".join(_fmt(v) for v in best.validator_value),
                    "schema_enum",
                )
            ]
        # errors of the alternatives whose type fits the value: describe those
        fitting = [
            e for e in leaves if not (e.validator == "type" and len(e.absolute_path) == len(path))
        ]
        if fitting:
            return [item for e in fitting for item in _describe_error(e)]
        forms = "; or ".join(_describe_subschema(s) for s in vval if isinstance(s, Mapping))
        return [(path, inst, forms or error.message, check)]
    return [(path, inst, error.message, check)]


def _validator_class(schema: Mapping, fill_defaults: bool):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    if not fill_defaults:
        return cls
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        # as snakemake.utils.validate(set_default=True), but copying each default
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, Mapping) and "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def schema_problems(
    instance: Any,
    schema: Mapping,
    file: str,
    node: yaml.Node | None = None,
    *,
    fill_defaults: bool = False,
    column_of=None,
    field_of=None,
) -> list[Problem]:
    """Every violation of ``schema`` by ``instance`` as a :class:`Problem`.

    Parameters
    ----------
    instance : the loaded YAML data (modified in place when ``fill_defaults``).
    schema : a JSON schema (draft-07 unless its ``$schema`` says otherwise).
    file : the file named in the Problems.
    node : the YAML node tree, for line numbers (``row``).
    fill_defaults : fill in the schema's ``default`` values for absent properties.
    column_of : ``column_of(path) -> str``; default: the dotted key path.
    field_of : ``field_of(path) -> str | None``; a field it names is put in front of
        ``expected`` (``field 'type': one of: ...``).
    """
    column_of = column_of or _dotted
    validator = _validator_class(schema, fill_defaults)(schema)
    problems = []
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    for error in errors:
        for path, value, expected, check in _describe_error(error):
            name = field_of(path) if field_of is not None else None
            if name and check != "schema_additionalProperties":
                expected = f"field '{name}': {expected}"
            problems.append(
                Problem(file, line_of(node, path), column_of(path), value, expected, check=check)
            )
    return problems


# --------------------------------------------------------------------------- the config
def default_config_schema() -> Path:
    """The workflow's config schema: ``workflow/schemas/config.schema.yaml`` of this checkout.

    Looked up next to the package's source tree (``src/`` layout) and then in the current
    working directory (where Snakemake runs).
    """
    candidates = [
        Path(__file__).resolve().parents[2] / "workflow" / "schemas" / CONFIG_SCHEMA_NAME,
        Path.cwd() / "workflow" / "schemas" / CONFIG_SCHEMA_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"cannot find workflow/schemas/{CONFIG_SCHEMA_NAME}; pass schema= explicitly"
    )


def _load_schema(schema: str | Path | Mapping | None) -> dict:
    if isinstance(schema, Mapping):
        return copy.deepcopy(dict(schema))
    path = Path(schema) if schema is not None else default_config_schema()
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def load_config(
    path_or_dict: str | Path | Mapping, schema: str | Path | Mapping | None = None
) -> dict:
    """Read and check the pipeline configuration; fill in defaults.

    Parameters
    ----------
    path_or_dict : a YAML config file, or an already loaded mapping (not modified).
    schema : the JSON schema (path or mapping); default: the workflow's
        ``workflow/schemas/config.schema.yaml``.

    Returns
    -------
    dict
        The configuration with every option the schema gives a default for filled in, as
        ``snakemake.utils.validate(config, schema, set_default=True)`` would.

    Raises
    ------
    InputError
        With one :class:`Problem` per violation: ``file`` the config file (``"<config>"`` for a
        mapping), ``row`` the line, ``column`` the key path (``effect_sizes.icc_default``),
        ``value`` the offending value and ``expected`` what the schema allows. Unknown options
        (typos) are errors.
    """
    if isinstance(path_or_dict, Mapping):
        file, node = "<config>", None
        data: Any = copy.deepcopy(dict(path_or_dict))
    else:
        file = str(path_or_dict)
        data, node = read_yaml(path_or_dict)
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise InputError(
            [Problem(file, None, None, data, "a mapping of options (key: value)", check="config")]
        )
    problems = duplicate_key_problems(node, file, what="option")
    problems += schema_problems(data, _load_schema(schema), file, node, fill_defaults=True)
    if problems:
        raise InputError(problems, summary=f"config {file}: {len(problems)} problem(s)")
    logger.debug("config %s checked", file)
    return data


def check_config(
    config: dict,
    files: Sequence[str | Path] = (),
    *,
    schema: str | Path | Mapping | None = None,
    workdir: str | Path | None = None,
) -> list[Problem]:
    """Check a configuration as Snakemake loaded it, all at once: the schema, then every
    cross-reference (:func:`check_references`); fill in the schema's defaults in place.

    This is the workflow's start-up check. Unlike ``snakemake.utils.validate``, which stops at
    the first violation and shows the whole schema, every problem becomes one short line
    (:meth:`Problem.short <intervention_meta.errors.Problem.short>`) naming the file, the line,
    the key path, the value and what is allowed.

    Parameters
    ----------
    config : the merged configuration (filled in place with the defaults, as
        ``snakemake.utils.validate(config, schema, set_default=True)`` does).
    files : the config files it was merged from, in order; each problem names the last file
        that sets its key (the last file when none does, e.g. for ``--config`` options).
    schema : the JSON schema; default: the workflow's ``workflow/schemas/config.schema.yaml``.
    workdir : the folder relative paths are read from; default: the working directory.

    Returns
    -------
    list of Problem
        The warnings (problems that let the run go on).

    Raises
    ------
    InputError
        With every error, schema and cross-reference problems together.
    """
    sources = [_relative(f) for f in files] or ["<config>"]
    nodes = []
    problems = []
    for file in sources:
        try:
            nodes.append(read_yaml(file)[1])
        except InputError:
            nodes.append(None)
        problems += duplicate_key_problems(nodes[-1], file, what="option")
    problems += schema_problems(config, _load_schema(schema), sources[-1], fill_defaults=True)
    named = {p.column for p in problems if p.column}
    problems += [  # an option the schema already faults is not faulted twice
        p
        for p in _reference_problems(config, None, sources[-1], workdir)
        if not any(c == p.column or c.startswith(f"{p.column}.") for c in named)
    ]
    problems = _in_order([_located(p, sources, nodes) for p in problems], sources)
    return _warnings_or_raise(problems, f"config {', '.join(sources)}", "; nothing run")


def check_references(
    config: Mapping,
    codebook: Codebook | str | Path | None = None,
    *,
    file: str | Path = "<config>",
    workdir: str | Path | None = None,
) -> list[Problem]:
    """Check everything the configuration refers to, all at once.

    * the files: ``codebook`` (which must also load), ``data.studies``, ``data.effects`` and the
      ``reliability`` files and ``prisma.counts``, if given, exist (the counts file must also
      pass :func:`~intervention_meta.outputs.prisma.read_counts`);
    * every variable the config names is a codebook variable whose type fits its use:
      ``inclusion`` (the variables, their level codes, ``{min, max}`` only for numbers, see
      :func:`~intervention_meta.data.codebook.check_inclusion`), ``models.levels`` (variables of
      the effects or the studies table, see
      :func:`check_levels`), ``moderators.multiple``
      (variables a model can use: binary, categorical, ordinal, integer or number),
      ``moderators.exclude`` (moderators), ``components.variables`` (binary variables),
      ``effect_sizes.direction_by`` (levels of ``models.domain_variable``) and,
      with ``models.per_domain``, ``models.domain_variable`` (a variable with levels; a
      warning, as the run then goes on without the per-domain analyses and flags it).

    Parameters
    ----------
    config : the configuration (after :func:`load_config` or Snakemake's schema check).
    codebook : the codebook; default: the config's ``codebook`` file.
    file : the config file named in the problems (lines are looked up in it).
    workdir : the folder relative paths are read from; default: the working directory.

    Returns
    -------
    list of Problem
        The warnings.

    Raises
    ------
    InputError
        With every error: ``file`` the config file (the codebook for a codebook that does not
        load), ``row`` the line, ``column`` the key path, ``value`` the value and ``expected``
        what would fit (for a variable, the codebook's variables that would).
    """
    file = str(file)
    try:
        node = read_yaml(file)[1] if Path(file).is_file() else None
    except InputError:
        node = None
    problems = _reference_problems(config, codebook, file, workdir)
    problems = _in_order([_located(p, [file], [node]) for p in problems], [file])
    return _warnings_or_raise(problems, f"config {file}")


#: the config key of the grouping columns of the multilevel model
LEVELS_KEY = "models.levels"


def check_levels(
    levels: Sequence[str] | None, available: Sequence[str], *, file: str = "config"
) -> list[Problem]:
    """Problems with ``models.levels``: each level must be one of the ``available`` columns.

    Parameters
    ----------
    levels : the grouping columns, outer to inner (None or empty: the default, no problem)
    available : the columns the analysis can group by: the effect-size table's columns (the
        effects table with the studies variables merged in), or at start-up the codebook's
        variables of those two tables
    file : what the problems name as their file (the config file)

    Returns
    -------
    list of Problem
        One per level not available (its column is ``models.levels``, its value the level, the
        expected text lists the available columns) and one per level named twice.
    """
    problems: list[Problem] = []
    known = [str(c) for c in available]
    seen: set[str] = set()
    for name in levels or ():
        if name in seen:
            problems.append(
                Problem(file, None, LEVELS_KEY, name, "each level once", check="levels")
            )
        seen.add(name)
        if name not in known:
            problems.append(
                Problem(
                    file,
                    None,
                    LEVELS_KEY,
                    name,
                    "a column of the effect sizes or a studies variable (available: "
                    + ", ".join(known)
                    + ")",
                    check="levels",
                )
            )
    return problems


def level_columns(codebook: Codebook) -> list[str]:
    """The columns ``models.levels`` may name, from the codebook alone (for the start-up check,
    ``check_levels(levels, level_columns(codebook))``): the variables of the effects table and of
    the studies table, whose variables every effect size carries."""
    tables = (codebook.child_table, codebook.parent_table)
    return [name for name, var in codebook.variables.items() if var.table in tables]


def _warnings_or_raise(problems: list[Problem], where: str, end: str = "") -> list[Problem]:
    """The problems when all are warnings; else an InputError with all of them."""
    n_errors = sum(p.severity == "error" for p in problems)
    if n_errors:
        raise InputError(problems, summary=f"{where}: {n_errors} problem(s){end}")
    return problems


@dataclass(frozen=True)
class _Use:
    """What an option needs of the variables it names."""

    what: str
    types: tuple[str, ...] = ()
    role: str | None = None
    severity: str = "error"

    def fits(self, var) -> bool:
        return (not self.types or var.type in self.types) and (
            self.role is None or self.role in var.roles
        )


def _variable_problems(
    cb: Codebook, names: Any, key: str, use: _Use, file: str, *, keys: bool = False
) -> list[Problem]:
    """Problems with the variables ``names`` (one or a list) given under ``key``; with
    ``keys``, the names are the keys of the mapping ``key``."""
    listed = isinstance(names, list)
    entries = names if listed else [names]
    fitting = [v.name for v in cb.variables.values() if use.fits(v)]
    shown = ", ".join(fitting[:10]) + (
        f" and {len(fitting) - 10} more" if len(fitting) > 10 else ""
    )
    those = f"; in {cb.path}: {shown}" if fitting else f"; {cb.path} has none"
    problems, seen = [], set()
    for i, name in enumerate(entries):
        if not isinstance(name, str):
            continue  # the schema check names it
        column = f"{key}.{name if keys else i}" if listed else key
        var = cb.variables.get(name)
        if name in seen:
            why = f"each variable once ({name} is listed twice)"
        elif var is None:
            guess = difflib.get_close_matches(name, fitting or list(cb.variables), n=1, cutoff=0.6)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            why = f"{use.what}{hint}{those}"
        elif not use.fits(var):
            has = f"type {var.type}"
            if use.role is not None:
                has += f", role {', '.join(var.roles) or 'none'}"
            why = f"{use.what} ({name} has {has}){those}"
        else:
            why = ""
        seen.add(name)
        if why:
            problems.append(
                Problem(
                    file, None, column, name, why, severity=use.severity, check="config_variable"
                )
            )
    return problems


def _file_problems(config: Mapping, file: str, workdir: Path) -> list[Problem]:
    keys = [
        "codebook",
        "data.studies",
        "data.effects",
        "reliability.studies",
        "reliability.effects",
        "prisma.counts",
    ]
    problems = []
    for key in keys:
        value = _get(config, key)
        if not isinstance(value, str) or not value or (workdir / value).is_file():
            continue  # absent or of the wrong type: the schema check names it
        where = "" if workdir == Path.cwd() else f" (relative to {workdir})"
        problems.append(
            Problem(file, None, key, value, f"an existing file{where}", check="config_file")
        )
    return problems


def _prisma_counts_problems(config: Mapping, base: Path) -> list[Problem]:
    """The problems of the PRISMA counts file (``prisma.counts``), if it exists, at start-up."""
    counts = _get(config, "prisma.counts")
    if not isinstance(counts, str) or not counts or not (base / counts).is_file():
        return []
    from intervention_meta.outputs.prisma import read_counts

    try:
        read_counts(base / counts if base != Path.cwd() else counts)
    except InputError as exc:
        return exc.problems
    return []


def _reference_problems(
    config: Mapping, codebook: Any, file: str, workdir: str | Path | None
) -> list[Problem]:
    from intervention_meta.data.codebook import (
        LEVEL_TYPES,
        NUMERIC_TYPES,
        check_inclusion,
        load_codebook,
    )

    if not isinstance(config, Mapping):
        return []
    base = Path(workdir) if workdir is not None else Path.cwd()
    problems = _file_problems(config, file, base)
    problems += _prisma_counts_problems(config, base)
    if codebook is None:
        codebook = config.get("codebook")
        if not isinstance(codebook, str) or not (base / codebook).is_file():
            return problems
        codebook = base / codebook if workdir is not None else codebook
    try:
        cb = load_codebook(codebook)
    except InputError as exc:
        return problems + exc.problems

    inclusion = _section(config, "inclusion")
    known = {  # criteria of the wrong form are named by the schema check
        k: v for k, v in inclusion.items() if k in cb.variables and isinstance(v, list | Mapping)
    }
    unknown = [k for k in inclusion if k not in cb.variables]
    use = _Use("a codebook variable")
    problems += _variable_problems(cb, unknown, "inclusion", use, file, keys=True)
    problems += [dataclasses.replace(p, file=file) for p in check_inclusion(cb, known)]

    models = _section(config, "models")
    if isinstance(models.get("levels"), list):
        levels = [name for name in models["levels"] if isinstance(name, str)]
        problems += check_levels(levels, level_columns(cb), file=file)
    if models.get("per_domain"):
        use = _Use(
            "a variable with levels (binary, categorical or ordinal) for the per-domain analyses",
            types=LEVEL_TYPES,
            severity="warning",
        )
        variable = models.get("domain_variable", "outcome_domain")
        problems += _variable_problems(cb, variable, "models.domain_variable", use, file)

    problems += _direction_by_problems(cb, config, file)

    moderators = _section(config, "moderators")
    modelled = _Use(
        "a variable a model can use (binary, categorical, ordinal, integer or number)",
        types=LEVEL_TYPES + NUMERIC_TYPES,
    )
    if isinstance(moderators.get("multiple"), list):
        problems += _variable_problems(
            cb, moderators["multiple"], "moderators.multiple", modelled, file
        )
    if isinstance(moderators.get("exclude"), list):
        use = _Use("a moderator (a variable with role moderator)", role="moderator")
        problems += _variable_problems(cb, moderators["exclude"], "moderators.exclude", use, file)
    from intervention_meta.data.risk_of_bias import risk_of_bias_problems

    problems += risk_of_bias_problems(cb, config.get("risk_of_bias"), file)
    components = _section(config, "components")
    if isinstance(components.get("variables"), list):
        use = _Use("a binary variable", types=("binary",))
        problems += _variable_problems(
            cb, components["variables"], "components.variables", use, file
        )
    return problems


def _direction_by_problems(cb: Codebook, config: Mapping, file: str) -> list[Problem]:
    """``effect_sizes.direction_by`` names levels of ``models.domain_variable``."""
    direction_by = _section(config, "effect_sizes").get("direction_by")
    if not isinstance(direction_by, Mapping) or not direction_by:
        return []
    variable = _section(config, "models").get("domain_variable", "outcome_domain")
    var = cb.variables.get(variable)
    if var is None or not var.levels:
        why = (
            f"levels of models.domain_variable, but '{variable}' is not a variable with levels "
            f"in {cb.path}"
        )
        return [
            Problem(file, None, "effect_sizes.direction_by", sorted(map(str, direction_by)), why,
                    check="config_variable")
        ]  # fmt: skip
    codes = [str(code) for code in var.levels]
    return [
        Problem(file, None, f"effect_sizes.direction_by.{level}", level,
                f"a level of {variable} (one of: {', '.join(codes)})", check="config_variable")
        for level in direction_by
        if str(level) not in codes
    ]  # fmt: skip


def _section(config: Mapping, name: str) -> Mapping:
    value = config.get(name)
    return value if isinstance(value, Mapping) else {}


def _get(config: Mapping, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _relative(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    path = Path(path)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


def _find_line(node: yaml.Node | None, parts: Sequence[str]) -> int | None:
    """The line of the key path ``parts`` in ``node``; None unless the whole path is there."""
    if node is None:
        return None
    line = None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if str(kv[0].value) == part), None)
            if match is None:
                return None
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return None
    return line


def _located(problem: Problem, files: Sequence[str], nodes: Sequence[yaml.Node | None]) -> Problem:
    """``problem`` with the last config file that sets its key, and the key's line there."""
    if problem.file not in files or problem.column is None:
        return problem
    parts = problem.column.split(".")
    for i in range(len(parts), 0, -1):  # the key itself, else its nearest parent that is there
        for file, node in zip(reversed(files), reversed(nodes), strict=True):
            line = _find_line(node, parts[:i])
            if line is not None:
                return dataclasses.replace(problem, file=file, row=line)
    return dataclasses.replace(problem, file=files[-1])


def _in_order(problems: list[Problem], files: Sequence[str]) -> list[Problem]:
    """The problems of the config files in file and line order, then the others (codebook)."""

    def key(p: Problem) -> tuple:
        rank = files.index(p.file) if p.file in files else len(files)
        return (rank, p.row is None, p.row or 0)

    return sorted(problems, key=key)
