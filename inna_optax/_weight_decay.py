r"""What decoupled weight decay does under INNA's dynamics, and the INNA (or
INNAprop) decay that shrinks like AdamW's.

The authors' rule, used by :func:`inna_optax.inna` and :func:`inna_optax.innaprop`,
replaces theta_k by (1 - gamma_k lambda) theta_k and leaves psi_k alone before
eq. (12). Where the gradient is zero the step is linear, and with t the sum of
the step sizes (gamma_k -> 0) it is the flow of

.. math::

   \dot\theta = -(\alpha + \lambda)\,\theta + D/\beta, \qquad
   \dot D = -\lambda\,\theta, \qquad D = \theta - \psi,

from rest (psi_0 = (1 - alpha beta) theta_0, so D_0 = alpha beta theta_0). Its
characteristic equation is mu^2 + (alpha + lambda) mu + lambda/beta = 0. With
s = (alpha + lambda)/2:

- if lambda/beta > s^2 (underdamped) theta oscillates about 0 inside the envelope
  theta_0 exp(-s t), with omega^2 = lambda/beta - s^2:
  theta(t) = theta_0 exp(-s t) (cos(omega t) + (s - lambda)/omega sin(omega t));
- otherwise it decays without crossing 0, at the slow rate
  r = s - sqrt(s^2 - lambda/beta), which is about lambda / (alpha beta) for a
  small lambda.

AdamW's decoupled decay gives theta_0 exp(-lambda' t) (exactly (1 - gamma
lambda')^k). So the same lambda shrinks much faster under INNA: at INNA's
defaults (alpha, beta) = (0.5, 0.1), a small lambda acts like AdamW's
20 lambda, and lambda = 0.1 is underdamped and overshoots 0 (gamma = 0.05 and
zero gradients: theta = 0.836, 0.199 and -0.37 after 10, 30 and 60 steps, where
AdamW gives 0.951, 0.860, 0.740).
"""

import math

import numpy as np
from numpy.typing import ArrayLike


def _check(alpha: float, beta: float, **values: float) -> None:
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"`alpha` must be a finite number >= 0, got {alpha!r}.")
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"`beta` must be a finite number > 0, got {beta!r}.")
    for name, v in values.items():
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"`{name}` must be a finite number >= 0, got {v!r}.")


def weight_decay_response(
    t: ArrayLike, weight_decay: float, alpha: float, beta: float
) -> np.ndarray:
    r"""The ratio :math:`\theta(t) / \theta_0` under INNA's weight decay alone.

    Where the gradient is zero, the authors' decoupled decay (:math:`\theta_k`
    scaled by :math:`1 - \gamma_k \lambda`, :math:`\psi_k` left alone, then
    eq. (12)) is linear, and with :math:`t = \sum_k \gamma_k` the time taken so
    far its small-step limit is the flow

    .. math::

       \dot\theta = -(\alpha + \lambda)\,\theta + \tfrac{1}{\beta} D, \qquad
       \dot D = -\lambda\,\theta, \qquad D = \theta - \psi,

    of ``inna(..., weight_decay=weight_decay)`` and ``innaprop``, started at
    rest (:math:`D_0 = \alpha\beta\,\theta_0`). Its solution, at the times
    `t`, is

    .. math::

       \frac{\theta(t)}{\theta_0} = e^{-s t}\Big(\cos\omega t
           + \frac{s - \lambda}{\omega}\sin\omega t\Big),\quad
       s = \frac{\alpha + \lambda}{2},\ \omega^2 = \frac{\lambda}{\beta} - s^2

    (:math:`\cosh` and :math:`\sinh` of the same arguments, with
    :math:`\sqrt{-\omega^2}` in place of :math:`\omega`, when
    :math:`\omega^2 < 0`).

    Args:
      t: the times, a number or an array, >= 0.
      weight_decay: :math:`\lambda \ge 0`.
      alpha: viscous damping :math:`\alpha \ge 0`.
      beta: Newtonian damping :math:`\beta > 0`.

    Returns:
      A float64 array of the shape of `t`.

    Example:
      >>> import inna_optax
      >>> round(float(inna_optax.weight_decay_response(3.0, 0.1, 0.5, 0.1)), 3)
      -0.367

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021
      (the dynamics); Bolte, Boustany, Pauwels and Purica, `A second-order-like
      optimizer with adaptive gradient scaling for deep learning
      <https://arxiv.org/abs/2410.05871>`_, 2024 (the weight decay rule).
    """
    _check(alpha, beta, weight_decay=weight_decay)
    t = np.asarray(t, np.float64)
    lam = weight_decay
    s = (alpha + lam) / 2
    w2 = lam / beta - s * s
    if w2 > 0:
        w = math.sqrt(w2)
        return np.exp(-s * t) * (np.cos(w * t) + (s - lam) / w * np.sin(w * t))
    if w2 < 0:
        k = math.sqrt(-w2)
        return np.exp(-s * t) * (np.cosh(k * t) + (s - lam) / k * np.sinh(k * t))
    return np.exp(-s * t) * (1 + (s - lam) * t)


