"""Helpers of the command-line tests: the tiny run's flags, running the command line
in this process or in its own, and reading what a run wrote."""

import json
import subprocess
import sys
from pathlib import Path

from inna_optax import train
from inna_optax.training import Config

ROOT = Path(__file__).resolve().parents[1]


TINY = ["--width", "0.0625", "--batch-size", "8", "--no-progress", "--dropout", "0"]


def args(mnist_dir, out, *extra):
    return ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY, "--out", str(out), *extra]


def tiny(mnist_dir, **changes) -> Config:
    """The tiny NiN on the generated digits, as a Config."""
    values = dict(width=0.0625, batch_size=8, dropout=0.0, progress=False, epochs=2)
    return Config(dataset="mnist", data_dir=str(mnist_dir), **{**values, **changes})


def cli(capsys, argv):
    """Runs the command line; returns (exit code, stdout, stderr)."""
    code = train.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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
