"""The paper's NiN: parameter count, input shapes, width multiplier, dropout."""

import jax
import jax.numpy as jnp
import pytest

nnx = pytest.importorskip("flax.nnx")
from inna_optax.training.models import NiN, count_params  # noqa: E402


def test_nin_has_about_097m_parameters_for_10_classes():
    assert count_params(NiN(10, 3, rngs=nnx.Rngs(0))) == 966_986


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (2, 32, 32, 3), (2, 8, 8, 1)])
def test_nin_accepts_mnist_cifar_and_digits_shapes(shape):
    model = NiN(10, shape[-1], width=0.125, rngs=nnx.Rngs(0))
    assert model(jnp.ones(shape)).shape == (2, 10)


def test_width_scales_channels():
    small, full = NiN(10, 3, width=0.5, rngs=nnx.Rngs(0)), NiN(10, 3, rngs=nnx.Rngs(0))
    assert count_params(small) < 0.3 * count_params(full)
    with pytest.raises(ValueError, match="width"):
        NiN(10, 3, width=0.0, rngs=nnx.Rngs(0))


def test_dropout_needs_key_and_depends_on_it():
    model = NiN(10, 1, width=0.125, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
    with pytest.raises(ValueError, match="key"):
        model(x, train=True)
    a = model(x, train=True, key=jax.random.key(1))
    b = model(x, train=True, key=jax.random.key(2))
    assert not jnp.allclose(a, b)
    assert jnp.allclose(model(x), model(x))


def test_every_config_init_is_a_model_init():
    from inna_optax.training.config import INITS
    from inna_optax.training.models import INITS as MODEL_INITS

    assert set(INITS) == set(MODEL_INITS)
