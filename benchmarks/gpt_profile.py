"""Where the character-level GPT's training step spends its time on this machine.

The training command's step (`Trainer.run`, the batch gathered on the host at every
step) against its parts, each compiled on its own and timed on a batch already on
the device, interleaved in one process and all on one CPU device (the command line
makes one per core and splits the batch over them): the forward pass, the forward
and backward passes, the optimizer's update (AdamW or INNAprop, clipping and weight
decay included) on fixed gradients, and the forward and backward passes again with
one piece of the blocks made trivial, which says what that piece costs: attention's
scores, causal softmax and weighted sum (each position gets its own value instead),
layer norm (the identity), GELU (the identity). What the parts do not account for
is the host loop (the batch's gather and transfer, dispatch).

    python -m benchmarks.gpt_profile                  # nanoGPT's CPU recipe's shape
    python -m benchmarks.gpt_profile --shape default  # its train_shakespeare_char config

Prints milliseconds per call (median of the rounds) and each part's share of the
step; writes gpt_profile_<shape>.json into --out.
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

from benchmarks import report
from benchmarks.gpt_peer_speed import SHAPES, VOCAB, _windows
from inna_optax.training import Config, Split, devices, models, optimizers, trainer


def _config(shape: str, optimizer: str) -> Config:
    return Config(
        model="gpt", dataset="text", data_dir="-", optimizer=optimizer, lr=1e-3,
        schedule="cosine", warmup=100, final_lr_ratio=0.1, weight_decay=0.1, clip=1.0,
        steps=10_000, eval_every=10_000, bias=False, tie_embeddings=True, cpu_devices=1, devices=1,
        **SHAPES[shape],
    )  # fmt: skip


PIECES = ("attention", "layer norm", "GELU")


def _without(piece: str):
    """A context in which the GPT's `piece` is made trivial (its cost is what the
    forward and backward passes lose)."""
    import contextlib

    @contextlib.contextmanager
    def patched():
        saved = {}
        if piece == "attention":
            saved["attention"] = jax.nn.dot_product_attention
            jax.nn.dot_product_attention = lambda q, k, v, **_: v  # each position its own value
        elif piece == "layer norm":
            saved["norm"] = nnx.LayerNorm.__call__
            nnx.LayerNorm.__call__ = lambda self, x, *a, **k: x
        elif piece == "GELU":
            saved["gelu"] = jax.nn.gelu
            jax.nn.gelu = lambda x, *a, **k: x
        try:
            yield
        finally:
            if "attention" in saved:
                jax.nn.dot_product_attention = saved["attention"]
            if "norm" in saved:
                nnx.LayerNorm.__call__ = saved["norm"]
            if "gelu" in saved:
                jax.nn.gelu = saved["gelu"]

    return patched()


def parts(shape: str, optimizer: str) -> dict:
    """name -> a no-argument callable that runs the part once and waits for it."""
    config = _config(shape, optimizer)
    devices.set_cpu_devices(config)  # one device: the step and its parts alike
    x, y = _windows(config.context)
    split = Split(x, y, x[:1], y[:1], VOCAB, "random")
    t = trainer.setup(config, split)
    rng, bs = np.random.default_rng(1), config.batch_size
    state = {"s": t.init()[0], "k": 0}
    hp = t.group_hparams(0)

    def step():
        k = state["k"]
        s, loss = t.run_to_end(
            state["s"], 0, x, y, lambda i: rng.integers(0, len(x), bs)[None], range(k, k + 1), hp
        )
        jax.block_until_ready(loss)
        state["s"], state["k"] = s, k + 1

    model = models.MODELS["gpt"].build(config, split, nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    xb = jnp.asarray(x[:bs])
    yb = jnp.asarray(y[:bs])

    def loss(params):
        logits = nnx.merge(graphdef, params, rest)(xb, train=True, key=jax.random.key(0))
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    out = {"step (the command's)": step}
    forward = jax.jit(loss)
    out["forward"] = lambda: jax.block_until_ready(forward(params))
    grad = jax.jit(jax.value_and_grad(loss))
    out["forward+backward"] = lambda: jax.block_until_ready(grad(params))
    for piece in PIECES:
        with _without(piece):
            fn = jax.jit(jax.value_and_grad(loss)).lower(params).compile()
        out[f"forward+backward, no {piece}"] = lambda fn=fn: jax.block_until_ready(fn(params))
    tx = optimizers.make(
        optimizer, 1e-3, schedule="cosine", total_steps=10_000, warmup=100,
        final_lr_ratio=0.1, clip=1.0, decay_mask="matrices", weight_decay=0.1,
    )  # fmt: skip
    opt_state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)

    @jax.jit
    def update(params, opt_state):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    out["optimizer"] = lambda: jax.block_until_ready(update(params, opt_state))
    return out


def measure(runs: dict, rounds: int, block: int) -> dict[str, float]:
    for fn in runs.values():  # compile and warm up
        fn()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            for _ in range(block):
                fn()
            times[name].append(1000 * (time.perf_counter() - start) / block)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="cpu", choices=list(SHAPES))
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "innaprop"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--block", type=int, default=20)
    p.add_argument("--out", default="results/gpt_profile")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    ms = measure(parts(a.shape, a.optimizer), a.rounds, a.block)
    step = ms["step (the command's)"]
    fwbw = ms["forward+backward"]
    print(
        f"\nGPT {a.shape} shape {SHAPES[a.shape]}, {a.optimizer}, {jax.default_backend()}, "
        f"median of {a.rounds} rounds of {a.block} calls"
    )
    print(f"{'part':<42} {'ms':>8} {'share of the step':>18}")
    for name, t in ms.items():
        print(f"{name:<42} {t:8.2f} {t / step:17.0%}")
    for piece in PIECES:
        cost = fwbw - ms[f"forward+backward, no {piece}"]
        print(f"{'  ' + piece + ' (what removing it saves)':<42} {cost:8.2f} {cost / step:17.0%}")
    host = step - fwbw - ms["optimizer"]
    print(f"{'  the host loop (step - parts)':<42} {host:8.2f} {host / step:17.0%}")
    report.write_json(
        Path(a.out),
        f"gpt_profile_{a.shape}",
        {"command": "python -m benchmarks.gpt_profile " + " ".join(argv),
         "shape_name": a.shape, "shape": SHAPES[a.shape], "optimizer": a.optimizer,
         "rounds": a.rounds, "block": a.block, "backend": jax.default_backend(), "ms": ms},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
