"""lmm_ref.design, .parameters and .model_frame: Z, Lambda, theta's layout and the checks
on the data, against hand-built matrices and lme4.

Z is compared with matrices assembled by explicit loops over observations (the
definition, eq. `eq-Zi`), never with another vectorised formula; shapes, theta names,
term order and level order are compared with lme4's reference fits.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la

from lmm_ref import data, marginal, reference
from lmm_ref.design import LambdaTemplate
from lmm_ref.model_frame import build
from lmm_ref.errors import DataError, DataTypeError, FormulaError, LmmRefError

REML_FITS = [fit for fit in reference.lme4_fits() if fit["reml"]]
FIT_IDS = [fit["id"] for fit in REML_FITS]


def build_quietly(formula, frame):
    """model_frame.build, failing the test if it warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return build(formula, frame)


def assert_same_design(a, b):
    """Two designs with the same y, X, Z, terms and levels."""
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X_names == b.X_names
    np.testing.assert_array_equal(a.Z.toarray(), b.Z.toarray())
    assert [t.group for t in a.terms] == [t.group for t in b.terms]
    for s, t in zip(a.terms, b.terms):
        assert list(s.levels) == list(t.levels)
        np.testing.assert_array_equal(s.codes, t.codes)
    assert a.layout.names == b.layout.names


# ---------------------------------------------------------------------------------------
# Z against hand-built matrices
# ---------------------------------------------------------------------------------------


def test_sleepstudy_random_slope_Z_by_hand(sleep):
    D = build_quietly("Reaction ~ Days + (Days | Subject)", sleep)
    subjects = sorted(set(int(s) for s in sleep["Subject"]))  # numeric order 308 ... 372
    n, l = len(sleep), len(subjects)
    J = np.zeros((n, l))
    Z = np.zeros((n, 2 * l))
    for j in range(n):
        k = subjects.index(int(sleep["Subject"][j]))
        J[j, k] = 1.0
        Z[j, 2 * k] = 1.0                          # intercept of subject k
        Z[j, 2 * k + 1] = sleep["Days"][j]         # slope of subject k, next to it
    (term,) = D.terms
    np.testing.assert_array_equal(term.J.toarray(), J)
    np.testing.assert_array_equal(term.Z.toarray(), Z)
    np.testing.assert_array_equal(D.Z.toarray(), Z)
    assert [int(s) for s in term.levels] == subjects
    assert term.columns == ["(Intercept)", "Days"]
    np.testing.assert_array_equal(D.y, sleep["Reaction"].to_numpy())
    np.testing.assert_array_equal(D.X, np.column_stack([np.ones(n), sleep["Days"]]))
    assert D.X_names == ["(Intercept)", "Days"]


def test_pastes_nested_Z_by_hand():
    """(1 | batch/cask) is lme4's (1 | batch) + (1 | cask:batch): levels 'cask:batch',
    the batch varying fastest (R's ':' on two factors)."""
    pastes = data.load("Pastes")
    D = build_quietly("strength ~ 1 + (1 | batch/cask)", pastes)
    batches = sorted(set(pastes["batch"].astype(str)))
    casks = sorted(set(pastes["cask"].astype(str)))
    samples = [f"{c}:{b}" for c in casks for b in batches]
    n = len(pastes)
    Z = np.zeros((n, len(samples) + len(batches)))
    for j in range(n):
        b, c = str(pastes["batch"][j]), str(pastes["cask"][j])
        Z[j, samples.index(f"{c}:{b}")] = 1.0               # term 1: cask:batch, 30 levels
        Z[j, len(samples) + batches.index(b)] = 1.0         # term 2: batch, 10 levels
    np.testing.assert_array_equal(D.Z.toarray(), Z)
    assert [t.group for t in D.terms] == ["cask:batch", "batch"]
    assert list(D.terms[0].levels) == samples
    assert list(D.terms[1].levels) == batches
    assert_same_design(D, build_quietly("strength ~ 1 + (1 | batch) + (1 | cask:batch)", pastes))
    # batch:cask (the data's own 'sample' column) is the same factor, its levels in
    # another order: the same model with Z's columns permuted
    explicit = build_quietly("strength ~ 1 + (1 | batch) + (1 | batch:cask)", pastes)
    assert sorted(explicit.terms[0].levels) == sorted(f"{b}:{c}" for b in batches for c in casks)
    by_sample = build_quietly("strength ~ 1 + (1 | sample) + (1 | batch)", pastes)
    np.testing.assert_array_equal(by_sample.Z.toarray(), explicit.Z.toarray())


