"""The pieces of training: the replicas' state, the compiled steps and the mesh.

:func:`setup` builds a :class:`Trainer` for a :class:`~inna_optax.training.Config`
and a data split: the model of each seed (from the registry,
:data:`~inna_optax.training.models.MODELS`) stacked along a leading replica axis,
the optimizer with its per-replica hyperparameters, the mesh the batch is sharded
over, the state's shardings and the jitted train and eval steps.
:meth:`Trainer.run` is the step loop, the one :func:`~inna_optax.training.fit` and
the speed benchmarks iterate.

    trainer = setup(config, data)
    states = trainer.init()                     # one TrainState per replica group
    idx = trainer.batches(0, epoch=1)[:, :config.batch_size]   # the first batch
    state, loss = trainer.step(states[0], 0, data.x_train, data.y_train, idx, step=0)
    test_loss, test_accuracy = trainer.evaluate(state, data.x_test, data.y_test)
"""

import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from inna_optax.training import distributed, optimizers
from inna_optax.training.config import Config, ConfigError
from inna_optax.training.data import DATASETS, Split
from inna_optax.training.devices import (
    CPU_HEAP_LIMIT,
    compiler_options,
    mesh_for,
    quiet_xla_warnings,
    waits_each_step,
)
from inna_optax.training.models import MODELS, Model, count_params


class TrainState(NamedTuple):
    """The training state of a group of replicas, each leaf stacked along a leading
    replica axis."""

    params: Any  # the model's nnx.Param state
    stats: Any  # its batch-norm statistics (nnx.BatchStat; empty without)
    opt_state: Any


def init_replicas(config: Config, seeds, data: Split):
    """The model of `config` for `data`, one per seed, stacked along a leading axis:
    (graphdef, params, stats, parameter count), `stats` holding the model's other
    state (NiN's batch-norm statistics; empty without)."""
    build = MODELS[config.model].build
    models = [build(config, data, nnx.Rngs(int(s))) for s in seeds]
    graphdef = nnx.split(models[0], nnx.Param, ...)[0]
    parts = [nnx.split(m, nnx.Param, ...)[1:] for m in models]
    params, stats = (jax.tree.map(lambda *xs: jnp.stack(xs), *p) for p in zip(*parts, strict=True))
    return graphdef, params, stats, count_params(models[0])


def optimizer_for(
    config: Config, total_steps: int | None = None
) -> Callable[..., optax.GradientTransformation]:
    """`build(**hparams)`: the config's optimizer, given its traced per-replica
    hyperparameters (:func:`hyperparameters`: lr, decay_power and the optimizer's
    `hyper` fields), which override the config's. `total_steps`: the run's length,
    for the cosine schedule."""
    if config.warmup and total_steps is not None and config.warmup >= total_steps:
        raise ConfigError(
            f"--warmup: {config.warmup} steps is not fewer than the run's {total_steps}"
        )
    spec = optimizers.OPTIMIZERS[config.optimizer]
    values = {k: getattr(config, k) for k in spec.hyper + spec.options}
    cosine = config.schedule_kind == "cosine"
    fixed = dict(
        decay_power=config.decay_power,
        schedule=config.schedule_kind,
        # only the cosine schedule depends on the run's length and end: runs of other
        # lengths share one program (see :func:`shared_steps`)
        total_steps=total_steps if cosine else None,
        warmup=config.warmup,
        final_lr_ratio=config.final_lr_ratio if cosine else 0.0,
        clip=config.clip,
        decay_mask=config.weight_decay_mask,
    )

    def build(**hparams):
        return optimizers.make(config.optimizer, **{**values, **fixed, **hparams})

    # what the optimizer's program depends on: every `spec.hyper` value above is
    # replaced by a traced one (:func:`hyperparameters`), the rest is fixed in it
    build.program = (  # type: ignore[attr-defined]
        config.optimizer,
        tuple((k, values[k]) for k in spec.options),
        tuple(fixed.items()),
    )
    return build


