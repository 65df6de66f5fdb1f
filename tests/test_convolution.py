"""Convolutions as matrix products and max pooling as strided slices
(`inna_optax.training.convolution`): equal to XLA's native convolution and pooling,
forward and in the gradients, and chosen per platform."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compiled_as_users_do
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


@pytest.mark.slow
@pytest.mark.parametrize("conv", ["matmul", "auto"])
@pytest.mark.parametrize("norm", [True, False])
def test_nin_gives_the_same_logits_and_gradients_with_either_convolution(conv, norm):
    x = jax.random.normal(jax.random.key(2), (4, 32, 32, 3))
    y = jnp.arange(4) % 10
    models = [NiN(10, 3, 0.25, norm=norm, conv=c, rngs=nnx.Rngs(0)) for c in ("native", conv)]

    def loss(model):
        logits = model(x, train=True, key=jax.random.key(3))
        return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(4), y])

    # jitted: op by op, the forward and backward passes compile hundreds of small programs
    (la, ga), (lb, gb) = (nnx.jit(nnx.value_and_grad(loss))(m) for m in models)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_matmul_form_holds_no_convolution_on_the_cpu():
    x = jnp.zeros((2, 8, 8, 3))
    w = jnp.zeros((5, 5, 3, 4))
    for conv in (convolution.matmul, convolution.auto):
        hlo = jax.jit(lambda x, w, conv=conv: conv(x, w, (1, 1), "SAME", dimension_numbers=DIMS))
        compiled = compiled_as_users_do(hlo.lower(x, w)).as_text()
        assert " convolution(" not in compiled and "dot(" in compiled


@pytest.mark.slow
@pytest.mark.parametrize(
    "window, strides, padding",
    [
        ((3, 3), (2, 2), "SAME"),  # NiN's
        ((2, 2), (2, 2), "VALID"),
        ((3, 3), (1, 1), "SAME"),
        ((3, 2), (2, 1), ((1, 0), (0, 1))),
    ],
)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_equals_flaxs_forward_and_in_gradients_ties_included(
    window, strides, padding, ties
):
    """Each window's gradient goes to its first maximum, as XLA's select-and-scatter
    does: with ties (small integers, after a ReLU) another rule moves whole
    cotangents, far beyond rounding."""
    kx, kc = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (3, 9, 8, 4))
    if ties:
        x = jax.nn.relu(jnp.round(2 * x))
    native = nnx.max_pool(x, window, strides, padding)
    mine = convolution.max_pool(x, window, strides, padding)
    np.testing.assert_array_equal(mine, native)
    cotangent = jax.random.normal(kc, native.shape)
    grads = [
        jax.grad(lambda x, pool=pool: jnp.sum(pool(x, window, strides, padding) * cotangent))(x)
        for pool in (nnx.max_pool, convolution.max_pool, convolution.auto_max_pool)
    ]
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grads[2], grads[0], rtol=1e-6, atol=1e-6)
    if ties:  # XLA's forward mode takes some other tied element's tangent: no reference
        return
    # forward mode too (no custom gradient rule)
    tangent = jax.random.normal(kc, x.shape)
    np.testing.assert_allclose(
        jax.jvp(lambda x: convolution.max_pool(x, window, strides, padding), (x,), (tangent,))[1],
        jax.jvp(lambda x: nnx.max_pool(x, window, strides, padding), (x,), (tangent,))[1],
        rtol=1e-6,
    )


def test_max_pool_gives_nan_where_a_window_holds_one():
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3)).at[1, 3, 3, 2].set(jnp.nan)
    mine = convolution.max_pool(x, (3, 3), (2, 2), "SAME")
    native = nnx.max_pool(x, (3, 3), (2, 2), "SAME")
    assert int(jnp.isnan(mine).sum()) == 4  # the four windows holding it
    np.testing.assert_array_equal(mine, native)  # NaN where NaN, equal elsewhere


def test_max_pool_hands_other_shapes_to_flax():
    x = jax.random.normal(jax.random.key(0), (2, 9, 4))  # 1-D windows
    np.testing.assert_array_equal(
        convolution.max_pool(x, (3,), (2,), "SAME"), nnx.max_pool(x, (3,), (2,), "SAME")
    )


def test_the_strided_max_pool_holds_no_scatter_on_the_cpu():
    """XLA:CPU compiles the native pooling's gradient (a select-and-scatter) into a
    reduce-window and a scatter, the slow part; the strided form holds neither, and
    keeps its conditional."""
    x = jnp.zeros((2, 9, 9, 3))

    def ops(pool):
        grad = jax.jit(jax.grad(lambda x: jnp.sum(pool(x, (3, 3), (2, 2), "SAME"))))
        return set(re.findall(r"\b([a-z-]+)\(", compiled_as_users_do(grad.lower(x)).as_text()))

    assert {"reduce-window", "scatter"} <= ops(nnx.max_pool)
    for pool in (convolution.max_pool, convolution.auto_max_pool):
        assert not {"reduce-window", "scatter", "select-and-scatter"} & ops(pool)
        assert "conditional" in ops(pool)  # the fusion boundary (see max_pool)


def test_an_unknown_convolution_is_refused():
    with pytest.raises(ValueError, match="conv: must be one of"):
        convolution.get("winograd")
    with pytest.raises(ValueError, match="conv: must be one of"):
        convolution.get_max_pool("winograd")
    with pytest.raises(ValueError, match="conv: must be one of"):
        NiN(10, 1, 0.25, conv="fft", rngs=nnx.Rngs(0))
