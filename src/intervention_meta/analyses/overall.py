"""The overall effect: the analysis model of the config, with what a reader needs beside it.

The analysis model (``config["models"]``; default the three-level REML model of effect sizes nested
in studies with t tests, Assink & Wibbelink 2016; ``models.levels`` nests them in any number of
levels, e.g. effect sizes in samples in studies, metafor's ``random = ~ 1 | study/sample/es``)
gives the pooled estimate with its standard error, test and confidence interval, the prediction
interval, the Q test of heterogeneity and the variance components named by the level columns
(``sigma2["study_id"]``). Beside it:

* the CR2 cluster-robust result, clustered by the outermost level (the study by default), with
  Satterthwaite degrees of freedom (Pustejovsky & Tipton 2018; as clubSandwich's
  ``coef_test(vcov = "CR2")``);
* for the multilevel model, the likelihood-ratio test of each level (its variance fixed at 0 vs.
  free, as metafor's ``anova(full, reduced)``) with the p value halved for the boundary
  (Self & Liang 1987), and the variance distribution over sampling error (level 1) and each
  random level (level 2 the innermost, ..., L + 1 the outermost; Cheung 2014):
  :math:`I^2_l = 100\\,\\hat\\sigma^2_l / (\\sum_m \\hat\\sigma^2_m + \\tilde v)`, with the typical
  sampling variance :math:`\\tilde v = (k-1)/\\mathrm{tr}(P)`;
* the same data fitted as a one-level (two-level) random-effects model with the same method and as
  a fixed-effect model, for comparison.

The prediction interval is :math:`\\hat\\mu \\pm c\\sqrt{SE^2 + \\sum_l \\hat\\sigma^2_l}` with
:math:`c` the t (k - 1 df) or normal critical value, as metafor's ``predict()``.

A level with one unit per unit of the level above (e.g. one effect size per study) cannot separate
the two variances, and is flagged; a level with a single unit (e.g. one study) cannot estimate its
variance: as metafor's ``rma.mv`` does for a single-level factor, that variance is then fixed at
0, and the result is flagged.

The per-domain analyses (``models.per_domain``) run the same function on the subset of one level of
``models.domain_variable`` (the levels are :func:`intervention_meta.data.codebook.domain_levels`).

References
----------
Assink, M., & Wibbelink, C. J. M. (2016). Fitting three-level meta-analytic models in R: a
step-by-step tutorial. *The Quantitative Methods for Psychology*, 12, 154-174.
Cheung, M. W.-L. (2014). Modeling dependent effect sizes with three-level meta-analyses: a
structural equation modeling approach. *Psychological Methods*, 19, 211-229.
Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. *Journal of Business & Economic
Statistics*, 36, 672-683.
Self, S. G., & Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood estimators and
likelihood ratio tests under nonstandard conditions. *JASA*, 82, 605-610.
Tipton, E. (2015). Small sample adjustments for robust variance estimation with
meta-regression. *Psychological Methods*, 20, 375-393.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.analyses.analysis_model import (
    VI,
    AnalysisData,
    ModelSpec,
    fit_model,
    load_analysis_data,
    multilevel_name,
)
from intervention_meta.analyses.flags import FlagRules, Flags
from intervention_meta.analyses.records import ESTIMATE_KEYS, ResultTable, columns, result_table
from intervention_meta.data.codebook import Codebook, domain_levels, load_codebook, normalise_code
from intervention_meta.io import jsonable, write_json, write_table
from intervention_meta.models import MetaResult, ModelError

log = logging.getLogger(__name__)

STEP = "overall"

_STRUCTURE_NAMES = {
    "random_effects": "Two-level random-effects model",
    "fixed_effect": "Fixed-effect model",
}


def _structure_name(structure: str, n_levels: int) -> str:
    """``Three-level model`` (two random levels), ``Four-level model``, ... or the one-level
    structures' names."""
    if structure in _STRUCTURE_NAMES:
        return _STRUCTURE_NAMES[structure]
    return _first_upper(multilevel_name(n_levels))


