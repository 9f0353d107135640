"""The vignette step's plumbing on a differently shaped study (two factors, a two-level group,
other table and column names, an integer outcome), with a stand-in for the models API so that
what is tested is the step: which fits it asks for, how the records, findings, tables, figures
and report are made from them. The models themselves are tested against R in
``test_vignette_models.py``; the real pipeline in ``test_vignette_pipeline.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from intervention_meta.io import read_json
from intervention_meta.outputs.vignette_report import (
    finding_sentence,
    run_vignette_outputs,
    vignette_tables,
)
from intervention_meta.vignette import analysis
from intervention_meta.vignette.findings import findings

CODEBOOK = {
    "tables": {"people": {"key": "person"}, "answers": {"key": "answer_id", "parent": "people"}},
    "variables": [
        {"name": "person", "table": "people", "type": "id", "required": True},
        {
            "name": "kind",
            "table": "people",
            "type": "categorical",
            "levels": {"b": "Kind B", "a": "Kind A"},
            "required": True,
            "label": "Kind",
        },
        {"name": "years", "table": "people", "type": "integer", "required": True},
        {"name": "answer_id", "table": "answers", "type": "id", "required": True},
        {
            "name": "motive",
            "table": "answers",
            "type": "categorical",
            "levels": {"y": "Why", "x": "Ex"},
            "required": False,
            "label": "Motive",
        },
        {
            "name": "tone",
            "table": "answers",
            "type": "categorical",
            "levels": {"calm": "Calm", "angry": "Angry"},
            "required": True,
            "label": "Tone",
        },
        {
            "name": "place",
            "table": "answers",
            "type": "categorical",
            "levels": {"home": "Home", "park": "Park", "shop": "Shop"},
            "required": True,
        },
        {
            "name": "helped",
            "table": "answers",
            "type": "binary",
            "levels": {0: "no", 1: "yes"},
            "required": True,
            "label": "Helped",
        },
        {
            "name": "score",
            "table": "answers",
            "type": "integer",
            "range": {"min": 0, "max": 10},
            "required": True,
            "label": "Score",
        },
    ],
}


def _study(folder: Path) -> dict[str, str]:
    """12 people (kinds a and b) x 6 answers (tone x place), deterministic values."""
    rng = np.random.default_rng(7)
    people = pd.DataFrame(
        {"person": [f"P{i}" for i in range(12)], "kind": ["a", "b"] * 6, "years": range(12)}
    )
    rows = []
    for p in people["person"]:
        for tone in ("calm", "angry"):
            for place in ("home", "park", "shop"):
                rows.append(
                    (
                        f"{p}-{tone}-{place}",
                        p,
                        tone,
                        place,
                        int(rng.random() < 0.5),
                        int(rng.integers(0, 11)),
                        "x" if tone == "angry" else ("y" if place == "home" else ""),
                    )
                )
    columns = ["answer_id", "person", "tone", "place", "helped", "score", "motive"]
    answers = pd.DataFrame(rows, columns=columns)
    (folder / "codebook.yaml").write_text(yaml.safe_dump(CODEBOOK, sort_keys=False))
    people.to_csv(folder / "people.csv", index=False)
    answers.to_csv(folder / "answers.csv", index=False)
    return {"people": str(folder / "people.csv"), "answers": str(folder / "answers.csv")}


@dataclass(frozen=True)
class _Fit:
    """The attributes of the models API's VignetteFit that the step reads."""

    model: str
    outcome: str
    family: str
    terms: tuple
    estimate: np.ndarray
    factors: dict
    interactions: tuple
    level: float

    se = property(lambda self: np.full(len(self.terms), 0.1))
    statistic = property(lambda self: self.estimate / 0.1)
    p = property(lambda self: np.full(len(self.terms), 0.5))
    ci_lb = property(lambda self: self.estimate - 0.196)
    ci_ub = property(lambda self: self.estimate + 0.196)
    df = None
    thresholds = ()
    variance_components = {"person_sd": 0.5}
    loglik = -1.0
    n_obs = 72
    n_clusters = 12
    converged = True

    def to_frame(self) -> pd.DataFrame:
        keys = ("estimate", "se", "statistic", "p", "ci_lb", "ci_ub")
        return pd.DataFrame({"term": self.terms, **{k: getattr(self, k) for k in keys}})


