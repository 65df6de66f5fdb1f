"""Training throughput of NiN with INNA against SGD (and Adam), side by side in one run.

Builds the training pipeline's compiled train step for each optimizer on the same
model and batches, then alternates chunks of steps between them, so both see the
same machine state. Prints steps/s and the ratio to SGD.

    python -m benchmarks.train_speed                                    # MNIST-shaped random data
    python -m benchmarks.train_speed --data-dir ../shared/data/mnist    # real MNIST batches
"""

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

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
    a = p.parse_args(argv)

    if a.data_dir:
        config = Config(dataset="mnist", data_dir=a.data_dir, batch_size=a.batch_size)
        x, y = data.prepare(config)[:2]
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (4096, 28, 28, 1)).astype(np.uint8)
        y = rng.integers(0, 10, 4096).astype(np.int32)
        x = data.normalize(x, *data.channel_stats(x))

    runs = {}
    for name in a.optimizers.split(","):
        config = Config(dataset="mnist", optimizer=name, width=a.width, batch_size=a.batch_size)
        graphdef, params, stats, _ = loop.init_replicas(config, [0], 1, 10)
        build = loop.optimizer_for(config)
        hparams = {k: jax.numpy.asarray(v) for k, v in loop.hyperparameters(config, 1).items()}
        train_step, _ = loop.make_steps(graphdef, build)
        runs[name] = {
            "step": lambda c, x, y, i, f=train_step, h=hparams: f(*c, x, y, seeds, i, h),
            "carry": (params, stats, loop.init_state(build, params, hparams)),
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
            jax.block_until_ready(loss)
            run["times"].append(a.chunk_steps / (time.perf_counter() - start))
            run["carry"] = carry

    base = np.median(runs["sgd"]["times"]) if "sgd" in runs else None
    rows = []
    print(
        f"\nNiN width {a.width}, batch {a.batch_size}, {jax.default_backend()}, "
        f"{a.chunks} interleaved chunks of {a.chunk_steps} steps "
        f"({'MNIST' if a.data_dir else 'random MNIST-shaped data'})"
    )
    print(f"{'optimizer':<10} {'steps/s':>8} {'vs sgd':>7}")
    for name, run in runs.items():
        rate = float(np.median(run["times"]))
        ratio = rate / base if base else float("nan")
        rows.append({"optimizer": name, "steps_per_second": rate, "ratio_to_sgd": ratio})
        print(f"{name:<10} {rate:8.1f} {ratio:6.3f}x")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_speed.json").write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
