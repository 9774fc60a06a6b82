"""Inference (chapter 8): anova, profile and Wald intervals, Satterthwaite df, bootstrap.

Against lme4 1.1-31 and lmerTest 3.1.3 (tests/reference/lme4_inference.json and
lme4_more.json): anova to 1e-6; Wald to 1e-6; profile limits to 1e-3 of the interval's
width; Satterthwaite df to 1e-3 relative (at lme4's estimates they agree to 1e-7).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import lmm_ref
from lmm_ref import fitting, lrt, zeta
from lmm_ref.errors import DataError
from lmm_ref.reference import lme4_fit, lme4_inference, lme4_more, reference_data

DATASETS = {
    "sleep_slope": "sleepstudy", "sleep_int": "sleepstudy", "sleep_zerocorr": "sleepstudy",
    "sleep_w": "sleepstudy", "dyestuff": "Dyestuff", "dyestuff2": "Dyestuff2",
    "penicillin": "Penicillin", "pastes": "Pastes", "unb_slope": "sleepstudy_unbalanced",
    "unb_zerocorr": "sleepstudy_unbalanced", "orthodont_slope": "Orthodont",
    "orthodont_int": "Orthodont", "oats_split": "Oats", "machines_nested": "Machines",
    "chick_slope": "ChickWeight",
}


def lmm_formula(formula):
    """An R formula with lme4's a/b nesting written out (lmm_ref names a:b as lme4 does)."""
    return (formula.replace("(1 | Worker/Machine)", "(1 | Worker) + (1 | Machine:Worker)")
            .replace("(1 | Block/Variety)", "(1 | Block) + (1 | Variety:Block)"))


def fit_case(model_id, formula, reml):
    weights = "w" if model_id == "sleep_w" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmm_ref.fit(lmm_formula(formula), reference_data(DATASETS[model_id]), reml=reml,
                           weights=weights)


def lme4_names(names, fit):
    """lmm_ref's fixed-effect names as lme4 writes them: Sex[T.Female] -> SexFemale."""
    return [name.replace("[T.", "").replace("]", "") for name in names]


# ---------------------------------------------------------------------------------------
# anova
# ---------------------------------------------------------------------------------------

ANOVA_DATA = {"sleep_int_slope_reml_refit": "sleepstudy", "sleep_three": "sleepstudy",
              "sleep_int_slope_reml_norefit": "sleepstudy", "unb_int_slope": "sleepstudy_unbalanced",
              "penicillin_sample": "Penicillin", "orthodont_interaction": "Orthodont",
              "machines_nested": "Machines", "oats_split": "Oats",
              "sleep_int_vs_slope_ML": "sleepstudy", "sleep_fixed_days_ML": "sleepstudy"}
ANOVA = lme4_more()["anova"] + [
    dict(case, formulas=[case["formula0"], case["formula1"]], reml=[case["reml0"], case["reml1"]],
         refit=True, Chisq=[None, case["Chisq"]], Df=[None, case["Df"]], p=[None, case["p"]])
    for case in lme4_inference()["anova"]]


