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
from conftest import enable_x64

import inna_optax

# The one table of configurations under test, as optax's `_common_test.py` has:
# name -> (optimizer, its keyword arguments, the learning rate included). The
# convergence battery of optax's `alias_test.py` runs on CONVERGING, whose steps
# are small enough for its problems.
CONFIGS = {
    "defaults": (inna_optax.inna, dict(learning_rate=0.1)),
    "psi_params": (inna_optax.inna, dict(learning_rate=0.1, psi_init="params")),
    "psi_speed": (inna_optax.inna, dict(learning_rate=0.1, psi_init=0.5)),
    "alpha_zero": (inna_optax.inna, dict(learning_rate=0.1, alpha=0.0)),
    "gamma_above_beta": (inna_optax.inna, dict(learning_rate=0.5, alpha=0.5, beta=0.2)),
    "large_beta": (inna_optax.inna, dict(learning_rate=0.05, alpha=1.3, beta=1.0)),
    "schedule": (inna_optax.inna, dict(learning_rate=inna_optax.inverse_power_decay(0.1, 0.25))),
    "weight_decay": (inna_optax.inna, dict(learning_rate=0.1, weight_decay=1e-2)),
    "masked_decay": (
        inna_optax.inna,
        dict(learning_rate=0.1, weight_decay=0.1, mask={"w": True, "b": False}),
    ),
    "float32_state": (inna_optax.inna, dict(learning_rate=0.1, psi_dtype=jnp.float32)),
    "innaprop": (inna_optax.innaprop, dict(learning_rate=1e-2)),
    "innaprop_no_decay": (inna_optax.innaprop, dict(learning_rate=1e-2, weight_decay=0.0)),
    "innaprop_schedule": (
        inna_optax.innaprop,
        dict(learning_rate=optax.cosine_decay_schedule(1e-2, 100), alpha=0.5, beta=0.1),
    ),
    "innaprop_float32_state": (
        inna_optax.innaprop,
        dict(learning_rate=1e-2, psi_dtype=jnp.float32, sigma=0.9),
    ),
    "small_steps": (inna_optax.inna, dict(learning_rate=5e-3)),
    "small_steps_decay": (inna_optax.inna, dict(learning_rate=5e-3, weight_decay=1e-4)),
    "innaprop_inna_damping": (
        inna_optax.innaprop,
        dict(learning_rate=1e-2, alpha=0.5, beta=0.1, weight_decay=0.0),
    ),
}
CONVERGING = ("small_steps", "small_steps_decay", "innaprop_inna_damping")
# the numbers inject_hyperparams can take as traced hyperparameters
INJECTABLE = ("learning_rate", "alpha", "beta", "weight_decay", "sigma", "eps")


class Factory:
    """`config` in the tests below: the optimizer with its keyword arguments."""

    def __init__(self, factory, kwargs):
        self.factory, self.kwargs = factory, kwargs

    def __call__(self):
        return self.factory(**self.kwargs)


def params_and_grads(dtype=jnp.float32):
    params = {"w": jnp.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(3, 4), "b": jnp.ones(4, dtype)}
    grads = jax.tree.map(lambda p: (0.3 * p - 0.1).astype(dtype), params)
    return params, grads


@pytest.fixture(params=list(CONFIGS), ids=list(CONFIGS))
def config(request):
    return Factory(*CONFIGS[request.param])


def test_extra_args_and_no_recompilation(config):
    tx = config()
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


def test_inject_hyperparams_under_jit_gives_the_same_updates_and_state(config):
    kwargs = config.kwargs
    static = {k: v for k, v in kwargs.items() if k not in INJECTABLE or callable(v)}
    numbers = {k: v for k, v in kwargs.items() if k in INJECTABLE and not callable(v)}
    plain = config()
    injected = optax.inject_hyperparams(config.factory, static_args=tuple(static))(**kwargs)
    params, grads = params_and_grads()
    s_plain, s_inj = jax.jit(plain.init)(params), jax.jit(injected.init)(params)
    p_plain = p_inj = params
    for _ in range(5):
        u, s_plain = jax.jit(plain.update)(grads, s_plain, p_plain)
        p_plain = optax.apply_updates(p_plain, u)
        v, s_inj = jax.jit(injected.update)(grads, s_inj, p_inj)
        p_inj = optax.apply_updates(p_inj, v)
    chex.assert_trees_all_close(p_plain, p_inj, rtol=1e-6)
    chex.assert_trees_all_close(s_inj.inner_state, s_plain, rtol=1e-5)
    for name, value in numbers.items():
        assert float(s_inj.hyperparams[name]) == pytest.approx(value)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_dtypes_updates_keep_the_params_dtype(config, dtype):
    tx = config()
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
    multi = optax.MultiSteps(config(), every_k_schedule=k)
    state = multi.init(params)
    p = params
    for i in range(k):
        u, state = multi.update(jax.tree.map(lambda g, i=i: scales[i] * g, grads), state, p)
        p = optax.apply_updates(p, u)
        if i < k - 1:
            chex.assert_trees_all_close(p, params)  # nothing moves before the k-th
    inner = config()
    mean = jax.tree.map(lambda g: np.mean(scales) * g, grads)
    u, _ = inner.update(mean, inner.init(params), params)
    chex.assert_trees_all_close(p, optax.apply_updates(params, u), rtol=1e-5)


