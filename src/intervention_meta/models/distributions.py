"""The normal, t, chi-square and F distribution functions the package uses, from ``scipy.special``.

``scipy.stats`` evaluates these distributions with the same special functions, but importing it
costs about 0.7 s of CPU (it builds every distribution object), which every Snakemake job paid
again. These functions call the special functions exactly as scipy.stats 1.17 does (so the values
are the same to the last bit, which ``tests/test_distributions.py`` checks on a grid), and return
``nan`` where scipy.stats does: for invalid degrees of freedom (not > 0) and ``nan`` arguments.

========================  =======================================
function                  scipy.stats equivalent
========================  =======================================
``norm_cdf(x)``           ``norm.cdf(x)`` = ``ndtr(x)``
``norm_sf(x)``            ``norm.sf(x)`` = ``ndtr(-x)``
``norm_ppf(q)``           ``norm.ppf(q)`` = ``ndtri(q)``
``norm_isf(q)``           ``norm.isf(q)`` = ``-ndtri(q)``
``t_cdf(x, df)``          ``t.cdf(x, df)`` = ``stdtr(df, x)``
``t_sf(x, df)``           ``t.sf(x, df)`` = ``stdtr(df, -x)``
``t_ppf(q, df)``          ``t.ppf(q, df)`` = ``stdtrit(df, q)``
``t_isf(q, df)``          ``t.isf(q, df)`` = ``-stdtrit(df, q)``
``chi2_cdf(x, df)``       ``chi2.cdf(x, df)`` = ``chdtr(df, x)``
``chi2_sf(x, df)``        ``chi2.sf(x, df)`` = ``chdtrc(df, x)``
``chi2_ppf(q, df)``       ``chi2.ppf(q, df)`` = ``2 gammaincinv(df/2, q)``
``chi2_isf(q, df)``       ``chi2.isf(q, df)`` = ``chdtri(df, q)``
``f_sf(x, d1, d2)``       ``f.sf(x, d1, d2)`` = ``fdtrc(d1, d2, x)``
``f_ppf(q, d1, d2)``      ``f.ppf(q, d1, d2)`` = ``fdtri(d1, d2, q)``
========================  =======================================

Scalars in give Python floats out; arrays give arrays.

Reference
---------
Virtanen, P., et al. (2020). SciPy 1.0: fundamental algorithms for scientific computing in Python.
*Nature Methods*, 17, 261-272.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special


def _out(value: Any, valid: Any) -> Any:
    """``value`` with ``nan`` where ``valid`` is false; a float for a scalar."""
    value = np.where(valid, value, np.nan)
    return float(value) if value.ndim == 0 else value


def _df_ok(*dfs: Any) -> Any:
    ok = True
    for df in dfs:
        ok = np.logical_and(ok, np.asarray(df, dtype=float) > 0)
    return ok


def _unit(q: Any) -> Any:
    q = np.asarray(q, dtype=float)
    return (q >= 0) & (q <= 1)


def norm_cdf(x: Any) -> Any:
    """Standard normal distribution function :math:`\\Phi(x)`."""
    return _out(special.ndtr(np.asarray(x, dtype=float)), True)


def norm_sf(x: Any) -> Any:
    """Standard normal survival function :math:`1 - \\Phi(x) = \\Phi(-x)`."""
    return _out(special.ndtr(-np.asarray(x, dtype=float)), True)


def norm_ppf(q: Any) -> Any:
    """Standard normal quantile :math:`\\Phi^{-1}(q)`."""
    return _out(special.ndtri(q), _unit(q))


def norm_isf(q: Any) -> Any:
    """Upper standard normal quantile :math:`\\Phi^{-1}(1 - q) = -\\Phi^{-1}(q)`."""
    return _out(-special.ndtri(q), _unit(q))


def t_cdf(x: Any, df: Any) -> Any:
    """Distribution function of Student's t with ``df`` degrees of freedom."""
    return _out(special.stdtr(df, x), _df_ok(df))


def t_sf(x: Any, df: Any) -> Any:
    """Survival function of Student's t, :math:`P(T > x)`."""
    return _out(special.stdtr(df, -np.asarray(x, dtype=float)), _df_ok(df))


def t_ppf(q: Any, df: Any) -> Any:
    """Quantile of Student's t (-inf at 0, inf at 1, as scipy.stats)."""
    q = np.asarray(q, dtype=float)
    value = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, special.stdtrit(df, q)))
    return _out(value, _df_ok(df) & _unit(q))


def t_isf(q: Any, df: Any) -> Any:
    """Upper quantile of Student's t, :math:`-t^{-1}_{df}(q)` (inf at 0, -inf at 1)."""
    q = np.asarray(q, dtype=float)
    value = np.where(q == 0, np.inf, np.where(q == 1, -np.inf, -special.stdtrit(df, q)))
    return _out(value, _df_ok(df) & _unit(q))


def chi2_cdf(x: Any, df: Any) -> Any:
    """Distribution function of the chi-square distribution (0 below 0, 1 at inf)."""
    x = np.asarray(x, dtype=float)
    value = np.where(np.isposinf(x), 1.0, special.chdtr(df, np.maximum(x, 0.0)))
    return _out(value, _df_ok(df) & ~np.isnan(x))


def chi2_sf(x: Any, df: Any) -> Any:
    """Survival function of the chi-square distribution (1 below 0, 0 at inf)."""
    x = np.asarray(x, dtype=float)
    value = np.where(np.isposinf(x), 0.0, special.chdtrc(df, np.maximum(x, 0.0)))
    return _out(value, _df_ok(df) & ~np.isnan(x))


def chi2_ppf(q: Any, df: Any) -> Any:
    """Quantile of the chi-square distribution, :math:`2\\,P^{-1}(df/2, q)` (regularised gamma)."""
    return _out(
        2.0 * special.gammaincinv(np.asarray(df, dtype=float) / 2.0, q), _df_ok(df) & _unit(q)
    )


def chi2_isf(q: Any, df: Any) -> Any:
    """Upper quantile of the chi-square distribution."""
    return _out(special.chdtri(df, q), _df_ok(df) & _unit(q))


def f_sf(x: Any, dfn: Any, dfd: Any) -> Any:
    """Survival function of the F distribution (1 below 0)."""
    x = np.asarray(x, dtype=float)
    return _out(special.fdtrc(dfn, dfd, np.maximum(x, 0.0)), _df_ok(dfn, dfd) & ~np.isnan(x))


def f_ppf(q: Any, dfn: Any, dfd: Any) -> Any:
    """Quantile of the F distribution."""
    return _out(special.fdtri(dfn, dfd, q), _df_ok(dfn, dfd) & _unit(q))
