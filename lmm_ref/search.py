"""The search for theta-hat that a fit, a refit and the bootstrap share (chapters 6, 8).

`theta_hat` minimises the criterion of a built design over theta (eq-fit-problem): in
the optimiser's units phi = theta / scale (`starting.theta_scale`), from lme4's start or
a given one, with lme4's checks after it (`optimise.optimise`).  It returns an
`Estimate`: the optimum before any table is made.  `fitting.result` turns an estimate
into an `LmmFit`, with its tables of estimates, standard errors and conditional modes;
the bootstrap needs only a few numbers from each replicate, and on the sleep study the
tables would cost about a third of a replicate's time, so it reads them off the estimate.

`refit_theta_hat` is the search on a new response, from a fit's estimate: only the
response's cross-products are new (`products.with_response`), and the optimiser starts
at the fit's theta-hat and uses the fit's units and curvature.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import checks, optimise, starting
from .errors import DataError, DataTypeError


@dataclass
class Estimate:
    """theta-hat of a design and its cross-products, the penalized least-squares
    solution there (`pls.PLSSolution`), how the search got there (`record`) and
    whether the estimate is singular (lme4's isSingular)."""

    design: object
    products: object   # the design's `products.CrossProducts`
    reml: bool
    theta: np.ndarray
    solution: object
    record: optimise.OptimizerRecord
    singular: bool


def theta_hat(design, products, reml, method="L-BFGS-B", start=None, hessian=None,
              scale=None):
    """The `Estimate` of a built design: minimise its criterion over theta.

    `start` is a theta (default lme4's, every T_i = I; for models stored sparse,
    `starting.moment_start`); `hessian` and `scale` (a refit's: its fit's
    `record.hessian` and `record.scale`) see `optimise.optimise` and
    `starting.theta_scale`.
    """
    # The optimiser works on phi = theta / scale (1 for well-scaled columns).
    scale = starting.theta_scale(design) if scale is None else scale
    criterion = optimise.Criterion(products, reml, scale)
    layout = design.layout
    if start is None:   # lme4's, or for a large model one near theta-hat
        start = (starting.moment_start(design) / scale if products.xz.large
                 else layout.start)
    else:
        start = layout.checked(start) / scale
    phi, record = optimise.optimise(criterion, start, layout, method,
                                    x_names=design.X_names, hessian=hessian)
    record.scale = scale
    record.path = [(scale * point, value) for point, value in record.path]
    # Singular in the optimiser's units: an SD of 1e-7 per micro-unit is no
    # boundary.
    singular = checks.is_singular(phi, layout.lower)
    return Estimate(design, products, reml, scale * phi, criterion.solution_at(phi),
                    record, singular)


def refit_theta_hat(estimate, y):
    """The `Estimate` of the same model on a new response y, from `estimate`.

    y must have one finite number per observation of the design.
    """
    design = dataclasses.replace(estimate.design, y=response_like(y, estimate.design))
    record = estimate.record
    # an estimate made without a search (`fitting.fit_at`) is refitted as lmm_ref.fit does
    method = record.method if record.method in optimise.OPTIMIZERS else "L-BFGS-B"
    return theta_hat(design, estimate.products.with_response(design.y), estimate.reml,
                     method, start=estimate.theta, hessian=record.hessian,
                     scale=record.scale)


def response_like(y, design):
    """A new response for `design`: one finite number per observation, or a clear error."""
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise DataTypeError("the new response must be numbers, one per observation") from None
    if y.shape != (design.n,):
        raise DataError(f"the new response has shape {y.shape}; the model was fitted to "
                        f"{design.n} observations, so give {design.n} numbers")
    if not np.all(np.isfinite(y)):
        bad = np.flatnonzero(~np.isfinite(y))
        raise DataError(f"the new response has {bad.size} missing or infinite value(s) (the "
                        f"first at position {bad[0]}); every observation needs a number")
    return y
