"""The optimizer registry: name -> factory, default gamma_0 and help, in one place.

The command line's `--optimizer` choices, the default learning rates and the figure
benchmarks' gamma_0 grids are all read from :data:`OPTIMIZERS`.
"""

import dataclasses
import math
from collections.abc import Callable

import optax

import inna_optax


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """How to build one optimizer of the registry.

    Attributes:
      build: ``build(learning_rate, **hyper)`` returns the transformation;
        ``learning_rate`` is a float, a traced scalar or an optax schedule.
      lr: the default gamma_0.
      decays: True for gamma_k = gamma_0 (k+1)^-q (the paper's INNA and SGD),
        False for a constant gamma_0 (the paper's Adam and Adagrad).
      hyper: Config fields passed to ``build`` as numbers (they may be traced
        per replica in a sweep).
      options: Config fields passed to ``build`` as Python values.
      help: one line for the command line.
    """

    build: Callable[..., optax.GradientTransformation]
    lr: float
    decays: bool
    help: str
    hyper: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


OPTIMIZERS: dict[str, Optimizer] = {
    "inna": Optimizer(
        inna_optax.inna,
        lr=1.0,
        decays=True,
        hyper=("alpha", "beta"),
        options=("psi_init",),
        help="INNA, gamma_0 (k+1)^-q",
    ),
    "sgd": Optimizer(optax.sgd, lr=1.0, decays=True, help="SGD, gamma_0 (k+1)^-q"),
    "adagrad": Optimizer(optax.adagrad, lr=0.1, decays=False, help="Adagrad, constant gamma_0"),
    "adam": Optimizer(optax.adam, lr=1e-3, decays=False, help="Adam, constant gamma_0"),
}


def make(name: str, lr, decay_power=0.5, **values) -> optax.GradientTransformation:
    """The transformation `name` with gamma_0 = `lr` (a number or a traced scalar).

    `values` holds the optimizer's `hyper` and `options` fields (others are
    ignored, so a whole Config's worth can be passed).
    """
    spec = OPTIMIZERS[name]
    learning_rate = inna_optax.inverse_power_decay(lr, decay_power) if spec.decays else lr
    kwargs = {k: values[k] for k in spec.hyper + spec.options if k in values}
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
