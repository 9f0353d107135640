"""The design of a vignette model: checked input, treatment-coded design matrix, reference grid.

A vignette model has categorical predictors only (the vignette factors, the respondent's role and
any other categorical covariate) and two-way interactions between them. Each factor is coded with
treatment contrasts against its first level, as R's ``contr.treatment``; the columns are, in order,
``(Intercept)``, each factor's non-reference levels (``style[permissive]``) in the order the factors
are given, then each interaction's products with the first factor's levels varying fastest
(``role[professional]:style[permissive]``), the column order of R's ``model.matrix`` for
``~ role + style + ... + role:style`` with the same level orders.

The reference grid is every combination of every factor's levels (emmeans' grid for a model with
categorical predictors only); marginal means and joint tests are linear functions of the
coefficients built from it.

References
----------
Lenth, R. V. (2023). emmeans: Estimated Marginal Means, aka Least-Squares Means. R package 1.8.4.
Searle, S. R., Speed, F. M., & Milliken, G. A. (1980). Population marginal means in the linear
model: an alternative to least squares means. *The American Statistician*, 34, 216-221.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intervention_meta.errors import InputError, Problem

log = logging.getLogger(__name__)

FAMILIES = {"gee": "binomial", "glmm": "binomial", "lmm": "gaussian", "clm": "ordinal"}
INPUT = "vignette data"


@dataclass(frozen=True)
class Design:
    """The factors (column -> levels, first = reference), interactions and the terms they code."""

    factors: dict[str, tuple[str, ...]]
    interactions: tuple[tuple[str, str], ...]
    terms: tuple[str, ...]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The treatment-coded design matrix (with the intercept column) of ``frame``'s rows."""
        cols = [np.ones(len(frame))]
        dummies: dict[str, dict[str, np.ndarray]] = {}
        for name, levels in self.factors.items():
            values = frame[name].astype(str).to_numpy()
            dummies[name] = {lv: (values == lv).astype(float) for lv in levels[1:]}
            cols.extend(dummies[name].values())
        for a, b in self.interactions:
            for lb in self.factors[b][1:]:
                for la in self.factors[a][1:]:
                    cols.append(dummies[a][la] * dummies[b][lb])
        return np.column_stack(cols)

    def grid(self) -> pd.DataFrame:
        """Every combination of the factors' levels (the first factor varying slowest)."""
        combos = list(itertools.product(*self.factors.values()))
        return pd.DataFrame(combos, columns=list(self.factors))


def make_design(
    factors: Mapping[str, Sequence[str]], interactions: Sequence[tuple[str, str]]
) -> Design:
    """The :class:`Design` of the given factors and two-way interactions."""
    factors = {str(k): tuple(level_text(v) for v in lv) for k, lv in factors.items()}
    for name, levels in factors.items():
        if len(levels) < 2:
            raise ValueError(f"factor {name!r} needs at least two levels, got {list(levels)}")
        if len(set(levels)) != len(levels):
            raise ValueError(f"factor {name!r} repeats a level: {list(levels)}")
    pairs = []
    for pair in interactions:
        a, b = pair
        for f in (a, b):
            if f not in factors:
                raise ValueError(
                    f"interaction {a}:{b} names {f!r}, which is not one of the factors "
                    f"{list(factors)}"
                )
        if a == b:
            raise ValueError(f"interaction {a}:{b} crosses a factor with itself")
        pairs.append((str(a), str(b)))
    terms = ["(Intercept)"]
    for name, levels in factors.items():
        terms += [f"{name}[{lv}]" for lv in levels[1:]]
    for a, b in pairs:
        terms += [f"{a}[{la}]:{b}[{lb}]" for lb in factors[b][1:] for la in factors[a][1:]]
    return Design(factors, tuple(pairs), tuple(terms))


def level_text(value: object) -> str:
    """A cell's value as a level label (``3.0`` read from a CSV is the level ``"3"``), the form
    in which factor levels and data values are compared."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ModelSpec:
    """What a vignette model is fitted to: the model, outcome, factors, cluster, covariates and
    interactions (the arguments of :func:`.models.fit_vignette_model`)."""

    model: str
    outcome: str
    factors: Mapping[str, Sequence[str]]
    cluster: str
    covariates: Sequence[str] = ()
    interactions: Sequence[tuple[str, str]] = ()


def _sorted_levels(values: pd.Series) -> list:
    """A column's distinct values in R's factor order: numerically if all are numbers."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return sorted(pd.unique(numbers))
    return sorted({level_text(v) for v in values})


