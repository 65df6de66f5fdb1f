"""INNAprop against AdamW on a small character-level GPT (Tiny Shakespeare), after
the INNAprop paper's GPT-2 runs at CPU scale.

Bolte, Boustany, Pauwels and Purica (2024, arXiv:2410.05871, section 3.3) train
GPT-2 from scratch with INNAprop at (alpha, beta) = (2, 2) (their configs' choice;
they also report (0.1, 0.9)) and AdamW (betas 0.9, 0.95), both with linear warm-up
then cosine decay to a tenth of the peak, weight decay 0.1 on the matrices only and
gradient clipping at 1. Here the model is a 4-layer, 4-head, 128-wide GPT with a
context of 128 characters (0.8M parameters), the text the first 90% of the file,
validation the last 10%. Every run goes through `inna_optax.training.fit` (the
`gpt` model on the `text` data set). Each candidate's peak learning rate is
searched on seed 0 by the final training loss on one interior ladder
(`benchmarks.tuning`: the rungs are replicas of one compiled program), then 3
seeds train with the pick; validation loss decides nothing.

The ``nanogpt-cpu`` preset is nanoGPT's CPU recipe for Tiny Shakespeare instead
(`inna_optax.training.PRESETS`: 4 layers of 128, context 64, batch 12, 2,000 steps,
warm-up 100 then cosine to a tenth, AdamW's betas (0.9, 0.99), INNAprop's sigma 0.99,
weight decay 0.1), under two protocols: ``--protocol same-lr``, the INNAprop paper's
(every arm at nanoGPT's 1e-3), and ``--protocol tuned`` with ``--pick-by
validation`` (each arm's rate picked on the same interior ladder by its final
validation loss). ``--steps`` lengthens a run (the cosine then ends at its last step).

    python -m benchmarks.gpt_shakespeare --data ../shared/data/tinyshakespeare/input.txt
    python -m benchmarks.gpt_shakespeare --data ../shared/data/tinyshakespeare/input.txt \
        --preset nanogpt-cpu --protocol same-lr --steps 10000

Writes gpt_shakespeare[_<preset>].json and .png into --out; prints a table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

import inna_optax
from benchmarks import report, tuning
from inna_optax.training import PRESETS as RUNS
from inna_optax.training import Config, DataError, prepare

VARIANTS = (
    ("INNAprop (2, 2)", {"optimizer": "innaprop", "alpha": 2.0, "beta": 2.0, "sigma": 0.99}),
    ("INNAprop (0.1, 0.9)", {"optimizer": "innaprop", "alpha": 0.1, "beta": 0.9, "sigma": 0.99}),
    ("AdamW", {"optimizer": "adamw", "b2": 0.95}),
)
# the paper's GPT-2 settings, as Config fields
BASE = dict(
    model="gpt",
    dataset="text",
    schedule="cosine",
    final_lr_ratio=0.1,
    weight_decay=0.1,
    decay_mask="matrices",
    clip=1.0,
    progress=False,
)
PRESETS = {
    "smoke": dict(
        layers=1,
        heads=2,
        embed_dim=16,
        context=16,
        batch_size=8,
        steps=6,
        warmup=2,
        log_every=2,
        eval_every=3,
        test_examples=8,
        seeds=(0, 1),
    ),
    # 47 min of training on 2 shared CPU cores (2026-12-05)
    "quick": dict(steps=400, warmup=40, eval_every=50, test_examples=256, seeds=(0, 1, 2)),
    # GPT-2 small's shape on a GPU (the paper trains it for 100k steps on OpenWebText)
    "paper": dict(
        layers=12,
        heads=12,
        embed_dim=768,
        context=256,
        batch_size=64,
        steps=5000,
        warmup=500,
        log_every=50,
        eval_every=250,
        test_examples=1280,
        seeds=(0, 1, 2),
    ),
}
PRESETS["nanogpt-cpu"] = {
    **{k: v for k, v in RUNS["nanogpt-cpu"].items() if k not in ("model", "dataset", "optimizer")},
    "seeds": (0, 1, 2),
}
# an arm's settings that differ in a preset: nanoGPT's AdamW beta_2
VARIANT_CHANGES = {("nanogpt-cpu", "AdamW"): {"b2": 0.99}}
RUNGS = {"smoke": (0, 0), "quick": (1, 1), "paper": (1, 1), "nanogpt-cpu": (1, 1)}


def run(args) -> dict:
    sizes = {**PRESETS[args.preset], **({"steps": args.steps} if args.steps else {})}
    config = Config(data_dir=args.data, **{**BASE, **sizes})
    try:
        split = prepare(config.validate(), strict=True)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    evaluations = config.steps // config.eval_every
    rungs = (0, 0) if args.protocol == "same-lr" else RUNGS[args.preset]
    by = "test_loss" if args.pick_by == "validation" else "train_loss"
    rows, seconds = [], 0.0
    for label, changes in VARIANTS:
        changes = {**changes, **VARIANT_CHANGES.get((args.preset, label), {})}
        cfg = dataclasses.replace(config, **changes)
        row, spent = tuning.tuned_row(cfg, split, rungs, evaluations, label, by)
        seconds += spent
        rows.append(
            {
                **row,
                "name": label,
                **changes,
                "valid_loss_per_seed": row["test_loss_per_seed"],
            }
        )
    return {
        "figure": "GPT",
        "dataset": Path(args.data).name,
        "preset": args.preset,
        "protocol": args.protocol,
        "pick_by": args.pick_by if args.protocol == "tuned" else None,
        "config": dataclasses.asdict(config),
        "seeds": config.seeds,
        "n_params": rows[0]["n_params"],
        "train_windows": len(split.x_train),
        "valid_windows": len(split.x_test),
        "window_end_step": rows[0]["window_end_step"],
        "eval_step": (np.arange(1, evaluations + 1) * config.eval_every).tolist(),
        "target_valid_loss": max(float(np.mean(r["valid_loss_per_seed"][:, -1])) for r in rows),
        "command": "python -m benchmarks.gpt_shakespeare " + " ".join(args.argv),
        "seconds": seconds,
        "rows": rows,
    }


def first_reach(row: dict, eval_steps, target: float):
    """The first evaluation step at which the seeds' mean validation loss is at or
    below `target` (None if never)."""
    mean = np.mean(row["valid_loss_per_seed"], 0)
    hits = np.flatnonzero(mean <= target + 1e-12)
    return int(eval_steps[hits[0]]) if len(hits) else None


def plot(result: dict, out: Path) -> Path:
    series = [
        (
            f"{row['name']}, lr {row['lr']:g}",
            row["train_loss_steps_per_seed"],
            row["valid_loss_per_seed"],
        )
        for row in result["rows"]
    ]
    fig, _, ax_v = report.language_panels(series, result["window_end_step"], result["eval_step"])
    ax_v.legend(fontsize=8)
    fig.suptitle(
        f"Character-level GPT ({result['n_params']:,} parameters) on {_dataset(result)}, "
        f"{result['preset']} preset, {result['config']['steps']:,} steps:\n"
        f"{_protocol(result)}; mean, best and worst of {len(result['seeds'])} seeds",
        fontsize=9,
    )
    return report.save_png(fig, out, _stem(result))


def _dataset(result: dict) -> str:
    """The text's name as people know it (Tiny Shakespeare's file is input.txt)."""
    name = result["dataset"]
    return "Tiny Shakespeare" if name == "input.txt" else name


def decay_rate(result: dict, row: dict) -> float:
    """The arm's effective weight-decay rate per unit of summed step sizes: AdamW's
    lambda, INNAprop's from its dynamics (`inna_optax.decay_rate`)."""
    lam = result["config"]["weight_decay"]
    if row["optimizer"] != "innaprop":
        return lam
    return inna_optax.decay_rate(lam, row["alpha"], row["beta"])


