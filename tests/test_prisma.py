"""PRISMA 2020 (:mod:`intervention_meta.outputs.prisma`, :mod:`intervention_meta.plots.prisma`):
the counts file and its checks, the flow joined with the pipeline's counts, the characteristics
of the included studies and the checklist.

The expected counts of the example are those of ``data/prisma_counts.yaml`` (simulated), summed
by hand in the comments; the pipeline's counts are read from the run's own step summaries. The
item list of the checklist is that of Page et al. (2021), BMJ 372:n71, table 1.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

import intervention_meta.outputs.prisma as prisma
from intervention_meta.data.codebook import load_codebook
from intervention_meta.errors import InputError
from intervention_meta.plots.prisma import prisma_boxes

REPO = Path(__file__).resolve().parents[1]
COUNTS = REPO / "data" / "prisma_counts.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

#: PRISMA 2020 (Page et al. 2021, table 1): 27 items; these have sub-items
SUB_ITEMS = {"10": "ab", "13": "abcdef", "16": "ab", "20": "abcd", "23": "abcd", "24": "abc"}

VALID = {
    "identified": {"databases": {"A": 60, "B": 40}, "registers": 10, "other_sources": 5},
    "removed": {"duplicates": 20, "automation": 0, "other": 5},
    "screened": 90,  # 115 - 25
    "records_excluded": 70,
    "reports_sought": 20,  # 90 - 70
    "reports_not_retrieved": 2,
    "reports_assessed": 18,  # 20 - 2
    "reports_excluded": {"wrong design": 8, "wrong population": 4},
    "studies_included": 5,
    "reports_included": 6,  # 18 - 12
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "counts.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ the counts file
def test_the_example_counts_file_is_read_with_its_sums():
    c = prisma.read_counts(COUNTS)
    # data/prisma_counts.yaml: databases 1184 + 963 + 412 + 287 = 2846, registers 58 + 23 = 81,
    # other sources 47 + 19 = 66; removed 1031 + 0 + 14; reports excluded 41+33+22+15+13 = 124
    assert c.identified == {"databases": 2846, "registers": 81, "other_sources": 66}
    assert c.n_identified == 2993 and c.n_removed == 1045
    assert c.identified_detail["registers"] == {"ClinicalTrials.gov": 58, "ISRCTN registry": 23}
    assert c.screened == 2993 - 1045
    assert c.n_reports_excluded == 124
    assert (c.studies_included, c.reports_included) == (30, 34)
    assert c.to_dict()["n_identified"] == 2993


def test_counts_file_problems_are_all_named_at_once(tmp_path):
    bad = dict(VALID)
    bad["identified"] = {"databases": {"A": 60, "B": -4}, "registers": 10, "websites": 3}
    bad["screened"] = "ninety"
    bad["extra_key"] = 1
    del bad["studies_included"]
    bad["reports_excluded"] = {"wrong design": 8.5}
    path = _write(tmp_path, bad)
    with pytest.raises(InputError) as err:
        prisma.read_counts(path)
    problems = {p.column: p for p in err.value.problems}
    assert set(problems) == {
        "identified.databases.B",
        "identified.websites",
        "screened",
        "extra_key",
        "studies_included",
        "reports_excluded.wrong design",
    }
    assert all(p.file == str(path) for p in problems.values())
    assert problems["screened"].value == "ninety" and "count" in problems["screened"].expected
    assert "other_sources" in problems["identified.websites"].expected
    assert "studies_included" in problems["studies_included"].expected
    lines = path.read_text().splitlines()
    assert lines[problems["screened"].row - 1].startswith("screened:")
    assert lines[problems["extra_key"].row - 1].startswith("extra_key:")


def test_counts_that_do_not_add_up_are_all_named_with_the_expected_sum(tmp_path):
    bad = dict(VALID, screened=91, reports_included=7, studies_included=8)
    path = _write(tmp_path, bad)
    with pytest.raises(InputError) as err:
        prisma.read_counts(path)
    problems = {p.column: p for p in err.value.problems}
    # screened 91, reports_sought 20 = 90 - 70 holds against the given screened? 91 - 70 = 21:
    # the later steps are checked against the counts as given, so reports_sought fails too
    assert set(problems) == {"screened", "reports_sought", "reports_included", "studies_included"}
    assert problems["screened"].expected.endswith("= 90")
    assert "identified (115)" in problems["screened"].expected
    assert problems["reports_sought"].expected.endswith("= 21")
    assert problems["reports_included"].expected.endswith("= 6")
    assert all(p.check == "prisma_arithmetic" for p in problems.values())
    assert prisma.read_counts(_write(tmp_path, VALID)).screened == 90


def test_a_bad_counts_file_stops_the_run_at_start_up(tmp_path):
    from intervention_meta.config import check_references

    path = _write(tmp_path, dict(VALID, screened=91, extra=1))
    config = {
        "codebook": str(REPO / "data" / "codebook.yaml"),
        "data": {"studies": str(REPO / "data/raw/studies.csv")},
        "prisma": {"counts": str(path)},
    }
    with pytest.raises(InputError) as err:
        check_references(config)
    named = {p.column for p in err.value.problems if p.file == str(path)}
    assert named == {"extra", "screened", "reports_sought"}  # the sums too, all at once
    config["prisma"]["counts"] = str(_write(tmp_path, VALID))
    check_references(config)  # a good counts file: no problem


def test_the_start_up_check_of_the_counts_file_imports_no_pandas():
    """Every Snakemake start checks the counts file: that must not cost a pandas import."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from intervention_meta.outputs.prisma import read_counts\n"
        f"read_counts({str(COUNTS)!r})\n"
        "print(sorted(m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ the joined flow
