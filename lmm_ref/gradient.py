"""The exact gradient of the profiled criteria d(theta) and d_R(theta) (chapter 6).

Each theta_m is one entry (xi, eta) of one T_i, so dLambda/dtheta_m = E_m, the matrix
I kron e_xi e_eta' in term i's diagonal block.  With A = Lambda'Z'Z Lambda + I = L L',
the residual e = y - X beta-hat - Z Lambda u-tilde, C = A^{-1} Lambda'Z'X = L^{-T} R_ZX
(the conditional modes of X's columns) and F = Z'(X - Z Lambda C), the three pieces are

    d log|L|^2  / dT_i[xi, eta] =  2 sum_j [A^{-1} Lambda'Z'Z]_{(j,eta),(j,xi)}   (eq-grad-logdet)
    d r^2       / dT_i[xi, eta] = -2 sum_j [Z'e]_{(j,xi)} u_{(j,eta)}             (eq-grad-r2)
    d log|R_X|^2 / dT_i[xi, eta] = -2 sum_j [F (R_X'R_X)^{-1} C']_{(j,xi),(j,eta)} (eq-grad-RX)

where (j, xi) is row xi of level j in term i's block.  So

    d d(theta)   = d log|L|^2 + n / r^2 d r^2                         (ML)
    d d_R(theta) = d log|L|^2 + d log|R_X|^2 + (n - p) / r^2 d r^2    (REML).

(With prior weights, X, Z and e are the weighted ones; log|W| does not depend on theta.)
The last piece is the same in any basis of X's columns, so it is computed in the
orthonormal basis Q_X of `lmm_ref.pls`, where R_X'R_X is best conditioned.
The first needs A^{-1} only where Lambda'Z'Z can be non-zero, that is on A's block
pattern, which `BlockedCholesky.inverse_blocks` supplies; the other two need vectors and
n x p matrices.  One gradient costs a small multiple of one evaluation of the criterion,
whatever the number of parameters (finite differences cost one evaluation per parameter).
"""

import numpy as np
import scipy.linalg as la

from . import pls, profile
from .cholesky import level_blocks, solve_triangular
from .products import Lambda_times

# `trace_blocks_from_diagonal` is used when every diagonal entry of every T_i exceeds
# this times max(1, the largest |entry| of T_i): its rounding error is then ~1e-8
# relative.
INVERTIBLE = 1e-4


def gradient(products, solution, reml, r2_weight=None):
    """The gradient of d_R(theta) (reml) or d(theta) at `solution.theta`.

    One entry per entry of theta, in lme4's order.  With `r2_weight` w, the
    gradient of log|L|^2 + w r^2 (+ log|R_X|^2 if reml) instead: at a fixed
    sigma, the deviance has w = 1 / sigma^2 (chapter 8's profiles).
    """
    xz = products.xz
    terms = xz.terms
    dof = solution.n - solution.p if reml else solution.n
    weight = dof / solution.r2 if r2_weight is None else r2_weight
    # The sums over levels of eq-grad-r2 and eq-grad-RX, side by side:
    # columns [Z'e, F] against [weight * u, C P^{-1}], P = R_X'R_X.
    left = [xz.Zt @ solution.residual]
    right = [weight * solution.u]
    if reml:
        R_X = solution.R_X_Q
        C = solution.L.solve_Lt(solution.R_ZX_Q)          # A^{-1} Lambda'Z'Q_X
        ZLC = xz.Z @ Lambda_times(terms, solution.Ts, C)
        left.append(xz.Zt @ (xz.Q_X - ZLC))               # F
        Ct = solve_triangular(R_X, C.T, lower=False, transpose=True)
        right.append(solve_triangular(R_X, Ct, lower=False).T)  # C P^{-1}
    sums = term_sums(terms, np.column_stack(left), np.column_stack(right))
    if xz.large and invertible(solution.Ts):       # sparse storage (chapter 9)
        G = trace_blocks_from_diagonal(terms, solution.Ts, solution.L)
    else:
        G = trace_blocks(terms, solution.Q, solution.L, xz.rest)
    # eq-grad-logdet, then eq-grad-r2 and eq-grad-RX, for each entry of T_i
    dT = [2.0 * G_i.T - 2.0 * sums_i for G_i, sums_i in zip(G, sums)]
    return xz.layout.from_T(dT)