# --------------------------------------------------------------------------- result
#: the keys of the table ``overall`` and their readable headers
OVERALL_HEADERS = columns(
    "result estimate se test stat df p p_halved ci_lb ci_ub pi_lb pi_ub k n_studies note",
    row=None,
    component=None,
    model=None,
)

#: the keys of the table ``variance_distribution`` and their readable headers
VARIANCE_HEADERS = columns("level source parameter variance sd pct")


@dataclass(frozen=True, eq=False)
class OverallResult:
    """The overall analysis of one data set (or one domain).

    Attributes
    ----------
    spec : the model settings (``config["models"]``)
    study, es : the study and effect-size key columns
    study_label, es_label : their codebook labels
    k, n_studies : effect sizes and studies analysed
    subset : the subset analysed (``{variable: code}``; empty for all data)
    model : the analysis model (None if it could not be fitted, see ``reason``)
    robust : the CR2 result of the pooled estimate (``beta, se, tstat, df_satt, p_satt,
        ci_lower, ci_upper`` and ``clusters``), clustered by the outermost level, or None
    comparison : every structure's fit by structure name (the multilevel structure as the
        config names it, ``multilevel`` or ``three_level``; ``random_effects``,
        ``fixed_effect``); the analysis model is one of them
    levels : the random levels of the multilevel model, outer to inner (``models.levels``)
    level_labels : their codebook labels
    level_names : their plural nouns in running text (``studies``, ``samples``, ...)
    n_units : the number of units of each level
    fixed_levels : random levels whose variance was fixed at 0 because it is not estimable
    flags : the flag lines raised
    reason : why the model could not be fitted (None if it was)
    """

    spec: ModelSpec
    study: str
    es: str
    study_label: str
    es_label: str
    k: int
    n_studies: int
    subset: dict
    model: MetaResult | None
    robust: dict | None
    comparison: dict[str, MetaResult]
    levels: tuple[str, ...] = ()
    level_labels: dict[str, str] = dataclasses.field(default_factory=dict)
    level_names: dict[str, str] = dataclasses.field(default_factory=dict)
    n_units: dict[str, int] = dataclasses.field(default_factory=dict)
    fixed_levels: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def estimable(self) -> bool:
        return self.model is not None

    @property
    def cluster(self) -> str:
        """The outermost level, by which the CR2 result clusters."""
        return self.levels[0] if self.levels else self.study

    @property
    def nesting(self) -> str:
        """``effect sizes nested in samples nested in studies``."""
        return " nested in ".join(self.level_names.get(lev, lev) for lev in self.levels[::-1])

    # ---------------------------------------------------------------- naming
    def _level_place(self, level: str) -> str:
        """``between studies`` for the outermost level, ``within <the level above>`` else."""
        i = self.levels.index(level) if level in self.levels else 0
        if i == 0:
            return f"between {self.level_names.get(level, level)}"
        outer = self.levels[i - 1]
        return f"within {self.level_names.get(outer, outer)}"

    def _level_label(self, level: str) -> str:
        return f"{self._level_place(level)} ({self.level_labels.get(level, level)})"

    def _level_number(self, level: str) -> int:
        """Level 1 is sampling error, the innermost random level 2, the outermost L + 1."""
        return len(self.levels) + 1 - self.levels.index(level)

    def sigma2_key(self, level: str) -> str:
        """The machine key of a level's variance in the comparison table: ``sigma2_between``
        (study key), ``sigma2_within`` (effect key), ``sigma2.<level>`` (any other level)."""
        return {self.study: "sigma2_between", self.es: "sigma2_within"}.get(
            level, f"sigma2.{level}"
        )

    def describe(self) -> str:
        """The analysis model in words, its levels named by their codebook labels."""
        return self.spec.describe([self.level_names.get(lev, lev) for lev in self.levels])

    # ---------------------------------------------------------------- dicts
    def estimate_dict(self) -> dict:
        """The pooled estimate of the analysis model with its test, CI and prediction interval."""
        if self.model is None:
            return {}
        m = self.model
        pred = m.prediction if m.prediction is not None else m.predict()
        return {
            "estimate": float(m.b[0]),
            "se": float(m.se[0]),
            "test": m.test,
            "statistic": float(m.stat[0]),
            "df": None if m.dfs is None else float(m.dfs[0]),
            "pval": float(m.pval[0]),
            "ci_lb": float(m.ci_lb[0]),
            "ci_ub": float(m.ci_ub[0]),
            "pi_lb": float(pred.pi_lb[0]),
            "pi_ub": float(pred.pi_ub[0]),
            "level": m.level,
        }

    def to_dict(self) -> dict:
        """Everything, with full precision (``models/overall.json``)."""
        m = self.model
        out: dict[str, Any] = {
            "step": STEP,
            "estimable": self.estimable,
            "reason": self.reason,
            "analysis": {
                "k": self.k,
                "n_studies": self.n_studies,
                "study_key": self.study,
                "es_key": self.es,
                "study_label": self.study_label,
                "es_label": self.es_label,
                "levels": list(self.levels),
                "level_labels": dict(self.level_labels),
                "n_units": dict(self.n_units),
                "cluster": self.cluster,
                "nesting": self.nesting,
                "subset": dict(self.subset),
                "model_spec": dataclasses.asdict(self.spec),
                "description": self.describe(),
                "fixed_levels": list(self.fixed_levels),
            },
            "estimate": self.estimate_dict(),
            "robust": self.robust,
            "sigma2": dict(m.sigma2) if m is not None else {},
            "tau2": m.tau2 if m is not None else None,
            "level_tests": {lt.level: lt.to_dict() for lt in m.level_tests} if m else {},
            "variance_distribution": (
                m.variance_distribution.to_dict()
                if m is not None and m.variance_distribution is not None
                else None
            ),
            "heterogeneity": (
                {"QE": m.QE, "QE_df": m.QE_df, "QEp": m.QEp, "I2": m.I2, "H2": m.H2}
                if m is not None
                else None
            ),
            "model": m.to_dict() if m is not None else None,
            "comparison": {name: fit.to_dict() for name, fit in self.comparison.items()},
            "flags": list(self.flags),
            "tables": {name: t.to_dict() for name, t in self.tables().items()},
        }
        return jsonable(out)

    # ---------------------------------------------------------------- tables
    def overall_table(self) -> ResultTable:
        """The overall table (``tables/overall.csv``): one row per result; ``row`` says which
        (``mean``, ``mean_cr2``, ``sigma2``, ``tau2``, ``Q``), ``component`` names a variance
        component's level."""
        headers = OVERALL_HEADERS
        base = {"k": self.k, "n_studies": self.n_studies}
        if self.model is None:
            reason = f"not estimable: {self.reason}"
            row = {"row": "mean", "result": "Mean effect", **base, "note": reason}
            return result_table([row], headers, self.spec.level)
        m = self.model
        est = self.estimate_dict()
        test_name = {"t": "t", "z": "z", "knha": "t (Knapp-Hartung)"}[m.test]
        rows = [
            {
                "row": "mean",
                "model": self.describe(),
                "result": "Mean effect (model-based)",
                "estimate": est["estimate"],
                "se": est["se"],
                "test": test_name,
                "stat": est["statistic"],
                "df": est["df"],
                "p": est["pval"],
                "ci_lb": est["ci_lb"],
                "ci_ub": est["ci_ub"],
                "pi_lb": est["pi_lb"],
                "pi_ub": est["pi_ub"],
                **base,
                "note": f"{self.describe()}; the prediction interval is where the true "
                "effect of a new study is expected",
            }
        ]
        if self.robust is not None:
            r = self.robust
            rows.append(
                {
                    "row": "mean_cr2",
                    "result": "Mean effect (CR2 cluster-robust)",
                    "estimate": r["beta"],
                    "se": r["se"],
                    "test": "t (Satterthwaite df)",
                    "stat": r["tstat"],
                    "df": r["df_satt"],
                    "p": r["p_satt"],
                    "ci_lb": r["ci_lower"],
                    "ci_ub": r["ci_upper"],
                    **base,
                    "note": "CR2 robust variance clustered by "
                    f"{self.level_labels.get(self.cluster, self.cluster)} "
                    f"({r['clusters']} clusters; Pustejovsky & Tipton 2018)",
                }
            )
        tests = {lt.level: lt for lt in m.level_tests}
        if m.multilevel:
            for level in m.random:  # outermost (level L + 1) first
                s2 = m.sigma2[level]
                row = {
                    "row": "sigma2",
                    "component": level,
                    "result": f"Variance {self._level_label(level)}: sigma2[{level}]",
                    "estimate": s2,
                    **base,
                }
                lt = tests.get(level)
                if lt is not None:
                    row.update(
                        {
                            "test": "LRT (chi-square)",
                            "stat": lt.lrt,
                            "df": lt.df,
                            "p": lt.pval,
                            "p_halved": lt.pval_halved,
                            "note": f"level {self._level_number(level)}: model with "
                            f"sigma2[{level}] fixed at 0 vs. free; the halved p accounts for "
                            "testing on the boundary (Self & Liang 1987)",
                        }
                    )
                elif level in self.fixed_levels:
                    row["note"] = "not estimable, fixed at 0 (see flags)"
                rows.append(row)
        elif m.tau2 is not None and m.method not in ("FE", "EE"):
            rows.append(
                {
                    "row": "tau2",
                    "result": "Variance between effect sizes: tau2",
                    "estimate": m.tau2,
                    "se": m.se_tau2,
                    **base,
                    "note": f"I2 = {m.I2:.1f}%",
                }
            )
        rows.append(
            {
                "row": "Q",
                "result": "Heterogeneity: Q test",
                "test": "Q (chi-square)",
                "stat": m.QE,
                "df": m.QE_df,
                "p": m.QEp,
                **base,
                "note": "test of residual heterogeneity (all true effects equal)",
            }
        )
        return result_table(rows, headers, self.spec.level)

    def to_frame(self) -> pd.DataFrame:
        """The readable overall table (``tables/overall.csv``)."""
        return self.overall_table().to_frame()

    def variance_table(self) -> ResultTable:
        """The variance distribution (``tables/variance_distribution.csv``); ``level`` is the
        level's number (1 sampling error, 2 the innermost random level, ...; ``"2 + 3"`` for the
        sum of two random levels, ``"2 + 3 + 4"`` of three), ``pct`` its % of the total
        variance."""
        headers = VARIANCE_HEADERS
        m = self.model
        rows = []
        if m is not None and m.multilevel and m.variance_distribution is not None:
            vd = m.variance_distribution
            rows.append(
                {
                    "level": "1",
                    "source": "Sampling error",
                    "parameter": "typical sampling variance",
                    "variance": vd.typical_v,
                    "sd": np.sqrt(vd.typical_v),
                    "pct": vd.i2_sampling,
                }
            )
            for level in m.random[::-1]:  # innermost (level 2) first
                s2 = m.sigma2[level]
                rows.append(
                    {
                        "level": str(self._level_number(level)),
                        "source": _first_upper(self._level_label(level)),
                        "parameter": f"sigma2[{level}]",
                        "variance": s2,
                        "sd": np.sqrt(s2),
                        "pct": vd.i2[level],
                    }
                )
            if len(m.random) > 1:
                rows.append(
                    {
                        "level": " + ".join(str(n) for n in range(2, len(m.random) + 2)),
                        "source": "Heterogeneity (all levels above sampling error)",
                        "parameter": "sum of sigma2",
                        "variance": float(sum(m.sigma2.values())),
                        "sd": np.sqrt(float(sum(m.sigma2.values()))),
                        "pct": vd.i2_total,
                    }
                )
        elif m is not None:
            i2 = float(m.I2 or 0.0)
            vt = m.vt
            rows.append(
                {
                    "level": "1",
                    "source": "Sampling error",
                    "parameter": "typical sampling variance",
                    "variance": vt,
                    "sd": None if vt is None else np.sqrt(vt),
                    "pct": 100.0 - i2,
                }
            )
            fixed = m.method in ("FE", "EE")
            rows.append(
                {
                    "level": "2",
                    "source": (
                        "Heterogeneity (I2 from Q; not modelled by the fixed-effect model)"
                        if fixed
                        else "Between effect sizes"
                    ),
                    "parameter": "I2 from Q" if fixed else "tau2",
                    "variance": None if fixed else m.tau2,
                    "sd": None if fixed else np.sqrt(m.tau2 or 0.0),
                    "pct": i2,
                }
            )
        return result_table(rows, headers)

    def variance_frame(self) -> pd.DataFrame:
        """The variance distribution (``tables/variance_distribution.csv``)."""
        return self.variance_table().to_frame()

    def comparison_table(self) -> ResultTable:
        """The three structures side by side (``tables/overall_comparison.csv``): one variance
        column per level, outer to inner (:meth:`sigma2_key`)."""
        sigma2 = {
            self.sigma2_key(lev): f"sigma2[{lev}] ({self._level_place(lev)})" for lev in self.levels
        }
        headers = columns(
            "model analysis_model method",
            ESTIMATE_KEYS,
            " ".join(sigma2),
            "tau2 loglik aic likelihood k n_studies note",
            estimate="Mean effect",
            structure=None,
            **sigma2,
        )
        rows = []
        for name, fit in self.comparison.items():
            what = _structure_name(name, len(self.levels))
            if name not in _STRUCTURE_NAMES:
                inner_out = (self.level_labels.get(lev, lev) for lev in self.levels[::-1])
                what += f" ({' in '.join(inner_out)})"
            rows.append(
                {
                    "structure": name,
                    "model": what,
                    "analysis_model": "yes" if name == self.spec.structure else "",
                    "method": fit.method,
                    "estimate": float(fit.b[0]),
                    "se": float(fit.se[0]),
                    "ci_lb": float(fit.ci_lb[0]),
                    "ci_ub": float(fit.ci_ub[0]),
                    **{self.sigma2_key(lev): fit.sigma2.get(lev) for lev in self.levels},
                    "tau2": fit.tau2,
                    "loglik": fit.logLik,
                    "aic": fit.AIC,
                    "likelihood": fit.fit_stats_type,
                    "k": fit.k,
                    "n_studies": self.n_studies,
                    "note": (
                        "REML likelihood: logLik and AIC compare only REML fits with the same "
                        "fixed effects"
                        if fit.fit_stats_type == "REML"
                        else f"{fit.fit_stats_type} likelihood: not comparable with REML fits"
                    ),
                }
            )
        return result_table(rows, headers, self.spec.level)

    def comparison_frame(self) -> pd.DataFrame:
        """The three structures side by side (``tables/overall_comparison.csv``)."""
        return self.comparison_table().to_frame()

    def tables(self) -> dict[str, ResultTable]:
        """The step's tables by name (kept in ``models/overall.json`` under ``tables``)."""
        return {
            "overall": self.overall_table(),
            "variance_distribution": self.variance_table(),
            "overall_comparison": self.comparison_table(),
        }


