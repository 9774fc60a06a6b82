"""The sparse Cholesky factor L_theta of A = Lambda' Z' Z Lambda + I, by blocks.

Chapter 3 needs L with L L' = A (eq. `eq-L`).  A is q x q, and q can run to thousands
(InstEval: 4,114), so we never treat it as a plain dense matrix.  Its structure comes
from the terms, ordered by decreasing number of levels:

    A = [ A11  A21' ]     A11 = Lambda_1' Z_1' Z_1 Lambda_1 + I   (term 1 only)
        [ A21  A22  ]     A21, A22: the rows of terms 2..k

Each observation is in exactly one level of the first grouping factor, so Z_1' Z_1 is
block diagonal with l_1 blocks of size p_1 x p_1, and so are A11 and its Cholesky factor
L11.  The rest follows from the blocked Cholesky equations

    L11 L11' = A11,     L21 = A21 L11^{-T},     L22 L22' = A22 - L21 L21',

where L21 stays as sparse as A21 (L11 is block diagonal) and L22 is dense, of the size of
the smaller terms.  This is the layout MixedModels.jl uses; lme4 hands the whole of A
to CHOLMOD instead.  The cost is l_1 tiny factorisations plus one dense factorisation of
order q - q_1: for InstEval, 2,972 scalars and a 1,142 x 1,142 matrix.
"""

from functools import lru_cache, singledispatch

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from . import selected

# Dense kernels.  These matrices are small (p x p, or the few hundred rows of the later
# terms) and are factorised and solved with thousands of times per fit, so LAPACK is
# called directly: SciPy's wrappers check and convert their arguments first, which
# takes longer than factorising a 2 x 2 matrix.
_potrf, _trtrs = la.get_lapack_funcs(("potrf", "trtrs"), dtype=np.float64)


def cholesky(M, lower):
    """The Cholesky factor of the symmetric positive definite M, lower or upper."""
    factor, info = _potrf(M, lower=lower, clean=1)
    if info != 0:
        raise la.LinAlgError(f"the {info}-th leading minor is not positive definite")
    return factor


def solve_triangular(T, B, lower, transpose=False):
    """T^{-1} B, or T'^{-1} B, for a triangular T."""
    if T.shape[0] == 0:
        return np.array(B, dtype=float)
    X, info = _trtrs(T, B, lower=lower, trans=int(transpose))
    if info != 0:
        raise la.LinAlgError(f"the triangular matrix is singular ({info})")
    return X


def _block_diagonal(blocks):
    """Sparse (CSR) block-diagonal matrix from an array of shape (l, p, p)."""
    l, p, _ = blocks.shape
    indices, indptr = _block_diagonal_pattern(l, p)
    return sp.csr_matrix((blocks.ravel(), indices, indptr), shape=(l * p, l * p))


