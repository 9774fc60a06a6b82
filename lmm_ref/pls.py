"""Penalized least squares: the computation at the heart of lme4 (chapter 3).

With spherical random effects u and b = Lambda_theta u, the conditional modes u-tilde and
the estimate beta-hat at a given theta minimise the penalized (weighted) residual sum of
squares

    r^2(theta, beta, u) = ||W^{1/2}(y - o - X beta - Z Lambda u)||^2 + ||u||^2   (eq-prss)

Setting its gradient to zero gives a blocked system solved by Cholesky factors (with X,
Z and y standing for their weighted versions W^{1/2} X, W^{1/2} Z, W^{1/2}(y - o))

    L L'        = Lambda' Z' Z Lambda + I                                   (eq-L)
    L R_ZX      = Lambda' Z' X                                              (eq-RZX)
    R_X' R_X    = X' X - R_ZX' R_ZX                                         (eq-RX)
    L c_u       = Lambda' Z' y,      R_X' c_beta = X' y - R_ZX' c_u         (eq-c)
    R_X beta    = c_beta,            L' u = c_u - R_ZX beta                 (eq-back)

`solve` works with X in the orthonormal basis Q_X of `lmm_ref.products` (X = Q_X R_0,
so X'X = I there): it finds R_ZX_Q, R_X_Q and gamma = R_0 beta, and the solution maps
them back, R_ZX = R_ZX_Q R_0, R_X = R_X_Q R_0, beta = R_0^{-1} gamma: the same equations
in another basis of X's column space.  The data enter only through the cross-products
(`lmm_ref.products`), and each term's Lambda_i = I kron T_i is applied block by block.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .cholesky import BlockedCholesky, cholesky, solve_triangular
from .products import Lambda_t_times, Lambda_times


@dataclass
class LambdaZtZ:
    """The blocks of Q = Lambda'Z'Z, from which A = Q Lambda + I is formed (and which the
    gradient needs again): Q11 as l_1 blocks T_1'(Z_1'Z_1)_jj; Q21 = Lambda_2'Z_2'Z_1,
    Q12 = Lambda_1'Z_1'Z_2 and Q22 = Lambda_2'Z_2'Z_2 (None for a single term)."""

    Q11: np.ndarray
    Q21: object = None
    Q12: object = None
    Q22: object = None


@dataclass
class PLSSolution:
    """The penalized least-squares solution at one theta (names as in the equations).

    `R_ZX_Q`, `R_X_Q` and `gamma` are in the orthonormal basis Q_X of X's columns;
    `R_0` maps them back (see the module docstring), and `logdet_R0` is log |R_0|^2.
    `residual` is the weighted residual W^{1/2}(y - o - X beta - Z b); `logdet_W` is
    log|W| (0 without weights).
    """

    theta: np.ndarray
    Ts: list  # the T_i at theta
    Q: LambdaZtZ
    L: BlockedCholesky
    R_ZX_Q: np.ndarray
    R_X_Q: np.ndarray
    R_0: np.ndarray
    gamma: np.ndarray
    u: np.ndarray
    b: np.ndarray
    residual: np.ndarray
    r2: float
    logdet_W: float = 0.0
    logdet_R0: float = 0.0

    @property
    def n(self):
        return len(self.residual)

    @property
    def p(self):
        return len(self.gamma)

    @cached_property
    def beta(self):
        """beta-hat(theta) = R_0^{-1} gamma."""
        return solve_triangular(self.R_0, self.gamma, lower=False)

    @cached_property
    def R_X(self):
        """R_X = R_X_Q R_0: R_X' R_X = X'X - R_ZX' R_ZX (eq-RX) in X's own columns."""
        return self.R_X_Q @ self.R_0

    @cached_property
    def R_ZX(self):
        """R_ZX = R_ZX_Q R_0, the solution of L R_ZX = Lambda'Z'X (eq-RZX)."""
        return self.R_ZX_Q @ self.R_0

    @cached_property
    def logdet_L2(self):
        """log |L_theta|^2."""
        return self.L.logdet()

    @cached_property
    def logdet_RX2(self):
        """log |R_X|^2 = log |R_X_Q|^2 + log |R_0|^2, each from its triangle's
        (positive) diagonal; log |R_0|^2 is the products' `logdet_R0`."""
        return 2.0 * float(np.sum(np.log(np.diag(self.R_X_Q)))) + self.logdet_R0


def r2_at(solution, beta):
    """r^2(theta, beta) = min over u of eq-prss, at any beta (eq-r2-beta).

    Completing the square in beta around beta-hat:
    r^2(theta, beta) = r^2(theta) + ||R_X (beta - beta-hat)||^2.
    """
    shift = solution.R_X @ (np.asarray(beta, dtype=float) - solution.beta)
    return solution.r2 + float(shift @ shift)


def solve(products, theta):
    """Solve the penalized least-squares problem (eq-prss) at theta.

    Follows eqs. (eq-L) to (eq-back) in order, with X in its orthonormal
    basis Q_X (so X'X = I); `products` is a `products.CrossProducts`.
    """
    xz, y = products.xz, products.y
    terms = xz.terms
    theta = np.asarray(theta, dtype=float)
    Ts = xz.layout.T(theta)

    Q = Lambda_products(xz, theta, Ts)
    L = BlockedCholesky(*A_blocks(xz, theta, Ts, Q), gram=xz.gram)  # eq-L
    R_ZX_Q = L.solve_L(Lambda_t_times(terms, Ts, xz.ZtX))          # eq-RZX
    R_X_Q = cholesky(np.eye(xz.p) - R_ZX_Q.T @ R_ZX_Q, lower=False)  # eq-RX
    c_u = L.solve_L(Lambda_t_times(terms, Ts, y.Zty))               # eq-c
    c_beta = solve_triangular(R_X_Q, y.Xty - R_ZX_Q.T @ c_u,
                              lower=False, transpose=True)
    gamma = solve_triangular(R_X_Q, c_beta, lower=False)            # eq-back
    u = L.solve_Lt(c_u - R_ZX_Q @ gamma)
    b = Lambda_times(terms, Ts, u)
    residual = y.y - xz.Q_X @ gamma - xz.Z @ b
    r2 = float(residual @ residual) + float(u @ u)                   # eq-prss
    return PLSSolution(theta=theta, Ts=Ts, Q=Q, L=L, R_ZX_Q=R_ZX_Q,
                       R_X_Q=R_X_Q, R_0=xz.R_0, gamma=gamma, u=u, b=b,
                       residual=residual, r2=r2, logdet_W=xz.logdet_W,
                       logdet_R0=xz.logdet_R0)


def Lambda_products(xz, theta, Ts):
    """The blocks of Q = Lambda'Z'Z (see `LambdaZtZ`), from the cross-products."""
    Q11 = Ts[0].T @ xz.D1                          # T_1' (Z_1'Z_1)_jj, each level j
    if xz.rest is None:
        return LambdaZtZ(Q11)
    return LambdaZtZ(Q11, *xz.rest.Q_blocks(xz.terms, theta, Ts))


def A_blocks(xz, theta, Ts, Q):
    """The blocks A11 (as l_1 small blocks), A21 and A22 of A = Q Lambda + I."""
    T1 = Ts[0]
    A11 = Q.Q11 @ T1 + np.eye(T1.shape[0])          # T_1' (Z_1'Z_1)_jj T_1 + I, each j
    if xz.rest is None:
        return A11, None, None
    return (A11, *xz.rest.A_blocks(xz.terms, theta, Ts, Q.Q21, Q.Q22))
