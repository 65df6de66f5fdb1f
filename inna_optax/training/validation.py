"""The checks of a :class:`~inna_optax.training.Config` as a whole: each field's
own check and choices (declared on the field), then what fields say of each other
(a flag of another model, a data set the model does not train on, an optimizer
setting the optimizer does not take, several processes). Each failure is a
:class:`ConfigError` naming a flag, in one line."""

import dataclasses
from typing import TYPE_CHECKING

from inna_optax.training.data import DATASETS
from inna_optax.training.fields import ConfigError, flag
from inna_optax.training.models import MODELS
from inna_optax.training.optimizers import OPTIMIZERS

if TYPE_CHECKING:
    from inna_optax.training.config import Config


def validate(config: "Config", *, sweep: bool = False) -> None:
    """Raises ConfigError naming the flag of the first bad value in `config`.

    `sweep=True` allows repeated seeds (replicas that differ by hyperparameters).
    """
    if config.dataset is None:
        images = ", ".join(k for k, v in DATASETS.items() if v.needs_files and v.kind == "images")
        raise ConfigError(f"--data-dir: say which data set it holds with --dataset ({images})")
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        choices = f.metadata.get("choices")
        if choices and value is not None and value not in choices:
            raise ConfigError(f"{flag(f.name)}: must be one of {', '.join(choices)}")
        check = f.metadata.get("check")
        if check and (problem := check(value)):
            raise ConfigError(f"{flag(f.name)}: {problem}")
    _check_applies(config)
    if not sweep and len(set(config.seeds)) != len(config.seeds):
        raise ConfigError(f"--seeds: repeated seed in {list(config.seeds)}")
    if DATASETS[config.dataset].needs_files and not (config.data_dir or config.download):
        raise ConfigError(f"--data-dir: --dataset {config.dataset} needs it (or --download)")
    _check_processes(config)
    _check_optimizer(config)
    if config.resume and config.overwrite:
        raise ConfigError("--resume: cannot be combined with --overwrite")
    if config.resume and config.out is None:
        raise ConfigError("--resume: needs --out, the run to continue")
    if config.train_examples is not None and config.train_examples < config.batch_size:
        raise ConfigError(
            f"--train-examples: {config.train_examples} is less than one batch "
            f"(--batch-size {config.batch_size})"
        )


def _check_applies(config: "Config") -> None:
    """A field of another model or kind of data set, set, is refused; so is a
    data set the model does not train on."""
    kind = DATASETS[config.dataset].kind
    if MODELS[config.model].data != kind:
        fits = [k for k, v in DATASETS.items() if v.kind == MODELS[config.model].data]
        raise ConfigError(
            f"--dataset: --model {config.model} trains on {', '.join(fits)}, not {config.dataset}"
        )
    for f in dataclasses.fields(config):
        only = f.metadata.get("only")
        if only and not {config.model, kind} & set(only) and getattr(config, f.name) != f.default:
            raise ConfigError(
                f"{flag(f.name)}: applies to {' and '.join(only)} only, not --model "
                f"{config.model} on --dataset {config.dataset}"
            )
    if kind == "text" and config.steps % config.eval_every:
        raise ConfigError(
            f"--steps: {config.steps} is not a multiple of --eval-every {config.eval_every}"
        )


def _check_optimizer(config: "Config") -> None:
    spec = OPTIMIZERS[config.optimizer]
    takes = spec.hyper + spec.options
    for name in ("weight_decay", "b1", "b2", "sigma"):
        if getattr(config, name) is not None and name not in takes:
            who = ", ".join(k for k, v in OPTIMIZERS.items() if name in v.hyper + v.options)
            raise ConfigError(f"{flag(name)}: {config.optimizer} takes none ({who} do)")
    if config.decay_mask is not None and "weight_decay" not in takes:
        raise ConfigError(f"--decay-mask: {config.optimizer} has no weight decay")
    if (config.warmup or config.final_lr_ratio) and config.schedule_kind != "cosine":
        name = "--warmup" if config.warmup else "--final-lr-ratio"
        raise ConfigError(f"{name}: needs --schedule cosine")


def _check_processes(config: "Config") -> None:
    """--coordinator, --num-processes and --process-id go together."""
    if config.coordinator and (config.num_processes is None or config.process_id is None):
        raise ConfigError("--coordinator: needs --num-processes and --process-id")
    if (config.num_processes is not None or config.process_id is not None) and not (
        config.coordinator
    ):
        raise ConfigError("--num-processes: needs --coordinator (or use --distributed)")
    if (
        config.coordinator
        and config.process_id is not None
        and config.num_processes is not None
        and config.process_id >= config.num_processes
    ):
        raise ConfigError(
            f"--process-id: {config.process_id} is not below --num-processes {config.num_processes}"
        )
