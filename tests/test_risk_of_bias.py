"""Risk of bias: the RoB 2 / ROBINS-I codebook templates, the config section and its start-up
check, the example's domain columns, the robvis-style figures, the restricted sensitivity analyses
and the report's section (and its absence for a data set without a risk-of-bias assessment).

Expected values: the restricted fits are compared with a direct fit of the same subset through the
analysis-model function (:func:`intervention_meta.analyses.analysis_model.fit_model`); the RoB 2
overall algorithm is Sterne et al. (2019, BMJ 366:l4898): any domain high -> high, all low -> low,
otherwise some concerns.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

from intervention_meta.analyses import analysis_model as am
from intervention_meta.analyses.flags import Flags
from intervention_meta.analyses.moderators import analyse_moderator
from intervention_meta.analyses.sensitivity import restrict_risk_of_bias, sensitivity_analysis
from intervention_meta.config import check_references
from intervention_meta.data.codebook import load_codebook
from intervention_meta.data.risk_of_bias import PALETTES, TOOLS, RiskOfBiasSpec
from intervention_meta.data.risk_of_bias import risk_of_bias_problems as problems_of
from intervention_meta.data.validation import validate
from intervention_meta.errors import InputError
from intervention_meta.example.literature import ROB2_DOMAINS, rob2_overall
from intervention_meta.plots import risk_of_bias as rob_plots

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "data" / "templates"
CODEBOOK = REPO / "data" / "codebook.yaml"
CONFIG = REPO / "config" / "config.yaml"


def _template(tool: str) -> list[dict]:
    return yaml.safe_load((TEMPLATES / f"{tool}.yaml").read_text(encoding="utf-8"))


def _codebook_with(tool: str, table: str = "studies") -> dict:
    """The example codebook with its risk-of-bias variables replaced by the template's, in
    ``table`` (studies: per study; effects: per result)."""
    cb = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    entries = copy.deepcopy(_template(tool))
    names = {e["name"] for e in entries}
    drop = names | set(ROB2_DOMAINS)
    cb["variables"] = [v for v in cb["variables"] if v["name"] not in drop]
    for e in entries:
        e["table"] = table
    cb["variables"] += entries
    return cb


def _spec(tool: str, **changes) -> dict:
    entries = _template(tool)
    section = {
        "tool": tool,
        "overall": "risk_of_bias",
        "low": [1],
        "high": [3] if tool == "rob2" else [3, 4],
        "domains": [e["name"] for e in entries if e["name"] != "risk_of_bias"],
    }
    return section | changes


# --------------------------------------------------------------------------- templates
@pytest.mark.parametrize("tool, n_domains, n_levels", [("rob2", 5, 3), ("robins_i", 7, 5)])
def test_templates_have_the_tools_domains_and_judgement_levels(tool, n_domains, n_levels):
    entries = _template(tool)
    domains = [e for e in entries if e["role"] == "descriptor"]
    assert [e["label"] for e in domains] == list(TOOLS[tool].domains)
    assert len(domains) == n_domains
    assert all(e["type"] == "ordinal" and len(e["levels"]) == n_levels for e in entries)
    overall = next(e for e in entries if e["name"] == "risk_of_bias")
    assert overall["role"] == "moderator"
    # the level labels are the tool's scale, in its order
    names = {"low": "Low", "some_concerns": "Some concerns", "moderate": "Moderate",
             "high": "High", "serious": "Serious", "critical": "Critical",
             "no_information": "No information"}  # fmt: skip
    assert list(overall["levels"].values()) == [names[j] for j in TOOLS[tool].scale]


def _write_with_judgements(pair, table: str, values: dict[str, list[str]]) -> None:
    """The pair's risk-of-bias columns replaced by ``values``, in ``table``."""
    for name in ["risk_of_bias", *ROB2_DOMAINS]:
        pair.drop_column("studies", name)
    for name, column in values.items():
        pair.add_column(table, name, column)


@pytest.mark.parametrize("tool", ["rob2", "robins_i"])
@pytest.mark.parametrize("table", ["studies", "effects"])
def test_templates_validate_per_study_and_per_result(pair, tool, table):
    cb = load_codebook(_codebook_with(tool, table))
    names = [e["name"] for e in _template(tool)]
    n = len(pair.rows(table)) - 1
    codes = [str(1 + i % len(_template(tool)[0]["levels"])) for i in range(n)]
    _write_with_judgements(pair, table, {name: codes for name in names})
    report = validate(cb, pair.studies, pair.effects)
    assert report.ok, [p.message() for p in report.errors]
    assert not report.warnings, [p.message() for p in report.warnings]


