"""lmm_ref.fit on bad input and on awkward but valid input.

Bad input must raise an lmm_ref error (FormulaError, DataError or DataTypeError, which
subclass ValueError or TypeError) whose message names the culprit (column, term or
level) and says what to do, never an IndexError, KeyError, LinAlgError or a message
from numpy, pandas or formulaic.  Awkward input must fit, and fit right: the same
result as the equivalent tidy input.

Where lme4 and lmm_ref differ, lmm_ref is stricter and says why in the message:
lme4 fits a constant response (every variance collapses to zero) and fits with n = p
(REML with zero degrees of freedom); lmm_ref raises.  lme4 fails on a random slope for
a covariate in micro- or mega-units ("Downdated VtV is not positive definite", or a
false convergence warning); lmm_ref rescales the optimiser's coordinates (see
`lmm_ref.starting.theta_scale`) and fits.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from support import assert_same_fit, criterion, fit_quietly, fit_with_one_warning

import lmm_ref
from lmm_ref import data
from lmm_ref.errors import DataError, DataTypeError, FormulaError, LmmRefError

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    return fit_quietly(SLEEP, sleep)


# ---------------------------------------------------------------------------------------
# Bad input: a clear exception naming the culprit
# ---------------------------------------------------------------------------------------

def _sleep_with(**columns):
    return lambda sleep: sleep.assign(**{k: (v(sleep) if callable(v) else v) for k, v in columns.items()})


def _same(sleep):
    return sleep


# (id, formula, data, error class, regex: the culprit ... and what to do)
BAD_INPUT = [
    # unknown columns, named with the columns there are
    ("unknown response", "RT ~ Days + (1 | Subject)", _same, DataError,
     r"unknown column 'RT' in the response.*data has columns: Reaction, Days, Subject"),
    ("unknown fixed effect", "Reaction ~ Dayz + (1 | Subject)", _same, DataError,
     r"unknown column 'Dayz' in the fixed-effects term.*data has columns"),
    ("unknown column in a function", "Reaction ~ log(Dayz) + (1 | Subject)", _same, DataError,
     r"unknown column 'Dayz' in the fixed-effects term 'log\(Dayz\)'"),
    ("unknown slope", "Reaction ~ Days + (Dayz | Subject)", _same, DataError,
     r"unknown column 'Dayz' in the random-effects term \(Dayz \| Subject\).*data has columns"),
    ("unknown grouping", "Reaction ~ Days + (1 | Subj)", _same, DataError,
     r"unknown column 'Subj' in the grouping factor of \(1 \| Subj\).*data has columns"),
    ("unknown nested grouping", "Reaction ~ Days + (1 | Subject/Visit)", _same, DataError,
     r"unknown column 'Visit' in the grouping factor of \(1 \| Visit:Subject\)"),
    ("unknown interaction grouping", "Reaction ~ Days + (1 | Subject:Visit)", _same, DataError,
     r"unknown column 'Visit' in the grouping factor"),
    # malformed formulas
    ("formula not a string", 42, _same, FormulaError,
     r"formula must be a string like 'y ~ x \+ \(1 \| g\)', not int"),
    ("no tilde", "Reaction Days + (1 | Subject)", _same, FormulaError, r"must have exactly one '~'"),
    ("empty left of bar", "Reaction ~ Days + ( | Subject)", _same, FormulaError,
     r"'\( \| Subject\)' has nothing left of the bar; write '\(1 \| g\)'"),
    ("empty right of bar", "Reaction ~ Days + (Days | )", _same, FormulaError,
     r"'\(Days \| \)' has no grouping factor right of the bar; write the column"),
    ("empty right of double bar", "Reaction ~ Days + (Days || )", _same, FormulaError,
     r"'\(Days \|\| \)' has no grouping factor"),
    ("unclosed parenthesis", "Reaction ~ Days + (Days | Subject", _same, FormulaError,
     r"unbalanced parentheses in 'Reaction ~ Days \+ \(Days \| Subject': 1 '\(' never closed"),
    ("unopened parenthesis", "Reaction ~ Days + Days | Subject)", _same, FormulaError,
     r"unbalanced parentheses.*'\)' at position 32 closes nothing"),
    ("double bar outside parentheses", "Reaction ~ Days || Subject", _same, FormulaError,
     r"'Days \|\| Subject'.*'\|' outside parentheses; write random-effects terms as '\(expr \| group\)'"),
    ("triple bar", "Reaction ~ Days + (Days ||| Subject)", _same, FormulaError,
     r"grouping factor '\| Subject' in '\(Days \|\|\| Subject\)' is not a column name"),
    ("single and double bar", "Reaction ~ (Days || Subject | Days)", _same, FormulaError,
     r"'Subject \| Days' in '\(Days \|\| Subject \| Days\)' is not a column name"),
    ("two double bars", "Reaction ~ (Days || Subject || Days)", _same, FormulaError,
     r"'\(Days \|\| Subject \|\| Days\)'.*exactly one '\|' \(or one '\|\|'\)"),
    ("double bar on an interaction", "Reaction ~ (Days:Days2 || Subject)",
     _sleep_with(Days2=lambda f: f["Days"] ** 2), FormulaError,
     r"'\|\|' in '\(Days:Days2 \|\| Subject\)'.*not 'Days:Days2'; write the uncorrelated terms out"),
    ("double bar leaving nothing", "Reaction ~ (0 || Subject)", _same, FormulaError,
     r"'\|\|' in '\(0 \|\| Subject\)' leaves no random effect"),
    ("double bar subtracting a variable", "Reaction ~ (1 - Days || Subject)", _same, FormulaError,
     r"'\|\|' in '\(1 - Days \|\| Subject\)' can only remove the intercept with '- 1'"),
    ("random term without columns", "Reaction ~ Days + (0 | Subject)", _same, FormulaError,
     r"\(0 \| Subject\) has no columns; use \(1 \| g\)"),
    ("no random-effects term", "Reaction ~ Days", _same, FormulaError,
     r"'Reaction ~ Days' has no random-effects term; add one such as '\(1 \| group\)'"),
    ("subtracted random-effects term", "Reaction ~ Days - (1 | Subject)", _same, FormulaError,
     r"'\(1 \| Subject\)'.*is subtracted; random-effects terms can only be added"),
    # grouping factors that cannot carry a variance
    ("one level", "Reaction ~ Days + (1 | site)", _sleep_with(site="Lyon"), DataError,
     r"grouping factor 'site' in \(1 \| site\) has only 1 level \('Lyon'\).*Drop the term"),
    ("one level left after dropping missing values", "Reaction ~ Days + (1 | site)",
     _sleep_with(site=lambda f: np.where(f.index < 100, "Lyon", None)), DataError,
     r"'site'.*only 1 level \('Lyon'\)"),
    ("a level per observation", "Reaction ~ Days + (1 | visit)",
     _sleep_with(visit=lambda f: np.arange(len(f))), DataError,
     r"grouping factor 'visit' in \(1 \| visit\) has 180 levels for 180 observations.*Remove the term"),
    ("more levels than observations in an interaction", "Reaction ~ Days + (1 | Subject:Days)",
     _same, DataError, r"'Subject:Days'.*180 levels for 180 observations"),
    ("as many random effects as observations", "Reaction ~ Days + (Days | pair)",
     _sleep_with(pair=lambda f: np.arange(len(f)) // 2), DataError,
     r"term \(Days \| pair\) has 180 random effects \(90 levels x 2 columns\) for only 180 "
     r"observations.*Simplify the term"),
    # the response
    ("categorical response", "Subject ~ Days + (1 | Subject)", _same, DataTypeError,
     r"response 'Subject' must be numeric, but its values are of type category; convert it"),
    ("text response", "grade ~ Days + (1 | Subject)",
     _sleep_with(grade=lambda f: np.where(f["Reaction"] > 300, "slow", "fast")), DataTypeError,
     r"response 'grade' must be numeric.*type (str|object)"),
    ("numbers stored as text", "rt ~ Days + (1 | Subject)",
     _sleep_with(rt=lambda f: f["Reaction"].astype(str)), DataTypeError,
     r"response 'rt' must be numeric.*convert it to numbers"),
    ("boolean response", "slow ~ Days + (1 | Subject)",
     _sleep_with(slow=lambda f: f["Reaction"] > 300), DataTypeError,
     r"response 'slow' must be numeric.*type bool.*generalized model"),
    ("complex response", "z ~ Days + (1 | Subject)",
     _sleep_with(z=lambda f: f["Reaction"] + 1j), DataTypeError, r"response 'z' must be numeric.*complex"),
    ("datetime response", "when ~ Days + (1 | Subject)",
     _sleep_with(when=lambda f: pd.Timestamp("2003-01-01") + pd.to_timedelta(f["Days"], "D")),
     DataTypeError, r"response 'when' must be numeric.*datetime64"),
    ("constant response", "score ~ Days + (1 | Subject)", _sleep_with(score=3.5), DataError,
     r"response 'score' is constant \(3\.5\) in every row, so there is no variation"),
    ("constant once missing values are dropped", "score ~ Days + (1 | Subject)",
     _sleep_with(score=lambda f: np.where(f.index % 2 == 0, 7.0, np.nan)), DataError,
     r"response 'score' is constant \(7\)"),
    ("response too large to square", "big ~ Days + (1 | Subject)",
     _sleep_with(big=lambda f: f["Reaction"] * 1e300), DataError,
     r"response 'big' are too large \(up to .*e\+30[0-9]\).*rescale them"),
    # the data
    ("empty data", SLEEP, lambda f: f.iloc[:0], DataError, r"the data has no rows"),
    ("empty after dropping missing values", "Reaction ~ Days + (1 | Subject)",
     _sleep_with(Reaction=np.nan), DataError,
     r"no rows are left after dropping rows with missing values in Reaction \(180\)"),
    ("dict", SLEEP, lambda f: f.to_dict("list"), DataTypeError,
     r"data must be a pandas DataFrame, not dict; convert it with pandas.DataFrame"),
    ("array", SLEEP, lambda f: f.to_numpy(), DataTypeError, r"not ndarray"),
    ("series", SLEEP, lambda f: f["Reaction"], DataTypeError, r"not Series"),
    ("list of rows", SLEEP, lambda f: f.values.tolist(), DataTypeError, r"not list"),
    ("None", SLEEP, lambda f: None, DataTypeError, r"not NoneType"),
    ("duplicated column names", SLEEP, lambda f: pd.concat([f, f[["Days"]]], axis=1), DataError,
     r"2 columns named 'Days' \(used in the fixed-effects term 'Days'\); rename or drop"),
    ("grouping column mixing numbers and text", "Reaction ~ Days + (1 | site)",
     _sleep_with(site=lambda f: pd.Series([1, "two", 3.0] * 60, dtype=object)), DataTypeError,
     r"grouping column 'site' holds values of type\(s\) float, int, str.*astype\(str\)"),
    ("response expression undefined in some rows", "log(R) ~ Days + (1 | Subject)",
     lambda f: f.assign(R=f["Reaction"] - 250), FormulaError,
     r"cannot evaluate the response 'log\(R\)'.*null values"),
    ("response expression with several columns", "C(Subject) ~ Days + (1 | Subject)",
     lambda f: f, DataTypeError,
     r"the response 'C\(Subject\)' gives 18 columns.*needs a numeric response"),
    ("response expression with an unknown function", "np.nosuch(Reaction) ~ Days + (1 | Subject)",
     lambda f: f, FormulaError, r"cannot evaluate the response 'np.nosuch\(Reaction\)'"),
    ("as many fixed effects as observations", "Reaction ~ visit + (1 | Subject)",
     lambda f: f.iloc[:20].assign(visit=[f"v{k}" for k in range(20)]), DataError,
     r"fixed-effects model matrix has 20 linearly independent columns \(\(Intercept\), "
     r"visit\[T.v1\].*for only 20 observations.*use fewer fixed effects"),
]


@pytest.mark.parametrize("formula, make_data, error, message",
                         [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_bad_input_raises_a_clear_error(sleep, formula, make_data, error, message, reml):
    frame = make_data(sleep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the rows-dropped warning before the error
        with pytest.raises(error, match=message) as info:
            lmm_ref.fit(formula, frame, reml=reml)
    # a documented class: catchable as LmmRefError and as the builtin it refines
    assert isinstance(info.value, LmmRefError)
    assert isinstance(info.value, TypeError if error is DataTypeError else ValueError)
    assert info.value.__cause__ is None  # no numpy, pandas or formulaic error chained in


def test_bad_input_cases_cover_the_issue():
    """Every kind of bad input the issue lists has a case above."""
    ids = " | ".join(case[0] for case in BAD_INPUT)
    for kind in ["unknown response", "unknown fixed", "unknown slope", "unknown grouping",
                 "empty left of bar", "empty right of bar", "unclosed", "unopened", "double bar",
                 "no random-effects term", "one level", "a level per observation",
                 "as many random effects as observations", "text response", "constant response",
                 "empty data", "empty after dropping", "dict", "array"]:
        assert kind in ids, kind


def test_errors_are_catchable_by_their_builtin_class(sleep):
    with pytest.raises(ValueError):
        lmm_ref.fit("Reaction ~ Days", sleep)
    with pytest.raises(TypeError):
        lmm_ref.fit(SLEEP, sleep.to_numpy())


def test_wrong_start_names_the_parameters(sleep):
    with pytest.raises(ValueError, match=r"theta has 2 entries; this model has a vector of 3: Subject.\(Intercept\)"):
        lmm_ref.fit(SLEEP, sleep, start=[1.0, 1.0])


# ---------------------------------------------------------------------------------------
# Missing and infinite values: dropped with one warning, fit as on the cleaned data
# ---------------------------------------------------------------------------------------

def _with_missing(sleep, column, dtype, rows, value):
    frame = sleep.copy()
    if column == "Subject":
        frame[column] = frame[column].astype(str).astype(object)
    if dtype == "category":  # set the value first: categoricals' codes may be read-only
        frame.loc[rows, column] = value
    frame[column] = frame[column].astype(dtype)
    frame.loc[rows, column] = value
    return frame


MISSING = [
    # (id, column, dtype, rows, missing value)
    ("nan in the response", "Reaction", "float64", [3, 77], np.nan),
    ("inf and -inf in a covariate", "Days", "float64", [10, 11, 150], [np.inf, -np.inf, np.inf]),
    ("Float64 with pd.NA", "Reaction", "Float64", [0, 99], pd.NA),
    ("Int64 with pd.NA", "Days", "Int64", [5], pd.NA),
    ("object response with None", "Reaction", object, [42], None),
    ("object grouping column with None", "Subject", object, [7, 8], None),
    ("string[python] grouping column with pd.NA", "Subject", "string[python]", [7, 120], pd.NA),
    ("categorical grouping column with nan", "Subject", "category", [60], np.nan),
]


@pytest.mark.parametrize("column, dtype, rows, value", [case[1:] for case in MISSING],
                         ids=[case[0] for case in MISSING])
def test_missing_values_are_dropped_with_one_warning(sleep, column, dtype, rows, value):
    frame = _with_missing(sleep, column, dtype, rows, value)
    result = fit_with_one_warning(
        SLEEP, frame, rf"dropped {len(rows)} of 180 rows with missing or infinite values in: "
        rf"{column} \({len(rows)}\)$")
    clean = frame.drop(index=rows)
    if dtype is object and column == "Reaction":
        clean = clean.astype({column: float})
    assert result.nobs == 180 - len(rows)
    assert_same_fit(result, fit_quietly(SLEEP, clean))


def test_missing_values_in_several_columns_are_counted_per_column(sleep):
    frame = sleep.astype({"Reaction": "Float64", "Days": float, "Subject": object})
    frame.loc[[1, 2], "Reaction"] = pd.NA
    frame.loc[2, "Days"] = np.inf  # same row as a missing response: counted once in the total
    frame.loc[50, "Subject"] = None
    frame.loc[0, "unused"] = np.nan  # not in the formula: ignored
    result = fit_with_one_warning(
        SLEEP, frame, r"dropped 3 of 180 rows .* in: Reaction \(2\), Days \(1\), Subject \(1\)$")
    assert_same_fit(result, fit_quietly(SLEEP, sleep.drop(index=[1, 2, 50])))


def test_missing_values_in_an_unused_column_change_nothing(sleep, sleep_fit):
    frame = sleep.assign(note=None, junk=np.nan, other=np.inf)
    assert_same_fit(fit_quietly(SLEEP, frame), sleep_fit, rtol=0)


# ---------------------------------------------------------------------------------------
# Rank-deficient X: aliased columns dropped with a warning naming them
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, aliased", [
    ({"weeks": lambda f: f["Days"] / 7}, "weeks"),
    ({"shifted": lambda f: 2.5 * f["Days"] - 3.0}, "shifted"),
    ({"ones": 1.0}, "ones"),
    ({"weeks": lambda f: f["Days"] / 7, "hours": lambda f: 24.0 * f["Days"] + 8.0}, "weeks, hours"),
], ids=["multiple", "affine", "constant", "two at once"])
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_aliased_columns_are_dropped(sleep, extra, aliased, reml):
    frame = sleep.assign(**extra)
    formula = f"Reaction ~ Days + {' + '.join(extra)} + (Days | Subject)"
    result = fit_with_one_warning(
        formula, frame, rf"rank deficient; dropped the aliased column\(s\) {aliased} ", reml=reml)
    assert list(result.fixef.index) == ["(Intercept)", "Days"]
    assert_same_fit(result, fit_quietly(SLEEP, sleep, reml=reml))


def test_aliased_dummy_of_a_factor(sleep):
    pastes = data.load("Pastes").assign(is_c=lambda f: (f["cask"] == "c").astype(float))
    result = fit_with_one_warning("strength ~ cask + is_c + (1 | batch)", pastes,
                                  r"dropped the aliased column\(s\) is_c ")
    assert_same_fit(result, fit_quietly("strength ~ cask + (1 | batch)", pastes))


# ---------------------------------------------------------------------------------------
# Grouping columns of any type, Python keywords, unused levels, row order
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("recode", [
    lambda s: s.astype(int),
    lambda s: s.astype(float),
    lambda s: s.astype(str),
    lambda s: s.astype(str).astype(object),
    lambda s: s.astype(int).astype("Int64"),
    lambda s: s.astype(str).astype("string[python]"),
], ids=["int", "float", "str", "object", "Int64", "string"])
def test_grouping_column_of_any_type_is_a_factor(sleep, sleep_fit, recode):
    result = fit_quietly(SLEEP, sleep.assign(Subject=recode(sleep["Subject"])))
    assert_same_fit(result, sleep_fit)
    # the same levels in the same order (as numbers: a float column's labels read '308.0')
    assert [float(level) for level in result.ranef["Subject"].index] == \
        [float(level) for level in sleep_fit.ranef["Subject"].index]
    np.testing.assert_allclose(result.ranef["Subject"], sleep_fit.ranef["Subject"], rtol=1e-8)


def test_boolean_grouping_column_is_a_factor_with_two_levels(sleep):
    """A bool column groups like the two strings 'False' and 'True' (R: factor(TRUE/FALSE))."""
    flag = (sleep["Subject"].astype(int) % 3 == 0).to_numpy()
    formula = "Reaction ~ Days + (1 | late)"
    result = fit_quietly(formula, sleep.assign(late=flag))
    as_text = fit_quietly(formula, sleep.assign(late=np.where(flag, "True", "False")))
    assert_same_fit(result, as_text, rtol=0)
    assert list(result.ranef["late"].index) == ["False", "True"]
    nullable = fit_quietly(formula, sleep.assign(late=pd.array(flag, dtype="boolean")))
    assert_same_fit(nullable, result, rtol=0)


def test_python_keywords_as_column_names(sleep, sleep_fit):
    renamed = sleep.rename(columns={"Reaction": "yield", "Days": "lambda", "Subject": "class"})
    result = fit_quietly("yield ~ lambda + (lambda | class)", renamed)
    assert_same_fit(result, sleep_fit, rtol=0, same_names=False)
    assert list(result.fixef.index) == ["(Intercept)", "lambda"]
    assert list(result.ranef) == ["class"]
    uncorrelated = fit_quietly("yield ~ lambda + (lambda || class)", renamed)
    assert_same_fit(uncorrelated, fit_quietly("Reaction ~ Days + (Days || Subject)", sleep),
                    rtol=0, same_names=False)


def test_python_keywords_in_a_nested_grouping_factor():
    pastes = data.load("Pastes").rename(columns={"strength": "yield", "batch": "class", "cask": "from"})
    result = fit_quietly("yield ~ 1 + (1 | class/from)", pastes)
    assert_same_fit(result, fit_quietly("strength ~ 1 + (1 | batch/cask)", data.load("Pastes")), rtol=0)
    assert set(result.ranef) == {"class", "from:class"}


def test_unused_levels_of_a_grouping_factor(sleep, sleep_fit):
    frame = sleep.assign(Subject=sleep["Subject"].cat.add_categories(["999", "000"]))
    result = fit_with_one_warning(
        SLEEP, frame, r"column 'Subject' has 2 categorical level\(s\) with no observations "
        r"\(999, 000\); they are left out")
    assert_same_fit(result, sleep_fit, rtol=0)
    assert "999" not in result.ranef["Subject"].index


def test_unused_levels_of_a_fixed_factor_never_become_the_reference():
    """lme4 drops unused levels of every factor (drop.unused.levels = TRUE); an unused
    first level would otherwise be the reference level and alias a real one."""
    pastes = data.load("Pastes")
    frame = pastes.assign(cask=pastes["cask"].cat.set_categories(["none", "a", "b", "c", "z"]))
    result = fit_with_one_warning("strength ~ cask + (1 | batch)", frame,
                                  r"'cask' has 2 categorical level\(s\) with no observations \(none, z\)")
    assert list(result.fixef.index) == ["(Intercept)", "cask[T.b]", "cask[T.c]"]
    assert_same_fit(result, fit_quietly("strength ~ cask + (1 | batch)", pastes), rtol=0)


def test_rows_in_any_order(sleep, sleep_fit):
    order = np.random.default_rng(20240).permutation(len(sleep))
    shuffled = sleep.iloc[order]  # index kept: the rows carry their old labels
    result = fit_quietly(SLEEP, shuffled)
    np.testing.assert_allclose(result.objective, sleep_fit.objective, rtol=1e-10)
    np.testing.assert_allclose(result.theta, sleep_fit.theta, rtol=1e-4)
    np.testing.assert_allclose(result.fixef, sleep_fit.fixef, rtol=1e-6)
    np.testing.assert_allclose(result.fitted, sleep_fit.fitted[order], rtol=1e-6)
    np.testing.assert_allclose(result.ranef["Subject"], sleep_fit.ranef["Subject"], rtol=1e-4, atol=1e-4)
    assert list(result.ranef["Subject"].index) == list(sleep_fit.ranef["Subject"].index)


def test_row_labels_do_not_matter(sleep, sleep_fit):
    relabelled = sleep.set_index(pd.Index([f"r{k}" for k in range(len(sleep))][::-1]))
    assert_same_fit(fit_quietly(SLEEP, relabelled), sleep_fit, rtol=0)


# ---------------------------------------------------------------------------------------
# Covariates on wildly different scales
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("c", [1e6, 1e-6, 1e12], ids=["1e6", "1e-6", "1e12"])
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_rescaled_fixed_covariate(sleep, c, reml):
    """x -> c x is X -> X A with A = diag(1, c): the ML deviance is unchanged, the REML
    criterion grows by log|det A|^2 = 2 log c (log|R_X|^2 does), beta_x shrinks by c."""
    formula = "Reaction ~ Days + (1 | Subject)"
    base = fit_quietly(formula, sleep, reml=reml)
    scaled = fit_quietly(formula, sleep.assign(Days=c * sleep["Days"]), reml=reml)
    shift = 2 * np.log(c) if reml else 0.0
    np.testing.assert_allclose(scaled.objective, base.objective + shift, rtol=1e-9)
    np.testing.assert_allclose(scaled.fixef, base.fixef / [1, c], rtol=1e-5)
    np.testing.assert_allclose(scaled.stderr, base.stderr / [1, c], rtol=1e-5)
    np.testing.assert_allclose(scaled.theta, base.theta, rtol=1e-4)
    np.testing.assert_allclose(scaled.sigma, base.sigma, rtol=1e-5)
    np.testing.assert_allclose(scaled.fitted, base.fitted, rtol=1e-7)


@pytest.mark.parametrize("c", [1e3, 1e6, 1e-6, 1e12], ids=["1e3", "1e6", "1e-6", "1e12"])
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_rescaled_random_slope_covariate(sleep, c, reml):
    """With a random slope on c x, row 2 of T is divided by c: same model, same criterion
    (up to 2 log c for REML), same SDs; no LinAlgError, no false convergence warning."""
    base = fit_quietly(SLEEP, sleep, reml=reml)
    scaled = fit_quietly(SLEEP, sleep.assign(Days=c * sleep["Days"]), reml=reml)
    assert scaled.converged and not scaled.singular
    shift = 2 * np.log(c) if reml else 0.0
    np.testing.assert_allclose(scaled.objective, base.objective + shift, rtol=1e-9)
    np.testing.assert_allclose(scaled.theta, base.theta / [1, c, c], rtol=1e-4)
    np.testing.assert_allclose(scaled.fixef, base.fixef / [1, c], rtol=1e-5)
    sds = scaled.varcorr["sdcor"].to_numpy()
    np.testing.assert_allclose(sds, base.varcorr["sdcor"].to_numpy() / [1, c, 1, 1], rtol=1e-4)
    # the optimiser's path is recorded in theta's units, not its own
    best_theta, best_value = min(scaled.optimizer.path, key=lambda point: point[1])
    np.testing.assert_allclose(best_value, scaled.objective, rtol=1e-12)
    np.testing.assert_allclose(best_theta, scaled.theta, rtol=1e-6, atol=1e-12 / c)


def test_badly_scaled_design_does_not_break_the_cholesky(sleep):
    """Covariates of size 1e-6 and 1e9 side by side, one with a random slope."""
    frame = sleep.assign(tiny=1e-6 * sleep["Days"], huge=1e9 * np.cos(sleep["Days"]))
    result = fit_quietly("Reaction ~ tiny + huge + (tiny | Subject)", frame)
    plain = fit_quietly("Reaction ~ Days + cosd + (Days | Subject)", sleep.assign(cosd=np.cos(sleep["Days"])))
    np.testing.assert_allclose(result.objective, plain.objective + 2 * np.log(1e-6 * 1e9), rtol=1e-9)
    np.testing.assert_allclose(result.fixef, plain.fixef / [1, 1e-6, 1e9], rtol=1e-5)


def test_well_scaled_columns_keep_lme4s_start(sleep, sleep_fit):
    """theta_scale is all ones on ordinary data, so the fit follows lme4's path exactly."""
    np.testing.assert_array_equal(lmm_ref.starting.theta_scale(sleep_fit.design), 1.0)
    np.testing.assert_array_equal(sleep_fit.optimizer.path[0][0], [1.0, 0.0, 1.0])
    scaled = fit_quietly(SLEEP, sleep.assign(Days=1e6 * sleep["Days"]))
    m = np.sqrt(np.mean((1e6 * sleep["Days"]) ** 2))
    np.testing.assert_allclose(scaled.optimizer.path[0][0], [1.0, 0.0, 1.0 / m], rtol=1e-15)


