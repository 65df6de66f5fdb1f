"""The devices of one host: how many CPU devices to make of it, and the mesh a batch
is sharded over (which, with `jax.distributed`, spans every process's devices; see
:mod:`inna_optax.training.distributed` for several processes).
"""

import contextlib
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

    A CPU host runs as one device by default in JAX, and XLA:CPU then leaves part of
    the second core idle in a NiN step; split over one device per core the step was
    faster at every width and input measured (the performance page, "CPU devices").
    `fit` waits for each step there (see `trainer.waits_each_step`)."""
    n = cpu_devices(config)
    if n is None:
        return
    if config.cpu_devices is not None:  # asked: refused before JAX starts if it cannot work
        limit = 8 * usable_cores()
        if n > limit:
            raise ConfigError(
                f"--cpu-devices: {n} is more than this host runs ({limit}: 8 per core)"
            )
        if n > config.batch_size:
            raise ConfigError(
                f"--cpu-devices: {n} devices cannot share a batch of {config.batch_size} "
                "(--batch-size)"
            )
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
    (:func:`~inna_optax.training.devices.compiler_options`); this keeps the rest too
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


#: The most bytes of temporaries XLA:CPU places in one allocation of a train step,
#: by default (:func:`setup`'s `heap_limit`)
CPU_HEAP_LIMIT = 16 * 2**20


def compiler_options(mesh: Mesh | None, heap_limit: int = CPU_HEAP_LIMIT) -> dict[str, int]:
    """XLA's options for the train step on `mesh`: on CPU devices, the step's
    temporaries in allocations ("heaps") of at most `heap_limit` bytes (16 MiB;
    -1 for XLA's own, one allocation); none elsewhere, or without a mesh.
    :meth:`~inna_optax.training.Trainer.step` compiles with them;
    ``Trainer.train_step`` itself is a plain ``jax.jit`` (JAX takes compiler options
    on an outermost jit only, so it can still be called inside another), which can
    be compiled the same way::

      options = compiler_options(trainer.mesh)
      compiled = trainer.train_step.lower(*args).compile(compiler_options=options)

    XLA:CPU otherwise places all of a step's temporaries in one allocation (132 MiB
    per device for the NiN at width 1 on MNIST, batch 32 on 2 devices) and allocates
    it afresh at every step. glibc's malloc serves blocks above 32 MiB with ``mmap``
    and unmaps them when freed, so each step faulted in and zeroed that memory again
    (67,000 page faults per step). Blocks of 16 MiB stay below that threshold and
    are reused from one step to the next: 19,500 faults per step there (what is
    left: single buffers above the limit, which get an allocation of their own, and
    heaps that glibc's thread arenas return), and the step ran 1.1x to 1.3x as fast
    at widths 0.25 to 1 on 2 cores, unchanged at 0.125 (performance page, "Training
    against PyTorch"). The same values: only where the temporaries live changes.
    """
    if mesh is None or mesh.devices.flat[0].platform != "cpu":
        return {}
    return {"xla_multiheap_size_constraint_per_heap": heap_limit}


@contextlib.contextmanager
def quiet_xla_warnings():
    """XLA's C++ warnings held back (errors still shown) in the block.

    With :func:`compiler_options`, compiling a step logs a warning for each buffer
    larger than a heap ("Alloc buffer size ... larger than the per-heap size limit"),
    which is expected: such a buffer gets an allocation of its own. Afterwards the
    level is JAX's (``TF_CPP_MIN_LOG_LEVEL``, 1 unless set)."""
    try:
        from jax._src.lib import utils

        set_level = utils.absl_set_min_log_level
    except (ImportError, AttributeError):  # another jaxlib: nothing held back
        yield
        return
    set_level(2)
    try:
        yield
    finally:
        set_level(int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1")))
