"""What the figure scripts write: JSON with the date and machine, pictures, and the
tables' pieces."""

import dataclasses
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from inna_optax.paper import plots
from inna_optax.training import Config, Split


def stem(name: str, dataset: str, preset: str) -> str:
    """A figure's file name without suffix: NAME_<dataset> for the quick preset,
    NAME_<dataset>_<preset> for the others, so that runs of two presets into one
    --out never overwrite each other."""
    return f"{name}_{dataset}" if preset == "quick" else f"{name}_{dataset}_{preset}"


def machine() -> str:
    devices = jax.devices()
    kind = devices[0].device_kind if devices else "?"
    cpu = platform.processor() or platform.machine()
    return f"{cpu} ({os.cpu_count()} cores), {len(devices)} x {kind}, jax {jax.__version__}"


def commit() -> str | None:
    """The commit of the code that ran (with "+changes" when the tree differs from
    it), or None outside a git checkout."""
    root = Path(__file__).resolve().parents[1]

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except OSError:
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+changes" if dirty else "")


# the code that runs is the code of the commit checked out when it started: a run of
# hours must not record the commit checked out when it ends
COMMIT_AT_START = commit()


def write_json(out: Path, name: str, payload: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    payload = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "commit": COMMIT_AT_START,
        **payload,
    }
    path.write_text(json.dumps(payload, indent=1, default=_jsonable))
    return path


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Config):
        return dataclasses.asdict(x)
    raise TypeError(type(x))


def save_figure(fig, out: Path, name: str, result: dict) -> Path:
    """Saves the figure as :func:`stem`.png into `out` and closes it."""
    return save_png(fig, out, stem(name, result["dataset_key"], result["preset"]))


# ------------------------------------------------------------ figure scripts' tails
STATS_HEADER = f"{'train loss':>28} | {'test accuracy %':>26}"


def result_header(args, name: str, figure: int, split: Split, config: Config) -> dict:
    """The fields every figure's JSON starts with."""
    return {
        "figure": figure,
        "dataset": split.name,
        "dataset_key": args.dataset,
        "preset": args.preset,
        "config": config,
        "train_examples": len(split.x_train),
        "test_examples": len(split.x_test),
        "command": f"python -m benchmarks.{name} " + " ".join(args.argv),
    }


PLAIN_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def plain_name(result: dict) -> str:
    """A result's data set as people know it: MNIST, CIFAR-10, scikit-learn's digits."""
    key = result.get("dataset_key", result["dataset"])
    return PLAIN_NAMES.get(key, "scikit-learn's digits" if key == "digits" else result["dataset"])


def figure_label(result: dict) -> str:
    """'<data set as people know it> (<preset> preset, <n> seeds)' for a figure's title."""
    name = plain_name(result)
    seeds = len(result["rows"][0]["train_loss_per_seed"])
    return f"{name} ({result['preset']} preset, {seeds} seed{'s' if seeds != 1 else ''})"


def run_label(result: dict) -> str:
    """'<dataset>, preset <name> (<n> training images)' for a table's first line."""
    return (
        f"{result['dataset']}, preset {result['preset']} "
        f"({result['train_examples']:,} training images)"
    )


def final_stats(row: dict) -> str:
    """Final-epoch training loss and test accuracy: mean [worst, best]."""
    tl, ta = row["train_loss"], row["test_accuracy"]
    return (
        f"{tl['mean'][-1]:>8.4f} [{tl['max'][-1]:.4f}, {tl['min'][-1]:.4f}] | "
        f"{100 * ta['mean'][-1]:>7.2f} [{100 * ta['min'][-1]:.2f}, {100 * ta['max'][-1]:.2f}]"
    )


def train_loss_band(ax, row: dict, label: str, color=None) -> None:
    """A row's log10 training loss against epochs, best to worst seed: per window of
    steps (fractional epochs) where the row has the per-step curve, else per epoch."""
    if "train_loss_steps_per_seed" in row:
        x = np.asarray(row["window_end_step"]) / row["steps_per_epoch"]
        curves = np.asarray(row["train_loss_steps_per_seed"])
        plots.band(ax, curves, label, log=True, color=color, x=x)
    else:
        plots.band(ax, np.asarray(row["train_loss_per_seed"]), label, log=True, color=color)


def loss_accuracy_panels(ax_loss, ax_acc, rows, labels, colors=None):
    """log10 training loss against epochs (:func:`train_loss_band`) and test
    accuracy (%) per epoch, one band per row."""
    colors = colors or [None] * len(rows)
    for row, label, color in zip(rows, labels, colors, strict=True):
        train_loss_band(ax_loss, row, label, color)
        plots.band(ax_acc, 100 * np.asarray(row["test_accuracy_per_seed"]), label, color=color)
    ax_loss.set_ylabel("log10 mini-batch training loss")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.legend(fontsize=8)


def language_panels(series, window_end_step, eval_step):
    """A language model's picture: the mini-batch training loss per window of steps
    and the validation loss per evaluation, in nats per character, one band for each
    (label, training curves, validation curves) of `series`. Returns the figure and
    its two axes (the caller adds the legend)."""
    fig, (ax_t, ax_v) = pyplot().subplots(1, 2, figsize=(9, 3.4))
    for label, train, valid in series:
        plots.band(ax_t, train, label, x=window_end_step)
        plots.band(ax_v, valid, label, x=eval_step)
    for ax, what in ((ax_t, "mini-batch training loss"), (ax_v, "validation loss")):
        ax.set_xlabel("step")
        ax.set_ylabel(what + " (nats/char)")
    return fig, ax_t, ax_v


def save_png(fig, out: Path, name: str) -> Path:
    """Saves `fig` as `name`.png into `out` and closes it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(args, result: dict, name: str, plot: Callable, table: Callable) -> int:
    """Writes :func:`stem`.json and .png into --out, then prints the table last."""
    out = Path(args.out)
    write_json(out, stem(name, args.dataset, args.preset), result)
    plot(result, out)
    print(table(result))
    return 0
