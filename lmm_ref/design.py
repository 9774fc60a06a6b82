"""From formula and data to the model's matrices: y, X, Z and the template of Lambda_theta.

The model of chapter 1 is

    (Y | B = b) ~ N(X beta + Z b, sigma^2 I),    B = Lambda_theta U,  U ~ N(0, sigma^2 I).

For each random-effects term i, ``(expr | g)``, with l_i levels of g and p_i columns in
the model matrix X_i of ``expr``:

* J_i (n x l_i) is the indicator matrix of g: J_i[j, k] = 1 when observation j is in
  level k;
* Z_i (n x l_i p_i) is the row-wise Khatri-Rao product of J_i and X_i (eq. `eq-Zi`):
  row j of Z_i is kron(J_i[j, :], X_i[j, :]), so the p_i effects of one level sit side
  by side, levels in order, as lme4 lays them out;
* Lambda_i = I_{l_i} kron T_i, where T_i is a p_i x p_i lower-triangular matrix whose
  p_i (p_i + 1) / 2 non-zeros are the term's part of theta, its lower triangle read
  column by column (lme4's order).  Diagonal entries are bounded below by 0.

Z = [Z_1 ... Z_k] and Lambda = blockdiag(Lambda_1, ..., Lambda_k), with terms ordered by
decreasing number of levels (lme4's convention, which also puts the largest block first
for the blocked Cholesky in `lmm_ref.cholesky`).
"""

import keyword
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import formulaic
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataError, DataTypeError, FormulaError, warn
from .formula import Formula, parse

# ---------------------------------------------------------------------------------------
# One random-effects term
# ---------------------------------------------------------------------------------------


@dataclass
class ReTerm:
    """One random-effects term ``(expr | group)`` evaluated on the data.

    `codes[j]` is the level of observation j (an index into `levels`); `X` is the
    n x p model matrix of ``expr`` with column names `columns`.
    """

    expr: str
    group: str
    levels: pd.Index
    codes: np.ndarray
    X: np.ndarray
    columns: list

    @property
    def n_levels(self):  # l_i
        return len(self.levels)

    @property
    def p(self):  # p_i
        return self.X.shape[1]

    @property
    def q(self):  # q_i = l_i p_i
        return self.n_levels * self.p

    @property
    def n_theta(self):  # p_i (p_i + 1) / 2
        return self.p * (self.p + 1) // 2

    @cached_property
    def J(self):
        """Indicator matrix J_i (n x l_i) of the grouping factor."""
        n = len(self.codes)
        return sp.csr_matrix((np.ones(n), (np.arange(n), self.codes)), shape=(n, self.n_levels))

    @cached_property
    def Z(self):
        """Z_i = J_i * X_i, the row-wise Khatri-Rao product (eq. `eq-Zi`)."""
        return row_khatri_rao(self.J, self.X)

    def T(self, theta_i):
        """The p_i x p_i lower-triangular factor T_i filled column-wise from theta_i."""
        T = np.zeros((self.p, self.p))
        T[_lower_triangle_columnwise(self.p)] = theta_i
        return T

    def Lambda(self, theta_i):
        """Lambda_i = I_{l_i} kron T_i (sparse, block diagonal)."""
        return sp.kron(sp.identity(self.n_levels), self.T(theta_i), format="csc")

    @property
    def theta_lower(self):
        """0 for the diagonal of T_i, -inf below it (lme4's bounds)."""
        rows, cols = _lower_triangle_columnwise(self.p)
        return np.where(rows == cols, 0.0, -np.inf)

    @property
    def theta_start(self):
        """lme4's start: T_i = I (each effect's SD equal to sigma, no correlation)."""
        rows, cols = _lower_triangle_columnwise(self.p)
        return np.where(rows == cols, 1.0, 0.0)

    @property
    def theta_names(self):
        rows, cols = _lower_triangle_columnwise(self.p)
        return [
            f"{self.group}.{self.columns[r]}" if r == c
            else f"{self.group}.{self.columns[r]}.{self.columns[c]}"
            for r, c in zip(rows, cols)
        ]

    def __str__(self):
        return f"({self.expr} | {self.group})"


@lru_cache(maxsize=None)
def _lower_triangle_columnwise(p):
    """Row and column indices of a p x p lower triangle, column by column."""
    cols, rows = np.triu_indices(p)  # the upper triangle row-wise, transposed
    return rows, cols


