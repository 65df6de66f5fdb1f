"""Test configuration: 8 virtual CPU devices for the sharding tests, and one JAX
compilation cache for the whole session. Tests run in float32, as users do; the ones
that compare against the float64 reference of eq. (12) switch float64 on for
themselves with the `x64` fixture.

Most of the suite's time is XLA compiling the same few train steps again, in the
pytest workers and in the command lines the tests start as subprocesses. JAX's
persistent cache makes every compile after the first a file read. The cache lives in
a temporary folder made by the controlling pytest process, shared with its xdist
workers and their subprocesses through the environment, and deleted when the session
ends: a run never reads programs compiled by another commit's code. A second folder,
made and deleted the same way, holds what the workers make once and share
(`tests/once.py`: the two-process run, the built site).
"""

import os
import shutil
import tempfile

import jax
import jaxlib
import pytest

_CACHE = "INNA_OPTAX_TEST_JAX_CACHE"
_SHARED = "INNA_OPTAX_TEST_SHARED"  # what the workers make once (tests/once.py)
if _CACHE not in os.environ:  # the controlling process (xdist's workers inherit it)
    os.environ[_CACHE] = tempfile.mkdtemp(prefix="inna-optax-jax-cache-")
    os.environ[_SHARED] = tempfile.mkdtemp(prefix="inna-optax-test-shared-")
    _OWNS_CACHE = True
else:
    _OWNS_CACHE = False
# read by JAX in this process at import time and in every subprocess
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ[_CACHE]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# The suite is compile-bound, and two XLA:CPU settings cut the time it spends
# compiling: LLVM's optimisation off, and (from jaxlib 0.6 on) the elemental code
# generator XLA:CPU used before its MLIR fusion emitters. The tiny NiN's train step
# compiles in 2.4 s with XLA's defaults, 1.4 s with the first, 0.55 s with both (on
# this 2-core machine, 2026-12-05). Neither changes what a program computes (fast-math
# stays off); the code runs slower, and no test times it. The fusion emitters' pass
# pipeline rewrites some HLO its own way (a max pooling's gradient into a scatter), so
# the tests of what a compiled program holds compile it as users do
# (`compiled_as_users_do`); no test compares bits with a program compiled outside.
_SPEED = ["--xla_backend_optimization_level=0"]
_NEW_EMITTERS = tuple(int(v) for v in jaxlib.__version__.split(".")[:2]) >= (0, 6)
if _NEW_EMITTERS:  # (an unknown flag aborts the process)
    _SPEED.append("--xla_cpu_use_fusion_emitters=false")
os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *_SPEED]).strip()
_AS_USERS = {"xla_cpu_use_fusion_emitters": True} if _NEW_EMITTERS else {}


def compiled_as_users_do(lowered):
    """`lowered` (a ``jax.stages.Lowered``) compiled with XLA's fusion emitters, as
    outside the test suite: the HLO passes that rewrite a program depend on them (the
    native max pooling's gradient becomes a scatter only with them)."""
    return lowered.compile(_AS_USERS or None)


@pytest.fixture
def steps_compiled_as_users_do(monkeypatch):
    """The trainer's train step compiled with XLA's own settings (LLVM's optimisation
    back on, XLA's emitters): for a test whose time goes into running hundreds of
    steps rather than into compiling them."""
    from inna_optax.training import trainer

    options = trainer.compiler_options
    users = {**_AS_USERS, "xla_backend_optimization_level": 3}  # XLA's default
    monkeypatch.setattr(trainer, "compiler_options", lambda *a: {**options(*a), **users})


try:
    jax.config.update("jax_num_cpu_devices", 8)
except AttributeError:  # jax before 0.5 (the core's floor is 0.4.30): XLA's own flag
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    )
# Command lines the tests start as subprocesses run on one CPU device (compiling for
# one per core costs seconds a run); the tests of that default and of several
# processes set their own environment.
os.environ["JAX_NUM_CPU_DEVICES"] = "1"


# the docstring examples that train or compile a network (over 2.5 s on 2 cores)
SLOW_DOCTESTS = {
    "inna_optax.training.loop.fit",
    "inna_optax.training.models.NiN",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n N` steals work (xdist's `worksteal`) rather than hand it out in chunks
    (`load`): each worker starts on a contiguous half of the tests, so tests of one
    module still read each other's compiled programs from the cache, and a worker
    left idle takes half of what the other has not started, instead of waiting for
    it to finish a chunk that can hold a fifth of the suite."""
    if config.getoption("dist") != "load":
        return None
    try:
        from xdist.scheduler import WorkStealingScheduling  # pytest-xdist 3.2 and later
    except ImportError:
        return None
    return WorkStealingScheduling(config, log)


def pytest_unconfigure(config):
    if _OWNS_CACHE and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ[_CACHE], ignore_errors=True)
        shutil.rmtree(os.environ[_SHARED], ignore_errors=True)


def enable_x64(on: bool = True):
    """jax.enable_x64, or jax.experimental's before jax 0.6 (the core's floor)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(on)
    from jax.experimental import enable_x64 as old

    return old(on)


@pytest.fixture
def x64():
    with enable_x64(True):
        yield


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """A tiny MNIST in IDX files (64 training and 32 test images)."""
    from datagen import make_mnist

    d = tmp_path_factory.mktemp("mnist")
    make_mnist(d, n_train=64, n_test=32)
    return d
