"""Why a fresh NiN sits on the uniform-prediction plateau: per-layer measurements.

For each setting (initialisation, optimizer, gamma_0), a fresh NiN with the paper's
settings (dropout 0.5, q = 1/2, psi_0 aligned with the gradient, batch 32) trains
for --steps steps. The script reports, for every convolution, the RMS of its
pre-activations and the fraction of dead ReLUs (in training mode, dropout on) at
initialisation and at the end, the gradient norm per layer at the first step, the
initial logits' scale, and the mean training loss over windows of steps.

    python -m benchmarks.plateau --data-dir ../shared/data/mnist
    python -m benchmarks.plateau --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg \\
        --settings lecun:sgd:1,he:sgd:0.1

Writes plateau_<dataset>_w<width>_<steps>.json into --out; prints a table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import options, report
from inna_optax.training.models import NiN
from inna_optax.training.trainer import epoch_order, setup

# init[+bn]:optimizer:gamma_0
DEFAULT_SETTINGS = (
    "he:sgd:0.1,he:sgd:0.01,he:inna:0.1,glorot:sgd:1,lecun:sgd:0.1,lecun:sgd:1,"
    "lecun:inna:0.1,lecun:inna:1,lecun:inna:3,lecun:adam:0.001,he:adam:0.001"
)


def probe(model: NiN, x, key):
    """Pre-activation RMS and dead-ReLU fraction per convolution, in training mode."""
    stats, features = _probe(model, x, key)
    return [(float(rms), float(dead)) for rms, dead in stats], features


@nnx.jit  # op by op, the probe compiles a small program for every operation
def _probe(model: NiN, x, key):
    stats = []
    for i, conv in enumerate(model.convs):
        x = conv(x)
        if model.norms and i < len(model.convs) - 1:
            x = model.norms[i](x, use_running_average=False)
        stats.append((jnp.sqrt(jnp.mean(x**2)), jnp.mean(x <= 0)))
        if i < len(model.convs) - 1:
            x = jax.nn.relu(x)
        if i in (2, 5):
            x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - model.dropout, x.shape)
            x = jnp.where(keep, x / (1.0 - model.dropout), 0.0)
    return stats, jnp.mean(x, axis=(1, 2))


def measure(config, data, steps: int, window: int) -> dict:
    """Trains one fresh NiN of `config` for `steps` steps, with per-layer probes."""
    one = dataclasses.replace(config, seeds=config.seeds[:1], replica_group=1)
    trainer = setup(one, data)
    state = trainer.init()[0]
    graphdef = trainer.graphdef

    def model_of(state):
        return nnx.merge(graphdef, *jax.tree.map(lambda x: x[0], (state.params, state.stats)))

    # a random probe batch: a loader may keep images sorted by class
    sample = np.random.default_rng(0).choice(len(data.x_train), 256, replace=False)
    probe_x = jnp.asarray(data.x_train[sample])
    before, logits = probe(model_of(state), probe_x, jax.random.key(1))
    y0 = jnp.asarray(data.y_train[sample])
    order = epoch_order(config.seeds[0], 1, len(data.x_train))
    bs = config.batch_size
    batches = [order[(i * bs) % (len(order) - bs) :][:bs] for i in range(steps)]

    def loss_fn(model, x, y):
        logits = model(x, train=True, key=jax.random.key(0))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    first = batches[0]
    grads = nnx.jit(nnx.grad(loss_fn))(model_of(state), data.x_train[first], data.y_train[first])
    convs = grads["convs"]
    first_grads = [float(jnp.linalg.norm(convs[j]["kernel"][...])) for j in range(len(convs))]
    losses = []
    run = trainer.run(  # the training command's step loop
        state, 0, data.x_train, data.y_train, lambda i: batches[i][None], range(steps)
    )
    for _, trained, loss in run:
        losses.append(float(loss[0]))
        state = trained
    after, _ = probe(model_of(state), probe_x, jax.random.key(1))
    windows = np.asarray(losses[: steps // window * window]).reshape(-1, window).mean(1)
    return {
        "init_logit_std": float(jnp.std(logits)),
        "init_loss": float(optax.softmax_cross_entropy_with_integer_labels(logits, y0).mean()),
        "preact_rms_init": [s[0] for s in before],
        "dead_init": [s[1] for s in before],
        "preact_rms_end": [s[0] for s in after],
        "dead_end": [s[1] for s in after],
        "grad_norm_first_step": first_grads,
        "loss_windows": windows.tolist(),
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_common_args(p)
    p.add_argument("--settings", default=DEFAULT_SETTINGS, help="init:optimizer:gamma_0,...")
    p.add_argument("--steps", dest="probe_steps", type=int, default=300, metavar="STEPS")
    p.add_argument("--window", type=int, default=50)
    args = p.parse_args(argv)
    args.argv = argv
    base = options.resolve_preset(
        args, train_examples=args.train_examples or 20_000, width=args.width or 0.5
    )
    data = options.load(base)
    rows = []
    for setting in args.settings.split(","):
        init, opt, lr = setting.split(":")
        kernels, norm = init.removesuffix("+bn"), init.endswith("+bn")
        config = dataclasses.replace(base, init=kernels, norm=norm, optimizer=opt, lr=float(lr))
        row = {"init": init, "optimizer": opt, "lr": float(lr)}
        rows.append({**row, **measure(config, data, args.probe_steps, args.window)})
        print(_line(rows[-1]), flush=True)
    result = {
        **report.result_header(args, "plateau", 0, data, base),
        "steps": args.probe_steps,
        "window": args.window,
        "rows": rows,
    }
    out = Path(args.out)
    name = f"plateau_{args.dataset}_w{base.width:g}_{args.probe_steps}"  # one per width and length
    report.write_json(out, name, result)
    print(table(result))
    return 0


def _line(row: dict) -> str:
    windows = " ".join(f"{v:.3f}" for v in row["loss_windows"])
    return (
        f"{row['init']:>6} {row['optimizer']:>5} {row['lr']:>6g} | {row['init_loss']:6.2f} "
        f"{row['init_logit_std']:6.3f} | "
        + " ".join(f"{v:.2f}" for v in row["preact_rms_init"][::2])
        + " | "
        + " ".join(f"{v:.2f}" for v in row["dead_end"][::2])
        + f" | {windows}"
    )


def table(result: dict) -> str:
    lines = [
        f"Plateau probe, {report.run_label(result)}, NiN width {result['config'].width}, "
        f"dropout {result['config'].dropout_rate:g}, q = 1/2, batch 32: {result['steps']} steps",
        "  init   opt gamma0 | loss0  logit | pre-act RMS at init, layers 1,3,5,7,9 "
        "| dead ReLUs at the end, same layers | mean loss per "
        f"{result['window']} steps",
    ]
    lines += [_line(row) for row in result["rows"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
