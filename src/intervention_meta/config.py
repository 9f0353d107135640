"""Load the pipeline configuration and check YAML files against JSON schemas.

The configuration (``config/*.yaml``) is checked against ``workflow/schemas/config.schema.yaml``,
the same schema the Snakefile passes to ``snakemake.utils.validate``; :func:`load_config` fills in
the schema's defaults the way ``snakemake.utils.validate(..., set_default=True)`` does, so the
package and the workflow see the same configuration.

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
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from intervention_meta.errors import InputError, Problem

logger = logging.getLogger(__name__)

CONFIG_SCHEMA_NAME = "config.schema.yaml"

__all__ = [
    "default_config_schema",
    "duplicate_key_problems",
    "line_of",
    "load_config",
    "read_yaml",
    "schema_problems",
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
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise InputError(
            [Problem(file, row, None, reason, "valid YAML", check="yaml_syntax")],
            summary=f"{file} is not valid YAML",
        ) from None
    return data, node


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
