"""The effect measures an analysis can be run on, and which reported statistics give which measure.

One frozen :class:`Measure` per measure, named by metafor's ``escalc`` code (``SMD``, ``MD``,
``ZCOR``, ``COR``, ``OR``, ``RR``, ``RD``, ``ROM``, ``PLO``, ``PR``) plus ``GEN``, a ready effect
size (``yi``/``vi``) whose name the config gives. Each says how it is read: its name, a short axis
label, the null value (on the analysis scale), the back-transformation for display (``exp`` for
the log ratio measures, ``tanh`` for Fisher's z, the inverse logit for logit proportions), the
default wording of its direction, and a plausible-size bound.

One :class:`InputKind` per ``es_input`` level: the statistic roles it needs (the canonical column
names of the codebook's ``requires``), its native measure, and the measures it gives -- directly,
or by a conversion from another measure that the config must allow (``effect_sizes.convert``).

Plausible-size bounds (``|yi|`` beyond which an effect is implausible for the measure, flagged,
never removed): SMD 5 (five pooled SDs; Cohen's "large" is 0.8); ZCOR 2.65 (|r| > .99); COR .99;
OR, RR, ROM log(100) (a ratio beyond 100 or below 1/100); PLO log(999) (a proportion beyond
.999 or below .001); RD 1 and PR 0.5 from its null 0.5 (outside the scale). MD and GEN have no
bound (the scale is the data's own). Bounds are distances from the null: ``|yi - null|``.

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48 (``escalc`` measures).

Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009). *Introduction to
Meta-Analysis*. Wiley (ch. 4-7).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "CONVERSION_SOURCES",
    "INPUT_KINDS",
    "MEASURES",
    "InputKind",
    "Measure",
    "get_measure",
    "role_columns",
    "role_values",
]

#: back-transformation -> (to the display scale, back to the analysis scale)
_BACK = {
    None: (lambda x: x, lambda x: x),
    "exp": (np.exp, np.log),
    "tanh": (np.tanh, np.arctanh),
    "expit": (lambda x: 1 / (1 + np.exp(-x)), lambda p: np.log(p / (1 - p))),
}


@dataclass(frozen=True)
class Measure:
    """One effect measure.

    Attributes
    ----------
    code : metafor's ``escalc`` code (``"GEN"`` for a given measure)
    name : readable name, e.g. ``"log odds ratio"``
    axis_label : short label for an axis or a column, e.g. ``"log OR"``
    null : the value of no effect on the analysis scale (0 for differences and log ratios;
        0.5 for a raw proportion, 0 for its logit: an even split, drawn as a reference line)
    back_transform : ``"exp"``, ``"tanh"``, ``"expit"`` or None: what turns the analysis scale
        into the display scale
    back_name : the name on the display scale (``"odds ratio"``), None without a back-transform
    plausible_bound : ``|yi|`` beyond which an effect is implausible for the measure, or None
    default_direction : what a positive effect means when the config does not say
    """

    code: str
    name: str
    axis_label: str
    null: float
    back_transform: str | None
    back_name: str | None
    plausible_bound: float | None
    default_direction: str

    def back(self, x) -> np.ndarray:
        """Values on the display scale (``exp``, ``tanh``, inverse logit, or unchanged)."""
        return _BACK[self.back_transform][0](np.asarray(x, dtype=float))

    def unback(self, x) -> np.ndarray:
        """Values on the display scale taken back to the analysis scale (the inverse of
        :meth:`back`: ``log``, ``arctanh``, logit, or unchanged)."""
        return _BACK[self.back_transform][1](np.asarray(x, dtype=float))

    def flip(self, yi) -> np.ndarray:
        """Reversed, mirrored at the null: ``2 null - yi`` (``-yi``; ``1 - p`` for PR)."""
        return 2 * self.null - np.asarray(yi, dtype=float)

    def implausible(self, yi) -> np.ndarray:
        """True where ``|yi - null|`` exceeds :attr:`plausible_bound` (never without a bound)."""
        yi = np.asarray(yi, dtype=float)
        if self.plausible_bound is None:
            return np.zeros(yi.shape, dtype=bool)
        return np.abs(yi - self.null) > self.plausible_bound

    def named(self, name: str | None) -> Measure:
        """The same measure under another readable name (a ``GEN`` measure's declared name)."""
        return replace(self, name=name, axis_label=name) if name else self

    def to_dict(self) -> dict:
        return asdict(self)


_GROUPS = "in the first (intervention) group than the second"
MEASURES: Mapping[str, Measure] = MappingProxyType(
    {
        m.code: m
        for m in (
            Measure("SMD", "Hedges' g", "Hedges' g", 0.0, None, None, 5.0,
                    f"positive = higher {_GROUPS}"),
            Measure("MD", "mean difference", "mean difference", 0.0, None, None, None,
                    f"positive = higher {_GROUPS}"),
            Measure("ZCOR", "Fisher's z", "Fisher's z", 0.0, "tanh", "correlation",
                    float(np.arctanh(0.99)), "positive = the two variables rise together"),
            Measure("COR", "correlation", "r", 0.0, None, None, 0.99,
                    "positive = the two variables rise together"),
            Measure("OR", "log odds ratio", "log OR", 0.0, "exp", "odds ratio", math.log(100),
                    f"above 1 = higher odds of the event {_GROUPS}"),
            Measure("RR", "log risk ratio", "log RR", 0.0, "exp", "risk ratio", math.log(100),
                    f"above 1 = higher risk of the event {_GROUPS}"),
            Measure("RD", "risk difference", "risk difference", 0.0, None, None, 1.0,
                    f"positive = higher risk of the event {_GROUPS}"),
            Measure("ROM", "log response ratio", "log ratio of means", 0.0, "exp",
                    "ratio of means", math.log(100), f"above 1 = higher mean {_GROUPS}"),
            Measure("PLO", "logit proportion", "logit proportion", 0.0, "expit", "proportion",
                    math.log(999), "higher = a larger proportion with the event"),
            Measure("PR", "proportion", "proportion", 0.5, None, None, 0.5,
                    "higher = a larger proportion with the event"),
            Measure("GEN", "given effect size", "effect size", 0.0, None, None, None,
                    "positive = as the given effect sizes are coded"),
        )
    }
)  # fmt: skip


def get_measure(code: str, name: str | None = None) -> Measure:
    """The measure with metafor code ``code`` (``name`` renames a ``GEN`` measure)."""
    if code not in MEASURES:
        raise ValueError(f"unknown effect measure {code!r}; one of {', '.join(MEASURES)}")
    measure = MEASURES[code]
    return measure.named(name) if code == "GEN" else measure


@dataclass(frozen=True)
class InputKind:
    """One ``es_input`` level: what a row reports and which measures that gives.

    Attributes
    ----------
    code : the ``es_input`` level
    roles : the statistic roles the kind needs (canonical column names)
    native : the measure its statistics give most directly
    gives : measure -> the source measure of the conversion it needs (None: computed directly)
    given : True for ready ``yi``/``vi``: they are taken as the analysis measure, whatever it is
    optional : roles read when present (e.g. ``r_prepost``), never required
    """

    code: str
    roles: tuple[str, ...]
    native: str
    gives: Mapping[str, str | None] = field(default_factory=dict)
    given: bool = False
    optional: tuple[str, ...] = ()

    def source(self, measure: str) -> str | None:
        """The conversion (source measure) ``measure`` needs; KeyError if the kind cannot."""
        if self.given:
            return None
        return self.gives[measure]

    def can_give(self, measure: str) -> bool:
        return self.given or measure in self.gives

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "roles": list(self.roles),
            "gives": dict(self.gives),
            "optional": list(self.optional),
        }


