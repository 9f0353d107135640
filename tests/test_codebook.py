"""The codebook: loading the shipped scheme, its helpers, and every kind of bad codebook."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import CODEBOOK

from intervention_meta.data.codebook import codebook_schema, load_codebook, normalise_code
from intervention_meta.errors import InputError
from intervention_meta.example.literature import COMPONENTS


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))


def _var(data: dict, name: str) -> dict:
    return next(v for v in data["variables"] if v["name"] == name)


# ------------------------------------------------------------------ the shipped codebook
def test_shipped_codebook_tables_and_keys_come_from_the_file(codebook):
    assert codebook.parent_table == "studies"
    assert codebook.child_table == "effects"
    assert codebook.key("studies") == "study_id"
    assert codebook.key("effects") == "es_id"
    assert codebook.parent_key("effects") == "study_id"
    assert codebook.parent_key("studies") is None
    # the effects file holds its key, the link to its study, then its variables
    assert codebook.columns("effects")[:3] == ["es_id", "study_id", "outcome"]


def test_requires_mapping_form_reads_roles_from_the_data_sets_own_columns(raw):
    data = copy.deepcopy(raw)
    data["variables"].append({"name": "n_tx", "table": "effects", "type": "integer"})
    _requires_mapping(data, n_int="n_tx")
    cb = load_codebook(data)
    assert cb.statistic_columns()["t"] == {"t_value": "t_value", "n_int": "n_tx", "n_ctl": "n_ctl"}
    # validation of the data checks the mapped columns
    assert cb.requires()["t"] == (("t_value",), ("n_tx",), ("n_ctl",))
    # the list form names each role by itself
    assert cb.statistic_columns()["r"] == {"r_value": "r_value", "n_total": "n_total"}


def test_shipped_codebook_helpers(codebook):
    moderators = [v.name for v in codebook.moderators()]
    assert "design" in moderators and "year" in moderators  # role given as a list
    assert "citation" not in moderators
    assert codebook.higher_is_worse_levels() == {"outcome_domain": ("parenting_stress",)}
    assert codebook.requires_variable() == "es_input"
    assert codebook.requires()["f"] == (("f_value",), ("n_int",), ("n_ctl",), ("stat_direction",))
    assert codebook.label("year") == "Publication year"
    assert codebook.label("not_a_variable") == "not_a_variable"
    assert codebook.level_label("risk_of_bias", 2) == "Some concerns"
    assert codebook.level_label("risk_of_bias", "2.0") == "Some concerns"
    assert codebook.level_label("design", "rct") == "Randomised controlled trial"
    assert [v.name for v in codebook.variables_of("studies")][0] == "study_id"
    assert set(codebook.to_frame().columns) >= {"name", "table", "type", "levels", "range"}
    assert codebook.to_dict()["tables"]["effects"]["parent"] == "studies"


def test_components_are_the_variables_with_role_component_and_also_moderators(codebook):
    components = [v.name for v in codebook.components()]
    # data/codebook.yaml: the six intervention components the example data were simulated with,
    # in the codebook's order
    assert components == list(COMPONENTS) and len(components) == 6
    assert codebook["joint_effort"].roles == ("component", "moderator")  # written: component
    assert set(components) <= {v.name for v in codebook.moderators()}
    assert [v.name for v in codebook.components(exclude=["joint_effort"])] == components[1:]
    # cluster_randomised is binary and coded on the studies, but a descriptor: not a component
    assert codebook["cluster_randomised"].type == "binary"
    assert "cluster_randomised" not in components
    book = {
        "tables": {"studies": {"key": "s"}, "effects": {"key": "e", "parent": "studies"}},
        "variables": [
            {"name": "s", "table": "studies", "type": "id", "role": "id"},
            {"name": "e", "table": "effects", "type": "id", "role": "id"},
            {
                "name": "c",
                "table": "studies",
                "type": "binary",
                "levels": {0: "no", 1: "yes"},
                "role": ["moderator", "component"],
            },
        ],
    }
    assert load_codebook(book)["c"].roles == ("moderator", "component")  # both: same meaning
    assert [v.name for v in load_codebook(book).moderators()] == ["c"]


def test_other_key_names_are_taken_from_the_codebook(tmp_path):
    # a second data set uses the keys `study` and `id` (as data/examples/assink2016)
    text = """
tables:
  studies: {key: study}
  effects: {key: id, parent: studies}
variables:
  - {name: study, table: studies, type: id, required: true, role: id}
  - {name: id, table: effects, type: integer, required: true, role: id}
  - {name: yi, table: effects, type: number, role: statistic}
