"""PET-PEESE in the working model (``methods.pet_peese``) against metafor and clubSandwich.

Expected values: ``tests/reference/pet_peese.json``, made by ``tests/reference/R/pet_peese.R``
(R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8): ``rma.mv(yi, vi, mods = ~ sqrt(vi) | ~ vi |
~ sqrt(1/n1i + 1/n2i) | ~ I(1/n1i + 1/n2i), random = ~ 1 | study/es, method="REML")`` and the CHE
version with ``V = impute_covariance_matrix(vi, cluster=study, r=0.6)``, each with
``coef_test(res, vcov="CR2", test="Satterthwaite")`` and ``conf_int(res, vcov="CR2")``, on
assink2016, konstantopoulos2011 and kalaian1996 (the exact call is stored with every case).
Tolerances: 1e-6 relative, variance components 1e-5 (absolute: the kalaian1996 components are on
the boundary, where metafor stops at ~1e-12 and the engine at 0).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intervention_meta.methods.influence import ModelCall
from intervention_meta.methods.pet_peese import pet_peese_working_model
from intervention_meta.models import ModelError, fit

REF = Path(__file__).parent / "reference"
FIXTURE = json.loads((REF / "pet_peese.json").read_text())
SETS = FIXTURE["datasets"]
LEVELS = {
    "assink2016": ("study", "esid"),
    "konstantopoulos2011": ("district", "school"),
    "kalaian1996": ("study", "id"),
}
CASES = [
    (name, case)
    for name, entry in SETS.items()
    for case in entry["cases"]
    if not case.startswith("overall")
]
_DATA = {name: pd.read_csv(REF / entry["csv"]) for name, entry in SETS.items()}


def _result(name: str, case: str):
    """The PET-PEESE result whose regression the case ``case`` of data set ``name`` fits."""
    call = ModelCall(random=LEVELS[name], method="REML")
    if case.endswith("_che06"):
        call = replace(call, rho=0.6)
    groups = ("n1i", "n2i") if "_modified" in case else (None, None)
    res = pet_peese_working_model(_DATA[name], call, n1=groups[0], n2=groups[1])
    return res.pet if case.startswith("pet") else res.peese


@pytest.mark.parametrize(("name", "case"), CASES)
def test_pet_peese_regressions_match_metafor_and_clubsandwich_cr2(name: str, case: str) -> None:
    """The free fit: variance components to 1e-5, everything downstream of them to 1e-5 too
    (metafor's nlminb stops up to ~1e-6 short of the REML optimum on some of these fits, see the
    likelihood check below); at metafor's own components the next test holds 1e-6."""
    r = SETS[name]["cases"][case]["results"]
    reg = _result(name, case)
    assert reg.k == r["k"]
    assert reg.converged
    np.testing.assert_allclose(list(reg.sigma2.values()), r["sigma2"], rtol=1e-5, atol=1e-5)
    ct, ci = r["cr2"]["coef_test"], r["cr2"]["conf_int"]
    pairs = [
        ("b", r["b"]), ("se_model", r["se"]), ("se", ct["se"]), ("tval", ct["tstat"]),
        ("df", ct["df_satt"]), ("pval", ct["p_satt"]), ("ci_lb", ci["ci_l"]),
        ("ci_ub", ci["ci_u"]),
    ]  # fmt: skip
    for ours, theirs in pairs:
        where = reg if ours == "se_model" else reg.robust
        np.testing.assert_allclose(getattr(where, ours), theirs, rtol=1e-5, err_msg=ours)
    prefix = "modified_" if "_modified" in case else ""
    expected = prefix + ("se" if case.startswith("pet") else "var")
    assert reg.predictor == expected
    assert reg.robust.n_clusters == len(_DATA[name][LEVELS[name][0]].unique())


