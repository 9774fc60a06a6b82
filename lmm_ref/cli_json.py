"""The command line's results as data: lme4's long ranef table and the JSON document.

`python -m lmm_ref ... --json` prints `document(...)` through `dumps`: one JSON object
with the fit (formula, criterion, log-likelihood, AIC, BIC, fixed effects, VarCorr,
theta, convergence and singularity) and whatever --confint, --anova and --ranef asked
for.  Nothing here computes a statistic: every number is read off an `LmmFit` or a
table `lmm_ref` returned.  Missing values (a Wald interval of a variance parameter, the
first row of an anova table) become null, so that the output is valid JSON.
"""

import json
import math

import numpy as np
import pandas as pd


def ranef_frame(fit):
    """lme4's as.data.frame(ranef(fit, condVar=TRUE)): grpvar, term, grp, condval,
    condsd, factor by factor, term by term, level by level.  condsd is the square root
    of the diagonal of `fit.condvar`, the conditional covariance of each level's effects."""
    pieces = []
    condvar = fit.condvar
    for group, modes in fit.ranef.items():
        sds = np.sqrt(np.diagonal(condvar[group], axis1=1, axis2=2))  # (levels, k)
        for j, term in enumerate(modes.columns):
            pieces.append(pd.DataFrame({
                "grpvar": group, "term": term, "grp": modes.index.astype(str),
                "condval": modes[term].to_numpy(), "condsd": sds[:, j]}))
    return pd.concat(pieces, ignore_index=True)


def number(value):
    """A float for JSON, None for a missing or infinite value."""
    if value is None or pd.isna(value):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def label(value):
    """A VarCorr name (a str) or None for an empty cell."""
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def fit_document(fit):
    """The fit itself: everything `print(fit)` shows, as numbers."""
    groups = {}
    for term in fit.design.terms:
        groups.setdefault(term.group, term.n_levels)
    return {
        "formula": fit.formula,
        "data": fit.data_name,
        "reml": fit.reml,
        "nobs": fit.nobs,
        "groups": groups,
        "criterion": {"name": "REML criterion" if fit.reml else "deviance",
                      "value": number(fit.objective)},
        "loglik": number(fit.loglik),
        "AIC": number(fit.aic),
        "BIC": number(fit.bic),
        "deviance": None if fit.reml else number(fit.deviance),
        "df_resid": fit.nobs - fit.df,
        "fixef": {name: {"estimate": number(fit.fixef[name]),
                         "std_error": number(fit.stderr[name]),
                         "t_value": number(fit.fixef[name] / fit.stderr[name])}
                  for name in fit.fixef.index},
        "varcorr": [{"group": label(row.group), "var1": label(row.var1),
                     "var2": label(row.var2), "vcov": number(row.vcov),
                     "sdcor": number(row.sdcor)}
                    for row in fit.varcorr.itertuples(index=False)],
        "sigma": number(fit.sigma),
        "theta": [number(value) for value in fit.theta],
        "theta_names": list(fit.design.layout.names),
        "singular": bool(fit.singular),
        "converged": bool(fit.converged),
        "convergence_warnings": [str(message) for message in fit.optimizer.warnings],
        "optimizer": {"method": fit.optimizer.method, "message": str(fit.optimizer.message),
                      "evaluations": int(fit.optimizer.evaluations)},
    }


def confint_document(table, method, level, nsim=None, seed=None):
    """A `confint` table: {method, level, [nsim, seed,] intervals: {name: {lower, upper}}}."""
    out = {"method": method, "level": level}
    if method == "boot":
        out.update(nsim=nsim, seed=seed)
    out["intervals"] = {name: {"lower": number(lower), "upper": number(upper)}
                        for name, (lower, upper) in zip(table.index, table.to_numpy())}
    return out


def anova_document(table, names, refitted):
    """An `lmm_ref.anova` table (rows named by formula), one record per model in the
    table's order, named by `names`; `refitted`: were REML fits refitted by ML?"""
    models = []
    for name, (formula, row) in zip(names, table.iterrows()):
        record = {"model": name, "formula": formula}
        record.update({column: number(value) for column, value in row.items()})
        record["npar"] = int(row["npar"])
        models.append(record)
    return {"refitted_ml": refitted, "models": models}


def ranef_document(frame):
    """The long ranef table: {grouping factor: [{term, grp, condval, condsd}, ...]}."""
    out = {}
    for row in frame.itertuples(index=False):
        out.setdefault(row.grpvar, []).append(
            {"term": row.term, "grp": row.grp, "condval": number(row.condval),
             "condsd": number(row.condsd)})
    return out


def document(fit, confint=None, anova=None, ranef=None, predictions_file=None, warnings=()):
    """The whole JSON object: `fit_document`, plus "confint" (from the arguments of
    `confint_document`), "anova" (of `anova_document`), "ranef" (a `ranef_frame`),
    "predictions_file" when --predict wrote one, and every warning issued."""
    out = fit_document(fit)
    if confint is not None:
        out["confint"] = confint_document(*confint)
    if anova is not None:
        out["anova"] = anova_document(*anova)
    if ranef is not None:
        out["ranef"] = ranef_document(ranef)
    if predictions_file is not None:
        out["predictions_file"] = str(predictions_file)
    out["warnings"] = list(warnings)
    return out


def dumps(document):
    """Strict JSON (a NaN that slipped through is an error, not invalid output)."""
    return json.dumps(document, indent=2, allow_nan=False)
