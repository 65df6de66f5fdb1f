"""Point 6: bad input raises clear errors; traced hyperparameters still work."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import inna_optax


def test_update_without_params_says_inna_needs_params():
    tx = inna_optax.inna(0.1)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    with pytest.raises(ValueError, match="INNA needs params"):
        tx.update(params, state)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"learning_rate": 0.1, "alpha": -0.1}, "alpha"),
        ({"learning_rate": 0.1, "beta": 0.0}, "beta"),
        ({"learning_rate": 0.1, "beta": -1.0}, "beta"),
        ({"learning_rate": 0.1, "psi_init": "zeros"}, "psi_init"),
    ],
)
@pytest.mark.parametrize("factory", [inna_optax.inna, inna_optax.scale_by_inna])
def test_bad_hyperparameters_raise_value_error_naming_argument(factory, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        factory(**kwargs)


def test_negative_weight_decay_raises():
    with pytest.raises(ValueError, match="`weight_decay`"):
        inna_optax.inna(0.1, weight_decay=-1.0)


def test_alpha_zero_is_allowed_and_steps():
    params, grads = {"w": jnp.ones(3)}, {"w": jnp.arange(3.0)}
    tx = inna_optax.inna(0.1, alpha=0.0)
    updates, state = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * grads["w"], rtol=1e-6)  # first move: -g
    assert int(state.count) == 1


@pytest.mark.parametrize("power", [0.0, -0.5, 1.5])
def test_inverse_power_decay_rejects_power_outside_unit_interval(power):
    with pytest.raises(ValueError, match="`power`"):
        inna_optax.inverse_power_decay(0.1, power)


def test_inverse_power_decay_rejects_non_positive_init_value():
    with pytest.raises(ValueError, match="`init_value`"):
        inna_optax.inverse_power_decay(0.0)


@pytest.mark.parametrize("power", [1e-3, 0.25, 0.5, 1.0])
def test_inverse_power_decay_values(power):
    schedule = inna_optax.inverse_power_decay(0.2, power)
    for k in (0, 1, 10, 1000):
        assert float(schedule(k)) == pytest.approx(0.2 * (k + 1) ** (-power), rel=1e-6)


def test_traced_hyperparameters_are_not_checked():
    params = {"w": jnp.ones(3)}

    def one_step(lr, alpha, beta):
        tx = inna_optax.inna(lr, alpha, beta)
        u, _ = tx.update(params, tx.init(params), params)
        return u["w"]

    lrs = jnp.array([0.1, 0.2])
    out = jax.vmap(one_step)(lrs, jnp.array([0.5, 0.1]), jnp.array([0.1, 0.2]))
    # psi_0 aligned with the gradient: the first move is exactly -gamma_0 g, g = params here
    np.testing.assert_allclose(out, -lrs[:, None] * params["w"], rtol=1e-6)
    injected = optax.inject_hyperparams(inna_optax.inna)(learning_rate=0.1, alpha=0.5, beta=0.1)
    state = jax.jit(injected.init)(params)
    updates, _ = jax.jit(injected.update)(params, state, params)
    np.testing.assert_allclose(updates["w"], -0.1 * params["w"], rtol=1e-6)


def test_core_package_imports_only_jax_optax_chex():
    import subprocess
    import sys

    code = (
        "import sys, inna_optax, inna_optax.nonsmooth\n"
        "bad = [m for m in ('flax', 'orbax', 'sklearn', 'tqdm', 'PIL', 'matplotlib')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