def criterion_and_gradient(products, theta, reml=True):
    """The criterion (`lmm_ref.profile.criterion`) at theta and its exact gradient."""
    solution = pls.solve(products, theta)
    return profile.criterion(solution, reml), gradient(products, solution, reml)


def term_sums(terms, P, Q):
    """For each term, the p_i x p_i matrix S with S[a, b] = sum_j P_(j,a) . Q_(j,b),

    the dot products of rows (j, a) of P and (j, b) of Q, summed over the term's levels j.

    P and Q have q rows (vectors are one column); row (j, a) of term i is its effect a
    of level j.
    """
    P, Q = P.reshape(len(P), -1), Q.reshape(len(Q), -1)
    sums, start = [], 0
    for term in terms:
        rows = slice(start, start + term.q)
        shape = (term.n_levels, term.p, -1)
        sums.append(np.einsum("jam,jbm->ab", P[rows].reshape(shape), Q[rows].reshape(shape)))
        start += term.q
    return sums


def invertible(Ts, tolerance=INVERTIBLE):
    """Is every T_i safely invertible: each |diagonal entry| above `tolerance`
    times max(1, the largest |entry| of T_i)?"""
    return all(np.min(np.abs(np.diag(T))) > tolerance * max(1.0, np.max(np.abs(T)))
               for T in Ts)


def trace_blocks_from_diagonal(terms, Ts, L):
    """G_i of eq-grad-logdet as (l_i I - S_i) T_i^{-1}, S_i = sum_j [A^{-1}]_(j,j).

    Lambda'Z'Z Lambda = A - I, so when Lambda is invertible
    A^{-1} Lambda'Z'Z = (I - A^{-1}) Lambda^{-1}, whose (j, j) block in term i
    is (I - [A^{-1}]_(j,j)) T_i^{-1} (eq-grad-diag): only the diagonal blocks
    of A^{-1} are needed.  The subtraction loses about eps / theta^2 of
    relative precision, which `invertible`'s tolerance keeps negligible.
    """
    sums = L.diagonal_sums(terms[1:])
    return [la.solve_triangular(T, (term.n_levels * np.eye(term.p) - S).T,
                                lower=True, trans=1).T
            for term, T, S in zip(terms, Ts, sums)]


def trace_blocks(terms, Q, L, rest=None):
    """G_i[x, y] = sum_j [A^{-1} Lambda'Z'Z]_{(j,x),(j,y)} for each term i (eq-grad-logdet).

    Row (j, x) of A^{-1} meets column (j, y) of Q = Lambda'Z'Z only where Q is non-zero,
    so with Y = A^{-1} in blocks (see `BlockedCholesky.inverse_blocks`):
    G_1 = sum_j Y11_jj Q11_jj + (Y21 against Q21), and for a later term, its columns of
    Y12 against Q12 plus its columns of Y22 against Q22.
    """
    Y11, Y21, Y22 = L.inverse_blocks(None if rest is None else rest.pattern)
    G = [np.einsum("jxz,jzy->xy", Y11, Q.Q11)]
    if len(terms) == 1:
        return G
    G[0] = G[0] + level_blocks(Y21, Q.Q21, terms[0].p).sum(axis=0)
    start = 0
    for term in terms[1:]:
        cols = slice(start, start + term.q)
        G.append(level_blocks(Y21[cols].T, Q.Q12[:, cols], term.p).sum(axis=0)
                 + level_blocks(Y22[:, cols], Q.Q22[:, cols], term.p).sum(axis=0))
        start += term.q
    return G
