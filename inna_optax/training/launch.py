"""Where and how a run executes: its processes and its outputs. None of these
settings changes what the run computes, so each may change when a run is resumed.
:class:`~inna_optax.training.Config` inherits them; their flags come in the
``processes`` and ``outputs`` groups of ``--help``."""

import dataclasses

from inna_optax.training.fields import field, host_port, int_at_least, not_empty


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """The fields of :class:`~inna_optax.training.Config` that say where a run
    executes (its processes) and what it writes where (its outputs). What each field
    does is its flag's help: the processes and outputs rows of the training page's
    flags table, or ``python -m inna_optax.train --help``."""

    # many processes (jax.distributed)
    coordinator: str | None = field(
        None,
        "HOST:PORT of process 0, to train as one of --num-processes processes "
        "(one per host) with jax.distributed",
        host_port,
        metavar="HOST:PORT",
        resumable=True,
    )
    num_processes: int | None = field(
        None, "with --coordinator: how many processes", int_at_least(1), resumable=True
    )
    process_id: int | None = field(
        None, "with --coordinator: this process's id, 0 to N-1", int_at_least(0), resumable=True
    )
    distributed: bool = field(
        False,
        "join the cluster's job as jax.distributed detects it (SLURM, Open MPI, "
        "Kubernetes, Cloud TPU)",
        resumable=True,
    )
    connect_timeout: int = field(
        300, "seconds to wait for the other processes", int_at_least(1), resumable=True
    )
    # outputs
    out: str | None = field(
        None,
        "the run's directory (default: a new results/<dataset>-<optimizer>-<time>)",
        not_empty,
        metavar="DIR",
        resumable=True,
    )
    resume: bool = field(
        False, "continue the run in --out from its last good checkpoint", resumable=True
    )
    resume_fallback: bool = field(
        False,
        "with --resume: skip corrupt checkpoints and continue from the newest good one",
        resumable=True,
    )
    resume_other_data: bool = field(
        False,
        "with --resume: continue on data that differ from the run's (files replaced), "
        "deliberately; the classes must stay",
        resumable=True,
    )
    overwrite: bool = field(
        False,
        "start afresh in an --out that holds another run (removes only that run's files)",
        resumable=True,
    )
    checkpoint_every: int = field(
        0,
        "also save a checkpoint every N training steps within an epoch (0: at the end "
        "of each epoch only); SIGTERM and Ctrl-C save one at the current step anyway",
        int_at_least(0),
        resumable=True,
    )
    keep_checkpoints: int = field(
        2, "checkpoints kept (the newest ones)", int_at_least(1), resumable=True
    )
    progress: bool = field(True, "a progress bar on a terminal", resumable=True)
