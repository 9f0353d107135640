"""The cluster wild bootstrap p values beside the moderator tables' HTZ tests.

Sources of the expected values: the bootstrap p value of a moderator test is
:func:`intervention_meta.methods.wild_bootstrap.wild_bootstrap_test` (checked against wildmeta in
``tests/test_wild_bootstrap.py``) on the same model, rows and generator, so the tests compare the
two bit for bit; the generator of a test is ``SeedSequence([seed, crc32(key)])`` by construction.
The data are synthetic (10 trials, differently named keys and variables than the example).
"""

from __future__ import annotations

import json
import math
import zlib
from functools import cache

import numpy as np
import pandas as pd
import pytest
import yaml

from intervention_meta.analyses.analysis_model import (
    AnalysisData,
    ModelSpec,
    model_call,
)
from intervention_meta.analyses.moderator_bootstrap import (
    WildBootstrapOptions,
    moderator_wild_bootstrap,
    seed_sequence,
)
from intervention_meta.analyses.moderators import (
    analyse_moderator,
    analyse_moderators,
    factor_column,
    moderator_tests_records,
    multiple_moderator_model,
    multiple_moderators_records,
    run_moderators,
)
from intervention_meta.data.codebook import load_codebook
from intervention_meta.methods.wild_bootstrap import wild_bootstrap_test
from intervention_meta.outputs.tables import apa_table, fmt_p

SPEC = ModelSpec()
R = 99  # replications: enough to compare the two paths, few enough to be quick


#: the codebook of the synthetic trials (tables trials/outcomes, keys trial/outcome)
CODEBOOK = {
    "tables": {
        "trials": {"key": "trial"},
        "outcomes": {"key": "outcome", "parent": "trials"},
    },
    "variables": [
        {"name": "trial", "table": "trials", "type": "id", "role": "id"},
        {
            "name": "arm_type",
            "table": "trials",
            "type": "categorical",
            "levels": {"wait": "Waiting list", "usual": "Usual care", "active": "Active"},
            "role": "moderator",
            "label": "Control arm",
        },
        {
            "name": "dose",
            "table": "trials",
            "type": "number",
            "role": "moderator",
            "label": "Sessions",
        },
        {"name": "outcome", "table": "outcomes", "type": "id", "role": "id"},
    ],
}


@cache
def _trials() -> AnalysisData:
    """10 trials with 1-4 outcomes each; a 3-level factor and a dose coded per trial."""
    cb = load_codebook(CODEBOOK)
    rng = np.random.default_rng(11)
    rows = []
    arms = ["wait", "usual", "active"]
    for j, k in enumerate([3, 1, 4, 2, 2, 3, 1, 4, 2, 3]):
        u = rng.normal(0, 0.2)
        for i in range(k):
            rows.append(
                {
                    "trial": f"T{j:02d}",
                    "outcome": f"T{j:02d}.{i}",
                    "arm_type": arms[j % 3],
                    "dose": float(4 + 2 * j),
                    "yi": 0.2 + 0.1 * (j % 3) + u + rng.normal(0, 0.15),
                    "vi": 0.02 + 0.01 * i,
                }
            )
    return AnalysisData(pd.DataFrame(rows), cb, "trial", "outcome")


def _always(seed: int = 5, **kw) -> WildBootstrapOptions:
    return WildBootstrapOptions(when="always", replications=R, seed=seed, **kw)


def test_categorical_moderator_p_is_the_method_run_with_the_tests_own_generator():
    ad = _trials()
    res = analyse_moderator(ad, "arm_type", SPEC, wild_bootstrap=_always(statistic="HTZ"))
    frame = ad.data.copy()
    frame["arm_type"] = factor_column(frame["arm_type"], ad.codebook["arm_type"])
    direct = wild_bootstrap_test(
        frame,
        model_call(ad, SPEC, mods=["arm_type"]),
        [1, 2],
        rng=np.random.default_rng(np.random.SeedSequence([5, zlib.crc32(b"single/arm_type")])),
        replications=R,
        adjust="CR2",
        type="CR2",
        test="HTZ",
        cluster="trial",
    )
    assert res.test.wild_p == direct.p_value  # bit-identical
    assert res.test.wild_bootstrap["statistic"] == direct.statistic
    assert res.test.wild_bootstrap["replications"] == R
    assert res.test.wild_bootstrap["n_clusters"] == 10
    # the bootstrap statistic of the data is the HTZ statistic of the table's CR2 test
    assert direct.statistic == pytest.approx(res.test.cr2_fstat, rel=1e-8)


