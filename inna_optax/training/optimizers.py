"""The optimizer registry: name -> factory, default gamma_0 and help, in one place.

The command line's `--optimizer` choices, the default learning rates and the figure
benchmarks' gamma_0 grids are all read from :data:`OPTIMIZERS`.
"""

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax

import inna_optax
from inna_optax._inna import PSI_INITS

SCHEDULES = ("power", "constant", "cosine")
#: Which parameters weight decay shrinks: all, or those of 2 or more dimensions
#: (kernels, embeddings; not biases or normalisation scales: GPT-2's and nanoGPT's).
DECAY_MASKS = ("all", "matrices")
__all__ = ["DECAY_MASKS", "OPTIMIZERS", "PSI_INITS", "SCHEDULES", "Optimizer", "make"]


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """How to build one optimizer of the registry.

    Attributes:
      build: ``build(learning_rate, **hyper, **options)`` returns the
        transformation; ``learning_rate`` is a float, a traced scalar or an optax
        schedule.
      lr: the default gamma_0.
      schedule: the default schedule of gamma_k: ``"power"`` for
        gamma_0 (k+1)^-q (the paper's INNA and SGD), ``"constant"`` (the paper's
        Adam and Adagrad), ``"cosine"`` (gamma_0 decayed to 0 over the run).
      hyper: Config fields passed to ``build`` as numbers (they may be traced
        per replica in a sweep).
      options: Config fields passed to ``build`` as Python values.
      overrides: defaults of ours that differ from `build`'s signature.
      help: one line for the command line.

    The value a `hyper` or `options` field left unset (None) in the Config takes
    is `build`'s default, unless `overrides` names another (:attr:`defaults`).
    """

    build: Callable[..., optax.GradientTransformation]
    lr: float
    schedule: str
    help: str
    hyper: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def defaults(self) -> dict[str, Any]:
        """The default of each `hyper` and `options` field: `build`'s own (its
        signature's), or an override."""
        signature = inspect.signature(self.build).parameters
        return {k: self.overrides.get(k, signature[k].default) for k in self.hyper + self.options}


#: The registry: name -> :class:`Optimizer` (its factory, default gamma_0 and
#: schedule, hyperparameters and help) for inna, sgd, adagrad, adam, innaprop
#: and adamw. The command line's choices and the figures' grids are read from it.
OPTIMIZERS: dict[str, Optimizer] = {
    "inna": Optimizer(
        inna_optax.inna,
        lr=1.0,
        schedule="power",
        hyper=("alpha", "beta"),
        options=("psi_init", "weight_decay"),
        help="INNA, gamma_0 (k+1)^-q",
    ),
    "sgd": Optimizer(optax.sgd, lr=1.0, schedule="power", help="SGD, gamma_0 (k+1)^-q"),
    "adagrad": Optimizer(
        optax.adagrad, lr=0.1, schedule="constant", help="Adagrad, constant gamma_0"
    ),
    "adam": Optimizer(
        optax.adam,
        lr=1e-3,
        schedule="constant",
        options=("b1", "b2"),
        help="Adam, constant gamma_0",
    ),
    "innaprop": Optimizer(
        inna_optax.innaprop,
        lr=1e-3,
        schedule="constant",
        hyper=("alpha", "beta"),
        options=("weight_decay", "sigma"),
        help="INNAprop (Bolte et al. 2024), the authors' defaults",
    ),
    "adamw": Optimizer(
        optax.adamw,
        lr=1e-3,
        schedule="constant",
        options=("weight_decay", "b1", "b2"),
        overrides=dict(weight_decay=0.01),  # PyTorch's AdamW default (optax's: 1e-4)
        help="AdamW, weight decay 0.01 (PyTorch's default, INNAprop's)",
    ),
}


#: q of the power schedule gamma_0 (k+1)^-q when none is given: the schedule's own
DECAY_POWER: float = inspect.signature(inna_optax.inverse_power_decay).parameters["power"].default


def defaults_text(field: str) -> str:
    """Who defaults `field` to what, for the flags' help: ``"inna 0.5, innaprop 0.1"``."""
    return ", ".join(
        f"{name} {spec.defaults[field]:g}"
        for name, spec in OPTIMIZERS.items()
        if field in spec.defaults
    )


