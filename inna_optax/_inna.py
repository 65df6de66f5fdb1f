"""INNA, the Inertial Newton Algorithm, as an optax gradient transformation.

Castera, Bolte, Fevotte and Pauwels, "An Inertial Newton Algorithm for Deep
Learning", JMLR 22(134), 2021. Equation numbers below refer to that paper.
"""

from typing import Any, NamedTuple, cast

import chex
import jax
import jax.numpy as jnp
import optax

from inna_optax._common import (
    check_learning_rate,
    check_number,
    check_params,
    check_state,
    check_state_dtype,
    check_update,
    compute_dtype,
    decay_term,
    inertial_step,
    psi_of,
    step_size,
    weight_decay_mask,
)

PSI_INITS = ("gradient", "params")


class InnaState(NamedTuple):
    r"""State of :func:`scale_by_inna`.

    Attributes:
      count: the step :math:`k` (int32), incremented without overflow.
      theta_minus_psi: :math:`D_k = \theta_k - \psi_k`, one array per parameter
        (dtype ``psi_dtype``). Eq. (12) gives
        :math:`D_{k+1} = D_k - \gamma_k \beta v_k`: :math:`D` is the part of the
        paper's state that the gradients move, and storing it instead of
        :math:`\psi_k` lets the update read :math:`\theta`, :math:`D` and the
        gradient once and write :math:`\theta` and :math:`D` once, the same five
        arrays as SGD with momentum (see :func:`scale_by_inna`).
        :math:`\psi_k` itself is one subtraction away: ``state.psi(params)``.

    Example:
      >>> import jax.numpy as jnp, inna_optax
      >>> tx = inna_optax.inna(0.1, alpha=0.5, beta=0.1, psi_init="params")
      >>> state = tx.init(jnp.ones(2))
      >>> [round(float(v), 6) for v in state.psi(jnp.ones(2))]  # (1 - alpha beta) theta_0
      [0.95, 0.95]

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021.
    """

    count: chex.Array
    theta_minus_psi: optax.Updates

    def psi(self, params: optax.Params) -> optax.Updates:
        r"""The paper's :math:`\psi_k = \theta_k - D_k`, for the params :math:`\theta_k`.

        Before the first update with a gradient-aligned ``psi_init`` (the
        default) this is :math:`(1 - \alpha\beta)\,\theta_0`: the gradient term of
        :math:`\psi_0` is only known at the first update.
        """
        return psi_of(params, self.theta_minus_psi)


def inverse_power_decay(init_value: float, power: float = 0.5) -> optax.Schedule:
    r"""The paper's step sizes :math:`\gamma_k = \gamma_0 / (k + 1)^q`.

    Assumption 1 of the paper (:math:`\sum_k \gamma_k = \infty` and
    :math:`\gamma_k = o(1/\log k)`) holds for :math:`q \in (0, 1]`;
    :math:`q = 1/2` is the paper's default and :math:`q = 1/4` its fastest
    choice in Figure 4.

    Args:
      init_value: :math:`\gamma_0 > 0`.
      power: :math:`q \in (0, 1]` (default 0.5).

    Returns:
      An ``optax.Schedule`` mapping the step :math:`k` to :math:`\gamma_k`.

    Example:
      >>> import inna_optax
      >>> schedule = inna_optax.inverse_power_decay(0.1, power=0.5)
      >>> round(float(schedule(3)), 6)
      0.05

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021.
    """
    check_number("INNA", "init_value", init_value, lambda v: v > 0, "> 0")
    check_number("INNA", "power", power, lambda v: 0 < v <= 1, "in (0, 1] (Assumption 1)")

    def schedule(count: chex.Numeric) -> chex.Numeric:
        return init_value * jnp.power(count + 1.0, -power)

    return schedule


