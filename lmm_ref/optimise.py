"""Minimising the profiled criterion over theta under its bounds (chapter 6).

    theta-hat = argmin d_R(theta)  (REML)   or   argmin d(theta)  (ML),
    subject to theta_m >= 0 for the diagonal entries of every T_i      (eq-fit-problem)

`optimise` minimises with L-BFGS-B, a bounded quasi-Newton method, on the exact gradient
(`lmm_ref.gradient`); lme4 uses BOBYQA, a derivative-free trust-region method.  Then it
steps back inside from any diagonal entry of T_i that stopped at its bound for lack of
slope (`leave_false_boundary`) and applies lme4's checks (`lmm_ref.checks`), going on
once more if the convergence check fails.

The optimiser works on phi = theta / scale (`starting.theta_scale`): 1 for well-scaled
covariates, so phi is theta and lme4's start is kept.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as la
from scipy.optimize import Bounds, minimize

from . import checks, gradient, newton, pls, profile
from .errors import DataError

OPTIMIZERS = ("L-BFGS-B", "COBYQA", "Nelder-Mead", "Powell")

# Parameters closer than this to their bound are checked for a false stop there.
NEAR_BOUND = 1e-2

# The criteria are O(100)-O(1000); these tolerances stop when theta has settled to
# ~1e-6, close to lme4's nloptwrap stopping rule (also `minimise_from_curvature`'s).
LBFGSB_OPTIONS = {"ftol": 1e-12, "gtol": 1e-6}


@dataclass
class OptimizerRecord:
    """What the optimiser did: method, evaluations, the path, and the final checks."""

    method: str   # the method asked for (a refit's Newton steps record "L-BFGS-B")
    evaluations: int
    path: list  # (theta, criterion) at every evaluation, in order
    message: str
    gradient: np.ndarray  # gradient at theta-hat (interior parameters)
    scaled_gradient: np.ndarray  # R^{-T} g with H = R'R: |.|^2 is the Newton decrement
    warnings: list = field(default_factory=list)
    # at theta-hat, all of phi (NaN rows/columns on a bound); for a refit, its
    # search's BFGS approximation, not a new measurement
    hessian: np.ndarray = None
    # theta = scale * phi: the optimiser's units (`starting.theta_scale`)
    scale: np.ndarray = None


class Criterion:
    """phi -> d_R(theta) (eq-profiled-reml) or d(theta) (eq-profiled-deviance), theta = scale * phi.

    Calling it gives the value; `value_and_gradient` adds the exact gradient
    (`lmm_ref.gradient`), which L-BFGS-B, a refit's Newton steps
    (`lmm_ref.newton`) and the convergence check use.  `products`
    are the data's `lmm_ref.products.CrossProducts`.
    At a theta so extreme that rounding makes R_X'R_X lose its positive definiteness
    (an optimiser's wild step to T_i entries of 1e12, say), the value is +inf, so that
    the optimiser backs off: d grows without bound with theta, so no minimum is there.
    """

    def __init__(self, products, reml, scale=1.0):
        self.products, self.reml, self.scale = products, reml, scale
        # (phi, value, gradient, PLS solution) of the latest value_and_gradient
        self.last = None

    def __call__(self, phi):
        phi = np.asarray(phi, dtype=float)
        if self.is_last(phi):
            return self.last[1]
        try:
            return profile.criterion_at(self.products, self.scale * phi, self.reml)
        except la.LinAlgError:
            return np.inf

    def is_last(self, phi):
        """Is phi the point of the latest `value_and_gradient`?  The checks after
        the search ask again for the optimiser's last point."""
        return self.last is not None and np.array_equal(self.last[0], phi)

    def value_and_gradient(self, phi):
        phi = np.asarray(phi, dtype=float)
        if self.is_last(phi):
            return self.last[1], self.last[2].copy()
        try:
            solution = pls.solve(self.products, self.scale * phi)
            value = profile.criterion(solution, self.reml)
            g = gradient.gradient(self.products, solution, self.reml)
        except la.LinAlgError:
            return np.inf, np.zeros_like(phi)
        g = self.scale * g  # chain rule: d/dphi = scale * d/dtheta
        self.last = (phi.copy(), value, g.copy(), solution)
        return value, g

    def solution_at(self, phi):
        """The penalized least-squares solution at theta = scale * phi (`pls.solve`),
        the latest one if phi is its point."""
        if self.is_last(phi):
            return self.last[3]
        return pls.solve(self.products, self.scale * np.asarray(phi, dtype=float))


def optimise(criterion, start, layout, method="L-BFGS-B", x_names=(),
             hessian=None):
    """minimise, then lme4's post-fit steps, with two safeguards for a false stop.

    After the minimisation: step off a bound the optimiser stopped at for no reason
    (`leave_false_boundary`), snap near-boundary parameters onto it (lme4), and check
    the gradient (lme4).  If the check fails, go on once more from where it stopped
    (a bound the optimiser ran into can spoil L-BFGS-B's memory of the curvature, and a
    fresh start clears it), and ask for a `second_opinion`.  Returns (phi-hat, `OptimizerRecord`).  `x_names` (the
    fixed-effects columns) name the culprits should the criterion be unevaluable;
    `hessian` (a refit's: its fit's Hessian) guides the first minimisation
    (`minimise_from_curvature`, or L-BFGS-B preconditioned by
    `newton.precondition_from` when the Hessian is incomplete or another method
    is asked for; the checks work on phi itself) and serves the convergence
    check.
    """
    lower = layout.lower
    if method == "L-BFGS-B" and newton.positive_definite(hessian):
        # the checks then use the curvature the search learned on its way
        phi, record, hessian = minimise_from_curvature(criterion, start, lower, hessian)
    else:
        phi, record = minimise(criterion, start, lower, method,
                               newton.precondition_from(hessian))
    if not np.isfinite(min(value for _, value in record.path)):  # inf wherever it looked
        raise DataError(
            "the criterion cannot be evaluated at any theta tried: the fixed-effects columns "
            f"({', '.join(x_names)}) are too close to linear dependence with the random "
            "effects for the Cholesky factor R_X in double precision. Look for covariates "
            "that are (almost) constant within the groups of a random-effects term"
        )
    for attempt in (1, 2):
        phi = leave_false_boundary(criterion, phi, layout, method, record)
        phi = checks.snap_to_boundary(criterion, phi, lower)
        record.warnings = []
        checks.check_convergence(criterion, phi, lower, record,
                                 announce=attempt == 2, hessian=hessian)
        if not record.warnings:
            break
        if attempt == 1:
            phi = minimise_more(criterion, phi, lower, method, record)
            phi = second_opinion(criterion, phi, start, lower, method, record)
    return phi, record


def second_opinion(criterion, phi, start, lower, method, record):
    """The better of phi and a derivative-free search from `start`, for L-BFGS-B.

    When the checks fail, L-BFGS-B may have settled in a local minimum.  On a
    response simulated from the sleep study's ML fit, it ran into the bound
    theta_3 = 0 early and ended at a deviance of 1757.70 (with intercept SD near
    0), where lme4's BOBYQA, and SciPy's COBYQA, reach 1752.85.  A trust-region
    search that uses only values (COBYQA, the nearest SciPy has to BOBYQA) takes
    another route from the same start; its evaluations go into `record`.
    """
    if method != "L-BFGS-B":
        return phi
    other, more = minimise(criterion, start, lower, "COBYQA")
    record.evaluations += more.evaluations
    record.path += more.path
    if criterion(other) < criterion(phi):
        record.message = f"COBYQA from the start, after L-BFGS-B: {more.message}"
        return other
    return phi


def minimise_from_curvature(criterion, start, lower, hessian):
    """minimise, for a refit that knows its fit's Hessian: quasi-Newton steps
    from that curvature (`lmm_ref.newton`), and L-BFGS-B from the best of them
    when they hand over.  Returns (phi, `OptimizerRecord`, the last BFGS
    approximation of the Hessian).  A sleep-study replicate takes 7 or 8
    evaluations, fewer than L-BFGS-B from the same start, with no optimiser
    driver between them."""
    scales = newton.precondition_from(hessian)
    options = LBFGSB_OPTIONS
    phi, path, converged, B = newton.quasi_newton(criterion, start, lower, hessian, scales,
                                                  options["ftol"], options["gtol"])
    record = OptimizerRecord(method="L-BFGS-B", evaluations=len(path), path=path,
                             message="quasi-Newton steps from the fit's Hessian: converged",
                             gradient=np.array([]), scaled_gradient=np.array([]))
    if not converged:
        phi = minimise_more(criterion, phi, lower, "L-BFGS-B", record, scales)
        record.message = ("quasi-Newton steps from the fit's Hessian, handed over to "
                          f"L-BFGS-B: {record.message}")
    return phi, record, B


def minimise(criterion, start, lower, method="L-BFGS-B", precondition=None):
    """Minimise criterion(phi) subject to phi >= lower, recording the path.

    L-BFGS-B uses the exact gradient when the criterion has one (a
    `Criterion` does), and SciPy's forward differences otherwise.  With
    `precondition` d (`newton.precondition_from`), the search runs on
    psi = phi / d;
    the path and the result are in phi.
    """
    d = np.ones(len(start)) if precondition is None else precondition
    if method not in OPTIMIZERS:
        raise ValueError(f"unknown method {method!r}; "
                         f"choose one of {', '.join(OPTIMIZERS)}")
    path = []
    with_gradient = (method == "L-BFGS-B"
                     and hasattr(criterion, "value_and_gradient"))

    def recorded(psi):
        phi = d * psi
        if with_gradient:
            value, g = criterion.value_and_gradient(phi)
        else:
            value = criterion(phi)
        path.append((phi, value))
        return (value, d * g) if with_gradient else value

    bounds = Bounds(lower / d, np.full_like(lower, np.inf))
    options = {
        "COBYQA": {"initial_tr_radius": 0.5, "final_tr_radius": 1e-6},
        "Nelder-Mead": {"xatol": 1e-7, "fatol": 1e-10, "maxfev": 5000},
        "L-BFGS-B": LBFGSB_OPTIONS,
        "Powell": {"xtol": 1e-8, "ftol": 1e-12},
    }[method]
    # inf - inf in a finite difference next to an unevaluable theta (see
    # `Criterion`) is harmless: the optimiser backs off.  Not worth a
    # RuntimeWarning to the user.
    with np.errstate(invalid="ignore"):
        result = minimize(recorded, np.asarray(start, dtype=float) / d,
                          method=method, jac=with_gradient or None,
                          bounds=bounds, options=options)
    best = min(path, key=lambda point: point[1])  # never worse than seen
    record = OptimizerRecord(method=method, evaluations=len(path), path=path,
                             message=str(result.message),
                             gradient=np.array([]),
                             scaled_gradient=np.array([]))
    return np.clip(best[0], lower, None), record


def leave_false_boundary(criterion, phi, layout, method, record, rounds=3):
    """Minimise again from inside when a parameter stopped at its bound.

    The criterion depends on T_i only through T_i T_i', which changing the
    sign of a column of T_i leaves alone.  So at a diagonal entry 0 the
    slope in that entry is zero when the rest of its column is zero
    (always, for a scalar term), and near 0 it is small.  A gradient-based
    optimiser that comes near the bound sees little slope there and may
    stop, even when the minimum lies well inside, possibly across the sign
    change: the column (0, -b) stands for the same T_i T_i' as (0, b), but
    only the second leads inside to (a, b).  So from each diagonal entry
    near its bound, step inside to a few sizes, with the rest of its
    column as it is and negated; if one of those points is lower, minimise
    again from the best of them.
    """
    lower, columns = layout.lower, layout.below_diagonal
    for _ in range(rounds):
        near = [j for j in columns if phi[j] - lower[j] < NEAR_BOUND]
        if not near:
            break
        best, best_value = phi, criterion(phi)
        for j in near:
            below = columns[j]
            for sign in (1.0, -1.0) if below.size else (1.0,):
                for step in (1e-3, 1e-2, 1e-1, 1.0):
                    trial = phi.copy()
                    trial[below] *= sign
                    trial[j] = lower[j] + step
                    value = criterion(trial)
                    if value < best_value:
                        best, best_value = trial, value
        if best is phi:
            break
        phi = minimise_more(criterion, best, lower, method, record)
    return phi


def minimise_more(criterion, start, lower, method, record, precondition=None):
    """minimise from `start`, adding its evaluations to those in `record`."""
    phi, more = minimise(criterion, start, lower, method, precondition)
    record.evaluations += more.evaluations
    record.path += more.path
    record.message = more.message
    return phi
