"""The one-host device policy (`training.devices`): one CPU device per core, as
many as divide the batch, yielding to flags and the environment."""

import os
import platform
import subprocess
import sys

import jax
import pytest

pytest.importorskip("flax.nnx")
from inna_optax.training import Config, devices  # noqa: E402


@pytest.mark.parametrize(
    "batch, cores, expected", [(32, 2, 2), (32, 1, 1), (32, 6, 4), (32, 64, 32), (10, 4, 2)]
)
def test_default_cpu_devices_is_the_largest_divisor_of_the_batch_up_to_the_cores(
    batch, cores, expected
):
    assert devices.default_cpu_devices(batch, cores) == expected


def test_cpu_devices_default_yields_to_flags_and_environment():
    config = Config(batch_size=32)
    assert devices.cpu_devices(config, {}, cores=8) == 8
    assert devices.cpu_devices(Config(batch_size=32, cpu_devices=1), {}, cores=8) == 1
    assert devices.cpu_devices(Config(batch_size=32, devices=2), {}, cores=8) == 2
    assert devices.cpu_devices(config, {"JAX_NUM_CPU_DEVICES": "3"}, cores=8) is None
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert devices.cpu_devices(config, flags, cores=8) is None
    several = Config(batch_size=32, coordinator="h:1", num_processes=2, process_id=0)
    assert devices.cpu_devices(several, {}, cores=8) is None


FAULTS = """
import resource, sys
from inna_optax.training import Config, devices
kept = devices.keep_freed_memory(Config(keep_freed_memory=sys.argv[1] == "on"))
import jax, jax.numpy as jnp

@jax.jit
def step(x):  # a 64 MiB intermediate: XLA:CPU never fuses a concatenation
    return jnp.concatenate([x + i for i in range(4)], axis=1) @ jnp.ones(64)

x = jnp.ones((1 << 18, 16))  # 16 MiB
for _ in range(10):  # the heap settles within a few steps
    step(x).block_until_ready()
faults = []  # per step; the fewest of 5 (the heap may still grow in one of them)
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, min(faults))
"""


@pytest.mark.slow
@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)
def test_keep_freed_memory_stops_each_step_faulting_in_its_buffers_afresh():
    """XLA:CPU allocates a step's buffers afresh; glibc serves the large ones with
    mmap and unmaps them when freed, so each step faults in 64 MiB of new pages
    (16,384 pages of 4 KiB). Kept, the next step reuses them."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    faults = {}
    for mode in ("off", "on"):
        proc = subprocess.run(
            [sys.executable, "-c", FAULTS, mode], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        kept, faults[mode] = proc.stdout.split()
        assert kept == str(mode == "on")
    assert int(faults["off"]) > 8000 and int(faults["on"]) < 1000, faults


def test_keep_freed_memory_is_skipped_when_asked_and_once_jax_has_started():
    assert not devices.keep_freed_memory(Config(keep_freed_memory=False))
    jax.devices()  # started: the threads have their arenas, it would not help
    assert not devices.keep_freed_memory(Config(keep_freed_memory=True))
