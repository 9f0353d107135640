"""The HTML report of an analysis: one self-contained file a reviewer can open offline.

:func:`build_report` assembles the report from what the analysis steps wrote &mdash; the model JSON
files (numbers read by their machine keys, never from a CSV header or a note; ``docs/results.md``),
the step summaries, the APA tables of :mod:`intervention_meta.outputs.tables`, the figures listed
in the figures manifest and the warnings file &mdash; together with the configuration and the
:mod:`~intervention_meta.outputs.provenance` of the run. It computes no statistic: every number it
shows is a value of those files, rounded for reading with the formatters of :mod:`.tables`; the
confidence level it states is the one the steps used (``models.level``).

The file needs nothing beside it: the CSS is inline, the figures are embedded as base64
``data:`` URIs (downscaled to :data:`EMBED_WIDTH` pixels, with links to the full-resolution PNG,
PDF and SVG files beside the report), there is no script. Its sections (each an ``<h2>`` with an
``id``) are :data:`SECTIONS`. A section, or a part of one, that does not apply to the data set
(no moderators, no intervention components, no multiple-moderator model, no per-domain analyses,
no second coder) is one line saying why (``p.not-applicable``), never an empty table; the steps'
JSON says so (``applicable: false`` with the ``reason``).

The Methods section is written from the configuration and the model JSON (the model actually
fitted, its estimator and tests, the conversions and defaults the effect-size step used, the
inclusion criteria, the moderator, bias and sensitivity options), and cites what it uses; the
reference list holds exactly the works cited in the text or named in a figure caption.

Two optional keys of the config's ``report`` section are used: ``title`` (default "Meta-analysis
report: <analysis>") and ``notice``, a sentence shown at the top of the summary (e.g. that the
data are simulated).
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from intervention_meta.analyses.records import read_tables
from intervention_meta.data.risk_of_bias import TOOLS
from intervention_meta.io import read_json
from intervention_meta.outputs.central_answer import central_answer, profile_rule
from intervention_meta.outputs.labels import MeasureLabels, measure_labels
from intervention_meta.outputs.provenance import Provenance
from intervention_meta.outputs.tables import (
    APA_CSS,
    fmt_ci,
    fmt_count,
    fmt_df,
    fmt_est,
    fmt_p,
    fmt_pct,
    fmt_r,
    html_fragment,
)

log = logging.getLogger(__name__)

#: the report's sections in order: id -> heading
SECTIONS: dict[str, str] = {
    "summary": "Summary",
    "methods": "Methods",
    "data-flow": "Data flow",
    "included-studies": "Included studies",
    "risk-of-bias": "Risk of bias",
    "overall": "Overall effect",
    "moderators": "Moderators",
    "components": "Components",
    "publication-bias": "Publication bias",
    "selection-model": "Selection model",
    "sensitivity": "Sensitivity",
    "multiverse": "Multiverse",
    "certainty": "Certainty of evidence (GRADE)",
    "reliability": "Inter-rater reliability",
    "other-figures": "Other figures",
    "prisma-checklist": "PRISMA 2020 checklist",
    "warnings": "Warnings",
    "provenance": "Provenance",
}

#: figures manifest section -> report section id
FIGURE_SECTIONS = {
    "data": "data-flow",
    "risk_of_bias": "risk-of-bias",
    "overall": "overall",
    "moderators": "moderators",
    "components": "components",
    "bias": "publication-bias",
    "selection": "selection-model",
    "sensitivity": "sensitivity",
    "reliability": "reliability",
}

#: tables longer than this are folded (``<details>``) in the report
FOLD_ROWS = 40

esc = html.escape

# --------------------------------------------------------------------------- references
REFERENCES: dict[str, tuple[str, str]] = {
    "assink2016": (
        "Assink & Wibbelink, 2016",
        "Assink, M., & Wibbelink, C. J. M. (2016). Fitting three-level meta-analytic models in R: "
        "A step-by-step tutorial. <i>The Quantitative Methods for Psychology, 12</i>(3), 154-174. "
        "doi:10.20982/tqmp.12.3.p154",
    ),
    "begg1994": (
        "Begg & Mazumdar, 1994",
        "Begg, C. B., & Mazumdar, M. (1994). Operating characteristics of a rank correlation test "
        "for publication bias. <i>Biometrics, 50</i>(4), 1088-1101. doi:10.2307/2533446",
    ),
    "borenstein2009": (
        "Borenstein et al., 2009",
        "Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009). "
        "<i>Introduction to meta-analysis</i>. Wiley. doi:10.1002/9780470743386",
    ),
    "cheung2014": (
        "Cheung, 2014",
        "Cheung, M. W.-L. (2014). Modeling dependent effect sizes with three-level "
        "meta-analyses: A structural equation modeling approach. <i>Psychological Methods, "
        "19</i>(2), 211-229. doi:10.1037/a0032968",
    ),
    "cohen1988": (
        "Cohen, 1988",
        "Cohen, J. (1988). <i>Statistical power analysis for the behavioral sciences</i> (2nd "
        "ed.). Erlbaum.",
    ),
    "cohen1960": (
        "Cohen, 1960",
        "Cohen, J. (1960). A coefficient of agreement for nominal scales. <i>Educational and "
        "Psychological Measurement, 20</i>(1), 37-46. doi:10.1177/001316446002000104",
    ),
    "duval2000": (
        "Duval & Tweedie, 2000",
        "Duval, S., & Tweedie, R. (2000). Trim and fill: A simple funnel-plot-based method of "
        "testing and adjusting for publication bias in meta-analysis. <i>Biometrics, 56</i>(2), "
        "455-463. doi:10.1111/j.0006-341X.2000.00455.x",
    ),
    "egger1997": (
        "Egger et al., 1997",
        "Egger, M., Davey Smith, G., Schneider, M., & Minder, C. (1997). Bias in meta-analysis "
        "detected by a simple, graphical test. <i>BMJ, 315</i>(7109), 629-634. "
        "doi:10.1136/bmj.315.7109.629",
    ),
    "guyatt2011": (
        "Guyatt et al., 2011",
        "Guyatt, G. H., Oxman, A. D., Akl, E. A., Kunz, R., Vist, G., Brozek, J., ... "
        "Schünemann, H. J. (2011). GRADE guidelines: 1. Introduction&mdash;GRADE evidence "
        "profiles and summary of findings tables. <i>Journal of Clinical Epidemiology, 64</i>(4), "
        "383-394. doi:10.1016/j.jclinepi.2010.04.026",
    ),
    "hasselblad1995": (
        "Hasselblad & Hedges, 1995",
        "Hasselblad, V., & Hedges, L. V. (1995). Meta-analysis of screening and diagnostic tests. "
        "<i>Psychological Bulletin, 117</i>(1), 167-178. doi:10.1037/0033-2909.117.1.167",
    ),
    "hedges1981": (
        "Hedges, 1981",
        "Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and "
        "related estimators. <i>Journal of Educational Statistics, 6</i>(2), 107-128. "
        "doi:10.3102/10769986006002107",
    ),
    "higgins2002": (
        "Higgins & Thompson, 2002",
        "Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a "
        "meta-analysis. <i>Statistics in Medicine, 21</i>(11), 1539-1558. doi:10.1002/sim.1186",
    ),
    "higgins2023": (
        "Higgins et al., 2023",
        "Higgins, J. P. T., Thomas, J., Chandler, J., Cumpston, M., Li, T., Page, M. J., & Welch, "
        "V. A. (Eds.). (2023). <i>Cochrane handbook for systematic reviews of interventions</i> "
        "(version 6.4). Cochrane.",
    ),
    "holm1979": (
        "Holm, 1979",
        "Holm, S. (1979). A simple sequentially rejective multiple test procedure. "
        "<i>Scandinavian Journal of Statistics, 6</i>(2), 65-70.",
    ),
    "krippendorff2011": (
        "Krippendorff, 2011",
        "Krippendorff, K. (2011). <i>Computing Krippendorff's alpha-reliability</i>. Annenberg "
        "School for Communication, University of Pennsylvania.",
    ),
    "molder2021": (
        "Mölder et al., 2021",
        "Mölder, F., Jablonski, K. P., Letcher, B., Hall, M. B., Tomkins-Tinch, C. H., Sochat, "
        "V., Forster, J., Lee, S., Twardziok, S. O., Kanitz, A., Wilm, A., Holtgrewe, M., "
        "Rahmann, S., Nahnsen, S., & Köster, J. (2021). Sustainable data analysis with Snakemake. "
        "<i>F1000Research, 10</i>, 33. doi:10.12688/f1000research.29032.2",
    ),
    "morris2008": (
        "Morris, 2008",
        "Morris, S. B. (2008). Estimating effect sizes from pretest-posttest-control group "
        "designs. <i>Organizational Research Methods, 11</i>(2), 364-386. "
        "doi:10.1177/1094428106291059",
    ),
    "hunter1990": (
        "Hunter & Schmidt, 1990",
        "Hunter, J. E., & Schmidt, F. L. (1990). <i>Methods of meta-analysis: Correcting error and "
        "bias in research findings</i>. Sage.",
    ),
    "nakagawa2021": (
        "Nakagawa et al., 2021",
        "Nakagawa, S., Lagisz, M., O'Dea, R. E., Rutkowska, J., Yang, Y., Noble, D. W. A., & "
        "Senior, A. M. (2021). The orchard plot: Cultivating a forest plot for use in ecology, "
        "evolution, and beyond. <i>Research Synthesis Methods, 12</i>(1), 4-12. "
        "doi:10.1002/jrsm.1424",
    ),
    "nakagawa2022": (
        "Nakagawa et al., 2022",
        "Nakagawa, S., Lagisz, M., Jennions, M. D., Koricheva, J., Noble, D. W. A., Parker, T. H., "
        "Sánchez-Tójar, A., Yang, Y., & O'Dea, R. E. (2022). Methods for testing publication bias "
        "in ecological and evolutionary meta-analyses. <i>Methods in Ecology and Evolution, "
        "13</i>(1), 4-21. doi:10.1111/2041-210X.13724",
    ),
    "orwin1983": (
        "Orwin, 1983",
        "Orwin, R. G. (1983). A fail-safe N for effect size in meta-analysis. <i>Journal of "
        "Educational Statistics, 8</i>(2), 157-159. doi:10.3102/10769986008002157",
    ),
    "page2021": (
        "Page et al., 2021",
        "Page, M. J., McKenzie, J. E., Bossuyt, P. M., Boutron, I., Hoffmann, T. C., "
        "Mulrow, C. D., et al. (2021). The PRISMA 2020 statement: An updated guideline for "
        "reporting systematic reviews. <i>BMJ, 372</i>, n71. doi:10.1136/bmj.n71",
    ),
    "peters2008": (
        "Peters et al., 2008",
        "Peters, J. L., Sutton, A. J., Jones, D. R., Abrams, K. R., & Rushton, L. (2008). "
        "Contour-enhanced meta-analysis funnel plots help distinguish publication bias from other "
        "causes of asymmetry. <i>Journal of Clinical Epidemiology, 61</i>(10), 991-996. "
        "doi:10.1016/j.jclinepi.2007.11.010",
    ),
    "pustejovsky2018": (
        "Pustejovsky & Tipton, 2018",
        "Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust "
        "variance estimation and hypothesis testing in fixed effects models. <i>Journal of "
        "Business &amp; Economic Statistics, 36</i>(4), 672-683. "
        "doi:10.1080/07350015.2016.1247004",
    ),
    "pustejovsky2022": (
        "Pustejovsky & Tipton, 2022",
        "Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance estimation: "
        "Expanding the range of working models. <i>Prevention Science, 23</i>(3), 425-438. "
        "doi:10.1007/s11121-021-01246-3",
    ),
    "vevea1995": (
        "Vevea & Hedges, 1995",
        "Vevea, J. L., & Hedges, L. V. (1995). A general linear model for estimating effect size "
        "in the presence of publication bias. <i>Psychometrika, 60</i>(3), 419&ndash;435.",
    ),
    "joshi2022": (
        "Joshi, Pustejovsky & Beretvas, 2022",
        "Joshi, M., Pustejovsky, J. E., & Beretvas, S. N. (2022). Cluster wild bootstrapping to "
        "handle dependent effect sizes in meta-analysis with a small number of studies. "
        "<i>Research Synthesis Methods, 13</i>(4), 457&ndash;477.",
    ),
    "stanley2017": (
        "Stanley, 2017",
        "Stanley, T. D. (2017). Limitations of PET-PEESE and other meta-analysis methods. "
        "<i>Social Psychological and Personality Science, 8</i>(5), 581&ndash;591.",
    ),
    "pustejovsky2025": (
        "Pustejovsky, Citkowicz & Joshi, 2025",
        "Pustejovsky, J. E., Citkowicz, M., & Joshi, M. (2025). Estimation and inference for "
        "step-function selection models in meta-analysis with dependent effects. "
        "<i>Psychological Methods</i>.",
    ),
    "pustejovsky2019": (
        "Pustejovsky & Rodgers, 2019",
        "Pustejovsky, J. E., & Rodgers, M. A. (2019). Testing for funnel plot asymmetry of "
        "standardized mean differences. <i>Research Synthesis Methods, 10</i>(1), 57&ndash;71.",
    ),
    "rodgers2021": (
        "Rodgers & Pustejovsky, 2021",
        "Rodgers, M. A., & Pustejovsky, J. E. (2021). Evaluating meta-analytic methods to detect "
        "selective reporting in the presence of dependent effect sizes. <i>Psychological "
        "Methods, 26</i>(2), 141-160. doi:10.1037/met0000300",
    ),
    "rosenthal1979": (
        "Rosenthal, 1979",
        "Rosenthal, R. (1979). The file drawer problem and tolerance for null results. "
        "<i>Psychological Bulletin, 86</i>(3), 638-641. doi:10.1037/0033-2909.86.3.638",
    ),
    "schunemann2013": (
        "Schünemann et al., 2013",
        "Schünemann, H., Brożek, J., Guyatt, G., & Oxman, A. (Eds.). (2013). <i>GRADE handbook "
        "for grading quality of evidence and strength of recommendations</i>. The GRADE Working "
        "Group.",
    ),
    "self1987": (
        "Self & Liang, 1987",
        "Self, S. G., & Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood "
        "estimators and likelihood ratio tests under nonstandard conditions. <i>Journal of the "
        "American Statistical Association, 82</i>(398), 605-610. doi:10.2307/2289471",
    ),
    "shrout1979": (
        "Shrout & Fleiss, 1979",
        "Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: Uses in assessing rater "
        "reliability. <i>Psychological Bulletin, 86</i>(2), 420-428. "
        "doi:10.1037/0033-2909.86.2.420",
    ),
    "simonsohn2020": (
        "Simonsohn et al., 2020",
        "Simonsohn, U., Simmons, J. P., & Nelson, L. D. (2020). Specification curve analysis. "
        "<i>Nature Human Behaviour, 4</i>(11), 1208-1214. doi:10.1038/s41562-020-0912-z",
    ),
    "stanley2014": (
        "Stanley & Doucouliagos, 2014",
        "Stanley, T. D., & Doucouliagos, H. (2014). Meta-regression approximations to reduce "
        "publication selection bias. <i>Research Synthesis Methods, 5</i>(1), 60-78. "
        "doi:10.1002/jrsm.1095",
    ),
    "voracek2019": (
        "Voracek et al., 2019",
        "Voracek, M., Kossmeier, M., & Tran, U. S. (2019). Which data to meta-analyze, and how? "
        "A specification-curve and multiverse-analysis approach to meta-analysis. <i>Zeitschrift "
        "f\u00fcr Psychologie, 227</i>(1), 64-82. doi:10.1027/2151-2604/a000357",
    ),
    "tipton2015": (
        "Tipton, 2015",
        "Tipton, E. (2015). Small sample adjustments for robust variance estimation with "
        "meta-regression. <i>Psychological Methods, 20</i>(3), 375-393. doi:10.1037/met0000011",
    ),
    "tipton2015b": (
        "Tipton & Pustejovsky, 2015",
        "Tipton, E., & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of moderators "
        "and model fit using robust variance estimation in meta-regression. <i>Journal of "
        "Educational and Behavioral Statistics, 40</i>(6), 604-634. doi:10.3102/1076998615606099",
    ),
    "viechtbauer2005": (
        "Viechtbauer, 2005",
        "Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in the "
        "random-effects model. <i>Journal of Educational and Behavioral Statistics, 30</i>(3), "
        "261-293. doi:10.3102/10769986030003261",
    ),
    "viechtbauer2010": (
        "Viechtbauer, 2010",
        "Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. "
        "<i>Journal of Statistical Software, 36</i>(3), 1-48. doi:10.18637/jss.v036.i03",
    ),
    "viechtbauer2010b": (
        "Viechtbauer & Cheung, 2010",
        "Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics for "
        "meta-analysis. <i>Research Synthesis Methods, 1</i>(2), 112-125. doi:10.1002/jrsm.11",
    ),
}


class _Citations:
    """Collects the references the text cites, for the reference list."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __call__(self, *keys: str) -> str:
        for key in keys:
            if key not in REFERENCES:
                raise KeyError(f"no reference {key!r}")
            if key not in self.used:
                self.used.append(key)
        return "(" + "; ".join(esc(REFERENCES[k][0]) for k in keys) + ")"

    def narrative(self, key: str) -> str:
        """``Morris (2008)`` for a citation in the running text."""
        self(key)
        authors, year = REFERENCES[key][0].rsplit(", ", 1)
        return f"{esc(authors.replace(' & ', ' and '))} ({year})"

    def scan(self, text: str) -> None:
        """Cite the references that ``text`` (a figure caption) names, e.g. "Cheung 2014"."""
        for key, (short, _) in REFERENCES.items():
            if short.replace(", ", " ") in text or short in text:
                self(key)

    def html(self) -> str:
        items = sorted(
            (REFERENCES[k][1].replace(" & ", " &amp; ") for k in self.used),
            key=lambda s: s.lower(),
        )
        return '<ul class="references">' + "".join(f"<li>{r}</li>" for r in items) + "</ul>"


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ReportInputs:
    """The files the report is made from (paths; optional ones may be None).

    Attributes
    ----------
    tables_index : ``tables/apa/tables.json`` of the tables step
    overall, moderators, components, bias, sensitivity : the steps' model JSON
    clean_summary, effect_sizes_summary : the step summaries (JSON)
    clean_dropped, effect_sizes_dropped : the dropped rows with their reasons (CSV)
    validation : ``validation/passed.txt`` (``report.csv`` beside it is read when present)
    warnings : ``warnings.txt``
    figures_manifest : the figures step's ``figures.json`` (None: no figures yet)
    reliability : ``reliability/agreement.json`` (None: no second coder)
    grade : ``models/grade.json``, the GRADE summary of findings (None: not made)
    prisma_flow : ``prisma/flow.json`` of the figures step (None: not written)
    multiverse : ``models/multiverse.json`` of the multiverse step (None: no multiverse)
    """

    tables_index: str
    overall: str
    clean_summary: str
    effect_sizes_summary: str
    warnings: str
    moderators: str | None = None
    components: str | None = None
    bias: str | None = None
    sensitivity: str | None = None
    clean_dropped: str | None = None
    effect_sizes_dropped: str | None = None
    validation: str | None = None
    figures_manifest: str | None = None
    reliability: str | None = None
    grade: str | None = None
    prisma_flow: str | None = None
    multiverse: str | None = None


