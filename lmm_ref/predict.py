"""Predictions from a fitted model, for its own rows or new ones (chapter 7).

A prediction is x'beta-hat + o + z'b-tilde (eq-predict): the fixed part, the offset, and
the conditional modes of the groups the row belongs to.  `re_form` chooses the
random-effects terms to condition on, as lme4's `re.form` does: None for all of them,
"NA" or "~0" for none (the population value), or a formula such as "~(1 | Subject)",
whose columns pick those of the model's terms on that factor (on a (Days | Subject)
model, "~(1 | Subject)" adds the subjects' intercepts only).  A level the fit never saw
gets b = 0, the population value, only when `allow_new_levels` is true.

New rows are encoded exactly as the fit's rows were (`design.encoding`): the same
columns, contrasts and factor levels.  A level of a fixed-effects factor the fit never
saw is an error; a row with a missing value in a column the prediction needs gets NaN,
with a warning (lme4's na.pass).

Prediction intervals (eq-pred-var): at theta-hat, the error of x'beta-hat + z'b-tilde as
a prediction of x'beta + z'b has variance sigma^2 ||R^{-T} (Lambda'z, x)||^2, with R
the upper factor of the penalized least-squares system of chapter 3; a new observation
adds sigma^2; a term not conditioned on (a new level, or a term re_form leaves out) adds
z_i'Sigma_i z_i, its effect being unknown.
"""

import warnings

import formulaic
import numpy as np
import pandas as pd
import scipy.stats as st

from . import pls
from .encoding import evaluate, group_values
from .errors import DataError, DataTypeError, FormulaError, warn
from .formula import parse

NO_RANDOM_EFFECTS = ("NA", "~0", "~ 0", "~-1", "~ -1")


def terms_to_use(design, re_form):
    """{position of a term: the columns of it to use}, for lme4's re_form."""
    if re_form is None:
        return {k: list(term.columns) for k, term in enumerate(design.terms)}
    if not isinstance(re_form, str):
        raise FormulaError(f"re_form must be None, 'NA', '~0' or a formula such as "
                           f"'~(1 | g)', not {re_form!r}")
    text = re_form.strip()
    if text in NO_RANDOM_EFFECTS:
        return {}
    if not text.startswith("~"):
        raise FormulaError(f"re_form {re_form!r} must start with '~', as in '~(1 | g)'")
    chosen = {}
    for asked in parse("response " + text).random:
        on_factor = [k for k, term in enumerate(design.terms) if term.group == asked.group]
        if not on_factor:
            raise FormulaError(
                f"re_form {re_form!r} names the grouping factor {asked.group!r}, which no "
                "term of the model has; the model's terms are: "
                + ", ".join(str(term) for term in design.terms))
        columns = expression_columns(asked.expr, design.data)
        available = [c for k in on_factor for c in design.terms[k].columns]
        missing = [c for c in columns if c not in available]
        if missing:
            raise FormulaError(
                f"re_form {re_form!r} asks for the column(s) {', '.join(missing)} of "
                f"{asked.group!r}, but the model's terms on it have only "
                + ", ".join(available))
        for k in on_factor:
            keep = set(chosen.get(k, [])) | (set(columns) & set(design.terms[k].columns))
            if keep:
                chosen[k] = [c for c in design.terms[k].columns if c in keep]
    return chosen


def expression_columns(expr, data):
    """The column names the expression of a random-effects term makes, e.g. ['Days']."""
    _, names, _ = evaluate(formulaic.Formula(expr), data.iloc[:2], f"re_form term ({expr} | ...)")
    return names


def needed_columns(design, chosen):
    """The data columns a prediction with the chosen terms reads."""
    encoding = design.encoding
    columns = set(encoding.fixed.required_variables)
    for spec in encoding.offsets:
        columns |= set(spec.required_variables)
    for k in chosen:
        columns |= set(encoding.terms[k][0].required_variables)
        columns |= set(design.terms[k].group_columns)
    return sorted(columns)


def as_fitted(spec, rows, where):
    """rows with each categorical variable of spec set in the fit's categories; a level
    the fit never saw is an error naming the column and the level."""
    rows = rows.copy()
    for name, (kind, state) in spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical" or name not in rows.columns:
            continue
        lookup = {str(level): level for level in state["categories"]}
        texts = rows[name].astype(str)
        unseen = sorted(set(texts) - set(lookup))
        if unseen:
            raise DataError(
                f"newdata's column {name!r} has the level(s) {', '.join(unseen[:5])}, "
                f"which the fit never saw in the {where}; its levels were "
                + ", ".join(map(str, state["categories"])))
        rows[name] = pd.Categorical(texts.map(lookup), categories=state["categories"])
    return rows


