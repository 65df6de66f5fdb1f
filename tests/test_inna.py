"""The parameters follow a literal float64 transcription of eq. (12)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from reference import inna_reference

import inna_optax

pytestmark = pytest.mark.usefixtures("x64")  # compared in float64

SHAPES = {"w": (4, 3), "b": (3,), "s": (), "k": (2, 2, 3)}


def make_problem(seed=0):
    """A non-smooth loss over a pytree: least squares + l1 + a ReLU kink term."""
    rng = np.random.default_rng(seed)
    data = {}
    for name, shape in SHAPES.items():
        n = int(np.prod(shape))
        data[name] = (rng.normal(size=(n + 2, n)) / np.sqrt(n + 2), rng.normal(size=n + 2))
    theta0 = {k: rng.normal(size=s) for k, s in SHAPES.items()}

    def loss(tree):
        total = 0.0
        for k, (a, b) in data.items():
            x = jnp.reshape(tree[k], -1)
            total += 0.5 * jnp.sum((a @ x - b) ** 2) + 0.1 * jnp.sum(jnp.abs(x))
            total += 0.05 * jnp.sum(jax.nn.relu(x - 0.3))
        return total

    def grad_np(tree):
        out = {}
        for k, (a, b) in data.items():
            x = np.reshape(tree[k], -1)
            g = a.T @ (a @ x - b) + 0.1 * np.sign(x) + 0.05 * (x > 0.3)
            out[k] = g.reshape(SHAPES[k])
        return out

    return loss, grad_np, theta0


def run_inna(tx, loss, theta0, steps):
    params = jax.tree.map(jnp.asarray, theta0)
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def assert_close(tree, ref, rtol=1e-10):
    for k in ref:
        scale = max(1.0, float(np.max(np.abs(ref[k]))))
        np.testing.assert_allclose(np.asarray(tree[k]), ref[k], rtol=rtol, atol=rtol * scale)


# gamma = beta and gamma = 1/alpha are where rewrites dividing by (beta - gamma)
# or (1 - gamma alpha) break down; 0.3 is above beta.
CONSTANT_GAMMAS = [1e-3, 0.05, 0.1, 0.3, 2.0]


@pytest.mark.parametrize("psi_init", ["gradient", "params"])
@pytest.mark.parametrize("gamma", CONSTANT_GAMMAS)
def test_matches_eq12_reference_constant_step(gamma, psi_init):
    alpha, beta, steps = 0.5, 0.1, 300
    loss, grad_np, theta0 = make_problem()
    tx = inna_optax.scale_by_inna(gamma, alpha, beta, psi_init=psi_init)
    params, state = run_inna(tx, loss, theta0, steps)
    thetas, psis = inna_reference(grad_np, theta0, alpha, beta, [gamma] * steps, psi_init)
    assert all(np.all(np.isfinite(v)) for v in thetas[-1].values())
    assert_close(params, thetas[-1])
    assert_close(state.psi(params), psis[-1])
    assert int(state.count) == steps


@pytest.mark.parametrize("psi_init", ["gradient", "params"])
@pytest.mark.parametrize("power", [0.5, 0.25, 1.0])
def test_matches_eq12_reference_scheduled_step(power, psi_init):
    alpha, beta, gamma0, steps = 1.3, 0.1, 0.2, 300
    loss, grad_np, theta0 = make_problem(seed=1)
    schedule = inna_optax.inverse_power_decay(gamma0, power)
    tx = inna_optax.scale_by_inna(schedule, alpha, beta, psi_init=psi_init)
    params, _ = run_inna(tx, loss, theta0, steps)
    gammas = [gamma0 * (k + 1) ** (-power) for k in range(steps)]
    thetas, _ = inna_reference(grad_np, theta0, alpha, beta, gammas, psi_init)
    assert_close(params, thetas[-1])


def test_first_move_is_minus_gamma_gradient():
    loss, grad_np, theta0 = make_problem()
    tx = inna_optax.scale_by_inna(0.05, 0.5, 0.1, psi_init="gradient")
    params, _ = run_inna(tx, loss, theta0, 1)
    g0 = grad_np(theta0)
    assert_close(params, {k: theta0[k] - 0.05 * g0[k] for k in theta0})


def test_psi_property_before_first_update_is_one_minus_alpha_beta_theta():
    _, _, theta0 = make_problem()
    params = jax.tree.map(jnp.asarray, theta0)
    state = inna_optax.scale_by_inna(0.1, 0.5, 0.2).init(params)
    assert_close(state.psi(params), {k: 0.9 * v for k, v in theta0.items()}, rtol=1e-15)


@pytest.mark.parametrize("psi_init", ["gradient", "params", 0.5])
@pytest.mark.parametrize("gamma", [0.05, 0.1, 0.3])
def test_decoupled_weight_decay_matches_the_authors_update(gamma, psi_init):
    # theta <- (1 - gamma lambda) theta, psi unchanged, then eq. (12)
    alpha, beta, wd, steps = 0.5, 0.1, 0.2, 200
    loss, grad_np, theta0 = make_problem()
    tx = inna_optax.inna(gamma, alpha, beta, weight_decay=wd, psi_init=psi_init)
    params, state = run_inna(tx, loss, theta0, steps)
    thetas, psis = inna_reference(
        grad_np, theta0, alpha, beta, [gamma] * steps, psi_init, weight_decay=wd
    )
    assert_close(params, thetas[-1])
    assert_close(state.psi(params), psis[-1])
    # and not the coupled L2 form (gradient + lambda theta) it used to be
    coupled, _ = inna_reference(
        lambda t: {k: v + wd * t[k] for k, v in grad_np(t).items()},
        theta0,
        alpha,
        beta,
        [gamma] * steps,
        psi_init,
    )
    assert max(float(np.max(np.abs(params[k] - coupled[-1][k]))) for k in coupled[-1]) > 1e-3


def test_weight_decay_mask_and_schedule_match_the_reference():
    alpha, beta, wd, steps = 1.3, 0.2, 0.5, 200
    loss, grad_np, theta0 = make_problem(seed=2)
    schedule = inna_optax.inverse_power_decay(0.3, 0.5)
    mask = {k: k in ("w", "k") for k in theta0}
    tx = inna_optax.inna(schedule, alpha, beta, weight_decay=wd, mask=mask)
    params, _ = run_inna(tx, loss, theta0, steps)
    gammas = [0.3 * (k + 1) ** -0.5 for k in range(steps)]
    thetas, _ = inna_reference(
        grad_np, theta0, alpha, beta, gammas, weight_decay=wd, decays=("w", "k")
    )
    assert_close(params, thetas[-1])


@pytest.mark.parametrize("speed", [0.0, 0.5, 2.0])
def test_initial_speed_s_moves_first_by_minus_s_gamma_gradient(speed):
    alpha, beta, gamma, steps = 0.5, 0.1, 0.05, 100
    loss, grad_np, theta0 = make_problem()
    params, _ = run_inna(inna_optax.inna(gamma, alpha, beta, psi_init=speed), loss, theta0, 1)
    g0 = grad_np(theta0)
    assert_close(params, {k: theta0[k] - speed * gamma * g0[k] for k in theta0})
    params, _ = run_inna(inna_optax.inna(gamma, alpha, beta, psi_init=speed), loss, theta0, steps)
    thetas, _ = inna_reference(grad_np, theta0, alpha, beta, [gamma] * steps, speed)
    assert_close(params, thetas[-1])


def test_named_psi_inits_are_speeds_one_and_beta():
    loss, _, theta0 = make_problem()
    for name, speed in (("gradient", 1.0), ("params", 0.1)):
        a, _ = run_inna(inna_optax.inna(0.05, 0.5, 0.1, psi_init=name), loss, theta0, 30)
        b, _ = run_inna(inna_optax.inna(0.05, 0.5, 0.1, psi_init=speed), loss, theta0, 30)
        assert_close(a, {k: np.asarray(v) for k, v in b.items()}, rtol=1e-12)


def test_inna_alias_without_weight_decay_is_scale_by_inna():
    loss, _, theta0 = make_problem()
    a, _ = run_inna(inna_optax.inna(0.05), loss, theta0, 20)
    b, _ = run_inna(inna_optax.scale_by_inna(0.05), loss, theta0, 20)
    assert_close(a, {k: np.asarray(v) for k, v in b.items()}, rtol=0)
