"""Dtypes, stable state shapes, mixed precision and sharding."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from reference import inna_reference

import inna_optax

pytestmark = pytest.mark.usefixtures("x64")  # compared in float64

DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]


def tree(dtype):
    return {"w": jnp.ones((8, 4), dtype), "b": jnp.full((4,), 0.5, dtype), "s": jnp.ones((), dtype)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("psi_dtype", [None, jnp.float32])
def test_updates_keep_param_dtype_and_state_is_stable(dtype, psi_dtype):
    params = tree(dtype)
    tx = inna_optax.inna(inna_optax.inverse_power_decay(0.1), psi_dtype=psi_dtype)
    state = tx.init(params)
    first_state = state
    expected_state_dtype = psi_dtype or dtype
    for leaf in jax.tree.leaves(state.theta_minus_psi):
        assert leaf.dtype == expected_state_dtype

    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    for _ in range(3):
        grads = jax.tree.map(lambda x: jnp.ones_like(x) * 0.1, params)
        updates, state = step(grads, state, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(state, first_state)
        params = optax.apply_updates(params, updates)
        chex.assert_trees_all_equal_shapes_and_dtypes(params, tree(dtype))


def test_state_usable_in_cond_and_scan():
    params = tree(jnp.float32)
    tx = inna_optax.inna(0.1)
    state = tx.init(params)

    def body(carry, _):
        p, s = carry
        grads = jax.tree.map(jnp.ones_like, p)
        u, s2 = tx.update(grads, s, p)
        s = jax.lax.cond(s.count < 2, lambda: s2, lambda: s)  # keep the old state from k = 2
        return (optax.apply_updates(p, u), s), None

    (p, s), _ = jax.lax.scan(body, (params, state), length=5)
    assert int(s.count) == 2
    # the state kept is the one after two updates, whatever the params did since
    two = state
    for _ in range(2):
        _, two = tx.update(jax.tree.map(jnp.ones_like, params), two, params)
    chex.assert_trees_all_close(s, two)


def _drift(params_dtype, psi_dtype, steps=1000):
    """Max relative deviation of theta_K from the float64 reference of eq. (12)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 32)) / 8
    b = rng.normal(size=64)
    theta0 = {"x": rng.normal(size=32)}

    def grad_np(t):
        return {"x": a.T @ (a @ t["x"] - b)}

    gamma, alpha, beta = 1e-2, 0.5, 0.1
    ref, _ = inna_reference(grad_np, theta0, alpha, beta, [gamma] * steps)
    tx = inna_optax.scale_by_inna(gamma, alpha, beta, psi_dtype=psi_dtype)
    a_j, b_j = jnp.asarray(a, params_dtype), jnp.asarray(b, params_dtype)

    @jax.jit
    def step(p, s):
        g = {"x": a_j.T @ (a_j @ p["x"] - b_j)}
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    p = {"x": jnp.asarray(theta0["x"], params_dtype)}
    s = tx.init(p)
    for _ in range(steps):
        p, s = step(p, s)
    err = np.abs(np.asarray(p["x"], np.float64) - ref[-1]["x"])
    return float(np.max(err) / np.max(np.abs(ref[-1]["x"])))


def test_float32_psi_tracks_reference_better_than_bfloat16_psi():
    all_bf16 = _drift(jnp.bfloat16, None)
    f32_state = _drift(jnp.bfloat16, jnp.float32)
    print(
        f"\nbf16 params, 1000 steps: max rel. error vs float64 eq. (12): "
        f"psi bf16 {all_bf16:.3e}, psi float32 {f32_state:.3e}"
    )
    assert f32_state < all_bf16 / 2


def test_state_sharding_follows_params_sharding():
    devices = jax.devices("cpu")
    assert len(devices) >= 8, "tests/conftest.py asks for 8 virtual CPU devices"
    mesh = Mesh(np.array(devices[:8]).reshape(4, 2), ("data", "model"))
    shardings = {
        "w": NamedSharding(mesh, PartitionSpec("data", "model")),
        "b": NamedSharding(mesh, PartitionSpec("model")),
        "r": NamedSharding(mesh, PartitionSpec()),
    }
    params = {
        "w": jax.device_put(jnp.ones((8, 4)), shardings["w"]),
        "b": jax.device_put(jnp.ones((4,)), shardings["b"]),
        "r": jax.device_put(jnp.ones((3,)), shardings["r"]),
    }
    tx = inna_optax.inna(0.1)
    state = jax.jit(tx.init)(params)
    for k in params:
        assert state.theta_minus_psi[k].sharding.is_equivalent_to(shardings[k], params[k].ndim)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.tree.map(jnp.ones_like, p), s, p)
        return optax.apply_updates(p, u), s

    params, state = step(params, state)
    for k in params:
        assert params[k].sharding.is_equivalent_to(shardings[k], params[k].ndim)
        assert state.theta_minus_psi[k].sharding.is_equivalent_to(shardings[k], params[k].ndim)
