"""Where a NiN step's time goes on this machine: forward, forward + backward, and the
whole training step, with XLA's native convolution and with the matrix-product one
(`inna_optax.training.convolution`), interleaved in one process.

    python -m benchmarks.conv_speed                        # widths 0.5, 1; both shapes
    python -m benchmarks.conv_speed --widths 0.5 --shapes 28,28,1

Prints milliseconds per call (median of the blocks) and the ratio matmul / native.
"""

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from inna_optax.training.models import NiN

PARTS = ("forward", "forward+backward")


def _parts(conv: str, shape, width: float, batch: int):
    model = NiN(10, shape[-1], width, norm=True, conv=conv, rngs=nnx.Rngs(0))
    graphdef, params, stats = nnx.split(model, nnx.Param, ...)

    def loss(model, x, y, key):
        logits = model(x, train=True, key=key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def forward(params, stats, x, y, key):
        return loss(nnx.merge(graphdef, params, stats), x, y, key)

    @jax.jit
    def backward(params, stats, x, y, key):  # as the training step differentiates
        grad = nnx.grad(loss, argnums=nnx.DiffState(0, nnx.Param))
        return grad(nnx.merge(graphdef, params, stats), x, y, key)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, *shape)), jnp.float32)
    y = jnp.arange(batch) % 10
    key = jax.random.key(0)
    return {
        "forward": lambda: forward(params, stats, x, y, key),
        "forward+backward": lambda: backward(params, stats, x, y, key),
    }


def measure(shape, width: float, batch: int, rounds: int, block: int) -> dict:
    runs = {c: _parts(c, shape, width, batch) for c in ("native", "matmul")}
    for parts in runs.values():  # compile
        for fn in parts.values():
            jax.block_until_ready(fn())
    times = {(c, p): [] for c in runs for p in PARTS}
    for _ in range(rounds):
        for part in PARTS:
            for conv, parts in runs.items():
                start = time.perf_counter()
                for _ in range(block):
                    out = parts[part]()
                jax.block_until_ready(out)
                times[conv, part].append(1000 * (time.perf_counter() - start) / block)
    return {f"{c} {p}": float(np.median(t)) for (c, p), t in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="0.5,1")
    p.add_argument("--shapes", default="28,28,1;32,32,3")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--block", type=int, default=10)
    args = p.parse_args(argv)
    print(
        f"NiN with batch normalisation, batch {args.batch_size}, one {jax.default_backend()} "
        f"device, {args.rounds} interleaved blocks of {args.block} calls; ms per call"
    )
    print(f"{'shape':<9} {'width':>5} {'part':<17} {'native':>8} {'matmul':>8} {'ratio':>7}")
    for text in args.shapes.split(";"):
        shape = tuple(int(v) for v in text.split(","))
        for width in (float(w) for w in args.widths.split(",")):
            ms = measure(shape, width, args.batch_size, args.rounds, args.block)
            for part in PARTS:
                a, b = ms[f"native {part}"], ms[f"matmul {part}"]
                name = "x".join(map(str, shape))
                print(f"{name:<9} {width:>5g} {part:<17} {a:8.1f} {b:8.1f} {b / a:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
