"""Test configuration: 8 virtual CPU devices for the sharding tests. Tests run in
float32, as users do; the ones that compare against the float64 reference of eq. (12)
switch float64 on for themselves with the `x64` fixture."""

import os

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)
# Command lines the tests start as subprocesses run on one CPU device (compiling for
# one per core costs seconds a run); the tests of that default and of several
# processes set their own environment.
os.environ["JAX_NUM_CPU_DEVICES"] = "1"


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """A tiny MNIST in IDX files (64 training and 32 test images)."""
    from datagen import make_mnist

    d = tmp_path_factory.mktemp("mnist")
    make_mnist(d, n_train=64, n_test=32)
    return d
