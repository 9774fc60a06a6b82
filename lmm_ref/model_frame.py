"""From a formula and a data frame to the `Design` of chapter 1, with clear errors.

`build` checks the data against the formula (every column exists, the response is
numeric, the groups can support their terms), cleans it as lme4 does, but out loud
(rows with missing values and unused factor levels are dropped with a warning, aliased
fixed-effects columns are dropped with a warning), and encodes it through
`lmm_ref.encoding`, keeping the `Encoding` for new data.
"""

import numpy as np
import pandas as pd

from .design import Design, ReTerm
from .encoding import Encoding, Expressions, check_squares_finite, grouping_factor
from .errors import DataError, DataTypeError, FormulaError, warn
from .formula import Formula, parse


def build(formula, data, weights=None):
    """Evaluate an lme4 formula on a DataFrame: the `Design` of chapter 1.

    `weights` (optional) are prior weights: a column name or one positive number per
    row of `data`.  Rows with a missing or infinite value in any column the formula
    uses are dropped with a warning (lme4's default, said out loud).  Fixed-effect
    columns that are exact linear combinations of earlier ones are dropped with a
    warning naming them.
    """
    parsed = formula if isinstance(formula, Formula) else parse(formula)
    if not isinstance(data, pd.DataFrame):
        raise DataTypeError(
            f"data must be a pandas DataFrame, not {type(data).__name__}; "
            "convert it with pandas.DataFrame(...) or read it with pandas.read_csv"
        )
    if len(data) == 0:
        raise DataError("the data has no rows; there is nothing to fit")
    expressions = Expressions(data.columns)
    weights = prior_weights(weights, data)
    used = used_columns(parsed, data, expressions)
    data, kept_rows = drop_incomplete_rows(data, used)
    data = drop_unused_categories(data, used)
    y = response(parsed, data, expressions)
    X, X_names, fixed_spec = expressions.model_matrix(parsed.fixed, f"fixed part {parsed.fixed!r}", data)
    kept, dropped = aliased_columns(X, X_names)
    X, X_names = X[:, kept], [X_names[j] for j in kept]
    check_fixed_effects(X_names, dropped, len(y))
    offset, offset_specs = offsets(parsed, data, expressions)
    terms, term_specs = [], []
    for term in parsed.random:
        built, spec = random_term(term, data, expressions)
        terms.append(built)
        term_specs.append(spec)
    # lme4 orders terms by decreasing number of levels; sorted() is stable on ties.
    order = sorted(range(len(terms)), key=lambda k: -terms[k].n_levels)
    terms = [terms[k] for k in order]
    check_identifiable(terms, len(y))
    encoding = Encoding(fixed=fixed_spec, kept=kept, offsets=offset_specs,
                        terms=[(term_specs[k], terms[j].levels) for j, k in enumerate(order)])
    return Design(
        formula=parsed, y=y, X=X, X_names=X_names, terms=terms,
        weights=np.ones(len(y)) if weights is None else weights[kept_rows],
        offset=offset, data=data, encoding=encoding,
        response=parsed.response, dropped_columns=dropped,
    )


def prior_weights(weights, data):
    """The prior weights as an array (None when there are none), each checked."""
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise DataError(f"unknown column {weights!r} given as weights; the data has "
                            "columns: " + ", ".join(map(str, data.columns)))
        where, values = f"weights column {weights!r}", data[weights]
    else:
        where, values = "weights", weights
    try:
        values = np.asarray(pd.Series(values).infer_objects(), dtype=float)
    except (TypeError, ValueError):
        raise DataTypeError(f"the {where} must be numbers; convert them with "
                            "pandas.to_numeric") from None
    if values.shape != (len(data),):
        raise DataError(f"the {where} have {values.size} values for {len(data)} rows of data; "
                        "give one weight per row")
    for bad, what in [(~np.isfinite(values), "missing or not finite"),
                      (np.isfinite(values) & (values <= 0), "zero or negative")]:
        if bad.any():
            rows = np.flatnonzero(bad)
            raise DataError(
                f"{bad.sum()} row(s) of the {where} are {what} (the first at position "
                f"{rows[0]}: {float(values[rows[0]]):g}); prior weights must be positive "
                "numbers. "
                "Drop those rows, or give them a small positive weight"
            )
    return values


def response_expression(parsed):
    """A response such as log(y), as an expression with exactly its own column."""
    return f"0 + {parsed.response}"


