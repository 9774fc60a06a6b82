"""The selected inverse of A = L L' on a sparse pattern (chapters 6 and 9).

The gradient (chapter 6) and the conditional variances (chapter 7) need A^{-1} only
where A itself can be non-zero.  In the blocked layout of `lmm_ref.cholesky`,

    [A^{-1}]_22 = (L22 L22')^{-1},    [A^{-1}]_21 = -[A^{-1}]_22 N,
    [A^{-1}]_11 = L11^{-T} L11^{-1} - N' [A^{-1}]_21,      N = L21 L11^{-1}    (eq-grad-Y)

[A^{-1}]_22 is dense (L22 is), and LAPACK's potri computes it from L22 for about the
cost of the factorisation.  [A^{-1}]_21 is dense too, but only its entries on the pattern
of A21 are needed: entry (r, c) is -sum_k [A^{-1}]_22[r, k] N[k, c], and N[:, c] is
non-zero only on the rows of column c of the pattern, so each needed entry costs as many
products as its column has rows.  For InstEval that is 3.6 million products instead of
the 3.9 billion of the full product.  The diagonal blocks of [A^{-1}]_11 need only N and
[A^{-1}]_21 on the same pattern.

When every T_i is invertible the gradient needs still less: only the sums over levels of
the diagonal blocks of A^{-1} (`diagonal_sums`, eq-grad-diag in chapter 9), and these
need [A^{-1}]_22 and the sparse gram N N', not [A^{-1}]_21 at all.

`SparsePattern` is the pattern, worked out once per model: the level blocks of the first
term (columns) and of the other terms (rows) that share observations, each block full,
so that every column of one level of the first term has the same rows.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

_potri = la.get_lapack_funcs("potri", dtype=np.float64)


class SparsePattern:
    """The pattern of A21 (q2 x q1), and the index pairs that the selected inverse needs.

    `indptr`, `indices`: the pattern in CSC form (rows sorted in each column);
    `keys`: column * q2 + row of each stored entry, increasing.  For the product
    [A^{-1}]_21 = -[A^{-1}]_22 N on the pattern: `target`, `inner` and `source` list,
    for every entry (r, c) and every row k of column c, the entry's position, the flat
    index r * q2 + k of [A^{-1}]_22, and the position of N's entry (k, c).
    """

    def __init__(self, Z2tZ1, rest_terms, first_p):
        q2, q1 = Z2tZ1.shape
        self.shape, self.p1 = (q2, q1), first_p
        # row blocks: one per (later term, level), contiguous p rows each
        sizes = np.concatenate([np.full(term.n_levels, term.p) for term in rest_terms])
        block_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        block_of_row = np.repeat(np.arange(len(sizes)), sizes)
        coo = sp.coo_matrix(Z2tZ1)
        # (level of the first term, row block) pairs that share observations, sorted
        keys = np.unique((coo.col // first_p).astype(np.int64) * len(sizes)
                         + block_of_row[coo.row])
        level, block = keys // len(sizes), keys % len(sizes)
        # each pair's rows, in order: the rows of one level are a contiguous run
        rows = np.repeat(block_start[block], sizes[block]) + ragged_arange(sizes[block])
        rows_per_level = np.bincount(np.repeat(level, sizes[block]), minlength=q1 // first_p)
        level_start = np.concatenate([[0], np.cumsum(rows_per_level)[:-1]])
        # every column of a level gets the level's rows: p1 copies of each run
        counts = np.repeat(rows_per_level, first_p)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        runs = np.repeat(np.repeat(level_start, first_p), counts) + ragged_arange(counts)
        self.indices = rows[runs].astype(np.int64)
        self.columns = np.repeat(np.arange(q1), counts)
        self.keys = self.columns * q2 + self.indices
        self.target, self.inner, self.source = self._pairs(counts)

    def _pairs(self, counts):
        """Every (entry, row of its column) pair: positions, lower-triangle flat index."""
        q2, _ = self.shape
        per_entry = np.repeat(counts, counts)          # its column's number of rows
        target = np.repeat(np.arange(len(self.indices)), per_entry)
        column_start = np.repeat(self.indptr[:-1], counts)    # for each entry
        source = np.repeat(column_start, per_entry) + ragged_arange(per_entry)
        r, k = self.indices[target], self.indices[source]
        inner = np.maximum(r, k) * q2 + np.minimum(r, k)      # potri fills the lower half
        return target, inner, source

    def values_of(self, M):
        """The entries of a sparse q2 x q1 matrix M (its non-zeros on the pattern) as a
        data array aligned with the pattern."""
        M = sp.coo_matrix(M)
        keys = M.col.astype(np.int64) * self.shape[0] + M.row
        positions = np.searchsorted(self.keys, keys)
        values = np.zeros(len(self.keys))
        np.add.at(values, positions, M.data)
        return values

    def matrix(self, values):
        """A CSC matrix with the pattern and these values (zeros kept)."""
        return sp.csc_matrix((values, self.indices, self.indptr), shape=self.shape)


class PatternGram:
    """M M' (lower triangle, dense) for sparse M with one fixed pattern.

    The Schur complement needs L21 L21' and the gradient N N' at every theta;
    for a scalar first term both have the pattern of Z_2'Z_1, so the products
    that make up each entry of the gram are listed once: entry (r, k), r >= k,
    is the sum over the columns j holding rows r and k of M[r, j] M[k, j].
    A matrix whose pattern differs (an exact zero dropped when a theta_i is 0)
    is multiplied out instead.
    """

    def __init__(self, M):
        M = sp.csr_matrix(M, copy=True)
        M.sort_indices()
        self.indptr, self.indices = M.indptr, M.indices
        rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
        # CSR positions in column-major order
        by_column = np.lexsort((rows, self.indices))
        counts = np.bincount(self.indices, minlength=M.shape[1])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # all (a, b) pairs, a >= b, within each column's run of positions
        pairs = np.repeat(counts, counts)
        first = np.repeat(starts, counts) + ragged_arange(counts)
        a = np.repeat(first, pairs)
        b = np.repeat(np.repeat(starts, counts), pairs) + ragged_arange(pairs)
        keep = rows[by_column[a]] >= rows[by_column[b]]
        self.left, self.right = by_column[a[keep]], by_column[b[keep]]
        q2 = M.shape[0]
        self.flat = rows[self.left] * q2 + rows[self.right]
        self.shape = (q2, q2)

    def lower(self, M):
        """The lower triangle of M M' (the upper one is zero)."""
        if not M.has_sorted_indices:
            M = M.sorted_indices()
        same = (M.indptr.shape == self.indptr.shape
                and np.array_equal(M.indptr, self.indptr)
                and np.array_equal(M.indices, self.indices))
        if not same:
            return np.tril((M @ M.T).toarray())
        products = M.data[self.left] * M.data[self.right]
        return np.bincount(self.flat, weights=products,
                           minlength=self.shape[0] ** 2).reshape(self.shape)