@pytest.mark.parametrize("case", ANOVA, ids=[case["id"] for case in ANOVA])
def test_anova_against_lme4(case):
    frame = reference_data(ANOVA_DATA[case["id"]])
    fits = [lmm_ref.fit(lmm_formula(f), frame, reml=r) for f, r in zip(case["formulas"], case["reml"])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = lmm_ref.anova(*fits, refit=case["refit"])
    refitted = any(case["reml"]) and case["refit"]
    assert any("refitting model(s) with ML" in str(w.message) for w in caught) == refitted
    for column, key in [("npar", "npar"), ("AIC", "AIC"), ("BIC", "BIC"), ("logLik", "logLik"),
                        ("deviance", "deviance"), ("Chisq", "Chisq"), ("Df", "Df"),
                        ("Pr(>Chisq)", "p")]:
        expected = np.array([np.nan if v is None else v for v in case[key]], dtype=float)
        np.testing.assert_allclose(table[column].to_numpy(dtype=float), expected, rtol=1e-6)


def test_anova_orders_models_by_npar_and_tests_the_boundary(sleep):
    slope = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    intercept = lmm_ref.fit("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    table = lmm_ref.anova(slope, intercept, boundary=True)
    assert list(table["npar"]) == [4, 6]
    chisq, p = table["Chisq"].iloc[1], table["Pr(>Chisq)"].iloc[1]
    # one new variance (on the boundary under the null) and one covariance:
    # 1/2 chi^2_1 + 1/2 chi^2_2, whose tail is smaller than chi^2_2's
    import scipy.stats as st
    mixture = 0.5 * st.chi2.sf(chisq, 1) + 0.5 * st.chi2.sf(chisq, 2)
    np.testing.assert_allclose(table["Pr(>Chisq) boundary"].iloc[1], mixture, rtol=1e-12)
    assert mixture < p
    np.testing.assert_allclose(lrt.chibar_pvalue(2.71, 1), 0.5 * st.chi2.sf(2.71, 1), rtol=1e-12)


def test_anova_refuses_what_it_cannot_compare(sleep):
    full = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep)
    with pytest.warns(UserWarning, match="no observations"):
        other_rows = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep.iloc[:170])
    with pytest.raises(DataError, match="not fitted to the same data.*180 observations.*170"):
        lmm_ref.anova(full, other_rows)
    shifted = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep.assign(Reaction=sleep["Reaction"] + 1))
    with pytest.raises(DataError, match="with a different response"):
        lmm_ref.anova(full, shifted)
    no_days = lmm_ref.fit("Reaction ~ 1 + (Days | Subject)", sleep)
    with pytest.raises(ValueError, match="refit=False compares REML criteria.*the same fixed effects"):
        lmm_ref.anova(no_days, full, refit=False)
    with pytest.raises(ValueError, match="two or more"):
        lmm_ref.anova(full)


def test_anova_of_non_nested_models_says_what_it_cannot_conclude(sleep):
    days = lmm_ref.fit("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    log_days = lmm_ref.fit("Reaction ~ ld + (1 | Subject)", sleep.assign(ld=np.log1p(sleep["Days"])), reml=False)
    slope = lmm_ref.fit("Reaction ~ ld + (0 + Days | Subject)", sleep.assign(ld=np.log1p(sleep["Days"])), reml=False)
    with pytest.warns(UserWarning, match="does not appear to be nested.*AIC and BIC"):
        table = lmm_ref.anova(days, slope)
    assert np.isnan(table["Pr(>Chisq)"].iloc[1]) and np.isfinite(table["AIC"]).all()
    assert lrt.nested(days, lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep, reml=False))
    assert not lrt.nested(days, log_days)


# ---------------------------------------------------------------------------------------
# profile and Wald intervals
# ---------------------------------------------------------------------------------------

SHARED_CONFINT = {"sleep_slope_REML": "sleep_slope", "dyestuff_ML": "dyestuff"}
CONFINT = [(SHARED_CONFINT[c["id"]], c["formula"], c["reml"], list(c["profile"]),
            np.array(list(c["profile"].values())), c["wald"]) for c in lme4_inference()["confint"]]
CONFINT += [(c["id"], c["formula"], c["reml"], c["profile_names"], np.array(list(c["profile"].values())),
             dict(zip([c["wald_names"]] if isinstance(c["wald_names"], str) else c["wald_names"],
                      c["wald"].values())))
            for c in lme4_more()["confint"]]


@pytest.mark.parametrize("model_id, formula, reml, names, limits, wald", CONFINT,
                         ids=[f"{c[0]}-{'REML' if c[2] else 'ML'}" for c in CONFINT])
