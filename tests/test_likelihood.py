"""The likelihood three ways: lme4's numbers, the dense marginal density, and PLS.

* At lme4's estimates, the criterion, the PLS solution (beta-hat, sigma-hat,
  b-tilde) reproduce lme4's objective, fixef, sigma and ranef.
* The dense O(n^3) marginal log-likelihood (`lmm_ref.marginal`) equals the PLS route
  (`lmm_ref.pls` + `lmm_ref.profile`) on the real data, and, property-based, on random
  small designs of every structure at random parameters, with and without weights.
* The blocked Cholesky factor is a Cholesky factor of Lambda'Z'Z Lambda + I, and its
  triangular solves agree with scipy's on the dense factor.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la
from hypothesis import given
from hypothesis import strategies as st
from support import PROPERTY, criterion, designs, random_frame, random_theta, solve

from lmm_ref import marginal, profile, reference
from lmm_ref.model_frame import build

FITS = reference.lme4_fits()
FIT_IDS = [reference.fit_label(fit) for fit in FITS]


# ---------------------------------------------------------------------------------------
# Against lme4, at lme4's estimates
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", FITS, ids=FIT_IDS)
def test_objective_at_lme4_theta(fit, reference_design):
    D = reference_design(fit)
    value = criterion(D, fit["theta"], reml=fit["reml"])
    np.testing.assert_allclose(value, fit["objective"], rtol=1e-8)


@pytest.mark.parametrize("fit", FITS, ids=FIT_IDS)
def test_loglik_at_lme4_theta(fit, reference_design):
    """lme4's logLik is -objective / 2, for REML too (the 'REML log-likelihood')."""
    D = reference_design(fit)
    value = criterion(D, fit["theta"], reml=fit["reml"])
    np.testing.assert_allclose(-value / 2, fit["loglik"], rtol=1e-8)


@pytest.mark.parametrize("fit", FITS, ids=FIT_IDS)
def test_beta_and_sigma_at_lme4_theta(fit, reference_design):
    D = reference_design(fit)
    solution = solve(D, fit["theta"])
    np.testing.assert_allclose(solution.beta, [fit["fixef"][name] for name in D.X_names], rtol=1e-6)
    sigma = profile.sigma_hat(solution, fit["reml"])
    np.testing.assert_allclose(sigma, fit["sigma"], rtol=1e-6)
    # and beta-hat is the generalised least-squares estimate of the marginal model
    np.testing.assert_allclose(solution.beta, marginal.beta_gls(D, fit["theta"]), rtol=1e-8)


def ranef_vector(D, fit):
    """lme4's ranef laid out as lmm_ref's b: term by term, level-major, columns within level."""
    pieces = []
    for term in D.terms:
        effects = fit["ranef"][term.group]
        assert effects["levels"] == list(term.levels)
        block = np.column_stack([effects["values"][column] for column in term.columns])
        pieces.append(block.ravel())  # row k: the p_i effects of level k
    return np.concatenate(pieces)


@pytest.mark.parametrize("fit", FITS, ids=FIT_IDS)
def test_conditional_modes_are_lme4_ranef(fit, reference_design):
    D = reference_design(fit)
    solution = solve(D, fit["theta"])
    expected = ranef_vector(D, fit)
    assert expected.shape == solution.b.shape == (D.q,)
    np.testing.assert_allclose(solution.b, expected, rtol=1e-5, atol=1e-5)
    # b = Lambda u
    np.testing.assert_allclose(D.Lambda(fit["theta"]) @ solution.u, solution.b, rtol=1e-12, atol=1e-12)


def test_ranef_layout_by_hand(reference_design):
    """The first entries of b for (Days | Subject): subject 308's intercept, then its slope."""
    fit = reference.lme4_fit("sleep_slope", reml=True)
    b = solve(reference_design(fit), fit["theta"]).b
    values = fit["ranef"]["Subject"]["values"]
    np.testing.assert_allclose(b[:4], [values["(Intercept)"][0], values["Days"][0],
                                       values["(Intercept)"][1], values["Days"][1]], rtol=1e-5)


@pytest.mark.parametrize("fit", FITS, ids=FIT_IDS)
def test_dense_marginal_equals_pls(fit, reference_design):
    D = reference_design(fit)
    theta = fit["theta"]
    solution = solve(D, theta)
    sigma = profile.sigma_hat(solution, fit["reml"])
    if fit["reml"]:
        dense = -2 * marginal.reml_loglik(D, theta, sigma)
        fast = profile.reml_criterion(solution)
    else:
        dense = -2 * marginal.loglik(D, solution.beta, theta, sigma)
        fast = profile.deviance(solution)
    np.testing.assert_allclose(fast, dense, rtol=1e-10)


@pytest.mark.parametrize("fit", [f for f in FITS if not f["reml"]], ids=lambda f: f["id"])
def test_deviance_at_any_beta_and_sigma(fit, reference_design):
    """Away from the optimum too: d(theta, beta, sigma) through PLS equals -2 log L."""
    D = reference_design(fit)
    theta = np.asarray(fit["theta"]) * 1.3
    solution = solve(D, theta)
    beta = solution.beta + 0.1 * np.abs(solution.beta) + 0.5
    sigma = 1.7 * fit["sigma"]
    np.testing.assert_allclose(profile.deviance_at(solution, beta, sigma),
                               -2 * marginal.loglik(D, beta, theta, sigma), rtol=1e-10)


