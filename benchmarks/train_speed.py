"""Training throughput of NiN with INNA against SGD (and Adam), side by side in one run.

Builds the training pipeline's compiled train step for each optimizer on the same
model and batches, then alternates chunks of steps between them, so both see the
same machine state. Prints steps/s and the ratio to SGD. With --cpu-devices N the
process makes N CPU devices and each optimizer also runs with the batch split over
all N (against 1 of them), interleaved the same way, waiting for each step on
several CPU devices as the training loop does there.

    python -m benchmarks.train_speed                                    # MNIST-shaped random data
    python -m benchmarks.train_speed --data-dir ../shared/data/mnist    # real MNIST batches
    python -m benchmarks.train_speed --cpu-devices 2 --optimizers inna  # 1 vs 2 CPU devices
    python -m benchmarks.train_speed --cpu-devices 2 --shape 32,32,3    # CIFAR-shaped
    python -m benchmarks.train_speed --optimizers inna --conv native,matmul  # convolutions
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import report
from inna_optax.training import Config, data
from inna_optax.training.trainer import setup


def random_split(shape: tuple[int, ...], n: int = 4096) -> data.Split:
    """Random images of `shape` (normalised as the data sets are) and labels."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
    x = data.normalize(x, *data.channel_stats(x))
    y = rng.integers(0, 10, n).astype(np.int32)
    return data.Split(x, y, x[:500], y[:500], 10, "random")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="MNIST IDX directory (default: random data)")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--chunk-steps", type=int, default=30)
    p.add_argument("--optimizers", default="sgd,inna,adam")
    p.add_argument("--out", default="results/train_speed")
    p.add_argument("--name", default="train_speed", help="the JSON's name in --out")
    p.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="make N CPU devices and compare the batch on 1 and on N of them",
    )
    p.add_argument("--shape", default="28,28,1", help="random images' H,W,C (default MNIST's)")
    p.add_argument(
        "--conv",
        default="auto",
        help="comma-separated --conv choices to compare (auto, native, matmul; default auto)",
    )
    return p


def _runs(a, split) -> dict[str, dict]:
    """A trainer, its first state and its timings per (optimizer, conv, devices)."""
    counts = [1, a.cpu_devices] if a.cpu_devices and a.cpu_devices > 1 else [None]
    runs = {}
    convs = a.conv.split(",")
    for name, conv, n in itertools.product(a.optimizers.split(","), convs, counts):
        config = Config(
            dataset="mnist",
            optimizer=name,
            width=a.width,
            batch_size=a.batch_size,
            devices=n,
            conv=conv,
        )
        trainer = setup(config, split)
        label = name + (f"/{conv}" if len(convs) > 1 else "") + (f"@{n}cpu" if n else "")
        runs[label] = {
            "trainer": trainer,
            "state": trainer.init()[0],
            "hparams": trainer.group_hparams(0),
            "times": [],
        }
    return runs


def _time(a, split, runs: dict[str, dict]) -> None:
    """Steps per second of every run, over interleaved chunks (after one warm step)."""
    order = np.random.default_rng(0).permutation(len(split.x_train))
    batches = [
        order[i : i + a.batch_size] for i in range(0, len(order) - a.batch_size, a.batch_size)
    ]

    def steps(run, count: int, first: int = 0) -> None:
        state, loss = run["trainer"].run_to_end(  # fit's step loop
            run["state"],
            0,
            split.x_train,
            split.y_train,
            lambda i: batches[i % len(batches)][None],
            range(first, first + count),
            run["hparams"],
        )
        jax.block_until_ready(loss)
        run["state"] = state

    for run in runs.values():  # compile and warm up
        steps(run, 1)
    for chunk in range(a.chunks):
        for run in runs.values():
            start = time.perf_counter()
            steps(run, a.chunk_steps, 1 + chunk * a.chunk_steps)
            run["times"].append(a.chunk_steps / (time.perf_counter() - start))


def main(argv=None):
    p = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    if a.cpu_devices:
        try:
            jax.config.update("jax_num_cpu_devices", a.cpu_devices)  # before JAX starts
        except RuntimeError:  # JAX already started (a test, a notebook): use its devices
            if len(jax.devices()) < a.cpu_devices:
                p.error(f"--cpu-devices: JAX already runs with {len(jax.devices())} devices")
    shape = tuple(int(v) for v in a.shape.split(","))
    if a.data_dir:
        split = data.prepare(Config(dataset="mnist", data_dir=a.data_dir))
    else:
        split = random_split(shape)
    runs = _runs(a, split)
    _time(a, split, runs)

    first = next(iter(runs))
    base_name = "sgd" if "sgd" in runs else first if len(runs) > 1 else None
    base = np.median(runs[base_name]["times"]) if base_name else None
    rows = []
    print(
        f"\nNiN width {a.width}, batch {a.batch_size}, {jax.default_backend()}, "
        f"{a.chunks} interleaved chunks of {a.chunk_steps} steps "
        f"({'MNIST' if a.data_dir else f'random data of shape {shape}'})"
    )
    print(f"{'run':<16} {'steps/s':>8} {'vs ' + str(base_name):>14}")
    for name, run in runs.items():
        rate = float(np.median(run["times"]))
        ratio = rate / base if base else float("nan")
        rows.append({"optimizer": name, "steps_per_second": rate, f"ratio_to_{base_name}": ratio})
        print(f"{name:<16} {rate:8.1f} {ratio:13.3f}x")
    report.write_json(
        Path(a.out),
        a.name,
        {
            "command": "python -m benchmarks.train_speed " + " ".join(argv),
            "args": vars(a),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
