"""Invariants of the fit, as property-based tests on random small designs.

The designs (`support.random_frame`) have one or two grouping factors, crossed or nested,
random slopes, uncorrelated ('||') terms and unbalanced groups.  On them:

* the fit does not depend on the order of the rows or the labels of the levels;
* y -> c y (c > 0) multiplies fixef, every SD and sigma by c and leaves theta alone; the
  ML deviance gains 2 n log c and the REML criterion 2 (n - p) log c, since r^2 gains
  c^2 and log|L|^2, log|R_X|^2 do not change;  y -> y + a changes the intercept only;
* X -> X A (A invertible) leaves the ML deviance, theta, sigma and the fitted values
  alone and maps beta to A^{-1} beta; the REML criterion gains log det(A)^2 =
  2 log|det A|, whatever the sign of det A: R_ZX becomes R_ZX A, so
  R_X' R_X = X'X - R_ZX' R_ZX becomes A' (R_X' R_X) A, whose determinant is
  det(A)^2 |R_X|^2, and log|R_X|^2 gains log det(A)^2 (r^2 and log|L|^2 do not change);
* the same input gives bit-identical results in a fresh process;
* and, underneath them all, the fit is a minimum: Nelder-Mead started from it finds
  nothing lower (a random design can have two local minima, so this is not compared
  with a search from elsewhere).

Invariance of a *fit* holds up to where the optimiser stops: objectives are compared
to 1e-7 relative, parameters to 1e-4 (absolute tolerances scaled by sigma or the
standard errors).  The identities at a fixed theta hold to rounding error and are
checked to 1e-9.  Examples are derandomized: the same designs on every run.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from support import (PROPERTY, STRUCTURES, assert_close, assert_same_fit, criterion, designs,
                     fit_ignoring_warnings as fit, random_frame, sds, solve)

import lmm_ref
from lmm_ref import optimise
from lmm_ref.model_frame import build

# ---------------------------------------------------------------------------------------
# The generator itself
# ---------------------------------------------------------------------------------------

@PROPERTY
@given(designs)
def test_random_frames_are_valid_designs(spec):
    frame, formula = random_frame(*spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped, nothing aliased
        D = build(formula, frame)
    seed, n, structure = spec
    assert D.n == n and D.X_names == ["(Intercept)", "x", "z"]
    assert len(D.terms) == STRUCTURES[structure][1]
    for term in D.terms:
        assert 2 <= term.n_levels < n and term.q < n


# ---------------------------------------------------------------------------------------
# The fit is a minimum
# ---------------------------------------------------------------------------------------

# Designs on which L-BFGS-B once stopped short: at a zero-slope point on or next to the
# bound theta_jj = 0, across a sign change of a column of T_i, with a spoilt curvature
# memory, or after a wild step to theta ~ 1e12 (a LinAlgError in R_X).
@example(spec=(3, 60, "slope"), reml=True)
@example(spec=(4, 52, "crossed"), reml=False)
@example(spec=(3, 49, "crossed slopes"), reml=False)
@example(spec=(1, 43, "nested"), reml=True)
@example(spec=(1, 43, "nested slope"), reml=True)
@example(spec=(5, 55, "slope"), reml=False)
@example(spec=(10, 70, "slope"), reml=False)
@example(spec=(10, 70, "three levels"), reml=True)
@PROPERTY
@given(spec=designs, reml=st.booleans())
def test_fit_is_a_minimum(spec, reml):
    frame, formula = random_frame(*spec)
    result = fit(formula, frame, reml)
    D, lower = result.design, result.design.layout.lower

    def at(theta):
        return criterion(D, theta, reml)

    np.testing.assert_allclose(at(result.theta), result.objective, rtol=1e-12)
    polished, _ = optimise.minimise(at, result.theta, lower, "Nelder-Mead")
    assert at(polished) >= result.objective - 1e-7 * abs(result.objective), (
        f"Nelder-Mead went on from {result.theta} to {polished}")
    assert result.converged


# ---------------------------------------------------------------------------------------
# Row order and level labels
# ---------------------------------------------------------------------------------------

def relabel(frame, rng):
    """Shuffle the rows and give every grouping factor new labels in a new order."""
    frame = frame.iloc[rng.permutation(len(frame))].copy()
    renames = {}
    for column in [c for c in ("g", "h", "k") if c in frame]:
        old = sorted(frame[column].astype(str).unique())
        new = [f"L{code:02d}" for code in rng.permutation(len(old))]
        renames[column] = dict(zip(old, new))
        frame[column] = frame[column].astype(str).map(renames[column])
    return frame, renames


@PROPERTY
@given(designs, st.booleans())
def test_invariant_to_row_order_and_level_labels(spec, reml):
    frame, formula = random_frame(*spec)
    rng = np.random.default_rng(spec[0] + 2)
    shuffled, renames = relabel(frame, rng)
    a, b = fit(formula, frame, reml), fit(formula, shuffled, reml)
    assert_same_fit(a, b, rtol=1e-7)
    assert a.singular == b.singular
    # the fitted values follow their rows
    np.testing.assert_allclose(b.fitted, pd.Series(a.fitted, index=frame.index)[shuffled.index],
                               rtol=1e-4, atol=1e-4 * a.sigma)
    # the conditional modes follow their levels (for single-column factors: g:h's labels change)
    if "g" in renames:
        modes = a.ranef["g"].rename(index=renames["g"]).sort_index()
        np.testing.assert_allclose(b.ranef["g"].sort_index(), modes, rtol=1e-3, atol=1e-3 * a.sigma)


# ---------------------------------------------------------------------------------------
# Scaling and shifting y
# ---------------------------------------------------------------------------------------

@PROPERTY
@given(designs, st.booleans(), st.sampled_from([1e-3, 0.37, 2.5, 40.0, 1e4]))
def test_scaling_y(spec, reml, c):
    frame, formula = random_frame(*spec)
    a = fit(formula, frame, reml)
    b = fit(formula, frame.assign(y=c * frame["y"]), reml)
    n, p = a.nobs, len(a.fixef)
    shift = 2 * (n - p) * np.log(c) if reml else 2 * n * np.log(c)
    # exactly, at any theta: r^2 gains c^2, log|L|^2 and log|R_X|^2 do not move
    np.testing.assert_allclose(criterion(b.design, a.theta, reml),
                               criterion(a.design, a.theta, reml) + shift, rtol=1e-9)
    # and so at the optimum
    np.testing.assert_allclose(b.objective, a.objective + shift, rtol=1e-7, atol=1e-7 * abs(shift))
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.sigma, c * a.sigma, rtol=1e-4)
    np.testing.assert_allclose(sds(b), c * sds(a), rtol=1e-4, atol=1e-4 * c * a.sigma)
    assert_close(b.fixef, c * a.fixef, rtol=1e-4, atol=1e-3 * c * a.stderr.to_numpy())
    np.testing.assert_allclose(b.stderr, c * a.stderr, rtol=1e-3)


@PROPERTY
@given(designs, st.booleans(), st.sampled_from([-250.0, -3.0, 0.5, 1e3]))
def test_shifting_y_changes_only_the_intercept(spec, reml, a_shift):
    frame, formula = random_frame(*spec)
    a = fit(formula, frame, reml)
    b = fit(formula, frame.assign(y=frame["y"] + a_shift), reml)
    np.testing.assert_allclose(criterion(b.design, a.theta, reml),
                               criterion(a.design, a.theta, reml), rtol=1e-9)
    intercept_moved = np.array([a_shift, 0.0, 0.0])
    assert_same_fit(b, a, rtol=1e-7, beta_map=lambda beta: beta + intercept_moved)
    np.testing.assert_allclose(b.stderr, a.stderr, rtol=1e-3)
    np.testing.assert_allclose(b.residuals, a.residuals, rtol=1e-4, atol=1e-4 * a.sigma)


# ---------------------------------------------------------------------------------------
# Re-parameterising X
# ---------------------------------------------------------------------------------------

def invertible(rng, p):
    """A random p x p matrix with condition number below 100, det of either sign, and
    |det| below or above 1 (so the REML shift 2 log|det A| takes either sign too)."""
    while True:
        A = rng.normal(size=(p, p)) + 2 * np.eye(p) * rng.choice([-1.0, 1.0], size=p)
        if np.linalg.cond(A) < 100:
            return A * rng.choice([0.1, 3.0])


@example(spec=(24392139, 71, "intercept"), reml=False)  # once stuck at theta = 0
@PROPERTY
@given(spec=designs, reml=st.booleans())
def test_reparameterising_X(spec, reml):
    """X -> X A: ML unchanged, REML + 2 log|det A|, beta -> A^{-1} beta, fitted unchanged."""
    frame, formula = random_frame(*spec)
    random_part = formula.split(" + ", 3)[3]
    X = np.column_stack([np.ones(len(frame)), frame["x"], frame["z"]])
    A = invertible(np.random.default_rng(spec[0] + 3), 3)
    XA = X @ A
    original = frame.assign(c0=X[:, 0], c1=X[:, 1], c2=X[:, 2])
    transformed = frame.assign(c0=XA[:, 0], c1=XA[:, 1], c2=XA[:, 2])
    new_formula = f"y ~ 0 + c0 + c1 + c2 + {random_part}"
    a, b = fit(new_formula, original, reml), fit(new_formula, transformed, reml)

    log_det_A2 = 2 * np.log(abs(np.linalg.det(A)))  # log det(A)^2
    shift = log_det_A2 if reml else 0.0
    # at a fixed theta, to rounding error
    np.testing.assert_allclose(criterion(b.design, a.theta, reml),
                               criterion(a.design, a.theta, reml) + shift, rtol=1e-9)
    at_a, at_b = solve(a.design, a.theta), solve(b.design, a.theta)
    np.testing.assert_allclose(at_b.logdet_RX2, at_a.logdet_RX2 + log_det_A2,
                               rtol=1e-9, atol=1e-9 * abs(log_det_A2))
    # at the optimum
    A_inv = np.linalg.inv(A)
    assert_same_fit(b, a, rtol=1e-7, beta_map=lambda beta: A_inv @ beta, objective_shift=shift)
    np.testing.assert_allclose(b.fitted, a.fitted, rtol=1e-5, atol=1e-4 * a.sigma)
    np.testing.assert_allclose(b.vcov.to_numpy(), A_inv @ a.vcov.to_numpy() @ A_inv.T,
                               rtol=1e-3, atol=1e-6 * np.abs(b.vcov.to_numpy()).max())
    # the columns c0, c1, c2 of `original` are the formula's own X, bit for bit
    np.testing.assert_array_equal(build(formula, frame).X, X)


# ---------------------------------------------------------------------------------------
# Bit-identical in a fresh process
# ---------------------------------------------------------------------------------------

FRESH_FIT = """
import json, sys, warnings
import pandas as pd
import lmm_ref
warnings.simplefilter("ignore")
out = []
for formula, path, reml in json.loads(sys.argv[1]):
    frame = pd.read_pickle(path) if path else lmm_ref.data.load("sleepstudy")
    fit = lmm_ref.fit(formula, frame, reml=reml)
    out.append([repr(fit.objective), [repr(float(t)) for t in fit.theta],
                [repr(float(b)) for b in fit.fixef], repr(fit.sigma)])
print(json.dumps(out))
"""


def fingerprint(result):
    return [repr(result.objective), [repr(float(t)) for t in result.theta],
            [repr(float(b)) for b in result.fixef], repr(result.sigma)]


def test_bit_identical_in_a_fresh_process(tmp_path):
    cases = [("Reaction ~ Days + (Days | Subject)", "", True)]
    for structure, reml in [("crossed slopes", False), ("three levels", True)]:
        frame, formula = random_frame(12345, 70, structure)
        path = tmp_path / f"{structure.replace(' ', '_')}.pkl"
        frame.to_pickle(path)
        cases.append((formula, str(path), reml))
    here = []
    for formula, path, reml in cases:
        frame = pd.read_pickle(path) if path else lmm_ref.data.load("sleepstudy")
        here.append(fingerprint(fit(formula, frame, reml)))
    for hash_seed in ("0", "4242"):  # set iteration order must not matter either
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        done = subprocess.run([sys.executable, "-c", FRESH_FIT, json.dumps(cases)],
                              capture_output=True, text=True, env=env, timeout=300, check=True)
        assert json.loads(done.stdout) == here
