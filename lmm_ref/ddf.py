"""Satterthwaite's degrees of freedom for t tests of the fixed effects (chapter 8).

For a contrast c'beta, v = c' Var(beta-hat) c = sigma^2 c'(R_X'R_X)^{-1} c depends on the
covariance parameters phi = (theta, sigma).  Treating v-hat as a scaled chi-square with
the variance the delta method gives, Var(v-hat) ~ dv' cov_phi dv with dv = dv/dphi and
cov_phi = 2 H^{-1} the asymptotic covariance of phi-hat, matches its moments to a
chi-square with (eq-satt)

    df = 2 v^2 / (dv' cov_phi dv),

H the Hessian of the deviance (REML criterion for a REML fit) in (theta, sigma) at the
estimates, sigma not profiled out.  This is what lmerTest computes.  H comes from
central differences of the exact gradient of chapter 6 (at a fixed sigma, the criterion
is log|L|^2 + log|R_X|^2 + r^2 / sigma^2 + dof log(2 pi sigma^2)), and dv from central
differences of v.
"""

import numpy as np
import pandas as pd
import scipy.stats as st

from . import gradient, pls

STEP = 1e-4


def deviance_gradient(fit, phi):
    """The gradient in phi = (theta, sigma) of the unprofiled deviance."""
    theta, sigma = phi[:-1], phi[-1]
    solution = pls.solve(fit.products, theta)
    d_theta = gradient.gradient(fit.products, solution, fit.reml,
                                r2_weight=1.0 / sigma**2)
    dof = solution.n - solution.p if fit.reml else solution.n
    return np.append(d_theta, 2.0 * dof / sigma - 2.0 * solution.r2 / sigma**3)


def central_differences(fit, f):
    """Column k: (f(phi + h e_k) - f(phi - h e_k)) / 2h at the estimates
    phi = (theta-hat, sigma-hat), for an array-valued f of phi."""
    phi = np.append(fit.theta, fit.sigma)
    columns = []
    for k in range(len(phi)):
        h = STEP * max(abs(phi[k]), 1e-2 if k < len(phi) - 1 else fit.sigma)
        up, down = phi.copy(), phi.copy()
        up[k] += h
        down[k] -= h
        columns.append((f(up) - f(down)) / (2 * h))
    return np.stack(columns, axis=-1)


def deviance_hessian(fit):
    """H: the Hessian of the deviance in (theta, sigma) at the estimates, by central
    differences of its exact gradient."""
    H = central_differences(fit, lambda phi: deviance_gradient(fit, phi))
    return 0.5 * (H + H.T)


def beta_covariance(fit, phi):
    """Var(beta-hat) = sigma^2 (R_X'R_X)^{-1} at phi = (theta, sigma)."""
    solution = pls.solve(fit.products, phi[:-1])
    R_X_inv = np.linalg.inv(solution.R_X)
    return phi[-1] ** 2 * R_X_inv @ R_X_inv.T


def satterthwaite_df(fit, contrasts, hessian=None):
    """Satterthwaite's df for each row c of `contrasts` (a p-vector or a
    k x p array)."""
    contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
    H = deviance_hessian(fit) if hessian is None else hessian
    cov_phi = 2.0 * np.linalg.inv(H)    # large-sample Var of (theta, sigma)

    def v(phi):  # v_c = c' Var(beta-hat) c, for every contrast c at once
        return np.einsum("ca,ab,cb->c", contrasts, beta_covariance(fit, phi),
                         contrasts)

    jacobian = central_differences(fit, v)        # dv/dphi, one row per c
    v = np.einsum("ca,ab,cb->c", contrasts, fit.vcov.to_numpy(), contrasts)
    return 2.0 * v**2 / np.einsum("ck,kl,cl->c", jacobian, cov_phi, jacobian)


def coef_table(fit, ddf="Satterthwaite"):
    """lmerTest's coefficient table: Estimate, Std. Error, df, t value, Pr(>|t|)."""
    if ddf != "Satterthwaite":
        raise ValueError(f"ddf={ddf!r} is not offered; lmm_ref computes Satterthwaite's "
                         "degrees of freedom (ddf='Satterthwaite'); Kenward-Roger's are not "
                         "implemented")
    estimate, stderr = fit.fixef.to_numpy(), fit.stderr.to_numpy()
    df = satterthwaite_df(fit, np.eye(len(estimate)))
    t = estimate / stderr
    return pd.DataFrame({"Estimate": estimate, "Std. Error": stderr, "df": df, "t value": t,
                         "Pr(>|t|)": 2.0 * st.t.sf(np.abs(t), df)}, index=fit.fixef.index)