def ragged_arange(lengths):
    """0, 1, ..., n_1 - 1, 0, 1, ..., n_2 - 1, ...: an arange per length."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    total = ends[-1] if len(ends) else 0
    return np.arange(total) - np.repeat(ends - lengths, lengths)


def inverse_22(L22):
    """(L22 L22')^{-1} from the lower Cholesky factor, by LAPACK's potri:
    its lower triangle (the upper one is left as L22 had it)."""
    inverse, info = _potri(L22, lower=True)
    if info != 0:
        raise la.LinAlgError(f"potri failed ({info})")
    return inverse


def selected_inverse(L11_inv_blocks, L21, L22, pattern):
    """(diagonal blocks of [A^{-1}]_11, [A^{-1}]_21 on the pattern,
    [A^{-1}]_22).

    [A^{-1}]_21 is a CSC matrix with the pattern's structure."""
    Y22_lower = inverse_22(L22)
    l1, p1, _ = L11_inv_blocks.shape
    L21_values = pattern.values_of(L21)
    # N = L21 L11^{-1}: each level's p1 columns times that level's block
    N_values = times_level_blocks(pattern, L21_values, L11_inv_blocks)
    products = Y22_lower.ravel()[pattern.inner] * N_values[pattern.source]
    Y21_values = -np.bincount(pattern.target, weights=products,
                              minlength=len(N_values))
    # diagonal blocks: L11^{-T} L11^{-1} - N' Y21, level by level
    Y11 = np.matmul(L11_inv_blocks.transpose(0, 2, 1), L11_inv_blocks)
    Y11 = Y11 - level_gram(pattern, N_values, Y21_values, l1, p1)
    # the whole, for the gradient
    Y22 = np.tril(Y22_lower) + np.tril(Y22_lower, -1).T
    return Y11, pattern.matrix(Y21_values), Y22


def times_level_blocks(pattern, values, blocks):
    """Values of M blockdiag(blocks) on the pattern (each level's columns
    share rows)."""
    l1, p1, _ = blocks.shape
    if p1 == 1:
        return values * blocks[:, 0, 0][pattern.columns]
    out = np.empty_like(values)
    for level in range(l1):
        start = pattern.indptr[level * p1]
        stop = pattern.indptr[(level + 1) * p1]
        if stop > start:
            chunk = values[start:stop].reshape(p1, -1).T          # rows x p1
            out[start:stop] = (chunk @ blocks[level]).T.ravel()
    return out


def level_gram(pattern, left, right, l1, p1):
    """For each level j of the first term, the p1 x p1 block of M' P over
    its columns, for M, P given by their values on the pattern."""
    if p1 == 1:
        sums = np.bincount(pattern.columns, weights=left * right, minlength=l1)
        return sums[:, None, None]
    out = np.zeros((l1, p1, p1))
    for level in range(l1):
        start = pattern.indptr[level * p1]
        stop = pattern.indptr[(level + 1) * p1]
        if stop > start:
            a = left[start:stop].reshape(p1, -1)
            b = right[start:stop].reshape(p1, -1)
            out[level] = a @ b.T
    return out


def diagonal_sums(L11_inv_blocks, N, L22, rest_terms, gram=None):
    """S_i = sum_j [A^{-1}]_(j,j), the p_i x p_i diagonal blocks of A^{-1}
    summed over the levels j of each term i (first term first).

    For the first term [A^{-1}]_11 = L11^{-T} L11^{-1} + N' [A^{-1}]_22 N,
    whose diagonal blocks sum to sum_j L11_j^{-T} L11_j^{-1} plus, in entry
    (a, b), the Frobenius product <[A^{-1}]_22, N_a N_b'>, N_a the columns a
    of every level of N = L21 L11^{-1}: a sparse gram, like the Schur
    complement's L21 L21'
    (by `gram`, a `PatternGram`, if given).
    """
    Y22_lower = inverse_22(L22)          # the upper triangle is L22's: zeros
    diagonal = np.diag(Y22_lower)
    p1 = L11_inv_blocks.shape[1]
    N = sp.csr_matrix(N)
    first = np.einsum("jzx,jzy->xy", L11_inv_blocks, L11_inv_blocks)
    columns = [N[:, a::p1] for a in range(p1)] if p1 > 1 else [N]
    for a in range(p1):
        for b in range(a + 1):
            M = (gram.lower(N) if gram is not None and p1 == 1
                 else (columns[a] @ columns[b].T).toarray())
            # <Y, M> for the symmetric Y from its lower triangle
            if a == b:      # M symmetric: <Y_lower', M> = <Y_lower, M>
                value = 2.0 * np.vdot(Y22_lower, M)
            else:
                value = np.vdot(Y22_lower, M) + np.vdot(Y22_lower, M.T)
            value -= np.dot(diagonal, np.diag(M))
            first[a, b] += value
            first[b, a] += value if a != b else 0.0
    sums, start = [first], 0
    for term in rest_terms:
        size = term.n_levels * term.p
        block = Y22_lower[start:start + size, start:start + size]
        if term.p == 1:
            S = np.array([[np.trace(block)]])
        else:
            l, p = term.n_levels, term.p
            # lower triangle of each block
            S = np.einsum("jajb->ab", block.reshape(l, p, l, p))
        sums.append(np.tril(S) + np.tril(S, -1).T)
        start += size
    return sums