# --------------------------------------------------------------------------- fitting
def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _n_units(ad: AnalysisData) -> dict[str, int]:
    """The number of units of each level (level ``l``: distinct tuples of columns ``0..l``)."""
    levels = ad.random
    return {
        lev: int(ad.data[levels[: i + 1]].drop_duplicates().shape[0])
        for i, lev in enumerate(levels)
    }


def _robust(model: MetaResult, ad: AnalysisData, flags: Flags, what: str) -> dict | None:
    n = ad.n_clusters
    if n < 2:
        flags.add(
            f"{what}: CR2 cluster-robust result not computed: it needs at least 2 clusters "
            f"({ad.cluster})"
        )
        return None
    try:
        rob = model.robust(cluster=ad.cluster)
    except (ValueError, np.linalg.LinAlgError) as err:
        flags.add(f"{what}: CR2 cluster-robust result not computed ({err})")
        return None
    out: dict = rob.coef_test(0)
    out["coef"] = str(rob.coef_names[0])
    out["clusters"] = n
    out["cluster"] = ad.cluster
    out["type"] = "CR2"
    flags.check_robust(model, rob, what)
    return out


def _level_flags(ad: AnalysisData, n_units: Mapping[str, int], flags: Flags, what: str) -> None:
    """Flag a level with one unit (its variance is fixed at 0) and a level with one unit per
    unit of the level above it (the two variances are not separately identified)."""
    levels = ad.random
    if n_units[levels[0]] == 1:
        outer = levels[0]
        if outer == ad.study:
            flags.add(
                f"{what}: only one study: the between-study variance sigma2[{outer}] cannot be "
                "estimated and is fixed at 0 (as metafor); the estimate describes that one study"
            )
        else:
            flags.add(
                f"{what}: only one unit of {ad.label(outer)} ({outer}): its variance "
                f"sigma2[{outer}] cannot be estimated and is fixed at 0 (as metafor)"
            )
    for outer, inner in zip(levels, levels[1:], strict=False):
        if n_units[inner] == 1 or n_units[inner] != n_units[outer]:
            continue
        if (outer, inner) == (ad.study, ad.es):
            flags.add(
                f"{what}: every study contributes one effect size: the within- and between-study "
                "variances are not separately identified"
            )
        else:
            flags.add(
                f"{what}: each of the {n_units[outer]} {ad.level_name(outer)} has one unit of "
                f"{ad.label(inner)} ({inner}): sigma2[{outer}] and sigma2[{inner}] are not "
                "separately identified"
            )


