"""Fitting a linear mixed model: minimise the profiled criterion over theta (chapter 6).

Chapters 4 and 5 reduce the fit to a bounded minimisation over theta alone:

    theta-hat = argmin d_R(theta)  (REML)   or   argmin d(theta)  (ML),
    subject to theta_j >= 0 for the diagonal entries of every T_i.

`fit` does that minimisation with L-BFGS-B, a bounded quasi-Newton method, on the
exact gradient (`lmm_ref.gradient`).  lme4 uses BOBYQA, a derivative-free trust-region method;
SciPy's successor of it, COBYQA, reaches the same optima but spends far more time in
its own bookkeeping than in evaluating the criterion (chapter 6 measures the choices),
so it is offered, not the default.  After the minimisation `fit` steps back inside
from any diagonal entry of T_i that stopped at its bound for lack of slope (the
criterion is flat in theta_jj at 0), then applies lme4's post-fit steps: snapping
near-boundary parameters onto the boundary when that does not raise the criterion, the
singularity flag, and a convergence check on the gradient (with one restart of the
optimiser before it warns).
Everything else in the result (beta-hat, sigma-hat, conditional modes, standard errors)
comes from one final penalized least-squares solve at theta-hat.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as la
from scipy.optimize import Bounds, minimize

from . import pls, profile
from .design import _lower_triangle_columnwise, build
from .errors import DataError, warn
from .summary import format_summary

# lme4's defaults (lmerControl): boundary.tol, the isSingular tolerance and
# check.conv.grad's tolerance.
BOUNDARY_TOL = 1e-5
SINGULAR_TOL = 1e-4
GRADIENT_TOL = 2e-3
# Parameters closer than this to their bound are checked for a false stop there.
NEAR_BOUND = 1e-2

OPTIMIZERS = ("L-BFGS-B", "COBYQA", "Nelder-Mead", "Powell")

# A random-effects column whose root-mean-square lies outside this range is measured in
# units that make lme4's start T_i = I absurd (see `theta_scale`).
WELL_SCALED = (1e-2, 1e2)


class ConvergenceWarning(UserWarning):
    """The optimiser stopped at a point that does not look like a minimum."""


@dataclass
class OptimizerRecord:
    """What the optimiser did: method, evaluations, the path, and the final checks."""

    method: str
    evaluations: int
    path: list  # (theta, criterion) at every evaluation, in order
    message: str
    gradient: np.ndarray  # gradient at theta-hat (interior parameters)
    scaled_gradient: np.ndarray  # R^{-T} g with H = R'R: |.|^2 is the Newton decrement
    warnings: list = field(default_factory=list)


@dataclass
class LmmFit:
    """A fitted linear mixed model; attribute names follow lme4's extractors."""

    formula: str
    reml: bool
    design: object = field(repr=False)
    theta: np.ndarray
    objective: float
    sigma: float
    fixef: pd.Series
    stderr: pd.Series
    vcov: pd.DataFrame
    varcorr: pd.DataFrame
    ranef: dict
    fitted: np.ndarray = field(repr=False)
    residuals: np.ndarray = field(repr=False)
    singular: bool
    converged: bool
    optimizer: OptimizerRecord = field(repr=False)
    data_name: str = ""

    @property
    def nobs(self):
        return self.design.n

    @property
    def loglik(self):
        """log-likelihood (REML log-likelihood for a REML fit), -objective / 2."""
        return -0.5 * self.objective

    @property
    def df(self):
        """Number of parameters: fixed effects, theta and sigma."""
        return self.design.p + len(self.theta) + 1

    @property
    def aic(self):
        return -2.0 * self.loglik + 2.0 * self.df

    @property
    def bic(self):
        return -2.0 * self.loglik + self.df * np.log(self.nobs)

    @property
    def deviance(self):
        """-2 log-likelihood of an ML fit (lme4's `deviance`); REML fits have none."""
        if self.reml:
            raise AttributeError("a REML fit has no deviance; use .objective (the REML criterion)")
        return self.objective

    def __str__(self):
        return format_summary(self)