@lru_cache(maxsize=16)
def _block_diagonal_pattern(l, p):
    """CSR column indices and row pointers of l dense p x p diagonal blocks."""
    rows = np.arange(l * p)
    indices = ((rows // p)[:, None] * p + np.arange(p)).ravel()
    return indices, np.arange(0, l * p * p + 1, p)


# The blocks of the later terms are dense arrays for small models and sparse matrices
# for large ones (decided once, in `lmm_ref.products`); these functions take either.


@singledispatch
def times_block_diagonal(M, blocks):
    """M blockdiag(blocks), for blocks of shape (l, p, p): the same type as M."""
    l, p, _ = blocks.shape
    if p == 1:  # a diagonal matrix: scale the columns
        return M * blocks[:, 0, 0]
    # (M B)' = B' M', one batched product per level on the rows of M'
    shaped = M.T.reshape(l, p, M.shape[0])
    return np.matmul(blocks.transpose(0, 2, 1), shaped).reshape(l * p, M.shape[0]).T


@times_block_diagonal.register(sp.sparray)
@times_block_diagonal.register(sp.spmatrix)
def _(M, blocks):
    return sp.csr_matrix(M @ _block_diagonal(blocks))


@singledispatch
def gram_of(M):
    """M M', dense."""
    return M @ M.T


@gram_of.register(sp.sparray)
@gram_of.register(sp.spmatrix)
def _(M):
    return (M @ M.T).toarray()


def level_blocks(P, Q, p):
    """The diagonal p x p blocks of P'Q, one per level: [j, x, y] = sum_r P[r, jp+x] Q[r, jp+y].

    The columns of P and Q are a term's random effects, level by level (p per level).
    One of P, Q may be sparse; then only its non-zeros are visited.
    """
    if sp.issparse(P) or sp.issparse(Q):
        sparse, dense, swap = (P, Q, False) if sp.issparse(P) else (Q, P, True)
        sparse = sp.csc_matrix(sparse)
        blocks = np.empty((sparse.shape[1] // p, p, p))
        for x in range(p):
            for y in range(p):
                a, b = (y, x) if swap else (x, y)
                product = sparse[:, a::p].multiply(dense[:, b::p])
                blocks[:, x, y] = np.asarray(product.sum(axis=0)).ravel()
        return blocks
    rows = P.shape[0]
    return np.einsum("rjx,rjy->jxy", P.reshape(rows, -1, p), Q.reshape(rows, -1, p))


class BlockedCholesky:
    """L, the lower Cholesky factor of A = [[A11, A21'], [A21, A22]] (see module doc).

    `A11_blocks` has shape (l_1, p_1, p_1); `A21` is (q - q_1) x q_1, sparse or dense;
    `A22` is dense; both are None when the model has a single term (then L = L11).
    The factor is kept as `L11_blocks`, `L21` (sparse or dense, as A21) and dense lower
    `L22`.  `gram`, a `selected.PatternGram` for A21's pattern, forms L21 L21'
    faster than a sparse product (large models).
    """

    def __init__(self, A11_blocks, A21=None, A22=None, gram=None):
        self.l1, self.p1, _ = A11_blocks.shape
        self.q1 = self.l1 * self.p1
        if self.p1 == 1:  # scalar blocks: batched routines cost 20x more
            self.L11_blocks = np.sqrt(A11_blocks)
            self.L11_inv_blocks = 1.0 / self.L11_blocks
        else:
            self.L11_blocks = np.linalg.cholesky(A11_blocks)
            self.L11_inv_blocks = np.linalg.inv(self.L11_blocks)
        self.has_rest = A22 is not None  # more than one term?
        self.gram = gram
        if self.has_rest:
            L11_inv_t = self.L11_inv_blocks.transpose(0, 2, 1)
            self.L21 = times_block_diagonal(A21, L11_inv_t)
            # potrf reads the lower triangle only
            L21_gram = gram.lower(self.L21) if gram is not None else gram_of(self.L21)
            self.L22 = cholesky(A22 - L21_gram, lower=True)
        else:
            self.L21, self.L22 = None, np.zeros((0, 0))

    @property
    def q(self):
        return self.q1 + self.L22.shape[0]

    def logdet(self):
        """log |L|^2 = log |A| = 2 sum log diag(L)."""
        diagonal = np.diagonal(self.L11_blocks, axis1=1, axis2=2)
        logdet = 2.0 * np.sum(np.log(diagonal))
        if self.has_rest:
            logdet += 2.0 * np.sum(np.log(np.diag(self.L22)))
        return logdet

    def solve_L(self, B):
        """L^{-1} B, for B of shape (q,) or (q, m)."""
        B = np.asarray(B, dtype=float)
        X1 = self._apply_L11_inv(B[: self.q1])
        if not self.has_rest:
            return X1
        X2 = solve_triangular(self.L22, B[self.q1:] - self.L21 @ X1, lower=True)
        return np.concatenate([X1, X2])

    def solve_Lt(self, B):
        """L'^{-1} B, for B of shape (q,) or (q, m)."""
        B = np.asarray(B, dtype=float)
        if not self.has_rest:
            return self._apply_L11_inv(B, transpose=True)
        X2 = solve_triangular(self.L22, B[self.q1:], lower=True, transpose=True)
        X1 = self._apply_L11_inv(B[: self.q1] - self.L21.T @ X2, transpose=True)
        return np.concatenate([X1, X2])

    def _apply_L11_inv(self, B, transpose=False):
        """Block by block: L11^{-1} B, or L11^{-T} B."""
        inverse = self.L11_inv_blocks.transpose(0, 2, 1) if transpose else self.L11_inv_blocks
        shaped = B.reshape(self.l1, self.p1, -1)
        return np.matmul(inverse, shaped).reshape(B.shape)

    def inverse_blocks(self, pattern=None):
        """The blocks of A^{-1} that the gradient needs (eq-grad-Y).

        From A^{-1} = L^{-T} L^{-1}, with N = L21 L11^{-1}:

            [A^-1]_22 = (L22 L22')^{-1},      [A^-1]_21 = -[A^-1]_22 N,
            [A^-1]_11 = L11^{-T} L11^{-1} - N' [A^-1]_21,

        of which only the l_1 diagonal p_1 x p_1 blocks of [A^-1]_11 are
        formed (Z_1'Z_1 is block diagonal, so the gradient never meets the
        others).  Returns ([A^-1]_11 blocks, [A^-1]_21, [A^-1]_22), the last
        two None for a single term.  With a `selected.SparsePattern` (the
        sparse storage of large models), [A^-1]_21 is formed only on A21's
        pattern (`lmm_ref.selected`); otherwise it is dense.
        """
        if pattern is not None:
            return selected.selected_inverse(self.L11_inv_blocks, self.L21,
                                             self.L22, pattern)
        L11_inv = self.L11_inv_blocks
        Y11 = np.matmul(L11_inv.transpose(0, 2, 1), L11_inv)
        if not self.has_rest:
            return Y11, None, None
        q2 = self.L22.shape[0]
        L22_inv = solve_triangular(self.L22, np.eye(q2), lower=True)
        Y22 = L22_inv.T @ L22_inv
        N = times_block_diagonal(self.L21, L11_inv)
        Y21 = -np.asarray(Y22 @ N)
        return Y11 - level_blocks(N, Y21, self.p1), Y21, Y22

    def diagonal_sums(self, rest_terms):
        """sum_j [A^{-1}]_(j,j) over each term's levels (`selected.diagonal_sums`)."""
        if not self.has_rest:
            inverse = self.L11_inv_blocks
            return [np.einsum("jzx,jzy->xy", inverse, inverse)]
        N = times_block_diagonal(self.L21, self.L11_inv_blocks)
        return selected.diagonal_sums(self.L11_inv_blocks, N, self.L22, rest_terms,
                                      self.gram)

    def to_sparse(self):
        """The whole factor L as a sparse q x q matrix (for pictures and checks)."""
        return sp.bmat([
            [_block_diagonal(self.L11_blocks), None],
            [sp.csr_matrix(self.L21), sp.csr_matrix(self.L22)],
        ], format="csr") if self.has_rest else _block_diagonal(self.L11_blocks)
