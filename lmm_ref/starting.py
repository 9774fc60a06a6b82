"""Where the search for theta-hat starts, and in which units (chapters 6 and 9).

`theta_scale` gives the units phi = theta / scale in which the optimiser works (1 for
well-scaled covariates, so that lme4's start T_i = I is kept); `moment_start` a start
near theta-hat for large models, where each evaluation is expensive.
"""

import numpy as np

# A random-effects column whose root-mean-square lies outside this range is measured in
# units that make lme4's start T_i = I absurd (see `theta_scale`).
WELL_SCALED = (1e-2, 1e2)


def theta_scale(design):
    """The factors s in theta = s * phi that make the optimiser blind to units.

    Row r of T_i multiplies column r of X_i (row h of Z_i Lambda_i is
    kron(J_i[h, :], X_i[h, :] T_i)), so measuring a covariate in units c
    times smaller multiplies its column by c and divides row r of T_i by c:
    the same model, but not the same problem for the optimiser, which starts
    at T_i = I and takes steps of the same size in every coordinate.  On a
    covariate of size 1e6 that start says each slope's SD is a million times
    too large, and the search wanders where the Cholesky factors lose all
    precision.  So for a column whose root-mean-square m is far from 1
    (outside `WELL_SCALED`), the optimiser works on phi = m theta, the
    entries of T_i for the column divided by m, and starts at phi = I.
    Well-scaled columns keep s = 1, and so lme4's start.
    """
    factors = []
    for term, place in zip(design.terms, design.layout.terms):
        m = np.sqrt(np.mean(term.X**2, axis=0))
        badly_scaled = (m > 0) & ((m < WELL_SCALED[0]) | (m > WELL_SCALED[1]))
        per_row = np.where(badly_scaled, 1.0 / np.where(m > 0, m, 1.0), 1.0)
        factors.append(per_row[place.rows])  # theta's entries in these rows
    return np.concatenate(factors)


def moment_start(design):
    """A start near theta-hat for large models: method-of-moments SDs.

    lme4 starts at T_i = I.  Where each evaluation costs a tenth of a second
    (InstEval), half of L-BFGS-B's evaluations from there are spent walking
    to the right scale.  For each scalar random intercept (1 | g), this
    estimates the between-level variance of the least-squares residuals r
    as var(level means) - s_w^2 mean(1 / n_j), with s_w^2 the within-level
    variance, and divides its root by sigma (estimated by the smallest s_w):
    theta_i = SD_i / sigma (eq-Sigma-Lambda).  Other terms keep lme4's start.
    Only where to start changes, not the optimum.
    """
    layout, theta = design.layout, design.layout.start.copy()
    beta = np.linalg.lstsq(design.X, design.y - design.offset, rcond=None)[0]
    r = design.y - design.offset - design.X @ beta
    between, within = [], []
    for term in design.terms:
        counts = np.bincount(term.codes, minlength=term.n_levels)
        sums = np.bincount(term.codes, weights=r, minlength=term.n_levels)
        means = sums / np.maximum(counts, 1)
        s2_w = np.sum((r - means[term.codes]) ** 2) / max(len(r) - term.n_levels, 1)
        between.append(np.var(means[counts > 0], ddof=1)
                       - s2_w * np.mean(1.0 / counts[counts > 0]))
        within.append(s2_w)
    sigma2 = min(within)
    for term, place, v in zip(design.terms, layout.terms, between):
        if term.p == 1 and np.all(term.X == 1.0) and sigma2 > 0:
            # clipped away from the bound, where the slope vanishes (chapter 6)
            theta[place.start] = np.clip(np.sqrt(max(v, 0.0) / sigma2), 0.05, 20.0)
    return theta
