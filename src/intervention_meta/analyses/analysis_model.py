"""What every analysis step shares: its data, its model settings, its flags and its outputs.

An analysis step (overall, moderators, components, bias, sensitivity) reads
``results/<analysis>/effect_sizes.csv`` with the codebook, fits models as the config's ``models``
section says, collects every flag it raises (small cells, non-convergence, dropped rows, variance
components on the boundary, CR2 results not to be taken at face value, effect sizes with a tiny
variance; thresholds in :class:`FlagRules`) and writes readable CSV tables and full-precision
JSON. This module holds those shared pieces so that the
steps hold only their own statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from intervention_meta.config import LEVELS_KEY, check_levels
from intervention_meta.data.cleaning import EffectSizeData, read_effect_sizes
from intervention_meta.data.codebook import Codebook
from intervention_meta.errors import InputError
from intervention_meta.methods.influence import ModelCall
from intervention_meta.models import MetaResult

log = logging.getLogger(__name__)

#: the effect-size columns every analysis needs
YI, VI = "yi", "vi"

#: the structures ``models.structure`` accepts; ``three_level`` is a synonym of ``multilevel``
STRUCTURES = ("multilevel", "three_level", "random_effects", "fixed_effect")

#: the names of the multilevel structure (random effects at every level of ``models.levels``)
MULTILEVEL = ("multilevel", "three_level")

_LEVEL_WORDS = {1: "two", 2: "three", 3: "four", 4: "five", 5: "six"}


def multilevel_name(n_levels: int) -> str:
    """The multilevel model by its number of levels, sampling error being level 1: two random
    levels make a ``three-level model`` (Cheung 2014), three a ``four-level model``."""
    return f"{_LEVEL_WORDS.get(n_levels, str(n_levels + 1))}-level model"


def _plural(label: str) -> str:
    """A level's label as a plural noun in running text (``Sample`` -> ``samples``)."""
    words = label.strip()
    if len(words) > 1 and not words[:2].isupper():
        words = words[0].lower() + words[1:]
    if words.endswith(("s", "x", "ch", "sh")):
        return words + "es"
    if words.endswith("y") and len(words) > 1 and words[-2] not in "aeiou":
        return words[:-1] + "ies"
    return words + "s"


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class AnalysisData(EffectSizeData):
    """The effect sizes of one analysis with the names that organise them.

    Attributes
    ----------
    data, codebook, study, es : as :class:`~intervention_meta.data.cleaning.EffectSizeData`
    subset : description of the subset analysed (e.g. ``{"outcome_domain": "social_support"}``)
    levels : the grouping columns of the multilevel model, outer to inner (``models.levels``);
        empty: ``(study, es)``, effect sizes nested in studies
    """

    subset: dict = field(default_factory=dict)
    levels: tuple[str, ...] = ()

    @property
    def random(self) -> list[str]:
        """The nested random levels of the multilevel model, outer to inner (``models.levels``;
        default ``[study key, effect key]``): metafor's ``random = ~ 1 | a/b/c``."""
        return list(self.levels) if self.levels else [self.study, self.es]

    @property
    def cluster(self) -> str:
        """The outermost level: what every CR2/HTZ cluster-robust result clusters by."""
        return self.random[0]

    @property
    def n_clusters(self) -> int:
        return int(self.data[self.cluster].nunique())

    def level_name(self, level: str) -> str:
        """A level as a plural noun in running text: ``effect sizes`` for the effects key,
        ``studies`` for the studies key, else the codebook label (``samples``)."""
        if level == self.es:
            return "effect sizes"
        if level == self.study:
            return "studies"
        return _plural(self.label(level))

    def level_names(self) -> list[str]:
        """Every level as :meth:`level_name`, outer to inner."""
        return [self.level_name(lev) for lev in self.random]

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
    levels: Sequence[str] | None = None,
) -> AnalysisData:
    """Read ``effect_sizes.csv`` with the codebook's types; optionally keep one subset.

    ``subset`` maps a variable to the one code to keep (e.g. a per-domain analysis). Rows whose
    ``yi``/``vi`` are missing cannot occur here (the effect-size step drops them with a reason).
    ``levels`` are the grouping columns of the multilevel model (``models.levels``, outer to
    inner; None: study and effect keys).

    Raises
    ------
    InputError
        If a level is not a column of the effect sizes (:func:`check_levels`).
    """
    read = read_effect_sizes(effect_sizes, codebook)
    data = read.data
    problems = check_levels(levels, list(data.columns))
    if problems:
        raise InputError(problems, summary=f"{LEVELS_KEY} names columns the effect sizes lack")
    subset = dict(subset or {})
    for name, code in subset.items():
        keep = data[name].astype("string") == str(code)
        log.info("subset %s = %s: %d of %d effect sizes", name, code, int(keep.sum()), len(data))
        data = data.loc[keep.fillna(False).to_numpy()].reset_index(drop=True)
    return AnalysisData(
        data, read.codebook, read.study, read.es, subset=subset, levels=tuple(levels or ())
    )


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelSpec:
    """How the config says the analysis model is fitted (the config's ``models`` section).

    ``levels`` are the grouping columns of ``models.levels`` (outer to inner; empty: the default
    study and effect keys); :func:`load_analysis_data` takes them for the :class:`AnalysisData`.
    """

    structure: str = "three_level"
    method: str = "REML"
    test: str = "t"
    level: float = 0.95
    robust: str = "CR2"
    levels: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, models: Mapping[str, Any] | None) -> ModelSpec:
        models = dict(models or {})
        levels = models.get("levels") or ()
        if isinstance(levels, str) or not all(isinstance(x, str) for x in levels):
            raise ValueError(f"{LEVELS_KEY} must be a list of column names, got {levels!r}")
        spec = cls(
            structure=models.get("structure", cls.structure),
            method=models.get("method", cls.method),
            test=models.get("test", cls.test),
            level=float(models.get("level", cls.level)),
            robust=models.get("robust", cls.robust),
            levels=tuple(levels),
        )
        if spec.structure not in STRUCTURES:
            raise ValueError(
                f"models.structure must be one of {STRUCTURES}, got {spec.structure!r}"
            )
        return spec

    @property
    def multilevel(self) -> bool:
        """Random effects at every level (``multilevel``, or its synonym ``three_level``)."""
        return self.structure in MULTILEVEL

    def describe(self, names: Sequence[str] | None = None) -> str:
        """The model in words; ``names`` are the levels' plural nouns, outer to inner
        (:meth:`AnalysisData.level_names`; default: the configured columns, or studies and
        effect sizes): ``four-level model (effect sizes nested in samples nested in studies),
        REML, t tests, 95% intervals``."""
        if self.multilevel:
            names = list(names or self.levels or ("studies", "effect sizes"))
            what = f"{multilevel_name(len(names))} ({' nested in '.join(reversed(names))})"
        else:
            what = {
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

    Multilevel: ``random=ad.random`` (metafor ``rma.mv(yi, vi, random = ~ 1 | a/b/c)``, by
    default ``~ 1 | study/es``); random-effects: the one-level model with ``spec.method``
    (``rma``); fixed-effect: method ``FE``. The test is ``spec.test``, with Knapp-Hartung as t
    for the multilevel model (:func:`model_test`).
    """
    random = tuple(ad.random) if spec.multilevel else ()
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
