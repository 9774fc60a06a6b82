"""The data's cross-products: the only way the data reach the PLS solve (chapter 3).

With prior weights W and an offset o, penalized least squares is about the weighted
matrices W^{1/2} X, W^{1/2} Z and the weighted response W^{1/2} (y - o) (eq-pwrss); with
no weights they are X, Z and y - o.  `solve` needs them only through cross-products, so
they are computed once and kept in two parts:

* `XZProducts`, from X and Z alone: the blocks of Z'Z, Z'X, and Z and X themselves for
  the products with n-vectors.  They serve every theta and every response.
* `YProducts`, from the response: Z'y and X'y.  A new response (a bootstrap sample,
  `LmmFit.refit`) costs only these.

X enters in an orthonormal basis: W^{1/2} X = Q_X R_0 (thin QR), so that X'X is the
identity.  In that basis R_X' R_X = I - R_ZX' R_ZX (eq-RX) never forms X'X, whose
condition number is the square of X's: a covariate with a mean of 10^6 next to the
intercept costs no accuracy.  `lmm_ref.pls` maps the results back to X's own columns.

Whether the blocks of the terms after the first are stored dense or sparse is decided
here, once, by their size; the storage classes `DenseRest` and `SparseRest` carry that
decision into `solve`.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .design import LambdaTemplate
from .selected import PatternGram, SparsePattern

# Above this many entries in Z_2'Z_1, the blocks of the other terms are kept sparse.
# Below it, dense arrays are faster: SciPy's sparse matrices cost tens of microseconds
# per operation however small they are.
DENSE_LIMIT = 1_000_000
# Z itself (for the residual, and the gradient's products) is kept dense up to this many
# entries: the sleep study's 180 x 36 = 6,480, not a 2,000 x 280 design.
DENSE_Z_LIMIT = 20_000


def Lambda_t_times(terms, Ts, B):
    """Lambda' B, applied term by term as (I kron T_i') on the rows of B."""
    return apply_blocks(terms, [T.T for T in Ts], B)


def Lambda_times(terms, Ts, B):
    """Lambda B, applied term by term as (I kron T_i) on the rows of B."""
    return apply_blocks(terms, Ts, B)


def apply_blocks(terms, blocks, B):
    """(I kron M_i) on term i's rows of B, for each term: a block-diagonal product."""
    if len(terms) == 1:
        return apply_block(terms[0], blocks[0], B)
    pieces, start = [], 0
    for term, M in zip(terms, blocks):
        pieces.append(apply_block(term, M, B[start: start + term.q]))
        start += term.q
    return np.concatenate(pieces)


def apply_block(term, M, rows):
    """(I kron M) on one term's rows: M on each level's p rows."""
    if term.p == 1:  # a scalar term: I kron T_i is the number T_i times I
        return M[0, 0] * rows
    return (M @ rows.reshape(term.n_levels, term.p, -1)).reshape(rows.shape)


@dataclass
class DenseRest:
    """The rows of terms 2..k of Z'Z, stored dense: Z_2'Z_1 and Z_2'Z_2."""

    Z2tZ1: np.ndarray
    Z2tZ2: np.ndarray
    pattern = None  # dense storage: A^{-1}'s blocks are formed whole

    def Q_blocks(self, terms, theta, Ts):
        """Q21 = Lambda_2'Z_2'Z_1, Q12 = Lambda_1'Z_1'Z_2, Q22 = Lambda_2'Z_2'Z_2."""
        first, rest = terms[:1], terms[1:]
        return (Lambda_t_times(rest, Ts[1:], self.Z2tZ1),
                Lambda_t_times(first, Ts[:1], self.Z2tZ1.T),
                Lambda_t_times(rest, Ts[1:], self.Z2tZ2))

    def A_blocks(self, terms, theta, Ts, Q21, Q22):
        """A21 = Q21 Lambda_1 and A22 = Q22 Lambda_2 + I, as (Lambda' M')' by blocks."""
        A21 = Lambda_t_times(terms[:1], Ts[:1], Q21.T).T
        A22 = Lambda_t_times(terms[1:], Ts[1:], Q22.T).T
        return A21, A22 + np.eye(A22.shape[0])


