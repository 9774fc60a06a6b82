"""lmm_ref.parameters: theta's layout, lme4's names, and the map to SDs and correlations."""

import numpy as np
import pytest

import lmm_ref
from lmm_ref.model_frame import build
from lmm_ref.parameters import ThetaLayout, lower_triangle, semidefinite_cholesky

SLEEP = "Reaction ~ Days + (Days | Subject)"


def test_lower_triangle_is_column_by_column():
    rows, cols = lower_triangle(3)
    assert list(zip(rows, cols)) == [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)]
    with pytest.raises(ValueError):
        rows[0] = 5  # shared by every caller: read-only


def test_layout_of_two_terms_on_one_factor_and_a_third():
    layout = ThetaLayout([(2, "g", ["(Intercept)", "x"]), (1, "g", ["z"]), (1, "h", ["(Intercept)"])])
    assert layout.size == 5
    assert [t.start for t in layout.terms] == [0, 3, 4]
    assert [t.label for t in layout.terms] == ["g", "g.1", "h"]
    assert layout.names == ["g.(Intercept)", "g.x.(Intercept)", "g.x", "g.z", "h.(Intercept)"]
    assert layout.sdcor_names == [".sig01", ".sig02", ".sig03", ".sig04", ".sig05", ".sigma"]
    assert layout.sdcor_labels == ["sd_(Intercept)|g", "cor_x.(Intercept)|g", "sd_x|g",
                                   "sd_z|g.1", "sd_(Intercept)|h", "sigma"]
    np.testing.assert_array_equal(layout.lower, [0, -np.inf, 0, 0, 0])
    np.testing.assert_array_equal(layout.start, [1, 0, 1, 1, 1])
    assert {k: list(v) for k, v in layout.below_diagonal.items()} == {0: [1], 2: [], 3: [], 4: []}
    Ts = layout.T(np.arange(1.0, 6.0))
    np.testing.assert_array_equal(Ts[0], [[1, 0], [2, 3]])
    np.testing.assert_array_equal(layout.from_T(Ts), np.arange(1.0, 6.0))
    with pytest.raises(ValueError, match="theta has 4 entries; this model has a vector of 5"):
        layout.split(np.ones(4))


def test_sdcor_against_the_fit_and_lme4(sleep):
    fit = lmm_ref.fit(SLEEP, sleep)
    layout = fit.design.layout
    sd0, rho, sd1, sigma = layout.sdcor(fit.theta, fit.sigma)      # .sig01, .sig02, .sig03, .sigma
    # varcorr lists the SDs first, then the correlation
    np.testing.assert_allclose([sd0, sd1, rho, sigma], fit.varcorr["sdcor"], rtol=1e-12)
    # lme4's .sig01, .sig02, .sig03, .sigma for this fit (tests/reference/lme4_fits.json)
    ref = lmm_ref.reference.lme4_fit("sleep_slope", True)
    expected = [ref["varcorr"]["Subject"]["sd"]["(Intercept)"],
                ref["varcorr"]["Subject"]["cor"]["(Intercept):Days"],
                ref["varcorr"]["Subject"]["sd"]["Days"], ref["sigma"]]
    np.testing.assert_allclose(layout.sdcor(ref["theta"], ref["sigma"]), expected, rtol=1e-9)


@pytest.mark.parametrize("theta", [[0.9, 0.1, 0.3], [0.9, -1.2, 0.3], [0.0, 0.0, 0.4],
                                   [0.5, 0.7, 0.0], [2.0, 0.0, 0.0]])
def test_theta_from_sdcor_inverts_sdcor(sleep, theta):
    """theta -> (SDs, correlations) -> theta, on the boundary too (a zero SD, or rho = +-1)."""
    layout = build(SLEEP, sleep).layout
    sigma = 17.0
    values = layout.sdcor(theta, sigma)
    back, sigma_back = layout.theta_from_sdcor(np.nan_to_num(values))  # rho undefined if an SD is 0
    assert sigma_back == sigma
    # the same Sigma, and the canonical factor: diagonal >= 0, zero below a zero pivot
    np.testing.assert_allclose(layout.Sigma(back, sigma)[0], layout.Sigma(theta, sigma)[0],
                               rtol=1e-12, atol=1e-12 * sigma**2)
    assert np.all(back[layout.lower == 0] >= 0)
    if theta[0] > 0:
        np.testing.assert_allclose(back, np.where(layout.lower == 0, np.abs(theta), theta), atol=1e-12)


def test_semidefinite_cholesky_of_a_rank_one_matrix():
    v = np.array([2.0, -1.0, 0.5])
    T = semidefinite_cholesky(np.outer(v, v))
    np.testing.assert_allclose(T @ T.T, np.outer(v, v), atol=1e-14)
    np.testing.assert_allclose(T[:, 0], v, atol=1e-14)
    assert np.all(T[:, 1:] == 0)
