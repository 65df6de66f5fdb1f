"""The optimizer registry: name -> factory, default gamma_0 and help, in one place.

The command line's `--optimizer` choices, the default learning rates and the figure
benchmarks' gamma_0 grids are all read from :data:`OPTIMIZERS`.
"""

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import optax

import inna_optax

SCHEDULES = ("power", "constant", "cosine")


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
    "adam": Optimizer(optax.adam, lr=1e-3, schedule="constant", help="Adam, constant gamma_0"),
    "innaprop": Optimizer(
        inna_optax.innaprop,
        lr=1e-3,
        schedule="constant",
        hyper=("alpha", "beta"),
        options=("weight_decay",),
        help="INNAprop (Bolte et al. 2024), the authors' defaults",
    ),
    "adamw": Optimizer(
        optax.adamw,
        lr=1e-3,
        schedule="constant",
        options=("weight_decay",),
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


def make(
    name: str, lr, decay_power=DECAY_POWER, schedule=None, total_steps=None, **values
) -> optax.GradientTransformation:
    """The transformation `name` with gamma_0 = `lr` (a number or a traced scalar).

    `schedule` (default: the optimizer's) picks gamma_k; ``"cosine"`` needs
    `total_steps`. `values` holds the optimizer's `hyper` and `options` fields
    (None means the optimizer's default); any other name is refused.

    Raises:
      ValueError: an unknown optimizer or hyperparameter (named), or a cosine
        schedule without `total_steps`.
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
    kind = schedule or spec.schedule
    if kind == "power":
        learning_rate = inna_optax.inverse_power_decay(lr, decay_power)
    elif kind == "cosine":
        if not total_steps:
            raise ValueError("the cosine schedule needs the run's number of steps")
        learning_rate = optax.cosine_decay_schedule(lr, total_steps)
    else:
        learning_rate = lr
    kwargs = dict(spec.defaults)
    kwargs.update({k: v for k, v in values.items() if v is not None})
    return spec.build(learning_rate, **kwargs)


def ladder(center: float, below: int = 2, above: int = 2) -> tuple[float, ...]:
    """A gamma_0 grid of factor about 3 around `center`: ... 0.03, 0.1, 0.3, 1 ...

    Rungs alternate between 1 and 3 times a power of ten (`center` must be one).
    """
    return tuple(rung(center, k) for k in range(-below, above + 1))


def rung(center: float, k: int) -> float:
    """The k-th rung above `center` (below it for k < 0) of :func:`ladder`."""
    exponent = math.log10(center)
    base = math.floor(exponent + 1e-9)
    index = 2 * base + (1 if exponent - base > 0.25 else 0) + k  # 1e_n -> 2n, 3e_n -> 2n+1
    value = (3.0 if index % 2 else 1.0) * 10.0 ** (index // 2)
    return float(f"{value:.6g}")
