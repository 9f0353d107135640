"""The central answer in words: what the programmes with a positive effect share.

The components step (:func:`intervention_meta.analyses.components.positive_programmes`) writes
under ``positive_programmes`` of ``models/components.json`` which programmes are positive, how many
of them have each component and how many each profile holds; this module only puts those numbers
into sentences (plain text, for the report's summary and methods), e.g. "16 of the 21 positive
programmes had joint effort; no component was present in all of them." Nothing is recomputed and
no label is parsed: the numbers are the JSON's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["and_list", "central_answer", "profile_rule"]


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(i) for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _lower_first(text: str) -> str:
    """``Joint effort`` -> ``joint effort`` inside a sentence (``ICT use`` stays as it is)."""
    return text[0].lower() + text[1:] if text[:2].istitle() else text


def _programmes(n: int) -> str:
    return f"{n} programme{'' if n == 1 else 's'}"


def profile_rule(components: Mapping[str, Any]) -> str:
    """The pooling threshold of the profiles in words, from the components JSON."""
    n = int(components.get("min_profile_programmes") or 1)
    if n <= 1:
        return "every profile was pooled, whatever its number of programmes"
    return (
        f"a profile was pooled only from {n} programmes up; profiles with fewer are listed "
        "but not pooled"
    )


def central_answer(components: Mapping[str, Any]) -> list[str]:
    """Sentences (plain text) on what the positive programmes share; [] without the JSON.

    Parameters
    ----------
    components : the components step's JSON (``models/components.json``)

    Returns
    -------
    list of str
        Paragraphs: one sentence when the data set has no components or no positive programme;
        otherwise who is positive, the component(s) the most of them have and whether any is
        present in all of them; then the positive programmes per pooled profile (those in
        profiles too small to pool counted together).
    """
    if not components:
        return []
    if not components.get("applicable", True):
        return [
            "No intervention components are coded in this data set, so what the programmes "
            "with a positive effect share is not asked."
        ]
    pp = components.get("positive_programmes") or {}
    n_prog, n_pos = int(pp.get("n_programmes") or 0), int(pp.get("n_positive") or 0)
    rule = str((components.get("positive_rule") or {}).get("rule", ""))
    if n_pos == 0:
        return [
            f"None of the {_programmes(n_prog)} had a positive effect by the rule {rule}, so "
            "what positive programmes share is undefined."
        ]
    first = (
        f"{n_pos} of the {_programmes(n_prog)} had a positive effect (rule {rule}, see the "
        f"methods): {and_list(pp.get('labels') or [])}."
    )
    comps = list(pp.get("components") or [])
    labels = dict(zip(comps, pp.get("component_labels") or comps, strict=False))
    counts = {
        c: (int(w), int(k))
        for c, w, k in zip(comps, pp.get("n_with") or [], pp.get("n_known") or [], strict=False)
    }
    most = [c for c in pp.get("most_shared") or [] if c in counts]
    every = set(pp.get("shared_by_all") or [])
    if most:
        parts = []
        for c in most:
            w, k = counts[c]
            of = "positive programmes" if k == n_pos else "positive programmes coded for it"
            parts.append(f"{w} of the {k} {of} had {_lower_first(labels[c])}")
        text = "; ".join(parts)
        if not every:
            text += "; no component was present in all of them"
        else:
            shared = [_lower_first(labels[c]) for c in comps if c in every]
            text += f"; present in all of them: {and_list(shared)}"
        out = [f"{first} {text[0].upper() + text[1:]}."]
    else:
        out = [f"{first} None of the positive programmes had any of the components."]
    rows = pp.get("profiles") or []
    pooled = [r for r in rows if r.get("pooled")]
    small = [r for r in rows if not r.get("pooled")]
    parts = [f"{r['label']}: {r['n_positive']} of {r['n_programmes']}" for r in pooled]
    if small:
        n_small = sum(int(r["n_positive"]) for r in small)
        parts.append(
            f"{_programmes(n_small)} in {len(small)} profile{'' if len(small) == 1 else 's'} "
            f"of fewer than {components.get('min_profile_programmes')} programmes (not pooled)"
        )
    if parts:
        text = "Positive programmes per component profile: " + "; ".join(parts) + "."
        outside = int(pp.get("outside_profiles") or 0)
        if outside:
            verb = "belongs" if outside == 1 else "belong"
            text += (
                f" {_programmes(outside).capitalize()} with a missing component value {verb} "
                "to no profile."
            )
        out.append(text)
    return out