_TWO_BY_TWO = ("events_int", "nonevents_int", "events_ctl", "nonevents_ctl")
_SMD = {"SMD": None}
INPUT_KINDS: Mapping[str, InputKind] = MappingProxyType(
    {
        k.code: k
        for k in (
            InputKind("means_sds", ("m_int", "sd_int", "n_int", "m_ctl", "sd_ctl", "n_ctl"),
                      "SMD", {"SMD": None, "MD": None, "ROM": None}),
            InputKind("t", ("t_value", "n_int", "n_ctl"), "SMD", _SMD),
            InputKind("f", ("f_value", "n_int", "n_ctl", "stat_direction"), "SMD", _SMD),
            InputKind("p", ("p_value", "n_int", "n_ctl", "stat_direction"), "SMD", _SMD),
            InputKind("d_se", ("d_value", "d_se", "d_is_g"), "SMD", _SMD,
                      optional=("n_int", "n_ctl")),
            InputKind("d_ci", ("d_value", "d_ci_lower", "d_ci_upper", "d_is_g"), "SMD", _SMD,
                      optional=("n_int", "n_ctl")),
            InputKind("or_2x2", _TWO_BY_TWO, "OR",
                      {"OR": None, "RR": None, "RD": None, "SMD": "OR"}),
            InputKind("counts_2x2", _TWO_BY_TWO, "OR",
                      {"OR": None, "RR": None, "RD": None, "SMD": "OR"}),
            InputKind("or_ci", ("or_value", "or_ci_lower", "or_ci_upper"), "OR",
                      {"OR": None, "SMD": "OR"}),
            InputKind("rr_ci", ("rr_value", "rr_ci_lower", "rr_ci_upper"), "RR", {"RR": None}),
            InputKind("r", ("r_value", "n_total"), "ZCOR",
                      {"ZCOR": None, "COR": None, "SMD": "COR"}),
            InputKind("events_n", ("events", "n"), "PLO", {"PLO": None, "PR": None}),
            InputKind("prepost", ("m_int_pre", "sd_int_pre", "m_int", "m_ctl_pre", "sd_ctl_pre",
                                  "m_ctl", "n_int", "n_ctl"), "SMD", _SMD,
                      optional=("r_prepost",)),
            InputKind("yi_vi", ("yi", "vi"), "GEN", given=True),
        )
    }
)  # fmt: skip

