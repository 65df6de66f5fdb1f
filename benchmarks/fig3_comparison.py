"""Figure 3 of the paper: INNA against SGD, Adagrad and Adam on NiN.

Step 1, the paper's grid search: for each optimizer, every gamma_0 of its grid
trains on the first seed for the search budget (the paper: 15 epochs), and the
gamma_0 with the lowest training loss at the end of the budget wins. Test data is
never used for choosing. Step 2: each optimizer trains on every seed with its
winning gamma_0 (a search run is reused when the budget equals the epochs). INNA
and SGD use gamma_0 (k+1)^-q (q = 1/2 in the paper preset, 1/4 in the quick one:
see `common.DECAY_POWER`), Adam and Adagrad a constant gamma_0.
INNA's (alpha, beta) come from --alpha and --beta, or from Figure 2's JSON
with --picks-from DIR.

    python -m benchmarks.fig3_comparison --data-dir ../shared/data/mnist \\
        --picks-from results/figures
    python -m benchmarks.fig3_comparison --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg
    python -m benchmarks.fig3_comparison --preset paper --dataset cifar10 --data-dir DIR  # a GPU

Writes fig3_comparison_<dataset>.json and .png into --out; prints a table last.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks import common

OPTIMIZERS = ("inna", "sgd", "adagrad", "adam")

# INNA's (alpha, beta): Figure 2's best, through --alpha/--beta or --picks-from
PICKS = ("alpha", "beta")
SEARCH_EPOCHS = {"smoke": 2, "quick": 10, "paper": 15}
GRIDS = {
    "smoke": {"inna": (0.03, 0.1), "sgd": (0.03, 0.1), "adagrad": (0.01,), "adam": (1e-3,)},
    "quick": {
        "inna": (0.03, 0.1, 0.3),
        "sgd": (0.03, 0.1, 0.3),
        "adagrad": (0.003, 0.01, 0.03),
        "adam": (3e-4, 1e-3, 3e-3),
    },
    "paper": {
        "inna": (0.01, 0.03, 0.1, 0.3, 1.0),
        "sgd": (0.01, 0.03, 0.1, 0.3, 1.0),
        "adagrad": (0.001, 0.003, 0.01, 0.03, 0.1),
        "adam": (1e-4, 3e-4, 1e-3, 3e-3),
    },
}


def run(args, preset: common.Preset) -> dict:
    split = common.load_split(args.dataset, args.data_dir, preset)
    search_epochs = args.search_epochs or min(SEARCH_EPOCHS[args.preset], preset.epochs)
    first = preset.seeds[0]
    rows, seconds = [], 0.0
    for opt in args.optimizers:
        build = common.make_tx(opt, args.decay_power, args.psi_init)
        extra = {"alpha": args.alpha, "beta": args.beta} if opt == "inna" else {}
        grid = np.asarray(GRIDS[args.preset][opt])
        search = common.train_replicas(
            build,
            {"lr": grid, **extra},
            np.full(len(grid), first),
            split,
            preset,
            epochs=search_epochs,
            desc=f"fig3 search {opt}",
            progress=args.progress,
        )
        seconds += search["seconds"]
        final_losses = search["train_loss"][:, -1]
        pick = int(np.argmin(np.where(np.isfinite(final_losses), final_losses, np.inf)))
        lr = float(grid[pick])
        reuse = search_epochs == preset.epochs
        seeds = [s for s in preset.seeds if not (reuse and s == first)]
        keys = ("train_loss", "test_loss", "test_accuracy")
        if reuse:
            curves = {k: search[k][pick : pick + 1] for k in keys}
        else:
            curves = {k: np.zeros((0, preset.epochs)) for k in keys}
        if seeds:
            res = common.train_replicas(
                build,
                {"lr": np.full(len(seeds), lr), **extra},
                np.asarray(seeds),
                split,
                preset,
                desc=f"fig3 {opt} seeds",
                progress=args.progress,
            )
            seconds += res["seconds"]
            curves = {k: np.concatenate([curves[k], res[k]]) for k in curves}
        rows.append(
            common.result_row(
                curves,
                slice(None),
                optimizer=opt,
                grid=grid.tolist(),
                search_train_loss=final_losses.tolist(),
                lr=lr,
                lr_at_grid_edge=len(grid) > 1 and pick in (0, len(grid) - 1),
            )
        )
    return {
        **common.result_header(args, "fig3_comparison", 3, split, preset),
        "search_epochs": search_epochs,
        "alpha": args.alpha,
        "beta": args.beta,
        "decay_power": args.decay_power,
        "psi_init": args.psi_init,
        "seconds": seconds,
        "rows": rows,
    }


def plot(result: dict, out: Path) -> Path:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    labels = [f"{r['optimizer']} (gamma_0={r['lr']:g})" for r in result["rows"]]
    common.loss_accuracy_panels(*axes, result["rows"], labels)
    fig.suptitle(
        f"Figure 3: INNA vs SGD, Adagrad, Adam, {result['dataset']} ({result['preset']} preset)",
        fontsize=10,
    )
    return common.save_figure(fig, out, "fig3_comparison", result)


def table(result: dict) -> str:
    n_seeds = len(result["rows"][0]["train_loss_per_seed"])
    lines = [
        f"Figure 3, {common.run_label(result)}: gamma_0 by grid search on "
        f"the training loss after {result['search_epochs']} epochs, q = {result['decay_power']:g} "
        f"for INNA and SGD; final epoch, mean "
        f"[worst, best] over {n_seeds} seeds",
        f"{'optimizer':>9} {'gamma_0':>8} | {common.STATS_HEADER}",
    ]
    for row in result["rows"]:
        edge = " (grid edge)" if row["lr_at_grid_edge"] else ""
        lines.append(f"{row['optimizer']:>9} {row['lr']:>8g} | {common.final_stats(row)}{edge}")
    order = sorted(result["rows"], key=common.final_loss)
    lines.append(
        "ranked by mean final training loss: "
        + " < ".join(r["optimizer"] for r in order)
        + f"; {result['seconds']:.0f} s"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p)
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    p.add_argument("--search-epochs", type=int, default=None, help="default: preset's")
    common.add_pick_args(p, PICKS)
    p.add_argument("--decay-power", type=float, default=None, help=common.DECAY_HELP)
    p.add_argument("--psi-init", default="params", choices=["params", "gradient"])
    args = p.parse_args(argv)
    args.argv = argv
    args.optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    if unknown := set(args.optimizers) - set(OPTIMIZERS):
        p.error(f"unknown optimizers {sorted(unknown)}; choose from {OPTIMIZERS}")
    args.decay_power = args.decay_power or common.DECAY_POWER[args.preset]
    common.resolve_picks(args, PICKS)
    result = run(args, common.resolve_preset(args))
    return common.finish(args, result, "fig3_comparison", plot, table)


if __name__ == "__main__":
    sys.exit(main())