def test_penicillin_crossed_Z_by_hand():
    penicillin = data.load("Penicillin")
    D = build_quietly("diameter ~ 1 + (1 | plate) + (1 | sample)", penicillin)
    plates = sorted(set(penicillin["plate"].astype(str)))
    samples = sorted(set(penicillin["sample"].astype(str)))
    n = len(penicillin)
    Z = np.zeros((n, len(plates) + len(samples)))
    for j in range(n):
        Z[j, plates.index(str(penicillin["plate"][j]))] = 1.0
        Z[j, len(plates) + samples.index(str(penicillin["sample"][j]))] = 1.0
    np.testing.assert_array_equal(D.Z.toarray(), Z)
    # written the other way round, the terms are still ordered plate (24) before sample (6)
    assert_same_design(D, build_quietly("diameter ~ 1 + (1 | sample) + (1 | plate)", penicillin))
    # fully crossed: every plate meets every sample once
    np.testing.assert_array_equal((D.terms[0].J.T @ D.terms[1].J).toarray(), np.ones((24, 6)))


def test_zerocorr_Z_is_two_copies_of_the_slope_layout(sleep):
    D = build_quietly("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep)
    full = build_quietly("Reaction ~ Days + (Days | Subject)", sleep).Z.toarray()
    Z = D.Z.toarray()
    np.testing.assert_array_equal(Z[:, :18], full[:, 0::2])
    np.testing.assert_array_equal(Z[:, 18:], full[:, 1::2])
    assert D.layout.names == ["Subject.(Intercept)", "Subject.Days"]


# ---------------------------------------------------------------------------------------
# Shapes, names, order: the five data sets against lme4
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", REML_FITS, ids=FIT_IDS)
def test_dimensions_against_lme4(fit, reference_design):
    D = reference_design(fit)
    assert D.n == fit["nobs"] == len(data.load(reference.dataset_name(fit)))
    assert D.p == len(fit["fixef"])
    assert D.X_names == list(fit["fixef"])
    q_lme4 = sum(len(r["levels"]) * len(r["values"]) for r in fit["ranef"].values())
    assert D.q == q_lme4
    assert D.Z.shape == (D.n, D.q)
    assert D.X.shape == (D.n, D.p)
    assert len(D.layout.lower) == len(D.layout.start) == len(fit["theta"])


@pytest.mark.parametrize("fit", REML_FITS, ids=FIT_IDS)
def test_theta_names_and_term_order_as_lme4(fit, reference_design):
    D = reference_design(fit)
    assert D.layout.names == fit["theta_names"]
    # term order: lme4's theta names list the grouping factors in its term order
    groups = [place.group for place in D.layout.terms for _ in range(place.size)]
    assert groups == [name.split(".")[0] for name in fit["theta_names"]]
    # ... which is by decreasing number of levels
    levels = [term.n_levels for term in D.terms]
    assert levels == sorted(levels, reverse=True)


@pytest.mark.parametrize("fit", REML_FITS, ids=FIT_IDS)
def test_levels_and_columns_as_in_lme4_ranef(fit, reference_design):
    D = reference_design(fit)
    for group, effects in fit["ranef"].items():
        terms = [term for term in D.terms if term.group == group]
        assert terms, group
        for term in terms:
            assert list(term.levels) == effects["levels"]
        assert [c for term in terms for c in term.columns] == list(effects["values"])


@pytest.mark.parametrize("fit", REML_FITS, ids=FIT_IDS)
def test_bounds_and_start(fit, reference_design):
    D = reference_design(fit)
    for name, lower, start in zip(D.layout.names, D.layout.lower, D.layout.start):
        if len(name.split(".")) == 2:  # 'group.column': a diagonal entry of T
            assert lower == 0 and start == 1
        else:                           # 'group.row.column': below the diagonal
            assert lower == -np.inf and start == 0


# ---------------------------------------------------------------------------------------
# Lambda(theta)
# ---------------------------------------------------------------------------------------


def test_T_filled_column_wise(sleep):
    D = build_quietly("Reaction ~ Days + (Days | Subject)", sleep)
    (term,) = D.terms
    (T,) = D.layout.T([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(T, [[1.0, 0.0], [2.0, 3.0]])
    Lambda = D.Lambda([1.0, 2.0, 3.0]).toarray()
    np.testing.assert_array_equal(Lambda, la.block_diag(*[T] * 18))
    np.testing.assert_array_equal(term.Lambda(T).toarray(), Lambda)
    np.testing.assert_array_equal(D.layout.from_T([T]), [1.0, 2.0, 3.0])


def test_T_three_by_three(sleep):
    frame = sleep.assign(Days2=sleep["Days"] ** 2)
    D = build_quietly("Reaction ~ Days + (1 + Days + Days2 | Subject)", frame)
    np.testing.assert_array_equal(
        D.layout.T(np.arange(1.0, 7.0))[0], [[1, 0, 0], [2, 4, 0], [3, 5, 6]])
    assert D.layout.names == [
        "Subject.(Intercept)", "Subject.Days.(Intercept)", "Subject.Days2.(Intercept)",
        "Subject.Days", "Subject.Days2.Days", "Subject.Days2",
    ]
    np.testing.assert_array_equal(D.layout.lower, [0, -np.inf, -np.inf, 0, -np.inf, 0])
    np.testing.assert_array_equal(D.layout.start, [1, 0, 0, 1, 0, 1])
    assert D.q == 54


def test_Lambda_of_two_terms_is_block_diagonal():
    pastes = data.load("Pastes")
    D = build_quietly("strength ~ 1 + (1 | batch/cask)", pastes)
    Lambda = D.Lambda([2.0, 0.5]).toarray()
    np.testing.assert_array_equal(Lambda, np.diag([2.0] * 30 + [0.5] * 10))
    assert [piece.tolist() for piece in D.layout.split([2.0, 0.5])] == [[2.0], [0.5]]


def test_Lambda_zerocorr(sleep):
    D = build_quietly("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep)
    np.testing.assert_array_equal(D.Lambda([3.0, 0.0]).toarray(), np.diag([3.0] * 18 + [0.0] * 18))


def test_split_theta_wrong_length_names_the_parameters(sleep):
    D = build_quietly("Reaction ~ Days + (Days | Subject)", sleep)
    with pytest.raises(ValueError, match=r"theta has 2 entries; this model has a vector of 3: Subject\.\(Intercept\)"):
        D.Lambda([1.0, 2.0])


@pytest.mark.parametrize("fit", REML_FITS, ids=FIT_IDS)
def test_Sigma_at_lme4_estimates_matches_varcorr(fit, reference_design):
    """Sigma = sigma^2 Lambda Lambda' has lme4's SDs and correlations on every level."""
    D = reference_design(fit)
    Sigma = marginal.Sigma(D, fit["theta"], fit["sigma"])
    start, seen = 0, {}
    for term in D.terms:
        # lme4 names a second term on the same factor 'Subject.1'
        k = seen.get(term.group, 0)
        seen[term.group] = k + 1
        key = term.group if k == 0 else f"{term.group}.{k}"
        reported = fit["varcorr"][key]
        block = Sigma[start: start + term.q, start: start + term.q]
        for level in range(term.n_levels):
            cov = block[level * term.p: (level + 1) * term.p, level * term.p: (level + 1) * term.p]
            sd = np.sqrt(np.diag(cov))
            np.testing.assert_allclose(sd, [reported["sd"][c] for c in term.columns],
                                       rtol=1e-6, atol=1e-12)
            if term.p > 1:
                cor = cov[0, 1] / (sd[0] * sd[1])
                np.testing.assert_allclose(cor, reported["cor"][f"{term.columns[0]}:{term.columns[1]}"],
                                           rtol=1e-6)
            # no covariance between levels of the same term
            off = block[level * term.p: (level + 1) * term.p].copy()
            off[:, level * term.p: (level + 1) * term.p] = 0
            assert not off.any()
        # no covariance with the other terms
        assert not Sigma[start: start + term.q, :start].any()
        assert not Sigma[start: start + term.q, start + term.q:].any()
        start += term.q
    np.testing.assert_allclose(fit["varcorr"]["Residual"]["sd"]["Residual"], fit["sigma"], rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Grouping factors
# ---------------------------------------------------------------------------------------


def test_numeric_grouping_column_levels_in_numeric_order():
    frame = pd.DataFrame({
        "y": np.linspace(0.0, 1.0, 12) ** 2,
        "g": [2, 2, 2, 10, 10, 10, 1, 1, 1, 2, 10, 1],
    })
    D = build_quietly("y ~ 1 + (1 | g)", frame)
    assert list(D.terms[0].levels) == ["1", "2", "10"]
    Z = np.zeros((12, 3))
    for j, g in enumerate(frame["g"]):
        Z[j, [1, 2, 10].index(g)] = 1.0
    np.testing.assert_array_equal(D.Z.toarray(), Z)
    # as strings the order is alphabetical, as R's factor() of a character vector
    as_text = build_quietly("y ~ 1 + (1 | g)", frame.assign(g=frame["g"].astype(str)))
    assert list(as_text.terms[0].levels) == ["1", "10", "2"]


def test_sleepstudy_subject_as_integers_or_strings_gives_the_same_design(sleep):
    formula = "Reaction ~ Days + (Days | Subject)"
    reference_design = build_quietly(formula, sleep)
    for subject in (sleep["Subject"].astype(int), sleep["Subject"].astype(str)):
        assert_same_design(build_quietly(formula, sleep.assign(Subject=subject)), reference_design)


def test_float_grouping_column():
    frame = pd.DataFrame({"y": np.arange(9.0) ** 1.5, "g": [0.5, 2.0, 10.0] * 3})
    D = build_quietly("y ~ 1 + (1 | g)", frame)
    assert D.terms[0].n_levels == 3
    np.testing.assert_array_equal(D.terms[0].codes, [0, 1, 2] * 3)


def test_interaction_of_categoricals_with_many_levels():
    """'a:b' of two categoricals with 20 levels each has 400 levels, not 256."""
    a, b = np.meshgrid(np.arange(20), np.arange(20), indexing="ij")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "a": pd.Categorical(np.tile(a.ravel(), 2)),
        "b": pd.Categorical(np.tile(b.ravel(), 2)),
        "y": rng.normal(size=800),
    })
    D = build_quietly("y ~ 1 + (1 | a:b)", frame)  # every combination occurs: no warning
    assert D.terms[0].n_levels == 400
    (j,) = np.flatnonzero((frame["a"] == 13) & (frame["b"] == 0))[:1]
    assert D.terms[0].levels[D.terms[0].codes[j]] == "13:0"


def test_nested_factor_with_unique_codes_builds_quietly():
    """Casks numbered 0 ... 29 across batches: 'batch:cask' has 30 levels, no warning.

    lme4 forms the interaction and drops its empty combinations silently; only levels a
    user declared (categories of a categorical) and left empty deserve a warning.
    """
    pastes = data.load("Pastes")
    frame = pastes.assign(cask=np.unique(pastes["sample"].astype(str), return_inverse=True)[1])
    D = build_quietly("strength ~ 1 + (1 | batch/cask)", frame)
    assert [t.n_levels for t in D.terms] == [30, 10]
    # the same 30 groups (their levels now ordered by the unique codes): Z's columns
    # are a permutation of those of the original coding
    original = build_quietly("strength ~ 1 + (1 | batch/cask)", pastes).Z.toarray()
    ours = D.Z.toarray()
    assert sorted(map(tuple, ours.T)) == sorted(map(tuple, original.T))


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("formula, culprit", [
    ("RT ~ Days + (1 | Subject)", r"unknown column 'RT' in the response"),
    ("Reaction ~ Dayz + (1 | Subject)", r"unknown column 'Dayz' in the fixed-effects term"),
    ("Reaction ~ Days + (Dayz | Subject)", r"unknown column 'Dayz' in the random-effects term"),
    ("Reaction ~ Days + (1 | Subj)", r"unknown column 'Subj' in the grouping factor"),
    ("Reaction ~ Days + (1 | Subject/Visit)", r"unknown column 'Visit' in the grouping factor"),
])
def test_unknown_column_is_named(sleep, formula, culprit):
    with pytest.raises(DataError, match=culprit) as info:
        build(formula, sleep)
    assert "Reaction, Days, Subject" in str(info.value)  # and the columns there are


@pytest.mark.parametrize("frame", [
    {"y": [1.0, 2.0], "g": ["a", "b"]},
    np.zeros((4, 2)),
    [[1.0, "a"], [2.0, "b"]],
])
def test_data_must_be_a_dataframe(frame):
    with pytest.raises(DataTypeError, match=f"data must be a pandas DataFrame, not {type(frame).__name__}"):
        build("y ~ 1 + (1 | g)", frame)


def test_data_type_error_is_a_type_error(sleep):
    with pytest.raises(TypeError):
        build("Reaction ~ Days + (1 | Subject)", sleep.to_numpy())


def test_formula_errors_come_through_build(sleep):
    with pytest.raises(FormulaError, match="no random-effects term"):
        build("Reaction ~ Days", sleep)


def test_empty_data(sleep):
    with pytest.raises(DataError, match="no rows"):
        build("Reaction ~ Days + (1 | Subject)", sleep.iloc[:0])


def test_grouping_factor_with_one_level(sleep):
    with pytest.raises(DataError, match=r"'one'.*only 1 level \('a'\)"):
        build("Reaction ~ Days + (1 | one)", sleep.assign(one="a"))


def test_grouping_factor_with_a_level_per_observation(sleep):
    with pytest.raises(DataError, match=r"'obs'.*180 levels for 180 observations"):
        build("Reaction ~ Days + (1 | obs)", sleep.assign(obs=np.arange(180)))


def test_term_with_as_many_effects_as_observations(sleep):
    frame = sleep.assign(pair=np.arange(180) // 2)  # 90 levels, fine for an intercept ...
    build_quietly("Reaction ~ Days + (1 | pair)", frame)
    with pytest.raises(DataError, match=r"\(Days \| pair\) has 180 random effects \(90 levels x 2 columns\)"):
        build("Reaction ~ Days + (Days | pair)", frame)  # ... but not for a slope too


@pytest.mark.parametrize("response, dtype", [
    ("Subject", "category"),
    ("text", "str|object"),
    ("flag", "bool"),
])
def test_non_numeric_response(sleep, response, dtype):
    frame = sleep.assign(text=sleep["Subject"].astype(str) + "ms", flag=sleep["Days"] > 4)
    with pytest.raises(DataTypeError, match=rf"response '{response}' must be numeric.*type ({dtype})"):
        build(f"{response} ~ Days + (1 | Subject)", frame)


def test_constant_response(sleep):
    with pytest.raises(DataError, match=r"response 'c' is constant \(3\.5\)"):
        build("c ~ Days + (1 | Subject)", sleep.assign(c=3.5))


def test_all_errors_are_lmm_ref_errors(sleep):
    for formula, frame in [("RT ~ (1 | Subject)", sleep), ("Reaction ~ (1 | Subject)", sleep.iloc[:0]),
                           ("Reaction ~ (1 | Subject)", None), ("Reaction ~ x", sleep)]:
        with pytest.raises(LmmRefError):
            build(formula, frame)


# ---------------------------------------------------------------------------------------
# Missing values, aliased columns, unused levels, awkward names
# ---------------------------------------------------------------------------------------


def test_incomplete_rows_dropped_with_a_warning(sleep):
    frame = sleep.astype({"Days": float, "Subject": object})
    frame.loc[3, "Reaction"] = np.nan
    frame.loc[10, "Days"] = np.inf
    frame.loc[20, "Subject"] = None
    frame.loc[30, "Days"] = -np.inf
    formula = "Reaction ~ Days + (Days | Subject)"
    with pytest.warns(UserWarning, match=r"dropped 4 of 180 rows.*Reaction \(1\).*Days \(2\).*Subject \(1\)"):
        D = build(formula, frame)
    clean = frame.drop(index=[3, 10, 20, 30]).reset_index(drop=True)
    assert D.n == 176
    assert_same_design(D, build_quietly(formula, clean))


def test_pandas_na_in_a_nullable_column(sleep):
    frame = sleep.astype({"Reaction": "Float64"})
    frame.loc[0, "Reaction"] = pd.NA
    with pytest.warns(UserWarning, match=r"dropped 1 of 180 rows"):
        D = build("Reaction ~ Days + (1 | Subject)", frame)
    np.testing.assert_array_equal(D.y, sleep["Reaction"].to_numpy()[1:])


def test_missing_values_in_unused_columns_are_ignored(sleep):
    frame = sleep.assign(junk=np.nan, other=[np.inf] * 179 + [1.0], note=None)
    D = build_quietly("Reaction ~ Days + (Days | Subject)", frame)
    assert D.n == 180
    assert_same_design(D, build_quietly("Reaction ~ Days + (Days | Subject)", sleep))


def test_every_row_missing(sleep):
    with pytest.warns(UserWarning, match="dropped 180 of 180"):
        with pytest.raises(DataError, match=r"no rows are left.*junk \(180\)"):
            build("Reaction ~ junk + (1 | Subject)", sleep.assign(junk=np.nan))


def test_dropping_all_rows_of_a_level_also_drops_the_level(sleep):
    frame = sleep.copy()
    frame.loc[frame["Subject"] == "308", "Reaction"] = np.nan
    with pytest.warns(UserWarning) as record:
        D = build("Reaction ~ Days + (1 | Subject)", frame)
    messages = [str(w.message) for w in record]
    assert any("dropped 10 of 180 rows" in m for m in messages)
    assert any("'Subject' has 1 categorical level(s) with no observations (308)" in m for m in messages)
    assert D.terms[0].n_levels == 17
    assert "308" not in list(D.terms[0].levels)


@pytest.mark.parametrize("extra, formula", [
    (lambda f: 2.0 * f["Days"] + 1.0, "Reaction ~ Days + Days2 + (1 | Subject)"),
    (lambda f: f["Days"] * 1.0, "Reaction ~ Days + Days2 + (1 | Subject)"),
    (lambda f: np.full(len(f), 5.0), "Reaction ~ Days + Days2 + (1 | Subject)"),
])
def test_aliased_fixed_column_dropped_with_a_warning(sleep, extra, formula):
    frame = sleep.assign(Days2=extra(sleep))
    with pytest.warns(UserWarning, match=r"rank deficient; dropped the aliased column\(s\) Days2"):
        D = build(formula, frame)
    assert D.X_names == ["(Intercept)", "Days"]
    assert D.dropped_columns == ["Days2"]
    assert_same_design(D, build_quietly("Reaction ~ Days + (1 | Subject)", sleep))


def test_aliased_column_in_a_factor_coding():
    # x_b + x_c = 1 - x_a: with an intercept, the coded factor and a copy of it collide
    pastes = data.load("Pastes").assign(cask_a=lambda f: (f["cask"] == "a").astype(float))
    with pytest.warns(UserWarning, match=r"dropped the aliased column\(s\) cask_a"):
        D = build("strength ~ cask + cask_a + (1 | batch)", pastes)
    assert "cask_a" not in D.X_names and D.p == 3


def test_unused_categorical_levels_dropped_with_a_warning(sleep):
    frame = sleep.assign(Subject=sleep["Subject"].cat.add_categories(["999", "100"]))
    with pytest.warns(UserWarning, match=r"'Subject' has 2 categorical level\(s\) with no observations \(999, 100\)"):
        D = build("Reaction ~ Days + (Days | Subject)", frame)
    assert_same_design(D, build_quietly("Reaction ~ Days + (Days | Subject)", sleep))


def test_unused_level_warning_points_at_the_caller(sleep):
    frame = sleep.assign(Subject=sleep["Subject"].cat.add_categories(["999"]))
    with pytest.warns(UserWarning, match="no observations") as record:
        build("Reaction ~ Days + (1 | Subject)", frame)
    assert record[0].filename == __file__


def test_other_warnings_point_at_the_caller(sleep):
    with pytest.warns(UserWarning, match="dropped 1 of 180") as record:
        build("Reaction ~ Days + (1 | Subject)", sleep.assign(Reaction=[np.nan] + list(sleep["Reaction"][1:])))
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="aliased") as record:
        build("Reaction ~ Days + D2 + (1 | Subject)", sleep.assign(D2=sleep["Days"]))
    assert record[0].filename == __file__


def test_python_keywords_as_column_names():
    dyestuff = data.load("Dyestuff")
    renamed = dyestuff.rename(columns={"Yield": "yield", "Batch": "class"})
    D = build_quietly("yield ~ 1 + (1 | class)", renamed)
    assert D.layout.names == ["class.(Intercept)"]
    original = build_quietly("Yield ~ 1 + (1 | Batch)", dyestuff)
    np.testing.assert_array_equal(D.y, original.y)
    np.testing.assert_array_equal(D.X, original.X)
    np.testing.assert_array_equal(D.Z.toarray(), original.Z.toarray())


def test_python_keyword_as_fixed_and_random_slope(sleep):
    renamed = sleep.rename(columns={"Days": "lambda", "Subject": "from"})
    D = build_quietly("Reaction ~ lambda + (lambda | from)", renamed)
    original = build_quietly("Reaction ~ Days + (Days | Subject)", sleep)
    assert D.X_names == ["(Intercept)", "lambda"]
    assert D.layout.names == ["from.(Intercept)", "from.lambda.(Intercept)", "from.lambda"]
    np.testing.assert_array_equal(D.Z.toarray(), original.Z.toarray())
    np.testing.assert_array_equal(D.X, original.X)


def test_response_expression(sleep):
    D = build_quietly("log(Reaction) ~ Days + (1 | Subject)", sleep)
    np.testing.assert_allclose(D.y, np.log(sleep["Reaction"].to_numpy()), rtol=1e-15)


def test_Lambda_template_refills_the_same_Lambda():
    """pls's LambdaTemplate (lme4's Lind) gives what Design.Lambda builds as blockdiag(I kron T_i)."""
    D = build("strength ~ 1 + (1 | batch/cask)", data.load("Pastes"))
    D_slope = build("Reaction ~ Days + (Days | Subject)", data.load("sleepstudy"))
    for D_, theta in ((D, [0.7, 1.9]), (D_slope, [1.1, -0.4, 0.3]), (D_slope, [0.5, 0.0, 0.0])):
        expected = D_.Lambda(theta).toarray()
        np.testing.assert_array_equal(LambdaTemplate(D_.terms)(theta).toarray(), expected)
