"""The model's matrices: y, X, Z and Lambda_theta (chapter 1).

The model of chapter 1 is

    (Y | B = b) ~ N(X beta + Z b + o, sigma^2 W^-1),    B = Lambda_theta U,  U ~ N(0, sigma^2 I),

with a known offset o (0 unless the formula has `offset(...)`) and prior weights W
(the identity unless `fit` is given `weights`).  For each random-effects term i,
``(expr | g)``, with l_i levels of g and p_i columns in the model matrix X_i of ``expr``:

* J_i (n x l_i) is the indicator matrix of g: J_i[j, k] = 1 when observation j is in
  level k;
* Z_i (n x l_i p_i) is the row-wise Khatri-Rao product of J_i and X_i (eq. `eq-Zi`):
  row h of Z_i is kron(J_i[h, :], X_i[h, :]), so the p_i effects of one level sit side
  by side, levels in order, as lme4 lays them out;
* Lambda_i = I_{l_i} kron T_i, with T_i the term's lower-triangular factor, filled from
  theta as `lmm_ref.parameters` lays it out.

Z = [Z_1 ... Z_k] and Lambda = blockdiag(Lambda_1, ..., Lambda_k), with terms ordered by
decreasing number of levels (lme4's convention, which also puts the largest block first
for the blocked Cholesky factor of chapter 3).  Reading a data frame into these matrices
(cleaning, encoding, error messages) is `lmm_ref.model_frame`.
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .parameters import ThetaLayout


@dataclass
class ReTerm:
    """One random-effects term ``(expr | group)`` evaluated on the data.

    `codes[h]` is the level of observation h (an index into `levels`); `X` is the
    n x p model matrix of ``expr`` with column names `columns`; `group_columns` are
    the data columns whose combinations are the groups.
    """

    expr: str
    group: str
    levels: pd.Index
    codes: np.ndarray
    X: np.ndarray
    columns: list
    group_columns: list = field(default_factory=list)

    @property
    def n_levels(self):  # l_i
        return len(self.levels)

    @property
    def p(self):  # p_i
        return self.X.shape[1]

    @property
    def q(self):  # q_i = l_i p_i
        return self.n_levels * self.p

    @cached_property
    def J(self):
        """Indicator matrix J_i (n x l_i) of the grouping factor."""
        n = len(self.codes)
        return sp.csr_matrix((np.ones(n), (np.arange(n), self.codes)), shape=(n, self.n_levels))

    @cached_property
    def Z(self):
        """Z_i = J_i * X_i, the row-wise Khatri-Rao product (eq. `eq-Zi`)."""
        return row_khatri_rao(self.J, self.X)

    def Lambda(self, T):
        """Lambda_i = I_{l_i} kron T_i (sparse, block diagonal) for the
        p_i x p_i factor T_i."""
        return sp.kron(sp.identity(self.n_levels), T, format="csc")

    def __str__(self):
        return f"({self.expr} | {self.group})"


def row_khatri_rao(J, X):
    """Row-wise Khatri-Rao product: row h is kron(J[h, :], X[h, :]).

    J is sparse (n x l), X dense (n x p); the result is sparse (n x l p).
    Only the non-zeros of J matter: the cost is that of writing the result.
    """
    J = sp.coo_matrix(J)
    n, p = X.shape
    rows = np.repeat(J.row, p)
    cols = (J.col[:, None] * p + np.arange(p)).ravel()
    vals = (J.data[:, None] * X[J.row, :]).ravel()
    return sp.csc_matrix((vals, (rows, cols)), shape=(n, J.shape[1] * p))


@dataclass
class Design:
    """Everything the likelihood needs from formula and data.

    Attributes are named as in the book: `y`, `X` (with `X_names`), `Z`, the list of
    `terms`, `Lambda(theta)`, the prior `weights` and the `offset` (ones and zeros when
    the model has none), and `layout`, theta's layout (bounds, start, names).
    `encoding` records how the data frame was turned into X and the terms, so that new
    data can be encoded the same way.
    """

    formula: object
    y: np.ndarray
    X: np.ndarray
    X_names: list
    terms: list
    weights: np.ndarray
    offset: np.ndarray
    data: pd.DataFrame = field(repr=False)
    encoding: object = field(default=None, repr=False)
    response: str = ""
    dropped_columns: list = field(default_factory=list)

    @property
    def n(self):
        return len(self.y)

    @property
    def p(self):
        return self.X.shape[1]

    @property
    def q(self):
        return sum(term.q for term in self.terms)

    @property
    def weighted(self):
        """Prior weights other than 1? (They add -log|W| to the criteria.)"""
        return bool(np.any(self.weights != 1.0))

    @cached_property
    def layout(self):
        """theta's layout: `lmm_ref.parameters.ThetaLayout` of these terms."""
        return ThetaLayout((term.p, term.group, term.columns) for term in self.terms)

    @cached_property
    def Z(self):
        """Z = [Z_1 ... Z_k], sparse n x q."""
        return sp.hstack([term.Z for term in self.terms], format="csc")

    def Lambda(self, theta):
        """Lambda_theta = blockdiag(I_{l_i} kron T_i), sparse q x q."""
        Ts = self.layout.T(theta)
        blocks = [term.Lambda(T) for term, T in zip(self.terms, Ts)]
        return sp.block_diag(blocks, format="csc")


class LambdaTemplate:
    """Lambda_theta for a list of terms, as a fixed sparsity pattern refilled from theta.

    Like lme4's `Lind`, non-zero k of the pattern holds theta[Lind[k]], so a new theta
    costs one copy and one gather instead of building blockdiag(I kron T_i) again: the
    construction would cost more than the linear algebra it feeds.  `theta` here is the
    terms' own entries, in the layout's order.
    """

    def __init__(self, terms):
        layout = ThetaLayout((term.p, term.group, term.columns) for term in terms)
        blocks = []
        for term, place in zip(terms, layout.terms):
            # 1-based positions in theta, so that 0 means "no entry" in the pattern
            blocks.append(term.Lambda(place.T(place.start + 1 + np.arange(place.size))))
        self.pattern = sp.block_diag(blocks, format="csc")
        self.Lind = self.pattern.data.astype(np.int64) - 1

    def __call__(self, theta):
        Lambda = self.pattern.copy()
        Lambda.data = np.asarray(theta, dtype=float)[self.Lind]
        return Lambda
