"""The devices of one host: how many CPU devices to make of it, and the mesh a batch
is sharded over (which, with `jax.distributed`, spans every process's devices; see
:mod:`inna_optax.training.distributed` for several processes).
"""

import ctypes
import os
import sys

import jax
from jax.sharding import Mesh

from inna_optax.training.config import Config, ConfigError


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_cpu_devices(batch_size: int, cores: int) -> int:
    """One CPU device per core, as many as divide the batch: the largest divisor of
    `batch_size` that is at most `cores` (32 on 2 cores: 2; on 6 cores: 4)."""
    return next(d for d in range(min(cores, batch_size), 0, -1) if batch_size % d == 0)


def cpu_devices(config: Config, environ=os.environ, cores: int | None = None) -> int | None:
    """The CPU devices the command line makes of this host: --cpu-devices N, or by
    default one per core (:func:`default_cpu_devices`), the batch split over them.
    None (JAX's own count) where the environment already sets it
    (JAX_NUM_CPU_DEVICES, or XLA_FLAGS' --xla_force_host_platform_device_count) and
    for runs of several processes, where the global batch is split over every
    process's devices: give --cpu-devices there."""
    if config.cpu_devices is not None:
        return config.cpu_devices
    if environ.get("JAX_NUM_CPU_DEVICES") or "device_count" in environ.get("XLA_FLAGS", ""):
        return None
    if config.coordinator or config.distributed:
        return None
    if config.devices is not None:
        return config.devices
    return default_cpu_devices(config.batch_size, usable_cores() if cores is None else cores)


def set_cpu_devices(config: Config) -> None:
    """Makes :func:`cpu_devices` CPU devices before JAX starts; a no-op once it has
    (a notebook, the tests: JAX keeps the devices it has). An accelerator's backend
    is not touched by the CPU's count.

    A CPU host runs as one device by default in JAX, and XLA:CPU then keeps about
    1.5 of 2 cores busy in a NiN step; split over one device per core the step was
    faster at every width and input measured (README, "Many devices and many
    hosts"). `fit` waits for each step there (see `trainer.waits_each_step`)."""
    n = cpu_devices(config)
    if n is None:
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        pass


# mallopt's parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):  # another JAX: take it as not started
        return False


def keep_freed_memory(config: Config) -> bool:
    """Has glibc's malloc keep the memory that XLA:CPU frees after each step, for
    the next step to reuse; returns whether it did.

    XLA:CPU allocates a step's buffers afresh at every step, and glibc serves large
    blocks with ``mmap`` (above a threshold that grows to 32 MiB at most, and from a
    thread's own arena above 64 MiB), unmapping them when they are freed: every step
    then faults in and zeroes their pages again. The train step's temporaries already
    come in allocations that glibc reuses
    (:func:`~inna_optax.training.trainer.compiler_options`); this keeps the rest too
    (single buffers larger than those, the heaps that the threads' arenas return):
    one arena, no ``mmap`` and no trimming (``mallopt``). On 2 cores the NiN's
    training step then ran 1.05x to 1.15x as fast at width 1 on CIFAR-shaped input,
    but at about 0.65x at width 0.125 and 0.9x at width 0.25, where the threads'
    small allocations contend for the one arena ("Training against PyTorch" on the
    performance page); hence it is off by default. The process holds on to the
    memory of its largest step.

    It applies with ``config.keep_freed_memory``, on Linux with glibc, and before JAX
    starts its backend: threads that have allocated keep their own arenas, so it
    would not help later and is skipped. The same settings for a whole process, from its start::

      GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295

    Example:
      >>> from inna_optax.training import Config, devices
      >>> config = Config(keep_freed_memory=True)
      >>> kept = devices.keep_freed_memory(config)  # first, before any JAX computation
    """
    if not config.keep_freed_memory or sys.platform != "linux" or _backend_started():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)


def mesh_for(config: Config) -> Mesh:
    """The one-axis ("data") mesh of the devices `config` asks for; ConfigError when
    there are too few or they do not divide the batch."""
    available = jax.devices()  # every process's, with jax.distributed
    n = config.devices or len(available)
    if n > len(available):
        raise ConfigError(f"--devices: {n} asked, {len(available)} device(s) available")
    if config.batch_size % n:
        raise ConfigError(
            f"--batch-size: {config.batch_size} is not divisible by the {n} devices "
            "it is sharded over (--devices)"
        )
    return jax.make_mesh(
        (n,), ("data",), devices=available[:n], axis_types=(jax.sharding.AxisType.Auto,)
    )


def waits_each_step(mesh: Mesh) -> bool:
    """Whether a loop over `mesh` must wait for each step before queueing the next:
    on several CPU devices. Steps queued ahead can take every thread of XLA:CPU's
    pool while waiting in an all-reduce for a device that then has no thread to run
    on ("Expected 2 threads to join the rendezvous, but only 1 of them arrived";
    seen on 2 devices of 2 cores, and XLA aborts after 40 s)."""
    return mesh.devices.flat[0].platform == "cpu" and mesh.devices.size > 1
