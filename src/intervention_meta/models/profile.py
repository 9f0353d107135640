"""Profile-likelihood confidence intervals of variance components, as metafor 3.8 ``confint()``.

For a variance component :math:`\\sigma^2_l` of a model fitted by ML or REML, the profile
log-likelihood is the (restricted) log-likelihood maximised over the other free components with
:math:`\\sigma^2_l` held fixed,

.. math:: \\ell_p(s) = \\max_{\\sigma^2_{-l}} \\ell(\\sigma^2_l = s, \\sigma^2_{-l}),

and the :math:`100(1-\\alpha)\\%` interval holds the values whose likelihood-ratio statistic stays
below the :math:`\\chi^2_1` quantile (Hardy & Thompson 1996; Viechtbauer 2007 for
:math:`\\tau^2`):

.. math:: \\{s \\ge 0 : -2(\\ell_p(s) - \\ell(\\hat\\sigma^2)) \\le \\chi^2_{1, 1-\\alpha}\\}.

Each bound is found as metafor does, so that its numbers are reproduced and not only the exact
roots: the function :math:`f(s) = -2(\\ell_p(s) - \\hat\\ell) - \\chi^2_{1,1-\\alpha}` is searched
with R's ``uniroot`` (Brent 1973; tolerance :math:`\\epsilon^{1/4} \\approx 1.2\\cdot10^{-4}` on
the variance scale, :func:`~intervention_meta.models.rootfind.uniroot`) on
:math:`[lo, \\hat\\sigma^2]` and :math:`[\\hat\\sigma^2, hi]`. If :math:`f(lo) < 0` the lower
bound is ``lo`` (0: the interval reaches the boundary); if :math:`f(hi) < 0` the upper bound is
not found within the search interval and ``hi`` is reported with ``ub_sign = ">"`` (metafor
prints ``>``). Search intervals (metafor):

* multilevel (``rma.mv``): :math:`lo = 0`, :math:`hi = \\max(10, 100\\hat\\sigma^2)` (10 when
  :math:`\\hat\\sigma^2 \\le \\sqrt\\epsilon`); when the refit fails at an end point, that end is
  moved towards the estimate in 10 steps (metafor's ``eptries``);
* one-level (``rma``, ``type = "PL"``): :math:`lo = 0`, :math:`hi = \\max(100, 10\\hat\\tau^2)` or
  ``control['tau2_max']``; there the profile needs no refit (the only component is fixed), and
  the :math:`I^2` and :math:`H^2` limits follow from the :math:`\\tau^2` limits with the typical
  sampling variance.

Because the roots are found to :math:`\\approx 10^{-4}` only (as in metafor), the likelihood-ratio
statistic at a reported bound can differ from the critical value by about 0.01; ``lrt_lb`` /
``lrt_ub`` record it.

References
----------
Hardy, R. J., & Thompson, S. G. (1996). A likelihood approach to meta-analysis with random
effects. *Statistics in Medicine*, 15, 619-629.
Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
*Statistics in Medicine*, 26, 37-52.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *JSS*, 36(3).
Brent, R. P. (1973). *Algorithms for Minimization without Derivatives*. Prentice-Hall.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from intervention_meta.models import distributions as dist
from intervention_meta.models.errors import ModelError
from intervention_meta.models.fitting import Control, estimate_components
from intervention_meta.models.heterogeneity import Interval
from intervention_meta.models.likelihood import MarginalLikelihood, NotPositiveDefinite
from intervention_meta.models.results import MetaResult, jsonable
from intervention_meta.models.rootfind import R_UNIROOT_TOL, uniroot

logger = logging.getLogger(__name__)

_EPTRIES = 10


@dataclass(frozen=True)
class ProfileInterval:
    """Profile-likelihood interval of one variance component.

    Attributes
    ----------
    component : the level's name (``"tau2"`` for the one-level model)
    estimate, ci_lb, ci_ub : the estimate and the limits (NaN where the search failed)
    lb_sign, ub_sign : metafor's markers: ``">"`` for an upper limit not found within the search
        interval (the true limit is larger), ``"<"`` for a lower limit at a search start above 0;
        ``""`` otherwise
    lb_found, ub_found : whether each limit was obtained (root found or end point taken)
    search_lo, search_hi : the interval searched
    lrt_lb, lrt_ub : likelihood-ratio statistic of the profile at each limit (compare ``target``)
    """

    component: str
    estimate: float
    ci_lb: float
    ci_ub: float
    lb_sign: str
    ub_sign: str
    lb_found: bool
    ub_found: bool
    search_lo: float
    search_hi: float
    lrt_lb: float
    lrt_ub: float

    @property
    def sqrt(self) -> Interval:
        """The interval on the standard-deviation scale."""
        return Interval(*(_sqrt(x) for x in (self.estimate, self.ci_lb, self.ci_ub)))

    def to_dict(self) -> dict:
        out = jsonable({f.name: getattr(self, f.name) for f in fields(self)})
        out["sqrt"] = jsonable(self.sqrt.to_dict())
        return out


def _sqrt(x: float) -> float:
    return float(math.sqrt(x)) if x >= 0 else float("nan")


@dataclass(frozen=True)
class ProfileCI:
    """Profile-likelihood confidence intervals of a model's estimated variance components.

    Attributes
    ----------
    level : confidence level
    method : ``"ML"`` or ``"REML"`` (the likelihood profiled)
    target : the critical value :math:`\\chi^2_{1,\\text{level}}` of the likelihood-ratio statistic
    loglik : the maximised log-likelihood of the model
    intervals : per estimated component (keyed by its level name, or ``"tau2"``)
    i2, h2 : for the one-level model, the I^2 (%) and H^2 limits implied by the tau^2 limits
    """

    level: float
    method: str
    target: float
    loglik: float
    intervals: dict[str, ProfileInterval]
    i2: Interval | None = None
    h2: Interval | None = None

    @property
    def converged(self) -> bool:
        return all(iv.lb_found and iv.ub_found for iv in self.intervals.values())

    def __getitem__(self, component: str) -> ProfileInterval:
        return self.intervals[component]

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "method": self.method,
            "target": self.target,
            "loglik": self.loglik,
            "intervals": {n: iv.to_dict() for n, iv in self.intervals.items()},
            "i2": None if self.i2 is None else self.i2.to_dict(),
            "h2": None if self.h2 is None else self.h2.to_dict(),
            "converged": self.converged,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per component (variance and its square root; I^2, H^2 for one level)."""
        rows = {}
        for name, iv in self.intervals.items():
            label = "tau2" if name == "tau2" else f"sigma2[{name}]"
            rows[label] = {
                "estimate": iv.estimate,
                "ci_lb": iv.ci_lb,
                "ci_ub": iv.ci_ub,
                "lb_sign": iv.lb_sign,
                "ub_sign": iv.ub_sign,
            }
            sq = "tau" if name == "tau2" else f"sigma[{name}]"
            rows[sq] = {**iv.sqrt.to_dict(), "lb_sign": iv.lb_sign, "ub_sign": iv.ub_sign}
        for name, extra in (("i2", self.i2), ("h2", self.h2)):
            if extra is not None:
                rows[name] = {**extra.to_dict(), "lb_sign": "", "ub_sign": ""}
        return pd.DataFrame.from_dict(rows, orient="index")


