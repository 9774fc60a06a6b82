"""The layout of theta, and its map to standard deviations and correlations (chapter 1).

Each random-effects term i has a p_i x p_i lower-triangular factor T_i, and

    Sigma_i = sigma^2 T_i T_i'                                    (eq-Sigma-Lambda)

is the covariance of one level's p_i random effects.  theta lists the non-zero entries
of T_1, T_2, ... in turn, each lower triangle read column by column: lme4's order, and
lme4's names (`theta_names`, e.g. 'Subject.Days.(Intercept)' for T[Days, (Intercept)]).
The diagonal entries are bounded below by 0; the others are free.

The same positions, read off Sigma_i instead of T_i, hold the term's standard deviations
(the diagonal) and correlations (below it): lme4's `.sig01`, `.sig02`, ... of `confint`
and `profile`, with `.sigma` after them.  `ThetaLayout` is the one place that knows this
layout; every other module asks it.
"""

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np


@lru_cache(maxsize=None)
def lower_triangle(p):
    """(rows, cols) of a p x p lower triangle, column by column: theta's order in T_i."""
    cols, rows = np.triu_indices(p)  # the upper triangle row-wise, transposed
    rows.flags.writeable = cols.flags.writeable = False  # shared by every caller
    return rows, cols


@dataclass(frozen=True)
class TermLayout:
    """Where term i's entries of theta sit: `start` and the rows and columns in T_i."""

    p: int          # p_i, the size of T_i
    start: int      # offset of T_i's first entry in theta
    group: str      # the grouping factor ('Subject')
    label: str      # lme4's label for the term's group: 'Subject', then 'Subject.1', ...
    columns: tuple  # names of the term's columns, i.e. of T_i's rows

    @property
    def size(self):
        """p_i (p_i + 1) / 2 entries."""
        return self.p * (self.p + 1) // 2

    @property
    def slice(self):
        return slice(self.start, self.start + self.size)

    @property
    def rows(self):
        return lower_triangle(self.p)[0]

    @property
    def cols(self):
        return lower_triangle(self.p)[1]

    def T(self, theta_i):
        """T_i, filled column by column from this term's piece of theta."""
        T = np.zeros((self.p, self.p))
        T[lower_triangle(self.p)] = theta_i
        return T


