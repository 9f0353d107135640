"""The effect measure as people read it: symbol, axis title, direction and back-transformed values.

Every table, figure and the report name the scale of the effect sizes from one
:class:`MeasureLabels`, made from the ``measure`` record the effect-size step writes into
``effect_sizes_summary.json`` (see ``docs/results.md``): the symbol in running text and column
headers (``g``, ``MD``, ``z``, ``log OR``, ...), the axis title (``Hedges' g``, ``Log odds
ratio``), what a positive effect means (the declared direction, per domain where it differs) and
the back-transformed display of an estimate with its intervals:

* log odds ratio, log risk ratio, log ratio of means: :math:`\\exp(x)` (OR, RR, RoM);
* Fisher's z: :math:`r = \\tanh(z)`;
* logit proportion: :math:`p = 1 / (1 + e^{-x})`.

The transformations are monotone increasing, so the bounds of an interval map to the bounds of the
back-transformed interval (Borenstein et al. 2009, ch. 5-6; metafor's ``transf`` argument of
``predict.rma``). Nothing here reads a header back: the record is the machine-readable source.

References
----------
Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009). *Introduction to
Meta-Analysis*. Wiley (ch. 5 and 6); metafor's ``transf.exp.int``, ``transf.ztor.int`` and
``transf.ilogit.int`` (Viechtbauer 2010, *Journal of Statistical Software* 36(3)) do the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from intervention_meta.effect_sizes.measures import MEASURES, Measure, get_measure

__all__ = [
    "AXIS_TITLES",
    "BACK_SYMBOLS",
    "SYMBOLS",
    "BackScale",
    "BackTransformed",
    "MeasureLabels",
    "measure_labels",
    "read_measure_labels",
]

#: the symbol of each measure in running text and column headers
SYMBOLS: Mapping[str, str] = {
    "SMD": "g",
    "MD": "MD",
    "ZCOR": "z",
    "COR": "r",
    "OR": "log OR",
    "RR": "log RR",
    "RD": "RD",
    "ROM": "log RoM",
    "PLO": "logit p",
    "PR": "p",
    "GEN": "ES",
}

#: the axis title of each measure (a ``GEN`` measure: its declared name)
AXIS_TITLES: Mapping[str, str] = {
    "SMD": "Hedges' g",
    "MD": "Mean difference",
    "ZCOR": "Fisher's z",
    "COR": "Correlation r",
    "OR": "Log odds ratio",
    "RR": "Log risk ratio",
    "RD": "Risk difference",
    "ROM": "Log ratio of means",
    "PLO": "Logit proportion",
    "PR": "Proportion",
    "GEN": "Effect size",
}

#: the symbol on the back-transformed scale
BACK_SYMBOLS: Mapping[str, str] = {"OR": "OR", "RR": "RR", "ROM": "RoM", "ZCOR": "r", "PLO": "p"}


#: round values to mark on a back-transformed axis (those within the axis' range are drawn)
_TICKS = {
    "exp": (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100),
    "tanh": (-0.99, -0.9, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 0.9, 0.99),
    "expit": (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999),
}

#: the single-letter symbols set in italics (APA); the others are abbreviations set upright
_ITALIC_SYMBOLS = frozenset({"g", "z", "r", "p"})


@dataclass(frozen=True)
class BackTransformed:
    """An estimate with its intervals on the back-transformed (display) scale.

    Attributes
    ----------
    symbol : the symbol on that scale (``OR``, ``RR``, ``RoM``, ``r``, ``p``)
    name : its name (``odds ratio``)
    estimate, ci_lb, ci_ub, pi_lb, pi_ub : the transformed values (None where not given)
    """

    symbol: str
    name: str
    estimate: float | None
    ci_lb: float | None = None
    ci_ub: float | None = None
    pi_lb: float | None = None
    pi_ub: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BackScale:
    """A secondary axis on the back-transformed scale: ``forward`` maps the analysis scale to
    it, ``inverse`` back (both elementwise over arrays; values outside the domain give NaN);
    ``ticks`` are round values on it to mark (a ratio scale is not evenly spaced)."""

    label: str
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    ticks: tuple[float, ...] = ()


def _quiet(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``f`` without numpy's warnings outside its domain (NaN or inf there)."""

    def g(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return f(np.asarray(x, dtype=float))

    return g


@dataclass(frozen=True)
class MeasureLabels:
    """How the measure of an analysis is named and shown.

    Attributes
    ----------
    code : metafor's escalc code (``GEN`` for a named given measure)
    name : the readable name (``log odds ratio``; a ``GEN`` measure's declared name)
    symbol : the symbol in text and headers (``g``, ``log OR``, the ``GEN`` name)
    axis_title : the axis title (``Hedges' g``, ``Log odds ratio``)
    null : the value of no effect on the analysis scale
    back_transform : ``exp``, ``tanh``, ``expit`` or None
    back_name : the name on the display scale (``odds ratio``) or None
    back_symbol : the symbol on the display scale (``OR``) or None
    direction : what a positive effect means, in words
    direction_by : ``{domain level: words}`` where the meaning differs by domain
    """

    code: str
    name: str
    symbol: str
    axis_title: str
    null: float
    back_transform: str | None
    back_name: str | None
    back_symbol: str | None
    direction: str
    direction_by: Mapping[str, str] = field(default_factory=dict)

    @property
    def italic(self) -> bool:
        """True when the symbol is a single letter set in italics (``g``, ``z``, ``r``, ``p``)."""
        return self.symbol in _ITALIC_SYMBOLS

    @property
    def has_back(self) -> bool:
        """True when the measure has a back-transformed display scale."""
        return self.back_transform is not None

    def symbol_html(self) -> str:
        """The symbol for HTML text (italic for a single letter)."""
        return f"<i>{self.symbol}</i>" if self.italic else self.symbol

    @property
    def measure(self) -> Measure:
        """The registry entry of the measure (``GEN`` for a named given measure)."""
        return get_measure(self.code if self.code in MEASURES else "GEN")

    def back(self, x: Any) -> np.ndarray:
        """``x`` on the display scale (``exp``, ``tanh``, inverse logit, or unchanged)."""
        return self.measure.back(x)

    def back_scale(self) -> BackScale | None:
        """The back-transformed scale for a secondary axis (None without a back-transform)."""
        if not self.has_back:
            return None
        title = (self.back_name or "").capitalize()
        if self.back_symbol and self.back_symbol.lower() != title.lower():
            title += f" ({self.back_symbol})"
        transform = str(self.back_transform)
        return BackScale(
            title, _quiet(self.back), _quiet(self.measure.unback), _TICKS.get(transform, ())
        )

    def back_transformed(
        self,
        estimate: Any,
        ci_lb: Any = None,
        ci_ub: Any = None,
        pi_lb: Any = None,
        pi_ub: Any = None,
    ) -> BackTransformed | None:
        """The estimate and its intervals on the display scale; None without a back-transform."""
        if not self.has_back:
            return None

        def one(x: Any) -> float | None:
            if x is None:
                return None
            try:
                value = float(x)
            except (TypeError, ValueError):
                return None
            return None if np.isnan(value) else float(self.back(value))

        return BackTransformed(
            self.back_symbol or "",
            self.back_name or "",
            one(estimate),
            one(ci_lb),
            one(ci_ub),
            one(pi_lb),
            one(pi_ub),
        )

    def axis_label(self, direction: bool = False) -> str:
        """The axis title, with the direction in parentheses when ``direction``."""
        return f"{self.axis_title} ({self.direction})" if direction else self.axis_title

    def direction_for(self, domain: str | None) -> str:
        """What a positive effect means in ``domain`` (the data set's wording by default)."""
        if domain is not None and str(domain) in self.direction_by:
            return self.direction_by[str(domain)]
        return self.direction

    def direction_note(self) -> str:
        """One sentence for a caption or a table note: the measure and what positive means."""
        scale = self.axis_title
        if self.symbol.lower() not in scale.lower():
            scale += f" ({self.symbol})"
        text = f"Effect measure: {scale}. Direction: {self.direction.rstrip('.')}"
        if self.direction_by:
            text += "; by domain: " + "; ".join(
                f"{domain}: {words.rstrip('.')}" for domain, words in self.direction_by.items()
            )
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "direction_by": dict(self.direction_by)}