@pytest.mark.parametrize(("name", "case"), CASES)
def test_cr2_tests_match_clubsandwich_at_metafors_variance_components(name: str, case: str) -> None:
    """The same regression with the variance components fixed at metafor's estimates: every
    CR2 quantity to 1e-6, and the free fit's REML likelihood is at least metafor's."""
    r = SETS[name]["cases"][case]["results"]
    levels = LEVELS[name]
    data = _DATA[name]
    x = {"pet_se": np.sqrt(data["vi"]), "peese_var": data["vi"]}
    if "_modified" in case:
        x = {"pet_se": np.sqrt(1 / data["n1i"] + 1 / data["n2i"])}
        x["peese_var"] = x["pet_se"] ** 2
    col = "pet_se" if case.startswith("pet") else "peese_var"
    d = data.assign(**{col: x[col]})
    rho = 0.6 if case.endswith("_che06") else None
    kw = {"mods": [col], "random": list(levels), "rho": rho, "method": "REML"}
    free = fit(d, **kw)
    assert free.logLik >= r["fit_stats"]["loglik"] - 1e-9
    at = fit(d, sigma2_fixed=dict(zip(levels, r["sigma2"], strict=True)), **kw)
    np.testing.assert_allclose(at.b, r["b"], rtol=1e-6)
    np.testing.assert_allclose(at.se, r["se"], rtol=1e-6)
    rob = at.robust()
    ct, ci = r["cr2"]["coef_test"], r["cr2"]["conf_int"]
    for ours, theirs in (("se", "se"), ("tval", "tstat"), ("df", "df_satt"), ("pval", "p_satt")):
        np.testing.assert_allclose(getattr(rob, ours), ct[theirs], rtol=1e-6, err_msg=ours)
    np.testing.assert_allclose(rob.ci_lb, ci["ci_l"], rtol=1e-6)
    np.testing.assert_allclose(rob.ci_ub, ci["ci_u"], rtol=1e-6)
    np.testing.assert_allclose(rob.vcov, r["cr2"]["vcov_cr2"], rtol=1e-6)


@pytest.mark.parametrize("name", list(SETS))
def test_conditional_estimate_follows_the_stated_rule(name: str) -> None:
    """PEESE's intercept iff PET's intercept is significant one-sided (Stanley & Doucouliagos
    2014) in the direction of the working model's overall estimate (metafor's ``overall_ml3``)."""
    call = ModelCall(random=LEVELS[name], method="REML")
    res = pet_peese_working_model(_DATA[name], call)
    overall = SETS[name]["cases"]["overall_ml3"]["results"]["b"][0]
    np.testing.assert_allclose(res.overall, overall, rtol=1e-6)
    assert res.alternative == ("greater" if overall > 0 else "less")
    pet = SETS[name]["cases"]["pet_se_ml3"]["results"]["cr2"]["coef_test"]
    t, df = pet["tstat"][0], pet["df_satt"][0]
    p_one = stats.t.sf(t, df) if res.alternative == "greater" else stats.t.cdf(t, df)
    np.testing.assert_allclose(res.pet_pval_test, p_one, rtol=1e-6)
    chosen = res.peese if p_one < 0.05 else res.pet
    assert res.chosen == chosen.model
    rob = chosen.robust
    assert res.estimate == rob.b[0] and res.ci_lb == rob.ci_lb[0] and res.ci_ub == rob.ci_ub[0]
    assert res.se == rob.se[0] and res.df == rob.df[0] and res.pval == rob.pval[0]
    assert res.rule.endswith(f"so {res.chosen}'s intercept")
    assert ("it is (" in res.rule) == (res.chosen == "PEESE")