def _pipeline(studies=5, rows=20, dropped=2, not_computable=1, analysed=17, studies_analysed=5):
    clean = {
        "rows_in": rows,
        "kept": rows - dropped,
        "dropped": dropped,
        "dropped_by_reason": {"design not in the criteria": dropped},
        "studies_in": studies,
        "studies_kept": studies,
    }
    es = {"rows_in": rows - dropped, "computed": rows - dropped - not_computable}
    es["dropped"] = not_computable
    overall = {"analysis": {"k": analysed, "n_studies": studies_analysed}}
    return clean, es, overall


def test_the_flow_joins_the_counts_with_the_pipeline_and_checks_every_sum(tmp_path):
    counts = prisma.read_counts(_write(tmp_path, VALID))
    flow = prisma.prisma_flow(counts, *_pipeline())
    assert flow.consistent, [c.to_dict() for c in flow.checks if not c.ok]
    d = flow.to_dict()
    assert d["pipeline"]["effect_sizes_excluded_by_criteria"] == 2
    assert d["pipeline"]["studies_excluded_by_criteria"] == 0
    assert {c["name"] for c in d["checks"]} >= {"screened", "studies_coded", "effect_sizes_coded"}
    # 6 studies coded but 5 included in the review; 18 analysed of 17 computed
    wrong = prisma.prisma_flow(counts, *_pipeline(studies=6, studies_analysed=6, analysed=18))
    assert not wrong.consistent
    assert {c.name for c in wrong.checks if not c.ok} == {"studies_coded", "effect_sizes_analysed"}
    alone = prisma.prisma_flow(None, *_pipeline())
    assert alone.consistent and alone.to_dict()["counts"] is None
    assert "studies_coded" not in {c.name for c in alone.checks}


