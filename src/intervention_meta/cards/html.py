"""The deck as one self-contained HTML file: inline CSS, no script, nothing fetched.

On screen the cards sit side by side; printed, each card is one A6 page (``@page``: 105 x 148
mm) in a smaller font.
"""

from __future__ import annotations

from html import escape

from intervention_meta.cards.content import Card, Deck
from intervention_meta.cards.language import Texts

CSS = """
:root { --ink: #1f2933; --accent: #2a6f97; --thin: #b5541c; --vignette: #5b7f3a; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: var(--ink);
  background: #eef1f4; margin: 0; padding: 16px; }
header.deck { max-width: 1200px; margin: 0 auto 12px; }
header.deck h1 { margin: 0; font-size: 22px; }
header.deck p { margin: 4px 0; }
main { display: flex; flex-wrap: wrap; gap: 16px; justify-content: center; }
section.card { width: 105mm; min-height: 148mm; background: #fff; border-radius: 3mm;
  padding: 7mm 7mm 5mm; box-shadow: 0 1px 4px rgba(0,0,0,.2); display: flex;
  flex-direction: column; font-size: 9pt; line-height: 1.3; border-top: 3mm solid var(--accent); }
section.card.vignette { border-top-color: var(--vignette); }
section.card .kind { text-transform: uppercase; letter-spacing: .06em; font-size: 7pt;
  color: var(--accent); margin: 0; }
section.card.vignette .kind { color: var(--vignette); }
section.card h2 { font-size: 13pt; margin: 1mm 0 2mm; }
section.card h3 { font-size: 8pt; text-transform: uppercase; letter-spacing: .05em;
  color: #52606d; margin: 2.5mm 0 1mm; }
section.card p, section.card li { margin: 0 0 1mm; }
section.card ul { padding-left: 4mm; margin: 0; }
section.card .thin { border-left: 1.2mm solid var(--thin); padding-left: 2mm;
  color: var(--thin); }
section.card .prompts li { font-style: italic; }
section.card footer { margin-top: auto; padding-top: 2mm; font-size: 6.5pt; color: #7b8794; }
@page { size: 105mm 148mm; margin: 0; }
@media print {
  body { background: #fff; padding: 0; }
  header.deck { display: none; }
  main { display: block; }
  section.card { width: 105mm; height: 148mm; min-height: 0; box-shadow: none;
    border-radius: 0; page-break-after: always; break-after: page; font-size: 7.5pt;
    padding: 6mm 6mm 4mm; }
  section.card h2 { font-size: 11.5pt; }
}
"""


def _paragraphs(lines: tuple[str, ...], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return "".join(f"<p{attr}>{escape(line)}</p>" for line in lines)


def card_html(card: Card, t: Texts, i: int, n: int, analysis: str) -> str:
    """One card as a ``<section>``."""
    parts = [
        f'<section class="card {escape(card.kind)}" id="{escape(card.id)}">',
        f'<p class="kind">{escape(card.heading)}</p>',
        f"<h2>{escape(card.title)}</h2>",
    ]
    if card.meaning:
        key = "headings.meaning" if card.kind == "component" else None
        if key:
            parts.append(f"<h3>{escape(t.get(key))}</h3>")
        parts.append(_paragraphs((card.meaning,)))
    if card.evidence:
        if card.kind != "intro":
            parts.append(f"<h3>{escape(t.get('headings.evidence'))}</h3>")
        parts.append(_paragraphs(card.evidence))
    if card.thin:
        parts.append(f'<h3 class="thin">{escape(t.get("headings.thin"))}</h3>')
        parts.append(_paragraphs(card.thin, "thin"))
    if card.certainty:
        parts.append(f"<h3>{escape(t.get('headings.certainty'))}</h3>")
        parts.append(_paragraphs((card.certainty,)))
    if card.prompts:
        parts.append(f"<h3>{escape(t.get('headings.prompts'))}</h3>")
        items = "".join(f"<li>{escape(p)}</li>" for p in card.prompts)
        parts.append(f'<ul class="prompts">{items}</ul>')
    parts.append(f"<footer>{escape(t.say('footer', analysis=analysis, i=i, n=n))}</footer>")
    parts.append("</section>")
    return "".join(parts)


def deck_html(deck: Deck, t: Texts) -> str:
    """The whole deck as one HTML document."""
    n = len(deck.cards)
    cards = "\n".join(card_html(c, t, i, n, deck.analysis) for i, c in enumerate(deck.cards, 1))
    return (
        f'<!DOCTYPE html>\n<html lang="{escape(deck.language)}"><head><meta charset="utf-8">'
        f"<title>{escape(deck.title)} ({escape(deck.analysis)})</title>"
        f"<style>{CSS}</style></head><body>"
        f'<header class="deck"><h1>{escape(deck.title)}</h1><p>{escape(deck.subtitle)}</p>'
        f"<p>{escape(t.say('deck.cards', n=n))}</p></header>"
        f"<main>\n{cards}\n</main></body></html>\n"
    )
