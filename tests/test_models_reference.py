"""The model core against metafor 3.8-1 (R 4.2.2) reference values.

Every case in ``tests/reference/*.json`` that concerns the model core is run: ``uni_*``
(+ ``_knha``), ``predict_reml*``, ``confint_*``, ``metareg_*`` and the three-level ``ml3_*`` cases
(except the robust-variance ``*_cr2`` / ``*_wald_htz_*`` ones), plus every case of
``tests/reference/extra/models_extra_reference.json`` (made by ``models_extra_reference.R`` beside
it). The R call of each case is stored beside its results in the JSON (see
``tests/reference/README.md``); the fit arguments are read from that call.

Tolerances (brief): 1e-6 relative; variance components 1e-5; closed-form estimators (EE, FE, DL,
HE, HS, HSk) 1e-10.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models import fit

REF = Path(__file__).parent / "reference"
DATASETS = [
    "bcg_rr",
    "bcg_or",
    "normand1999_smd",
    "molloy2014_zcor",
    "konstantopoulos2011",
    "assink2016",
    "bangertdrowns2004",
    "hackshaw1998",
]
CLOSED_FORM = {"EE", "FE", "DL", "HE", "HS", "HSk"}
EXTRA = REF / "extra" / "models_extra_reference.json"
ENGINE_CASE = re.compile(r"^(uni_|predict_reml|confint_|metareg_|ml3_)")
NOT_ENGINE = re.compile(r"(_cr2$|_wald_htz_)")
# metafor computes these closed-form fits through explicit k x k matrices; on this ill-conditioned
# design (year ~ 1948-1980 beside an intercept) its values are ~1e-10 to 1e-9 (relative) off the
# exact ones, which ours match to ~1e-13: see test_ill_conditioned_metaregression_is_exact.
ILL_CONDITIONED = {("bcg_rr", "metareg_ablat_year_fe"), ("bcg_rr", "metareg_ablat_year_dl")}
ILL_CONDITIONED_XFAIL = pytest.mark.xfail(
    strict=True,
    reason="metafor's own rounding error (~1e-9) exceeds the 1e-10 closed-form tolerance here",
)


@cache
def load(dataset: str) -> dict:
    if dataset == "extra":
        return json.loads(EXTRA.read_text())
    return json.loads((REF / f"{dataset}.json").read_text())


@cache
def data(dataset: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{dataset}.csv")


def engine_cases() -> list:
    out = []
    for ds in DATASETS:
        for name in load(ds)["cases"]:
            if ENGINE_CASE.match(name) and not NOT_ENGINE.search(name):
                marks = [ILL_CONDITIONED_XFAIL] if (ds, name) in ILL_CONDITIONED else []
                out.append(pytest.param(ds, name, id=f"{ds}-{name}", marks=marks))
    for name in load("extra")["cases"]:
        out.append(pytest.param("extra", name, id=f"extra-{name}"))
    return out


def case_data(dataset: str, case: str) -> tuple[dict, pd.DataFrame]:
    """The case entry and its data set (extra cases are named ``<dataset>__<case>``)."""
    entry = load(dataset)["cases"][case]
    stem = case.split("__")[0] if dataset == "extra" else dataset
    return entry, data(stem)


def fit_from_call(df: pd.DataFrame, call: str, reduced: bool = False):
    """Fit the model of the first (second if ``reduced``) rma/rma.mv call of a case."""
    df = df.copy()
    if "dat$grp <- (dat$study - 1) %/% 4" in call:
        df["grp"] = (df["study"] - 1) // 4
    calls = re.findall(r"rma(?:\.mv)?\((?:[^()]|\([^()]*\))*\)", call)
    text = calls[1] if reduced else calls[0]
    kwargs: dict = {}
    m = re.search(r'method="(\w+)"', text)
    kwargs["method"] = m.group(1) if m else "REML"
    m = re.search(r'test="(\w+)"', text)
    kwargs["test"] = m.group(1) if m else "z"
    m = re.search(r"level=(\d+)", text)
    if m:
        kwargs["level"] = float(m.group(1)) / 100
    m = re.search(r"tau2=([\d.]+)", text)
    if m:
        kwargs["tau2_fixed"] = float(m.group(1))
    m = re.search(r"mods = ~ (.*?), (?:data|method|test|random)=", text)
    if m:
        formula = m.group(1).strip()
        if formula.endswith("- 1"):
            kwargs["intercept"] = False
            formula = formula[: -len("- 1")]
        mods = []
        for term in (t.strip() for t in formula.split("+")):
            f = re.fullmatch(r"factor\((\w+)\)", term)
            if f:  # R's factor(x) on an integer column: a categorical column named as R names it
                df[term] = df[f.group(1)].map(lambda x: None if pd.isna(x) else str(int(x)))
            mods.append(term)
        kwargs["mods"] = mods
    m = re.search(r"random = ~ 1 \| ([\w/]+)", text)
    if m:
        kwargs["random"] = m.group(1).split("/")
    m = re.search(r"sigma2=c\(([^)]*)\)", text)
    if m:
        kwargs["sigma2_fixed"] = [
            None if v.strip() == "NA" else float(v) for v in m.group(1).split(",")
        ]
    return fit(df, **kwargs)


def newmods_from_call(call: str) -> np.ndarray | None:
    """``predict(res, newmods=rbind(c(...), ...))`` -> the rows (without intercept)."""
    m = re.search(r"newmods=rbind\((.*)\)\)", call)
    if not m:
        return None
    rows = re.findall(r"c\(([^)]*)\)", m.group(1))
    return np.array([[float(x) for x in row.split(",")] for row in rows])


def close(actual, expected, rtol: float, atol: float = 1e-12, what: str = "") -> None:
    if expected is None:
        assert actual is None or (np.ndim(actual) == 0 and np.isnan(actual)), what
        return
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float),
        np.asarray(expected, dtype=float),
        rtol=rtol,
        atol=atol,
        err_msg=what,
    )


def check_coefficients(res, r: dict, rtol: float) -> None:
    assert list(res.coef_names) == r["coef_names"]
    assert res.k == r["k"] and res.p == r["p"]
    for key in ("b", "se", "pval", "ci_lb", "ci_ub"):
        close(getattr(res, key), r[key], rtol, what=key)
    stat = "zval" if "zval" in r else "tval"
    close(getattr(res, stat), r[stat], rtol, what=stat)
    if "dfs" in r:
        # rma.uni stores one df (k - p), rma.mv one per coefficient
        close(res.dfs, np.broadcast_to(r["dfs"], res.dfs.shape), 0, what="dfs")
    close(res.vb, r["vb"], rtol, atol=1e-14, what="vb")
    close(res.QE, r["qe"], rtol, what="qe")
    close(res.QEp, r["qep"], rtol, atol=1e-300, what="qep")
    assert res.QE_df == r["qe_df"]
    close(res.QM, r["qm"], rtol, what="qm")
    close(res.QMp, r["qmp"], rtol, atol=1e-300, what="qmp")
    assert res.QMdf[0] == r["qmdf"][0]
    assert (res.QMdf[1] is None) == (r["qmdf"][1] is None)
    if r["qmdf"][1] is not None:
        assert res.QMdf[1] == r["qmdf"][1]
    fs = r["fit_stats"]
    assert res.fit_stats_type == fs["type"]
    for ours, theirs in (
        ("logLik", "loglik"),
        ("deviance", "deviance"),
        ("AIC", "aic"),
        ("BIC", "bic"),
        ("AICc", "aicc"),
    ):
        close(getattr(res, ours), fs[theirs], rtol, what=theirs)


FIT_STAT_NAMES = {
    "loglik": "loglik",
    "deviance": "deviance",
    "aic": "AIC",
    "bic": "BIC",
    "aicc": "AICc",
}


@pytest.mark.parametrize(("dataset", "case"), engine_cases())
def test_engine_matches_metafor(dataset: str, case: str) -> None:
    entry, df = case_data(dataset, case)
    call, r = entry["call"], entry["results"]

    if "anova(" in call:  # likelihood-ratio test of one level (anova.rma)
        full = fit_from_call(df, call)
        reduced = fit_from_call(df, call, reduced=True)
        fixed_level = [n for n, f in reduced.variance_fixed.items() if f][0]
        lt = {t.level: t for t in full.level_tests}[fixed_level]
        close(lt.lrt, r["lrt"], 1e-6, what="lrt")
        close(lt.pval, r["pval"], 1e-6, atol=1e-300, what="pval")
        assert lt.df == r["df"]
        assert (lt.parms_full, lt.parms_reduced) == (r["parms_full"], r["parms_reduced"])
        close(list(lt.sigma2_full.values()), r["sigma2_full"], 1e-5, what="sigma2_full")
        close(list(lt.sigma2_reduced.values()), r["sigma2_reduced"], 1e-5, what="sigma2_reduced")
        for key, val in r["fit_stats_reduced"].items():
            close(lt.fit_stats_reduced[FIT_STAT_NAMES[key]], val, 1e-6, what=f"reduced {key}")
            close(
                reduced.fit_stats[reduced.fit_stats_type][FIT_STAT_NAMES[key]], val, 1e-6, what=key
            )
        for key, val in r["fit_stats_full"].items():
            close(full.fit_stats[full.fit_stats_type][FIT_STAT_NAMES[key]], val, 1e-6, what=key)
        close(lt.b_reduced, r["b_reduced"], 1e-6, what="b_reduced")
        close(lt.se_reduced, r["se_reduced"], 1e-6, what="se_reduced")
        close(reduced.b, r["b_reduced"], 1e-6, what="reduced fit b")
        return

    res = fit_from_call(df, call)
    if "predict(" in call:
        newmods = newmods_from_call(call)
        pr = res.prediction if newmods is None else res.predict(newmods)
        for key in ("pred", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub"):
            close(getattr(pr, key), np.atleast_1d(r[key]), 1e-6, what=key)
        return

    if "confint(" in call:
        for key in ("tau2", "tau", "i2", "h2"):
            ours = getattr(res.confint, key)
            for bound in ("estimate", "ci_lb", "ci_ub"):
                close(getattr(ours, bound), r[key][bound], 1e-6, what=f"{key} {bound}")
        return

    if "typical_v" in call:  # multilevel variance distribution
        vd = res.variance_distribution
        outer, inner = res.random
        close(list(res.sigma2.values()), r["sigma2"], 1e-5, what="sigma2")
        close(vd.typical_v, r["typical_v"], 1e-10, what="typical_v")
        close(vd.i2_total, r["i2_total"], 1e-5, what="i2_total")
        close(vd.i2[outer], r["i2_level3_between"], 1e-5, what="i2 level 3")
        close(vd.i2[inner], r["i2_level2_within"], 1e-5, what="i2 level 2")
        close(vd.i2_sampling, r["i2_level1_sampling"], 1e-5, what="i2 level 1")
        return

    if "rma.mv" in call:
        check_coefficients(res, r, 1e-6)
        s_names = [r["s_names"]] if isinstance(r["s_names"], str) else r["s_names"]
        assert list(res.sigma2) == [name.split("/")[-1] for name in s_names]
        ours, theirs = np.array(list(res.sigma2.values())), np.atleast_1d(r["sigma2"])
        # rma.mv optimises log(sigma2), so at a boundary optimum it reports ~1e-9 where ours is 0
        boundary = theirs < 1e-8
        close(ours[~boundary], theirs[~boundary], 1e-5, what="sigma2")
        assert np.all(ours[boundary] <= 1e-8), "boundary component"
        if boundary.any():
            assert res.logLik >= r["fit_stats"]["loglik"] - 1e-9
        assert list(res.n_levels.values()) == list(np.atleast_1d(r["s_nlevels"]))
        assert res.converged
        return

    # rma(): one-level model
    closed = r["method"] in CLOSED_FORM
    rtol = 1e-10 if closed else 1e-6
    check_coefficients(res, r, rtol)
    vrtol = 1e-10 if closed else 1e-5
    close(res.tau2, r["tau2"], vrtol, what="tau2")
    if not res.variance_fixed["tau2"]:
        close(res.se_tau2, r["se_tau2"], vrtol, what="se_tau2")
    close(res.I2, r["i2"], vrtol, what="i2")
    close(res.H2, r["h2"], vrtol, what="h2")
    close(res.weights_pct, r["weights_pct"], rtol, what="weights")
    if "r2" in r:
        close(res.R2, r["r2"], vrtol, atol=1e-10, what="r2")


def test_every_engine_case_is_collected() -> None:
    """The parametrisation covers all engine cases of all reference files (none silently lost)."""
    n = sum(
        1
        for f in REF.glob("*.json")
        if "cases" in (d := json.loads(f.read_text()))
        for c in d["cases"]
        if ENGINE_CASE.match(c) and not NOT_ENGINE.search(c)
    )
    n += len(load("extra")["cases"])
    assert n == len(engine_cases())


def _exact_wls(X: list, y: list, w: list) -> tuple[list, list]:
    """Weighted least squares in exact rational arithmetic: (beta, (X'WX)^-1)."""
    p = len(X[0])
    A = [
        [sum(r[a] * wi * r[b] for r, wi in zip(X, w, strict=True)) for b in range(p)]
        for a in range(p)
    ]
    rhs = [sum(r[a] * wi * yi for r, wi, yi in zip(X, w, y, strict=True)) for a in range(p)]
    aug = [A[i] + [rhs[i]] + [Fraction(int(i == j)) for j in range(p)] for i in range(p)]
    for c in range(p):  # Gauss-Jordan elimination (exact, no pivoting needed: A is PD)
        aug[c] = [x / aug[c][c] for x in aug[c]]
        for r in range(p):
            if r != c:
                aug[r] = [x - aug[r][c] * z for x, z in zip(aug[r], aug[c], strict=True)]
    return [row[p] for row in aug], [row[p + 1 :] for row in aug]


def test_ill_conditioned_metaregression_is_exact() -> None:
    """bcg_rr ``~ ablat + year`` (FE and DL) in exact rational arithmetic on the CSV's doubles.

    Ours agrees with the exact values to ~1e-13; metafor's (computed through k x k matrices) is
    ~1e-10 to 1e-9 off, which is why these two cases are expected to fail at the 1e-10
    closed-form tolerance above (they agree with metafor to 1e-8).
    """
    df = data("bcg_rr")
    X = [
        [Fraction(1), Fraction(float(a)), Fraction(float(yr))]
        for a, yr in zip(df.ablat, df.year, strict=True)
    ]
    y = [Fraction(float(v)) for v in df.yi]
    v = [Fraction(float(x)) for x in df.vi]
    k, p = len(y), 3
    w = [1 / x for x in v]
    beta_fe, H = _exact_wls(X, y, w)
    resid = [
        yi - sum(a * b for a, b in zip(r, beta_fe, strict=True)) for r, yi in zip(X, y, strict=True)
    ]
    qe = sum(wi * e * e for wi, e in zip(w, resid, strict=True))
    xw2x = [
        [sum(r[a] * wi * wi * r[b] for r, wi in zip(X, w, strict=True)) for b in range(p)]
        for a in range(p)
    ]
    tr_p = sum(w) - sum(H[a][b] * xw2x[b][a] for a in range(p) for b in range(p))
    tau2 = (qe - (k - p)) / tr_p
    beta_dl, _ = _exact_wls(X, y, [1 / (x + tau2) for x in v])

    fe = fit(df, mods=["ablat", "year"], method="FE")
    dl = fit(df, mods=["ablat", "year"], method="DL")
    np.testing.assert_allclose(fe.b, [float(b) for b in beta_fe], rtol=1e-12)
    np.testing.assert_allclose(fe.QE, float(qe), rtol=1e-12)
    np.testing.assert_allclose(dl.tau2, float(tau2), rtol=1e-12)
    np.testing.assert_allclose(dl.b, [float(b) for b in beta_dl], rtol=1e-12)
    for res, case in ((fe, "metareg_ablat_year_fe"), (dl, "metareg_ablat_year_dl")):
        r = load("bcg_rr")["cases"][case]["results"]
        np.testing.assert_allclose(res.b, r["b"], rtol=1e-8)
        np.testing.assert_allclose(res.QEp, r["qep"], rtol=1e-8)
