"""The exact gradient of the profiled criteria (lmm_ref.gradient, chapter 6).

Checked against central differences of the criterion, which share no code with it:
at lme4's estimates and at random points for every reference model, on random designs
of every structure in tests/support.py (boundary points included), on the dense
and the sparse path of the blocked Cholesky factor; and the pieces it is built from
(the selected blocks of A^{-1}, `level_blocks`) against dense computations.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from support import PROPERTY, criterion, designs, random_frame

from lmm_ref import cholesky, data, gradient, optimise, products, pls, starting
from lmm_ref.model_frame import build
from lmm_ref.products import cross_products
from lmm_ref.reference import fit_label, lme4_fits

REFERENCES = lme4_fits()
IDS = [fit_label(ref) for ref in REFERENCES]


def central_differences(D, theta, reml, step=1e-5):
    """The gradient by central differences of the criterion (independent of gradient.py)."""
    h = step * np.maximum(np.abs(theta), 1.0)
    return np.array([
        (criterion(D, theta + h[k] * e, reml) - criterion(D, theta - h[k] * e, reml))
        / (2 * h[k]) for k, e in enumerate(np.eye(len(theta)))
    ])


def assert_gradient_matches(D, theta, reml):
    value, exact = gradient.criterion_and_gradient(cross_products(D), theta, reml)
    assert value == criterion(D, theta, reml)
    np.testing.assert_allclose(exact, central_differences(D, theta, reml), rtol=1e-5, atol=1e-5)


@pytest.fixture(params=[False, True], ids=["dense", "sparse"])
def path(request, monkeypatch):
    """Run a test on the dense and on the sparse path of pls (products.DENSE_LIMIT for the
    other terms' blocks, products.DENSE_Z_LIMIT for Z itself)."""
    if request.param:
        monkeypatch.setattr(products, "DENSE_LIMIT", 0)
        monkeypatch.setattr(products, "DENSE_Z_LIMIT", 0)
    return request.param


@pytest.mark.parametrize("ref", REFERENCES, ids=IDS)
def test_gradient_of_every_reference_model(ref, reference_design):
    """At lme4's estimate (where it is nearly zero off the boundary) and at two other points."""
    D = reference_design(ref)
    rng = np.random.default_rng(7)
    theta_hat = np.asarray(ref["theta"], dtype=float)
    for theta in (theta_hat, D.layout.start, theta_hat + rng.uniform(0.05, 0.5, theta_hat.size)):
        assert_gradient_matches(D, theta, ref["reml"])
    # lme4's optimum: every parameter off its bound has a slope near zero
    _, g = gradient.criterion_and_gradient(cross_products(D), theta_hat, ref["reml"])
    interior = theta_hat - D.layout.lower > 1e-4
    assert np.all(np.abs(g[interior]) < 1e-2), g


@PROPERTY
@given(spec=designs, reml=st.booleans(), sparse=st.booleans(), seed=st.integers(0, 2**16),
       zeros=st.booleans())
def test_gradient_on_random_designs(spec, reml, sparse, seed, zeros):
    """Random structures, both Cholesky paths, and points with some diagonal entries at 0."""
    frame, formula = random_frame(*spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(products, "DENSE_LIMIT", 0 if sparse else 1_000_000)
        patch.setattr(products, "DENSE_Z_LIMIT", 0 if sparse else 1_000_000)
        D = build(formula, frame)
        xz = cross_products(D).xz
        if len(D.terms) > 1:
            assert isinstance(xz.rest, products.SparseRest if sparse else products.DenseRest)
        assert sp.issparse(xz.Z) == sparse
        rng = np.random.default_rng(seed)
        theta = D.layout.start + rng.uniform(-0.5, 1.0, D.layout.start.size)
        if zeros:  # a boundary point: the first diagonal entry of a term set to 0
            theta[np.flatnonzero(D.layout.lower == 0)[:1]] = 0.0
        assert_gradient_matches(D, theta, reml)


def test_gradient_without_fixed_effects(path):
    """p = 0 ('0 +' and no other fixed term): R_X is empty and adds nothing."""
    D = build("Reaction ~ 0 + (Days | Subject)", data.load("sleepstudy"))
    assert D.p == 0
    for reml in (True, False):
        assert_gradient_matches(D, np.array([1.2, -0.3, 0.4]), reml)


def test_gradient_at_zero_is_zero_for_a_scalar_term():
    """d(theta) is even in a scalar term's theta, so the slope at 0 vanishes exactly:
    why a gradient method started there does not move (chapter 6)."""
    D = build("Yield ~ 1 + (1 | Batch)", data.load("Dyestuff"))
    for reml in (True, False):
        _, g = gradient.criterion_and_gradient(cross_products(D), np.array([0.0]), reml)
        assert g[0] == 0.0


def test_inverse_blocks_are_blocks_of_the_dense_inverse(path):
    """Y11's diagonal blocks, Y21 and Y22 against inv(L L') formed densely."""
    D = build("y ~ x + (x | A) + (x + z | B) + (1 | C)", three_factor_frame())
    theta = D.layout.start * 0.8 + 0.15
    L = pls.solve(cross_products(D), theta).L
    assert sp.issparse(L.L21) == path
    Y = np.linalg.inv((L.to_sparse() @ L.to_sparse().T).toarray())
    Y11, Y21, Y22 = L.inverse_blocks()
    q1, p1 = L.q1, L.p1
    dense_Y11 = np.array([Y[j * p1:(j + 1) * p1, j * p1:(j + 1) * p1] for j in range(L.l1)])
    np.testing.assert_allclose(Y11, dense_Y11, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Y21, Y[q1:, :q1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Y22, Y[q1:, q1:], rtol=1e-10, atol=1e-12)


def test_level_blocks_dense_and_sparse_agree():
    """[j, x, y] = sum_r P[r, 3j+x] Q[r, 3j+y], with either factor sparse."""
    rng = np.random.default_rng(3)
    P = rng.normal(size=(7, 12)) * (rng.uniform(size=(7, 12)) < 0.5)
    Q = rng.normal(size=(7, 12)) * (rng.uniform(size=(7, 12)) < 0.5)
    expected = np.array([P[:, 3 * j:3 * j + 3].T @ Q[:, 3 * j:3 * j + 3] for j in range(4)])
    for left, right in ((P, Q), (sp.csr_matrix(P), Q), (P, sp.csr_matrix(Q))):
        np.testing.assert_allclose(cholesky.level_blocks(left, right, 3), expected, atol=1e-12)


def test_fit_with_exact_gradient_matches_finite_difference_fit():
    """L-BFGS-B on the exact gradient and on SciPy's finite differences: one optimum."""
    D = build("Reaction ~ Days + (Days | Subject)", data.load("sleepstudy"))
    exact = optimise.Criterion(cross_products(D), reml=True)
    theta_exact, record_exact = optimise.minimise(exact, D.layout.start, D.layout.lower)
    theta_fd, record_fd = optimise.minimise(lambda t: exact(t), D.layout.start, D.layout.lower)
    assert record_exact.evaluations < record_fd.evaluations / 2
    assert exact(theta_exact) <= exact(theta_fd) + 1e-9
    np.testing.assert_allclose(theta_exact, theta_fd, rtol=1e-4, atol=1e-5)


def three_factor_frame(n=240, seed=11):
    rng = np.random.default_rng(seed)
    frame = {
        "A": rng.integers(0, 20, n).astype(str), "B": rng.integers(0, 6, n).astype(str),
        "C": rng.integers(0, 4, n).astype(str), "x": rng.normal(size=n), "z": rng.normal(size=n),
    }
    frame["y"] = rng.normal(size=n) + frame["x"]
    return pd.DataFrame(frame)


def test_selected_inverse_on_the_pattern_is_the_dense_inverse_there(monkeypatch):
    """The sparse path: [A^-1]_21 only on A21's pattern (lmm_ref.selected), [A^-1]_22 from
    potri, the diagonal blocks of [A^-1]_11; all against inv(L L') formed densely."""
    monkeypatch.setattr(products, "DENSE_LIMIT", 0)
    D = build("y ~ x + (x | A) + (x + z | B) + (1 | C)", three_factor_frame())
    P = cross_products(D)
    pattern = P.xz.rest.pattern
    theta = D.layout.start * 0.8 + 0.15
    L = pls.solve(P, theta).L
    Y = np.linalg.inv((L.to_sparse() @ L.to_sparse().T).toarray())
    Y11, Y21, Y22 = L.inverse_blocks(pattern)
    q1, p1 = L.q1, L.p1
    assert sp.issparse(Y21) and Y21.nnz == len(pattern.indices) < Y21.shape[0] * Y21.shape[1]
    # the pattern holds every entry where A21 can be non-zero
    A21 = np.abs(sp.coo_matrix(L.L21))
    assert set(zip(A21.row, A21.col)) <= set(zip(pattern.indices, pattern.columns))
    rows, cols = pattern.indices, pattern.columns
    np.testing.assert_allclose(np.asarray(Y21[rows, cols]).ravel(), Y[q1:, :q1][rows, cols],
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Y22, Y[q1:, q1:], rtol=1e-9, atol=1e-12)
    dense_Y11 = np.array([Y[j * p1:(j + 1) * p1, j * p1:(j + 1) * p1] for j in range(L.l1)])
    np.testing.assert_allclose(Y11, dense_Y11, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("formula", [
    "y ~ x + (1 | A) + (1 | B) + (1 | C)",             # scalar first term: PatternGram
    "y ~ x + (1 | A) + (x + z | B) + (1 | C)",         # vector later term
    "y ~ x + (x | A) + (x + z | B) + (1 | C)",         # vector first term
])
def test_gradient_from_the_diagonal_of_A_inverse(monkeypatch, formula):
    """eq-grad-diag: with every T_i invertible, the log-determinant part from the
    diagonal blocks of A^{-1} alone equals the pattern route's, and the diagonal
    sums equal those of inv(L L') formed densely; the whole gradient matches central
    differences.  Near a singular T_i the gradient takes the pattern route."""
    monkeypatch.setattr(products, "DENSE_LIMIT", 0)
    D = build(formula, three_factor_frame())
    P = cross_products(D)
    rng = np.random.default_rng(2015)
    theta = D.layout.start * rng.uniform(0.3, 1.5, D.layout.size) + 0.2 * (D.layout.start == 0)
    sol = pls.solve(P, theta)
    assert gradient.invertible(sol.Ts)
    L = sol.L
    Y = np.linalg.inv((L.to_sparse() @ L.to_sparse().T).toarray())
    start = 0
    for term, S in zip(P.xz.terms, L.diagonal_sums(P.xz.terms[1:])):
        blocks = [Y[start + j * term.p: start + (j + 1) * term.p,
                    start + j * term.p: start + (j + 1) * term.p] for j in range(term.n_levels)]
        np.testing.assert_allclose(S, np.sum(blocks, axis=0), rtol=1e-10)
        start += term.q
    by_pattern = gradient.trace_blocks(P.xz.terms, sol.Q, L, P.xz.rest)
    by_diagonal = gradient.trace_blocks_from_diagonal(P.xz.terms, sol.Ts, L)
    for G1, G2 in zip(by_pattern, by_diagonal):
        np.testing.assert_allclose(G2, G1, rtol=1e-9, atol=1e-9 * np.abs(G1).max())
    assert_gradient_matches(D, theta, reml=True)
    theta[D.layout.terms[0].start] = 1e-7                  # T_1 nearly singular
    assert not gradient.invertible(D.layout.T(theta))
    assert_gradient_matches(D, theta, reml=False)


def test_pattern_gram_is_the_sparse_product():
    """selected.PatternGram: M M' on a fixed pattern, with a fallback when M's
    pattern differs (an entry dropped)."""
    from lmm_ref.selected import PatternGram
    rng = np.random.default_rng(2015)
    B = sp.random(40, 90, density=0.1, random_state=rng, format="csr")
    gram = PatternGram(B)
    M = B.copy()
    M.data = rng.normal(size=M.nnz)
    np.testing.assert_allclose(gram.lower(M), np.tril((M @ M.T).toarray()), atol=1e-13)
    M.data[:5] = 0.0
    M.eliminate_zeros()
    np.testing.assert_allclose(gram.lower(M), np.tril((M @ M.T).toarray()), atol=1e-13)


def test_moment_start_is_near_the_optimum_and_leads_to_it():
    """starting.moment_start: for InstEval-like crossed intercepts, a start within
    a factor 3 of theta-hat (with 4 to 20 levels) from which the fit reaches the
    optimum of lme4's start."""
    frame = three_factor_frame(n=600, seed=5)
    rng = np.random.default_rng(2015)
    for g, sd in (("A", 1.0), ("B", 0.6), ("C", 0.3)):
        effects = rng.normal(scale=sd, size=30)
        frame["y"] += effects[frame[g].astype(int)]
    D = build("y ~ x + (1 | A) + (1 | B) + (1 | C)", frame)
    P = cross_products(D)
    start = starting.moment_start(D)
    assert not np.allclose(start, D.layout.start)
    c = optimise.Criterion(P, reml=True)
    from_lme4, _ = optimise.minimise(c, D.layout.start, D.layout.lower)
    from_moments, _ = optimise.minimise(c, start, D.layout.lower)
    np.testing.assert_allclose(from_moments, from_lme4, rtol=1e-4, atol=1e-5)
    assert np.all((start > from_lme4 / 3) & (start < from_lme4 * 3))