# ---------------------------------------------------------------------------------------
# Boundary fits
# ---------------------------------------------------------------------------------------

def test_boundary_fit_is_singular_not_an_error():
    dyestuff2 = data.load("Dyestuff2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = lmm_ref.fit("Yield ~ 1 + (1 | Batch)", dyestuff2)
    assert result.singular and result.theta[0] == 0.0
    assert np.all(result.ranef["Batch"].to_numpy() == 0.0)  # b = Lambda u = 0
    np.testing.assert_allclose(result.sigma, dyestuff2["Yield"].std(), rtol=1e-10)  # all residual
    assert "boundary (singular) fit" in str(result)


def test_perfectly_correlated_random_effects_are_singular():
    """A random slope that is an exact multiple of the random intercept: T has rank 1."""
    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(12), 8)
    x = np.tile(np.linspace(-1.0, 1.0, 8), 12)
    effect = rng.normal(scale=2.0, size=12)[groups]
    frame = pd.DataFrame({"y": 1 + x + effect * (1 + 0.5 * x) + rng.normal(scale=0.3, size=len(x)),
                          "x": x, "g": groups})
    result = lmm_ref.fit("y ~ x + (x | g)", frame)
    assert result.singular and np.isfinite(result.objective)
    correlation = result.varcorr.query("var2 == var2")["sdcor"].item()
    np.testing.assert_allclose(abs(correlation), 1.0, atol=1e-3)
    # no better point nearby: the criterion rises when the rank-1 T is opened up
    worse = criterion(result.design, result.theta + [0, 0, 0.05], True)
    assert worse > result.objective


