"""The one training configuration: a dataclass whose fields carry their default,
their help, their check, the concern they belong to (:data:`GROUPS`: model, data,
optimizer, run), the model or kind of data they apply to, and whether they may
change on ``--resume``.

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
from inna_optax.training.data import DATASETS
from inna_optax.training.models import INITS, MODELS
from inna_optax.training.optimizers import (
    DECAY_MASKS,
    DECAY_POWER,
    OPTIMIZERS,
    PSI_INITS,
    SCHEDULES,
    defaults_text,
)

SHARDS = ("none", "params")

#: The fields of each concern, in the order of ``--help`` and the documentation.
GROUPS: dict[str, tuple[str, ...]] = {
    "model": (
        "model", "width", "init", "norm", "conv", "context", "layers", "heads", "embed_dim",
        "bias", "tie_embeddings", "dropout",
    ),
    "data": (
        "dataset", "data_dir", "download", "cache_dir", "train_examples", "test_examples",
        "archive_limit_mb",
    ),
    "optimizer": (
        "optimizer", "lr", "alpha", "beta", "schedule", "decay_power", "warmup",
        "final_lr_ratio", "weight_decay", "decay_mask", "clip", "b1", "b2", "sigma",
        "psi_init",
    ),
    "run": (
        "epochs", "steps", "eval_every", "batch_size", "log_every", "seeds", "replica_group",
        "devices", "cpu_devices", "keep_freed_memory", "shard",
    ),
    "processes": (
        "coordinator", "num_processes", "process_id", "distributed", "connect_timeout",
    ),
    "outputs": (
        "out", "resume", "resume_fallback", "resume_other_data", "overwrite", "checkpoint_every",
        "keep_checkpoints", "progress",
    ),
}  # fmt: skip


class ConfigError(ValueError):
    """A configuration value is not acceptable; the message names its flag."""


def _field(default: Any, help: str, check=None, **flag) -> Any:
    """A Config field: `check(value)` returns None when fine, else what is wrong;
    `flag` holds extra argparse settings (choices, metavar, aliases),
    ``resumable=True`` for a setting of how a run runs, not what it computes, which
    may change when the run is resumed, and ``only=(...)`` for a field that applies
    to those models or kinds of data set alone (:meth:`Config.validate` refuses it
    set with others)."""
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

    # model
    model: str = _field(
        "nin",
        "the model: " + "; ".join(f"{k}, {v.help}" for k, v in MODELS.items()),
        choices=tuple(MODELS),
    )
    # data
    # None (the default) is resolved to the model's data set in __post_init__: a
    # Config's dataset is always a name
    dataset: str = _field(
        None,
        "data set (default: digits for nin, text for gpt): "
        + "; ".join(f"{k}, {v.help}" for k, v in DATASETS.items()),
        choices=tuple(DATASETS),
    )
    data_dir: str | None = _field(
        None,
        "the data set's files: an MNIST IDX directory; CIFAR pickles (directory or .tar.gz); "
        "an image folder (or .zip) with train/<class>/ and test/<class>/; a text file",
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
        None,
        "test on a fixed random draw of N images (default: all), or of N validation "
        "windows for text (default 2048)",
        _int_at_least(1),
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
        only=("nin",),
    )
    init: str = _field(
        "he",
        "NiN's kernel initialisation: lecun (variance 1/fan_in), he (2/fan_in), glorot "
        "(2/(fan_in + fan_out)) or keras (a normal of std 0.05, Keras 2.2's default); see "
        "the documentation's training page",
        choices=tuple(INITS),
        only=("nin",),
    )
    norm: bool = _field(
        True,
        "batch normalisation before each hidden ReLU of NiN (without it, NiN with the "
        "paper's settings stays on a plateau: see the documentation's training page)",
        only=("nin",),
    )
    conv: str = _field(
        "auto",
        "how NiN's convolutions and max poolings are computed: auto (matrix products "
        "and strided slices on a CPU, where they are faster, XLA's native operations on "
        "GPUs and TPUs), native or matmul; the same network up to float rounding",
        choices=tuple(CONVOLUTIONS),
        resumable=True,
        only=("nin",),
    )
    context: int = _field(
        128, "the GPT's context: the characters of one window", _int_at_least(1), only=("gpt",)
    )
    layers: int = _field(4, "the GPT's transformer blocks", _int_at_least(1), only=("gpt",))
    heads: int = _field(
        4, "the GPT's attention heads (they divide --embed-dim)", _int_at_least(1), only=("gpt",)
    )
    embed_dim: int = _field(128, "the GPT's embedding width", _int_at_least(1), only=("gpt",))
    bias: bool = _field(True, "biases in the GPT's LayerNorms and MLPs", only=("gpt",))
    tie_embeddings: bool = _field(
        False,
        "the GPT's output head is its token embedding's transpose (GPT-2's, nanoGPT's)",
        only=("gpt",),
    )
    dropout: float | None = _field(
        None,
        "dropout rate: NiN's after blocks 1 and 2 (default 0.5, the paper's; 0 on digits), "
        "the GPT's on its embeddings and each block's outputs (default 0)",
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
        "gamma_k: 'power' gamma_0 (k+1)^-q, 'constant', or 'cosine' (after --warmup "
        "steps, down to --final-lr-ratio times gamma_0 at the run's last step) (default: "
        "power for inna and sgd, constant for the others)",
        choices=SCHEDULES,
    )
    decay_power: float = _field(
        DECAY_POWER,
        "q of the power schedule gamma_0 (k+1)^-q, in (0, 1]",
        _finite(0, 1, lo_open=True),
    )
    warmup: int = _field(
        0,
        "with --schedule cosine: steps of linear warm-up from 0 to gamma_0",
        _int_at_least(0),
    )
    final_lr_ratio: float = _field(
        0.0,
        "with --schedule cosine: the last step's gamma as a fraction of gamma_0, in [0, 1]",
        _finite(0, 1),
    )
    weight_decay: float | None = _field(
        None,
        "decoupled weight decay lambda, >= 0, for inna, innaprop and adamw "
        f"(default: {defaults_text('weight_decay')})",
        _finite(0),
    )
    decay_mask: str | None = _field(
        None,
        "the parameters weight decay shrinks: all, or matrices (2 or more dimensions: "
        "kernels and embeddings, not biases or scales) (default: "
        + ", ".join(f"{k} {v.decay_mask}" for k, v in MODELS.items())
        + ")",
        choices=DECAY_MASKS,
    )
    clip: float | None = _field(
        None,
        "clip the gradients to this global norm before the optimizer (default: no clipping)",
        _finite(0, lo_open=True),
    )
    b1: float | None = _field(
        None, f"adam's and adamw's beta_1 (default {defaults_text('b1')})", _finite(0, 1)
    )
    b2: float | None = _field(
        None, f"adam's and adamw's beta_2 (default {defaults_text('b2')})", _finite(0, 1)
    )
    sigma: float | None = _field(
        None,
        f"innaprop's RMSprop averaging sigma (default {defaults_text('sigma')})",
        _finite(0, 1),
    )
    psi_init: str = _field(
        OPTIMIZERS["inna"].defaults["psi_init"],
        "INNA's psi_0: 'gradient' (the paper's: the first move is -gamma_0 grad J) or 'params'",
        choices=PSI_INITS,
    )
    # schedule of the run
    epochs: int = _field(
        10,
        "epochs over the training images (with --resume: the total, may grow)",
        _int_at_least(1),
        resumable=True,
        only=("images",),
    )
    steps: int = _field(
        2000,
        "training steps on text, a multiple of --eval-every (with --resume: the total, may grow)",
        _int_at_least(1),
        resumable=True,
        only=("text",),
    )
    eval_every: int = _field(
        250,
        "steps between two evaluations of the validation loss on text (a checkpoint and a "
        "line of metrics.jsonl each)",
        _int_at_least(1),
        only=("text",),
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
    resume_other_data: bool = _field(
        False,
        "with --resume: continue on data that differ from the run's (files replaced), "
        "deliberately; the class count must stay",
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

    def __post_init__(self):
        if self.dataset is None and self.model in MODELS:  # the model's own kind of data
            kind = MODELS[self.model].data
            default = next(k for k, v in DATASETS.items() if v.kind == kind)
            if self.data_dir is None or DATASETS[default].needs_files:
                object.__setattr__(self, "dataset", default)
            # else files without a data set to read them as: validate() refuses

    def validate(self, *, sweep: bool = False) -> "Config":
        """Raises ConfigError naming the flag of the first bad value; returns self.

        `sweep=True` allows repeated seeds (replicas that differ by hyperparameters).
        """
        if self.dataset is None:
            images = ", ".join(
                k for k, v in DATASETS.items() if v.needs_files and v.kind == "images"
            )
            raise ConfigError(f"--data-dir: say which data set it holds with --dataset ({images})")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise ConfigError(f"{flag(f.name)}: must be one of {', '.join(choices)}")
            check = f.metadata.get("check")
            if check and (problem := check(value)):
                raise ConfigError(f"{flag(f.name)}: {problem}")
        self._check_applies()
        if not sweep and len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds: repeated seed in {list(self.seeds)}")
        if DATASETS[self.dataset].needs_files and not (self.data_dir or self.download):
            raise ConfigError(f"--data-dir: --dataset {self.dataset} needs it (or --download)")
        if self.coordinator and (self.num_processes is None or self.process_id is None):
            raise ConfigError("--coordinator: needs --num-processes and --process-id")
        if (self.num_processes is not None or self.process_id is not None) and not (
            self.coordinator
        ):
            raise ConfigError("--num-processes: needs --coordinator (or use --distributed)")
        if (
            self.coordinator
            and self.process_id is not None
            and self.num_processes is not None
            and self.process_id >= self.num_processes
        ):
            raise ConfigError(
                f"--process-id: {self.process_id} is not below --num-processes {self.num_processes}"
            )
        self._check_optimizer()
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

    def _check_applies(self) -> None:
        """A field of another model or kind of data set, set, is refused; so is a
        data set the model does not train on."""
        kind = DATASETS[self.dataset].kind
        if MODELS[self.model].data != kind:
            fits = [k for k, v in DATASETS.items() if v.kind == MODELS[self.model].data]
            raise ConfigError(
                f"--dataset: --model {self.model} trains on {', '.join(fits)}, not {self.dataset}"
            )
        for f in dataclasses.fields(self):
            only = f.metadata.get("only")
            if only and not {self.model, kind} & set(only) and getattr(self, f.name) != f.default:
                raise ConfigError(
                    f"{flag(f.name)}: applies to {' and '.join(only)} only, not --model "
                    f"{self.model} on --dataset {self.dataset}"
                )
        if kind == "text" and self.steps % self.eval_every:
            raise ConfigError(
                f"--steps: {self.steps} is not a multiple of --eval-every {self.eval_every}"
            )

    def _check_optimizer(self) -> None:
        spec = OPTIMIZERS[self.optimizer]
        takes = spec.hyper + spec.options
        for name in ("weight_decay", "b1", "b2", "sigma"):
            if getattr(self, name) is not None and name not in takes:
                who = ", ".join(k for k, v in OPTIMIZERS.items() if name in v.hyper + v.options)
                raise ConfigError(f"{flag(name)}: {self.optimizer} takes none ({who} do)")
        if self.decay_mask is not None and "weight_decay" not in takes:
            raise ConfigError(f"--decay-mask: {self.optimizer} has no weight decay")
        if (self.warmup or self.final_lr_ratio) and self.schedule_kind != "cosine":
            name = "--warmup" if self.warmup else "--final-lr-ratio"
            raise ConfigError(f"{name}: needs --schedule cosine")

    def resolved(self) -> dict[str, Any]:
        """Every field as the run uses it: unset (None) fields replaced by the
        defaults they stand for (gamma_0, the schedule, the dropout rate, the
        optimizer's hyperparameters), so that a value given explicitly and the same
        value left to its default compare equal."""
        values = dataclasses.asdict(self)
        values.update(
            lr=self.learning_rate,
            schedule=self.schedule_kind,
            dropout=self.dropout_rate,
            decay_mask=self.weight_decay_mask,
        )
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
        return 0.0 if self.dataset == "digits" or self.model == "gpt" else 0.5

    @property
    def weight_decay_mask(self) -> str:
        """--decay-mask, or the model's default."""
        return self.decay_mask or MODELS[self.model].decay_mask

    def run_length(self, train_examples: int) -> tuple[int, int]:
        """(evaluations, steps between two): the run's epochs and steps per epoch on
        images, or ``steps / eval_every`` intervals of `eval_every` steps on text."""
        if DATASETS[self.dataset].kind == "text":
            return self.steps // self.eval_every, self.eval_every
        return self.epochs, train_examples // self.batch_size

    def default_out(self) -> str:
        return f"results/{self.dataset}-{self.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}"


def resumable_fields() -> frozenset[str]:
    """The fields that may differ when a run is resumed (declared on each field)."""
    return frozenset(f.name for f in dataclasses.fields(Config) if f.metadata.get("resumable"))


def flag(name: str) -> str:
    """The command-line flag of a Config field: ``"--" + name`` with dashes."""
    return "--" + name.replace("_", "-")
