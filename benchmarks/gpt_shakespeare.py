"""INNAprop against AdamW on a small character-level GPT (Tiny Shakespeare), after
the INNAprop paper's GPT-2 runs at CPU scale.

Bolte, Boustany, Pauwels and Purica (2024, arXiv:2410.05871, section 3.3) train
GPT-2 from scratch with INNAprop at (alpha, beta) = (2, 2) (their configs' choice;
they also report (0.1, 0.9)) and AdamW (betas 0.9, 0.95), both with linear warm-up
then cosine decay to a tenth of the peak, weight decay 0.1 on the matrices only and
gradient clipping at 1 (`inna_optax.training.language`). Here the model is a
4-layer, 4-head, 128-wide GPT with a context of 128 characters (0.8M parameters),
the text the first 90% of the file, validation the last 10%. Each candidate's peak
learning rate is searched on seed 0 by the final training loss on one interior
ladder (`benchmarks.tuning`), then 3 seeds train with the pick; validation loss
decides nothing.

    python -m benchmarks.gpt_shakespeare --data ../shared/data/tinyshakespeare/input.txt

Writes gpt_shakespeare[_<preset>].json and .png into --out; prints a table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from benchmarks import report, tuning
from inna_optax.paper import plots
from inna_optax.training import DataError
from inna_optax.training.language import LMConfig, load_text, train

VARIANTS = (
    ("INNAprop (2, 2)", {"optimizer": "innaprop", "alpha": 2.0, "beta": 2.0}),
    ("INNAprop (0.1, 0.9)", {"optimizer": "innaprop", "alpha": 0.1, "beta": 0.9}),
    ("AdamW", {"optimizer": "adamw"}),
)
PRESETS = {
    "smoke": dict(
        layers=1,
        heads=2,
        width=16,
        context=16,
        batch_size=4,
        steps=6,
        warmup=2,
        log_every=2,
        eval_every=3,
        eval_batches=1,
    ),
    # about 40 minutes on 2 CPU cores
    "quick": dict(steps=400, warmup=40, eval_every=50),
    # GPT-2 small's shape on a GPU (the paper trains it for 100k steps on OpenWebText)
    "paper": dict(
        layers=12,
        heads=12,
        width=768,
        context=256,
        batch_size=64,
        steps=5000,
        warmup=500,
        log_every=50,
        eval_every=250,
        eval_batches=20,
    ),
}
SEEDS = {"smoke": (0, 1), "quick": (0, 1, 2), "paper": (0, 1, 2)}
RUNGS = {"smoke": (0, 0), "quick": (1, 1), "paper": (1, 1)}
CENTER = 1e-3  # the ladder's middle for both optimizers (the registry's default)


def run(args) -> dict:
    config = LMConfig(**PRESETS[args.preset])
    try:
        text = load_text(args.data, config.context)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    seeds = SEEDS[args.preset]
    rows, seconds = [], 0.0
    for label, changes in VARIANTS:
        cfg = dataclasses.replace(config, **changes)
        runs = {}

        def run_rungs(lrs, cfg=cfg, runs=runs, label=label):
            for lr in lrs:
                runs[lr] = train(cfg, text, lr, seeds[0], progress=_progress(f"{label} lr {lr:g}"))
            return [runs[lr]["train_loss"][-1] for lr in lrs]

        grid, finals, pick = tuning.interior_search(CENTER, RUNGS[args.preset], run_rungs)
        lr = grid[pick]
        results = [runs[lr]] + [
            train(cfg, text, lr, s, progress=_progress(f"{label} seed {s}")) for s in seeds[1:]
        ]
        seconds += sum(r["seconds"] for r in runs.values()) + sum(r["seconds"] for r in results[1:])
        rows.append(
            {
                "name": label,
                **changes,
                "grid": grid,
                "search_train_loss": finals,
                "lr": lr,
                "lr_at_grid_edge": len(grid) > 1 and pick in (0, len(grid) - 1),
                "train_loss_per_seed": np.stack([r["train_loss"] for r in results]),
                "valid_loss_per_seed": np.stack([r["valid_loss"] for r in results]),
                "steps_per_second": float(np.mean([r["steps_per_second"] for r in results])),
            }
        )
    first = next(iter(runs.values()))
    return {
        "figure": "GPT",
        "dataset": text.name,
        "preset": args.preset,
        "config": dataclasses.asdict(config),
        "seeds": seeds,
        "n_params": first["n_params"],
        "train_characters": len(text.train),
        "valid_characters": len(text.valid),
        "window_end_step": first["window_end_step"],
        "eval_step": first["eval_step"],
        "target_valid_loss": max(float(np.mean(r["valid_loss_per_seed"][:, -1])) for r in rows),
        "command": "python -m benchmarks.gpt_shakespeare " + " ".join(args.argv),
        "seconds": seconds,
        "rows": rows,
    }


def _progress(desc: str, every: int = 100):
    def show(step, loss):
        if step % every == 0:
            print(f"{desc}: step {step}, loss {float(loss):.4f}", file=sys.stderr, flush=True)

    return show


def first_reach(row: dict, eval_steps, target: float):
    """The first evaluation step at which the seeds' mean validation loss is at or
    below `target` (None if never)."""
    mean = np.mean(row["valid_loss_per_seed"], 0)
    hits = np.flatnonzero(mean <= target + 1e-12)
    return int(eval_steps[hits[0]]) if len(hits) else None


def plot(result: dict, out: Path) -> Path:
    plt = report.pyplot()
    fig, (ax_t, ax_v) = plt.subplots(1, 2, figsize=(9, 3.4))
    for row in result["rows"]:
        label = f"{row['name']}, lr {row['lr']:g}"
        plots.band(ax_t, row["train_loss_per_seed"], label, x=result["window_end_step"])
        plots.band(ax_v, row["valid_loss_per_seed"], label, x=result["eval_step"])
    for ax, what in ((ax_t, "mini-batch training loss"), (ax_v, "validation loss")):
        ax.set_xlabel("step")
        ax.set_ylabel(what + " (nats/char)")
    ax_v.legend(fontsize=8)
    fig.suptitle(
        f"Character-level GPT ({result['n_params']:,} parameters) on {result['dataset']}, "
        f"{result['preset']} preset",
        fontsize=10,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{_stem(result['preset'])}.png"
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def table(result: dict) -> str:
    target = result["target_valid_loss"]
    lines = [
        f"GPT on {result['dataset']}, preset {result['preset']} ({result['n_params']:,} "
        f"parameters, {result['config']['steps']} steps): peak learning rate by search on the "
        f"final training loss; validation loss at the end, mean [worst, best] over "
        f"{len(result['seeds'])} seeds; first step at mean validation loss <= {target:.4f}",
        f"{'':>19} {'lr':>7} | {'validation loss':>26} | {'reached at':>10}",
    ]
    for row in result["rows"]:
        v = np.asarray(row["valid_loss_per_seed"])[:, -1]
        edge = " (grid edge)" if row["lr_at_grid_edge"] else ""
        grid = ", ".join(f"{g:g}" for g in row["grid"])
        reached = first_reach(row, np.asarray(result["eval_step"]), target)
        reached = "-" if reached is None else str(reached)
        stats = f"{v.mean():>8.4f} [{v.max():.4f}, {v.min():.4f}]"
        lines.append(
            f"{row['name']:>19} {row['lr']:>7g} | {stats} | {reached:>10}{edge}  (searched {grid})"
        )
    lines.append(f"{result['seconds']:.0f} s")
    return "\n".join(lines)


def _stem(preset: str) -> str:
    return "gpt_shakespeare" if preset == "quick" else f"gpt_shakespeare_{preset}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, metavar="FILE", help="a UTF-8 text file")
    p.add_argument("--preset", default="quick", choices=list(PRESETS))
    p.add_argument("--out", default="results/figures")
    args = p.parse_args(argv)
    args.argv = argv
    result = run(args)
    report.write_json(Path(args.out), _stem(args.preset), result)
    plot(result, Path(args.out))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
