"""Profiling beta and sigma^2 out of the likelihood (chapters 4 and 5).

With the penalized least-squares solution at theta (`lmm_ref.pls`), the ML deviance
-2 log L(theta, beta, sigma) is (eq-deviance-pls)

    d(theta, beta, sigma) = n log(2 pi sigma^2) + log|L|^2 - log|W| + r^2(theta, beta) / sigma^2.

beta-hat(theta) minimises r^2, and sigma-hat^2(theta) = r^2(theta) / n then minimises
over sigma, leaving a function of theta alone, the profiled deviance (eq-profiled-deviance)

    d(theta) = log|L|^2 - log|W| + n (1 + log(2 pi r^2(theta) / n)).

Integrating beta out instead (REML, chapter 5) adds log|R_X|^2 and replaces n by n - p
(eq-profiled-reml):

    d_R(theta) = log|L|^2 - log|W| + log|R_X|^2 + (n - p) (1 + log(2 pi r^2(theta) / (n - p))).

log|W| is the log-determinant of the prior weights, 0 without them.  Both are lme4's
values: `deviance(fm)` for ML and `REMLcrit(fm)` for REML.  Either, as a function of
theta, is "the criterion" that a fit minimises (`criterion`).
"""

import numpy as np

from . import pls


def deviance_at(solution, beta, sigma):
    """-2 log lik(theta, beta, sigma) through PLS, at any beta and sigma.

    (eq-deviance-pls)
    """
    return (solution.n * np.log(2.0 * np.pi * sigma**2)
            + solution.logdet_L2 - solution.logdet_W
            + pls.r2_at(solution, beta) / sigma**2)


def deviance(solution):
    """d(theta): the ML deviance profiled over beta and sigma.

    (eq-profiled-deviance)
    """
    n, r2 = solution.n, solution.r2
    return (solution.logdet_L2 - solution.logdet_W
            + n * (1.0 + np.log(2.0 * np.pi * r2 / n)))


def reml_criterion(solution):
    """d_R(theta): the REML criterion profiled over sigma.

    (eq-profiled-reml)
    """
    dof = solution.n - solution.p
    return (solution.logdet_L2 - solution.logdet_W + solution.logdet_RX2
            + dof * (1.0 + np.log(2.0 * np.pi * solution.r2 / dof)))


def sigma_hat(solution, reml):
    """sigma-hat(theta): sqrt(r^2 / n) for ML, sqrt(r^2 / (n - p)) for REML."""
    dof = solution.n - solution.p if reml else solution.n
    return np.sqrt(solution.r2 / dof)


def criterion(solution, reml):
    """The criterion at the solution's theta: d_R(theta) if reml, else d(theta)."""
    return reml_criterion(solution) if reml else deviance(solution)


def criterion_at(products, theta, reml=True):
    """theta -> d_R(theta) (reml) or d(theta): the function a fit minimises."""
    return criterion(pls.solve(products, theta), reml)
