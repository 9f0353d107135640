"""PRISMA 2020: the search and selection counts, joined with the pipeline's own counts; the
characteristics of the included studies; the checklist mapped to the report.

Three parts, each a function over what the steps wrote and returning a small frozen result:

* :func:`read_counts` reads and checks the counts file named in the config (``prisma.counts``):
  records identified per source, removed before screening, screened, excluded, reports sought,
  not retrieved, assessed, excluded with reasons, studies and reports included. Every problem
  (unknown or missing key, a value that is not a count, a step that does not add up) is reported
  at once, each naming the file, line, key, value and what was expected. The steps must add up
  as the PRISMA 2020 flow diagram implies:

  .. math::

     n_\\text{screened} &= n_\\text{identified} - n_\\text{removed} \\\\
     n_\\text{sought} &= n_\\text{screened} - n_\\text{records excluded} \\\\
     n_\\text{assessed} &= n_\\text{sought} - n_\\text{not retrieved} \\\\
     n_\\text{reports included} &= n_\\text{assessed} - \\sum_r n_\\text{reports excluded}(r)
     \\\\ n_\\text{studies included} &\\le n_\\text{reports included}

  Records from other sources (citation searching, websites, ...) are screened with the rest
  (one column of boxes, not the template's second column).
* :func:`prisma_flow` joins those counts with the data-processing counts of the pipeline
  (``clean/summary.json``, ``effect_sizes_summary.json``, ``models/overall.json``): the studies
  included in the review are the studies coded; the inclusion criteria of the analysis, the
  effect sizes that can be computed and the model then narrow them. Every sum of the joined flow
  is a :class:`FlowCheck`; :func:`write_flow` writes ``prisma/flow.json``.
* :func:`study_characteristics` makes the table of the included studies (one row per study of
  ``effect_sizes.csv``; the columns of ``prisma.characteristics``, values shown by their
  codebook labels) and :func:`checklist` maps the 27 items of the checklist (with their
  sub-items; texts in ``prisma_checklist.yaml`` beside this module) to the report's sections or
  to the reviewers' texts in ``prisma.checklist``.

References
----------
Page, M. J., McKenzie, J. E., Bossuyt, P. M., et al. (2021). The PRISMA 2020 statement: an
updated guideline for reporting systematic reviews. *BMJ*, 372, n71.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intervention_meta.errors import InputError, Problem
from intervention_meta.io import read_json, write_json, write_table

if TYPE_CHECKING:  # pandas and the result tables are imported where a table is made, so that
    # the start-up check of the counts file (read_counts) costs no pandas import
    import pandas as pd

    from intervention_meta.analyses.records import ResultTable

log = logging.getLogger(__name__)

__all__ = [
    "CHARACTERISTIC_EXTRAS",
    "COUNT_KEYS",
    "ChecklistItem",
    "ChecklistRow",
    "FlowCheck",
    "PrismaCounts",
    "PrismaFlow",
    "checklist",
    "checklist_html",
    "checklist_items",
    "characteristic_columns",
    "components_by_study",
    "count_checks",
    "flow_text",
    "prisma_flow",
    "read_counts",
    "study_characteristics",
    "write_characteristics",
    "write_flow",
]

#: the keys of the counts file: key -> (required, what it holds)
COUNT_KEYS: dict[str, tuple[bool, str]] = {
    "identified": (True, "records identified, per source: databases, registers, other_sources"),
    "removed": (False, "records removed before screening: duplicates, automation, other"),
    "screened": (True, "records screened"),
    "records_excluded": (True, "records excluded at screening"),
    "reports_sought": (True, "reports sought for retrieval"),
    "reports_not_retrieved": (False, "reports not retrieved"),
    "reports_assessed": (True, "reports assessed for eligibility"),
    "reports_excluded": (True, "reports excluded, per reason (reason: n)"),
    "studies_included": (True, "studies included in the review"),
    "reports_included": (True, "reports of the included studies"),
}
#: the sources of ``identified`` and the kinds of ``removed``
SOURCES = ("databases", "registers", "other_sources")
COUNT = "a count (a whole number, 0 or more)"
REMOVALS = ("duplicates", "automation", "other")


# --------------------------------------------------------------------------- the counts file
@dataclass(frozen=True)
class PrismaCounts:
    """The checked counts of a PRISMA 2020 flow diagram.

    ``identified`` and ``removed`` hold the total per source / kind of removal;
    ``identified_detail`` the breakdown of a source given as ``{name: n}`` (e.g. per database).
    """

    identified: dict[str, int]
    identified_detail: dict[str, dict[str, int]]
    removed: dict[str, int]
    screened: int
    records_excluded: int
    reports_sought: int
    reports_not_retrieved: int
    reports_assessed: int
    reports_excluded: dict[str, int]
    studies_included: int
    reports_included: int
    file: str = ""

    @property
    def n_identified(self) -> int:
        return sum(self.identified.values())

    @property
    def n_removed(self) -> int:
        return sum(self.removed.values())

    @property
    def n_reports_excluded(self) -> int:
        return sum(self.reports_excluded.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "identified": dict(self.identified),
            "identified_detail": {k: dict(v) for k, v in self.identified_detail.items()},
            "n_identified": self.n_identified,
            "removed": dict(self.removed),
            "n_removed": self.n_removed,
            "screened": self.screened,
            "records_excluded": self.records_excluded,
            "reports_sought": self.reports_sought,
            "reports_not_retrieved": self.reports_not_retrieved,
            "reports_assessed": self.reports_assessed,
            "reports_excluded": dict(self.reports_excluded),
            "n_reports_excluded": self.n_reports_excluded,
            "studies_included": self.studies_included,
            "reports_included": self.reports_included,
        }


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count_or_breakdown(value: Any, keys: list[Any], add: Any) -> tuple[int | None, dict]:
    """A count, or a mapping ``name: count`` (then its sum and the mapping); problems go to
    ``add`` under the key path ``keys``."""
    if _is_count(value):
        return value, {}
    if isinstance(value, Mapping) and value:
        detail = {str(name): n for name, n in value.items() if _is_count(n)}
        for name, n in value.items():
            if not _is_count(n):
                add([*keys, name], n, COUNT)
        return (sum(detail.values()) if len(detail) == len(value) else None), detail
    add(keys, value, f"{COUNT} or a mapping name: count")
    return None, {}


def read_counts(path: str | Path) -> PrismaCounts:
    """Read and check a PRISMA 2020 counts file (YAML; keys in :data:`COUNT_KEYS`).

    Parameters
    ----------
    path : the counts file (``prisma.counts`` in the config).

    Returns
    -------
    PrismaCounts

    Raises
    ------
    InputError
        With every problem at once: the file, its line, the key, the value and what was
        expected (an unknown key, a missing one, a value that is not a count, a step of the flow
        that does not add up).
    """
    from intervention_meta.config import line_of, read_yaml

    file = str(path)
    data, node = read_yaml(path)
    problems: list[Problem] = []

    def add(keys: Sequence[Any], value: Any, expected: str, check: str = "prisma_counts") -> None:
        dotted = ".".join(str(k) for k in keys) or None
        problems.append(Problem(file, line_of(node, keys), dotted, value, expected, check=check))

    if not isinstance(data, Mapping):
        add([], data, "a mapping of the PRISMA 2020 counts (keys: " + ", ".join(COUNT_KEYS) + ")")
        raise InputError(problems, summary=f"{file}: not a PRISMA counts file")
    for key in data:
        if key not in COUNT_KEYS:
            add([key], key, "one of the keys: " + ", ".join(COUNT_KEYS))
    unknown = len(problems)  # an unknown key does not keep the sums from being checked
    for key, (required, what) in COUNT_KEYS.items():
        if required and key not in data:
            add([key], None, f"the key {key} ({what})")

    identified: dict[str, int] = {}
    detail: dict[str, dict[str, int]] = {}
    raw = data.get("identified")
    if isinstance(raw, Mapping):
        for source, value in raw.items():
            if source not in SOURCES:
                add(["identified", source], source, "one of: " + ", ".join(SOURCES))
                continue
            n, parts = _count_or_breakdown(value, ["identified", source], add)
            if n is not None:
                identified[source] = n
                if parts:
                    detail[source] = parts
    elif raw is not None:
        add(["identified"], raw, "a mapping source: count (sources: " + ", ".join(SOURCES) + ")")
    removed: dict[str, int] = dict.fromkeys(REMOVALS, 0)
    raw = data.get("removed", {})
    if isinstance(raw, Mapping):
        for kind, value in raw.items():
            if kind not in REMOVALS:
                add(["removed", kind], kind, "one of: " + ", ".join(REMOVALS))
            elif not _is_count(value):
                add(["removed", kind], value, COUNT)
            else:
                removed[kind] = value
    else:
        add(["removed"], raw, "a mapping kind: count (kinds: " + ", ".join(REMOVALS) + ")")
    single: dict[str, int | None] = {}
    for key in (
        "screened",
        "records_excluded",
        "reports_sought",
        "reports_not_retrieved",
        "reports_assessed",
        "studies_included",
        "reports_included",
    ):
        value = data.get(key, 0 if not COUNT_KEYS[key][0] else None)
        if value is None:
            single[key] = None  # missing: named above
        elif _is_count(value):
            single[key] = value
        else:
            add([key], value, COUNT)
            single[key] = None
    excluded: dict[str, int] = {}
    raw = data.get("reports_excluded")
    if isinstance(raw, Mapping):
        for reason, value in raw.items():
            if _is_count(value):
                excluded[str(reason)] = value
            else:
                add(["reports_excluded", reason], value, COUNT)
    elif raw is not None:
        add(["reports_excluded"], raw, "a mapping reason: count (one entry per reason)")

    if len(problems) > unknown:
        raise InputError(problems, summary=f"{file}: {len(problems)} problem(s) in the counts")
    counts = PrismaCounts(
        identified=identified,
        identified_detail=detail,
        removed=removed,
        screened=int(single["screened"]),
        records_excluded=int(single["records_excluded"]),
        reports_sought=int(single["reports_sought"]),
        reports_not_retrieved=int(single["reports_not_retrieved"]),
        reports_assessed=int(single["reports_assessed"]),
        reports_excluded=excluded,
        studies_included=int(single["studies_included"]),
        reports_included=int(single["reports_included"]),
        file=file,
    )
    for check in count_checks(counts):
        if not check.ok:
            expected = (
                f"at most {check.right} ({check.text})"
                if check.at_most
                else f"{check.text} = {check.right}"
            )
            add([check.name], check.left, expected, "prisma_arithmetic")
    if problems:
        raise InputError(problems, summary=f"{file}: {len(problems)} problem(s) in the counts")
    return counts


# --------------------------------------------------------------------------- the joined flow
@dataclass(frozen=True)
class FlowCheck:
    """One sum of the joined flow: ``left`` should be ``right`` (or, with ``at_most``, not
    exceed it)."""

    name: str
    left: int | None
    right: int | None
    text: str
    at_most: bool = False

    @property
    def ok(self) -> bool:
        if self.left is None or self.right is None:
            return False
        return self.left <= self.right if self.at_most else self.left == self.right

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "left": self.left,
            "right": self.right,
            "relation": "<=" if self.at_most else "==",
            "text": self.text,
            "ok": self.ok,
        }


def count_checks(c: PrismaCounts) -> list[FlowCheck]:
    """The sums of the counts file (see the module doc), each a :class:`FlowCheck` whose text
    names the counts it adds."""
    return [
        FlowCheck(
            "screened",
            c.screened,
            c.n_identified - c.n_removed,
            f"records screened = identified ({c.n_identified}) - removed before screening "
            f"({c.n_removed})",
        ),
        FlowCheck(
            "reports_sought",
            c.reports_sought,
            c.screened - c.records_excluded,
            f"reports sought = screened ({c.screened}) - records excluded ({c.records_excluded})",
        ),
        FlowCheck(
            "reports_assessed",
            c.reports_assessed,
            c.reports_sought - c.reports_not_retrieved,
            f"reports assessed = sought ({c.reports_sought}) - not retrieved "
            f"({c.reports_not_retrieved})",
        ),
        FlowCheck(
            "reports_included",
            c.reports_included,
            c.reports_assessed - c.n_reports_excluded,
            f"reports included = assessed ({c.reports_assessed}) - reports excluded "
            f"({c.n_reports_excluded}, the sum of reports_excluded)",
        ),
        FlowCheck(
            "studies_included",
            c.studies_included,
            c.reports_included,
            "studies included <= reports included: every study has a report",
            at_most=True,
        ),
    ]


@dataclass(frozen=True)
class PrismaFlow:
    """The PRISMA counts (None without a counts file) joined with the pipeline's counts.

    ``pipeline`` has ``studies_coded``, ``effect_sizes_coded``, ``studies_after_criteria``,
    ``effect_sizes_after_criteria``, ``studies_excluded_by_criteria``,
    ``effect_sizes_excluded_by_criteria``, ``excluded_by_reason``, ``effect_sizes_computed``,
    ``effect_sizes_not_computable``, ``studies_analysed`` and ``effect_sizes_analysed``.
    """

    counts: PrismaCounts | None
    pipeline: dict[str, Any]
    checks: tuple[FlowCheck, ...] = field(default_factory=tuple)

    @property
    def consistent(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts_file": self.counts.file if self.counts else None,
            "counts": self.counts.to_dict() if self.counts else None,
            "pipeline": dict(self.pipeline),
            "checks": [c.to_dict() for c in self.checks],
            "consistent": self.consistent,
        }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def prisma_flow(
    counts: PrismaCounts | None,
    clean: Mapping[str, Any],
    effect_sizes: Mapping[str, Any],
    overall: Mapping[str, Any],
) -> PrismaFlow:
    """Join the PRISMA counts with the pipeline's counts and check every sum.

    Parameters
    ----------
    counts : the checked counts file (:func:`read_counts`), or None when the config names none.
    clean : ``clean/summary.json`` (``rows_in``, ``kept``, ``dropped``, ``dropped_by_reason``,
        ``studies_in``, ``studies_kept``).
    effect_sizes : ``effect_sizes_summary.json`` (``rows_in``, ``computed``, ``dropped``).
    overall : ``models/overall.json`` (``analysis.k``, ``analysis.n_studies``).

    Returns
    -------
    PrismaFlow
        A check that fails is logged as a warning (and kept in ``checks`` with ``ok`` false);
        nothing is corrected.
    """
    analysis = overall.get("analysis") or {}
    p = {
        "studies_coded": _int(clean.get("studies_in")),
        "effect_sizes_coded": _int(clean.get("rows_in")),
        "studies_after_criteria": _int(clean.get("studies_kept")),
        "effect_sizes_after_criteria": _int(clean.get("kept")),
        "effect_sizes_excluded_by_criteria": _int(clean.get("dropped")),
        "excluded_by_reason": dict(clean.get("dropped_by_reason") or {}),
        "effect_sizes_computed": _int(effect_sizes.get("computed")),
        "effect_sizes_not_computable": _int(effect_sizes.get("dropped")),
        "studies_analysed": _int(analysis.get("n_studies")),
        "effect_sizes_analysed": _int(analysis.get("k")),
    }
    sc, sk = p["studies_coded"], p["studies_after_criteria"]
    p["studies_excluded_by_criteria"] = sc - sk if sc is not None and sk is not None else None

    def total(*keys: str) -> int | None:
        values = [p[k] for k in keys]
        return None if any(v is None for v in values) else sum(values)

    checks = []
    if counts is not None:
        checks += [
            *count_checks(counts),
            FlowCheck(
                "studies_coded",
                p["studies_coded"],
                counts.studies_included,
                "studies coded (the studies table) = studies included in the review",
            ),
        ]
    checks += [
        FlowCheck(
            "effect_sizes_coded",
            p["effect_sizes_coded"],
            total("effect_sizes_after_criteria", "effect_sizes_excluded_by_criteria"),
            "effect sizes coded = kept by the inclusion criteria + excluded by them",
        ),
        FlowCheck(
            "effect_sizes_after_criteria",
            p["effect_sizes_after_criteria"],
            total("effect_sizes_computed", "effect_sizes_not_computable"),
            "effect sizes kept = computed + not computable",
        ),
        FlowCheck(
            "effect_sizes_analysed",
            p["effect_sizes_analysed"],
            p["effect_sizes_computed"],
            "effect sizes analysed <= effect sizes computed",
            at_most=True,
        ),
        FlowCheck(
            "studies_analysed",
            p["studies_analysed"],
            p["studies_after_criteria"],
            "studies analysed <= studies kept by the inclusion criteria",
            at_most=True,
        ),
        FlowCheck(
            "studies_after_criteria",
            p["studies_after_criteria"],
            p["studies_coded"],
            "studies kept by the inclusion criteria <= studies coded",
            at_most=True,
        ),
    ]
    for check in checks:
        if not check.ok:
            log.warning(
                "PRISMA flow does not add up: %s (%s vs %s)", check.text, check.left, check.right
            )
    return PrismaFlow(counts, p, tuple(checks))


def write_flow(flow: PrismaFlow, path: str | Path) -> None:
    """Write the joined flow as ``prisma/flow.json`` (keys: ``docs/results.md``)."""
    write_json(flow.to_dict(), path)
    log.info("PRISMA flow (%s) -> %s", "adds up" if flow.consistent else "DOES NOT add up", path)


# --------------------------------------------------------------------------- characteristics
#: the columns of the characteristics table that are not codebook variables
CHARACTERISTIC_EXTRAS: dict[str, str] = {
    "components": "Components",
    "k": "Effect sizes",
    "n": "Participants",
}
_DEFAULT_ROLES = ("descriptor", "moderator")
#: statistic roles any of which gives an effect size's sample size (outputs.grade.sample_sizes)
SAMPLE_ROLES = ("n_int", "n_total", "events_int", "n")


def _roles(codebook: Any) -> dict[str, list[str]]:
    """Statistic role -> the columns that hold it, of the input kinds the codebook declares."""
    from intervention_meta.effect_sizes.measures import role_columns

    return role_columns(codebook.statistic_columns(), every_kind=False)


def characteristic_columns(
    codebook: Any, columns: Sequence[str] | None = None, domain_variable: str | None = None
) -> list[str]:
    """The columns of the characteristics table.

    Default (``columns`` None or empty): the studies-table variables with role descriptor or
    moderator (not the key, not the citation that names the row, not the components), then
    ``components`` (the components each programme has; only when the codebook has components),
    ``k`` (the number of effect sizes), ``n`` (participants: the largest sample of the study's
    effect sizes; when the codebook has sample-size statistics) and ``domain_variable`` (the
    outcome domains, when it is a codebook variable).

    Raises
    ------
    InputError
        For a listed name that is neither a codebook variable nor ``components`` or ``k``.
    """
    from intervention_meta.plots.labels import citation_variable

    if columns:
        problems = [
            Problem(
                "config",
                None,
                f"prisma.characteristics.{i}",
                name,
                "a codebook variable, components, k or n",
                check="config_variable",
            )
            for i, name in enumerate(columns)
            if name not in codebook.variables and name not in CHARACTERISTIC_EXTRAS
        ]
        if problems:
            raise InputError(problems, summary="prisma.characteristics: unknown columns")
        return list(columns)
    study = codebook.key(codebook.parent_table)
    cite = citation_variable(codebook)
    comps = {v.name for v in codebook.components()}
    out = [
        v.name
        for v in codebook.variables_of(codebook.parent_table)
        if v.name not in (study, cite)
        and v.name not in comps
        and any(role in v.roles for role in _DEFAULT_ROLES)
    ]
    if comps:
        out.append("components")
    out.append("k")
    if any(role in _roles(codebook) for role in SAMPLE_ROLES):
        out.append("n")
    if domain_variable and domain_variable in codebook.variables:
        out.append(domain_variable)
    return out


def _shown(codebook: Any, name: str, value: Any) -> str:
    """A value as the codebook shows it: a level's label, a whole number without decimals."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    var = codebook[name]
    if var.levels:
        try:
            return str(codebook.level_label(name, value))
        except (KeyError, ValueError):
            return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def study_characteristics(
    data: pd.DataFrame,
    codebook: Any,
    columns: Sequence[str] | None = None,
    *,
    domain_variable: str | None = None,
    components: Mapping[str, Sequence[str]] | None = None,
) -> ResultTable:
    """One row per included study (the studies of ``data``, the effect sizes analysed).

    Parameters
    ----------
    data : one row per effect size (``effect_sizes.csv`` read with the codebook's types).
    codebook : the codebook (labels of the variables and their levels).
    columns : the columns (:func:`characteristic_columns`; default there).
    domain_variable : the outcome-domain variable (a default column).
    components : study key -> the components the study has (their variable names), as the
        components step decided (:func:`components_by_study`); a study not in it has none.

    Returns
    -------
    ResultTable
        Rows in the order of the study keys (``S2`` before ``S10``). Keys ``study`` (the
        citation, else the key) and one key per
        column: a studies-table variable gives the study's value, an effects-table variable the
        distinct values of the study's effect sizes (``"; "``-joined, in codebook order),
        ``components`` the labels of the components the study has (``none``), ``k`` the number
        of its effect sizes, ``n`` the largest sample of its effect sizes
        (:func:`~intervention_meta.outputs.grade.sample_sizes`, as the GRADE summary counts
        participants); values by their codebook labels.
    """
    import pandas as pd

    from intervention_meta.analyses.records import ResultTable
    from intervention_meta.plots.labels import citation_variable, natural_key, study_labels

    cols = characteristic_columns(codebook, columns, domain_variable)
    study = codebook.key(codebook.parent_table)
    keys = data[study].astype(str)
    names = study_labels(data, codebook, study)
    has = {str(k): list(v) for k, v in (components or {}).items()}
    from intervention_meta.outputs.grade import sample_sizes

    sizes = pd.Series(sample_sizes(data, _roles(codebook)), index=data.index)
    rows = []
    for key in sorted(pd.unique(keys), key=natural_key):
        part = data[keys == key]
        row: dict[str, Any] = {"study": names.get(key, key)}
        for name in cols:
            if name == "k":
                row[name] = len(part)
            elif name == "n":
                largest = sizes[keys == key].max()
                row[name] = int(largest) if pd.notna(largest) else None
            elif name == "components":
                row[name] = "; ".join(codebook.label(c) for c in has.get(key, ())) or "none"
            elif name not in part.columns:
                row[name] = ""
            elif codebook[name].table == codebook.parent_table:
                values = part[name].dropna()
                row[name] = _shown(codebook, name, values.iloc[0]) if len(values) else ""
            else:
                values = [_shown(codebook, name, v) for v in pd.unique(part[name].dropna())]
                order = {
                    str(lab): i for i, lab in enumerate((codebook[name].levels or {}).values())
                }
                values = sorted(set(values), key=lambda v: (order.get(v, len(order)), v))
                row[name] = "; ".join(v for v in values if v)
        rows.append(row)
    cite = citation_variable(codebook)
    headers: dict[str, str | None] = {"study": codebook.label(cite if cite is not None else study)}
    for name in cols:
        headers[name] = CHARACTERISTIC_EXTRAS.get(name) or codebook.label(name)
    return ResultTable(headers, tuple(rows))


