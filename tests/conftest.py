"""Test configuration: 8 virtual CPU devices for the sharding tests. Tests run in
float32, as users do; the ones that compare against the float64 reference of eq. (12)
switch float64 on for themselves with the `x64` fixture."""

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
