"""INNAprop: INNA with RMSprop's scaling of the gradient and decoupled weight decay.

Bolte, Boustany, Pauwels and Purica, "A second-order-like optimizer with adaptive
gradient scaling for deep learning", 2024 (arXiv:2410.05871).
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
    recomputed_on_cpu,
    step_size,
    weight_decay_mask,
)


class InnapropState(NamedTuple):
    r"""State of :func:`scale_by_innaprop`: twice the params' bytes, as AdamW's.

    Attributes:
      count: the number of updates :math:`k` made so far (int32), incremented
        without overflow.
      nu: the second-moment estimate :math:`v_k` of the gradient (RMSprop's),
        one array per parameter.
      theta_minus_psi: :math:`D_k = \theta_k - \psi_k`, as in
        :class:`InnaState`; ``state.psi(params)`` gives :math:`\psi_k`.

    Example:
      >>> import jax.numpy as jnp, inna_optax
      >>> state = inna_optax.innaprop(1e-3).init({"w": jnp.ones(3)})
      >>> state.nu["w"].shape, state.theta_minus_psi["w"].shape
      ((3,), (3,))

    References:
      Bolte, Boustany, Pauwels and Purica, `A second-order-like optimizer with
      adaptive gradient scaling for deep learning
      <https://arxiv.org/abs/2410.05871>`_, 2024.
    """

    count: chex.Array
    nu: optax.Updates
    theta_minus_psi: optax.Updates

    def psi(self, params: optax.Params) -> optax.Updates:
        r"""The paper's :math:`\psi_k = \theta_k - D_k`, for the params :math:`\theta_k`."""
        return psi_of(params, self.theta_minus_psi)


def scale_by_innaprop(
    learning_rate: optax.ScalarOrSchedule,
    alpha: float = 0.1,
    beta: float = 0.9,
    *,
    sigma: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    mask: Any = None,
    psi_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""INNAprop (Bolte et al. 2024, Algorithm 1) as an optax transformation.

    With step sizes :math:`\gamma_k`, weight decay :math:`\lambda`, second-moment
    decay :math:`\sigma` and :math:`g_k` the gradient at :math:`\theta_k`, the
    authors' update for :math:`k = 1, 2, \ldots` is

    .. math::

       \theta &\leftarrow (1 - \gamma_k \lambda)\,\theta
           \qquad \text{(decoupled decay)} \\
       v_k &= \sigma v_{k-1} + (1 - \sigma)\, g_k^2, \qquad
           \hat v_k = v_k / (1 - \sigma^k) \\
       \psi_k &= \big(1 - \tfrac{\gamma_k}{\beta}\big)\psi_{k-1}
           + \gamma_k \big(\tfrac{1}{\beta} - \alpha\big)\theta \\
       \theta &\leftarrow \Big(1 + \frac{\gamma_k (1 - \alpha\beta)}{\beta - \gamma_k}\Big)\theta
           - \frac{\gamma_k}{\beta - \gamma_k}\psi_k
           - \frac{\gamma_k \beta\, g_k}{\sqrt{\hat v_k} + \epsilon}

    with :math:`\psi_0 = (1 - \alpha\beta)\,\theta_0` and :math:`v_0 = 0`.
    Eliminating :math:`\psi_k` from the last line shows that this is INNA's
    eq. (12) run from the decayed :math:`\theta` with
    :math:`u_k = g_k / (\sqrt{\hat v_k} + \epsilon)` in place of the gradient.
    As in :func:`scale_by_inna`, the state holds :math:`D = \theta - \psi`,
    which moves only by
    :math:`D_{k+1} = D_k - \gamma_k \lambda \theta_k - \gamma_k \beta u_k`, and
    the step is computed without the authors' division by
    :math:`\beta - \gamma_k`, so :math:`\gamma_k \ge \beta` is fine. The
    learning rate schedule is evaluated at :math:`k - 1 = 0, 1, \ldots` (optax's
    step count).

    Args:
      learning_rate: :math:`\gamma_k`, a finite float > 0 or an optax schedule
        (the authors: 1e-3, with a cosine schedule).
      alpha: viscous damping :math:`\alpha \ge 0` (default 0.1, the authors').
      beta: Newtonian damping :math:`\beta > 0` (default 0.9, the authors').
      sigma: decay :math:`\sigma` of the second moment, in [0, 1) (default
        0.999).
      eps: :math:`\epsilon`, added to :math:`\sqrt{\hat v_k}`, >= 0 (default
        1e-8).
      weight_decay: decoupled weight decay :math:`\lambda \ge 0` (default
        0.01).
      mask: a tree of booleans (or a prefix of the params' tree), or a callable
        of params returning one, saying which leaves weight decay applies to
        (as in ``optax.adamw``).
      psi_dtype: dtype of the state :math:`D` and ``nu`` (default: each parameter's dtype);
        arithmetic is done in at least float32.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs
      ``params`` and returns :math:`\theta_{k+1} - \theta_k` in each
      parameter's dtype.

    Raises:
      ValueError: for a concrete hyperparameter out of range or not finite,
        integer or boolean params, complex params with a real ``psi_dtype``, or
        an update without params.

    Example:
      >>> import jax, jax.numpy as jnp, optax, inna_optax
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> tx = inna_optax.innaprop(1e-2, weight_decay=0.0)
      >>> x = jnp.zeros(3)
      >>> state = tx.init(x)
      >>> @jax.jit
      ... def step(x, state):
      ...   updates, state = tx.update(jax.grad(f)(x), state, x)
      ...   return optax.apply_updates(x, updates), state
      >>> for _ in range(1000):
      ...   x, state = step(x, state)
      >>> bool(f(x) < 1e-3)
      True

    References:
      Bolte, Boustany, Pauwels and Purica, `A second-order-like optimizer with
      adaptive gradient scaling for deep learning
      <https://arxiv.org/abs/2410.05871>`_, 2024.
    """
    who = "INNAprop"
    check_learning_rate(who, learning_rate)
    check_number(who, "alpha", alpha, lambda v: v >= 0, ">= 0")
    check_number(who, "beta", beta, lambda v: v > 0, "> 0")
    check_number(who, "sigma", sigma, lambda v: 0 <= v < 1, "in [0, 1)")
    check_number(who, "eps", eps, lambda v: v >= 0, ">= 0")
    check_number(who, "weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
    check_state_dtype(who, psi_dtype)

    def init_fn(params: optax.Params) -> InnapropState:
        check_params(who, params, psi_dtype)

        def dtype_of(p: jax.Array) -> Any:
            return psi_dtype if psi_dtype is not None else p.dtype

        def init_d(p: jax.Array) -> jax.Array:  # D_0 = theta_0 - psi_0 = alpha beta theta_0
            dtype = dtype_of(p)
            return (alpha * beta * p.astype(compute_dtype(dtype))).astype(dtype)

        def init_nu(p: jax.Array) -> jax.Array:  # real, also for complex params
            real = jnp.finfo(dtype_of(p)).dtype  # type: ignore[no-untyped-call]  # jax's finfo is unannotated
            return jnp.zeros(p.shape, real)

        return InnapropState(
            count=jnp.zeros([], jnp.int32),
            nu=jax.tree.map(init_nu, params),
            theta_minus_psi=jax.tree.map(init_d, params),
        )

    def update_fn(
        updates: optax.Updates,
        state: InnapropState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, InnapropState]:
        del extra_args
        check_update(who, updates, params)
        gamma = step_size(who, learning_rate, state.count)
        count = optax.safe_increment(state.count)  # k = 1, 2, ...
        grads, treedef = jax.tree.flatten(updates)
        treedef = cast(Any, treedef)  # jaxlib's PyTreeDef has no type stubs
        nus = treedef.flatten_up_to(state.nu)
        ds = treedef.flatten_up_to(state.theta_minus_psi)
        check_state(who, ds, params)
        thetas = treedef.flatten_up_to(params)
        masks = weight_decay_mask(mask, params, len(grads), treedef)
        steps: list[jax.Array] = []
        nu_next: list[jax.Array] = []
        d_next: list[jax.Array] = []
        for grad, nu, d, theta, decays in zip(grads, nus, ds, thetas, masks, strict=True):
            cdt = compute_dtype(d.dtype)
            rdt = compute_dtype(nu.dtype)
            grad, th = grad.astype(cdt), theta.astype(cdt)
            gam, a, b = (jnp.asarray(x, cdt) for x in (gamma, alpha, beta))
            sig, e = jnp.asarray(sigma, rdt), jnp.asarray(eps, rdt)
            nu_k = sig * nu.astype(rdt) + (1 - sig) * jnp.square(jnp.abs(grad))
            bias = 1 - sig ** count.astype(rdt)
            u = _scaled(grad, nu_k, bias, e)
            u_step = recomputed_on_cpu(_scaled, u, grad, nu_k, bias, e)  # the same u, for (b)
            decay = decay_term(gam, weight_decay, decays, cdt)
            step, d_new = inertial_step(u, d.astype(cdt), th, gam, a, b, decay, u_step)
            steps.append(step.astype(theta.dtype))
            nu_next.append(nu_k.astype(nu.dtype))
            d_next.append(d_new.astype(d.dtype))
        return treedef.unflatten(steps), InnapropState(
            count=count, nu=treedef.unflatten(nu_next), theta_minus_psi=treedef.unflatten(d_next)
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _scaled(grad: jax.Array, nu: jax.Array, bias: jax.Array, eps: jax.Array) -> jax.Array:
    """u = grad / (sqrt(v_hat) + eps), v_hat = nu / bias."""
    return grad / (jnp.sqrt(nu / bias) + eps)


def innaprop(
    learning_rate: optax.ScalarOrSchedule,
    alpha: float = 0.1,
    beta: float = 0.9,
    *,
    sigma: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    mask: Any = None,
    psi_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""INNAprop, the user-facing optimizer (defaults: the authors').

    The step size enters the update nonlinearly and the decoupled weight decay
    moves :math:`\theta` but not :math:`\psi`, so, as for :func:`inna`, the
    whole update lives in
    :func:`scale_by_innaprop`; this alias is that transformation, named like
    optax's optimizers. See :func:`scale_by_innaprop` for the equations.

    Args:
      learning_rate: :math:`\gamma_k`, a float > 0 or an optax schedule (the
        authors use 1e-3 with a cosine schedule, e.g.
        ``optax.cosine_decay_schedule``).
      alpha: viscous damping :math:`\alpha \ge 0` (default 0.1).
      beta: Newtonian damping :math:`\beta > 0` (default 0.9).
      sigma: decay :math:`\sigma` of the second moment, in [0, 1) (default
        0.999).
      eps: :math:`\epsilon`, added to :math:`\sqrt{\hat v_k}`, >= 0 (default
        1e-8).
      weight_decay: decoupled weight decay :math:`\lambda \ge 0` (default 0.01,
        the authors'). Under INNAprop's dynamics its long-run rate
        (:func:`decay_rate`) is not AdamW's :math:`\lambda`: with
        :math:`\alpha\beta < 1` a small :math:`\lambda` is overdamped at about
        :math:`\lambda / (\alpha\beta)`, faster than AdamW, and a larger one
        underdamped (:math:`\theta` oscillates about 0 inside an envelope at
        rate :math:`(\alpha + \lambda) / 2`): :math:`5.5\,\lambda` at the
        defaults with :math:`\lambda = 0.01`, :math:`1.0\,\lambda` with 0.1.
        With :math:`\alpha\beta \ge 1` it is always overdamped and slower than
        AdamW: :math:`0.24\,\lambda` at :math:`(\alpha, \beta) = (2, 2)` with
        0.1, never crossing 0 (:func:`weight_decay_response`).
        :func:`equivalent_weight_decay` gives the :math:`\lambda` that matches
        AdamW's.
      mask: which leaves weight decay applies to (as in ``optax.adamw``).
      psi_dtype: dtype of the optimizer state (default: the params' dtype).

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, inna_optax
      >>> tx = inna_optax.innaprop(optax.cosine_decay_schedule(1e-3, 1000))
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
      >>> updates, state = tx.update(grads, state, params)
      >>> params = optax.apply_updates(params, updates)
      >>> jax.tree.map(jnp.shape, state.nu)
      {'w': (3,)}

    References:
      Bolte, Boustany, Pauwels and Purica, `A second-order-like optimizer with
      adaptive gradient scaling for deep learning
      <https://arxiv.org/abs/2410.05871>`_, 2024.
    """
    return scale_by_innaprop(
        learning_rate,
        alpha,
        beta,
        sigma=sigma,
        eps=eps,
        weight_decay=weight_decay,
        mask=mask,
        psi_dtype=psi_dtype,
    )
