"""Tests of the simulated example literature (data/raw) and the assink2016 example data set.

There is no validator module yet, so the codebook checks here read the codebook YAML directly
(types, levels, ranges, missing codes, required, and each es_input's ``requires``).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from intervention_meta.__main__ import main
from intervention_meta.example.literature import (
    COMPONENTS,
    EFFECT_COLUMNS,
    ES_INPUTS,
    STUDY_COLUMNS,
    SimulatedLiterature,
    TrueModel,
    simulate_literature,
)

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"
ASSINK = ROOT / "data" / "examples" / "assink2016"
SEED = 20261125  # the seed in config/config.yaml and data/README.md
_INT = re.compile(r"^-?\d+$")


# ----------------------------------------------------------------------------- helpers
def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _codebook(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _codebook_problems(codebook: dict, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Everything in ``tables`` that breaks the codebook (an empty list when all is well)."""
    problems: list[str] = []
    variables = {v["name"]: v for v in codebook["variables"]}
    keys = {t: spec["key"] for t, spec in codebook["tables"].items()}
    for table, frame in tables.items():
        declared = [v for v in codebook["variables"] if v["table"] == table]
        allowed = {v["name"] for v in declared}
        parent = codebook["tables"][table].get("parent")
        if parent:
            allowed.add(keys[parent])
            known = set(tables[parent][keys[parent]])
            for k, value in enumerate(frame[keys[parent]]):
                if value not in known:
                    problems.append(f"{table} row {k}: parent {value!r} not in {parent}")
        if set(frame.columns) != allowed:
            problems.append(f"{table}: columns {sorted(set(frame.columns) ^ allowed)} differ")
        if not frame[keys[table]].is_unique:
            problems.append(f"{table}: key {keys[table]} not unique")
        for var in declared:
            name = var["name"]
            if name not in frame:
                continue
            missing = {str(m) for m in var.get("missing", [])}
            levels = {str(k) for k in var.get("levels", {})}
            rng = var.get("range", {})
            for k, value in enumerate(frame[name]):
                where = f"{table} row {k} {name}={value!r}"
                if value == "":
                    if var.get("required"):
                        problems.append(f"{where}: required")
                    continue
                if value in missing:
                    continue
                kind = var["type"]
                if kind in ("binary", "categorical", "ordinal"):
                    if value not in levels:
                        problems.append(f"{where}: not a level")
                elif kind in ("integer", "number"):
                    if kind == "integer" and not _INT.match(value):
                        problems.append(f"{where}: not an integer")
                        continue
                    try:
                        x = float(value)
                    except ValueError:
                        problems.append(f"{where}: not a number")
                        continue
                    if "min" in rng and (
                        x < rng["min"] or (rng.get("min_exclusive") and x == rng["min"])
                    ):
                        problems.append(f"{where}: below the range")
                    if "max" in rng and (
                        x > rng["max"] or (rng.get("max_exclusive") and x == rng["max"])
                    ):
                        problems.append(f"{where}: above the range")
        if "es_input" in frame:
            problems += _requires_problems(variables, frame)
    return problems


def _requires_problems(variables: dict, effects: pd.DataFrame) -> list[str]:
    """Each es_input level has its ``requires`` columns filled and the other statistics blank.

    Statistics that are not part of any level's requirements but belong to a form are allowed
    where the codebook asks for them: ``cluster_size``/``icc`` (cluster-randomised studies),
    ``r_prepost`` (prepost), ``n_int``/``n_ctl`` with a Cohen's d (``d_is_g = 0``, for the
    small-sample correction), ``stat_direction`` only with f/p (already required there).
    """
    requires = variables["es_input"]["requires"]
    statistics = {
        name
        for name, v in variables.items()
        if "statistic" in np.atleast_1d(v.get("role", [])) and name != "es_input"
    }
    problems = []
    for k, row in effects.iterrows():
        form = row["es_input"]
        needed = requires[form]
        filled = set()
        for entry in needed:
            options = entry if isinstance(entry, list) else [entry]
            present = [c for c in options if row.get(c, "") not in ("", "-99")]
            if not present:
                problems.append(f"row {k} ({form}): none of {options} filled")
            filled.update(options)
        extra = {"cluster_size", "icc"}
        if form == "prepost":
            extra.add("r_prepost")
        if form in ("d_se", "d_ci") and row.get("d_is_g") == "0":
            extra.update({"n_int", "n_ctl"})
        for col in sorted(statistics - filled - extra):
            if col in row and row[col] != "":
                problems.append(f"row {k} ({form}): {col}={row[col]!r} should be blank")
    return problems