def components_by_study(components: Mapping[str, Any]) -> dict[str, list[str]]:
    """Study key -> the components it has, from the table ``study_effects`` of
    ``models/components.json`` (its ``component.<name>`` columns, ``yes``/``no``)."""
    from intervention_meta.analyses.records import read_tables

    table = read_tables(components).get("study_effects")
    if table is None:
        return {}
    names = [k.removeprefix("component.") for k in table.columns if k.startswith("component.")]
    return {
        str(row["study"]): [c for c in names if str(row.get(f"component.{c}")).lower() == "yes"]
        for row in table.rows
    }


def write_characteristics(
    effect_sizes: str | Path,
    codebook: str | Path,
    out: str | Path,
    *,
    columns: Sequence[str] | None = None,
    domain_variable: str | None = None,
    components_json: str | Path | None = None,
    csv: str | Path | None = None,
) -> ResultTable:
    """Write the characteristics of the included studies as ``prisma/characteristics.json``
    (the table under ``tables.study_characteristics``, as the analysis steps keep theirs, and
    ``study_keys``, the study key of each row) and, with ``csv``, its readable CSV; the
    components each study has come from ``components_json`` (``models/components.json``)."""
    import pandas as pd

    from intervention_meta.data.cleaning import read_effect_sizes
    from intervention_meta.plots.labels import natural_key

    es = read_effect_sizes(effect_sizes, codebook)
    has = components_by_study(read_json(components_json)) if components_json else {}
    table = study_characteristics(
        es.data, es.codebook, columns, domain_variable=domain_variable, components=has
    )
    keys = sorted(pd.unique(es.data[es.study].astype(str)), key=natural_key)
    write_json(
        {
            "step": "prisma",
            "n_studies": len(table.rows),
            "study_keys": keys,
            "columns": list(table.columns),
            "tables": {"study_characteristics": table.to_dict()},
        },
        out,
    )
    if csv is not None:
        write_table(table.to_frame(), csv)
    log.info("characteristics of %d included studies -> %s", len(table.rows), out)
    return table