def test_continuous_moderator_with_cr1_adjustment_and_the_f_statistic_matches_the_method():
    ad = _trials()
    opts = _always(seed=9, adjust="CR1")
    res = analyse_moderator(ad, "dose", SPEC, wild_bootstrap=opts, center="mean")
    frame = ad.data.copy()
    frame["dose"] = frame["dose"] - frame["dose"].mean()
    direct = wild_bootstrap_test(
        frame,
        model_call(ad, SPEC, mods=["dose"]),
        [1],
        rng=np.random.default_rng(seed_sequence(9, "single/dose")),
        replications=R,
        adjust="CR1",
        type="CR1",
        test="Naive-F",
        cluster="trial",
    )
    assert res.test.wild_p == direct.p_value
    assert res.test.wild_bootstrap["adjust"] == "CR1"
    assert (res.test.wild_bootstrap["type"], res.test.wild_bootstrap["test"]) == ("CR1", "Naive-F")
    # the default statistic: Q/q with the CR1 sandwich (wildmeta's Naive-F), here t^2 of the slope
    call = model_call(ad, SPEC, mods=["dose"])
    cr1 = call.fit(call.complete(frame)).robust(cluster="trial", type="CR1")
    assert direct.statistic == pytest.approx((cr1.b[1] / cr1.se[1]) ** 2, rel=1e-10)


def test_p_values_do_not_depend_on_which_other_moderators_run_or_their_order():
    ad = _trials()
    both = analyse_moderators(ad, SPEC, moderators=["dose", "arm_type"], wild_bootstrap=_always())
    rev = analyse_moderators(ad, SPEC, moderators=["arm_type", "dose"], wild_bootstrap=_always())
    alone = analyse_moderators(ad, SPEC, moderators=["arm_type"], wild_bootstrap=_always())
    p = {r.name: r.test.wild_p for r in both.results}
    assert p == {r.name: r.test.wild_p for r in rev.results}
    assert p["arm_type"] == alone.results[0].test.wild_p
    other = analyse_moderators(ad, SPEC, moderators=["arm_type"], wild_bootstrap=_always(seed=6))
    record, first = other.results[0].test.wild_bootstrap, alone.results[0].test.wild_bootstrap
    assert record["key"] == "single/arm_type"
    assert record["statistic"] == first["statistic"]  # the data's statistic, whatever the seed


def test_never_leaves_the_tables_without_the_column_and_always_adds_it():
    ad = _trials()
    never = analyse_moderators(ad, SPEC, wild_bootstrap=WildBootstrapOptions(when="never"))
    assert all(math.isnan(r.test.wild_p) and r.test.wild_bootstrap == {} for r in never.results)
    table = moderator_tests_records(never, ad)
    assert "wild_p" not in table.columns and "wild_note" not in table.columns
    assert "Wild bootstrap p" not in moderator_tests_records(never, ad).to_frame().columns

    always = analyse_moderators(ad, SPEC, wild_bootstrap=_always())
    table = moderator_tests_records(always, ad)
    frame = table.frame()
    assert table.columns["wild_p"] == "Wild bootstrap p"
    assert table.columns["wild_note"] is None  # in the JSON, not the CSV
    assert list(frame["wild_p"]) == [r.test.wild_p for r in always.results]
    assert frame["wild_p"].between(0, 1).all()
    assert "Rademacher" in frame["wild_note"].iloc[0] and "CR2" in frame["wild_note"].iloc[0]
    assert "Wild bootstrap p" in table.to_frame().columns
    assert always.to_dict()["wild_bootstrap"]["when"] == "always"


def test_few_studies_computes_only_tests_with_at_most_max_studies():
    ad = _trials()
    few = WildBootstrapOptions(when="few_studies", max_studies=9, replications=R, seed=1)
    res = analyse_moderators(ad, SPEC, wild_bootstrap=few)
    for r in res.results:  # 10 studies > 9: not computed, with the reason, and no column
        assert math.isnan(r.test.wild_p)
        assert r.test.wild_bootstrap["computed"] is False
        assert "10 studies" in r.test.wild_bootstrap["reason"]
    assert "wild_p" not in moderator_tests_records(res, ad).columns
    enough = WildBootstrapOptions(when="few_studies", max_studies=10, replications=R, seed=1)
    res = analyse_moderators(ad, SPEC, wild_bootstrap=enough)
    assert all(0 <= r.test.wild_p <= 1 for r in res.results)


def test_multiple_moderator_model_omnibus_test_gets_the_bootstrap_p():
    ad = _trials()
    mm = multiple_moderator_model(ad, ["arm_type", "dose"], SPEC, wild_bootstrap=_always())
    frame = ad.data.copy()
    frame["arm_type"] = factor_column(frame["arm_type"], ad.codebook["arm_type"])
    direct = moderator_wild_bootstrap(
        model_call(ad, SPEC, mods=["arm_type", "dose"]),
        frame,
        [1, 2, 3],
        options=_always(),
        key="multiple/all",
        cluster="trial",
        n_studies=10,
    )
    assert mm.test.wild_p == direct["p"]
    assert all(math.isnan(t.wild_p) for t in mm.variable_tests.values())
    table = multiple_moderators_records(mm, ad, SPEC, _always()).frame()
    omnibus = table[table["row"] == "omnibus test"]
    assert list(omnibus["wild_p"]) == [direct["p"]]
    assert table.loc[table["row"] != "omnibus test", "wild_p"].isna().all()


