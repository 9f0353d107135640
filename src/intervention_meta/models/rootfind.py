"""R's ``uniroot()``: Brent's (1973) root finder exactly as R's ``zeroin.c`` implements it.

metafor finds the Paule-Mandel estimate and the Q-profile confidence limits with
``uniroot(..., tol = .Machine$double.eps^0.25)``, i.e. to about 1e-4 on the tau^2 scale. To
reproduce metafor's numbers (not just the exact roots) the same iteration is run here, with the same
tolerance, so the same interpolation steps are taken and the same point is returned.

References
----------
Brent, R. P. (1973). *Algorithms for Minimization without Derivatives*. Prentice-Hall, ch. 4.
R Core Team. ``src/library/stats/src/zeroin.c`` (function ``R_zeroin2``) and ``uniroot()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

R_UNIROOT_TOL = float(np.finfo(float).eps ** 0.25)
_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class Root:
    """A root from :func:`uniroot`: the point, f there, iterations used, estimated precision."""

    root: float
    f_root: float
    iterations: int
    estim_prec: float
    converged: bool


def uniroot(
    f: Callable[[float], float],
    lower: float,
    upper: float,
    *,
    tol: float = R_UNIROOT_TOL,
    maxiter: int = 1000,
    f_lower: float | None = None,
    f_upper: float | None = None,
) -> Root:
    """Root of ``f`` in ``[lower, upper]`` (which must bracket a sign change), as R's ``uniroot``.

    Raises
    ------
    ValueError
        if ``f(lower)`` and ``f(upper)`` have the same sign.
    """
    a, b = float(lower), float(upper)
    fa = float(f(a)) if f_lower is None else float(f_lower)
    fb = float(f(b)) if f_upper is None else float(f_upper)
    if fa * fb > 0:
        raise ValueError("f() values at end points not of opposite sign")
    if fa == 0.0:
        return Root(a, fa, 0, 0.0, True)
    if fb == 0.0:
        return Root(b, fb, 0, 0.0, True)
    c, fc = a, fa
    maxit = maxiter + 1
    left = maxit
    while left > 0:
        left -= 1
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * _EPS * abs(b) + tol / 2.0
        new_step = (c - b) / 2.0
        if abs(new_step) <= tol_act or fb == 0.0:
            return Root(b, fb, maxit - left - 1, abs(c - b), True)
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2.0) and p < abs(prev_step * q / 2.0):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = float(f(b))
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return Root(b, fb, maxiter, abs(c - b), False)