def fit(formula, data, reml=True, method="L-BFGS-B", start=None, data_name=""):
    """Fit an lme4-style linear mixed model by REML (default) or ML.

    `formula` is lme4 syntax, e.g. ``"Reaction ~ Days + (Days | Subject)"``; `data` a
    pandas DataFrame.  `method` picks the optimiser (one of `OPTIMIZERS`); `start` a
    starting theta (default lme4's: identity T_i).  Returns an `LmmFit`.
    """
    design = build(formula, data)
    # The optimiser works on phi = theta / scale (scale is 1 for well-scaled columns).
    scale = theta_scale(design)
    criterion = Criterion(design, reml, scale)
    if start is None:
        start = design.theta_start  # T_i = I, in the rescaled units
    else:
        # split_theta checks the length
        start = np.concatenate(design.split_theta(start)) / scale
    phi, record = _optimise(criterion, start, design, method)
    record.path = [(scale * point, value) for point, value in record.path]
    # Singular in the optimiser's units: an SD of 1e-7 per micro-unit is no boundary.
    singular = is_singular(phi, design.theta_lower)
    return _result(formula, design, scale * phi, reml, record, data_name, singular)


def _optimise(criterion, start, design, method):
    """minimise, then lme4's post-fit steps, with two safeguards for a false stop.

    After the minimisation: step off a bound the optimiser stopped at for no reason
    (`_leave_false_boundary`), snap near-boundary parameters onto it (lme4), and check
    the gradient (lme4).  If the check fails, go on once more from where it stopped:
    a bound the optimiser ran into can spoil L-BFGS-B's memory of the curvature, and a
    fresh start clears it.
    """
    lower = design.theta_lower
    phi, record = minimise(criterion, start, lower, method)
    if not np.isfinite(min(value for _, value in record.path)):  # inf wherever it looked
        raise DataError(
            "the criterion cannot be evaluated at any theta tried: the fixed-effects columns "
            f"({', '.join(design.X_names)}) are too close to linear dependence, among "
            "themselves or with the random effects, for the Cholesky factor R_X in double "
            "precision. Centre covariates with a large mean, or rescale them"
        )
    for attempt in (1, 2):
        phi = _leave_false_boundary(criterion, phi, design, method, record)
        phi = _snap_to_boundary(criterion, phi, lower)
        record.warnings = []
        _check_convergence(criterion, phi, lower, record, announce=attempt == 2)
        if not record.warnings:
            break
        if attempt == 1:
            phi = _minimise_more(criterion, phi, lower, method, record)
    return phi, record


def theta_scale(design):
    """The factors s in theta = s * phi that make the optimiser blind to units.

    Row r of T_i multiplies column r of X_i (row j of Z_i Lambda_i is
    kron(J_i[j, :], X_i[j, :] T_i)), so measuring a covariate in units c times smaller
    multiplies its column by c and divides row r of T_i by c: the same model, but not
    the same problem for the optimiser, which starts at T_i = I and takes steps of the
    same size in every coordinate.  On a covariate of size 1e6 that start says each
    slope's SD is a million times too large, and the search wanders where the
    Cholesky factors lose all precision.  So for a column whose root-mean-square m is
    far from 1 (outside `WELL_SCALED`), the optimiser works on phi = m theta, the
    entries of T_i for the column divided by m, and starts at phi = I.  Well-scaled
    columns keep s = 1, and so lme4's start.
    """
    factors = []
    for term in design.terms:
        m = np.sqrt(np.mean(term.X**2, axis=0))
        badly_scaled = (m > 0) & ((m < WELL_SCALED[0]) | (m > WELL_SCALED[1]))
        per_row = np.where(badly_scaled, 1.0 / np.where(m > 0, m, 1.0), 1.0)
        rows, _ = _lower_triangle_columnwise(term.p)  # theta's entries lie in these rows of T_i
        factors.append(per_row[rows])
    return np.concatenate(factors)


