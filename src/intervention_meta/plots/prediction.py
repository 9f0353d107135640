"""Intervals of a written model, evaluated for a figure: the prediction interval of a category
mean and the contrast of two categories.

The moderator step writes each fitted model's coefficients, their covariance ``vb``, the variance
components and the test (``models/moderators.json``: ``single.moderators[].models``). A figure
that draws a prediction interval or a difference reads them here instead of refitting:

* prediction interval of coefficient :math:`j` of an intercept-free (category-means) model,
  :math:`b_j \\pm c\\sqrt{V_{jj} + \\sum_l \\hat\\sigma^2_l}` with the model's critical value
  :math:`c` (:math:`t_{k-p}` for t tests), metafor ``predict(res, newmods = diag(p))``;
* the difference of two categories is the second coefficient of the model with an intercept
  (the model of the moderator test), as written, with its CI and p.

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
IntHout, J., Ioannidis, J. P. A., Rovers, M. M., & Goeman, J. J. (2016). Plea for routinely
presenting prediction intervals in meta-analysis. *BMJ Open*, 6, e010247.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Contrast", "category_prediction_intervals", "contrast", "total_variance"]


def total_variance(model: Mapping) -> float:
    """The sum of a written model's variance components (``sigma2`` per level, else ``tau2``)."""
    sigma2 = model.get("sigma2") or {}
    if sigma2:
        return float(sum(float(v) for v in sigma2.values()))
    return float(model.get("tau2") or 0.0)


def category_prediction_intervals(
    model: Mapping, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray] | None:
    """Lower and upper prediction limits of every coefficient of a written intercept-free model
    (the category means), or None when the model lacks coefficients or their covariance."""
    from intervention_meta.models.inference import critical_value  # scipy's t quantiles, only here

    coefs = model.get("coefficients") or []
    vb = model.get("vb")
    if not coefs or vb is None:
        return None
    b = np.array([c["estimate"] for c in coefs], dtype=float)
    V = np.atleast_2d(np.asarray(vb, dtype=float))
    if V.shape != (len(b), len(b)):
        return None
    crit = critical_value(str(model.get("test", "z")), coefs[0].get("df"), level)
    half = crit * np.sqrt(np.diag(V) + total_variance(model))
    return b - half, b + half


@dataclass(frozen=True)
class Contrast:
    """The difference ``first`` minus ``second`` of two categories, with its CI and p."""

    first: str
    second: str
    estimate: float
    ci_lb: float
    ci_ub: float
    pval: float = float("nan")  # no p without a test

    def to_dict(self) -> dict:
        return asdict(self)


def contrast(model: Mapping, categories: Sequence[str], first: str) -> Contrast | None:
    """``first`` minus the other of two ``categories`` from a written model with an intercept
    (reference ``categories[0]``, the coefficient of ``categories[1]`` is their difference);
    None unless the model has exactly those two coefficients."""
    coefs = model.get("coefficients") or []
    cats = [str(c) for c in categories]
    if len(coefs) != 2 or len(cats) != 2 or str(first) not in cats:
        return None
    c = coefs[1]
    est, lo, hi = (float(c.get(k, np.nan)) for k in ("estimate", "ci_lb", "ci_ub"))
    pval = float(c.get("pval", np.nan))
    if str(first) == cats[1]:
        return Contrast(cats[1], cats[0], est, lo, hi, pval)
    return Contrast(cats[0], cats[1], -est, -hi, -lo, pval)
