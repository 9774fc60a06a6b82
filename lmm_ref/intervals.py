"""Confidence intervals for every parameter, three ways (chapter 8).

`confint` returns lme4's layout: rows .sig01, ..., .sigma, then the fixed effects, and
two columns named by their percentages ('2.5 %', '97.5 %').

* "profile": where the profile zeta reaches -+z (`lmm_ref.zeta`), on the ML deviance;
* "Wald": beta-hat -+ z SE for the fixed effects (eq-wald); the variance parameters get
  none (NaN), as in lme4, because their deviance is far from quadratic;
* "boot": percentiles (or the shortest intervals) of parametric-bootstrap replicates
  (`lmm_ref.bootstrap`).
"""

import numpy as np
import pandas as pd
import scipy.stats as st

from . import bootstrap, zeta

METHODS = ("profile", "Wald", "boot")


def check_level(level):
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"level must be a number between 0 and 1, such as 0.95, not {level!r}")


def wald(fit, level=0.95):
    """beta-hat -+ z SE for the fixed effects; NaN for the variance
    parameters."""
    names = fit.design.layout.sdcor_names
    z = st.norm.ppf(0.5 + level / 2)
    beta, se = fit.fixef.to_numpy(), fit.stderr.to_numpy()
    values = np.vstack([np.full((len(names), 2), np.nan),
                        np.column_stack([beta - z * se, beta + z * se])])
    return pd.DataFrame(values, index=names + list(fit.fixef.index),
                        columns=zeta.percent_names(level))


def confint(fit, method="profile", level=0.95, nsim=500, seed=None, kind="percentile"):
    """Intervals at `level` by `method` ("profile", "Wald" or "boot"); for "boot",
    `nsim` replicates from `seed`, and `kind` "percentile" or "shortest"."""
    check_level(level)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "Wald":
        return wald(fit, level)
    if method == "profile":
        return zeta.profile_intervals(fit, level)
    replicates = bootstrap.bootstrap(fit, nsim, seed)
    names = fit.design.layout.sdcor_names + list(fit.fixef.index)
    return bootstrap.bootstrap_intervals(replicates, names, level, kind)
