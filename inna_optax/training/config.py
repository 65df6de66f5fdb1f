"""The one training configuration: a dataclass whose fields carry their default,
their help, their check (:mod:`~inna_optax.training.fields`), the concern they
belong to (:data:`GROUPS`: model, data, optimizer, run, processes, outputs), the
model or kind of data they apply to, and whether they may change on ``--resume``.
The processes and outputs fields come from
:class:`~inna_optax.training.launch.LaunchConfig`.

The command line's flags are generated from the fields
(:mod:`inna_optax.training.flags`), the figure benchmarks start from a preset
(:mod:`inna_optax.training.presets`), and :func:`Config.validate`
(:mod:`~inna_optax.training.validation`) checks every value before anything touches
the disk.
"""

import dataclasses
import time
from typing import Any

from inna_optax.training.convolution import CONVOLUTIONS
from inna_optax.training.data import DATASETS
from inna_optax.training.fields import ConfigError, field, finite, flag, int_at_least, seed_list
from inna_optax.training.launch import LaunchConfig
from inna_optax.training.models import INITS, MODELS
from inna_optax.training.optimizers import (
    DECAY_MASKS,
    DECAY_POWER,
    OPTIMIZERS,
    PSI_INITS,
    SCHEDULES,
    defaults_text,
)
from inna_optax.training.validation import validate

__all__ = ["GROUPS", "Config", "ConfigError", "flag", "resumable_fields"]

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