def _g_from_reported(row: pd.Series) -> float:
    """Hedges' g (or d) from the reported statistics, in the benefit direction (test-only, simple).

    Textbook conversions (Borenstein et al. 2009, ch. 7; Morris 2008 for prepost; logit method
    for odds ratios); r uses equal group sizes. Tolerances in the test cover the rounding.
    """

    def j(n1: float, n2: float) -> float:
        return 1 - 3 / (4 * (n1 + n2 - 2) - 1)

    form = row["es_input"]
    f = {c: float(v) for c, v in row.items() if c in EFFECT_COLUMNS and _is_number(v)}
    n1, n2 = f.get("n_int"), f.get("n_ctl")
    if form == "means_sds":
        sp = math.sqrt(((n1 - 1) * f["sd_int"] ** 2 + (n2 - 1) * f["sd_ctl"] ** 2) / (n1 + n2 - 2))
        g = j(n1, n2) * (f["m_int"] - f["m_ctl"]) / sp
    elif form in ("t", "f", "p"):
        if form == "t":
            t = f["t_value"]
        elif form == "f":
            t = math.sqrt(f["f_value"]) * float(row["stat_direction"])
        else:
            from scipy import stats

            t = stats.t.isf(f["p_value"] / 2, n1 + n2 - 2) * float(row["stat_direction"])
        g = j(n1, n2) * t * math.sqrt(1 / n1 + 1 / n2)
    elif form in ("d_se", "d_ci"):
        g = f["d_value"] * (1.0 if row["d_is_g"] == "1" else j(n1, n2))
    elif form == "or_2x2":
        log_or = math.log(
            f["events_int"] * f["nonevents_ctl"] / (f["nonevents_int"] * f["events_ctl"])
        )
        g = log_or * math.sqrt(3) / math.pi
    elif form == "or_ci":
        g = math.log(f["or_value"]) * math.sqrt(3) / math.pi
    elif form == "r":
        r, n = f["r_value"], f["n_total"]
        g = j(n / 2, n / 2) * 2 * r / math.sqrt(1 - r * r)
    elif form == "prepost":
        sd_pre = math.sqrt(
            ((n1 - 1) * f["sd_int_pre"] ** 2 + (n2 - 1) * f["sd_ctl_pre"] ** 2) / (n1 + n2 - 2)
        )
        change = (f["m_int"] - f["m_int_pre"]) - (f["m_ctl"] - f["m_ctl_pre"])
        g = j(n1, n2) * change / sd_pre
    elif form == "yi_vi":
        g = f["yi"]
    else:  # pragma: no cover
        raise AssertionError(form)
    worse = row["outcome_domain"] == "parenting_stress" or row["higher_is_worse"] == "1"
    return -g if worse else g


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value != ""


@pytest.fixture(scope="module")
def raw() -> dict:
    return {
        "studies": _read(RAW / "studies.csv"),
        "effects": _read(RAW / "effects.csv"),
        "truth": yaml.safe_load((RAW / "truth.yaml").read_text(encoding="utf-8")),
    }


# ----------------------------------------------------------------------------- reproducibility
def test_committed_files_regenerate_byte_identical_from_the_seed(tmp_path: Path) -> None:
    assert main(["simulate", "--seed", str(SEED), "--out", str(tmp_path)]) == 0
    for name in ("studies.csv", "effects.csv", "truth.yaml"):
        assert (tmp_path / name).read_bytes() == (RAW / name).read_bytes(), name
        assert b"\r\n" not in (tmp_path / name).read_bytes()


