"""Helpers of the command-line tests: the tiny run's flags, running the command line
in this process or in its own, and reading what a run wrote."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from inna_optax import train
from inna_optax.training import Config, Split, trainer

ROOT = Path(__file__).resolve().parents[1]


# one device: a program sharded over the 8 test devices compiles about a third slower;
# the tests of several devices ask for them
TINY = [
    *("--width", "0.0625", "--batch-size", "8", "--no-progress", "--dropout", "0"),
    *("--devices", "1"),
]


def args(mnist_dir, out, *extra):
    return ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY, "--out", str(out), *extra]


def tiny(mnist_dir, **changes) -> Config:
    """The tiny NiN on the generated digits, as a Config."""
    values = dict(width=0.0625, batch_size=8, dropout=0.0, progress=False, epochs=2, devices=1)
    return Config(dataset="mnist", data_dir=str(mnist_dir), **{**values, **changes})


def one_replica_step(config: Config):
    """The trainer of `config` on 16 blank 28 x 28 images, and the arguments of its
    train step for one batch of its first replica group."""
    data = Split(np.zeros((16, 28, 28, 1), np.float32), np.zeros(16, np.int32), None, None, 10, "")
    t = trainer.setup(config, data)
    x = jnp.zeros((1, config.batch_size, 28, 28, 1), jnp.float32)
    y = jnp.zeros((1, config.batch_size), jnp.int32)
    args = (*t.init()[0], x, y, jnp.asarray(t.seeds), jnp.int32(0), t.group_hparams(0))
    return t, args


def cli(capsys, argv):
    """Runs the command line; returns (exit code, stdout, stderr)."""
    code = train.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def child_env(**extra: str) -> dict:
    """The environment of a command line that sets its own devices: the session's
    (LLVM's optimisation off, tests/conftest.py) without its device count, then
    `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
    flags = env.get("XLA_FLAGS", "").split()
    kept = [f for f in flags if not f.startswith("--xla_force_host_platform_device_count")]
    return {**env, "XLA_FLAGS": " ".join(kept), "JAX_PLATFORMS": "cpu", **extra}


def cli_process(argv) -> subprocess.CompletedProcess:
    """The command line in a process of its own (one CPU device, as conftest sets)."""
    return subprocess.run(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def snapshot(path: Path) -> dict:
    """Every file under `path` with its size and modification time."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
