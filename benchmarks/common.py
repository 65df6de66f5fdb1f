"""Shared machinery of the figure benchmarks (Figures 2 to 4 of the paper).

One call of :func:`train_replicas` trains R copies of NiN with one compiled,
vmapped train step (all replicas at once on an accelerator, in turn on a CPU):
replica r starts from the initialisation of its seed, sees its seed's data order
and dropout, and uses its own optimizer hyperparameters (a row of `hparams`,
traced, so a whole grid shares one compilation). Replicas with the same seed start from the
same weights and see the same batches, so the paper's comparisons ("initialized
with the same random weights") hold replica for replica.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import inna_optax
from inna_optax import data as data_lib
from inna_optax import plots
from inna_optax import train as train_lib

DATASETS = ["mnist", "cifar10", "cifar100", "folder", "digits"]

# q in gamma_0 (k+1)^-q for INNA and SGD in Figures 2 and 3. The paper uses 1/2. The
# quick presets (1,000 steps per run; 500 on CIFAR) use 1/4, the decay the paper's
# Figure 4 recommends: with 1/2 the steps shrink so fast that INNA and SGD barely leave
# NiN's initial plateau in time.
DECAY_POWER = {"smoke": 0.5, "quick": 0.25, "paper": 0.5}
DECAY_HELP = "q for INNA and SGD (default: 1/2 for the paper preset, 1/4 for quick)"


@dataclass(frozen=True)
class Preset:
    """A run size. None in train/test_examples: the whole split."""

    train_examples: int | None
    test_examples: int | None
    width: float
    dropout: float
    epochs: int
    seeds: tuple[int, ...]
    batch_size: int = 32


# The presets all figure scripts share.
PRESETS = {
    # seconds on tiny data: the test suite's smoke run
    "smoke": Preset(64, 32, 0.0625, 0.0, 2, (0, 1), batch_size=16),
    # a 2-core CPU, about 7 to 12 minutes per figure on MNIST (runs of 1,000 steps)
    "quick": Preset(3200, 1000, 0.125, 0.0, 10, (0, 1, 2)),
    # the paper: full data and NiN, batch 32, five seeds (meant for a GPU)
    "paper": Preset(None, None, 1.0, 0.5, 100, (0, 1, 2, 3, 4)),
}
# A CIFAR step (3 colour channels, 32x32 pixels) costs about twice an MNIST step on a
# 2-core CPU, so the quick preset trains on half as many images there (runs of 500
# steps) and each figure stays within about 15 minutes.
DATASET_PRESETS = {
    ("quick", "cifar10"): {"train_examples": 1600},
    ("quick", "cifar100"): {"train_examples": 1600},
}


@dataclass
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str


def load_split(dataset: str, data_dir: str | None, preset: Preset) -> Split:
    """Loads, subsets (a fixed random draw: `data.subset`) and normalises with the
    training statistics."""
    ds = data_lib.load(dataset, data_dir)
    x_tr, y_tr = data_lib.subset(ds.x_train, ds.y_train, preset.train_examples)
    x_te, y_te = data_lib.subset(ds.x_test, ds.y_test, preset.test_examples)
    if len(x_tr) < preset.batch_size:
        raise data_lib.DataError(f"{ds.name}: {len(x_tr)} training examples, less than a batch")
    mean, std = data_lib.channel_stats(x_tr)
    return Split(
        data_lib.normalize(x_tr, mean, std),
        y_tr,
        data_lib.normalize(x_te, mean, std),
        y_te,
        ds.num_classes,
        ds.name,
    )


def make_tx(optimizer: str, decay_power: float = 0.5, psi_init: str = "params") -> Callable:
    """A function of per-replica hyperparameters (lr, and alpha, beta, q for INNA)
    returning the transformation, as in the paper: INNA and SGD with
    gamma_0 (k+1)^-q, Adam and Adagrad with a constant gamma_0."""

    def build(lr, alpha=None, beta=None, q=None):
        q = decay_power if q is None else q
        if optimizer == "inna":
            schedule = inna_optax.inverse_power_decay(lr, q)
            return inna_optax.inna(schedule, alpha, beta, psi_init=psi_init)
        if optimizer == "sgd":
            return optax.sgd(inna_optax.inverse_power_decay(lr, q))
        if optimizer == "adam":
            return optax.adam(lr)
        if optimizer == "adagrad":
            return optax.adagrad(lr)
        raise ValueError(f"unknown optimizer {optimizer!r}")

    return build


def train_replicas(
    build: Callable,
    hparams: dict[str, np.ndarray],
    seeds: np.ndarray,
    split: Split,
    preset: Preset,
    epochs: int | None = None,
    desc: str = "",
    progress: bool = True,
    group: int | None = None,
) -> dict:
    """Trains len(seeds) replicas for `epochs` (default preset.epochs) epochs.

    `group` replicas at a time share one vmapped program (default: all of them
    on an accelerator, one at a time on CPU, where XLA's batched convolutions are
    slower than running the replicas in turn: 4.5 against 13.5 replica-steps/s
    for NiN at width 0.25 on MNIST, 2 cores). Every group reuses one compiled step.

    Returns per-replica, per-epoch arrays (R, epochs): `train_loss` (mean
    mini-batch loss over the epoch), `test_loss`, `test_accuracy`; and the wall
    time and replica-steps per second. A diverging replica records inf/nan and
    does not disturb the others.
    """
    epochs = preset.epochs if epochs is None else epochs
    seeds = np.asarray(seeds, np.uint32)
    r = len(seeds)
    if group is None:
        group = r if jax.default_backend() != "cpu" else 1
    hparams = {k: np.broadcast_to(np.asarray(v, np.float32), (r,)) for k, v in hparams.items()}
    cfg = train_lib.Config(width=preset.width, dropout=preset.dropout, seeds=tuple(seeds.tolist()))
    graphdef, all_params, n_params = train_lib.init_replicas(
        cfg, split.x_train.shape[-1], split.num_classes
    )
    train_step, eval_step = train_lib.make_steps(graphdef, build)
    n, bs = len(split.x_train), preset.batch_size
    steps = n // bs
    bar = _bar(progress, r * epochs * steps, desc)
    out = {k: np.zeros((r, epochs)) for k in ("train_loss", "test_loss", "test_accuracy")}
    start, timed = time.perf_counter(), 0.0
    for g0 in range(0, r, group):
        part = slice(g0, min(g0 + group, r))
        g_seeds = seeds[part]
        hp = {k: jnp.asarray(v[part]) for k, v in hparams.items()}
        params = jax.tree.map(lambda x, part=part: x[part], all_params)
        opt_state = jax.vmap(lambda p, h: build(**h).init(p))(params, hp)
        for epoch in range(1, epochs + 1):
            orders = np.stack([train_lib.epoch_order(int(s), epoch, n) for s in g_seeds])
            losses = []
            t0 = time.perf_counter()
            for i in range(steps):
                idx = orders[:, i * bs : (i + 1) * bs]
                step = (epoch - 1) * steps + i
                params, opt_state, loss = train_step(
                    params, opt_state, split.x_train[idx], split.y_train[idx], g_seeds, step, hp
                )
                losses.append(loss)
                if bar is not None and (i % 25 == 24 or i == steps - 1):
                    done = (g0 * epochs + (epoch - 1) * len(g_seeds)) * steps
                    bar.update(done + len(g_seeds) * (i + 1) - bar.n)
            epoch_losses = np.asarray(jnp.stack(losses))  # (steps, group)
            timed += time.perf_counter() - t0
            with np.errstate(invalid="ignore", over="ignore"):
                out["train_loss"][part, epoch - 1] = epoch_losses.mean(0)
            test_loss, test_acc = train_lib.evaluate(eval_step, params, split.x_test, split.y_test)
            out["test_loss"][part, epoch - 1] = test_loss
            out["test_accuracy"][part, epoch - 1] = test_acc
            if bar is not None:
                loss_now = np.nanmin(epoch_losses.mean(0))
                bar.set_postfix(replica=g0 + 1, epoch=epoch, loss=f"{loss_now:.3f}")
    if bar is not None:
        bar.close()
    out["seconds"] = time.perf_counter() - start
    out["replica_steps_per_second"] = r * epochs * steps / timed
    out["steps_per_epoch"] = steps
    out["n_params"] = n_params
    out["group"] = group
    return out


def _bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, mininterval=2.0)


def summarise(curves: np.ndarray) -> dict:
    """Mean, best and worst over replicas (axis 0), per epoch; non-finite runs kept."""
    with np.errstate(invalid="ignore"):
        return {
            "mean": np.mean(curves, 0).tolist(),
            "min": np.min(curves, 0).tolist(),
            "max": np.max(curves, 0).tolist(),
        }


def add_common_args(p: argparse.ArgumentParser, default_dataset="mnist"):
    p.add_argument(
        "--preset",
        default="quick",
        choices=list(PRESETS),
        help="quick: a 2-core CPU in about 15 minutes (default); paper: the paper's "
        "settings, for a GPU; smoke: seconds, for tests",
    )
    p.add_argument("--dataset", default=default_dataset, choices=DATASETS)
    p.add_argument(
        "--data-dir",
        default=None,
        help="the data set's files (MNIST IDX directory; CIFAR pickles, or an image "
        "folder/.zip with train/<class>/ and test/<class>/)",
    )
    p.add_argument("--out", default="results/figures")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument("--seeds", default=None, help="override the preset's seeds, e.g. 0,1,2")
    p.add_argument("--train-examples", type=int, default=None, help="override the preset's")
    p.add_argument("--test-examples", type=int, default=None, help="override the preset's")
    p.add_argument("--width", type=float, default=None, help="override the preset's NiN width")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def resolve_preset(args) -> Preset:
    """The preset named by --preset, sized for --dataset, with the command line's
    overrides."""
    preset = replace(PRESETS[args.preset], **DATASET_PRESETS.get((args.preset, args.dataset), {}))
    changes = {
        "epochs": args.epochs,
        "train_examples": args.train_examples,
        "test_examples": args.test_examples,
        "width": args.width,
        "seeds": tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None,
    }
    preset = replace(preset, **{k: v for k, v in changes.items() if v is not None})
    if preset.epochs < 1 or not preset.seeds or preset.width <= 0:
        raise SystemExit("error: --epochs must be >= 1, --seeds non-empty, --width > 0")
    return preset


# What an earlier figure picks for a later one: the default and the help of each flag.
PICKS = {
    "alpha": (0.5, "INNA's alpha (Figure 2's best)"),
    "beta": (0.1, "INNA's beta (Figure 2's best)"),
    "lr": (0.1, "INNA's gamma_0 (Figure 3's pick)"),
    "adam_lr": (1e-3, "Adam's gamma_0 (Figure 3's pick)"),
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


def _earlier_result(directory: str, name: str, dataset: str, preset: str) -> dict | None:
    path = Path(directory) / f"{name}_{dataset}.json"
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
            f"error: --picks-from {directory}: no fig2_sensitivity_{dataset}.json or "
            f"fig3_comparison_{dataset}.json there"
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
    if isinstance(x, Preset):
        return x.__dict__
    raise TypeError(type(x))


def save_figure(fig, out: Path, name: str, result: dict) -> Path:
    """Saves NAME_<dataset>.png into `out` and closes the figure."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}_{result['dataset_key']}.png"
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
    }


