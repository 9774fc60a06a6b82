"""The fit's tables of variance components and conditional modes, as lme4 lays them out
(chapter 6): `varcorr_table` is R's as.data.frame(VarCorr(fit)), `ranef_tables` is
ranef(fit), one DataFrame per grouping factor.
"""

import numpy as np
import pandas as pd


def varcorr_table(design, theta, sigma):
    """Like R's as.data.frame(VarCorr(fit)): group, var1, var2, vcov, sdcor.

    For each term, Sigma_i = sigma^2 T_i T_i' (eq-Sigma-Lambda): one row per variance
    (sdcor = SD), one per covariance (sdcor = correlation), then the residual.
    """
    rows = []
    layout = design.layout
    for place, Sigma_i in zip(layout.terms, layout.Sigma(theta, sigma)):
        sd = np.sqrt(np.diag(Sigma_i))
        for j, name in enumerate(place.columns):
            rows.append((place.label, name, None, Sigma_i[j, j], sd[j]))
        for j in range(place.p):
            for i in range(j + 1, place.p):
                correlation = Sigma_i[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                rows.append((place.label, place.columns[j], place.columns[i], Sigma_i[i, j],
                             correlation))
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])


def by_grouping_factor(design, per_term):
    """Join per-term tables (rows = levels) into one per grouping factor, as lme4 does
    for terms that share a factor, e.g. '(1 | g) + (0 + x | g)'."""
    tables = {}
    for term, table in zip(design.terms, per_term):
        tables[term.group] = (pd.concat([tables[term.group], table], axis=1)
                              if term.group in tables else table)
    return tables


def ranef_tables(design, b):
    """Conditional modes b = Lambda u-tilde: one DataFrame per grouping factor."""
    per_term, start = [], 0
    for term in design.terms:
        block = b[start: start + term.q].reshape(term.n_levels, term.p)
        start += term.q
        per_term.append(pd.DataFrame(block, index=term.levels, columns=term.columns))
    return by_grouping_factor(design, per_term)