def overall_analysis(
    ad: AnalysisData, spec: ModelSpec, flags: Flags | None = None
) -> OverallResult:
    """Fit the overall model of ``spec`` to ``ad`` with the robust result and comparison fits.

    Parameters
    ----------
    ad : the effect sizes (all, or one domain's subset)
    spec : the model settings (:meth:`ModelSpec.from_config` of ``config["models"]``)
    flags : where flags go (a new ``Flags("overall")`` if None)

    Returns
    -------
    OverallResult
        With ``model=None`` and a ``reason`` (and a flag) when the data cannot support the model,
        e.g. too few effect sizes; never raises for small data.

    Notes
    -----
    The analysis model is fitted with :func:`intervention_meta.analyses.analysis_model.fit_model`
    (metafor ``rma.mv(yi, vi, random = ~ 1 | a/b/c, method, test)`` for the multilevel structure
    with the levels ``ad.random``, by default ``~ 1 | study/es``; ``rma(yi, vi, method, test)``
    for the others). The comparison fits use the same method and test (``FE`` for the
    fixed-effect model). A level with a single unit (e.g. one study) has its variance fixed at 0,
    as metafor does for a single-level random factor. The CR2 result clusters by the outermost
    level.
    """
    flags = flags if flags is not None else Flags(STEP)
    n_units = _n_units(ad)
    common = {
        "spec": spec,
        "study": ad.study,
        "es": ad.es,
        "study_label": ad.label(ad.study),
        "es_label": ad.label(ad.es),
        "k": ad.k,
        "n_studies": ad.n_studies,
        "subset": dict(ad.subset),
        "levels": tuple(ad.random),
        "level_labels": {lev: ad.label(lev) for lev in ad.random},
        "level_names": {lev: ad.level_name(lev) for lev in ad.random},
        "n_units": n_units,
    }
    what = "overall model"
    if ad.k == 0:
        reason = "no effect sizes"
        flags.add(f"{what}: not estimable: {reason}")
        return OverallResult(
            **common,
            model=None,
            robust=None,
            comparison={},
            flags=tuple(flags.lines),
            reason=reason,
        )

    fixed = {lev: 0.0 for lev, n in n_units.items() if n == 1}
    if spec.multilevel:
        _level_flags(ad, n_units, flags, what)

    comparison: dict[str, MetaResult] = {}
    model: MetaResult | None = None
    reason = None
    multilevel = spec.structure if spec.multilevel else "multilevel"
    for structure in (multilevel, "random_effects", "fixed_effect"):
        s = dataclasses.replace(spec, structure=structure)
        label = f"{what}, {_structure_name(structure, len(ad.random)).lower()}"
        try:
            sigma2_fixed = dict(fixed) if s.multilevel and fixed else None
            fit = fit_model(ad, s, sigma2_fixed=sigma2_fixed)
        except ModelError as err:
            if structure == spec.structure:
                reason = str(err)
                flags.add(f"{what}: not estimable: {reason}")
            else:
                flags.add(f"{label} (comparison) not estimable: {err}")
            continue
        flags.check_fit(fit, label)
        for lt in fit.level_tests:
            if not lt.converged_reduced:
                flags.add(f"{label}: the reduced model of the LRT for {lt.level} did not converge")
        comparison[structure] = fit
        if structure == spec.structure:
            model = fit

    if model is not None:
        flags.check_boundary(model, what, ad.data[VI])
    robust = None
    if model is not None and spec.robust == "CR2":
        robust = _robust(model, ad, flags, what)
    return OverallResult(
        **common,
        model=model,
        robust=robust,
        comparison=comparison,
        fixed_levels=tuple(fixed) if spec.multilevel else (),
        flags=tuple(flags.lines),
        reason=reason,
    )