class Criterion:
    """phi -> d_R(theta) (eq-profiled-reml) or d(theta) (eq-profiled-deviance), theta = scale * phi.

    Calling it gives the value; `value_and_gradient` adds the exact gradient
    (`lmm_ref.gradient`), which L-BFGS-B and the convergence check use.
    At a theta so extreme that rounding makes X'X - R_ZX'R_ZX lose its positive
    definiteness (an optimiser's wild step to T_i entries of 1e12, say), the value is
    +inf, so that the optimiser backs off: d grows without bound with theta, so no
    minimum is out there.
    """

    def __init__(self, design, reml, scale=1.0):
        self.design, self.reml, self.scale = design, reml, scale

    def __call__(self, phi):
        try:
            return profile.objective(self.design, self.scale * np.asarray(phi, dtype=float),
                                     self.reml)
        except la.LinAlgError:
            return np.inf

    def value_and_gradient(self, phi):
        try:
            value, gradient = profile.objective_and_gradient(
                self.design, self.scale * np.asarray(phi, dtype=float), self.reml)
        except la.LinAlgError:
            return np.inf, np.zeros_like(phi)
        return value, self.scale * gradient  # chain rule: d/dphi = scale * d/dtheta


def minimise(criterion, start, lower, method="L-BFGS-B"):
    """Minimise criterion(theta) subject to theta >= lower, recording the path.

    L-BFGS-B uses the exact gradient when the criterion has one (a `Criterion` does),
    and SciPy's forward differences otherwise.
    """
    if method not in OPTIMIZERS:
        raise ValueError(f"unknown method {method!r}; "
                         f"choose one of {', '.join(OPTIMIZERS)}")
    path = []
    with_gradient = method == "L-BFGS-B" and hasattr(criterion, "value_and_gradient")

    def recorded(theta):
        if with_gradient:
            value, gradient = criterion.value_and_gradient(theta)
        else:
            value = criterion(theta)
        path.append((np.array(theta, dtype=float), value))
        return (value, gradient) if with_gradient else value

    bounds = Bounds(lower, np.full_like(lower, np.inf))
    options = {
        # The criteria are O(100)-O(1000); these tolerances stop when theta has
        # settled to ~1e-6, close to lme4's nloptwrap stopping rule.
        "COBYQA": {"initial_tr_radius": 0.5, "final_tr_radius": 1e-6},
        "Nelder-Mead": {"xatol": 1e-7, "fatol": 1e-10, "maxfev": 5000},
        "L-BFGS-B": {"ftol": 1e-12, "gtol": 1e-6},
        "Powell": {"xtol": 1e-8, "ftol": 1e-12},
    }[method]
    # inf - inf in a finite difference next to an unevaluable theta (see `Criterion`)
    # is harmless: the optimiser backs off.  Not worth a RuntimeWarning to the user.
    with np.errstate(invalid="ignore"):
        result = minimize(recorded, np.asarray(start, dtype=float), method=method,
                          jac=with_gradient or None, bounds=bounds, options=options)
    best = min(path, key=lambda point: point[1])  # never return worse than seen
    record = OptimizerRecord(method=method, evaluations=len(path), path=path,
                             message=str(result.message), gradient=np.array([]),
                             scaled_gradient=np.array([]))
    return np.clip(best[0], lower, None), record


def _leave_false_boundary(criterion, theta, design, method, record, rounds=3):
    """Minimise again from inside when a parameter stopped at its bound for no reason.

    The criterion depends on T_i only through T_i T_i', which changing the sign of a
    column of T_i leaves alone; so at theta_jj = 0 its slope in theta_jj is zero, and
    close to 0 nearly zero.  A gradient-based optimiser that comes near the bound sees no
    slope there and stops, even when the minimum lies well inside, possibly across
    the sign change: (0, -b) stands for the same T_i T_i' as (0, b), but only the
    second leads inside to (a, b).  So from each diagonal entry near its bound, step
    inside to a few sizes, with the rest of its column as it is and negated; if one of
    those points is lower, minimise again from the best of them.
    """
    lower, columns = design.theta_lower, _columns_below_diagonal(design)
    for _ in range(rounds):
        near = [j for j in columns if theta[j] - lower[j] < NEAR_BOUND]
        if not near:
            break
        best, best_value = theta, criterion(theta)
        for j in near:
            below = columns[j]
            for sign in (1.0, -1.0) if below.size else (1.0,):
                for step in (1e-3, 1e-2, 1e-1, 1.0):
                    trial = theta.copy()
                    trial[below] *= sign
                    trial[j] = lower[j] + step
                    value = criterion(trial)
                    if value < best_value:
                        best, best_value = trial, value
        if best is theta:
            break
        theta = _minimise_more(criterion, best, lower, method, record)
    return theta