class LambdaTemplate:
    """Lambda_theta for a list of terms, as a fixed sparsity pattern refilled from theta.

    Like lme4's `Lind`, non-zero k of the pattern holds theta[Lind[k]], so a new theta
    costs one copy and one gather instead of building blockdiag(I kron T_i) again: the
    construction would cost more than the linear algebra it feeds.
    """

    def __init__(self, terms):
        blocks, offset = [], 0
        for term in terms:
            rows, cols = _lower_triangle_columnwise(term.p)
            T_index = np.zeros((term.p, term.p))
            T_index[rows, cols] = offset + 1 + np.arange(term.n_theta)  # 1-based: 0 is "no entry"
            blocks.append(sp.kron(sp.identity(term.n_levels), T_index, format="csc"))
            offset += term.n_theta
        self.pattern = sp.block_diag(blocks, format="csc")
        self.Lind = self.pattern.data.astype(np.int64) - 1

    def __call__(self, theta):
        Lambda = self.pattern.copy()
        Lambda.data = np.asarray(theta, dtype=float)[self.Lind]
        return Lambda


def row_khatri_rao(J, X):
    """Row-wise Khatri-Rao product: row j is kron(J[j, :], X[j, :]).

    J is sparse (n x l), X dense (n x p); the result is sparse (n x l p).  Only the
    non-zeros of J matter, so the cost is that of writing the result.
    """
    J = sp.coo_matrix(J)
    n, p = X.shape
    rows = np.repeat(J.row, p)
    cols = (J.col[:, None] * p + np.arange(p)).ravel()
    vals = (J.data[:, None] * X[J.row, :]).ravel()
    return sp.csc_matrix((vals, (rows, cols)), shape=(n, J.shape[1] * p))


# ---------------------------------------------------------------------------------------
# The whole design
# ---------------------------------------------------------------------------------------


