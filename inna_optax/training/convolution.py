"""Convolutions as matrix products, for XLA:CPU.

XLA:CPU's convolution kernels, forward and backward, take most of a NiN training
step on a CPU. Written as matrix products the same convolutions run faster
there: a k x k convolution becomes k² shifted slices of the padded input laid
side by side on the channel axis (im2col) times the kernel seen as a
(k² x in, out) matrix, and a 1 x 1 convolution a plain matrix product. On GPUs
and TPUs the native convolution is the fast one, so :func:`auto` picks per
platform when the computation is lowered (``jax.lax.platform_dependent``): an
export for CUDA or TPU keeps the native convolution.

Each function takes the arguments of :func:`jax.lax.conv_general_dilated`, so it
can be handed to ``flax.nnx.Conv(conv_general_dilated=...)``.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
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


#: ``--conv`` choices: the function ``flax.nnx.Conv`` is given for each.
CONVOLUTIONS: dict[str, Callable] = {
    "auto": auto,
    "native": lax.conv_general_dilated,
    "matmul": matmul,
}


def get(name: str) -> Callable:
    """The convolution for a ``--conv`` choice (see :data:`CONVOLUTIONS`)."""
    if name not in CONVOLUTIONS:
        raise ValueError(f"conv: must be one of {list(CONVOLUTIONS)}, got {name!r}.")
    return CONVOLUTIONS[name]
