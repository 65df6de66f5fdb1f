"""The one training loop. The command line, the figure benchmarks, the speed benchmark
and the notebooks all train through :func:`fit`.

One compiled train step serves every replica: replicas (one per seed, each with
its own initialisation, data order and dropout, and optionally its own optimizer
hyperparameters) are vmapped along a leading axis, `replica_group` at a time, and
each batch is sharded over the devices (of every process, with `jax.distributed`),
with the parameters and optimizer state replicated, or sharded with
`shard="params"` (:func:`state_sharding`).
"""

import dataclasses
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from inna_optax.training import distributed, optimizers
from inna_optax.training.config import Config, ConfigError
from inna_optax.training.curves import Curves, plain
from inna_optax.training.data import DATASETS, Split, check, digest, prepare
from inna_optax.training.progress import Progress
from inna_optax.training.trainer import TrainState, setup


class Interrupted(RuntimeError):
    """Training stopped at a signal (SIGTERM, SIGINT) after saving a checkpoint."""

    def __init__(self, epoch: int, step: int, saved: bool, done: int | None = None):
        """`epoch` and `step` within it (images), or `done`, the training steps done
        as checkpoints count them (text, where an epoch is only an evaluation
        interval)."""
        self.epoch, self.step, self.saved = epoch, step, saved
        where = f"epoch {epoch}, step {step}" if done is None else f"step {done}"
        super().__init__(
            f"stopped at {where}; its checkpoint is saved: continue with --resume"
            if saved
            else f"stopped at {where}, before anything was saved: nothing to resume"
        )


class NonFiniteLoss(RuntimeError):
    """A replica's training loss became inf or NaN."""

    def __init__(self, epoch: int, step: int, seeds, saved: str | None):
        self.epoch, self.step, self.saved = epoch, step, saved
        kept = (
            f"the last good checkpoint ({saved}) is kept"
            if saved
            else "no checkpoint was saved yet"
        )
        super().__init__(
            f"non-finite training loss at epoch {epoch}, step {step} (seeds {list(seeds)}): "
            f"stopping; {kept}. The data are not the cause (every input was checked finite "
            "and every label in range before training): the steps are too large for this "
            "model; try a smaller --lr (or other --alpha, --beta)"
        )