class _Profile:
    """The profile likelihood-ratio function of one component of a fitted model."""

    def __init__(self, result: MetaResult, pos: int, target: float) -> None:
        state = result._state
        self.design = state.design
        self.structure = state.structure
        self.method = result.method
        self.fixed = np.asarray(state.fixed, dtype=float)
        self.control = state.control or Control.build(None, result.multilevel)
        self.pos = pos
        self.target = target
        self.loglik = float(result.logLik)
        self.lik = MarginalLikelihood(self.structure, self.design.y, reml=self.method == "REML")
        self.start = np.asarray(state.theta, dtype=float).copy()
        self.n_refits = 0

    def lrt(self, value: float) -> float:
        """:math:`-2(\\ell_p(value) - \\hat\\ell)`; raises ModelError if the refit fails."""
        fixed = self.fixed.copy()
        fixed[self.pos] = value
        if np.isnan(fixed).any():
            start = self.start.copy()
            start[self.pos] = value
            try:
                comps = estimate_components(
                    self.design,
                    self.structure,
                    self.method,
                    fixed,
                    self.control,
                    start=start,
                    lik=self.lik,
                )
            except NotPositiveDefinite as err:
                raise ModelError(f"profile refit failed at {value}: {err}") from err
            self.n_refits += 1
            if not comps.convergence.converged:
                raise ModelError(f"profile refit did not converge at {value}")
            theta = comps.theta
        else:
            theta = fixed
        try:
            ll = self.lik.evaluate(theta).loglik
        except NotPositiveDefinite as err:
            raise ModelError(f"profile likelihood undefined at {value}: {err}") from err
        return -2.0 * (ll - self.loglik)

    def f(self, value: float) -> float:
        return self.lrt(value) - self.target


