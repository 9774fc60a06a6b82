"""Penalized least squares: the computation at the heart of lme4 (chapter 3).

With spherical random effects u and b = Lambda_theta u, the conditional modes u-tilde and
the estimate beta-hat at a given theta minimise the penalized residual sum of squares

    r^2(theta, beta, u) = ||y - X beta - Z Lambda u||^2 + ||u||^2          (eq-prss)

Setting its gradient to zero gives a blocked system solved by Cholesky factors

    L L'        = Lambda' Z' Z Lambda + I                                   (eq-L)
    L R_ZX      = Lambda' Z' X                                              (eq-RZX)
    R_X' R_X    = X' X - R_ZX' R_ZX                                         (eq-RX)
    L c_u       = Lambda' Z' y,      R_X' c_beta = X' y - R_ZX' c_u         (eq-c)
    R_X beta    = c_beta,            L' u = c_u - R_ZX beta                 (eq-back)

`solve` returns every piece later chapters need: r^2 at the minimum, log|L|^2,
log|R_X|^2, beta-hat and u-tilde.  No n x n matrix is formed: the data enter once,
through the cross-products Z'Z, Z'X, Z'y, X'X, X'y (`CrossProducts`), and each term's
Lambda_i = I kron T_i is applied block by block.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .cholesky import BlockedCholesky, cholesky, solve_triangular
from .design import LambdaTemplate

# Above this many entries in Z_2'Z_1, the blocks of the other terms are kept sparse.
# Below it, dense arrays are faster: SciPy's sparse matrices cost tens of microseconds
# per operation however small they are.
DENSE_LIMIT = 1_000_000
# Z itself (for the residual, and the gradient's products) is kept dense up to this many
# entries: the sleep study's 180 x 36 = 6,480, not a 2,000 x 280 design.
DENSE_Z_LIMIT = 20_000


class CrossProducts:
    """The data's cross-products, computed once per design and reused for every theta.

    `D1` holds the l_1 diagonal blocks of Z_1' Z_1 (shape (l_1, p_1, p_1)); `Z2tZ1` and
    `Z2tZ2` the rows of the other terms (dense for small problems, sparse for large
    ones: see `DENSE_LIMIT`); `ZtX`, `Zty`, `XtX`, `Xty` the rest; and `Z`, `Zt`, dense
    if small (`DENSE_Z_LIMIT`), for the products with n-vectors.
    """

    def __init__(self, design):
        first, Z = design.terms[0], design.Z
        X, y = design.X, design.y
        self.D1 = np.zeros((first.n_levels, first.p, first.p))
        np.add.at(self.D1, first.codes, first.X[:, :, None] * first.X[:, None, :])
        self.sparse = first.q * (Z.shape[1] - first.q) > DENSE_LIMIT
        if len(design.terms) > 1:  # the rows of the other terms
            Z1, Z2 = Z[:, : first.q], Z[:, first.q:]
            as_stored = sp.csr_matrix if self.sparse else (lambda M: M.toarray())
            self.Z2tZ1 = as_stored(Z2.T @ Z1)
            self.Z2tZ2 = as_stored(Z2.T @ Z2)
        self.Z = Z.toarray() if Z.shape[0] * Z.shape[1] <= DENSE_Z_LIMIT else Z.tocsr()
        self.Zt = self.Z.T if isinstance(self.Z, np.ndarray) else Z.T.tocsr()
        self.ZtX = np.asarray(self.Zt @ X)
        self.Zty = np.asarray(self.Zt @ y)
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        # Lambda_1 and Lambda_2 as sparse matrices, needed only on the sparse path
        # (see `Lambda_products`): refilled from theta rather than built anew.
        if self.sparse:
            self.Lambda_first = LambdaTemplate(design.terms[:1])
            self.Lambda_rest = LambdaTemplate(design.terms[1:])


def Lambda_t_times(terms, Ts, B):
    """Lambda' B, applied term by term as (I kron T_i') on the rows of B."""
    return _apply_blocks(terms, [T.T for T in Ts], B)


def Lambda_times(terms, Ts, B):
    """Lambda B, applied term by term as (I kron T_i) on the rows of B."""
    return _apply_blocks(terms, Ts, B)


def _apply_blocks(terms, blocks, B):
    pieces, start = [], 0
    for term, M in zip(terms, blocks):
        l, p = term.n_levels, term.p
        rows = B[start: start + l * p]
        if p == 1:  # a scalar term: I kron T_i is the number T_i times I
            pieces.append(M[0, 0] * rows)
        else:
            pieces.append((M @ rows.reshape(l, p, -1)).reshape(rows.shape))  # M on each level
        start += l * p
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


@dataclass
class LambdaZtZ:
    """The blocks of Q = Lambda'Z'Z, from which A = Q Lambda + I is formed (and which the
    gradient needs again): Q11 as l_1 blocks T_1'(Z_1'Z_1)_jj; Q21 = Lambda_2'Z_2'Z_1,
    Q12 = Lambda_1'Z_1'Z_2 and Q22 = Lambda_2'Z_2'Z_2 (None for a single term); and, on
    the sparse path, Lambda_1 and Lambda_2 themselves."""

    Q11: np.ndarray
    Q21: object = None
    Q12: object = None
    Q22: object = None
    Lambda1: object = None
    Lambda2: object = None


@dataclass
class PLSSolution:
    """The penalized least-squares solution at one theta (names as in the equations)."""

    theta: np.ndarray
    Ts: list  # the T_i at theta
    Q: LambdaZtZ
    L: BlockedCholesky
    R_ZX: np.ndarray
    R_X: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    b: np.ndarray
    residual: np.ndarray  # e = y - X beta - Z b
    r2: float

    @cached_property
    def logdet_L2(self):
        """log |L_theta|^2."""
        return self.L.logdet()

    @cached_property
    def logdet_RX2(self):
        """log |R_X|^2."""
        return 2.0 * np.sum(np.log(np.abs(np.diag(self.R_X))))


def r2_at(solution, beta):
    """r^2(theta, beta) = min over u of eq-prss, at any beta (eq-r2-beta).

    Completing the square in beta around beta-hat:
    r^2(theta, beta) = r^2(theta) + ||R_X (beta - beta-hat)||^2.
    """
    shift = solution.R_X @ (np.asarray(beta, dtype=float) - solution.beta)
    return solution.r2 + float(shift @ shift)


def solve(design, theta):
    """Solve the penalized least-squares problem (eq-prss) at theta.

    Follows eqs. (eq-L) to (eq-back) in order; see the module docstring.
    """
    products = _cross_products(design)
    terms = design.terms
    pieces = design.split_theta(theta)
    Ts = [term.T(piece) for term, piece in zip(terms, pieces)]

    Q = Lambda_products(terms, pieces, Ts, products)
    L = BlockedCholesky(*_A_blocks(terms, Ts, Q))                          # eq-L
    R_ZX = L.solve_L(Lambda_t_times(terms, Ts, products.ZtX))            # eq-RZX
    R_X = cholesky(products.XtX - R_ZX.T @ R_ZX, lower=False)           # eq-RX
    c_u = L.solve_L(Lambda_t_times(terms, Ts, products.Zty))             # eq-c
    c_beta = solve_triangular(R_X, products.Xty - R_ZX.T @ c_u, lower=False, transpose=True)
    beta = solve_triangular(R_X, c_beta, lower=False)                    # eq-back
    u = L.solve_Lt(c_u - R_ZX @ beta)
    b = Lambda_times(terms, Ts, u)
    residual = design.y - design.X @ beta - products.Z @ b
    r2 = float(residual @ residual) + float(u @ u)                        # eq-prss
    return PLSSolution(theta=np.asarray(theta, dtype=float), Ts=Ts, Q=Q, L=L, R_ZX=R_ZX, R_X=R_X,
                       beta=beta, u=u, b=b, residual=residual, r2=r2)


def _cross_products(design):
    # Cached on the design object: every theta of a fit reuses the same products.
    if "_cross_products" not in design.__dict__:
        design.__dict__["_cross_products"] = CrossProducts(design)
    return design.__dict__["_cross_products"]


def Lambda_products(terms, pieces, Ts, products):
    """The blocks of Q = Lambda'Z'Z (see `LambdaZtZ`), from the data's cross-products."""
    T1 = Ts[0]
    Q11 = T1.T @ products.D1                          # T_1' (Z_1'Z_1)_jj, each level j
    if len(terms) == 1:
        return LambdaZtZ(Q11)
    first, rest = terms[:1], terms[1:]
    if products.sparse:  # Lambda_1 and Lambda_2 as sparse matrices
        Lambda1 = products.Lambda_first(pieces[0])
        Lambda2 = products.Lambda_rest(np.concatenate(pieces[1:]))
        return LambdaZtZ(Q11, Lambda2.T @ products.Z2tZ1, (Lambda1.T @ products.Z2tZ1.T).tocsc(),
                         (Lambda2.T @ products.Z2tZ2).tocsc(), Lambda1, Lambda2)
    return LambdaZtZ(Q11, Lambda_t_times(rest, Ts[1:], products.Z2tZ1),
                     Lambda_t_times(first, Ts[:1], products.Z2tZ1.T),
                     Lambda_t_times(rest, Ts[1:], products.Z2tZ2))


def _A_blocks(terms, Ts, Q):
    """The blocks A11 (as l_1 small blocks), A21 and A22 of A = Q Lambda + I."""
    T1 = Ts[0]
    A11 = Q.Q11 @ T1 + np.eye(T1.shape[0])          # T_1' (Z_1'Z_1)_jj T_1 + I, each j
    if len(terms) == 1:
        return A11, None, None
    if Q.Lambda1 is not None:  # the sparse path
        A21 = Q.Q21 @ Q.Lambda1
        A22 = (Q.Q22 @ Q.Lambda2).toarray()
    else:  # M Lambda = (Lambda' M')', Lambda applied block by block
        A21 = Lambda_t_times(terms[:1], Ts[:1], Q.Q21.T).T
        A22 = Lambda_t_times(terms[1:], Ts[1:], Q.Q22.T).T
    return A11, A21, A22 + np.eye(A22.shape[0])
