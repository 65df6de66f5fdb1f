"""The NiN without and with batch normalisation: each optimizer at its default.

Each of INNA, SGD, Adagrad and Adam trains the plain NiN (``--no-norm``: He-normal
kernels without normalisation, the network the paper's description gives) at the
step size that was its default for it, and the batch-normalised NiN (the training
command's default) at today's default; every other flag is the training command's
(dropout 0.5, q = 1/2, psi_0 aligned with the gradient). It measures what
``benchmarks/plateau.py`` explains: the plain NiN stays on the uniform-prediction
plateau under SGD and INNA, the normalised one leaves it.

    python -m benchmarks.normalisation --data-dir ../shared/data/mnist
    python -m benchmarks.normalisation --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg \\
        --train-examples 10000 --epochs 2

Without flags: NiN width 0.5, 20,000 training images, one epoch, seed 0, the whole
test set. Writes normalisation_<dataset>.json and .png into --out; prints a table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from benchmarks import common, options, report
from benchmarks.tables import arm
from inna_optax.training import OPTIMIZERS

# the plain NiN's default step sizes before the batch normalisation became the default
PLAIN_LR = {"inna": 0.1, "sgd": 0.1, "adagrad": 0.01, "adam": 1e-3}


def run(args) -> dict:
    base = options.resolve_preset(
        args,
        width=args.width or 0.5,
        train_examples=args.train_examples or 20_000,
        epochs=args.epochs or 1,
        seeds=args.seeds or (0,),
    )
    base = dataclasses.replace(base, test_examples=args.test_examples)  # None: all
    split = options.load(base)
    rows, seconds = [], 0.0
    for name in PLAIN_LR:
        for norm in (False, True):
            lr = OPTIMIZERS[name].lr if norm else PLAIN_LR[name]
            config = dataclasses.replace(base, optimizer=name, lr=lr, norm=norm)
            res = common.train(config, split, desc=f"{name} {'norm' if norm else 'plain'}")
            seconds += res["seconds"]
            part = slice(0, len(base.seeds))
            rows.append(common.result_row(res, part, optimizer=name, norm=norm, lr=lr))
    return {
        **report.result_header(args, "normalisation", 0, split, base),
        "psi_init": base.psi_init,
        "decay_power": base.decay_power,
        "seconds": seconds,
        "rows": rows,
    }


def plot(result: dict, out: Path) -> Path:
    plt = report.pyplot()
    from matplotlib import ticker

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    colors = {"inna": "C0", "sgd": "C1", "adagrad": "C2", "adam": "C3"}
    for row in result["rows"]:
        label = f"{arm(row)}, {'batch norm' if row['norm'] else 'plain'}"
        style = "-" if row["norm"] else "--"
        steps = row["window_end_step"]
        for curve in row["train_loss_steps_per_seed"]:
            axes[0].plot(steps, curve, style, color=colors[row["optimizer"]], label=label)
            label = None
    axes[0].set_yscale("log")
    # 0.1, 0.2, 0.5, 1, 2 rather than powers of ten
    axes[0].yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[0].yaxis.set_major_formatter("{x:g}")
    axes[0].yaxis.set_minor_formatter(ticker.NullFormatter())
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("mini-batch training loss (window mean)")
    axes[0].legend(fontsize=7)
    names = [f"{arm(row)}\n{'norm' if row['norm'] else 'plain'}" for row in result["rows"]]
    accuracy = [100 * row["test_accuracy"]["mean"][-1] for row in result["rows"]]
    for i, (row, value) in enumerate(zip(result["rows"], accuracy, strict=True)):
        plain = not row["norm"]
        axes[1].bar(i, value, color=colors[row["optimizer"]], alpha=0.4 if plain else 1.0)
    axes[1].set_xticks(range(len(names)), names, fontsize=7)
    axes[1].set_ylabel("final test accuracy (%)")
    config = result["config"]
    width = config["width"] if isinstance(config, dict) else config.width
    seeds = len(result["rows"][0]["train_loss_per_seed"])
    fig.suptitle(
        f"The NiN without and with batch normalisation: {report.plain_name(result)}, "
        f"{result['train_examples']:,} images, width {width:g}, "
        f"{seeds} seed{'s' if seeds != 1 else ''}",
        fontsize=10,
    )
    return report.save_figure(fig, out, "normalisation", result)


def table(result: dict) -> str:
    lines = [
        f"Without and with batch normalisation, {report.plain_name(result)}, "
        f"{result['train_examples']:,} training images: "
        f"{len(result['rows'][0]['train_loss']['mean'])} epoch(s); per epoch, the mean "
        "training loss and the test accuracy",
        f"{'optimizer':>9} {'NiN':>6} {'gamma_0':>8} | training loss | test accuracy",
    ]
    for row in result["rows"]:
        losses = " -> ".join(f"{v:.3f}" for v in row["train_loss"]["mean"])
        accuracies = " -> ".join(f"{100 * v:.2f}%" for v in row["test_accuracy"]["mean"])
        nin = "norm" if row["norm"] else "plain"
        lines.append(f"{row['optimizer']:>9} {nin:>6} {row['lr']:>8g} | {losses} | {accuracies}")
    lines.append(f"{result['seconds']:.0f} s of training")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_common_args(p)
    args = p.parse_args(argv)
    args.argv = argv
    return report.finish(args, run(args), "normalisation", plot, table)


if __name__ == "__main__":
    sys.exit(main())