def hyperparameters(config: Config, replicas: int, sweep: dict | None = None) -> dict:
    """Per-replica (replicas,) float32 arrays of every traced hyperparameter."""
    spec = optimizers.OPTIMIZERS[config.optimizer]
    names = ("lr", *(("decay_power",) if config.schedule_kind == "power" else ()), *spec.hyper)
    values = {"lr": config.learning_rate}
    values.update({k: config.value(k) for k in names if k != "lr"})
    values.update(sweep or {})
    unknown = set(values) - set(names)
    if unknown:
        raise ConfigError(f"{config.optimizer} takes no hyperparameter {sorted(unknown)}")
    return {k: np.broadcast_to(np.asarray(v, np.float32), (replicas,)) for k, v in values.items()}


def state_sharding(tree, mesh, shard: str = "none"):
    """The sharding of each leaf of a replica-stacked tree (params, batch-norm
    statistics, optimizer state): replicated, or with ``shard="params"`` split over
    the mesh's "data" axis along the first dimension after the replica axis that
    the device count divides (FSDP style); leaves with no such dimension (biases
    of odd size, scalars, step counts) stay replicated. An optimizer state leaf of
    a parameter's shape gets the parameter's sharding."""
    n = mesh.shape["data"]

    def one(x):
        shape = np.shape(x)
        if shard == "params":
            for axis in range(1, len(shape)):
                if shape[axis] >= n and shape[axis] % n == 0:
                    spec = [None] * len(shape)
                    spec[axis] = "data"
                    return NamedSharding(mesh, PartitionSpec(*spec))
        return NamedSharding(mesh, PartitionSpec())

    return jax.tree.map(one, tree)


def over_replicas(fn: Callable, in_axes: tuple) -> Callable:
    """`jax.vmap(fn, in_axes)` over a leading replica axis, except that a group of one
    replica calls `fn` itself (its arguments without the axis, the axis put back on
    the outputs): the same values, and no batching rule in the way of how XLA
    compiles the step (a batched ``lax.cond`` becomes a select of both branches,
    losing the fusion boundary of :func:`~inna_optax.training.convolution.max_pool`;
    and on XLA:CPU a NiN step vmapped over one replica ran 51% to 72% slower in
    its forward and backward passes: the performance page)."""
    batched = jax.vmap(fn, in_axes=in_axes)

    def call(*args):
        mapped = [a for a, axis in zip(args, in_axes, strict=True) if axis == 0]
        if {np.shape(x)[0] for x in jax.tree.leaves(mapped)} != {1}:
            return batched(*args)
        args = [
            jax.tree.map(lambda x: x[0], a) if axis == 0 else a
            for a, axis in zip(args, in_axes, strict=True)
        ]
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), fn(*args))

    return call


def make_steps(
    graphdef,
    build: Callable[..., optax.GradientTransformation],
    shardings=None,
    mesh=None,
    spec: Model = MODELS["nin"],
):
    """Jitted train and eval steps over a leading axis of replicas (vmapped; a group
    of one replica runs unbatched, see :func:`over_replicas`).

    `build(**hparams)` returns the optimizer of one replica; `hparams` holds its
    traced hyperparameters, so one compilation serves a whole grid. `stats` (the
    batch-norm statistics, possibly empty) are carried beside the parameters.
    `spec`: the model's registry entry, for its loss and metric.
    """

    def train_step(params, stats, opt_state, x, y, seed, step, hparams):
        key = jax.random.fold_in(jax.random.key(seed), step)
        model = nnx.merge(graphdef, params, stats)

        def loss_fn(model):
            logits = model(x, train=True, key=key)  # updates the batch-norm statistics
            return spec.loss(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.Param))(model)
        stats = nnx.split(model, nnx.Param, ...)[2]
        updates, opt_state = build(**hparams).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    def eval_step(params, stats, x, y, mask):
        logits = nnx.merge(graphdef, params, stats)(x)
        return jnp.sum(spec.loss(logits, y) * mask), jnp.sum(spec.metric(logits, y) * mask)

    # `shardings`: (params, stats, opt_state) shardings the step keeps; on `mesh`
    # the losses and sums come back replicated, readable by every process
    whole: dict[str, Any] = {}
    if mesh is not None:
        whole["out_shardings"] = NamedSharding(mesh, PartitionSpec())
    keep: dict[str, Any] = {}
    if shardings is not None:
        keep["out_shardings"] = (*shardings, *whole.values())
    train = jax.jit(
        over_replicas(train_step, in_axes=(0, 0, 0, 0, 0, 0, None, 0)),
        donate_argnums=(0, 1, 2),
        **keep,
    )
    evaluate_batch = jax.jit(over_replicas(eval_step, in_axes=(0, 0, None, None, None)), **whole)
    return train, evaluate_batch


