"""optax contrib's shared batteries (`contrib/_common_test.py`), run over a table of
INNA configurations rather than the defaults alone: extra arguments and no
recompilation, inject_hyperparams, dtypes, MultiSteps, and a state that survives
`lax.cond` against the previous state."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import inna_optax

# name -> keyword arguments of inna_optax.inna (the learning rate included)
CONFIGS = {
    "defaults": dict(learning_rate=0.1),
    "psi_params": dict(learning_rate=0.1, psi_init="params"),
    "alpha_zero": dict(learning_rate=0.1, alpha=0.0),
    "gamma_above_beta": dict(learning_rate=0.5, alpha=0.5, beta=0.2),
    "large_beta": dict(learning_rate=0.05, alpha=1.3, beta=1.0),
    "schedule": dict(learning_rate=inna_optax.inverse_power_decay(0.1, 0.25)),
    "weight_decay": dict(learning_rate=0.1, weight_decay=1e-2),
    "float32_state": dict(learning_rate=0.1, psi_dtype=jnp.float32),
}
# the numbers inject_hyperparams can take as traced hyperparameters
INJECTABLE = ("learning_rate", "alpha", "beta")


def params_and_grads(dtype=jnp.float32):
    params = {"w": jnp.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(3, 4), "b": jnp.ones(4, dtype)}
    grads = jax.tree.map(lambda p: (0.3 * p - 0.1).astype(dtype), params)
    return params, grads


@pytest.fixture(params=list(CONFIGS), ids=list(CONFIGS))
def config(request):
    return CONFIGS[request.param]


def test_extra_args_and_no_recompilation(config):
    tx = inna_optax.inna(**config)
    params, grads = params_and_grads()
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        # an argument INNA does not take (as optax's batteries pass) is ignored
        updates, state = tx.update(grads, state, params, unused_extra_arg=1.0)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    for _ in range(3):
        params, state = step(params, state, grads)
    assert len(traces) == 1
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))


def test_inject_hyperparams_gives_the_same_updates(config):
    static = {k: v for k, v in config.items() if k not in INJECTABLE or callable(v)}
    numbers = {k: v for k, v in config.items() if k in INJECTABLE and not callable(v)}
    plain = inna_optax.inna(**config)
    injected = optax.inject_hyperparams(inna_optax.inna, static_args=tuple(static))(**config)
    params, grads = params_and_grads()
    s_plain, s_inj = plain.init(params), injected.init(params)
    p_plain = p_inj = params
    for _ in range(5):
        u, s_plain = plain.update(grads, s_plain, p_plain)
        p_plain = optax.apply_updates(p_plain, u)
        v, s_inj = injected.update(grads, s_inj, p_inj)
        p_inj = optax.apply_updates(p_inj, v)
    chex.assert_trees_all_close(p_plain, p_inj, rtol=1e-6)
    for name, value in numbers.items():
        assert float(s_inj.hyperparams[name]) == pytest.approx(value)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_dtypes_updates_keep_the_params_dtype(config, dtype):
    tx = inna_optax.inna(**config)
    params, grads = params_and_grads(dtype)
    state = tx.init(params)
    for _ in range(3):
        updates, state = jax.jit(tx.update)(grads, state, params)
        chex.assert_trees_all_equal_dtypes(updates, params)
        params = optax.apply_updates(params, updates)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))


def test_multisteps_applies_the_mean_gradient_every_k_steps(config):
    k = 3
    params, grads = params_and_grads()
    scales = [0.5, 1.0, 2.0]
    multi = optax.MultiSteps(inna_optax.inna(**config), every_k_schedule=k)
    state = multi.init(params)
    p = params
    for i in range(k):
        u, state = multi.update(jax.tree.map(lambda g, i=i: scales[i] * g, grads), state, p)
        p = optax.apply_updates(p, u)
        if i < k - 1:
            chex.assert_trees_all_close(p, params)  # nothing moves before the k-th
    inner = inna_optax.inna(**config)
    mean = jax.tree.map(lambda g: np.mean(scales) * g, grads)
    u, _ = inner.update(mean, inner.init(params), params)
    chex.assert_trees_all_close(p, optax.apply_updates(params, u), rtol=1e-5)


def test_state_is_stable_under_cond_against_the_old_state(config):
    tx = inna_optax.inna(**config)
    params, grads = params_and_grads()
    state = tx.init(params)

    @jax.jit
    def step(params, state, take_new):
        updates, new_state = tx.update(grads, state, params)
        # both branches must have one structure, shape and dtype
        state = jax.lax.cond(take_new, lambda: new_state, lambda: state)
        return optax.apply_updates(params, updates), state

    _, kept = step(params, state, False)
    chex.assert_trees_all_equal(kept, state)
    _, moved = step(params, state, True)
    chex.assert_trees_all_equal_structs(moved, state)
