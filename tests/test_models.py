"""The paper's NiN: parameter count, input shapes, width multiplier, dropout."""

import jax
import jax.numpy as jnp
import pytest

nnx = pytest.importorskip("flax.nnx")
from inna_optax.training.models import NiN, count_params  # noqa: E402


def test_nin_has_about_097m_parameters_for_10_classes():
    assert count_params(NiN(10, 3, rngs=nnx.Rngs(0))) == 966_986


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (2, 32, 32, 3), (2, 8, 8, 1)])
def test_nin_accepts_mnist_cifar_and_digits_shapes(shape):
    model = NiN(10, shape[-1], width=0.125, rngs=nnx.Rngs(0))
    assert model(jnp.ones(shape)).shape == (2, 10)


def _count(width, in_channels=3, classes=10, norm=False):
    """NiN's parameters from its layer table: k*k*c_in*c_out + c_out per convolution,
    plus a scale and a shift per channel of each batch-normalised convolution."""
    layers = [(5, 192), (1, 160), (1, 96), (5, 192), (1, 192), (1, 192), (3, 192), (1, 192)]
    total, c_in = 0, in_channels
    for k, c in layers:
        c = max(1, round(c * width))
        total += k * k * c_in * c + c + (2 * c if norm else 0)
        c_in = c
    return total + c_in * classes + classes


@pytest.mark.parametrize("width", [0.125, 0.5, 1.0])
@pytest.mark.parametrize("norm", [False, True])
def test_parameter_count_is_exact(width, norm):
    model = NiN(10, 3, width=width, norm=norm, rngs=nnx.Rngs(0))
    assert count_params(model) == _count(width, norm=norm)


def test_width_scales_channels():
    with pytest.raises(ValueError, match="width"):
        NiN(10, 3, width=0.0, rngs=nnx.Rngs(0))


@pytest.mark.slow
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