@pytest.mark.parametrize("table", ["studies", "effects"])
def test_a_judgement_code_that_is_not_a_level_is_a_named_error(pair, table):
    cb = load_codebook(_codebook_with("rob2", table))
    names = [e["name"] for e in _template("rob2")]
    n = len(pair.rows(table)) - 1
    values = {name: ["1"] * n for name in names}
    values["rob_d3_missing_data"] = ["1", "7"] + ["2"] * (n - 2)
    values["risk_of_bias"] = ["1", "2", "", *["3"] * (n - 3)]  # required: a blank is an error
    _write_with_judgements(pair, table, values)
    report = validate(cb, pair.studies, pair.effects)
    errors = {(p.column, p.row, p.value) for p in report.errors}
    assert ("rob_d3_missing_data", 3, "7") in errors  # spreadsheet row: header is row 1
    assert any(c == "risk_of_bias" and r == 4 for c, r, _ in errors)
    bad = next(p for p in report.errors if p.column == "rob_d3_missing_data")
    assert bad.file.endswith(f"{table}.csv") and "1" in bad.expected and "3" in bad.expected


# --------------------------------------------------------------------------- config check
def test_the_example_config_and_codebook_pass_the_start_up_check():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert problems_of(load_codebook(CODEBOOK), config["risk_of_bias"]) == []


def test_an_absent_section_is_not_checked_and_means_no_risk_of_bias():
    cb = load_codebook(CODEBOOK)
    assert problems_of(cb, None) == [] and RiskOfBiasSpec.from_config(None) is None
    assert RiskOfBiasSpec.from_config({}) is None


def test_start_up_check_names_every_problem_of_the_section(tmp_path):
    cb = load_codebook(CODEBOOK)
    bad = _spec("rob2", low=[1, 9], high=[1], domains=["rob_d1_randomisation", "year", "nope"])
    problems = {p.column: p for p in problems_of(cb, bad, "config.yaml")}
    assert set(problems) == {
        "risk_of_bias.low.1",
        "risk_of_bias.high",
        "risk_of_bias.domains.1",
        "risk_of_bias.domains.2",
    }
    assert "a level of risk_of_bias (one of: 1, 2, 3)" in problems["risk_of_bias.low.1"].expected
    # ROBINS-I reads 4 or 5 levels: the example's 3-level variables do not fit its scale
    robins = problems_of(cb, _spec("rob2") | {"tool": "robins_i"})
    assert {p.column for p in robins} == {
        "risk_of_bias.overall",
        *(f"risk_of_bias.domains.{i}" for i in range(5)),
    }
    assert all("ROBINS-I" in p.expected for p in robins)
    # and the workflow's check of the config reports them with the other references
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8")) | {"risk_of_bias": bad}
    with pytest.raises(InputError) as err:
        check_references(config, cb, workdir=REPO)
    assert any(p.check == "risk_of_bias" for p in err.value.problems)


def test_schema_defaults_fill_a_short_section():
    from intervention_meta.config import check_config

    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["risk_of_bias"] = {"overall": "risk_of_bias"}
    check_config(config, [str(CONFIG)], workdir=REPO)
    assert config["risk_of_bias"] == {
        "overall": "risk_of_bias",
        "tool": "rob2",
        "low": [1],
        "high": [3],
        "domains": [],
        "palette": "cochrane",
    }
    # absent: the defaults leave overall empty, which means no risk-of-bias assessment
    del config["risk_of_bias"]
    check_config(config, [str(CONFIG)], workdir=REPO)
    assert config["risk_of_bias"]["overall"] == ""
    assert RiskOfBiasSpec.from_config(config["risk_of_bias"]) is None


# --------------------------------------------------------------------------- example data
def test_example_overall_judgement_follows_the_rob2_algorithm_from_the_domains():
    studies = pd.read_csv(REPO / "data" / "raw" / "studies.csv", dtype=str)
    domains = studies[list(ROB2_DOMAINS)].astype(int).to_numpy()
    assert (rob2_overall(domains) == studies["risk_of_bias"].astype(int).to_numpy()).all()
    # every judgement occurs, and a high overall has a high domain (not only concerns)
    assert set(np.unique(domains)) == {1, 2, 3}
    assert rob2_overall(np.array([[1, 1, 1, 1, 1], [1, 2, 1, 2, 1], [2, 3, 1, 1, 2]])).tolist() == [
        1,
        2,
        3,
    ]


def test_domain_variables_are_not_moderators():
    cb = load_codebook(CODEBOOK)
    moderators = {v.name for v in cb.with_role("moderator")}
    assert "risk_of_bias" in moderators
    assert not moderators & set(ROB2_DOMAINS)
    assert all(cb[name].type == "ordinal" for name in ROB2_DOMAINS)


