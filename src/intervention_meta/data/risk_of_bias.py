"""Risk of bias: the assessment tools, the ``risk_of_bias`` config section, the judgements.

A risk-of-bias assessment is coded like any other variable: one ordinal codebook variable per
domain and one for the overall judgement, per study (studies table) or per result (effects table);
``data/templates/rob2.yaml`` and ``data/templates/robins_i.yaml`` are the codebook entries to copy.
The config's ``risk_of_bias`` section names them::

    risk_of_bias:
      tool: rob2              # rob2 | robins_i | other
      overall: risk_of_bias   # the overall judgement (ordinal)
      low: [1]                # codes of `overall` that mean low risk
      high: [3]               # codes that mean high (ROBINS-I: serious or critical)
      domains: []             # the per-domain judgements, in the tool's order

A code's *judgement* (what the figures colour and label) follows from the tool's scale
(:data:`TOOLS`): for RoB 2 and ROBINS-I the k-th level of a variable is the k-th judgement of the
scale (so the levels must be coded in the scale's order, as the templates do); for ``other`` the
codes of ``low`` are low, those of ``high`` high and the rest some concerns. ``low`` and ``high``
alone decide the restricted sensitivity analyses (low risk; low or some concerns = not high).

References
----------
Sterne, J. A. C., et al. (2019). RoB 2: a revised tool for assessing risk of bias in randomised
trials. *BMJ*, 366, l4898.
Sterne, J. A. C., et al. (2016). ROBINS-I: a tool for assessing risk of bias in non-randomised
studies of interventions. *BMJ*, 355, i4919.
McGuinness, L. A., & Higgins, J. P. T. (2021). Risk-of-bias VISualization (robvis): an R package
and Shiny web app for visualizing risk-of-bias assessments. *Research Synthesis Methods*, 12,
55-61.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from intervention_meta.data.codebook import Codebook, Variable, normalise_code
from intervention_meta.errors import Problem

if TYPE_CHECKING:  # pandas only where a frame is made: the start-up check imports this module
    import pandas as pd

__all__ = [
    "JUDGEMENTS",
    "PALETTES",
    "TOOLS",
    "Judgement",
    "RiskOfBiasSpec",
    "Tool",
    "risk_of_bias_problems",
]


@dataclass(frozen=True)
class Judgement:
    """One judgement of a risk-of-bias scale: its name and the robvis symbol."""

    key: str
    name: str
    symbol: str


#: the risk-of-bias figures (``risk_of_bias_<kind>``), drawn when the config has the section (a
#: name the workflow reads when it is parsed, so it lives here and not with the pandas-heavy plots)
ROB_FIGURES = ("traffic_light", "summary")

#: every judgement any tool uses, with robvis's symbols
JUDGEMENTS: dict[str, Judgement] = {
    j.key: j
    for j in (
        Judgement("low", "Low", "+"),
        Judgement("some_concerns", "Some concerns", "-"),
        Judgement("moderate", "Moderate", "-"),
        Judgement("high", "High", "x"),
        Judgement("serious", "Serious", "x"),
        Judgement("critical", "Critical", "!"),
        Judgement("no_information", "No information", "?"),
    )
}

#: the colours of each judgement, by palette: robvis's "cochrane" and "colourblind"
#: (robvis ``get_colour``); a judgement that is missing is drawn grey (robvis ``na_colour``)
PALETTES: dict[str, dict[str, str]] = {
    "cochrane": {
        "low": "#02C100",
        "some_concerns": "#E2DF07",
        "moderate": "#E2DF07",
        "high": "#BF0000",
        "serious": "#BF0000",
        "critical": "#820000",
        "no_information": "#4EA1F7",
        "missing": "#CCCCCC",
    },
    "colourblind": {
        "low": "#FED98E",
        "some_concerns": "#FE9929",
        "moderate": "#FE9929",
        "high": "#D95F0E",
        "serious": "#D95F0E",
        "critical": "#993404",
        "no_information": "#FFFFFF",
        "missing": "#CCCCCC",
    },
}


@dataclass(frozen=True)
class Tool:
    """A risk-of-bias tool: its name, its scale (judgements, lowest risk first) and domains."""

    key: str
    name: str
    scale: tuple[str, ...]
    domains: tuple[str, ...] = ()
    min_levels: int = 0

    def fits(self, n_levels: int) -> bool:
        """Whether a variable with ``n_levels`` levels can be read on this tool's scale."""
        return not self.scale or self.min_levels <= n_levels <= len(self.scale)


#: the tools of ``risk_of_bias.tool``
TOOLS: dict[str, Tool] = {
    "rob2": Tool(
        "rob2",
        "RoB 2",
        ("low", "some_concerns", "high"),
        (
            "D1 Randomisation process",
            "D2 Deviations from intended interventions",
            "D3 Missing outcome data",
            "D4 Measurement of the outcome",
            "D5 Selection of the reported result",
        ),
        min_levels=3,
    ),
    "robins_i": Tool(
        "robins_i",
        "ROBINS-I",
        ("low", "moderate", "serious", "critical", "no_information"),
        (
            "D1 Confounding",
            "D2 Selection of participants",
            "D3 Classification of interventions",
            "D4 Deviations from intended interventions",
            "D5 Missing data",
            "D6 Measurement of outcomes",
            "D7 Selection of the reported result",
        ),
        min_levels=4,  # "no information" may be left out
    ),
    "other": Tool("other", "risk-of-bias tool", ()),
}