# --------------------------------------------------------------------------- the checklist
CHECKLIST_FILE = Path(__file__).with_name("prisma_checklist.yaml")
#: statuses of a checklist row
STATUSES = ("report", "text", "report and text", "not applicable", "not reported")


@dataclass(frozen=True)
class ChecklistItem:
    """One item (or sub-item) of the PRISMA 2020 checklist, as ``prisma_checklist.yaml`` has it."""

    item: str
    section: str
    topic: str
    text: str
    report: tuple[str, ...] = ()
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "report": list(self.report)}


@cache
def checklist_items(path: str | Path = CHECKLIST_FILE) -> tuple[ChecklistItem, ...]:
    """The items of the checklist data file, in its order."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return tuple(
        ChecklistItem(
            item=str(e["item"]),
            section=str(e["section"]),
            topic=str(e["topic"]),
            text=" ".join(str(e["text"]).split()),
            report=tuple(e.get("report") or ()),
            key=e.get("key"),
        )
        for e in data["items"]
    )


@dataclass(frozen=True)
class ChecklistRow:
    """Where the report addresses one item: ``sections`` (report section id -> title) and/or
    ``text`` (the reviewers' text from ``prisma.checklist``); ``status`` one of
    :data:`STATUSES`."""

    item: ChecklistItem
    sections: dict[str, str]
    text: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.item.to_dict(),
            "sections": dict(self.sections),
            "location_text": self.text,
            "status": self.status,
        }


_NOT_APPLICABLE = ("not applicable", "n/a", "na")


def checklist(
    sections: Mapping[str, str],
    texts: Mapping[str, Any] | None = None,
    items: Sequence[ChecklistItem] | None = None,
) -> tuple[ChecklistRow, ...]:
    """Map every checklist item to the report or to the reviewers' text.

    Parameters
    ----------
    sections : the report's sections, id -> title (only these are linked).
    texts : ``prisma.checklist`` of the config: an item's ``key`` (``registration``,
        ``protocol``, ...) or its number (``"24a"``) -> text; a text ``not applicable`` marks
        the item so.
    items : the checklist (default: :func:`checklist_items`).

    Returns
    -------
    tuple of ChecklistRow
        One per item: the report sections listed for it that the report has, the reviewers'
        text, and the status (``not reported`` when neither).

    Raises
    ------
    InputError
        For a key of ``texts`` that names no item (with the keys that would).
    """
    items = tuple(items if items is not None else checklist_items())
    texts = {str(k): v for k, v in (texts or {}).items()}
    known = {i.item for i in items} | {i.key for i in items if i.key}
    unknown = [k for k in texts if k not in known]
    if unknown:
        keys = ", ".join(i.key for i in items if i.key)
        raise InputError(
            [
                Problem(
                    "config",
                    None,
                    f"prisma.checklist.{k}",
                    k,
                    f"an item number (1 to 27, with a-f) or one of: {keys}",
                    check="config_key",
                )
                for k in unknown
            ],
            summary="prisma.checklist: unknown items",
        )
    rows = []
    for item in items:
        text = texts.get(item.item)
        if text is None and item.key:
            text = texts.get(item.key)
        text = " ".join(str(text).split()) if text is not None else ""
        found = {s: sections[s] for s in item.report if s in sections}
        if text.strip().lower().rstrip(".") in _NOT_APPLICABLE:
            status = "not applicable"
        elif found and text:
            status = "report and text"
        elif found:
            status = "report"
        elif text:
            status = "text"
        else:
            status = "not reported"
        rows.append(ChecklistRow(item, found, text, status))
    return tuple(rows)


# --------------------------------------------------------------------------- report parts
def flow_text(flow: Mapping[str, Any]) -> str:
    """The joined flow (``prisma/flow.json``) in one paragraph of plain text."""
    c, p = flow.get("counts"), flow.get("pipeline") or {}
    parts = []
    if c:
        parts.append(
            f"The search found {c['n_identified']:,} records; {c['n_removed']:,} were removed "
            f"before screening, {c['screened']:,} screened and {c['records_excluded']:,} "
            f"excluded; of {c['reports_sought']:,} reports sought, {c['reports_not_retrieved']:,} "
            f"could not be retrieved and {c['n_reports_excluded']:,} of the "
            f"{c['reports_assessed']:,} assessed were excluded. {c['studies_included']:,} studies "
            f"({c['reports_included']:,} reports) were included (counts file {c['file']})."
        )
    else:
        parts.append(
            "No PRISMA counts file (prisma.counts in the config): the search and screening counts "
            "are not reported here."
        )
    parts.append(
        f"{p.get('studies_coded')} studies with {p.get('effect_sizes_coded')} effect sizes were "
        f"coded; {p.get('effect_sizes_analysed')} effect sizes from {p.get('studies_analysed')} "
        "studies were analysed."
    )
    failed = [ch["text"] for ch in flow.get("checks") or [] if not ch.get("ok")]
    if failed:
        parts.append("These counts do NOT add up: " + "; ".join(failed) + ".")
    elif flow.get("checks"):
        parts.append("Every step of the flow adds up.")
    return " ".join(parts)


def checklist_html(rows: Sequence[ChecklistRow]) -> str:
    """The checklist as an HTML table: section, item, topic, the item's text and where it is
    reported (links to the report's sections, the reviewers' text, or the status)."""
    import html

    esc = html.escape
    body, previous = [], None
    for row in rows:
        i = row.item
        links = ", ".join(f'<a href="#{esc(s)}">{esc(t)}</a>' for s, t in row.sections.items())
        where = [links] if links else []
        if row.text:
            where.append(esc(row.text))
        if row.status in ("not applicable", "not reported"):
            where = [f"<i>{esc(row.status.capitalize())}</i>"]
        section = esc(i.section) if i.section != previous else ""
        previous = i.section
        body.append(
            f'<tr class="prisma-{row.status.replace(" ", "-")}"><td>{section}</td>'
            f"<td>{esc(i.item)}</td><td>{esc(i.topic)}</td><td>{esc(i.text)}</td>"
            f"<td>{'; '.join(where)}</td></tr>"
        )
    return (
        '<div class="apa-scroll"><table class="flow prisma-checklist"><thead><tr>'
        "<th>Section</th><th>Item</th><th>Topic</th><th>Checklist item</th>"
        "<th>Where reported</th></tr></thead><tbody>" + "".join(body) + "</tbody></table></div>"
    )
