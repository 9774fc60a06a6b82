"""The conditional distribution of the random effects given the data (chapter 7).

For a linear mixed model the distribution of U given Y = y is Gaussian, exactly
(eq-cond-U):

    (U | Y = y) ~ N(u-tilde, sigma^2 A^{-1}),     A = Lambda'Z'WZ Lambda + I = L L',

and so, with B = Lambda U (eq-cond-B),

    (B | Y = y) ~ N(b-tilde, sigma^2 Lambda A^{-1} Lambda'),

at given theta and beta (lme4 plugs in theta-hat and beta-hat: `ranef(fit, condVar =
TRUE)`, its "postVar").  Only the diagonal blocks of A^{-1} that belong to one level of
one grouping factor are needed, and the selected inverse of the blocked factor
(`BlockedCholesky.inverse_blocks`, the one the gradient uses) has them all.

Counting the uncertainty of beta-hat as well (eq-pev) adds C (R_X'R_X)^{-1} C' to A^{-1},
with C = A^{-1} Lambda'Z'WX = L^{-T} R_ZX: the prediction error variance
Var(b-tilde - b), Henderson's C^{bb} block.
"""

import numpy as np
import scipy.linalg as la

from .cholesky import solve_triangular


def level_indices(design, group):
    """(levels x k) positions in u of each level's effects for a grouping factor, k
    being all the columns of its terms, in ranef's column order."""
    blocks, start = [], 0
    for term in design.terms:
        if term.group == group:
            per_level = start + term.p * np.arange(term.n_levels)[:, None]
            blocks.append(per_level + np.arange(term.p))
        start += term.q
    return np.hstack(blocks)


def inverse_entries(selected, q1, p1, rows, cols):
    """Entries [A^{-1}]_{rc} from the selected inverse `selected` = (Y11 blocks, Y21,
    Y22) of `BlockedCholesky.inverse_blocks` (first term of q1 = l1 p1 effects), for
    index arrays rows and cols that broadcast together.

    Pairs within the first term must lie in one level's diagonal block, which is all
    that the selected inverse keeps of [A^{-1}]_{11}; pairs between the first and a
    later term must lie on A21's pattern when the storage is sparse (they do: the
    terms of one grouping factor share their levels' observations).
    """
    Y11, Y21, Y22 = selected
    rows, cols = np.broadcast_arrays(rows, cols)
    out = np.empty(rows.shape)
    first = (rows < q1) & (cols < q1)
    if np.any(rows[first] // p1 != cols[first] // p1):
        raise ValueError("only one level's block of [A^-1]_11 is available")
    out[first] = Y11[rows[first] // p1, rows[first] % p1, cols[first] % p1]
    if Y22 is None:  # a single term: A^{-1} is block diagonal
        return out
    lower, upper = (rows >= q1) & (cols < q1), (rows < q1) & (cols >= q1)
    out[lower] = np.asarray(Y21[rows[lower] - q1, cols[lower]]).ravel()
    out[upper] = np.asarray(Y21[cols[upper] - q1, rows[upper]]).ravel()
    rest = (rows >= q1) & (cols >= q1)
    out[rest] = Y22[rows[rest] - q1, cols[rest] - q1]
    return out


def conditional_covariances(design, products, solution, sigma,
                            with_beta=False):
    """{grouping factor: array (levels, k, k)}: each level's Var(b | y).

    sigma^2 Lambda A^{-1} Lambda' restricted to one level (eq-cond-B), or,
    with `with_beta`, sigma^2 Lambda (A^{-1} + C (R_X'R_X)^{-1} C') Lambda'
    (eq-pev).
    """
    L = solution.L
    rest = products.xz.rest       # sparse storage: A^{-1}_21 on A21's pattern
    selected = L.inverse_blocks(None if rest is None else rest.pattern)
    if with_beta:
        C = L.solve_Lt(solution.R_ZX_Q)        # L^{-T} R_ZX, in Q_X's basis
        C_R = solve_triangular(solution.R_X_Q, C.T, lower=False,
                               transpose=True).T
    out = {}
    for group in dict.fromkeys(term.group for term in design.terms):
        index = level_indices(design, group)            # (levels, k)
        blocks = inverse_entries(selected, L.q1, L.p1,
                                 index[:, :, None], index[:, None, :])
        if with_beta:          # + (C R^-1)(C R^-1)' = C (R_X'R_X)^-1 C'
            rows = C_R[index]
            blocks = blocks + np.einsum("jam,jbm->jab", rows, rows)
        # Lambda is block diagonal by level, the same T_i in every level
        Ts = [T for term, T in zip(design.terms, solution.Ts)
              if term.group == group]
        T_g = la.block_diag(*Ts)
        out[group] = sigma**2 * T_g @ blocks @ T_g.T
    return out
