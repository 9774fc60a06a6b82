"""Fitting a linear mixed model, and the fitted model (chapter 6).

`fit` is the whole recipe: build the design (`lmm_ref.model_frame`), compute the data's
cross-products once (`lmm_ref.products`), minimise the profiled criterion over theta
(`lmm_ref.search`, which drives `lmm_ref.optimise` and lme4's checks in
`lmm_ref.checks`), and read everything else
(beta-hat, sigma-hat, standard errors, conditional modes) off the penalized
least-squares solution at theta-hat.  `LmmFit` holds the result, with attribute names
following lme4's extractors; its methods are thin doors into the modules that do the
work.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import (bootstrap, checks, condvar, intervals, optimise, pls, predict, profile,
               search, simulate, zeta)
from . import ddf as ddf_module   # coef_table's argument is called ddf, as lmerTest's
from .cholesky import solve_triangular
from .model_frame import build
from .products import cross_products
from .summary import format_summary
from .tables import ranef_tables, varcorr_table


@dataclass
class LmmFit:
    """A fitted linear mixed model; attribute names follow lme4's extractors."""

    formula: str
    reml: bool
    design: object = field(repr=False)
    products: object = field(repr=False)  # the CrossProducts the fit used
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
    optimizer: optimise.OptimizerRecord = field(repr=False)
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

    @property
    def condvar(self):
        """{grouping factor: array (levels, k, k)}, lme4's postVar: the covariance of
        each level's random effects given the data, at theta-hat and beta-hat, in the
        row and column order of `ranef[g]` (`lmm_ref.condvar`)."""
        solution = pls.solve(self.products, self.theta)
        return condvar.conditional_covariances(self.design, self.products,
                                               solution, self.sigma)

    @property
    def condvar_full(self):
        """As `condvar`, with the uncertainty of beta-hat counted too: the prediction
        error variance Var(b-tilde - b), Henderson's C^bb (`lmm_ref.condvar`)."""
        solution = pls.solve(self.products, self.theta)
        return condvar.conditional_covariances(self.design, self.products,
                                               solution, self.sigma, with_beta=True)

    def predict(self, newdata=None, re_form=None, allow_new_levels=False):
        """Predictions for newdata (the fitted values if None), lme4's `predict`:
        re_form None (all terms), "NA" or "~0" (none) or e.g. "~(1 | g)"
        (`lmm_ref.predict`)."""
        return predict.predict(self, newdata, re_form, allow_new_levels)

    def predict_interval(self, newdata, re_form=None, allow_new_levels=False, level=0.95):
        """Predictions with prediction intervals for new observations, as a DataFrame
        (`lmm_ref.predict.prediction_intervals`)."""
        return predict.prediction_intervals(self, newdata, re_form, allow_new_levels, level)

    def simulate(self, nsim=1, seed=None):
        """An (n, nsim) array of responses simulated from the fit (`lmm_ref.simulate`)."""
        return simulate.simulate(self, nsim, seed)

    def profile(self):
        """The zeta profile of every parameter (.sig01, ..., .sigma, fixed effects) on
        the ML deviance, a DataFrame of points (`lmm_ref.zeta`)."""
        return zeta.profile(self)

    def confint(self, method="profile", level=0.95, **options):
        """Confidence intervals, lme4's rows and columns: method "profile", "Wald" or
        "boot" (`lmm_ref.intervals`; "boot" takes nsim=, seed=, kind=)."""
        return intervals.confint(self, method, level, **options)

    def bootstrap(self, nsim, seed=None):
        """nsim parametric-bootstrap replicates, one row each, singular and failed ones
        marked (`lmm_ref.bootstrap`)."""
        return bootstrap.bootstrap(self, nsim, seed)

    def coef_table(self, ddf="Satterthwaite"):
        """Estimate, Std. Error, df, t value, Pr(>|t|) with Satterthwaite's df
        (`lmm_ref.ddf`)."""
        return ddf_module.coef_table(self, ddf)

    def refit_ml(self):
        """The same model fitted by maximum likelihood (lme4's refitML), starting at
        this fit's theta-hat; the fit itself if it is ML already."""
        if not self.reml:
            return self
        return fit_design(self.design, self.products, reml=False,
                          method=self.optimizer.method, start=self.theta,
                          formula=self.formula, data_name=self.data_name)

    def refit(self, y):
        """The same model fitted to a new response y, from this theta-hat.

        Only the response's cross-products are computed again (MixedModels.jl's
        `refit!`), and the search and the convergence check use this fit's
        Hessian (`search.refit_theta_hat`);
        y must have one finite number per observation of the fit.
        """
        return result(self.formula, search.refit_theta_hat(self.estimate, y),
                      self.data_name)

    @property
    def estimate(self):
        """The fit as a `search.Estimate` (theta-hat and its search), rebuilt on each
        access, with the penalized least-squares solution at theta-hat solved again."""
        return search.Estimate(self.design, self.products, self.reml, self.theta,
                               pls.solve(self.products, self.theta), self.optimizer,
                               self.singular)

    def __str__(self):
        return format_summary(self)


