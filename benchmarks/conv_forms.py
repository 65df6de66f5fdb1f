"""Other ways of writing the NiN step's layers, timed by `benchmarks.conv_speed`
against the ones training uses. None was faster there (docs/performance.md); they stay
here so that the comparison can be run again.

Two ways of writing a k x k convolution with matrix products, against the im2col form
of `inna_optax.training.convolution.matmul`. Each takes
`jax.lax.conv_general_dilated`'s arguments for a stride-1 NHWC/HWIO call and leaves
1 x 1 kernels to `convolution.matmul`:

- :func:`by_rows`: the k shifted views along the width side by side (k times the input,
  not k²), then one matrix product per kernel row, summed over rows shifted in height.
- :func:`hand_gradient`: im2col, with the input's gradient written by hand as one more
  im2col product (the output's gradient against the kernel turned by 180 degrees)
  instead of the k² padded copies that differentiating im2col adds up.

The strided-slice max pooling without its fusion boundary (:func:`unbounded_max_pool`):
`convolution.max_pool` vmapped over an axis of one, where its ``lax.cond`` becomes a
select, so that XLA may fuse the layers above into the pooling's gradient.

And batch normalisation with its gradient written by hand (:class:`HandGradientBatchNorm`,
:func:`use_hand_gradient_norms`), against the gradient XLA derives from
`flax.nnx.BatchNorm`: two reductions of the output's gradient and one elementwise pass.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from inna_optax.training import convolution


def _padding(rhs, padding):
    kh, kw = rhs.shape[:2]
    if padding == "SAME":
        return tuple(((k - 1) // 2, k // 2) for k in (kh, kw))
    if padding == "VALID":
        return ((0, 0), (0, 0))
    return tuple(tuple(p) for p in padding)


def by_rows(lhs, rhs, window_strides, padding, *args, **kwargs):
    kh, kw, cin, cout = rhs.shape
    if (kh, kw) == (1, 1):
        return convolution.matmul(lhs, rhs, window_strides, padding, *args, **kwargs)
    (top, bottom), (left, right) = _padding(rhs, padding)
    n, h, w, _ = lhs.shape
    out_h, out_w = h + top + bottom - kh + 1, w + left + right - kw + 1
    x = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
    rows = jnp.concatenate([x[:, :, j : j + out_w, :] for j in range(kw)], axis=-1)
    y = sum(
        jnp.dot(rows[:, i : i + out_h].reshape(-1, kw * cin), rhs[i].reshape(kw * cin, cout))
        for i in range(kh)
    )
    return y.reshape(n, out_h, out_w, cout)


def _im2col(x, w, padding):
    kh, kw, cin, cout = w.shape
    (top, bottom), (left, right) = padding
    out_h, out_w = x.shape[1] + top + bottom - kh + 1, x.shape[2] + left + right - kw + 1
    xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    patches = jnp.concatenate(
        [xp[:, i : i + out_h, j : j + out_w, :] for i in range(kh) for j in range(kw)], axis=-1
    ).reshape(-1, kh * kw * cin)
    return patches, (x.shape[0], out_h, out_w, cout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x, w, padding):
    patches, shape = _im2col(x, w, padding)
    return (patches @ w.reshape(-1, w.shape[-1])).reshape(shape)


def _conv_fwd(x, w, padding):
    return _conv(x, w, padding), (x, w)


def _conv_bwd(padding, residuals, dy):
    x, w = residuals
    kh, kw = w.shape[:2]
    turned = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
    back = tuple((k - 1 - lo, k - 1 - hi) for (lo, hi), k in zip(padding, (kh, kw), strict=True))
    patches, _ = _im2col(x, w, padding)
    dw = (patches.T @ dy.reshape(-1, w.shape[-1])).reshape(w.shape)
    return _conv(dy, turned, back), dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def hand_gradient(lhs, rhs, window_strides, padding, *args, **kwargs):
    padding = _padding(rhs, padding)
    kh, kw = rhs.shape[:2]
    if (kh, kw) == (1, 1) or not all(
        0 <= p < k for pair, k in zip(padding, (kh, kw), strict=True) for p in pair
    ):
        return convolution.matmul(lhs, rhs, window_strides, padding, *args, **kwargs)
    return _conv(lhs, rhs, padding)


#: name -> convolution, for `benchmarks.conv_speed`
FORMS = {"by_rows": by_rows, "hand_gradient": hand_gradient}


def unbounded_max_pool(inputs, *args, **kwargs):
    """`convolution.max_pool` with its ``lax.cond`` turned into a select (by a vmap
    over an axis of one): the same values, no fusion boundary."""
    pool = jax.vmap(lambda x: convolution.max_pool(x, *args, **kwargs))
    return pool(inputs[None])[0]


POOLS = {"unbounded": unbounded_max_pool}


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _normalise(x, scale, bias, epsilon):
    """The normalised `x`, and the batch's mean and (biased) variance, whose
    cotangents the gradient ignores: callers keep them out of the loss."""
    return _normalise_fwd(x, scale, bias, epsilon)[0]


def _normalise_fwd(x, scale, bias, epsilon):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axes)
    var = jnp.square(x - mean).mean(axes)
    inv = jax.lax.rsqrt(var + epsilon)
    xhat = (x - mean) * inv
    return (xhat * scale + bias, mean, var), (xhat, inv, scale)


def _normalise_bwd(epsilon, residuals, cotangents):
    (xhat, inv, scale), (dy, _, _) = residuals, cotangents
    axes = tuple(range(dy.ndim - 1))
    n = dy.size // dy.shape[-1]
    dbias = dy.sum(axes)
    dscale = (dy * xhat).sum(axes)
    return (scale * inv) * (dy - dbias / n - xhat * (dscale / n)), dscale, dbias


_normalise.defvjp(_normalise_fwd, _normalise_bwd)


class HandGradientBatchNorm(nnx.BatchNorm):
    """`nnx.BatchNorm` over every axis but the last, its training-mode gradient written
    by hand; the same running statistics (the batch's biased variance)."""

    def __call__(self, x, use_running_average=None, *, mask=None):
        if use_running_average or mask is not None or self.axis_name is not None:
            return super().__call__(x, use_running_average, mask=mask)
        y, mean, var = _normalise(x, self.scale[...], self.bias[...], self.epsilon)
        m = self.momentum
        self.mean[...] = m * self.mean[...] + (1 - m) * jax.lax.stop_gradient(mean)
        self.var[...] = m * self.var[...] + (1 - m) * jax.lax.stop_gradient(var)
        return y


def use_hand_gradient_norms(model) -> None:
    """Puts a :class:`HandGradientBatchNorm` with the same state in place of each of
    `model.norms` (a NiN's batch normalisations)."""
    for i, norm in enumerate(model.norms):
        hand = HandGradientBatchNorm(
            norm.num_features, momentum=norm.momentum, epsilon=norm.epsilon, rngs=nnx.Rngs(0)
        )
        nnx.update(hand, nnx.state(norm))
        model.norms[i] = hand
