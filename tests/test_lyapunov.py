"""Lemma 3.6: the energy E never increases along full-batch INNA (smooth convex, small step)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import inna_optax

pytestmark = pytest.mark.usefixtures("x64")  # compared in float64


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.1), (1.3, 0.1), (0.5, 1.0), (0.1, 0.1)])
def test_lyapunov_energy_non_increasing(alpha, beta):
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(20, 10)) / 5)
    b = jnp.asarray(rng.normal(size=20))
    params = {"x": jnp.asarray(rng.normal(size=10))}

    def loss(p):
        return 0.5 * jnp.sum((a @ p["x"] - b) ** 2) + 0.05 * jnp.sum(p["x"] ** 2)

    tx = inna_optax.scale_by_inna(1e-3, alpha, beta)
    state = tx.init(params)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        p = optax.apply_updates(p, u)
        return p, s, inna_optax.lyapunov_energy(loss(p), s.psi(p), p, alpha, beta)

    energies = []
    for _ in range(3000):
        params, state, e = step(params, state)
        energies.append(float(e))
    energies = np.array(energies)
    assert np.all(np.diff(energies) <= 1e-12 * np.abs(energies[:-1]))
    assert energies[-1] < energies[0]


def test_lyapunov_energy_formula():
    params = {"x": jnp.array([1.0, 2.0])}
    psi = {"x": jnp.array([0.5, -1.0])}
    alpha, beta, loss = 0.5, 0.1, 3.0
    expected = 2 * (1 + alpha * beta) * loss + np.sum(
        ((alpha - 1 / beta) * np.array([1.0, 2.0]) + np.array([0.5, -1.0]) / beta) ** 2
    )
    got = inna_optax.lyapunov_energy(loss, psi, params, alpha, beta)
    assert float(got) == pytest.approx(expected, rel=1e-12)
