"""The one training configuration: a dataclass whose fields carry their default,
their help, their check and whether they may change on ``--resume``.

The command line's flags are generated from the fields
(:mod:`inna_optax.training.flags`), the figure benchmarks start from a preset
(:mod:`inna_optax.training.presets`), and :func:`Config.validate` checks every value
before anything touches the disk.
"""

import dataclasses
import math
import time
from typing import Any

from inna_optax.training.convolution import CONVOLUTIONS
from inna_optax.training.optimizers import DECAY_POWER, OPTIMIZERS, SCHEDULES, defaults_text

DATASETS = ("digits", "mnist", "cifar10", "cifar100", "folder")
PSI_INITS = ("gradient", "params")
INITS = ("lecun", "he", "glorot", "keras")  # the keys of models.INITS
SHARDS = ("none", "params")


class ConfigError(ValueError):
    """A configuration value is not acceptable; the message names its flag."""


def _field(default: Any, help: str, check=None, **flag) -> Any:
    """A Config field: `check(value)` returns None when fine, else what is wrong;
    `flag` holds extra argparse settings (choices, metavar, aliases) and
    ``resumable=True`` for a setting of how a run runs, not what it computes, which
    may change when the run is resumed."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check, **flag})


FLOAT32_MAX = 3.4028234663852886e38


def _finite(lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False, what=None):
    """A check for a finite number in a range, and within float32's (training runs
    in float32: a larger value would become inf there)."""
    lo_ok = (lambda v: v > lo) if lo_open else (lambda v: v >= lo)
    hi_ok = (lambda v: v < hi) if hi_open else (lambda v: v <= hi)
    lo_text = f"{'>' if lo_open else '>='} {lo:g}" if lo > -math.inf else ""
    hi_text = f"{'<' if hi_open else '<='} {hi:g}" if hi < math.inf else ""
    text = what or " and ".join(t for t in (lo_text, hi_text) if t) or "finite"

    def check(v):
        if v is None:
            return None
        if not (math.isfinite(v) and lo_ok(v) and hi_ok(v)):
            return f"must be a finite number {text}, got {v!r}"
        if abs(v) > FLOAT32_MAX or 0 < abs(v) < 1e-30:
            return f"must be within float32's range (1e-30 to 3.4e38 in size), got {v!r}"
        return None

    return check


def _int_at_least(lo):
    def check(v):
        if v is not None and v < lo:
            return f"must be >= {lo}, got {v}"
        return None

    return check


def _host_port(v):
    if v is None:
        return None
    host, _, port = v.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"must be HOST:PORT, got {v!r}"
    return None


def _not_empty(v):
    return "must not be empty" if v is not None and not v.strip() else None


def _seeds(v):
    if not v:
        return "needs at least one seed"
    if any(s < 0 or s >= 2**32 for s in v):
        return f"seeds must be in [0, 2^32), got {list(v)}"
    return None


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run depends on (the flags of `python -m inna_optax.train`).

    Each field carries its default, its help and its check in its metadata: the
    command line's flags and the documentation's flags table are generated from
    them. Fields left None take the optimizer's or the data set's default
    (:meth:`value`, :attr:`learning_rate`, :attr:`schedule_kind`,
    :attr:`dropout_rate`).

    Example:
      >>> from inna_optax.training import Config
      >>> config = Config(dataset="mnist", data_dir="mnist/", optimizer="innaprop")
      >>> config.learning_rate, config.value("beta"), config.schedule_kind
      (0.001, 0.9, 'constant')
      >>> Config(lr=-1.0).validate()
      Traceback (most recent call last):
      ...
      inna_optax.training.config.ConfigError: --lr: must be a finite number > 0, got -1.0
    """

    # data
    dataset: str = _field("digits", "data set", choices=DATASETS)
    data_dir: str | None = _field(
        None,
        "the data set's files: an MNIST IDX directory; CIFAR pickles (directory or .tar.gz); "
        "an image folder (or .zip) with train/<class>/ and test/<class>/",
        metavar="DIR",
    )
    download: bool = _field(
        False, "fetch mnist/cifar10/cifar100 into --cache-dir (SHA-256 checked)", resumable=True
    )
    cache_dir: str = _field(
        "~/.cache/inna_optax", "where --download puts files", metavar="DIR", resumable=True
    )
    train_examples: int | None = _field(
        None, "train on a fixed random draw of N images (default: all)", _int_at_least(1)
    )
    test_examples: int | None = _field(
        None, "test on a fixed random draw of N images (default: all)", _int_at_least(1)
    )
    archive_limit_mb: int = _field(
        2048,
        "the most a .tar.gz or .zip of data may inflate to, in MiB (one member at most a "
        "quarter of it)",
        _int_at_least(1),
        resumable=True,
    )
    # model
    width: float = _field(
        1.0,
        "channel multiplier of NiN (every layer keeps at least one channel)",
        _finite(1 / 96, 16, what="in [1/96, 16]"),
    )
    init: str = _field(
        "he",
        "NiN's kernel initialisation: lecun (variance 1/fan_in), he (2/fan_in), glorot "
        "(2/(fan_in + fan_out)) or keras (a normal of std 0.05, Keras 2.2's default); see "
        "the documentation's training page",
        choices=INITS,
    )
    norm: bool = _field(
        True,
        "batch normalisation before each hidden ReLU of NiN (without it, NiN with the "
        "paper's settings stays on a plateau: see the documentation's training page)",
    )
    conv: str = _field(
        "auto",
        "how NiN's convolutions and max poolings are computed: auto (matrix products "
        "and strided slices on a CPU, where they are faster, XLA's native operations on "
        "GPUs and TPUs), native or matmul; the same network up to float rounding",
        choices=tuple(CONVOLUTIONS),
        resumable=True,
    )
    dropout: float | None = _field(
        None,
        "dropout rate after blocks 1 and 2 (default 0.5, the paper's; 0 on digits)",
        _finite(0, 1, hi_open=True),
    )
    # optimizer
    optimizer: str = _field("inna", "optimizer", choices=tuple(OPTIMIZERS))
    lr: float | None = _field(
        None,
        "gamma_0 (default: " + ", ".join(f"{k} {v.lr:g}" for k, v in OPTIMIZERS.items()) + ")",
        _finite(0, lo_open=True),
    )
    alpha: float | None = _field(
        None,
        f"alpha (viscous damping), >= 0 (default: {defaults_text('alpha')})",
        _finite(0),
    )
    beta: float | None = _field(
        None,
        f"beta (Newtonian damping), > 0 (default: {defaults_text('beta')})",
        _finite(0, lo_open=True),
    )
    schedule: str | None = _field(
        None,
        "gamma_k: 'power' gamma_0 (k+1)^-q, 'constant', or 'cosine' (to 0 at the last "
        "step of --epochs) (default: power for inna and sgd, constant for the others)",
        choices=SCHEDULES,
    )
    decay_power: float = _field(
        DECAY_POWER,
        "q of the power schedule gamma_0 (k+1)^-q, in (0, 1]",
        _finite(0, 1, lo_open=True),
    )
    weight_decay: float | None = _field(
        None,
        "decoupled weight decay lambda, >= 0, for inna, innaprop and adamw "
        f"(default: {defaults_text('weight_decay')})",
        _finite(0),
    )
    psi_init: str = _field(
        OPTIMIZERS["inna"].defaults["psi_init"],
        "INNA's psi_0: 'gradient' (the paper's: the first move is -gamma_0 grad J) or 'params'",
        choices=PSI_INITS,
    )
    # schedule of the run
    epochs: int = _field(
        10, "epochs (with --resume: the total, may grow)", _int_at_least(1), resumable=True
    )
    batch_size: int = _field(32, "mini-batch size", _int_at_least(1))
    log_every: int = _field(
        25,
        "steps per point of the per-step training-loss curve (the mean mini-batch loss "
        "over each window, in metrics.jsonl and History.train_loss_steps)",
        _int_at_least(1),
    )
    seeds: tuple[int, ...] = _field(
        (0,), "comma-separated seeds, one replica each (e.g. 0,1,2)", _seeds, aliases=("--seed",)
    )
    replica_group: int | None = _field(
        None,
        "replicas trained together in one vmapped step (default: all on an accelerator, "
        "1 on a CPU, where batched convolutions are slower than running replicas in turn)",
        _int_at_least(1),
        resumable=True,
    )
    devices: int | None = _field(
        None,
        "shard each batch over the first N local devices (default: all)",
        _int_at_least(1),
        resumable=True,
    )
    cpu_devices: int | None = _field(
        None,
        "CPU devices the command line makes of this host before JAX starts, the batch "
        "split over them (default: one per core, at most a divisor of the batch size; "
        "JAX_NUM_CPU_DEVICES where set; 1 turns it off)",
        _int_at_least(1),
        resumable=True,
    )
    keep_freed_memory: bool = _field(
        False,
        "on Linux, have glibc's malloc keep the memory each step frees for the next one "
        "instead of unmapping it (on a CPU, faster steps for the largest networks, "
        "slower ones for small; the process keeps its peak memory)",
        resumable=True,
    )
    shard: str = _field(
        "none",
        "'params': shard every parameter and its optimizer state over the devices "
        "(FSDP style, along a dimension the device count divides; the rest "
        "replicated); 'none': replicate them",
        choices=SHARDS,
        resumable=True,
    )
    # many processes (jax.distributed)
    coordinator: str | None = _field(
        None,
        "HOST:PORT of process 0, to train as one of --num-processes processes "
        "(one per host) with jax.distributed",
        _host_port,
        metavar="HOST:PORT",
        resumable=True,
    )
    num_processes: int | None = _field(
        None, "with --coordinator: how many processes", _int_at_least(1), resumable=True
    )
    process_id: int | None = _field(
        None, "with --coordinator: this process's id, 0 to N-1", _int_at_least(0), resumable=True
    )
    distributed: bool = _field(
        False,
        "join the cluster's job as jax.distributed detects it (SLURM, Open MPI, "
        "Kubernetes, Cloud TPU)",
        resumable=True,
    )
    connect_timeout: int = _field(
        300, "seconds to wait for the other processes", _int_at_least(1), resumable=True
    )
    # outputs
    out: str | None = _field(
        None,
        "the run's directory (default: a new results/<dataset>-<optimizer>-<time>)",
        _not_empty,
        metavar="DIR",
        resumable=True,
    )
    resume: bool = _field(
        False, "continue the run in --out from its last good checkpoint", resumable=True
    )
    resume_fallback: bool = _field(
        False,
        "with --resume: skip corrupt checkpoints and continue from the newest good one",
        resumable=True,
    )
    overwrite: bool = _field(
        False,
        "start afresh in an --out that holds another run (removes only that run's files)",
        resumable=True,
    )
    checkpoint_every: int = _field(
        0,
        "also save a checkpoint every N training steps within an epoch (0: at the end "
        "of each epoch only); SIGTERM and Ctrl-C save one at the current step anyway",
        _int_at_least(0),
        resumable=True,
    )
    keep_checkpoints: int = _field(
        2, "checkpoints kept (the newest ones)", _int_at_least(1), resumable=True
    )
    progress: bool = _field(True, "a progress bar on a terminal", resumable=True)

    def validate(self, *, sweep: bool = False) -> "Config":
        """Raises ConfigError naming the flag of the first bad value; returns self.

        `sweep=True` allows repeated seeds (replicas that differ by hyperparameters).
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise ConfigError(f"{flag(f.name)}: must be one of {', '.join(choices)}")
            check = f.metadata.get("check")
            if check and (problem := check(value)):
                raise ConfigError(f"{flag(f.name)}: {problem}")
        if not sweep and len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds: repeated seed in {list(self.seeds)}")
        if self.dataset != "digits" and not (self.data_dir or self.download):
            raise ConfigError(f"--data-dir: --dataset {self.dataset} needs it (or --download)")
        if self.coordinator and (self.num_processes is None or self.process_id is None):
            raise ConfigError("--coordinator: needs --num-processes and --process-id")
        if (self.num_processes is not None or self.process_id is not None) and not (
            self.coordinator
        ):
            raise ConfigError("--num-processes: needs --coordinator (or use --distributed)")
        if self.coordinator and self.process_id >= self.num_processes:
            raise ConfigError(
                f"--process-id: {self.process_id} is not below --num-processes {self.num_processes}"
            )
        spec = OPTIMIZERS[self.optimizer]
        if self.weight_decay is not None and "weight_decay" not in spec.hyper + spec.options:
            raise ConfigError(
                f"--weight-decay: {self.optimizer} takes none (inna, innaprop and adamw do)"
            )
        if self.resume and self.overwrite:
            raise ConfigError("--resume: cannot be combined with --overwrite")
        if self.resume and self.out is None:
            raise ConfigError("--resume: needs --out, the run to continue")
        if self.train_examples is not None and self.train_examples < self.batch_size:
            raise ConfigError(
                f"--train-examples: {self.train_examples} is less than one batch "
                f"(--batch-size {self.batch_size})"
            )
        return self

    def resolved(self) -> dict[str, Any]:
        """Every field as the run uses it: unset (None) fields replaced by the
        defaults they stand for (gamma_0, the schedule, the dropout rate, the
        optimizer's hyperparameters), so that a value given explicitly and the same
        value left to its default compare equal."""
        values = dataclasses.asdict(self)
        values.update(lr=self.learning_rate, schedule=self.schedule_kind, dropout=self.dropout_rate)
        spec = OPTIMIZERS[self.optimizer]
        values.update({k: self.value(k) for k in spec.hyper + spec.options})
        return values

    def value(self, name: str) -> Any:
        """A hyperparameter field, or the optimizer's default when unset."""
        value = getattr(self, name)
        return OPTIMIZERS[self.optimizer].defaults.get(name) if value is None else value

    @property
    def schedule_kind(self) -> str:
        return self.schedule or OPTIMIZERS[self.optimizer].schedule

    @property
    def learning_rate(self) -> float:
        """gamma_0: --lr, or the optimizer's default."""
        return self.lr if self.lr is not None else OPTIMIZERS[self.optimizer].lr

    @property
    def dropout_rate(self) -> float:
        if self.dropout is not None:
            return self.dropout
        return 0.0 if self.dataset == "digits" else 0.5

    def default_out(self) -> str:
        return f"results/{self.dataset}-{self.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}"


def resumable_fields() -> frozenset[str]:
    """The fields that may differ when a run is resumed (declared on each field)."""
    return frozenset(f.name for f in dataclasses.fields(Config) if f.metadata.get("resumable"))


def flag(name: str) -> str:
    """The command-line flag of a Config field: ``"--" + name`` with dashes."""
    return "--" + name.replace("_", "-")