def _summary_table(sensitivity: str | Path | None) -> pd.DataFrame:
    """The table ``summary`` of ``models/sensitivity.json`` (machine keys; empty if none)."""
    if not sensitivity or not Path(sensitivity).is_file():
        return pd.DataFrame()
    table = read_tables(read_json(sensitivity)).get("summary")
    return table.frame() if table is not None else pd.DataFrame()


def _csv(path: str | Path | None) -> pd.DataFrame:
    if not path or not Path(path).is_file():
        return pd.DataFrame()
    return pd.read_csv(path, dtype=str)


@dataclass(frozen=True)
class Figure:
    """One figure of the manifest, with a downscaled copy of its PNG embedded and links to its
    full-resolution files (``links``: format -> path relative to the report's folder)."""

    stem: str
    title: str
    caption: str
    section: str
    png: str
    data_uri: str
    links: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "stem": self.stem,
            "title": self.title,
            "caption": self.caption,
            "section": self.section,
            "png": self.png,
            "links": dict(self.links),
        }


#: the widest image embedded in the report (pixels: the width of its figure column); the files
#: linked are full resolution
EMBED_WIDTH = 800
#: the palette of an embedded image: 96 colours keep the flat colours, grey bands and
#: anti-aliased text of the figures (looked at), at 0.83 of the bytes of 256
EMBED_COLOURS = 96


