"""The vignette study's analysis step: validate, clean, fit, write ``models.json`` and the findings.

What runs comes from the config's ``vignette`` section (``workflow/schemas/vignette.schema.yaml``
documents every key), never from the example's names:

* the data: the codebook's two tables (``data.<table>`` for each), checked by
  :func:`intervention_meta.data.validation.validate` and typed and merged by
  :func:`intervention_meta.data.cleaning.clean`, the same machinery (and the same errors) as the
  meta-analysis data;
* per outcome, each of its ``models`` (``gee``, ``glmm`` for a binary outcome; ``lmm``, ``clm`` for
  an ordinal or numeric one) twice: the *main-effects* model (every factor and every respondent
  group) and, with ``interactions``, the *interaction* model that adds each group x factor
  interaction. The models are :func:`intervention_meta.vignette.models.fit_vignette_model` with
  treatment coding (the first codebook level of each factor is the reference);
* from each fit: its terms, the joint Wald test of each factor, group and interaction
  (:func:`~intervention_meta.vignette.models.factor_tests`), and the marginal means of every factor
  and group (main-effects model) and of every factor per group (interaction model)
  (:func:`~intervention_meta.vignette.models.marginal_means`: emmeans' equally weighted reference
  grid, back-transformed: probabilities for a binary outcome, mean scores otherwise);
* the observed share (binary) or mean (otherwise) of every cell of the heat map's two factors per
  group level: a description of the data beside the models.

The outcome's ``primary`` model gives the findings (:mod:`intervention_meta.vignette.findings`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.data.codebook import Codebook, load_codebook
from intervention_meta.errors import InputError
from intervention_meta.vignette.settings import (
    BINARY_MODELS,
    SCALE_MODELS,
    vignette_config_problems,
)

log = logging.getLogger(__name__)

__all__ = [
    "BINARY_MODELS",
    "OutcomeSpec",
    "VignetteAnalysis",
    "VignetteSpec",
    "analyse_vignette",
    "run_vignette",
    "vignette_config_problems",
]

MODEL_NAMES = {
    "gee": "GEE logistic model (population-averaged, exchangeable working correlation, robust SE)",
    "glmm": "random-intercept logistic mixed model (GLMM)",
    "lmm": "random-intercept linear mixed model (LMM)",
    "clm": "cumulative-link (proportional-odds) model (CLM)",
}
TEST_COLUMNS = {
    "term": ("term", "effect", "factor", "model term", "model_term"),
    "statistic": ("statistic", "chisq", "chi2", "Chisq", "F.ratio", "F", "f"),
    "df": ("df", "df1", "Df", "df_num"),
    "df2": ("df2", "df_den"),
    "p": ("p", "p_value", "p.value", "Pr(>Chisq)", "pvalue"),
}


@dataclass(frozen=True)
class OutcomeSpec:
    """One outcome: its column, the models fitted and the primary one (the findings')."""

    name: str
    models: tuple[str, ...]
    primary: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "models": list(self.models), "primary": self.primary}