def prepare(
    frame: pd.DataFrame, spec: ModelSpec, source: str = INPUT
) -> tuple[pd.DataFrame, Design]:
    """Check the data of a vignette model and return the rows it uses with its :class:`Design`.

    Rows with a missing value in a used column are left out (as R's ``na.omit``; the number is
    logged). Every problem is collected and raised at once as one :class:`InputError` naming the
    row (spreadsheet numbering: header = row 1), column, value and what was expected: a missing
    column; a factor value that is not one of the factor's levels; a level given for a factor that
    no row has; an outcome that is not 0/1 (binomial), not numeric (gaussian) or has fewer than two
    distinct values; a cluster (respondent) with a single rating.

    ``covariates`` are further categorical columns whose levels are taken from the data in sorted
    order (R's default); they are appended to ``factors``.
    """
    model, outcome, cluster = spec.model, spec.outcome, spec.cluster
    factors, covariates, interactions = spec.factors, spec.covariates, spec.interactions
    if model not in FAMILIES:
        raise ValueError(f"model must be one of {sorted(FAMILIES)}, got {model!r}")
    family = FAMILIES[model]
    problems: list[Problem] = []
    needed = [outcome, cluster, *factors, *covariates]
    for col in dict.fromkeys(needed):
        if col not in frame.columns:
            problems.append(
                Problem(
                    source, None, col, col, f"a column {col!r} (columns: {list(frame.columns)})"
                )
            )
    if problems:
        raise InputError(problems, f"{len(problems)} missing column(s) in the {source}")
    used = frame[list(dict.fromkeys(needed))]
    keep = used.notna().all(axis=1).to_numpy()
    if not keep.all():
        log.info("%d of %d rows with a missing value left out", int((~keep).sum()), len(frame))
    rows = np.flatnonzero(keep) + 2  # spreadsheet row numbers
    data = frame.loc[keep].copy()

    all_factors = {str(k): [level_text(v) for v in lv] for k, lv in factors.items()}
    for cov in covariates:
        all_factors[str(cov)] = [level_text(v) for v in _sorted_levels(data[cov])]
    for name, levels in all_factors.items():
        values = data[name].map(level_text)
        data[name] = values
        bad = ~values.isin(levels).to_numpy()
        for r, v in zip(rows[bad], values.to_numpy()[bad], strict=True):
            problems.append(Problem(source, int(r), name, v, f"one of the levels {levels}"))
        present = set(values)
        for lv in levels:
            if lv not in present:
                problems.append(
                    Problem(source, None, name, lv, f"a level that occurs in the data ({name})")
                )

    y = data[outcome]
    if family == "binomial":
        num = pd.to_numeric(y.map(lambda v: {True: 1, False: 0}.get(v, v)), errors="coerce")
        bad = ~num.isin([0, 1]).to_numpy()
        for r, v in zip(rows[bad], y.to_numpy()[bad], strict=True):
            problems.append(Problem(source, int(r), outcome, v, "0 or 1 (a binary outcome)"))
        data[outcome] = num.astype(float)
    elif family == "gaussian":
        num = pd.to_numeric(y, errors="coerce")
        bad = num.isna().to_numpy()
        for r, v in zip(rows[bad], y.to_numpy()[bad], strict=True):
            problems.append(Problem(source, int(r), outcome, v, "a number"))
        data[outcome] = num
    distinct = pd.unique(data[outcome].dropna())
    if len(distinct) < 2:
        problems.append(
            Problem(
                source,
                None,
                outcome,
                distinct[0] if len(distinct) else None,
                "at least two different outcome values (the outcome is constant)",
            )
        )
    sizes = data.groupby(cluster, sort=False)[outcome].size()
    for cid in sizes.index[sizes.to_numpy() < 2]:
        r = rows[(data[cluster] == cid).to_numpy()][0]
        problems.append(
            Problem(source, int(r), cluster, cid, "at least two ratings per cluster (respondent)")
        )
    if problems:
        raise InputError(
            problems, f"{len(problems)} problem(s) in the {source} for the {model} model"
        )
    design = make_design(all_factors, interactions)
    return data, design


def check_rank(x: np.ndarray, design: Design) -> None:
    """Raise :class:`InputError` naming the terms no row has, or a ``ValueError`` for any other
    linear dependence among the design's columns."""
    empty = [t for t, col in zip(design.terms, x.T, strict=True) if not col.any()]
    if empty:
        raise InputError(
            [Problem(INPUT, None, t, 0, "at least one row with this combination") for t in empty],
            f"{len(empty)} term(s) of the model have no data",
        )
    rank = np.linalg.matrix_rank(x)
    if rank < x.shape[1]:
        raise ValueError(
            f"the design matrix has rank {rank} < {x.shape[1]} columns ({list(design.terms)}): "
            "some factor combinations are confounded in these data"
        )
