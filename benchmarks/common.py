"""Shared machinery of the figure benchmarks (Figures 2 to 4 of the paper): presets,
picks, tables, JSON and pictures. Training goes through the one loop,
`inna_optax.training.fit`: a figure's curves are replicas of one `fit` call, each
with its seed (the paper's "initialized with the same random weights": replicas
with the same seed start from the same weights and see the same batches) and its
own optimizer hyperparameters (traced, so a whole grid shares one compilation).
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from inna_optax.paper import plots
from inna_optax.training import (
    OPTIMIZERS,
    PRESETS,
    Config,
    ConfigError,
    DataError,
    Split,
    devices,
    fit,
    prepare,
    preset,
)
from inna_optax.training.config import DATASETS, add_flags


def train(config: Config, data: Split, sweep: dict | None = None, desc: str = "") -> dict:
    """Per-replica, per-epoch curves (R, epochs) of `fit(config, data, sweep)`, a
    diverged replica recorded as inf/NaN, plus the wall time and throughput."""
    history = fit(config, data, sweep=sweep, allow_divergence=True, desc=desc)
    return {
        "train_loss": history.train_loss,
        "test_loss": history.test_loss,
        "test_accuracy": history.test_accuracy,
        "train_loss_steps": history.train_loss_steps,
        "window_end_step": history.window_end_step,
        "steps_per_epoch": history.steps_per_epoch,
        "seconds": history.seconds,
        "replica_steps_per_second": history.replica_steps_per_second,
        "n_params": history.n_params,
    }


def summarise(curves: np.ndarray) -> dict:
    """Mean, best and worst over replicas (axis 0), per epoch; non-finite runs kept."""
    with np.errstate(invalid="ignore"):
        return {
            "mean": np.mean(curves, 0).tolist(),
            "min": np.min(curves, 0).tolist(),
            "max": np.max(curves, 0).tolist(),
        }


# Config fields every figure script takes as flags, over its preset
PRESET_FIELDS = ("data_dir", "epochs", "seeds", "train_examples", "test_examples", "width")


def add_common_args(p: argparse.ArgumentParser, default_dataset="mnist"):
    p.add_argument(
        "--preset",
        default="quick",
        choices=list(PRESETS),
        help="quick: a 2-core CPU, within about 20 minutes (default); medium: the full-width "
        "NiN on a CPU in an hour or two; long: ten times quick's steps per run, about two "
        "hours on a CPU; paper: the paper's sizes, for a GPU; smoke: seconds",
    )
    p.add_argument("--dataset", default=default_dataset, choices=DATASETS)
    p.add_argument("--out", default="results/figures")
    add_flags(p, PRESET_FIELDS, default_none=True)
    p.add_argument("--no-progress", dest="progress", action="store_false")


def add_optimizer_args(p: argparse.ArgumentParser, *names: str):
    """Flags for the Config fields `names` (unset: the preset's or the Config's default)."""
    add_flags(p, names, default_none=True)


def resolve_preset(args, **changes) -> Config:
    """The Config of --preset for --dataset, with the flags given on the command line
    and `changes` (None values ignored); a bad value exits with one line naming the flag.
    On a CPU, makes one device per core as the training command line does (before JAX
    starts; JAX_NUM_CPU_DEVICES wins where set)."""
    fields = {f.name for f in dataclasses.fields(Config)} - {"dataset"}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    try:
        config = preset(args.preset, args.dataset, **{**given, **changes}).validate(sweep=True)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    devices.set_cpu_devices(config)
    return config


def load(config: Config) -> Split:
    try:
        return prepare(config)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None


# What an earlier figure picks for a later one: the default and the help of each flag.
PICKS = {
    "alpha": (OPTIMIZERS["inna"].defaults["alpha"], "INNA's alpha (Figure 2's best)"),
    "beta": (OPTIMIZERS["inna"].defaults["beta"], "INNA's beta (Figure 2's best)"),
    "lr": (OPTIMIZERS["inna"].lr, "INNA's gamma_0 (Figure 3's pick)"),
    "adam_lr": (OPTIMIZERS["adam"].lr, "Adam's gamma_0 (Figure 3's pick)"),
}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def add_pick_args(p: argparse.ArgumentParser, keys: tuple[str, ...]):
    """Flags for the `keys` of :data:`PICKS`, plus --picks-from. Their defaults are
    applied by :func:`resolve_picks`."""
    for key in keys:
        default, text = PICKS[key]
        p.add_argument(_flag(key), type=float, default=None, help=f"{text} (default {default:g})")
    p.add_argument(
        "--picks-from",
        metavar="DIR",
        default=None,
        help="take what earlier figures picked for this --dataset and --preset from their "
        "JSON in DIR: Figure 2's best (alpha, beta), and Figure 3's gamma_0 for INNA and "
        "Adam (with the alpha and beta it ran); flags given explicitly win",
    )


def stem(name: str, dataset: str, preset: str) -> str:
    """A figure's file name without suffix: NAME_<dataset> for the quick preset,
    NAME_<dataset>_<preset> for the others, so that runs of two presets into one
    --out never overwrite each other."""
    return f"{name}_{dataset}" if preset == "quick" else f"{name}_{dataset}_{preset}"


def _earlier_result(directory: str, name: str, dataset: str, preset: str) -> dict | None:
    path = Path(directory) / f"{stem(name, dataset, preset)}.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    if result["preset"] != preset:
        raise SystemExit(f"error: {path} was made with --preset {result['preset']}, not {preset}")
    return result


def earlier_picks(directory: str, dataset: str, preset: str) -> dict[str, float]:
    """What Figures 2 and 3 picked, read from their JSON in `directory`:
    alpha and beta (Figure 2's lowest mean final training loss, or the ones Figure 3
    ran), lr (Figure 3's INNA gamma_0) and adam_lr (Figure 3's Adam gamma_0)."""
    fig2 = _earlier_result(directory, "fig2_sensitivity", dataset, preset)
    fig3 = _earlier_result(directory, "fig3_comparison", dataset, preset)
    if fig2 is None and fig3 is None:
        raise SystemExit(
            f"error: --picks-from {directory}: no "
            f"{stem('fig2_sensitivity', dataset, preset)}.json or "
            f"{stem('fig3_comparison', dataset, preset)}.json there"
        )
    picks = {}
    if fig2 is not None:
        best = min(fig2["rows"], key=final_loss)
        picks.update(alpha=best["alpha"], beta=best["beta"])
    if fig3 is not None:
        lrs = {row["optimizer"]: row["lr"] for row in fig3["rows"]}
        picks.update(alpha=fig3["alpha"], beta=fig3["beta"])
        picks.update({k: lrs[o] for k, o in (("lr", "inna"), ("adam_lr", "adam")) if o in lrs})
    return picks


def resolve_picks(args, keys: tuple[str, ...]) -> None:
    """Fills each of `keys` left unset on the command line: from --picks-from when
    given (an error if the earlier figure is missing), else the default in PICKS."""
    picks = earlier_picks(args.picks_from, args.dataset, args.preset) if args.picks_from else {}
    for key in keys:
        if getattr(args, key) is not None:
            continue
        if args.picks_from and key not in picks:
            raise SystemExit(
                f"error: --picks-from {args.picks_from} has no {key} for {args.dataset}: "
                f"run the earlier figure with --out {args.picks_from} first, or pass {_flag(key)}"
            )
        setattr(args, key, picks.get(key, PICKS[key][0]))


def machine() -> str:
    devices = jax.devices()
    kind = devices[0].device_kind if devices else "?"
    cpu = platform.processor() or platform.machine()
    return f"{cpu} ({os.cpu_count()} cores), {len(devices)} x {kind}, jax {jax.__version__}"


def write_json(out: Path, name: str, payload: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    payload = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
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
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem(name, result['dataset_key'], result['preset'])}.png"
    fig.savefig(path, dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return path


# ------------------------------------------------------------ figure scripts' tails
STATS_HEADER = f"{'train loss':>28} | {'test accuracy %':>26}"


def result_row(res: dict, part: slice, **fields) -> dict:
    """One curve family of a figure: `fields`, then summaries and per-seed curves."""
    return {
        **fields,
        "train_loss": summarise(res["train_loss"][part]),
        "test_accuracy": summarise(res["test_accuracy"][part]),
        "test_loss": summarise(res["test_loss"][part]),
        "train_loss_per_seed": res["train_loss"][part],
        "test_accuracy_per_seed": res["test_accuracy"][part],
        "train_loss_steps_per_seed": res["train_loss_steps"][part],
        "window_end_step": res["window_end_step"],
        "steps_per_epoch": res["steps_per_epoch"],
    }


def final_loss(row: dict) -> float:
    """Mean final training loss of a row; inf for a diverged run, so it never wins."""
    loss = row["train_loss"]["mean"][-1]
    return loss if math.isfinite(loss) else math.inf


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


def loss_accuracy_panels(ax_loss, ax_acc, rows, labels, colors=None):
    """log10 training loss against epochs (fractional: one point per window of
    steps where the row has the per-step curve) and test accuracy (%) per epoch, one
    band per row."""
    colors = colors or [None] * len(rows)
    for row, label, color in zip(rows, labels, colors, strict=True):
        if "train_loss_steps_per_seed" in row:
            x = np.asarray(row["window_end_step"]) / row["steps_per_epoch"]
            curves = np.asarray(row["train_loss_steps_per_seed"])
            plots.band(ax_loss, curves, label, log=True, color=color, x=x)
        else:
            plots.band(
                ax_loss, np.asarray(row["train_loss_per_seed"]), label, log=True, color=color
            )
        plots.band(ax_acc, 100 * np.asarray(row["test_accuracy_per_seed"]), label, color=color)
    ax_loss.set_ylabel("log10 mini-batch training loss")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.legend(fontsize=8)


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