def scale_by_inna(
    learning_rate: optax.ScalarOrSchedule,
    alpha: float = 0.5,
    beta: float = 0.1,
    *,
    weight_decay: float = 0.0,
    mask: Any = None,
    psi_init: str | float = "gradient",
    psi_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""INNA (paper, eq. 12 and Table 1) as an optax transformation.

    With step sizes :math:`\gamma_k`, hyperparameters :math:`\alpha \ge 0`,
    :math:`\beta > 0` and :math:`v_k` the (mini-batch, sub)gradient at
    :math:`\theta_k`, INNA reads

    .. math::

       \theta_{k+1} &= \theta_k + \gamma_k \Big(\big(\tfrac{1}{\beta} - \alpha\big)
           \theta_k - \tfrac{1}{\beta}\psi_k - \beta v_k\Big) \\
       \psi_{k+1} &= \psi_k + \gamma_k \Big(\big(\tfrac{1}{\beta} - \alpha\big)
           \theta_k - \tfrac{1}{\beta}\psi_k\Big)

    Subtracting the two lines, :math:`D_k = \theta_k - \psi_k` obeys
    :math:`D_{k+1} = D_k - \gamma_k \beta v_k`, and substituting
    :math:`\psi_k = \theta_k - D_k` and :math:`D_k = D_{k+1} + \gamma_k \beta v_k`
    in the first line gives

    .. math::

       D_{k+1} &= D_k - \gamma_k \beta v_k \qquad \text{(a)} \\
       \theta_{k+1} - \theta_k &= \gamma_k \Big(\tfrac{1}{\beta} D_{k+1}
           - \alpha \theta_k - (\beta - \gamma_k) v_k\Big) \qquad \text{(b)}

    which is eq. (12) exactly, with no division by anything but :math:`\beta`,
    for every :math:`\gamma_k > 0`. The state holds :math:`D`
    (:class:`InnaState`); this transformation computes (a) and returns (b), to
    be added with ``optax.apply_updates``. The update reads :math:`\theta`,
    :math:`D` and :math:`v` and writes :math:`D`, and ``apply_updates`` writes
    :math:`\theta`: like SGD with momentum, no array is read after it was
    overwritten, so XLA needs no copy when params and state are donated.

    Decoupled weight decay (the authors' form, as in AdamW): with
    :math:`\lambda > 0`, :math:`\theta_k` is first replaced by
    :math:`(1 - \gamma_k \lambda)\,\theta_k` and :math:`\psi_k` is left alone
    (so :math:`D_k` loses :math:`\gamma_k \lambda \theta_k`); eq. (12) then runs
    from there, with :math:`v_k` still the gradient at the undecayed
    :math:`\theta_k`.

    Initialisation (section 5.2.1, and the authors' initial speed :math:`s`):

    .. math::

       \psi_0 = (1 - \alpha\beta)\,\theta_0 - (\beta^2 - \beta s)\, v_0,

    so that the first move is :math:`\theta_1 - \theta_0 = -s \gamma_0 v_0`
    (before any weight decay). ``psi_init="gradient"`` is :math:`s = 1` (the
    paper's choice), ``"params"`` is :math:`s = \beta`
    (:math:`\psi_0 = (1 - \alpha\beta)\,\theta_0`), and a number is :math:`s`
    itself. The gradient term is added at the first update, when :math:`v_0` is
    known.

    Args:
      learning_rate: :math:`\gamma_k`, a finite float > 0 or an optax schedule
        of :math:`k` (for the paper's :math:`\gamma_0 (k+1)^{-q}` use
        :func:`inverse_power_decay`).
      alpha: viscous damping :math:`\alpha \ge 0` (default 0.5).
      beta: Newtonian damping :math:`\beta > 0` (default 0.1).
      weight_decay: decoupled weight decay :math:`\lambda \ge 0` (default 0, the
        paper's).
      mask: a tree of booleans (or a prefix of the params' tree), or a callable
        of params returning one, saying which leaves weight decay applies to
        (as in ``optax.adamw``).
      psi_init: ``"gradient"`` (default), ``"params"`` or the initial speed
        :math:`s` (a finite number).
      psi_dtype: dtype of the state :math:`D` (default: each parameter's dtype). Use
        ``jnp.float32`` with bfloat16 or float16 parameters to keep the
        accumulated state accurate. Arithmetic is done in at least float32.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs
      ``params`` and returns :math:`\theta_{k+1} - \theta_k` in each
      parameter's dtype. The state is an :class:`InnaState` whatever the hyperparameters, so it
      is the same under ``optax.inject_hyperparams``.

    Raises:
      ValueError: for a concrete learning rate, ``alpha``, ``beta``, weight decay or
        initial speed that is out of range or not finite, an unknown
        ``psi_init``, integer or boolean params, complex params with a real
        ``psi_dtype``, or an update without params.

    Example:
      >>> import jax, jax.numpy as jnp, optax, inna_optax
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> tx = inna_optax.scale_by_inna(1e-2, alpha=0.5, beta=0.1)
      >>> x = jnp.zeros(3)
      >>> state = tx.init(x)
      >>> @jax.jit
      ... def step(x, state):
      ...   updates, state = tx.update(jax.grad(f)(x), state, x)
      ...   return optax.apply_updates(x, updates), state
      >>> for _ in range(2000):
      ...   x, state = step(x, state)
      >>> bool(f(x) < 1e-4)
      True

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021.
    """
    who = "INNA"
    check_learning_rate(who, learning_rate)
    check_number(who, "alpha", alpha, lambda v: v >= 0, ">= 0")
    check_number(who, "beta", beta, lambda v: v > 0, "> 0")
    check_number(who, "weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
    check_state_dtype(who, psi_dtype)
    if isinstance(psi_init, str):
        if psi_init not in PSI_INITS:
            raise ValueError(
                f"{who}: `psi_init` must be one of {PSI_INITS} or a number (the initial "
                f"speed s), got {psi_init!r}."
            )
        speed = 1.0 if psi_init == "gradient" else None  # "params": s = beta, no term
    else:
        check_number(who, "psi_init", psi_init, lambda v: True, "a number (the speed s)")
        speed = psi_init

    def init_fn(params: optax.Params) -> InnaState:
        check_params(who, params, psi_dtype)

        # D_0 = theta_0 - psi_0 = alpha beta theta_0 (+ the gradient term, added
        # at the first update).
        def init_leaf(p: jax.Array) -> jax.Array:
            dtype = psi_dtype if psi_dtype is not None else p.dtype
            return (alpha * beta * p.astype(compute_dtype(dtype))).astype(dtype)

        return InnaState(
            count=jnp.zeros([], jnp.int32),
            theta_minus_psi=jax.tree.map(init_leaf, params),
        )

    def update_fn(
        updates: optax.Updates,
        state: InnaState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, InnaState]:
        del extra_args
        check_update(who, updates, params)
        count = state.count
        gamma = step_size(who, learning_rate, count)
        first = count == 0
        grads, treedef = jax.tree.flatten(updates)
        treedef = cast(Any, treedef)  # jaxlib's PyTreeDef has no type stubs
        ds = treedef.flatten_up_to(state.theta_minus_psi)
        check_state(who, ds, params)
        thetas = treedef.flatten_up_to(params)
        masks = weight_decay_mask(mask, params, len(grads), treedef)
        steps: list[jax.Array] = []
        d_next: list[jax.Array] = []
        for grad, d, theta, decays in zip(grads, ds, thetas, masks, strict=True):
            cdt = compute_dtype(d.dtype)
            grad, d_k, th = grad.astype(cdt), d.astype(cdt), theta.astype(cdt)
            gam, a, b = (jnp.asarray(x, cdt) for x in (gamma, alpha, beta))
            if speed is not None:  # D_0 = alpha beta theta_0 + (beta^2 - beta s) v_0
                s = jnp.asarray(speed, cdt)
                d_k = jnp.where(first, d_k + (b * b - b * s) * grad, d_k)
            decay = decay_term(gam, weight_decay, decays, cdt)
            step, d_new = inertial_step(grad, d_k, th, gam, a, b, decay)
            steps.append(step.astype(theta.dtype))
            d_next.append(d_new.astype(d.dtype))
        return treedef.unflatten(steps), InnaState(
            count=optax.safe_increment(count), theta_minus_psi=treedef.unflatten(d_next)
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def inna(
    learning_rate: optax.ScalarOrSchedule,
    alpha: float = 0.5,
    beta: float = 0.1,
    *,
    weight_decay: float = 0.0,
    mask: Any = None,
    psi_init: str | float = "gradient",
    psi_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""INNA with optional decoupled weight decay, the user-facing optimizer.

    The step size enters eq. (12) nonlinearly
    (:math:`\gamma_k (\beta - \gamma_k) v_k`), and the decoupled weight decay
    moves :math:`\theta` but not :math:`\psi`, so both live in
    :func:`scale_by_inna`; this alias is that transformation, named like
    optax's optimizers. With weight decay :math:`\lambda`, each step first
    scales :math:`\theta_k` by :math:`1 - \gamma_k \lambda`, :math:`\psi_k`
    unchanged, then runs eq. (12) (the authors' INNA). ``weight_decay=0`` (the
    default) is the paper's algorithm.

    The inertial dynamics change this decay's rate (:func:`decay_rate`, per unit
    of :math:`\sum_k \gamma_k`, where the gradient is zero). With
    :math:`\alpha\beta < 1` a small :math:`\lambda` is overdamped,
    :math:`\theta` shrinking at about :math:`\lambda / (\alpha\beta)` without
    crossing 0 (twenty times AdamW's :math:`\lambda` at the defaults), and a
    larger one is underdamped, :math:`\theta` oscillating about 0 inside an
    envelope at rate :math:`(\alpha + \lambda) / 2` (:math:`\lambda = 0.1` at
    the defaults: :math:`3\lambda`, overshooting 0;
    :func:`weight_decay_response`). With :math:`\alpha\beta \ge 1` it is always
    overdamped, at a rate below both :math:`\lambda` and :math:`1/\beta`
    (:math:`0.24\,\lambda` at :math:`(\alpha, \beta) = (2, 2)`).
    :func:`equivalent_weight_decay` converts AdamW's :math:`\lambda'` into the
    :math:`\lambda` that shrinks alike (0.1 to 0.00404 at the defaults).

    Args:
      learning_rate: :math:`\gamma_k`, a float > 0 or a schedule (see
        :func:`inverse_power_decay` for the paper's :math:`\gamma_0 (k+1)^{-q}`).
      alpha: viscous damping :math:`\alpha \ge 0` (default 0.5).
      beta: Newtonian damping :math:`\beta > 0` (default 0.1).
      weight_decay: decoupled weight decay :math:`\lambda \ge 0` (default 0).
      mask: a tree of booleans, or a callable of params returning one, saying
        which leaves weight decay applies to (as in ``optax.adamw``).
      psi_init: ``"gradient"`` (default), ``"params"`` or the initial speed
        :math:`s`, see :func:`scale_by_inna`.
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
      >>> round(float(params["w"][0]), 4)  # the first move is -gamma_0 times the gradient
      0.8

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021.
    """
    return scale_by_inna(
        learning_rate,
        alpha,
        beta,
        weight_decay=weight_decay,
        mask=mask,
        psi_init=psi_init,
        psi_dtype=psi_dtype,
    )


def lyapunov_energy(
    loss_value: chex.Numeric,
    psi: optax.Updates,
    params: optax.Params,
    alpha: float,
    beta: float,
) -> chex.Numeric:
    r"""The paper's Lyapunov function (Lemma 3.6), for monitoring.

    .. math::

       E(\theta, \psi) = 2 (1 + \alpha\beta)\, J(\theta)
           + \Big\| \big(\alpha - \tfrac{1}{\beta}\big)\theta + \tfrac{1}{\beta}\psi \Big\|^2,

    non-increasing along the continuous dynamics (11), and along full-batch
    INNA with small enough constant steps on smooth problems.

    Args:
      loss_value: :math:`J(\theta)`.
      psi: :math:`\psi`, the same tree as params (``state.psi(params)`` for an
        :class:`InnaState`).
      params: :math:`\theta`.
      alpha: :math:`\alpha`.
      beta: :math:`\beta`.

    Returns:
      The scalar :math:`E`.

    Example:
      >>> import jax.numpy as jnp, inna_optax
      >>> theta, psi = jnp.ones(2), jnp.zeros(2)
      >>> # 2 (1 + 0.05) J + ||(0.5 - 10) theta||^2 = 2.1 + 2 * 90.25
      >>> round(float(inna_optax.lyapunov_energy(1.0, psi, theta, alpha=0.5, beta=0.1)), 4)
      182.6

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021.
    """
    sq = jax.tree.map(
        lambda p, s: jnp.sum(jnp.square((alpha - 1.0 / beta) * p + s / beta)),
        params,
        psi,
    )
    return 2.0 * (1.0 + alpha * beta) * loss_value + sum(jax.tree.leaves(sq))