def schedule_of(
    kind: str,
    lr,
    decay_power: float = DECAY_POWER,
    total_steps: int | None = None,
    warmup: int = 0,
    final_lr_ratio: float = 0.0,
) -> optax.ScalarOrSchedule:
    """gamma_k peaking at `lr` (a number or a traced scalar): ``"power"``
    gamma_0 (k+1)^-q, ``"constant"``, or ``"cosine"``: from 0 up to `lr` linearly
    over `warmup` steps, then down a half cosine to ``final_lr_ratio * lr`` at
    `total_steps`.

    Raises:
      ValueError: a cosine schedule without `total_steps` or with a warm-up as
        long as them, or a warm-up with another schedule.
    """
    if warmup and kind != "cosine":
        raise ValueError(f"a warm-up needs the cosine schedule, not {kind!r}")
    if kind == "power":
        return inna_optax.inverse_power_decay(lr, decay_power)
    if kind != "cosine":
        return lr
    if not total_steps:
        raise ValueError("the cosine schedule needs the run's number of steps")
    if warmup >= total_steps:
        raise ValueError(f"a warm-up of {warmup} steps is not fewer than all {total_steps}")
    if not warmup:
        return optax.cosine_decay_schedule(lr, total_steps, alpha=final_lr_ratio)
    # peak 1, scaled by lr afterwards: optax checks a peak's value, which may be traced
    unit = optax.warmup_cosine_decay_schedule(
        0.0, 1.0, warmup, total_steps, end_value=final_lr_ratio
    )
    return lambda count: lr * unit(count)


def decays_matrices(params) -> Any:
    """The ``"matrices"`` weight-decay mask: True for leaves of 2 or more
    dimensions (kernels and embeddings), False for biases and scales.

    Example:
      >>> import jax.numpy as jnp
      >>> decays_matrices({"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)})
      {'bias': False, 'kernel': True}
    """
    return jax.tree.map(lambda x: x.ndim >= 2, params)


def make(
    name: str,
    lr,
    decay_power=DECAY_POWER,
    schedule=None,
    total_steps=None,
    *,
    warmup: int = 0,
    final_lr_ratio: float = 0.0,
    clip: float | None = None,
    decay_mask: str = "all",
    **values,
) -> optax.GradientTransformation:
    """The transformation `name` with gamma_0 = `lr` (a number or a traced scalar).

    `schedule` (default: the optimizer's) picks gamma_k (:func:`schedule_of`, with
    `decay_power`, `total_steps`, `warmup` and `final_lr_ratio`). `clip`: the
    gradients clipped to this global norm first. `decay_mask`: one of
    :data:`DECAY_MASKS`, the parameters weight decay applies to. `values` holds the
    optimizer's `hyper` and `options` fields (None means the optimizer's default);
    any other name is refused.

    Raises:
      ValueError: an unknown optimizer or hyperparameter (named), or a schedule
        :func:`schedule_of` refuses.

    Example:
      >>> from inna_optax.training.optimizers import make
      >>> tx = make("adamw", 1e-3, schedule="cosine", total_steps=100, warmup=10,
      ...           clip=1.0, decay_mask="matrices", b2=0.99)
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    unknown = sorted(set(values) - set(spec.hyper + spec.options))
    if unknown:
        raise ValueError(
            f"{name} takes no hyperparameter {', '.join(unknown)} "
            f"(it takes {', '.join(spec.hyper + spec.options) or 'none but the learning rate'})"
        )
    learning_rate = schedule_of(
        schedule or spec.schedule, lr, decay_power, total_steps, warmup, final_lr_ratio
    )
    kwargs = dict(spec.defaults)
    kwargs.update({k: v for k, v in values.items() if v is not None})
    if decay_mask == "matrices" and "weight_decay" in kwargs:
        kwargs["mask"] = decays_matrices
    tx = spec.build(learning_rate, **kwargs)
    return tx if clip is None else optax.chain(optax.clip_by_global_norm(clip), tx)
