"""`print(fit)`: a summary laid out like lme4's `summary(lmer(...))`.

Numbers are formatted the way R's `format()` and `printCoefmat()` do, so that a reader
can hold our summary next to lme4's and compare digit by digit: a column is given the
number of decimals its most demanding entry needs to show `digits` significant digits.
"""

import numpy as np


def r_format(values, digits):
    """Format numbers as R's format(x, digits=) does: common decimals for the column."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values) & (values != 0)]
    decimals = 0
    for value in finite:
        significant = float(f"{value:.{digits}g}")
        magnitude = int(np.floor(np.log10(abs(significant))))
        # the fewest significant digits that still show `significant` exactly
        for needed in range(1, digits + 1):
            if float(f"{significant:.{needed}g}") == significant:
                break
        decimals = max(decimals, needed - 1 - magnitude)
    texts = [f"{value:.{decimals}f}" for value in values]
    width = max(map(len, texts), default=0)
    return [text.rjust(width) for text in texts]  # R pads a column to one width


def _coefficient_columns(estimates, stderrs, digits=4):
    """printCoefmat's rule: estimate and SE rounded together, then formatted."""
    both = np.abs(np.concatenate([estimates, stderrs]))
    both = both[np.isfinite(both) & (both > 0)]
    smallest = 1 + int(np.floor(np.log10(both.min()))) if both.size else 1
    rounding = max(1, digits - smallest)
    formatted = r_format(np.round(np.concatenate([estimates, stderrs]), rounding), digits)
    k = len(estimates)
    t_values = r_format(np.round(np.asarray(estimates) / np.asarray(stderrs), 3), digits)
    return formatted[:k], formatted[k:], t_values


def _table(rows, align):
    """Lay out rows of strings in columns; align is 'l' or 'r' per column."""
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align)]
        lines.append(" ".join(cells).rstrip())
    return lines


def _random_effects_block(fit):
    table = fit.varcorr
    variances = table[table["var2"].isna()]
    has_corr = table["var2"].notna().any()
    variance_text = r_format(variances["vcov"], 4)
    sd_text = r_format(variances["sdcor"], 4)
    rows = [["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if has_corr else [])]
    previous = None
    for (index, row), variance, sd in zip(variances.iterrows(), variance_text, sd_text):
        group = row["group"] if row["group"] != previous else ""
        previous = row["group"]
        cells = [group, row["var1"] if isinstance(row["var1"], str) else "", variance, sd]
        if has_corr:
            correlations = table[(table["group"] == row["group"]) & (table["var2"] == row["var1"])]
            cells.append(" ".join(f"{c:.2f}" for c in correlations["sdcor"]))
        rows.append(cells)
    return ["Random effects:"] + [" " + line for line in _table(rows, "lllll"[: len(rows[0])])]


def _fixed_effects_block(fit):
    estimates, stderrs, t_values = _coefficient_columns(fit.fixef.to_numpy(), fit.stderr.to_numpy())
    rows = [["", "Estimate", "Std. Error", "t value"]]
    rows += [[name, e, s, t] for name, e, s, t in zip(fit.fixef.index, estimates, stderrs, t_values)]
    return ["Fixed effects:"] + _table(rows, "lrrr")


def _correlation_block(fit):
    """Correlation of fixed effects, lower triangle, with lme4's abbreviated names."""
    names = list(fit.fixef.index)
    if len(names) < 2:
        return []
    sd = np.sqrt(np.diag(fit.vcov.to_numpy()))
    correlation = fit.vcov.to_numpy() / np.outer(sd, sd)
    short = [_abbreviate(name) for name in names]
    rows = [[""] + short[:-1]]
    for i in range(1, len(names)):
        rows.append([names[i]] + [f"{correlation[i, j]:.3f}" for j in range(i)] + [""] * (len(names) - 1 - i))
    return ["Correlation of Fixed Effects:"] + _table(rows, "l" + "r" * (len(names) - 1))


def _abbreviate(name, minlength=6):
    """R's abbreviate(): drop lower-case vowels, then lower-case letters, from the right.

    '(Intercept)' becomes '(Intr)', as in lme4's correlation table.
    """
    chars = list(name)
    for removable in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if chars[i] in removable and chars[i - 1] != " ":
                del chars[i]
            i -= 1
    return "".join(chars[:minlength]) if len(chars) > minlength else "".join(chars)


def format_summary(fit):
    """The whole summary, as lme4 lays it out."""
    design = fit.design
    method = "REML" if fit.reml else "maximum likelihood"
    lines = [f"Linear mixed model fit by {method}  ['lmm_ref']", f"Formula: {fit.formula}"]
    if fit.data_name:
        lines.append(f"   Data: {fit.data_name}")
    lines.append("")
    if fit.reml:
        lines.append(f"REML criterion at convergence: {fit.objective:.1f}")
    else:
        header = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        values = [f"{fit.aic:.1f}", f"{fit.bic:.1f}", f"{fit.loglik:.1f}", f"{fit.objective:.1f}",
                  f"{design.n - fit.df}"]
        lines += [" " + line for line in _table([header, values], "rrrrr")]
    lines.append("")
    scaled = fit.residuals * np.sqrt(design.weights) / fit.sigma  # Pearson residuals
    quantiles = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
    lines.append("Scaled residuals: ")
    lines += _table([["Min", "1Q", "Median", "3Q", "Max"], r_format(np.round(quantiles, 4), 4)], "rrrrr")
    lines.append("")
    lines += _random_effects_block(fit)
    groups = {}
    for term in design.terms:
        groups.setdefault(term.group, term.n_levels)
    group_text = "; ".join(f"{name}, {count}" for name, count in groups.items())
    lines.append(f"Number of obs: {design.n}, groups:  {group_text}")
    lines.append("")
    lines += _fixed_effects_block(fit)
    correlation = _correlation_block(fit)
    if correlation:
        lines += [""] + correlation
    if fit.singular:
        lines += ["", "boundary (singular) fit: see help('isSingular')"]
    for message in fit.optimizer.warnings:
        lines += ["", f"Convergence warning: {message}"]
    return "\n".join(lines)
