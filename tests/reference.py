"""A literal float64 NumPy transcription of the paper's eq. (12), for tests.

Deliberately slow and plain: it keeps psi_k (not the D = theta - psi of the
implementation) and performs the two lines of eq. (12) as printed.
"""

import numpy as np


def inna_reference(
    grad_fn, theta0, alpha, beta, gammas, psi_init="gradient", weight_decay=0.0, decays=None
):
    """Runs eq. (12) on a dict of float64 arrays, as the authors' INNA does.

    Args:
      grad_fn: dict of arrays -> dict of (sub)gradients, in float64.
      theta0: dict of arrays, theta_0.
      alpha, beta: the hyperparameters.
      gammas: the step sizes gamma_0, ..., gamma_{K-1}.
      psi_init: "gradient" (s = 1), "params" (s = beta) or the initial speed s:
        psi_0 = (1 - alpha beta) theta_0 - (beta^2 - beta s) v_0.
      weight_decay: lambda; each step first sets theta <- (1 - gamma lambda) theta
        (psi unchanged), then runs eq. (12) with the gradient taken before the decay.
      decays: the names of the leaves weight decay applies to (default: all).

    Returns:
      (thetas, psis): lists of dicts, theta_k and psi_k for k = 0..K.
    """
    theta = {k: np.asarray(v, np.float64) for k, v in theta0.items()}
    speed = {"gradient": 1.0, "params": beta}.get(psi_init, psi_init)
    v0 = grad_fn(theta)
    psi = {k: (1 - alpha * beta) * v - (beta**2 - beta * speed) * v0[k] for k, v in theta.items()}
    decays = set(theta) if decays is None else set(decays)
    thetas, psis = [theta], [psi]
    for gamma in gammas:
        v = grad_fn(theta)
        theta = {k: (1 - gamma * weight_decay) * x if k in decays else x for k, x in theta.items()}
        new_theta, new_psi = {}, {}
        for k in theta:
            new_theta[k] = theta[k] + gamma * (
                (1 / beta - alpha) * theta[k] - psi[k] / beta - beta * v[k]
            )
            new_psi[k] = psi[k] + gamma * ((1 / beta - alpha) * theta[k] - psi[k] / beta)
        theta, psi = new_theta, new_psi
        thetas.append(theta)
        psis.append(psi)
    return thetas, psis


def innaprop_reference(
    grad_fn, theta0, alpha, beta, gammas, sigma, eps, weight_decay, form="authors"
):
    """INNAprop as the authors print it (Bolte et al. 2024), keeping psi, for
    k = 1..K with gamma_k = gammas[k - 1].

    form="authors" divides by beta - gamma as they do (undefined at gamma = beta);
    form="eq12" runs eq. (12) from the decayed theta with g / (sqrt(v_hat) + eps)
    in place of the gradient, which their paper says it is.

    Returns:
      (thetas, psis): lists of dicts, theta_k and psi_k for k = 0..K.
    """
    theta = {k: np.asarray(x, np.float64) for k, x in theta0.items()}
    psi = {k: (1 - alpha * beta) * x for k, x in theta.items()}
    nu = {k: np.zeros_like(x) for k, x in theta.items()}
    thetas, psis = [theta], [psi]
    for k, gamma in enumerate(gammas, start=1):
        g = grad_fn(theta)
        new_theta, new_psi = {}, {}
        for n in theta:
            th = (1 - gamma * weight_decay) * theta[n]
            nu[n] = sigma * nu[n] + (1 - sigma) * g[n] ** 2
            nu_hat = nu[n] / (1 - sigma**k)
            u = g[n] / (np.sqrt(nu_hat) + eps)
            new_psi[n] = (1 - gamma / beta) * psi[n] + gamma * (1 / beta - alpha) * th
            if form == "authors":
                new_theta[n] = (
                    (1 + gamma * (1 - alpha * beta) / (beta - gamma)) * th
                    - gamma / (beta - gamma) * new_psi[n]
                    - gamma * beta * u
                )
            else:
                new_theta[n] = th + gamma * ((1 / beta - alpha) * th - psi[n] / beta - beta * u)
        theta, psi = new_theta, new_psi
        thetas.append(theta)
        psis.append(psi)
    return thetas, psis