def test_the_level_and_direction_of_the_pet_test_are_configurable() -> None:
    """assink2016: PET's one-sided p is about 0.45, so PET at alpha .05 and PEESE at alpha .5;
    the two-sided test uses the CR2 p value itself."""
    call = ModelCall(random=LEVELS["assink2016"], method="REML")
    data = _DATA["assink2016"]
    default = pet_peese_working_model(data, call)
    loose = pet_peese_working_model(data, call, alpha=0.5)
    two = pet_peese_working_model(data, call, alternative="two-sided", alpha=0.99)
    less = pet_peese_working_model(data, call, alternative="less")
    assert default.chosen == "PET" and loose.chosen == "PEESE"
    assert 0.05 < default.pet_pval_test < 0.5
    assert two.pet_pval_test == pytest.approx(default.pet.robust.pval[0], rel=1e-12)
    assert less.pet_pval_test == pytest.approx(1 - default.pet_pval_test, rel=1e-9)
    assert "two-sided" in two.rule and "less than zero" in less.rule
    with pytest.raises(ValueError, match="alternative"):
        pet_peese_working_model(data, call, alternative="both")  # type: ignore[arg-type]


def test_modified_se_falls_back_to_the_standard_error_with_a_note() -> None:
    """A missing group size anywhere, or no group-size columns: sqrt(vi) with a note saying
    why; a measure other than SMD: sqrt(vi) without a note (the modified SE is for SMDs)."""
    data = _DATA["kalaian1996"].copy()
    call = ModelCall(random=LEVELS["kalaian1996"], method="REML")
    full = pet_peese_working_model(data, call, n1="n1i", n2="n2i")
    assert full.modified and full.note == "" and full.pet.predictor == "modified_se"
    data.loc[3, "n2i"] = np.nan
    part = pet_peese_working_model(data, call, n1="n1i", n2="n2i")
    assert not part.modified and part.pet.predictor == "se"
    assert "1 of 67" in part.note
    plain = pet_peese_working_model(data, call)
    assert "group sizes not given" in plain.note
    other = pet_peese_working_model(data, call, measure="ZCOR", n1="n1i", n2="n2i")
    assert not other.modified and other.note == ""
    expected = SETS["kalaian1996"]["cases"]["pet_se_ml3"]["results"]["b"]
    np.testing.assert_allclose(part.pet.robust.b, expected, rtol=1e-6)
    with pytest.raises(ModelError, match="not in the data"):
        pet_peese_working_model(data, call, n1="n_tx", n2="n2i")


def test_result_faces_are_plain_and_complete() -> None:
    call = ModelCall(random=LEVELS["assink2016"], method="REML", rho=0.6)
    res = pet_peese_working_model(_DATA["assink2016"], call)
    d = res.to_dict()
    json.dumps(d)
    assert d["pet"]["rho"] == 0.6 and d["chosen"] in ("PET", "PEESE")
    assert set(d["pet"]["sigma2"]) == {"study", "esid"}
    frame = res.to_frame()
    assert list(frame["model"]) == ["PET", "PET", "PEESE", "PEESE"]
    assert frame["chosen"].sum() == 2
    rob = res.pet.robust
    assert res.pet.intercept["beta"] == rob.b[0] and res.pet.slope["df_satt"] == rob.df[1]
    assert list(frame["term"][:2]) == ["intrcpt", "pet_se"]


def test_covariates_of_the_call_are_kept_after_the_predictor() -> None:
    """Moderators in the call stay in both regressions (the intercept is then the limit effect at
    their reference values); the predictor's coefficient comes second, as in R's formula."""
    data = _DATA["assink2016"]
    call = ModelCall(random=LEVELS["assink2016"], method="REML", mods=("year",))
    res = pet_peese_working_model(data, call)
    assert res.pet.robust.coef_names == ("intrcpt", "pet_se", "year")
    d = data.assign(pet_se=np.sqrt(data["vi"]))
    direct = fit(d, mods=["pet_se", "year"], random=list(LEVELS["assink2016"]))
    np.testing.assert_allclose(res.pet.robust.b, direct.b, rtol=1e-10)
    np.testing.assert_allclose(res.pet.robust.se, direct.robust().se, rtol=1e-10)


def test_too_few_effect_sizes_is_an_error() -> None:
    call = ModelCall(random=LEVELS["assink2016"], method="REML")
    with pytest.raises(ModelError, match="at least 3"):
        pet_peese_working_model(_DATA["assink2016"].head(2), call)
