"""Profile likelihood: zeta and profile intervals (chapter 8).

Each parameter p of a fit is profiled on the ML deviance: fix p at a value v, minimise
the deviance over all the other parameters (under their bounds), and compare with the
minimum d-hat over everything (eq-zeta):

    zeta(v) = sign(v - p-hat) sqrt(d~(v) - d-hat).

zeta is a straight line with slope 1 / SE when the deviance is quadratic in p, which is
when Wald intervals are right; the profile interval at level 1 - alpha is where
|zeta| = z_{1 - alpha/2}.  Like lme4, a REML fit is refitted by ML and profiled on the ML
deviance: its profile intervals are about the ML estimates.

The parameters are lme4's: the SDs and correlations of each term and sigma (.sig01, ...,
.sigma, as `ThetaLayout.sdcor` lays them out), then the fixed effects.  On the first, the
deviance as a function of rho = (SDs, correlations, sigma) is

    D(rho) = n log(2 pi sigma^2) + log|L_theta|^2 - log|W| + r^2(theta) / sigma^2,
    theta = theta(rho)  (T_i = diag(SDs) chol(correlations) / sigma),

minimised over the free entries of rho by L-BFGS-B on its exact gradient (chapter 6's
gradient at a fixed sigma, and the chain rule).  A fixed effect beta_k fixed at v leaves
the model with the offset v x_k and without column k: its profile is that model's
profiled deviance d(theta), minimised as in chapter 6.
"""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import scipy.stats as st
from scipy.optimize import Bounds, minimize

from . import gradient, optimise, pls
from .profile import deviance_at
from .errors import warn
from .parameters import semidefinite_cholesky
from .products import cross_products

# A profile that needs steps of more than this many standard errors to reach its
# target has levelled off: the limit is infinite.
MAX_STEPS = 2.0 ** 20
# The correlations at which a profile's inner fit restarts when an SD is at zero.
RESTART_CORRELATIONS = (-0.9, 0.9)
# Profiles reach |zeta| = this (lme4: sqrt(qchisq(0.99, 1)) for profile(), a little more)
ZETA_MAX = 2.8
# An interval's limit is where zeta is within this of +-z (about 1e-4 standard errors)
ZETA_TOLERANCE = 1e-4
# A profile point lower than the fit by more than this calls the fit into question
LOWER_TOLERANCE = 1e-6


class VarparDeviance:
    """D(rho) on lme4's SD / correlation / sigma scale, with its exact gradient."""

    def __init__(self, fit):
        self.products, self.layout = fit.products, fit.design.layout
        self.n, self.sigma_hat = fit.design.n, fit.sigma

    def theta(self, rho):
        """theta from rho = (SDs and correlations in .sig order, sigma)."""
        theta, _ = self.layout.theta_from_sdcor(rho)
        return theta

    @property
    def is_correlation(self):
        return np.concatenate([~self.layout.is_diagonal, [False]])

    def value_and_gradient(self, rho):
        """D(rho) and its gradient; +inf where rounding defeats the Cholesky
        factors (a step of the optimiser far out), so that it backs off."""
        rho = np.asarray(rho, dtype=float)
        sigma = rho[-1]
        try:
            solution = pls.solve(self.products, self.theta(rho))
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(rho)
        value = deviance_at(solution, solution.beta, sigma)
        d_theta = gradient.gradient(self.products, solution, reml=False,
                                    r2_weight=1.0 / sigma**2)
        g = d_theta @ self.layout.theta_from_sdcor_jacobian(rho)
        g[-1] += 2.0 * self.n / sigma - 2.0 * solution.r2 / sigma**3
        return value, g

    def bounds(self):
        lower = np.where(self.is_correlation, -1.0, 0.0)
        upper = np.where(self.is_correlation, 1.0, np.inf)
        lower[-1] = 1e-2 * self.sigma_hat       # sigma > 0, and not absurdly small
        return lower, upper

    def hessian(self, rho, step=1e-5):
        """The Hessian of D at rho by forward differences of the exact gradient."""
        _, g0 = self.value_and_gradient(rho)
        H = np.empty((len(rho), len(rho)))
        for k in range(len(rho)):
            h = step * max(abs(rho[k]), 1.0)
            if self.is_correlation[k] and rho[k] + h > 1.0:
                h = -h
            shifted = rho.copy()
            shifted[k] += h
            H[:, k] = (self.value_and_gradient(shifted)[1] - g0) / h
        return 0.5 * (H + H.T)


