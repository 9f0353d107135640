"""The publication-bias step: the methods of :mod:`intervention_meta.methods.bias` on the analysis
data.

Three parts (rule ``bias``):

(a) **All effect sizes, dependence modelled.** The Egger-type test in the three-level model: the
    standard error as a moderator, :math:`y_{ij} = \\beta_0 + \\beta_1\\sqrt{v_{ij}} + u_j + w_{ij}
    + e_{ij}`, with the test of ``config["models"]`` (Rodgers & Pustejovsky 2021's "Egger's
    regression test with a multilevel model"); beside it the same slope with CR2 cluster-robust
    standard errors and Satterthwaite df, clustered by study, which Rodgers & Pustejovsky (2021)
    found to keep its type I error rate when sampling errors are correlated within studies.
(b) **Study averages.** The univariate methods (classic Egger test, rank correlation, trim and
    fill, PET-PEESE, fail-safe N) assume independent effect sizes. The effect sizes are therefore
    first averaged within each study (:func:`~intervention_meta.methods.bias.aggregate_by_study`,
    sampling
    errors assumed compound symmetric with correlation ``bias.aggregate_rho``), which removes the
    dependence at the cost of the within-study information. The models of the study averages use
    ``bias.univariate_method`` with z tests (as metafor's ``trimfill()``, so the unadjusted and
    the filled-in estimates are comparable).
(c) **Funnel-plot data.** The effect sizes and the study averages against their standard errors
    with pseudo-confidence contours around the pooled estimate (90, 95, 99%) and the
    trim-and-fill filled-in studies.

A method that the data cannot support (e.g. fewer than 3 studies) is reported as not computed,
with a flag; the step never fails for small data.

References
----------
Begg, C. B., & Mazumdar, M. (1994). Operating characteristics of a rank correlation test for
publication bias. *Biometrics*, 50, 1088-1101.
Duval, S., & Tweedie, R. (2000). Trim and fill. *Biometrics*, 56, 455-463.
Egger, M., Davey Smith, G., Schneider, M., & Minder, C. (1997). Bias in meta-analysis detected
by a simple, graphical test. *BMJ*, 315, 629-634.
Orwin, R. G. (1983). A fail-safe N for effect size in meta-analysis. *Journal of Educational
Statistics*, 8, 157-159.
Rodgers, M. A., & Pustejovsky, J. E. (2021). Evaluating meta-analytic methods to detect selective
reporting in the presence of dependent effect sizes. *Psychological Methods*, 26, 141-160.
Rosenthal, R. (1979). The file drawer problem and tolerance for null results. *Psychological
Bulletin*, 86, 638-641.
Stanley, T. D., & Doucouliagos, H. (2014). Meta-regression approximations to reduce publication
selection bias. *Research Synthesis Methods*, 5, 60-78.
Sterne, J. A. C., et al. (2011). Recommendations for examining and interpreting funnel plot
asymmetry in meta-analyses of randomised controlled trials. *BMJ*, 343, d4002.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from intervention_meta.analyses.analysis_model import (
    VI,
    AnalysisData,
    ModelSpec,
    fit_model,
    load_analysis_data,
    model_call,
)
from intervention_meta.analyses.flags import FlagRules, Flags
from intervention_meta.analyses.records import ResultTable, columns, result_table
from intervention_meta.effect_sizes.measures import role_columns, role_values
from intervention_meta.io import jsonable, write_json, write_table
from intervention_meta.methods import bias
from intervention_meta.methods.pet_peese import PetPeeseWorkingModel, pet_peese_working_model
from intervention_meta.methods.selection import SelectionModel, selection_model
from intervention_meta.models import MetaResult, ModelError, fit

log = logging.getLogger(__name__)

STEP = "bias"

#: fewer studies than this: the asymmetry tests have too little power (Sterne et al. 2011)
MIN_STUDIES_ASYMMETRY = 10
#: levels of the funnel-plot contours
FUNNEL_LEVELS = (0.90, 0.95, 0.99)
#: significance level of the fail-safe N (Rosenthal) and of PET's one-sided test
ALPHA = 0.05

WHY_ALL = "all effect sizes; the three-level model accounts for their dependence within studies"

T = TypeVar("T")


@dataclass(frozen=True)
class BiasOptions:
    """The ``bias`` section of the config (defaults as in ``config.schema.yaml``)."""

    aggregate_rho: float = 0.6
    trimfill_estimator: str = "L0"
    univariate_method: str = "REML"
    fsn_target: float | None = None
    selection_steps: tuple[float, ...] = (0.025,)
    selection_alternative: str = "greater"
    selection_bootstrap: int = 1999

    @classmethod
    def from_config(cls, options: Mapping[str, Any] | None) -> BiasOptions:
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        if "selection_steps" in options:
            options["selection_steps"] = tuple(float(x) for x in options["selection_steps"])
        return cls(**{k: v for k, v in options.items() if k in known})

    def why_aggregated(self) -> str:
        return (
            "the method assumes independent effect sizes; averaging within studies (assumed "
            f"within-study correlation rho = {self.aggregate_rho:g}) removes the dependence, at "
            "the cost of within-study information"
        )


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class BiasResult:
    """All publication-bias results of one data set.

    Attributes
    ----------
    options, spec : the ``bias`` and ``models`` settings used
    study, es : the study and effect-size key columns
    k, n_studies : effect sizes and studies
    model : the analysis model of all effect sizes (the funnel's centre), or None
    egger_multilevel : (a) the three-level Egger-type test (:class:`~.bias.RegTest`)
    egger_multilevel_cr2 : (a) its slope and intercept with CR2 robust tests (dict per term)
    aggregated : (b) the study averages (:class:`~.bias.AggregatedEffects`)
    unadjusted : (b) the model of the study averages (``univariate_method``, z test)
    egger_lm, egger_rma : (b) classic Egger test (WLS) and the meta-regression Egger-type test
    ranktest, trimfill, pet_peese, fsn_rosenthal, fsn_orwin : (b) the other methods
    not_computed : method -> why it was not computed
    flags : the flag lines raised
    data : the effect sizes (``study``, ``effect_size``, ``yi``, ``vi``) for the funnel plot
    """

    options: BiasOptions
    spec: ModelSpec
    study: str
    es: str
    k: int
    n_studies: int
    model: MetaResult | None = None
    egger_multilevel: bias.RegTest | None = None
    egger_multilevel_cr2: dict | None = None
    aggregated: bias.AggregatedEffects | None = None
    unadjusted: MetaResult | None = None
    egger_lm: bias.RegTest | None = None
    egger_rma: bias.RegTest | None = None
    ranktest: bias.RankTest | None = None
    trimfill: bias.TrimFill | None = None
    pet_peese: bias.PetPeese | None = None
    fsn_rosenthal: bias.FailSafeN | None = None
    fsn_orwin: bias.FailSafeN | None = None
    selection: SelectionModel | None = None
    pet_peese_model: PetPeeseWorkingModel | None = None
    not_computed: dict[str, str] = dataclasses.field(default_factory=dict)
    flags: tuple[str, ...] = ()
    data: pd.DataFrame | None = dataclasses.field(default=None, repr=False)

    # ---------------------------------------------------------------- dicts
    def _pooled(self) -> dict | None:
        """The analysis model's pooled estimate (unadjusted for bias) with its interval and test."""
        m = self.model
        if m is None:
            return None
        return {
            "model": self.spec.describe(),
            "estimate": float(m.b[0]),
            "se": float(m.se[0]),
            "ci_lb": float(m.ci_lb[0]),
            "ci_ub": float(m.ci_ub[0]),
            "df": None if m.dfs is None else float(m.dfs[0]),
            "pval": float(m.pval[0]),
            "level": float(m.level),
        }

    def to_dict(self) -> dict:
        """Everything, with full precision (``models/bias.json``)."""

        def d(x: Any) -> Any:
            return None if x is None else x.to_dict()

        un = self.unadjusted
        out = {
            "step": STEP,
            "options": dataclasses.asdict(self.options),
            "model_spec": dataclasses.asdict(self.spec),
            "k": self.k,
            "n_studies": self.n_studies,
            "study_key": self.study,
            "es_key": self.es,
            "why_aggregated": self.options.why_aggregated(),
            "pooled_estimate": None if self.model is None else float(self.model.b[0]),
            "pooled": self._pooled(),
            "egger_multilevel": d(self.egger_multilevel),
            "egger_multilevel_cr2": self.egger_multilevel_cr2,
            "aggregated": d(self.aggregated),
            "unadjusted": None if un is None else un.to_dict(),
            "egger_lm": d(self.egger_lm),
            "egger_rma": d(self.egger_rma),
            "ranktest": d(self.ranktest),
            "trimfill": d(self.trimfill),
            "pet_peese": d(self.pet_peese),
            "fsn_rosenthal": d(self.fsn_rosenthal),
            "fsn_orwin": d(self.fsn_orwin),
            "selection": d(self.selection),
            "pet_peese_model": d(self.pet_peese_model),
            "not_computed": dict(self.not_computed),
            "flags": list(self.flags),
        }
        out["tables"] = {name: t.to_dict() for name, t in self.tables().items()}
        return jsonable(out)

    # ---------------------------------------------------------------- tables
    def bias_table(self) -> ResultTable:
        """The table ``bias`` (``tables/bias.csv``): one row per test or method; ``method_key``
        names the method (``egger_multilevel``, ``trimfill``, ...), ``statistic`` the statistic
        whose ``value`` is given, ``estimate`` the method's adjusted estimate."""
        headers = columns(
            "method data why k statistic value df p estimate se ci_lb ci_ub note",
            k="k",
            estimate="Adjusted estimate",
            method_key=None,
            aggregated=None,
        )
        why_agg = self.options.why_aggregated()
        all_data = f"effect sizes ({self.k} in {self.n_studies} studies)"
        n_agg = self.n_studies if self.aggregated is None else len(self.aggregated.study)
        agg_data = f"study averages ({n_agg} studies)"
        rows: list[dict] = []

        def add(
            key: str, method: str, aggregated: bool, values: dict | None, why: str = WHY_ALL
        ) -> None:
            row = {
                "method_key": key,
                "method": method,
                "aggregated": aggregated,
                "data": agg_data if aggregated else all_data,
                "why": why_agg if aggregated else why,
                "k": n_agg if aggregated else self.k,
            }
            if values is None:
                row["note"] = f"not computed: {self.not_computed.get(key, 'not available')}"
            else:
                row.update(values)
            rows.append(row)

        def ci(lb: float | None, ub: float | None) -> dict:
            return {"ci_lb": lb, "ci_ub": ub}

        def intercept(fit: Any, stat: np.ndarray, **df: Any) -> dict:
            """The statistic (with ``df`` if given), p, estimate, SE and CI of the first
            coefficient of ``fit``."""
            first = {"value": float(stat[0]), **df, "p": float(fit.pval[0])}
            estimate = {"estimate": float(fit.b[0]), "se": float(fit.se[0])}
            return {**first, **estimate, **ci(float(fit.ci_lb[0]), float(fit.ci_ub[0]))}

        def egger(e: Any, note: str, statistic: str | None = None) -> dict | None:
            """The row values of an Egger-type test (slope on SE; intercept = adjusted)."""
            if e is None:
                return None
            return {
                "statistic": statistic or f"{e.stat_name[0]} (slope on SE)",
                "value": e.statistic,
                "df": e.dfs,
                "p": e.pval,
                "estimate": e.limit_estimate,
                "se": e.limit_se,
                **ci(e.limit_ci_lb, e.limit_ci_ub),
                "note": note,
            }

        # (a) three-level Egger-type test
        e = self.egger_multilevel
        add(
            "egger_multilevel",
            f"Egger-type test, three-level model ({self.spec.method}; SE as moderator)",
            False,
            egger(
                e,
                ""
                if e is None
                else f"slope = {e.slope:.4g} (SE {e.slope_se:.4g}); the adjusted estimate is "
                "the intercept, the effect of a study with SE 0 (Rodgers & Pustejovsky 2021)",
            ),
        )
        r = self.egger_multilevel_cr2
        add(
            "egger_multilevel_cr2",
            "Egger-type test, three-level model, CR2 cluster-robust",
            False,
            None
            if r is None
            else {
                "statistic": "t (slope on SE, Satterthwaite df)",
                "value": r["slope"]["tstat"],
                "df": r["slope"]["df_satt"],
                "p": r["slope"]["p_satt"],
                "estimate": r["intercept"]["beta"],
                "se": r["intercept"]["se"],
                **ci(r["intercept"]["ci_lower"], r["intercept"]["ci_upper"]),
                "note": f"CR2 robust variance clustered by study ({self.n_studies} clusters)",
            },
        )
        sm = self.selection
        add(
            "selection",
            "Selection model (step function, composite likelihood clustered by study)",
            False,
            None if sm is None else _selection_row(sm),
            why="all effect sizes; their dependence within studies is handled by a sandwich "
            "variance clustered by study and a bootstrap of studies",
        )
        pp = self.pet_peese_model
        add(
            "pet_peese_model",
            f"PET-PEESE in the three-level model ({pp.chosen if pp else 'PET or PEESE'}), CR2",
            False,
            None
            if pp is None
            else {
                "statistic": f"t (PET intercept, one-sided {pp.alternative}, CR2)",
                "value": pp.pet.intercept["tstat"],
                "df": pp.pet.intercept["df_satt"],
                "p": pp.pet_pval_test,
                "estimate": pp.estimate,
                "se": pp.se,
                **ci(pp.ci_lb, pp.ci_ub),
                "note": pp.rule + (f"; {pp.note}" if pp.note else ""),
            },
        )
        # (b) study averages
        u = self.unadjusted
        add(
            "unadjusted",
            f"Unadjusted pooled estimate (random-effects model, {self.options.univariate_method})"
            if self.options.univariate_method != "FE"
            else "Unadjusted pooled estimate (fixed-effect model)",
            True,
            None
            if u is None
            else {
                "statistic": "z",
                **intercept(u, u.stat),
                "note": "not adjusted: the reference for the adjusted estimates below"
                + ("" if u.tau2 is None else f"; tau2 = {u.tau2:.4g}"),
            },
        )
        e = self.egger_lm
        add(
            "egger_lm",
            "Egger's regression test (classic, weighted least squares)",
            True,
            egger(
                e,
                "lm(yi ~ sei, weights = 1/vi) (Egger et al. 1997); the adjusted estimate "
                "is the intercept",
                statistic="t (slope on SE)",
            ),
        )
        e = self.egger_rma
        add(
            "egger_rma",
            f"Egger-type meta-regression test ({self.options.univariate_method}; SE as moderator)",
            True,
            egger(e, "metafor regtest(model = 'rma'); the adjusted estimate is the intercept"),
        )
        rt = self.ranktest
        add(
            "ranktest",
            "Rank correlation test (Begg & Mazumdar)",
            True,
            None
            if rt is None
            else {
                "statistic": "Kendall's tau",
                "value": rt.tau,
                "p": rt.pval,
                "note": "exact p" if rt.exact else "normal approximation (ties)",
            },
        )
        tf = self.trimfill
        add(
            "trimfill",
            f"Trim and fill ({self.options.trimfill_estimator}, {self.options.univariate_method})",
            True,
            None
            if tf is None
            else {
                "statistic": f"k0 (studies filled in, {tf.side} side)",
                "value": tf.k0,
                "p": tf.p_k0,
                "estimate": tf.estimate,
                "se": tf.se,
                **ci(tf.ci_lb, tf.ci_ub),
                "note": f"SE of k0 = {tf.se_k0:.3g}; adjusted estimate from {tf.k} studies "
                f"(z test p = {tf.pval:.3g})" + ("" if tf.p_k0 is None else "; p tests k0 = 0"),
            },
        )
        pp = self.pet_peese
        for key, name, wls in (
            ("pet", "PET (precision-effect test)", None if pp is None else pp.pet),
            (
                "peese",
                "PEESE (precision-effect estimate with SE)",
                None if pp is None else pp.peese,
            ),
        ):
            add(
                "pet_peese",
                name,
                True,
                None
                if wls is None
                else {
                    "statistic": "t (intercept: the adjusted estimate)",
                    **intercept(wls, wls.tval, df=wls.df),
                    "note": f"lm(yi ~ {'sei' if key == 'pet' else 'vi'}, weights = 1/vi); the "
                    "adjusted estimate is the intercept (two-sided test); slope = "
                    f"{wls.b[1]:.4g} (t = {wls.tval[1]:.3g}, p = {wls.pval[1]:.3g})",
                },
            )
        add(
            "pet_peese",
            "PET-PEESE (conditional estimate)",
            True,
            None
            if pp is None
            else {
                "statistic": "t (PET intercept, one-sided)",
                "value": float(pp.pet.tval[0]),
                "df": pp.pet.df,
                "p": pp.pet_pval_one_sided,
                "estimate": pp.estimate,
                "se": pp.se,
                **ci(pp.ci_lb, pp.ci_ub),
                "note": f"{pp.chosen} chosen: PET's intercept is "
                + ("" if pp.chosen == "PEESE" else "not ")
                + f"significant at {pp.alpha:g} ({pp.alternative}) (Stanley & Doucouliagos 2014)",
            },
        )
        fr = self.fsn_rosenthal
        add(
            "fsn_rosenthal",
            "Fail-safe N (Rosenthal)",
            True,
            None
            if fr is None
            else {
                "statistic": "N (null studies to make p > alpha)",
                "value": fr.fsnum,
                "p": fr.pval,
                "note": f"alpha = {fr.alpha:g}; p of the combined one-sided Stouffer test",
            },
        )
        fo = self.fsn_orwin
        add(
            "fsn_orwin",
            "Fail-safe N (Orwin)",
            True,
            None
            if fo is None
            else {
                "statistic": "N (null studies to reach the target)",
                "value": fo.fsnum,
                "note": f"target effect {fo.target:.4g} "
                + ("(half the mean)" if self.options.fsn_target is None else "(config)")
                + f"; unweighted mean of the study averages {fo.meanes:.4g}",
            },
        )
        return result_table(rows, headers, self.spec.level)

    def to_frame(self) -> pd.DataFrame:
        """The readable table (``tables/bias.csv``): one row per test or method."""
        return self.bias_table().to_frame()

    def trimfill_frame(self) -> pd.DataFrame:
        """The trim-and-fill data (``tables/trimfill_data.csv``).

        Columns: ``study`` (empty for filled-in studies), ``yi``, ``vi``, ``sei``, ``filled``.
        """
        cols = ["study", "yi", "vi", "sei", "filled"]
        tf = self.trimfill
        if tf is None:
            return pd.DataFrame(columns=cols)
        frame = tf.filled_data().rename(columns={"fill": "filled"})
        studies = list(self.aggregated.study) if self.aggregated is not None else []
        frame.insert(0, "study", studies + [None] * (len(frame) - len(studies)))
        return frame[cols]

    def funnel_frame(self) -> pd.DataFrame:
        """The funnel-plot data (``tables/funnel_data.csv``), one long table.

        Columns: ``panel`` (``effect sizes`` or ``study averages``), ``kind`` (``point``,
        ``filled`` for trim-and-fill's filled-in studies, ``contour``), ``study``,
        ``effect_size`` (the effect-size key; empty for study averages), ``yi``, ``vi``,
        ``sei``, ``centre`` (the panel's pooled estimate), and for contours ``level``,
        ``lower``, ``upper`` (:math:`\\hat\\theta \\pm z_{(1+level)/2}\\,se`).
        """
        cols = [
            "panel",
            "kind",
            "study",
            "effect_size",
            "yi",
            "vi",
            "sei",
            "centre",
            "level",
            "lower",
            "upper",
        ]
        parts = []
        if self.model is not None and self.data is not None:
            data = self.data
            centre = float(self.model.b[0])
            fd = bias.funnel_data(data["yi"], data["vi"], centre, levels=FUNNEL_LEVELS)
            pts = fd.points.assign(
                kind="point",
                study=data["study"].to_numpy(),
                effect_size=data["effect_size"].to_numpy(),
            )
            parts += [
                pts.assign(panel="effect sizes", centre=centre),
                fd.contours.assign(panel="effect sizes", kind="contour", centre=centre),
            ]
        if self.aggregated is not None and self.unadjusted is not None:
            agg = self.aggregated
            centre = float(self.unadjusted.b[0])
            fd = bias.funnel_data(agg.yi, agg.vi, centre, levels=FUNNEL_LEVELS)
            pts = fd.points.assign(kind="point", study=list(agg.study))
            parts += [
                pts.assign(panel="study averages", centre=centre),
                fd.contours.assign(panel="study averages", kind="contour", centre=centre),
            ]
            if self.trimfill is not None and self.trimfill.k0 > 0:
                filled = self.trimfill.filled_data()
                filled = filled.loc[filled["fill"].to_numpy(), ["yi", "vi", "sei"]]
                parts.append(filled.assign(panel="study averages", kind="filled", centre=centre))
        if not parts:
            return pd.DataFrame(columns=cols)
        frame = pd.concat(parts, ignore_index=True)
        return frame.reindex(columns=cols)

    def tables(self) -> dict[str, ResultTable]:
        """The step's tables by name (kept in ``models/bias.json`` under ``tables``); the
        trim-and-fill and funnel data have machine keys as their CSV headers."""
        data = {"trimfill": self.trimfill_frame(), "funnel": self.funnel_frame()}
        out = {"bias": self.bias_table()}
        for name, frame in data.items():
            out[name] = result_table(frame, {c: c for c in frame.columns})
        return out


# --------------------------------------------------------------------------- analysis
def _attempt(
    key: str, what: str, func: Callable[[], T], errors: dict[str, str], flags: Flags
) -> T | None:
    """Run one method; a method the data cannot support is recorded, flagged and skipped."""
    try:
        return func()
    except (ValueError, ModelError, RuntimeError, np.linalg.LinAlgError) as err:
        errors[key] = str(err)
        flags.add(f"{what}: not computed ({err})")
        return None


def _robust_egger(ad: AnalysisData, spec: ModelSpec, flags: Flags) -> dict:
    """The three-level Egger-type model with CR2 tests of its intercept and slope (flagged as
    :meth:`Flags.check_robust` says)."""
    col = "sei__egger"
    while col in ad.data.columns:
        col = "_" + col
    data = ad.data.copy()
    data[col] = np.sqrt(data["vi"].to_numpy(dtype=float))
    res = fit_model(ad, spec, mods=[col], data=data)
    rob = res.robust(cluster=ad.cluster, level=spec.level)
    flags.check_robust(res, rob, "three-level Egger-type test")
    out: dict = {"intercept": rob.coef_test(0), "slope": rob.coef_test(col)}
    out["clusters"] = ad.n_clusters
    out["type"] = "CR2"
    return out


def bias_analysis(
    ad: AnalysisData,
    spec: ModelSpec,
    options: BiasOptions | Mapping[str, Any] | None = None,
    flags: Flags | None = None,
    *,
    seed: int | None = None,
    measure: str = "SMD",
    group_sizes: tuple[Any, Any] = (None, None),
) -> BiasResult:
    r"""Run the publication-bias methods on the analysis data (see the module docstring).

    Parameters
    ----------
    ad : the effect sizes with their study and effect-size keys
    spec : the model settings (``config["models"]``): the three-level Egger-type test uses its
        method (REML/ML), test (``knha`` becomes ``t``) and level
    options : the ``bias`` settings (:class:`BiasOptions` or the config section)
    flags : where flags go (a new ``Flags("bias")`` if None)
    seed : seed of the selection model's cluster bootstrap
    measure : the effect measure (PET-PEESE's modified standard error is for SMDs)
    group_sizes : the two group sizes per effect size (arrays, NaN where unknown), for the
        modified standard error :math:`\sqrt{1/n_1 + 1/n_2}` (Pustejovsky & Rodgers 2019)

    Returns
    -------
    BiasResult
        Methods the data cannot support are None, with the reason in ``not_computed``.
    """
    opts = options if isinstance(options, BiasOptions) else BiasOptions.from_config(options)
    flags = flags if flags is not None else Flags(STEP)
    errors: dict[str, str] = {}
    spec3 = dataclasses.replace(spec, structure="three_level")
    call3 = model_call(ad, spec3)
    if ad.n_studies < MIN_STUDIES_ASYMMETRY:
        flags.add(
            f"only {ad.n_studies} studies: tests of funnel-plot asymmetry have too little power "
            f"with fewer than {MIN_STUDIES_ASYMMETRY} (Sterne et al. 2011)"
        )

    flags.check_tiny_vi(
        ad.data[ad.es].to_numpy(dtype=object),
        ad.data[VI].to_numpy(dtype=float),
        key_name=ad.es,
        consequence="it can dominate the Egger-type tests, the fail-safe N and trim and fill",
    )

    # the analysis model: the centre of the effect-size funnel
    model = _attempt(
        "model",
        "analysis model (funnel centre)",
        lambda: fit_model(ad, spec),
        errors,
        flags,
    )
    if model is not None:
        flags.check_fit(model, "analysis model (funnel centre)")

    # (a) all effect sizes, three-level model
    def multilevel() -> bias.RegTest:
        if ad.n_studies < 2:
            raise ValueError("needs at least 2 studies")
        return bias.regtest_multilevel(
            ad.data,
            "yi",
            "vi",
            random=ad.random,
            predictor="sei",
            method=call3.method,
            test=call3.test,
            level=call3.level,
        )

    egger_ml = _attempt(
        "egger_multilevel", "three-level Egger-type test", multilevel, errors, flags
    )
    egger_cr2 = None
    if egger_ml is not None and not egger_ml.converged:
        flags.add("three-level Egger-type test: the optimizer did not converge")
    if egger_ml is not None:
        egger_cr2 = _attempt(
            "egger_multilevel_cr2",
            "three-level Egger-type test (CR2)",
            lambda: _robust_egger(ad, spec3, flags),
            errors,
            flags,
        )
    else:
        errors["egger_multilevel_cr2"] = errors.get("egger_multilevel", "not available")

    # (b) study averages
    agg = _attempt(
        "aggregated",
        "study averages",
        lambda: bias.aggregate_by_study(ad.data, ad.study, "yi", "vi", rho=opts.aggregate_rho),
        errors,
        flags,
    )
    result: dict[str, Any] = {}
    if agg is not None:
        y, v = agg.yi, agg.vi
        method = opts.univariate_method
        level = spec.level
        methods: dict[str, tuple[str, Callable[[], Any]]] = {
            "unadjusted": (
                "model of the study averages",
                lambda: fit(
                    pd.DataFrame({"yi": y, "vi": v}),
                    "yi",
                    "vi",
                    method=method,
                    test="z",
                    level=level,
                ),
            ),
            "egger_lm": (
                "Egger's test (study averages)",
                lambda: bias.regtest(y, v, model="lm", predictor="sei", level=level),
            ),
            "egger_rma": (
                "Egger-type meta-regression test (study averages)",
                lambda: bias.regtest(
                    y, v, model="rma", predictor="sei", method=method, test="z", level=level
                ),
            ),
            "ranktest": ("rank correlation test (study averages)", lambda: bias.ranktest(y, v)),
            "trimfill": (
                "trim and fill (study averages)",
                lambda: bias.trimfill(
                    y, v, method=method, estimator=opts.trimfill_estimator, level=level
                ),
            ),
            "pet_peese": (
                "PET-PEESE (study averages)",
                lambda: bias.pet_peese(y, v, alpha=ALPHA, level=level),
            ),
            "fsn_rosenthal": (
                "fail-safe N, Rosenthal (study averages)",
                lambda: bias.fsn(y, v, type="Rosenthal", alpha=ALPHA),
            ),
            "fsn_orwin": (
                "fail-safe N, Orwin (study averages)",
                lambda: bias.fsn(y, v, type="Orwin", target=opts.fsn_target),
            ),
        }
        for key, (what, func) in methods.items():
            result[key] = _attempt(key, what, func, errors, flags)
        if result.get("unadjusted") is not None:
            flags.check_fit(result["unadjusted"], "model of the study averages")
        if result.get("egger_rma") is not None and not result["egger_rma"].converged:
            flags.add(f"{methods['egger_rma'][0]}: the optimizer did not converge")
        if result.get("trimfill") is not None and result["trimfill"].fit is not None:
            flags.check_fit(result["trimfill"].fit, "trim and fill, the filled-in model")
    else:
        for key in (
            "unadjusted",
            "egger_lm",
            "egger_rma",
            "ranktest",
            "trimfill",
            "pet_peese",
            "fsn_rosenthal",
            "fsn_orwin",
        ):
            errors.setdefault(key, errors.get("aggregated", "no study averages"))

    # (c) all effect sizes, their dependence handled: the selection model (composite likelihood,
    # clustered by study; Pustejovsky, Citkowicz & Joshi 2025) and PET-PEESE in the working model
    def selection() -> SelectionModel:
        return selection_model(
            ad.data["yi"].to_numpy(dtype=float),
            ad.data["vi"].to_numpy(dtype=float),
            cluster=ad.data[ad.study].astype(str).to_numpy(),
            steps=opts.selection_steps,
            alternative=opts.selection_alternative,
            bootstrap=int(opts.selection_bootstrap),
            seed=seed,
            level=spec.level,
        )

    sel = _attempt("selection", "selection model (all effect sizes)", selection, errors, flags)
    if sel is not None and not sel.converged:
        flags.add("selection model: the optimizer did not converge")

    def working_model_pet_peese() -> PetPeeseWorkingModel:
        n1, n2 = group_sizes
        rows = ad.data.assign(_n1=n1, _n2=n2) if n1 is not None else ad.data
        return pet_peese_working_model(
            rows,
            call3,
            measure=measure,
            n1="_n1" if n1 is not None else None,
            n2="_n2" if n1 is not None else None,
            cluster=ad.study,
            alpha=ALPHA,
        )

    pp_model = _attempt(
        "pet_peese_model", "PET-PEESE (working model)", working_model_pet_peese, errors, flags
    )

    data = pd.DataFrame(
        {
            "study": ad.data[ad.study].to_numpy(),
            "effect_size": ad.data[ad.es].to_numpy(),
            "yi": ad.data["yi"].to_numpy(dtype=float),
            "vi": ad.data["vi"].to_numpy(dtype=float),
        }
    )
    return BiasResult(
        options=opts,
        spec=spec,
        study=ad.study,
        es=ad.es,
        k=ad.k,
        n_studies=ad.n_studies,
        model=model,
        egger_multilevel=egger_ml,
        egger_multilevel_cr2=egger_cr2,
        aggregated=agg,
        selection=sel,
        pet_peese_model=pp_model,
        not_computed=errors,
        flags=tuple(flags.lines),
        data=data,
        **result,
    )


def _selection_row(sm: SelectionModel) -> dict:
    """The bias-table values of the selection model: its LRT of selection and adjusted mean."""
    m = sm.adjusted_mean
    weights = "; ".join(
        f"weight for {lab}: {w.estimate:.3g}"
        for lab, w in zip(sm.intervals[1:], sm.weights[1:], strict=True)
    )
    boot = (
        f"; cluster-bootstrap {100 * sm.level:g}% CI [{m.boot_ci_lb:.4g}, {m.boot_ci_ub:.4g}] "
        f"({sm.bootstrap_converged} of {sm.bootstrap} replications)"
        if m.boot_ci_lb is not None
        else ""
    )
    return {
        "statistic": "LRT of selection (chi2)",
        "value": sm.lrt,
        "df": sm.lrt_df,
        "p": sm.lrt_pval,
        "estimate": m.estimate,
        "se": m.se,
        "ci_lb": m.ci_lb,
        "ci_ub": m.ci_ub,
        "note": f"{weights} (p < {sm.steps[0]:g} has weight 1){boot}; unadjusted mean "
        f"{sm.unadjusted_mean.estimate:.4g}; the LRT rejects too often when effect sizes are "
        "dependent (Rodgers & Pustejovsky 2021): read the weights and the bootstrap CI",
    }


# --------------------------------------------------------------------------- step
def _group_sizes(ad: AnalysisData) -> tuple[Any, Any]:
    """The intervention and control group sizes of each effect size (the columns holding the
    roles ``n_int`` and ``n_ctl``, as the codebook names them; NaN where unknown)."""
    roles = role_columns(ad.codebook.statistic_columns())
    return role_values(ad.data, roles, "n_int"), role_values(ad.data, roles, "n_ctl")


def run_bias(
    *,
    effect_sizes: str | Path,
    codebook: str | Path,
    table: str | Path,
    trimfill: str | Path,
    funnel: str | Path,
    json: str | Path,
    flags: str | Path,
    models: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    flag_rules: Mapping[str, Any] | None = None,
    seed: int | None = None,
    measure: str = "SMD",
) -> BiasResult:
    """The bias step: read the effect sizes, run :func:`bias_analysis`, write every output
    (``table``, the ``trimfill`` and ``funnel`` data, the ``json`` results and the ``flags``,
    whose thresholds are ``flag_rules``, the config's ``flags``)."""
    step_flags = Flags(STEP, rules=FlagRules.from_config(flag_rules))
    spec = ModelSpec.from_config(models)
    ad = load_analysis_data(effect_sizes, codebook, levels=spec.levels)
    opts = BiasOptions.from_config(options)
    log.info("bias: %d effect sizes from %d studies; %s", ad.k, ad.n_studies, opts)
    result = bias_analysis(
        ad, spec, opts, step_flags, seed=seed, measure=measure, group_sizes=_group_sizes(ad)
    )
    write_table(result.to_frame(), table)
    write_table(result.trimfill_frame(), trimfill)
    write_table(result.funnel_frame(), funnel)
    write_json(result.to_dict(), json)
    step_flags.write(flags)
    return result


__all__ = ["BiasOptions", "BiasResult", "bias_analysis", "run_bias"]