class FakeModels:
    """A stand-in for intervention_meta.vignette.models, recording every call."""

    def __init__(self):
        self.calls = []

    def fit_vignette_model(
        self,
        frame,
        *,
        model,
        outcome,
        factors,
        cluster,
        interactions=(),
        level=0.95,
        nagq=1,
        covariates=(),
    ):
        self.calls.append((model, outcome, tuple(factors), tuple(map(tuple, interactions))))
        assert cluster == "person" and set(frame[outcome].unique()) <= set(range(11))
        terms = ["(Intercept)"] + [f"{f}[{lv}]" for f, lvs in factors.items() for lv in lvs[1:]]
        terms += [
            f"{a}[{x}]:{b}[{y}]"
            for a, b in interactions
            for x in factors[a][1:]
            for y in factors[b][1:]
        ]
        family = "binomial" if model in ("gee", "glmm") else "gaussian"
        estimate = np.linspace(-0.5, 0.5, len(terms))
        return _Fit(
            model,
            outcome,
            family,
            tuple(terms),
            estimate,
            dict(factors),
            tuple(interactions),
            level,
        )

    def marginal_means(self, fit, frame, factor, by=None, level=None):
        rows = []
        for j, b in enumerate(fit.factors[by] if by else [None]):
            for i, lv in enumerate(fit.factors[factor]):
                est = 0.3 + 0.1 * i + 0.01 * j
                rows.append(
                    {
                        "factor": factor,
                        "level": lv,
                        "by_level": b,
                        "estimate": est,
                        "se": 0.1,
                        "ci_lb": est - 0.1,
                        "ci_ub": est + 0.1,
                        "scale": "probability" if fit.family == "binomial" else "mean",
                    }
                )
        return SimpleNamespace(to_frame=lambda: pd.DataFrame(rows))

    def factor_tests(self, fit):
        names = list(fit.factors) + [f"{a}:{b}" for a, b in fit.interactions]
        return pd.DataFrame(
            {
                "term": names,
                "df": [1.0] * len(names),
                "statistic": [2.0 + i for i in range(len(names))],
                "p": [0.2] * len(names),
                "kind": ["wald_chi2"] * len(names),
            }
        )


SECTION = {
    "cluster": "person",
    "factors": ["tone", "place"],
    "groups": ["kind"],
    "interactions": True,
    "outcomes": {"helped": {"models": ["glmm", "gee"]}, "score": {"models": ["lmm"]}},
    "level": 0.9,
    "nagq": 1,
    "describe": ["motive"],
    "characteristics": ["years", "kind"],
}


@pytest.fixture
def study(tmp_path, monkeypatch):
    fake = FakeModels()
    monkeypatch.setattr(analysis, "models_module", lambda: fake)
    data = _study(tmp_path)
    out = {
        name: str(tmp_path / "res" / f"{name}.{ext}")
        for name, ext in (
            ("json", "json"),
            ("findings", "json"),
            ("terms", "csv"),
            ("tests", "csv"),
            ("means", "csv"),
        )
    }
    analysis.run_vignette(
        codebook=str(tmp_path / "codebook.yaml"),
        data=data,
        vignette=SECTION,
        passed=str(tmp_path / "res" / "validation" / "passed.txt"),
        **out,
    )
    return SimpleNamespace(fake=fake, out=out, folder=tmp_path, data=data)


def test_the_step_fits_what_the_config_names(study):
    """Per outcome and model a main-effects fit (factors, then groups, codebook level order:
    the first level is the reference) and one with every group x factor interaction."""
    calls = study.fake.calls
    assert [(m, o) for m, o, _, _ in calls] == [
        ("glmm", "helped"),
        ("glmm", "helped"),
        ("gee", "helped"),
        ("gee", "helped"),
        ("lmm", "score"),
        ("lmm", "score"),
    ]
    assert calls[0][2] == ("tone", "place", "kind") and calls[0][3] == ()
    assert calls[1][3] == (("kind", "tone"), ("kind", "place"))
    models = read_json(study.out["json"])
    assert models["design"]["groups"] == {"kind": ["b", "a"]}  # codebook order, not sorted
    assert models["n_respondents"] == 12 and models["n_ratings"] == 72
    assert models["level"] == 0.9
    primary = [(f["outcome"], f["model"]) for f in models["fits"] if f["primary"]]
    assert set(primary) == {("helped", "glmm"), ("score", "lmm")}  # default: the first model


