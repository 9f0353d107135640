"""The central answer in words: what the programmes with a positive effect share
(:func:`intervention_meta.analyses.components.positive_programmes`, written by the components step;
:mod:`intervention_meta.outputs.central_answer`, the sentences of the report's summary).

Expected numbers: counted by hand on the 6-study toy data set of ``tests/test_components.py``
(layout written out there), and on the real runs read from ``models/components.json`` of the same
run: the sentences must carry the JSON's numbers.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from test_components import SPEC, _toy

from intervention_meta.analyses.components import (
    MIN_PROFILE_PROGRAMMES,
    StudyEffects,
    analyse_components,
    component_consistency,
    component_profiles,
    positive_programmes,
    programme_components,
)
from intervention_meta.outputs.central_answer import central_answer, profile_rule

POSITIVE = {"S0": True, "S1": False, "S2": True, "S3": True, "S4": False, "S5": True}
LABELS = {f"S{j}": f"Study {name}" for j, name in enumerate("zero one two three four five".split())}


def _effects(positive: dict) -> StudyEffects:
    n = len(positive)
    est = np.array([0.5 if p else 0.0 for p in positive.values()])
    return StudyEffects(
        rule="study_aggregate",
        description="by hand",
        level=0.95,
        study=tuple(positive),
        k=np.ones(n, dtype=int),
        estimate=est,
        se=np.full(n, 0.1),
        ci_lb=est - 0.2,
        ci_ub=est + 0.2,
        positive=np.array(list(positive.values())),
    )


def _toy_answer(min_programmes: int = 2):
    ad = _toy()
    prog, _ = programme_components(ad.data, "sid", ["a", "b"])
    labels = {"a": "Component A", "b": "Component B"}
    profiles = component_profiles(prog, ["a", "b"], labels, min_programmes=min_programmes)
    cons = component_consistency(prog, POSITIVE, ["a", "b"])
    return positive_programmes(_effects(POSITIVE), cons, profiles, LABELS, labels)


def test_positive_programmes_counted_by_hand_on_the_toy_data():
    pp = _toy_answer()
    # positive: S0 (a), S2 (a, b missing), S3 (both missing), S5 (a + b)
    assert (pp.n_programmes, pp.n_positive) == (6, 4)
    assert pp.studies == ("S0", "S2", "S3", "S5")
    assert pp.labels == ("Study zero", "Study two", "Study three", "Study five")
    # a: positive with a known value S0 S2 S5, all with a; b: known S0 S5, with b S5
    assert pp.n_with == (3, 1) and pp.n_known == (3, 2)
    assert pp.most_shared == ("a",) and pp.shared_by_all == ("a",)
    # profiles: S0 -> 10 and S5 -> 11 (one programme each, not pooled); S2, S3 in none
    assert [
        (r["profile"], r["n_positive"], r["n_programmes"], r["pooled"]) for r in pp.profiles
    ] == [
        ("10", 1, 1, False),
        ("11", 1, 1, False),
    ]
    assert pp.outside_profiles == 2


def test_central_answer_sentences_on_the_toy_data():
    pp = _toy_answer()
    doc = {
        "applicable": True,
        "min_profile_programmes": 2,
        "positive_rule": {"rule": "study_aggregate"},
        "positive_programmes": pp.to_dict(),
    }
    first, profiles = central_answer(doc)
    assert first == (
        "4 of the 6 programmes had a positive effect (rule study_aggregate, see the methods): "
        "Study zero, Study two, Study three and Study five. 3 of the 3 positive programmes "
        "coded for it had component A; present in all of them: component A."
    )
    assert profiles == (
        "Positive programmes per component profile: 2 programmes in 2 profiles of fewer than 2 "
        "programmes (not pooled). 2 programmes with a missing component value belong to no "
        "profile."
    )


def test_central_answer_with_a_pooled_profile_and_no_component_in_all():
    positive = {"S0": True, "S1": True, "S2": False, "S3": False, "S4": True, "S5": False}
    ad = _toy()
    prog, _ = programme_components(ad.data, "sid", ["a", "b"])
    labels = {"a": "Component A", "b": "Component B"}
    profiles = component_profiles(prog, ["a", "b"], labels, min_programmes=2)
    cons = component_consistency(prog, positive, ["a", "b"])
    pp = positive_programmes(_effects(positive), cons, profiles, None, labels)
    # a: positive S0 (a), S1, S4 (no a) -> 1 of 3; b: S0 (no b), S1, S4 (b) -> 2 of 3
    assert pp.most_shared == ("b",) and pp.shared_by_all == ()
    doc = {
        "min_profile_programmes": 2,
        "positive_rule": {"rule": "blup"},
        "positive_programmes": pp.to_dict(),
    }
    first, profiles = central_answer(doc)
    assert first.endswith(
        "S0, S1 and S4. 2 of the 3 positive programmes had component B; no component was "
        "present in all of them."
    )
    # profile 01 (S1, S4: both positive, pooled), profile 10 (S0 alone, not pooled)
    assert profiles == (
        "Positive programmes per component profile: Component B: 2 of 2; 1 programme in 1 "
        "profile of fewer than 2 programmes (not pooled)."
    )


def test_no_components_and_no_positive_programme_are_one_sentence():
    assert central_answer({}) == []
    (line,) = central_answer({"applicable": False, "reason": "none coded"})
    assert line.startswith("No intervention components are coded in this data set")
    ad = _toy()
    effects = _effects(dict.fromkeys(POSITIVE, False))
    prog, _ = programme_components(ad.data, "sid", ["a", "b"])
    cons = component_consistency(prog, {}, ["a", "b"])
    profiles = component_profiles(prog, ["a", "b"])
    pp = positive_programmes(effects, cons, profiles)
    assert (pp.n_positive, pp.most_shared, pp.profiles) == (0, (), ())
    doc = {"positive_rule": {"rule": "study_aggregate"}, "positive_programmes": pp.to_dict()}
    assert central_answer(doc) == [
        "None of the 6 programmes had a positive effect by the rule study_aggregate, so what "
        "positive programmes share is undefined."
    ]


def test_profile_threshold_defaults_to_two_and_is_in_the_json_and_the_methods_words():
    ad = _toy()
    assert MIN_PROFILE_PROGRAMMES == 2
    doc = analyse_components(ad, SPEC).to_dict()
    assert doc["min_profile_programmes"] == 2
    assert doc["profiles"]["min_programmes"] == 2
    pooled = {r["profile"]: r["pooled"] for r in doc["profiles"]["profiles"]}
    assert pooled == {"01": True, "10": False, "11": False}
    assert "only from 2 programmes up" in profile_rule(doc)
    one = analyse_components(ad, SPEC, min_programmes=1).to_dict()
    assert one["min_profile_programmes"] == 1
    assert profile_rule(one).startswith("every profile was pooled")


# ------------------------------------------------------------------------------ the real runs
def _section(doc: str, section_id: str = "summary") -> str:
    start = doc.index(f'<h2 id="{section_id}">')
    return doc[start : doc.index("<h2 id=", start + 1)]


@pytest.mark.pipeline
def test_example_summary_sentences_carry_the_numbers_of_the_components_json(example_run):
    res = example_run.results
    comp = json.loads((res / "models" / "components.json").read_text())
    pp = comp["positive_programmes"]
    summary = html.unescape(_section((res / "report.html").read_text()))
    assert pp["n_positive"] > 0
    assert f"{pp['n_positive']} of the {pp['n_programmes']} programmes had a positive effect" in (
        summary
    )
    for label in pp["labels"]:
        assert label in summary
    # the component most positive programmes have, with the consistency table's counts
    cons = comp["consistency"]
    for c in pp["most_shared"]:
        j = cons["components"].index(c)
        n_with, n_known = cons["n_positive_with"][j], cons["n_positive"][j]
        assert (n_with, n_known) == (pp["n_with"][j], pp["n_known"][j])
        label = pp["component_labels"][j]
        assert re.search(
            rf"{n_with} of the {n_known} positive programmes[a-z ]* had {re.escape(label)}",
            summary,
            flags=re.IGNORECASE,
        )
    if not pp["shared_by_all"]:
        assert "no component was present in all of them" in summary
    # positive programmes per pooled profile, and the counts add up with those left over
    profiles = {r["profile"]: r for r in comp["profiles"]["profiles"]}
    for row in pp["profiles"]:
        assert profiles[row["profile"]]["n_programmes"] == row["n_programmes"]
        assert row["pooled"] == (row["n_programmes"] >= comp["min_profile_programmes"])
        if row["pooled"]:
            assert f"{row['label']}: {row['n_positive']} of {row['n_programmes']}" in summary
    small = [r for r in pp["profiles"] if not r["pooled"]]
    n_small = sum(r["n_positive"] for r in small)
    if small:
        assert f"{n_small} programme" in summary and f"in {len(small)} profile" in summary
    in_profiles = sum(r["n_positive"] for r in pp["profiles"])
    assert in_profiles + pp["outside_profiles"] == pp["n_positive"]
    # the methods give the same threshold and rule
    doc = (res / "report.html").read_text()
    methods = _section(doc, "methods")
    assert f"only from {comp['min_profile_programmes']} programmes up" in methods
    assert f"<code>{comp['positive_rule']['rule']}</code>" in methods


@pytest.mark.pipeline
def test_assink_summary_says_in_one_line_that_there_are_no_components(assink_run):
    summary = _section((assink_run.results / "report.html").read_text())
    lines = re.findall(r'<p class="central-answer">(.*?)</p>', summary)
    assert lines == [
        "No intervention components are coded in this data set, so what the programmes with a "
        "positive effect share is not asked."
    ]
