"""Convolutions as matrix products (`inna_optax.training.convolution`): equal to
XLA's native convolution, forward and in the gradients, and chosen per platform."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from inna_optax.training import convolution
from inna_optax.training.models import NiN

DIMS = ("NHWC", "HWIO", "NHWC")


def _native(x, w, padding):
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=DIMS)


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 2), (0, 1))])
def test_matmul_equals_the_native_convolution_forward_and_in_gradients(kernel, padding):
    kx, kw, kc = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, 9, 7, 4))
    w = jax.random.normal(kw, (kernel, kernel, 4, 6))
    mine = convolution.matmul(x, w, (1, 1), padding, dimension_numbers=DIMS)
    native = _native(x, w, padding)
    assert mine.shape == native.shape
    np.testing.assert_allclose(mine, native, rtol=1e-5, atol=1e-5)
    cotangent = jax.random.normal(kc, native.shape)

    def grads(conv):
        return jax.grad(lambda x, w: jnp.sum(conv(x, w) * cotangent), argnums=(0, 1))(x, w)

    for a, b in zip(
        grads(lambda x, w: convolution.matmul(x, w, (1, 1), padding, dimension_numbers=DIMS)),
        grads(lambda x, w: _native(x, w, padding)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_calls_the_matrix_form_does_not_cover_go_to_the_native_convolution():
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    strided = convolution.matmul(x, w, (2, 2), "SAME", dimension_numbers=DIMS)
    native = jax.lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=DIMS)
    np.testing.assert_array_equal(strided, native)
    text = (
        jax.jit(lambda x, w: convolution.matmul(x, w, (2, 2), "SAME", dimension_numbers=DIMS))
        .lower(x, w)
        .as_text()
    )
    assert "convolution" in text


@pytest.mark.parametrize("conv", ["matmul", "auto"])
@pytest.mark.parametrize("norm", [True, False])
def test_nin_gives_the_same_logits_and_gradients_with_either_convolution(conv, norm):
    x = jax.random.normal(jax.random.key(2), (4, 32, 32, 3))
    y = jnp.arange(4) % 10
    models = [NiN(10, 3, 0.25, norm=norm, conv=c, rngs=nnx.Rngs(0)) for c in ("native", conv)]

    def loss(model):
        logits = model(x, train=True, key=jax.random.key(3))
        return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(4), y])

    (la, ga), (lb, gb) = (nnx.value_and_grad(loss)(m) for m in models)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_matmul_form_holds_no_convolution_on_the_cpu():
    x = jnp.zeros((2, 8, 8, 3))
    w = jnp.zeros((5, 5, 3, 4))
    for conv in (convolution.matmul, convolution.auto):
        hlo = jax.jit(lambda x, w, conv=conv: conv(x, w, (1, 1), "SAME", dimension_numbers=DIMS))
        compiled = hlo.lower(x, w).compile().as_text()
        assert " convolution(" not in compiled and "dot(" in compiled


def test_an_unknown_convolution_is_refused():
    with pytest.raises(ValueError, match="conv: must be one of"):
        convolution.get("winograd")
    with pytest.raises(ValueError, match="conv: must be one of"):
        NiN(10, 1, 0.25, conv="fft", rngs=nnx.Rngs(0))
