"""What every analysis step shares: its data, its model settings, its flags and its outputs.

An analysis step (overall, moderators, components, bias, sensitivity) reads
``results/<analysis>/effect_sizes.csv`` with the codebook, fits models as the config's ``models``
section says, collects every flag it raises (small cells, non-convergence, dropped rows) and writes
readable CSV tables and full-precision JSON. This module holds those shared pieces so that the
steps hold only their own statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from intervention_meta.data.cleaning import EffectSizeData, read_effect_sizes
from intervention_meta.data.codebook import Codebook
from intervention_meta.methods.influence import ModelCall
from intervention_meta.models import MetaResult

log = logging.getLogger(__name__)

#: the effect-size columns every analysis needs
YI, VI = "yi", "vi"

STRUCTURES = ("three_level", "random_effects", "fixed_effect")


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class AnalysisData(EffectSizeData):
    """The effect sizes of one analysis with the names that organise them.

    Attributes
    ----------
    data, codebook, study, es : as :class:`~intervention_meta.data.cleaning.EffectSizeData`
    subset : description of the subset analysed (e.g. ``{"outcome_domain": "social_support"}``)
    """

    subset: dict = field(default_factory=dict)

    @property
    def random(self) -> list[str]:
        """The nested random levels of the three-level model: ``[study key, effect key]``."""
        return [self.study, self.es]

    def label(self, name: str) -> str:
        """The codebook label of a column (the column name if it is not in the codebook)."""
        try:
            return self.codebook.label(name)
        except (KeyError, AttributeError):
            return name

    def level_label(self, name: str, code: object) -> str:
        try:
            return str(self.codebook.level_label(name, code))
        except (KeyError, AttributeError, ValueError):
            return str(code)


def load_analysis_data(
    effect_sizes: str | Path,
    codebook: str | Path | Codebook,
    *,
    subset: Mapping[str, object] | None = None,
) -> AnalysisData:
    """Read ``effect_sizes.csv`` with the codebook's types; optionally keep one subset.

    ``subset`` maps a variable to the one code to keep (e.g. a per-domain analysis). Rows whose
    ``yi``/``vi`` are missing cannot occur here (the effect-size step drops them with a reason).
    """
    read = read_effect_sizes(effect_sizes, codebook)
    data = read.data
    subset = dict(subset or {})
    for name, code in subset.items():
        keep = data[name].astype("string") == str(code)
        log.info("subset %s = %s: %d of %d effect sizes", name, code, int(keep.sum()), len(data))
        data = data.loc[keep.fillna(False).to_numpy()].reset_index(drop=True)
    return AnalysisData(data, read.codebook, read.study, read.es, subset=subset)


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelSpec:
    """How the config says the analysis model is fitted (the config's ``models`` section)."""

    structure: str = "three_level"
    method: str = "REML"
    test: str = "t"
    level: float = 0.95
    robust: str = "CR2"

    @classmethod
    def from_config(cls, models: Mapping[str, Any] | None) -> ModelSpec:
        models = dict(models or {})
        spec = cls(
            structure=models.get("structure", cls.structure),
            method=models.get("method", cls.method),
            test=models.get("test", cls.test),
            level=float(models.get("level", cls.level)),
            robust=models.get("robust", cls.robust),
        )
        if spec.structure not in STRUCTURES:
            raise ValueError(
                f"models.structure must be one of {STRUCTURES}, got {spec.structure!r}"
            )
        return spec

    def describe(self) -> str:
        what = {
            "three_level": "three-level model (effect sizes nested in studies)",
            "random_effects": "random-effects model (effect sizes treated as independent)",
            "fixed_effect": "fixed-effect (equal-effects) model",
        }[self.structure]
        method = "" if self.structure == "fixed_effect" else f", {self.method}"
        return f"{what}{method}, {self.test} tests, {self.level:.0%} intervals"


def model_test(test: str, multilevel: bool) -> str:
    """The test of a model: Knapp-Hartung becomes ``t`` for a multilevel model.

    The Knapp-Hartung adjustment is defined for one-level models only (metafor offers it for
    ``rma``, not ``rma.mv``), so a multilevel model of a ``knha`` analysis uses t tests with
    df = k - p.
    """
    return "t" if multilevel and test == "knha" else test


def model_call(
    ad: AnalysisData,
    spec: ModelSpec,
    *,
    mods: Sequence[str] | None = None,
    intercept: bool = True,
) -> ModelCall:
    """The analysis model of ``spec`` on ``ad`` as a :class:`ModelCall` (fit it with ``.fit``).

    Three-level: ``random=[study, es]`` (metafor ``rma.mv(yi, vi, random = ~ 1 | study/es)``);
    random-effects: the one-level model with ``spec.method`` (``rma``); fixed-effect: method
    ``FE``. The test is ``spec.test``, with Knapp-Hartung as t for the three-level model
    (:func:`model_test`).
    """
    random = tuple(ad.random) if spec.structure == "three_level" else ()
    return ModelCall(
        yi=YI,
        vi=VI,
        mods=tuple(mods or ()),
        random=random,
        method="FE" if spec.structure == "fixed_effect" else spec.method,
        test=model_test(spec.test, bool(random)),
        level=spec.level,
        intercept=intercept,
    )


def fit_model(
    ad: AnalysisData,
    spec: ModelSpec,
    *,
    mods: Sequence[str] | None = None,
    intercept: bool = True,
    data: pd.DataFrame | None = None,
    **kwargs: Any,
) -> MetaResult:
    """Fit the analysis model of ``spec`` to ``ad`` (or to ``data``, a subset of its rows).

    :func:`model_call` says how; ``kwargs`` (``sigma2_fixed``, ``tau2_fixed``, ``start``) go to
    :meth:`ModelCall.fit`.
    """
    call = model_call(ad, spec, mods=mods, intercept=intercept)
    return call.fit(ad.data if data is None else data, **kwargs)


# --------------------------------------------------------------------------- flags
@dataclass
class Flags:
    """Every flag an analysis step raises, one line each (for the warnings file and report)."""

    step: str
    lines: list[str] = field(default_factory=list)

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

    def write(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(self.lines) + ("\n" if self.lines else "")
        Path(path).write_text(text, encoding="utf-8")
