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
    pls         penalized least squares: L, R_ZX, R_X, beta, u      (chapter 3)
    profile     the profiled deviance and REML criterion            (chapters 4, 5)
    gradient    the exact gradient of the criteria                  (chapter 6)
    optimise    minimising the criterion under its bounds           (chapter 6)
    checks      lme4's boundary, singularity and convergence checks (chapter 6)
    tables      VarCorr and ranef tables                            (chapter 6)
    fitting     lmm_ref.fit and its result, LmmFit                  (chapter 6)
    summary     print(fit), laid out like lme4's summary
"""

from . import (checks, cholesky, data, design, encoding, errors, formula, gradient, model_frame,
               marginal, optimise, parameters, pls, products, profile, reference, tables)
from .errors import DataError, DataTypeError, FormulaError, LmmRefError
from .fitting import LmmFit, fit

__all__ = [
    "checks", "cholesky", "data", "design", "encoding", "errors", "formula", "model_frame",
    "gradient", "marginal", "optimise", "parameters", "pls", "products", "profile",
    "reference", "tables",
    "DataError", "DataTypeError", "FormulaError", "LmmRefError", "fit", "LmmFit",
]
