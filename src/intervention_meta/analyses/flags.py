"""The flags every step raises (small cells, boundary estimates, unreliable CR2 tests, tiny
sampling variances, non-convergence), one line each, for the warnings file and the report; and
their thresholds, the config's ``flags`` section.

Kept apart from :mod:`.analysis_model` so that the data job's effect-size step can flag without
importing the model engine.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from intervention_meta.effect_sizes.compute import tiny_variance_lines

if TYPE_CHECKING:
    from intervention_meta.models import MetaResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlagRules:
    """The thresholds of the flags every step raises (the config's ``flags`` section).

    Attributes
    ----------
    tiny_vi_ratio : an effect size whose ``vi`` is below ``median(vi) / tiny_vi_ratio`` is flagged
    tiny_vi_share : an effect size whose weight share in the fixed-effect model (``1/vi`` over
        ``sum(1/vi)``) exceeds this is flagged
    boundary_tol : a variance component at most ``boundary_tol`` times the scale of the model
        (the sum of its variance components plus the median ``vi``) is on the boundary (0)
    robust_se_ratio : a CR2 standard error below the model standard error divided by this is
        flagged
    min_robust_df : a CR2 t test or HTZ Wald test whose (denominator) df is below this is flagged
        (Tipton 2015: p values are unreliable below 4)
    """

    tiny_vi_ratio: float = 1000.0
    tiny_vi_share: float = 0.5
    boundary_tol: float = 1e-8
    robust_se_ratio: float = 3.0
    min_robust_df: float = 4.0

    @classmethod
    def from_config(cls, flags: Mapping[str, Any] | None) -> FlagRules:
        """The rules of the config's ``flags`` section (absent keys: the defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        given = dict(flags or {})
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"flags: unknown key(s) {unknown}; the keys are {sorted(known)}")
        return cls(**{name: float(value) for name, value in given.items()})


def _g(x: float) -> str:
    return f"{x:.3g}"


@dataclass
class Flags:
    """Every flag an analysis step raises, one line each (for the warnings file and report).

    ``rules`` are the thresholds of the checks (:class:`FlagRules`, the config's ``flags``).
    """

    step: str
    lines: list[str] = field(default_factory=list)
    rules: FlagRules = field(default_factory=FlagRules)

    def add(self, message: str) -> None:
        line = f"[{self.step}] {message}"
        log.warning("%s", line)
        self.lines.append(line)

    def check_fit(self, result: MetaResult, what: str) -> None:
        """Flag non-convergence and dropped rows of a fitted model."""
        if not result.converged:
            self.add(f"{what}: the optimizer did not converge ({result.convergence.reason})")
        if result.n_dropped:
            self.add(f"{what}: {result.n_dropped} row(s) with missing values left out")

    def check_boundary(self, result: MetaResult, what: str, vi: Sequence[float] = ()) -> None:
        """Flag every variance component estimated on the boundary (at 0).

        A component is on the boundary when it is at most ``rules.boundary_tol`` times the scale
        of the model: the sum of its estimated variance components plus the median of ``vi``
        (the sampling variances; none given: the components alone). Components fixed by the
        analysis (e.g. a level with one unit) are not flagged here. A multilevel level on the
        boundary adds no variance: the model reduces to the one without that level (its
        likelihood-ratio test cannot reject, its share of the variance is 0); a one-level
        ``tau2`` on the boundary reduces the random-effects model to the fixed-effect model.
        """
        if result.multilevel:
            estimated = {
                lev: v for lev, v in result.sigma2.items() if not result.variance_fixed.get(lev)
            }
            names = {lev: f"sigma2[{lev}]" for lev in estimated}
        elif result.tau2 is not None and result.method != "FE":
            estimated = {"tau2": float(result.tau2)}
            names = {"tau2": "tau2"}
        else:
            return
        vi = np.asarray(vi, dtype=float)
        scale = float(sum(estimated.values())) + (float(np.median(vi)) if vi.size else 0.0)
        for lev, value in estimated.items():
            if value > self.rules.boundary_tol * scale:
                continue
            if lev == "tau2":
                meaning = (
                    "no between-study variance is estimated; the random-effects model reduces "
                    "to the fixed-effect model"
                )
            else:
                others = ", ".join(lv for lv in result.random if lv != lev) or "none"
                meaning = (
                    f"the {lev} level adds no variance; the model reduces to the one without "
                    f"it (random effects: {others})"
                )
            self.add(f"{what}: {names[lev]} = {_g(value)} is on the boundary (0): {meaning}")

    def check_robust(self, result: MetaResult, robust: Any, what: str) -> None:
        """Flag CR2 results not to be taken at face value, for every coefficient.

        ``robust`` is the :class:`~intervention_meta.models.robust.RobustResult` of ``result``.
        Flags a CR2 SE below the model SE divided by ``rules.robust_se_ratio`` (the working model
        and the small-sample df should be checked) and a Satterthwaite df below
        ``rules.min_robust_df`` (Tipton 2015: the p value and CI are unreliable there).
        """
        names = list(robust.coef_names)
        model_se = np.asarray(result.se, dtype=float)
        for i, name in enumerate(names):
            se_r, df_r = float(robust.se[i]), float(robust.df[i])
            if model_se[i] > 0 and se_r < model_se[i] / self.rules.robust_se_ratio:
                ratio = self.rules.robust_se_ratio
                self.add(
                    f"{what}: {name}: the CR2 SE ({_g(se_r)}) is below 1/{ratio:g} of the model "
                    f"SE ({_g(model_se[i])}); check the small-sample df and the working model "
                    "(e.g. a variance component on the boundary)"
                )
            self.check_df(df_r, f"{what}: {name}: CR2 t test", robust.n_clusters)

    def check_df(self, df: float | None, what: str, clusters: int | None = None) -> None:
        """Flag a CR2 t test or HTZ Wald test whose (denominator) df is below
        ``rules.min_robust_df`` (Tipton 2015)."""
        if df is None or not np.isfinite(df) or df >= self.rules.min_robust_df:
            return
        n = f" ({clusters} clusters)" if clusters else ""
        self.add(
            f"{what}: Satterthwaite df = {df:.2f} < {self.rules.min_robust_df:g}{n}; "
            "the p value and CI are unreliable with so few df (Tipton 2015)"
        )

    def check_wald(self, test: Mapping[str, Any] | None, what: str) -> None:
        """:meth:`check_df` of an HTZ Wald test's dict (``df_denom``)."""
        if test:
            self.check_df(test.get("df_denom"), f"{what}: HTZ Wald test")

    def check_tiny_vi(
        self, keys: Sequence[Any], vi: Sequence[float], *, key_name: str, consequence: str
    ) -> None:
        """Flag every effect size whose vi is tiny relative to the others
        (:func:`~intervention_meta.effect_sizes.compute.tiny_variances` with
        ``rules.tiny_vi_ratio`` and ``rules.tiny_vi_share``), naming its key and vi and saying
        what it can dominate (``consequence``)."""
        for line in tiny_variance_lines(
            keys,
            vi,
            key_name=key_name,
            ratio=self.rules.tiny_vi_ratio,
            share=self.rules.tiny_vi_share,
        ):
            self.add(f"{line}: {consequence}")

    def write(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(self.lines) + ("\n" if self.lines else "")
        Path(path).write_text(text, encoding="utf-8")


__all__ = ["FlagRules", "Flags"]
