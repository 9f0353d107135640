"""Effect sizes and their sampling variances from whatever a study reported.

Pure, vectorised functions over numpy arrays (scalars and pandas Series work too): one function per
conversion, each returning an :class:`EffectSizeArrays` (``yi``, ``vi``, ``measure``). The
standardised-mean-difference functions follow metafor 3.8 ``escalc()`` exactly where metafor has
the conversion (``measure="SMD"``, ``"MD"``, ``"ROM"``, ``"OR"``, ``"RR"``, ``"RD"``, ``"OR2DL"``,
``"OR2DN"``, ``"ZCOR"``, ``"COR"``, ``"PLO"``, ``"PR"``, ``"SMCR"``, ``"SMCC"``, with its defaults
``vtype="LS"`` and ``add=1/2, to="only0"``); the others follow the textbook named in each
docstring.

Conventions: group 1 is the intervention group, group 2 the control group; differences are
group 1 minus group 2. Each docstring says which small-sample correction (if any) is applied.

Validation is light: an argument outside its domain (an SD <= 0, a p outside (0, 1), ...) raises
:class:`ValueError` naming the argument; missing values (NaN) propagate to NaN. The table-level step
(:mod:`intervention_meta.effect_sizes.compute`) checks every row before calling these functions and
sends
impossible rows to its ``dropped`` table instead.

References
----------
Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009). *Introduction to
Meta-Analysis*. Wiley. (ch. 4: d and g; ch. 6: r and z; ch. 7: converting among effect sizes)

Hedges, L. V., Gurevitch, J., & Curtis, P. S. (1999). The meta-analysis of response ratios in
experimental ecology. *Ecology*, 80(4), 1150-1156.

Hasselblad, V., & Hedges, L. V. (1995). Meta-analysis of screening and diagnostic tests.
*Psychological Bulletin*, 117(1), 167-178.

Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
estimators. *Journal of Educational Statistics*, 6(2), 107-128.

Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of Educational and
Behavioral Statistics*, 32(4), 341-370.

Higgins, J. P. T., et al. (eds.) (2023). *Cochrane Handbook for Systematic Reviews of
Interventions*, version 6.4, sections 6.3.1 (SE from a CI) and 23.1.4 (design effect).

Lipsey, M. W., & Wilson, D. B. (2001). *Practical Meta-Analysis*. Sage. (Appendix B)

Morris, S. B. (2008). Estimating effect sizes from pretest-posttest-control group designs.
*Organizational Research Methods*, 11(2), 364-386.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "EffectSizeArrays",
    "Z_975",
    "apply_design_effect",
    "correlation",
    "design_effect",
    "fisher_z_from_r",
    "has_zero_cell",
    "hedges_j",
    "hedges_j_approx",
    "log_odds_ratio",
    "log_odds_ratio_from_ci",
    "log_ratio_of_means",
    "log_risk_ratio",
    "log_risk_ratio_from_ci",
    "logit_proportion",
    "mean_difference",
    "proportion",
    "risk_difference",
    "se_from_ci",
    "smc_change",
    "smc_raw",
    "smd_from_counts",
    "smd_from_d_ci",
    "smd_from_d_se",
    "smd_from_f",
    "smd_from_log_odds_ratio",
    "smd_from_means",
    "smd_from_p",
    "smd_from_r",
    "smd_from_t",
    "smd_prepost_control",
]

#: The 97.5% standard normal quantile (the "1.959964" of a 95% CI), as R's ``qnorm(0.975)``.
#: (``scipy.stats.norm.ppf(0.975)`` to the last bit; a literal, so that importing this module
#: does not import scipy.stats.)
Z_975: float = 1.959963984540054

VType = Literal["LS", "LS2", "UB"]


@dataclass(frozen=True)
class EffectSizeArrays:
    """Effect sizes ``yi`` with sampling variances ``vi`` (1-d float arrays of equal length).

    ``measure`` names the scale as metafor does: ``"SMD"`` (Hedges' g), ``"OR"`` (log odds ratio),
    ``"ZCOR"`` (Fisher z), ``"SMCR"`` / ``"SMCC"`` (standardised mean change).
    """

    yi: np.ndarray
    vi: np.ndarray
    measure: str

    @property
    def sei(self) -> np.ndarray:
        """Standard errors, ``sqrt(vi)``."""
        return np.sqrt(self.vi)

    def to_dict(self) -> dict:
        return {"measure": self.measure, "yi": self.yi.tolist(), "vi": self.vi.tolist()}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"yi": self.yi, "vi": self.vi, "sei": self.sei})


# --------------------------------------------------------------------------- helpers


def _arr(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def _check(ok: np.ndarray, values: np.ndarray, name: str, expected: str) -> None:
    """Raise ValueError when a non-missing value of ``name`` fails ``ok``."""
    bad = ~np.isnan(values) & ~ok
    if np.any(bad):
        shown = ", ".join(repr(float(v)) for v in values[bad][:5])
        raise ValueError(f"{name} must be {expected}; got {shown}")


def _positive(x: np.ndarray, name: str) -> None:
    with np.errstate(invalid="ignore"):
        _check(np.isfinite(x) & (x > 0), x, name, "> 0")


def _inside(lower: np.ndarray, x: np.ndarray, upper: np.ndarray, name: str) -> None:
    """Raise ValueError when ``x`` is not strictly inside its reported interval."""
    with np.errstate(invalid="ignore"):
        _check(
            (lower < x) & (x < upper),
            np.where(np.isnan(lower + upper), np.nan, x),
            name,
            f"inside its confidence interval (lower < {name} < upper)",
        )


def _group_size(n: np.ndarray, name: str, minimum: float = 2) -> None:
    with np.errstate(invalid="ignore"):
        _check(np.isfinite(n) & (n >= minimum), n, name, f">= {minimum:g}")


def _correlation(r: np.ndarray, name: str) -> None:
    with np.errstate(invalid="ignore"):
        _check(np.abs(r) < 1, r, name, "in (-1, 1)")


def _direction(direction) -> np.ndarray:
    d = _arr(direction)
    _check(np.isin(d, (-1.0, 1.0)), d, "direction", "+1 or -1")
    return d


def hedges_j(df) -> np.ndarray:
    r"""Exact small-sample correction factor of Hedges (1981).

    .. math:: J(m) = \frac{\Gamma(m/2)}{\sqrt{m/2}\,\Gamma((m-1)/2)}

    computed on the log scale (``scipy.special.gammaln``), as metafor's ``.cmicalc``; ``NaN`` for
    ``m <= 1``. ``J(m) < 1`` and ``J(m) -> 1`` as ``m -> inf``.
    """
    from scipy import special

    m = _arr(df)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(special.gammaln(m / 2) - 0.5 * np.log(m / 2) - special.gammaln((m - 1) / 2))
    return np.where(m > 1, out, np.nan)


def hedges_j_approx(df) -> np.ndarray:
    """Approximate correction factor ``J(m) = 1 - 3 / (4 m - 1)`` (Hedges 1981; Morris 2008 c_P)."""
    m = _arr(df)
    return 1 - 3 / (4 * m - 1)


def _smd_variance(g, d, j, n1, n2, vtype: str) -> np.ndarray:
    """Sampling variance of g as metafor 3.8 ``escalc(measure="SMD")`` for each ``vtype``."""
    if vtype == "LS":
        return 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
    if vtype == "LS2":
        return j**2 * (1 / n1 + 1 / n2 + d**2 / (2 * (n1 + n2)))
    if vtype == "UB":
        m = n1 + n2 - 2
        return 1 / n1 + 1 / n2 + (1 - (m - 2) / (m * j**2)) * g**2
    raise ValueError(f"vtype must be 'LS', 'LS2' or 'UB'; got {vtype!r}")


def _smd_from_d(d, n1, n2, vtype: str) -> EffectSizeArrays:
    j = hedges_j(n1 + n2 - 2)
    g = j * d
    return EffectSizeArrays(g, _smd_variance(g, d, j, n1, n2, vtype), "SMD")


# --------------------------------------------------------------------------- two independent groups


def smd_from_means(m1, sd1, n1, m2, sd2, n2, vtype: VType = "LS") -> EffectSizeArrays:
    r"""Hedges' g from the means, SDs and sizes of two independent groups.

    .. math::

        s_p = \sqrt{\frac{(n_1-1)s_1^2 + (n_2-1)s_2^2}{n_1+n_2-2}}, \quad
        d = \frac{\bar x_1 - \bar x_2}{s_p}, \quad g = J(n_1+n_2-2)\, d

    with the exact :func:`hedges_j`. Variance (``vtype``), as metafor 3.8 ``escalc(measure="SMD")``:

    * ``"LS"`` (default, large-sample; Hedges 1981, Borenstein et al. 2009 eq. 4.20 with g for d):
      :math:`v = 1/n_1 + 1/n_2 + g^2 / (2(n_1+n_2))`
    * ``"LS2"`` (Borenstein et al. 2009, eq. 4.24):
      :math:`v = J^2 (1/n_1 + 1/n_2 + d^2/(2(n_1+n_2)))`
    * ``"UB"`` (unbiased; Hedges 1983): :math:`v = 1/n_1 + 1/n_2 + (1 - (m-2)/(m J^2)) g^2`,
      :math:`m = n_1+n_2-2`

    Small-sample correction: exact J with df = n1 + n2 - 2.

    Examples
    --------
    Borenstein et al. (2009, ch. 4): means 103 / 100, SDs 5.5 / 4.5, n = 50 + 50 give g = 0.5924.

    >>> round(float(smd_from_means(103, 5.5, 50, 100, 4.5, 50).yi[0]), 4)
    0.5924
    """
    m1, sd1, n1, m2, sd2, n2 = map(_arr, (m1, sd1, n1, m2, sd2, n2))
    _positive(sd1, "sd1")
    _positive(sd2, "sd2")
    _group_size(n1, "n1")
    _group_size(n2, "n2")
    sp = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
    return _smd_from_d((m1 - m2) / sp, n1, n2, vtype)


def mean_difference(m1, sd1, n1, m2, sd2, n2) -> EffectSizeArrays:
    r"""Raw mean difference of two independent groups, as metafor 3.8 ``escalc(measure="MD")``.

    .. math:: y = \bar x_1 - \bar x_2, \quad v = \frac{s_1^2}{n_1} + \frac{s_2^2}{n_2}

    (Borenstein et al. 2009, eq. 4.5, without assuming equal variances; metafor's default
    ``vtype="LS"``). Small-sample correction: none.
    """
    m1, sd1, n1, m2, sd2, n2 = map(_arr, (m1, sd1, n1, m2, sd2, n2))
    _positive(sd1, "sd1")
    _positive(sd2, "sd2")
    _group_size(n1, "n1")
    _group_size(n2, "n2")
    return EffectSizeArrays(m1 - m2, sd1**2 / n1 + sd2**2 / n2, "MD")


def log_ratio_of_means(m1, sd1, n1, m2, sd2, n2) -> EffectSizeArrays:
    r"""Log ratio of means (response ratio), as metafor 3.8 ``escalc(measure="ROM")``.

    .. math:: y = \log\frac{\bar x_1}{\bar x_2}, \quad
              v = \frac{s_1^2}{n_1 \bar x_1^2} + \frac{s_2^2}{n_2 \bar x_2^2}

    (Hedges, Gurevitch & Curtis 1999, eq. 1 and 9; metafor's default ``vtype="LS"``). Needs
    positive means (a ratio scale). Small-sample correction: none.
    """
    m1, sd1, n1, m2, sd2, n2 = map(_arr, (m1, sd1, n1, m2, sd2, n2))
    _positive(m1, "m1")
    _positive(m2, "m2")
    _positive(sd1, "sd1")
    _positive(sd2, "sd2")
    _group_size(n1, "n1")
    _group_size(n2, "n2")
    vi = sd1**2 / (n1 * m1**2) + sd2**2 / (n2 * m2**2)
    return EffectSizeArrays(np.log(m1 / m2), vi, "ROM")


def smd_from_t(t, n1, n2, vtype: VType = "LS") -> EffectSizeArrays:
    r"""Hedges' g from an independent-groups t statistic (signed: positive when group 1 is higher).

    .. math:: d = t \sqrt{1/n_1 + 1/n_2}, \quad g = J(n_1+n_2-2)\, d

    (Borenstein et al. 2009, ch. 4; Lipsey & Wilson 2001, Table B10), variance as
    :func:`smd_from_means`: identical to metafor 3.8 ``escalc(measure="SMD", ti=, n1i=, n2i=)``.

    Small-sample correction: exact J with df = n1 + n2 - 2.
    """
    t, n1, n2 = map(_arr, (t, n1, n2))
    _group_size(n1, "n1")
    _group_size(n2, "n2")
    with np.errstate(invalid="ignore"):
        _check(np.isfinite(t), t, "t", "finite")
    return _smd_from_d(t * np.sqrt(1 / n1 + 1 / n2), n1, n2, vtype)


def smd_from_f(f, n1, n2, direction, vtype: VType = "LS") -> EffectSizeArrays:
    r"""Hedges' g from F(1, n1 + n2 - 2) of a two-group comparison, with the sign supplied.

    An F with one numerator df is a squared t (Lipsey & Wilson 2001, Table B10; Borenstein et al.
    2009, ch. 7), so :math:`t = \mathrm{direction} \cdot \sqrt{F}` and then :func:`smd_from_t`.
    ``direction`` is +1 when group 1 scored higher, -1 when lower.

    Small-sample correction: exact J with df = n1 + n2 - 2.
    """
    f = _arr(f)
    with np.errstate(invalid="ignore"):
        _check(np.isfinite(f) & (f >= 0), f, "f", ">= 0")
    return smd_from_t(_direction(direction) * np.sqrt(f), n1, n2, vtype)


def smd_from_p(p, n1, n2, direction, vtype: VType = "LS") -> EffectSizeArrays:
    r"""Hedges' g from an exact two-sided p of an independent-groups t test, with the sign supplied.

    .. math:: t = \mathrm{direction} \cdot t^{-1}_{n_1+n_2-2}(1 - p/2)

    (the t quantile, computed as the upper-tail inverse for accuracy at small p), then
    :func:`smd_from_t` (Lipsey & Wilson 2001, Table B10; Borenstein et al. 2009, ch. 7). The t
    distribution with df = n1 + n2 - 2 is used rather than the normal, which would understate d in
    small samples.

    Small-sample correction: exact J with df = n1 + n2 - 2.
    """
    from intervention_meta.models.distributions import t_isf

    p, n1, n2 = map(_arr, (p, n1, n2))
    with np.errstate(invalid="ignore"):
        _check((p > 0) & (p < 1), p, "p", "in (0, 1)")
    _group_size(n1, "n1")
    _group_size(n2, "n2")
    t = t_isf(p / 2, n1 + n2 - 2)
    return smd_from_t(_direction(direction) * t, n1, n2, vtype)


def se_from_ci(lower, upper, level: float = 0.95) -> np.ndarray:
    r"""Standard error from a symmetric (Wald) confidence interval.

    .. math:: SE = \frac{\mathrm{upper} - \mathrm{lower}}{2\, z_{1-(1-\mathrm{level})/2}}

    i.e. (upper - lower) / 3.92 for a 95% CI (Cochrane Handbook 6.3.1).
    """
    from intervention_meta.models.distributions import norm_ppf

    lower, upper = _arr(lower), _arr(upper)
    z = norm_ppf(1 - (1 - level) / 2)
    return (upper - lower) / (2 * z)


def smd_from_d_se(d, se, *, is_g, n1=None, n2=None) -> EffectSizeArrays:
    r"""Hedges' g from a reported standardised mean difference (d or g) with its standard error.

    Where ``is_g`` is true the value already carries the small-sample correction: ``yi = d``,
    ``vi = se**2``. Where it is false (Cohen's d), Borenstein et al. (2009, eq. 4.22-4.24):

    .. math:: g = J(n_1+n_2-2)\, d, \quad V_g = J^2\, SE_d^2

    Small-sample correction: exact J with df = n1 + n2 - 2 for Cohen's d only (n1, n2 needed
    there); none for a reported g.
    """
    d, se = _arr(d), _arr(se)
    is_g = np.broadcast_to(np.atleast_1d(np.asarray(is_g, dtype=bool)), d.shape)
    _positive(se, "se")
    if np.all(is_g):
        j = np.ones_like(d)
    else:
        if n1 is None or n2 is None:
            raise ValueError("n1 and n2 are needed to correct a Cohen's d (is_g false)")
        n1, n2 = _arr(n1), _arr(n2)
        _group_size(np.where(is_g, np.nan, n1), "n1")
        _group_size(np.where(is_g, np.nan, n2), "n2")
        j = np.where(is_g, 1.0, hedges_j(n1 + n2 - 2))
    return EffectSizeArrays(j * d, j**2 * se**2, "SMD")


def smd_from_d_ci(d, lower, upper, *, is_g, n1=None, n2=None, level: float = 0.95):
    """Hedges' g from a reported d or g with its confidence interval.

    SE from the interval by :func:`se_from_ci` (Cochrane Handbook 6.3.1), then
    :func:`smd_from_d_se`. The interval must contain the estimate (lower < d < upper).

    Small-sample correction: as :func:`smd_from_d_se` (J for Cohen's d only).
    """
    d, lower, upper = _arr(d), _arr(lower), _arr(upper)
    _inside(lower, d, upper, "d")
    return smd_from_d_se(d, se_from_ci(lower, upper, level), is_g=is_g, n1=n1, n2=n2)


# --------------------------------------------------------------------------- dichotomous outcomes


def has_zero_cell(ai, bi, ci, di) -> np.ndarray:
    """True for 2x2 tables with at least one zero cell (those metafor's ``to="only0"`` corrects)."""
    ai, bi, ci, di = map(_arr, (ai, bi, ci, di))
    return (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)


ZeroCells = Literal["only0", "all", "if0all", "none"]


def _add_to_zero(cells: tuple[np.ndarray, ...], add: float, to: ZeroCells) -> list[np.ndarray]:
    """metafor's continuity correction: ``add`` to every cell of the tables ``to`` selects.

    ``"only0"`` (default): the tables with a zero cell; ``"all"``: every table; ``"if0all"``:
    every table when any has a zero cell; ``"none"``: never.
    """
    cells = tuple(map(_arr, cells))
    names = ("ai", "bi", "ci", "di") if len(cells) == 4 else ("xi", "mi")
    for x, name in zip(cells, names, strict=True):
        with np.errstate(invalid="ignore"):
            _check(np.isfinite(x) & (x >= 0), x, name, "a count >= 0")
    zero = np.zeros(cells[0].shape, dtype=bool)
    for x in cells:
        zero |= x == 0
    if to == "only0":
        a = np.where(zero, add, 0.0)
    elif to == "all":
        a = np.full_like(cells[0], add)
    elif to == "if0all":
        a = np.full_like(cells[0], add if np.any(zero) else 0.0)
    elif to == "none":
        a = np.zeros_like(cells[0])
    else:
        raise ValueError(f"to must be 'only0', 'all', 'if0all' or 'none'; got {to!r}")
    return [x + a for x in cells]


def log_odds_ratio(
    ai, bi, ci, di, *, add: float = 0.5, to: ZeroCells = "only0"
) -> EffectSizeArrays:
    r"""Log odds ratio and its Woolf variance from 2x2 counts, as metafor 3.8 ``escalc("OR")``.

    ``ai`` / ``bi``: events / non-events in group 1 (intervention); ``ci`` / ``di`` in group 2.

    .. math:: \log OR = \log\frac{a d}{b c}, \quad v = 1/a + 1/b + 1/c + 1/d

    Zero cells (metafor defaults ``add=1/2, to="only0"``): ``add`` is added to all four cells of
    each table with a zero cell; ``"all"`` adds it to every table, ``"if0all"`` to every table when
    any has a zero cell, ``"none"`` never. A table with no events (or no non-events) in both groups
    is corrected and kept, as metafor does by default (``drop00=FALSE``): its log OR is finite.

    Small-sample correction: none (only the zero-cell correction).
    """
    ai, bi, ci, di = _add_to_zero((ai, bi, ci, di), add, to)
    with np.errstate(divide="ignore"):
        yi = np.log(ai) - np.log(bi) - np.log(ci) + np.log(di)
        vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
    return EffectSizeArrays(yi, vi, "OR")


def log_risk_ratio(
    ai, bi, ci, di, *, add: float = 0.5, to: ZeroCells = "only0"
) -> EffectSizeArrays:
    r"""Log risk ratio and its variance from 2x2 counts, as metafor 3.8 ``escalc("RR")``.

    With :math:`n_1 = a + b`, :math:`n_2 = c + d` after the zero-cell correction (as
    :func:`log_odds_ratio`, metafor's ``add=1/2, to="only0"``):

    .. math:: \log RR = \log\frac{a / n_1}{c / n_2}, \quad
              v = \frac1a - \frac1{n_1} + \frac1c - \frac1{n_2}

    (Borenstein et al. 2009, eq. 5.1-5.3). Small-sample correction: none.
    """
    ai, bi, ci, di = _add_to_zero((ai, bi, ci, di), add, to)
    n1, n2 = ai + bi, ci + di
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(ai / n1) - np.log(ci / n2)
        vi = 1 / ai - 1 / n1 + 1 / ci - 1 / n2
    return EffectSizeArrays(yi, vi, "RR")


def risk_difference(
    ai, bi, ci, di, *, add: float = 0.5, to: ZeroCells = "only0"
) -> EffectSizeArrays:
    r"""Risk difference and its large-sample variance from 2x2 counts, as metafor 3.8
    ``escalc("RD")`` (``vtype="LS"``).

    With :math:`p_1 = a / (a + b)`, :math:`p_2 = c / (c + d)` after the zero-cell correction
    (metafor applies ``add=1/2, to="only0"`` to the proportions of RD too):

    .. math:: RD = p_1 - p_2, \quad v = \frac{p_1(1-p_1)}{n_1} + \frac{p_2(1-p_2)}{n_2}

    (Borenstein et al. 2009, eq. 5.13-5.14). Small-sample correction: none.
    """
    ai, bi, ci, di = _add_to_zero((ai, bi, ci, di), add, to)
    n1, n2 = ai + bi, ci + di
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = ai / n1, ci / n2
        vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return EffectSizeArrays(p1 - p2, vi, "RD")


def _proportion_cells(xi, ni, add: float, to: ZeroCells) -> tuple[np.ndarray, np.ndarray]:
    xi, ni = _arr(xi), _arr(ni)
    with np.errstate(invalid="ignore"):
        _check(np.isfinite(ni) & (ni > 0), ni, "ni", "a group size > 0")
        _check(~(xi > ni), xi, "xi", "at most ni")
    return tuple(_add_to_zero((xi, ni - xi), add, to))


def logit_proportion(xi, ni, *, add: float = 0.5, to: ZeroCells = "only0") -> EffectSizeArrays:
    r"""Logit of a proportion, as metafor 3.8 ``escalc("PLO")`` (``vtype="LS"``).

    ``xi`` events among ``ni``; with :math:`m = n - x` non-events, after adding ``add`` to both
    where either is zero (metafor's ``add=1/2, to="only0"``):

    .. math:: y = \log\frac{x}{m}, \quad v = \frac1x + \frac1m

    (Lipsey & Wilson 2001, ch. 3; Viechtbauer 2010). Small-sample correction: none.
    """
    x, m = _proportion_cells(xi, ni, add, to)
    with np.errstate(divide="ignore"):
        p = x / (x + m)
        return EffectSizeArrays(np.log(p / (1 - p)), 1 / x + 1 / m, "PLO")


def proportion(xi, ni, *, add: float = 0.5, to: ZeroCells = "only0") -> EffectSizeArrays:
    r"""Raw proportion and its large-sample variance, as metafor 3.8 ``escalc("PR")``
    (``vtype="LS"``).

    With the zero-cell correction of :func:`logit_proportion` (metafor applies it to ``"PR"``
    as well, so a proportion of 0 or 1 is moved to 0.5/(n+1) or (n+0.5)/(n+1)):

    .. math:: y = p = \frac{x}{n}, \quad v = \frac{p(1-p)}{n}

    (Lipsey & Wilson 2001, ch. 3). Small-sample correction: none.
    """
    x, m = _proportion_cells(xi, ni, add, to)
    n = x + m
    p = x / n
    return EffectSizeArrays(p, p * (1 - p) / n, "PR")


def _log_ratio_from_ci(ratio, lower, upper, level: float, measure: str) -> EffectSizeArrays:
    name = measure.lower()
    ratio, lower, upper = map(_arr, (ratio, lower, upper))
    _positive(ratio, name)
    _positive(lower, "lower")
    _positive(upper, "upper")
    _inside(lower, ratio, upper, name)
    se = se_from_ci(np.log(lower), np.log(upper), level)
    return EffectSizeArrays(np.log(ratio), se**2, measure)


def log_odds_ratio_from_ci(or_, lower, upper, level: float = 0.95) -> EffectSizeArrays:
    r"""Log odds ratio with its Wald variance from an odds ratio and its confidence interval.

    .. math:: y = \log OR, \quad v = \left(\frac{\log U - \log L}{2 z_{1-\alpha/2}}\right)^2

    (Cochrane Handbook 6.3.2; what metafor >= 4.0 ``conv.wald`` does). The interval must contain
    the odds ratio (0 < L < OR < U).

    Small-sample correction: none.
    """
    return _log_ratio_from_ci(or_, lower, upper, level, "OR")


def log_risk_ratio_from_ci(rr, lower, upper, level: float = 0.95) -> EffectSizeArrays:
    r"""Log risk ratio with its Wald variance from a risk ratio and its confidence interval.

    .. math:: y = \log RR, \quad v = \left(\frac{\log U - \log L}{2 z_{1-\alpha/2}}\right)^2

    as :func:`log_odds_ratio_from_ci` (Cochrane Handbook 6.3.2). The interval must contain the
    risk ratio (0 < L < RR < U). Small-sample correction: none.
    """
    return _log_ratio_from_ci(rr, lower, upper, level, "RR")


def smd_from_log_odds_ratio(
    log_or, v, method: Literal["logit", "normal"] = "logit"
) -> EffectSizeArrays:
    r"""A standardised mean difference from a log odds ratio.

    * ``"logit"`` (Hasselblad & Hedges 1995; Borenstein et al. 2009, eq. 7.1/7.2; metafor
      ``"OR2DL"``): :math:`d = \log OR \cdot \sqrt{3}/\pi`, :math:`v_d = v \cdot 3/\pi^2`
    * ``"normal"`` (Cox 1970; metafor ``"OR2DN"``): :math:`d = \log OR / 1.65`,
      :math:`v_d = v / 1.65^2`

    Small-sample correction: none (as metafor): the conversion assumes a logistic (normal) latent
    variable with unit scale, so no sample SD is estimated whose bias J would correct.
    """
    log_or, v = _arr(log_or), _arr(v)
    if method == "logit":
        return EffectSizeArrays(log_or * np.sqrt(3) / np.pi, v * 3 / np.pi**2, "SMD")
    if method == "normal":
        return EffectSizeArrays(log_or / 1.65, v / 1.65**2, "SMD")
    raise ValueError(f"method must be 'logit' or 'normal'; got {method!r}")


def smd_from_counts(
    ai,
    bi,
    ci,
    di,
    method: Literal["logit", "normal"] = "logit",
    *,
    add: float = 0.5,
    to: Literal["only0", "all", "if0all", "none"] = "only0",
) -> EffectSizeArrays:
    """A standardised mean difference from 2x2 counts: :func:`log_odds_ratio` (with its zero-cell
    handling) then :func:`smd_from_log_odds_ratio`; metafor 3.8 ``escalc("OR2DL")`` (``"logit"``)
    or ``escalc("OR2DN")`` (``"normal"``).

    Small-sample correction: none (see :func:`smd_from_log_odds_ratio`).
    """
    lor = log_odds_ratio(ai, bi, ci, di, add=add, to=to)
    return smd_from_log_odds_ratio(lor.yi, lor.vi, method)


# --------------------------------------------------------------------------- correlations


def fisher_z_from_r(r, n) -> EffectSizeArrays:
    r"""Fisher's z of a correlation, as metafor 3.8 ``escalc(measure="ZCOR")``.

    .. math:: z = \tfrac12 \log\frac{1+r}{1-r}, \quad v = \frac{1}{n-3}

    (Borenstein et al. 2009, eq. 6.2/6.3). Needs n > 3. Small-sample correction: none.
    """
    r, n = _arr(r), _arr(n)
    _correlation(r, "r")
    _group_size(n, "n", minimum=4)
    return EffectSizeArrays(np.arctanh(r), 1 / (n - 3), "ZCOR")


def correlation(r, n) -> EffectSizeArrays:
    r"""The raw correlation with its large-sample variance, as metafor 3.8 ``escalc("COR")``
    (``vtype="LS"``).

    .. math:: y = r, \quad v = \frac{(1 - r^2)^2}{n - 1}

    (Borenstein et al. 2009, eq. 6.1). Needs n > 1. Small-sample correction: none (metafor's
    ``"UCOR"`` would apply Olkin and Pratt's).
    """
    r, n = _arr(r), _arr(n)
    _correlation(r, "r")
    _group_size(n, "n")
    return EffectSizeArrays(r.copy(), (1 - r**2) ** 2 / (n - 1), "COR")


def smd_from_r(r, n, *, hedges_correction: bool = True) -> EffectSizeArrays:
    r"""A standardised mean difference from a point-biserial r with total sample size n.

    Borenstein et al. (2009), eq. 7.5 and 7.6, with :math:`V_r = (1-r^2)^2/(n-1)` (eq. 6.1):

    .. math::

        d = \frac{2r}{\sqrt{1-r^2}}, \quad
        V_d = \frac{4 V_r}{(1-r^2)^3} = \frac{4}{(n-1)(1-r^2)}

    The formula assumes groups of equal size. With ``hedges_correction`` (default) the result is
    put on the Hedges' g scale, :math:`g = J(n-2)\, d`, :math:`V_g = J^2 V_d` (Borenstein et al.
    2009, eq. 4.22-4.24): r and the independent-groups t are one-to-one
    (:math:`t = r\sqrt{(n-2)/(1-r^2)}`), so d from r carries the same small-sample bias as
    Cohen's d. Needs n >= 4 (J needs df > 1).

    Small-sample correction: exact J with df = n - 2 (``hedges_correction=True``), else none.
    """
    r, n = _arr(r), _arr(n)
    _correlation(r, "r")
    _group_size(n, "n", minimum=4)
    d = 2 * r / np.sqrt(1 - r**2)
    vd = 4 / ((n - 1) * (1 - r**2))
    j = hedges_j(n - 2) if hedges_correction else np.ones_like(d)
    return EffectSizeArrays(j * d, j**2 * vd, "SMD")


# --------------------------------------------------------------------------- pre-post designs


def smd_prepost_control(
    m_pre1,
    m_post1,
    sd_pre1,
    n1,
    m_pre2,
    m_post2,
    sd_pre2,
    n2,
    r,
    *,
    correction: Literal["exact", "approx"] = "exact",
) -> EffectSizeArrays:
    r"""Pre-post-control standardised mean difference d_ppc2 of Morris (2008), with its variance.

    The difference in mean pre-post change between group 1 (intervention) and group 2 (control),
    over the pooled pretest SD (Morris 2008, eq. 8-10):

    .. math::

        s_{pre} = \sqrt{\frac{(n_1-1)s_{pre,1}^2 + (n_2-1)s_{pre,2}^2}{n_1+n_2-2}}, \quad
        d_{ppc2} = c_P \frac{(\bar x_{post,1} - \bar x_{pre,1}) -
                             (\bar x_{post,2} - \bar x_{pre,2})}{s_{pre}}

    and the variance of Morris (2008, eq. 25) with the estimate in place of delta, N = n1 + n2:

    .. math::

        \sigma^2 = 2 c_P^2 (1-\rho) \frac{N}{n_1 n_2} \frac{N-2}{N-4}
            \left(1 + \frac{d_{ppc2}^2}{2(1-\rho) N/(n_1 n_2)}\right) - d_{ppc2}^2

    ``r`` is the pre-post correlation, assumed equal in both groups. Needs N > 4.

    Small-sample correction: :math:`c_P = J(N - 2)`, the exact :func:`hedges_j` by default
    (``correction="exact"``, as the rest of this module and the metafor-project.org Morris (2008)
    example); ``correction="approx"`` uses Morris's own :math:`c_P = 1 - 3/(4(N-2)-1)`.
    """
    m_pre1, m_post1, sd_pre1, n1, m_pre2, m_post2, sd_pre2, n2, r = map(
        _arr, (m_pre1, m_post1, sd_pre1, n1, m_pre2, m_post2, sd_pre2, n2, r)
    )
    _positive(sd_pre1, "sd_pre1")
    _positive(sd_pre2, "sd_pre2")
    _group_size(n1, "n1")
    _group_size(n2, "n2")
    _group_size(n1 + n2, "n1 + n2", minimum=5)
    _correlation(r, "r")
    big_n = n1 + n2
    if correction == "exact":
        cp = hedges_j(big_n - 2)
    elif correction == "approx":
        cp = hedges_j_approx(big_n - 2)
    else:
        raise ValueError(f"correction must be 'exact' or 'approx'; got {correction!r}")
    sp = np.sqrt(((n1 - 1) * sd_pre1**2 + (n2 - 1) * sd_pre2**2) / (big_n - 2))
    g = cp * ((m_post1 - m_pre1) - (m_post2 - m_pre2)) / sp
    a = big_n / (n1 * n2)
    vi = 2 * cp**2 * (1 - r) * a * (big_n - 2) / (big_n - 4) * (1 + g**2 / (2 * (1 - r) * a))
    return EffectSizeArrays(g, vi - g**2, "SMD")


def smc_raw(m1, m2, sd1, n, r) -> EffectSizeArrays:
    r"""Single-group standardised mean change, raw-score standardisation (metafor 3.8 ``"SMCR"``).

    .. math:: g = J(n-1) \frac{\bar x_1 - \bar x_2}{s_1}, \quad
              v = \frac{2(1-r)}{n} + \frac{g^2}{2n}

    (Becker 1988; Morris 2000). ``m1 - m2`` is, e.g., post minus pre; ``sd1`` the SD used to
    standardise (the pretest SD); ``r`` the pre-post correlation.

    Small-sample correction: exact J with df = n - 1.
    """
    m1, m2, sd1, n, r = map(_arr, (m1, m2, sd1, n, r))
    _positive(sd1, "sd1")
    _group_size(n, "n", minimum=3)
    _correlation(r, "r")
    g = hedges_j(n - 1) * (m1 - m2) / sd1
    return EffectSizeArrays(g, 2 * (1 - r) / n + g**2 / (2 * n), "SMCR")


def smc_change(m1, m2, sd1, sd2, n, r) -> EffectSizeArrays:
    r"""Single-group standardised mean change, change-score standardisation (metafor ``"SMCC"``).

    .. math:: s_D = \sqrt{s_1^2 + s_2^2 - 2 r s_1 s_2}, \quad
              g = J(n-1) \frac{\bar x_1 - \bar x_2}{s_D}, \quad v = \frac1n + \frac{g^2}{2n}

    (Gibbons et al. 1993; Morris & DeShon 2002).

    Small-sample correction: exact J with df = n - 1.
    """
    m1, m2, sd1, sd2, n, r = map(_arr, (m1, m2, sd1, sd2, n, r))
    _positive(sd1, "sd1")
    _positive(sd2, "sd2")
    _group_size(n, "n", minimum=3)
    _correlation(r, "r")
    sdd = np.sqrt(sd1**2 + sd2**2 - 2 * r * sd1 * sd2)
    g = hedges_j(n - 1) * (m1 - m2) / sdd
    return EffectSizeArrays(g, 1 / n + g**2 / (2 * n), "SMCC")


# --------------------------------------------------------------------------- cluster designs


def design_effect(m, icc) -> np.ndarray:
    r"""Design effect of a cluster-randomised trial analysed as if individually randomised.

    .. math:: \mathrm{DE} = 1 + (m - 1)\,\rho_{ICC}

    with m the average cluster size (Cochrane Handbook 23.1.4; Donner & Klar 2000). Needs
    m >= 1 and 0 <= ICC <= 1.
    """
    m, icc = _arr(m), _arr(icc)
    with np.errstate(invalid="ignore"):
        _check(np.isfinite(m) & (m >= 1), m, "m", ">= 1")
        _check((icc >= 0) & (icc <= 1), icc, "icc", "in [0, 1]")
    return 1 + (m - 1) * icc


def apply_design_effect(vi, m, icc) -> np.ndarray:
    """Sampling variance corrected for clustering: ``vi * (1 + (m - 1) * icc)``.

    The approximate analysis of the Cochrane Handbook (23.1.4): analysing each group with its
    "effective sample size" n / DE. For an SMD with the large-sample variance this is exactly the
    variance times DE, since :math:`v = 1/n_1 + 1/n_2 + g^2/(2(n_1+n_2))` is proportional to 1/n.
    The effect size itself is not changed (Hedges 2007 also gives a small correction of d for the
    total-variance standardisation; it is not applied here).
    """
    return _arr(vi) * design_effect(m, icc)
