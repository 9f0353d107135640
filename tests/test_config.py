"""The pipeline config: the shipped config passes (also Snakemake's validate), defaults, typos."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import REPO

from intervention_meta.config import (
    check_config,
    check_references,
    default_config_schema,
    load_config,
)
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


def _write_config(tmp_path, shipped: dict, **sections) -> Path:
    """The shipped config with ``sections`` merged in, written to tmp_path (data files and the
    codebook made absolute, so the check runs from any folder)."""
    config = copy.deepcopy(shipped)
    config["codebook"] = str(REPO / config["codebook"])
    config["data"] = {k: str(REPO / v) for k, v in config["data"].items()}
    config["reliability"] = {"studies": str(REPO / config["reliability"]["studies"])}
    for key, sub in sections.items():
        if isinstance(sub, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **sub}
        else:
            config[key] = sub
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


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
    path = _write_config(tmp_path, shipped, **change)
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


# --------------------------------------------------------------------------- start-up check
@pytest.mark.parametrize("name", ["config.yaml", "assink2016.yaml"])
def test_shipped_configs_refer_to_what_exists(name, monkeypatch):
    monkeypatch.chdir(REPO)
    path = Path("config") / name
    config = load_config(path)
    assert check_references(config, file=path) == []
    given = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert check_config(given, [path]) == []
    assert given == config  # the defaults are filled in in place, as load_config fills them


# data/codebook.yaml has year (integer), design (categorical), citation (text), joint_effort
# (binary), es_id (id). Per case: the key path faulted, the option's value, the value faulted
# and words of `expected`.
BAD_REFERENCES = [
    ("moderators.multiple.1", ["year", "joint_efort"], "joint_efort", ["mean 'joint_effort'?"]),
    ("moderators.multiple.0", ["citation"], "citation", ["citation has type text", "or number"]),
    ("moderators.multiple.2", ["year", "design", "year"], "year", ["each variable once"]),
    ("moderators.exclude.0", ["citation"], "citation", ["a moderator", "role descriptor"]),
    ("components.variables.1", ["joint_effort", "design"], "design", ["a binary", "categorical"]),
    ("inclusion.desgin", ["rct"], "desgin", ["a codebook variable", "did you mean 'design'?"]),
    ("inclusion.design", ["rct", "RTC"], "RTC", ["one of: rct, quasi, prepost"]),
    ("inclusion.design", {"min": 1}, {"min": 1}, ["min/max only for numbers"]),
    ("data.effects", "data/raw/effect.csv", "data/raw/effect.csv", ["an existing file"]),
    ("reliability.studies", "coder2.csv", "coder2.csv", ["an existing file"]),
]


@pytest.mark.parametrize(("column", "given", "value", "words"), BAD_REFERENCES)
def test_config_naming_what_does_not_exist_is_an_error_naming_key_value_and_choices(
    column, given, value, words, shipped, tmp_path
):
    section, option = column.rstrip(".0123456789").split(".")
    path = _write_config(tmp_path, shipped, **{section: {option: given}})
    config = load_config(path)  # the schema is satisfied: the cross-reference is the problem
    with pytest.raises(InputError) as info:
        check_references(config, file=path)
    (problem,) = info.value.problems
    assert (problem.file, problem.column, problem.value) == (str(path), column, value)
    for word in words:
        assert word in problem.expected, problem.expected
    line = path.read_text(encoding="utf-8").splitlines()[problem.row - 1]
    assert option in line or str(value) in line  # the line of the key (or of the list entry)


def test_models_levels_are_grouping_columns_of_the_data(shipped):
    config = load_config(shipped)
    config["models"]["levels"] = ["study_id", "sample_id", "es_id"]
    with pytest.raises(InputError) as info:
        check_references(config)
    (problem,) = info.value.problems
    assert (problem.column, problem.value) == ("models.levels", "sample_id")
    assert "a column of the effect sizes or a studies variable" in problem.expected
    assert "outcome_domain" in problem.expected  # an effects variable it could group by
    config["models"]["levels"] = ["study_id", "outcome_domain", "es_id"]
    assert check_references(config) == []


def test_direction_by_names_levels_of_the_domain_variable(shipped):
    config = load_config(shipped)
    config["effect_sizes"]["direction_by"] = {
        "parenting_stress": "positive = less stress",
        "parenting_strss": "positive = ?",
    }
    with pytest.raises(InputError) as info:
        check_references(config)
    (problem,) = info.value.problems
    assert (problem.column, problem.value) == (
        "effect_sizes.direction_by.parenting_strss",
        "parenting_strss",
    )
    assert "a level of outcome_domain" in problem.expected
    assert "parenting_stress" in problem.expected
    del config["effect_sizes"]["direction_by"]["parenting_strss"]
    assert check_references(config) == []
    config["models"]["domain_variable"] = "year"
    with pytest.raises(InputError) as info:
        check_references(config)
    assert any("'year' is not a variable with levels" in p.expected for p in info.value.problems)


def test_a_per_domain_variable_without_levels_is_a_warning(shipped):
    # the run goes on without the per-domain analyses and flags it (rule overall)
    config = load_config(shipped)
    config["models"].update(per_domain=True, domain_variable="year")
    (warning,) = check_references(config)
    assert (warning.severity, warning.column, warning.value) == (
        "warning",
        "models.domain_variable",
        "year",
    )
    assert "year has type integer" in warning.expected and "design, " in warning.expected
    config["models"]["per_domain"] = False
    assert check_references(config) == []


def test_a_codebook_that_does_not_load_is_named_with_its_own_problems(shipped, tmp_path):
    codebook = tmp_path / "codebook.yaml"
    codebook.write_text("tables: {}\nvariables: []\nextra: 1\n", encoding="utf-8")
    config = load_config(shipped)
    config["codebook"] = str(codebook)
    with pytest.raises(InputError) as info:
        check_references(config)
    assert info.value.problems and {p.file for p in info.value.problems} == {str(codebook)}
    config["codebook"] = str(tmp_path / "none.yaml")
    with pytest.raises(InputError) as info:
        check_references(config)
    (problem,) = info.value.problems
    assert (problem.column, problem.expected) == ("codebook", "an existing file")


def test_start_up_check_reports_schema_and_references_at_once_one_short_line_each(
    shipped, tmp_path
):
    path = _write_config(
        tmp_path,
        shipped,
        models={"method": "REMl"},
        moderators={"multiple": ["design", "childcare"]},
        inclusion={"design": ["rct"], "year": {"min": 2000, "mx": 2020}},
    )
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    with pytest.raises(InputError) as info:
        check_config(config, [path])
    lines = info.value.short().splitlines()
    assert lines[0] == f"config {path}: 3 problem(s); nothing run"
    text = path.read_text(encoding="utf-8").splitlines()
    row = {key: next(i for i, t in enumerate(text, 1) if t.strip().startswith(key)) for key in (
        "method:", "mx:", "- childcare"
    )}  # fmt: skip
    assert lines[1:] == [  # in the order of the file
        f"  {path}:{row['mx:']}: inclusion.year.mx = 'mx': expected no field 'mx' "
        "(unknown; known: min, max)",
        f"  {path}:{row['method:']}: models.method = 'REMl': expected one of: REML, ML",
        f"  {path}:{row['- childcare']}: moderators.multiple.1 = 'childcare': expected a "
        "variable a model can use (binary, categorical, ordinal, integer or number); in "
        f"{REPO / 'data' / 'codebook.yaml'}: year, design, cluster_randomised, target_group, "
        "setting, joint_effort, positive_content_view, parent_meetings, co_production, "
        "professional_led and 45 more",
    ]


def test_start_up_check_names_the_config_file_that_sets_the_key(shipped, tmp_path):
    first = _write_config(tmp_path, shipped)
    second = tmp_path / "second.yaml"
    second.write_text("analysis: other\nmoderators:\n  exclude: [nothing]\n", encoding="utf-8")
    config = yaml.safe_load(first.read_text(encoding="utf-8"))
    config["analysis"] = "other"
    config["moderators"]["exclude"] = ["nothing"]  # as Snakemake merges the two files
    with pytest.raises(InputError) as info:
        check_config(config, [first, second])
    (problem,) = info.value.errors
    assert (problem.file, problem.row, problem.column) == (str(second), 3, "moderators.exclude.0")


def test_command_line_with_a_bad_config_names_every_problem_and_runs_nothing(
    shipped, tmp_path, capsys
):
    from intervention_meta.__main__ import main

    path = _write_config(
        tmp_path, shipped, moderators={"multiple": ["nope"]}, components={"variables": ["year"]}
    )
    out = tmp_path / "out"
    assert main(["validate", "--config", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "moderators.multiple.0 = 'nope'" in err and "components.variables.0 = 'year'" in err
    assert not out.exists()


@pytest.mark.pipeline
def test_pipeline_with_three_config_errors_says_so_in_three_short_lines(shipped, tmp_path):
    from pipeline_helpers import copy_project, run_snakemake

    work = copy_project(tmp_path)
    config = copy.deepcopy(shipped)
    config["models"]["method"] = "REMl"  # not an estimator
    config["inclusion"]["design"] = ["rct", "cluster"]  # not a level of design
    config["moderators"] = {"multiple": ["joint_effort", "childcare"]}  # not in the codebook
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = run_snakemake(work, "-n", "--configfile", "config/bad.yaml")
    assert proc.returncode != 0
    output = (proc.stdout + proc.stderr).strip().splitlines()
    problems = [line.strip() for line in output if line.startswith("  config/bad.yaml:")]
    assert len(problems) == 3, output
    assert any("models.method = 'REMl': expected one of: REML, ML" in p for p in problems)
    assert any("inclusion.design = 'cluster': expected one of: rct, quasi" in p for p in problems)
    assert any("moderators.multiple.1 = 'childcare'" in p for p in problems)
    assert len(output) <= 6, output  # no schema dump, no traceback
    assert all(len(line) < 400 for line in output)
    assert "properties" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (work / "results" / "example").exists()  # nothing ran
