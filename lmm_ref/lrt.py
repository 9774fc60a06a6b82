"""Likelihood-ratio tests of nested models: lme4's anova table (chapter 8).

For nested models fitted by ML to the same data, twice the difference of their
log-likelihoods is, under the smaller model, approximately chi-square with as many
degrees of freedom as the larger model has extra parameters (eq-lrt).  REML criteria
depend on the fixed effects' parametrisation, so they can be compared only between
models with the same fixed effects: `anova` refits REML fits by ML first, as lme4's
default (refit=True) does, and says so.

When the larger model adds a variance component whose value under the smaller one is on
the boundary (an SD of 0), the chi-square is the wrong reference: the null distribution
is a mixture (eq-chibar), 1/2 chi^2_{df-1} + 1/2 chi^2_df (with chi^2_0 the point mass
at 0) when one new variance and df - 1 unconstrained covariances are added.
`boundary=True` adds that p-value as a column.
"""

import numpy as np
import pandas as pd
import scipy.stats as st

from .errors import DataError, warn


def npar(fit):
    """Parameters lme4 counts: fixed effects, theta and sigma."""
    return fit.df


def same_data(fits):
    """All fitted to the same observations and response, or a clear error."""
    first = fits[0].design
    for other in fits[1:]:
        design = other.design
        if design.n != first.n or not np.array_equal(design.y, first.y):
            raise DataError(
                f"the models were not fitted to the same data: {fits[0].formula!r} has "
                f"{first.n} observations and {other.formula!r} has {design.n}"
                + ("" if design.n != first.n else ", with a different response")
                + "; a likelihood-ratio test compares models of the same response")
        if not np.array_equal(design.weights, first.weights):
            raise DataError(f"the models {fits[0].formula!r} and {other.formula!r} have "
                            "different prior weights; their likelihoods are not comparable")


# Z's column spans are compared (see `nested`) only up to this many entries of Z.
SPAN_CHECK_LIMIT = 2_000_000


def nested(small, large):
    """Does `large` contain `small`?  Its fixed effects span small's, and every random
    term of small is a term of large on the same factor with the same or more columns;
    or, for a small Z, each of small's terms lies in the span of the columns of one
    of large's terms: (1 | Worker/Machine) in (Machine | Worker), whose unstructured
    covariance per worker holds the nested model's as a special case."""
    X_small, X_large = small.design.X, large.design.X
    rank = np.linalg.matrix_rank
    if rank(np.column_stack([X_large, X_small])) > rank(X_large):
        return False
    large_terms = {}
    for term in large.design.terms:
        large_terms.setdefault(term.group, set()).update(term.columns)
    if all(set(term.columns) <= large_terms.get(term.group, set())
           for term in small.design.terms):
        return True
    return spans_nested(small.design, large.design)


def spans_nested(small, large):
    """Does every term of `small` lie in one vector-valued term of `large`: its
    levels inside that term's levels, its Z in the span of that term's Z?  Then
    large's unstructured T_i T_i' holds small's covariance as a special case."""
    if small.n * (small.Z.shape[1] + large.Z.shape[1]) > SPAN_CHECK_LIMIT:
        return False
    rank = np.linalg.matrix_rank

    def within(term, outer):
        pairs = np.unique(np.column_stack([term.codes, outer.codes]), axis=0)
        Z = outer.Z.toarray()
        return (outer.p > 1 and len(pairs) == term.n_levels
                and rank(np.column_stack([Z, term.Z.toarray()])) == rank(Z))

    return all(any(within(term, outer) for outer in large.terms)
               for term in small.terms)


def anova(*fits, refit=True, boundary=False):
    """lme4's anova table for nested models: npar, AIC, BIC, logLik, deviance, Chisq, Df,
    Pr(>Chisq), the models in npar order.

    REML fits are refitted by ML (with a message) unless refit=False, which compares the
    REML criteria of models with identical fixed effects and refuses otherwise.
    `boundary=True` adds 'Pr(>Chisq) boundary': the chi-bar-square mixture p-value for a
    test that adds one variance component (and Df - 1 covariances) on the boundary.
    """
    if len(fits) < 2:
        raise ValueError("anova compares two or more fitted models")
    same_data(fits)
    same_fixed = all(fit.design.X_names == fits[0].design.X_names
                     and np.allclose(fit.design.X, fits[0].design.X) for fit in fits)
    if any(fit.reml for fit in fits):
        if refit:
            why = ("" if same_fixed else ": REML criteria of models with different "
                   "fixed effects cannot be compared")
            warn("refitting model(s) with ML (instead of REML)" + why)
            fits = [fit.refit_ml() for fit in fits]
        elif not all(fit.reml for fit in fits):
            raise ValueError("refit=False compares REML criteria, but some models are ML "
                             "fits; fit them all by REML or let anova refit them by ML")
        elif not same_fixed:
            raise ValueError("refit=False compares REML criteria, which is right only for "
                             "models with the same fixed effects, and these differ; use "
                             "refit=True to compare them by ML")
    order = sorted(range(len(fits)), key=lambda k: npar(fits[k]))
    fits = [fits[k] for k in order]
    rows = []
    for position, fit in enumerate(fits):
        # -2 logLik: the deviance, or the REML criterion when refit=False, as lme4
        row = {"npar": npar(fit), "AIC": fit.aic, "BIC": fit.bic, "logLik": fit.loglik,
               "deviance": fit.objective, "Chisq": np.nan, "Df": np.nan,
               "Pr(>Chisq)": np.nan}
        if position:
            previous = fits[position - 1]
            chisq = max(2 * (fit.loglik - previous.loglik), 0.0)
            df = npar(fit) - npar(previous)
            row.update({"Chisq": chisq, "Df": df})
            if not nested(previous, fit):
                warn(f"{previous.formula!r} does not appear to be nested in {fit.formula!r}: "
                     "their likelihood-ratio test has no chi-square reference (its p-value "
                     "is left out); AIC and BIC can still be compared")
            elif df > 0:
                row["Pr(>Chisq)"] = st.chi2.sf(chisq, df)
                if boundary:
                    row["Pr(>Chisq) boundary"] = chibar_pvalue(chisq, df)
        rows.append(row)
    return pd.DataFrame(rows, index=[fit.formula for fit in fits])


def chibar_pvalue(chisq, df):
    """P(X > chisq) for X ~ 1/2 chi^2_{df-1} + 1/2 chi^2_df, chi^2_0 the point mass at 0
    (eq-chibar)."""
    upper = st.chi2.sf(chisq, df)
    lower = st.chi2.sf(chisq, df - 1) if df > 1 else float(chisq <= 0)
    return 0.5 * upper + 0.5 * lower
