"""The parametric bootstrap (chapter 8).

Simulate responses from the fitted model (`lmm_ref.simulate`), refit the model to each
(`search.refit_theta_hat`, the search of `LmmFit.refit`: only the response's
cross-products are new, and the search starts at theta-hat with the fit's curvature,
`lmm_ref.newton`), and read the spread of the refitted estimates as the sampling
distribution of the estimates.  Every replicate is kept: one that ends on the boundary
is marked `singular`, one whose refit fails is marked `failed` with its error, so that
nothing is dropped without a word.  Intervals: the percentile interval and the shortest
interval that holds the same share of the replicates.
"""

import warnings

import numpy as np
import pandas as pd

from . import profile, search
from .errors import LmmRefError
from .zeta import percent_names


def replicate_names(design):
    """The columns of a replicate's estimates, lme4's names: .sig01, ..., .sigma,
    the fixed effects, and the criterion ("objective")."""
    return [*design.layout.sdcor_names, *design.X_names, "objective"]


def estimates(estimate):
    """The estimates a replicate records (`replicate_names`), read off a
    `search.Estimate`'s solution at theta-hat: the same numbers as the `LmmFit`
    of the estimate, without its tables."""
    solution = estimate.solution
    sigma = profile.sigma_hat(solution, estimate.reml)
    values = [*estimate.design.layout.sdcor(estimate.theta, sigma), *solution.beta,
              profile.criterion(solution, estimate.reml)]
    return dict(zip(replicate_names(estimate.design), map(float, values)))


# what a refit may raise: recorded in the replicate's row, the others go on
FAILURES = (LmmRefError, ArithmeticError, ValueError, np.linalg.LinAlgError)


def bootstrap(fit, nsim, seed=None):
    """A DataFrame of nsim parametric-bootstrap replicates: one row each,
    with the estimates, `singular`, `failed` and `message` columns."""
    responses = fit.simulate(nsim, seed)     # checks nsim
    names, estimate = replicate_names(fit.design), fit.estimate
    rows = []
    for k in range(nsim):
        row = dict.fromkeys(names, np.nan)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                refitted = search.refit_theta_hat(estimate, responses[:, k])
                row.update(estimates(refitted))
            row.update(singular=refitted.singular, failed=False,
                       message="; ".join(str(w.message) for w in caught))
        except FAILURES as error:
            row.update(singular=False, failed=True,
                       message=f"{type(error).__name__}: {error}")
        rows.append(row)
    table = pd.DataFrame(rows)
    table.index.name = "replicate"
    return table


def percentile_interval(values, level):
    """The (1 - level)/2 and (1 + level)/2 quantiles of the values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return np.quantile(values, [(1 - level) / 2, (1 + level) / 2])


def shortest_interval(values, level):
    """The shortest interval that holds ceil(level * m) of the m values."""
    values = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    m = len(values)
    width = int(np.ceil(level * m))
    if width >= m:
        return np.array([values[0], values[-1]])
    spans = values[width - 1:] - values[: m - width + 1]
    start = int(np.argmin(spans))
    return np.array([values[start], values[start + width - 1]])


def bootstrap_intervals(replicates, names, level=0.95, kind="percentile"):
    """Intervals from the replicates that did not fail, one row per parameter name,
    with confint's column names ("2.5 %", "97.5 %" at level 0.95)."""
    if kind not in ("percentile", "shortest"):
        raise ValueError(f"unknown kind {kind!r} of bootstrap interval; use 'percentile' "
                         "or 'shortest'")
    usable = replicates[~replicates["failed"].astype(bool)]
    interval = percentile_interval if kind == "percentile" else shortest_interval
    return pd.DataFrame([interval(usable[name], level) for name in names], index=names,
                        columns=percent_names(level))
