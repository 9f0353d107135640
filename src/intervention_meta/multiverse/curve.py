"""The specification curve of a multiverse and its inferential test by bootstrap under the null.

The curve is every fitted specification's estimate, sorted, with its CI (Simonsohn, Simmons &
Nelson 2020; Voracek, Kossmeier & Tran 2019). Its descriptive summaries: the median estimate, the
share of specifications with :math:`p <` ``alpha``, the shares of positive and negative estimates
and the share of specifications that are significant in the direction of the median.

The test asks whether the curve is more extreme than it would be if no specification had an
effect. Each bootstrap draw (:func:`intervention_meta.multiverse.fit.fit_chunk`) refits every
specification on studies resampled with replacement after shifting its effect sizes by minus its
observed estimate. With :math:`B` draws and the observed median :math:`m` (sign :math:`s`) and
share :math:`q` of specifications significant in direction :math:`s`,

.. math:: p_\\text{median} = \\frac{1 + \\#\\{b : s\\, m_b \\ge s\\, m\\}}{B + 1}, \\qquad
          p_\\text{share} = \\frac{1 + \\#\\{b : q_b \\ge q\\}}{B + 1}

(one-sided in the observed direction as Simonsohn et al. 2020; the :math:`+1` counts the observed
curve among the draws, so a p value is never 0). In draw :math:`b` the median and the share are
taken over the specifications fitted both on the data and in that draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.multiverse.results import ChunkResult
from intervention_meta.multiverse.specs import Multiverse


@dataclass(frozen=True)
class BootstrapTest:
    """The bootstrap test under the null (see the module docstring).

    ``medians`` and ``shares`` are the draws' median estimate and share significant in the
    observed direction.
    """

    draws: int
    seed: int
    medians: np.ndarray
    shares: np.ndarray
    p_median: float | None
    p_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "seed": self.seed,
            "p_median": self.p_median,
            "p_share": self.p_share,
            "medians": self.medians.tolist(),
            "shares": self.shares.tolist(),
        }


@dataclass(frozen=True)
class CurveSummary:
    """Descriptive summaries of the specification curve and the bootstrap test."""

    n_specs: int
    n_fitted: int
    status_counts: dict[str, int]
    alpha: float
    median_estimate: float | None
    min_estimate: float | None
    max_estimate: float | None
    share_significant: float | None
    share_positive: float | None
    share_negative: float | None
    share_significant_same_sign: float | None
    test: BootstrapTest | None

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "test"}
        out["bootstrap"] = None if self.test is None else self.test.to_dict()
        return out


def spec_table(mv: Multiverse, chunks: Sequence[ChunkResult], alpha: float) -> pd.DataFrame:
    """One row per specification in enumeration order: id, choices, status, reason, k, studies,
    outliers dropped, the estimate's numbers, variance components (``tau2`` or
    ``sigma2_<level>``), ``significant`` and ``rank`` (1 = smallest estimate; None unfitted)."""
    fits = {sid: f for c in chunks for sid, f in zip(c.spec_ids, c.fits, strict=True)}
    missing = [s.id for s in mv.specs if s.id not in fits]
    if missing:
        raise ValueError(f"multiverse: no result for {len(missing)} spec(s), e.g. {missing[:3]}")
    rows = []
    for spec in mv.specs:
        fit = fits[spec.id]
        row = {"id": spec.id, **spec.choices(), **fit.to_dict()}
        components = row.pop("tau2")
        for name, value in components.items():
            row["tau2" if name == "tau2" else f"sigma2_{name}"] = value
        rows.append(row)
    table = pd.DataFrame(rows)
    ok = table["status"].eq("ok")
    pval = pd.to_numeric(table["pval"], errors="coerce")
    table["significant"] = (pval < alpha).where(ok)
    table["rank"] = (
        pd.to_numeric(table["estimate"], errors="coerce")
        .where(ok)
        .rank(method="first")
        .astype("Int64")
    )
    return table


def _share(mask: np.ndarray) -> float | None:
    return float(np.mean(mask)) if mask.size else None


def bootstrap_test(
    mv: Multiverse,
    chunks: Sequence[ChunkResult],
    table: pd.DataFrame,
    alpha: float,
    seed: int,
) -> BootstrapTest | None:
    """The test of the observed curve against the draws under the null (None: no draws)."""
    order = {s.id: j for j, s in enumerate(mv.specs)}
    draws = max((c.boot_estimate.shape[0] for c in chunks), default=0)
    if draws == 0:
        return None
    est = np.full((draws, len(mv.specs)), np.nan)
    pval = np.full((draws, len(mv.specs)), np.nan)
    for c in chunks:
        cols = [order[sid] for sid in c.spec_ids]
        est[:, cols] = c.boot_estimate
        pval[:, cols] = c.boot_pval
    observed = pd.to_numeric(table["estimate"], errors="coerce").to_numpy(dtype=float)
    obs_p = pd.to_numeric(table["pval"], errors="coerce").to_numpy(dtype=float)
    fitted = np.isfinite(observed)
    if not fitted.any():
        return BootstrapTest(
            draws, seed, np.full(draws, np.nan), np.full(draws, np.nan), None, None
        )
    median = float(np.median(observed[fitted]))
    sign = 1.0 if median >= 0 else -1.0
    share = float(np.mean((obs_p[fitted] < alpha) & (sign * observed[fitted] > 0)))
    medians, shares = np.full(draws, np.nan), np.full(draws, np.nan)
    for b in range(draws):
        use = fitted & np.isfinite(est[b])
        if use.any():
            medians[b] = np.median(est[b, use])
            shares[b] = np.mean((pval[b, use] < alpha) & (sign * est[b, use] > 0))
    ok = np.isfinite(medians)
    n = int(ok.sum())
    p_median = (1 + int(np.sum(sign * medians[ok] >= sign * median))) / (n + 1)
    p_share = (1 + int(np.sum(shares[ok] >= share))) / (n + 1)
    return BootstrapTest(draws, seed, medians, shares, float(p_median), float(p_share))


def summarise(
    mv: Multiverse, chunks: Sequence[ChunkResult], *, alpha: float = 0.05, seed: int = 0
) -> tuple[pd.DataFrame, CurveSummary]:
    """The result table (:func:`spec_table`) and the curve's summaries with the test."""
    table = spec_table(mv, chunks, alpha)
    ok = table["status"].eq("ok").to_numpy()
    est = pd.to_numeric(table["estimate"], errors="coerce").to_numpy(dtype=float)[ok]
    sig = table["significant"].to_numpy()[ok].astype(bool)
    median = float(np.median(est)) if est.size else None
    sign = 1.0 if (median or 0.0) >= 0 else -1.0
    summary = CurveSummary(
        n_specs=len(table),
        n_fitted=int(ok.sum()),
        status_counts={str(k): int(v) for k, v in table["status"].value_counts().items()},
        alpha=float(alpha),
        median_estimate=median,
        min_estimate=float(est.min()) if est.size else None,
        max_estimate=float(est.max()) if est.size else None,
        share_significant=_share(sig),
        share_positive=_share(est > 0),
        share_negative=_share(est < 0),
        share_significant_same_sign=_share(sig & (sign * est > 0)),
        test=bootstrap_test(mv, chunks, table, alpha, seed),
    )
    return table, summary


def by_choice(table: pd.DataFrame, factors: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Per option of every factor that varies: specs fitted, their median estimate and share
    significant (where on the curve the specifications with that choice sit)."""
    ok = table.loc[table["status"].eq("ok")]
    out = []
    for factor, options in factors.items():
        if len(options) < 2:
            continue
        text = ok[factor].map(
            lambda v: "-" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else str(v)
        )
        for option in options:
            rows = ok.loc[text.eq(option).to_numpy()]
            est = pd.to_numeric(rows["estimate"], errors="coerce")
            out.append(
                {
                    "factor": factor,
                    "option": option,
                    "n_fitted": len(rows),
                    "median_estimate": float(est.median()) if len(rows) else None,
                    "share_significant": float(rows["significant"].astype(bool).mean())
                    if len(rows)
                    else None,
                }
            )
    return out
