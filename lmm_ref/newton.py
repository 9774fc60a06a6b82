"""Quasi-Newton steps from a known curvature: how a refit searches (chapters 6 and 8).

A refit (`LmmFit.refit`, and each replicate of the bootstrap) starts at the fit's
estimate, and it knows more than where to start: the fit's convergence check measured
the Hessian H of the criterion there.  A new response like the old one moves the optimum
a little and changes the curvature a little, so Newton's step -H^{-1} g from the start
lands near the new optimum.  After each step, the BFGS update changes the approximation
by a matrix of rank two, so that it reproduces the change in gradient along the step
(the secant equation); the next steps get better still.  From lme4's start, L-BFGS-B
must learn the curvature from nothing; here it is known from the first step.

`quasi_newton` takes such steps inside the bounds theta_m >= 0.  It stops by the tests
L-BFGS-B uses (`optimise.minimise`'s tolerances): the gradient is flat (its largest
entry, each scaled by 1 / sqrt(H_mm), is at most gtol), or a full step lowered the
criterion by less than a relative ftol; the second test is also applied to the drop
that the next step promises, g' H^{-1} g / 2, which saves the step that would only
confirm convergence.  A step that would cross a bound, a line search that fails, or
`MAX_STEPS` steps hand over to L-BFGS-B, which handles bounds, returning `converged`
False.  (Steps shortened to stay inside would creep towards an optimum on the boundary
and stop short of it.)
"""

import numpy as np

MAX_STEPS = 30
# Armijo's rule: accept a step of length a along the Newton direction p when the
# criterion falls by at least this share of what its slope promises,
# f(x + a p) <= f(x) + ARMIJO a g'p; otherwise halve a, at most MAX_HALVINGS times.
ARMIJO = 1e-4
MAX_HALVINGS = 8


def positive_definite(hessian):
    """Is `hessian` known (not None, no NaN: no parameter was on its bound) and
    positive definite?"""
    if hessian is None or not np.all(np.isfinite(hessian)):
        return False
    try:
        np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return False
    return True


def precondition_from(hessian):
    """Factors 1 / sqrt(H_mm) for `optimise.minimise`'s precondition, H the Hessian
    at a fit's estimate (its `record.hessian`); 1 where it is unknown.

    A refit to a new response (the bootstrap) has nearly the same curvature,
    and a search in the units phi_m sqrt(H_mm), in which the curvature is
    about 1 in every coordinate, needs fewer evaluations from the old estimate.
    """
    if hessian is None:
        return None
    h = np.diag(hessian)
    return np.where(np.isfinite(h) & (h > 0), 1.0 / np.sqrt(np.where(h > 0, h, 1.0)), 1.0)


def bfgs_update(B, step, change):
    """BFGS's update of the Hessian approximation B after a step that changed the
    gradient by `change`: afterwards B step = change (the secant equation).  B stays
    positive definite when step'change > 0 (the slope grew along the step); otherwise
    B is kept as it is."""
    curvature = step @ change
    if curvature <= 1e-12 * np.sqrt((step @ step) * (change @ change)):
        return B
    Bs = B @ step
    return B - np.outer(Bs, Bs) / (step @ Bs) + np.outer(change, change) / curvature


def flat(g, scales, gtol):
    """L-BFGS-B's test on the gradient in its units phi / scales: max |scales_m g_m|."""
    return np.max(np.abs(scales * g)) <= gtol


def quasi_newton(criterion, start, lower, hessian, scales, ftol, gtol):
    """Minimise criterion(phi), phi >= lower, from `start` with BFGS
    from `hessian`.

    `criterion` has `value_and_gradient`; `scales` are
    `precondition_from(hessian)`, for the test on the gradient.  Returns
    (phi, path, converged, B): the best point, every evaluation as
    (phi, value), whether the tests were met there, and the last
    approximation B of the Hessian.
    """
    phi = np.asarray(start, dtype=float)
    f, g = criterion.value_and_gradient(phi)
    path, B = [(phi, f)], np.array(hessian, dtype=float)
    for _ in range(MAX_STEPS):
        if flat(g, scales, gtol):
            return phi, path, True, B
        direction = -np.linalg.solve(B, g)      # the Newton step for B
        slope = g @ direction
        if slope >= 0:    # a guard: B is positive definite, never uphill
            return phi, path, False, B
        if -0.5 * slope <= ftol * max(abs(f), 1.0):
            return phi, path, True, B   # the next step gains < ftol
        if np.any(phi + direction < lower):
            return phi, path, False, B  # across a bound: L-BFGS-B's job
        length = 1.0
        for _ in range(MAX_HALVINGS):         # Armijo's rule
            trial = phi + length * direction
            f_trial, g_trial = criterion.value_and_gradient(trial)
            path.append((trial, f_trial))
            if f_trial <= f + ARMIJO * length * slope:
                break
            length /= 2
        else:
            return phi, path, False, B
        B = bfgs_update(B, trial - phi, g_trial - g)
        drop = (f - f_trial) / max(abs(f), abs(f_trial), 1.0)
        phi, f, g = trial, f_trial, g_trial
        if drop <= ftol and length == 1.0:  # L-BFGS-B's test on the value
            return phi, path, True, B
    return phi, path, flat(g, scales, gtol), B