@dataclass
class Design:
    """Everything the likelihood needs from formula and data.

    Attributes are named as in the book: `y`, `X` (with `X_names`), `Z`, the list of
    `terms`, and `Lambda(theta)`; `theta_lower`, `theta_start` and `theta_names` give
    the parameter's bounds, lme4's starting value and lme4's names.
    """

    formula: object
    y: np.ndarray
    X: np.ndarray
    X_names: list
    terms: list
    data: pd.DataFrame = field(repr=False)
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

    @cached_property
    def Z(self):
        """Z = [Z_1 ... Z_k], sparse n x q."""
        return sp.hstack([term.Z for term in self.terms], format="csc")

    @cached_property
    def theta_lower(self):
        return np.concatenate([term.theta_lower for term in self.terms])

    @cached_property
    def theta_start(self):
        return np.concatenate([term.theta_start for term in self.terms])

    @cached_property
    def theta_names(self):
        return [name for term in self.terms for name in term.theta_names]

    def split_theta(self, theta):
        """theta cut into the pieces that belong to each term."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (len(self.theta_lower),):
            raise ValueError(
                f"theta has {theta.size} entries; this model has {len(self.theta_lower)}: "
                + ", ".join(self.theta_names)
            )
        return [theta[a:b] for a, b in self._theta_slices]

    @cached_property
    def _theta_slices(self):
        ends = np.cumsum([term.n_theta for term in self.terms])
        return list(zip(np.concatenate([[0], ends[:-1]]), ends))

    def Lambda(self, theta):
        """Lambda_theta = blockdiag(I_{l_i} kron T_i), sparse q x q."""
        blocks = [term.Lambda(piece) for term, piece in zip(self.terms, self.split_theta(theta))]
        return sp.block_diag(blocks, format="csc")


def build(formula, data):
    """Evaluate an lme4 formula on a DataFrame: the `Design` of chapter 1.

    Rows with a missing or infinite value in any column the formula uses are dropped
    with a warning (lme4's default, said out loud).  Fixed-effect columns that are
    exact linear combinations of earlier ones are dropped with a warning naming them.
    """
    parsed = formula if isinstance(formula, Formula) else parse(formula)
    if not isinstance(data, pd.DataFrame):
        raise DataTypeError(
            f"data must be a pandas DataFrame, not {type(data).__name__}; "
            "convert it with pandas.DataFrame(...) or read it with pandas.read_csv"
        )
    if len(data) == 0:
        raise DataError("the data has no rows; there is nothing to fit")
    expressions = _Expressions(data.columns)
    used = _used_columns(parsed, data, expressions)
    data = _drop_incomplete_rows(data, used)
    data = _drop_unused_categories(data, used)
    y = _response(parsed, data, expressions)
    X, X_names = expressions.model_matrix(parsed.fixed, f"fixed part {parsed.fixed!r}", data)
    X, X_names, dropped = _drop_aliased_columns(X, X_names)
    _check_fixed_effects(X_names, dropped, len(y))
    terms = [_random_term(term, data, expressions) for term in parsed.random]
    # lme4 orders terms by decreasing number of levels; sorted() is stable on ties.
    terms = sorted(terms, key=lambda term: -term.n_levels)
    _check_identifiable(terms, len(y))
    return Design(
        formula=parsed, y=y, X=X, X_names=X_names, terms=terms, data=data,
        response=parsed.response, dropped_columns=dropped,
    )


# ---------------------------------------------------------------------------------------
# Steps of `build`
# ---------------------------------------------------------------------------------------


def _quote_keywords(expr, columns):
    """Backtick column names that are Python keywords so formulaic can read them."""
    def quote(match):
        name = match.group(0)
        return f"`{name}`" if keyword.iskeyword(name) and name in columns else name
    return re.sub(r"(?<![`\w.])[A-Za-z_]\w*(?![`\w])", quote, expr)


class _Expressions:
    """Formula expressions parsed once and evaluated once per build.

    The fixed part and the random terms often share an expression ('Days' in
    'Reaction ~ Days + (Days | Subject)', '1' in '(1 | a) + (1 | b)'), and formulaic's
    parsing and evaluation cost more than everything else in `build`.
    """

    def __init__(self, columns):
        self.columns = columns  # for quoting keyword column names
        self._parsed, self._matrices = {}, {}

    def parse(self, expr, where):
        if expr not in self._parsed:
            try:
                self._parsed[expr] = formulaic.Formula(_quote_keywords(expr, self.columns))
            except Exception as error:  # formulaic's parse errors have several classes
                raise FormulaError(f"cannot read the {where}: {error}") from None
        return self._parsed[expr]

    def variables(self, expr, where):
        return set(self.parse(expr, where).required_variables)

    def model_matrix(self, expr, where, data):
        """(matrix, column names) of expr on the (cleaned) data, evaluated once per expression."""
        if expr not in self._matrices:
            self._matrices[expr] = _model_matrix(self.parse(expr, where), data, where)
        return self._matrices[expr]


def _used_columns(parsed, data, expressions):
    """Every data column the formula uses, checked to exist, in formula order."""
    groups = [(column, str(term)) for term in parsed.random for column in term.group_columns]
    response = ({parsed.response} if parsed.response in data.columns
                else expressions.variables(_response_expression(parsed),
                                           f"response {parsed.response!r}"))
    wanted = (
        [(v, f"response {parsed.response!r}") for v in response]
        + [(v, f"fixed-effects term {parsed.fixed!r}")
           for v in sorted(expressions.variables(parsed.fixed, f"fixed part {parsed.fixed!r}"))]
        + [(v, f"random-effects term {term}") for term in parsed.random
           for v in sorted(expressions.variables(term.expr, f"random-effects term {term}"))]
        + [(column, f"grouping factor of {where}") for column, where in groups]
    )
    for column, where in wanted:
        if column not in data.columns:
            raise DataError(
                f"unknown column {column!r} in the {where}; the data has columns: "
                + ", ".join(map(str, data.columns))
            )
        if (data.columns == column).sum() > 1:  # data[column] would be a DataFrame
            raise DataError(
                f"the data has {(data.columns == column).sum()} columns named {column!r} "
                f"(used in the {where}); rename or drop the duplicates"
            )
    return list(dict.fromkeys(column for column, _ in wanted))


def _drop_incomplete_rows(data, used):
    """The used columns, without rows with NaN, None, NA or +-inf in any of them (warned)."""
    data = data[used]  # a new frame: later steps may replace its columns
    bad = np.zeros(len(data), dtype=bool)
    culprits = []
    for column in used:
        values = data[column]
        missing = values.isna().to_numpy().copy()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            missing |= np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
        if missing.any():
            culprits.append(f"{column} ({int(missing.sum())})")
        bad |= missing
    if bad.any():
        warn(
            f"dropped {int(bad.sum())} of {len(data)} rows with missing or infinite values "
            f"in: {', '.join(culprits)}"
        )
        data = data.loc[~bad]
    if len(data) == 0:
        raise DataError(
            "no rows are left after dropping rows with missing values in "
            + ", ".join(culprits)
        )
    data.index = pd.RangeIndex(len(data))
    return data


def _drop_unused_categories(data, used):
    """Drop the declared levels of categorical columns that have no observations.

    lme4 does the same (model.frame with drop.unused.levels = TRUE): an empty level
    would be an all-zero column of X or an empty group of a random effect, and in a
    fixed-effect factor it would even become the reference level.  A warning says so,
    since the levels were declared on purpose.
    """
    for column in used:
        values = data[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            present = np.zeros(len(values.cat.categories), dtype=bool)
            present[values.cat.codes[values.cat.codes >= 0]] = True
            empty = [str(level) for level in values.cat.categories[~present]]
            if empty:
                warn(
                    f"the column {column!r} has {len(empty)} categorical level(s) with no "
                    f"observations ({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''}); "
                    "they are left out of the model"
                )
                data[column] = values.cat.remove_unused_categories()
    return data


def _response_expression(parsed):
    """A response such as log(y), as an expression with exactly its own column."""
    return f"0 + {parsed.response}"


def _response(parsed, data, expressions):
    if parsed.response in data.columns:
        # An object column of numbers (as None for a missing value leaves it) is numeric.
        values = data[parsed.response].infer_objects()
    else:  # an expression such as log(y), evaluated like every other expression
        matrix, names = expressions.model_matrix(_response_expression(parsed),
                                                 f"response {parsed.response!r}", data)
        if matrix.shape[1] != 1:
            raise DataTypeError(
                f"the response {parsed.response!r} gives {matrix.shape[1]} columns "
                f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}), not one "
                "number per row; a linear mixed model needs a numeric response"
            )
        values = pd.Series(matrix[:, 0])
    if (not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
            or pd.api.types.is_complex_dtype(values)):
        raise DataTypeError(
            f"the response {parsed.response!r} must be numeric, but its values are of "
            f"type {values.dtype}; convert it to numbers, or fit a generalized model "
            "for a categorical response"
        )
    y = values.to_numpy(dtype=float)
    _check_squares_finite(y, f"response {parsed.response!r}")
    if np.ptp(y) == 0:
        raise DataError(
            f"the response {parsed.response!r} is constant ({y[0]:g}) in every row, "
            "so there is no variation to model"
        )
    return y


def _model_matrix(formula, data, where):
    try:
        matrix = formulaic.model_matrix(formula, data, na_action="raise", output="numpy")
    except Exception as error:
        raise FormulaError(f"cannot evaluate the {where}: {error}") from None
    names = ["(Intercept)" if name == "Intercept" else name
             for name in matrix.model_spec.column_names]
    matrix = np.asarray(matrix, dtype=float)
    for j, name in enumerate(names):
        _check_squares_finite(matrix[:, j], f"column {name!r} of the {where}")
    return matrix, names


def _check_squares_finite(values, where):
    """The likelihood works with sums of squares: they must not overflow to inf."""
    with np.errstate(over="ignore"):
        total = values @ values
    if not np.isfinite(total):
        raise DataError(
            f"the values of the {where} are too large (up to {np.max(np.abs(values)):.3g}) "
            "for their sum of squares to be represented in floating point; rescale them, "
            "e.g. divide by a power of ten"
        )


def _drop_aliased_columns(X, names):
    """Remove columns of X that are linear combinations of earlier ones, as lme4 does.

    A column is aliased when, after scaling every column to unit length, its component
    orthogonal to the kept columns is below a relative tolerance; lme4 uses a pivoted
    QR in the same spirit and drops the columns it moves to the end.
    """
    if X.shape[1] == 0:
        return X, names, []
    scaled = X / np.maximum(np.linalg.norm(X, axis=0), np.finfo(float).tiny)
    keep = []
    tolerance = 1e-7
    for j in range(X.shape[1]):
        basis = scaled[:, keep]
        if keep:
            coef, *_ = np.linalg.lstsq(basis, scaled[:, j], rcond=None)
            residual = scaled[:, j] - basis @ coef
        else:
            residual = scaled[:, j]
        if np.linalg.norm(residual) > tolerance:
            keep.append(j)
    dropped = [names[j] for j in range(X.shape[1]) if j not in keep]
    if dropped:
        warn(
            "the fixed-effects model matrix is rank deficient; dropped the aliased "
            f"column(s) {', '.join(dropped)} (each a linear combination of the columns "
            "before it)"
        )
    return X[:, keep], [names[j] for j in keep], dropped


def _grouping_factor(term, data):
    """Codes and levels of the grouping factor, an interaction for 'a:b'.

    Levels follow R's `factor()`: a categorical keeps its order, numbers sort as
    numbers, strings as text; interaction levels 'a:b' vary the last factor fastest and
    keep only the combinations that occur (as lme4 does).  A categorical's declared
    levels with no observations are gone already (`_drop_unused_categories`).
    """
    parts = []
    for column in term.group_columns:
        values = data[column]
        if isinstance(values.dtype, pd.CategoricalDtype):  # unused levels are gone already
            codes = values.cat.codes.to_numpy().astype(np.int64)  # int8 would overflow below
            levels = list(values.cat.categories.astype(str))
        else:
            try:
                uniques = np.sort(values.unique())
            except TypeError:  # e.g. numbers and strings in one object column
                kinds = sorted({type(value).__name__ for value in values})
                raise DataTypeError(
                    f"the grouping column {column!r} holds values of type(s) {', '.join(kinds)} "
                    "that cannot be sorted into levels (numbers mixed with text, or lists); "
                    f"convert it with data[{column!r}].astype(str)"
                ) from None
            codes = np.searchsorted(uniques, values.to_numpy()).astype(np.int64)
            levels = list(pd.Index(uniques).astype(str))
        parts.append((codes, levels))
    codes, levels = parts[0]
    for more_codes, more_levels in parts[1:]:
        codes = codes * len(more_levels) + more_codes
        levels = [f"{a}:{b}" for a in levels for b in more_levels]
    used = np.unique(codes)
    return np.searchsorted(used, codes), pd.Index([levels[k] for k in used], name=term.group)


def _random_term(term, data, expressions):
    X_i, columns = expressions.model_matrix(term.expr, f"random-effects term {term}", data)
    if X_i.shape[1] == 0:
        raise FormulaError(f"the random-effects term {term} has no columns; use (1 | g) for an intercept")
    codes, levels = _grouping_factor(term, data)
    return ReTerm(expr=term.expr, group=term.group, levels=levels, codes=codes, X=X_i, columns=columns)


def _check_fixed_effects(X_names, dropped, n):
    """p < n: with as many fixed effects as observations, the fit is exact and no
    variance is left to estimate (and REML's n - p degrees of freedom are none)."""
    if len(X_names) >= n:
        raise DataError(
            f"the fixed-effects model matrix has {len(X_names)} linearly independent "
            f"columns ({', '.join(X_names[:5])}{', ...' if len(X_names) > 5 else ''}"
            f"{'; aliased ones already dropped' if dropped else ''}) for only {n} "
            "observations, so nothing is left to estimate the variances from; use fewer "
            "fixed effects or more data"
        )


def _check_identifiable(terms, n):
    """lme4's checks: each factor needs 1 < levels < n, and each term q_i < n."""
    for term in terms:
        if term.n_levels < 2:
            raise DataError(
                f"the grouping factor {term.group!r} in {term} has only "
                f"{term.n_levels} level ({term.levels[0]!r}); a random effect needs at "
                "least two groups. Drop the term or use a factor with several levels"
            )
        if term.n_levels >= n:
            raise DataError(
                f"the grouping factor {term.group!r} in {term} has {term.n_levels} levels "
                f"for {n} observations; with (about) one observation per level its "
                "variance cannot be told apart from the residual variance. Remove the "
                "term, or group by a coarser factor"
            )
        if term.q >= n:
            raise DataError(
                f"the term {term} has {term.q} random effects ({term.n_levels} levels x "
                f"{term.p} columns) for only {n} observations; its variance parameters are "
                "not identifiable. Simplify the term (fewer columns, e.g. '(1 | "
                f"{term.group})') or collect more data"
            )
