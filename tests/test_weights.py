"""Prior weights and offsets (chapter 3): against lme4 and against the dense likelihood.

(Y | B = b) ~ N(X beta + Z b + o, sigma^2 W^-1): the criteria become those of the weighted
problem (W^{1/2} X, W^{1/2} Z, W^{1/2} (y - o)) minus log|W|, lme4's log(|L|^2 / |W|).
lme4's values: tests/reference/lme4_inference.json (section `weights`) and lme4_more.json
(every fit with `weights` or an `offset(...)` term).
"""

import numpy as np
import pytest
from support import criterion, fit_quietly, random_frame, random_theta, solve

import lmm_ref
from lmm_ref import marginal, profile
from lmm_ref.errors import DataError, DataTypeError, FormulaError
from lmm_ref.model_frame import build
from lmm_ref.reference import fit_label, lme4_inference, lme4_more, reference_data

MORE = [fit for fit in lme4_more()["fits"] if fit["weights"] or "offset(" in fit["formula"]]
SHARED = lme4_inference()["weights"]


@pytest.mark.parametrize("ref", MORE, ids=[fit_label(fit) for fit in MORE])
def test_weighted_and_offset_fits_match_lme4(ref):
    frame = reference_data(ref["dataset"])
    fit = fit_quietly(ref["formula"], frame, reml=ref["reml"], weights=ref["weights"])
    np.testing.assert_allclose(fit.objective, ref["objective"], rtol=1e-6)
    np.testing.assert_allclose(fit.loglik, ref["loglik"], rtol=1e-6)
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(fit.stderr.to_numpy(), list(ref["stderr"].values()), rtol=1e-4)
    np.testing.assert_allclose(fit.sigma, ref["sigma"], rtol=1e-4)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fit.aic, ref["AIC"], rtol=1e-6)
    for group, entry in ref["ranef"].items():
        for column, values in entry["values"].items():
            scale = np.max(np.abs(values))
            np.testing.assert_allclose(fit.ranef[group][column], values, rtol=1e-3, atol=1e-3 * scale)


@pytest.mark.parametrize("ref", SHARED, ids=[ref["id"] for ref in SHARED])
def test_the_shared_weights_cases(ref):
    frame = reference_data("sleepstudy")
    fit = fit_quietly(ref["formula"], frame, reml=ref["reml"], weights=ref["weights"])
    np.testing.assert_allclose(fit.objective, ref["objective"], rtol=1e-6)
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(fit.stderr.to_numpy(), ref["stderr"], rtol=1e-4)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fit.design.layout.sdcor(fit.theta, fit.sigma),
                               np.array(ref["sdcor"])[[0, 2, 1, 3]], rtol=1e-4)


def test_weights_as_a_column_or_an_array_are_the_same(sleep):
    frame = reference_data("sleepstudy")
    by_name = fit_quietly("Reaction ~ Days + (Days | Subject)", frame, weights="w")
    by_array = fit_quietly("Reaction ~ Days + (Days | Subject)", frame, weights=frame["w"].to_numpy())
    assert by_name.objective == by_array.objective