def _minimise_more(criterion, start, lower, method, record):
    """minimise from `start`, adding its evaluations to those in `record`."""
    theta, more = minimise(criterion, start, lower, method)
    record.evaluations += more.evaluations
    record.path += more.path
    record.message = more.message
    return theta


def _columns_below_diagonal(design):
    """{index in theta of a diagonal entry of T_i: indices of the entries below it}."""
    columns, offset = {}, 0
    for term in design.terms:
        rows, cols = _lower_triangle_columnwise(term.p)
        for k in np.flatnonzero(rows == cols):
            columns[offset + k] = offset + np.flatnonzero((cols == cols[k]) & (rows > rows[k]))
        offset += term.n_theta
    return columns


def _snap_to_boundary(criterion, theta, lower):
    """lme4's boundary check: put near-boundary parameters on the boundary unless worse.

    lme4 tries one parameter at a time and keeps a move only if it strictly lowers the
    criterion; here all near-boundary parameters move together, and a tie is accepted,
    since a parameter within 1e-5 of 0 that does not matter is best reported as 0.
    """
    near = np.isfinite(lower) & (theta - lower < BOUNDARY_TOL) & (theta != lower)
    if near.any():
        snapped = np.where(near, lower, theta)
        if criterion(snapped) <= criterion(theta):
            return snapped
    return theta


def finite_difference_derivatives(criterion, theta, free, step=1e-4):
    """Central-difference gradient and Hessian of criterion over the `free` parameters."""
    index = np.flatnonzero(free)
    k = len(index)
    f0 = criterion(theta)
    h = step * np.maximum(np.abs(theta[index]), 1.0)

    def at(shift):
        point = theta.copy()
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


def derivatives(criterion, theta, free, step=1e-4):
    """Gradient and Hessian over the `free` parameters.

    With the exact gradient (a `Criterion`), the Hessian is its forward difference,
    symmetrised: k + 1 gradients for k parameters.  Otherwise both come from
    `finite_difference_derivatives`.
    """
    if not hasattr(criterion, "value_and_gradient"):
        return finite_difference_derivatives(criterion, theta, free, step)
    index = np.flatnonzero(free)
    h = step * np.maximum(np.abs(theta[index]), 1.0)

    def gradient_at(shift):
        point = theta.copy()
        point[index] += shift
        return criterion.value_and_gradient(point)[1][index]

    gradient = gradient_at(np.zeros(len(index)))
    hessian = np.column_stack([(gradient_at(h[a] * e) - gradient) / h[a]
                               for a, e in enumerate(np.eye(len(index)))])
    return gradient, 0.5 * (hessian + hessian.T)