def decay_rate(weight_decay: float, alpha: float, beta: float) -> float:
    r"""The rate at which INNA's weight decay shrinks :math:`\theta` in the long run.

    It is :math:`-\operatorname{Re}\mu` for the slow root :math:`\mu` of
    :math:`\mu^2 + (\alpha + \lambda)\mu + \lambda/\beta = 0` (the
    characteristic equation of the flow in :func:`weight_decay_response`), the
    counterpart of AdamW's :math:`\lambda`, whose :math:`\theta` decays as
    :math:`e^{-\lambda t}`:

    .. math::

       r = s - \sqrt{s^2 - \lambda/\beta} \ \text{(overdamped)}, \qquad
       r = s \ \text{(underdamped)}, \qquad s = \frac{\alpha + \lambda}{2}.

    Args:
      weight_decay: :math:`\lambda \ge 0`.
      alpha: viscous damping :math:`\alpha \ge 0`.
      beta: Newtonian damping :math:`\beta > 0`.

    Returns:
      The rate :math:`r`, per unit of :math:`t = \sum_k \gamma_k`.

    Example:
      >>> import inna_optax
      >>> round(inna_optax.decay_rate(1e-3, alpha=0.5, beta=0.1), 5)  # about 20 lambda
      0.02083

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021
      (the dynamics); Bolte, Boustany, Pauwels and Purica, `A second-order-like
      optimizer with adaptive gradient scaling for deep learning
      <https://arxiv.org/abs/2410.05871>`_, 2024 (the weight decay rule).
    """
    _check(alpha, beta, weight_decay=weight_decay)
    s = (alpha + weight_decay) / 2
    disc = s * s - weight_decay / beta
    return s - math.sqrt(disc) if disc > 0 else s


