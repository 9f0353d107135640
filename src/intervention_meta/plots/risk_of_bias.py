"""Risk-of-bias figures in the style of robvis: the traffic-light plot and the summary bar plot.

Both read the judgements of the codebook variables the config's ``risk_of_bias`` section names
(:class:`~intervention_meta.data.risk_of_bias.RiskOfBiasSpec`) from the analysed effect sizes
(every study variable is merged into each effect-size row), one unit per study when the judgements
are study variables, one per result (effect size) when they are effects variables.

* :func:`traffic_light_plot`: one row per unit, one column per domain and the overall judgement;
  each cell a circle in the judgement's colour with robvis's symbol (``+`` low, ``-`` some
  concerns / moderate, ``x`` high / serious, ``!`` critical, ``?`` no information); an empty
  grey circle where a judgement is not coded.
* :func:`summary_plot`: per domain (and overall) a horizontal bar split by judgement: each unit
  weighted by the **precision of its results**, the sum of ``1 / vi`` over its effect sizes
  (robvis ``rob_summary(weighted = TRUE)`` with the inverse-variance weights), so a bar shows the
  share of the evidence, not of the studies, at each judgement.

Colours are robvis's palettes (:data:`~intervention_meta.data.risk_of_bias.PALETTES`):
``cochrane`` or ``colourblind``.

References
----------
McGuinness, L. A., & Higgins, J. P. T. (2021). Risk-of-bias VISualization (robvis): an R package
and Shiny web app for visualizing risk-of-bias assessments. *Research Synthesis Methods*, 12,
55-61.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from intervention_meta.data.codebook import Codebook
from intervention_meta.data.risk_of_bias import JUDGEMENTS, PALETTES, RiskOfBiasSpec
from intervention_meta.plots import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RiskOfBiasData", "risk_of_bias_data", "summary_plot", "traffic_light_plot"]

#: the text of a judgement that is not coded (missing code or blank)
NOT_CODED = "Not coded"


@dataclass(frozen=True)
class RiskOfBiasData:
    """The judgements to draw.

    Attributes
    ----------
    units : one row per assessed unit: ``label`` (the row label), ``weight`` (sum of 1/vi of its
        effect sizes) and one column per variable of ``columns`` with the judgement key
        (:data:`JUDGEMENTS`; None when not coded)
    columns : the variables drawn, domains first, the overall judgement last
    headers : short column header of each variable (``D1``..., ``Overall``)
    names : the codebook label of each variable (the domain's full name)
    per_result : True when the judgements are effects variables (a row per effect size)
    scale : the judgements of the tool's scale, in order (those the data use, for ``other``)
    """

    units: pd.DataFrame
    columns: tuple[str, ...]
    headers: dict[str, str]
    names: dict[str, str]
    per_result: bool
    scale: tuple[str, ...]

    @property
    def n_units(self) -> int:
        return len(self.units)

    def counts(self, weighted: bool = False) -> pd.DataFrame:
        """Per variable (rows) and judgement (columns: :attr:`scale`, then ``missing``): the
        number of units, or with ``weighted`` their share of the total weight."""
        out = {}
        w = self.units["weight"] if weighted else pd.Series(1.0, index=self.units.index)
        for name in self.columns:
            keys = self.units[name].fillna("missing")
            out[name] = w.groupby(keys).sum()
        frame = pd.DataFrame(out).T.reindex(columns=[*self.scale, "missing"]).fillna(0.0)
        if weighted:
            frame = frame.div(frame.sum(axis=1).where(lambda s: s > 0, 1.0), axis=0)
        return frame


def _header(name: str, label: str, i: int) -> str:
    """``D1`` for a label starting with a domain number (``D1 Randomisation ...``), else D<i>."""
    first = label.split()[0] if label.split() else ""
    return first if first[:1] == "D" and first[1:].isdigit() else f"D{i + 1}"


def risk_of_bias_data(
    data: pd.DataFrame,
    codebook: Codebook,
    spec: RiskOfBiasSpec,
    *,
    study: str,
    es: str,
    labels: Mapping[str, str] | None = None,
    vi: str = "vi",
) -> RiskOfBiasData:
    """The judgements of ``data`` (the analysed effect sizes) per unit, in the order of the data.

    ``labels`` maps a study key to its row label (default the key); a unit per result is
    labelled ``<study label>, <effect key>``.
    """
    names = [*spec.domains, spec.overall]
    per_result = codebook[spec.overall].table == codebook.child_table
    unit = [study, es] if per_result else [study]
    frame = data[[*unit, *names]].copy()
    frame["_w"] = 1.0 / pd.to_numeric(data[vi], errors="coerce")
    weight = frame.groupby(unit, sort=False)["_w"].sum()
    units = frame.drop_duplicates(subset=unit).reset_index(drop=True)
    units["weight"] = weight.to_numpy()
    for name in names:
        var = codebook[name]
        units[name] = [spec.judgement(var, v) for v in units[name]]
    lab = {str(k): str(v) for k, v in (labels or {}).items()}
    keys = units[study].astype(str)
    units["label"] = [lab.get(k, k) for k in keys]
    if per_result:
        units["label"] = units["label"] + ", " + units[es].astype(str)
    scale = spec.tool_info.scale
    if not scale:
        used = {j for name in names for j in units[name].dropna()}
        scale = tuple(j for j in ("low", "some_concerns", "high") if j in used)
    headers = {n: _header(n, codebook.label(n), i) for i, n in enumerate(spec.domains)}
    headers[spec.overall] = "Overall"
    return RiskOfBiasData(
        units=units[["label", "weight", *names]],
        columns=tuple(names),
        headers=headers,
        names={n: codebook.label(n) for n in names},
        per_result=per_result,
        scale=tuple(scale),
    )


def _legend_handles(scale: Sequence[str], palette: Mapping[str, str], missing: bool) -> list:
    handles = [
        style.legend_entry(
            f"{JUDGEMENTS[j].symbol}  {JUDGEMENTS[j].name}",
            marker="o",
            linestyle="none",
            markersize=8,
            markerfacecolor=palette[j],
            markeredgecolor="#555555",
        )
        for j in scale
    ]
    if missing:
        handles.append(
            style.legend_entry(
                NOT_CODED,
                marker="o",
                linestyle="none",
                markersize=8,
                markerfacecolor="white",
                markeredgecolor=palette["missing"],
            )
        )
    return handles


def _domain_note(rob: RiskOfBiasData) -> str:
    return "; ".join(
        f"{rob.headers[n]}: {rob.names[n].removeprefix(rob.headers[n]).strip()}"
        for n in rob.columns[:-1]
    )


def traffic_light_plot(
    rob: RiskOfBiasData, *, palette: str = "cochrane", title: str, subtitle: str = ""
) -> Figure:
    """The traffic-light plot: a row per unit (top to bottom in data order), a column per domain
    and the overall judgement (separated by a gap)."""
    colours = PALETTES[palette]
    n, m = rob.n_units, len(rob.columns)
    xs = np.arange(m, dtype=float)
    xs[-1] += 0.35  # the overall column stands apart
    label_width = min(3.2, 0.9 + 0.055 * max((len(s) for s in rob.units["label"]), default=8))
    width = min(style.FULL_WIDTH, label_width + 0.55 * m + 0.6)
    height = style.rows_height(n, per_row=0.27, fixed=2.3, minimum=3.0)
    with style.style():
        fig = style.figure(width, height)
        ax = fig.add_subplot()
        # one scatter per judgement (circles, then the symbols drawn as markers): few artists
        cells = pd.DataFrame(
            [
                (x, n - 1 - i, rob.units[name].iloc[i])
                for i in range(n)
                for x, name in zip(xs, rob.columns, strict=True)
            ],
            columns=["x", "y", "judgement"],
        )
        cells["judgement"] = cells["judgement"].fillna("missing")
        missing = bool((cells["judgement"] == "missing").any())
        for key, group in cells.groupby("judgement", sort=False):
            if key == "missing":
                ax.scatter(group["x"], group["y"], s=150, facecolor="white",
                           edgecolor=colours["missing"], zorder=2)  # fmt: skip
                continue
            ax.scatter(group["x"], group["y"], s=150, color=colours[key], edgecolor="#555555",
                       lw=0.5, zorder=2)  # fmt: skip
            symbol = JUDGEMENTS[key].symbol
            ax.scatter(group["x"], group["y"], s=28, marker=f"${symbol}$", color="black",
                       lw=0.4, zorder=3)  # fmt: skip
        ax.set_xlim(xs[0] - 0.6, xs[-1] + 0.6)
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_yticks(range(n), list(rob.units["label"])[::-1])
        ax.xaxis.tick_top()
        ax.set_xticks(xs, [rob.headers[c] for c in rob.columns], fontweight="bold")
        ax.tick_params(length=0)
        for side in ("left", "bottom", "top", "right"):
            ax.spines[side].set_visible(False)
        if m > 1:
            ax.axvline((xs[-2] + xs[-1]) / 2, color=style.LIGHT_GREY, lw=0.8)
        style.title_block(ax, title, subtitle, width=int(width * 15))
        if m > 1:
            chars = int((width - label_width) * 19)  # 7 pt text across the axes
            style.footnote(ax, "Domains: " + _domain_note(rob), width=max(chars, 40))
        fig.legend(
            handles=_legend_handles(rob.scale, colours, missing),
            loc="outside lower center",
            ncol=min(3, len(rob.scale) + missing),
            title="Judgement",
            title_fontsize=8,
        )
    return fig


def summary_plot(
    rob: RiskOfBiasData,
    *,
    palette: str = "cochrane",
    title: str,
    subtitle: str = "",
    weighted: bool = True,
) -> Figure:
    """The summary bar plot: a bar per domain (and the overall judgement, last) split by
    judgement into shares (of the weight with ``weighted``, else of the units)."""
    colours = PALETTES[palette]
    shares = rob.counts(weighted=True) if weighted else rob.counts()
    if not weighted:
        shares = shares.div(shares.sum(axis=1), axis=0)
    missing = bool(shares["missing"].gt(0).any())
    keys = [*rob.scale, "missing"] if missing else list(rob.scale)
    n = len(rob.columns)
    width = style.FULL_WIDTH
    with style.style():
        fig = style.figure(width, style.rows_height(n, per_row=0.38, fixed=1.9, minimum=2.8))
        ax = fig.add_subplot()
        y = np.arange(n)[::-1].astype(float)
        labels = [rob.names[c] for c in rob.columns[:-1]] + ["Overall"]
        left = np.zeros(n)
        for key in keys:
            values = shares[key].reindex(list(rob.columns)).to_numpy() * 100
            face = "white" if key == "missing" else colours[key]
            name = NOT_CODED if key == "missing" else JUDGEMENTS[key].name
            ax.barh(
                y, values, left=left, height=0.62, color=face, edgecolor="#555555", lw=0.5,
                label=name,
            )  # fmt: skip
            left += values
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 100)
        ax.set_xticks(np.arange(0, 101, 25), [f"{v}%" for v in range(0, 101, 25)])
        what = "of the weight (sum of 1/vi)" if weighted else "of the studies"
        unit = "results" if rob.per_result else "studies"
        ax.set_xlabel(f"Share {what} of the {rob.n_units} {unit}")
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        style.title_block(ax, title, subtitle, width=110)
        fig.legend(loc="outside lower center", ncol=len(keys), title="Judgement",
                   title_fontsize=8)  # fmt: skip
    return fig
