"""Test configuration: float64 available, and 8 virtual CPU devices for sharding tests."""

import jax

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_enable_x64", True)