def test_the_diagram_boxes_show_every_count_of_the_flow(tmp_path):
    flow = prisma.prisma_flow(prisma.read_counts(_write(tmp_path, VALID)), *_pipeline()).to_dict()
    boxes = prisma_boxes(flow)
    text = "\n".join(b.text + "\n" + (b.side or "") for b in boxes).replace("\u00a0", " ")
    for phrase in (
        "Databases (n = 100)",
        "A (n = 60)",
        "Duplicate records (n = 20)",
        "Records screened\n(n = 90)",
        "Records excluded\n(n = 70)",
        "Reports not retrieved\n(n = 2)",
        "Reports excluded (n = 12)",
        "wrong design (n = 8)",
        "Studies included in review (n = 5)",
        "Reports of included studies (n = 6)",
        "design not in the criteria (n = 2)",
        "effect sizes (n = 17) from studies (n = 5)",
    ):
        assert phrase in text, phrase
    assert [b.phase for b in boxes][0] == "Identification"
    assert [b.phase for b in prisma_boxes(prisma.prisma_flow(None, *_pipeline()).to_dict())] == [
        "Included",
        "Analysis",
        "Analysis",
    ]


# ------------------------------------------------------------------------------ characteristics
def test_characteristics_of_another_shape_show_labels_and_counts():
    """A codebook unlike the example's: numeric study keys, no citation, no components, an
    effects-level moderator."""
    cb = load_codebook(REPO / "data" / "examples" / "assink2016" / "codebook.yaml")
    data = pd.DataFrame(
        {
            "study": ["2", "10", "2", "2"],
            "id": ["1", "2", "3", "4"],
            "pubstatus": ["1", "0", "1", "1"],
            "deltype": ["general", "overt", "covert", "general"],
        }
    )
    table = prisma.study_characteristics(data, cb)
    frame = table.frame()
    assert list(frame["study"]) == ["Study 2", "Study 10"]  # natural order of the keys
    assert list(frame["k"]) == [3, 1]
    pub = cb["pubstatus"].levels
    assert list(frame["pubstatus"]) == [pub["1"], pub["0"]]
    assert "components" not in frame.columns  # no components in this codebook
    chosen = prisma.study_characteristics(data, cb, ["deltype", "year", "k"]).frame()
    # study 2 has general, covert, general: its distinct labels in the codebook's order
    assert chosen.loc[0, "deltype"] == "General delinquent behaviour; Covert delinquent behaviour"
    assert chosen.loc[0, "year"] == "" and list(chosen.columns) == ["study", "deltype", "year", "k"]
    with pytest.raises(InputError, match="prisma.characteristics"):
        prisma.study_characteristics(data, cb, ["not_a_variable"])


def test_the_components_column_lists_what_the_components_step_found():
    cb = load_codebook(REPO / "data" / "codebook.yaml")
    step = {
        "tables": {
            "study_effects": {
                "columns": {
                    "study": "Study",
                    "component.joint_effort": "x",
                    "component.co_production": "y",
                },
                "rows": [
                    {
                        "study": "S1",
                        "component.joint_effort": "yes",
                        "component.co_production": "yes",
                    },
                    {
                        "study": "S2",
                        "component.joint_effort": "no",
                        "component.co_production": "no",
                    },
                ],
            }
        }
    }
    has = prisma.components_by_study(step)
    assert has == {"S1": ["joint_effort", "co_production"], "S2": []}
    data = pd.DataFrame({"study_id": ["S1", "S2", "S2"], "es_id": ["a", "b", "c"]})
    frame = prisma.study_characteristics(data, cb, ["components", "k"], components=has).frame()
    both = f"{cb.label('joint_effort')}; {cb.label('co_production')}"
    assert list(frame["components"]) == [both, "none"] and list(frame["k"]) == [1, 2]


def test_participants_are_the_largest_sample_of_the_study_effect_sizes():
    """Per effect size the groups together, else n_total, else the four cells of a 2x2 table (as
    the GRADE summary counts them); per study the largest; a study without any is left empty."""
    cb = load_codebook(REPO / "data" / "codebook.yaml")
    data = pd.DataFrame(
        {
            "study_id": ["S1", "S1", "S2", "S3"],
            "es_id": ["a", "b", "c", "d"],
            "n_int": [50, None, None, None],
            "n_ctl": [40, None, None, None],
            "n_total": [None, 120, None, None],
            "events_int": [None, None, 10, None],
            "nonevents_int": [None, None, 20, None],
            "events_ctl": [None, None, 5, None],
            "nonevents_ctl": [None, None, 25, None],
        }
    )
    frame = prisma.study_characteristics(data, cb, ["k", "n"]).frame()
    assert frame["n"].iloc[:2].tolist() == [120, 60] and pd.isna(frame["n"].iloc[2])
    assert "n" in prisma.characteristic_columns(cb)


