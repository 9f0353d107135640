"""The cards step: read the analysis JSON, build the deck, write ``cards.json``, ``cards.html``
and ``cards.pdf``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intervention_meta.cards.content import CardSettings, Deck, build_deck
from intervention_meta.cards.language import load_texts

log = logging.getLogger(__name__)


def _read(path: str | None) -> dict[str, Any] | None:
    from intervention_meta.io import read_json

    return read_json(path) if path and Path(path).is_file() else None


def run_cards(
    *,
    components: str,
    moderators: str,
    codebook: str,
    json: str,
    html: str,
    pdf: str,
    analysis: str = "",
    grade: str | None = None,
    effect_sizes_summary: str | None = None,
    vignette: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Deck:
    """Make the deck of one analysis.

    ``options`` is the config's ``cards`` section (``language``, ``min_studies``, ``threshold``,
    ``sizes``, ``max_prompts``, ``vignette``); ``vignette`` is the vignette study's findings file
    when it exists (the rule passes it only then); ``options["vignette"]`` without that file
    makes the deck say that the file was absent.
    """
    from intervention_meta.cards.html import deck_html
    from intervention_meta.cards.pdf import write_pdf
    from intervention_meta.data.codebook import load_codebook
    from intervention_meta.io import write_json

    options = dict(options or {})
    texts = load_texts(str(options.get("language", "en")))
    vignette_path = vignette or options.get("vignette") or None
    findings = _read(vignette) if vignette else None
    deck = build_deck(
        analysis=analysis or Path(json).parent.parent.name,
        codebook=load_codebook(codebook),
        components=_read(components) or {},
        moderators=_read(moderators) or {},
        texts=texts,
        grade=_read(grade),
        summary=_read(effect_sizes_summary),
        vignette=findings,
        vignette_path=vignette_path,
        settings=CardSettings.from_config(options),
        sources={
            "components": components,
            "moderators": moderators,
            "grade": grade,
            "effect_sizes_summary": effect_sizes_summary,
            "vignette": vignette if findings is not None else None,
        },
    )
    write_json(deck.to_dict(), json)
    Path(html).parent.mkdir(parents=True, exist_ok=True)
    Path(html).write_text(deck_html(deck, texts), encoding="utf-8")
    sheets = write_pdf(deck, texts, pdf)
    thin = sum(1 for card in deck.cards if card.thin)
    log.info(
        "cards: %d cards (%s; %d with thin evidence) on %d A4 sheet(s)",
        len(deck.cards),
        deck.language,
        thin,
        sheets,
    )
    for note in deck.notes:
        log.info("cards: %s", note)
    return deck