def test_weighted_criteria_equal_the_dense_ones_at_their_sigma_hat():
    """Dyestuff with weights 1..5: the profiled criteria (PLS, with -log|W|) against -2 log
    of the dense likelihood with V = Z Sigma Z' + sigma^2 W^-1 at sigma-hat."""
    D = build("Yield ~ 1 + (1 | Batch)", reference_data("Dyestuff"), weights="w")
    assert D.weighted and np.isclose(np.sum(np.log(D.weights)), 6 * np.log(120))
    for theta in (np.array([0.3]), np.array([1.7])):
        solution = solve(D, theta)
        sigma_ml, sigma_reml = profile.sigma_hat(solution, False), profile.sigma_hat(solution, True)
        np.testing.assert_allclose(criterion(D, theta, False),
                                   -2 * marginal.loglik(D, solution.beta, theta, sigma_ml), rtol=1e-10)
        np.testing.assert_allclose(criterion(D, theta, True),
                                   -2 * marginal.reml_loglik(D, theta, sigma_reml), rtol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_weights_and_offset_against_the_dense_likelihood(seed):
    """Random designs, random weights and offsets, random (theta, beta, sigma)."""
    structure = ["intercept", "slope", "crossed", "nested", "uncorrelated", "three levels"][seed]
    frame, formula = random_frame(seed, 60, structure)
    rng = np.random.default_rng(seed)
    frame = frame.assign(w=rng.uniform(0.1, 4.0, len(frame)), o=rng.normal(size=len(frame)))
    D = build(formula + " + offset(o)", frame, weights="w")
    theta = random_theta(D, rng, [seed % 2 == 1])
    beta, sigma = rng.normal(size=D.p), rng.uniform(0.5, 2.0)
    solution = solve(D, theta)
    np.testing.assert_allclose(profile.deviance_at(solution, beta, sigma),
                               -2 * marginal.loglik(D, beta, theta, sigma), rtol=1e-10)
    np.testing.assert_allclose(profile.reml_criterion(solution),
                               -2 * marginal.reml_loglik(D, theta, profile.sigma_hat(solution, True)),
                               rtol=1e-10)
    np.testing.assert_allclose(solution.beta, marginal.beta_gls(D, theta), rtol=1e-8)


def test_an_offset_shifts_the_response(sleep):
    """offset(o) is y - o as the response, with the same criterion and modes; fitted
    values include o."""
    frame = reference_data("sleepstudy")
    with_offset = fit_quietly("Reaction ~ Days + offset(o) + (Days | Subject)", frame)
    shifted = fit_quietly("y ~ Days + (Days | Subject)", frame.assign(y=frame["Reaction"] - frame["o"]))
    np.testing.assert_allclose(with_offset.objective, shifted.objective, rtol=1e-12)
    np.testing.assert_allclose(with_offset.fitted, shifted.fitted + frame["o"], rtol=1e-10)
    np.testing.assert_allclose(with_offset.residuals, shifted.residuals, atol=1e-9)
    two = fit_quietly("Reaction ~ Days + offset(o) + offset(Days) + (Days | Subject)", frame)
    both = fit_quietly("Reaction ~ Days + offset(p) + (Days | Subject)", frame.assign(p=3 * frame["Days"]))
    np.testing.assert_allclose(two.objective, both.objective, rtol=1e-12)


def test_summary_uses_pearson_residuals():
    frame = reference_data("sleepstudy")
    fit = fit_quietly("Reaction ~ Days + (Days | Subject)", frame, weights="w")
    pearson = np.sqrt(frame["w"].to_numpy()) * fit.residuals / fit.sigma
    assert f"{np.max(pearson):.4f}" in str(fit)


BAD_WEIGHTS = [
    ("zero", lambda f: f.assign(w=np.where(f.index == 3, 0.0, 1.0)), "w",
     DataError, r"1 row\(s\) of the weights column 'w' are zero or negative \(the first at position 3"),
    ("negative", lambda f: f.assign(w=-1.0), "w", DataError, "180 row.* zero or negative"),
    ("missing", lambda f: f.assign(w=np.where(f.index == 7, np.nan, 1.0)), "w", DataError,
     "1 row.* missing or not finite .the first at position 7"),
    ("infinite", lambda f: f.assign(w=np.where(f.index == 0, np.inf, 1.0)), "w", DataError,
     "missing or not finite"),
    ("unknown column", lambda f: f, "weight", DataError, "unknown column 'weight' given as weights"),
    ("text", lambda f: f.assign(w="heavy"), "w", DataTypeError, "must be numbers"),
    ("wrong length", lambda f: f, np.ones(179), DataError, "have 179 values for 180 rows"),
]


@pytest.mark.parametrize("case, make, weights, error, message", BAD_WEIGHTS,
                         ids=[case[0] for case in BAD_WEIGHTS])
def test_bad_weights_are_named(sleep, case, make, weights, error, message):
    with pytest.raises(error, match=message):
        lmm_ref.fit("Reaction ~ Days + (Days | Subject)", make(sleep), weights=weights)


BAD_OFFSETS = [
    ("unknown column", "Reaction ~ Days + offset(oo) + (1 | Subject)", DataError,
     r"unknown column 'oo' in the offset term offset\(oo\)"),
    ("not numeric", "Reaction ~ Days + offset(Subject) + (1 | Subject)", DataTypeError,
     r"offset term offset\(Subject\) must be numeric"),
    ("subtracted", "Reaction ~ Days - offset(Days) + (1 | Subject)", FormulaError, "must be added"),
    ("empty", "Reaction ~ Days + offset() + (1 | Subject)", FormulaError, "name an expression"),
]


@pytest.mark.parametrize("case, formula, error, message", BAD_OFFSETS, ids=[c[0] for c in BAD_OFFSETS])
def test_bad_offsets_are_named(sleep, case, formula, error, message):
    with pytest.raises(error, match=message):
        lmm_ref.fit(formula, sleep)


def test_rows_dropped_for_missing_values_drop_their_weights(sleep):
    frame = reference_data("sleepstudy")
    frame.loc[[5, 17], "Reaction"] = np.nan
    with pytest.warns(UserWarning, match="dropped 2 of 180 rows"):
        fit = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", frame, weights="w")
    clean = frame.drop(index=[5, 17])
    expected = fit_quietly("Reaction ~ Days + (Days | Subject)", clean, weights="w")
    np.testing.assert_allclose(fit.objective, expected.objective, rtol=1e-12)
