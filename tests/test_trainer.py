"""The jitted steps (`inna_optax.training.trainer`): a group of one replica runs
unbatched, with the vmapped step's values."""

import jax
import jax.numpy as jnp
import numpy as np
from runs import one_replica_step

from inna_optax.training import Config, trainer


def test_over_replicas_calls_one_replica_unbatched_with_vmaps_values():
    calls = []

    def fn(a, b, c):
        calls.append(np.shape(a["w"]))
        return {"sum": a["w"] * b + c}, jnp.sum(a["w"])

    in_axes = (0, None, 0)
    for replicas in (1, 3):
        a = {"w": jnp.arange(replicas * 4.0).reshape(replicas, 4)}
        c = jnp.ones((replicas, 4))
        calls.clear()
        mine = trainer.over_replicas(fn, in_axes)(a, 2.0, c)
        assert calls == [(4,)]  # traced once, unbatched or batched alike
        expected = jax.vmap(fn, in_axes=in_axes)(a, 2.0, c)
        for x, y in zip(jax.tree.leaves(mine), jax.tree.leaves(expected), strict=True):
            assert x.shape == y.shape and x.shape[0] == replicas
            np.testing.assert_array_equal(x, y)


def test_a_one_replica_nin_step_keeps_the_poolings_fusion_boundary_on_the_cpu():
    """The strided max pooling's `lax.cond` (its fusion boundary on XLA:CPU) survives
    in the compiled step of one replica; vmapped, it becomes a select."""
    t, args = one_replica_step(Config(width=0.125, batch_size=8, seeds=(0,)))
    compiled = t.train_step.lower(*args).compile().as_text()
    assert compiled.count(" conditional(") >= 2  # the two poolings, forward and backward
