"""Turning data-frame columns into model-matrix columns and grouping codes (chapter 1).

formulaic (the formula library statsmodels uses) evaluates every expression of a
formula: the fixed part, the left side of each random-effects term, the response and
any offset.  Grouping factors are coded here, as R's `factor()` codes them.  What was
learnt from the data (formulaic's model specs, with their columns, contrasts and factor
levels, and each grouping factor's levels) is kept in an `Encoding`, so that new data
can be encoded exactly as the fitted data were.
"""

import keyword
import re
from dataclasses import dataclass

import formulaic
import numpy as np
import pandas as pd

from .errors import DataError, DataTypeError, FormulaError


@dataclass
class Encoding:
    """How the fitted data were encoded: enough to encode new rows the same way.

    `fixed` is formulaic's model spec of the fixed part and `kept` the indices of its
    columns that X keeps (aliased ones dropped); `terms` holds, for each random-effects
    term in the design's order, the model spec of its expression and its grouping
    factor's levels; `offsets` the specs of the offset expressions.
    """

    fixed: object
    kept: list
    terms: list  # [(model spec of expr, levels), ...]
    offsets: list


def quote_keywords(expr, columns):
    """Backtick column names that are Python keywords so formulaic can read them."""
    def quote(match):
        name = match.group(0)
        return f"`{name}`" if keyword.iskeyword(name) and name in columns else name
    return re.sub(r"(?<![`\w.])[A-Za-z_]\w*(?![`\w])", quote, expr)


class Expressions:
    """Formula expressions parsed once and evaluated once per data frame.

    The fixed part and the random terms often share an expression ('Days' in
    'Reaction ~ Days + (Days | Subject)', '1' in '(1 | a) + (1 | b)'), and formulaic's
    parsing and evaluation cost more than everything else in building a design.
    `where` names the piece of the formula in error messages.
    """

    def __init__(self, columns):
        self.columns = columns  # for quoting keyword column names
        self._parsed, self._matrices = {}, {}

    def parse(self, expr, where):
        if expr not in self._parsed:
            try:
                self._parsed[expr] = formulaic.Formula(quote_keywords(expr, self.columns))
            except Exception as error:  # formulaic's parse errors have several classes
                raise FormulaError(f"cannot read the {where}: {error}") from None
        return self._parsed[expr]

    def variables(self, expr, where):
        return set(self.parse(expr, where).required_variables)

    def model_matrix(self, expr, where, data):
        """(matrix, column names, model spec) of expr on the (cleaned) data."""
        if expr not in self._matrices:
            self._matrices[expr] = evaluate(self.parse(expr, where), data, where)
        return self._matrices[expr]


def evaluate(formula_or_spec, data, where):
    """(matrix, column names, model spec): a formulaic formula or model spec on data."""
    try:
        if isinstance(formula_or_spec, formulaic.ModelSpec):
            matrix = formula_or_spec.get_model_matrix(data, na_action="raise", output="numpy")
        else:
            matrix = formulaic.model_matrix(formula_or_spec, data, na_action="raise",
                                            output="numpy")
    except Exception as error:
        raise FormulaError(f"cannot evaluate the {where}: {error}") from None
    spec = matrix.model_spec
    names = ["(Intercept)" if name == "Intercept" else name for name in spec.column_names]
    matrix = np.asarray(matrix, dtype=float)
    for j, name in enumerate(names):
        check_squares_finite(matrix[:, j], f"column {name!r} of the {where}")
    return matrix, names, spec


def check_squares_finite(values, where):
    """The likelihood works with sums of squares: they must not overflow to inf."""
    with np.errstate(over="ignore"):
        total = values @ values
    if not np.isfinite(total):
        raise DataError(
            f"the values of the {where} are too large (up to {np.max(np.abs(values)):.3g}) "
            "for their sum of squares to be represented in floating point; rescale them, "
            "e.g. divide by a power of ten"
        )


def grouping_factor(columns, group, data):
    """Codes and levels of a grouping factor: one column, or an interaction 'a:b'.

    Levels follow R's `factor()`: a categorical keeps its order, numbers sort as
    numbers, strings as text; interaction levels 'a:b' vary the last factor fastest and
    keep only the combinations that occur (as lme4 does).  A categorical's declared
    levels with no observations must be gone already.
    """
    parts = []
    for column in columns:
        values = data[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
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
    return np.searchsorted(used, codes), pd.Index([levels[k] for k in used], name=group)


def group_values(columns, data):
    """The grouping factor's level of each row, as the text `grouping_factor` gives it."""
    texts = [data[column].astype(str).to_numpy() for column in columns]
    values = texts[0].astype(object)
    for more in texts[1:]:
        values = values + ":" + more.astype(object)
    return values
