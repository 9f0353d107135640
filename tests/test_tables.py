"""APA-style tables (:mod:`intervention_meta.outputs.tables`).

The rounding rules are those of the APA Publication Manual (7th ed.): section 6.36 (decimal
places: two for most statistics, p to three with "< .001" below that), 6.37 (no leading zero for
values that cannot exceed 1: p, correlations, proportions), 6.45 (statistical symbols in
italics). Expected strings are written by hand from those rules. The tables of a real pipeline
run are checked in ``tests/test_report.py`` (one Snakemake run for both).
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from intervention_meta.analyses.overall import OVERALL_HEADERS, VARIANCE_HEADERS
from intervention_meta.analyses.records import result_table
from intervention_meta.outputs.tables import (
    LANDSCAPE_COLUMNS,
    LONG_ROWS,
    SPECS,
    ApaTable,
    apa_table,
    column_kind,
    domain_overall_table,
    fmt_ci,
    fmt_count,
    fmt_df,
    fmt_est,
    fmt_p,
    fmt_pct,
    fmt_r,
    fmt_var,
    html_fragment,
    latex_escape,
    run_tables,
    style_header,
)

# A three-row excerpt of the table ``overall`` of models/overall.json (keys as rule overall
# writes them; its CSV is tables/overall.csv).
OVERALL_ROWS = [
    {
        "row": "mean",
        "model": "three-level model (effect sizes nested in studies), REML, t tests",
        "result": "Mean effect (model-based)",
        "estimate": 0.41731191407075324,
        "se": 0.041653308744140645,
        "test": "t",
        "stat": 10.018697833445376,
        "df": 130.0,
        "p": 7.387222394548098e-18,
        "ci_lb": 0.33490582422931026,
        "ci_ub": 0.49971800391219623,
        "pi_lb": -0.031030864587172247,
        "pi_ub": 0.8656546927286788,
        "k": 131,
        "n_studies": 30,
        "note": "three-level model, REML; the PI is ...",
    },
    {
        "row": "mean_cr2",
        "result": "Mean effect (CR2 cluster-robust)",
        "estimate": 0.41731191407075324,
        "se": 0.04167585311446753,
        "test": "t (Satterthwaite df)",
        "stat": 10.013278262704256,
        "df": 27.77268758086358,
        "p": 1.0201916493455784e-10,
        "ci_lb": 0.3319113091562442,
        "ci_ub": 0.5027125189852623,
        "k": 131,
        "n_studies": 30,
        "note": "CR2 ...",
    },
    {
        "row": "sigma2",
        "component": "study_id",
        "result": "Variance between studies (Study): sigma2[study_id]",
        "estimate": 0.04066549546089926,
        "test": "LRT (chi-square)",
        "stat": 58.92213000494918,
        "df": 1.0,
        "p": 1.6403689243592406e-14,
        "p_halved": 8.201844621796203e-15,
        "k": 131,
        "n_studies": 30,
        "note": "level 3 ...",
    },
]
OVERALL = result_table(OVERALL_ROWS, OVERALL_HEADERS, 0.95)


# ------------------------------------------------------------------------------ rounding rules
def test_p_has_three_decimals_and_no_leading_zero():
    assert fmt_p(0.0346) == ".035"
    assert fmt_p(0.78854) == ".789"
    assert fmt_p(0.05) == ".050"
    assert fmt_p(1.0) == "1.000"  # Holm-adjusted p can be exactly 1


def test_p_below_001_is_shown_as_less_than_001():
    assert fmt_p(7.387e-18) == "< .001"
    assert fmt_p(0.000999) == "< .001"
    assert fmt_p(0.001) == ".001"


def test_g_se_and_confidence_limits_have_two_decimals():
    assert fmt_est(0.41731191407075324) == "0.42"
    assert fmt_est(-0.031030864587172247) == "-0.03"
    assert fmt_ci(0.33490582422931026, 0.49971800391219623) == "[0.33, 0.50]"
    assert fmt_ci(math.nan, math.nan) == ""


def test_a_value_that_rounds_to_zero_has_no_minus_sign():
    assert fmt_est(-0.0008383735841081501) == "0.00"
    assert fmt_r(-0.004) == ".00"


def test_df_is_an_integer_or_has_one_decimal_when_fractional():
    assert fmt_df(130.0) == "130"
    assert fmt_df(27.77268758086358) == "27.8"
    assert fmt_df(1.998383494983814) == "2.0"  # fractional, so it keeps its decimal
    assert fmt_df(6) == "6"


def test_percentages_have_one_decimal():
    assert fmt_pct(57.42948199619831) == "57.4"
    assert fmt_pct(100.0) == "100.0"


def test_values_bounded_by_one_have_no_leading_zero():
    assert fmt_r(0.8363636363636363) == ".84"  # a kappa
    assert fmt_r(-0.0942528735632184) == "-.09"  # Kendall's tau
    assert fmt_r(1.0) == "1.00"


def test_counts_and_small_variances():
    assert fmt_count(131.0) == "131"
    assert fmt_count("30") == "30"
    assert fmt_var(0.008956637383558355) == "0.009"


def test_missing_values_are_empty_cells_and_text_passes_through():
    assert fmt_est(None) == ""
    assert fmt_p(math.nan) == ""
    assert fmt_df("") == ""
    assert fmt_est("not estimable") == "not estimable"


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("p", "p"),
        ("p_adj", "p"),
        ("cr2_p_adj", "p"),
        ("df", "df"),
        ("cr2_df2", "df"),
        ("pct", "pct"),
        ("r2", "pct"),
        ("k", "count"),
        ("n_studies", "count"),
        ("sigma2.study_id", "var"),
        ("coverage", "r"),
        ("estimate", "est"),
        ("se", "est"),
    ],
)
def test_column_kind_follows_the_machine_key(key, kind):
    assert column_kind(key) == kind


def test_a_column_with_text_values_is_text_whatever_its_key():
    assert column_kind("source", pd.Series(["Sampling error", "Within"])) == "text"
    assert column_kind("p", pd.Series(["0.5", None])) == "p"


# ------------------------------------------------------------------------------ one table
def test_overall_table_rounds_merges_the_ci_and_keeps_variances_readable():
    table = apa_table(OVERALL, "overall", 1)
    frame = table.to_frame()
    assert list(frame.columns[:4]) == ["Result", "Estimate", "SE", "95% CI"]
    model, robust, variance = frame.to_dict(orient="records")
    assert (model["Estimate"], model["95% CI"], model["df"], model["p"]) == (
        "0.42",
        "[0.33, 0.50]",
        "130",
        "< .001",
    )
    assert model["95% PI"] == "[-0.03, 0.87]"
    assert (robust["df"], robust["95% CI"]) == ("27.8", "[0.33, 0.50]")
    assert variance["Estimate"] == "0.041"  # a variance component: 3 decimals, not 0.04
    assert variance["p (halved)"] == "< .001"
    assert "Note" not in frame.columns  # the long notes go to the table note


def test_table_note_says_what_k_and_cr2_mean():
    note = apa_table(OVERALL, "overall", 1).note
    assert note.startswith("Model: three-level model (effect sizes nested in studies)")
    assert "k = number of effect sizes" in note
    assert "CR2 = cluster-robust" in note and "Satterthwaite" in note


def test_columns_empty_in_every_row_are_left_out():
    rows = [{**row, "p_halved": math.nan} for row in OVERALL_ROWS]
    table = result_table(rows, OVERALL_HEADERS, 0.95)
    assert "p (halved)" not in apa_table(table, "overall", 1).columns
    assert "p (halved)" in apa_table(OVERALL, "overall", 1).columns


def test_headers_carry_the_level_of_the_step():
    table = apa_table(result_table(OVERALL_ROWS, OVERALL_HEADERS, 0.90), "overall", 1)
    assert "90% CI" in table.columns and "90% PI" in table.columns
    assert not any("95%" in c for c in table.columns)
    # the same cells: the level changes the headers only
    assert table.rows == apa_table(OVERALL, "overall", 1).rows


def test_repeated_group_values_are_shown_once():
    frame = pd.DataFrame(
        {
            "moderator_label": ["Design", "Design", "Setting"],
            "category": ["RCT", "Quasi", "Urban"],
            "estimate": [0.36, 0.54, 0.41],
        }
    )
    cells = apa_table(frame, "moderators", 5).to_frame()["Moderator"].tolist()
    assert cells == ["Design", "", "Setting"]


def test_identifier_columns_that_look_like_numbers_stay_as_written():
    rows = [{"study": "1", "k": 6, "cook_d": 0.0073}, {"study": "10", "k": 5, "cook_d": 0.0251}]
    headers = {"study": "Study", "k": "k (effect sizes)", "cook_d": "Cook's distance"}
    cells = apa_table(result_table(rows, headers), "sensitivity_influence", 12).to_frame()
    assert cells["Study"].tolist() == ["1", "10"]
    assert cells["Cook's distance"].tolist() == ["0.007", "0.025"]


def test_a_table_without_spec_shows_every_column_with_kinds_from_the_headers():
    frame = pd.DataFrame({"Thing": ["a"], "estimate": [0.123], "p": [0.5], "df": [3.25]})
    table = apa_table(frame, "sensitivity_new_thing", 20)
    assert table.title == "Sensitivity new thing"
    assert table.rows == (("a", "0.12", ".500", "3.2"),)


# ------------------------------------------------------------------------------ formats
def test_markdown_has_the_number_the_title_the_table_and_the_note():
    md = apa_table(OVERALL, "overall", 1).to_markdown()
    lines = md.splitlines()
    assert lines[0] == "**Table 1**"
    assert lines[2] == f"*{SPECS['overall'].title}*"
    assert "| Mean effect (model-based) | 0.42 | 0.04 | [0.33, 0.50] |" in md
    assert lines[4].startswith("| Result | Estimate | *SE* | 95% CI |")  # symbols in italics
    assert lines[-1].startswith("*Note.* ")


def test_latex_is_a_booktabs_table_with_escaped_text():
    tex = apa_table(OVERALL, "overall", 1).to_latex()
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == 1
    assert "\\caption{" in tex and "\\label{tab:overall}" in tex
    assert "\\textless{} .001" in tex  # "<" outside math mode
    assert "95\\% CI" in tex
    assert "sigma2[study\\_id]" in tex
    assert "\\textit{p}" in tex


def _demo_table(n_cols: int, n_rows: int) -> ApaTable:
    return ApaTable(
        name="demo",
        number=2,
        title="Demo",
        columns=tuple(f"c{j}" for j in range(n_cols)),
        rows=tuple(tuple(f"{i}.{j}" for j in range(n_cols)) for i in range(n_rows)),
        note="A note.",
        align=("l",) + ("r",) * (n_cols - 1),
    )


def test_latex_tables_fit_the_page_sideways_when_wide_over_pages_when_long():
    narrow = _demo_table(LANDSCAPE_COLUMNS, 3).to_latex()
    assert narrow.startswith("% requires \\usepackage{booktabs, adjustbox, rotating}")
    assert "\\begin{table}[htbp]" in narrow and "\\end{table}" in narrow
    assert "\\begin{adjustbox}{max width=\\linewidth, max totalheight=0.8\\textheight}" in narrow
    wide = _demo_table(LANDSCAPE_COLUMNS + 1, 3).to_latex()
    assert "\\begin{sidewaystable}" in wide and "\\end{sidewaystable}" in wide
    assert "max totalheight=0.8\\textwidth" in wide  # the page's width is the height sideways
    long = _demo_table(3, LONG_ROWS + 1).to_latex()
    assert long.startswith("% requires \\usepackage{booktabs, longtable, pdflscape}")
    assert "\\begin{longtable}{lrr}" in long and "adjustbox" not in long
    # the heads on the first page and again on every page, the bottom rule at the very end
    assert long.count("c0 & c1 & c2 \\\\") == 2
    assert long.index("\\endfirsthead") < long.index("\\endhead") < long.index("0.0 & 0.1")
    assert long.count("0.0 & 0.1 & 0.2 \\\\") == 1 and f"{LONG_ROWS}.2 \\\\" in long
    assert "\\textit{Note.} A note." in long and "landscape" not in long
    long_wide = _demo_table(LANDSCAPE_COLUMNS + 1, LONG_ROWS + 1).to_latex()
    assert long_wide.count("\\begin{landscape}") == long_wide.count("\\end{landscape}") == 1


def test_latex_escape_handles_every_special_character():
    assert latex_escape("a_b & 50% $x# {y} ~^\\") == (
        "a\\_b \\& 50\\% \\$x\\# \\{y\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    )


def test_headers_get_symbols_and_italics():
    assert style_header("sigma2 between", "html") == "σ² between"
    assert style_header("CR2 p (Holm)", "html") == "CR2 <i>p</i> (Holm)"
    assert style_header("df2", "html") == "<i>df</i>2"
    assert style_header("tau2", "tex") == "$\\tau^2$"
    assert style_header("k", "md") == "*k*"


def test_html_page_is_self_contained_and_its_table_can_be_taken_out():
    page = apa_table(OVERALL, "overall", 1).to_html()
    assert "<link" not in page and "<script" not in page and "http" not in page
    fragment = html_fragment(page)
    assert fragment.startswith('<figure class="apa-table" id="table-overall">')
    assert "&lt; .001" in fragment
    assert '<p class="apa-note"><em>Note.</em>' in fragment


def test_apa_table_round_trips_to_dict():
    table = apa_table(OVERALL, "overall", 3)
    d = table.to_dict()
    assert d["number"] == 3 and d["columns"] == list(table.columns)
    assert isinstance(table, ApaTable)


# ------------------------------------------------------------------------------ the step
def test_domain_table_copies_each_domains_model_and_cr2_rows():
    table = domain_overall_table({"social_support": OVERALL}, {"social_support": "Social support"})
    row = table.frame().iloc[0]
    assert row["domain"] == "Social support"
    assert row["estimate"] == OVERALL_ROWS[0]["estimate"]
    assert row["cr2_df"] == OVERALL_ROWS[1]["df"]
    assert row["cr2_ci_lb"] == OVERALL_ROWS[1]["ci_lb"]
    assert row["note"] == ""  # estimable: no note
    at_90 = domain_overall_table({"social_support": OVERALL}, level=0.90)
    assert at_90.columns["cr2_ci_lb"] == "CR2 90% CI lower"


def test_run_tables_writes_every_format_numbered_in_order_and_an_index(tmp_path):
    variance = result_table(
        [
            {"level": "1", "source": "Sampling error", "variance": 0.0211873, "pct": 29.921587},
            {"level": "2 + 3", "source": "Heterogeneity", "variance": 0.0496221, "pct": 70.078413},
        ],
        VARIANCE_HEADERS,
    )
    overall_json = tmp_path / "overall.json"
    tables = {"overall": OVERALL.to_dict(), "variance_distribution": variance.to_dict()}
    overall_json.write_text(
        json.dumps({"analysis": {"model_spec": {"level": 0.95}}, "tables": tables})
    )
    result = run_tables(
        {"overall": overall_json, "variance_distribution": overall_json},
        tmp_path / "apa",
        domain_files={"d1": overall_json},
        domain_labels={"d1": "Domain one"},
    )
    names = ["overall", "overall_domains", "variance_distribution"]
    assert [t.name for t in result.tables] == names
    assert [t.number for t in result.tables] == [1, 2, 3]
    for name in names:
        for ext in ("md", "tex", "html", "docx"):
            assert (tmp_path / "apa" / f"{name}.{ext}").is_file()
    index = json.loads((tmp_path / "apa" / "tables.json").read_text())
    assert [sorted(t["files"]) for t in index["tables"]] == [["docx", "html", "md", "tex"]] * 3
    assert [t["number"] for t in index["tables"]] == [1, 2, 3]
    md = (tmp_path / "apa" / "variance_distribution.md").read_text()
    assert "| 1 | Sampling error | 0.021 | 29.9 |" in md
    assert "| 2 + 3 | Heterogeneity | 0.050 | 70.1 |" in md
    assert (
        "| Domain one | 131 | 30 | 0.42 |" in (tmp_path / "apa" / "overall_domains.md").read_text()
    )


# ------------------------------------------------------------------------------ the measure
def _labels(code: str, direction: str = "positive = more of the outcome"):
    """The measure as effect_sizes_summary.json records it (registry entry plus direction)."""
    from intervention_meta.effect_sizes.measures import get_measure
    from intervention_meta.outputs.labels import measure_labels

    return measure_labels({"measure": {**get_measure(code).to_dict(), "direction": direction}})


def test_overall_table_of_a_log_ratio_shows_the_back_transformed_pooled_estimate():
    """RR = exp(log RR) beside the log-scale estimate, for the pooled rows only; the values are
    exp of the row's estimate, CI and PI (exp(0.4173) = 1.5179, exp(0.3349) = 1.3978, ...)."""
    table = apa_table(OVERALL, "overall", 1, labels=_labels("RR", "below 1 = fewer cases"))
    frame = table.to_frame()
    assert {"RR", "RR 95% CI", "RR 95% PI"} <= set(frame.columns)
    model, robust, variance = frame.to_dict(orient="records")
    e = OVERALL_ROWS[0]
    assert model["RR"] == fmt_est(math.exp(e["estimate"])) == "1.52"
    assert model["RR 95% CI"] == fmt_ci(math.exp(e["ci_lb"]), math.exp(e["ci_ub"]))
    assert model["RR 95% PI"] == fmt_ci(math.exp(e["pi_lb"]), math.exp(e["pi_ub"]))
    assert robust["RR 95% CI"] == fmt_ci(
        math.exp(OVERALL_ROWS[1]["ci_lb"]), math.exp(OVERALL_ROWS[1]["ci_ub"])
    )
    assert variance["RR"] == "" and variance["RR 95% CI"] == ""  # a variance: no back-transform
    assert model["Estimate"] == "0.42"  # the log-scale estimate unchanged
    assert "RR = the pooled log risk ratio and its limits back-transformed" in table.note
    assert "Direction: below 1 = fewer cases" in table.note


