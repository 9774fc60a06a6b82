"""The book's data sets, loaded with their factors as pandas categoricals.

Each CSV in `data/` was exported from the R package lme4 1.1-31; `data/README.md`
gives origin, columns and licence.  A CSV keeps no factor level order, so the order
lme4 uses is restored here: alphabetical for every factor, except sleepstudy's
`Subject`, whose levels are subject numbers in increasing numeric order (308 ... 372),
which is what R's `factor()` gives for a numeric column.
"""

from pathlib import Path

import pandas as pd

from .errors import DataError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# name -> the columns that are factors; every other column is numeric.
FACTORS = {
    "sleepstudy": ["Subject"],
    "Dyestuff": ["Batch"],
    "Dyestuff2": ["Batch"],
    "Penicillin": ["plate", "sample"],
    "Pastes": ["batch", "cask", "sample"],
}


def available():
    """The names `load` accepts, in the order the book introduces them."""
    return list(FACTORS)


def load(name):
    """Return data set `name` as a DataFrame whose factor columns are categoricals.

    Level order follows lme4: sorted alphabetically for string codes, numerically for
    numeric codes (sleepstudy's Subject).
    """
    if name not in FACTORS:
        raise DataError(
            f"unknown data set {name!r}; the available data sets are: "
            + ", ".join(available())
        )
    frame = pd.read_csv(DATA_DIR / f"{name}.csv")
    for column in FACTORS[name]:
        values = frame[column]
        levels = sorted(values.unique())  # numeric codes sort as numbers, strings as text
        frame[column] = pd.Categorical(values.astype(str), categories=[str(v) for v in levels])
    return frame
