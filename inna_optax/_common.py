"""What INNA and INNAprop share: the checks of their inputs and the inertial step of
eq. (12) in D form (D = theta - psi).

Names, in both optimizers: ``gamma`` the step size gamma_k (``gam`` once cast to
the compute dtype), ``grad`` the (scaled, for INNAprop) gradient v_k, ``d`` the
state D_k = theta_k - psi_k, ``theta`` the parameters.
"""

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

NO_PARAMS_MSG = (
    "{who} needs params: its update depends on theta_k, so call "
    "`tx.update(grads, state, params)` (optax's `params` argument), not "
    "`tx.update(grads, state)`."
)


def psi_of(params: optax.Params, theta_minus_psi: optax.Updates) -> optax.Updates:
    """psi = theta - D, leaf by leaf, in D's dtype."""
    return jax.tree.map(lambda p, d: p.astype(d.dtype) - d, params, theta_minus_psi)


def check_number(who: str, name: str, value: Any, ok: Callable[[float], bool], req: str) -> None:
    """Raises ValueError when a concrete hyperparameter fails `ok` or is not finite.

    Python and NumPy numbers and concrete JAX arrays are checked; traced values
    (under ``jax.jit``, ``jax.vmap`` or ``optax.inject_hyperparams`` inside a
    jitted step) cannot be inspected and pass through.
    """
    if isinstance(value, bool) or isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, numbers.Real):
        values = [float(value)]
    elif isinstance(value, (jax.Array, np.ndarray)) and jnp.issubdtype(value.dtype, jnp.number):
        values = [complex(v).real if np.iscomplexobj(v) else float(v) for v in np.ravel(value)]
    else:
        raise ValueError(
            f"{who}: `{name}` must be a number or a JAX or NumPy array, got "
            f"{type(value).__name__} {value!r}."
        )
    for v in values:
        if not (math.isfinite(v) and ok(v)):
            raise ValueError(f"{who}: `{name}` must be finite and {req}, got {value!r}.")


def check_learning_rate(who: str, learning_rate: Any) -> None:
    """A schedule, or a number (or array) > 0; anything else is refused by name."""
    if callable(learning_rate):
        return
    if not isinstance(learning_rate, (numbers.Real, jax.Array, np.ndarray, jax.core.Tracer)):
        raise ValueError(
            f"{who}: `learning_rate` must be a number, an optax schedule or a JAX or NumPy "
            f"array, got {type(learning_rate).__name__} {learning_rate!r}."
        )
    check_number(who, "learning_rate", learning_rate, lambda v: v > 0, "> 0")


def check_update(who: str, updates: optax.Updates, params: optax.Params | None) -> None:
    """An update needs params, and each gradient leaf its parameter's shape."""
    if params is None:
        raise ValueError(NO_PARAMS_MSG.format(who=who))
    check_shapes(who, updates, params)


def step_size(who: str, learning_rate: Any, count: jax.Array) -> Any:
    """gamma_k: the schedule at `count`, or the constant, checked when concrete."""
    gamma = learning_rate(count) if callable(learning_rate) else learning_rate
    check_learning_rate(who, gamma)
    return gamma


def decay_term(gamma: jax.Array, weight_decay: Any, leaf_mask: Any, dtype: Any) -> jax.Array | None:
    """gamma lambda for a leaf weight decay applies to (`leaf_mask` True, or a
    traced mask value); None when there is none (lambda 0, a Python number)."""
    no_decay = isinstance(weight_decay, numbers.Real) and weight_decay == 0
    if no_decay or leaf_mask is False:
        return None
    return gamma * jnp.asarray(weight_decay, dtype) * jnp.asarray(leaf_mask, dtype)


def check_shapes(who: str, updates: optax.Updates, params: optax.Params) -> None:
    """Each gradient leaf has its parameter's shape; the message names the leaf."""
    leaves = jax.tree_util.tree_leaves_with_path(updates)
    treedef: Any = jax.tree.structure(updates)  # jaxlib's PyTreeDef has no type stubs
    for (path, g), p in zip(leaves, treedef.flatten_up_to(params), strict=True):
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"{who}: the gradient at {jax.tree_util.keystr(path) or 'the root'} has shape "
                f"{jnp.shape(g)}, its parameter {jnp.shape(p)}."
            )


