"""Simulating responses from a fitted model (chapter 7).

    y* = X beta-hat + o + Z Lambda(theta-hat) u* + e*,
    u* ~ N(0, sigma-hat^2 I),   e* ~ N(0, sigma-hat^2 W^-1),

new random effects and new noise for every replicate, as lme4's `simulate` does by
default.  The parametric bootstrap of chapter 8 refits the model to such responses.
"""

import numbers

import numpy as np


def simulate(fit, nsim=1, seed=None):
    """An (n, nsim) array of responses drawn from the fitted model."""
    whole = isinstance(nsim, numbers.Integral) and not isinstance(nsim, bool)
    if not whole or nsim < 1:
        raise ValueError(f"nsim must be a whole number of at least 1, "
                         f"not {nsim!r}")
    rng = np.random.default_rng(seed)
    design = fit.design
    mean = design.X @ fit.fixef.to_numpy() + design.offset
    u = fit.sigma * rng.standard_normal((design.q, nsim))
    e = fit.sigma * rng.standard_normal((design.n, nsim))
    noise = e / np.sqrt(design.weights)[:, None]
    b = design.Lambda(fit.theta) @ u
    return mean[:, None] + design.Z @ b + noise