@dataclasses.dataclass(frozen=True)
class Config(LaunchConfig):
    """Everything one training run depends on (the flags of `python -m inna_optax.train`).

    Each field carries its default, its help and its check in its metadata: the
    command line's flags and the documentation's flags table are generated from
    them. The fields of where the run executes and what it writes (the processes
    and outputs groups) are inherited from :class:`LaunchConfig`. Fields left None
    take the optimizer's or the data set's default
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
      inna_optax.training.fields.ConfigError: --lr: must be a finite number > 0, got -1.0
    """

    # model
    model: str = field(
        "nin",
        "the model: " + "; ".join(f"{k}, {v.help}" for k, v in MODELS.items()),
        choices=tuple(MODELS),
    )
    # data
    # None (the default) is resolved to the model's data set in __post_init__: a
    # Config's dataset is always a name
    dataset: str = field(
        None,
        "data set (default: digits for nin, text for gpt): "
        + "; ".join(f"{k}, {v.help}" for k, v in DATASETS.items()),
        choices=tuple(DATASETS),
    )
    data_dir: str | None = field(
        None,
        "the data set's files: an MNIST IDX directory; CIFAR pickles (directory or .tar.gz); "
        "an image folder (or .zip) with train/<class>/ and test/<class>/; a text file",
        metavar="DIR",
    )
    download: bool = field(
        False, "fetch mnist/cifar10/cifar100 into --cache-dir (SHA-256 checked)", resumable=True
    )
    cache_dir: str = field(
        "~/.cache/inna_optax", "where --download puts files", metavar="DIR", resumable=True
    )
    train_examples: int | None = field(
        None, "train on a fixed random draw of N images (default: all)", int_at_least(1)
    )
    test_examples: int | None = field(
        None,
        "test on a fixed random draw of N images (default: all), or of N validation "
        "windows for text (default 2048)",
        int_at_least(1),
    )
    archive_limit_mb: int = field(
        2048,
        "the most a .tar.gz or .zip of data may inflate to, in MiB (one member at most a "
        "quarter of it)",
        int_at_least(1),
        resumable=True,
    )
    # model
    width: float = field(
        1.0,
        "channel multiplier of NiN (every layer keeps at least one channel)",
        finite(1 / 96, 16, what="in [1/96, 16]"),
        only=("nin",),
    )
    init: str = field(
        "he",
        "NiN's kernel initialisation: lecun (variance 1/fan_in), he (2/fan_in), glorot "
        "(2/(fan_in + fan_out)) or keras (a normal of std 0.05, Keras 2.2's default); see "
        "the documentation's training page",
        choices=tuple(INITS),
        only=("nin",),
    )
    norm: bool = field(
        True,
        "batch normalisation before each hidden ReLU of NiN (without it, NiN with the "
        "paper's settings stays on a plateau: see the documentation's training page)",
        only=("nin",),
    )
    conv: str = field(
        "auto",
        "how NiN's convolutions and max poolings are computed: auto (matrix products "
        "and strided slices on a CPU, where they are faster, XLA's native operations on "
        "GPUs and TPUs), native or matmul; the same network up to float rounding",
        choices=tuple(CONVOLUTIONS),
        resumable=True,
        only=("nin",),
    )
    context: int = field(
        128, "the GPT's context: the characters of one window", int_at_least(1), only=("gpt",)
    )
    layers: int = field(4, "the GPT's transformer blocks", int_at_least(1), only=("gpt",))
    heads: int = field(
        4, "the GPT's attention heads (they divide --embed-dim)", int_at_least(1), only=("gpt",)
    )
    embed_dim: int = field(128, "the GPT's embedding width", int_at_least(1), only=("gpt",))
    bias: bool = field(True, "biases in the GPT's LayerNorms and MLPs", only=("gpt",))
    tie_embeddings: bool = field(
        False,
        "the GPT's output head is its token embedding's transpose (GPT-2's, nanoGPT's)",
        only=("gpt",),
    )
    dropout: float | None = field(
        None,
        "dropout rate: NiN's after blocks 1 and 2 (default 0.5, the paper's; 0 on digits), "
        "the GPT's on its embeddings and each block's outputs (default 0)",
        finite(0, 1, hi_open=True),
    )
    # optimizer
    optimizer: str = field("inna", "optimizer", choices=tuple(OPTIMIZERS))
    lr: float | None = field(
        None,
        "gamma_0 (default: " + ", ".join(f"{k} {v.lr:g}" for k, v in OPTIMIZERS.items()) + ")",
        finite(0, lo_open=True),
    )
    alpha: float | None = field(
        None,
        f"alpha (viscous damping), >= 0 (default: {defaults_text('alpha')})",
        finite(0),
    )
    beta: float | None = field(
        None,
        f"beta (Newtonian damping), > 0 (default: {defaults_text('beta')})",
        finite(0, lo_open=True),
    )
    schedule: str | None = field(
        None,
        "gamma_k: 'power' gamma_0 (k+1)^-q, 'constant', or 'cosine' (after --warmup "
        "steps, down to --final-lr-ratio times gamma_0 at the run's last step) (default: "
        "power for inna and sgd, constant for the others)",
        choices=SCHEDULES,
    )
    decay_power: float = field(
        DECAY_POWER,
        "q of the power schedule gamma_0 (k+1)^-q, in (0, 1]",
        finite(0, 1, lo_open=True),
    )
    warmup: int = field(
        0,
        "with --schedule cosine: steps of linear warm-up from 0 to gamma_0",
        int_at_least(0),
    )
    final_lr_ratio: float = field(
        0.0,
        "with --schedule cosine: the last step's gamma as a fraction of gamma_0, in [0, 1]",
        finite(0, 1),
    )
    weight_decay: float | None = field(
        None,
        "decoupled weight decay lambda, >= 0, for inna, innaprop and adamw "
        f"(default: {defaults_text('weight_decay')})",
        finite(0),
    )
    decay_mask: str | None = field(
        None,
        "the parameters weight decay shrinks: all, or matrices (2 or more dimensions: "
        "kernels and embeddings, not biases or scales) (default: "
        + ", ".join(f"{k} {v.decay_mask}" for k, v in MODELS.items())
        + ")",
        choices=DECAY_MASKS,
    )
    clip: float | None = field(
        None,
        "clip the gradients to this global norm before the optimizer (default: no clipping)",
        finite(0, lo_open=True),
    )
    b1: float | None = field(
        None, f"adam's and adamw's beta_1 (default {defaults_text('b1')})", finite(0, 1)
    )
    b2: float | None = field(
        None, f"adam's and adamw's beta_2 (default {defaults_text('b2')})", finite(0, 1)
    )
    sigma: float | None = field(
        None,
        f"innaprop's RMSprop averaging sigma (default {defaults_text('sigma')})",
        finite(0, 1),
    )
    psi_init: str = field(
        OPTIMIZERS["inna"].defaults["psi_init"],
        "INNA's psi_0: 'gradient' (the paper's: the first move is -gamma_0 grad J) or 'params'",
        choices=PSI_INITS,
    )
    # schedule of the run
    epochs: int = field(
        10,
        "epochs over the training images (with --resume: the total, may grow)",
        int_at_least(1),
        resumable=True,
        only=("images",),
    )
    steps: int = field(
        2000,
        "training steps on text, a multiple of --eval-every (with --resume: the total, may grow)",
        int_at_least(1),
        resumable=True,
        only=("text",),
    )
    eval_every: int = field(
        250,
        "steps between two evaluations of the validation loss on text (a checkpoint and a "
        "line of metrics.jsonl each)",
        int_at_least(1),
        only=("text",),
    )
    batch_size: int = field(32, "mini-batch size", int_at_least(1))
    log_every: int = field(
        25,
        "steps per point of the per-step training-loss curve (the mean mini-batch loss "
        "over each window, in metrics.jsonl and History.train_loss_steps)",
        int_at_least(1),
    )
    seeds: tuple[int, ...] = field(
        (0,), "comma-separated seeds, one replica each (e.g. 0,1,2)", seed_list, aliases=("--seed",)
    )
    replica_group: int | None = field(
        None,
        "replicas trained together in one vmapped step (default: all on an accelerator, "
        "1 on a CPU, where batched convolutions are slower than running replicas in turn)",
        int_at_least(1),
        resumable=True,
    )
    devices: int | None = field(
        None,
        "shard each batch over the first N local devices (default: all)",
        int_at_least(1),
        resumable=True,
    )
    cpu_devices: int | None = field(
        None,
        "CPU devices the command line makes of this host before JAX starts, the batch "
        "split over them (default: one per core, at most a divisor of the batch size; "
        "JAX_NUM_CPU_DEVICES where set; 1 turns it off)",
        int_at_least(1),
        resumable=True,
    )
    keep_freed_memory: bool = field(
        False,
        "on Linux, have glibc's malloc keep the memory each step frees for the next one "
        "instead of unmapping it (on a CPU, faster steps for the largest networks, "
        "slower ones for small; the process keeps its peak memory)",
        resumable=True,
    )
    shard: str = field(
        "none",
        "'params': shard every parameter and its optimizer state over the devices "
        "(FSDP style, along a dimension the device count divides; the rest "
        "replicated); 'none': replicate them",
        choices=SHARDS,
        resumable=True,
    )

    def __post_init__(self):
        if self.dataset is None and self.model in MODELS:  # the model's own kind of data
            kind = MODELS[self.model].data
            default = next(k for k, v in DATASETS.items() if v.kind == kind)
            if self.data_dir is None or DATASETS[default].needs_files:
                object.__setattr__(self, "dataset", default)
            # else files without a data set to read them as: validate() refuses

    def validate(self, *, sweep: bool = False) -> "Config":
        """Raises ConfigError naming the flag of the first bad value; returns self
        (:func:`~inna_optax.training.validation.validate`).

        `sweep=True` allows repeated seeds (replicas that differ by hyperparameters).
        """
        validate(self, sweep=sweep)
        return self

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
