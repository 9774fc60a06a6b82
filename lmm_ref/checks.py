"""lme4's checks after the optimiser stops: boundary, singularity, convergence (chapter 6).

* `snap_to_boundary`: parameters within `BOUNDARY_TOL` of their bound are put on it
  when that does not raise the criterion (lme4's `boundary.tol`);
* `is_singular`: a diagonal entry of some T_i is (nearly) 0 (lme4's `isSingular`);
* `check_convergence`: the gradient at theta-hat, scaled by the curvature, is flat
  (lme4's `check.conv.grad`), and the Hessian is positive definite (`check.conv.hess`).

The derivatives come from `derivatives`: the exact gradient and a forward difference of
it when the criterion has one, central differences of values otherwise.
"""

import numpy as np
import scipy.linalg as la

from .errors import warn

# lme4's defaults (lmerControl): boundary.tol, the isSingular tolerance and
# check.conv.grad's tolerance.
BOUNDARY_TOL = 1e-5
SINGULAR_TOL = 1e-4
GRADIENT_TOL = 2e-3
# Criteria that differ by less than this, relative, are equal up to rounding.
TIE = 1e-12


class ConvergenceWarning(UserWarning):
    """The optimiser stopped at a point that does not look like a minimum."""


def snap_to_boundary(criterion, phi, lower):
    """lme4's boundary check: near-boundary parameters onto the boundary.

    lme4 tries one parameter at a time and keeps a move only if it
    strictly lowers the criterion; here all near-boundary parameters move
    together, and a tie (up to rounding, `TIE`) is accepted, since a
    parameter within 1e-5 of 0 that does not matter is best reported as 0.
    """
    near = np.isfinite(lower) & (phi - lower < BOUNDARY_TOL) & (phi != lower)
    if near.any():
        snapped = np.where(near, lower, phi)
        here = criterion(phi)
        if criterion(snapped) <= here + TIE * max(abs(here), 1.0):
            return snapped
    return phi


def is_singular(phi, lower):
    """lme4's isSingular: a diagonal entry of some T_i is (nearly) zero."""
    return bool(np.any(phi[lower == 0] < SINGULAR_TOL))


def finite_difference_derivatives(criterion, phi, free, step=1e-4):
    """Central-difference gradient and Hessian of criterion over the `free` parameters."""
    index = np.flatnonzero(free)
    k = len(index)
    f0 = criterion(phi)
    h = step * np.maximum(np.abs(phi[index]), 1.0)

    def at(shift):
        point = phi.copy()
        point[index] += shift
        return criterion(point)

    gradient, hessian = np.zeros(k), np.zeros((k, k))
    for a in range(k):
        e_a = np.zeros(k); e_a[a] = h[a]
        f_plus, f_minus = at(e_a), at(-e_a)
        gradient[a] = (f_plus - f_minus) / (2 * h[a])
        hessian[a, a] = (f_plus - 2 * f0 + f_minus) / h[a] ** 2
        for b in range(a):
            e_b = np.zeros(k); e_b[b] = h[b]
            hessian[a, b] = hessian[b, a] = (
                at(e_a + e_b) - at(e_a - e_b) - at(-e_a + e_b) + at(-e_a - e_b)
            ) / (4 * h[a] * h[b])
    return gradient, hessian


def derivatives(criterion, phi, free, step=1e-4):
    """Gradient and Hessian over the `free` parameters.

    With the exact gradient (a criterion with `value_and_gradient`), the
    Hessian is its forward difference, symmetrised: k + 1 gradients for k
    parameters.  Otherwise both come from `finite_difference_derivatives`.
    """
    if not hasattr(criterion, "value_and_gradient"):
        return finite_difference_derivatives(criterion, phi, free, step)
    index = np.flatnonzero(free)
    h = step * np.maximum(np.abs(phi[index]), 1.0)

    def gradient_at(shift):
        point = phi.copy()
        point[index] += shift
        return criterion.value_and_gradient(point)[1][index]

    gradient = gradient_at(np.zeros(len(index)))
    hessian = np.column_stack([(gradient_at(h[a] * e) - gradient) / h[a]
                               for a, e in enumerate(np.eye(len(index)))])
    return gradient, 0.5 * (hessian + hessian.T)


def check_convergence(criterion, phi, lower, record, announce=True,
                      hessian=None):
    """Is the gradient flat at phi-hat?  Checked off the boundary.

    The gradient g is scaled by the curvature: with H = R'R (Cholesky), the
    check is on R^{-T} g, whose squared length g'H^{-1}g is the Newton
    decrement, twice the drop in the criterion that one more Newton step
    would bring; a gradient of 0.01 means little on a flat criterion and a
    lot on a steep one.  lme4 computes solve(chol(H), g) = R^{-1} g instead,
    which is not invariant to rescaling the parameters.  The gradient and
    the scaled gradient go in `record` (an `OptimizerRecord`), problems in
    `record.warnings`; they are issued as warnings if `announce`.  A refit
    passes the curvature its search learned (`lmm_ref.newton`), and the check
    then costs no more than the gradient; but that curvature is positive
    definite by construction, so a refit's check cannot find a saddle point.
    """
    free = ~(np.isfinite(lower) & (phi - lower < BOUNDARY_TOL))
    if not free.any():
        return
    block = np.ix_(free, free)
    known = hessian is not None and np.all(np.isfinite(hessian[block]))
    if known and hasattr(criterion, "value_and_gradient"):
        gradient = criterion.value_and_gradient(phi)[1][free]
        hessian = hessian[block]
    else:
        gradient, hessian = derivatives(criterion, phi, free)
    record.gradient = gradient
    record.hessian = np.full((len(phi), len(phi)), np.nan)
    record.hessian[block] = hessian
    try:
        R = la.cholesky(hessian, lower=False)
        scaled = la.solve_triangular(R, gradient, trans="T")
    except la.LinAlgError:
        record.warnings.append(
            "the criterion is not curved upwards in every direction at the "
            "estimate (its Hessian is not positive definite), so this may be "
            "a saddle point or a flat ridge rather than a minimum; the model "
            "may be too complex for the data")
        scaled = gradient
    record.scaled_gradient = scaled
    worst = np.max(np.minimum(np.abs(scaled), np.abs(gradient)))
    if worst > GRADIENT_TOL:
        record.warnings.append(
            "the optimiser stopped where the criterion still slopes (largest "
            f"scaled gradient {worst:.2g} > {GRADIENT_TOL}); the estimates "
            "may not be at the minimum. Try another method=, a different "
            "start=, or rescaling covariates")
    if announce:
        for message in record.warnings:
            warn(message, ConvergenceWarning)
