"""The one-host device policy (`training.devices`): one CPU device per core, as
many as divide the batch, yielding to flags and the environment."""

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