def _check_convergence(criterion, theta, lower, record, announce=True):
    """Is the gradient flat at theta-hat? Checked on the parameters off the boundary.

    The gradient g is scaled by the curvature: with H = R'R (Cholesky), the check is on
    R^{-T} g, whose squared length g'H^{-1}g is the Newton decrement, the drop in the
    criterion that one more Newton step would bring; a gradient of 0.01 means little
    on a flat criterion and a lot on a steep one.  lme4 computes solve(chol(H), g) =
    R^{-1} g instead, which is not invariant to rescaling the parameters.
    Problems go in `record.warnings`, and are issued as warnings if `announce`.
    """
    free = ~(np.isfinite(lower) & (theta - lower < BOUNDARY_TOL))
    if not free.any():
        return
    gradient, hessian = derivatives(criterion, theta, free)
    record.gradient = gradient
    try:
        R = la.cholesky(hessian, lower=False)
        scaled = la.solve_triangular(R, gradient, trans="T")
    except la.LinAlgError:
        record.warnings.append(
            "the criterion is not curved upwards in every direction at the estimate "
            "(its Hessian is not positive definite), so this may be a saddle point or a "
            "flat ridge rather than a minimum; the model may be too complex for the data"
        )
        scaled = gradient
    record.scaled_gradient = scaled
    worst = np.max(np.minimum(np.abs(scaled), np.abs(gradient)))
    if worst > GRADIENT_TOL:
        record.warnings.append(
            f"the optimiser stopped where the criterion still slopes (largest scaled "
            f"gradient {worst:.2g} > {GRADIENT_TOL}); the estimates may not be at the "
            "minimum. Try another method=, a different start=, or rescaling covariates"
        )
    if announce:
        for message in record.warnings:
            warn(message, ConvergenceWarning)


def _result(formula, design, theta, reml, record, data_name, singular):
    solution = pls.solve(design, theta)
    n, p = design.n, design.p
    objective = profile.criterion(solution, design, reml)
    sigma = float(profile.sigma_hat(solution, n, p, reml))
    R_X_inv = la.solve_triangular(solution.R_X, np.eye(p))
    vcov = sigma**2 * R_X_inv @ R_X_inv.T            # sigma^2 (R_X' R_X)^{-1}
    names = design.X_names
    return LmmFit(
        formula=str(formula), reml=reml, design=design, theta=theta,
        objective=float(objective), sigma=sigma,
        fixef=pd.Series(solution.beta, index=names, name="fixef"),
        stderr=pd.Series(np.sqrt(np.diag(vcov)), index=names, name="stderr"),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        varcorr=varcorr_table(design, theta, sigma),
        ranef=ranef_tables(design, solution.b),
        fitted=design.y - solution.residual, residuals=solution.residual,
        singular=singular,
        converged=not record.warnings,
        optimizer=record, data_name=data_name,
    )


def is_singular(theta, lower):
    """lme4's isSingular: a diagonal entry of some T_i is (nearly) zero."""
    return bool(np.any(theta[lower == 0] < SINGULAR_TOL))


def group_labels(design):
    """lme4's names for the terms' groups: a repeated factor gets '.1', '.2', ..."""
    seen, labels = {}, []
    for term in design.terms:
        count = seen.get(term.group, 0)
        labels.append(term.group if count == 0 else f"{term.group}.{count}")
        seen[term.group] = count + 1
    return labels


def varcorr_table(design, theta, sigma):
    """Like R's as.data.frame(VarCorr(fit)): group, var1, var2, vcov, sdcor.

    For each term, Sigma_i = sigma^2 T_i T_i' (eq-Sigma-Lambda): one row per variance
    (sdcor = SD), one per covariance (sdcor = correlation), then the residual.
    """
    rows = []
    for label, term, piece in zip(group_labels(design), design.terms, design.split_theta(theta)):
        T = term.T(piece)
        Sigma_i = sigma**2 * T @ T.T
        sd = np.sqrt(np.diag(Sigma_i))
        for j, name in enumerate(term.columns):
            rows.append((label, name, None, Sigma_i[j, j], sd[j]))
        for j in range(term.p):
            for i in range(j + 1, term.p):
                correlation = Sigma_i[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                rows.append((label, term.columns[j], term.columns[i], Sigma_i[i, j], correlation))
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])


def ranef_tables(design, b):
    """Conditional modes b = Lambda u-tilde: one DataFrame per grouping factor.

    Terms that share a grouping factor (as in '(1 | g) + (0 + x | g)') are joined
    into one table, as lme4's ranef() does.
    """
    tables, start = {}, 0
    for term in design.terms:
        block = b[start: start + term.q].reshape(term.n_levels, term.p)
        start += term.q
        table = pd.DataFrame(block, index=term.levels, columns=term.columns)
        tables[term.group] = pd.concat([tables[term.group], table], axis=1) if term.group in tables else table
    return tables
