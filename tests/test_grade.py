"""The GRADE summary of findings (:mod:`intervention_meta.outputs.grade`).

Each rule is pinned on synthetic inputs at and around its thresholds (the thresholds are the
module's documented defaults: I2 50/75%, risk-of-bias shares 25/50% at high risk and 50% not at
low risk, an optimal information size of 400, Egger p < .10 with at least 10 studies, and Cohen's
0.2 as the smallest SMD that matters; Schünemann et al. 2013; Guyatt et al. 2011). The expected
absolute effects are worked by hand from the formulas in the docstrings. The pipeline tests read
the session's shared runs: the example (five outcome domains, no risk_of_bias section in this
branch's config) and assink2016 (no domains, no components, no risk of bias, yi/vi given).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from intervention_meta.data.codebook import normalise_code
from intervention_meta.data.risk_of_bias import RiskOfBiasSpec
from intervention_meta.errors import InputError
from intervention_meta.outputs.grade import (
    ALL,
    GRADE_DOMAINS,
    GradeSettings,
    Rating,
    absolute_effect,
    apply_overrides,
    certainty_level,
    cohen_size,
    grade_apa_table,
    grade_summary,
    participants,
    rate_imprecision,
    rate_inconsistency,
    rate_indirectness,
    rate_publication_bias,
    rate_risk_of_bias,
    risk_of_bias_shares,
    risk_per_1000,
    study_weights,
)
from intervention_meta.outputs.labels import measure_labels

SMD = GradeSettings(threshold=0.2)
NO_THRESHOLD = GradeSettings(threshold=None)
RATINGS = {"not serious", "serious", "very serious", "not assessed"}


# --------------------------------------------------------------------------- risk of bias
@pytest.mark.parametrize(
    ("high", "not_low", "expected"),
    [
        (0.0, 0.0, "not serious"),
        (0.2499, 0.4999, "not serious"),
        (0.25, 0.30, "serious"),  # at the high-risk threshold
        (0.10, 0.50, "serious"),  # at the not-low threshold
        (0.4999, 0.60, "serious"),
        (0.50, 0.60, "very serious"),  # at the very-serious threshold
        (0.90, 1.00, "very serious"),
    ],
)
def test_risk_of_bias_rated_by_the_shares_at_and_around_the_thresholds(high, not_low, expected):
    rating = rate_risk_of_bias(high, not_low, SMD, n_assessed=10, n_studies=10)
    assert rating.rating == expected
    assert f"{100 * high:.0f}% of the analysis weight" in rating.reason
    assert "10 of 10 studies judged" in rating.reason


def test_risk_of_bias_without_a_config_section_is_not_assessed_and_does_not_rate_down():
    rating = rate_risk_of_bias(None, None, SMD, assessed=False)
    assert rating.rating == "not assessed" and rating.downgrade == 0
    assert "no risk_of_bias section" in rating.reason


# --------------------------------------------------------------------------- inconsistency
@pytest.mark.parametrize(
    ("i2", "pi", "expected"),
    [
        (49.9, (0.05, 0.80), "not serious"),
        (50.0, (0.05, 0.80), "serious"),  # I2 at the threshold
        (10.0, (-0.01, 0.80), "serious"),  # the PI crosses the null
        (74.9, (-0.30, 0.90), "serious"),
        (75.0, (-0.30, 0.90), "very serious"),  # I2 75 and important effects both ways
        (75.0, (-0.10, 0.90), "serious"),  # the PI does not reach -0.2
        (80.0, (-0.20, 0.20), "very serious"),  # the limits at -T and +T count
    ],
)
def test_inconsistency_from_i2_and_the_prediction_interval(i2, pi, expected):
    rating = rate_inconsistency(i2, *pi, SMD, n_studies=12)
    assert rating.rating == expected
    assert f"I² = {i2:.0f}%" in rating.reason
    assert ("crosses the null" in rating.reason) == (pi[0] < 0 < pi[1])


def test_inconsistency_against_the_decision_threshold_when_configured():
    # the PI [0.10, 0.70] holds both trivial (< 0.2) and important effects
    settings = GradeSettings(threshold=0.2, pi_reference="threshold")
    assert rate_inconsistency(20.0, 0.10, 0.70, settings, n_studies=8).rating == "serious"
    assert rate_inconsistency(20.0, 0.10, 0.70, SMD, n_studies=8).rating == "not serious"
    assert rate_inconsistency(20.0, 0.25, 0.70, settings, n_studies=8).rating == "not serious"


def test_inconsistency_of_a_single_study_is_not_assessed():
    rating = rate_inconsistency(None, None, None, SMD, n_studies=1)
    assert rating.rating == "not assessed" and "single study" in rating.reason


# --------------------------------------------------------------------------- imprecision
@pytest.mark.parametrize(
    ("ci", "n", "expected"),
    [
        ((-0.25, 0.25), 1000, "very serious"),  # important effects both ways
        ((-0.20, 0.20), 1000, "very serious"),  # limits at -T and +T
        (
            (-0.19, 0.19),
            1000,
            "not serious",
        ),  # crosses the null, excludes every effect that matters
        ((-0.05, 0.30), 1000, "serious"),  # no effect and an important effect
        ((-0.05, 0.20), 1000, "serious"),
        ((0.05, 0.30), 1000, "not serious"),  # excludes the null
        ((0.05, 0.30), 399, "serious"),  # below the optimal information size
        ((0.05, 0.30), 400, "not serious"),
        ((0.05, 0.30), None, "not serious"),  # participants not known: OIS not checked
    ],
)
def test_imprecision_from_the_ci_the_threshold_and_the_information_size(ci, n, expected):
    rating = rate_imprecision(*ci, SMD, participants=n)
    assert rating.rating == expected
    assert f"[{ci[0]:.2f}, {ci[1]:.2f}]" in rating.reason
    if n == 399:
        assert "only 399 participants" in rating.reason and "400" in rating.reason


def test_imprecision_without_a_threshold_checks_the_null_only():
    assert rate_imprecision(-0.1, 0.3, NO_THRESHOLD).rating == "serious"
    assert "grade.thresholds.small" in rate_imprecision(-0.1, 0.3, NO_THRESHOLD).reason
    assert rate_imprecision(0.01, 0.9, NO_THRESHOLD, participants=500).rating == "not serious"
    assert rate_imprecision(None, None, SMD).rating == "not assessed"


# --------------------------------------------------------------------------- publication bias
@pytest.mark.parametrize(
    ("n", "p", "adjusted", "expected"),
    [
        (9, 0.001, {}, "not assessed"),  # too few studies
        (10, 0.0999, {}, "serious"),  # at the study threshold, p below .10
        (10, 0.10, {}, "not serious"),  # p at .10 is not below it
        (30, 0.50, {"trim-and-fill": -0.05}, "serious"),  # across the null
        (30, 0.50, {"trim-and-fill": 0.15}, "serious"),  # across the threshold 0.2
        (30, 0.50, {"trim-and-fill": 0.25, "PET-PEESE": None}, "not serious"),
    ],
)
def test_publication_bias_from_the_bias_step(n, p, adjusted, expected):
    rating = rate_publication_bias(n, p, 0.30, adjusted, SMD)
    assert rating.rating == expected
    if expected == "not assessed":
        assert "fewer than the 10" in rating.reason
    else:
        assert f"p = {p:.3f}" in rating.reason


def test_indirectness_comes_from_the_config_and_is_not_serious_without_an_entry():
    assert rate_indirectness(None).rating == "not serious"
    r = rate_indirectness({"rating": "serious", "reason": "only urban programmes"})
    assert (r.rating, r.reason, r.source) == ("serious", "only urban programmes", "config")


# --------------------------------------------------------------------------- certainty, overrides
def test_certainty_goes_down_per_rating_and_stops_at_very_low():
    r = [Rating("a", "serious", "x"), Rating("b", "very serious", "y")]
    assert certainty_level(4, r) == 1
    assert certainty_level(4, r[:1]) == 3
    assert certainty_level(4, [Rating("a", "not assessed", "z")]) == 4
    assert certainty_level(2, r) == 1  # observational evidence starts low
    assert certainty_level(2, []) == 2


def test_an_override_replaces_the_rating_and_its_reason_shows():
    rules = (
        Rating("imprecision", "not serious", "the CI excludes the null"),
        Rating("inconsistency", "serious", "I² = 70%"),
    )
    overrides = {
        ALL: {"imprecision": {"rating": "very serious", "reason": "two small trials dominate"}},
        "default": {"inconsistency": {"rating": "not serious", "reason": "explained by dose"}},
    }
    out = apply_overrides(ALL, rules, overrides)
    assert out[0].rating == "very serious" and out[0].source == "override"
    assert "two small trials dominate" in out[0].reason and out[0].rule_rating == "not serious"
    assert out[1].rating == "not serious" and "explained by dose" in out[1].reason
    # another row takes the default only
    other = apply_overrides("social_support", rules, overrides)
    assert other[0] == rules[0] and other[1].source == "override"


def test_an_override_without_a_reason_is_refused():
    for bad in ({"rating": "serious"}, {"rating": "serious", "reason": "  "}):
        with pytest.raises(InputError, match="reason"):
            GradeSettings.from_config({"overrides": {ALL: {"imprecision": bad}}})
    with pytest.raises(InputError, match="rating"):
        GradeSettings.from_config({"overrides": {ALL: {"imprecision": {"reason": "why"}}}})
    with pytest.raises(InputError, match="one of"):
        GradeSettings.from_config({"overrides": {ALL: {"precision": {"rating": "serious"}}}})


def test_an_override_without_a_reason_is_a_config_error_at_start_up(tmp_path):
    from intervention_meta.config import load_config

    config = yaml.safe_load(Path("config/config.yaml").read_text(encoding="utf-8"))
    config["grade"] = {"overrides": {"all": {"imprecision": {"rating": "serious"}}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_config(path)
    assert "grade.overrides.all.imprecision.reason" in str(err.value)
    config["grade"]["overrides"]["all"]["imprecision"]["reason"] = "one trial only"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert load_config(path)["grade"]["design"] == "randomised"  # the schema's defaults


# --------------------------------------------------------------------------- absolute effects
@pytest.mark.parametrize(
    ("g", "words"),
    [(0.19, "trivial"), (0.2, "small"), (-0.49, "small"), (0.5, "medium"), (0.8, "large")],
)
def test_cohen_words_for_an_smd(g, words):
    assert cohen_size(g) == words


def test_absolute_effects_per_measure():
    # SMD with a control-group SD: g x SD = 0.4 x 10 = 4.0 points (CI 2.0 to 6.0)
    a = absolute_effect("SMD", 0.4, 0.2, 0.6, {"control_sd": 10, "scale": "PSI points"})
    assert a["kind"] == "smd" and a["size"] == "small"
    assert a["difference"] == pytest.approx(4.0) and "4.0 (2.0 to 6.0) on PSI points" in a["text"]
    # OR 2 at p0 = .2: p1 = .4 / 1.2 = .3333 -> 133 more per 1,000
    assert risk_per_1000("OR", math.log(2), 0.2) == pytest.approx(1000 * (0.4 / 1.2 - 0.2))
    a = absolute_effect("OR", math.log(2), math.log(1), math.log(4), {"control_risk": 0.2})
    assert (
        a["text"]
        == "at a control risk of 200 per 1,000: 133 more per 1,000 (from no difference to 300 more)"
    )
    # RR 1.5 at p0 = .2: 100 more; RD 0.05: 50 more, no control risk needed
    assert risk_per_1000("RR", math.log(1.5), 0.2) == pytest.approx(100)
    assert absolute_effect("RD", -0.05, None, None, {})["text"] == "50 fewer per 1,000"
    # none where the measure or the config does not allow it
    assert absolute_effect("OR", 0.5, 0.1, 0.9, {})["kind"] == "none"
    assert "control_risk" in absolute_effect("OR", 0.5, 0.1, 0.9, {})["text"]
    assert absolute_effect("ZCOR", 0.2, 0.1, 0.3, {})["kind"] == "none"


# --------------------------------------------------------------------------- data of a row
def test_participants_are_counted_once_per_study():
    frame = pd.DataFrame(
        {
            "trial": ["A", "A", "B", "C", "D"],
            "n1": [50, np.nan, np.nan, np.nan, 30],
            "n2": [50, np.nan, np.nan, np.nan, np.nan],
            "ntot": [np.nan, 120, np.nan, np.nan, 45],
            "ai": [np.nan, np.nan, 10, np.nan, np.nan],
            "bi": [np.nan, np.nan, 40, np.nan, np.nan],
            "ci": [np.nan, np.nan, 20, np.nan, np.nan],
            "di": [np.nan, np.nan, 30, np.nan, np.nan],
        }
    )
    roles = {
        "n_int": ["n1"],
        "n_ctl": ["n2"],
        "n_total": ["ntot"],
        "events_int": ["ai"],
        "nonevents_int": ["bi"],
        "events_ctl": ["ci"],
        "nonevents_ctl": ["di"],
    }
    # A: max(100, 120) = 120; B: the 2x2 cells, 100; C: none; D: n1 alone is not a total -> 45
    assert participants(frame, "trial", roles) == (120 + 100 + 45, 3)
    assert participants(frame.iloc[0:0], "trial", roles) == (None, 0)


def test_study_weights_of_the_three_level_model_are_the_block_inverses():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"s": np.repeat(["a", "b", "c"], [1, 3, 4]), "vi": rng.uniform(0.01, 0.1, 8), "yi": 0.1}
    )
    sb, sw = 0.04, 0.01
    overall = {
        "analysis": {"model_spec": {"structure": "three_level"}, "levels": ["s", "es"]},
        "sigma2": {"s": sb, "es": sw},
    }
    w = study_weights(frame, "s", overall)
    for study, block in frame.groupby("s"):
        v = np.diag(sw + block["vi"].to_numpy()) + sb  # D + sb 11'
        assert w[study] == pytest.approx(np.linalg.inv(v).sum())
    re = study_weights(
        frame, "s", {"analysis": {"model_spec": {"structure": "random_effects"}}, "tau2": 0.02}
    )
    assert re["c"] == pytest.approx((1 / (frame.vi[frame.s == "c"] + 0.02)).sum())


# --------------------------------------------------------------------------- another shape
def _synthetic_or() -> tuple[dict, pd.DataFrame, dict]:
    """Six trials of log odds ratios, one effect size each, no domains, no risk of bias."""
    effects = pd.DataFrame(
        {
            "trial_code": [f"T{i}" for i in range(6)],
            "yi": [0.4, 0.2, 0.6, 0.3, 0.5, 0.1],
            "vi": [0.04, 0.05, 0.06, 0.03, 0.05, 0.04],
            "events_int": [20, 15, 30, 25, 12, 18],
            "nonevents_int": [80, 85, 70, 75, 88, 82],
            "events_ctl": [14, 12, 18, 19, 8, 16],
            "nonevents_ctl": [86, 88, 82, 81, 92, 84],
        }
    )
    overall = {
        "estimable": True,
        "analysis": {
            "k": 6,
            "n_studies": 6,
            "study_key": "trial_code",
            "levels": ["trial_code"],
            "model_spec": {"structure": "random_effects", "level": 0.95},
        },
        "estimate": {
            "estimate": 0.35,
            "ci_lb": 0.15,
            "ci_ub": 0.55,
            "pi_lb": 0.1,
            "pi_ub": 0.6,
            "level": 0.95,
        },
        "tau2": 0.0,
        "heterogeneity": {"I2": 0.0},
    }
    bias = {"n_studies": 6, "egger_lm": {"pval": 0.5}, "pooled_estimate": 0.35}
    return overall, effects, bias


def test_an_or_data_set_without_domains_or_risk_of_bias():
    overall, effects, bias = _synthetic_or()
    labels = measure_labels({"measure": {"code": "OR"}})
    result = grade_summary(
        overall,
        effects,
        grade={"absolute": {"control_risk": 0.15}},
        bias=bias,
        labels=labels,
    )
    (row,) = result.rows
    assert row.key == ALL and row.k == 6 and row.n_studies == 6
    assert row.participants == 1200 and row.n_studies_participants == 6
    assert row.back["estimate"] == pytest.approx(math.exp(0.35))
    assert row.absolute["kind"] == "per_1000"
    ratings = {r.domain: r for r in row.ratings}
    assert ratings["risk_of_bias"].rating == "not assessed"
    assert ratings["publication_bias"].rating == "not assessed"  # 6 < 10 studies
    assert ratings["imprecision"].rating == "not serious"  # log OR threshold log(1.25)
    assert ratings["inconsistency"].rating == "not serious"
    assert row.certainty == 4
    frame = result.to_frame()
    assert list(frame["Risk of bias"]) == ["not assessed"]
    table = grade_apa_table(json.loads(json.dumps(result.to_dict())), 1, labels)
    assert "OR [95% CI]" in table.columns
    assert "not assessed\u00a0ᵃ" in table.rows[0]


def test_an_override_naming_no_row_is_refused():
    overall, effects, bias = _synthetic_or()
    grade = {"overrides": {"parenting": {"imprecision": {"rating": "serious", "reason": "x"}}}}
    with pytest.raises(InputError, match="grade.overrides.parenting"):
        grade_summary(overall, effects, grade=grade, bias=bias)


def test_the_override_reason_shows_in_the_table_note():
    overall, effects, bias = _synthetic_or()
    reason = "the trials measured a surrogate outcome"
    grade = {"overrides": {ALL: {"indirectness": {"rating": "serious", "reason": reason}}}}
    result = grade_summary(overall, effects, grade=grade, bias=bias)
    (row,) = result.rows
    assert row.rating("indirectness").rating == "serious" and row.certainty == 3
    table = grade_apa_table(result.to_dict(), 1, measure_labels(None))
    cell = table.rows[0][table.columns.index("Indirectness")]
    mark = cell.split("\u00a0")[-1]
    assert cell == f"serious\u00a0{mark}" and f"{mark} reviewer's judgement: {reason}" in table.note
    assert r"\textsuperscript" in table.to_latex()


# --------------------------------------------------------------------------- the real pipeline
def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_example_every_row_has_five_ratings_and_the_pooled_numbers_of_the_json(example_run):
    res = example_run.results
    grade = _json(res / "models" / "grade.json")
    domains = sorted(p.name for p in (res / "domains").iterdir())
    rows = {r["key"]: r for r in grade["rows"]}
    assert set(rows) == {ALL, *domains}
    for key, row in rows.items():
        assert set(row["ratings"]) == set(GRADE_DOMAINS)
        for rating in row["ratings"].values():
            assert rating["rating"] in RATINGS and rating["reason"].strip()
        path = (
            res / "models" / "overall.json"
            if key == ALL
            else (res / "domains" / key / "models" / "overall.json")
        )
        overall = _json(path)
        for k in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"):
            assert row[k] == overall["estimate"][k]
        assert (row["k"], row["n_studies"]) == (
            overall["analysis"]["k"],
            overall["analysis"]["n_studies"],
        )
        assert 1 <= row["certainty"] <= 4
    # the config's indirectness judgements are taken with their reasons
    config = yaml.safe_load((example_run.work / "config" / "config.yaml").read_text("utf-8"))
    for key, entry in (config.get("grade") or {}).get("indirectness", {}).items():
        rating = rows[key]["ratings"]["indirectness"]
        assert (rating["rating"], rating["reason"]) == (entry["rating"], entry["reason"])
        assert rating["source"] == "config"
    # the config's risk_of_bias section rates the body of evidence: the rating of all outcomes
    # is the rule's on the studies' overall judgements weighted by their analysis weight
    rob_spec = RiskOfBiasSpec.from_config(config.get("risk_of_bias"))
    assert rob_spec is not None
    effects = pd.read_csv(res / "effect_sizes.csv")
    study = _json(res / "models" / "overall.json")["analysis"]["study_key"]
    judged = {
        str(s): normalise_code(g.dropna().iloc[0]) if g.notna().any() else None
        for s, g in effects.groupby(effects[study].astype(str))[rob_spec.overall]
    }
    weights = study_weights(effects, study, _json(res / "models" / "overall.json"))
    high, not_low, n_judged = risk_of_bias_shares(judged, rob_spec.low, rob_spec.high, weights)
    settings = GradeSettings.from_config(config.get("grade"))
    expected = rate_risk_of_bias(
        high, not_low, settings, basis="weight", n_assessed=n_judged, n_studies=len(judged)
    )
    assert rows[ALL]["ratings"]["risk_of_bias"]["rating"] == expected.rating
    assert rows[ALL]["ratings"]["risk_of_bias"]["reason"] == expected.reason
    assert all(r["ratings"]["risk_of_bias"]["rating"] != "not assessed" for r in rows.values())
    # the domains say where the publication-bias rating comes from
    assert "not run per domain" in rows[domains[0]]["ratings"]["publication_bias"]["reason"]
    # the CSV holds the same rows; the APA table is numbered and in the report's section
    csv = pd.read_csv(res / "tables" / "grade.csv")
    assert list(csv["Outcome"]) == [r["label"] for r in grade["rows"]]
    index = {t["name"]: t for t in _json(res / "tables" / "apa" / "tables.json")["tables"]}
    assert index["grade"]["n_rows"] == len(rows)
    doc = (res / "report.html").read_text(encoding="utf-8")
    part = doc[doc.index('<h2 id="certainty">') :]
    part = part[: part.index("</section>")]
    assert 'id="table-grade"' in part and "Every rating with its reason" in part
    assert "<b>Certainty of evidence.</b>" in doc


def test_example_study_weights_sum_to_the_inverse_variance_of_the_pooled_estimate(example_run):
    res = example_run.results
    overall = _json(res / "models" / "overall.json")
    effects = pd.read_csv(res / "effect_sizes.csv")
    w = study_weights(effects, overall["analysis"]["study_key"], overall)
    assert w.sum() == pytest.approx(1 / overall["estimate"]["se"] ** 2, rel=1e-6)
    # each domain's own effect sizes and variance components
    config = yaml.safe_load((example_run.work / "config" / "config.yaml").read_text("utf-8"))
    variable = config["models"]["domain_variable"]
    for folder in (res / "domains").iterdir():
        domain = _json(folder / "models" / "overall.json")
        subset = effects[effects[variable].astype(str) == folder.name]
        w = study_weights(subset, domain["analysis"]["study_key"], domain)
        assert w.sum() == pytest.approx(1 / domain["estimate"]["se"] ** 2, rel=1e-6)


def test_example_risk_of_bias_rated_from_the_shared_config_section(example_run):
    """The shared ``risk_of_bias`` section (overall judgement 1 low, 3 high) on the example's
    results: weight shares computed, a rating by the rule."""
    res = example_run.results
    effects = pd.read_csv(res / "effect_sizes.csv")
    overall = _json(res / "models" / "overall.json")
    rob = {"tool": "rob2", "overall": "risk_of_bias", "low": [1], "high": [3]}
    result = grade_summary(
        overall, effects, risk_of_bias=rob, bias=_json(res / "models" / "bias.json")
    )
    rating = result.rows[0].rating("risk_of_bias")
    study = effects.groupby("study_id")["risk_of_bias"].first()
    w = study_weights(effects, "study_id", overall)
    high = w[study[study == 3].index].sum() / w.sum()
    assert f"{100 * high:.0f}% of the analysis weight" in rating.reason
    assert (
        rating.rating
        == rate_risk_of_bias(high, 1 - w[study[study == 1].index].sum() / w.sum(), SMD).rating
    )


def test_assink2016_has_one_row_with_risk_of_bias_not_assessed(assink_run):
    res = assink_run.results
    grade = _json(res / "models" / "grade.json")
    (row,) = grade["rows"]
    assert row["key"] == ALL
    # observational evidence (config/assink2016.yaml): the certainty starts at low
    assert grade["settings"]["design"] == "observational" and row["start"] == 2
    assert row["certainty"] <= 2
    assert row["ratings"]["risk_of_bias"]["rating"] == "not assessed"
    assert row["participants"] is None  # yi/vi given: no sample sizes known
    assert "participants not known" in row["ratings"]["imprecision"]["reason"]
    overall = _json(res / "models" / "overall.json")
    assert row["estimate"] == overall["estimate"]["estimate"]
    index = {t["name"]: t for t in _json(res / "tables" / "apa" / "tables.json")["tables"]}
    assert "Certainty starts at low for observational evidence" in index["grade"]["note"]
    assert 'id="table-grade"' in (res / "report.html").read_text(encoding="utf-8")


def test_absolute_settings_per_domain_fall_back_to_the_common_ones():
    overall, effects, bias = _synthetic_or()
    effects = effects.assign(dom=["a", "a", "a", "b", "b", "b"])
    absolute = {
        "control_sd": 10.0,
        "scale": "points",
        "domains": {"b": {"control_sd": 5.0, "scale": None, "control_risk": None}},
    }
    result = grade_summary(
        overall,
        effects,
        grade={"absolute": absolute},
        bias=bias,
        domains={"a": overall, "b": overall},
        domain_variable="dom",
    )
    by_key = {r.key: r for r in result.rows}
    assert by_key["a"].absolute["control_sd"] == 10.0  # the common value
    assert by_key["b"].absolute["control_sd"] == 5.0  # its own; its empty scale does not erase
    assert "on points" in by_key["b"].absolute["text"]
    assert by_key["a"].participants == 600 and by_key["b"].n_studies_participants == 3
