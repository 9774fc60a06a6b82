"""lme4's results for the book's models, for cross-checks.

The values were produced by lme4 1.1-31 in R 4.2.2 and are stored in `tests/reference/`
(provenance in `tests/reference/README.md`):

* `lme4_fits.json`: fits of seven models by REML and ML (the shared reference);
* `lme4_inference.json`: anova, confint, condVar, predict, lmerTest and weights on
  sleepstudy and Dyestuff (the shared reference);
* `lme4_more.json`: everything else the book and the tests check against, made by
  `tests/reference/make_lme4_more.R`.
"""

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import data

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "tests" / "reference"
REFERENCE_FILE = REFERENCE_DIR / "lme4_fits.json"


@lru_cache(maxsize=None)
def _load(name):
    with open(REFERENCE_DIR / name) as handle:
        return json.load(handle)


def lme4_fits():
    """Every reference fit of lme4_fits.json, as a list of dicts (see tests/reference/README.md)."""
    return _load("lme4_fits.json")


def lme4_inference():
    """lme4_inference.json: {section: [cases]} for anova, confint, condvar, predict, ..."""
    return _load("lme4_inference.json")


# Fields that are vectors even when R wrote a single value as a scalar (jsonlite's
# auto_unbox turns length-one vectors into scalars).
VECTOR_FIELDS = {
    "fits": ("theta", "theta_names"),
    "satterthwaite": ("terms", "estimate", "stderr", "df", "t", "p", "df_kr", "stderr_kr"),
    "predict": ("values",),
}


@lru_cache(maxsize=1)
def lme4_more():
    """lme4_more.json: {section: ...} for fits, condvar, predict, anova, confint, profile,
    satterthwaite and bootstrap (see tests/reference/README.md)."""
    more = json.loads(json.dumps(_load("lme4_more.json")))   # a copy to normalise
    for section, fields in VECTOR_FIELDS.items():
        for case in more[section]:
            for field in fields:
                if case.get(field) is not None and not isinstance(case[field], list):
                    case[field] = [case[field]]
    return more


def lme4_fit(model_id, reml=True):
    """The reference fit `model_id` (e.g. 'sleep_slope', 'unb_slope') by REML or ML."""
    for fit in lme4_fits() + lme4_more()["fits"]:
        if fit["id"] == model_id and fit["reml"] == reml:
            return fit
    ids = sorted({fit["id"] for fit in lme4_fits() + lme4_more()["fits"]})
    raise KeyError(f"no lme4 reference fit {model_id!r}; the ids are: {', '.join(ids)}")


def fit_label(fit):
    """A short name for a reference fit, e.g. 'sleep_slope-REML' (test ids)."""
    return f"{fit['id']}-{'REML' if fit['reml'] else 'ML'}"


def dataset_name(fit):
    """The `lmm_ref.data.load` name of a reference fit's data set."""
    return fit["dataset"].removesuffix(".csv")


def reference_data(name):
    """`lmm_ref.data.load(name)` with the derived columns the reference fits use: prior
    weights `w` and offsets `o`, computed as make_lme4_more.R computes them."""
    frame = data.load(name)
    rows = np.arange(1, len(frame) + 1)  # R's row numbers
    if name in ("sleepstudy", "sleepstudy_unbalanced"):
        frame["w"] = 1.0 + frame["Days"] % 3
        frame["o"] = (2.0 if name == "sleepstudy" else 0.5) * frame["Days"]
    elif name == "Penicillin":
        frame["w"] = 1.0 + (rows % 4) / 2
    elif name == "Dyestuff":
        frame["w"] = 1.0 + (rows - 1) % 5
    return frame