def measure_labels(source: Mapping[str, Any] | None = None) -> MeasureLabels:
    """The :class:`MeasureLabels` of an effect-size summary or of its ``measure`` record.

    ``source`` is ``effect_sizes_summary.json`` as read (its ``measure`` key is used) or the
    ``measure`` record itself. Without a record (results written before the measure was declared)
    the labels are those of the default measure, SMD, with its neutral direction.
    """
    record = dict(source or {})
    if isinstance(record.get("measure"), Mapping):
        record = dict(record["measure"])
    code = str(record.get("code") or "SMD")
    base = get_measure(code if code in MEASURES else "GEN")
    name = str(record.get("name") or base.name)
    generic = base.code == "GEN"
    symbol = name if generic else SYMBOLS[base.code]
    axis = (name[:1].upper() + name[1:]) if generic else AXIS_TITLES[base.code]
    direction = str(record.get("direction") or base.default_direction)
    return MeasureLabels(
        code=base.code,
        name=name,
        symbol=symbol,
        axis_title=axis,
        null=float(record.get("null", base.null)),
        back_transform=record.get("back_transform", base.back_transform),
        back_name=record.get("back_name", base.back_name),
        back_symbol=BACK_SYMBOLS.get(base.code),
        direction=direction,
        direction_by={str(k): str(v) for k, v in (record.get("direction_by") or {}).items()},
    )


def read_measure_labels(path: str | Path | None) -> MeasureLabels:
    """:func:`measure_labels` of the JSON file at ``path`` (the default labels without one)."""
    from intervention_meta.io import read_json

    if path is None or not Path(path).is_file():
        return measure_labels(None)
    return measure_labels(read_json(path))
