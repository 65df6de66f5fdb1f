"""The jitted train step and the bare optimizer steps lower for GPU (cuda) and TPU:
`jax.export` serialises them for those platforms on this CPU-only machine, which
fails if anything in them (an op, a custom call, a dtype) is CPU-only."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from runs import one_replica_step

import inna_optax
from inna_optax.training import Config, Split, trainer
from inna_optax.training.optimizers import OPTIMIZERS

PLATFORMS = ("cuda", "tpu")


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)), tree)


def export(fn, *args, **jit):
    """Exports `fn(*args)` for GPU and TPU over flat lists of arrays (serialising
    optax's and our NamedTuple states' tree structure is not the point here)."""
    leaves, treedef = jax.tree.flatten(args)

    def flat(*leaves):
        return jax.tree.leaves(fn(*jax.tree.unflatten(treedef, leaves)))

    return jax.export.export(jax.jit(flat, **jit), platforms=PLATFORMS)(*_abstract(leaves))


def _check(exported):
    assert tuple(exported.platforms) == PLATFORMS
    text = exported.mlir_module()
    assert "stablehlo" in text
    # round trip: what a GPU or TPU host would load
    again = jax.export.deserialize(exported.serialize())
    assert tuple(again.platforms) == PLATFORMS


@pytest.mark.parametrize(
    "make",
    [
        lambda: inna_optax.inna(inna_optax.inverse_power_decay(0.1), weight_decay=1e-4),
        lambda: inna_optax.innaprop(optax.cosine_decay_schedule(1e-3, 100)),
        lambda: optax.adamw(1e-3),
    ],
    ids=["inna", "innaprop", "adamw"],
)
def test_optimizer_step_exports_for_gpu_and_tpu(make):
    tx = make()
    params = {"w": jnp.ones((64, 32)), "b": jnp.zeros(32, jnp.bfloat16)}
    state = tx.init(params)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    _check(export(step, params, state, params))


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_nin_train_step_exports_for_gpu_and_tpu(optimizer):
    config = Config(optimizer=optimizer, width=0.125, batch_size=8, seeds=(0, 1))
    seeds = np.asarray(config.seeds, np.uint32)
    shape = Split(np.zeros((1, 28, 28, 1), np.float32), None, None, None, 10, "shape")
    graphdef, params, stats, _ = trainer.init_replicas(config, seeds, shape)
    hparams = {k: jnp.asarray(v) for k, v in trainer.hyperparameters(config, len(seeds)).items()}
    build = trainer.optimizer_for(config, total_steps=100)
    opt_state = trainer.init_state(build, params, hparams)
    train_step, eval_step = trainer.make_steps(graphdef, build)
    r, b = len(seeds), config.batch_size
    x = jnp.zeros((r, b, 28, 28, 1), jnp.float32)
    y = jnp.zeros((r, b), jnp.int32)
    args = (params, stats, opt_state, x, y, jnp.asarray(seeds), jnp.int32(0), hparams)
    _check(export(train_step, *args))
    _check(export(eval_step, params, stats, x[0], y[0], jnp.ones(b)))


def test_the_export_check_can_fail_on_cpu_only_code():
    # a host callback lowers only for the CPU it runs on: export must refuse it
    def host_only(x):
        shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.pure_callback(lambda a: np.asarray(a) * 2, shape, x)

    with pytest.raises(Exception, match="callback"):
        export(host_only, jnp.ones(3))


@pytest.mark.parametrize("platform", ["cuda", "tpu", "cpu"])
def test_auto_convolution_is_native_on_gpus_and_tpus_and_matrix_products_on_cpus(platform):
    """`--conv auto` (the default) is decided at lowering: an export for CUDA or
    TPU holds NiN's nine native convolutions forward and their gradients and its
    two native max poolings (a reduce-window forward, a select-and-scatter
    backward), the CPU lowering none of them (matrix products and strided slices
    instead)."""
    t, args = one_replica_step(Config(width=0.125, batch_size=8, seeds=(0,)))
    leaves, treedef = jax.tree.flatten(args)
    step = jax.jit(
        lambda *leaves: jax.tree.leaves(t.train_step(*jax.tree.unflatten(treedef, leaves)))
    )
    text = jax.export.export(step, platforms=(platform,))(*_abstract(leaves)).mlir_module()
    convolutions = text.count("stablehlo.convolution")
    pools = text.count("stablehlo.reduce_window"), text.count("stablehlo.select_and_scatter")
    if platform == "cpu":
        assert convolutions == 0 and "stablehlo.dot_general" in text
        assert pools == (0, 0)
    else:  # 9 forward, 9 for the inputs' gradients but the first layer's, 9 for the kernels'
        assert convolutions >= 9 * 2
        assert pools == (2, 2)


@pytest.mark.parametrize("platform", ["cuda", "tpu", "cpu"])
def test_innaprops_recomputation_barrier_is_lowered_for_the_cpu_only(platform):
    """INNAprop recomputes u = g / (sqrt(v_hat) + eps) behind an optimization
    barrier on XLA:CPU (which fuses each output apart); GPUs and TPUs fuse both
    outputs and lower without it."""
    tx = inna_optax.innaprop(1e-3)
    params = {"w": jnp.ones((64, 32))}
    state = tx.init(params)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    leaves, treedef = jax.tree.flatten((params, state, params))
    flat = jax.jit(lambda *xs: jax.tree.leaves(step(*jax.tree.unflatten(treedef, xs))))
    text = jax.export.export(flat, platforms=(platform,))(*_abstract(leaves)).mlir_module()
    assert ("optimization_barrier" in text) == (platform == "cpu")
