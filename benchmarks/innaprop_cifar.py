"""INNAprop against AdamW on CIFAR-10, after the INNAprop paper's protocol.

Bolte, Boustany, Pauwels and Purica (2024, arXiv:2410.05871, section 3.1) train
CIFAR-10 with INNAprop at (alpha, beta) = (0.1, 0.9), their recommendation for
fast training, and AdamW, both with weight decay 0.01 and a cosine decay of the
learning rate to 0, each learning rate picked on a grid by training loss. Their
GPT-2 runs, the longest, use (alpha, beta) = (2, 2); it runs here as a third
candidate. Each candidate's gamma_0 is searched on one interior ladder
(`benchmarks.tuning`, the same ladder for all: every registry default here is
1e-3), then every seed trains with the pick.

The cosine decays at every step (`--schedule cosine`), the continuous form of the
authors' `CosineAnnealingLR` stepped once per epoch: over their 200 epochs the two
differ by under 0.8% of the peak rate at any step; over the quick preset's 8 epochs a
once-per-epoch staircase would hold each rate for an eighth of the run.

    python -m benchmarks.innaprop_cifar --data-dir ../shared/data/cifar10-jpeg
    python -m benchmarks.innaprop_cifar --preset paper --data-dir DIR  # a GPU

Writes innaprop_cifar_<dataset>[_<preset>].json and .png into --out; prints a
table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from benchmarks import options, report, tuning

# (label, optimizer, Config changes); weight decay is the registry's 0.01 for both
VARIANTS = (
    ("INNAprop (0.1, 0.9)", "innaprop", {"alpha": 0.1, "beta": 0.9}),
    ("INNAprop (2, 2)", "innaprop", {"alpha": 2.0, "beta": 2.0}),
    ("AdamW", "adamw", {}),
)
# Run sizes over `inna_optax.training.PRESETS`: the quick preset fits about half
# an hour on 2 CPU cores; the paper's is 200 epochs of batch 256 on all the data.
SIZES = {
    "smoke": dict(epochs=2, log_every=2),
    "quick": dict(train_examples=3200, test_examples=1000, epochs=8, log_every=10),
    "medium": dict(train_examples=10_000, test_examples=2000, epochs=4),
    "long": dict(train_examples=20_000, test_examples=2000, epochs=12),
    "paper": dict(epochs=200, batch_size=256, seeds=(0, 1, 2), log_every=50),
}
RUNGS = {"smoke": (0, 0), "quick": (1, 1), "medium": (1, 1), "long": (1, 1), "paper": (2, 2)}
NAME = "innaprop_cifar"


def run(args) -> dict:
    given = {k for k, v in vars(args).items() if v is not None}
    sizes = {k: v for k, v in SIZES[args.preset].items() if k not in given}
    base = options.resolve_preset(args, schedule="cosine", **sizes)
    split = options.load(base)
    rows, seconds = [], 0.0
    for label, opt, changes in VARIANTS:
        config = dataclasses.replace(base, optimizer=opt, **changes)
        row, spent = tuning.tuned_row(
            config,
            split,
            RUNGS[args.preset],
            base.epochs,
            label,
            name=label,
            optimizer=opt,
            alpha=config.value("alpha"),
            beta=config.value("beta"),
            weight_decay=config.value("weight_decay"),
        )
        rows.append(row)
        seconds += spent
    return {
        **report.result_header(args, NAME, "INNAprop vs AdamW", split, base),
        "search_epochs": base.epochs,
        "schedule": base.schedule,
        "seconds": seconds,
        "rows": rows,
    }


def plot(result: dict, out: Path) -> Path:
    labels = [f"{r['name']}, lr {r['lr']:g}" for r in result["rows"]]
    title = f"INNAprop vs AdamW, {report.figure_label(result)}, cosine decay"
    return tuning.plot(result, out, NAME, title, labels)


def table(result: dict) -> str:
    n_seeds = len(result["rows"][0]["train_loss_per_seed"])
    title = (
        f"INNAprop vs AdamW, {report.run_label(result)}: learning rate by search on the "
        f"training loss after {result['search_epochs']} epochs, cosine decay, weight decay "
        f"{result['rows'][0]['weight_decay']:g}; final epoch, mean [worst, best] over "
        f"{n_seeds} seeds"
    )
    return tuning.table(result, title, "name", ("", "lr"))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_common_args(p, default_dataset="cifar10")
    options.add_optimizer_args(p, "batch_size", "log_every")
    args = p.parse_args(argv)
    args.argv = argv
    return report.finish(args, run(args), NAME, plot, table)


if __name__ == "__main__":
    sys.exit(main())
