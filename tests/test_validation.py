"""Bad input raises clear errors; traced hyperparameters still work."""

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
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": 0.1, "alpha": float("inf")}, "alpha"),
        ({"learning_rate": 0.1, "beta": float("inf")}, "beta"),
        ({"learning_rate": 0.1, "psi_init": float("nan")}, "psi_init"),
        ({"learning_rate": 0.1, "weight_decay": float("inf")}, "weight_decay"),
        # concrete arrays are checked too: a negative one would climb the gradient
        ({"learning_rate": jnp.array(-1.0)}, "learning_rate"),
        ({"learning_rate": np.float32(-1.0)}, "learning_rate"),
        ({"learning_rate": 0.1, "beta": jnp.array(0.0)}, "beta"),
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
        "import sys, inna_optax, inna_optax.paper.nonsmooth\n"
        "bad = [m for m in ('flax', 'orbax', 'sklearn', 'tqdm', 'PIL', 'matplotlib')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_integer_and_boolean_params_raise_naming_the_leaf(dtype):
    tx = inna_optax.inna(0.1)
    with pytest.raises(ValueError, match=r"floating-point, but \['n'\] has dtype"):
        tx.init({"w": jnp.ones(2), "n": jnp.ones(2, dtype)})


def test_complex_params_with_a_real_state_dtype_raise():
    tx = inna_optax.inna(0.1, psi_dtype=jnp.float32)
    with pytest.raises(ValueError, match="imaginary part"):
        tx.init({"z": jnp.ones(2, jnp.complex64)})


def test_complex_params_with_their_own_dtype_keep_the_imaginary_part():
    tx = inna_optax.inna(0.1)
    params = {"z": jnp.array([1.0 + 2.0j, -1.0j], jnp.complex64)}
    grads = {"z": jnp.array([0.5 - 0.5j, 1.0j], jnp.complex64)}
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["z"], -0.1 * grads["z"], rtol=1e-6)


def test_a_concrete_negative_schedule_value_raises_at_update():
    tx = inna_optax.inna(lambda count: -0.1)
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="`learning_rate`"):
        tx.update(params, tx.init(params), params)


def test_injected_hyperparameters_are_checked_when_concrete_and_traced_under_jit():
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="`learning_rate`"):
        optax.inject_hyperparams(inna_optax.inna)(learning_rate=-0.1).init(params)
    tx = optax.inject_hyperparams(inna_optax.inna)(learning_rate=0.1)
    state = tx.init(params)
    updates, state = jax.jit(tx.update)(params, state, params)
    np.testing.assert_allclose(updates["w"], -0.1 * params["w"], rtol=1e-6)


@pytest.mark.parametrize("factory", [inna_optax.inna, inna_optax.innaprop])
def test_masked_empty_group_and_empty_tree_work_like_optax(factory):
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    grads = jax.tree.map(lambda p: 0.5 * p, params)
    # masked with nothing selected: INNA sees an empty tree of MaskedNodes
    tx = optax.masked(factory(0.1), {"a": False, "b": False})
    updates, _ = tx.update(grads, tx.init(params), params)
    chex_equal = jax.tree.map(lambda u, g: bool(jnp.all(u == g)), updates, grads)
    assert all(jax.tree.leaves(chex_equal))  # passed through untouched
    # multi_transform with an empty INNA group
    groups = {"inna": factory(0.1), "sgd": optax.sgd(0.1)}
    tx = optax.multi_transform(groups, {"a": "sgd", "b": "sgd"})
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["a"], -0.05 * jnp.ones(2))
    # an empty tree
    tx = factory(0.1)
    updates, state = tx.update({}, tx.init({}), {})
    assert updates == {} and int(state.count) == 1


def test_the_state_structure_does_not_depend_on_how_hyperparameters_are_passed():
    params = {"w": jnp.ones(3)}
    for factory, kwargs in ((inna_optax.inna, {}), (inna_optax.innaprop, {})):
        plain = factory(0.1, **kwargs).init(params)
        for wd in (0.0, 0.01):
            injected = optax.inject_hyperparams(factory)(0.1, weight_decay=wd).init(params)
            assert jax.tree.structure(injected.inner_state) == jax.tree.structure(plain)
            assert jax.tree.structure(factory(0.1, weight_decay=wd).init(params)) == (
                jax.tree.structure(plain)
            )


def test_annotations_are_real_types_not_strings():
    import inspect

    for fn in (inna_optax.inna, inna_optax.scale_by_inna, inna_optax.innaprop):
        sig = inspect.signature(fn)
        assert not isinstance(sig.parameters["learning_rate"].annotation, str)
        assert not isinstance(sig.return_annotation, str)


@pytest.mark.parametrize("factory", [inna_optax.inna, inna_optax.innaprop])
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"learning_rate": None}, "learning_rate"),
        ({"learning_rate": "0.1"}, "learning_rate"),
        ({"learning_rate": 0.1, "alpha": "0.5"}, "alpha"),
        ({"learning_rate": 0.1, "beta": None}, "beta"),
        ({"learning_rate": 0.1, "weight_decay": [0.1]}, "weight_decay"),
    ],
)
def test_values_of_the_wrong_type_are_refused_naming_the_argument(factory, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}` must be a number") as e:
        factory(**kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("factory", [inna_optax.inna, inna_optax.innaprop])
def test_a_gradient_of_another_shape_than_its_parameter_is_named(factory):
    tx = factory(0.1)
    params = {"layer": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}}
    grads = {"layer": {"w": jnp.ones((2, 3)), "b": jnp.zeros(2)}}
    with pytest.raises(
        ValueError, match=r"\['layer'\]\['w'\] has shape \(2, 3\), its parameter \(3, 2\)"
    ):
        tx.update(grads, tx.init(params), params)


@pytest.mark.parametrize("factory", [inna_optax.inna, inna_optax.innaprop])
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_a_state_dtype_that_cannot_hold_psi_is_refused(factory, dtype):
    with pytest.raises(ValueError, match="`psi_dtype` must be a floating-point"):
        factory(0.1, psi_dtype=dtype)


@pytest.mark.parametrize("factory", [inna_optax.inna, inna_optax.innaprop])
def test_params_of_another_shape_than_the_state_are_named(factory):
    tx = factory(0.1)
    state = tx.init({"layer": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}})
    params = {"layer": {"w": jnp.ones((3, 4)), "b": jnp.zeros(2)}}
    grads = jax.tree.map(jnp.ones_like, params)
    with pytest.raises(
        ValueError,
        match=r"the state of \['layer'\]\['w'\] has shape \(3, 2\), its parameter \(3, 4\)",
    ):
        tx.update(grads, state, params)
