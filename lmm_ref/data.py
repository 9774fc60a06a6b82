"""The book's data sets, loaded with their factors as pandas categoricals (chapter 0).

Each CSV in `data/` was exported from R (lme4 1.1-31, nlme, datasets); `data/README.md`
gives origin, columns and licence.  A CSV keeps no factor level order, so the order R
uses is restored from `data/levels.json` (written by `data/make_levels.R`): it decides
the reference level of a factor among the fixed effects and the order of the rows of
`ranef`.  It is alphabetical for most factors, numeric for sleepstudy's subjects, and
R's own for the rest (nlme orders Orthodont's subjects, for instance, by their largest
distance; R's ordered factors become ordered categoricals).
"""

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .errors import DataError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# In the order the book introduces them.
NAMES = ("sleepstudy", "Dyestuff", "Dyestuff2", "Penicillin", "Pastes", "sleepstudy_unbalanced",
         "Orthodont", "ChickWeight", "Oats", "Machines", "InstEval")


@lru_cache(maxsize=1)
def factor_levels():
    """{data set: {factor column: {"levels": [...], "ordered": bool}}} from levels.json."""
    with open(DATA_DIR / "levels.json") as handle:
        return json.load(handle)


def available():
    """The names `load` accepts, in the order the book introduces them."""
    return list(NAMES)


def load(name):
    """Data set `name` as a DataFrame; factor columns are categoricals
    with R's level order."""
    if name not in NAMES:
        raise DataError(
            f"unknown data set {name!r}; the available data sets are: "
            + ", ".join(available())
        )
    frame = pd.read_csv(DATA_DIR / f"{name}.csv")
    for column, spec in factor_levels()[name].items():
        frame[column] = pd.Categorical(frame[column].astype(str),
                                       categories=spec["levels"],
                                       ordered=spec["ordered"])
    return frame