class SparseRest:
    """The rows of terms 2..k of Z'Z, stored sparse, with Lambda_1 and Lambda_2 as
    sparse patterns refilled from theta (`LambdaTemplate`)."""

    def __init__(self, terms, Z2tZ1, Z2tZ2):
        self.Z2tZ1, self.Z2tZ2 = sp.csr_matrix(Z2tZ1), sp.csr_matrix(Z2tZ2)
        self.Lambda_1 = LambdaTemplate(terms[:1])
        self.Lambda_2 = LambdaTemplate(terms[1:])
        self.first_size = terms[0].p * (terms[0].p + 1) // 2
        self.terms = terms
        # L21 and N = L21 L11^{-1} have Z_2'Z_1's pattern (scalar first term):
        # their grams reuse its structure (`selected.PatternGram`)
        self.gram = PatternGram(self.Z2tZ1) if terms[0].p == 1 else None

    @cached_property
    def pattern(self):
        """Where A21 can be non-zero: the selected inverse needs A^{-1} only there
        (`selected.SparsePattern`; made on first use: the gradient of a model whose
        T_i are invertible never needs it)."""
        return SparsePattern(self.Z2tZ1, self.terms[1:], self.terms[0].p)

    def _Lambdas(self, theta):
        return self.Lambda_1(theta[: self.first_size]), self.Lambda_2(theta[self.first_size:])

    def Q_blocks(self, terms, theta, Ts):
        Lambda_1, Lambda_2 = self._Lambdas(theta)
        return (Lambda_2.T @ self.Z2tZ1, (Lambda_1.T @ self.Z2tZ1.T).tocsc(),
                (Lambda_2.T @ self.Z2tZ2).tocsc())

    def A_blocks(self, terms, theta, Ts, Q21, Q22):
        Lambda_1, Lambda_2 = self._Lambdas(theta)
        A22 = (Q22 @ Lambda_2).toarray()
        return Q21 @ Lambda_1, A22 + np.eye(A22.shape[0])


@dataclass
class YProducts:
    """A response's part: the weighted response W^{1/2}(y - o), Z'y and Q_X'y."""

    y: np.ndarray
    Zty: np.ndarray
    Xty: np.ndarray


class XZProducts:
    """X and Z's part, computed once per design and reused for every theta and response.

    `D1` holds the l_1 diagonal blocks of Z_1'Z_1 (shape (l_1, p_1, p_1)); `rest` the
    rows of the other terms (`DenseRest` or `SparseRest`; None for a single term);
    `ZtX` is Z'Q_X; `Q_X` and `R_0` the thin QR factors of W^{1/2} X; `Z` and `Zt` the
    weighted Z, dense if small (`DENSE_Z_LIMIT`), for the products with n-vectors.
    """

    def __init__(self, design):
        self.terms, self.layout = design.terms, design.layout
        self.n, self.p = design.n, design.p
        self.sqrt_w = np.sqrt(design.weights)
        self.offset = design.offset
        self.logdet_W = float(np.sum(np.log(design.weights)))
        first = self.terms[0]
        Z = sp.diags(self.sqrt_w) @ design.Z if design.weighted else design.Z
        X1 = self.sqrt_w[:, None] * first.X
        self.D1 = np.zeros((first.n_levels, first.p, first.p))
        np.add.at(self.D1, first.codes, X1[:, :, None] * X1[:, None, :])
        self.rest = None
        if len(self.terms) > 1:
            Z1, Z2 = Z[:, : first.q], Z[:, first.q:]
            if first.q * Z2.shape[1] > DENSE_LIMIT:
                self.rest = SparseRest(self.terms, Z2.T @ Z1, Z2.T @ Z2)
            else:
                self.rest = DenseRest((Z2.T @ Z1).toarray(), (Z2.T @ Z2).toarray())
        self.large = isinstance(self.rest, SparseRest)  # sparse storage
        self.gram = self.rest.gram if self.large else None
        self.Z = Z.toarray() if Z.shape[0] * Z.shape[1] <= DENSE_Z_LIMIT else Z.tocsr()
        self.Zt = self.Z.T if isinstance(self.Z, np.ndarray) else Z.T.tocsr()
        Q_X, R_0 = np.linalg.qr(self.sqrt_w[:, None] * design.X)
        signs = np.where(np.diag(R_0) < 0, -1.0, 1.0)  # a positive diagonal, as Cholesky's
        self.Q_X, self.R_0 = Q_X * signs, signs[:, None] * R_0
        self.logdet_R0 = 2.0 * float(np.sum(np.log(np.diag(self.R_0))))  # log |R_0|^2
        self.ZtX = np.asarray(self.Zt @ self.Q_X)

    def response(self, y):
        """The `YProducts` of a response y (raw: weights and offset are applied here)."""
        y_w = self.sqrt_w * (np.asarray(y, dtype=float) - self.offset)
        return YProducts(y=y_w, Zty=np.asarray(self.Zt @ y_w), Xty=self.Q_X.T @ y_w)


@dataclass
class CrossProducts:
    """Everything `solve` needs from the data: the X-and-Z part and a response's part."""

    xz: XZProducts
    y: YProducts

    def with_response(self, y):
        """The same model with a new response: only the y part is computed again."""
        return CrossProducts(self.xz, self.xz.response(y))


def cross_products(design):
    """The `CrossProducts` of a design and its own response."""
    xz = XZProducts(design)
    return CrossProducts(xz, xz.response(design.y))
