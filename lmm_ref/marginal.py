"""The marginal likelihood computed the slow, obvious way (chapter 2).

Integrating the random effects out of the joint density gives (eq-marginal)

    Y ~ N(X beta, V),      V = Z Sigma Z' + sigma^2 I,      Sigma = sigma^2 Lambda Lambda'.

With an offset o and prior weights W (chapter 3) the mean is X beta + o and the noise
covariance sigma^2 W^-1 replaces sigma^2 I; both are the design's (zeros and ones when
the model has none).

This module forms the n x n matrix V, factors it, and evaluates the normal log-density.
It costs O(n^3) and uses no structure at all: that is the point.  It is the
brute-force truth that the fast penalized least-squares path (`lmm_ref.pls`,
`lmm_ref.profile`) is tested against, in the book and in `tests/`.
"""

import numpy as np
import scipy.linalg as la


def Sigma(design, theta, sigma):
    """Covariance of the random effects, Sigma = sigma^2 Lambda Lambda' (q x q, dense)."""
    Lambda = design.Lambda(theta).toarray()
    return sigma**2 * Lambda @ Lambda.T


def V(design, theta, sigma):
    """Marginal covariance of Y, V = Z Sigma Z' + sigma^2 W^-1 (n x n, dense).

    W holds the prior weights (W = I without them).
    """
    Z = design.Z.toarray()
    noise = sigma**2 * np.diag(1.0 / design.weights)
    return Z @ Sigma(design, theta, sigma) @ Z.T + noise


def loglik(design, beta, theta, sigma):
    """log N(y; X beta + o, V): the marginal log-likelihood.

    At (beta, theta, sigma); o is the offset (zero without one).
    """
    chol = la.cho_factor(V(design, theta, sigma), lower=True)
    beta = np.asarray(beta, dtype=float)
    residual = design.y - design.offset - design.X @ beta
    logdet_V = 2.0 * np.sum(np.log(np.diag(chol[0])))
    quadratic = residual @ la.cho_solve(chol, residual)
    return -0.5 * (design.n * np.log(2 * np.pi) + logdet_V + quadratic)


def beta_gls(design, theta, sigma=1.0):
    """Generalised least squares beta-hat = (X' V^-1 X)^-1 X' V^-1 y.

    It does not depend on sigma, because V / sigma^2 depends on theta alone.
    """
    chol = la.cho_factor(V(design, theta, sigma), lower=True)
    Vinv_X = la.cho_solve(chol, design.X)
    return np.linalg.solve(design.X.T @ Vinv_X, Vinv_X.T @ (design.y - design.offset))


def reml_loglik(design, theta, sigma):
    """The REML log-likelihood, lme4's convention: beta integrated out.

    The integral over beta of the likelihood is Gaussian in beta (chapter 5):

        log of the integral = loglik(beta-hat) + (p/2) log(2 pi)
                              - (1/2) log|X' V^-1 X|,

    with beta-hat the GLS estimate.  It depends on theta and sigma only.
    """
    chol = la.cho_factor(V(design, theta, sigma), lower=True)
    X, y = design.X, design.y - design.offset
    information = X.T @ la.cho_solve(chol, X)              # X' V^-1 X
    beta_hat = np.linalg.solve(information, X.T @ la.cho_solve(chol, y))
    _, logdet_information = np.linalg.slogdet(information)
    return (loglik(design, beta_hat, theta, sigma)
            + 0.5 * design.p * np.log(2 * np.pi) - 0.5 * logdet_information)
