"""Figure 3 of the paper: INNA against SGD, Adagrad and Adam on NiN.

The paper's grid search (`benchmarks.tuning`): for each optimizer, gamma_0 is
searched on the first seed by training loss after the search budget (the paper:
15 epochs) on a ladder kept interior, then every seed trains with the pick. INNA and SGD use
gamma_0 (k+1)^-q with the paper's q = 1/2, Adam and Adagrad a constant gamma_0.
INNA's (alpha, beta) come from --alpha and --beta, or from Figure 2's JSON with
--picks-from DIR.

    python -m benchmarks.fig3_comparison --data-dir ../shared/data/mnist \\
        --picks-from results/figures
    python -m benchmarks.fig3_comparison --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg
    python -m benchmarks.fig3_comparison --preset paper --dataset cifar10 --data-dir DIR  # a GPU

Writes fig3_comparison_<dataset>.json and .png into --out; prints a table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from benchmarks import options, report, tuning
from inna_optax.training import OPTIMIZERS

# INNA's (alpha, beta): Figure 2's best, through --alpha/--beta or --picks-from
PICKS = ("alpha", "beta")
# the long preset searches on its first epoch (1,250 steps, the quick preset's budget)
SEARCH_EPOCHS = {"smoke": 2, "quick": 10, "medium": 2, "long": 1, "paper": 15}
# Rungs below and above the default gamma_0 searched first, per preset.
RUNGS = {"smoke": (0, 0), "quick": (1, 1), "medium": (1, 1), "long": (1, 1), "paper": (2, 2)}
PAPER = ("inna", "sgd", "adagrad", "adam")  # the paper's four, the default --optimizers


def run(args) -> dict:
    base = options.resolve_preset(args)
    split = options.load(base)
    search_epochs = args.search_epochs or min(SEARCH_EPOCHS[args.preset], base.epochs)
    rows, seconds = [], 0.0
    for opt in args.optimizers:
        # INNA with --alpha, --beta; the others (INNAprop too) with their own defaults
        own = {} if opt == "inna" else {"alpha": None, "beta": None}
        config = dataclasses.replace(base, optimizer=opt, **own)
        row, spent = tuning.tuned_row(
            config, split, RUNGS[args.preset], search_epochs, f"fig3 {opt}", optimizer=opt
        )
        rows.append(row)
        seconds += spent
    return {
        **report.result_header(args, "fig3_comparison", 3, split, base),
        "search_epochs": search_epochs,
        "alpha": args.alpha,
        "beta": args.beta,
        "decay_power": base.decay_power,
        "psi_init": base.psi_init,
        "seconds": seconds,
        "rows": rows,
    }


def plot(result: dict, out: Path) -> Path:
    labels = [f"{r['optimizer']} (gamma_0={r['lr']:g})" for r in result["rows"]]
    title = f"Figure 3: INNA vs SGD, Adagrad, Adam, {report.figure_label(result)}"
    return tuning.plot(result, out, "fig3_comparison", title, labels)


def table(result: dict) -> str:
    n_seeds = len(result["rows"][0]["train_loss_per_seed"])
    title = (
        f"Figure 3, {report.run_label(result)}: gamma_0 by grid search on "
        f"the training loss after {result['search_epochs']} epochs, q = {result['decay_power']:g} "
        f"for INNA and SGD; final epoch, mean "
        f"[worst, best] over {n_seeds} seeds"
    )
    return tuning.table(result, title, "optimizer", ("optimizer", "gamma_0"))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_common_args(p)
    p.add_argument(
        "--optimizers",
        default=",".join(PAPER),
        help="comma-separated, from " + ",".join(OPTIMIZERS) + " (default: the paper's four)",
    )
    p.add_argument("--search-epochs", type=int, default=None, help="default: preset's")
    options.add_pick_args(p, PICKS)
    options.add_optimizer_args(p, "decay_power", "psi_init")
    args = p.parse_args(argv)
    args.argv = argv
    args.optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    if unknown := set(args.optimizers) - set(OPTIMIZERS):
        p.error(f"unknown optimizers {sorted(unknown)}; choose from {sorted(OPTIMIZERS)}")
    options.resolve_picks(args, PICKS)
    return report.finish(args, run(args), "fig3_comparison", plot, table)


if __name__ == "__main__":
    sys.exit(main())