def _protocol(result: dict) -> str:
    if result.get("protocol") == "same-lr":
        return "every arm at peak learning rate 1e-3"
    by = "validation" if result.get("pick_by") == "validation" else "training"
    return f"peak learning rate by search on the final {by} loss"


def table(result: dict) -> str:
    target = result["target_valid_loss"]
    lines = [
        f"GPT on {_dataset(result)}, preset {result['preset']} ({result['n_params']:,} "
        f"parameters, {result['config']['steps']} steps): {_protocol(result)}; "
        f"validation loss at the end, mean [worst, best] over "
        f"{len(result['seeds'])} seeds; first step at mean validation loss <= {target:.4f}; "
        f"the effective weight-decay rate of the nominal {result['config']['weight_decay']:g}",
        f"{'':>19} {'lr':>7} | {'validation loss':>26} | {'reached at':>10} | {'decay':>6}",
    ]
    for row in result["rows"]:
        v = np.asarray(row["valid_loss_per_seed"])[:, -1]
        edge = " (grid edge)" if row["lr_at_grid_edge"] else ""
        grid = ", ".join(f"{g:g}" for g in row["grid"])
        reached = first_reach(row, np.asarray(result["eval_step"]), target)
        reached = "-" if reached is None else str(reached)
        stats = f"{v.mean():>8.4f} [{v.max():.4f}, {v.min():.4f}]"
        lines.append(
            f"{row['name']:>19} {row['lr']:>7g} | {stats} | {reached:>10} | "
            f"{decay_rate(result, row):6.4f}{edge}  (searched {grid})"
        )
    lines.append(f"{result['seconds']:.0f} s")
    return "\n".join(lines)


def _stem(result: dict) -> str:
    """gpt_shakespeare[_<preset>][_same-lr][_<steps>] (the quick preset's own name
    bare, as before): a run of one protocol and length never overwrites another's."""
    parts = ["gpt_shakespeare"]
    if result["preset"] != "quick":
        parts.append(result["preset"])
    if result.get("protocol", "tuned") != "tuned":
        parts.append(result["protocol"])
    if result["preset"] in PRESETS and result["config"]["steps"] != PRESETS[result["preset"]].get(
        "steps", result["config"]["steps"]
    ):
        parts.append(str(result["config"]["steps"]))
    return "_".join(parts)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, metavar="FILE", help="a UTF-8 text file")
    p.add_argument("--preset", default="quick", choices=list(PRESETS))
    p.add_argument(
        "--protocol",
        default="tuned",
        choices=("tuned", "same-lr"),
        help="tuned: each arm's peak rate searched on an interior ladder (default); "
        "same-lr: every arm at the registry's 1e-3 (the INNAprop paper's protocol)",
    )
    p.add_argument(
        "--pick-by",
        default="train",
        choices=("train", "validation"),
        help="with --protocol tuned: the final loss that picks the rate",
    )
    p.add_argument("--steps", type=int, help="the run's length (default: the preset's)")
    p.add_argument("--out", default="results/figures")
    args = p.parse_args(argv)
    args.argv = argv
    result = run(args)
    report.write_json(Path(args.out), _stem(result), result)
    plot(result, Path(args.out))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
