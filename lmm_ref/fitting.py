"""Fitting a linear mixed model: minimise the profiled criterion over theta (chapter 6).

Chapters 4 and 5 reduce the fit to a bounded minimisation over theta alone:

    theta-hat = argmin d_R(theta)  (REML)   or   argmin d(theta)  (ML),
    subject to theta_j >= 0 for the diagonal entries of every T_i.

`fit` does that minimisation with L-BFGS-B, a bounded quasi-Newton method, on
finite-difference gradients.  lme4 uses BOBYQA, a derivative-free trust-region method;
SciPy's successor of it, COBYQA, reaches the same optima but spends far more time in
its own bookkeeping than in evaluating the criterion (chapter 6 measures the choices),
so it is offered, not the default.  After the minimisation `fit` applies
lme4's post-fit steps: snapping near-boundary parameters onto the boundary when that
lowers the criterion, the singularity flag, and a convergence check on the gradient.
Everything else in the result (beta-hat, sigma-hat, conditional modes, standard errors)
comes from one final penalized least-squares solve at theta-hat.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as la
from scipy.optimize import Bounds, minimize

from . import pls, profile
from .design import build
from .errors import warn
from .summary import format_summary

# lme4's defaults (lmerControl): boundary.tol, the isSingular tolerance and
# check.conv.grad's tolerance.
BOUNDARY_TOL = 1e-5
SINGULAR_TOL = 1e-4
GRADIENT_TOL = 2e-3

OPTIMIZERS = ("L-BFGS-B", "COBYQA", "Nelder-Mead", "Powell")


class ConvergenceWarning(UserWarning):
    """The optimiser stopped at a point that does not look like a minimum."""


@dataclass
class OptimizerRecord:
    """What the optimiser did: method, evaluations, the path, and the final checks."""

    method: str
    evaluations: int
    path: list  # (theta, criterion) at every evaluation, in order
    message: str
    gradient: np.ndarray  # finite-difference gradient at theta-hat (interior parameters)
    scaled_gradient: np.ndarray  # H^{-1/2}-scaled gradient that lme4 checks
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
    criterion = _criterion(design, reml)
    start = design.theta_start if start is None else np.asarray(start, dtype=float)
    theta, record = minimise(criterion, start, design.theta_lower, method)
    theta = _snap_to_boundary(criterion, theta, design.theta_lower)
    _check_convergence(criterion, theta, design.theta_lower, record)
    return _result(formula, design, theta, reml, record, data_name)


def _criterion(design, reml):
    """theta -> d_R(theta) or d(theta) (eq-profiled-reml, eq-profiled-deviance)."""
    def criterion(theta):
        return profile.objective(design, theta, reml)
    return criterion


def minimise(criterion, start, lower, method="L-BFGS-B"):
    """Minimise criterion(theta) subject to theta >= lower, recording the path."""
    if method not in OPTIMIZERS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(OPTIMIZERS)}")
    path = []

    def recorded(theta):
        value = criterion(theta)
        path.append((np.array(theta, dtype=float), value))
        return value

    bounds = Bounds(lower, np.full_like(lower, np.inf))
    options = {
        # The criteria are O(100)-O(1000); these tolerances stop when theta has
        # settled to ~1e-6, close to lme4's nloptwrap stopping rule.
        "COBYQA": {"initial_tr_radius": 0.5, "final_tr_radius": 1e-6},
        "Nelder-Mead": {"xatol": 1e-7, "fatol": 1e-10, "maxfev": 5000},
        "L-BFGS-B": {"ftol": 1e-12, "gtol": 1e-6},
        "Powell": {"xtol": 1e-8, "ftol": 1e-12},
    }[method]
    result = minimize(recorded, np.asarray(start, dtype=float), method=method,
                      bounds=bounds, options=options)
    best = min(path, key=lambda point: point[1])  # never return worse than seen
    record = OptimizerRecord(method=method, evaluations=len(path), path=path,
                             message=str(result.message), gradient=np.array([]),
                             scaled_gradient=np.array([]))
    return np.clip(best[0], lower, None), record


def _snap_to_boundary(criterion, theta, lower):
    """lme4's boundary check: put near-boundary parameters on the boundary if better."""
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


def _check_convergence(criterion, theta, lower, record):
    """Is the gradient flat at theta-hat? Checked on the parameters off the boundary.

    As lme4 does, the gradient is scaled by the curvature (solve(chol(H), g)): a
    gradient of 0.01 means little on a flat criterion and a lot on a steep one.
    """
    free = ~(np.isfinite(lower) & (theta - lower < BOUNDARY_TOL))
    if not free.any():
        return
    gradient, hessian = finite_difference_derivatives(criterion, theta, free)
    record.gradient = gradient
    try:
        scaled = la.solve_triangular(la.cholesky(hessian, lower=False), gradient, trans="T")
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
    for message in record.warnings:
        warn(message, ConvergenceWarning)


def _result(formula, design, theta, reml, record, data_name):
    solution = pls.solve(design, theta)
    n, p = design.n, design.p
    objective = (profile.reml_criterion(solution, n, p) if reml
                 else profile.deviance(solution, n))
    sigma = float(profile.sigma_hat(solution, n, p, reml))
    R_X_inv = la.solve_triangular(solution.R_X, np.eye(p))
    vcov = sigma**2 * R_X_inv @ R_X_inv.T            # sigma^2 (R_X' R_X)^{-1}
    names = design.X_names
    fitted = design.X @ solution.beta + design.Z @ solution.b
    return LmmFit(
        formula=str(formula), reml=reml, design=design, theta=theta,
        objective=float(objective), sigma=sigma,
        fixef=pd.Series(solution.beta, index=names, name="fixef"),
        stderr=pd.Series(np.sqrt(np.diag(vcov)), index=names, name="stderr"),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        varcorr=varcorr_table(design, theta, sigma),
        ranef=ranef_tables(design, solution.b),
        fitted=fitted, residuals=design.y - fitted,
        singular=is_singular(theta, design.theta_lower),
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