def embedded_image(png: str | Path, max_width: int = EMBED_WIDTH) -> str:
    """A ``data:`` URI of ``png`` at most ``max_width`` pixels wide, for embedding.

    The image is downscaled (Lanczos) and reduced to a palette of :data:`EMBED_COLOURS`, which
    figures of flat colours and text keep without visible loss (median cut: the fast octree
    merges light grey bands into white), then written as PNG (zlib's default level; the
    optimiser's search costs a third of the time for 2% of the bytes): a tenth of the bytes of
    the 200-dpi file, sharp at the report's 800-pixel figure width.
    """
    import io

    from PIL import Image

    with Image.open(png) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            height = round(im.height * max_width / im.width)
            im = im.resize((max_width, height), Image.Resampling.LANCZOS)
        small = im.quantize(
            colors=EMBED_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        buffer = io.BytesIO()
        small.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


def _resolve(path: str, base: Path) -> Path:
    p = Path(path)
    if p.is_absolute() or p.is_file():
        return p
    return base / p


def load_figures(
    manifest: str | Path | None, report_dir: str | Path | None = None, *, workers: int = 1
) -> list[Figure]:
    """The figures of a manifest, each with a downscaled copy of its PNG as a base64 ``data:``
    URI (:func:`embedded_image`) and links to its full-resolution PNG, PDF and SVG.

    The manifest is a list of figures or ``{"figures": [...]}``; each figure has ``stem``,
    ``png``, ``title``, ``caption`` and ``section`` (``pdf`` and ``svg`` optional). A path is
    taken as given (relative to the working directory) or, failing that, relative to the
    manifest's folder. The links are relative to ``report_dir`` (default: the folder above the
    manifest's, where the report step writes the report).
    """
    import os

    if not manifest or not Path(manifest).is_file():
        return []
    data = read_json(manifest)
    entries = data.get("figures", []) if isinstance(data, Mapping) else data
    base = Path(manifest).parent
    where = Path(report_dir) if report_dir is not None else base.parent
    pngs = [_resolve(str(entry["png"]), base) for entry in entries]
    # Pillow releases the GIL while it resizes, quantizes and compresses: threads share the work
    with ThreadPoolExecutor(max(1, int(workers))) as pool:
        uris = list(pool.map(embedded_image, pngs))
    out = []
    for entry, png, uri in zip(entries, pngs, uris, strict=True):
        links = []
        for fmt in ("png", "pdf", "svg"):
            if entry.get(fmt):
                path = _resolve(str(entry[fmt]), base)
                if path.is_file():
                    rel = os.path.relpath(path.resolve(), where.resolve())
                    links.append((fmt.upper(), Path(rel).as_posix()))
        out.append(
            Figure(
                stem=str(entry.get("stem", png.stem)),
                title=str(entry.get("title", "")),
                caption=str(entry.get("caption", "")),
                section=str(entry.get("section", "")),
                png=str(entry["png"]),
                data_uri=uri,
                links=tuple(links),
            )
        )
    return out


@dataclass(frozen=True)
class TableRef:
    """One APA table of the tables step, as an HTML fragment."""

    name: str
    number: int
    title: str
    n_rows: int
    fragment: str


def load_tables(index: str | Path) -> dict[str, TableRef]:
    """The APA tables listed in ``tables.json`` (name -> table), with their HTML fragments."""
    data = read_json(index)
    base = Path(index).parent
    out = {}
    for entry in data.get("tables", []):
        page = _resolve(entry["files"]["html"], base)
        if not page.is_file():
            page = base / Path(entry["files"]["html"]).name
        out[entry["name"]] = TableRef(
            name=entry["name"],
            number=int(entry["number"]),
            title=entry["title"],
            n_rows=int(entry.get("n_rows", 0)),
            fragment=html_fragment(page.read_text(encoding="utf-8")),
        )
    return out


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, read from the analysis outputs."""

    config: dict
    overall: dict
    clean: dict
    effect_sizes: dict
    moderators: dict
    components: dict
    bias: dict
    sensitivity: dict
    reliability: dict
    warnings: tuple[str, ...]
    validation_text: str
    validation_problems: pd.DataFrame
    clean_dropped: pd.DataFrame
    effect_sizes_dropped: pd.DataFrame
    sensitivity_summary: pd.DataFrame
    tables: dict[str, TableRef]
    figures: tuple[Figure, ...]
    grade: dict = field(default_factory=dict)
    prisma_flow: dict = field(default_factory=dict)
    multiverse: dict = field(default_factory=dict)
    multiverse_dir: str = ""


def load_report_data(
    inputs: ReportInputs, config: Mapping[str, Any], *, workers: int = 1
) -> ReportData:
    """Read every file of ``inputs`` (the figures' images downscaled by ``workers`` threads)."""
    validation_text, problems = "", pd.DataFrame()
    if inputs.validation and Path(inputs.validation).is_file():
        validation_text = Path(inputs.validation).read_text(encoding="utf-8").strip()
        problems = _csv(Path(inputs.validation).with_name("report.csv"))
    warnings = ()
    if Path(inputs.warnings).is_file():
        lines = Path(inputs.warnings).read_text(encoding="utf-8").splitlines()
        warnings = tuple(line for line in lines if line.strip())
    return ReportData(
        config=dict(config),
        overall=read_json(inputs.overall),
        clean=read_json(inputs.clean_summary),
        effect_sizes=read_json(inputs.effect_sizes_summary),
        moderators=read_json(inputs.moderators),
        components=read_json(inputs.components),
        bias=read_json(inputs.bias),
        sensitivity=read_json(inputs.sensitivity),
        reliability=read_json(inputs.reliability),
        warnings=warnings,
        validation_text=validation_text,
        validation_problems=problems,
        clean_dropped=_csv(inputs.clean_dropped),
        effect_sizes_dropped=_csv(inputs.effect_sizes_dropped),
        sensitivity_summary=_summary_table(inputs.sensitivity),
        tables=load_tables(inputs.tables_index),
        figures=tuple(load_figures(inputs.figures_manifest, workers=workers)),
        grade=read_json(inputs.grade),
        prisma_flow=read_json(inputs.prisma_flow),
        multiverse=read_json(inputs.multiverse),
        multiverse_dir=str(Path(inputs.multiverse).parent) if inputs.multiverse else "",
    )


# --------------------------------------------------------------------------- helpers
def _get(data: Any, *keys: Any, default: Any = None) -> Any:
    for key in keys:
        if isinstance(data, Mapping) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return default
    return default if data is None else data


def _p(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{text}</p>"


def _i(text: str) -> str:
    return f"<i>{text}</i>"


def _g_ci(values: Mapping[str, Any] | pd.Series, labels: MeasureLabels, level: str = "") -> str:
    """``g = 0.42, 95% CI [0.21, 0.63]`` (the measure's symbol) from the ``estimate``, ``ci_lb``
    and ``ci_ub`` of ``values`` (``level``: the text before "CI")."""
    return (
        f"{labels.symbol_html()} = {fmt_est(values.get('estimate'))}, "
        f"{level}CI {fmt_ci(values.get('ci_lb'), values.get('ci_ub'))}"
    )


def _back_text(labels: MeasureLabels, e: Mapping[str, Any], lvl: str) -> str:
    """``Back-transformed to the odds ratio scale: OR = 0.49, 95% CI [0.35, 0.70], 95% PI
    [0.20, 1.10]`` or ``""`` (a measure without a back-transform)."""
    back = labels.back_transformed(
        e.get("estimate"), e.get("ci_lb"), e.get("ci_ub"), e.get("pi_lb"), e.get("pi_ub")
    )
    if back is None or back.estimate is None:
        return ""
    sym = _i(back.symbol) if len(back.symbol) == 1 else esc(back.symbol)
    text = (
        f"Back-transformed to the {esc(back.name)} scale: {sym} = {fmt_est(back.estimate)}, "
        f"{lvl} CI {fmt_ci(back.ci_lb, back.ci_ub)}"
    )
    if back.pi_lb is not None:
        text += f", {lvl} prediction interval {fmt_ci(back.pi_lb, back.pi_ub)}"
    return text


def _plist(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _ptext(p: Any) -> str:
    """``p = .034`` or ``p &lt; .001`` (HTML, p italic)."""
    text = fmt_p(p)
    return f"{_i('p')} {esc(text)}" if text.startswith("<") else f"{_i('p')} = {text}"


def _stat(name: str, df: Any, value: Any, p: Any, df2: Any = None) -> str:
    """``t(130) = 10.02, p < .001`` as HTML (symbols italic; no df when ``df`` is None)."""
    dfs = fmt_df(df) if df2 is None else f"{fmt_df(df)}, {fmt_df(df2)}"
    head = _i(esc(name)) + (f"({dfs})" if dfs else "")
    return f"{head} = {fmt_est(value)}, {_ptext(p)}"


def _test_stat(test: Mapping[str, Any], robust: bool = False) -> str:
    """The F (or chi-square) test of a moderator JSON test record, model-based or CR2."""
    if robust:
        return _stat(
            "F",
            test.get("cr2_df1"),
            test.get("cr2_fstat"),
            test.get("cr2_pval"),
            test.get("cr2_df2"),
        )
    name = str(test.get("test", "F"))
    df2 = test.get("df2") if name == "F" else None
    return _stat(name, test.get("df1"), test.get("stat"), test.get("pval"), df2)


def _not_applicable(text: str) -> str:
    """The one line that stands for a section (or part) that does not apply to the data set."""
    return _p(text, "not-applicable")


def _applies(step: Mapping[str, Any]) -> bool:
    """Whether a step's JSON says its analysis applies (``applicable``, true if absent)."""
    return bool(step.get("applicable", True))


def _alpha(data: ReportData) -> float:
    level = _get(data.overall, "analysis", "model_spec", "level", default=0.95)
    return round(1 - float(level), 10)


def _level_pct(data: ReportData) -> str:
    level = _get(data.overall, "analysis", "model_spec", "level", default=0.95)
    return f"{float(level) * 100:g}%"


def _rating_text(rating: Mapping[str, Any]) -> str:
    """A GRADE rating with its reason (``serious &mdash; I2 = 70%``; a reason that starts with
    the rating, ``not assessed: ...``, alone)."""
    word, reason = str(rating.get("rating", "")), str(rating.get("reason", ""))
    return esc(reason if reason.startswith(word) else f"{word} \u2014 {reason}")


def _centring_text(moderators: Mapping) -> str:
    """How the continuous moderators were centred and scaled (``centring`` of the moderator
    step's JSON), in a sentence; empty when no continuous moderator was analysed."""
    entries = [
        m
        for m in _get(moderators, "single", "moderators", default=[]) or []
        if m.get("kind") == "continuous" and m.get("centring")
    ]
    if not entries:
        return ""
    parts = []
    for m in entries:
        c = m["centring"]
        at = {"mean": "its mean", "none": "0"}.get(c.get("rule"), "the configured value")
        part = f"{esc(str(m.get('label') or m.get('name')))} at {at} ({float(c['center']):.4g})"
        if float(c.get("scale", 1)) != 1:
            part += f", slope per {float(c['scale']):g} units"
        parts.append(part)
    return (
        "Continuous moderators were centred, so that the intercept is the predicted effect at a "
        "meaningful value (the slope and its test do not change): " + "; ".join(parts) + ". "
    )


def _figure_html(fig: Figure, number: int) -> str:
    """APA layout: the number in bold and the title in italics above the image, the caption
    below it."""
    title = f'<span class="apa-title">{esc(fig.title)}</span>' if fig.title else ""
    links = " &middot; ".join(f'<a href="{esc(path)}">{esc(fmt)}</a>' for fmt, path in fig.links)
    files = f'<p class="figure-files">Full resolution: {links}</p>' if links else ""
    caption = f"<figcaption>{esc(fig.caption)}{files}</figcaption>" if fig.caption or files else ""
    return (
        f'<figure class="figure" id="figure-{esc(fig.stem)}">'
        f'<div class="figure-head"><span class="apa-number">Figure {number}</span>{title}</div>'
        f'<img src="{fig.data_uri}" alt="{esc(fig.title or fig.stem)}">'
        f"{caption}</figure>"
    )


def _table_html(table: TableRef) -> str:
    if table.n_rows > FOLD_ROWS:
        return (
            f'<details class="long-table"><summary>Table {table.number}. {esc(table.title)} '
            f"({table.n_rows} rows; click to show)</summary>{table.fragment}</details>"
        )
    return table.fragment


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class Section:
    """One section of the report: its id, heading and HTML body."""

    id: str
    title: str
    body: str

    def to_html(self) -> str:
        return (
            f'<section class="section" aria-labelledby="{self.id}">'
            f'<h2 id="{self.id}">{esc(self.title)}</h2>\n{self.body}\n</section>'
        )

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title}


class _Builder:
    """Builds the sections; numbers figures in order of appearance and collects citations."""

    def __init__(self, data: ReportData, provenance: Provenance | None):
        self.data = data
        self.prov = provenance
        self.cite = _Citations()
        self.figure_number = 0
        self.placed_tables: set[str] = set()
        self.labels = measure_labels(data.effect_sizes)

    # ------------------------------------------------------------------ figures and tables
    def figures(self, section_id: str) -> str:
        out = []
        for fig in self.data.figures:
            target = FIGURE_SECTIONS.get(fig.section, "other-figures")
            if target == section_id:
                self.cite.scan(fig.caption)
                self.figure_number += 1
                out.append(_figure_html(fig, self.figure_number))
        return "\n".join(out)

    def tables(self, *names: str, prefix: str | None = None) -> str:
        chosen = [n for n in names if n in self.data.tables]
        if prefix:
            chosen += sorted(
                (n for n in self.data.tables if n.startswith(prefix) and n not in chosen),
                key=lambda n: self.data.tables[n].number,
            )
        self.placed_tables.update(chosen)
        return "\n".join(_table_html(self.data.tables[n]) for n in chosen)

    def table_ref(self, name: str) -> str:
        table = self.data.tables.get(name)
        return f"Table {table.number}" if table else "the table"

    # ------------------------------------------------------------------ summary
    def summary(self) -> Section:
        d = self.data
        ov = d.overall
        an = ov.get("analysis", {})
        parts = []
        notice = _get(d.config, "report", "notice")
        if notice:
            parts.append(_p(esc(str(notice)), "notice"))
        parts.append(
            _p(
                f"Analysis <b>{esc(str(d.config.get('analysis', '')))}</b>: "
                f"{_i('k')} = {fmt_count(an.get('k'))} effect sizes from "
                f"{fmt_count(an.get('n_studies'))} studies, analysed with a "
                f"{esc(str(an.get('description', 'meta-analytic model')))}."
            )
        )
        parts.append(self._overall_sentences())
        parts.append(self._moderator_sentence())
        parts += [_p(esc(text), "central-answer") for text in central_answer(d.components)]
        bias = self._bias_sentence()
        if bias:
            parts.append(_p(bias))
        sens = self._sensitivity_sentence()
        if sens:
            parts.append(_p(sens))
        n_warn = len(d.warnings)
        parts.append(
            _p(
                f"The analysis steps raised {n_warn} warning{'s' if n_warn != 1 else ''} "
                '(listed under <a href="#warnings">Warnings</a>).'
                if n_warn
                else "The analysis steps raised no warnings."
            )
        )
        return Section("summary", SECTIONS["summary"], "\n".join(parts))

    def _overall_sentences(self) -> str:
        ov = self.data.overall
        if not ov.get("estimable", True) or not ov.get("estimate"):
            return _p(
                "The overall model could not be estimated: "
                f"{esc(str(ov.get('reason') or 'see the warnings'))}."
            )
        e, r = ov["estimate"], ov.get("robust") or {}
        lvl = _level_pct(self.data)
        test = str(e.get("test", "t"))
        stat = _stat(test, e.get("df") if test == "t" else None, e.get("statistic"), e.get("pval"))
        lab = self.labels
        text = (
            f"The pooled effect ({esc(lab.name)}) was "
            f"<b>{lab.symbol_html()} = {fmt_est(e.get('estimate'))}</b>, "
            f"{lvl} CI {fmt_ci(e.get('ci_lb'), e.get('ci_ub'))}, {stat}"
        )
        if r:
            text += (
                f"; with CR2 cluster-robust inference ({fmt_count(r.get('clusters'))} clusters) "
                f"{lvl} CI {fmt_ci(r.get('ci_lower'), r.get('ci_upper'))}, "
                f"{_stat('t', r.get('df_satt'), r.get('tstat'), r.get('p_satt'))}"
            )
        text += "."
        if e.get("pi_lb") is not None:
            text += (
                f" The {lvl} prediction interval, where the true effect of a new study is "
                f"expected, is {fmt_ci(e.get('pi_lb'), e.get('pi_ub'))}."
            )
        back = _back_text(lab, e, lvl)
        if back:
            text += f" {back}."
        text += f" Direction: {esc(lab.direction.rstrip('.'))}."
        out = [_p(text)]
        het = ov.get("heterogeneity") or {}
        vd = ov.get("variance_distribution") or {}
        sentences = []
        if het.get("QE") is not None:
            sentences.append(
                "Heterogeneity: "
                + _stat("Q", het.get("QE_df"), het.get("QE"), het.get("QEp"))
                + "."
            )
        if vd.get("i2"):
            an = ov.get("analysis", {})
            labels = {
                lev: f"at the level of {esc(str(lab))}"
                for lev, lab in (an.get("level_labels") or {}).items()
            }
            labels[an.get("study_key")] = f"between studies ({esc(str(an.get('study_label', '')))})"
            labels[an.get("es_key")] = "within studies (between effect sizes)"
            shares = [
                f"{fmt_pct(v)}% lay {labels.get(k, esc(str(k)))}" for k, v in vd["i2"].items()
            ]
            shares.append(f"{fmt_pct(vd.get('i2_sampling'))}% was sampling error")
            sentences.append(f"Of the total variance, {_plist(shares)}.")
        if sentences:
            out.append(_p(" ".join(sentences)))
        return "\n".join(out)

    def _moderator_sentence(self) -> str:
        mods = _get(self.data.moderators, "single", "moderators", default=[])
        if not mods:
            return ""
        adjust = _get(self.data.moderators, "single", "p_adjust", default="none")
        alpha = _alpha(self.data)
        tested = [m for m in mods if m.get("test") and m["test"].get("pval") is not None]
        key = "p_adj" if adjust != "none" else "pval"
        sig = [m for m in tested if (m["test"].get(key) or 1) < alpha]
        how = " after Holm's adjustment" if adjust == "holm" else ""
        if not sig:
            text = (
                f"None of the {len(tested)} moderators tested differed significantly between its "
                f"categories{how} ({_i('p')} &lt; {fmt_r(alpha, 2)})."
            )
        else:
            items = []
            for m in sig:
                t = m["test"]
                item = f"{esc(str(m.get('label', m.get('name'))))} ({_test_stat(t)}"
                if adjust != "none":
                    item += f", adjusted {_ptext(t.get('p_adj'))}"
                if t.get("cr2_pval") is not None:
                    item += f"; CR2 {_test_stat(t, robust=True)}"
                    if adjust != "none":
                        item += f", adjusted {_ptext(t.get('cr2_p_adj'))}"
                items.append(item + ")")
            text = (
                f"Of the {len(tested)} moderators tested, {len(sig)} differed significantly "
                f"between categories{how} ({_i('p')} &lt; {fmt_r(alpha, 2)}): {_plist(items)}."
            )
        mult = _get(self.data.moderators, "multiple", default={})
        t = mult.get("test") or {}
        if t.get("stat") is not None:
            variables = list(mult.get("variables") or [])
            components = set(self.data.components.get("components") or [])
            of = (
                "of the components"
                if components and set(variables) <= components
                else "of " + _plist([f"<code>{esc(str(v))}</code>" for v in variables])
            )
            text += (
                f" The multiple-moderator model {of} ({_i('k')} = "
                f"{fmt_count(mult.get('k'))}, {fmt_count(mult.get('n_studies'))} studies) "
                f"gave {_test_stat(t)}"
            )
            if mult.get("R2") is not None:
                text += f", pseudo-{_i('R')}² = {fmt_pct(mult.get('R2'))}%"
            text += f" ({self.table_ref('multiple_moderators')})."
        return _p(text)

    def _bias_sentence(self) -> str:
        b = self.data.bias
        eg = b.get("egger_multilevel") or {}
        if not eg:
            return ""
        stat_name = "t" if eg.get("stat_name") == "tval" else "z"
        text = (
            "The Egger-type test in the analysis model found "
            + ("no " if (eg.get("pval") or 0) >= _alpha(self.data) else "")
            + "evidence of small-study effects: "
            + _stat(stat_name, eg.get("dfs"), eg.get("statistic"), eg.get("pval"))
        )
        cr2 = _get(b, "egger_multilevel_cr2", "slope", default={})
        if cr2:
            text += f" (CR2: {_stat('t', cr2.get('df_satt'), cr2.get('tstat'), cr2.get('p_satt'))})"
        tf = b.get("trimfill") or {}
        if tf:
            text += (
                f". Trim and fill on the study averages filled in {fmt_count(tf.get('k0'))} "
                f"stud{'y' if tf.get('k0') == 1 else 'ies'} ({esc(str(tf.get('side', '')))} side), "
                f"giving {_g_ci(tf, self.labels)}"
            )
        pp = b.get("pet_peese") or {}
        if pp.get("estimate") is not None:
            chosen = esc(str(pp.get("chosen", "")))
            text += f"; the PET-PEESE estimate ({chosen}) is {_g_ci(pp, self.labels)}"
        sel = b.get("selection") or {}
        adj = sel.get("adjusted_mean") or {}
        lrt = sel.get("lrt") or {}
        if adj.get("estimate") is not None:
            weights = ", ".join(
                f"{fmt_est(w.get('estimate'))} for {esc(str(w.get('interval', '')))}"
                for w in (sel.get("weights") or [])[1:]
            )
            text += (
                f". The selection model (all effect sizes, clustered by study) estimated the "
                f"relative publication probability at {weights} (1 for the significant results) "
                f"and an adjusted mean of {_g_ci(adj, self.labels)}"
                + (
                    f" (bootstrap CI {fmt_ci(adj['boot_ci_lb'], adj['boot_ci_ub'])})"
                    if adj.get("boot_ci_lb") is not None
                    else ""
                )
                + f", against {fmt_est((sel.get('unadjusted_mean') or {}).get('estimate'))} "
                "without selection; "
                + _stat("\u03c7\u00b2", lrt.get("df"), lrt.get("statistic"), lrt.get("pval"))
                + " for selection"
            )
        ppm = b.get("pet_peese_model") or {}
        if ppm.get("estimate") is not None:
            text += (
                f"; PET-PEESE in the three-level model ({esc(str(ppm.get('chosen', '')))}, CR2) "
                f"gave {_g_ci(ppm, self.labels)}"
            )
        return text + f" ({self.table_ref('bias')})."

    def _sensitivity_sentence(self) -> str:
        frame = self.data.sensitivity_summary
        if frame.empty or "kind" not in frame:
            return ""
        items = []
        for _, row in frame.iterrows():
            if row.get("kind") == "model":
                continue
            name = esc(str(row.get("analysis")))
            if row.get("kind") == "leave_one_out":
                name += f", {esc(str(row.get('changed') or ''))}"
            if pd.isna(row.get("estimate")) and not pd.isna(row.get("note")):
                items.append(f"{name}: {esc(str(row.get('note')))}")  # not fitted: why
                continue
            items.append(f"{name}: {_g_ci(row, self.labels, f'{_level_pct(self.data)} ')}")
        if not items:
            return ""
        return (
            "Sensitivity analyses ("
            + self.table_ref("sensitivity_summary")
            + "): "
            + "; ".join(items)
            + "."
        )

    # ------------------------------------------------------------------ methods
    def _measure_text(self, methods: Mapping[str, Any]) -> str:
        """The effect measure, the conversions the effect-size step used (its counts by method,
        each cited where a source applies) and what a positive effect means."""
        lab, cite, es = self.labels, self.cite, self.data.effect_sizes
        used = " ".join(str(m) for m, n in methods.items() if n)
        given = sum(int(n or 0) for m, n in methods.items() if str(m).startswith("Given"))
        computed = sum(int(n or 0) for n in methods.values()) - given
        if lab.code == "SMD":
            text = f"<b>Effect sizes.</b> Every effect was expressed as Hedges' {_i('g')}"
            if "exact J" in used:
                text += f" with the exact small-sample correction {cite('hedges1981')}"
            if computed:
                text += (
                    ", with metafor's large-sample sampling variance "
                    f"{cite('viechtbauer2010', 'borenstein2009')}"
                )
            text += ". "
            if "Morris" in used:
                text += f"Pre-post-control designs follow {cite.narrative('morris2008')}. "
            if "Hasselblad" in used:
                text += (
                    f"Odds ratios were converted with the logit method {cite('hasselblad1995')}. "
                )
            if "point-biserial" in used:
                text += f"Correlations were converted to {_i('d')} {cite('borenstein2009')}. "
        elif lab.code == "GEN":
            text = f"<b>Effect sizes.</b> Every effect was a {esc(lab.name)}, as coded. "
        else:
            text = (
                f"<b>Effect sizes.</b> Every effect was expressed as a {esc(lab.name)} "
                f"({lab.symbol_html()}) with its sampling variance as metafor's "
                f'<code>escalc(measure = "{esc(lab.code)}")</code> computes it '
                f"{cite('viechtbauer2010')}. "
            )
        if given:
            text += (
                f"{fmt_count(given)} effect sizes were coded ready (yi and vi) and taken as "
                f"{esc(lab.name)}. "
            )
        converted = es.get("converted") or {}
        if any(converted.values()):
            text += (
                "Converted from another measure, as the configuration allows: "
                + ", ".join(f"{esc(str(m))} {fmt_count(n)}" for m, n in converted.items() if n)
                + ". "
            )
        if lab.has_back:
            text += (
                f"Pooled results are also shown back-transformed to the {esc(lab.back_name or '')}"
                " scale. "
            )
        text += f"Direction: {esc(lab.direction.rstrip('.'))}"
        if lab.direction_by:
            text += "; by domain: " + "; ".join(
                f"{esc(k)}: {esc(v.rstrip('.'))}" for k, v in lab.direction_by.items()
            )
        return text + ". "

    def methods(self) -> Section:
        d, cite = self.data, self.cite
        cfg = d.config
        spec = _get(d.overall, "analysis", "model_spec", default={}) or {}
        out = []

        # data and inclusion
        data_cfg = cfg.get("data", {})
        incl = cfg.get("inclusion") or {}
        text = (
            "<b>Data.</b> The coded studies "
            f"(<code>{esc(str(data_cfg.get('studies', '')))}</code>) "
            f"and effect sizes (<code>{esc(str(data_cfg.get('effects', '')))}</code>) were checked "
            f"against the codebook (<code>{esc(str(cfg.get('codebook', '')))}</code>) before any "
            "analysis"
        )
        if d.validation_text:
            text += f" ({esc(d.validation_text.split(';')[0])})"
        text += ". "
        if incl:
            crit = []
            for var, rule in incl.items():
                if isinstance(rule, Mapping):
                    bounds = []
                    if "min" in rule:
                        bounds.append(f"&ge; {esc(str(rule['min']))}")
                    if "max" in rule:
                        bounds.append(f"&le; {esc(str(rule['max']))}")
                    crit.append(f"<code>{esc(var)}</code> {' and '.join(bounds)}")
                else:
                    crit.append(
                        f"<code>{esc(var)}</code> in {{{', '.join(esc(str(v)) for v in rule)}}}"
                    )
            text += (
                f"Inclusion criteria: {_plist(crit)}; a row with a missing value on a criterion "
                "is excluded, and every excluded row is listed with its reason "
                '(see <a href="#data-flow">Data flow</a>).'
            )
        else:
            text += "No inclusion criteria were set: every coded effect size entered the analysis."
        out.append(_p(text))

        # effect sizes
        es = d.effect_sizes
        es_cfg = cfg.get("effect_sizes", {})
        methods = es.get("by_method") or {}
        conv = "".join(
            f'<li>{esc(m)}: <span class="count">{fmt_count(n)}</span></li>'
            for m, n in methods.items()
        )
        defaults = es.get("defaults_used") or {}
        text = self._measure_text(methods)
        flipped = es.get("direction_flipped", 0) or 0
        if flipped:
            text += (
                f"{fmt_count(flipped)} effect sizes were sign-flipped because higher scores meant "
                "a worse outcome. "
            )
        clustered = es.get("design_effect_applied", 0) or 0
        if clustered:
            text += (
                f"The sampling variance of {fmt_count(clustered)} effect sizes from "
                "cluster-randomised trials was multiplied by the design effect 1 + (m - 1) ICC "
                f"{cite('higgins2023')}. "
            )
        assumed = {
            "r_prepost": "a pre-post correlation of {}",
            "icc": "an ICC of {}",
            "cluster_size": "an average cluster size of {}",
        }
        used = [
            what.format(esc(str(es_cfg.get(f"{key}_default", ""))))
            + f" (used for {fmt_count(defaults[key])} effect sizes)"
            for key, what in assumed.items()
            if defaults.get(key)
        ]
        if used:
            text += "Where a study did not report them, these values were assumed: " + (
                ", ".join(used) + "."
            )
        out.append(_p(text))
        if conv:
            out.append(
                _p("The conversions used, with the number of effect sizes each gave:")
                + f'<ul class="conversions">{conv}</ul>'
            )

        # model
        out.append(_p(self._model_text(spec)))

        # moderators
        mod_cfg = cfg.get("moderators", {})
        if d.moderators and _applies(d.moderators):
            adjust = mod_cfg.get("p_adjust", _get(d.moderators, "single", "p_adjust"))
            min_studies = mod_cfg.get("min_studies", _get(d.moderators, "single", "min_studies"))
            text = (
                "<b>Moderators.</b> Every moderator of the codebook was analysed in its own "
                "meta-regression with the analysis model: the mean effect of each category "
                "(the model without intercept) and an omnibus test of the differences between "
                f"the categories with at least {esc(str(min_studies))} studies; categories with "
                "fewer studies are reported but left out of the test, and continuous moderators "
                "get a slope. "
            )
            text += _centring_text(d.moderators)
            if adjust == "holm":
                text += (
                    "The omnibus p values were adjusted for the number of moderators tested with "
                    f"Holm's method {cite('holm1979')}. "
                )
            else:
                text += "The omnibus p values were not adjusted for multiple testing. "
            text += (
                "The CR2 version of each test is the HTZ Wald test "
                f"{cite('tipton2015b')}. A pseudo-{_i('R')}² gives the reduction of the total "
                "variance against the model without the moderator. "
            )
            text += self._wild_bootstrap_sentence()
            variables = _get(d.moderators, "multiple", "variables", default=[])
            if variables:
                text += (
                    "The moderators "
                    + _plist([f"<code>{esc(str(v))}</code>" for v in variables])
                    + " entered one multiple-moderator model (complete cases), with "
                    "variance inflation factors computed on the GLS-weighted design. "
                )
            if variables or _get(d.moderators, "multiple", "left_out"):
                share = mod_cfg.get("min_coverage", d.moderators.get("min_coverage"))
                text += (
                    f"Variables coded for fewer than {100 * float(share or 0):g}% of the "
                    "studies were left out of the joint models (the multiple-moderator model and "
                    "the component profiles)."
                )
            out.append(_p(text))

        # components
        if d.components and _applies(d.components):
            comp_cfg = cfg.get("components", {})
            rule_name = str(comp_cfg.get("positive_rule", ""))
            rule = str(_get(d.components, "positive_rule", "description", default=""))
            rule = rule.removeprefix(f"{rule_name}: ")
            text = (
                "<b>Components.</b> The combinations of intervention components that occur "
                "(profiles) were pooled in one model with the profile as a factor; "
                f"{esc(profile_rule(d.components))}. For each component, the share of "
                "programmes with a positive effect that have it (consistency) and the share of "
                "all programmes "
                f"that have it (coverage) are given. A programme counts as positive by the rule "
                f"<code>{esc(str(comp_cfg.get('positive_rule', '')))}</code>: {esc(str(rule))}."
            )
            out.append(_p(text))

        # bias
        if d.bias:
            opts = d.bias.get("options") or {}
            text = (
                "<b>Publication bias.</b> Small-study effects were tested with an Egger-type "
                "regression in the analysis model, the standard error as moderator "
                f"{cite('egger1997', 'nakagawa2022', 'rodgers2021')}, with model-based and CR2 "
                "inference. The classic methods &mdash; Egger's regression test, the rank "
                f"correlation test {cite('begg1994')}, trim and fill with the "
                f"{esc(str(opts.get('trimfill_estimator', '')))} estimator "
                f"{cite('duval2000')}, PET-PEESE {cite('stanley2014')} and the fail-safe N "
                f"{cite('rosenthal1979', 'orwin1983')} &mdash; were run on study averages, "
                f"because {esc(str(d.bias.get('why_aggregated', 'they assume independence')))}. "
                "The study averages were pooled with a "
                f"{esc(str(opts.get('univariate_method', '')))} random-effects model."
            )
            if d.bias.get("selection") or d.bias.get("pet_peese_model"):
                steps = ", ".join(f"{x:g}" for x in opts.get("selection_steps") or [])
                boot = int(opts.get("selection_bootstrap") or 0)
                text += (
                    " On all effect sizes, with their dependence within studies accounted for, "
                    "a step-function selection model "
                    f"{cite('vevea1995')} with "
                    + ("two" if opts.get("selection_alternative") == "two.sided" else "one")
                    + f"-sided p-value steps at {esc(steps)} was "
                    "fitted by composite maximum likelihood with a sandwich variance clustered "
                    "by study"
                    + (f" and a {boot}-replication bootstrap of studies" if boot else "")
                    + f" {cite('pustejovsky2025')}; its likelihood-ratio test of selection "
                    "rejects too often when effect sizes are dependent "
                    f"{cite('rodgers2021')}, so the selection weights and the adjusted mean "
                    "with its interval are the result to read. PET and PEESE were also fitted "
                    "in the three-level model with CR2 tests (for standardised mean "
                    "differences with known group sizes with the modified standard error "
                    f"{cite('pustejovsky2019')}), and the conditional PET-PEESE estimate taken."
                )
            out.append(_p(text))

        # sensitivity
        s_opts = d.sensitivity.get("options") or cfg.get("sensitivity") or {}
        if d.sensitivity or s_opts:

            def values(key: str) -> str:
                return ", ".join(esc(str(v)) for v in s_opts.get(key, []))

            text = (
                "<b>Sensitivity analyses.</b> The analysis model was refitted without each study "
                "in turn, with Cook's distance, DFBETAS, leverage and the studentized deleted "
                f"residuals of each study {cite('viechtbauer2010b')}; without the effect sizes "
                "whose studentized deleted residual exceeds "
                f"{esc(str(s_opts.get('outlier_threshold', '')))} in absolute value; with the "
                f"one-level estimators {values('estimators')} "
                f"{cite('viechtbauer2005')}; with the correlated and hierarchical effects (CHE) "
                f"working model (within-study correlation {esc(str(s_opts.get('che_rho', '')))}, "
                f"also {values('rho_values')}) with CR2 inference {cite('pustejovsky2022')}; and "
                "with the effect sizes recomputed under other assumed pre-post correlations "
                f"({values('r_prepost_values')}) and ICCs ({values('icc_values')})."
            )
            out.append(_p(text))

        # reliability
        if d.reliability:
            n = _get(d.reliability, "units", "studies", "double_coded")
            text = (
                "<b>Inter-rater reliability.</b> A second coder coded "
                f"{fmt_count(n) if n is not None else 'a subset of the'} studies. Agreement per "
                f"variable is given as percentage agreement, Cohen's kappa {cite('cohen1960')} "
                "(linearly weighted for ordinal variables), Krippendorff's alpha "
                f"{cite('krippendorff2011')} and, for numbers, ICC(2,1) {cite('shrout1979')}."
            )
            out.append(_p(text))

        if d.grade:
            out.append(_p(self._grade_methods()))

        # software
        out.append(_p(self._software_text()))
        out.append("<h3>References</h3>")
        out.append("{{REFERENCES}}")
        return Section("methods", SECTIONS["methods"], "\n".join(out))

    def _wild_bootstrap_sentence(self) -> str:
        """The moderator tests' cluster wild bootstrap in the methods ("" when not computed)."""
        wild = _get(self.data.moderators, "wild_bootstrap", default=None) or {}
        if not wild or wild.get("when") == "never":
            return ""
        which = (
            "each omnibus test"
            if wild.get("when") == "always"
            else f"each omnibus test on at most {wild.get('max_studies')} studies"
        )
        return (
            f"For {which}, a cluster wild bootstrap p value {self.cite('joshi2022')} is given "
            f"beside the HTZ test: {wild.get('replications')} replications with Rademacher "
            f"weights per study applied to the {esc(str(wild.get('adjust')))}-adjusted "
            "residuals of the model without the tested moderator, the model refitted to each "
            "replicate and its "
            + (
                "HTZ statistic"
                if wild.get("statistic") == "HTZ"
                else "cluster-robust Wald statistic"
            )
            + " compared with the data's (not adjusted for multiple testing). "
        )

    def _model_text(self, spec: Mapping[str, Any]) -> str:
        cite, cfg = self.cite, self.data.config
        structure = spec.get("structure", "three_level")
        multilevel = structure in ("three_level", "multilevel")
        an = _get(self.data.overall, "analysis", default={}) or {}
        levels = list(an.get("levels") or [an.get("study_key"), an.get("es_key")])
        nesting = esc(str(an.get("nesting") or "effect sizes nested in studies"))
        n_levels = {3: "three", 4: "four", 5: "five"}.get(len(levels) + 1, str(len(levels) + 1))
        cluster = (
            "study"
            if levels[0] == an.get("study_key", levels[0])
            else esc(str((an.get("level_labels") or {}).get(levels[0], levels[0])))
        )
        method = spec.get("method", "REML")
        test = spec.get("test", "t")
        level = f"{float(spec.get('level', 0.95)) * 100:g}%"
        est = {
            "REML": "restricted maximum likelihood (REML)",
            "ML": "maximum likelihood (ML)",
        }.get(method, esc(str(method)))
        if multilevel and len(levels) == 2:
            text = (
                "<b>Model.</b> The effect sizes were pooled in a three-level meta-analytic model "
                f"{cite('cheung2014', 'assink2016')}: sampling variance at level 1, variance "
                "between effect sizes within studies at level 2 and variance between studies at "
                f"level 3, estimated by {est} {cite('viechtbauer2005')}. "
            )
        elif multilevel:
            text = (
                f"<b>Model.</b> The effect sizes were pooled in a {n_levels}-level "
                f"meta-analytic model {cite('cheung2014', 'assink2016')} ({nesting}): sampling "
                "variance at level 1 and a random effect at each level of "
                f"<code>{esc('/'.join(map(str, levels)))}</code>, estimated by {est} "
                f"{cite('viechtbauer2005')}. "
            )
        elif structure == "random_effects":
            text = (
                "<b>Model.</b> The effect sizes were pooled in a random-effects model that "
                f"treats them as independent, with the between-effect variance estimated by {est}. "
            )
        else:
            text = "<b>Model.</b> The effect sizes were pooled in a fixed-effect model. "
        text += (
            "The model engine of this package reproduces metafor's <code>rma.mv</code> "
            f"{cite('viechtbauer2010')}. "
        )
        if test == "t":
            text += (
                f"The pooled effect and the coefficients were tested with {_i('t')} tests with "
                f'{_i("k")} - {_i("p")} degrees of freedom (metafor\'s <code>test = "t"</code>), '
                f"with {level} confidence intervals. "
            )
        elif test == "knha":
            text += f"Tests and {level} confidence intervals use the Knapp-Hartung adjustment. "
        else:
            text += f"Tests and {level} confidence intervals use the normal distribution. "
        if spec.get("robust", "CR2") == "CR2":
            text += (
                "Beside the model-based results, cluster-robust results are reported: the CR2 "
                f"bias-reduced linearization variance estimator clustered by {cluster}, with "
                "Satterthwaite degrees of freedom for single coefficients and the HTZ test for "
                f"several {cite('pustejovsky2018', 'tipton2015b')}; with fewer than 4 degrees of "
                f"freedom these are flagged as unreliable {cite('tipton2015')}. "
            )
        if structure != "fixed_effect":
            text += (
                f"The {level} prediction interval, the mean plus and minus the critical value "
                "times the square root of its squared standard error plus the summed variance "
                "components, shows where the true effect of a new study is expected. "
            )
        if multilevel:
            text += (
                "Each variance component was tested with a likelihood-ratio test against the "
                "model with that component fixed at 0, with the p value also halved for testing "
                f"on the boundary {cite('self1987')}; the total variance was divided over the "
                f"{n_levels} levels {cite('cheung2014')}, with the typical sampling variance of "
                f"{cite.narrative('higgins2002')} at level 1. For comparison, the same effect "
                "sizes were fitted as a two-level random-effects model and a fixed-effect model. "
            )
        models = cfg.get("models", {})
        if models.get("per_domain"):
            text += (
                "The analysis model was also fitted separately for each level of "
                f"<code>{esc(str(models.get('domain_variable', '')))}</code>."
            )
        return text

    def _software_text(self) -> str:
        prov, cite = self.prov, self.cite
        text = (
            "<b>Software.</b> The analysis ran as a Snakemake workflow "
            f"{cite('molder2021')} with the Python package intervention-meta"
        )
        if prov is not None:
            pk = prov.packages
            text += (
                f" {esc(pk.get('intervention-meta', ''))} on Python {esc(prov.python)}, "
                "with "
                + _plist(
                    [
                        f"{name} {esc(pk[name])}"
                        for name in (
                            "numpy",
                            "scipy",
                            "pandas",
                            "statsmodels",
                            "matplotlib",
                            "snakemake",
                        )
                        if name in pk
                    ]
                )
            )
        text += (
            ". Its tests compare the model results with metafor and clubSandwich in R "
            f"{cite('viechtbauer2010', 'pustejovsky2018')}."
        )
        return text

    # ------------------------------------------------------------------ data flow
    def data_flow(self) -> Section:
        d = self.data
        c, es, ov = d.clean, d.effect_sizes, d.overall
        an = ov.get("analysis", {})
        rows = []

        def reasons_from(frame: pd.DataFrame, key: str) -> str:
            if frame.empty or "reason" not in frame:
                return ""
            items = [
                f"<li><code>{esc(str(r.get(key, '')))}</code>: {esc(str(r.get('reason', '')))}</li>"
                for _, r in frame.iterrows()
            ]
            return f'<ul class="reasons">{"".join(items)}</ul>'

        clean_reasons = "".join(
            f"<li>{esc(str(reason))}: {fmt_count(n)}</li>"
            for reason, n in (c.get("dropped_by_reason") or {}).items()
        )
        rows.append(
            (
                "Coded effect sizes read",
                f"{fmt_count(c.get('rows_in'))} ({fmt_count(c.get('studies_in'))} studies)",
                "",
                "",
            )
        )
        rows.append(
            (
                "Inclusion criteria applied",
                f"{fmt_count(c.get('kept'))} kept ({fmt_count(c.get('studies_kept'))} studies)",
                fmt_count(c.get("dropped")),
                f'<ul class="reasons">{clean_reasons}</ul>' if clean_reasons else "",
            )
        )
        es_key = es.get("key", "es_id")
        rows.append(
            (
                f"Effect sizes computed ({esc(self.labels.axis_title)})",
                f"{fmt_count(es.get('computed'))} of {fmt_count(es.get('rows_in'))}",
                fmt_count(es.get("dropped")),
                reasons_from(d.effect_sizes_dropped, es_key),
            )
        )
        n_dropped = _get(ov, "model", "n_dropped", default=0)
        rows.append(
            (
                "Analysed (overall model)",
                f"{fmt_count(an.get('k'))} ({fmt_count(an.get('n_studies'))} studies)",
                fmt_count(n_dropped) if n_dropped else "0",
                "",
            )
        )
        table = (
            '<table class="flow"><thead><tr><th>Step</th><th class="num">Effect sizes</th>'
            '<th class="num">Dropped</th><th>Why dropped</th></tr></thead><tbody>'
            + "".join(
                f'<tr><td>{a}</td><td class="num">{b}</td><td class="num">{n}</td><td>{r}</td></tr>'
                for a, b, n, r in rows
            )
            + "</tbody></table>"
        )
        parts = [
            _p(
                "How many rows each step received, kept and dropped (with the reason). "
                + (f"Data check: {esc(d.validation_text)}." if d.validation_text else "")
            ),
            table,
            self.figures("data-flow"),
        ]
        prob = d.validation_problems
        if not prob.empty:
            cols = [
                c_
                for c_ in ("severity", "file", "row", "column", "value", "expected")
                if c_ in prob
            ]
            parts.append(
                f"<h3>Validation findings ({len(prob)})</h3>"
                '<div class="apa-scroll"><table class="flow"><thead><tr>'
                + "".join(f"<th>{esc(c_)}</th>" for c_ in cols)
                + "</tr></thead><tbody>"
                + "".join(
                    "<tr>"
                    + "".join(
                        f"<td>{esc('' if pd.isna(r[c_]) else str(r[c_]))}</td>" for c_ in cols
                    )
                    + "</tr>"
                    for _, r in prob.iterrows()
                )
                + "</tbody></table></div>"
            )
        by_input = es.get("by_es_input") or {}
        if by_input:
            parts.append(
                _p(
                    "Effect sizes by what the studies reported (<code>es_input</code>: rows in / "
                    "computed / dropped): "
                    + "; ".join(
                        f"{esc(k)} {fmt_count(v.get('rows_in'))}/{fmt_count(v.get('computed'))}/"
                        f"{fmt_count(v.get('dropped'))}"
                        for k, v in by_input.items()
                    )
                    + "."
                )
            )
        other = self._step_counts()
        if other:
            parts.append(_p(other))
        return Section("data-flow", SECTIONS["data-flow"], "\n".join(p for p in parts if p))

    def _step_counts(self) -> str:
        d = self.data
        items = []
        mult = _get(d.moderators, "multiple", default={})
        if mult.get("k") is not None:
            items.append(
                f"the multiple-moderator model used {fmt_count(mult.get('k'))} effect sizes "
                f"({fmt_count(mult.get('n_studies'))} studies; "
                f"{fmt_count(mult.get('k_dropped', 0))} left out for missing values)"
            )
        prof = _get(d.components, "profiles", default={})
        model = prof.get("model") or {}
        if model.get("k") is not None:
            left = prof.get("left_out") or []
            items.append(
                f"the component profiles used {fmt_count(model.get('k'))} effect sizes "
                f"({fmt_count(model.get('n_studies'))} programmes"
                + (
                    f"; left out for a missing component: {esc(', '.join(map(str, left)))}"
                    if left
                    else ""
                )
                + ")"
            )
        if d.bias.get("n_studies") is not None:
            items.append(
                f"the univariate bias methods used {fmt_count(d.bias.get('n_studies'))} study "
                "averages"
            )
        if not items:
            return ""
        return "In the later steps, " + "; ".join(items) + "."

    # ------------------------------------------------------------------ analysis sections
    def risk_of_bias_section(self) -> Section:
        """The risk-of-bias assessment: the tool, the judgements (figures), the overall judgement
        as a moderator and the restricted sensitivity analyses; one line without the config's
        ``risk_of_bias`` section."""
        rob = _get(self.data.config, "risk_of_bias", default={})
        if not rob.get("overall"):
            return self._skip(
                "risk-of-bias",
                "No risk-of-bias assessment is configured (<code>risk_of_bias</code> in the "
                "config), so risk of bias is not reported.",
            )
        overall = str(rob["overall"])
        tool = TOOLS.get(str(rob.get("tool", "rob2")), TOOLS["other"]).name
        n_domains = len(rob.get("domains") or [])
        what = (
            f"{n_domains} domains and an overall judgement" if n_domains else "an overall judgement"
        )
        mods = _get(self.data.moderators, "single", "moderators", default=[])
        mod = next((m for m in mods if m.get("name") == overall), None)
        per = ""  # the moderator's record says which table the judgement is in
        if mod:
            per = " per study" if mod.get("table") == "studies" else " per result (effect size)"
        parts = [
            _p(
                f"Risk of bias was judged with {esc(tool)}{per}: {what} "
                f"(<code>{esc(overall)}</code>)."
            )
        ]
        if mod:
            counts = [
                f"{esc(str(r.get('label')))}: {fmt_count(r.get('n_studies'))} studies "
                f"({_i('k')} = {fmt_count(r.get('k'))})"
                for r in mod.get("rows") or []
                if r.get("term") == "mean"
            ]
            test = mod.get("test") or {}
            tested = (
                f" (test of the differences: {_test_stat(test)})"
                if test.get("stat") is not None
                else f" ({esc(str(mod.get('no_test_reason') or 'not tested'))})"
            )
            parts.append(
                _p(
                    f"Overall judgements: {'; '.join(counts)}. The overall judgement is a "
                    f"moderator (role moderator in the codebook), so the moderator analyses "
                    f"compare the pooled effect between its levels{tested} "
                    '(<a href="#moderators">Moderators</a>).'
                )
            )
        else:
            parts.append(
                _p(
                    f"The overall judgement <code>{esc(overall)}</code> is not analysed as a "
                    "moderator (give it role moderator in the codebook to test whether the "
                    "effects differ by risk of bias)."
                )
            )
        frame = self.data.sensitivity_summary
        if not frame.empty and "kind" in frame:
            rows = frame[frame["kind"] == "risk_of_bias"]
            items = [
                f"{esc(str(r['analysis']).lower())}: "
                + (
                    esc(str(r.get("note")))
                    if pd.isna(r.get("estimate"))
                    else f"{_g_ci(r, self.labels, f'{_level_pct(self.data)} ')} "
                    f"({_i('k')} = {fmt_count(r.get('k'))}, {fmt_count(r.get('n_studies'))} "
                    "studies)"
                )
                for _, r in rows.iterrows()
            ]
            if items:
                parts.append(
                    _p(
                        "The analysis model refitted on a subset by the overall judgement "
                        f"({self.table_ref('sensitivity_summary')}, "
                        '<a href="#sensitivity">Sensitivity</a>): ' + "; ".join(items) + "."
                    )
                )
        parts.append(self.figures("risk-of-bias"))
        return Section("risk-of-bias", SECTIONS["risk-of-bias"], "\n".join(p for p in parts if p))

    def overall_section(self) -> Section:
        parts = [self._overall_sentences()]
        models = self.data.config.get("models", {}) or {}
        if models.get("per_domain") and "overall_domains" not in self.data.tables:
            parts.append(
                _not_applicable(
                    "No per-domain analyses: <code>models.per_domain</code> is set, but the "
                    f"domain variable <code>{esc(str(models.get('domain_variable', '')))}</code> "
                    "has no levels in the analysed data."
                )
            )
        parts.append(
            self.tables("overall", "overall_domains", "variance_distribution", "overall_comparison")
        )
        parts.append(self.figures("overall"))
        return Section("overall", SECTIONS["overall"], "\n".join(p for p in parts if p))

    def _skip(self, section_id: str, text: str, *tables: str) -> Section:
        """The section as its one line: ``tables`` (written, but empty) are not shown."""
        self.placed_tables.update(tables)
        return Section(section_id, SECTIONS[section_id], _not_applicable(text))

    def moderators_section(self) -> Section:
        m = self.data.moderators
        tables = ("moderator_tests", "moderators", "multiple_moderators")
        if m and not _applies(m):
            return self._skip(
                "moderators",
                f"No moderator analyses: {esc(str(m.get('reason', '')))}.",
                *tables,
            )
        parts = [self._moderator_sentence()]
        mult = m.get("multiple") or {}
        shown = tables
        if mult and not _applies(mult):
            shown = tables[:2]
            self.placed_tables.add("multiple_moderators")
            parts.append(
                _not_applicable(f"No multiple-moderator model: {esc(str(mult.get('reason', '')))}.")
            )
        left = mult.get("left_out") or {}
        if left:
            items = [
                f"<code>{esc(str(v))}</code> (coded for {fmt_count(c.get('n_coded'))} of "
                f"{fmt_count(c.get('n_studies'))} studies)"
                for v, c in left.items()
            ]
            share = f"{100 * float(m.get('min_coverage') or 0):g}"
            parts.append(
                _p(
                    f"Left out of the multiple-moderator model for being coded for fewer than "
                    f"{share}% of the studies: {_plist(items)} (see the warnings for the "
                    "studies each would have cost)."
                )
            )
        parts.append(self.tables(*shown))
        parts.append(self.figures("moderators"))
        return Section("moderators", SECTIONS["moderators"], "\n".join(p for p in parts if p))

    def components_section(self) -> Section:
        c = self.data.components
        if c and not _applies(c):
            return self._skip(
                "components",
                "No intervention components are coded in this data set (role: component in "
                "the codebook), so no component profiles or consistency were computed.",
                "component_profiles",
                "component_consistency",
            )
        parts = []
        if c:
            profiles = _get(c, "profiles", "profiles", default=[])
            parts.append(
                _p(
                    f"{self.table_ref('component_profiles')} lists the {len(profiles)} "
                    "combinations of components (profiles) that occur, with their pooled effect; "
                    f"{self.table_ref('component_consistency')} shows, per component, how many "
                    "of the programmes with a positive effect have it."
                )
            )
        parts.append(self.tables("component_profiles", "component_consistency"))
        parts.append(self.figures("components"))
        return Section("components", SECTIONS["components"], "\n".join(p for p in parts if p))

    def bias_section(self) -> Section:
        parts = [_p(self._bias_sentence())] if self._bias_sentence() else []
        parts.append(self.tables("bias"))
        parts.append(self.figures("publication-bias"))
        return Section(
            "publication-bias", SECTIONS["publication-bias"], "\n".join(p for p in parts if p)
        )

    def selection_section(self) -> Section:
        """The selection model: its weights figure, the adjusted vs unadjusted estimates beside
        PET-PEESE and the Egger-type test (:mod:`.selection_section`)."""
        from intervention_meta.outputs.selection_section import selection_section_html
        from intervention_meta.plots.selection import selection_usable

        bias = self.data.bias
        if not bias:
            return self._skip("selection-model", "No bias step results (models/bias.json).")
        reason = str((bias.get("not_computed") or {}).get("selection", ""))
        usable = selection_usable(bias.get("selection"), reason)[0]
        figures = self.figures("selection-model") if usable else ""
        body = selection_section_html(bias, figures, self.cite, self.labels)
        return Section("selection-model", SECTIONS["selection-model"], body)

    def sensitivity_section(self) -> Section:
        sens = self._sensitivity_sentence()
        parts = [_p(sens)] if sens else []
        notes = self.data.sensitivity.get("notes") or []
        if notes:
            parts.append(_p("Note: " + "; ".join(esc(str(n)) for n in notes) + "."))
        parts.append(self.tables("sensitivity_summary", prefix="sensitivity_"))
        parts.append(self.figures("sensitivity"))
        return Section("sensitivity", SECTIONS["sensitivity"], "\n".join(p for p in parts if p))

    def multiverse_section(self) -> Section:
        """The multiverse: its size, the curve's summaries, the bootstrap test, the figure and
        where each choice puts the estimates (one line when the config runs none)."""
        mv = self.data.multiverse
        if not mv:
            return self._skip(
                "multiverse",
                "No multiverse analysis: the config's <code>multiverse</code> section is not "
                "enabled.",
            )
        s = mv.get("summary", {})
        size = mv.get("multiverse", {})
        alpha = float(mv.get("alpha", 0.05))
        pct = lambda x: "n/a" if x is None else f"{100 * float(x):.0f}%"  # noqa: E731
        counts = ", ".join(f"{n} {esc(k)}" for k, n in (s.get("status_counts") or {}).items())
        excluded = sum((size.get("excluded") or {}).values())
        text = (
            f"A multiverse analysis {self.cite('voracek2019', 'simonsohn2020')} fitted every "
            f"combination of the configured subsets and models: {s.get('n_specs', 0)} "
            f"specifications ({counts}; {excluded} combinations excluded by the rules), in "
            f"{size.get('n_chunks', 1)} job(s)."
        )
        if s.get("median_estimate") is not None:
            text += (
                f" The median estimate was {fmt_est(s['median_estimate'])} (range "
                f"{fmt_est(s['min_estimate'])} to {fmt_est(s['max_estimate'])}); "
                f"{pct(s.get('share_significant'))} of the fitted specifications had "
                f"{_i('p')} &lt; {alpha:g}, {pct(s.get('share_positive'))} a positive and "
                f"{pct(s.get('share_negative'))} a negative estimate, and "
                f"{pct(s.get('share_significant_same_sign'))} were significant in the direction "
                "of the median."
            )
        test = s.get("bootstrap") or {}
        if test.get("p_median") is not None:
            text += (
                f" In {test['draws']} bootstrap draws under the null (studies resampled, every "
                "specification's effect sizes shifted to no effect, all specifications refitted; "
                f"seed {test['seed']}) a median at least as extreme had {_ptext(test['p_median'])}"
                f" and a share of significant specifications at least as large "
                f"{_ptext(test['p_share'])} (with {test['draws']} draws no p value is "
                f"below 1/{test['draws'] + 1})."
            )
        parts = [_p(text)]
        if mv.get("figure"):
            png = Path(self.data.multiverse_dir) / mv["figure"]
            if png.is_file():
                self.figure_number += 1
                parts.append(
                    f'<figure class="figure" id="figure-multiverse_curve"><div class="figure-head">'
                    f'<span class="apa-number">Figure {self.figure_number}</span>'
                    '<span class="apa-title">Specification curve</span></div>'
                    f'<img src="{embedded_image(png)}" alt="Specification curve">'
                    "<figcaption>Each fitted specification's estimate with its confidence "
                    "interval, sorted (coloured by significance and sign; dashed: the median); "
                    "below, the choices of each specification.</figcaption></figure>"
                )
        names = mv.get("labels") or {}
        how = {"structure": "Structure", "method": "Estimator", "rho": "CHE rho"}
        how.update(outliers="Outliers", bias="Bias adjustment")

        def named(r: Mapping[str, Any]) -> tuple[str, str]:
            entry = names.get(r["factor"], {})
            factor = entry.get("label") or how.get(r["factor"], r["factor"])
            return str(factor), str(entry.get("levels", {}).get(r["option"], r["option"]))

        rows = "".join(
            f"<tr><td>{esc(named(r)[0])}</td><td>{esc(named(r)[1])}</td>"
            f"<td class='num'>{r['n_fitted']}</td><td class='num'>"
            f"{fmt_est(r['median_estimate'])}</td><td class='num'>"
            f"{pct(r['share_significant'])}</td></tr>"
            for r in mv.get("by_choice", [])
            if r.get("median_estimate") is not None
        )
        if rows:
            parts.append(
                '<div class="apa-scroll"><table class="flow"><thead><tr>'
                "<th>Factor</th><th>Choice</th>"
                '<th class="num">Fitted</th>'
                f"<th class='num'>Median estimate</th><th class='num'>{_i('p')} &lt; {alpha:g}</th>"
                "</tr></thead>"
                f"<tbody>{rows}</tbody></table></div>"
            )
        return Section("multiverse", SECTIONS["multiverse"], "\n".join(parts))

    def included_studies(self) -> Section:
        """The PRISMA flow in words and the characteristics of the included studies."""
        from intervention_meta.outputs.prisma import flow_text

        parts = [_p(esc(flow_text(self.data.prisma_flow))) if self.data.prisma_flow else ""]
        parts.append(self.tables("study_characteristics"))
        body = "\n".join(p for p in parts if p) or _not_applicable("No included studies recorded.")
        return Section("included-studies", SECTIONS["included-studies"], body)

    def prisma_checklist(self, sections: Sequence[Section]) -> Section:
        """Each PRISMA 2020 item mapped to the section of this report that addresses it, or to
        the reviewers' text in ``prisma.checklist``."""
        from intervention_meta.outputs.prisma import checklist, checklist_html

        ids = {s.id: s.title for s in sections}
        ids["prisma-checklist"] = SECTIONS["prisma-checklist"]
        texts = _get(self.data.config, "prisma", "checklist", default={})
        rows = checklist(ids, texts)
        missing = sum(r.status == "not reported" for r in rows)
        n_items = len({r.item.item.rstrip("abcdef") for r in rows})
        intro = _p(
            f"The {n_items} items of the PRISMA 2020 checklist {self.cite('page2021')} "
            f"({len(rows)} with their sub-items) and where this report addresses each; texts for "
            "what the pipeline cannot know come from <code>prisma.checklist</code> in the config. "
            f"{missing} are not reported here (they belong in the manuscript)."
        )
        body = intro + checklist_html(rows)
        return Section("prisma-checklist", SECTIONS["prisma-checklist"], body)

    def _grade_methods(self) -> str:
        from intervention_meta.outputs.grade import grade_rules

        measure = str(_get(self.data.grade, "measure", "code", default="SMD"))
        smd = (
            f" For a standardised mean difference the absolute effect is its size by Cohen's "
            f"benchmarks {self.cite('cohen1988')}."
            if measure == "SMD"
            else ""
        )
        rules = " ".join(
            esc(r) for r in grade_rules(self.data.grade.get("settings") or {}, measure)
        )
        what = (
            "for each outcome domain and for all outcomes together"
            if len(self.data.grade.get("rows") or []) > 1
            else "for all outcomes together"
        )
        return (
            f"<b>Certainty of evidence.</b> The certainty of the evidence {what} was rated with "
            "GRADE "
            f"{self.cite('schunemann2013', 'guyatt2011')}, by rules applied to the results "
            f"(thresholds from the config's <code>grade</code> section). {rules}{smd}"
        )

    def grade_section(self) -> Section:
        g = self.data.grade
        if not g:
            return self._skip(
                "certainty",
                "No GRADE summary of findings was made (models/grade.json is missing).",
                "grade",
            )
        from intervention_meta.outputs.grade import CERTAINTY, GRADE_DOMAINS

        rows = g.get("rows") or []
        levels = "; ".join(
            f"{esc(str(r.get('label')))}: {esc(CERTAINTY[int(r.get('certainty', 1))][0].lower())}"
            for r in rows
        )
        parts = [
            _p(
                f"{self.table_ref('grade')} summarises the findings per outcome with the "
                "certainty of the evidence (GRADE; rules in the Methods). Certainty: "
                f"{levels}."
            ),
            self.tables("grade"),
        ]
        items = []
        for r in rows:
            ratings = r.get("ratings") or {}
            reasons = "".join(
                f"<li><b>{esc(label)}</b>: {_rating_text(ratings.get(d) or {})}</li>"
                for d, label in GRADE_DOMAINS.items()
            )
            items.append(
                f"<li>{esc(str(r.get('label')))} (certainty "
                f"{esc(str(r.get('certainty_label', '')).lower())})<ul>{reasons}</ul></li>"
            )
        parts.append(
            '<details class="grade-reasons"><summary>Every rating with its reason</summary>'
            f"<ul>{''.join(items)}</ul></details>"
        )
        return Section("certainty", SECTIONS["certainty"], "\n".join(parts))

    def reliability_section(self) -> Section:
        r = self.data.reliability
        if not r and not any(n.startswith("reliability_") for n in self.data.tables):
            return self._skip(
                "reliability",
                "No second coder's data are configured (<code>reliability</code> in the "
                "config), so inter-rater agreement was not computed.",
            )
        n = _get(r, "units", "studies", "double_coded")
        parts = [
            _p(
                f"A second coder coded {fmt_count(n)} studies; the coders disagreed on "
                f"{fmt_count(r.get('n_disagreements'))} values, listed for the consensus meeting."
            )
            if r
            else ""
        ]
        parts.append(self.tables("reliability_agreement", prefix="reliability_"))
        parts.append(self.figures("reliability"))
        return Section("reliability", SECTIONS["reliability"], "\n".join(p for p in parts if p))

    def other_figures(self) -> Section | None:
        body = self.figures("other-figures")
        leftover = [n for n in self.data.tables if n not in self.placed_tables]
        body += self.tables(*sorted(leftover, key=lambda n: self.data.tables[n].number))
        if not body:
            return None
        return Section("other-figures", SECTIONS["other-figures"], body)

    def warnings_section(self) -> Section:
        lines = self.data.warnings
        if not lines:
            body = _p("No warnings.")
        else:
            body = (
                _p(
                    "Every flag the analysis steps raised (small categories, non-convergence, rows "
                    "left out, unreliable robust tests), as in <code>warnings.txt</code>:"
                )
                + '<ul class="warnings">'
                + "".join(f"<li>{esc(line)}</li>" for line in lines)
                + "</ul>"
            )
        return Section("warnings", SECTIONS["warnings"], body)

    def provenance_section(self) -> Section:
        return provenance_section(self.prov)


def provenance_section(prov: Provenance | None) -> Section:
    """The provenance section: date, commit, config files, input checksums, package versions and
    the config (defaults filled in); shared by every report."""
    if prov is None:
        return Section("provenance", SECTIONS["provenance"], _p("No provenance recorded."))
    checks = "".join(
        f'<tr><td><code>{esc(c.path)}</code></td><td class="num">'
        f"{fmt_count(c.size) if c.size is not None else ''}</td>"
        f"<td><code>{esc(c.sha256 or 'missing')}</code></td></tr>"
        for c in prov.checksums
    )
    packages = "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>"
        for k, v in {"Python": prov.python, **prov.packages}.items()
    )
    body = [
        '<dl class="prov">',
        f"<dt>Date</dt><dd>{esc(prov.date)}</dd>",
        f"<dt>Git commit</dt><dd><code>{esc(prov.git.describe)}</code></dd>",
        f"<dt>Config file(s)</dt><dd>{esc(', '.join(prov.config_files) or 'none')}</dd>",
        f"<dt>Platform</dt><dd>{esc(prov.platform)}</dd>",
        "</dl>",
        "<h3>Input files (SHA-256)</h3>",
        '<div class="apa-scroll"><table class="flow checksums"><thead><tr><th>File</th>'
        '<th class="num">Bytes</th><th>SHA-256</th></tr></thead>'
        f"<tbody>{checks}</tbody></table></div>",
        "<h3>Package versions</h3>",
        '<table class="flow"><thead><tr><th>Package</th><th>Version</th></tr></thead>'
        f"<tbody>{packages}</tbody></table>",
        "<h3>Configuration (defaults filled in)</h3>",
        f'<pre class="config">{esc(prov.config_yaml())}</pre>',
    ]
    return Section("provenance", SECTIONS["provenance"], "\n".join(body))


# --------------------------------------------------------------------------- the report
REPORT_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1a1a1a; max-width: 70em; margin: 0 auto; padding: 1em 2em 4em; line-height: 1.5; }
h1 { font-size: 1.7em; margin-bottom: .2em; }
h2 { border-bottom: 2px solid #333; padding-bottom: .2em; margin-top: 2.2em; }
h3 { margin-top: 1.6em; }
.subtitle { color: #555; margin-top: 0; }
nav.toc { background: #f5f5f2; border: 1px solid #ddd; padding: .6em 1em; margin: 1em 0; }
nav.toc ol { margin: 0; padding-left: 1.4em; columns: 2; }
p.notice { background: #fff4d6; border-left: 4px solid #d9a400; padding: .5em .8em; }
p.not-applicable { color: #555; font-style: italic; }
figure.figure { margin: 1.5em 0; }
figure.figure img { display: block; width: 100%; max-width: 800px; height: auto;
  border: 1px solid #eee; margin: .4em 0; }
figure.figure .figure-head { margin-bottom: .2em; }
figure.figure figcaption { font-size: .85em; max-width: 60em; }
figure.figure .figure-files { margin: .3em 0 0; }
table.flow { border-collapse: collapse; font-size: .9em; margin: .6em 0; }
table.flow th, table.flow td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: left;
  vertical-align: top; }
table.flow .num { text-align: right; white-space: nowrap; }
table.flow thead th { border-bottom: 2px solid #333; }
table.checksums code { font-size: .85em; }
ul.reasons { margin: 0; padding-left: 1.2em; }
ul.warnings li { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; }
ul.references li { margin-bottom: .3em; }
ul.conversions { columns: 2; font-size: .92em; margin-top: -.4em; }
ul.conversions .count { font-variant-numeric: tabular-nums; }
details.long-table { margin: 1.2em 0; }
details.long-table summary { cursor: pointer; font-weight: bold; }
pre.config { background: #f7f7f7; border: 1px solid #ddd; padding: .8em; font-size: .85em;
  overflow-x: auto; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dl.prov dt { font-weight: bold; }
dl.prov dd { margin: 0; }
code { font-size: .92em; }
""".strip()


@dataclass(frozen=True)
class Report:
    """The assembled report: its sections and the complete HTML document."""

    title: str
    sections: tuple[Section, ...]
    html: str
    figures: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "sections": [s.to_dict() for s in self.sections],
            "figures": list(self.figures),
            "tables": list(self.tables),
            **self.meta,
        }

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([s.to_dict() for s in self.sections])

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html, encoding="utf-8")
        return path


def html_document(
    title: str, analysis: str, sections: Sequence[Section], provenance: Provenance | None
) -> str:
    """A report's self-contained HTML page: the CSS, the title, a subtitle with the analysis, the
    date and the commit (from ``provenance``), the table of contents and the sections."""
    date = provenance.date if provenance else ""
    toc = "".join(f'<li><a href="#{s.id}">{esc(s.title)}</a></li>' for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n"
        f"<style>\n{REPORT_CSS}\n{APA_CSS}\n</style>\n</head>\n<body>\n"
        f"<header><h1>{esc(title)}</h1>"
        f'<p class="subtitle">Analysis <code>{esc(analysis)}</code>'
        + (f" &middot; made {esc(date)}" if date else "")
        + (
            f" &middot; commit <code>{esc(provenance.git.describe[:12])}</code>"
            if provenance and provenance.git.commit
            else ""
        )
        + "</p></header>\n"
        f'<nav class="toc"><b>Contents</b><ol>{toc}</ol></nav>\n'
        + "\n".join(s.to_html() for s in sections)
        + "\n</body>\n</html>\n"
    )


def build_report(data: ReportData, provenance: Provenance | None = None) -> Report:
    """Assemble the report from the loaded analysis outputs.

    Parameters
    ----------
    data : the analysis outputs (:func:`load_report_data`)
    provenance : checksums, config, git commit and versions (:mod:`.provenance`)

    Returns
    -------
    Report
        With the sections of :data:`SECTIONS` (``other-figures`` only when it has content; a
        section that does not apply to the data set -- no moderators, no components, no second
        coder -- is one line saying why) and the self-contained HTML document.
    """
    b = _Builder(data, provenance)
    sections = [
        b.summary(),
        b.methods(),
        b.data_flow(),
        b.included_studies(),
        b.risk_of_bias_section(),
        b.overall_section(),
        b.moderators_section(),
        b.components_section(),
        b.bias_section(),
        b.selection_section(),
        b.sensitivity_section(),
        b.multiverse_section(),
        b.grade_section(),
    ]
    sections.append(b.reliability_section())
    other = b.other_figures()
    if other is not None:
        sections.append(other)
    sections += [b.warnings_section(), b.provenance_section()]
    sections.insert(len(sections) - 2, b.prisma_checklist(sections))
    # the reference list is known only once every section has cited what it uses
    sections = [
        Section(s.id, s.title, s.body.replace("{{REFERENCES}}", b.cite.html())) for s in sections
    ]
    analysis = str(data.config.get("analysis", ""))
    title = str(_get(data.config, "report", "title", default="") or "")
    title = title or f"Meta-analysis report: {analysis}"
    doc = html_document(title, analysis, sections, provenance)
    return Report(
        title=title,
        sections=tuple(sections),
        html=doc,
        figures=tuple(f.stem for f in data.figures),
        tables=tuple(data.tables),
        meta={"references": list(b.cite.used)},
    )


def run_report(
    inputs: ReportInputs,
    config: Mapping[str, Any],
    out_html: str | Path,
    *,
    provenance: Provenance | None = None,
    out_provenance: str | Path | None = None,
    out_docx: str | Path | None = None,
    workers: int = 1,
) -> Report:
    """The report step: read the outputs, build the report, write it (and the provenance JSON,
    and the Word version ``out_docx``: :func:`intervention_meta.outputs.docx.write_report_docx`);
    ``workers`` threads downscale the figures' images."""
    data = load_report_data(inputs, config, workers=workers)
    report = build_report(data, provenance)
    report.write(out_html)
    if out_docx is not None:
        from intervention_meta.outputs.docx import write_report_docx

        write_report_docx(report.html, out_docx, base=Path(out_html).parent)
    if out_provenance is not None and provenance is not None:
        Path(out_provenance).parent.mkdir(parents=True, exist_ok=True)
        with open(out_provenance, "w", encoding="utf-8") as fh:
            json.dump(provenance.to_dict(), fh, indent=2)
            fh.write("\n")
    log.info(
        "report: %d sections, %d tables, %d figures -> %s",
        len(report.sections),
        len(report.tables),
        len(report.figures),
        out_html,
    )
    return report


__all__ = [
    "REFERENCES",
    "SECTIONS",
    "Figure",
    "Report",
    "ReportData",
    "ReportInputs",
    "Section",
    "build_report",
    "html_document",
    "load_figures",
    "load_report_data",
    "load_tables",
    "provenance_section",
    "run_report",
]
