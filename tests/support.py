"""What the tests share: the generator of random designs, fitting helpers and the fit
comparator.  (A plain module, not a test module: tests import it, never each other.)
"""

import re
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

import lmm_ref
from lmm_ref import pls, profile
from lmm_ref.products import cross_products

# derandomize: the same examples on every run.  No shrinking: each example is a seed,
# a size and a structure, readable as it is, and shrinking would refit for minutes.
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow])

STRUCTURES = {
    # name: (random part of the formula, number of terms); the fixed part is 1 + x + z
    "intercept": ("(1 | g)", 1),
    "slope": ("(x | g)", 1),
    "uncorrelated": ("(x || g)", 2),
    "crossed": ("(1 | g) + (1 | h)", 2),
    "crossed slopes": ("(x | g) + (z | h)", 2),
    "nested": ("(1 | g/h)", 2),
    "nested slope": ("(x | g) + (1 | g:h)", 2),
    "three levels": ("(1 | g/h/k)", 3),
}


def random_frame(seed, n, structure):
    """Data for `y ~ 1 + x + z + <STRUCTURES[structure]>` with real signal.

    g has 3 to n/8 levels, each with at least 4 rows (6 for three levels); h is crossed
    with g (2 to 6 levels) or nested in it (2 or 3 sub-levels per level of g, numbered
    0, 1, 2 again in every g, so only g:h identifies a sub-group); k is nested in g:h
    the same way, 2 sub-levels each.
    Group sizes are unbalanced (Dirichlet proportions).  The true SDs are 1.5 (g),
    0.5 (slopes), 1 (h, k) against a residual SD of 1, so the variances are
    estimable, but fits on the boundary still happen and are allowed.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=1.0, scale=2.0, size=n)
    z = rng.uniform(-1.0, 3.0, size=n)

    def unbalanced(levels, size, at_least):
        codes = np.concatenate([np.repeat(np.arange(levels), at_least),
                                rng.choice(levels, size=size - at_least * levels,
                                           p=rng.dirichlet(np.ones(levels)))])
        return rng.permutation(codes)

    def nested_in(parent, per_parent, at_least):
        child = np.empty(len(parent), dtype=int)
        for level in np.unique(parent):
            rows = np.flatnonzero(parent == level)
            child[rows] = unbalanced(per_parent, len(rows), at_least)
        return child

    three = structure == "three levels"
    l_g = int(rng.integers(3, n // 8 + 1))
    g = unbalanced(l_g, n, at_least=6 if three else 4)
    effects = 1.5 * rng.normal(size=l_g)[g] + 0.5 * rng.normal(size=l_g)[g] * x
    frame = pd.DataFrame({"x": x, "z": z, "g": [f"g{c}" for c in g]})
    if "crossed" in structure:
        h = unbalanced(int(rng.integers(2, 7)), n, at_least=1)
        frame["h"] = h  # integer codes: a numeric grouping column is a factor too
        effects += rng.normal(size=7)[h] + 0.5 * rng.normal(size=7)[h] * z
    elif "nested" in structure or "three" in structure:
        h = nested_in(g, int(rng.integers(2, 4)), at_least=2 if three else 1)
        frame["h"] = pd.Categorical(h)
        gh = g * 3 + h
        effects += rng.normal(size=3 * l_g)[gh]
        if three:
            k = nested_in(gh, 2, at_least=1)
            frame["k"] = k
            effects += rng.normal(size=6 * l_g)[gh * 2 + k]
    frame["y"] = 10.0 + 0.8 * x - 1.2 * z + effects + rng.normal(size=n)
    return frame, f"y ~ 1 + x + z + {STRUCTURES[structure][0]}"


designs = st.builds(
    lambda seed, n, structure: (seed, n, structure),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(40, 80),
    structure=st.sampled_from(sorted(STRUCTURES)),
)


def random_theta(D, rng, zero_diagonal=()):
    """theta with diagonal entries in (0.05, 3), free ones in (-2, 2), and the diagonal
    entries that `zero_diagonal` marks (True, in turn) set to 0: a boundary point."""
    lower = D.layout.lower
    theta = np.where(lower == 0, rng.uniform(0.05, 3.0, lower.size), rng.uniform(-2.0, 2.0, lower.size))
    diagonal = np.flatnonzero(lower == 0)
    marks = np.zeros(diagonal.size, dtype=bool)
    marks[: len(zero_diagonal)] = list(zero_diagonal)[: diagonal.size]
    theta[diagonal[marks]] = 0.0
    return theta


def solve(D, theta):
    """pls.solve on a design's own cross-products."""
    return pls.solve(cross_products(D), theta)


def criterion(D, theta, reml):
    """The profiled criterion of a design at theta."""
    return profile.criterion_at(cross_products(D), theta, reml)


def fit_quietly(formula, frame, **options):
    """lmm_ref.fit, failing the test if it warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return lmm_ref.fit(formula, frame, **options)


def fit_ignoring_warnings(formula, frame, reml):
    """lmm_ref.fit, ignoring boundary fits and the odd convergence note."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmm_ref.fit(formula, frame, reml=reml)


def fit_with_one_warning(formula, frame, match, **options):
    """lmm_ref.fit that must issue exactly one warning, matching `match`, attributed to
    the line that called lmm_ref.fit (here): a warning points at the user's code."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = lmm_ref.fit(formula, frame, **options)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages
    assert re.search(match, messages[0]), messages[0]
    assert record[0].filename == __file__
    return result


def sds(result):
    """Every SD of the fit (not the correlations), in table order, residual last."""
    table = result.varcorr
    return table[table["var2"].isna()]["sdcor"].to_numpy()


def assert_close(actual, desired, rtol, atol):
    """assert_allclose with an absolute tolerance per entry (e.g. scaled by each SE)."""
    actual, desired = np.asarray(actual, dtype=float), np.asarray(desired, dtype=float)
    bound = rtol * np.abs(desired) + atol
    assert np.all(np.abs(actual - desired) <= bound), (
        f"\n actual  {actual!r}\n desired {desired!r}\n |diff|  {np.abs(actual - desired)!r}"
        f"\n allowed {bound!r}")


def assert_same_fit(a, b, rtol=1e-10, beta_map=None, objective_shift=0.0, same_names=True):
    """Two fits of one model: the same objective and estimates.

    The objective agrees to `rtol` (a's is b's plus `objective_shift`); theta, sigma and
    the SDs to 1000 rtol (a criterion flat at its minimum pins the
    parameters down less tightly than its own value), the fixed effects to that many
    standard errors; `beta_map` turns b's fixed effects into a's parametrisation.
    rtol=0 asks for bit-identical results (the same arithmetic on the same numbers).
    """
    if same_names and beta_map is None:
        assert list(a.fixef.index) == list(b.fixef.index)
    assert a.nobs == b.nobs and a.singular == b.singular
    np.testing.assert_allclose(a.objective, b.objective + objective_shift, rtol=rtol, atol=0)
    loose = 1e3 * rtol
    np.testing.assert_allclose(a.theta, b.theta, rtol=loose, atol=loose)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=loose)
    np.testing.assert_allclose(sds(a), sds(b), rtol=loose, atol=loose * a.sigma)
    beta_b = b.fixef.to_numpy() if beta_map is None else beta_map(b.fixef.to_numpy())
    assert_close(a.fixef, beta_b, rtol=loose, atol=10 * loose * a.stderr.to_numpy())
    if beta_map is None:
        np.testing.assert_allclose(a.stderr, b.stderr, rtol=10 * loose)
