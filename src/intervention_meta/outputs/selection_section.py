"""The report's selection-model section: what the model says, the weights figure, and a table of
the unadjusted, selection-adjusted and PET-PEESE estimates beside the Egger-type test.

Everything comes from ``models/bias.json`` (keys in ``docs/results.md``): ``pooled`` (the
analysis model, unadjusted), ``selection`` (the step-function selection model on all effect
sizes, composite likelihood clustered by study), ``pet_peese_model`` (PET-PEESE in the
three-level model with CR2 tests) and ``egger_multilevel`` / ``egger_multilevel_cr2`` (the
Egger-type test in the three-level model). The text says what the selection model assumes, how
to read the weights, and its caveats; without usable weights
(:func:`intervention_meta.plots.selection.selection_usable`) it says why instead of showing the
figure.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from intervention_meta.outputs.labels import MeasureLabels
from intervention_meta.outputs.tables import fmt_ci, fmt_df, fmt_est, fmt_p
from intervention_meta.plots.selection import interval_label, selection_usable

__all__ = ["estimates_rows", "selection_section_html"]


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _get(d: Mapping | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _ci(rec: Mapping, boot: bool = False) -> str:
    if boot and rec.get("boot_ci_lb") is not None:
        return fmt_ci(rec.get("boot_ci_lb"), rec.get("boot_ci_ub"))
    return fmt_ci(rec.get("ci_lb"), rec.get("ci_ub"))


def _test(name: str, df: Any, stat: Any, p: Any) -> str:
    dfs = fmt_df(df) if df is not None else ""
    return f"<i>{_esc(name)}</i>{f'({dfs})' if dfs else ''} = {fmt_est(stat)}, <i>p</i> {_p(p)}"


def _p(p: Any) -> str:
    text = fmt_p(p)
    return text if text.startswith("<") else f"= {text}"


def estimates_rows(bias: Mapping[str, Any]) -> list[dict[str, str]]:
    """The rows of the comparison table (method, estimate, CI, test, what it assumes), as
    formatted text; a method without a record is left out."""
    rows = []
    pooled = bias.get("pooled") or {}
    if pooled.get("estimate") is not None:
        rows.append(
            {
                "method": "Unadjusted mean (analysis model)",
                "estimate": fmt_est(pooled.get("estimate")),
                "ci": _ci(pooled),
                "test": _test("t" if pooled.get("df") is not None else "z", pooled.get("df"),
                              _ratio(pooled), pooled.get("pval")),
                "note": _esc(pooled.get("model", "")) + "; no correction for selective reporting",
            }
        )  # fmt: skip
    sel = bias.get("selection") or {}
    adj = sel.get("adjusted_mean") or {}
    if adj.get("estimate") is not None:
        un = sel.get("unadjusted_mean") or {}
        boot = adj.get("boot_ci_lb") is not None
        wald = sel.get("wald") or {}
        rows.append(
            {
                "method": "Selection-adjusted mean (step-function selection model)",
                "estimate": fmt_est(adj.get("estimate")),
                "ci": _ci(adj, boot) + (" (bootstrap)" if boot else ""),
                "test": (
                    "selection: " + _test("\u03c7\u00b2", wald.get("df"), wald.get("statistic"),
                                          wald.get("pval")) + " (cluster-robust Wald)"
                    if wald else ""
                ),
                "note": (
                    f"all {sel.get('k')} effect sizes, composite likelihood clustered by study "
                    f"({sel.get('n_clusters')} studies); the same model without selection gives "
                    f"{fmt_est(un.get('estimate'))} {_ci(un)}"
                ),
            }
        )  # fmt: skip
    ppm = bias.get("pet_peese_model") or {}
    if ppm.get("estimate") is not None:
        rows.append(
            {
                "method": f"PET-PEESE conditional estimate ({_esc(ppm.get('chosen', ''))})",
                "estimate": fmt_est(ppm.get("estimate")),
                "ci": _ci(ppm),
                "test": _test("t", ppm.get("df"), _ratio(ppm), ppm.get("pval")) + " (CR2)",
                "note": (
                    "intercept of the three-level meta-regression on the standard error (PET) or "
                    "the variance (PEESE): the effect of a study with no sampling error"
                ),
            }
        )
    eg = bias.get("egger_multilevel") or {}
    if eg.get("slope") is not None:
        cr2 = _get(bias, "egger_multilevel_cr2", "slope") or {}
        stat = "t" if eg.get("stat_name") == "tval" else "z"
        test = f"slope {fmt_est(eg.get('slope'))}: " + _test(
            stat, eg.get("dfs"), eg.get("statistic"), eg.get("pval")
        )
        if cr2:
            test += "; CR2: " + _test("t", cr2.get("df_satt"), cr2.get("tstat"), cr2.get("p_satt"))
        rows.append(
            {
                "method": "Egger-type test (slope on the standard error)",
                "estimate": "",
                "ci": "",
                "test": test,
                "note": (
                    "a slope away from 0 means small studies report different effects "
                    "(small-study effects, of which selective reporting is one cause)"
                ),
            }
        )
    return rows


def _ratio(rec: Mapping) -> float | None:
    try:
        return float(rec["estimate"]) / float(rec["se"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _table(rows: list[dict[str, str]], labels: MeasureLabels, level: str) -> str:
    head = (
        "<thead><tr><th>Method</th>"
        f'<th class="num">{labels.symbol_html()}</th><th class="num">{level} CI</th>'
        "<th>Test</th><th>What it is</th></tr></thead>"
    )
    body = "".join(
        f'<tr><td>{r["method"]}</td><td class="num">{r["estimate"]}</td>'
        f'<td class="num">{r["ci"]}</td><td>{r["test"]}</td><td>{r["note"]}</td></tr>'
        for r in rows
    )
    table = f'<table class="flow selection">{head}<tbody>{body}</tbody></table>'
    return f'<div class="apa-scroll">{table}</div>'


def selection_section_html(
    bias: Mapping[str, Any],
    figures_html: str,
    cite: Callable[..., str],
    labels: MeasureLabels,
) -> str:
    """The body of the selection-model section.

    Parameters
    ----------
    bias : ``models/bias.json``
    figures_html : the section's figure(s), placed only when the weights are usable
    cite : the report's citation collector (``cite("vevea1995")`` -> "(Vevea & Hedges, 1995)")
    labels : the effect measure (its symbol heads the estimates)
    """
    sel = bias.get("selection")
    reason = str((bias.get("not_computed") or {}).get("selection", ""))
    usable, why = selection_usable(sel, reason)
    level = float(_get(bias, "model_spec", "level") or 0.95)
    two = _get(bias, "options", "selection_alternative") == "two.sided"
    sided = "two-sided" if two else "one-sided"
    what = (
        "(the probability of an effect at least this far from zero, in either direction, if the "
        "true effect were zero)"
        if two
        else "(the probability of an effect at least this large in the expected direction if "
        "the true effect were zero)"
    )
    pct = f"{100 * level:g}%"
    parts = [
        "<p>A selection model asks how the pooled effect would change if studies, or results "
        "within studies, were more likely to be reported when they were statistically "
        "significant. The step-function model "
        f"{cite('vevea1995')} sorts the effect sizes by their {sided} <i>p</i> value {what} "
        "into intervals, and estimates for each interval a <b>weight</b>: how "
        "likely an effect size in that interval is to be observed, relative to one in the most "
        "significant interval (weight 1). A weight of 0.5 means such results are half as likely "
        "to be reported; a weight near 1 means no selection. The mean is then re-estimated as "
        "if all results had been reported. Because several effect sizes come from the same "
        "study, the model is fitted by composite likelihood (each effect size's own likelihood, "
        "their dependence not modelled) with a cluster-robust sandwich variance and a bootstrap "
        f"that resamples whole studies {cite('pustejovsky2025')}.</p>"
    ]
    if usable:
        weights = sel.get("weights") or []
        read = "; ".join(
            f"{_esc(interval_label(w))}: {fmt_est(w.get('estimate'))} "
            f"{_ci(w, w.get('boot_ci_lb') is not None)}"
            for w in weights[1:]
        )
        parts.append(
            f"<p>Estimated weights ({pct} "
            + ("bootstrap percentile" if any(w.get("boot_ci_lb") is not None for w in weights)
               else "cluster-robust Wald")
            + f" intervals): {read}.</p>"
        )  # fmt: skip
        parts.append(figures_html)
    else:
        parts.append(f'<p class="notice">{_esc(why)}</p>')
    rows = estimates_rows(bias)
    if rows:
        parts.append(
            "<p>The pooled effect without and with the corrections for selective reporting, "
            "beside the test of small-study effects (all from the bias step):</p>"
        )
        parts.append(_table(rows, labels, pct))
    parts.append(
        "<p><b>Caveats.</b> (1) The weights are estimated from the effect sizes in each "
        "interval: with few effect sizes (or few studies) in an interval they are unstable, "
        "and their intervals wide. (2) The model assumes that selection depends only on the "
        f"{sided} <i>p</i> value, through the intervals chosen "
        "(<code>bias.selection_steps</code>), and that the effects are otherwise normally "
        "distributed around the mean; other reasons why small studies differ (e.g. they "
        "studied other populations) can look like selection. (3) Its likelihood-ratio test of "
        "selection ignores the dependence of effect sizes within studies and rejects too often "
        f"{cite('rodgers2021')}; the cluster-robust Wald test and the bootstrap intervals "
        "account for it. (4) PET-PEESE can be badly biased when the true effects are "
        f"heterogeneous and the studies few {cite('stanley2017')}, and the Egger-type test has "
        "little power with fewer than 10 studies; the methods answer the same question with "
        "different assumptions, so agreement between them is more convincing than any one "
        "estimate.</p>"
    )
    return "\n".join(p for p in parts if p)
