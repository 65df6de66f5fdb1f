"""INNA, the Inertial Newton Algorithm, as an optax gradient transformation.

Castera, Bolte, Fevotte and Pauwels, "An Inertial Newton Algorithm for Deep
Learning", JMLR 22(134), 2021. Equation numbers below refer to that paper.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

PSI_INITS = ("gradient", "params")

_NO_PARAMS_MSG = (
    "INNA needs params: its update depends on theta_k, so call "
    "`tx.update(grads, state, params)` (optax's `params` argument), not "
    "`tx.update(grads, state)`."
)


class InnaState(NamedTuple):
    """State of :func:`scale_by_inna`.

    Attributes:
      count: the step k (int32), incremented without overflow.
      theta_minus_psi: D_k = theta_k - psi_k, one array per parameter (dtype
        ``psi_dtype``). Eq. (12) gives D_{k+1} = D_k - gamma_k beta v_k: D is
        the part of the paper's state that the gradients move, and storing it
        instead of psi_k lets the update read theta, D and g once and write
        theta and D once, the same five arrays as SGD with momentum (see the
        docstring of :func:`scale_by_inna`). psi_k itself is one subtraction
        away: ``state.psi(params)``.
    """

    count: chex.Array
    theta_minus_psi: optax.Updates

    def psi(self, params: optax.Params) -> optax.Updates:
        """The paper's psi_k = theta_k - D_k, for the params theta_k of this state.

        Before the first update with ``psi_init="gradient"`` this is
        (1 - alpha beta) theta_0: the gradient term of psi_0 is only known at
        the first update.
        """
        return jax.tree.map(lambda p, d: p.astype(d.dtype) - d, params, self.theta_minus_psi)


def _check_number(name: str, value: Any, ok, requirement: str) -> None:
    """Raises ValueError for a concrete Python/NumPy number that fails `ok`.

    Arrays (for example traced hyperparameters under `optax.inject_hyperparams`
    or `jax.vmap`) are not checked: they cannot be inspected at trace time.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not ok(float(value)):
            raise ValueError(f"INNA: `{name}` must be {requirement}, got {value!r}.")


def inverse_power_decay(init_value: float, power: float = 0.5) -> optax.Schedule:
    r"""The paper's step sizes gamma_k = gamma_0 / (k + 1)^q.

    Assumption 1 of the paper (sum of gamma_k infinite, gamma_k = o(1/log k))
    holds for q in (0, 1]; q = 1/2 is the paper's default and q = 1/4 its
    fastest choice in Figure 4.

    Args:
      init_value: gamma_0 > 0.
      power: q in (0, 1] (default 0.5).

    Returns:
      An ``optax.Schedule`` mapping the step k to gamma_k.

    Example:
      >>> import inna_optax
      >>> schedule = inna_optax.inverse_power_decay(0.1, power=0.5)
      >>> round(float(schedule(3)), 6)
      0.05
    """
    _check_number("init_value", init_value, lambda v: v > 0, "> 0")
    _check_number("power", power, lambda v: 0 < v <= 1, "in (0, 1] (Assumption 1)")

    def schedule(count: chex.Numeric) -> chex.Numeric:
        return init_value * jnp.power(count + 1.0, -power)

    return schedule


