"""The figure scripts' command lines: presets, the flags over them, and what an earlier
figure picked for a later one (--picks-from)."""

import argparse
import dataclasses
import json
from pathlib import Path

from benchmarks.common import final_loss
from benchmarks.report import stem
from inna_optax.training import (
    OPTIMIZERS,
    PRESETS,
    Config,
    ConfigError,
    DataError,
    Split,
    devices,
    prepare,
    preset,
)
from inna_optax.training.config import DATASETS, flag
from inna_optax.training.flags import add_flags

# Config fields every figure script takes as flags, over its preset
PRESET_FIELDS = ("data_dir", "epochs", "seeds", "train_examples", "test_examples", "width")


def add_common_args(p: argparse.ArgumentParser, default_dataset="mnist"):
    p.add_argument(
        "--preset",
        default="quick",
        choices=[k for k, v in PRESETS.items() if "model" not in v],  # the NiN's
        help="quick: a 2-core CPU, 4 to 14 minutes per figure (default); medium: the "
        "full-width NiN on a CPU, about 1 h 45 min; long: ten times quick's steps per run, "
        "31 to 33 minutes on a CPU; paper: the paper's sizes, for a GPU; smoke: seconds",
    )
    images = [k for k, v in DATASETS.items() if v.kind == "images"]
    p.add_argument("--dataset", default=default_dataset, choices=images)
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


def add_pick_args(p: argparse.ArgumentParser, keys: tuple[str, ...]):
    """Flags for the `keys` of :data:`PICKS`, plus --picks-from. Their defaults are
    applied by :func:`resolve_picks`."""
    for key in keys:
        default, text = PICKS[key]
        p.add_argument(flag(key), type=float, default=None, help=f"{text} (default {default:g})")
    p.add_argument(
        "--picks-from",
        metavar="DIR",
        default=None,
        help="take what earlier figures picked for this --dataset and --preset from their "
        "JSON in DIR: Figure 2's best (alpha, beta), and Figure 3's gamma_0 for INNA and "
        "Adam (with the alpha and beta it ran); flags given explicitly win",
    )


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
                f"run the earlier figure with --out {args.picks_from} first, or pass {flag(key)}"
            )
        setattr(args, key, picks.get(key, PICKS[key][0]))
