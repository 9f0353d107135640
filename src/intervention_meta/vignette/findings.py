"""The vignette study's findings: a short, fixed-shape digest of ``models.json`` for other readers.

:func:`findings` reads the analysis' record (``models.json``, :mod:`.analysis`) and keeps, for
each outcome's *primary* model (its main-effects fit), one finding per vignette factor
(``kind: "factor"``) and per respondent group (``kind: "group"``): the marginal mean of every
level with its CI (probability for a binary outcome, mean score otherwise), the highest and
lowest level and the factor's joint Wald test. Every number is copied from ``models.json``;
nothing is computed here. The keys are documented in ``docs/results.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["findings", "test_of"]


def test_of(tests: list[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    """The joint test of ``name`` (a factor, or ``a:b`` for an interaction, in either order)."""
    wanted = sorted(name.split(":"))
    for t in tests:
        if sorted(str(t.get("term")).split(":")) == wanted:
            return {k: t.get(k) for k in ("statistic", "df", "df2", "p", "kind")}
    return None


def _label(labels: Mapping[str, Any], name: str) -> str:
    return str((labels.get(name) or {}).get("label") or name)


def _level_label(labels: Mapping[str, Any], name: str, level: str) -> str:
    return str(((labels.get(name) or {}).get("levels") or {}).get(level) or level)


def findings(models: Mapping[str, Any]) -> dict[str, Any]:
    """The findings JSON of the analysis record ``models`` (the content of ``models.json``).

    Returns
    -------
    dict
        ``{"analysis", "level", "n_respondents", "n_ratings", "findings": [...]}``; each finding
        has ``id`` (``<outcome>_by_<factor>``), ``kind`` (factor/group), ``outcome``,
        ``outcome_label``, ``factor``, ``factor_label``, ``model``, ``scale``, ``levels``
        (``level``, ``label``, ``estimate``, ``ci_lb``, ``ci_ub``), ``highest``, ``lowest`` and
        ``test`` (``statistic``, ``df``, ``p``, ``kind``: ``wald_chi2`` or ``wald_f``).
    """
    design = models.get("design") or {}
    labels = models.get("labels") or {}
    factors = list(design.get("factors") or {})
    groups = list(design.get("groups") or {})
    out = []
    for fit in models.get("fits") or []:
        if not (fit.get("primary") and fit.get("kind") == "main"):
            continue
        outcome = fit["outcome"]
        for kind, names in (("factor", factors), ("group", groups)):
            for name in names:
                rows = [
                    m
                    for m in fit.get("marginal_means") or []
                    if m.get("factor") == name and m.get("by_level") is None
                ]
                if not rows:
                    continue
                levels = [
                    {
                        "level": str(m["level"]),
                        "label": _level_label(labels, name, str(m["level"])),
                        "estimate": m["estimate"],
                        "ci_lb": m["ci_lb"],
                        "ci_ub": m["ci_ub"],
                    }
                    for m in rows
                ]
                ranked = sorted(levels, key=lambda lv: lv["estimate"])
                out.append(
                    {
                        "id": f"{outcome}_by_{name}",
                        "kind": kind,
                        "outcome": outcome,
                        "outcome_label": _label(labels, outcome),
                        "factor": name,
                        "factor_label": _label(labels, name),
                        "model": fit["model"],
                        "scale": rows[0].get("scale"),
                        "levels": levels,
                        "highest": ranked[-1]["level"],
                        "lowest": ranked[0]["level"],
                        "test": test_of(fit.get("tests") or [], name),
                    }
                )
    return {
        "analysis": models.get("analysis", "vignette"),
        "level": models.get("level"),
        "n_respondents": models.get("n_respondents"),
        "n_ratings": models.get("n_ratings"),
        "findings": out,
    }