@dataclass(frozen=True)
class RiskOfBiasSpec:
    """The config's ``risk_of_bias`` section (see the module docstring); codes normalised."""

    tool: str
    overall: str
    low: tuple[str, ...]
    high: tuple[str, ...]
    domains: tuple[str, ...] = ()
    palette: str = "cochrane"

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> RiskOfBiasSpec | None:
        """The spec of ``config["risk_of_bias"]``; None when the section is absent or empty."""
        if not section or not section.get("overall"):
            return None
        return cls(
            tool=str(section.get("tool", "rob2")),
            overall=str(section["overall"]),
            low=tuple(normalise_code(c) for c in section.get("low") or ()),
            high=tuple(normalise_code(c) for c in section.get("high") or ()),
            domains=tuple(str(d) for d in section.get("domains") or ()),
            palette=str(section.get("palette", "cochrane")),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def tool_info(self) -> Tool:
        return TOOLS[self.tool]

    def judgement(self, var: Variable, code: object) -> str | None:
        """The judgement key (:data:`JUDGEMENTS`) of ``code`` of the variable ``var``; None for
        a missing value or a code that is not a level."""
        if code is None or (isinstance(code, float) and math.isnan(code)) or str(code) == "<NA>":
            return None
        code = normalise_code(code)
        codes = list(var.levels)
        if code not in codes:
            return None
        scale = self.tool_info.scale
        if scale:
            return scale[codes.index(code)]
        if code in self.low:
            return "low"
        return "high" if code in self.high else "some_concerns"

    def judgements(self, var: Variable) -> dict[str, str]:
        """Code -> judgement key of every level of ``var``."""
        return {code: self.judgement(var, code) or "missing" for code in var.levels}

    def restrictions(self, overall: Variable) -> list[tuple[str, str, tuple[str, ...]]]:
        """The restricted sensitivity analyses: (key, description, codes of ``overall`` kept):
        the low-risk results, and those not at high risk (low or some concerns / moderate; a
        code judged "no information" is in neither)."""
        codes = list(overall.levels)
        not_high = tuple(
            c
            for c in codes
            if c not in self.high and self.judgement(overall, c) != "no_information"
        )
        middle = {
            JUDGEMENTS[self.judgement(overall, c) or "some_concerns"].name.lower()
            for c in not_high
            if c not in self.low
        }
        if middle == {"moderate"}:
            wider = "low or moderate risk of bias"
        else:
            wider = "low risk of bias" + "".join(f" or {m}" for m in sorted(middle))
        return [("low", "low risk of bias", self.low), ("not_high", wider, not_high)]


def risk_of_bias_problems(
    cb: Codebook, section: Mapping[str, Any] | None, file: str = "<config>"
) -> list[Problem]:
    """Problems of the config's ``risk_of_bias`` section against the codebook (start-up check).

    ``overall`` and every ``domains`` entry must be codebook variables with levels (ordinal as the
    templates, or categorical/binary) of the studies or the effects table, whose number of levels
    fits the tool's scale (RoB 2: 3; ROBINS-I: 4 or 5); ``low`` and ``high`` must be levels of
    ``overall``, and no code may be both. Nothing is checked when the section is absent.
    """
    spec = RiskOfBiasSpec.from_config(section)
    if spec is None or spec.tool not in TOOLS:
        return []  # absent, or an unknown tool (the schema check names it)
    tool = spec.tool_info
    tables = (cb.child_table, cb.parent_table)
    problems: list[Problem] = []

    def add(key: str, value: Any, expected: str) -> None:
        problems.append(Problem(file, None, key, value, expected, check="risk_of_bias"))

    def check_variable(key: str, name: str) -> Variable | None:
        var = cb.variables.get(name)
        fitting = [v.name for v in cb.variables.values() if v.has_levels and v.table in tables]
        if var is None or not var.has_levels or var.table not in tables:
            add(
                key,
                name,
                "a variable with levels (ordinal) of the studies or effects table in "
                f"{cb.path}: {', '.join(fitting) or 'none'}",
            )
            return None
        if not tool.fits(len(var.levels)):
            want = (
                f"{tool.min_levels} to {len(tool.scale)}"
                if tool.min_levels < len(tool.scale)
                else str(len(tool.scale))
            )
            scale = ", ".join(JUDGEMENTS[j].name.lower() for j in tool.scale)
            add(
                key,
                name,
                f"{want} levels in the order of the {tool.name} scale ({scale}); "
                f"{name} has {len(var.levels)}",
            )
        return var

    overall = check_variable("risk_of_bias.overall", spec.overall)
    for i, name in enumerate(spec.domains):
        check_variable(f"risk_of_bias.domains.{i}", name)
    if len(set(spec.domains)) != len(spec.domains):
        add("risk_of_bias.domains", list(spec.domains), "each domain variable once")
    if overall is not None:
        codes = list(overall.levels)
        for key in ("low", "high"):
            for i, code in enumerate(getattr(spec, key)):
                if code not in codes:
                    add(
                        f"risk_of_bias.{key}.{i}",
                        code,
                        f"a level of {spec.overall} (one of: {', '.join(codes)})",
                    )
        both = sorted(set(spec.low) & set(spec.high))
        if both:
            add("risk_of_bias.high", both, "codes not also listed under risk_of_bias.low")
        if not spec.low:
            add("risk_of_bias.low", [], "at least one code of low risk")
    return problems


def judgement_frame(
    data: pd.DataFrame, spec: RiskOfBiasSpec, cb: Codebook, unit: Sequence[str]
) -> pd.DataFrame:
    """One row per assessed unit (the columns ``unit``: the study key, or the study and effect
    keys for judgements per result) with the judgement key of each domain and of the overall
    judgement (columns named like the variables; None where not coded)."""
    names = [*spec.domains, spec.overall]
    frame = data[[*unit, *names]].drop_duplicates(subset=list(unit)).reset_index(drop=True)
    for name in names:
        var = cb[name]
        frame[name] = [spec.judgement(var, v) for v in frame[name]]
    return frame
