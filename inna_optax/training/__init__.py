"""The training layer: one configuration, registries of models (the paper's NiN, a
character-level GPT), data sets and optimizers, one data preparation and one step
loop, shared by the command line (`inna_optax.train`), the benchmarks and the
notebooks. It imports Flax; the core optimizer does not.

    from inna_optax.training import Config, fit
    history = fit(Config(epochs=2))      # the embedded digits, NiN, INNA

:func:`fit` is a loop over :func:`setup`'s :class:`Trainer` (the compiled steps, the
mesh and each replica group's :class:`TrainState`), which the benchmarks use too.
"""

from inna_optax.training.config import Config, ConfigError
from inna_optax.training.data import Split, prepare
from inna_optax.training.errors import DataError
from inna_optax.training.launch import LaunchConfig
from inna_optax.training.loop import History, NonFiniteLoss, fit
from inna_optax.training.optimizers import OPTIMIZERS
from inna_optax.training.presets import PRESETS, preset
from inna_optax.training.run_dir import CheckpointError, RunDir, RunDirError
from inna_optax.training.trainer import Trainer, TrainState, setup

__all__ = [
    "OPTIMIZERS",
    "PRESETS",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "History",
    "LaunchConfig",
    "NonFiniteLoss",
    "RunDir",
    "RunDirError",
    "Split",
    "TrainState",
    "Trainer",
    "fit",
    "prepare",
    "preset",
    "setup",
]
