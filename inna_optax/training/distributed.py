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
from typing import Any

import jax
import numpy as np

from inna_optax.training.config import Config, ConfigError


class DistributedError(RuntimeError):
    """The processes could not connect (wrong coordinator, count or id)."""


def initialize(config: Config) -> None:
    """Joins the job described by --coordinator/--num-processes/--process-id, or the
    cluster's (SLURM, Open MPI, Kubernetes, Cloud TPU: what `jax.distributed`
    detects) with --distributed. Must run before anything touches a JAX device."""
    if not (config.coordinator or config.distributed):
        return
    # jax.config's options are attributes made at run time, unknown to a type checker
    if getattr(jax.config, "jax_platforms", None) in (None, "", "cpu"):
        # CPU devices of several processes talk through gloo
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict[str, Any] = {"initialization_timeout": config.connect_timeout}
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
    waits forever. The processes compare them through its key-value store, which
    jax has no public name for (``jax.experimental.multihost_utils`` offers only
    collectives, which would wait forever on the very mismatch checked here)."""
    try:
        from jax._src import distributed as runtime

        client = runtime.global_state.client
    except (ImportError, AttributeError):  # another JAX: not checked, as on one process
        return
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
