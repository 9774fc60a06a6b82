"""LmmFit.refit: the same model on a new response, with only y's cross-products new."""

import numpy as np
import pytest
from support import assert_same_fit, fit_quietly

import lmm_ref
from lmm_ref.errors import DataError, DataTypeError

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def fits(sleep):
    return {reml: fit_quietly(SLEEP, sleep, reml=reml) for reml in (True, False)}


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_refit_on_its_own_response_gives_the_fit_again(fits, reml):
    fit = fits[reml]
    again = fit.refit(fit.fitted + fit.residuals)
    assert_same_fit(again, fit, rtol=1e-10)
    assert str(again) == str(fit)
    assert again.products.xz is fit.products.xz          # X and Z's part is shared
    assert again.optimizer.path[0][1] == pytest.approx(fit.objective, rel=1e-12)  # warm start


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_refit_equals_a_fresh_fit_on_the_new_response(sleep, fits, reml):
    rng = np.random.default_rng(2015)
    y_new = sleep["Reaction"].to_numpy() + rng.normal(scale=30.0, size=len(sleep))
    refitted = fits[reml].refit(y_new)
    fresh = fit_quietly(SLEEP, sleep.assign(Reaction=y_new), reml=reml)
    assert_same_fit(refitted, fresh, rtol=1e-8)
    np.testing.assert_array_equal(refitted.design.y, y_new)
    np.testing.assert_allclose(refitted.fitted + refitted.residuals, y_new, rtol=1e-13)


def test_refit_with_weights_and_an_offset(sleep):
    """The new response goes through the same weights and offset as the fitted one."""
    frame = sleep.assign(w=1.0 + sleep["Days"] % 3, o=2.0 * sleep["Days"])
    formula = "Reaction ~ Days + offset(o) + (Days | Subject)"
    fit = fit_quietly(formula, frame, weights="w")
    y_new = frame["Reaction"].to_numpy()[::-1].copy()
    assert_same_fit(fit.refit(y_new), fit_quietly(formula, frame.assign(Reaction=y_new), weights="w"),
                    rtol=1e-8)


@pytest.mark.parametrize("bad, error, message", [
    (np.ones(179), DataError, r"shape \(179,\).*180 observations"),
    (np.ones((180, 2)), DataError, r"shape \(180, 2\)"),
    (np.r_[np.ones(179), np.nan], DataError, r"1 missing or infinite value.*position 179"),
    (np.r_[np.inf, np.ones(179)], DataError, r"position 0"),
    (["a"] * 180, DataTypeError, "must be numbers"),
], ids=["short", "two columns", "nan", "inf", "text"])
def test_refit_rejects_a_bad_response(fits, bad, error, message):
    with pytest.raises(error, match=message):
        fits[True].refit(bad)


def test_refit_rejects_responses_of_the_wrong_length_even_after_dropped_rows(sleep):
    """n counts the rows the fit used: after rows with missing values were dropped."""
    frame = sleep.copy()
    frame.loc[[3, 40], "Reaction"] = np.nan
    with pytest.warns(UserWarning, match="dropped 2 of 180 rows"):
        fit = lmm_ref.fit(SLEEP, frame)
    with pytest.raises(DataError, match="178 observations"):
        fit.refit(np.ones(180))
    assert fit.refit(fit.fitted + fit.residuals).nobs == 178