@dataclass(frozen=True)
class VignetteSpec:
    """What the analysis fits, from the config's ``vignette`` section and the codebook.

    ``factors`` and ``groups`` map each column to its levels in codebook order (first =
    reference); ``heatmap`` names the two factors of the heat map's cells.
    """

    cluster: str
    factors: dict[str, tuple[str, ...]]
    groups: dict[str, tuple[str, ...]]
    outcomes: tuple[OutcomeSpec, ...]
    interactions: bool = True
    level: float = 0.95
    nagq: int = 1
    heatmap: tuple[str, str] | None = None
    describe: tuple[str, ...] = ()
    characteristics: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, section: Mapping[str, Any], codebook: Codebook) -> VignetteSpec:
        """The spec of the config's ``vignette`` section (defaults filled in by the schema)."""

        def levels(name: str) -> tuple[str, ...]:
            return tuple(codebook.variables[name].levels)

        outcomes = []
        for name, entry in dict(section["outcomes"]).items():
            entry = dict(entry or {})
            binary = codebook.variables[name].type == "binary"
            models = tuple(entry.get("models") or (BINARY_MODELS if binary else SCALE_MODELS))
            outcomes.append(OutcomeSpec(name, models, str(entry.get("primary") or models[0])))
        factors = {f: levels(f) for f in section["factors"]}
        heatmap = section.get("heatmap") or list(factors)[:2]
        return cls(
            cluster=str(section["cluster"]),
            factors=factors,
            groups={g: levels(g) for g in section.get("groups") or ()},
            outcomes=tuple(outcomes),
            interactions=bool(section.get("interactions", True)),
            level=float(section.get("level", 0.95)),
            nagq=int(section.get("nagq", 1)),
            heatmap=tuple(heatmap[:2]) if len(heatmap) >= 2 else None,
            describe=tuple(section.get("describe") or ()),
            characteristics=tuple(section.get("characteristics") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "factors": {k: list(v) for k, v in self.factors.items()},
            "groups": {k: list(v) for k, v in self.groups.items()},
            "outcomes": [o.to_dict() for o in self.outcomes],
            "interactions": self.interactions,
            "level": self.level,
            "nagq": self.nagq,
            "heatmap": list(self.heatmap) if self.heatmap else None,
            "describe": list(self.describe),
            "characteristics": list(self.characteristics),
        }


@dataclass(frozen=True)
class VignetteAnalysis:
    """The fits, tests, marginal means and observed cells of a vignette study.

    ``fits`` is one record per fitted model (``id``, ``outcome``, ``model``, ``kind``
    main/interaction, ``primary``, ``fit``: the model's ``to_dict()``, ``tests``,
    ``marginal_means``); ``observed`` one row per heat-map cell and group level;
    ``described`` the shares of each ``describe`` variable's levels per factor level;
    ``respondents`` the respondents' characteristics per group level.
    """

    spec: VignetteSpec
    n_respondents: int
    n_ratings: int
    fits: tuple[dict, ...]
    observed: pd.DataFrame
    labels: dict = field(default_factory=dict)
    described: pd.DataFrame = field(default_factory=pd.DataFrame)
    respondents: pd.DataFrame = field(default_factory=pd.DataFrame)

    def fit(self, outcome: str, model: str, kind: str = "main") -> dict:
        """The record of one fit."""
        for record in self.fits:
            if (record["outcome"], record["model"], record["kind"]) == (outcome, model, kind):
                return record
        raise KeyError(f"no {kind} {model} fit of {outcome}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "vignette",
            "level": self.spec.level,
            "n_respondents": self.n_respondents,
            "n_ratings": self.n_ratings,
            "design": self.spec.to_dict(),
            "labels": self.labels,
            "fits": list(self.fits),
            "observed": self.observed.to_dict(orient="records"),
            "described": self.described.to_dict(orient="records"),
            "respondents": self.respondents.to_dict(orient="records"),
        }

    def terms_frame(self) -> pd.DataFrame:
        """Every fit's terms, one row each (the human table ``vignette_terms.csv``)."""
        rows = [
            {"outcome": r["outcome"], "model": r["model"], "kind": r["kind"], **term}
            for r in self.fits
            for term in r["fit"]["terms"]
        ]
        return pd.DataFrame(rows)

    def tests_frame(self) -> pd.DataFrame:
        rows = [
            {"outcome": r["outcome"], "model": r["model"], "kind": r["kind"], **t}
            for r in self.fits
            for t in r["tests"]
        ]
        return pd.DataFrame(rows)

    def means_frame(self) -> pd.DataFrame:
        rows = [
            {"outcome": r["outcome"], "model": r["model"], "kind": r["kind"], **m}
            for r in self.fits
            for m in r["marginal_means"]
        ]
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        return self.terms_frame()


# --------------------------------------------------------------------------- config checks
# --------------------------------------------------------------------------- fitting
def _test_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The joint tests as records with the keys term, statistic, df, df2, p, kind."""
    found = {}
    for key, names in TEST_COLUMNS.items():
        found[key] = next((c for c in names if c in frame.columns), None)
    kind = "wald_f" if found["statistic"] in ("F.ratio", "F", "f") else "wald_chi2"
    if "kind" in frame.columns:
        kinds = frame["kind"].tolist()
    else:
        kinds = [kind] * len(frame)
    records = []
    for (_, row), k in zip(frame.iterrows(), kinds, strict=True):
        record = {key: (row[col] if col is not None else None) for key, col in found.items()}
        record["term"] = str(record["term"])
        for key in ("statistic", "df", "df2", "p"):
            value = record[key]
            record[key] = None if value is None or pd.isna(value) else float(value)
        record["kind"] = k
        records.append(record)
    return records


def _means_records(means: Any) -> list[dict[str, Any]]:
    frame = means.to_frame()
    frame = frame.astype(object).where(pd.notna(frame), None)
    return frame.to_dict(orient="records")


def _number(value: Any) -> float | None:
    return None if value is None or not np.isfinite(float(value)) else float(value)


def _fit_summary(fit: Any) -> dict[str, Any]:
    """The fit's record in ``models.json``, from the attributes of the models API: the terms
    (one record each: term, estimate, se, statistic, p, ci_lb, ci_ub), thresholds, variance
    components and facts."""
    terms = fit.to_frame()
    terms = terms.astype(object).where(pd.notna(terms), None)
    return {
        "model": fit.model,
        "outcome": fit.outcome,
        "family": fit.family,
        "level": float(fit.level),
        "df": _number(fit.df),
        "terms": terms.to_dict(orient="records"),
        "thresholds": [
            {"name": str(name), "estimate": _number(est), "se": _number(se)}
            for name, est, se in fit.thresholds or ()
        ],
        "variance_components": {k: _number(v) for k, v in fit.variance_components.items()},
        "loglik": _number(fit.loglik),
        "n_obs": int(fit.n_obs),
        "n_clusters": int(fit.n_clusters),
        "converged": bool(fit.converged),
        "factors": {k: [str(v) for v in levels] for k, levels in fit.factors.items()},
    }


def _fit_record(
    models: ModuleType,
    frame: pd.DataFrame,
    spec: VignetteSpec,
    outcome: OutcomeSpec,
    model: str,
    kind: str,
) -> dict[str, Any]:
    factors = {**spec.factors, **spec.groups}
    interactions = (
        [(g, f) for g in spec.groups for f in spec.factors] if kind == "interaction" else []
    )
    fit = models.fit_vignette_model(
        frame,
        model=model,
        outcome=outcome.name,
        factors=factors,
        cluster=spec.cluster,
        interactions=interactions,
        level=spec.level,
        nagq=spec.nagq,
    )
    means = []
    if kind == "main":
        for name in factors:
            means += _means_records(models.marginal_means(fit, frame, name))
    else:
        for group in spec.groups:
            for name in spec.factors:
                means += _means_records(models.marginal_means(fit, frame, name, by=group))
    record = {
        "id": f"{outcome.name}_{model}_{kind}",
        "outcome": outcome.name,
        "model": model,
        "kind": kind,
        "primary": model == outcome.primary,
        "interactions": [list(pair) for pair in interactions],
        "fit": _fit_summary(fit),
        "tests": _test_records(models.factor_tests(fit)),
        "marginal_means": means,
    }
    log.info(
        "vignette: %s %s model of %s: %d terms, converged %s",
        kind,
        model,
        outcome.name,
        len(fit.terms),
        fit.converged,
    )
    return record


def _observed(frame: pd.DataFrame, spec: VignetteSpec) -> pd.DataFrame:
    """The observed share (binary) or mean of each outcome per heat-map cell and group level."""
    if spec.heatmap is None:
        return pd.DataFrame()
    row, col = spec.heatmap
    groups = list(spec.groups) or [None]
    out = []
    for outcome in spec.outcomes:
        for group in groups:
            keys = [row, col] + ([group] if group else [])
            values = frame[outcome.name].astype(float)
            cells = values.groupby([frame[k] for k in keys], observed=True).agg(["mean", "size"])
            for index, stats in cells.iterrows():
                index = index if isinstance(index, tuple) else (index,)
                out.append(
                    {
                        "outcome": outcome.name,
                        "row_factor": row,
                        "row_level": str(index[0]),
                        "col_factor": col,
                        "col_level": str(index[1]),
                        "group": group,
                        "group_level": str(index[2]) if group else None,
                        "mean": float(stats["mean"]),
                        "n": int(stats["size"]),
                    }
                )
    return pd.DataFrame(out)


def _levels_in_data(spec: VignetteSpec, frame: pd.DataFrame) -> VignetteSpec:
    """``spec`` with each factor's and group's codebook levels that the data have (in codebook
    order); a level no rating has is left out, with a warning."""
    from dataclasses import replace

    def present(levels: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        out = {}
        for name, codes in levels.items():
            seen = set(frame[name].dropna())
            out[name] = tuple(c for c in codes if c in seen)
            for c in codes:
                if c not in seen:
                    log.warning("vignette: no rating has %s '%s'; left out of the models", name, c)
        return out

    return replace(spec, factors=present(spec.factors), groups=present(spec.groups))


def _shares(
    values: pd.Series,
    by: pd.Series | None,
    levels: Sequence[str] = (),
    by_levels: Sequence[str] = (),
) -> list[tuple[str | None, str, int, int]]:
    """(by level, level, count, of) for the non-missing ``values``, per level of ``by``; levels
    in the order of ``levels`` (those not seen count 0), then any others as seen."""
    keep = values.notna()
    values = values[keep].astype(str)
    if by is None:
        groups = [(None, values)]
    else:
        keys = by[keep].astype(str)
        order = list(dict.fromkeys([*by_levels, *keys]))
        groups = [(k, values[keys == k]) for k in order if (keys == k).any()]
    out = []
    for key, part in groups:
        counts = part.value_counts(sort=False)
        for level in dict.fromkeys([*levels, *counts.index]):
            out.append((key, str(level), int(counts.get(level, 0)), len(part)))
    return out


def _codes(labels: Mapping[str, Any], name: str) -> list[str]:
    return list((labels.get(name) or {}).get("levels") or {})


def _described(frame: pd.DataFrame, spec: VignetteSpec, labels: Mapping[str, Any]) -> pd.DataFrame:
    """The share of each level of every ``describe`` variable (e.g. whom respondents would
    address), of the ratings with a value, overall and per level of each factor and group."""
    rows = []
    for name in spec.describe:
        for by in (None, *spec.factors, *spec.groups):
            by_values = None if by is None else frame[by]
            levels, by_levels = _codes(labels, name), [] if by is None else _codes(labels, by)
            for key, level, n, of in _shares(frame[name], by_values, levels, by_levels):
                rows.append(
                    {
                        "variable": name,
                        "by": by,
                        "by_level": key,
                        "level": level,
                        "n": n,
                        "of": of,
                        "share": n / of,
                    }
                )
    return pd.DataFrame(rows)


def _respondents(
    frame: pd.DataFrame, spec: VignetteSpec, labels: Mapping[str, Any]
) -> pd.DataFrame:
    """Per group level (and all respondents): the count and, for each ``characteristics``
    variable, the share of each level (variables with levels in ``labels``) or the mean and SD
    (numbers)."""
    people = frame.drop_duplicates(spec.cluster)
    group = next(iter(spec.groups), None)
    parts = [(None, people)]
    if group is not None:
        parts += [(level, people[people[group] == level]) for level in spec.groups[group]]
    rows = []
    for key, part in parts:
        rows.append({"group_level": key, "variable": None, "level": None, "n": len(part)})
        for name in spec.characteristics:
            values = part[name]
            if not (labels.get(name) or {}).get("levels"):
                numbers = values.dropna().astype(float)
                rows.append(
                    {
                        "group_level": key,
                        "variable": name,
                        "level": None,
                        "n": len(numbers),
                        "mean": float(numbers.mean()),
                        "sd": float(numbers.std(ddof=1)) if len(numbers) > 1 else None,
                    }
                )
                continue
            for _, level, n, of in _shares(values, None, _codes(labels, name)):
                rows.append(
                    {"group_level": key, "variable": name, "level": level, "n": n, "share": n / of}
                )
    return pd.DataFrame(rows)


def analyse_vignette(
    frame: pd.DataFrame,
    spec: VignetteSpec,
    *,
    labels: Mapping[str, Any] | None = None,
    models: ModuleType | None = None,
) -> VignetteAnalysis:
    """Fit every model of ``spec`` to the cleaned ratings (one row per rating, with the
    respondents' columns).

    Parameters
    ----------
    frame : the clean table; factor and group columns hold the codebook's codes.
    spec : what to fit (:class:`VignetteSpec`).
    labels : readable names of the variables and levels, kept in the result for the outputs.
    models : the models module (default :mod:`intervention_meta.vignette.models`); anything with
        ``fit_vignette_model``, ``marginal_means`` and ``factor_tests``.
    """
    models = models or models_module()
    frame = frame.copy()
    for name in (*spec.factors, *spec.groups):
        frame[name] = frame[name].astype("string").astype(object)
    spec = _levels_in_data(spec, frame)
    used = [o.name for o in spec.outcomes]
    frame = frame.dropna(subset=[spec.cluster, *spec.factors, *spec.groups])
    fits = []
    kinds = ["main"] + (["interaction"] if spec.interactions and spec.groups else [])
    for outcome in spec.outcomes:
        data = frame.dropna(subset=[outcome.name]).copy()
        data[outcome.name] = data[outcome.name].astype(float)
        for model in outcome.models:
            for kind in kinds:
                fits.append(_fit_record(models, data, spec, outcome, model, kind))
    observed = _observed(frame.dropna(subset=used), spec)
    described = _described(frame, spec, dict(labels or {}))
    respondents = _respondents(frame, spec, dict(labels or {}))
    return VignetteAnalysis(
        spec=spec,
        n_respondents=int(frame[spec.cluster].nunique()),
        n_ratings=len(frame),
        fits=tuple(fits),
        observed=observed,
        described=described,
        respondents=respondents,
        labels=dict(labels or {}),
    )


def variable_labels(codebook: Codebook, names: Sequence[str]) -> dict[str, Any]:
    """``{name: {"label": ..., "levels": {code: label}}}`` of the codebook's variables."""
    return {
        name: {
            "label": codebook.label(name),
            "levels": {str(k): str(v) for k, v in codebook.variables[name].levels.items()},
        }
        for name in names
    }


# --------------------------------------------------------------------------- the step
def run_vignette(
    *,
    codebook: str,
    data: Mapping[str, str],
    vignette: Mapping[str, Any],
    json: str,
    findings: str,
    terms: str,
    tests: str,
    means: str,
    passed: str,
    tables: Sequence[str] = (),
) -> VignetteAnalysis:
    """The ``vignette`` step: validate and clean the two tables, fit, write the results.

    Parameters
    ----------
    codebook : the vignette codebook.
    data : the config's ``data``: a file per codebook table (``data.<table>``).
    vignette : the config's ``vignette`` section.
    json : ``models.json`` (every fit, test and marginal mean; keys in ``docs/results.md``).
    findings : ``findings.json`` (:func:`intervention_meta.vignette.findings.findings`).
    terms, tests, means : the human CSVs of the terms, tests and marginal means.
    passed : the validation summary; the full report goes beside it (``report.md``,
        ``report.csv``).
    tables : the data files again (the rule's input, so that it reruns when they change); they
        are read through ``data``.

    Raises
    ------
    InputError
        With every problem of the data (file, row, column, value, expected) when validation
        finds an error, or of the config's vignette section.
    """
    from intervention_meta.data.cleaning import clean
    from intervention_meta.io import write_json, write_table
    from intervention_meta.steps import validate
    from intervention_meta.vignette.findings import findings as make_findings

    config = {"codebook": codebook, "data": dict(data), "vignette": dict(vignette)}
    problems = vignette_config_problems(config)
    if problems:
        raise InputError(problems, summary=f"vignette config: {len(problems)} problem(s)")
    cb = load_codebook(codebook)
    parent, child = cb.parent_table, cb.child_table
    validate(codebook=codebook, studies=data[parent], effects=data[child], passed=passed)
    cleaned = clean(cb, data[parent], data[child])
    spec = VignetteSpec.from_config(vignette, cb)
    names = [*spec.factors, *spec.groups, *(o.name for o in spec.outcomes), *spec.describe]
    names += list(spec.characteristics)
    analysis = analyse_vignette(
        cleaned.effects, spec, labels=variable_labels(cb, names), models=models_module()
    )
    write_json(analysis.to_dict(), json)
    write_json(make_findings(analysis.to_dict()), findings)
    write_table(analysis.terms_frame(), terms)
    write_table(analysis.tests_frame(), tests)
    write_table(analysis.means_frame(), means)
    log.info(
        "vignette: %d respondents, %d ratings, %d fits -> %s",
        analysis.n_respondents,
        analysis.n_ratings,
        len(analysis.fits),
        json,
    )
    return analysis


def models_module() -> ModuleType:
    """The models (:mod:`intervention_meta.vignette.models`), imported when first needed."""
    import importlib

    return importlib.import_module("intervention_meta.vignette.models")