def test_crossed_boundary_fit_keeps_the_other_variance():
    """Penicillin with a pure-noise extra factor: that term sits on the boundary."""
    penicillin = data.load("Penicillin")
    noise = np.tile(["u", "v", "w"], len(penicillin) // 3)
    result = lmm_ref.fit("diameter ~ 1 + (1 | plate) + (1 | sample) + (1 | batch)",
                         penicillin.assign(batch=noise))
    base = fit_quietly("diameter ~ 1 + (1 | plate) + (1 | sample)", penicillin)
    assert result.singular
    assert result.theta[2] == 0.0  # terms are ordered plate (24), sample (6), batch (3)
    np.testing.assert_allclose(result.objective, base.objective, rtol=1e-8)
    np.testing.assert_allclose(result.theta[:2], base.theta, rtol=1e-4)


# ---------------------------------------------------------------------------------------
# Where the optimiser starts does not decide where it stops
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula, start", [
    ("Reaction ~ Days + (1 | Subject)", [0.0]),               # zero slope on the bound
    ("Reaction ~ Days + (1 | Subject)", [1e-7]),              # and next to it
    (SLEEP, [0.0, 0.0, 0.0]),
    (SLEEP, [0.0, -1.0, 0.2]),   # column 1 is (0, -1): the same T T' as (0, 1)
    (SLEEP, [1e-6, 0.5, 1e-6]),
    (SLEEP, [20.0, -5.0, 20.0]),
], ids=["int-0", "int-1e-7", "slope-0", "slope-sign", "slope-near-0", "slope-far"])
def test_fit_does_not_depend_on_the_start(sleep, formula, start):
    """At theta_jj = 0 the criterion's slope in theta_jj is zero (it depends on T T' only),
    so an optimiser on or near the bound sees nothing to do; fit must still find the
    interior minimum."""
    default = fit_quietly(formula, sleep)
    result = fit_quietly(formula, sleep, start=start)
    np.testing.assert_allclose(result.objective, default.objective, rtol=1e-9)
    np.testing.assert_allclose(result.theta, default.theta, rtol=1e-4, atol=1e-4)
    assert not result.singular and result.converged