def test_state_is_stable_under_cond_against_the_old_state(config):
    tx = config()
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


# optax's `_src/alias_test.py` battery, on the CONVERGING rows of the table


def _parabola(dtype):
    initial = jnp.array([-1.0, 10.0, 1.0], dtype=dtype)
    final = jnp.array([1.0, -1.0, 1.0], dtype=dtype)
    if jnp.iscomplexobj(initial):
        final = final * (1 + 1j)
    return initial, final, lambda x: jnp.sum(jnp.abs(x - final) ** 2)


def _rosenbrock(dtype):
    a, b = (1.0 + 1j, 100.0 + 100j) if jnp.iscomplexobj(jnp.zeros((), dtype)) else (1.0, 100.0)
    initial = jnp.array([0.0, 0.0], dtype=dtype)
    final = jnp.array([a, a**2], dtype=dtype)

    def objective(x):
        return jnp.sum(jnp.abs(a - x[0]) ** 2 + jnp.abs(b) * jnp.abs(x[1] - x[0] ** 2) ** 2)

    return initial, final, objective


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
@pytest.mark.parametrize("target", [_parabola, _rosenbrock])
@pytest.mark.parametrize("name", CONVERGING)
def test_optimization_reaches_the_minimum_without_recompiling(name, target, dtype):
    factory, kwargs = CONFIGS[name]
    tx = factory(**kwargs)
    params, final, objective = target(dtype)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        grads = jax.tree.map(jnp.conj, jax.grad(objective)(params))  # optax's convention
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    # tree_map_params works (optax.tree from optax 0.2.5; tree_utils at the floor, 0.2.4)
    map_params = (
        optax.tree.map_params if hasattr(optax, "tree") else optax.tree_utils.tree_map_params
    )
    state = map_params(tx, lambda v: v, tx.init(params))
    for _ in range(10_000):
        params, state = step(params, state)
    assert len(traces) == 1
    tol = 3e-2 if name != "small_steps_decay" else 5e-2  # weight decay moves the minimum a little
    chex.assert_trees_all_close(params, final, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64, jnp.complex64, jnp.complex128]
)
@pytest.mark.parametrize("name", CONVERGING)
def test_state_shape_dtype_stable_under_cond(name, dtype):
    factory, kwargs = CONFIGS[name]
    with enable_x64(dtype in (jnp.float64, jnp.complex128)):
        tx = factory(**kwargs)
        params, _, objective = _parabola(dtype)

        @jax.jit
        def step(params, state):
            grads = jax.tree.map(jnp.conj, jax.grad(objective)(params))
            take = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
            updates, state = jax.lax.cond(
                take, lambda: tx.update(grads, state, params), lambda: (params, state)
            )
            return optax.apply_updates(params, updates), state

        state = tx.init(params)
        for _ in range(2):
            params, new_state = step(params, state)
            assert params.dtype == dtype
            chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
            state = new_state


@pytest.mark.parametrize("state_dtype", [None, jnp.bfloat16, jnp.float32, jnp.complex64])
@pytest.mark.parametrize("params_dtype", [jnp.bfloat16, jnp.float32, jnp.complex64])
@pytest.mark.parametrize("factory", [inna_optax.inna, inna_optax.innaprop])
def test_explicit_state_dtype(factory, params_dtype, state_dtype):
    params = jnp.zeros(2, params_dtype)
    real_state = state_dtype is not None and not jnp.issubdtype(state_dtype, jnp.complexfloating)
    if jnp.issubdtype(params_dtype, jnp.complexfloating) and real_state:
        with pytest.raises(ValueError, match="imaginary part"):
            factory(0.1, psi_dtype=state_dtype).init(params)
        return
    state = factory(0.1, psi_dtype=state_dtype).init(params)
    assert state.theta_minus_psi.dtype == (params_dtype if state_dtype is None else state_dtype)