#: The source measures a conversion can start from (the values ``effect_sizes.convert`` takes).
CONVERSION_SOURCES: tuple[str, ...] = tuple(
    dict.fromkeys(s for k in INPUT_KINDS.values() for s in k.gives.values() if s)
)


def role_columns(
    statistic_columns: Mapping[str, Mapping[str, str]] | None = None, *, every_kind: bool = True
) -> dict[str, list[str]]:
    """Role -> the columns that hold it: over every input kind of :data:`INPUT_KINDS` the
    standard column (the role's own name) unless the codebook's ``requires`` mapping
    (``statistic_columns``: ``{input kind: {role: column}}``) renames it for a kind; with
    ``every_kind`` false only the columns of ``statistic_columns`` (the kinds a codebook
    declares)."""
    out: dict[str, list[str]] = {}
    for key, kind in INPUT_KINDS.items() if every_kind else ():
        renamed = (statistic_columns or {}).get(key, {})
        for role in kind.roles + kind.optional:
            column = renamed.get(role, role)
            if column not in out.setdefault(role, []):
                out[role].append(column)
    for mapping in (statistic_columns or {}).values():  # kinds unknown here keep their columns
        for role, column in mapping.items():
            if column not in out.setdefault(role, []):
                out[role].append(column)
    return out


def role_values(frame: Any, roles: Mapping[str, Sequence[str]], role: str) -> np.ndarray:
    """Per row of ``frame``, the first numeric value among the columns holding ``role``
    (:func:`role_columns`); NaN where none has one."""
    import pandas as pd

    out = np.full(len(frame), np.nan)
    for column in roles.get(role, ()):
        if column in frame:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            out = np.where(np.isnan(out), values, out)
    return out
