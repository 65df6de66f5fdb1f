"""Convolutions as matrix products and max pooling as strided slices, for XLA:CPU.

XLA:CPU's convolution kernels, forward and backward, take most of a NiN training
step on a CPU. Written as matrix products the same convolutions run faster
there: a k x k convolution becomes k² shifted slices of the padded input laid
side by side on the channel axis (im2col) times the kernel seen as a
(k² x in, out) matrix, and a 1 x 1 convolution a plain matrix product. The
gradient of XLA:CPU's max pooling (a select-and-scatter) is slow too; as the
elementwise maximum of the window's strided slices, its gradient becomes a few
elementwise passes. On GPUs and TPUs the native operations are the fast ones, so
:func:`auto` and :func:`auto_max_pool` pick per platform when the computation is
lowered (``jax.lax.platform_dependent``): an export for CUDA or TPU keeps the
native convolution and pooling.

The convolutions take the arguments of :func:`jax.lax.conv_general_dilated`, so
they can be handed to ``flax.nnx.Conv(conv_general_dilated=...)``; the poolings
take those of :func:`flax.nnx.max_pool`.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax


def _same_padding(size: int) -> tuple[int, int]:
    return (size - 1) // 2, size // 2


def _im2col_applies(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dims, groups):
    """Whether the matrix-product form covers this call: 2-D, NHWC and HWIO,
    stride 1, no dilation, one group ('SAME' or explicit padding)."""
    if lhs.ndim != 4:
        return False
    nhwc = ("NHWC", "HWIO", "NHWC")
    if dims is None or lax.conv_dimension_numbers(
        lhs.shape, rhs.shape, dims
    ) != lax.conv_dimension_numbers(lhs.shape, rhs.shape, nhwc):
        return False
    ones = lambda v: v is None or all(d == 1 for d in v)  # noqa: E731
    return (
        groups == 1
        and ones(window_strides)
        and ones(lhs_dilation)
        and ones(rhs_dilation)
        and (padding in ("SAME", "VALID") or not isinstance(padding, str))
    )


def matmul(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
    preferred_element_type=None,
    **kwargs,
) -> jax.Array:
    """A 2-D NHWC convolution as one matrix product (im2col).

    Equal to :func:`jax.lax.conv_general_dilated` up to float rounding, forward
    and in its gradients. Calls that it does not cover (strides, dilations,
    groups, other layouts) go to the native convolution.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from inna_optax.training import convolution
      >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
      >>> w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
      >>> dims = ("NHWC", "HWIO", "NHWC")
      >>> native = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dims)
      >>> mine = convolution.matmul(x, w, (1, 1), "SAME", dimension_numbers=dims)
      >>> bool(jnp.allclose(native, mine, atol=1e-5))
      True
    """
    if not _im2col_applies(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
        dimension_numbers, feature_group_count,
    ):  # fmt: skip
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
            dimension_numbers, feature_group_count, precision=precision,
            preferred_element_type=preferred_element_type, **kwargs,
        )  # fmt: skip
    n, h, w, cin = lhs.shape
    kh, kw, _, cout = rhs.shape
    if padding == "SAME":
        padding = (_same_padding(kh), _same_padding(kw))
    elif padding == "VALID":
        padding = ((0, 0), (0, 0))
    (top, bottom), (left, right) = padding
    out_h, out_w = h + top + bottom - kh + 1, w + left + right - kw + 1
    if (kh, kw) == (1, 1) and (top, bottom, left, right) == (0, 0, 0, 0):
        patches = lhs
    else:
        x = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
        # k² shifted views side by side on the channel axis, in the kernel's (i, j, c) order
        patches = jnp.concatenate(
            [x[:, i : i + out_h, j : j + out_w, :] for i in range(kh) for j in range(kw)], axis=-1
        )
    y = jnp.dot(
        patches.reshape(-1, kh * kw * cin),
        rhs.reshape(kh * kw * cin, cout),
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    return y.reshape(n, out_h, out_w, cout)


def auto(lhs, rhs, *args, **kwargs) -> jax.Array:
    """:func:`matmul` when lowered for a CPU, the native convolution for any
    other platform (decided at lowering, so a CUDA or TPU export keeps it)."""
    return lax.platform_dependent(
        lhs,
        rhs,
        cpu=lambda a, b: matmul(a, b, *args, **kwargs),
        default=lambda a, b: lax.conv_general_dilated(a, b, *args, **kwargs),
    )


def max_pool(
    inputs: jax.Array,
    window_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    padding: str | Sequence[tuple[int, int]] = "VALID",
) -> jax.Array:
    """2-D max pooling of NHWC inputs as the maximum of the window's strided slices.

    Equal to :func:`flax.nnx.max_pool`, forward and in its gradients: each window's
    gradient goes to its first maximum in row-major order, as XLA's
    select-and-scatter sends it, ties included, and a NaN in a window gives NaN.
    Inputs that are not 4-D, and windows that are not 2-D, go to
    :func:`flax.nnx.max_pool`.

    On XLA:CPU the gradient is a few elementwise passes where the native one is a
    scatter. The window's values are picked inside a ``lax.cond`` whose predicate
    is always true: a conditional is a fusion boundary, and without it XLA fuses the
    layers above into the pooling's gradient and recomputes them for every window
    that covers an input (measured slower than the native pooling in a NiN step).
    Under ``jax.vmap`` the conditional becomes a select and the boundary is lost;
    the values stay the same.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from inna_optax.training import convolution
      >>> x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
      >>> mine = convolution.max_pool(x, (3, 3), (2, 2), "SAME")
      >>> bool(jnp.array_equal(mine, nnx.max_pool(x, (3, 3), (2, 2), "SAME")))
      True
    """
    strides = tuple(strides) if strides is not None else (1,) * len(window_shape)
    if inputs.ndim != 4 or len(window_shape) != 2 or len(strides) != 2:
        return nnx.max_pool(inputs, window_shape, strides, padding)
    if isinstance(padding, str):  # as flax and lax.reduce_window read it
        pads = lax.padtype_to_pads(inputs.shape[1:3], window_shape, strides, padding)
    else:
        pads = [(int(lo), int(hi)) for lo, hi in padding]
    dtype = inputs.dtype
    floating = jnp.issubdtype(dtype, jnp.floating)
    x = jnp.pad(
        inputs,
        ((0, 0), *pads, (0, 0)),
        constant_values=-jnp.inf if floating else jnp.iinfo(dtype).min,
    )
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = window_shape, strides
    out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1
    views = [
        lax.slice(x, (0, i, j, 0), (n, i + sh * (out_h - 1) + 1, j + sw * (out_w - 1) + 1, c),
                  (1, sh, sw, 1))
        for i in range(kh)
        for j in range(kw)
    ]  # fmt: skip
    # Which view holds each window's first maximum (or first NaN): a view replaces
    # the best so far only when strictly greater.
    best = lax.stop_gradient(views[0])
    index = jnp.zeros(best.shape, jnp.int8 if kh * kw <= 127 else jnp.int32)
    for k, view in enumerate(lax.stop_gradient(views[1:]), 1):
        replaces = view > best
        if floating:
            replaces = replaces | (jnp.isnan(view) & ~jnp.isnan(best))
        best = jnp.where(replaces, view, best)
        index = jnp.where(replaces, jnp.asarray(k, index.dtype), index)

    def pick(views, index):  # each window's chosen value: its gradient goes there only
        out = jnp.zeros(index.shape, dtype)
        for k, view in enumerate(views):
            out = out + jnp.where(index == k, view, 0)
        return out

    if index.size == 0:
        return pick(views, index)
    return lax.cond(index.ravel()[0] >= 0, pick, pick, views, index)  # always true


def auto_max_pool(inputs: jax.Array, *args, **kwargs) -> jax.Array:
    """:func:`max_pool` when lowered for a CPU, :func:`flax.nnx.max_pool` for any
    other platform (decided at lowering, so a CUDA or TPU export keeps it)."""
    return lax.platform_dependent(
        inputs,
        cpu=lambda x: max_pool(x, *args, **kwargs),
        default=lambda x: nnx.max_pool(x, *args, **kwargs),
    )


#: ``--conv`` choices: the function ``flax.nnx.Conv`` is given for each.
CONVOLUTIONS: dict[str, Callable] = {
    "auto": auto,
    "native": lax.conv_general_dilated,
    "matmul": matmul,
}

#: The max pooling that goes with each ``--conv`` choice.
MAX_POOLS: dict[str, Callable] = {
    "auto": auto_max_pool,
    "native": nnx.max_pool,
    "matmul": max_pool,
}


def get(name: str) -> Callable:
    """The convolution for a ``--conv`` choice (see :data:`CONVOLUTIONS`)."""
    if name not in CONVOLUTIONS:
        raise ValueError(f"conv: must be one of {list(CONVOLUTIONS)}, got {name!r}.")
    return CONVOLUTIONS[name]


def get_max_pool(name: str) -> Callable:
    """The max pooling for a ``--conv`` choice (see :data:`MAX_POOLS`)."""
    get(name)  # the same choices, the same error
    return MAX_POOLS[name]
