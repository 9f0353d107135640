"""The words and number formats of the conversation cards, per language.

Every text a card shows is in ``cards/texts/<language>.yaml`` (``en``, ``nl``): headings, the
sentences with ``{placeholders}``, the size words, the GRADE certainty words and the default
discussion prompts. This module only reads that file and formats numbers the language's way
(``0.31`` in English, ``0,31`` in Dutch; a true minus sign).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "nl")


@dataclass(frozen=True)
class Texts:
    """The texts of one language (the parsed ``texts/<language>.yaml``)."""

    language: str
    data: dict[str, Any]

    def get(self, key: str) -> Any:
        """The entry at the dotted ``key`` (e.g. ``"headings.evidence"``)."""
        value: Any = self.data
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"cards/texts/{self.language}.yaml has no entry {key!r}")
            value = value[part]
        return value

    def say(self, key: str, **values: Any) -> str:
        """The sentence at ``key`` with its ``{placeholders}`` filled in."""
        return str(self.get(key)).format(**values).strip()

    def number(self, value: float, digits: int = 2) -> str:
        """``value`` rounded to ``digits`` decimals, with the language's decimal sign and minus."""
        text = f"{abs(value):.{digits}f}".replace(".", self.get("number.decimal"))
        negative = value < 0 and float(f"{abs(value):.{digits}f}") != 0
        return (self.get("number.minus") if negative else "") + text

    def percent(self, share: float, digits: int = 0) -> str:
        """A share (0.61) as a percentage (``61%``)."""
        return self.say("number.percent", value=self.number(100 * share, digits))

    def ci(self, lb: float, ub: float, level: float, fmt: str = "number") -> str:
        """``95% CI 0.12 to 0.50`` (``fmt="percent"``: the bounds as percentages)."""
        bound = self.percent if fmt == "percent" else self.number
        return self.say("ci", pct=level_percent(level), lb=bound(lb), ub=bound(ub))

    def certainty(self, level: int | None) -> str | None:
        """The GRADE certainty word of level 4 (high) ... 1 (very low); None if not rated."""
        if level is None:
            return None
        return str(self.get("certainty")[int(level)])


def level_percent(level: float) -> str:
    """``0.95`` -> ``95``, ``0.899`` -> ``89.9`` (the confidence level as a percentage)."""
    pct = 100 * level
    return str(int(round(pct))) if math.isclose(pct, round(pct)) else f"{pct:g}"


@cache
def _read(language: str) -> dict[str, Any]:
    import yaml

    text = resources.files("intervention_meta.cards").joinpath(f"texts/{language}.yaml")
    return yaml.safe_load(text.read_text(encoding="utf-8"))


def load_texts(language: str) -> Texts:
    """The texts of ``language`` (one of :data:`LANGUAGES`)."""
    if language not in LANGUAGES:
        raise ValueError(f"cards: language {language!r}; expected one of {', '.join(LANGUAGES)}")
    return Texts(language, _read(language))