def encode(spec, rows, where):
    """spec's model matrix on new rows, encoded as the fit's rows were."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # formulaic's DataMismatchWarning: unseen levels
        try:
            matrix, _, _ = evaluate(spec, as_fitted(spec, rows, where), where)
        except Warning as mismatch:
            raise DataError(f"cannot encode newdata for the {where}: {mismatch}") from None
    return matrix


def group_codes(term, rows, allow_new_levels):
    """Each row's level of the term's grouping factor (-1 for a level the fit never saw)."""
    codes = term.levels.get_indexer(group_values(term.group_columns, rows))
    if not allow_new_levels and np.any(codes < 0):
        new = sorted(set(group_values(term.group_columns, rows)[codes < 0]))
        raise DataError(
            f"newdata has level(s) {', '.join(new[:5])} of the grouping factor "
            f"{term.group!r} that the fit never saw; pass allow_new_levels=True to predict "
            "them at the population value (b = 0), or drop those rows")
    return codes


class NewRows:
    """New rows encoded for a fit: X, the offset, and for each chosen term its model
    matrix and the rows' levels.  `complete` marks the rows without missing values."""

    def __init__(self, fit, newdata, chosen, allow_new_levels):
        design = fit.design
        if not isinstance(newdata, pd.DataFrame):
            raise DataTypeError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
        columns = needed_columns(design, chosen)
        absent = [c for c in columns if c not in newdata.columns]
        if absent:
            raise DataError(f"newdata has no column {', '.join(map(repr, absent))}, which the "
                            "model uses; it has: " + ", ".join(map(str, newdata.columns)))
        self.complete = ~newdata[columns].isna().any(axis=1).to_numpy()
        if not self.complete.all():
            warn(f"{int((~self.complete).sum())} row(s) of newdata have missing values in "
                 f"{', '.join(columns)}; their predictions are NaN")
        rows = newdata.loc[self.complete, columns].reset_index(drop=True)
        encoding = design.encoding
        self.X = encode(encoding.fixed, rows, "fixed part")[:, encoding.kept]
        self.offset = sum((encode(spec, rows, "offset")[:, 0] for spec in encoding.offsets),
                          np.zeros(len(rows)))
        self.terms = {k: (encode(encoding.terms[k][0], rows, f"term {design.terms[k]}"),
                          group_codes(design.terms[k], rows, allow_new_levels))
                      for k in chosen}


def predict(fit, newdata=None, re_form=None, allow_new_levels=False):
    """Predictions x'beta-hat + o + z'b-tilde for newdata (the fit's rows if None)."""
    chosen = terms_to_use(fit.design, re_form)
    if newdata is None and re_form is None:
        return fit.fitted.copy()
    data = fit.design.data if newdata is None else newdata
    rows = NewRows(fit, data, chosen, allow_new_levels)
    values = rows.X @ fit.fixef.to_numpy() + rows.offset
    for k, columns in chosen.items():
        term = fit.design.terms[k]
        X_k, codes = rows.terms[k]
        modes = fit.ranef[term.group][term.columns].to_numpy()   # (levels, p_k)
        use = np.isin(term.columns, columns)
        known = codes >= 0
        values[known] += np.sum(X_k[known][:, use] * modes[codes[known]][:, use], axis=1)
    out = np.full(len(data), np.nan)
    out[rows.complete] = values
    return out


def prediction_intervals(fit, newdata, re_form=None, allow_new_levels=False, level=0.95):
    """A DataFrame of predictions with prediction intervals for new observations.

    `fit` the point prediction; `se` the standard error of the prediction of a new
    observation, conditional on theta-hat (eq-pred-var); `lower` and `upper` the normal
    interval at `level`.  Terms not conditioned on count with their full variance
    z_i'Sigma_i z_i, as a fresh draw: a new level, and also a known level of a term
    that re_form leaves out (the interval then ignores what the data say about it).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    design = fit.design
    chosen = terms_to_use(design, re_form)
    partial = [str(design.terms[k]) for k, cols in chosen.items()
               if len(cols) < design.terms[k].p]
    if partial:
        raise FormulaError("prediction intervals need whole terms, but re_form keeps only "
                           f"some columns of {', '.join(partial)}")
    everything = terms_to_use(design, None)
    rows = NewRows(fit, newdata, everything, allow_new_levels=True)
    if not allow_new_levels:  # the same check (and message) as predict
        NewRows(fit, newdata, chosen, allow_new_levels=False)
    solution = pls.solve(fit.products, fit.theta)
    point = rows.X @ fit.fixef.to_numpy() + rows.offset
    z_known = np.zeros((len(point), design.q))   # Lambda'z for the conditioned effects
    unknown = np.zeros(len(point))                # sum of z_i'Sigma_i z_i, the others
    start = 0
    Sigma = design.layout.Sigma(fit.theta, fit.sigma)
    for k, term in enumerate(design.terms):
        X_k, codes = rows.terms[k]
        conditioned = (codes >= 0) & (k in chosen)
        modes = fit.ranef[term.group][term.columns].to_numpy()
        point[conditioned] += np.sum(X_k[conditioned] * modes[codes[conditioned]], axis=1)
        T = solution.Ts[k]
        for r in np.flatnonzero(conditioned):
            cols = start + codes[r] * term.p + np.arange(term.p)
            z_known[r, cols] = T.T @ X_k[r]
        others = ~conditioned
        unknown[others] += np.einsum("ra,ab,rb->r", X_k[others], Sigma[k], X_k[others])
        start += term.q
    # R^{-T} (Lambda'z, x): forward solves with the blocks of chapter 3's factor
    v_u = solution.L.solve_L(z_known.T)
    v_beta = np.linalg.solve(solution.R_X.T, rows.X.T - solution.R_ZX.T @ v_u)
    estimate_variance = fit.sigma**2 * (np.sum(v_u**2, axis=0) + np.sum(v_beta**2, axis=0))
    se = np.sqrt(estimate_variance + unknown + fit.sigma**2)
    z = st.norm.ppf(0.5 + level / 2)
    table = pd.DataFrame(np.nan, index=newdata.index, columns=["fit", "se", "lower", "upper"])
    table.loc[rows.complete, "fit"] = point
    table.loc[rows.complete, "se"] = se
    table["lower"] = table["fit"] - z * table["se"]
    table["upper"] = table["fit"] + z * table["se"]
    return table
