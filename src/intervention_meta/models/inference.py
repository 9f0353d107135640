"""Tests and confidence intervals for the fixed effects (z, t, Knapp-Hartung) and Wald tests.

* ``test="z"``: :math:`z_j = b_j/\\mathrm{se}_j` against N(0, 1); the omnibus test of the
  coefficients ``btt`` is :math:`Q_M = b_{btt}^\\top V_{btt}^{-1} b_{btt} \\sim \\chi^2_m`.
* ``test="t"``: the same statistics against :math:`t_{k-p}` (metafor 3.8 ``dfs = "residual"``);
  :math:`F = Q_M/m \\sim F(m, k-p)`.
* ``test="knha"`` (Hartung 1999; Knapp & Hartung 2003): as ``"t"`` after scaling the covariance of
  :math:`b` by :math:`s^2 = \\sum_i w_i(y_i - x_i^\\top b)^2/(k-p)`, :math:`w_i = 1/(v_i +
  \\hat\\tau^2)` (not truncated at 1, metafor 3.8; :math:`s^2 = 0` if the weighted RSS is below
  machine epsilon, as metafor).

References
----------
Hartung, J. (1999). An alternative method for meta-analysis. *Biometrical Journal*, 41, 901-916.
Knapp, G., & Hartung, J. (2003). Improved tests for a random effects meta-regression with a single
covariate. *Statistics in Medicine*, 22, 2693-2710.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special  # the distributions scipy.stats evaluates, without its overhead

from intervention_meta.models.errors import ModelError

TESTS = ("z", "t", "knha")


def knha_factor(weighted_rss: float, k: int, p: int) -> float:
    """Knapp-Hartung scaling factor :math:`s^2` (metafor 3.8: not truncated at 1)."""
    if weighted_rss <= np.finfo(float).eps:
        return 0.0
    return weighted_rss / (k - p)


@dataclass(frozen=True)
class CoefficientTests:
    """Per-coefficient standard errors, test statistics, p values and confidence limits."""

    se: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    df: float | None
    crit: float


def critical_value(test: str, df: float | None, level: float) -> float:
    """Two-sided critical value: normal for ``z``, :math:`t_{df}` otherwise."""
    alpha = 1.0 - level
    if test == "z":
        return float(-special.ndtri(alpha / 2.0))
    if df is None or df <= 0:
        return float("nan")
    return float(-special.stdtrit(df, alpha / 2.0))


def coefficient_tests(
    b: np.ndarray, vb: np.ndarray, *, test: str, df: float | None, level: float
) -> CoefficientTests:
    """z or t tests and Wald-type confidence intervals of the coefficients."""
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = b / se
    if test == "z":
        pval = 2.0 * special.ndtr(-np.abs(stat))
    elif df is not None and df > 0:
        pval = 2.0 * special.stdtr(df, -np.abs(stat))
    else:
        pval = np.full_like(b, np.nan)
    crit = critical_value(test, df, level)
    return CoefficientTests(se, stat, pval, b - crit * se, b + crit * se, df, crit)


@dataclass(frozen=True)
class WaldTest:
    """Omnibus test that the coefficients ``coefs`` are all zero.

    ``stat`` is :math:`Q_M` (chi-square, ``df2`` None) for ``test="z"`` and :math:`Q_M/m`
    (F with ``df1 = m``, ``df2 = k - p``) for the t/knha tests.
    """

    coefs: tuple[str, ...]
    stat: float
    df1: int
    df2: float | None
    pval: float
    distribution: str

    def to_dict(self) -> dict:
        return {
            "coefs": list(self.coefs),
            "stat": self.stat,
            "df1": self.df1,
            "df2": self.df2,
            "pval": self.pval,
            "distribution": self.distribution,
        }


def resolve_btt(btt: Sequence[int | str] | int | str, coef_names: Sequence[str]) -> list[int]:
    """Coefficient positions (0-based) from positions or names."""
    items = [btt] if isinstance(btt, int | str | np.integer) else list(btt)
    out = []
    for item in items:
        if isinstance(item, str):
            if item not in coef_names:
                raise ModelError(f"unknown coefficient {item!r}; coefficients: {list(coef_names)}")
            out.append(list(coef_names).index(item))
        else:
            j = int(item)
            if not 0 <= j < len(coef_names):
                raise ModelError(f"coefficient position {j} out of range 0..{len(coef_names) - 1}")
            out.append(j)
    if not out or len(set(out)) != len(out):
        raise ModelError(f"btt must name distinct coefficients, got {btt!r}")
    return out


def wald_test(
    b: np.ndarray,
    vb: np.ndarray,
    btt: Sequence[int],
    coef_names: Sequence[str],
    *,
    test: str,
    df: float | None,
) -> WaldTest:
    """:math:`Q_M = b_{btt}^\\top (V_{btt})^{-1} b_{btt}`; chi-square(m) or F(m, df) = Q_M/m."""
    idx = list(btt)
    m = len(idx)
    if m == 1:  # one coefficient: b^2 / var(b)
        j = idx[0]
        qm = float(b[j] * (b[j] / vb[j, j])) if vb[j, j] != 0 else float("nan")
    else:
        try:
            qm = float(b[idx] @ np.linalg.solve(vb[np.ix_(idx, idx)], b[idx]))
        except np.linalg.LinAlgError:
            qm = float("nan")
    names = tuple(coef_names[j] for j in idx)
    if test == "z":
        return WaldTest(names, qm, m, None, float(special.chdtrc(m, qm)), "chi2")
    fstat = qm / m
    pval = float(special.fdtrc(m, df, fstat)) if df is not None and df > 0 else float("nan")
    return WaldTest(names, fstat, m, df, pval, "F")