def test_an_unevaluable_criterion_is_a_data_error_not_a_linalg_error(sleep, monkeypatch):
    """Should R_X's Cholesky factorisation fail at every theta the optimiser tries, fit
    says which columns are to blame instead of letting LinAlgError through."""
    def fails(products, theta):
        raise np.linalg.LinAlgError("2-th leading minor of the array is not positive definite")

    monkeypatch.setattr(lmm_ref.pls, "solve", fails)   # what every evaluation calls
    with pytest.raises(DataError, match=r"fixed-effects columns \(\(Intercept\), Days\) are too "
                                        r"close to linear dependence.*constant within the groups"):
        lmm_ref.fit(SLEEP, sleep)


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_covariate_with_a_huge_mean(sleep, reml):
    """Days + 1e6 is X A with det A = 1: the same fit, REML criterion included.

    R_X'R_X = X'X - R_ZX'R_ZX would square X's condition number (about 1e7 here) and
    leave the criterion noisy at 1e-5; in the orthonormal basis of pls it is exact.
    """
    plain = fit_quietly(SLEEP, sleep, reml=reml)
    result = fit_quietly("Reaction ~ DaysBig + (Days | Subject)",
                         sleep.assign(DaysBig=sleep["Days"] + 1e6), reml=reml)
    np.testing.assert_allclose(result.objective, plain.objective, rtol=1e-8)
    np.testing.assert_allclose(result.fixef["DaysBig"], plain.fixef["Days"], rtol=1e-6)
    np.testing.assert_allclose(result.stderr["DaysBig"], plain.stderr["Days"], rtol=1e-6)
    np.testing.assert_allclose(result.theta, plain.theta, rtol=1e-5)
    # ... and at any theta, not only where the optimiser stops
    for theta in (plain.theta, [0.3, -0.2, 0.5]):
        np.testing.assert_allclose(criterion(result.design, theta, reml),
                                   criterion(plain.design, theta, reml), rtol=1e-10)


