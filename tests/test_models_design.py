"""Model-matrix coding, missing-value handling and the errors of ``fit``.

Coefficient names and coding follow R's ``model.matrix`` (treatment coding, reference = first
level, ``<column><level>``; ``intrcpt`` as metafor names the intercept); the reference-case tests
check the numbers, these check the rules.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intervention_meta.models import ModelError, fit
from intervention_meta.models.design import aliased_columns, build_design

REF = Path(__file__).parent / "reference"
BCG = pd.read_csv(REF / "bcg_rr.csv")
ASSINK = pd.read_csv(REF / "assink2016.csv")


def test_model_error_is_a_value_error() -> None:
    assert issubclass(ModelError, ValueError)


def test_factor_gets_treatment_coding_with_the_alphabetically_first_level_as_reference() -> None:
    d = build_design(BCG, mods=["alloc", "ablat"])
    assert d.coef_names == ("intrcpt", "allocrandom", "allocsystematic", "ablat")
    np.testing.assert_array_equal(d.X[:, 1], (BCG["alloc"] == "random").to_numpy(float))
    np.testing.assert_array_equal(d.X[:, 3], BCG["ablat"].to_numpy(float))


def test_categorical_dtype_keeps_its_category_order() -> None:
    df = BCG.assign(alloc=pd.Categorical(BCG["alloc"], ["systematic", "random", "alternate"]))
    assert build_design(df, mods=["alloc"]).coef_names == (
        "intrcpt",
        "allocrandom",
        "allocalternate",
    )


def test_bool_moderator_is_a_factor_named_as_r_names_logicals() -> None:
    df = BCG.assign(recent=BCG["year"] > 1960)
    assert build_design(df, mods=["recent"]).coef_names == ("intrcpt", "recentTRUE")


def test_without_intercept_the_first_factor_gets_all_levels() -> None:
    d = build_design(BCG, mods=["ablat", "alloc"], intercept=False)
    assert d.coef_names == ("ablat", "allocalternate", "allocrandom", "allocsystematic")


def test_rows_with_missing_values_are_dropped_and_recorded(caplog) -> None:
    df = BCG.copy()
    df.loc[[2, 5], "ablat"] = np.nan
    df.loc[7, "yi"] = np.nan
    with caplog.at_level(logging.WARNING):
        res = fit(df, mods=["ablat"])
    assert res.k == 10 and res.n_dropped == 3
    assert list(res.dropped_rows) == [2, 5, 7]
    assert "3 row(s) with missing values" in caplog.text
    complete = fit(df.drop(index=[2, 5, 7]), mods=["ablat"])
    np.testing.assert_allclose(res.b, complete.b, rtol=1e-14)


def test_missing_random_ids_drop_rows_too() -> None:
    df = ASSINK.copy()
    df.loc[0, "esid"] = np.nan
    res = fit(df, random=["study", "esid"])
    assert res.k == 99 and res.dropped_rows == (0,)


def test_aliased_columns_are_named_in_r_order() -> None:
    X = np.column_stack([np.ones(6), np.arange(6.0), 2 * np.arange(6.0) + 1, np.zeros(6)])
    assert aliased_columns(X, ["a", "b", "c", "d"]) == ["c", "d"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mods": ["ablat", "ablat2"]}, r"singular.*'ablat2'"),
        ({"mods": ["const"]}, r"singular.*'const'"),
        ({"mods": ["one_level"]}, r"single level"),
        ({"method": "XYZ"}, r"unknown method"),
        ({"test": "wald"}, r"unknown test"),
        ({"mods": ["nope"]}, r"not in the data"),
        ({"rho": 0.5}, r"rho needs a random-effects structure"),
        ({"control": {"tol": 1}}, r"unknown control"),
        ({"level": 0}, r"level must be in"),
        ({"tau2_fixed": -1.0}, r">= 0"),
        ({"sigma2_fixed": {"study": 0.1}}, r"sigma2_fixed is for multilevel"),
    ],
)
def test_invalid_specifications_raise_model_error_with_the_reason(kwargs, message) -> None:
    df = BCG.assign(ablat2=2 * BCG["ablat"], const=3.0, one_level="x")
    with pytest.raises(ModelError, match=message):
        fit(df, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "DL"}, r"unknown method for a multilevel model"),
        ({"test": "knha"}, r"one-level models only"),
        ({"rho": 1.5}, r"rho must be a correlation"),
        ({"tau2_fixed": 0.1}, r"use sigma2_fixed"),
        ({"sigma2_fixed": {"school": 0.1}}, r"unknown level"),
        ({"sigma2_fixed": [0.1]}, r"1 values for 2 levels"),
    ],
)
def test_invalid_multilevel_specifications_raise_model_error(kwargs, message) -> None:
    with pytest.raises(ModelError, match=message):
        fit(ASSINK, random=["study", "esid"], **kwargs)


def test_non_positive_sampling_variance_is_rejected() -> None:
    with pytest.raises(ModelError, match="sampling variances must be positive"):
        fit(BCG.assign(vi=BCG["vi"].where(BCG.index != 3, 0.0)))


def test_too_few_effect_sizes_for_the_coefficients() -> None:
    small = BCG.head(3)
    with pytest.raises(ModelError, match=r"k = 3 rows for p = 3"):
        fit(small, mods=["ablat", "year"], method="FE")


def test_no_degrees_of_freedom_left_for_the_variance_components() -> None:
    """k - p must be at least the number of estimated components (metafor rma: k >= p + 1)."""
    small = ASSINK.head(3).assign(x=[0.0, 1.0, 3.0])
    with pytest.raises(ModelError, match="no degrees of freedom left"):
        fit(small, mods=["x"], random=["study", "esid"])
    assert fit(small, mods=["x"], random=["study", "esid"], sigma2_fixed={"esid": 0}).k == 3
    assert fit(small, mods=["x"], method="REML").k == 3


def test_factor_levels_of_new_data_must_be_known() -> None:
    res = fit(BCG, mods=["alloc"])
    with pytest.raises(ModelError, match="unknown level"):
        res.predict(pd.DataFrame({"alloc": ["quasi"]}))
