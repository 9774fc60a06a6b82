"""lme4's results for the book's models, for cross-checks.

The values were produced by lme4 1.1-31 in R 4.2.2 and are stored in
`tests/reference/lme4_fits.json` (provenance in `tests/reference/README.md`).
"""

import json
from functools import lru_cache
from pathlib import Path

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "tests" / "reference" / "lme4_fits.json"


@lru_cache(maxsize=1)
def lme4_fits():
    """Every reference fit, as a list of dicts (see tests/reference/README.md)."""
    with open(REFERENCE_FILE) as handle:
        return json.load(handle)


def lme4_fit(model_id, reml=True):
    """The reference fit `model_id` (e.g. 'sleep_slope') by REML or ML."""
    for fit in lme4_fits():
        if fit["id"] == model_id and fit["reml"] == reml:
            return fit
    ids = sorted({fit["id"] for fit in lme4_fits()})
    raise KeyError(f"no lme4 reference fit {model_id!r}; the ids are: {', '.join(ids)}")


def fit_label(fit):
    """A short name for a reference fit, e.g. 'sleep_slope-REML' (test ids)."""
    return f"{fit['id']}-{'REML' if fit['reml'] else 'ML'}"


def dataset_name(fit):
    """The `lmm_ref.data.load` name of a reference fit's data set."""
    return fit["dataset"].removesuffix(".csv")