# The jitted steps of the last few programs set up: trainers of the same program
# (model, optimizer and its fixed settings, shardings) share them, so JAX traces and
# compiles it once, as one jitted function, however many trainers run it: the rungs
# of a learning-rate search, the seeds run one after another, a resumed run.
_STEPS: dict[Any, tuple[Any, Any]] = {}
_STEPS_KEPT = 8


def shared_steps(config: Config, graphdef, build, shardings, mesh):
    """:func:`make_steps` of `config`'s program, the jitted steps of an earlier
    trainer of the same program where there is one: runs that differ only in their
    traced hyperparameters, their seeds or (but under the cosine schedule) their
    length share them. `build` is :func:`optimizer_for`'s, whose `program` names what
    its optimizer fixes."""
    leaves, tree = jax.tree.flatten(shardings)
    key = (config.model, graphdef, build.program, tuple(leaves), tree, mesh)
    if key not in _STEPS:
        if len(_STEPS) >= _STEPS_KEPT:
            del _STEPS[next(iter(_STEPS))]  # the oldest
        _STEPS[key] = make_steps(graphdef, build, shardings, mesh, MODELS[config.model])
    return _STEPS[key]


def init_state(build, params, hparams):
    return jax.vmap(lambda p, h: build(**h).init(p))(params, hparams)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """Deterministic data order of one replica for one epoch."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_order(kind: str, seed: int, epoch: int, n: int, size: int) -> np.ndarray:
    """The `size` example indices (of `n`) one replica trains on in one epoch, in
    order: images a permutation (:func:`epoch_order`), text windows drawn at random
    with replacement (nanoGPT's batches)."""
    if kind == "text":
        return np.random.default_rng([seed, epoch]).integers(0, n, size)
    return epoch_order(seed, epoch, n)[:size]


def evaluate(eval_step, params, stats, x, y, batch=500):
    """Mean test loss and accuracy per replica."""
    n = len(x)
    total_loss, total_correct = 0.0, 0.0
    for start in range(0, n, batch):
        xb, yb = x[start : start + batch], y[start : start + batch]
        mask = np.ones(len(xb), np.float32)
        if len(xb) < batch and n > batch:  # pad to one compiled shape
            pad = batch - len(xb)
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros((pad, *yb.shape[1:]), yb.dtype)])
            mask = np.concatenate([mask, np.zeros(pad, np.float32)])
        loss, correct = eval_step(params, stats, xb, yb, mask)
        total_loss = total_loss + loss
        total_correct = total_correct + correct
    return np.asarray(total_loss) / n, np.asarray(total_correct) / n