def test_profile_and_wald_intervals_against_lme4(model_id, formula, reml, names, limits, wald):
    fit = fit_case(model_id, formula, reml)
    table = fit.confint(method="profile")
    assert lme4_names(list(table.index), fit) == names
    assert list(table.columns) == ["2.5 %", "97.5 %"]
    width = limits[:, 1] - limits[:, 0]
    error = np.abs(table.to_numpy() - limits) / width[:, None]
    assert np.all(error < 1e-3), pd.DataFrame(error, index=table.index)
    # Wald limits are beta-hat -+ z SE: at lme4's estimates to 1e-6, at lmm_ref's own
    # optimum to what the two optima share
    wald_table = fit.confint(method="Wald")
    at_lme4 = fitting.fit_at(fit, lme4_fit(model_id, reml)["theta"]).confint(method="Wald")
    assert wald_table.iloc[: fit.design.layout.size + 1].isna().all().all()
    for name, (low, high) in wald.items():
        (ours,) = [n for n in wald_table.index if lme4_names([n], fit) == [name]]
        np.testing.assert_allclose(at_lme4.loc[ours].to_numpy(), [low, high], rtol=1e-6)
        np.testing.assert_allclose(wald_table.loc[ours].to_numpy(), [low, high],
                                   atol=1e-3 * (high - low))


def test_the_zeta_profile_against_lme4():
    """lme4's profile(fm) of the sleep study, REML (profiled on the ML deviance): our zeta
    at lme4's points, for every parameter."""
    reference = lme4_more()["profile"]
    fit = fit_case("sleep_slope", "Reaction ~ Days + (Days | Subject)", True)
    profiler = zeta.Profiler(fit)
    zetas, parameters, values = (np.array(reference["zeta"]), reference["par"],
                                 np.array(reference["focal"]))
    for index in range(0, len(zetas), 2):                      # a spread of points
        k = profiler.names.index(parameters[index])
        ours = profiler.zeta(k, values[index])
        if abs(zetas[index]) < 3.5:                            # where intervals live
            np.testing.assert_allclose(ours, zetas[index], atol=2e-3)
        else:  # far out lme4's optimiser can stop short; the profile is a minimum
            assert abs(ours) <= abs(zetas[index]) + 2e-3
    # and the 90% profile intervals
    ninety = fit.confint(method="profile", level=0.9)
    limits = np.array(list(reference["level90"].values()))
    width = limits[:, 1] - limits[:, 0]
    assert list(ninety.columns) == ["5 %", "95 %"]
    assert np.all(np.abs(ninety.to_numpy() - limits) < 1e-3 * width[:, None])


def test_profile_table_is_monotone_and_straight_for_a_fixed_effect(sleep):
    fit = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep)
    table = fit.profile()
    for name, rows in table.groupby("parameter", observed=True):
        assert np.all(np.diff(rows["zeta"]) > 0), name           # zeta increases
        assert (rows["zeta"] == 0).sum() == 1                     # through the estimate
    days = table[table["parameter"] == "Days"]
    central = days[days["zeta"].abs() < 1]
    slope = np.polyfit(central["value"], central["zeta"], 1)[0]
    ml = fit.refit_ml()
    se_ml = ml.stderr["Days"]
    # a fixed effect's profile has slope 1 / SE (ML) at the estimate, and bends towards
    # the axis further out, as a t statistic's tails are longer than a normal's
    np.testing.assert_allclose(slope, 1 / se_ml, rtol=0.03)
    wald_z = (days["value"] - ml.fixef["Days"]) / se_ml
    outer = days["zeta"].abs() > 2
    assert np.all(days["zeta"][outer].abs() < wald_z[outer].abs())


def test_singular_fit_has_a_lower_limit_of_zero():
    fit = lmm_ref.fit("Yield ~ 1 + (1 | Batch)", lmm_ref.data.load("Dyestuff2"))
    table = fit.confint()
    assert fit.singular and table.loc[".sig01", "2.5 %"] == 0.0 and table.loc[".sig01", "97.5 %"] > 0


def test_confint_checks_its_arguments(sleep):
    fit = lmm_ref.fit("Reaction ~ Days + (1 | Subject)", sleep)
    for level in (0, 1, 1.5, -0.1, "0.95"):
        with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
            fit.confint(method="Wald", level=level)
    with pytest.raises(ValueError, match="unknown method 'profil'; choose one of profile, Wald, boot"):
        fit.confint(method="profil")


