"""Quasi-Newton steps from a known curvature: how a refit searches (chapters 6 and 8).

A refit (`LmmFit.refit`, and each replicate of the bootstrap) starts at the fit's
estimate, and it knows more than where to start: the fit's convergence check measured
the Hessian H of the criterion there.  A new response like the old one moves the optimum
a little and changes the curvature a little, so Newton's step -H^{-1} g from the start
lands near the new optimum, and the BFGS update of H after each step (with the change in
gradient it brings) makes the next steps better still.  From lme4's start, L-BFGS-B
must learn the curvature from nothing; here it is known from the first step.

`quasi_newton` takes such steps inside the bounds theta_m >= 0.  It stops when the
criterion is flat by the tests L-BFGS-B uses (`optimise.minimise`'s tolerances: on the
gradient, and on the relative drop of the criterion in a step), the second applied also
to the drop that the next step promises, -g'p / 2 for the Newton step p, which saves the
step that would only confirm convergence.  It hands over, returning `converged` False,
when a step would cross a bound (a replicate near the boundary: L-BFGS-B, which handles
bounds, goes on from the best point found), when a line search fails, or after
`MAX_STEPS` steps.
"""

import numpy as np

MAX_STEPS = 30
# Armijo's sufficient decrease: accept a step t p when the criterion falls by at least
# this share of what its slope g'p promises, f(x + t p) <= f(x) + ARMIJO t g'p.
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
    """Factors d for `optimise.minimise`'s precondition: 1 / sqrt(H_mm), H the Hessian
    at a fit's estimate (its `record.hessian`); 1 where it is unknown.

    A refit to a new response (the bootstrap) has nearly the same curvature,
    and a search on phi / d, whose curvature is then about 1 in every
    coordinate, needs about a third fewer evaluations from the old estimate.
    """
    if hessian is None:
        return None
    h = np.diag(hessian)
    return np.where(np.isfinite(h) & (h > 0), 1.0 / np.sqrt(np.where(h > 0, h, 1.0)), 1.0)


def bfgs_update(B, s, y):
    """BFGS's update of the Hessian approximation B after a step s that changed the
    gradient by y: B s = y afterwards, and B stays positive definite when s'y > 0
    (otherwise B is kept)."""
    sy = s @ y
    if sy <= 1e-12 * np.sqrt((s @ s) * (y @ y)):
        return B
    Bs = B @ s
    return B - np.outer(Bs, Bs) / (s @ Bs) + np.outer(y, y) / sy


def flat(g, d, gtol):
    """L-BFGS-B's test on the gradient, in its preconditioned units psi = phi / d."""
    return np.max(np.abs(d * g)) <= gtol


def quasi_newton(criterion, start, lower, hessian, d, ftol, gtol):
    """Minimise criterion(phi) from `start`, phi >= lower, with BFGS from `hessian`.

    `criterion` has `value_and_gradient`; `d` is the precondition of
    `precondition_from(hessian)`, for the test on the gradient.
    Returns (phi, path, converged): the best point, every evaluation as
    (phi, value), and whether the tests were met there.
    """
    phi = np.asarray(start, dtype=float)
    f, g = criterion.value_and_gradient(phi)
    path, B = [(phi, f)], np.array(hessian, dtype=float)
    for _ in range(MAX_STEPS):
        if flat(g, d, gtol):
            return phi, path, True
        step = -np.linalg.solve(B, g)                   # the Newton step for B
        if g @ step >= 0:                               # not downhill: B is no guide
            return phi, path, False
        if -0.5 * (g @ step) <= ftol * max(abs(f), 1.0):
            return phi, path, True     # it would gain less than the test on the value
        t = 1.0
        for _ in range(MAX_HALVINGS):
            trial = phi + t * step
            if np.any(trial < lower):                   # a bound: L-BFGS-B's job
                return phi, path, False
            f_trial, g_trial = criterion.value_and_gradient(trial)
            path.append((trial, f_trial))
            if f_trial <= f + ARMIJO * t * (g @ step):
                break
            t /= 2
        else:
            return phi, path, False
        B = bfgs_update(B, trial - phi, g_trial - g)
        reduction = (f - f_trial) / max(abs(f), abs(f_trial), 1.0)
        phi, f, g = trial, f_trial, g_trial
        if reduction <= ftol:                          # L-BFGS-B's test on the value
            return phi, path, True
    return phi, path, flat(g, d, gtol)