def test_same_generator_state_gives_the_same_literature_and_another_seed_differs() -> None:
    a = simulate_literature(np.random.default_rng(7), n_studies=6)
    b = simulate_literature(np.random.default_rng(7), n_studies=6)
    c = simulate_literature(np.random.default_rng(8), n_studies=6)
    assert a.effects.equals(b.effects) and a.studies.equals(b.studies) and a.truth == b.truth
    assert not a.effects.equals(c.effects)


# ----------------------------------------------------------------------------- codebook
def test_simulated_files_pass_the_codebook(raw: dict) -> None:
    codebook = _codebook(ROOT / "data" / "codebook.yaml")
    tables = {"studies": raw["studies"], "effects": raw["effects"]}
    assert _codebook_problems(codebook, tables) == []


def test_column_order_follows_the_codebook(raw: dict) -> None:
    codebook = _codebook(ROOT / "data" / "codebook.yaml")
    for table, columns in (("studies", STUDY_COLUMNS), ("effects", EFFECT_COLUMNS)):
        names = [v["name"] for v in codebook["variables"] if v["table"] == table]
        assert [c for c in columns if c != "study_id" or table == "studies"] == names
        assert list(raw[table].columns) == list(columns)
    levels = next(v for v in codebook["variables"] if v["name"] == "es_input")["levels"]
    assert list(levels) == list(ES_INPUTS)


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_and_sizes_also_pass_the_codebook(seed: int) -> None:
    lit = simulate_literature(np.random.default_rng(seed), n_studies=12)
    codebook = _codebook(ROOT / "data" / "codebook.yaml")
    assert _codebook_problems(codebook, {"studies": lit.studies, "effects": lit.effects}) == []


# ----------------------------------------------------------------------------- content
def test_literature_has_the_promised_shape_and_features(raw: dict) -> None:
    studies, effects = raw["studies"], raw["effects"]
    assert len(studies) == 30
    per_study = effects.groupby("study_id").size()
    assert per_study.min() >= 1 and per_study.max() <= 8
    assert 100 <= len(effects) <= 145
    assert set(effects["es_input"]) == set(ES_INPUTS)  # every reporting form occurs
    assert (effects["es_input"] == "means_sds").mean() > 0.35  # mostly means and SDs
    prepost = effects[effects["es_input"] == "prepost"]
    assert (prepost["r_prepost"] != "").any() and (prepost["r_prepost"] == "").any()
    flipped = effects[effects["higher_is_worse"] == "1"]
    assert len(flipped) >= 1 and (flipped["outcome_domain"] != "parenting_stress").all()
    assert (effects["informant"] == "-99").any() and (effects["followup_months"] == "-99").any()
    coded_missing = (studies[list(COMPONENTS)] == "-99").sum().sum()
    assert 1 <= coded_missing <= 2
    cluster = studies.loc[studies["cluster_randomised"] == "1", "study_id"]
    assert 2 <= len(cluster) <= 6
    rows = effects[effects["study_id"].isin(cluster)]
    assert (rows["cluster_size"] != "").all() and (rows["icc"] != "").any()
    n = pd.to_numeric(pd.concat([effects["n_int"], effects["n_ctl"]]), errors="coerce").dropna()
    assert n.min() >= 25 and n.max() <= 250
    profiles = studies[list(COMPONENTS)].agg("".join, axis=1)
    assert profiles.nunique() >= 10  # several component profiles


def test_data_are_marked_as_simulated(raw: dict) -> None:
    assert raw["studies"]["citation"].str.match(r"^Simulated study \d\d \(\d{4}\)$").all()
    assert raw["truth"]["simulated"] is True
    assert (RAW / "truth.yaml").read_text().startswith("# SIMULATED DATA -- NOT REAL STUDIES.")
    assert "SIMULATED" in (ROOT / "data" / "README.md").read_text()