def _search_interval(
    result: MetaResult, estimate: float, search_max: float | None
) -> tuple[float, float]:
    if result.multilevel:
        lo = 0.0
        hi = 10.0 if estimate <= np.finfo(float).eps ** 0.5 else max(10.0, 100.0 * estimate)
        hi = max(hi, lo)
    else:
        lo = min(0.0, estimate)
        ctrl = result._state.control
        tau2_max = None if ctrl is None else ctrl.tau2_max
        hi = max(100.0, 10.0 * estimate, 10.0 * lo) if tau2_max is None else float(tau2_max)
    if search_max is not None:
        hi = float(search_max)
    if not lo <= estimate <= hi:
        raise ModelError(
            f"the search interval [{lo:g}, {hi:g}] must contain the estimate {estimate:g}"
        )
    return lo, hi


def _limit(
    prof: _Profile, start: float, estimate: float, side: str, tries: int, maxiter: int, name: str
) -> tuple[float, str, bool, float, float]:
    """One limit of the profile-likelihood CI, searched from ``start`` towards the estimate.

    A bound where the profile cannot be evaluated moves a ``tries``-th of the way to the estimate.
    A bound that is still inside the interval is reported with the sign ``<`` (lower, above 0)
    or ``>`` (upper). Returns the limit, its sign, whether it was found, the likelihood-ratio
    statistic there and the last bound tried.
    """
    lower = side == "lower"
    bound = start
    step = abs(start - estimate) / _EPTRIES
    for _ in range(tries):
        try:
            f_bound = prof.f(bound)
        except ModelError:
            bound += step if lower else -step
            continue
        if f_bound < 0:
            sign = ("<" if bound > 0 else "") if lower else ">"
            return bound, sign, True, f_bound + prof.target, bound
        bracket = (bound, estimate) if lower else (estimate, bound)
        f_known = {"f_lower": f_bound} if lower else {"f_upper": f_bound}
        try:
            root = uniroot(prof.f, *bracket, tol=R_UNIROOT_TOL, maxiter=maxiter, **f_known)
            if root.converged:
                return root.root, "", True, root.f_root + prof.target, bound
        except (ValueError, ModelError) as err:
            logger.warning("profile CI of %s: %s limit search failed (%s)", name, side, err)
        break
    return float("nan"), "", False, float("nan"), bound


