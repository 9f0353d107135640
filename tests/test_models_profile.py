"""Profile-likelihood CIs of variance components against metafor 3.8 ``confint()``.

Expected values: ``tests/reference/extra/models_profile_reference.json``, made by
``models_profile_reference.R`` beside it (R 4.2.2, metafor 3.8-1); each case stores its exact R
call (``confint(res)`` on ``rma.mv``, ``confint(res, type="PL")`` on ``rma``) and, per bound, the
likelihood-ratio statistic of metafor's own profile there (``lrt_at_ci_lb`` / ``lrt_at_ci_ub``).

metafor finds each bound with ``uniroot(tol = 1.2e-4)``, so its bounds are up to ~1e-4 away from
the exact roots (the LRT at them is off the target by up to 0.014). The engine runs the same root
search on the same function, so it reproduces metafor's bounds themselves; they are compared at
1e-6 (relative), tighter than the 1e-5 of variance components. The exact roots are checked
separately (a tight root search of the same profile).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from intervention_meta.models import ModelError, fit
from intervention_meta.models.profile import ProfileCI, profile_ci

REF = Path(__file__).parent / "reference"
PROFILE = json.loads((REF / "extra" / "models_profile_reference.json").read_text())["cases"]
RTOL = 1e-6


@cache
def _data(stem: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{stem}.csv")


def _fit_case(name: str):
    """The model of a fixture case, read from its R call."""
    call = PROFILE[name]["call"]
    df = _data(name.split("__")[0])
    if "dat <- dat[dat$district %in% c(11, 12, 18), ]" in call:
        df = df[df["district"].isin([11, 12, 18])]
    kwargs: dict = {"method": re.search(r'method="(\w+)"', call).group(1)}
    m = re.search(r"mods = ~ ([^,]+),", call)
    if m:
        kwargs["mods"] = [t.strip() for t in m.group(1).split("+")]
    m = re.search(r"random = ~ 1 \| ([\w/]+)", call)
    if m:
        kwargs["random"] = m.group(1).split("/")
    return fit(df, **kwargs)


def _profile_case(name: str) -> tuple:
    call, r = PROFILE[name]["call"], PROFILE[name]["results"]
    res = _fit_case(name)
    level = 0.90 if "level=90" in call else None
    search_max = 0.5 if "vc.max=0.5" in call else None
    comps = [res.random[c["position"] - 1] for c in r["components"]] if res.multilevel else None
    return res, profile_ci(res, level, components=comps, search_max=search_max), r


@pytest.mark.parametrize("name", list(PROFILE))
def test_profile_ci_matches_metafor_confint(name: str) -> None:
    res, pc, r = _profile_case(name)
    assert isinstance(pc, ProfileCI)
    np.testing.assert_allclose(pc.target, r["target"], rtol=1e-12)
    assert len(pc.intervals) == len(r["components"])
    for (comp, iv), ref in zip(pc.intervals.items(), r["components"], strict=True):
        what = f"{name} {comp}"
        np.testing.assert_allclose(iv.estimate, ref["estimate"], rtol=1e-5, err_msg=what)
        for bound in ("ci_lb", "ci_ub"):
            np.testing.assert_allclose(
                getattr(iv, bound), ref[bound], rtol=RTOL, atol=1e-300, err_msg=f"{what} {bound}"
            )
        sq = iv.sqrt
        np.testing.assert_allclose(
            [sq.ci_lb, sq.ci_ub], [ref["sqrt_ci_lb"], ref["sqrt_ci_ub"]], rtol=RTOL
        )
        assert (iv.lb_sign, iv.ub_sign) == (ref["lb_sign"], ref["ub_sign"]), what
        assert iv.lb_found and iv.ub_found
        # the profile itself: our LRT at our bound = metafor's LRT at its bound (to the precision
        # of the bound and of metafor's nlminb refits)
        for ours, theirs in ((iv.lrt_lb, "lrt_at_ci_lb"), (iv.lrt_ub, "lrt_at_ci_ub")):
            np.testing.assert_allclose(ours, ref[theirs], rtol=1e-5, err_msg=f"{what} {theirs}")
    if "i2" in r["components"][0]:  # one-level: I^2 and H^2 limits from the tau^2 limits
        ref = r["components"][0]
        for key in ("i2", "h2"):
            ours = getattr(pc, key)
            np.testing.assert_allclose(
                [ours.estimate, ours.ci_lb, ours.ci_ub],
                [ref[key]["estimate"], ref[key]["ci_lb"], ref[key]["ci_ub"]],
                rtol=RTOL,
            )


def test_metafor_bounds_are_within_root_tolerance_of_the_exact_roots() -> None:
    """A tight root search of the same profile (xtol 1e-13) lands within uniroot's 1.2e-4.

    Source: assink2016__ml3_reml_profile; the LRT at the exact root equals qchisq(0.95, 1).
    """
    res, pc, r = _profile_case("assink2016__ml3_reml_profile")
    target = stats.chi2.ppf(0.95, 1)
    for name in res.random:
        iv = pc[name]
        lrt = _profile_lrt(res, name)

        def f(s: float, lrt=lrt) -> float:
            return lrt(s) - target

        lo = optimize.brentq(f, 0.0, iv.estimate, xtol=1e-13)
        hi = optimize.brentq(f, iv.estimate, 10.0, xtol=1e-13)
        np.testing.assert_allclose(lrt(lo), target, rtol=1e-9)
        assert abs(lo - iv.ci_lb) < 1.3e-4 and abs(hi - iv.ci_ub) < 1.3e-4


def _profile_lrt(res, name: str):
    """Brute-force profile: refit with the component fixed, maximise over the other (fit())."""
    df = _data("assink2016")

    def lrt(value: float) -> float:
        other = fit(
            df,
            random=list(res.random),
            sigma2_fixed={name: value},
            control={"level_tests": False},
        )
        return -2.0 * (other.logLik - res.logLik)

    return lrt


def test_profile_of_the_estimate_is_zero() -> None:
    """At the estimate the profile LRT is 0 (the refit reproduces the maximum): definition."""
    res = _fit_case("konstantopoulos2011__ml3_reml_profile")
    from intervention_meta.models.profile import _Profile

    for pos, value in enumerate(res.sigma2.values()):
        assert abs(_Profile(res, pos, 0.0).lrt(value)) < 1e-8


def test_method_and_result_api() -> None:
    res = _fit_case("bcg_rr__uni_reml_profile")
    pc = res.confint_profile()
    frame = pc.to_frame()
    assert list(frame.index) == ["tau2", "tau", "i2", "h2"]
    json.dumps(pc.to_dict(), allow_nan=False)
    assert pc.converged and pc["tau2"].ci_lb < res.tau2 < pc["tau2"].ci_ub
    ml3 = _fit_case("konstantopoulos2011__ml3_reml_profile")
    frame = ml3.confint_profile(components="district").to_frame()
    assert list(frame.index) == ["sigma2[district]", "sigma[district]"]


def test_profile_refuses_non_likelihood_and_fixed_components() -> None:
    bcg = _data("bcg_rr")
    with pytest.raises(ModelError, match="ML or REML"):
        profile_ci(fit(bcg, method="DL"))
    with pytest.raises(ModelError, match="no estimated"):
        profile_ci(fit(bcg, tau2_fixed=0.1))
    kon = _data("konstantopoulos2011")
    res = fit(kon, random=["district", "school"], sigma2_fixed={"school": 0.03})
    with pytest.raises(ModelError, match="fixed"):
        profile_ci(res, components="school")
    assert list(profile_ci(res).intervals) == ["district"]


def test_che_model_bounds_are_roots_of_its_profile() -> None:
    """CHE working model (rho = 0.6; no metafor fixture): each bound is within uniroot's tolerance
    (1.2e-4) of the exact root of LRT = qchisq(0.95, 1) of the same profile (definition)."""
    from intervention_meta.models.profile import _Profile

    res = fit(_data("assink2016"), random=["study", "esid"], rho=0.6)
    pc = profile_ci(res)
    for pos, name in enumerate(res.random):
        iv = pc[name]
        prof = _Profile(res, pos, pc.target)
        lo = optimize.brentq(prof.f, 0.0, iv.estimate, xtol=1e-12)
        hi = optimize.brentq(prof.f, iv.estimate, iv.search_hi, xtol=1e-12)
        assert abs(lo - iv.ci_lb) < 1.3e-4 and abs(hi - iv.ci_ub) < 1.3e-4
        assert 0 < iv.ci_lb < iv.estimate < iv.ci_ub
