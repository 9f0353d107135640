"""Multiverse meta-analysis: enumeration from the config, fits through the package's engine, the
curve's summaries and the bootstrap under the null, the figure, the steps and the pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from pipeline_helpers import ROOT, effect_sizes_in_process

from intervention_meta.methods.influence import ModelCall
from intervention_meta.multiverse.curve import summarise
from intervention_meta.multiverse.fit import (
    ChunkResult,
    FitSettings,
    SpecFitter,
    bootstrap_data,
    fit_chunk,
    studentized_residuals,
)
from intervention_meta.multiverse.specs import chunk_numbers, enumerate_specs


# --------------------------------------------------------------------------- data
def _data(seed: int = 3, n_studies: int = 12) -> pd.DataFrame:
    """Effect sizes drawn from a three-level model (mean 0.3, study and effect variances 0.04
    and 0.02), in another shape than the example's: the study column ``paper``, the effect
    column ``row``, a numeric-coded subset variable ``arm`` and a text one ``region``."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_studies)
    paper = np.repeat([f"P{i:02d}" for i in range(n_studies)], sizes)
    study_effect = np.repeat(rng.normal(0, 0.2, n_studies), sizes)
    vi = rng.uniform(0.01, 0.08, len(paper))
    yi = 0.3 + study_effect + rng.normal(0, np.sqrt(0.02 + vi))
    region = np.repeat(np.where(np.arange(n_studies) % 2 == 0, "N", "S"), sizes)
    return pd.DataFrame(
        {
            "paper": paper,
            "row": [f"r{i}" for i in range(len(paper))],
            "yi": yi,
            "vi": vi,
            "arm": rng.integers(1, 4, len(paper)),
            "region": region,
        }
    )


def _settings(**kw) -> FitSettings:
    return FitSettings(study="paper", levels=("paper", "row"), test="z", **kw)


SECTION = {
    "which": {"region": ["all", "N"], "arm": ["all", [1, 2]]},
    "how": {
        "structure": ["fixed", "random", "three_level", "che"],
        "method": ["REML", "DL"],
        "rho": [0.5],
        "outliers": ["none", "studentized"],
        "bias": ["none", "selection"],
    },
}


# --------------------------------------------------------------------------- specs
def test_enumeration_applies_the_built_in_rules_and_counts_what_they_leave_out():
    mv = enumerate_specs(SECTION)
    # per subset: fixed 2 (outliers), random 2 methods x 2 outliers + selection (ML) x 2,
    # three_level and che REML x 2 outliers each; 4 subsets
    assert len(mv) == 4 * (2 + 4 + 2 + 2 + 2)
    assert {s.method for s in mv.specs if s.structure == "fixed"} == {"FE"}
    assert {s.method for s in mv.specs if s.bias == "selection"} == {"ML"}
    assert {s.structure for s in mv.specs if s.bias == "selection"} == {"random"}
    assert all(s.rho is None for s in mv.specs if s.structure != "che")
    # counted per specification: 4 subsets x 2 outlier rules (bias none; selection is left out
    # by its own rule first); selection: 3 structures x 2 methods x 2 outlier rules x 4 subsets
    assert mv.excluded["DL: one-level estimator, not for three_level"] == 4 * 2
    assert mv.excluded["selection model: one-level random-effects structure only"] == 48
    assert len({s.choices().__repr__() for s in mv.specs}) == len(mv)  # no duplicate spec
    assert [s.id for s in mv.specs[:2]] == ["s00001", "s00002"]


