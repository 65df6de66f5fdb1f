"""The jitted steps (`inna_optax.training.trainer`): a group of one replica runs
unbatched, with the vmapped step's values; on a CPU the train step's temporaries
live in allocations that glibc reuses from step to step."""

import os
import platform
import subprocess
import sys
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compiled_as_users_do
from runs import one_replica_step

from inna_optax.training import Config, devices, trainer


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


@pytest.mark.slow
def test_a_one_replica_nin_step_keeps_the_poolings_fusion_boundary_on_the_cpu():
    """The strided max pooling's `lax.cond` (its fusion boundary on XLA:CPU) survives
    in the compiled step of one replica; vmapped, it becomes a select."""
    t, args = one_replica_step(Config(width=0.125, batch_size=8, seeds=(0,)))
    compiled = compiled_as_users_do(t.train_step.lower(*args)).as_text()
    assert compiled.count(" conditional(") >= 2  # the two poolings, forward and backward


def test_compiler_options_limit_the_step_allocations_on_cpu_devices_only():
    cpu = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    assert devices.compiler_options(cpu) == {
        "xla_multiheap_size_constraint_per_heap": devices.CPU_HEAP_LIMIT
    }
    for platform_ in ("gpu", "tpu"):
        mesh = SimpleNamespace(devices=np.array([SimpleNamespace(platform=platform_)]))
        assert devices.compiler_options(mesh) == {}
    assert devices.compiler_options(None) == {}  # no mesh (jax.export): none


FAULTS = """
import resource, sys
import numpy as np
from inna_optax.training import Config, Split, trainer
limit = -1 if sys.argv[1] == "one" else trainer.CPU_HEAP_LIMIT  # -1: XLA's, one allocation
x = np.random.default_rng(0).normal(size=(64, 32, 32, 3)).astype(np.float32)
y = np.zeros(64, np.int32)
t = trainer.setup(Config(width=0.25, norm=True), Split(x, y, x, y, 10, "random"), heap_limit=limit)
state, hp = t.init()[0], t.group_hparams(0)
faults = []
for k in range(10):  # the heaps settle within 3 steps (seen): the fewest of the last 5
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    state, loss = t.step(state, 0, x, y, np.arange(32)[None] + 32 * (k % 2), k, hp)
    loss.block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(min(faults[5:]), float(loss[0]).hex(), ",".join(map(str, faults)))
"""


@pytest.mark.slow
@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc"
)
def test_a_cpu_step_reuses_its_temporaries_memory_and_compiles_quietly():
    """All in one allocation (92 MiB here, on one device), a step's temporaries are
    mmapped and unmapped by glibc at every step, their pages faulted in afresh; in
    heaps of 16 MiB they are reused. The buffers larger than a heap (the 19 MiB
    im2col patches) draw XLA warnings at compile time, held back by `Trainer.step`.
    Only where the temporaries live changes: the losses are the same to the bit.

    glibc is held to one arena and its 32 MiB mmap threshold: with an arena per
    thread, it also unmaps a thread's heap once all of it is free, so what is left
    of the faults varies with which of XLA's threads allocate (0 to 60% of one
    heap's seen); here it depends on the allocations' sizes alone."""
    tunables = (
        "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:"
        "glibc.malloc.trim_threshold=4294967295"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "GLIBC_TUNABLES": tunables}
    faults, losses = {}, set()
    for heaps in ("one", "limited"):
        proc = subprocess.run(
            [sys.executable, "-c", FAULTS, heaps], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "per-heap size limit" not in proc.stderr
        count, loss, each = proc.stdout.split()
        faults[heaps] = int(count)
        losses.add(loss)
        print(heaps, "faults per step:", each)
    assert faults["one"] > 15_000 and faults["limited"] < faults["one"] / 4, faults
    assert len(losses) == 1  # the same values, to the bit


QUIET = """
import sys
import jax, jax.numpy as jnp
from inna_optax.training import devices
# a 1 KiB heap: XLA warns of every larger buffer (sort's 256 KiB input here)
f = jax.jit(lambda x: jnp.sort(x + 1).sum(),
            compiler_options={"xla_multiheap_size_constraint_per_heap": 1024})
with devices.quiet_xla_warnings():
    f(jnp.ones(1 << 16)).block_until_ready()
print("-- after --", file=sys.stderr, flush=True)
f(jnp.ones(1 << 17)).block_until_ready()  # another shape: compiled again, warned of
"""


def test_quiet_xla_warnings_holds_back_xla_warnings_in_its_block_only():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", QUIET], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    inside, after = proc.stderr.split("-- after --")
    if "per-heap size limit" not in after:  # jaxlib before 0.8 (the floor is 0.7.1)
        pytest.skip("this XLA prints no per-heap size-limit warning to hold back")
    assert "per-heap size limit" not in inside


def test_trainers_of_one_program_share_their_jitted_steps(mnist_dir, monkeypatch):
    """A second trainer of the same model, optimizer and shardings reuses the first's
    jitted steps (traced and compiled once: the rungs of a search, seeds run one
    after another, runs of other lengths unless the cosine schedule needs the length);
    another program gets its own; the values are the same as with steps of its own."""
    from runs import tiny

    from inna_optax.training import fit
    from inna_optax.training.data import load

    monkeypatch.setattr(trainer, "_STEPS", {})
    data = load("mnist", mnist_dir)
    first = trainer.setup(tiny(mnist_dir, lr=0.1, alpha=0.3), data)
    again = trainer.setup(tiny(mnist_dir, lr=0.2, seeds=(1,)), data)
    assert again.train_step is first.train_step and again.eval_step is first.eval_step
    for same in (dict(epochs=5), dict(schedule="power")):  # INNA's default schedule
        assert trainer.setup(tiny(mnist_dir, **same), data).train_step is first.train_step
    for other in (dict(optimizer="adam"), dict(dropout=0.3), dict(schedule="cosine")):
        assert trainer.setup(tiny(mnist_dir, **other), data).train_step is not first.train_step
    assert len(trainer._STEPS) == 4
    longer = trainer.setup(tiny(mnist_dir, schedule="cosine", epochs=5), data)
    assert len(trainer._STEPS) == 5 and longer.train_step is not first.train_step

    shared = fit(tiny(mnist_dir, lr=0.2, epochs=1))  # after setups of 2 epochs
    monkeypatch.setattr(trainer, "_STEPS", {})
    alone = fit(tiny(mnist_dir, lr=0.2, epochs=1))
    np.testing.assert_array_equal(shared.train_loss, alone.train_loss)
    np.testing.assert_array_equal(shared.test_accuracy, alone.test_accuracy)