def final_loss(row: dict) -> float:
    """Mean final training loss of a row; inf for a diverged run, so it never wins."""
    loss = row["train_loss"]["mean"][-1]
    return loss if math.isfinite(loss) else math.inf


def result_header(args, name: str, figure: int, split: Split, preset: Preset) -> dict:
    """The fields every figure's JSON starts with."""
    return {
        "figure": figure,
        "dataset": split.name,
        "dataset_key": args.dataset,
        "preset": args.preset,
        "sizes": preset,
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
    """log10 training loss and test accuracy (%) per epoch, one band per row."""
    colors = colors or [None] * len(rows)
    for row, label, color in zip(rows, labels, colors, strict=True):
        curves = np.asarray(row["train_loss_per_seed"])
        plots.band(ax_loss, curves, label, log=True, color=color)
        plots.band(ax_acc, 100 * np.asarray(row["test_accuracy_per_seed"]), label, color=color)
    ax_loss.set_ylabel("log10 training loss")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.legend(fontsize=8)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(args, result: dict, name: str, plot: Callable, table: Callable) -> int:
    """Writes NAME_<dataset>.json and .png into --out, then prints the table last."""
    out = Path(args.out)
    write_json(out, f"{name}_{args.dataset}", result)
    plot(result, out)
    print(table(result))
    return 0