def test_response_expression_is_the_same_as_its_column(sleep):
    """'log(Reaction) ~ ...' fits exactly as a precomputed log column does."""
    by_expression = fit_quietly("log(Reaction) ~ Days + (Days | Subject)", sleep)
    by_column = fit_quietly("lr ~ Days + (Days | Subject)", sleep.assign(lr=np.log(sleep["Reaction"])))
    np.testing.assert_array_equal(by_expression.design.y, by_column.design.y)
    assert by_expression.objective == by_column.objective


def test_a_local_minimum_gets_a_second_opinion(sleep):
    """On this response simulated from the sleep study's ML fit, L-BFGS-B from lme4's
    start runs into theta_3 = 0 early and settles at a deviance of 1757.70 (intercept
    SD near 0, a Hessian that is not positive definite).  The second opinion, COBYQA
    from the same start, reaches lme4's optimum: lme4 1.1-31's lmer on this response
    gives deviance 1752.8501190592 and theta (0.59824323, -0.09216171, 0.24337379)."""
    fit = fit_quietly(SLEEP, sleep, reml=False)
    y = fit.simulate(300, seed=1)[:, 32]
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # and no convergence warning
        result = lmm_ref.fit(SLEEP, sleep.assign(Reaction=y), reml=False)
    np.testing.assert_allclose(result.objective, 1752.8501190592, rtol=1e-11)
    np.testing.assert_allclose(result.theta, [0.59824323, -0.09216171, 0.24337379],
                               atol=2e-5)
    assert result.optimizer.message.startswith("COBYQA from the start, after L-BFGS-B")
    assert result.converged
    # without it, L-BFGS-B's answer: the local minimum
    phi, _ = lmm_ref.optimise.minimise(lmm_ref.optimise.Criterion(result.products, False),
                                       result.design.layout.start, result.design.layout.lower)
    assert lmm_ref.optimise.Criterion(result.products, False)(phi) > result.objective + 4
