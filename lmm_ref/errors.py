"""The exceptions `lmm_ref` raises for bad input.

Every message names what is at fault (a column, a formula term, a level) and says
what to do about it.  They subclass `ValueError` or `TypeError`, so code that already
catches those keeps working.
"""


class LmmRefError(Exception):
    """Base class of every error `lmm_ref` raises on purpose."""


class FormulaError(LmmRefError, ValueError):
    """The model formula cannot be read: syntax, an unknown term, no random term."""


class DataError(LmmRefError, ValueError):
    """The data cannot support the model: a missing column, too few levels, no rows."""


class DataTypeError(LmmRefError, TypeError):
    """An input has the wrong type: `data` not a DataFrame, a non-numeric response."""