def test_a_profile_point_that_fails_is_reported_and_the_rest_kept(sleep, monkeypatch):
    fit = lmm_ref.fit("Reaction ~ Days + (1 | Subject)", sleep)
    real = zeta.Profiler.profiled_deviance

    def fails_for_sigma(self, k, value):
        if self.names[k] == ".sigma" and value > self.estimates[k]:
            raise np.linalg.LinAlgError("the 2-th leading minor is not positive definite")
        return real(self, k, value)

    monkeypatch.setattr(zeta.Profiler, "profiled_deviance", fails_for_sigma)
    with pytest.warns(UserWarning, match=r"profiling \.sigma failed at .*leading minor"):
        table = fit.confint()
    assert np.isnan(table.loc[".sigma", "97.5 %"]) and np.isfinite(table.loc[".sigma", "2.5 %"])
    assert table.drop(index=".sigma").notna().all().all()


# ---------------------------------------------------------------------------------------
# Satterthwaite's degrees of freedom
# ---------------------------------------------------------------------------------------

SATT = lme4_more()["satterthwaite"] + [dict(c, id="sleep_slope") for c in lme4_inference()["satterthwaite"]]


@pytest.mark.parametrize("case", SATT, ids=[f"{c['id']}-{'REML' if c['reml'] else 'ML'}-{k}" for k, c in enumerate(SATT)])
def test_satterthwaite_against_lmertest(case):
    fit = fit_case(case["id"], case["formula"], case["reml"])
    key = "df" if "df" in case else "df_satterthwaite"
    expected_df = np.atleast_1d(case[key])
    at_lme4 = fitting.fit_at(fit, lme4_fit(case["id"], case["reml"])["theta"])
    table = at_lme4.coef_table()
    assert list(table.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    np.testing.assert_allclose(table["df"], expected_df, rtol=1e-6)
    p_key = "p" if "p" in case else "p_satterthwaite"
    np.testing.assert_allclose(table["Pr(>|t|)"], np.atleast_1d(case[p_key]), rtol=1e-5)
    # and at lmm_ref's own estimates, to the tolerance
    np.testing.assert_allclose(fit.coef_table()["df"], expected_df, rtol=1e-3)


def test_satterthwaite_df_of_a_balanced_design_is_the_classical_one(sleep):
    """For balanced (Days | Subject) data the slope's t test has 18 - 1 = 17 df."""
    fit = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_allclose(fit.coef_table()["df"], 17, rtol=1e-3)
    with pytest.raises(ValueError, match="Kenward-Roger's are not implemented"):
        fit.coef_table(ddf="Kenward-Roger")


# ---------------------------------------------------------------------------------------
# The parametric bootstrap
# ---------------------------------------------------------------------------------------

def test_bootstrap_is_seeded_and_keeps_every_replicate(sleep):
    fit = lmm_ref.fit("Reaction ~ Days + (1 | Subject)", sleep)
    first = fit.bootstrap(20, seed=5)
    pd.testing.assert_frame_equal(first, fit.bootstrap(20, seed=5))
    assert len(first) == 20 and not first.equals(fit.bootstrap(20, seed=6))
    assert {".sig01", ".sigma", "(Intercept)", "Days", "singular", "failed", "message"} <= set(first.columns)
    with pytest.raises(ValueError, match="nsim must be a whole number of at least 1"):
        fit.bootstrap(0)


@pytest.mark.parametrize("reml", [True, False])
def test_bootstrap_replicates_are_the_refits(sleep, reml):
    """Each replicate's row holds the numbers of `fit.refit` on its response (the row is
    read off the search's estimate without building the LmmFit's tables)."""
    fit = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep, reml=reml)
    table = fit.bootstrap(4, seed=11)
    for k, y in enumerate(fit.simulate(4, seed=11).T):
        refit = fit.refit(y)
        expected = [*refit.design.layout.sdcor(refit.theta, refit.sigma), *refit.fixef,
                    refit.objective]
        np.testing.assert_allclose(table.drop(columns=["singular", "failed", "message"])
                                   .iloc[k].to_numpy(float), expected, rtol=1e-12)
        assert table["singular"].iloc[k] == refit.singular
    assert list(table.columns[:5]) == [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)"]