class ThetaLayout:
    """The layout of theta for a list of terms, each given as (p_i, group, column names)."""

    def __init__(self, terms):
        terms = list(terms)
        labels = group_labels([group for _, group, _ in terms])
        self.terms, start = [], 0
        for (p, group, columns), label in zip(terms, labels):
            self.terms.append(TermLayout(p, start, group, label, tuple(columns)))
            start += self.terms[-1].size
        self.size = start

    # -- bounds, start, names ------------------------------------------------------------

    @cached_property
    def is_diagonal(self):
        """True where theta holds a diagonal entry of some T_i."""
        return np.concatenate([term.rows == term.cols for term in self.terms])

    @cached_property
    def lower(self):
        """lme4's bounds: 0 for the diagonal of each T_i, -inf below it."""
        return np.where(self.is_diagonal, 0.0, -np.inf)

    @cached_property
    def start(self):
        """lme4's start: every T_i = I (each SD equal to sigma, no correlation)."""
        return np.where(self.is_diagonal, 1.0, 0.0)

    def _entry_names(self, diagonal, below):
        """A name for each entry of theta: diagonal(term, x) or below(term, x, y) for T_i[x, y]."""
        return [
            diagonal(term, term.columns[r]) if r == c
            else below(term, term.columns[r], term.columns[c])
            for term in self.terms for r, c in zip(term.rows, term.cols)
        ]

    @cached_property
    def names(self):
        """lme4's theta names: 'g.x' on the diagonal, 'g.x.y' for T_i[x, y] below it."""
        return self._entry_names(lambda term, x: f"{term.group}.{x}",
                                 lambda term, x, y: f"{term.group}.{x}.{y}")

    @cached_property
    def sdcor_names(self):
        """lme4's names of the SD-and-correlation parameters: .sig01, .sig02, ..., .sigma."""
        return [f".sig{k + 1:02d}" for k in range(self.size)] + [".sigma"]

    @cached_property
    def sdcor_labels(self):
        """What each of .sig01, ... is: 'sd_(Intercept)|Subject', 'cor_Days.(Intercept)|Subject'."""
        return self._entry_names(lambda term, x: f"sd_{x}|{term.label}",
                                 lambda term, x, y: f"cor_{x}.{y}|{term.label}") + ["sigma"]

    @cached_property
    def below_diagonal(self):
        """{position of a diagonal entry of T_i: positions of the entries below it}."""
        below = {}
        for term in self.terms:
            for k in np.flatnonzero(term.rows == term.cols):
                column = (term.cols == term.cols[k]) & (term.rows > term.rows[k])
                below[term.start + k] = term.start + np.flatnonzero(column)
        return below

    # -- theta <-> T_i -------------------------------------------------------------------

    def checked(self, theta):
        """theta as an array of floats, with a clear error for the wrong length."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.size,):
            given = f"{theta.size} entries" if theta.ndim == 1 else f"shape {theta.shape}"
            raise ValueError(
                f"theta has {given}; this model has a vector of {self.size}: "
                + ", ".join(self.names)
            )
        return theta

    def split(self, theta):
        """theta cut into each term's piece."""
        theta = self.checked(theta)
        return [theta[term.slice] for term in self.terms]

    def T(self, theta):
        """[T_1, T_2, ...] at theta."""
        return [term.T(piece) for term, piece in zip(self.terms, self.split(theta))]

    def from_T(self, Ts):
        """theta from [T_1, T_2, ...] (or from any matrices of their shapes: a gradient)."""
        return np.concatenate([T[lower_triangle(term.p)] for term, T in zip(self.terms, Ts)])

    # -- theta <-> SDs and correlations -----------------------------------------------------

    def Sigma(self, theta, sigma):
        """[Sigma_1, ...], Sigma_i = sigma^2 T_i T_i' (eq-Sigma-Lambda)."""
        return [sigma**2 * T @ T.T for T in self.T(theta)]

    def sdcor(self, theta, sigma):
        """lme4's .sig01, ..., .sigma at (theta, sigma): SDs and correlations of each Sigma_i.

        A correlation with a zero SD is undefined; it is reported as NaN.
        """
        values = []
        for term, Sigma in zip(self.terms, self.Sigma(theta, sigma)):
            sd = np.sqrt(np.diag(Sigma))
            with np.errstate(invalid="ignore", divide="ignore"):
                cor = Sigma / np.outer(sd, sd)
            values.append(np.where(term.rows == term.cols, sd[term.rows], cor[term.rows, term.cols]))
        return np.concatenate(values + [[sigma]])

    def theta_from_sdcor(self, sdcor):
        """The inverse map: (theta, sigma) from .sig01, ..., .sigma.

        T_i = D C / sigma, with D the diagonal matrix of the term's SDs and C the lower
        Cholesky factor of its correlation matrix R, so that sigma^2 T_i T_i' = D R D.
        Where R is only positive semi-definite (a correlation of +-1) C is the limit of
        the positive definite factor (`semidefinite_cholesky`).  SDs must be >= 0,
        correlations in [-1, 1] and sigma > 0.
        """
        theta, _ = self._from_sdcor(sdcor, jacobian=False)
        return theta, float(np.asarray(sdcor, dtype=float)[-1])

    def theta_from_sdcor_jacobian(self, sdcor):
        """d theta / d (.sig01, ..., .sigma): a size x (size + 1) matrix.

        An SD moves its row of C (T_i sigma = D C); sigma scales theta by -1/sigma;
        a correlation moves C by dC = C Phi(C^-1 dR C^-T), Phi keeping the lower
        triangle and half the diagonal (the derivative of the Cholesky factor).  At
        a correlation of +-1 the derivative is infinite: the correlations are held
        1e-10 inside for it.
        """
        return self._from_sdcor(sdcor, jacobian=True)[1]

    def _from_sdcor(self, sdcor, jacobian):
        sdcor = np.asarray(sdcor, dtype=float)
        if sdcor.shape != (self.size + 1,):
            raise ValueError(f"expected {self.size + 1} values "
                             f"({', '.join(self.sdcor_names)}), got {sdcor.size}")
        sigma = sdcor[-1]
        pieces = []
        J = np.zeros((self.size, self.size + 1)) if jacobian else None
        for term in self.terms:
            rows, cols = lower_triangle(term.p)
            diagonal = rows == cols
            piece = sdcor[term.slice]
            sd = np.zeros(term.p)
            sd[rows[diagonal]] = piece[diagonal]
            R = np.eye(term.p)
            off = ~diagonal
            if jacobian:  # the derivative needs R positive definite
                R[rows[off], cols[off]] = np.clip(piece[off], -1 + 1e-10, 1 - 1e-10)
            else:
                R[rows[off], cols[off]] = piece[off]
            R[cols[off], rows[off]] = R[rows[off], cols[off]]
            C = semidefinite_cholesky(R)
            pieces.append((sd[:, None] * C)[rows, cols] / sigma)
            if jacobian:
                C_inv = np.linalg.inv(C)
                for local in range(term.size):
                    r, c = rows[local], cols[local]
                    d = np.zeros((term.p, term.p))
                    if r == c:                         # an SD: row r of C
                        d[r] = C[r]
                    else:                              # a correlation
                        M = C_inv[:, [r]] @ C_inv[:, [c]].T
                        M = M + M.T                    # C^-1 dR C^-T
                        d = sd[:, None] * (C @ (np.tril(M) - 0.5 * np.diag(np.diag(M))))
                    J[term.slice, term.start + local] = d[rows, cols] / sigma
        theta = np.concatenate(pieces)
        if jacobian:
            J[:, -1] = -theta / sigma
        return theta, J


def semidefinite_cholesky(S):
    """Lower-triangular T with T T' = S for a positive semi-definite S (no pivoting).

    Column by column as in the ordinary algorithm; a pivot that is zero (to rounding)
    leaves a zero column, which is the limit of the positive definite factor.
    """
    try:  # the positive definite case, as LAPACK computes it
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        pass
    p = S.shape[0]
    T = np.zeros_like(S, dtype=float)
    scale = max(np.max(np.abs(np.diag(S))), np.finfo(float).tiny)
    for j in range(p):
        pivot = S[j, j] - T[j, :j] @ T[j, :j]
        if pivot <= 1e-12 * scale:
            continue  # a zero pivot: this column stays zero
        T[j, j] = np.sqrt(pivot)
        T[j + 1:, j] = (S[j + 1:, j] - T[j + 1:, :j] @ T[j, :j]) / T[j, j]
    return T


def group_labels(groups):
    """lme4's labels for the terms' groups: a repeated factor gets '.1', '.2', ..."""
    seen, labels = {}, []
    for group in groups:
        count = seen.get(group, 0)
        labels.append(group if count == 0 else f"{group}.{count}")
        seen[group] = count + 1
    return labels