class Profiler:
    """Profiles of every parameter of an ML fit, point by point, warm-started."""

    def __init__(self, fit):
        self.fit = fit.refit_ml()        # lme4 profiles a REML fit on the ML deviance
        self.d_hat = self.fit.objective
        layout = self.fit.design.layout
        self.names = layout.sdcor_names + list(self.fit.fixef.index)
        self.varpar = VarparDeviance(self.fit)
        self.rho_hat = layout.sdcor(self.fit.theta, self.fit.sigma)
        self.rho_hat = np.where(np.isnan(self.rho_hat), 0.0, self.rho_hat)
        self.estimates = np.concatenate([self.rho_hat, self.fit.fixef.to_numpy()])
        self.failures = []
        self._starts = {}
        self._reduced = {}
        self._varpar_se = None

    def zeta(self, k, value):
        """zeta of parameter k at `value` (NaN, recorded in `failures`, if it
        fails)."""
        try:
            deviance = self.profiled_deviance(k, value)
        except Exception as error:  # a refit failed: keep the rest of the profile
            self.failures.append((self.names[k], float(value), str(error)))
            return np.nan
        if deviance < self.d_hat - LOWER_TOLERANCE * abs(self.d_hat):
            warn(f"profiling {self.names[k]} at {value:.6g} found a deviance "
                 f"{self.d_hat - deviance:.3g} below the fit's: the fit had not "
                 "reached its minimum; refit from there (start=...) before "
                 "trusting intervals")
        gap = max(deviance - self.d_hat, 0.0)
        return float(np.sign(value - self.estimates[k]) * np.sqrt(gap))

    def profiled_deviance(self, k, value):
        if k < len(self.rho_hat):
            return self._varpar_profile(k, value)
        return self._fixed_profile(k - len(self.rho_hat), value)

    def _varpar_profile(self, k, value):
        """min of D over the other SDs, correlations and sigma, with parameter k fixed.

        From the nearest point profiled so far (a warm start).  Should that end on a
        bound, it is tried again from the estimate, and from points where each SD at 0
        is made positive with its correlations at -0.9 and at 0.9: at an SD of 0 its
        correlations have no slope, so an optimiser cannot find out from there that
        the other sign would do better (two branches of the profile meet there).
        """
        lower, upper = self.varpar.bounds()
        free = np.arange(len(self.rho_hat)) != k
        best = self._minimise_varpar(self._start(k, value, self.rho_hat), k, value, free)
        on_bound = (np.isclose(best[1], lower, atol=1e-7) | np.isclose(best[1], upper, atol=1e-7))
        if np.any(on_bound & free):
            for start in self._restarts(best[1], k):
                best = min(best, self._minimise_varpar(start, k, value, free),
                           key=lambda result: result[0])
        self._starts.setdefault(k, []).append((value, best[1]))
        return best[0]

    def _restarts(self, rho, k):
        """The estimate, and rho with its zero SDs opened up and their
        correlations at each of `RESTART_CORRELATIONS` (see `_varpar_profile`)."""
        starts = [self.rho_hat.copy()]
        opened = {sign: rho.copy() for sign in RESTART_CORRELATIONS}
        any_zero = False
        for term in self.fit.design.layout.terms:
            positions = term.start + np.arange(term.size)
            zero_rows = {r for j, r, c in zip(positions, term.rows, term.cols)
                         if r == c and j != k and rho[j] < 1e-7}
            any_zero = any_zero or bool(zero_rows)
            for j, r, c in zip(positions, term.rows, term.cols):
                for sign, start in opened.items():
                    if r == c and r in zero_rows:
                        start[j] = max(self.rho_hat[j], 0.1 * self.fit.sigma)
                    elif r != c and j != k and zero_rows & {r, c}:
                        start[j] = sign
        return starts + (list(opened.values()) if any_zero else [])

    def _minimise_varpar(self, start, k, value, free):
        lower, upper = self.varpar.bounds()
        rho = np.array(start, dtype=float)
        rho[k] = value

        def objective(x):
            trial = rho.copy()
            trial[free] = x
            f, g = self.varpar.value_and_gradient(trial)
            return f, g[free]

        x0 = np.clip(rho[free], lower[free], upper[free])
        with np.errstate(invalid="ignore", divide="ignore"):
            result = minimize(objective, x0, jac=True, method="L-BFGS-B",
                              bounds=Bounds(lower[free], upper[free]),
                              options={"ftol": 1e-11, "gtol": 1e-6})
        rho[free] = result.x
        return float(result.fun), rho

    def _fixed_profile(self, k, value):
        fit = self.fit
        if k not in self._reduced:
            design = fit.design
            keep = [j for j in range(design.p) if j != k]
            reduced = dataclasses.replace(design, X=design.X[:, keep],
                                          X_names=[design.X_names[j] for j in keep])
            self._reduced[k] = (cross_products(reduced), design.X[:, k])
        products, x_k = self._reduced[k]
        products = products.with_response(fit.design.y - value * x_k)
        criterion = optimise.Criterion(products, reml=False)
        layout = fit.design.layout
        start = self._start(len(self.rho_hat) + k, value, fit.theta)
        theta, record = optimise.minimise(criterion, start, layout.lower)
        # a singular fit's theta = 0 has zero slope: look inside before accepting it
        theta = optimise.leave_false_boundary(criterion, theta, layout, "L-BFGS-B", record)
        self._starts.setdefault(len(self.rho_hat) + k, []).append((value, theta))
        return float(min(value for _, value in record.path))

    def _start(self, k, value, default):
        """The free parameters of the nearest point profiled so far (a warm start)."""
        points = self._starts.get(k, [])
        if not points:
            return np.array(default, dtype=float)
        nearest = min(points, key=lambda point: abs(point[0] - value))
        return nearest[1].copy()

    def scale(self, k):
        """About one standard error of parameter k: Wald's for the fixed effects, and
        sqrt(2 [H^-1]_kk) from the Hessian H of D at its minimum for the others (the
        curvature of the profiled deviance); a rougher scale where H is not positive
        definite (a fit on the boundary)."""
        if k >= len(self.rho_hat):
            name = self.names[k]
            return float(np.sqrt(self.fit.vcov.loc[name, name]))
        if self._varpar_se is None:
            with np.errstate(all="ignore"):
                H = self.varpar.hessian(self.rho_hat)
                try:
                    se = np.sqrt(2.0 * np.diag(np.linalg.inv(H)))
                except np.linalg.LinAlgError:
                    se = np.full(len(self.rho_hat), np.nan)
            rough = 0.3 * np.maximum(np.abs(self.rho_hat), 0.1 * self.fit.sigma)
            rough[self.varpar.is_correlation[:-1].nonzero()] = 0.3
            ok = np.isfinite(se) & (se > 0)
            self._varpar_se = np.where(ok, se, rough)
        return float(self._varpar_se[k])

    def limits(self, k):
        """(lowest, highest) values parameter k can take."""
        if k >= len(self.rho_hat):
            return -np.inf, np.inf
        return (-1.0, 1.0) if self.varpar.is_correlation[k] else (0.0, np.inf)

    def crossing(self, k, target):
        """The value where zeta = target (the sign of target picks the side):
        bracket it by doubling steps of target SEs, then secant steps inside
        the bracket; the parameter's bound if zeta never gets there, and
        +-inf if zeta levels off (a parameter the data cannot bound: lme4
        reports Inf too)."""
        lowest, highest = self.limits(k)
        estimate, side = self.estimates[k], np.sign(target)
        step = abs(target) * self.scale(k)
        inner, z_inner = estimate, 0.0
        outer = float(np.clip(estimate + side * step, lowest, highest))
        z_outer = self.zeta(k, outer)
        while np.isfinite(z_outer) and abs(z_outer) < abs(target):
            if outer in (lowest, highest):
                return outer               # the bound is inside the interval
            if step > MAX_STEPS * self.scale(k):
                return side * np.inf
            inner, z_inner = outer, z_outer
            step *= 2.0
            outer = float(np.clip(estimate + side * step, lowest, highest))
            z_outer = self.zeta(k, outer)
        if not np.isfinite(z_outer):
            return np.nan
        # secant steps from the bracket's ends, kept inside the bracket
        for _ in range(30):
            slope = (outer - inner) / (z_outer - z_inner)
            guess = inner + (target - z_inner) * slope
            z_guess = self.zeta(k, guess)
            if not np.isfinite(z_guess):
                return np.nan
            if abs(z_guess - target) < ZETA_TOLERANCE:
                return guess
            if abs(z_guess) < abs(target):
                inner, z_inner = guess, z_guess
            else:
                outer, z_outer = guess, z_guess
        return guess