def used_columns(parsed, data, expressions):
    """Every data column the formula uses, checked to exist, in formula order."""
    groups = [(column, str(term)) for term in parsed.random for column in term.group_columns]
    response_vars = ({parsed.response} if parsed.response in data.columns
                     else expressions.variables(response_expression(parsed),
                                                f"response {parsed.response!r}"))
    wanted = (
        [(v, f"response {parsed.response!r}") for v in response_vars]
        + [(v, f"fixed-effects term {parsed.fixed!r}")
           for v in sorted(expressions.variables(parsed.fixed, f"fixed part {parsed.fixed!r}"))]
        + [(v, f"offset term offset({expr})") for expr in parsed.offsets
           for v in sorted(expressions.variables(f"0 + {expr}", f"offset term offset({expr})"))]
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


def drop_incomplete_rows(data, used):
    """The used columns without rows that have NaN, None, NA or +-inf in any of them
    (with a warning), and the mask of the rows kept."""
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
    return data, ~bad


def drop_unused_categories(data, used):
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


def response(parsed, data, expressions):
    """y, checked to be numeric, finite and not constant."""
    if parsed.response in data.columns:
        # An object column of numbers (as None for a missing value leaves it) is numeric.
        values = data[parsed.response].infer_objects()
    else:  # an expression such as log(y), evaluated like every other expression
        values = pd.Series(single_column(expressions, response_expression(parsed),
                                         f"response {parsed.response!r}", data,
                                         "a linear mixed model needs a numeric response"))
    if (not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
            or pd.api.types.is_complex_dtype(values)):
        raise DataTypeError(
            f"the response {parsed.response!r} must be numeric, but its values are of "
            f"type {values.dtype}; convert it to numbers, or fit a generalized model "
            "for a categorical response"
        )
    y = values.to_numpy(dtype=float)
    check_squares_finite(y, f"response {parsed.response!r}")
    if np.ptp(y) == 0:
        raise DataError(
            f"the response {parsed.response!r} is constant ({y[0]:g}) in every row, "
            "so there is no variation to model"
        )
    return y


def single_column(expressions, expr, where, data, need):
    """The one numeric column of an expression (the response, an offset); `need` says
    why one number per row is needed."""
    matrix, names, _ = expressions.model_matrix(expr, where, data)
    if matrix.shape[1] != 1:
        raise DataTypeError(
            f"the {where} gives {matrix.shape[1]} columns "
            f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}), not one "
            f"number per row; {need}"
        )
    return matrix[:, 0]


def offsets(parsed, data, expressions):
    """The summed offset o (zeros without offset terms) and each term's model spec."""
    total, specs = np.zeros(len(data)), []
    for expr in parsed.offsets:
        where = f"offset term offset({expr})"
        if expr in data.columns and (not pd.api.types.is_numeric_dtype(data[expr])
                                     or pd.api.types.is_bool_dtype(data[expr])):
            raise DataTypeError(f"the {where} must be numeric, but the column {expr!r} holds "
                                f"values of type {data[expr].dtype}; convert it to numbers")
        total = total + single_column(expressions, f"0 + {expr}", where, data,
                                      "an offset is one known number per row")
        specs.append(expressions.model_matrix(f"0 + {expr}", where, data)[2])
    return total, specs


def aliased_columns(X, names):
    """(indices kept, names dropped): columns of X that are linear combinations of
    earlier ones are dropped, as lme4 does.

    A column is aliased when, after scaling every column to unit length, its component
    orthogonal to the kept columns is below a relative tolerance; lme4 uses a pivoted
    QR in the same spirit and drops the columns it moves to the end.
    """
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
    return keep, dropped


def random_term(term, data, expressions):
    """The `ReTerm` of one parsed term, and the model spec of its expression."""
    X_i, columns, spec = expressions.model_matrix(term.expr, f"random-effects term {term}", data)
    if X_i.shape[1] == 0:
        raise FormulaError(f"the random-effects term {term} has no columns; use (1 | g) for an intercept")
    codes, levels = grouping_factor(term.group_columns, term.group, data)
    built = ReTerm(expr=term.expr, group=term.group, levels=levels, codes=codes, X=X_i,
                   columns=columns, group_columns=term.group_columns)
    return built, spec


def check_fixed_effects(X_names, dropped, n):
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


def check_identifiable(terms, n):
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
