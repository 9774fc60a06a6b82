"""Pictures of a fitted model: what it says about each group (chapter 7).

* `caterpillar`: each level's conditional mode with an interval of +-z conditional SDs
  (from `LmmFit.condvar`), levels ordered by their mode;
* `qq_ranef`: a normal quantile plot of the conditional modes;
* `shrinkage`: each group's own least-squares coefficients against its conditional
  coefficients beta-hat + b-tilde, coloured by the number of observations in the group;
* `residuals_vs_fitted`: residuals against fitted values.

Each draws on the Axes it is given (or a new one) and returns it.
"""

import matplotlib.pyplot as plt
import numpy as np
import scipy.stats as st


def _axes(ax):
    return plt.subplots(figsize=(5, 4))[1] if ax is None else ax


def caterpillar(fit, group, column=None, level=0.95, ax=None):
    """Conditional modes of one column of `fit.ranef[group]` with intervals, ordered."""
    table = fit.ranef[group]
    column = table.columns[0] if column is None else column
    j = list(table.columns).index(column)
    sd = np.sqrt(fit.condvar[group][:, j, j])
    order = np.argsort(table[column].to_numpy())
    z = st.norm.ppf(0.5 + level / 2)
    ax = _axes(ax)
    y = np.arange(len(order))
    ax.errorbar(table[column].to_numpy()[order], y, xerr=z * sd[order], fmt="o", ms=3,
                color="C0", ecolor="0.6", elinewidth=1)
    ax.axvline(0.0, color="0.3", lw=0.8)
    ax.set_yticks(y, [str(level_name) for level_name in table.index[order]])
    ax.set_xlabel(f"conditional mode of {column} ({100 * level:g}% interval)")
    ax.set_ylabel(group)
    return ax


def qq_ranef(fit, group, column=None, ax=None):
    """Normal quantile plot of one column of the conditional modes."""
    table = fit.ranef[group]
    column = table.columns[0] if column is None else column
    values = np.sort(table[column].to_numpy())
    k = len(values)
    quantiles = st.norm.ppf((np.arange(1, k + 1) - 0.5) / k)
    ax = _axes(ax)
    ax.plot(quantiles, values, "o", ms=4)
    slope = np.std(values, ddof=1)
    ax.plot(quantiles, np.mean(values) + slope * quantiles, color="0.4", lw=1)
    ax.set_xlabel("standard normal quantile")
    ax.set_ylabel(f"conditional mode of {column} ({group})")
    return ax


def own_coefficients(fit, group):
    """Each level's own least-squares coefficients on its term's columns, and the
    number of observations of the level (NaN rows where a level has too few)."""
    design = fit.design
    terms = [term for term in design.terms if term.group == group]
    columns = [c for term in terms for c in term.columns]
    X_g = np.column_stack([term.X for term in terms])
    codes = terms[0].codes
    y = design.y - design.offset
    coefficients = np.full((terms[0].n_levels, len(columns)), np.nan)
    counts = np.bincount(codes, minlength=terms[0].n_levels)
    for level in range(terms[0].n_levels):
        rows = codes == level
        if rows.sum() > len(columns):
            coefficients[level] = np.linalg.lstsq(X_g[rows], y[rows], rcond=None)[0]
    return columns, coefficients, counts


def shrinkage(fit, group, columns=None, ax=None):
    """Own least-squares coefficients (open) and conditional coefficients (filled) of
    each level, joined by a line, for two columns of the group's terms."""
    names, own, counts = own_coefficients(fit, group)
    missing = [c for c in names if c not in fit.fixef.index]
    if missing:
        raise ValueError(f"the shrinkage plot needs fixed effects for {', '.join(missing)}, "
                         f"the columns of {group!r}'s terms")
    columns = names[:2] if columns is None else list(columns)
    a, b = (names.index(c) for c in columns)
    conditional = fit.fixef[names].to_numpy() + fit.ranef[group][names].to_numpy()
    ax = _axes(ax)
    for level in range(len(counts)):
        ax.plot([own[level, a], conditional[level, a]], [own[level, b], conditional[level, b]],
                color="0.7", lw=0.8, zorder=1)
    norm = plt.Normalize(counts.min(), counts.max())
    colours = plt.cm.viridis(norm(counts))
    ax.scatter(own[:, a], own[:, b], facecolors="none", edgecolors=colours, marker="o",
               zorder=2, label="own least squares")
    scatter = ax.scatter(conditional[:, a], conditional[:, b], c=counts, cmap="viridis",
                         norm=norm, marker="o", zorder=3, label="mixed model")
    plt.colorbar(scatter, ax=ax, label="observations in the group")
    ax.set_xlabel(columns[0])
    ax.set_ylabel(columns[1])
    ax.legend(fontsize="small")
    return ax


def residuals_vs_fitted(fit, ax=None):
    """Pearson residuals (residuals times sqrt(w), over sigma) against fitted values."""
    ax = _axes(ax)
    scaled = fit.residuals * np.sqrt(fit.design.weights) / fit.sigma
    ax.plot(fit.fitted, scaled, "o", ms=3, alpha=0.6)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xlabel("fitted value")
    ax.set_ylabel("scaled residual")
    return ax
