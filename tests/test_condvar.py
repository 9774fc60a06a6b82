"""Conditional variances of the random effects (lmm_ref.condvar, chapter 7).

Against lme4's ranef(condVar = TRUE) (tests/reference/lme4_inference.json and
lme4_more.json: crossed, nested, unbalanced, boundary, zero-correlation, weighted and
case-study models), against statsmodels' random_effects_cov, and against the dense
formula Var(B | Y = y) = Sigma - Sigma Z'V^-1 Z Sigma of chapter 2; with beta's
uncertainty, against the inverse of Henderson's mixed-model equations.
"""

import warnings

import numpy as np
import pytest
import statsmodels.formula.api as smf
from support import random_frame, solve

import lmm_ref
from lmm_ref import condvar, fitting, marginal
from lmm_ref.reference import lme4_fit, lme4_inference, lme4_more, reference_data

FORMULAS = {
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "pastes": ("Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
    "unb_slope": ("sleepstudy_unbalanced", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff2": ("Dyestuff2", "Yield ~ 1 + (1 | Batch)"),
    "sleep_zerocorr": ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
    "sleep_w": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "orthodont_slope": ("Orthodont", "distance ~ age * Sex + (age | Subject)"),
    "machines_nested": ("Machines", "score ~ Machine + (1 | Worker) + (1 | Machine:Worker)"),
    "sleep_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff": ("Dyestuff", "Yield ~ 1 + (1 | Batch)"),
}
SHARED_IDS = {"sleep_slope_REML": ("sleep_slope", True), "dyestuff_ML": ("dyestuff", False)}
CASES = ([(c["id"], c["reml"], c) for c in lme4_more()["condvar"]]
         + [(*SHARED_IDS[c["id"]], c) for c in lme4_inference()["condvar"]])


def lme4_blocks(entry):
    """lme4's postVar of one grouping factor: [(columns, array (levels, k, k))] per term."""
    levels = len(entry["levels"])
    if "term_columns" not in entry:  # the shared file: one term
        columns = entry["columns"] if isinstance(entry["columns"], list) else [entry["columns"]]
        blocks = np.array(entry["postvar"], dtype=float).reshape(levels, len(columns), len(columns))
        return [(columns, blocks)]
    postvar = entry["postvar"]
    postvar = list(postvar.values()) if isinstance(postvar, dict) else postvar
    out = []
    for columns, blocks in zip(entry["term_columns"], postvar):
        columns = columns if isinstance(columns, list) else [columns]
        out.append((columns, np.array(blocks, dtype=float).reshape(levels, len(columns), len(columns))))
    return out


def fit_of(model_id, reml):
    dataset, formula = FORMULAS[model_id]
    weights = lme4_fit(model_id, reml).get("weights") if model_id != "dyestuff2" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmm_ref.fit(formula, reference_data(dataset), reml=reml, weights=weights)


@pytest.mark.parametrize("model_id, reml, ref", CASES,
                         ids=[f"{c[0]}-{'REML' if c[1] else 'ML'}" for c in CASES])
def test_condvar_against_lme4(model_id, reml, ref):
    """At lme4's estimates the same function: 1e-5 relative (it is 1e-12 in practice);
    at lmm_ref's own optimum, within what the two optimisers' stopping points allow."""
    fit = fit_of(model_id, reml)
    ref_fit = lme4_fit(model_id, reml)
    at_lme4 = fitting.fit_at(fit, ref_fit["theta"])
    np.testing.assert_allclose(at_lme4.sigma, ref_fit["sigma"], rtol=1e-8)
    for g, entry in ref["groups"].items():
        assert list(fit.ranef[g].index) == entry["levels"]
        assert list(fit.ranef[g].columns) == [c for cols, _ in lme4_blocks(entry) for c in cols]
        start = 0
        for columns, blocks in lme4_blocks(entry):
            k = len(columns)
            scale = np.max(np.abs(blocks)) or 1.0
            ours = at_lme4.condvar[g][:, start:start + k, start:start + k]
            np.testing.assert_allclose(ours, blocks, rtol=1e-5, atol=1e-10 * scale)
            own = fit.condvar[g][:, start:start + k, start:start + k]
            np.testing.assert_allclose(own, blocks, rtol=1e-2, atol=1e-3 * scale)
            start += k


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("seed, structure", [(1, "slope"), (2, "crossed slopes"),
                                             (3, "nested slope"), (4, "uncorrelated"),
                                             (5, "three levels")])
def test_condvar_against_the_dense_formula(seed, structure, sparse, monkeypatch):
    """Sigma - Sigma Z'V^-1 Z Sigma (valid for singular Sigma too), level by level, with
    the cross-term blocks of terms that share a grouping factor; on both storages (the
    sparse one reads [A^-1]_21 off A21's pattern only)."""
    if sparse:
        monkeypatch.setattr(lmm_ref.products, "DENSE_LIMIT", 0)
    frame, formula = random_frame(seed, 70, structure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = lmm_ref.fit(formula, frame)
    D = fit.design
    Sigma = marginal.Sigma(D, fit.theta, fit.sigma)
    Z = D.Z.toarray()
    dense = Sigma - Sigma @ Z.T @ np.linalg.solve(marginal.V(D, fit.theta, fit.sigma), Z @ Sigma)
    for group, blocks in fit.condvar.items():
        index = condvar.level_indices(D, group)
        expected = dense[index[:, :, None], index[:, None, :]]
        np.testing.assert_allclose(blocks, expected, rtol=1e-8, atol=1e-10 * np.abs(dense).max())


def test_condvar_with_beta_against_hendersons_equations():
    """condvar_full = sigma^2 times the bb block of the inverse of Henderson's matrix
    [[X'X, X'Z], [Z'X, Z'Z + sigma^2 Sigma^-1]] / ... (here in its PLS form)."""
    frame = reference_data("sleepstudy_unbalanced")
    fit = lmm_ref.fit("Reaction ~ Days + (Days | Subject)", frame)
    D = fit.design
    ZL = D.Z.toarray() @ D.Lambda(fit.theta).toarray()
    M = np.block([[ZL.T @ ZL + np.eye(D.q), ZL.T @ D.X], [D.X.T @ ZL, D.X.T @ D.X]])
    Minv = np.linalg.inv(M)
    Lam = D.Lambda(fit.theta).toarray()
    full = fit.sigma**2 * Lam @ Minv[:D.q, :D.q] @ Lam.T     # Var(b-tilde - b)
    cond = fit.sigma**2 * Lam @ np.linalg.inv(M[:D.q, :D.q]) @ Lam.T
    index = condvar.level_indices(D, "Subject")
    np.testing.assert_allclose(fit.condvar_full["Subject"], full[index[:, :, None], index[:, None, :]],
                               rtol=1e-8)
    np.testing.assert_allclose(fit.condvar["Subject"], cond[index[:, :, None], index[:, None, :]],
                               rtol=1e-8)
    # beta's uncertainty only adds: the difference is positive semi-definite, and not zero
    difference = fit.condvar_full["Subject"] - fit.condvar["Subject"]
    assert np.all(np.linalg.eigvalsh(difference) > -1e-10) and np.all(np.trace(difference, axis1=1, axis2=2) > 0)


@pytest.mark.parametrize("model_id", ["sleep_slope", "unb_slope", "dyestuff"])
def test_condvar_against_statsmodels(model_id):
    dataset, formula = FORMULAS[model_id]
    frame = reference_data(dataset)
    fit = lmm_ref.fit(formula, frame)
    group = "Subject" if "Subject" in formula else "Batch"
    re_formula = "~Days" if "Days |" in formula else "1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm(formula.split(" + (")[0], frame, groups=group,
                         re_formula=re_formula).fit(reml=True, method=["bfgs"], gtol=1e-12)
    # each at its own optimum: the two optima agree to 1e-6 in the criterion, and the
    # conditional covariances to what that leaves of the parameters' precision
    np.testing.assert_allclose(-2 * sm.llf, fit.objective, rtol=1e-6)
    for level, cov in sm.random_effects_cov.items():
        j = list(fit.ranef[group].index).index(str(level))
        np.testing.assert_allclose(fit.condvar[group][j], cov.to_numpy(), rtol=2e-3)


def test_condvar_shapes_and_order_follow_ranef():
    fit = fit_of("sleep_zerocorr", True)
    (group,) = fit.condvar
    assert fit.condvar[group].shape == (18, 2, 2)
    assert list(fit.ranef[group].columns) == ["(Intercept)", "Days"]
    # the two terms' effects of one subject are correlated given the data, although the
    # terms are independent a priori: the off-diagonal entry is not zero
    assert np.all(np.abs(fit.condvar[group][:, 0, 1]) > 1e-6)