def fit(formula, data, reml=True, weights=None, method="L-BFGS-B",
        start=None, data_name=""):
    """Fit an lme4-style linear mixed model by REML (default) or ML.

    `formula` is lme4 syntax, e.g. "Reaction ~ Days + (Days | Subject)",
    with offset(expr) terms for known offsets; `data` a pandas DataFrame;
    `weights` prior weights (a column name or an array, one positive number
    per row).  `method` picks the optimiser (one of
    `lmm_ref.optimise.OPTIMIZERS`); `start` a starting theta (default
    lme4's, every T_i = I; for models stored sparse, as InstEval,
    `starting.moment_start`).  Returns an `LmmFit`.
    """
    design = build(formula, data, weights=weights)
    return fit_design(design, cross_products(design), reml, method,
                      start=start, formula=str(formula), data_name=data_name)


def fit_design(design, products, reml, method="L-BFGS-B", start=None,
               formula="", data_name=""):
    """Fit a built design and its products: `fit`'s steps after the design
    (`search.theta_hat`, then `result`)."""
    estimate = search.theta_hat(design, products, reml, method, start)
    return result(formula, estimate, data_name)


def fit_at(fit, theta):
    """The model of `fit` evaluated at another theta, without optimising: beta-hat,
    sigma-hat and everything else at that theta (e.g. lme4's, for comparisons)."""
    theta = fit.design.layout.checked(theta)
    record = optimise.OptimizerRecord(method="none", evaluations=0, path=[],
                                      message="evaluated at a given theta",
                                      gradient=np.array([]), scaled_gradient=np.array([]))
    estimate = search.Estimate(fit.design, fit.products, fit.reml, theta,
                               pls.solve(fit.products, theta), record,
                               checks.is_singular(theta, fit.design.layout.lower))
    return result(fit.formula, estimate, fit.data_name)


def result(formula, estimate, data_name=""):
    """The `LmmFit` of a `search.Estimate`: everything read off its penalized
    least-squares solution at theta-hat."""
    design, products, theta, reml = (estimate.design, estimate.products, estimate.theta,
                                     estimate.reml)
    record, solution = estimate.record, estimate.solution
    sigma = float(profile.sigma_hat(solution, reml))
    # (R_X'R_X)^{-1} = R_0^{-1} (R_X_Q'R_X_Q)^{-1} R_0^{-T}: two triangular solves
    R_X_inv = solve_triangular(solution.R_0, solve_triangular(solution.R_X_Q, np.eye(design.p),
                                                              lower=False), lower=False)
    vcov = sigma**2 * R_X_inv @ R_X_inv.T            # sigma^2 (R_X' R_X)^{-1}
    names = design.X_names
    fitted = design.y - solution.residual / products.xz.sqrt_w
    return LmmFit(
        formula=str(formula), reml=reml, design=design, products=products, theta=theta,
        objective=float(profile.criterion(solution, reml)), sigma=sigma,
        fixef=pd.Series(solution.beta, index=names, name="fixef"),
        stderr=pd.Series(np.sqrt(np.diag(vcov)), index=names, name="stderr"),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        varcorr=varcorr_table(design, theta, sigma),
        ranef=ranef_tables(design, solution.b),
        fitted=fitted, residuals=design.y - fitted,
        singular=estimate.singular, converged=not record.warnings,
        optimizer=record, data_name=data_name,
    )
