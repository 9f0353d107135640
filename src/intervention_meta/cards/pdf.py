"""The deck as a printable PDF: A6 cards, four to an A4 sheet, with cut marks.

Drawn with matplotlib's PDF backend (text kept as text, fonts embedded). The four cards tile
the sheet (2 x 105 mm by 2 x 148.5 mm), so the cut lines run through the middle of the sheet;
the marks are short lines at the sheet's edges (set in from the edge, where printers print) and
a cross in the middle. A card whose text is too long for its face is set in a smaller font
(down to :data:`MIN_FONT` pt), never cut off silently: what still does not fit is logged.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

from intervention_meta.cards.content import Card, Deck
from intervention_meta.cards.language import Texts

log = logging.getLogger(__name__)

MM = 1 / 25.4  # inches per mm
PAGE_W, PAGE_H = 210 * MM, 297 * MM
CARD_W, CARD_H = PAGE_W / 2, PAGE_H / 2
PAD = 7 * MM
BAR = 3 * MM
FOOTER = 6 * MM
BODY_FONT = 8.5
MIN_FONT = 5.5
CHAR_WIDTH = 0.52  # mean character width of DejaVu Sans in running text, in em (measured: 0.49)
LEADING = 1.28
ACCENT = {"component": "#2a6f97", "intro": "#2a6f97", "vignette": "#5b7f3a"}
THIN = "#b5541c"
GREY = "#52606d"


def _wrap(text: str, size: float, width_in: float) -> list[str]:
    chars = max(10, int(width_in * 72 / (size * CHAR_WIDTH)))
    return textwrap.wrap(text, chars, break_long_words=False) or [""]


def card_blocks(card: Card, t: Texts) -> list[tuple[str, str, tuple[str, ...]]]:
    """The card's text as blocks ``(style, heading, paragraphs)`` in reading order."""
    blocks: list[tuple[str, str, tuple[str, ...]]] = []
    if card.meaning:
        heading = t.get("headings.meaning") if card.kind == "component" else ""
        blocks.append(("body", heading, (card.meaning,)))
    if card.evidence:
        heading = "" if card.kind == "intro" else t.get("headings.evidence")
        blocks.append(("body", heading, card.evidence))
    if card.thin:
        blocks.append(("thin", t.get("headings.thin"), card.thin))
    if card.certainty:
        blocks.append(("body", t.get("headings.certainty"), (card.certainty,)))
    if card.prompts:
        blocks.append(("prompt", t.get("headings.prompts"), tuple(f"• {p}" for p in card.prompts)))
    return blocks


def _layout(card: Card, t: Texts, size: float) -> tuple[list[tuple], float]:
    """The lines of a card at body font ``size``: ``(dy, text, fontsize, style)`` from the top
    of the text area, and the height they take (inches)."""
    width = CARD_W - 2 * PAD
    lines: list[tuple] = []
    y = 0.0
    title_size = size * 1.5
    for text in _wrap(card.title, title_size, width):
        lines.append((y, text, title_size, "title"))
        y += title_size * LEADING / 72
    y += size * 0.3 / 72
    for style, heading, paragraphs in card_blocks(card, t):
        if heading:
            y += size * 0.5 / 72
            lines.append(
                (y, heading.upper(), size * 0.8, "thin_heading" if style == "thin" else "heading")
            )
            y += size * 0.8 * LEADING / 72
        for paragraph in paragraphs:
            indent = style == "prompt"
            for j, text in enumerate(_wrap(paragraph, size, width - (0.12 if indent else 0))):
                lines.append((y, ("   " if indent and j else "") + text, size, style))
                y += size * LEADING / 72
            y += size * 0.45 / 72
    return lines, y


def draw_card(fig, x0: float, y0: float, card: Card, t: Texts, footer: str) -> None:
    """Draw ``card`` with its lower left corner at (``x0``, ``y0``) inches."""
    from matplotlib.patches import Rectangle

    tr = fig.dpi_scale_trans
    accent = ACCENT.get(card.kind, ACCENT["component"])
    top = y0 + CARD_H
    fig.patches.append(Rectangle((x0, top - BAR), CARD_W, BAR, color=accent, transform=tr))
    fig.text(
        x0 + PAD,
        top - BAR - 4 * MM,
        card.heading.upper(),
        transform=tr,
        fontsize=7,
        color=accent,
        va="top",
        fontweight="bold",
    )
    available = CARD_H - BAR - 9 * MM - PAD - FOOTER
    size = BODY_FONT
    lines, height = _layout(card, t, size)
    while height > available and size > MIN_FONT:
        size = round(size - 0.25, 2)
        lines, height = _layout(card, t, size)
    if height > available:
        log.warning("cards: %s does not fit on its card at %.2f pt", card.id, size)
    start = top - BAR - 9 * MM
    styles = {
        "title": {"fontweight": "bold", "color": "#1f2933"},
        "heading": {"fontweight": "bold", "color": GREY},
        "thin_heading": {"fontweight": "bold", "color": THIN},
        "thin": {"color": THIN},
        "prompt": {"fontstyle": "italic", "color": "#1f2933"},
        "body": {"color": "#1f2933"},
    }
    for dy, text, fontsize, style in lines:
        fig.text(
            x0 + PAD, start - dy, text, transform=tr, fontsize=fontsize, va="top", **styles[style]
        )
    fig.text(
        x0 + PAD, y0 + PAD * 0.7, footer, transform=tr, fontsize=6, color="#7b8794", va="bottom"
    )


def draw_cut_marks(fig) -> None:
    """Short lines where the sheet is cut (the middle lines), set 3 to 9 mm in from the edge,
    and a cross in the middle."""
    from matplotlib.lines import Line2D

    tr = fig.dpi_scale_trans
    kw = {"transform": tr, "color": "#555555", "linewidth": 0.4}
    a, b = 3 * MM, 9 * MM
    cx, cy, c = CARD_W, CARD_H, 4 * MM
    for xs, ys in (
        ((cx, cx), (a, b)),
        ((cx, cx), (PAGE_H - b, PAGE_H - a)),
        ((a, b), (cy, cy)),
        ((PAGE_W - b, PAGE_W - a), (cy, cy)),
        ((cx - c, cx + c), (cy, cy)),
        ((cx, cx), (cy - c, cy + c)),
    ):
        fig.lines.append(Line2D(xs, ys, **kw))


def write_pdf(deck: Deck, t: Texts, path: str | Path) -> int:
    """Write the deck to ``path``, four cards per A4 sheet; returns the number of sheets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    n = len(deck.cards)
    positions = ((0, CARD_H), (CARD_W, CARD_H), (0, 0), (CARD_W, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheets = 0
    metadata = {"Title": f"{deck.title} ({deck.analysis})", "CreationDate": None}
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}):
        with PdfPages(path, metadata=metadata) as pdf:
            for start in range(0, n, 4):
                fig = plt.figure(figsize=(PAGE_W, PAGE_H))
                for j, card in enumerate(deck.cards[start : start + 4]):
                    i = start + j + 1
                    footer = t.say("footer", analysis=deck.analysis, i=i, n=n)
                    draw_card(fig, *positions[j], card, t, footer)
                draw_cut_marks(fig)
                pdf.savefig(fig)
                plt.close(fig)
                sheets += 1
    return sheets