def check_params(who: str, params: optax.Params, state_dtype: Any) -> None:
    """Params must be floating or complex, and a real state cannot hold complex params."""
    for path, p in jax.tree_util.tree_leaves_with_path(params):
        dtype = jnp.result_type(p)
        where = jax.tree_util.keystr(path) or "params"
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise ValueError(
                f"{who}: params must be floating-point, but {where} has dtype {dtype}; "
                "leave integer or boolean leaves out with optax.masked or "
                "optax.multi_transform."
            )
        if (
            state_dtype is not None
            and jnp.issubdtype(dtype, jnp.complexfloating)
            and not jnp.issubdtype(state_dtype, jnp.complexfloating)
        ):
            raise ValueError(
                f"{who}: {where} is complex ({dtype}) but psi_dtype={jnp.dtype(state_dtype)} "
                "is real and would drop the imaginary part; pass a complex psi_dtype."
            )


def check_state_dtype(who: str, state_dtype: Any) -> None:
    """A state dtype must hold fractions: an integer one would truncate psi."""
    if state_dtype is not None and not jnp.issubdtype(jnp.dtype(state_dtype), jnp.inexact):
        raise ValueError(
            f"{who}: `psi_dtype` must be a floating-point or complex dtype, got "
            f"{jnp.dtype(state_dtype)}."
        )


def check_state(who: str, states: list[jax.Array], params: optax.Params) -> None:
    """Each state leaf has its parameter's shape; the message names the leaf."""
    for (path, p), d in zip(jax.tree_util.tree_leaves_with_path(params), states, strict=True):
        if jnp.shape(d) != jnp.shape(p):
            raise ValueError(
                f"{who}: the state of {jax.tree_util.keystr(path) or 'params'} has shape "
                f"{tuple(jnp.shape(d))}, its parameter {tuple(jnp.shape(p))}: the params "
                "are not those the state was initialised with."
            )


def weight_decay_mask(mask: Any, params: optax.Params, leaves: int, treedef: Any) -> list[Any]:
    """The mask's value for each leaf of params (a tree prefix is broadcast)."""
    if mask is None:
        return [True] * leaves
    tree = mask(params) if callable(mask) else mask
    full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), tree, params)
    flat: list[Any] = treedef.flatten_up_to(full)
    return flat


def compute_dtype(dtype: Any) -> jnp.dtype:
    """At least float32: half-precision arithmetic on the state loses too much."""
    return jnp.promote_types(dtype, jnp.float32)


def inertial_step(
    grad: jax.Array,
    d_k: jax.Array,
    theta: jax.Array,
    gamma: jax.Array,
    alpha: jax.Array,
    beta: jax.Array,
    decay: jax.Array | None,
    grad_step: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """One step of eq. (12) in D form, in theta's compute dtype (all arrays cast).

    With decoupled weight decay `decay` = gamma lambda (None for none), theta is
    first scaled by (1 - gamma lambda) and psi left alone, so D loses
    gamma lambda theta. Returns (theta_{k+1} - theta_k, D_{k+1}); neither reads
    D_k after D_{k+1} is known, so a donated D is updated in place. `grad_step`,
    the same values as `grad` computed apart, is used in (b) when given (INNAprop).
    """
    grad_step = grad if grad_step is None else grad_step
    if decay is not None:
        d_k = d_k - decay * theta
        decayed = theta - decay * theta
    else:
        decayed = theta
    d_next = d_k - gamma * beta * grad  # (a)
    step = gamma * (d_next / beta - alpha * decayed - (beta - gamma) * grad_step)  # (b)
    if decay is not None:
        step = step - decay * theta
    return step, d_next


def recomputed_on_cpu(fn: Callable[..., jax.Array], value: jax.Array, *args: Any) -> jax.Array:
    """`value` = ``fn(*args)``, computed again from `args` when lowered for a CPU.

    XLA:CPU fuses each output of a step separately and will not recompute a
    square root and a division in two fusions: it writes the shared value to
    memory and reads it back. Behind an optimization barrier the second use
    computes it again inside its own fusion (INNAprop: 13 array passes per step
    instead of 14, 2.3x faster on a 2-core CPU). Other platforms fuse several
    outputs into one kernel and get `value` as it is; the choice is made at
    lowering (``jax.lax.platform_dependent``).
    """
    result: jax.Array = jax.lax.platform_dependent(
        *args,
        # jax.lax.optimization_barrier carries no annotations: the ignore is for it
        cpu=lambda *a: fn(*jax.lax.optimization_barrier(a)),  # type: ignore[no-untyped-call]
        default=lambda *a: value,
    )
    return result