"""
    path = tmp_path / "codebook.yaml"
    path.write_text(text, encoding="utf-8")
    cb = load_codebook(path)
    assert (cb.key("studies"), cb.key("effects"), cb.parent_key("effects")) == (
        "study",
        "id",
        "study",
    )
    assert cb.columns("effects") == ["id", "study", "yi"]
    assert cb.requires() == {}
    assert cb.higher_is_worse_levels() == {}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1, "1"),
        ("1", "1"),
        ("1.0", "1"),
        (1.0, "1"),
        (-99, "-99"),
        ("-99.0", "-99"),
        (" rct ", "rct"),
        ("0.50", "0.5"),
        (None, ""),
        ("NR", "NR"),
        (True, "true"),
    ],
)
def test_codes_compare_as_normalised_text(value, code):
    assert normalise_code(value) == code


def test_cell_states_blank_missing_value_invalid(codebook):
    year = codebook["year"]
    assert year.parse("").state == "blank"
    assert year.parse("NA").state == "blank"  # R's missing value counts as blank
    assert year.parse("-99").state == "missing"
    assert year.parse("-99.0").state == "missing"
    assert year.parse("2014").value == 2014
    assert year.parse("2014.0").value == 2014
    assert year.parse("1959").state == "invalid"
    assert year.parse("2014.5").state == "invalid"
    assert codebook["risk_of_bias"].parse("2.0").value == "2"
    assert codebook["stat_direction"].parse("-1").value == "-1"
    assert codebook["country"].parse("NR").state == "missing"
    assert codebook["p_value"].parse("0").state == "invalid"  # exclusive bound
    assert codebook["f_value"].parse("0").state == "value"  # inclusive bound
    assert "did you mean 'rct'" in codebook["design"].parse("RCT").expected


def test_the_schema_is_a_valid_draft07_schema():
    jsonschema.Draft7Validator.check_schema(codebook_schema())


# ------------------------------------------------------------------ bad codebooks
def _set(name, field, value):
    def edit(data):
        _var(data, name)[field] = value

    return edit


def _drop(name, field):
    def edit(data):
        del _var(data, name)[field]

    return edit


def _duplicate(name):
    def edit(data):
        data["variables"].append(copy.deepcopy(_var(data, name)))

    return edit


def _edit_requires(data):
    _var(data, "es_input")["requires"]["t"].append("t_val")


def _requires_unknown_level(data):
    _var(data, "es_input")["requires"]["chi2"] = ["yi"]


def _requires_drop_role(data):
    _var(data, "es_input")["requires"]["t"].remove("n_ctl")


def _requires_mapping(data, **columns):
    roles = ["t_value", "n_int", "n_ctl"]
    _var(data, "es_input")["requires"]["t"] = {r: columns.get(r, r) for r in roles}


def _requires_wrong_role(data):
    _requires_mapping(data)
    _var(data, "es_input")["requires"]["t"]["f_value"] = "f_value"


def _requires_other_table(data):
    _requires_mapping(data, n_ctl="year")


def _table_key(data):
    data["tables"]["effects"]["key"] = "effect_id"


def _unknown_parent(data):
    data["tables"]["effects"]["parent"] = "study"


def _same_keys(data):
    data["tables"]["effects"]["key"] = "study_id"


def _third_table(data):
    data["tables"]["samples"] = {"key": "es_id"}


def _unknown_top_field(data):
    data["varaibles"] = []


def _unknown_table(data):
    _var(data, "outcome")["table"] = "effect"


BAD_CODEBOOKS = {
    "unknown type": (_set("year", "type", "integr"), "year", "integr", "field 'type'"),
    "unknown field": (_set("year", "lables", "x"), "year", "lables", "no field 'lables'"),
    "unknown role": (
        _set("year", "role", ["descriptor", "moderatr"]),
        "year",
        "moderatr",
        "field 'role'",
    ),
    "unknown single role": (_set("country", "role", "descripter"), "country", "descripter", "role"),
    "component that is not binary": (
        _set("design", "role", ["inclusion", "component"]),
        "design",
        "categorical",
        "type binary for role component",
    ),
    "duplicate name": (_duplicate("year"), "year", "year", "a unique name"),
    "levels missing": (_drop("design", "levels"), "design", None, "field 'levels'"),
    "levels on a number": (
        _set("followup_months", "levels", {0: "post"}),
        "followup_months",
        {0: "post"},
        "no field 'levels' for a number",
    ),
    "binary with three levels": (
        _set("joint_effort", "levels", {0: "no", 1: "yes", 2: "partly"}),
        "joint_effort",
        "0, 1, 2",
        "exactly two levels",
    ),
    "binary with text codes": (
        _set("joint_effort", "levels", {"n": "no", "y": "yes"}),
        "joint_effort",
        "n, y",
        "integer codes",
    ),
    "range min > max": (
        _set("year", "range", {"min": 2030, "max": 1960}),
        "year",
        "min 2030, max 1960",
        "min < max",
    ),
    "range on a categorical": (
        _set("design", "range", {"min": 0}),
        "design",
        {"min": 0},
        "no field 'range' for a categorical",
    ),
    "range with an unknown bound": (
        _set("year", "range", {"minimum": 1960}),
        "year",
        "minimum",
        "no field 'minimum'",
    ),
    "table without its key variable": (_table_key, "effect_id", "effect_id", "field 'key'"),
    "both tables with one key": (_same_keys, "tables", "study_id, study_id", "a different key"),
    "a third table": (_third_table, "tables", "studies, effects, samples", "two tables"),
    "unknown parent table": (_unknown_parent, "tables.effects", "study", "field 'parent'"),
    "variable of an unknown table": (_unknown_table, "outcome", "effect", "field 'table'"),
    "requires names an unknown column": (_edit_requires, "es_input", "t_val", "field 'requires'"),
    "requires list entry is not a role (the mapping form is shown)": (
        _edit_requires,
        "es_input",
        "t_val",
        "a role of 't' (one of: t_value, n_int, n_ctl); to use your own column names write the "
        "mapping form, t: {t_value: <your column>, n_int: <your column>, n_ctl: <your column>}",
    ),
    "requires misses a role of the kind": (
        _requires_drop_role,
        "es_input",
        None,
        "field 'requires' (t): role n_ctl (every role of 't': t_value, n_int, n_ctl)",
    ),
    "requires maps a role the kind does not have": (
        _requires_wrong_role,
        "es_input",
        "f_value",
        "field 'requires' (t): a role of 't'",
    ),
    "requires maps a role to a column of another table": (
        _requires_other_table,
        "es_input",
        "year",
        "field 'requires' (t): a variable of table effects",
    ),
    "requires names an unknown kind": (
        _requires_unknown_level,
        "es_input",
        "chi2",
        "field 'requires': a kind of effect-size input (one of: means_sds,",
    ),
    "requires names an unknown level": (
        _requires_unknown_level,
        "es_input",
        "chi2",
        "field 'requires'",
    ),
    "higher_is_worse names an unknown level": (
        _set("outcome_domain", "higher_is_worse", ["stress"]),
        "outcome_domain",
        "stress",
        "field 'higher_is_worse'",
    ),
    "required is not a boolean": (
        _set("year", "required", "yes"),
        "year",
        "yes",
        "field 'required': true or false",
    ),
    "missing code equals a level": (
        _set("target_group", "missing", ["universal"]),
        "target_group",
        "universal",
        "field 'missing'",
    ),
    "unknown top-level field": (_unknown_top_field, "varaibles", "varaibles", "no field"),
    "field name missing": (_drop("year", "name"), "variables[2]", None, "field 'name'"),
}


@pytest.mark.parametrize("kind", list(BAD_CODEBOOKS))
def test_bad_codebook_names_file_variable_field_and_value(kind, raw, tmp_path):
    edit, column, value, expected = BAD_CODEBOOKS[kind]
    data = copy.deepcopy(raw)
    edit(data)
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_codebook(path)
    matches = [p for p in info.value.problems if p.column == column and expected in p.expected]
    assert matches, [p.message() for p in info.value.problems]
    problem = matches[0]
    assert problem.file == str(path)
    assert problem.value == value
    assert problem.row is not None  # the line in the codebook file
    assert problem.severity == "error"


def test_bad_codebook_reports_all_problems_at_once(raw):
    data = copy.deepcopy(raw)
    _set("year", "type", "integr")(data)
    _duplicate("design")(data)
    _set("outcome_domain", "higher_is_worse", ["stress"])(data)
    _edit_requires(data)
    _set("country", "colour", "blue")(data)
    with pytest.raises(InputError) as info:
        load_codebook(data)
    columns = {p.column for p in info.value.problems}
    assert {"year", "design", "outcome_domain", "es_input", "country"} <= columns
    # t_val is both not a role of 't' and not a variable: two problems
    assert [p.value for p in info.value.problems if p.column == "es_input"] == ["t_val", "t_val"]
    assert len(info.value.problems) == 6
    assert "6 problem(s)" in str(info.value)


def test_codebook_problem_row_is_the_line_of_the_field(raw, tmp_path):
    data = copy.deepcopy(raw)
    _set("design", "type", "categoricl")(data)
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    lines = path.read_text(encoding="utf-8").splitlines()
    with pytest.raises(InputError) as info:
        load_codebook(path)
    (problem,) = info.value.problems
    assert lines[problem.row - 1].strip() == "type: categoricl"


def test_a_key_written_twice_in_yaml_is_an_error(tmp_path):
    text = CODEBOOK.read_text(encoding="utf-8").replace(
        "    label: Publication year\n",
        "    label: Publication year\n    label: Year\n",
    )
    path = tmp_path / "codebook.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_codebook(path)
    (problem,) = info.value.problems
    assert (problem.column, problem.value, problem.check) == ("year", "label", "yaml_duplicate_key")


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text("tables:\n  studies: {key: study_id\nvariables: []\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_codebook(path)
    (problem,) = info.value.problems
    assert problem.check == "yaml_syntax" and problem.row is not None


def test_yes_and_no_stay_text_level_codes(tmp_path):
    text = """
tables:
  studies: {key: s}
  effects: {key: e, parent: studies}
variables:
  - {name: s, table: studies, type: id}
  - {name: e, table: effects, type: id}
  - name: published
    table: studies
    type: categorical
    levels: {yes: Published, no: Not published}
"""
    path = Path(tmp_path) / "cb.yaml"
    path.write_text(text, encoding="utf-8")
    cb = load_codebook(path)
    assert list(cb["published"].levels) == ["yes", "no"]
    assert cb["published"].parse("yes").state == "value"
