"""Profiling beta and sigma^2 out of the likelihood (chapters 4 and 5).

With the penalized least-squares solution at theta (`lmm_ref.pls`), the ML deviance
-2 log L(theta, beta, sigma) is (eq-deviance-pls)

    d(theta, beta, sigma) = n log(2 pi sigma^2) + log|L|^2 + r^2(theta, beta) / sigma^2.

beta-hat(theta) minimises r^2, and sigma-hat^2(theta) = r^2(theta) / n then minimises
over sigma, leaving a function of theta alone, the profiled deviance (eq-profiled-deviance)

    d(theta) = log|L|^2 + n (1 + log(2 pi r^2(theta) / n)).

Integrating beta out instead (REML, chapter 5) adds log|R_X|^2 and replaces n by n - p
(eq-profiled-reml):

    d_R(theta) = log|L|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2(theta) / (n - p))).

Both are lme4's values: `deviance(fm)` for ML and `REMLcrit(fm)` for REML.
"""

import numpy as np

from . import gradient, pls


def deviance_at(solution, n, beta, sigma):
    """-2 log L(theta, beta, sigma) through PLS, at any beta and sigma (eq-deviance-pls)."""
    return (n * np.log(2.0 * np.pi * sigma**2) + solution.logdet_L2
            + pls.r2_at(solution, beta) / sigma**2)


def deviance(solution, n):
    """d(theta): the ML deviance profiled over beta and sigma (eq-profiled-deviance)."""
    return solution.logdet_L2 + n * (1.0 + np.log(2.0 * np.pi * solution.r2 / n))


def reml_criterion(solution, n, p):
    """d_R(theta): the REML criterion profiled over sigma (eq-profiled-reml)."""
    dof = n - p
    return (solution.logdet_L2 + solution.logdet_RX2
            + dof * (1.0 + np.log(2.0 * np.pi * solution.r2 / dof)))


def sigma_hat(solution, n, p, reml):
    """sigma-hat(theta) = sqrt(r^2 / n) for ML, sqrt(r^2 / (n - p)) for REML."""
    return np.sqrt(solution.r2 / (n - p if reml else n))


def objective(design, theta, reml=True):
    """The criterion a fit minimises over theta: d_R(theta) if reml, else d(theta)."""
    return criterion(pls.solve(design, theta), design, reml)


def objective_and_gradient(design, theta, reml=True):
    """The criterion and its exact gradient in theta (`lmm_ref.gradient`)."""
    solution = pls.solve(design, theta)
    return criterion(solution, design, reml), gradient.gradient(design, solution, reml)


def criterion(solution, design, reml):
    """d_R(theta) or d(theta) from the penalized least-squares solution at theta."""
    if reml:
        return reml_criterion(solution, design.n, design.p)
    return deviance(solution, design.n)