@dataclasses.dataclass
class History:
    """What :func:`fit` returns. Curves are (replicas, epochs) arrays, an epoch being
    the steps between two evaluations (a pass over the training images; on text,
    ``eval_every`` steps); a diverged replica (allowed in sweeps) holds inf or NaN."""

    train_loss: np.ndarray  # mean mini-batch loss over each epoch
    test_loss: np.ndarray  # on text: the validation loss
    test_accuracy: np.ndarray  # on text: the share of next characters guessed
    # the per-step curve: mean mini-batch loss over windows of `config.log_every`
    # steps (the last window of an epoch may be shorter), (replicas, windows), and
    # the number of steps done at the end of each window, (windows,)
    train_loss_steps: np.ndarray
    window_end_step: np.ndarray
    params: list  # per group of replicas, stacked along the leading axis
    opt_state: list  # the same, for the optimizer's state
    n_params: int
    steps_per_epoch: int
    steps_per_second: float  # compiled steps per second (each moves replica_group replicas)
    replica_steps_per_second: float
    seconds: float
    devices: int
    train_examples: int  # the numbers of images trained and tested on
    test_examples: int
    first_epoch: int = 1  # > 1 when resumed

    def replica_params(self, i: int):
        """The parameters of replica `i`."""
        size = len(jax.tree.leaves(self.params[0])[0])
        return jax.tree.map(lambda x: x[i % size], self.params[i // size])


def fit(
    config: Config,
    data: Split | None = None,
    sweep: dict | None = None,
    run=None,
    *,
    allow_divergence: bool = False,
    log: Callable[[str], None] | None = None,
    desc: str = "",
    stop: Callable[[int], bool] | None = None,
) -> History:
    """Trains one replica per seed of `config.seeds` for `config.epochs` epochs
    (`config.steps` steps on text), evaluating after each epoch (every
    `config.eval_every` steps on text).

    Args:
      config: the run (see :class:`Config`).
      data: the prepared split (default: ``prepare(config)``).
      sweep: per-replica hyperparameters, e.g. ``{"lr": [0.03, 0.1, 0.3]}`` with
        three seeds (repeated seeds allowed): a whole grid trains in one compiled step.
      run: a :class:`~inna_optax.training.run_dir.RunDir`: metrics, checkpoints and
        the summary go there, and training resumes from its last checkpoint.
      allow_divergence: record inf/NaN for a diverged replica and go on (sweeps),
        instead of raising :class:`NonFiniteLoss`.
      log: called with one line per epoch.
      desc: the progress bar's label.
      stop: called with the number of steps done after each step; when it returns
        True (a signal arrived: :mod:`inna_optax.training.preemption`), the run
        saves a checkpoint at that step (with `run`) and raises :class:`Interrupted`.

    Returns:
      A :class:`History`.

    Raises:
      ConfigError: a bad value in `config` (the message names its flag).
      DataError: a non-finite input or a label out of range in `data`.
      NonFiniteLoss: a replica's training loss became inf or NaN (unless
        `allow_divergence`).
      Interrupted: `stop` asked the run to stop.

    Example:
      >>> from inna_optax.training import Config, fit
      >>> history = fit(Config(width=0.0625, epochs=1, seeds=(0, 1), progress=False))
      >>> history.train_loss.shape, history.test_accuracy.shape  # (seeds, epochs)
      ((2, 1), (2, 1))
    """
    config.validate(sweep=sweep is not None)
    distributed.check(config)
    start_wall = time.perf_counter()
    data = prepare(config) if data is None else data
    check(data)
    fitting = _Fitting(config, data, setup(config, data, sweep), run, stop)
    fitting.start(desc)
    epochs = fitting.trainer.epochs
    for epoch in range(fitting.first_epoch, epochs + 1):
        for group in range(len(fitting.trainer.groups)):
            if (epoch, group) >= fitting.resume_at[:2]:  # else done before the checkpoint
                fitting.train_group(epoch, group, allow_divergence)
        record = {"epoch": epoch, **plain(fitting.curves.of(epoch))}
        if run is not None:
            fitting.save(epoch * fitting.per_epoch_steps, record, epochs_done=epoch)
        if log is not None:
            fitting.bar.write(log, epoch_line(config, epoch, epochs, fitting.steps, record))
        done = epoch * fitting.per_epoch_steps
        if stop is not None and epoch < epochs and stop(done):
            raise Interrupted(epoch + 1, 0, run is not None, fitting.text_steps(done))
    fitting.bar.close()
    history = fitting.history(time.perf_counter() - start_wall)
    if run is not None:
        run.write_summary(summary(config, history))
    return history


class _Fitting:
    """The state of one :func:`fit` call: the trainer, each group's state, where the
    run resumes, the curves, the progress bar and the throughput's clock."""

    def __init__(self, config: Config, data: Split, trainer, run, stop):
        self.config, self.data, self.trainer = config, data, trainer
        self.run, self.stop = run, stop
        self.steps = trainer.steps
        self.per_epoch_steps = self.steps * len(trainer.groups)
        states, self.resume_at, self.partial = list(trainer.fresh), (1, 0, 0), None
        if run is not None:
            fingerprint = digest(data)
            run.check_data(fingerprint, data.num_classes, data.classes)
            self.resume_at, states, self.partial = _resume_point(
                run, config, states, self.steps, self.per_epoch_steps, trainer.epochs
            )
            run.begin(fingerprint, data.num_classes, data.classes)
        self.first_epoch = self.resume_at[0]
        self.states = trainer.place(states)
        self.curves = Curves.empty(len(trainer.seeds), trainer.epochs, self.steps, config.log_every)
        if run is not None:
            for record in run.history():
                self.curves.put(record["epoch"], record)
            if self.partial is not None:  # the epoch a mid-epoch checkpoint interrupted
                self.curves.put(self.first_epoch, self.partial)
        done = (self.first_epoch - 1) * self.per_epoch_steps
        self.saved = None if self.resume_at == (1, 0, 0) else f"step {done}"
        self.timed, self.timed_steps = 0.0, 0

    def start(self, desc: str) -> None:
        start = self.resume_at
        self.bar = Progress(  # process 0's alone when there are several; one for the run
            self.config.progress and distributed.is_primary(),
            self.per_epoch_steps * (self.trainer.epochs - start[0] + 1)
            - start[1] * self.steps
            - start[2],
            desc or "training",
        )

    def save(self, done: int, record: dict | None = None, **meta) -> None:
        """A checkpoint after `done` steps, shown on the bar as a phase of its own (its
        time counts in neither the rate nor the ETA)."""
        self.bar.phase("saving")
        try:
            self.run.save(done, _saved(self.states), record, **meta)
        finally:
            self.bar.phase(None)
        self.saved = f"step {done}"

    def train_group(self, epoch: int, group: int, allow_divergence: bool) -> None:
        """One epoch of one replica group: the step loop (a checkpoint or a stop
        within the epoch when asked), then its evaluation."""
        trainer, bs = self.trainer, self.config.batch_size
        first = self.resume_at[2] if (epoch, group) == self.resume_at[:2] else 0
        partial = self.partial if first else None  # the interrupted epoch's losses so far
        losses = [] if partial is None else list(np.asarray(partial["losses"], np.float32))
        state, hp = self.states[group], trainer.group_hparams(group)
        order = trainer.batches(group, epoch)
        clock = time.perf_counter()
        steps = trainer.run(
            state,
            group,
            self.data.x_train,
            self.data.y_train,
            lambda i: order[:, i * bs : (i + 1) * bs],
            range(first, self.steps),
            hp,
            offset=(epoch - 1) * self.steps,
        )
        for i, state, loss in steps:
            losses.append(loss)
            if i == first:  # compilation excluded from the throughput
                clock = time.perf_counter()
            self.bar.step(lambda: float(np.mean(np.asarray(losses[-20:]))))
            self._maybe_stop(epoch, group, i, state, losses)
        epoch_losses = np.asarray(jnp.stack(losses))  # (steps, group)
        self.timed += time.perf_counter() - clock
        self.timed_steps += self.steps - first - 1
        self.states[group] = state
        part = trainer.groups[group]
        self.curves.put_losses(part, epoch, epoch_losses)
        if not allow_divergence and not np.all(np.isfinite(epoch_losses)):
            bad = int(np.argmax(~np.all(np.isfinite(epoch_losses), axis=1)))
            raise NonFiniteLoss(epoch, bad + 1, trainer.seeds[part].tolist(), self.saved)
        self.bar.phase("evaluating")
        test_loss, test_acc = trainer.evaluate(state, self.data.x_test, self.data.y_test)
        self.bar.phase(None)
        self.curves.epochs["test_loss"][part, epoch - 1] = test_loss
        self.curves.epochs["test_accuracy"][part, epoch - 1] = test_acc

    def _maybe_stop(self, epoch: int, group: int, i: int, state, losses: list) -> None:
        """After step `i` of a group's epoch: a checkpoint within the epoch when
        --checkpoint-every or a stop asks for one, and the stop itself."""
        done = (epoch - 1) * self.per_epoch_steps + group * self.steps + i + 1
        stopping = self.stop is not None and self.stop(done)
        every = self.config.checkpoint_every
        if i + 1 < self.steps and (stopping or (every and done % every == 0)):
            if self.run is not None:
                self.states[group] = state
                so_far = {**self.curves.of(epoch), "losses": np.asarray(jnp.stack(losses))}
                self.save(done, epochs_done=epoch - 1, partial=plain(so_far))
            if stopping:
                step = group * self.steps + i + 1
                raise Interrupted(epoch, step, self.run is not None, self.text_steps(done))

    def text_steps(self, done: int) -> int | None:
        """`done` where a run counts in steps (text), None where in epochs (images)."""
        return done if DATASETS[self.config.dataset].kind == "text" else None

    def history(self, seconds: float) -> History:
        # compilation excluded: no rate from a run that timed no step (one a group)
        rate = self.timed_steps / self.timed if self.timed_steps > 0 else math.nan
        group = self.trainer.groups[0]
        return History(
            **self.curves.epochs,
            train_loss_steps=self.curves.windows,
            window_end_step=self.curves.window_ends(self.steps),
            params=[s.params for s in self.states],
            opt_state=[s.opt_state for s in self.states],
            n_params=self.trainer.n_params,
            steps_per_epoch=self.steps,
            steps_per_second=rate,
            replica_steps_per_second=rate * (group.stop - group.start),
            seconds=seconds,
            devices=len(self.trainer.mesh.devices.flat),
            train_examples=len(self.data.x_train),
            test_examples=len(self.data.x_test),
            first_epoch=self.first_epoch,
        )


def _saved(states: list[TrainState]) -> list[dict]:
    """The states as checkpoints hold them: a dict per replica group."""
    return [s._asdict() for s in states]


def _resume_point(run, config: Config, states, steps: int, per_epoch_steps: int, epochs: int):
    """Where a run starts, from its newest good checkpoint when resumed:
    ((epoch, replica group, step within the group's epoch), states, the interrupted
    epoch's curves and losses or None). A checkpoint's step counts every group's."""
    restored = (
        run.restore(_saved(states), fallback=config.resume_fallback) if config.resume else None
    )
    if restored is None:
        return (1, 0, 0), states, None
    done, saved, meta = restored
    states = [TrainState(**s) for s in saved]
    if done // per_epoch_steps > epochs:
        if DATASETS[config.dataset].kind == "text":
            did = f"{done // per_epoch_steps * steps} steps"
            raise ConfigError(f"--steps: the run in {run.path} has done {did} already")
        raise ConfigError(
            f"--epochs: the run in {run.path} has done {done // per_epoch_steps} epochs already"
        )
    start = (done // per_epoch_steps + 1, *divmod(done % per_epoch_steps, steps))
    return start, states, meta.get("partial")


def epoch_line(config: Config, epoch: int, epochs: int, steps: int, record: dict) -> str:
    """The line :func:`fit` logs after each epoch (each evaluation on text)."""
    accuracy = _fmt(100 * np.asarray(record["test_accuracy"]), ".2f")
    train = _fmt(record["train_loss"])
    if DATASETS[config.dataset].kind == "text":
        return (
            f"step {epoch * steps}/{epochs * steps}: train loss {train}, "
            f"validation loss {_fmt(record['test_loss'])}, next-character accuracy {accuracy}%"
        )
    return (
        f"epoch {epoch}/{epochs}: train loss {train}, test loss {_fmt(record['test_loss'])}, "
        f"test accuracy {accuracy}%"
    )


def summary(config: Config, history: History) -> dict:
    """The figures of OUT/summary.json: final-epoch means (and per seed when several);
    on text also ``valid_loss`` (the test loss, on validation windows) and
    ``tokens_per_second`` (replicas' tokens trained on per second)."""
    spec = optimizers.OPTIMIZERS[config.optimizer]
    out = {
        "test_accuracy": float(np.mean(history.test_accuracy[:, -1])),
        "test_loss": float(np.mean(history.test_loss[:, -1])),
        "train_loss": float(np.mean(history.train_loss[:, -1])),
        "epochs": history.train_loss.shape[1],
        "learning_rate": config.learning_rate,  # gamma_0, the registry's default unless --lr
        "schedule": config.schedule_kind,
        # the optimizer's hyperparameters as used (its defaults where a flag was unset)
        "hyperparameters": {k: config.value(k) for k in spec.hyper + spec.options},
        "steps_per_second": history.steps_per_second,
        "replica_steps_per_second": history.replica_steps_per_second,
        "wall_seconds": history.seconds,
        "n_params": history.n_params,
        "train_examples_used": history.train_examples,
        "test_examples_used": history.test_examples,
        "devices": history.devices,
        "config": dataclasses.asdict(config),
    }
    if not math.isfinite(history.steps_per_second):  # null in the file, with the reason
        out["steps_per_second_note"] = (
            "not measured: no step was timed (the first step of each replica group's "
            "run compiles and is left out; a resumed run with nothing left to train times none)"
        )
    if DATASETS[config.dataset].kind == "text":
        out["valid_loss"] = out["test_loss"]
        out["steps"] = out["epochs"] * history.steps_per_epoch
        tokens = config.batch_size * config.context
        out["tokens_per_second"] = history.replica_steps_per_second * tokens
    if len(config.seeds) > 1:
        for key in ("test_accuracy", "test_loss", "train_loss"):
            values = getattr(history, key)[:, -1]
            out[key + "_per_seed"] = values.tolist()
            out[key + "_min"] = float(values.min())
            out[key + "_max"] = float(values.max())
    return out


def _fmt(values, spec=".4f"):
    values = np.atleast_1d(np.asarray(values, float))
    if len(values) == 1:
        return format(float(values[0]), spec)
    return f"mean {values.mean():{spec}} [{values.min():{spec}}, {values.max():{spec}}]"