# ------------------------------------------------------------------------------ the checklist
def test_the_checklist_has_every_item_and_sub_item_of_prisma_2020():
    numbers = [i.item for i in prisma.checklist_items()]
    expected = []
    for n in range(1, 28):
        expected += [f"{n}{s}" for s in SUB_ITEMS[str(n)]] if str(n) in SUB_ITEMS else [str(n)]
    assert numbers == expected
    assert all(i.text and i.topic and i.section for i in prisma.checklist_items())


def test_the_checklist_maps_every_item_to_a_section_a_text_or_says_not_reported():
    sections = {"methods": "Methods", "data-flow": "Data flow", "included-studies": "Included"}
    rows = prisma.checklist(sections, {"registration": "PROSPERO CRD000", "16b": "not applicable"})
    by = {r.item.item: r for r in rows}
    assert len(rows) == len(prisma.checklist_items())
    assert all(r.status in prisma.STATUSES for r in rows)
    assert by["24a"].status == "text" and by["24a"].text == "PROSPERO CRD000"
    assert by["16b"].status == "not applicable"
    assert by["16a"].status == "report" and by["16a"].sections == {"data-flow": "Data flow"}
    assert by["13b"].sections == {"methods": "Methods", "data-flow": "Data flow"}
    assert by["19"].status == "not reported"  # the report given here has no overall section
    for row in rows:  # a section is linked only where the report has it
        assert set(row.sections) <= set(sections)
        assert (row.status == "not reported") == (not row.sections and not row.text)
    with pytest.raises(InputError) as err:
        prisma.checklist(sections, {"registratoin": "x", "28": "y"})
    assert {p.column for p in err.value.problems} == {
        "prisma.checklist.registratoin",
        "prisma.checklist.28",
    }


def test_the_config_schema_names_every_checklist_key():
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    listed = schema["properties"]["prisma"]["properties"]["checklist"]["properties"]
    assert set(listed) == {i.key for i in prisma.checklist_items() if i.key}
    pattern = next(
        iter(schema["properties"]["prisma"]["properties"]["checklist"]["patternProperties"])
    )
    assert all(re.fullmatch(pattern, i.item) for i in prisma.checklist_items())


# ------------------------------------------------------------------------------ the real runs
def test_the_example_flow_adds_up_and_joins_the_counts_file(example_run):
    res = example_run.results
    flow = _json(res / "prisma" / "flow.json")
    assert flow["consistent"] and all(c["ok"] for c in flow["checks"])
    c, p = flow["counts"], flow["pipeline"]
    assert c["n_identified"] - c["n_removed"] == c["screened"]
    assert c["screened"] - c["records_excluded"] == c["reports_sought"]
    assert c["reports_sought"] - c["reports_not_retrieved"] == c["reports_assessed"]
    assert c["reports_assessed"] - sum(c["reports_excluded"].values()) == c["reports_included"]
    studies = pd.read_csv(example_run.work / "data" / "raw" / "studies.csv")
    assert c["studies_included"] == p["studies_coded"] == len(studies)
    clean = _json(res / "clean" / "summary.json")
    es = _json(res / "effect_sizes_summary.json")
    analysis = _json(res / "models" / "overall.json")["analysis"]
    assert p["effect_sizes_coded"] == clean["rows_in"] == clean["kept"] + clean["dropped"]
    assert p["effect_sizes_after_criteria"] == es["computed"] + es["dropped"]
    assert (p["effect_sizes_analysed"], p["studies_analysed"]) == (
        analysis["k"],
        analysis["n_studies"],
    )