def test_findings_copy_the_primary_models_numbers(study):
    """Every number of findings.json is the primary main-effects model's in models.json."""
    models, found = read_json(study.out["json"]), read_json(study.out["findings"])
    assert found == findings(models)
    assert [f["id"] for f in found["findings"]] == [
        "helped_by_tone",
        "helped_by_place",
        "helped_by_kind",
        "score_by_tone",
        "score_by_place",
        "score_by_kind",
    ]
    for f in found["findings"]:
        fit = next(
            x
            for x in models["fits"]
            if x["outcome"] == f["outcome"] and x["primary"] and x["kind"] == "main"
        )
        means = {m["level"]: m for m in fit["marginal_means"] if m["factor"] == f["factor"]}
        for lv in f["levels"]:
            for key in ("estimate", "ci_lb", "ci_ub"):
                assert lv[key] == means[lv["level"]][key]
        test = next(t for t in fit["tests"] if t["term"] == f["factor"])
        assert f["test"]["statistic"] == test["statistic"] and f["test"]["p"] == test["p"]
        assert f["kind"] == ("group" if f["factor"] == "kind" else "factor")
        assert f["highest"] == max(f["levels"], key=lambda lv: lv["estimate"])["level"]
    tone = found["findings"][0]
    assert tone["factor_label"] == "Tone" and tone["levels"][1]["label"] == "Angry"
    assert "Helped, by tone: highest for Angry (probability 0.40, 90% CI [0.30, 0.50])" in (
        finding_sentence(tone, 0.9)
    )


def test_the_human_tables_hold_every_term_test_and_mean(study):
    models = read_json(study.out["json"])
    terms = pd.read_csv(study.out["terms"])
    assert len(terms) == sum(len(f["fit"]["terms"]) for f in models["fits"])
    tests = pd.read_csv(study.out["tests"])
    assert set(tests["term"]) == {"tone", "place", "kind", "kind:tone", "kind:place"}
    assert len(pd.read_csv(study.out["means"])) == sum(
        len(f["marginal_means"]) for f in models["fits"]
    )


def test_described_variables_and_characteristics(study):
    """Shares of a described variable (codebook order, zero counts kept; of the ratings with a
    value) and the respondents' characteristics per group."""
    models = read_json(study.out["json"])
    described = pd.DataFrame(models["described"])
    overall = described[described["by"].isna()].set_index("level")
    assert list(overall.index) == ["y", "x"]  # codebook order
    assert overall.loc["x", "n"] == 36 and overall.loc["y", "n"] == 12
    assert overall.loc["x", "share"] == pytest.approx(36 / 48)
    calm = described[(described["by"] == "tone") & (described["by_level"] == "calm")]
    assert calm.set_index("level").loc["x", "n"] == 0  # zero counts kept
    people = pd.DataFrame(models["respondents"])
    years = people[(people["variable"] == "years") & people["group_level"].isna()].iloc[0]
    assert years["mean"] == pytest.approx(5.5) and years["n"] == 12
    kind_a = people[(people["variable"] == "kind") & (people["group_level"] == "a")]
    assert kind_a.set_index("level").loc["a", "share"] == 1.0


def test_outputs_of_another_shape(study, tmp_path):
    """Tables, figures and the report from models.json alone, for a study with other names,
    two factors, no heat-map setting (the first two factors) and a 90% level."""
    res = tmp_path / "res"
    run_vignette_outputs(
        json=study.out["json"],
        findings=study.out["findings"],
        passed=str(res / "validation" / "passed.txt"),
        config={"analysis": "other", "vignette": SECTION},
        html=str(res / "report.html"),
        provenance=str(res / "provenance.json"),
        tables_index=str(res / "tables" / "tables.json"),
        figures_manifest=str(res / "figures" / "figures.json"),
        checksummed=list(study.data.values()),
    )
    manifest = read_json(res / "figures" / "figures.json")["figures"]
    assert [f["stem"] for f in manifest] == [
        "means_tone",
        "means_place",
        "heatmap_helped",
        "heatmap_score",
    ]
    assert all(Path(f["png"]).is_file() for f in manifest)
    page = (res / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "http://" not in page.replace("http://www.w3.org", "") and 'src="http' not in page
    for name in ("Summary", "Methods", "Results", "Provenance", "90% CI", "Kind A"):
        assert name in page
    names = [t.name for t in vignette_tables(read_json(study.out["json"]))]
    assert names == [
        "respondents",
        "described_motive",
        "terms_helped",
        "tests_helped",
        "means_helped",
        "group_means_helped",
        "interaction_terms_helped",
        "fits_helped",
        "terms_score",
        "tests_score",
        "means_score",
        "group_means_score",
        "interaction_terms_score",
        "fits_score",
    ]
    assert "Effect measure" not in page  # no meta-analysis measure note on these tables
