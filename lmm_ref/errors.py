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


def warn(message, category=UserWarning):
    """Issue a warning attributed to the first caller outside lmm_ref.

    Warnings about the user's data should point at the user's line, however deep in
    lmm_ref they arise.
    """
    import sys
    import warnings
    from pathlib import Path

    package = str(Path(__file__).resolve().parent)
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the caller of warn()
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
