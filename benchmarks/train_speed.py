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
"""

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from inna_optax.training import Config, data, loop

seeds = np.zeros(1, np.uint32)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="MNIST IDX directory (default: random data)")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--chunk-steps", type=int, default=30)
    p.add_argument("--optimizers", default="sgd,inna,adam")
    p.add_argument("--out", default="results/train_speed")
    p.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="make N CPU devices and compare the batch on 1 and on N of them",
    )
    p.add_argument("--shape", default="28,28,1", help="random images' H,W,C (default MNIST's)")
    a = p.parse_args(argv)
    if a.cpu_devices:
        try:
            jax.config.update("jax_num_cpu_devices", a.cpu_devices)  # before JAX starts
        except RuntimeError:  # JAX already started (a test, a notebook): use its devices
            if len(jax.devices()) < a.cpu_devices:
                p.error(f"--cpu-devices: JAX already runs with {len(jax.devices())} devices")
    shape = tuple(int(v) for v in a.shape.split(","))

    if a.data_dir:
        config = Config(dataset="mnist", data_dir=a.data_dir, batch_size=a.batch_size)
        x, y = data.prepare(config)[:2]
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (4096, *shape)).astype(np.uint8)
        y = rng.integers(0, 10, 4096).astype(np.int32)
        x = data.normalize(x, *data.channel_stats(x))

    counts = [1, a.cpu_devices] if a.cpu_devices and a.cpu_devices > 1 else [None]
    runs = {}
    for name in a.optimizers.split(","):
        for n in counts:
            config = Config(dataset="mnist", optimizer=name, width=a.width, batch_size=a.batch_size)
            graphdef, params, stats, _ = loop.init_replicas(config, [0], x.shape[-1], 10)
            build = loop.optimizer_for(config)
            hparams = {k: jax.numpy.asarray(v) for k, v in loop.hyperparameters(config, 1).items()}
            carry = (params, stats, loop.init_state(build, params, hparams))
            place = lambda b: b  # noqa: E731 - one device: as the arrays come
            wait = False
            if n is None:
                train_step, _ = loop.make_steps(graphdef, build)
            else:  # the batch split over the first n devices, the rest replicated
                mesh = jax.make_mesh((n,), ("data",), devices=jax.devices()[:n])
                sh = loop.state_sharding(carry, mesh)
                carry = jax.device_put(carry, sh)
                train_step, _ = loop.make_steps(graphdef, build, sh, mesh)
                split = NamedSharding(mesh, PartitionSpec(None, "data"))
                place = lambda b, split=split: jax.device_put(b, split)  # noqa: E731
                wait = loop.waits_each_step(mesh)  # as fit does there
            runs[name if n is None else f"{name}@{n}cpu"] = {
                "step": lambda c, x, y, i, f=train_step, h=hparams, put=place: f(
                    *c, put(x), put(y), seeds, i, h
                ),
                "carry": carry,
                "wait": wait,
                "times": [],
            }

    order = np.random.default_rng(0).permutation(len(x))
    k = 0

    def batch():
        nonlocal k
        idx = order[(k * a.batch_size) % (len(x) - a.batch_size) :][: a.batch_size][None]
        k += 1
        return x[idx], y[idx]

    for run in runs.values():  # compile and warm up
        xb, yb = batch()
        *carry, loss = run["step"](run["carry"], xb, yb, 0)
        jax.block_until_ready(loss)
        run["carry"] = carry
    for _ in range(a.chunks):
        for run in runs.values():
            start = time.perf_counter()
            carry = run["carry"]
            for i in range(a.chunk_steps):
                xb, yb = batch()
                *carry, loss = run["step"](carry, xb, yb, i)
                if run["wait"]:
                    jax.block_until_ready(loss)
            jax.block_until_ready(loss)
            run["times"].append(a.chunk_steps / (time.perf_counter() - start))
            run["carry"] = carry

    first = next(iter(runs))
    base_name = "sgd" if "sgd" in runs else first if a.cpu_devices else None
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
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_speed.json").write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
