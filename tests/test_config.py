"""The pipeline config: the shipped config passes (also Snakemake's validate), defaults, typos."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import REPO

from intervention_meta.config import default_config_schema, load_config
from intervention_meta.errors import InputError

CONFIG = REPO / "config" / "config.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SECTIONS = ("models", "moderators", "components", "bias", "sensitivity", "figures", "report")
# sections whose options are not defined yet (open for a later stage)
OPEN_SECTIONS = ()


@pytest.fixture(scope="module")
def shipped() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


def test_shipped_config_loads(shipped):
    config = load_config(CONFIG)
    assert config["analysis"] == "example"
    assert config["inclusion"]["design"] == ["rct", "quasi", "prepost"]
    assert config["effect_sizes"] == {
        "r_prepost_default": 0.5,
        "icc_default": 0.05,
        "cluster_size_default": 20,
        "measure": "SMD",
        "measure_name": None,
        "convert": ["OR", "COR"],
        "direction": "positive = benefit: the intervention group did better (scales where "
        "higher is worse are sign-flipped)",
        "direction_by": {},
    }
    assert all(config[s] == {} for s in OPEN_SECTIONS)
    # the analysis sections come with every option filled in (defaults from the schema)
    assert config["models"]["structure"] == "three_level"
    assert config["moderators"]["min_studies"] == 3
    assert config["sensitivity"]["estimators"] == ["FE", "DL", "REML", "ML", "PM"]
    assert default_config_schema() == SCHEMA


def test_snakemake_validate_accepts_the_shipped_config_and_fills_the_same_defaults(shipped):
    from snakemake.utils import validate

    config = copy.deepcopy(shipped)
    validate(config, str(SCHEMA))
    assert config == load_config(shipped)


def test_defaults_fill_an_empty_config_without_changing_the_input():
    given: dict = {"effect_sizes": {"icc_default": 0.1}}
    config = load_config(given)
    assert given == {"effect_sizes": {"icc_default": 0.1}}
    assert config["effect_sizes"] == {
        "icc_default": 0.1,
        "r_prepost_default": 0.5,
        "cluster_size_default": 20,
        "measure": "SMD",
        "measure_name": None,
        "convert": [],
        "direction": None,
        "direction_by": {},
    }
    assert config["data"] == {"studies": "data/raw/studies.csv", "effects": "data/raw/effects.csv"}
    assert config["inclusion"] == {} and config["seed"] >= 0


def _every_property(schema: dict, path: str = ""):
    for name, sub in (schema.get("properties") or {}).items():
        yield f"{path}{name}", sub
        yield from _every_property(sub, f"{path}{name}.")


def test_every_option_is_described_and_has_a_default():
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for name, sub in _every_property(schema):
        assert sub.get("description"), name
        assert "default" in sub, name
        if sub.get("type") == "object" and name.split(".")[0] not in OPEN_SECTIONS:
            assert "additionalProperties" in sub, name
    for section in SECTIONS:
        expected = section in OPEN_SECTIONS  # defined sections reject typos
        assert schema["properties"][section]["additionalProperties"] is expected


BAD_CONFIGS = {
    "typo at the top level": ({"analyis": "x"}, "analyis", "analyis", "no field 'analyis'"),
    "typo in a section": (
        {"effect_sizes": {"icc_defualt": 0.1}},
        "effect_sizes.icc_defualt",
        "icc_defualt",
        "no field",
    ),
    "typo in data": ({"data": {"effect": "e.csv"}}, "data.effect", "effect", "no field"),
    "analysis name with a space": (
        {"analysis": "my run"},
        "analysis",
        "my run",
        "a text matching",
    ),
    "seed as text": ({"seed": "abc"}, "seed", "abc", "an integer"),
    "negative seed": ({"seed": -1}, "seed", -1, "a number >= 0"),
    "pre-post correlation of 1": (
        {"effect_sizes": {"r_prepost_default": 1}},
        "effect_sizes.r_prepost_default",
        1,
        "a number < 1",
    ),
    "unknown effect measure": (
        {"effect_sizes": {"measure": "HR"}},
        "effect_sizes.measure",
        "HR",
        "one of",
    ),
    "icc above 1": (
        {"effect_sizes": {"icc_default": 1.5}},
        "effect_sizes.icc_default",
        1.5,
        "a number <= 1",
    ),
    "cluster size below 1": (
        {"effect_sizes": {"cluster_size_default": 0.5}},
        "effect_sizes.cluster_size_default",
        0.5,
        "a number >= 1",
    ),
    "inclusion as a single code": (
        {"inclusion": {"design": "rct"}},
        "inclusion.design",
        "rct",
        "a list",
    ),
    "inclusion with an unknown bound": (
        {"inclusion": {"year": {"min": 2000, "maxi": 2020}}},
        "inclusion.year.maxi",
        "maxi",
        "no field",
    ),
    "inclusion with an empty list": (
        {"inclusion": {"design": []}},
        "inclusion.design",
        [],
        "a list",
    ),
    "data path as a number": ({"data": {"studies": 5}}, "data.studies", 5, "a text"),
    "section that is not a mapping": ({"models": [1, 2]}, "models", [1, 2], "a mapping"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_names_file_key_path_and_value(case, shipped, tmp_path):
    change, column, value, expected = BAD_CONFIGS[case]
    config = copy.deepcopy(shipped)
    for key, sub in change.items():
        if isinstance(sub, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **sub}
        else:
            config[key] = sub
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    problems = [p for p in info.value.problems if p.column == column]
    assert problems, [p.message() for p in info.value.problems]
    (problem,) = problems
    assert problem.file == str(path)
    assert problem.value == value
    assert expected in problem.expected
    lines = path.read_text(encoding="utf-8").splitlines()
    assert column.split(".")[-1] in lines[problem.row - 1]  # the line of the offending key


def test_all_config_problems_are_reported_at_once():
    with pytest.raises(InputError) as info:
        load_config({"analyis": "x", "seed": "s", "effect_sizes": {"icc_default": 2}})
    assert {p.column for p in info.value.problems} == {
        "analyis",
        "seed",
        "effect_sizes.icc_default",
    }
    assert all(p.file == "<config>" for p in info.value.problems)


def test_option_written_twice_is_an_error(tmp_path):
    path = Path(tmp_path) / "config.yaml"
    path.write_text("analysis: a\nseed: 1\nseed: 2\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert (problem.row, problem.column, problem.check) == (3, "seed", "yaml_duplicate_key")


@pytest.mark.parametrize(
    ("text", "check"), [("analysis: [unclosed\n", "yaml_syntax"), ("- a\n- b\n", "config")]
)
def test_config_that_is_not_a_mapping_of_options_is_an_error(tmp_path, text, check):
    path = Path(tmp_path) / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.problems[0].check == check
    assert info.value.problems[0].file == str(path)
