"""Non-likelihood estimators of the between-study variance :math:`\\tau^2` (one-level model).

Each estimator is computed exactly as metafor 3.8's ``rma()`` computes it, including for
meta-regression (``X`` with ``p`` columns), so the numbers agree with metafor. As there, the
estimators use the mean-centred effect sizes :math:`y_c = y - \\bar y` (identical to using
:math:`y` whenever the model has an intercept) and negative values are truncated at zero. ML and
REML are not here: they are the one-level case of the likelihood engine
(:mod:`~intervention_meta.models.likelihood`); this module only supplies their starting value (the
HE estimate, as metafor) and the other estimators' :math:`\\tau^2`, which then enters the same GLS
step.

Notation: :math:`w_i` weights, :math:`W = \\mathrm{diag}(w)`,
:math:`P_w = W - WX(X^\\top WX)^{-1}X^\\top W`, :math:`V = \\mathrm{diag}(v_i)`, :math:`k` rows,
:math:`p` coefficients. All traces are computed from :math:`p \\times p` matrices, never from
:math:`k \\times k` ones.

* **HE** (Hedges 1983; Hedges & Olkin 1985), :math:`w = 1`:
  :math:`\\hat\\tau^2 = (y_c^\\top P_1 y_c - \\mathrm{tr}(P_1V))/(k-p)`.
* **DL** (DerSimonian & Laird 1986), :math:`w = 1/v`:
  :math:`\\hat\\tau^2 = (Q - (k-p))/\\mathrm{tr}(P_w)`, :math:`Q = y_c^\\top P_w y_c`.
* **HS** (Hunter & Schmidt 1990, in the general form of Viechtbauer et al. 2015):
  :math:`\\hat\\tau^2 = (Q - k)/\\sum w_i`; **HSk** (with the small-sample correction of
  Brannick et al. 2019): :math:`(kQ/(k-p) - k)/\\sum w_i`.
* **SJ** (Sidik & Jonkman 2005), :math:`\\tau^2_0 = \\sum (y_i-\\bar y)^2/k`,
  :math:`w = 1/(v + \\tau^2_0)`: :math:`\\hat\\tau^2 = \\tau^2_0\\, y_c^\\top P_w y_c/(k-p)`.
* **PM** (Paule & Mandel 1982): the root of :math:`y_c^\\top P_{\\tau} y_c = k - p` with
  :math:`w = 1/(v+\\tau^2)`; **PMM** (median-unbiased, Viechtbauer 2021): target
  :math:`\\chi^2_{k-p}` median. Found with R's ``uniroot`` on :math:`[0, \\max(100, 10\\,
  \\mathrm{mad}(y)^2)]`, tolerance :math:`\\epsilon^{1/4}`, as metafor.
* **EB** (Morris 1983; Berkey et al. 1995): iterate :math:`\\tau^2 \\leftarrow \\tau^2 +
  (k/(k-p)\\, y_c^\\top P_\\tau y_c - k)/\\sum w_i` from the HE estimate until the change is
  :math:`\\le 10^{-5}`.

Standard errors follow metafor (see :func:`se_tau2`).

References
----------
DerSimonian, R., & Laird, N. (1986). Meta-analysis in clinical trials. *Controlled Clinical
Trials*, 7, 177-188.
Brannick, M. T., Potter, S. M., Benitez, B., & Morris, S. B. (2019). Bias and precision of
alternate estimators in meta-analysis: benefits of blending Schmidt-Hunter and Hedges approaches.
*Organizational Research Methods*, 22, 490-514.
Hunter, J. E., & Schmidt, F. L. (1990). *Methods of Meta-Analysis*. Sage.
Morris, C. N. (1983). Parametric empirical Bayes inference: theory and applications. *JASA*, 78,
47-55.
Sidik, K., & Jonkman, J. N. (2005). Simple heterogeneity variance estimation for meta-analysis.
*JRSS C*, 54, 367-384.
Paule, R. C., & Mandel, J. (1982). Consensus values and weighting factors. *Journal of Research of
the National Bureau of Standards*, 87, 377-385.
Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in the
random-effects model. *JEBS*, 30, 261-293.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *JSS*, 36(3).
Viechtbauer, W. (2021). Median-unbiased estimators for the amount of heterogeneity in
meta-analysis. *European Congress of Methodology*.
Viechtbauer, W., Lopez-Lopez, J. A., Sanchez-Meca, J., & Marin-Martinez, F. (2015). A comparison of
procedures to test for moderators in mixed-effects meta-regression models. *Psychological
Methods*, 20, 360-374.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intervention_meta.models import distributions as dist
from intervention_meta.models.errors import ModelError
from intervention_meta.models.optimize import Convergence
from intervention_meta.models.qr import thin_qr
from intervention_meta.models.rootfind import uniroot

NON_LIKELIHOOD = ("HE", "DL", "HS", "HSk", "SJ", "EB", "PM", "PMM")


@dataclass(frozen=True)
class DiagonalP:
    """:math:`P_w = W - WX(X^\\top WX)^{-1}X^\\top W` for diagonal weights, in factored form.

    With the thin QR decomposition :math:`W^{1/2}X = QR`,
    :math:`P_w = W^{1/2}(I - QQ^\\top)W^{1/2}`, so quadratic forms and traces need only ``Q``
    (numerically stable, as metafor's QR-based ``.invcalc``).
    """

    w: np.ndarray
    sw: np.ndarray
    Q: np.ndarray
    h: np.ndarray  # leverages: row sums of Q**2

    @classmethod
    def of(cls, w: np.ndarray, X: np.ndarray) -> DiagonalP:
        sw = np.sqrt(w)
        Q, _ = thin_qr(X * sw[:, None])
        return cls(w=w, sw=sw, Q=Q, h=np.sum(Q * Q, axis=1))

    def quad(self, y: np.ndarray) -> float:
        """:math:`y^\\top P y = \\sum_i w_i r_i^2` with the weighted-least-squares residuals."""
        yt = self.sw * y
        r = yt - self.Q @ (self.Q.T @ yt)
        return float(r @ r)

    def trace(self, a: np.ndarray | None = None) -> float:
        """:math:`\\mathrm{tr}(P\\,\\mathrm{diag}(a))` (``a = 1`` by default)."""
        wa = self.w if a is None else self.w * a
        return float(np.sum(wa * (1.0 - self.h)))

    def trace2(self, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
        """:math:`\\mathrm{tr}(P A P B)` for diagonal ``A``, ``B`` (identity by default)."""
        wa = self.w if a is None else self.w * a
        wb = self.w if b is None else self.w * b
        qa = self.Q.T @ (wa[:, None] * self.Q)
        qb = self.Q.T @ (wb[:, None] * self.Q)
        return float(np.sum(wa * wb * (1.0 - 2.0 * self.h)) + np.sum(qa * qb))


@dataclass(frozen=True)
class Tau2Estimate:
    """A one-level heterogeneity estimate with its standard error and how it was obtained.

    ``projection``: :math:`P_w` with weights :math:`1/v_i` if the estimator formed it (DL, HS,
    HSk), for the typical sampling variance.
    """

    tau2: float
    se_tau2: float | None
    convergence: Convergence
    projection: DiagonalP | None = None


def r_mad(x: np.ndarray) -> float:
    """R's ``mad()``: :math:`1.4826\\,\\mathrm{median}|x - \\mathrm{median}(x)|`."""
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def he_estimate(yc: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """Hedges' (HE) estimate before truncation (also the ML/REML/EB starting value)."""
    k, p = X.shape
    P1 = DiagonalP.of(np.ones(k), X)
    return (P1.quad(yc) - P1.trace(v)) / (k - p)


def q_statistic(tau2: float, yc: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """Generalised Q, :math:`y^\\top P_\\tau y = \\sum_i w_i r_i^2`, :math:`w = 1/(v + \\tau^2)`.

    The weighted residuals are formed directly from the p x p normal equations: Q is the minimum of
    the weighted residual sum of squares, so an error in the coefficients enters it only at second
    order (this function is evaluated many times by the root searches).
    """
    w = 1.0 / (v + tau2)
    WX = X * w[:, None]
    b = np.linalg.solve(X.T @ WX, WX.T @ yc)
    r = yc - X @ b
    return float(np.sum(w * r * r))


def se_tau2(
    method: str,
    tau2: float,
    v: np.ndarray,
    X: np.ndarray,
    tau2_0: float | None = None,
    P: DiagonalP | None = None,
) -> float | None:
    """Standard error of :math:`\\hat\\tau^2` as metafor 3.8 reports it.

    ``P``: the estimator's :class:`DiagonalP` if the caller has it (DL, HS, HSk: weights
    :math:`1/v`; SJ: :math:`1/(v + \\tau^2_0)`).

    With :math:`t = \\max(\\hat\\tau^2, 0)`:

    * HE: :math:`\\sqrt{(2\\,\\mathrm{tr}(P_1VP_1V) + 4t\\,\\mathrm{tr}(P_1V) + 2t^2(k-p))}/(k-p)`
    * DL: :math:`\\sqrt{2(k-p) + 4t\\,\\mathrm{tr}P + 2t^2\\mathrm{tr}(PP)}/\\mathrm{tr}P`,
      :math:`w = 1/v`
    * HS: :math:`\\sqrt{2(k-p) + 4t\\,\\mathrm{tr}P + 2t^2\\mathrm{tr}(PP)}/\\sum w`; HSk: times
      :math:`k/(k-p)`
    * SJ: :math:`\\tau^2_0\\sqrt{2\\mathrm{tr}(PVPV) + 4t\\,\\mathrm{tr}(PVP)
      + 2t^2\\mathrm{tr}(PP)}
      /(k-p)`, :math:`w = 1/(v + \\tau^2_0)`
    * EB, PM, PMM: :math:`\\sqrt{2k^2/(k-p)}/\\sum_i 1/(v_i+\\hat\\tau^2)`

    (ML/REML: the inverse Fisher information, from the likelihood engine.)
    """
    k, p = X.shape
    t = max(tau2, 0.0)
    if method == "HE":
        P = DiagonalP.of(np.ones(k), X)
        trpv = P.trace(v)
        return float(np.sqrt(2 * P.trace2(v, v) + 4 * t * trpv + 2 * t**2 * (k - p)) / (k - p))
    if method in ("DL", "HS", "HSk"):
        w = 1.0 / v
        P = P if P is not None else DiagonalP.of(w, X)
        trp = P.trace()
        root = np.sqrt(2 * (k - p) + 4 * t * trp + 2 * t**2 * P.trace2())
        if method == "DL":
            return float(root / trp)
        se = root / np.sum(w)
        return float(se * k / (k - p) if method == "HSk" else se)
    if method == "SJ":
        P = P if P is not None else DiagonalP.of(1.0 / (v + tau2_0), X)
        inner = 2 * P.trace2(v, v) + 4 * t * P.trace2(v, None) + 2 * t**2 * P.trace2()
        return float(np.sqrt(tau2_0**2 / (k - p) ** 2 * inner))
    if method in ("EB", "PM", "PMM"):
        w = 1.0 / (v + tau2)
        return float(np.sqrt(2 * k**2 / (k - p) / np.sum(w) ** 2))
    return None


def estimate_tau2(
    method: str,
    yc: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
    *,
    y_raw: np.ndarray | None = None,
    threshold: float = 1e-5,
    maxiter: int = 100,
    tau2_max: float | None = None,
) -> Tau2Estimate:
    """One of the non-likelihood estimators (``NON_LIKELIHOOD``), metafor 3.8 semantics.

    Parameters
    ----------
    method : HE, DL, HS, HSk, SJ, EB, PM or PMM
    yc : (k,) mean-centred effect sizes
    v : (k,) sampling variances
    X : (k, p) model matrix
    y_raw : the uncentred effect sizes (only for PM/PMM's search interval, ``mad(y)``)
    threshold, maxiter : EB iteration control (metafor: 1e-5, 100)
    tau2_max : upper end of the PM/PMM search (default metafor's ``max(100, 10 mad(y)^2)``)
    """
    k, p = X.shape
    closed = Convergence(True, "closed-form", 0, None, False, f"{method} is closed-form")
    if method in ("HE", "DL", "HS", "HSk", "SJ"):
        tau2_0 = P = None
        if method == "HE":
            tau2 = he_estimate(yc, v, X)
        elif method == "DL":
            P = DiagonalP.of(1.0 / v, X)
            tau2 = (P.quad(yc) - (k - p)) / P.trace()
        elif method in ("HS", "HSk"):
            w = 1.0 / v
            P = DiagonalP.of(w, X)
            Q = P.quad(yc)
            Q = k / (k - p) * Q if method == "HSk" else Q
            tau2 = (Q - k) / np.sum(w)
        else:
            tau2_0 = float(np.sum((yc - yc.mean()) ** 2) / k)
            P = DiagonalP.of(1.0 / (v + tau2_0), X)
            tau2 = tau2_0 * P.quad(yc) / (k - p)
        tau2 = max(0.0, float(tau2))
        se = se_tau2(method, tau2, v, X, tau2_0, P)
        return Tau2Estimate(tau2, se, closed, projection=P if tau2_0 is None else None)

    if method == "EB":
        tau2 = max(0.0, he_estimate(yc, v, X))
        for it in range(1, maxiter + 2):
            w = 1.0 / (v + tau2)
            adj = (DiagonalP.of(w, X).quad(yc) * k / (k - p) - k) / np.sum(w)
            if not np.isfinite(adj):
                adj = 0.0
            halvings = 0
            while tau2 + adj < 0 and halvings < 1100:
                adj /= 2.0
                halvings += 1
            old, tau2 = tau2, max(tau2 + adj, 0.0)
            if abs(old - tau2) <= threshold:
                conv = Convergence(True, "EB-iteration", it, None, False, "change <= threshold")
                return Tau2Estimate(tau2, se_tau2("EB", tau2, v, X), conv)
        conv = Convergence(False, "EB-iteration", maxiter, None, False, "iteration limit reached")
        return Tau2Estimate(tau2, se_tau2("EB", tau2, v, X), conv)

    if method in ("PM", "PMM"):
        target = (k - p) if method == "PM" else float(dist.chi2_ppf(0.5, k - p))
        yr = yc if y_raw is None else y_raw
        upper = max(100.0, 10.0 * r_mad(yr) ** 2) if tau2_max is None else float(tau2_max)

        def f(t: float) -> float:
            return q_statistic(t, yc, v, X) - target

        f0 = f(0.0)
        if f0 < 0:
            tau2 = 0.0
            conv = Convergence(True, "uniroot", 0, None, False, "Q(0) below target: tau2 = 0")
        else:
            fu = f(upper)
            if fu > 0:
                raise ModelError(
                    f"{method}: Q at tau2 = {upper:g} is still above its target; "
                    "increase control['tau2_max'] or use another method"
                )
            root = uniroot(f, 0.0, upper, maxiter=maxiter, f_lower=f0, f_upper=fu)
            tau2 = max(0.0, root.root)
            conv = Convergence(
                root.converged, "uniroot", root.iterations, None, False, "R uniroot (Brent)"
            )
        return Tau2Estimate(tau2, se_tau2(method, tau2, v, X), conv)

    raise ModelError(f"unknown non-likelihood estimator {method!r}")  # pragma: no cover
