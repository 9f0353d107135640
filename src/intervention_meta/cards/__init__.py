"""Conversation cards for practice, made from the analysis JSON (rule ``cards``).

:mod:`~intervention_meta.cards.content` decides what each card says,
:mod:`~intervention_meta.cards.language` holds the words and number formats per language
(``texts/en.yaml``, ``texts/nl.yaml``), :mod:`~intervention_meta.cards.html` and
:mod:`~intervention_meta.cards.pdf` render the deck, :mod:`~intervention_meta.cards.deck` is the
step (read, build, write).
"""