def test_options_are_checked():
    with pytest.raises(ValueError, match="when must be one of"):
        WildBootstrapOptions.from_config({"when": "sometimes"})
    with pytest.raises(ValueError, match="adjust must be one of"):
        WildBootstrapOptions.from_config({"adjust": "CR3"})
    with pytest.raises(ValueError, match="unknown keys"):
        WildBootstrapOptions.from_config({"reps": 10})
    with pytest.raises(ValueError, match="statistic must be one of"):
        WildBootstrapOptions.from_config({"statistic": "t"})
    opts = WildBootstrapOptions.from_config(None, seed=3)
    assert (opts.when, opts.max_studies, opts.replications, opts.adjust, opts.seed) == (
        "few_studies",
        40,
        1999,
        "CR2",
        3,
    )
    assert opts.statistic == "F"
    assert opts.applies(40) and not opts.applies(41)


def test_apa_tables_show_the_wild_p_with_its_note_only_when_computed():
    ad = _trials()
    always = analyse_moderators(ad, SPEC, wild_bootstrap=_always())
    table = apa_table(moderator_tests_records(always, ad), "moderator_tests", 1)
    assert "Wild bootstrap p" in table.columns
    column = table.columns.index("Wild bootstrap p")
    expected = [fmt_p(r.test.wild_p) for r in always.results]
    assert [row[column] for row in table.rows] == expected
    assert "Rademacher weights per study, CR2-adjusted residuals" in table.note
    assert f"{R} replications" in table.note
    never = analyse_moderators(ad, SPEC, wild_bootstrap=WildBootstrapOptions(when="never"))
    table = apa_table(moderator_tests_records(never, ad), "moderator_tests", 1)
    assert "Wild bootstrap p" not in table.columns and "Rademacher" not in table.note
    mm = multiple_moderator_model(ad, ["arm_type", "dose"], SPEC, wild_bootstrap=_always())
    table = apa_table(
        multiple_moderators_records(mm, ad, SPEC, _always()), "multiple_moderators", 2
    )
    column = table.columns.index("Wild bootstrap p")
    assert [row[column] for row in table.rows if row[column]] == [fmt_p(mm.test.wild_p)]
    assert "Rademacher" in table.note


@pytest.mark.parametrize("when", ["never", "always"])
def test_the_step_writes_the_column_and_the_seeded_p_values_only_when_asked(tmp_path, when):
    ad = _trials()
    (tmp_path / "codebook.yaml").write_text(yaml.safe_dump(CODEBOOK), encoding="utf-8")
    ad.data.to_csv(tmp_path / "effect_sizes.csv", index=False)
    out = {k: tmp_path / f"{k}.{ext}" for k, ext in
           (("moderators", "csv"), ("tests", "csv"), ("multiple", "csv"), ("json", "json"),
            ("flags", "txt"))}  # fmt: skip
    options = {
        "multiple": ["arm_type", "dose"],
        "wild_bootstrap": {"when": when, "replications": R},
    }
    run_moderators(
        effect_sizes=tmp_path / "effect_sizes.csv",
        codebook=tmp_path / "codebook.yaml",
        options=options,
        seed=5,
        **out,
    )
    tests = pd.read_csv(out["tests"]).set_index("Moderator")
    multiple = pd.read_csv(out["multiple"])
    result = json.loads(out["json"].read_text(encoding="utf-8"))
    if when == "never":
        assert "Wild bootstrap p" not in tests.columns
        assert "Wild bootstrap p" not in multiple.columns
        assert result["wild_bootstrap"]["when"] == "never"
        return
    # the step's p values are those of analyse_moderators with the same seed (centred as the step)
    direct = analyse_moderators(ad, SPEC, wild_bootstrap=_always(), center="mean")
    rows = {row["moderator"]: row for row in result["tables"]["moderator_tests"]["rows"]}
    for r in direct.results:
        assert rows[r.name]["wild_p"] == r.test.wild_p  # the JSON: bit-identical
        assert tests.loc[r.name, "Wild bootstrap p"] == pytest.approx(r.test.wild_p, rel=1e-12)
    assert multiple["Wild bootstrap p"].notna().sum() == 1
    assert result["multiple"]["test"]["wild_bootstrap"]["key"] == "multiple/all"
    assert "Rademacher" in result["notes"]["wild_bootstrap"]