def test_bootstrap_records_failures(sleep, monkeypatch):
    fit = lmm_ref.fit("Reaction ~ Days + (1 | Subject)", sleep)
    calls = {"n": 0}
    real = lmm_ref.search.refit_theta_hat

    def sometimes(estimate, y):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise DataError("no convergence in replicate")
        return real(estimate, y)

    monkeypatch.setattr(lmm_ref.search, "refit_theta_hat", sometimes)
    table = fit.bootstrap(9, seed=1)
    assert table["failed"].sum() == 3 and table.loc[table["failed"], ".sigma"].isna().all()
    assert table.loc[table["failed"], "message"].str.contains("no convergence").all()
    intervals = fit.confint(method="boot", nsim=9, seed=1)
    assert intervals.notna().all().all()


def test_bootstrap_agrees_with_bootmer_in_distribution(sleep):
    """lme4's bootMer(nsim = 500) and ours (different random numbers): the replicates'
    means within 4 standard errors of each other, their SDs within 20%."""
    reference = lme4_more()["bootstrap"]
    fit = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", sleep)
    table = fit.bootstrap(200, seed=2015)
    ours = {"(Intercept)": "(Intercept)", "Days": "Days", "sigma": ".sigma", "sd1": ".sig01",
            "sd2": ".sig03", "sd3": ".sig02"}
    for name, mean, sd in zip(reference["names"], reference["mean"], reference["sd"]):
        values = table[ours[name]].dropna()
        se = np.sqrt(sd**2 / reference["nsim"] + values.var() / len(values))
        assert abs(values.mean() - mean) < 4 * se, name
        np.testing.assert_allclose(values.std(), sd, rtol=0.2)


def test_nested_random_terms_inside_an_unstructured_term():
    """(1 | Worker/Machine) is a special case of (Machine | Worker) (lrt.spans_nested),
    not the other way round; the likelihood-ratio test then matches lme4's
    (LR 8.85 on 4 df, p = 0.065: tests/reference/lme4_case_nested.json)."""
    d = lmm_ref.data.load("Machines")
    small = lmm_ref.fit("score ~ Machine + (1 | Worker/Machine)", d, reml=False)
    large = lmm_ref.fit("score ~ Machine + (Machine | Worker)", d, reml=False)
    worker = lmm_ref.fit("score ~ Machine + (1 | Worker)", d, reml=False)
    assert lmm_ref.lrt.nested(small, large) and not lmm_ref.lrt.nested(large, small)
    assert lmm_ref.lrt.nested(worker, small)
    import json
    from pathlib import Path
    stored = json.loads((Path(__file__).parent / "reference" / "lme4_case_nested.json")
                        .read_text())
    lme4 = next(t for t in stored["lrt"] if t["id"] == "machines_nested_vs_full")
    table = lmm_ref.anova(small, large)
    assert table["Df"].iloc[1] == lme4["Df"]
    np.testing.assert_allclose(table["Chisq"].iloc[1], lme4["Chisq"], rtol=1e-5)
    np.testing.assert_allclose(table["Pr(>Chisq)"].iloc[1], lme4["p"], rtol=1e-5)


def test_anova_says_why_it_refits_only_when_fixed_effects_differ():
    """The REML-comparison reason is given only for models with different fixed effects."""
    d = lmm_ref.data.load("sleepstudy")
    fits = {f: lmm_ref.fit(f, d) for f in ("Reaction ~ Days + (1 | Subject)",
                                           "Reaction ~ Days + (Days | Subject)",
                                           "Reaction ~ 1 + (Days | Subject)")}
    for pair, differ in ((list(fits)[:2], False), (list(fits)[1:], True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lmm_ref.anova(*(fits[f] for f in pair))
        text = " ".join(str(w.message) for w in caught)
        assert "refitting model(s) with ML" in text
        assert ("different fixed effects" in text) == differ
