"""lmm_ref: a small, readable reference implementation of linear mixed-effects models.

The modules follow the book's chapters:

    data        the book's data sets                                (chapter 0)
    formula     reading lme4 formulas                               (chapter 1)
    design      y, X, Z and Lambda_theta: the model's matrices      (chapter 1)
    parameters  the layout of theta: bounds, names, SDs and correlations (chapter 1)
    encoding    data-frame columns to model-matrix columns          (chapter 1)
    model_frame a formula and a data frame to a design, checked     (chapter 1)
    marginal    the dense marginal likelihood: the truth            (chapter 2)
    products    the data's cross-products, computed once            (chapter 3)
    cholesky    the blocked sparse Cholesky factor L                (chapter 3)
    selected    the selected inverse of A; grams on a fixed pattern (chapters 6, 9)
    pls         penalized least squares: L, R_ZX, R_X, beta, u      (chapter 3)
    profile     the profiled deviance and REML criterion            (chapters 4, 5)
    gradient    the exact gradient of the criteria                  (chapter 6)
    starting    where the search starts, and in which units         (chapters 6, 9)
    optimise    minimising the criterion under its bounds           (chapter 6)
    newton      a refit's quasi-Newton steps from its fit's Hessian (chapter 6)
    search      the search for theta-hat: fit, refit, bootstrap     (chapters 6, 8)
    checks      lme4's boundary, singularity and convergence checks (chapter 6)
    tables      VarCorr and ranef tables                            (chapter 6)
    fitting     lmm_ref.fit and its result, LmmFit                  (chapter 6)
    summary     print(fit), laid out like lme4's summary
    condvar     the conditional covariance of the random effects    (chapter 7)
    predict     predictions for new data, prediction intervals      (chapter 7)
    simulate    responses simulated from a fit                      (chapter 7)
    plots       caterpillar, QQ, shrinkage and residual plots       (chapter 7; imported
                on its own, `from lmm_ref import plots`, as it needs matplotlib)
    lrt         likelihood-ratio tests: lmm_ref.anova               (chapter 8)
    zeta        profile likelihood and profile intervals            (chapter 8)
    bootstrap   the parametric bootstrap                            (chapter 8)
    ddf         Satterthwaite's degrees of freedom                  (chapter 8)
    intervals   confint: profile, Wald and bootstrap intervals      (chapter 8)
    reference   lme4's stored results, for the cross-checks
    cli_json    `python -m lmm_ref --json`: a fit as JSON (the command line is __main__)
"""

from . import (bootstrap, checks, cholesky, condvar, data, ddf, design, encoding, errors,
               formula, gradient, intervals, lrt, marginal, model_frame, newton, optimise,
               parameters, pls, predict, products, profile, reference, search, simulate,
               starting, tables, zeta)
from .errors import DataError, DataTypeError, FormulaError, LmmRefError
from .fitting import LmmFit, fit
from .lrt import anova

__all__ = [
    "bootstrap", "checks", "cholesky", "condvar", "data", "ddf", "design", "encoding",
    "errors", "formula", "gradient", "intervals", "lrt", "marginal", "model_frame",
    "newton", "optimise", "parameters", "pls", "predict", "products", "profile",
    "reference", "search", "simulate", "starting", "tables", "zeta", "anova",
    "DataError", "DataTypeError", "FormulaError", "LmmRefError", "fit", "LmmFit",
]