def profile(fit, zeta_max=ZETA_MAX, points=8):
    """The zeta profile of every parameter: a DataFrame with columns parameter, value,
    zeta, one row per point (the estimate included), `points` a side up to |zeta| =
    zeta_max or the parameter's bound."""
    profiler = Profiler(fit)
    rows = []
    for k, name in enumerate(profiler.names):
        rows.append((name, profiler.estimates[k], 0.0))
        lowest, highest = profiler.limits(k)
        for side in (-1.0, 1.0):
            edge = profiler.crossing(k, side * zeta_max)
            if not np.isfinite(edge):
                continue
            for value in np.linspace(profiler.estimates[k], edge, points + 1)[1:]:
                rows.append((name, value, profiler.zeta(k, value)))
    table = pd.DataFrame(rows, columns=["parameter", "value", "zeta"])
    table = table.sort_values(["parameter", "value"], kind="stable")
    table["parameter"] = pd.Categorical(table["parameter"], categories=profiler.names)
    report_failures(profiler)
    return table.sort_values(["parameter", "value"]).reset_index(drop=True)


def profile_intervals(fit, level=0.95):
    """Profile intervals for every parameter: DataFrame with rows .sig01, ..., .sigma and
    the fixed effects, columns with lme4's names ('2.5 %', '97.5 %')."""
    profiler = Profiler(fit)
    z = st.norm.ppf(0.5 + level / 2)
    bounds = [[profiler.crossing(k, -z), profiler.crossing(k, z)] for k in range(len(profiler.names))]
    report_failures(profiler)
    return pd.DataFrame(bounds, index=profiler.names, columns=percent_names(level))


def percent_names(level):
    """lme4's column names for an interval at `level`, e.g. ['2.5 %', '97.5 %']."""
    tail = 100 * (1 - level) / 2
    return [f"{tail:.3g} %", f"{100 - tail:.3g} %"]


def report_failures(profiler):
    for name, value, message in profiler.failures:
        warn(f"profiling {name} failed at {value:.6g} ({message}); that point is left out "
             "and an interval limit that needs it is NaN")
