"""Model matrix, response and random-effects grouping of a meta-analytic model.

The moderators are coded as R's ``model.matrix`` codes them, so coefficient names and values match
metafor: numeric columns enter as they are; non-numeric columns (object, string, category, bool) are
factors with treatment coding whose reference is the first level (the alphabetically first label,
or the first category of a pandas ``Categorical``); coefficients are named ``<column><level>`` and
the intercept ``intrcpt``. Without an intercept the first factor gets one indicator per level (R's
``~ factor(x) - 1``: per-category means).

Random effects ``random=[outer, ..., inner]`` follow metafor's nesting ``~ 1 | outer/.../inner``:
level ``l`` groups the rows by the *tuple* of columns ``0..l``, so inner ids may repeat across outer
units.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intervention_meta.models.errors import ModelError

logger = logging.getLogger(__name__)

INTERCEPT_NAME = "intrcpt"
_RANK_TOL = 1e-9


@dataclass(frozen=True)
class Term:
    """One moderator column and how it is coded.

    Attributes
    ----------
    column : the data column
    kind : ``"numeric"`` or ``"factor"``
    levels : the factor's levels in coding order (empty for numeric columns)
    coded_levels : the levels that get an indicator column (all but the reference, or all levels
        for the first factor of a model without intercept)
    names : the coefficient names this term contributes
    """

    column: str
    kind: str
    levels: tuple[str, ...]
    coded_levels: tuple[str, ...]
    names: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "kind": self.kind,
            "levels": list(self.levels),
            "coded_levels": list(self.coded_levels),
            "names": list(self.names),
        }


@dataclass(frozen=True)
class Design:
    """Everything a fit needs from the data, after dropping incomplete rows.

    Attributes
    ----------
    y, v : (k,) effect sizes and sampling variances
    X : (k, p) model matrix
    coef_names : the p coefficient names (R's)
    intercept : whether ``X`` contains the intercept column
    terms : how each moderator is coded
    random : the random-effect id columns, outermost first (empty for a one-level model)
    level_codes : per random level, (k,) integer codes of the tuple of columns ``0..l``
    n_levels : number of distinct units per random level
    data : the rows used (original index kept), all columns
    dropped : index labels of the rows dropped for missing values
    """

    y: np.ndarray
    v: np.ndarray
    X: np.ndarray
    coef_names: tuple[str, ...]
    intercept: bool
    terms: tuple[Term, ...]
    random: tuple[str, ...]
    level_codes: tuple[np.ndarray, ...]
    n_levels: tuple[int, ...]
    data: pd.DataFrame
    dropped: tuple

    @property
    def k(self) -> int:
        return int(self.y.shape[0])

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    @property
    def intercept_only(self) -> bool:
        return self.intercept and self.p == 1

    def encode(self, newdata: pd.DataFrame) -> np.ndarray:
        """Model-matrix rows for new moderator values, coded exactly as the fitted design."""
        n = len(newdata)
        cols = [np.ones(n)] if self.intercept else []
        for term in self.terms:
            if term.column not in newdata.columns:
                raise ModelError(f"new data lack the moderator column {term.column!r}")
            values = newdata[term.column]
            if values.isna().any():
                raise ModelError(f"new data have missing values in {term.column!r}")
            if term.kind == "numeric":
                cols.append(values.to_numpy(dtype=float))
                continue
            labels = values.map(_level_label)
            unknown = sorted(set(labels) - set(term.levels))
            if unknown:
                raise ModelError(
                    f"new data have unknown level(s) {unknown} of {term.column!r}; "
                    f"known levels: {list(term.levels)}"
                )
            for level in term.coded_levels:
                cols.append((labels == level).to_numpy(dtype=float))
        return np.column_stack(cols) if cols else np.empty((n, 0))


def _level_label(value: object) -> str:
    """A factor level's label as R prints it (``TRUE``, ``2`` for 2.0, the string otherwise)."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    if isinstance(dtype, np.dtype):  # numpy dtypes: integer, unsigned, float or complex
        return dtype.kind in "iufc"
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _factor_levels(series: pd.Series) -> tuple[str, ...]:
    """Observed levels in R's order: categories' order for a Categorical, else sorted labels."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        observed = set(series.dropna().map(_level_label))
        return tuple(lab for lab in map(_level_label, series.cat.categories) if lab in observed)
    if pd.api.types.is_bool_dtype(series):
        return tuple(lab for lab in ("FALSE", "TRUE") if lab in set(series.map(_level_label)))
    return tuple(sorted(set(series.map(_level_label))))


def _check_columns(data: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ModelError(
            f"{what} column(s) {missing} not in the data (columns: {list(data.columns)})"
        )


def _full_rank(A: np.ndarray) -> bool:
    """Whether the smallest singular value of ``A`` exceeds ``1e-9`` times max(1, the largest)."""
    if A.shape[1] == 1:  # one column: its singular value is its length
        sv = np.array([np.sqrt(A[:, 0] @ A[:, 0])])
    else:
        sv = np.linalg.svd(A, compute_uv=False)
    return bool(sv[-1] > _RANK_TOL * max(1.0, sv[0]))


def aliased_columns(X: np.ndarray, names: Sequence[str]) -> list[str]:
    """Columns that are linear combinations of the columns before them (R's aliasing order).

    Columns are scaled to unit length; column ``j`` is aliased when adding it to the retained
    columns does not raise the numerical rank (singular values below ``1e-9`` times the largest).
    When all the columns together pass this test, so does every subset of them (its smallest
    singular value is no smaller and its largest no larger), and none is aliased. A single
    column of finite positive length is never aliased.
    """
    if X.shape[1] == 1 and 0 < np.linalg.norm(X[:, 0]) < np.inf:
        return []
    norms = np.linalg.norm(X, axis=0)
    out = [names[j] for j in np.flatnonzero(norms == 0)]
    nz = np.flatnonzero(norms > 0)
    if nz.size == 0:
        return out
    Xs = X[:, nz] / norms[nz]
    if not out and _full_rank(Xs):
        return []
    R = np.linalg.qr(Xs, mode="r")
    kept: list[int] = []
    for pos, j in enumerate(nz):
        if _full_rank(R[:, kept + [pos]]):
            kept.append(pos)
        else:
            out.append(names[j])
    order = {n: i for i, n in enumerate(names)}
    return sorted(out, key=order.__getitem__)


def nested_codes(columns: Sequence[pd.Series | np.ndarray]) -> list[np.ndarray]:
    """Integer codes of the units of nested levels: level ``l`` is the tuple of columns ``0..l``.

    Units are numbered in the sorted order of their tuples (as ``groupby(sort=True).ngroup()``).
    """
    out: list[np.ndarray] = []
    prev = None
    for col in columns:
        if not isinstance(col.dtype, pd.CategoricalDtype):
            col = np.asarray(col)  # (a plain array factorizes faster, in the same order)
        if col.dtype.kind in "iuf":  # numbers: sorting them is faster, in the same order
            uniques, codes = np.unique(col, return_inverse=True)
        else:
            codes, uniques = pd.factorize(col, sort=True)
        codes = codes.astype(np.int64)
        if prev is not None:
            codes = np.unique(prev * len(uniques) + codes, return_inverse=True)[1]
        out.append(codes.reshape(-1))
        prev = out[-1]
    return out


def build_design(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    *,
    mods: Sequence[str] | None = None,
    random: Sequence[str] | None = None,
    intercept: bool = True,
) -> Design:
    """Response, sampling variances, model matrix and random-effect grouping from a data frame.

    Rows with a missing value in ``yi``, ``vi``, a moderator or a random-effect column are dropped
    (logged as a warning and recorded in ``Design.dropped``).

    Raises
    ------
    ModelError
        Unknown columns, non-numeric or non-finite ``yi``/``vi``, non-positive ``vi``, a factor with
        a single level, or a singular model matrix (naming the aliased columns).
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    mods = list(mods or [])
    random = list(random or [])
    if isinstance(mods, str) or isinstance(random, str):  # pragma: no cover - defensive
        raise ModelError("mods and random must be lists of column names")
    _check_columns(data, [yi, vi], "effect-size")
    _check_columns(data, mods, "moderator")
    _check_columns(data, random, "random-effect")
    if len(set(random)) != len(random):
        raise ModelError(f"random-effect columns repeat: {random}")
    used = list(dict.fromkeys([yi, vi, *mods, *random]))
    series = {c: data[c] for c in used}
    for col in (yi, vi):
        if not _is_numeric(series[col]):
            raise ModelError(f"column {col!r} must be numeric, has dtype {series[col].dtype}")

    incomplete = np.column_stack([pd.isna(series[c].to_numpy()) for c in used]).any(axis=1)
    dropped = tuple(data.index[incomplete]) if incomplete.any() else ()
    if dropped:
        logger.warning(
            "%d row(s) with missing values in %s dropped: index %s",
            len(dropped),
            used,
            list(dropped)[:20],
        )
    if dropped:
        df = data.loc[~incomplete]
        series = {c: df[c] for c in used}
    else:
        df = data.copy(deep=False)

    y = series[yi].to_numpy(dtype=float)
    v = series[vi].to_numpy(dtype=float)
    if not (np.isfinite(y).all() and np.isfinite(v).all()):
        raise ModelError(f"{yi!r} and {vi!r} must be finite")
    if (v <= 0).any():
        bad = list(df.index[v <= 0][:10])
        raise ModelError(f"sampling variances must be positive; {vi!r} <= 0 at index {bad}")

    k = len(df)
    cols: list[np.ndarray] = [np.ones(k)] if intercept else []
    names: list[str] = [INTERCEPT_NAME] if intercept else []
    terms: list[Term] = []
    full_coding_used = intercept
    for col in mods:
        values = series[col]
        if _is_numeric(values):
            cols.append(values.to_numpy(dtype=float))
            names.append(col)
            terms.append(Term(col, "numeric", (), (), (col,)))
            continue
        levels = _factor_levels(values)
        if len(levels) < 2:
            raise ModelError(
                f"moderator {col!r} has a single level {list(levels)} in the rows used; "
                "a factor needs at least two levels"
            )
        coded = levels if not full_coding_used else levels[1:]
        full_coding_used = True
        labels = values.map(_level_label).to_numpy()
        term_names = tuple(f"{col}{lev}" for lev in coded)
        for lev in coded:
            cols.append((labels == lev).astype(float))
        names.extend(term_names)
        terms.append(Term(col, "factor", levels, coded, term_names))
    if not cols:
        raise ModelError("the model has no coefficients (no intercept and no moderators)")
    X = np.column_stack(cols)
    if len(set(names)) != len(names):
        raise ModelError(f"coefficient names repeat: {names}")
    aliased = aliased_columns(X, names)
    if aliased:
        raise ModelError(
            f"the model matrix is singular: column(s) {aliased} are linear combinations of the "
            f"other columns of {names}; drop or recode the moderator(s)"
        )

    level_codes = nested_codes([series[col] for col in random])
    n_levels = [int(codes.max()) + 1 if k else 0 for codes in level_codes]

    return Design(
        y=y,
        v=v,
        X=X,
        coef_names=tuple(names),
        intercept=intercept,
        terms=tuple(terms),
        random=tuple(random),
        level_codes=tuple(level_codes),
        n_levels=tuple(n_levels),
        data=df,
        dropped=dropped,
    )


def subset_design(design: Design, keep: np.ndarray) -> Design | None:
    """The design restricted to the rows ``keep`` (a boolean mask), coded as the full design.

    This is what :func:`build_design` gives on those rows whenever every coefficient stays
    estimable; ``None`` when one does not (a factor level, or a moderator's variation, found only
    in the left-out rows), where :func:`build_design` would code the moderators anew or fail.
    Units of the random levels are renumbered (in the same sorted order).
    """
    keep = np.asarray(keep, dtype=bool)
    X = design.X[keep]
    if aliased_columns(X, design.coef_names):
        return None
    codes = tuple(
        np.unique(c[keep], return_inverse=True)[1].reshape(-1) for c in design.level_codes
    )
    return dataclasses.replace(
        design,
        y=design.y[keep],
        v=design.v[keep],
        X=X,
        level_codes=codes,
        n_levels=tuple(int(c.max()) + 1 if c.size else 0 for c in codes),
        data=design.data.iloc[np.flatnonzero(keep)],
        dropped=(),
    )