def test_truth_matches_the_model_and_the_coded_files(raw: dict) -> None:
    truth, studies, effects = raw["truth"], raw["studies"], raw["effects"]
    model = truth["model"]
    assert model == {**model, **TrueModel().to_dict()}
    assert model["components"]["joint_effort"] == 0.25
    assert list(truth["effects"]) == list(effects["es_id"])
    assert list(truth["studies"]) == list(studies["study_id"])
    for _, s in studies.iterrows():
        t = truth["studies"][s["study_id"]]
        for c in COMPONENTS:
            assert s[c] in (str(t["components"][c]), "-99")
        mu = model["intercept"] + sum(
            model["components"][c] * t["components"][c] for c in COMPONENTS
        )
        assert t["mu"] == pytest.approx(mu + t["u"], abs=2e-6)
    w = [e["delta"] - truth["studies"][e["study_id"]]["mu"] for e in truth["effects"].values()]
    assert abs(np.mean(w)) < 0.05 and np.var(w) < 0.05


def test_reported_statistics_reproduce_the_simulated_estimates_in_the_benefit_direction(
    raw: dict,
) -> None:
    # the internal g (truth.yaml, unrounded, benefit direction) against textbook conversions of
    # the rounded reported numbers; 0.015 covers the rounding (largest seen: 0.011, means to 2
    # decimals on a scale with SD 0.6) and the equal-n rule for r
    truth = raw["truth"]["effects"]
    for _, row in raw["effects"].iterrows():
        expected = truth[row["es_id"]]["g"]
        assert _g_from_reported(row) == pytest.approx(expected, abs=0.015), row["es_id"]


def test_simulated_estimates_scatter_around_the_truth_as_their_variances_say(raw: dict) -> None:
    e = pd.DataFrame(raw["truth"]["effects"]).T
    z = (e["g"] - e["delta"]) / np.sqrt(e["v"].astype(float))
    assert abs(z.mean()) < 0.35 and 0.7 < z.std() < 1.3  # ~130 draws of N(0, 1)


def test_to_frame_gives_one_row_per_effect_with_truth() -> None:
    lit = simulate_literature(np.random.default_rng(3), n_studies=5)
    assert isinstance(lit, SimulatedLiterature)
    frame = lit.to_frame()
    assert list(frame["es_id"]) == list(lit.effects["es_id"])
    assert {"delta", "g", "v", "u", *COMPONENTS} <= set(frame.columns)
    assert set(lit.to_dict()) == {"studies", "effects", "truth"}


# ----------------------------------------------------------------------------- assink2016
def test_assink2016_split_rejoins_to_the_reference_exactly() -> None:
    with (ROOT / "tests" / "reference" / "assink2016.csv").open(newline="") as fh:
        reference = list(csv.DictReader(fh))
    studies = _read(ASSINK / "studies.csv")
    effects = _read(ASSINK / "effects.csv")
    assert list(studies["study"]) == [str(s) for s in range(1, 18)]
    assert len(effects) == len(reference) == 100
    pub = dict(zip(studies["study"], studies["pubstatus"], strict=True))
    for ref, (_, row) in zip(reference, effects.iterrows(), strict=True):
        rejoined = {c: row[c] for c in ("study", "esid", "id", "yi", "vi", "year", "deltype")}
        rejoined["pubstatus"] = pub[row["study"]]
        assert rejoined == ref
        assert row["es_input"] == "yi_vi"


def test_assink2016_files_pass_their_codebook() -> None:
    codebook = _codebook(ASSINK / "codebook.yaml")
    tables = {"studies": _read(ASSINK / "studies.csv"), "effects": _read(ASSINK / "effects.csv")}
    assert _codebook_problems(codebook, tables) == []
    assert codebook["tables"] == {
        "studies": {"key": "study"},
        "effects": {"key": "id", "parent": "studies"},
    }


def test_assink2016_config_has_the_same_keys_as_the_default_config() -> None:
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config = yaml.safe_load((ROOT / "config" / "assink2016.yaml").read_text())
    assert set(config) == set(default)
    assert set(config["effect_sizes"]) == set(default["effect_sizes"])
    assert config["analysis"] == "assink2016" and config["inclusion"] == {}
    for path in (config["codebook"], *config["data"].values()):
        assert (ROOT / path).is_file()