def _one_interval(
    result: MetaResult,
    pos: int,
    name: str,
    estimate: float,
    target: float,
    search_max: float | None,
    maxiter: int,
) -> ProfileInterval:
    prof = _Profile(result, pos, target)
    lo0, hi0 = _search_interval(result, estimate, search_max)
    tries = _EPTRIES if result.multilevel else 1

    lb, lb_sign, lb_found, lrt_lb, lo = _limit(prof, lo0, estimate, "lower", tries, maxiter, name)
    ub, ub_sign, ub_found, lrt_ub, hi = _limit(prof, hi0, estimate, "upper", tries, maxiter, name)
    if not lb_found:
        logger.warning("cannot obtain the lower limit of the profile-likelihood CI of %s", name)
    if not ub_found:
        logger.warning("cannot obtain the upper limit of the profile-likelihood CI of %s", name)
    if ub_sign == ">":
        logger.warning(
            "upper limit of the profile-likelihood CI of %s not found below %g (reported as >)",
            name,
            hi,
        )
    return ProfileInterval(
        component=name,
        estimate=float(estimate),
        ci_lb=float(lb),
        ci_ub=float(ub),
        lb_sign=lb_sign,
        ub_sign=ub_sign,
        lb_found=lb_found,
        ub_found=ub_found,
        search_lo=float(lo),
        search_hi=float(hi),
        lrt_lb=float(lrt_lb),
        lrt_ub=float(lrt_ub),
    )


def profile_ci(
    result: MetaResult,
    level: float | None = None,
    *,
    components: Sequence[str] | str | None = None,
    search_max: float | Mapping[str, float] | None = None,
    maxiter: int = 1000,
) -> ProfileCI:
    """Profile-likelihood CIs of the estimated variance components (metafor 3.8 ``confint()``).

    Parameters
    ----------
    result : a model fitted by ML or REML (multilevel, or one-level with an estimated tau^2)
    level : confidence level (default: the model's); values above 1 are read as percentages
    components : the levels to profile (default: all estimated components)
    search_max : upper end of the search interval (metafor's ``control = list(vc.max = ...)`` /
        ``tau2.max``), one value or ``{level: value}``
    maxiter : iteration limit of each root search (as metafor, 1000)

    Returns
    -------
    ProfileCI

    Raises
    ------
    ModelError
        if the model was not fitted by ML/REML or has no estimated variance component.

    Examples
    --------
    >>> res = fit(dat, random=["study", "esid"])  # doctest: +SKIP
    >>> profile_ci(res)["study"].ci_ub  # doctest: +SKIP
    """
    if result.method not in ("ML", "REML"):
        raise ModelError(
            f"profile-likelihood CIs need an ML or REML fit, not method={result.method!r} "
            "(the Q-profile CI is in result.confint)"
        )
    level = result.level if level is None else float(level)
    level = level / 100.0 if level > 1 else level
    if not 0 < level < 1:
        raise ModelError(f"level must be in (0, 1), got {level}")
    names = list(result.random) if result.multilevel else ["tau2"]
    estimates = list(result.sigma2.values()) if result.multilevel else [float(result.tau2)]
    free = [n for n in names if not result.variance_fixed[n]]
    if not free:
        raise ModelError("the model has no estimated variance component to profile")
    if components is None:
        wanted = free
    else:
        wanted = [components] if isinstance(components, str) else list(components)
        for name in wanted:
            if name not in names:
                raise ModelError(f"unknown component {name!r}; components: {names}")
            if name not in free:
                raise ModelError(f"component {name!r} was fixed, not estimated")
    target = float(dist.chi2_ppf(level, 1))
    intervals = {}
    for name in wanted:
        pos = names.index(name)
        smax = search_max.get(name) if isinstance(search_max, Mapping) else search_max
        intervals[name] = _one_interval(
            result, pos, name, estimates[pos], target, smax, int(maxiter)
        )
    i2 = h2 = None
    if not result.multilevel:
        iv, vt = intervals["tau2"], float(result.vt)
        i2 = Interval(
            float(result.I2), 100.0 * iv.ci_lb / (vt + iv.ci_lb), 100.0 * iv.ci_ub / (vt + iv.ci_ub)
        )
        h2 = Interval(float(result.H2), iv.ci_lb / vt + 1.0, iv.ci_ub / vt + 1.0)
    return ProfileCI(
        level=level,
        method=result.method,
        target=target,
        loglik=float(result.logLik),
        intervals=intervals,
        i2=i2,
        h2=h2,
    )
