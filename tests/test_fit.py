"""lmm_ref.fit against lme4 1.1-31 (all 14 reference fits) and statsmodels MixedLM.

Tolerances are the design's: objective within 1e-6 relative; fixed effects, standard
errors, sigma and every SD within 1e-4 relative (absolute 1e-4 x sigma for SDs near
zero); correlations within 1e-3; conditional modes within 1e-3 relative.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import lmm_ref
from lmm_ref.reference import dataset_name, fit_label, lme4_fits

REFERENCES = lme4_fits()
IDS = [fit_label(ref) for ref in REFERENCES]


@pytest.fixture(scope="module")
def fits():
    """Each reference model fitted once by lmm_ref, keyed like IDS."""
    return {
        key: lmm_ref.fit(ref["formula"], lmm_ref.data.load(dataset_name(ref)), reml=ref["reml"])
        for key, ref in zip(IDS, REFERENCES)
    }


def close(actual, expected, rtol):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("key, ref", list(zip(IDS, REFERENCES)), ids=IDS)
class TestAgainstLme4:
    def test_objective_and_loglik(self, fits, key, ref):
        fit = fits[key]
        close(fit.objective, ref["objective"], 1e-6)
        close(fit.loglik, ref["loglik"], 1e-6)
        assert fit.nobs == ref["nobs"]

    def test_fixed_effects_and_standard_errors(self, fits, key, ref):
        fit = fits[key]
        assert list(fit.fixef.index) == list(ref["fixef"])
        close(fit.fixef.to_numpy(), list(ref["fixef"].values()), 1e-4)
        close(fit.stderr.to_numpy(), list(ref["stderr"].values()), 1e-4)
        close(np.sqrt(np.diag(fit.vcov.to_numpy())), fit.stderr.to_numpy(), 1e-12)

    def test_sigma_theta_and_singular(self, fits, key, ref):
        fit = fits[key]
        close(fit.sigma, ref["sigma"], 1e-4)
        assert fit.design.layout.names == ref["theta_names"]
        np.testing.assert_allclose(fit.theta, ref["theta"], rtol=1e-4, atol=1e-4)
        assert fit.singular == ref["singular"]

    def test_standard_deviations_and_correlations(self, fits, key, ref):
        fit = fits[key]
        table = fit.varcorr
        for group, entry in ref["varcorr"].items():
            rows = table[table["group"] == group]
            sds = rows[rows["var2"].isna()].set_index(rows[rows["var2"].isna()]["var1"].fillna(group))
            for name, sd in entry["sd"].items():
                np.testing.assert_allclose(sds.loc[name, "sdcor"], sd, rtol=1e-4, atol=1e-4 * fit.sigma)
                np.testing.assert_allclose(sds.loc[name, "vcov"], sd**2, rtol=2e-4, atol=1e-4 * fit.sigma**2)
            for pair, correlation in (entry["cor"] or {}).items():
                var1, var2 = pair.split(":")
                row = rows[(rows["var1"] == var1) & (rows["var2"] == var2)]
                np.testing.assert_allclose(row["sdcor"].item(), correlation, atol=1e-3)

    def test_conditional_modes(self, fits, key, ref):
        fit = fits[key]
        assert set(fit.ranef) == set(ref["ranef"])
        for group, entry in ref["ranef"].items():
            table = fit.ranef[group]
            assert list(table.index) == entry["levels"]
            for column, values in entry["values"].items():
                scale = np.max(np.abs(values))  # relative to the term's largest mode
                np.testing.assert_allclose(table[column].to_numpy(), values, rtol=1e-3, atol=1e-3 * scale)


def test_fitted_and_residuals_add_up(fits):
    fit = fits["sleep_slope-REML"]
    close(fit.fitted + fit.residuals, fit.design.y, 1e-12)
    # fitted = X beta + sum over terms of each subject's b times its covariates
    data = lmm_ref.data.load("sleepstudy")
    modes = fit.ranef["Subject"].loc[data["Subject"].astype(str)].to_numpy()
    by_hand = (fit.fixef["(Intercept)"] + modes[:, 0]) + (fit.fixef["Days"] + modes[:, 1]) * data["Days"]
    close(fit.fitted, by_hand.to_numpy(), 1e-10)


def test_information_criteria(fits):
    fit = fits["sleep_slope-ML"]
    k = 2 + 3 + 1  # fixed effects, theta, sigma
    close(fit.aic, fit.objective + 2 * k, 1e-12)
    close(fit.bic, fit.objective + k * np.log(180), 1e-12)
    with pytest.raises(AttributeError, match="REML"):
        fits["sleep_slope-REML"].deviance
    assert fit.deviance == fit.objective


def test_summary_reads_like_lme4(fits):
    text = str(fits["sleep_slope-REML"])
    for line in [
        "REML criterion at convergence: 1743.6",
        "Number of obs: 180, groups:  Subject, 18",
        "(Intercept)  251.405      6.825  36.838",
        "Days          10.467      1.546   6.771",
        "Days -0.138",
    ]:
        assert line in text
    assert "Subject  (Intercept) 612.09   24.74" in text
    ml = str(fits["sleep_slope-ML"]).splitlines()
    # lme4's numbers (AIC 1763.9, BIC 1783.1, logLik -876.0, deviance 1751.9, 174 df),
    # each right-aligned under its name
    header = ml.index("    AIC    BIC logLik deviance df.resid")
    assert ml[header + 1] == " 1763.9 1783.1 -876.0   1751.9      174"
    assert "boundary (singular) fit" in str(fits["dyestuff2-REML"])


def test_optimizer_record(fits):
    fit = fits["sleep_slope-REML"]
    record = fit.optimizer
    assert record.evaluations == len(record.path) > 10
    assert fit.converged and not record.warnings
    assert np.max(np.abs(record.scaled_gradient)) < 2e-3
    best = min(value for _, value in record.path)
    assert fit.objective <= best + 1e-9


# ---------------------------------------------------------------------------------------
# statsmodels MixedLM, on every reference model it can express
# ---------------------------------------------------------------------------------------

def _statsmodels(model_id, data):
    """The statsmodels spelling of each reference model."""
    if model_id == "sleep_slope":
        return smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="~Days")
    if model_id == "sleep_int":
        return smf.mixedlm("Reaction ~ Days", data, groups="Subject")
    if model_id == "sleep_zerocorr":
        return smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="0",
                           vc_formula={"Intercept": "1", "Days": "0 + Days"})
    if model_id in ("dyestuff", "dyestuff2"):
        return smf.mixedlm("Yield ~ 1", data, groups="Batch")
    if model_id == "penicillin":  # crossed: one all-encompassing group, two components
        return smf.mixedlm("diameter ~ 1", data.assign(all=1), groups="all", re_formula="0",
                           vc_formula={"plate": "0 + C(plate)", "sample": "0 + C(sample)"})
    if model_id == "pastes":  # nested: casks within batch as a variance component
        return smf.mixedlm("strength ~ 1", data, groups="batch", re_formula="1",
                           vc_formula={"cask": "0 + C(cask)"})
    raise KeyError(model_id)


STATSMODELS_CASES = [(ref, key) for ref, key in zip(REFERENCES, IDS) if ref["id"] != "dyestuff2"]


@pytest.mark.parametrize("ref, key", STATSMODELS_CASES, ids=[key for _, key in STATSMODELS_CASES])
def test_against_statsmodels(fits, ref, key):
    data = lmm_ref.data.load(dataset_name(ref))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence chatter
        result = _statsmodels(ref["id"], data).fit(reml=ref["reml"], method=["bfgs"], maxiter=2000, gtol=1e-12)
    fit = fits[key]
    # Both maximise the same likelihood; lmm_ref must never end up worse.
    assert fit.objective <= -2 * result.llf + 1e-6 * abs(fit.objective)
    close(fit.objective, -2 * result.llf, 1e-6)
    close(fit.fixef.to_numpy(), result.fe_params.to_numpy(), 1e-4)
    close(fit.sigma, np.sqrt(result.scale), 1e-4)
    sds = np.sort(fit.varcorr.query("var2 != var2 and group != 'Residual'")["sdcor"].to_numpy())
    statsmodels_sds = np.sort(np.sqrt(np.concatenate([np.diag(np.atleast_2d(result.cov_re)), result.vcomp])))
    np.testing.assert_allclose(sds, statsmodels_sds, rtol=1e-3, atol=1e-3 * fit.sigma)


def test_dyestuff2_boundary_matches_statsmodels(fits):
    """statsmodels also puts the batch variance on the boundary for Dyestuff2."""
    data = lmm_ref.data.load("Dyestuff2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = smf.mixedlm("Yield ~ 1", data, groups="Batch").fit(reml=True)
    fit = fits["dyestuff2-REML"]
    assert fit.theta[0] == 0.0 and fit.singular
    assert float(np.squeeze(result.cov_re)) < 1e-6 * fit.sigma**2
    close(fit.objective, -2 * result.llf, 1e-6)
    close(fit.sigma, np.sqrt(result.scale), 1e-4)


def test_optimizers_agree():
    """Every offered optimiser reaches lme4's optimum on sleepstudy."""
    data = lmm_ref.data.load("sleepstudy")
    ref = lmm_ref.reference.lme4_fit("sleep_slope", True)
    for method in lmm_ref.optimise.OPTIMIZERS:
        fit = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", data, method=method)
        close(fit.objective, ref["objective"], 1e-8)
    with pytest.raises(ValueError, match="unknown method"):
        lmm_ref.fit("Reaction ~ Days + (Days | Subject)", data, method="newton")


def test_ranef_table_types(fits):
    table = fits["pastes-REML"].ranef["batch:cask"]
    assert isinstance(table, pd.DataFrame) and table.shape == (30, 1)
