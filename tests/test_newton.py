"""lmm_ref.newton: a refit's quasi-Newton steps from its fit's Hessian."""

import numpy as np
import pytest

import lmm_ref
from lmm_ref import newton, optimise

SLEEP = "Reaction ~ Days + (Days | Subject)"
H = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
MINIMUM = np.array([0.5, -0.25, 0.75])


class Quadratic:
    """f(x) = (x - m)'H(x - m) / 2 + 7, counting its evaluations."""

    def __init__(self, curvature=H):
        self.curvature, self.calls = curvature, 0

    def value_and_gradient(self, x):
        self.calls += 1
        r = x - MINIMUM
        return 0.5 * r @ self.curvature @ r + 7.0, self.curvature @ r


def run(criterion, start, lower=np.full(3, -np.inf), hessian=H):
    return newton.quasi_newton(criterion, np.asarray(start, float), lower, hessian,
                               newton.precondition_from(hessian), 1e-12, 1e-6)


def test_the_exact_hessian_takes_one_step():
    f = Quadratic()
    phi, path, converged, B = run(f, [2.0, 2.0, 2.0])
    assert converged and f.calls == len(path) == 2
    np.testing.assert_allclose(phi, MINIMUM, atol=1e-12)
    np.testing.assert_allclose(B, H, rtol=1e-10)     # BFGS keeps the exact curvature


def test_a_rough_hessian_is_corrected_by_bfgs():
    f = Quadratic()
    phi, path, converged, B = run(f, [2.0, 2.0, 2.0], hessian=np.diag(np.diag(H)) * 1.5)
    assert converged and 3 <= len(path) <= 15
    np.testing.assert_allclose(phi, MINIMUM, atol=1e-6)
    # the learned curvature is nearer H than the start was
    assert np.linalg.norm(B - H) < np.linalg.norm(np.diag(np.diag(H)) * 1.5 - H)


def test_a_step_across_a_bound_hands_over():
    """A curvature three times too small overshoots across theta_3 >= 0: the search
    hands over at once, though the minimum is inside (L-BFGS-B finishes it)."""
    lower = np.array([0.0, -np.inf, 0.0])
    phi, path, converged, _ = run(Quadratic(), [2.0, 2.0, 2.0], lower, hessian=H / 3)
    assert not converged and len(path) == 1


def test_a_minimum_beyond_a_bound_hands_over():
    lower = np.array([0.0, -np.inf, 1.0])       # the minimum's third entry is below 1
    f = Quadratic()
    phi, path, converged, _ = run(f, [2.0, 2.0, 2.0], lower)
    assert not converged and len(path) == 1
    np.testing.assert_array_equal(phi, [2.0, 2.0, 2.0])     # the best point: the start


def test_an_uphill_direction_hands_over():
    phi, path, converged, _ = run(Quadratic(), [2.0, 2.0, 2.0], hessian=-H)
    assert not converged and len(path) == 1


def test_bfgs_update_meets_the_secant_equation():
    rng = np.random.default_rng(3)
    s, y = rng.normal(size=3), H @ rng.normal(size=3)
    y = y if s @ y > 0 else -y
    B = newton.bfgs_update(np.eye(3), s, y)
    np.testing.assert_allclose(B @ s, y, rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(B) > 0)
    np.testing.assert_array_equal(newton.bfgs_update(np.eye(3), s, -y), np.eye(3))


def test_positive_definite_needs_a_complete_hessian():
    assert newton.positive_definite(H)
    assert not newton.positive_definite(None)
    assert not newton.positive_definite(np.where(np.eye(3) == 1, np.nan, H))
    assert not newton.positive_definite(-H)


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_refits_take_newton_steps_and_reach_l_bfgs_b_s_optimum(sleep, reml):
    """The refit's estimate is the one L-BFGS-B reaches from the same start, and it
    needs fewer evaluations."""
    fit = lmm_ref.fit(SLEEP, sleep, reml=reml)
    for y in fit.simulate(5, seed=8).T:
        refit = fit.refit(y)
        assert refit.optimizer.message.startswith("quasi-Newton steps from the fit's Hessian")
        products = fit.products.with_response(y)
        criterion = optimise.Criterion(products, reml)
        phi, record = optimise.minimise(criterion, fit.theta, fit.design.layout.lower,
                                        precondition=newton.precondition_from(
                                            fit.optimizer.hessian))
        # the same optimum to the optimisers' precision: theta to 1e-5, and the
        # criterion to lme4's stopping tolerance (nloptwrap's ftol_abs, 1e-8)
        np.testing.assert_allclose(refit.theta, phi, rtol=0, atol=1e-5)
        assert refit.objective <= criterion(phi) + 1e-8
        assert refit.optimizer.evaluations < record.evaluations + 2


def test_a_refit_near_the_boundary_hands_over_to_l_bfgs_b(sleep):
    """A response with no between-subject slope variation: the slope's SD goes to 0,
    the Newton steps hand over, and L-BFGS-B ends on the bound."""
    fit = lmm_ref.fit(SLEEP, sleep)
    design = fit.design
    slope = design.terms[0].X[:, 1]
    y = fit.fixef["(Intercept)"] + fit.fixef["Days"] * slope + np.random.default_rng(4).normal(
        scale=fit.sigma, size=fit.nobs)
    refit = fit.refit(y)
    fresh = lmm_ref.fit(SLEEP, sleep.assign(Reaction=y))
    assert refit.optimizer.message.startswith(
        "quasi-Newton steps from the fit's Hessian, handed over to L-BFGS-B: CONVERGENCE")
    assert refit.singular and refit.theta[2] == 0.0
    np.testing.assert_allclose(refit.objective, fresh.objective, rtol=1e-10)
    assert refit.singular == fresh.singular


def test_a_fit_at_a_given_theta_can_be_refitted(sleep):
    """fit_at made no search (its method is "none"); its refit searches as fit does."""
    fit = lmm_ref.fit(SLEEP, sleep)
    at = lmm_ref.fitting.fit_at(fit, fit.theta * 1.1)
    y = fit.simulate(1, seed=3)[:, 0]
    np.testing.assert_allclose(at.refit(y).objective, fit.refit(y).objective, rtol=1e-10)
    assert not at.bootstrap(3, seed=1)["failed"].any()


def test_another_method_does_not_take_newton_steps(sleep):
    fit = lmm_ref.fit(SLEEP, sleep, method="Powell")
    refit = fit.refit(fit.simulate(1, seed=2)[:, 0])
    assert not refit.optimizer.message.startswith("quasi-Newton")
