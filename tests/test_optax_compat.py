"""INNA composes with the rest of optax."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import inna_optax

pytestmark = pytest.mark.usefixtures("x64")  # compared in float64


def quadratic_tree_problem():
    params = {"a": jnp.array([1.0, -2.0, 3.0]), "b": {"c": jnp.ones((2, 2))}}

    def loss(p):
        return jnp.sum(p["a"] ** 2) + jnp.sum((p["b"]["c"] - 0.5) ** 2)

    return params, loss


def run(tx, params, loss, steps=20):
    state = tx.init(params)
    for _ in range(steps):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def test_jit_does_not_retrace_on_second_call():
    params, loss = quadratic_tree_problem()
    tx = inna_optax.inna(inna_optax.inverse_power_decay(0.1))
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    params, state = step(params, state)
    params, state = step(params, state)
    params, state = step(params, state)
    assert len(traces) == 1


def test_chain_before_and_after():
    params, loss = quadratic_tree_problem()
    tx = optax.chain(optax.clip_by_global_norm(1.0), inna_optax.scale_by_inna(0.05))
    out, _ = run(tx, params, loss)
    assert loss(out) < loss(params)
    # a transformation chained after INNA sees INNA's update: here it adds 0.3 theta
    grads = jax.grad(loss)(params)
    alone = inna_optax.scale_by_inna(0.05)
    u_alone, _ = alone.update(grads, alone.init(params), params)
    after = optax.chain(inna_optax.scale_by_inna(0.05), optax.add_decayed_weights(0.3))
    u_after, _ = after.update(grads, after.init(params), params)
    expected = jax.tree.map(lambda u, p: u + 0.3 * p, u_alone, params)
    chex.assert_trees_all_close(u_after, expected, rtol=1e-12)
    # clipping before INNA: with a tiny clip the first step is at most gamma * 0.01 long.
    tx = optax.chain(optax.clip_by_global_norm(0.01), inna_optax.scale_by_inna(0.05))
    out, _ = run(tx, params, loss, steps=1)
    moved = jnp.sqrt(
        sum(
            jnp.sum((x - y) ** 2) for x, y in zip(*map(jax.tree.leaves, (out, params)), strict=True)
        )
    )
    assert float(moved) <= 0.05 * 0.01 * (1 + 1e-6)


def test_an_injected_value_changed_mid_run_changes_the_trajectory():
    """(That injected values give the plain optimizer's steps is in test_battery.py.)"""
    params, loss = quadratic_tree_problem()
    injected_tx = optax.inject_hyperparams(inna_optax.inna)(learning_rate=0.05, alpha=0.4, beta=0.2)
    injected, _ = run(injected_tx, params, loss)
    state = injected_tx.init(params)
    p = params
    for k in range(20):
        if k == 10:
            state.hyperparams["beta"] = jnp.asarray(0.5)
        updates, state = injected_tx.update(jax.grad(loss)(p), state, p)
        p = optax.apply_updates(p, updates)
    assert not np.allclose(p["a"], injected["a"])


def test_masked_leaves_untouched():
    params, loss = quadratic_tree_problem()
    mask = {"a": True, "b": {"c": False}}
    out, _ = run(optax.masked(inna_optax.inna(0.05), mask), params, loss)
    assert not np.allclose(out["a"], params["a"])
    # optax.masked passes the masked leaves' gradients through; zero them as users do.
    tx = optax.chain(
        optax.masked(inna_optax.inna(0.05), mask),
        optax.masked(optax.set_to_zero(), {"a": False, "b": {"c": True}}),
    )
    out, _ = run(tx, params, loss)
    np.testing.assert_array_equal(out["b"]["c"], params["b"]["c"])


def test_multi_transform_frozen_leaves_untouched():
    params, loss = quadratic_tree_problem()
    tx = optax.multi_transform(
        {"inna": inna_optax.inna(0.05), "frozen": optax.set_to_zero()},
        {"a": "inna", "b": {"c": "frozen"}},
    )
    out, _ = run(tx, params, loss)
    np.testing.assert_array_equal(out["b"]["c"], params["b"]["c"])
    assert loss(out) < loss(params)


def test_apply_if_finite_skips_non_finite_gradient_and_goes_on():
    params, loss = quadratic_tree_problem()
    tx = optax.apply_if_finite(inna_optax.inna(0.05), max_consecutive_errors=3)
    state = tx.init(params)
    bad = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), params)
    updates, state = tx.update(bad, state, params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))
    assert all(float(jnp.max(jnp.abs(u))) == 0 for u in jax.tree.leaves(updates))
    p = params
    for _ in range(20):
        updates, state = tx.update(jax.grad(loss)(p), state, p)
        p = optax.apply_updates(p, updates)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((p, state)))
    assert loss(p) < loss(params)


def test_tree_utils_and_tree_map_params():
    params, loss = quadratic_tree_problem()
    tx = inna_optax.inna(0.05)
    _, state = run(tx, params, loss, steps=3)
    assert int(optax.tree_utils.tree_get(state, "count")) == 3
    d = optax.tree_utils.tree_get(state, "theta_minus_psi")
    chex.assert_trees_all_equal_shapes_and_dtypes(d, params)
    doubled = optax.tree_utils.tree_map_params(tx, lambda x: 2 * x, state)
    chex.assert_trees_all_close(doubled.theta_minus_psi, jax.tree.map(lambda x: 2 * x, d))
    assert int(doubled.count) == 3
    reset = optax.tree_utils.tree_set(state, count=jnp.zeros([], jnp.int32))
    assert int(reset.count) == 0


def test_vmap_over_hyperparameters():
    params, loss = quadratic_tree_problem()
    alphas = jnp.array([0.1, 0.5, 1.0])
    betas = jnp.array([0.1, 0.2, 0.5])

    def final_loss(alpha, beta):
        tx = inna_optax.inna(0.05, alpha, beta)
        out, _ = run(tx, params, loss, steps=10)
        return loss(out)

    batched = jax.jit(jax.vmap(final_loss))(alphas, betas)
    for i in range(3):
        one = final_loss(float(alphas[i]), float(betas[i]))
        assert float(batched[i]) == pytest.approx(float(one), rel=1e-10)


def _converges(loss, x0, steps=3000):
    tx = inna_optax.inna(1e-2)
    x = x0
    state = tx.init(x)

    @jax.jit
    def step(x, state):
        updates, state = tx.update(jax.grad(loss)(x), state, x)
        return optax.apply_updates(x, updates), state

    for _ in range(steps):
        x, state = step(x, state)
    return x


def test_converges_on_parabola_float32():
    x = _converges(lambda x: jnp.sum((x - 3.0) ** 2), jnp.zeros(4, jnp.float32))
    assert x.dtype == jnp.float32
    np.testing.assert_allclose(x, 3.0, atol=1e-3)


def test_converges_on_matrix_parabola_float32():
    a = jnp.array([[2.0, 0.5], [0.5, 1.0]], jnp.float32)
    b = jnp.array([1.0, -1.0], jnp.float32)
    x = _converges(lambda x: 0.5 * x @ a @ x - b @ x, jnp.zeros(2, jnp.float32))
    np.testing.assert_allclose(x, np.linalg.solve(np.asarray(a), np.asarray(b)), atol=1e-3)


def test_converges_on_rosenbrock_float32():
    def rosenbrock(x):
        return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2

    x = _converges(rosenbrock, jnp.array([-1.0, 1.0], jnp.float32), steps=20000)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=2e-2)