# ---------------------------------------------------------------------------------------
# The blocked Cholesky factor
# ---------------------------------------------------------------------------------------

CHOLESKY_CASES = [
    ("sleep_slope", None),
    ("sleep_slope", [0.0, 0.4, 0.0]),          # T singular: zeros on the diagonal
    ("sleep_slope", [0.8, -1.5, 0.3]),          # a negative off-diagonal
    ("sleep_zerocorr", None),                   # two terms on the same factor
    ("sleep_zerocorr", [0.0, 0.2]),
    ("penicillin", None),                       # crossed
    ("penicillin", [0.0, 1.2]),
    ("pastes", None),                           # nested
    ("pastes", [3.5, 0.0]),
    ("dyestuff2", None),                        # theta = 0: L = I
]


def cholesky_case(model, theta, reference_design):
    """The design of an ML reference fit and theta (lme4's estimate when None)."""
    fit = reference.lme4_fit(model, reml=False)
    return reference_design(fit), fit["theta"] if theta is None else theta


def dense_A(D, theta):
    ZL = D.Z.toarray() @ D.Lambda(theta).toarray()
    return ZL.T @ ZL + np.eye(D.q)


@pytest.mark.parametrize("model, theta", CHOLESKY_CASES,
                         ids=[f"{m}-{t}" for m, t in CHOLESKY_CASES])
def test_blocked_cholesky_factors_A(model, theta, reference_design):
    D, theta = cholesky_case(model, theta, reference_design)
    L = solve(D, theta).L.to_sparse().toarray()
    A = dense_A(D, theta)
    assert L.shape == (D.q, D.q)
    np.testing.assert_array_equal(L, np.tril(L))            # lower triangular
    assert (np.diag(L) > 0).all()                            # the Cholesky factor
    np.testing.assert_allclose(L @ L.T, A, rtol=1e-12, atol=1e-12 * np.abs(A).max())
    np.testing.assert_allclose(L, la.cholesky(A, lower=True), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solve(D, theta).logdet_L2, np.linalg.slogdet(A)[1], rtol=1e-12)


@pytest.mark.parametrize("model, theta", CHOLESKY_CASES,
                         ids=[f"{m}-{t}" for m, t in CHOLESKY_CASES])
def test_triangular_solves(model, theta, reference_design):
    D, theta = cholesky_case(model, theta, reference_design)
    factor = solve(D, theta).L
    L = factor.to_sparse().toarray()
    rng = np.random.default_rng(2015)
    for B in (rng.normal(size=D.q), rng.normal(size=(D.q, 3))):
        np.testing.assert_allclose(factor.solve_L(B), la.solve_triangular(L, B, lower=True),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(factor.solve_Lt(B), la.solve_triangular(L, B, lower=True, trans="T"),
                                   rtol=1e-10, atol=1e-12)
        assert factor.solve_L(B).shape == B.shape


@pytest.mark.parametrize("fit", [f for f in FITS if not f["reml"]], ids=lambda f: f["id"])
def test_pls_normal_equations(fit, reference_design):
    """(beta-hat, u-tilde) solve the normal equations of the penalized least squares."""
    D = reference_design(fit)
    theta = fit["theta"]
    solution = solve(D, theta)
    ZL = D.Z.toarray() @ D.Lambda(theta).toarray()
    W = np.hstack([ZL, D.X])
    M = W.T @ W + la.block_diag(np.eye(D.q), np.zeros((D.p, D.p)))
    np.testing.assert_allclose(M @ np.concatenate([solution.u, solution.beta]), W.T @ D.y,
                               rtol=1e-9, atol=1e-9 * np.abs(W.T @ D.y).max())
    residual = D.y - D.X @ solution.beta - ZL @ solution.u
    np.testing.assert_allclose(solution.r2, residual @ residual + solution.u @ solution.u, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Property-based: random small designs, random parameters
# ---------------------------------------------------------------------------------------


@PROPERTY
@given(designs, st.lists(st.booleans(), min_size=5, max_size=5), st.booleans())
def test_pls_deviance_equals_dense_marginal(spec, zero_diagonal, weighted):
    """At random parameters (boundary points too), with and without prior weights."""
    frame, formula = random_frame(*spec)
    rng = np.random.default_rng(spec[0] + 1)
    weights = rng.uniform(0.2, 5.0, len(frame)) if weighted else None
    D = build(formula, frame, weights=weights)
    theta = random_theta(D, rng, zero_diagonal)
    beta = rng.normal(scale=5.0, size=D.p)
    sigma = rng.uniform(0.2, 3.0)

    solution = solve(D, theta)
    dense = -2 * marginal.loglik(D, beta, theta, sigma)
    np.testing.assert_allclose(profile.deviance_at(solution, beta, sigma), dense, rtol=1e-8)
    # profiled: at beta-hat and sigma-hat (ML and REML)
    ml_sigma = profile.sigma_hat(solution, reml=False)
    np.testing.assert_allclose(profile.deviance(solution),
                               -2 * marginal.loglik(D, solution.beta, theta, ml_sigma), rtol=1e-8)
    reml_sigma = profile.sigma_hat(solution, reml=True)
    np.testing.assert_allclose(profile.reml_criterion(solution),
                               -2 * marginal.reml_loglik(D, theta, reml_sigma), rtol=1e-8)