def test_fisher_z_is_back_transformed_with_tanh_in_the_domain_table():
    domains = domain_overall_table({"d1": OVERALL}, level=0.95)
    frame = apa_table(domains, "overall_domains", 2, labels=_labels("ZCOR")).to_frame()
    row = frame.iloc[0]
    assert row["z"] == "0.42" and row["r"] == fmt_est(math.tanh(OVERALL_ROWS[0]["estimate"]))
    assert row["r 95% CI"] == fmt_ci(
        math.tanh(OVERALL_ROWS[0]["ci_lb"]), math.tanh(OVERALL_ROWS[0]["ci_ub"])
    )


def test_measures_without_a_back_transform_add_no_columns():
    for code in ("SMD", "MD", "RD"):
        columns = apa_table(OVERALL, "overall", 1, labels=_labels(code)).columns
        assert not any(c.startswith(("RR", "OR", "r ")) for c in columns)
    assert (
        apa_table(OVERALL, "overall", 1).columns
        == apa_table(OVERALL, "overall", 1, labels=_labels("SMD")).columns
    )


def test_effect_columns_are_headed_by_the_measure_and_every_note_gives_the_direction():
    frame = pd.DataFrame(
        {"moderator_label": ["Design"], "category": ["RCT"], "estimate": [0.36], "se": [0.1]}
    )
    assert "g" in apa_table(frame, "moderators", 5).columns  # default: SMD
    table = apa_table(frame, "moderators", 5, labels=_labels("OR", "above 1 = more events"))
    assert "log OR" in table.columns and "g" not in table.columns
    assert table.note.endswith(
        "Effect measure: Log odds ratio (log OR). Direction: above 1 = more events."
    )
    outliers = pd.DataFrame({"effect_size": ["e1"], "study": ["s1"], "yi": [0.2], "vi": [0.01]})
    assert "MD" in apa_table(outliers, "sensitivity_outliers", 9, labels=_labels("MD")).columns
    for name in SPECS:
        note = apa_table(pd.DataFrame(), name, 1, labels=_labels("MD", "negative = shorter")).note
        # about the coders or the studies, not the effects
        if name.startswith("reliability_") or name == "study_characteristics":
            assert "Direction" not in note
        else:
            assert "Direction: negative = shorter." in note, name
            assert "Hedges" not in note and "benefit" not in note


def test_run_tables_reads_the_measure_from_the_effect_size_summary(tmp_path):
    from intervention_meta.effect_sizes.measures import get_measure

    overall_json = tmp_path / "overall.json"
    overall_json.write_text(json.dumps({"tables": {"overall": OVERALL.to_dict()}}))
    summary = tmp_path / "effect_sizes_summary.json"
    measure = {**get_measure("OR").to_dict(), "direction": "above 1 = more relapse"}
    summary.write_text(json.dumps({"computed": 131, "measure": measure}))
    result = run_tables({"overall": overall_json}, tmp_path / "apa", effect_sizes_summary=summary)
    md = (tmp_path / "apa" / "overall.md").read_text()
    assert "| Result | Estimate | *SE* | 95% CI |" in md
    assert "OR 95% CI" in result.tables[0].columns
    assert "above 1 = more relapse" in md