# --------------------------------------------------------------------------- domains
def domain_flags(
    codebook: str | Path | Codebook,
    models: Mapping[str, Any] | None,
    inclusion: Mapping[str, Any] | None = None,
) -> list[str]:
    """Why the configured per-domain analyses do not run (empty if they run or are not asked)."""
    models = dict(models or {})
    if not models.get("per_domain", False):
        return []
    cb = load_codebook(codebook)
    variable = models.get("domain_variable", "outcome_domain")
    var = cb.variables.get(variable)
    if var is None:
        return [
            f"per-domain analyses asked for (models.per_domain), but the codebook has no variable "
            f"{variable!r} (models.domain_variable): no per-domain analyses"
        ]
    if not var.has_levels:
        return [
            f"per-domain analyses asked for, but {variable!r} has no levels (type {var.type}): "
            "no per-domain analyses"
        ]
    if not domain_levels(cb, variable, inclusion):
        return [
            f"per-domain analyses asked for, but the inclusion criteria allow no level of "
            f"{variable!r}: no per-domain analyses"
        ]
    return []


# --------------------------------------------------------------------------- step
def run_overall(
    effect_sizes: str | Path,
    codebook: str | Path,
    models: Mapping[str, Any] | None,
    *,
    table: str | Path,
    json_path: str | Path,
    flags_path: str | Path,
    comparison: str | Path | None = None,
    variance: str | Path | None = None,
    subset: Mapping[str, object] | None = None,
    inclusion: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
) -> OverallResult:
    """The overall step: read the effect sizes, fit, write the tables, the JSON and the flags.

    ``subset`` (``{domain_variable: level}``) makes it one per-domain analysis. For the analysis
    of all data, ``models.per_domain`` with a ``domain_variable`` the codebook lacks (or whose
    levels the ``inclusion`` criteria all exclude) raises a flag. ``flag_rules`` are the
    thresholds of the flags (the config's ``flags``, :class:`FlagRules`).
    """
    subset = {str(k): normalise_code(v) for k, v in (subset or {}).items()}
    step = STEP if not subset else STEP + ":" + ",".join(f"{k}={v}" for k, v in subset.items())
    flags = Flags(step, rules=FlagRules.from_config(flag_rules))
    spec = ModelSpec.from_config(models)
    ad = load_analysis_data(effect_sizes, codebook, subset=subset or None, levels=spec.levels)
    if not subset:
        for line in domain_flags(ad.codebook, models, inclusion):
            flags.add(line)
    log.info(
        "%s: %s on %d effect sizes from %d studies",
        step,
        spec.describe(ad.level_names()),
        ad.k,
        ad.n_studies,
    )
    result = overall_analysis(ad, spec, flags)
    if result.model is not None:
        log.info("%s\n%s", step, result.model.summary())
    write_table(result.to_frame(), table)
    if comparison is not None:
        write_table(result.comparison_frame(), comparison)
    if variance is not None:
        write_table(result.variance_frame(), variance)
    write_json(result.to_dict(), json_path)
    flags.write(flags_path)
    return result


__all__ = [
    "OVERALL_HEADERS",
    "VARIANCE_HEADERS",
    "OverallResult",
    "domain_flags",
    "domain_levels",
    "overall_analysis",
    "run_overall",
]