# --------------------------------------------------------------------------- synthetic data
def _synthetic(per_result: bool, seed: int = 7) -> tuple[am.AnalysisData, RiskOfBiasSpec]:
    """12 studies with 3 effect sizes each; RoB 2 judgements per study or per result."""
    rng = np.random.default_rng(seed)
    cb = load_codebook(_codebook_with("rob2", "effects" if per_result else "studies"))
    rows = []
    for j in range(12):
        overall = 1 + j % 3
        u = rng.normal(0, 0.1)
        for i in range(3):
            code = 1 + (j + i) % 3 if per_result else overall
            domains = [code] + [1] * 4 if code != 2 else [1, 2, 1, 1, 1]
            rows.append(
                {
                    "study_id": f"T{j + 1:02d}",
                    "es_id": f"T{j + 1:02d}-{i + 1}",
                    "yi": 0.3 + u + rng.normal(0, 0.1) - 0.05 * code,
                    "vi": rng.uniform(0.01, 0.05),
                    "risk_of_bias": code,
                    **dict(zip(_spec("rob2")["domains"], domains, strict=True)),
                }
            )
    data = pd.DataFrame(rows)
    ad = am.AnalysisData(data, cb, "study_id", "es_id")
    return ad, RiskOfBiasSpec.from_config(_spec("rob2"))


@pytest.mark.parametrize("per_result", [False, True])
def test_restricted_fits_equal_a_direct_fit_of_the_subset(per_result):
    ad, spec = _synthetic(per_result)
    model = am.ModelSpec()
    call = am.model_call(ad, model)
    restricted = restrict_risk_of_bias(ad.data, call, spec, ad.codebook, ad.study)
    assert [r.key for r in restricted] == ["low", "not_high"]
    for r, keep in zip(restricted, ([1], [1, 2]), strict=True):
        subset = ad.data[ad.data["risk_of_bias"].isin(keep)]
        direct = am.fit_model(ad, model, data=subset)
        assert r.k == len(subset) and r.n_studies == subset["study_id"].nunique()
        assert r.result["estimate"] == pytest.approx(float(direct.b[0]), abs=1e-10)
        assert r.result["se"] == pytest.approx(float(direct.se[0]), abs=1e-10)
        assert r.result["ci_lb"] == pytest.approx(float(direct.ci_lb[0]), abs=1e-10)
        assert r.result["ci_ub"] == pytest.approx(float(direct.ci_ub[0]), abs=1e-10)
    if per_result:  # judged per result: a study can be in a subset with some of its rows only
        assert restricted[0].k < 3 * restricted[0].n_studies


def test_a_subset_too_small_is_not_fitted_but_flagged_in_the_summary():
    ad, spec = _synthetic(False)
    spec = RiskOfBiasSpec.from_config(_spec("rob2", low=[1], high=[2, 3]))
    ad = am.AnalysisData(ad.data[ad.data["study_id"] < "T06"], ad.codebook, ad.study, ad.es)
    flags = Flags("sensitivity")
    result = sensitivity_analysis(ad, am.ModelSpec(), flags=flags, risk_of_bias=spec)
    rows = [r for r in result.summary_table().rows if r["kind"] == "risk_of_bias"]
    assert len(rows) == 2
    assert rows[0]["estimate"] is None and rows[0]["n_studies"] == 2
    assert "fewer than 3" in rows[0]["note"]
    assert any("risk of bias: only low risk of bias" in line for line in flags.lines)
    as_json = result.to_dict()["risk_of_bias"]
    assert as_json[0]["error"] and as_json[0]["result"] is None


@pytest.mark.parametrize("per_result", [False, True])
def test_overall_judgement_is_a_moderator_per_study_or_per_result(per_result):
    ad, _ = _synthetic(per_result)
    res = analyse_moderator(ad, "risk_of_bias", am.ModelSpec())
    means = [r for r in res.to_dict()["rows"] if r["term"] == "mean"]
    assert [r["code"] for r in means] == ["1", "2", "3"]
    assert sum(r["k"] for r in means) == len(ad.data)
    assert res.to_dict()["table"] == ("effects" if per_result else "studies")
    assert res.to_dict()["test"]["stat"] is not None


