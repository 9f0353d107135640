"""Helpers of the conversation-card tests: the visible text of an HTML deck, and the numbers
a card must show (formatted the language's way) from the JSON it was made from."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from intervention_meta.cards.language import Texts

VIGNETTE_FIXTURE = Path(__file__).parent / "data" / "cards" / "vignette_findings.json"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.skip = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.skip = False

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text a reader sees (no CSS), whitespace collapsed."""
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def card_sections(html: str) -> dict[str, str]:
    """Each card's visible text by its id."""
    out = {}
    for match in re.finditer(r'<section class="card [a-z]+" id="([^"]+)">(.*?)</section>', html):
        out[match.group(1)] = visible_text(match.group(2))
    return out


def component_strings(numbers: dict[str, Any], t: Texts) -> list[str]:
    """The formatted numbers a component card shows: the means with and without the component
    and their difference (estimate and CI bounds), and the counts of programmes."""
    out = []
    for side in ("with", "without", "difference"):
        est = numbers.get(side)
        if est is not None:
            out += [t.number(est[key]) for key in ("estimate", "ci_lb", "ci_ub")]
    for key in ("n_with", "n_known", "n_positive_with", "n_positive"):
        if numbers.get(key) is not None:
            out.append(str(numbers[key]))
    return out


def vignette_strings(finding: dict[str, Any], t: Texts) -> list[str]:
    """The formatted numbers a vignette card shows: each level's estimate and CI."""
    fmt = t.percent if finding["scale"] == "probability" else t.number
    return [fmt(lv[key]) for lv in finding["levels"] for key in ("estimate", "ci_lb", "ci_ub")]
