"""The paper's 2-D non-smooth test problem (section 5.1, Figure 1).

J(t1, t2) = 100 (t2 - |t1|)^2 + |1 - t1| has a V-shaped valley and a unique
critical point, its minimum, at (1, 1). The paper starts INNA from (-1, 1.5)
with the constant step gamma = 1e-4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from inna_optax._inna import scale_by_inna

FIG1_START = (-1.0, 1.5)
FIG1_GAMMA = 1e-4
FIG1_MINIMUM = (1.0, 1.0)
# the paper's (alpha, beta) of Figure 1
FIG1_SETTINGS = ((0.5, 0.05), (0.5, 0.1), (1.3, 0.1))


def float64():
    """A context in which JAX computes in float64: ``jax.enable_x64(True)``, or
    ``jax.experimental``'s before jax 0.6 (the core's floor is 0.4.33)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64(True)


def fig1_loss(theta: jax.Array) -> jax.Array:
    """J(t1, t2) = 100 (t2 - |t1|)^2 + |1 - t1|, for theta = (t1, t2)."""
    t1, t2 = theta[..., 0], theta[..., 1]
    return 100.0 * (t2 - jnp.abs(t1)) ** 2 + jnp.abs(1.0 - t1)


def run_inna(
    loss_fn,
    theta0: jax.Array,
    alpha: float,
    beta: float,
    learning_rate: optax.ScalarOrSchedule = FIG1_GAMMA,
    steps: int = 100_000,
    psi_init: str = "gradient",
) -> tuple[jax.Array, jax.Array]:
    """Full-batch INNA inside one `jax.lax.scan`.

    Returns:
      (thetas, losses): theta_k for k = 0..steps and J(theta_k) alongside.
    """
    tx = scale_by_inna(learning_rate, alpha, beta, psi_init=psi_init)
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(carry, _):
        theta, state = carry
        loss, grad = value_and_grad(theta)
        updates, state = tx.update(grad, state, theta)
        return (optax.apply_updates(theta, updates), state), (theta, loss)

    @jax.jit
    def run(theta0):
        (theta, _), (thetas, losses) = jax.lax.scan(step, (theta0, tx.init(theta0)), length=steps)
        thetas = jnp.concatenate([thetas, theta[None]])
        return thetas, jnp.concatenate([losses, loss_fn(theta)[None]])

    return run(theta0)