def test_the_diagram_is_in_the_manifest_and_the_report(example_run):
    res = example_run.results
    manifest = _json(res / "figures" / "figures.json")
    entry = next(f for f in manifest["figures"] if f["stem"] == "prisma")
    assert entry["section"] == "data" and entry["details"]["consistent"]
    for key in ("png", "pdf"):
        assert (example_run.work / entry[key]).stat().st_size > 0
    assert "data/prisma_counts.yaml" in entry["caption"]
    doc = (res / "report.html").read_text(encoding="utf-8")
    data_flow = doc.split('<h2 id="data-flow">', 1)[1].split("<h2 id=", 1)[0]
    assert 'id="figure-prisma"' in data_flow


def test_the_characteristics_table_has_one_row_per_included_study_with_labels(example_run):
    res = example_run.results
    data = _json(res / "prisma" / "characteristics.json")
    table = data["tables"]["study_characteristics"]
    es = pd.read_csv(res / "effect_sizes.csv", dtype=str)
    assert data["study_keys"] == sorted(es["study_id"].unique())
    assert len(table["rows"]) == es["study_id"].nunique()
    cb = load_codebook(example_run.work / "data" / "codebook.yaml")
    assert table["columns"]["design"] == cb.label("design")
    first = es[es["study_id"] == data["study_keys"][0]]
    row = table["rows"][0]
    assert row["design"] == cb.level_label("design", first["design"].iloc[0])
    assert row["k"] == len(first)
    assert row["design"] not in cb["design"].levels  # a label, not a code
    apa = json.loads((res / "tables" / "apa" / "tables.json").read_text())["tables"]
    entry = next(t for t in apa if t["name"] == "study_characteristics")
    assert entry["n_rows"] == len(table["rows"])
    md = (res / "tables" / "apa" / "study_characteristics.md").read_text(encoding="utf-8")
    assert f"| {row['study']} | {row['country']} | {row['design']} |" in md
    assert "\\toprule" in (res / "tables" / "apa" / "study_characteristics.tex").read_text()
    doc = (res / "report.html").read_text(encoding="utf-8")
    included = doc.split('<h2 id="included-studies">', 1)[1].split("<h2 id=", 1)[0]
    assert 'id="table-study_characteristics"' in included
    assert "Every step of the flow adds up." in included


def test_the_report_checklist_maps_every_item(example_run):
    doc = (example_run.results / "report.html").read_text(encoding="utf-8")
    part = doc.split('<h2 id="prisma-checklist">', 1)[1].split("<h2 id=", 1)[0]
    rows = re.findall(r"<tr class=\"prisma-([a-z-]+)\"><td>[^<]*</td><td>([0-9a-f]+)</td>", part)
    assert [item for _, item in rows] == [i.item for i in prisma.checklist_items()]
    assert {status for status, _ in rows} <= {s.replace(" ", "-") for s in prisma.STATUSES}
    assert "Not registered: the example review is simulated." in part
    assert '<a href="#included-studies">' in part


def test_a_config_without_prisma_still_gets_the_flow_the_table_and_the_checklist(assink_run):
    res = assink_run.results
    flow = _json(res / "prisma" / "flow.json")
    assert flow["counts"] is None and flow["consistent"]
    manifest = _json(res / "figures" / "figures.json")
    entry = next(f for f in manifest["figures"] if f["stem"] == "prisma")
    assert "no counts file" in entry["caption"]
    table = _json(res / "prisma" / "characteristics.json")["tables"]["study_characteristics"]
    assert len(table["rows"]) == flow["pipeline"]["studies_analysed"]
    assert "components" not in table["columns"]
    doc = (res / "report.html").read_text(encoding="utf-8")
    assert "No PRISMA counts file" in doc
    assert '<h2 id="prisma-checklist">' in doc