@pytest.mark.parametrize("per_result", [False, True])
def test_traffic_light_has_one_row_per_study_or_result(per_result):
    ad, spec = _synthetic(per_result)
    rob = rob_plots.risk_of_bias_data(ad.data, ad.codebook, spec, study=ad.study, es=ad.es)
    n = len(ad.data) if per_result else ad.n_studies
    assert rob.n_units == n and rob.per_result is per_result
    assert rob.columns == (*spec.domains, "risk_of_bias")
    assert [rob.headers[c] for c in rob.columns] == ["D1", "D2", "D3", "D4", "D5", "Overall"]
    fig = rob_plots.traffic_light_plot(rob, title="t")
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == n
    # a circle per unit and column, coloured by the judgement (robvis cochrane colours), and
    # the judgement's symbol on each
    circles = [c for c in ax.collections if c.get_sizes()[0] == 150]
    assert sum(len(c.get_offsets()) for c in circles) == n * len(rob.columns)
    assert {tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in circles} <= {
        tuple(np.round(matplotlib.colors.to_rgb(PALETTES["cochrane"][j]), 3)) for j in rob.scale
    }
    symbols = [c for c in ax.collections if c.get_sizes()[0] != 150]
    assert sum(len(c.get_offsets()) for c in symbols) == n * len(rob.columns)
    weights = rob.counts(weighted=True)
    assert np.allclose(weights.sum(axis=1), 1.0)
    unweighted = rob.counts()
    assert (unweighted.sum(axis=1) == n).all()
    rob_plots.summary_plot(rob, title="s", palette="colourblind")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_judgements_follow_the_tools_scale_and_other_uses_the_codes():
    cb = load_codebook(_codebook_with("robins_i"))
    spec = RiskOfBiasSpec.from_config(_spec("robins_i"))
    assert spec.judgements(cb["risk_of_bias"]) == {
        "1": "low",
        "2": "moderate",
        "3": "serious",
        "4": "critical",
        "5": "no_information",
    }
    # not high and not "no information": low or moderate
    keys = {k: codes for k, _, codes in spec.restrictions(cb["risk_of_bias"])}
    assert keys == {"low": ("1",), "not_high": ("1", "2")}
    other = RiskOfBiasSpec.from_config({"tool": "other", "overall": "x", "low": [1], "high": [3]})
    assert other.judgements(load_codebook(CODEBOOK)["risk_of_bias"]) == {
        "1": "low",
        "2": "some_concerns",
        "3": "high",
    }
    assert set(PALETTES["cochrane"]) == set(PALETTES["colourblind"])
    assert PALETTES["cochrane"]["low"] == "#02C100" and PALETTES["cochrane"]["high"] == "#BF0000"


# --------------------------------------------------------------------------- the pipeline
def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_example_run_restricts_draws_and_reports_risk_of_bias(example_run):
    res = example_run.results
    sens = _json(res / "models" / "sensitivity.json")
    rows = [r for r in sens["tables"]["summary"]["rows"] if r["kind"] == "risk_of_bias"]
    assert [r["analysis"] for r in rows] == [
        "Only low risk of bias",
        "Only low risk of bias or some concerns",
    ]
    # the restricted fit equals a direct fit of the same studies through the analysis model
    ad = am.load_analysis_data(res / "effect_sizes.csv", CODEBOOK)
    low = ad.data[ad.data["risk_of_bias"].astype(float) == 1]
    models = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["models"]
    direct = am.fit_model(ad, am.ModelSpec.from_config(models), data=low)
    assert rows[0]["estimate"] == pytest.approx(float(direct.b[0]), abs=1e-10)
    assert rows[0]["k"] == len(low) and rows[0]["n_studies"] == low["study_id"].nunique()
    csv = pd.read_csv(res / "tables" / "sensitivity_summary.csv")
    assert csv["Analysis"].str.startswith("Only low risk of bias").sum() == 2

    manifest = _json(res / "figures" / "figures.json")
    figs = {f["stem"]: f for f in manifest["figures"]}
    traffic = figs["risk_of_bias_traffic_light"]
    assert traffic["section"] == "risk_of_bias" and traffic["details"]["units"] == ad.n_studies
    assert Path(example_run.work / traffic["png"]).is_file()
    assert "risk_of_bias_summary" in figs

    html = (res / "report.html").read_text(encoding="utf-8")
    start = html.index('<h2 id="risk-of-bias">')
    section = html[start : html.index("</section>", start)]
    assert "RoB 2" in section and "moderator" in section
    assert "figure-risk_of_bias_traffic_light" in section
    assert "Only low risk of bias" in html[html.index('<h2 id="sensitivity">') :]


def test_assink_run_without_a_risk_of_bias_section_says_nothing_about_it(assink_run):
    res = assink_run.results
    sens = _json(res / "models" / "sensitivity.json")
    assert not [r for r in sens["tables"]["summary"]["rows"] if r.get("kind") == "risk_of_bias"]
    assert sens.get("risk_of_bias") == []
    manifest = _json(res / "figures" / "figures.json")
    assert not [f for f in manifest["figures"] if f["stem"].startswith("risk_of_bias")]
    assert not list((res / "figures").glob("risk_of_bias*"))
    html = (res / "report.html").read_text(encoding="utf-8")
    start = html.index('<h2 id="risk-of-bias">')
    section = html[start : html.index("</section>", start)]
    assert "No risk-of-bias assessment is configured" in section
    assert "<figure" not in section