def test_exclude_entries_leave_out_every_matching_spec_and_chunks_follow_the_config():
    section = {**SECTION, "exclude": [{"structure": "fixed"}, {"region": "N", "bias": "selection"}]}
    mv = enumerate_specs({**section, "chunk_size": 7})
    assert not any(s.structure == "fixed" for s in mv.specs)
    assert not any(s.bias == "selection" and s.choices()["region"] == "N" for s in mv.specs)
    assert mv.excluded["exclude[0]: {'structure': 'fixed'}"] == 8
    assert mv.n_chunks == -(-len(mv) // 7)
    assert sum(len(mv.chunk(c)) for c in range(mv.n_chunks)) == len(mv)
    with pytest.raises(ValueError, match="chunk"):
        mv.chunk(mv.n_chunks)
    config = {"multiverse": {**section, "chunk_size": 7, "enabled": True}}
    assert chunk_numbers(config) == list(range(mv.n_chunks))
    assert chunk_numbers({"multiverse": {**section, "enabled": False}}) == []
    assert chunk_numbers({"multiverse": section}) == []  # the schema's default: not enabled
    assert chunk_numbers({}) == []


def test_bad_settings_are_refused_with_the_key():
    with pytest.raises(ValueError, match="how.structure"):
        enumerate_specs({"how": {"structure": ["four_level"]}})
    with pytest.raises(ValueError, match="unknown key"):
        enumerate_specs({"chunks": 3})


# --------------------------------------------------------------------------- fits
def test_each_spec_is_the_engine_fit_of_its_subset():
    data = _data()
    mv = enumerate_specs(SECTION)
    fitter = SpecFitter(data, _settings())
    for spec in mv.specs:
        if spec.outliers != "none" or spec.bias != "none":
            continue
        rows = data
        for variable, codes in spec.subset_key:
            if codes:
                rows = rows.loc[rows[variable].astype(str).isin(codes)]
        random = ("paper", "row") if spec.multilevel else ()
        call = ModelCall(random=random, method=spec.method, test="z", rho=spec.rho)
        expected = call.fit(rows)
        got = fitter.fit(spec)
        assert got.status == "ok"
        assert got.k == len(rows)
        assert got.estimate == expected.b[0] and got.se == expected.se[0]
        assert got.pval == expected.pval[0] and got.ci_lb == expected.ci_lb[0]


def test_studentized_residuals_match_the_hat_matrix_formula():
    # metafor rstandard: e / sqrt(diag((I - H) M (I - H)')) with H = X (X'WX)^-1 X'W
    data = _data()
    res = ModelCall(method="REML", test="z").fit(data)
    v = data["vi"].to_numpy() + float(res.tau2)
    w = 1 / v
    X = np.ones((len(v), 1))
    H = X @ np.linalg.inv(X.T @ (w[:, None] * X)) @ (X.T * w)
    ImH = np.eye(len(v)) - H
    var = np.diag(ImH @ np.diag(v) @ ImH.T)
    expected = (data["yi"].to_numpy() - res.b[0]) / np.sqrt(var)
    np.testing.assert_allclose(studentized_residuals(res, data), expected, rtol=1e-10)


def test_the_outlier_rule_drops_the_outlier_and_refits():
    data = _data()
    data.loc[data.index[0], "yi"] = 5.0
    mv = enumerate_specs({"how": {"structure": ["random"], "outliers": ["none", "studentized"]}})
    plain, cleaned = (SpecFitter(data, _settings()).fit(s) for s in mv.specs)
    call = ModelCall(method="REML", test="z")
    z = studentized_residuals(call.fit(data), data)
    assert abs(z[0]) > 3  # the planted outlier is one of those dropped
    expected = call.fit(data.loc[np.abs(z) <= 3])
    assert plain.n_outliers == 0 and cleaned.n_outliers == int(np.sum(np.abs(z) > 3))
    assert cleaned.k == plain.k - cleaned.n_outliers
    assert cleaned.estimate == float(expected.b[0]) and cleaned.se == float(expected.se[0])


def test_too_small_subsets_stay_in_the_table_with_their_reason():
    data = _data(n_studies=6)
    section = {
        "which": {"arm": ["all", 3]},
        "how": {"structure": ["three_level"], "bias": ["none", "pet_peese"]},
        "min_studies_multilevel": 7,
        "min_k_pet_peese": 1000,
    }
    mv = enumerate_specs(section)
    chunk = fit_chunk(data, mv.specs, _settings(min_studies_multilevel=7, min_k_pet_peese=1000))
    table, summary = summarise(mv, [chunk])
    assert len(table) == len(mv) == 4
    assert set(table["status"]) == {"too_small"}
    assert table["reason"].str.contains("min_studies_multilevel").all()
    assert summary.n_fitted == 0 and summary.median_estimate is None


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_draws_depend_on_seed_and_draw_only():
    data = _data()
    a = bootstrap_data(data, "paper", ("paper", "row"), 7, 2)
    b = bootstrap_data(data.sample(frac=1.0, random_state=1), "paper", ("paper", "row"), 7, 2)
    key = ["paper", "row", "yi"]
    pd.testing.assert_frame_equal(
        a[key].sort_values(key).reset_index(drop=True),
        b[key].sort_values(key).reset_index(drop=True),
    )
    assert a["paper"].nunique() == data["paper"].nunique()  # every draw a study of its own
    assert not a.equals(bootstrap_data(data, "paper", ("paper", "row"), 7, 3))


def test_chunking_does_not_change_any_number():
    data = _data()
    mv = enumerate_specs({**SECTION, "bootstrap": 2, "chunk_size": 5})
    settings = _settings()
    whole = fit_chunk(data, mv.specs, settings, draws=2, seed=11)
    parts = [
        fit_chunk(data, mv.chunk(c), settings, draws=2, seed=11, chunk=c)
        for c in range(mv.n_chunks)
    ]
    assert [f.to_dict() for p in parts for f in p.fits] == [f.to_dict() for f in whole.fits]
    np.testing.assert_array_equal(np.hstack([p.boot_estimate for p in parts]), whole.boot_estimate)
    # and the JSON round trip is exact
    back = ChunkResult.from_dict(json.loads(json.dumps(parts[0].to_dict())))
    np.testing.assert_array_equal(back.boot_pval, parts[0].boot_pval)
    assert back.fits == parts[0].fits


#: every model, outlier rule and bias adjustment, for the shortcuts of the bootstrap under the null
EVERY_HOW = {
    "which": {"region": ["all", "S"]},
    "how": {
        "structure": ["fixed", "random", "che"],
        "method": ["REML"],
        "rho": [0.5],
        "outliers": ["none", "studentized", "deleted"],
        "bias": ["none", "pet_peese", "selection"],
    },
    "exclude": [
        {"outliers": "deleted", "structure": "fixed"},
        {"outliers": "deleted", "structure": "che"},
    ],
}


def test_bootstrap_draws_give_the_numbers_of_refitting_each_spec_to_its_shifted_draw():
    # Source: the definition of the bootstrap under the null (module docstring of
    # multiverse.fit): in draw b, spec j is fitted afresh to the draw with yi - estimate_j. The
    # chunk reuses one fit per subset and model across specs and shifts instead; a low outlier
    # threshold makes the outlier rules drop effect sizes, so every path is taken.
    data = _data(seed=8, n_studies=12)
    mv = enumerate_specs(EVERY_HOW)
    settings = _settings(outlier_threshold=1.8, min_k_selection=15)
    got = fit_chunk(data, mv.specs, settings, draws=2, seed=5)
    assert {spec.bias for spec, f in zip(mv.specs, got.fits, strict=True) if f.ok} == {
        "none",
        "pet_peese",
        "selection",
    }
    assert any(f.n_outliers > 0 for f in got.fits)
    for spec, observed in zip(mv.specs, got.fits, strict=True):
        assert observed == SpecFitter(data, settings).fit(spec)  # alone: nothing shared
    compared = 0
    for b in range(2):
        draw = bootstrap_data(data, "paper", ("paper", "row"), 5, b)
        for j, (spec, observed) in enumerate(zip(mv.specs, got.fits, strict=True)):
            expected = None
            if observed.ok:
                shifted = draw.assign(yi=draw["yi"] - observed.estimate)
                expected = SpecFitter(shifted, settings).fit(spec)
            if expected is None or not expected.ok:
                assert np.isnan(got.boot_estimate[b, j]) and np.isnan(got.boot_pval[b, j])
                continue
            compared += 1
            np.testing.assert_allclose(
                got.boot_estimate[b, j], expected.estimate, rtol=0, atol=1e-10
            )
            np.testing.assert_allclose(got.boot_pval[b, j], expected.pval, rtol=0, atol=1e-10)
    assert compared > 1.5 * sum(f.ok for f in got.fits)


@pytest.mark.parametrize("structure", ["random", "che"])
def test_shifted_pet_peese_is_pet_peese_of_the_shifted_effect_sizes(structure):
    # Source: refitting pet_peese_working_model to yi - c; the shifts cross the PET test's
    # threshold, so the choice between PET and PEESE changes with them
    from intervention_meta.methods.pet_peese import PetPeeseFits, pet_peese_working_model

    data = _data(seed=4, n_studies=20)
    random = ("paper", "row") if structure == "che" else ()
    call = ModelCall(random=random, method="REML", test="t", rho=0.5 if random else None)
    options = {"measure": "generic", "cluster": "paper"}
    fits = PetPeeseFits(data, call, **options)
    chosen = set()
    for c in (0.0, 0.1, fits.pet.intercept["beta"], fits.overall + 0.05, -0.4, 1.5):
        shifted = fits.working_model(c)
        refit = pet_peese_working_model(data.assign(yi=data["yi"] - c), call, **options)
        assert shifted.chosen == refit.chosen and shifted.alternative == refit.alternative
        chosen.add(shifted.chosen)
        for key in ("estimate", "se", "df", "pval", "ci_lb", "ci_ub", "overall", "pet_pval_test"):
            np.testing.assert_allclose(getattr(shifted, key), getattr(refit, key), atol=1e-10)
        for name in ("pet", "peese"):
            a, b = getattr(shifted, name).robust, getattr(refit, name).robust
            for key in ("b", "se", "tval", "df", "pval", "ci_lb", "ci_ub"):
                np.testing.assert_allclose(getattr(a, key), getattr(b, key), atol=1e-10)
        # the chosen regression alone, PEESE fitted only when the rule takes it
        alone = PetPeeseFits(data, call, **options, overall=fits.overall)
        only = alone.chosen(c)
        assert only.model == refit.chosen and ("peese" in vars(alone)) == (only.model == "PEESE")
        assert only.limit == (shifted.pet if only.model == "PET" else shifted.peese).limit
    assert chosen == {"PET", "PEESE"}
    direct = pet_peese_working_model(data, call, **options).to_dict()
    assert direct == fits.working_model().to_dict()


def test_under_a_true_null_the_bootstrap_test_does_not_reject_and_under_an_effect_it_does():
    mv = enumerate_specs(
        {"which": {"region": ["all", "N", "S"]}, "how": {"structure": ["random", "fixed"]}}
    )
    settings = _settings()
    strong = _data(seed=5, n_studies=20)
    strong["yi"] = strong["yi"] - strong["yi"].mean() + 0.8
    _, s_strong = summarise(mv, [fit_chunk(strong, mv.specs, settings, draws=19, seed=1)])
    assert s_strong.test.p_median == pytest.approx(1 / 20)  # no draw as extreme: the floor
    assert s_strong.share_significant == 1.0
    null = strong.assign(yi=strong["yi"] - 0.8)
    _, s_null = summarise(mv, [fit_chunk(null, mv.specs, settings, draws=19, seed=1)])
    assert s_null.test.p_median > 0.05
    assert len(s_null.test.medians) == 19


# --------------------------------------------------------------------------- the steps
def test_steps_write_the_table_json_and_figure(tmp_path):
    from intervention_meta.io import write_table
    from intervention_meta.multiverse.run import run_multiverse

    data = _data()
    mv_section = {**SECTION, "bootstrap": 1, "chunk_size": 10}
    mv = enumerate_specs(mv_section)
    settings = _settings()
    paths = []
    for c in range(mv.n_chunks):
        path = tmp_path / f"{c}.json"
        from intervention_meta.io import write_json

        write_json(fit_chunk(data, mv.chunk(c), settings, draws=1, seed=2, chunk=c), path)
        paths.append(str(path))
    write_table(data, tmp_path / "unused.csv")
    record = run_multiverse(
        chunks=paths,
        json=str(tmp_path / "models" / "multiverse.json"),
        table=str(tmp_path / "multiverse.csv"),
        figure=str(tmp_path / "mv" / "curve.png"),
        multiverse=mv_section,
        seed=2,
    )
    saved = json.loads((tmp_path / "models" / "multiverse.json").read_text())
    assert saved["summary"]["n_specs"] == len(mv)
    assert saved["figure"] == "../mv/curve.png"
    assert (tmp_path / "mv" / "curve.png").stat().st_size > 10_000
    table = pd.read_csv(tmp_path / "multiverse.csv")
    assert list(table["id"]) == [s.id for s in mv.specs]
    for key in ("region", "arm", "structure", "method", "k", "estimate", "ci_lb", "pval"):
        assert key in table.columns
    assert {r["factor"] for r in record["by_choice"]} >= {"region", "arm", "structure"}


@pytest.mark.pipeline
def test_the_example_pipeline_runs_its_multiverse_into_the_report(example_run):
    import yaml

    res = example_run.results
    record = json.loads((res / "models/multiverse.json").read_text())
    config = yaml.safe_load((example_run.work / "config/config.yaml").read_text())
    mv = enumerate_specs(config["multiverse"])
    assert record["summary"]["n_specs"] == len(mv)
    assert record["summary"]["bootstrap"]["draws"] == mv.settings["bootstrap"]
    assert len(list((res / "multiverse/chunks").glob("*.json"))) == mv.n_chunks
    assert (res / "multiverse/specification_curve.png").is_file()
    html = (res / "report.html").read_text(encoding="utf-8")
    assert 'id="multiverse"' in html and "Specification curve" in html


def test_unknown_which_variables_and_levels_are_reported_together(tmp_path):
    from intervention_meta.errors import InputError
    from intervention_meta.multiverse.run import run_multiverse_chunk

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    effect_sizes = effect_sizes_in_process("config/config.yaml", tmp_path)
    section = {
        "which": {"outcome_domian": ["all"], "design": ["all", "rtc", ["rct", "cohort"]]},
        "how": {"structure": ["random"]},
    }
    with pytest.raises(InputError) as err:
        run_multiverse_chunk(
            effect_sizes=str(effect_sizes),
            codebook=str(ROOT / config["codebook"]),
            out=str(tmp_path / "0.json"),
            chunk=0,
            multiverse=section,
            models=config["models"],
        )
    found = {(p.column, p.value) for p in err.value.problems}
    assert found == {("outcome_domian", "outcome_domian"), ("design", "rtc"), ("design", "cohort")}
    assert all(p.expected for p in err.value.problems)


def test_the_gather_step_reads_the_chunks_without_the_model_engine():
    # the gather job's start-up: the curve and the chunk files need neither the engine nor scipy
    code = (
        "import sys, intervention_meta.multiverse.run, intervention_meta.multiverse; "
        "heavy = ('scipy', 'intervention_meta.models'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
