"""Where a NiN step's time goes on this machine: its forward pass and its forward and
backward passes, with XLA's native convolution and max pooling, the matrix-product
convolution and strided-slice pooling (`inna_optax.training.convolution`), mixes of
them and two other matrix forms of the k x k convolutions (`benchmarks.conv_forms`),
with and without batch normalisation and dropout, with batch normalisation's gradient
written by hand and the strided pooling without its fusion boundary
(`benchmarks.conv_forms`), and vmapped over a replica axis of one (as the training
step ran before `trainer.over_replicas`), interleaved in one process on one CPU device.

    python -m benchmarks.conv_speed                        # widths 0.5, 1; both shapes
    python -m benchmarks.conv_speed --widths 0.5 --shapes 28,28,1
    python -m benchmarks.conv_speed --variants "matmul;matmul, native pool"  # some rows

Prints milliseconds per call (median of the blocks) and the ratio to the native
convolution, and writes them to conv_speed.json in --out (the performance page's
table, ``<!-- table: conv conv_speed -->``).
"""

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import conv_forms
from inna_optax.training import convolution
from inna_optax.training.models import NiN

PARTS = ("forward", "forward+backward")
# name -> (k x k convolutions, 1 x 1 convolutions, max pooling, batch normalisation,
# dropout, vmapped over a replica axis of one); batch normalisation "hand":
# conv_forms.HandGradientBatchNorm; max pooling "unbounded": conv_forms.unbounded_max_pool
VARIANTS = {
    "native": ("native", "native", "native", True, 0.5, False),
    "matmul": ("matmul", "matmul", "matmul", True, 0.5, False),  # the CPU default
    "matmul, vmapped": ("matmul", "matmul", "matmul", True, 0.5, True),
    "matmul, native pool": ("matmul", "matmul", "native", True, 0.5, False),
    "matmul, pool no cond": ("matmul", "matmul", "unbounded", True, 0.5, False),
    "matmul 1x1 only": ("native", "matmul", "matmul", True, 0.5, False),
    "matmul kxk only": ("matmul", "native", "matmul", True, 0.5, False),
    "matmul, no batch norm": ("matmul", "matmul", "matmul", False, 0.5, False),
    "matmul, no dropout": ("matmul", "matmul", "matmul", True, 0.0, False),
    # other matrix forms of the k x k convolutions (benchmarks.conv_forms)
    "matmul, kxk by rows": ("by_rows", "matmul", "matmul", True, 0.5, False),
    "matmul, kxk hand grad": ("hand_gradient", "matmul", "matmul", True, 0.5, False),
    "matmul, norm hand grad": ("matmul", "matmul", "matmul", "hand", 0.5, False),
}


def _convolution(name: str):
    return conv_forms.FORMS[name] if name in conv_forms.FORMS else convolution.get(name)


def _parts(variant: str, shape, width: float, batch: int):
    kxk, one, pool, norm, dropout, vmapped = VARIANTS[variant]
    model = NiN(10, shape[-1], width, dropout, norm=bool(norm), rngs=nnx.Rngs(0))
    model.max_pool = conv_forms.POOLS.get(pool) or convolution.get_max_pool(pool)
    if norm == "hand":
        conv_forms.use_hand_gradient_norms(model)
    for conv in model.convs:
        conv.conv_general_dilated = _convolution(one if conv.kernel_size[0] == 1 else kxk)
    graphdef, params, stats = nnx.split(model, nnx.Param, ...)

    def loss(model, x, y, key):
        logits = model(x, train=True, key=key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def forward(params, stats, x, y, key):
        return loss(nnx.merge(graphdef, params, stats), x, y, key)

    def backward(params, stats, x, y, key):  # as the training step differentiates
        grad = nnx.grad(loss, argnums=nnx.DiffState(0, nnx.Param))
        return grad(nnx.merge(graphdef, params, stats), x, y, key)

    x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, *shape)), jnp.float32)
    y = jnp.arange(batch) % 10
    key = jax.random.key(0)
    if vmapped:  # as the training step ran a group of one replica before over_replicas
        forward, backward = (jax.vmap(f, in_axes=(0, 0, 0, 0, None)) for f in (forward, backward))
        params, stats, x, y = jax.tree.map(lambda a: a[None], (params, stats, x, y))
    forward, backward = jax.jit(forward), jax.jit(backward)
    return {
        "forward": lambda: forward(params, stats, x, y, key),
        "forward+backward": lambda: backward(params, stats, x, y, key),
    }


def measure(shape, width: float, batch: int, rounds: int, block: int, variants=VARIANTS) -> dict:
    runs = {v: _parts(v, shape, width, batch) for v in variants}
    for parts in runs.values():  # compile
        for fn in parts.values():
            jax.block_until_ready(fn())
    times = {(v, p): [] for v in runs for p in PARTS}
    for _ in range(rounds):
        for part in PARTS:
            for variant, parts in runs.items():
                start = time.perf_counter()
                for _ in range(block):
                    out = parts[part]()
                jax.block_until_ready(out)
                times[variant, part].append(1000 * (time.perf_counter() - start) / block)
    return {key: float(np.median(t)) for key, t in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="0.5,1")
    p.add_argument("--shapes", default="28,28,1;32,32,3")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--block", type=int, default=5)
    p.add_argument(
        "--variants", default=";".join(VARIANTS), help="';'-separated rows (default: all)"
    )
    p.add_argument("--out", default="results/conv_speed", help="where conv_speed.json goes")
    args = p.parse_args(argv)
    variants = ["native", *(v for v in args.variants.split(";") if v != "native")]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        p.error(f"--variants: unknown {sorted(unknown)}; one of {list(VARIANTS)}")
    print(
        f"NiN, batch {args.batch_size}, one {jax.default_backend()} device, {args.rounds} "
        f"interleaved blocks of {args.block} calls; ms per call, ratio to native"
    )
    print(f"{'shape':<9} {'width':>5} {'variant':<22} {'forward':>14} {'forward+backward':>18}")
    rows = []
    for text in args.shapes.split(";"):
        shape = tuple(int(v) for v in text.split(","))
        for width in (float(w) for w in args.widths.split(",")):
            ms = measure(shape, width, args.batch_size, args.rounds, args.block, variants)
            name = "x".join(map(str, shape))
            for variant in variants:
                cells = [
                    f"{ms[variant, part]:7.1f} {ms[variant, part] / ms['native', part]:5.2f}x"
                    for part in PARTS
                ]
                print(f"{name:<9} {width:>5g} {variant:<22} {cells[0]:>14} {cells[1]:>18}")
                rows.append(
                    {"shape": name, "width": width, "variant": variant}
                    | {f"{part}_ms": ms[variant, part] for part in PARTS}
                )
    from benchmarks.report import write_json  # the commit of the code that ran, too

    result = {
        "device": f"one {jax.default_backend()} device",
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "block": args.block,
        "argv": list(sys.argv[1:] if argv is None else argv),
        "rows": rows,
    }
    write_json(Path(args.out), "conv_speed", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
