"""Many processes (one per host) through JAX's own runtime, `jax.distributed`.

Every process runs the same loop on the same global arrays: the mesh spans all
devices of all processes, each process builds only its rows of each global batch
(`jax.make_array_from_callback`), orbax writes checkpoints from all processes, and
only process 0 writes metrics, the summary and messages.
"""

import os
import socket
import sys
import threading
import time

import jax
import numpy as np

from inna_optax.training.config import Config, ConfigError


class DistributedError(RuntimeError):
    """The processes could not connect (wrong coordinator, count or id)."""


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
    hosts"). `fit` waits for each step there (see `loop.waits_each_step`)."""
    n = cpu_devices(config)
    if n is None:
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        pass


def initialize(config: Config) -> None:
    """Joins the job described by --coordinator/--num-processes/--process-id, or the
    cluster's (SLURM, Open MPI, Kubernetes, Cloud TPU: what `jax.distributed`
    detects) with --distributed. Must run before anything touches a JAX device."""
    if not (config.coordinator or config.distributed):
        return
    if jax.config.jax_platforms in (None, "", "cpu"):
        # CPU devices of several processes talk through gloo
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {"initialization_timeout": config.connect_timeout}
    if config.coordinator and config.process_id != 0:
        _wait_for(config.coordinator, config.connect_timeout)
    if config.coordinator:
        print(
            f"joining {config.coordinator} as process {config.process_id} of "
            f"{config.num_processes} (waiting up to {config.connect_timeout} s)",
            file=sys.stderr,
            flush=True,
        )
        kwargs.update(
            coordinator_address=config.coordinator,
            num_processes=config.num_processes,
            process_id=config.process_id,
        )
    # JAX's runtime aborts the process when the others do not all arrive in time; a
    # watchdog ends it first, with one line and exit code 2
    kwargs["initialization_timeout"] = config.connect_timeout + 30
    watchdog = threading.Timer(config.connect_timeout, _give_up, args=(config,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(**kwargs)
        _agree(config)
    except DistributedError:
        raise
    except Exception as e:  # noqa: BLE001 - the runtime raises several kinds
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        where = config.coordinator or "the cluster's coordinator"
        raise DistributedError(
            f"--coordinator: could not join {where} as process {config.process_id} of "
            f"{config.num_processes} within {config.connect_timeout} s ({first})"
        ) from None
    finally:
        watchdog.cancel()


def _agree(config: Config) -> None:
    """Every process must have been started with the same --num-processes and
    --coordinator: JAX's runtime accepts a mismatch and the first collective then
    waits forever. The processes compare them through its key-value store."""
    from jax._src import distributed as runtime

    client = runtime.global_state.client
    if client is None:
        return
    mine = f"{config.num_processes}|{config.coordinator}"
    client.key_value_set(f"inna_optax/flags/{jax.process_index()}", mine)
    for other in range(jax.process_count()):
        value = client.blocking_key_value_get(
            f"inna_optax/flags/{other}", config.connect_timeout * 1000
        )
        if value != mine:
            raise DistributedError(
                f"--num-processes: process {other} was started with --num-processes/"
                f"--coordinator {value.replace('|', ' ')}, this one with "
                f"{mine.replace('|', ' ')}"
            )


def _give_up(config: Config) -> None:
    where = config.coordinator or "the cluster's coordinator"
    print(
        f"error: --num-processes: not all {config.num_processes or 'the'} processes joined "
        f"{where} within --connect-timeout {config.connect_timeout} s (a process missing, "
        "or started with another --num-processes or --coordinator)",
        file=sys.stderr,
        flush=True,
    )
    os._exit(2)


def _wait_for(address: str, timeout: float) -> None:
    """Until the coordinator accepts connections; a clear error after `timeout` s."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as e:
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"--coordinator: nothing answers at {address} after {timeout} s "
                    f"({e.strerror or e}); start process 0 there, or check the address"
                ) from None
            time.sleep(0.5)


def is_primary() -> bool:
    """Process 0 writes files and messages; the others only compute and checkpoint."""
    return jax.process_index() == 0


def check(config: Config) -> None:
    """Settings that only make sense, or only break, with several processes."""
    if jax.process_count() > 1 and config.out is None:
        raise ConfigError("--out: several processes need one directory named for all")


def global_batch(sharding, data: np.ndarray, idx: np.ndarray):
    """The global array data[idx] (idx: replicas x batch indices), built from the
    rows this process's devices hold: no process reads the others' rows."""
    shape = (*idx.shape, *data.shape[1:])

    def rows(index):
        return data[idx[index[0], index[1]]][(slice(None), slice(None), *index[2:])]

    return jax.make_array_from_callback(shape, sharding, rows)


def host_value(x) -> np.ndarray:
    """A NumPy copy of `x` on every process, whatever its sharding."""
    if getattr(x, "is_fully_addressable", True) or x.is_fully_replicated:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
