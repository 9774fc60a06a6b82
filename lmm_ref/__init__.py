"""lmm_ref: a small, readable reference implementation of linear mixed-effects models.

The modules follow the book's chapters:

    data      the book's data sets                       (chapter 0)
    formula   reading lme4 formulas                      (chapter 1)
    design    y, X, Z and Lambda_theta                   (chapter 1)
    marginal  the dense marginal likelihood: the truth   (chapter 2)
    pls       penalized least squares, L, R_ZX, R_X      (chapter 3)
    cholesky  the blocked sparse Cholesky factor L       (chapter 3)
    profile   the profiled deviance and REML criterion   (chapters 4, 5)
    fitting   lmm_ref.fit and its result object          (chapter 6)
    summary   print(fit), laid out like lme4's summary
"""

from . import data, design, errors, formula, marginal, pls, profile, reference
from .errors import DataError, DataTypeError, FormulaError, LmmRefError

__all__ = [
    "data", "design", "errors", "formula", "marginal", "pls", "profile", "reference",
    "DataError", "DataTypeError", "FormulaError", "LmmRefError",
]

from .fitting import LmmFit, fit  # noqa: E402  (the entry point: lmm_ref.fit)

__all__ += ["fit", "LmmFit"]