def scale_by_inna(
    learning_rate: optax.ScalarOrSchedule,
    alpha: float = 0.5,
    beta: float = 0.1,
    *,
    psi_init: str = "gradient",
    psi_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""INNA (paper, eq. 12 and Table 1) as an optax transformation.

    With step sizes gamma_k, hyperparameters alpha >= 0, beta > 0 and v_k the
    (mini-batch, sub)gradient at theta_k, INNA reads::

      theta_{k+1} = theta_k + gamma_k ((1/beta - alpha) theta_k - psi_k/beta - beta v_k)
      psi_{k+1}   = psi_k   + gamma_k ((1/beta - alpha) theta_k - psi_k/beta)

    Subtracting the two lines, D_k = theta_k - psi_k obeys
    D_{k+1} = D_k - gamma_k beta v_k, and substituting psi_k = theta_k - D_k and
    D_k = D_{k+1} + gamma_k beta v_k in the first line gives::

      D_{k+1}             = D_k - gamma_k beta v_k                                  (a)
      theta_{k+1} - theta_k = gamma_k (D_{k+1}/beta - alpha theta_k - (beta - gamma_k) v_k)  (b)

    which is eq. (12) exactly, with no division by anything but beta, for every
    gamma_k > 0. The state holds D (:class:`InnaState`); this transformation
    computes (a) and returns (b), to be added with ``optax.apply_updates``.
    The update reads theta, D and v and writes D, and ``apply_updates``
    writes theta: like SGD with momentum, no array is read after it was
    overwritten, so XLA needs no copy when params and state are donated.

    Initialisation (section 5.2.1): ``psi_init="gradient"`` takes
    psi_0 = (1 - alpha beta) theta_0 - (beta^2 - beta) v_0, so that the first
    move is theta_1 - theta_0 = -gamma_0 v_0; the gradient term is added at the
    first update, when v_0 is known. ``psi_init="params"`` takes
    psi_0 = (1 - alpha beta) theta_0.

    Args:
      learning_rate: gamma_k, a float > 0 or an optax schedule of k (for the
        paper's gamma_0 (k+1)^-q use :func:`inverse_power_decay`).
      alpha: viscous damping alpha >= 0 (default 0.5).
      beta: Newtonian damping beta > 0 (default 0.1).
      psi_init: ``"gradient"`` (default, the paper's choice) or ``"params"``.
      psi_dtype: dtype of the state D (default: each parameter's dtype). Use
        ``jnp.float32`` with bfloat16 or float16 parameters to keep the
        accumulated state accurate. Arithmetic is done in at least float32.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs
      ``params`` and returns theta_{k+1} - theta_k in each parameter's dtype.

    Example:
      >>> import jax, jax.numpy as jnp, optax, inna_optax
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> tx = inna_optax.scale_by_inna(1e-2, alpha=0.5, beta=0.1)
      >>> x = jnp.zeros(3)
      >>> state = tx.init(x)
      >>> for _ in range(2000):
      ...   updates, state = tx.update(jax.grad(f)(x), state, x)
      ...   x = optax.apply_updates(x, updates)
      >>> bool(f(x) < 1e-4)
      True

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021.
    """
    if not callable(learning_rate):
        _check_number("learning_rate", learning_rate, lambda v: v > 0, "> 0")
    _check_number("alpha", alpha, lambda v: v >= 0, ">= 0")
    _check_number("beta", beta, lambda v: v > 0, "> 0")
    if psi_init not in PSI_INITS:
        raise ValueError(f"INNA: `psi_init` must be one of {PSI_INITS}, got {psi_init!r}.")

    def init_fn(params: optax.Params) -> InnaState:
        # D_0 = theta_0 - psi_0 = alpha beta theta_0 (+ the gradient term, added
        # at the first update when psi_init == "gradient").
        def init_leaf(p):
            dtype = psi_dtype if psi_dtype is not None else p.dtype
            return (alpha * beta * p.astype(_compute_dtype(dtype))).astype(dtype)

        return InnaState(
            count=jnp.zeros([], jnp.int32),
            theta_minus_psi=jax.tree.map(init_leaf, params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(_NO_PARAMS_MSG)
        count = state.count
        gamma = learning_rate(count) if callable(learning_rate) else learning_rate
        first = count == 0

        def leaf(v, d, theta):
            cdt = _compute_dtype(d.dtype)
            v = v.astype(cdt)
            g, a, b = (jnp.asarray(x, cdt) for x in (gamma, alpha, beta))
            d_k = d.astype(cdt)
            if psi_init == "gradient":
                # D_0 = alpha beta theta_0 + (beta^2 - beta) v_0.
                d_k = jnp.where(first, d_k + (b * b - b) * v, d_k)
            d_next = (d_k - g * b * v).astype(d.dtype)  # (a)
            step = g * (d_next.astype(cdt) / b - a * theta.astype(cdt) - (b - g) * v)  # (b)
            return step.astype(theta.dtype), d_next

        out = jax.tree.map(leaf, updates, state.theta_minus_psi, params)
        treedef = jax.tree.structure(updates)
        steps, d_next = jax.tree.transpose(treedef, jax.tree.structure((0, 0)), out)
        return steps, InnaState(count=optax.safe_increment(count), theta_minus_psi=d_next)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _compute_dtype(dtype) -> jnp.dtype:
    """At least float32: half-precision arithmetic on the state loses too much."""
    return jnp.promote_types(dtype, jnp.float32)


def inna(
    learning_rate: optax.ScalarOrSchedule,
    alpha: float = 0.5,
    beta: float = 0.1,
    *,
    weight_decay: float = 0.0,
    mask: Any = None,
    psi_init: str = "gradient",
    psi_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""INNA with optional decoupled weight decay, the user-facing optimizer.

    ``optax.chain(optax.add_decayed_weights(weight_decay, mask),
    scale_by_inna(...))``: with weight decay lambda, v_k becomes
    v_k + lambda theta_k in eq. (12). With ``weight_decay=0`` (the default and
    the paper's setting) this is :func:`scale_by_inna` alone.

    Args:
      learning_rate: gamma_k, a float > 0 or a schedule (see
        :func:`inverse_power_decay` for the paper's gamma_0 (k+1)^-q).
      alpha: viscous damping alpha >= 0 (default 0.5).
      beta: Newtonian damping beta > 0 (default 0.1).
      weight_decay: lambda >= 0 (default 0).
      mask: a tree of booleans, or a callable of params returning one, saying
        which leaves weight decay applies to (as in ``optax.adamw``).
      psi_init: ``"gradient"`` (default) or ``"params"``, see
        :func:`scale_by_inna`.
      psi_dtype: dtype of the optimizer state (default: the params' dtype).

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, inna_optax
      >>> tx = inna_optax.inna(inna_optax.inverse_power_decay(0.1), weight_decay=1e-4)
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
      >>> updates, state = tx.update(grads, state, params)
      >>> params = optax.apply_updates(params, updates)
    """
    _check_number("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
    core = scale_by_inna(learning_rate, alpha, beta, psi_init=psi_init, psi_dtype=psi_dtype)
    if isinstance(weight_decay, numbers.Real) and weight_decay == 0:
        return core
    return optax.chain(optax.add_decayed_weights(weight_decay, mask), core)


def lyapunov_energy(
    loss_value: chex.Numeric,
    psi: optax.Updates,
    params: optax.Params,
    alpha: float,
    beta: float,
) -> chex.Numeric:
    r"""The paper's Lyapunov function (Lemma 3.6), for monitoring.

    E(theta, psi) = 2 (1 + alpha beta) J(theta)
                    + || (alpha - 1/beta) theta + psi / beta ||^2,

    non-increasing along the continuous dynamics (11), and along full-batch
    INNA with small enough constant steps on smooth problems.

    Args:
      loss_value: J(theta).
      psi: psi, same tree as params (``state.psi(params)`` for an
        :class:`InnaState`).
      params: theta.
      alpha: alpha.
      beta: beta.

    Returns:
      The scalar E.
    """
    sq = jax.tree.map(
        lambda p, s: jnp.sum(jnp.square((alpha - 1.0 / beta) * p + s / beta)),
        params,
        psi,
    )
    return 2.0 * (1.0 + alpha * beta) * loss_value + sum(jax.tree.leaves(sq))
