"""Predictions, prediction intervals and simulation (lmm_ref.predict, .simulate; chapter 7).

predict against lme4's predict (tests/reference: crossed, nested, zero-correlation,
unbalanced, offset; re_form None, NA and single terms; new levels) at lme4's estimates to
1e-8 relative; predict(data) equals fitted; the prediction variance against Henderson's
equations and by simulation; simulate's mean and covariance against the model's.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from support import fit_quietly

import lmm_ref
from lmm_ref import fitting, marginal
from lmm_ref.errors import DataError, DataTypeError, FormulaError
from lmm_ref.reference import lme4_fit, lme4_inference, lme4_more, reference_data

SLEEP = "Reaction ~ Days + (Days | Subject)"
FORMULAS = {
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "sleep_zerocorr": ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
    "pastes": ("Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
    "unb_slope": ("sleepstudy_unbalanced", SLEEP),
    "sleep_o": ("sleepstudy", "Reaction ~ Days + offset(o) + (Days | Subject)"),
    "sleep_slope": ("sleepstudy", SLEEP),
}
CASES = lme4_more()["predict"] + [dict(case, id="sleep_slope") for case in lme4_inference()["predict"]]


@pytest.fixture(scope="module")
def fits():
    out = {}
    for model_id, (dataset, formula) in FORMULAS.items():
        fit = lmm_ref.fit(formula, reference_data(dataset))
        out[model_id] = (fit, fitting.fit_at(fit, lme4_fit(model_id, True)["theta"]))
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['re_form']}" for c in CASES])
def test_predict_against_lme4(fits, case):
    own, at_lme4 = fits[case["id"]]
    newdata = pd.DataFrame(case["newdata"])
    values = at_lme4.predict(newdata, re_form=case["re_form"],
                             allow_new_levels=case["allow_new_levels"])
    np.testing.assert_allclose(values, case["values"], rtol=1e-8)
    # and lmm_ref's own fit, to the precision its estimates share with lme4's
    own_values = own.predict(newdata, re_form=case["re_form"], allow_new_levels=True)
    np.testing.assert_allclose(own_values, case["values"], rtol=1e-4)


@pytest.mark.parametrize("model_id", list(FORMULAS))
def test_predict_on_the_data_is_fitted(fits, model_id):
    fit, _ = fits[model_id]
    np.testing.assert_array_equal(fit.predict(), fit.fitted)
    np.testing.assert_allclose(fit.predict(fit.design.data), fit.fitted, rtol=1e-12)
    # re_form = "NA": the population part X beta + o
    population = fit.design.X @ fit.fixef.to_numpy() + fit.design.offset
    np.testing.assert_allclose(fit.predict(re_form="NA"), population, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(re_form="~0"), population, rtol=1e-12)


def test_re_form_selects_columns_as_lme4(fits):
    """~(1 | Subject) on (Days | Subject): the intercept modes only."""
    fit, _ = fits["sleep_slope"]
    data = fit.design.data
    modes = fit.ranef["Subject"].loc[data["Subject"].astype(str)].to_numpy()
    expected = fit.fixef["(Intercept)"] + modes[:, 0] + fit.fixef["Days"] * data["Days"]
    np.testing.assert_allclose(fit.predict(data, re_form="~(1 | Subject)"), expected, rtol=1e-12)


def test_fixed_factor_levels_are_encoded_as_in_the_fit():
    frame = lmm_ref.data.load("Orthodont")
    fit = lmm_ref.fit("distance ~ age * Sex + (age | Subject)", frame)
    new = pd.DataFrame({"age": [9.0, 9.0], "Sex": ["Female", "Male"], "Subject": ["F01", "M01"]})
    beta = fit.fixef
    expected_population = [beta["(Intercept)"] + beta["Sex[T.Female]"] + 9 * (beta["age"] + beta["age:Sex[T.Female]"]),
                           beta["(Intercept)"] + 9 * beta["age"]]
    np.testing.assert_allclose(fit.predict(new, re_form="NA"), expected_population, rtol=1e-12)
    with pytest.raises(DataError, match=r"column 'Sex' has the level\(s\) Other, which the fit never saw"):
        fit.predict(new.assign(Sex=["Other", "Male"]), re_form="NA")


BAD = [
    ("missing column", lambda d: d.drop(columns="Days"), {}, DataError, "no column 'Days'"),
    ("new level", lambda d: d.assign(Subject="999"), {}, DataError,
     "level\\(s\\) 999 of the grouping factor 'Subject'.*allow_new_levels=True"),
    ("unknown term", lambda d: d, {"re_form": "~(1 | Day)"}, FormulaError,
     "grouping factor 'Day', which no term of the model has"),
    ("unknown column", lambda d: d, {"re_form": "~(0 + Reaction | Subject)"}, FormulaError,
     "column\\(s\\) Reaction of 'Subject'"),
    ("no tilde", lambda d: d, {"re_form": "(1 | Subject)"}, FormulaError, "must start with '~'"),
    ("not a frame", lambda d: d.to_numpy(), {}, DataTypeError, "must be a pandas DataFrame"),
]


@pytest.mark.parametrize("case, make, options, error, message", BAD, ids=[b[0] for b in BAD])
def test_bad_newdata_is_named(fits, sleep, case, make, options, error, message):
    fit, _ = fits["sleep_slope"]
    with pytest.raises(error, match=message):
        fit.predict(make(sleep.head(5)), **options)


def test_missing_values_give_nan_with_a_warning(fits, sleep):
    fit, _ = fits["sleep_slope"]
    new = sleep.head(4).copy()
    new.loc[1, "Days"] = np.nan
    with pytest.warns(UserWarning, match="1 row\\(s\\) of newdata have missing values"):
        values = fit.predict(new)
    assert np.isnan(values[1]) and np.all(np.isfinite(values[[0, 2, 3]]))
    np.testing.assert_allclose(values[[0, 2, 3]], fit.fitted[[0, 2, 3]], rtol=1e-12)


def test_prediction_variance_against_hendersons_equations(fits):
    """se^2 = sigma^2 [x; Lambda'z]' M^-1 [x; Lambda'z] + sigma^2 for a known subject, and
    x'Var(beta)x + z'Sigma_S z + sigma^2 for a new one."""
    fit, _ = fits["unb_slope"]
    D = fit.design
    new = pd.DataFrame({"Days": [2.0, 7.5], "Subject": ["309", "999"]})
    table = fit.predict_interval(new, allow_new_levels=True, level=0.9)
    ZL = D.Z.toarray() @ D.Lambda(fit.theta).toarray()
    M = np.block([[ZL.T @ ZL + np.eye(D.q), ZL.T @ D.X], [D.X.T @ ZL, D.X.T @ D.X]])
    x = np.array([1.0, 2.0])
    z = np.zeros(D.q)
    j = list(fit.ranef["Subject"].index).index("309")
    z[2 * j: 2 * j + 2] = x                                  # the subject's intercept and slope
    w = np.concatenate([D.Lambda(fit.theta).toarray().T @ z, x])
    expected = np.sqrt(fit.sigma**2 * w @ np.linalg.solve(M, w) + fit.sigma**2)
    np.testing.assert_allclose(table["se"].iloc[0], expected, rtol=1e-10)
    x_new = np.array([1.0, 7.5])
    (Sigma_S,) = D.layout.Sigma(fit.theta, fit.sigma)
    expected_new = np.sqrt(x_new @ fit.vcov.to_numpy() @ x_new + x_new @ Sigma_S @ x_new + fit.sigma**2)
    np.testing.assert_allclose(table["se"].iloc[1], expected_new, rtol=1e-10)
    z90 = 1.6448536269514722
    np.testing.assert_allclose(table["upper"] - table["fit"], z90 * table["se"], rtol=1e-10)


def test_prediction_intervals_cover_new_observations():
    """Simulate from a known model, fit, and predict new observations of the same subjects
    (the same true random effects) and of new subjects: about `level` of them fall in
    their intervals.  Seeded; the tolerance is three binomial standard errors plus 0.02
    for plugging in theta-hat."""
    rng = np.random.default_rng(2015)
    template = lmm_ref.data.load("sleepstudy")
    truth = lmm_ref.fit(SLEEP, template)
    beta, (Sigma_S,) = truth.fixef.to_numpy(), truth.design.layout.Sigma(truth.theta, truth.sigma)
    subjects = truth.ranef["Subject"].index
    x_of_days = lambda days: np.column_stack([np.ones_like(days), days])
    covered = {"known": 0, "new": 0}
    total = 0
    for _ in range(40):
        b = rng.multivariate_normal(np.zeros(2), Sigma_S, size=len(subjects))
        codes = template["Subject"].cat.codes.to_numpy()
        X = x_of_days(template["Days"].to_numpy(dtype=float))
        y = X @ beta + np.sum(X * b[codes], axis=1) + rng.normal(scale=truth.sigma, size=len(X))
        fit = lmm_ref.fit(SLEEP, template.assign(Reaction=y))
        new_x = x_of_days(np.full(len(subjects), 4.5))
        y_known = new_x @ beta + np.sum(new_x * b, axis=1) + rng.normal(scale=truth.sigma, size=len(subjects))
        b_other = rng.multivariate_normal(np.zeros(2), Sigma_S, size=len(subjects))
        y_other = new_x @ beta + np.sum(new_x * b_other, axis=1) + rng.normal(scale=truth.sigma, size=len(subjects))
        known = fit.predict_interval(pd.DataFrame({"Days": 4.5, "Subject": subjects}), level=0.8)
        new_subjects = pd.DataFrame({"Days": np.full(len(subjects), 4.5), "Subject": "new"})
        other = fit.predict_interval(new_subjects, allow_new_levels=True, level=0.8)
        covered["known"] += np.sum((y_known > known["lower"]) & (y_known < known["upper"]))
        covered["new"] += np.sum((y_other > other["lower"]) & (y_other < other["upper"]))
        total += len(subjects)
    for kind, count in covered.items():
        assert abs(count / total - 0.8) < 3 * np.sqrt(0.8 * 0.2 / total) + 0.02, (kind, count / total)


def test_simulate_has_the_models_mean_and_covariance():
    fit = lmm_ref.fit("Yield ~ 1 + (1 | Batch)", lmm_ref.data.load("Dyestuff"))
    nsim = 20000
    y = fit.simulate(nsim, seed=2015)
    D = fit.design
    mean = D.X @ fit.fixef.to_numpy()
    V = marginal.V(D, fit.theta, fit.sigma)
    # the sample mean within 4 standard errors, entry by entry
    se_mean = np.sqrt(np.diag(V) / nsim)
    assert np.all(np.abs(y.mean(axis=1) - mean) < 4 * se_mean)
    # the sample covariance: each entry's SE is sqrt((V_ii V_jj + V_ij^2) / nsim)
    S = np.cov(y)
    se_cov = np.sqrt((np.outer(np.diag(V), np.diag(V)) + V**2) / nsim)
    assert np.max(np.abs(S - V) / se_cov) < 5
    # and within a batch the observations are correlated, across batches not
    assert S[0, 1] > 0.5 * V[0, 1] and abs(S[0, 5]) < 5 * se_cov[0, 5]


def test_simulate_is_seeded_and_checks_nsim(fits):
    fit, _ = fits["sleep_o"]
    np.testing.assert_array_equal(fit.simulate(3, seed=7), fit.simulate(3, seed=7))
    assert not np.array_equal(fit.simulate(1, seed=7), fit.simulate(1, seed=8))
    assert fit.simulate(2, seed=1).shape == (180, 2)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="nsim must be a whole number of at least 1"):
            fit.simulate(bad)


def test_simulate_with_weights_and_an_offset():
    """Each response's variance is the diagonal of V = Z Sigma Z' + sigma^2 W^-1, and its
    mean X beta + o (four standard errors, row by row)."""
    frame = reference_data("sleepstudy")
    fit = fit_quietly("Reaction ~ Days + offset(o) + (Days | Subject)", frame, weights="w")
    nsim = 4000
    y = fit.simulate(nsim, seed=3)
    D = fit.design
    variance = np.diag(marginal.V(D, fit.theta, fit.sigma))
    mean = D.X @ fit.fixef.to_numpy() + D.offset
    assert np.all(np.abs(y.mean(axis=1) - mean) < 4 * np.sqrt(variance / nsim))
    assert np.all(np.abs(y.var(axis=1) / variance - 1) < 5 * np.sqrt(2 / nsim))