def equivalent_weight_decay(adamw_weight_decay: float, alpha: float, beta: float) -> float:
    r"""The INNA (or INNAprop) weight decay that shrinks :math:`\theta` as AdamW's does.

    The answer is the smallest :math:`\lambda` whose :func:`decay_rate` equals
    AdamW's :math:`\lambda'`. Two regimes answer, by where :math:`\lambda'` lies
    against :math:`L_1 = (1 - \sqrt{1 - \alpha\beta}) / \beta` and
    :math:`L_2 = (1 + \sqrt{1 - \alpha\beta}) / \beta`. For :math:`\lambda' \le L_1`
    the decay is overdamped, :math:`-\lambda'` the slow root, and

    .. math::

       \lambda = \frac{\beta \lambda' (\alpha - \lambda')}{1 - \beta\lambda'}
           \approx \alpha\beta\lambda';

    for :math:`L_1 < \lambda' \le L_2` (with :math:`\alpha\beta < 1`) it is
    underdamped, the envelope :math:`e^{-\lambda' t}`, and

    .. math::

       \lambda = 2\lambda' - \alpha.

    With :math:`\alpha\beta \ge 1` the first form holds for every
    :math:`\lambda'` below :math:`1/\beta`, the rate no :math:`\lambda` reaches.
    Beyond :math:`L_2` (:math:`\alpha\beta < 1`) no :math:`\lambda` shrinks
    :math:`\theta` as fast: the rate is at most :math:`L_2`. At
    :math:`(\alpha, \beta) = (0.5, 0.1)`, :math:`L_1 = 0.253` and
    :math:`L_2 = 19.7`; at :math:`(0.1, 0.9)`, :math:`L_1 = 0.0513` and
    :math:`L_2 = 2.17`; at :math:`(2, 2)` the bound is 0.5.

    The default behaviour of :func:`inna_optax.inna` and :func:`inna_optax.innaprop`
    stays the authors' (``weight_decay`` is their :math:`\lambda`); this is a
    conversion for users who want AdamW's amount of regularisation.

    Args:
      adamw_weight_decay: :math:`\lambda' \ge 0`, AdamW's decoupled decay
        (``optax.adamw``'s ``weight_decay``).
      alpha: viscous damping :math:`\alpha \ge 0`.
      beta: Newtonian damping :math:`\beta > 0`.

    Returns:
      :math:`\lambda`, to pass as ``weight_decay`` to ``inna`` or ``innaprop``.

    Raises:
      ValueError: a value out of range, or :math:`\lambda'` above what any
        :math:`\lambda` reaches (:math:`L_2` when :math:`\alpha\beta < 1`,
        :math:`1/\beta` otherwise), the limit named.

    Example:
      >>> import inna_optax
      >>> lam = inna_optax.equivalent_weight_decay(0.1, alpha=0.5, beta=0.1)
      >>> round(lam, 6), round(inna_optax.decay_rate(lam, 0.5, 0.1), 6)
      (0.00404, 0.1)
      >>> lam = inna_optax.equivalent_weight_decay(0.3, alpha=0.5, beta=0.1)  # > L_1
      >>> round(lam, 6), round(inna_optax.decay_rate(lam, 0.5, 0.1), 6)
      (0.1, 0.3)

    References:
      Castera, Bolte, Fevotte and Pauwels, `An Inertial Newton Algorithm for
      Deep Learning <https://jmlr.org/papers/v22/19-1024.html>`_, JMLR 2021
      (the dynamics); Bolte, Boustany, Pauwels and Purica, `A second-order-like
      optimizer with adaptive gradient scaling for deep learning
      <https://arxiv.org/abs/2410.05871>`_, 2024 (the weight decay rule).
    """
    _check(alpha, beta, adamw_weight_decay=adamw_weight_decay)
    target, ab = adamw_weight_decay, alpha * beta
    if ab >= 1:
        if target * beta >= 1:
            raise ValueError(
                f"`adamw_weight_decay` {target!r} is out of reach: with alpha = {alpha!r} "
                f"and beta = {beta!r} (alpha beta >= 1) INNA's weight decay shrinks theta "
                f"at a rate below 1/beta = {1 / beta!r}"
            )
        return beta * target * (alpha - target) / (1 - beta * target)
    slow, fast = ((1 - math.sqrt(1 - ab)) / beta, (1 + math.sqrt(1 - ab)) / beta)
    if target <= slow:
        return beta * target * (alpha - target) / (1 - beta * target)
    if target <= fast:
        return 2 * target - alpha
    raise ValueError(
        f"`adamw_weight_decay` {target!r} is out of reach: with alpha = {alpha!r} and "
        f"beta = {beta!r} INNA's weight decay shrinks theta at most at rate "
        f"(1 + sqrt(1 - alpha beta)) / beta = {fast!r}"
    )
