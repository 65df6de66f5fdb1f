"""A literal float64 NumPy transcription of the paper's eq. (12), for tests.

Deliberately slow and plain: it keeps psi_k (not the D = theta - psi of the
implementation) and performs the two lines of eq. (12) as printed.
"""

import numpy as np


def inna_reference(grad_fn, theta0, alpha, beta, gammas, psi_init="gradient"):
    """Runs eq. (12) on a dict of float64 arrays.

    Args:
      grad_fn: dict of arrays -> dict of (sub)gradients, in float64.
      theta0: dict of arrays, theta_0.
      alpha, beta: the hyperparameters.
      gammas: the step sizes gamma_0, ..., gamma_{K-1}.
      psi_init: "gradient" (psi_0 = (1 - alpha beta) theta_0 - (beta^2 - beta) v_0)
        or "params" (psi_0 = (1 - alpha beta) theta_0).

    Returns:
      (thetas, psis): lists of dicts, theta_k and psi_k for k = 0..K.
    """
    theta = {k: np.asarray(v, np.float64) for k, v in theta0.items()}
    psi = {k: (1 - alpha * beta) * v for k, v in theta.items()}
    if psi_init == "gradient":
        v0 = grad_fn(theta)
        psi = {k: psi[k] - (beta**2 - beta) * v0[k] for k in theta}
    thetas, psis = [theta], [psi]
    for gamma in gammas:
        v = grad_fn(theta)
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