@dataclasses.dataclass(frozen=True)
class Trainer:
    """What :func:`setup` builds: everything a training loop needs but the data order.

    Attributes:
      config: the run.
      graphdef: the model's structure (``nnx.split``); the weights live in the states.
      build: ``build(**hparams)``, the optimizer of one replica.
      mesh: the one-axis ("data") mesh each batch is sharded over.
      seeds: the replicas' seeds, (replicas,).
      groups: the slices of replicas trained together (``config.replica_group``).
      hparams: per-replica traced hyperparameters, (replicas,) float32 arrays.
      n_params: the model's parameter count (one replica).
      train_examples: the number of training examples the batches index.
      epochs: the evaluations of the run (:meth:`Config.run_length`).
      steps: the steps between two evaluations (an epoch on images).
      shardings: the :class:`TrainState` of the shardings a state is kept in.
      train_step: the jitted, vmapped, donating step (see :func:`make_steps`).
      eval_step: the jitted, vmapped evaluation of one batch.
      fresh: the initial state of each group, before it is placed on the mesh.
      heap_limit: the largest allocation of a CPU step's temporaries
        (:func:`compiler_options`).
      compiled: the train step :meth:`step` runs, per group size (filled as it
        runs): on CPU devices compiled with :func:`compiler_options`, elsewhere
        :attr:`train_step` itself.
    """

    config: Config
    graphdef: Any
    build: Callable[..., optax.GradientTransformation]
    mesh: Mesh
    seeds: np.ndarray
    groups: tuple[slice, ...]
    hparams: dict[str, np.ndarray]
    n_params: int
    train_examples: int
    epochs: int
    steps: int
    shardings: TrainState
    train_step: Any  # jitted: called, and lowered by _compile
    eval_step: Any
    fresh: tuple[TrainState, ...]
    heap_limit: int = CPU_HEAP_LIMIT
    compiled: dict[int, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def batch_sharding(self) -> NamedSharding:
        """A batch's sharding: (replicas, batch, ...) split over the mesh's "data"."""
        return NamedSharding(self.mesh, PartitionSpec(None, "data"))

    @property
    def sync(self) -> bool:
        """Whether each step is waited for before the next is queued
        (:func:`waits_each_step`)."""
        return waits_each_step(self.mesh)

    def init(self) -> list[TrainState]:
        """Each group's initial state, placed on the mesh."""
        return self.place(self.fresh)

    def place(self, states) -> list[TrainState]:
        """`states` (restored ones, say) put in the trainer's shardings."""
        return [TrainState(*jax.device_put(tuple(s), tuple(self.shardings))) for s in states]

    def group_hparams(self, group: int) -> dict[str, jax.Array]:
        return {k: jnp.asarray(v[self.groups[group]]) for k, v in self.hparams.items()}

    def batches(self, group: int, epoch: int) -> np.ndarray:
        """The example indices of group `group`'s epoch `epoch` (from 1), (the
        group's replicas, steps x batch size): each replica's own order
        (:func:`batch_order`); step `i` trains on ``[:, i * bs : (i + 1) * bs]``."""
        kind = DATASETS[self.config.dataset].kind
        n, size = self.train_examples, self.steps * self.config.batch_size
        seeds = self.seeds[self.groups[group]]
        return np.stack([batch_order(kind, int(s), epoch, n, size) for s in seeds])

    def step(self, state: TrainState, group: int, x, y, idx, step: int, hparams=None):
        """One training step of group `group` on the examples ``x[idx]`` and labels
        ``y[idx]`` (`x`, `y` the host's whole arrays, `idx` of shape (the group's
        replicas, batch), a slice of :meth:`batches`); `step` counts the steps
        before it (it draws the dropout masks). Returns the new state and the
        (replicas,) losses, not waited for. `hparams`: :meth:`group_hparams`,
        computed once by a loop.
        On CPU devices it runs :attr:`train_step` compiled with
        :func:`compiler_options`, once per group size (:attr:`compiled`)."""
        xb = distributed.global_batch(self.batch_sharding, x, idx)
        yb = distributed.global_batch(self.batch_sharding, y, idx)
        hp = self.group_hparams(group) if hparams is None else hparams
        args = (*state, xb, yb, self.seeds[self.groups[group]], step, hp)
        size = self.groups[group].stop - self.groups[group].start  # the one shape that varies
        run = self.compiled.get(size)
        if run is None:
            run = self.compiled[size] = self._compile(args)
        *new, loss = run(*args)
        return TrainState(*new), loss

    def run(
        self,
        state: TrainState,
        group: int,
        x,
        y,
        batch: Callable[[int], np.ndarray],
        steps: range,
        hparams=None,
        offset: int = 0,
    ) -> Iterator[tuple[int, TrainState, jax.Array]]:
        """The step loop, :func:`~inna_optax.training.fit`'s and the benchmarks':
        for each `i` of `steps`, one :meth:`step` of group `group` on the examples
        ``batch(i)`` (indices of shape (the group's replicas, batch)), its dropout
        drawn at step ``offset + i``; yields ``(i, state, losses)`` after each.

        It waits for a step's losses only where it must: on devices that run one
        program at a time (:attr:`sync`), and after the first step, whose
        compilation a caller times apart."""
        hp = self.group_hparams(group) if hparams is None else hparams
        for i in steps:
            state, loss = self.step(state, group, x, y, batch(i), offset + i, hp)
            if self.sync or i == steps.start:
                jax.block_until_ready(loss)
            yield i, state, loss

    def run_to_end(self, *args, **kwargs) -> tuple[TrainState, jax.Array]:
        """:meth:`run` (the same arguments) through its last step: the state and
        that step's losses."""
        *_, (_, state, loss) = self.run(*args, **kwargs)
        return state, loss

    def _compile(self, args) -> Callable:
        """:attr:`train_step` for `args`, compiled with :func:`compiler_options` where
        there are any (XLA's warnings of buffers larger than a heap held back)."""
        options = compiler_options(self.mesh, self.heap_limit)
        if not options:
            return self.train_step
        with quiet_xla_warnings():
            return self.train_step.lower(*args).compile(compiler_options=options)

    def evaluate(self, state: TrainState, x, y, batch: int = 500):
        """Mean test loss and accuracy of each replica of `state`."""
        return evaluate(self.eval_step, state.params, state.stats, x, y, batch)


def setup(
    config: Config, data: Split, sweep: dict | None = None, *, heap_limit: int = CPU_HEAP_LIMIT
) -> Trainer:
    """The :class:`Trainer` of `config` on `data` (its shapes and length; `sweep`:
    per-replica hyperparameters as in :func:`~inna_optax.training.fit`;
    `heap_limit`: see :func:`compiler_options`).

    Raises:
      ConfigError: too few devices, a batch they do not divide, or a `sweep` name
        the optimizer does not take.
    """
    mesh = mesh_for(config)
    seeds = np.asarray(config.seeds, np.uint32)
    r = len(seeds)
    group = config.replica_group or (1 if jax.default_backend() == "cpu" else r)
    groups = tuple(slice(g, min(g + group, r)) for g in range(0, r, group))
    hparams = hyperparameters(config, r, sweep)
    epochs, steps = config.run_length(len(data.x_train))
    build = optimizer_for(config, epochs * steps)
    graphdef, params, stats, n_params = init_replicas(config, seeds, data)
    fresh = []
    for part in groups:
        p, s = jax.tree.map(lambda x, part=part: x[part], (params, stats))
        hp = {k: jnp.asarray(v[part]) for k, v in hparams.items()}
        fresh.append(TrainState(p, s, init_state(build, p, hp)))
    # the specs skip the replica axis, so every group (the last may be smaller) has
    # the same shardings
    shardings = TrainState(*state_sharding(tuple(fresh[0]), mesh, config.shard))
    train_step, eval_step = shared_steps(config, graphdef, build, tuple(shardings), mesh)
    return Trainer(
        config, graphdef, build, mesh, seeds, groups, hparams, n_params, len(data.x_train),
        epochs, steps, shardings, train_step, eval_step, tuple(fresh), heap_limit,
    )  # fmt: skip
