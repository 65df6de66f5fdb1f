"""Figure 4 of the paper: INNA with slower step-size decays, and the best one against Adam.

INNA runs with gamma_k = gamma_0 (k+1)^-q for q in {1/2, 1/4, 1/8, 1/16} on every
seed (first panel: training loss); the q with the lowest mean training loss at
the end is then set against Adam (the other panels: training loss and test
accuracy). gamma_0 is fixed by --lr (INNA) and --adam-lr, and INNA's (alpha, beta)
by --alpha and --beta; --picks-from DIR takes all four from what Figures 2 and 3
wrote into DIR for the same data set and preset.

    python -m benchmarks.fig4_decay --data-dir ../shared/data/mnist --picks-from results/figures
    python -m benchmarks.fig4_decay --preset paper --dataset cifar10 --data-dir DIR  # a GPU

Writes fig4_decay_<dataset>.json and .png into --out; prints a table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from benchmarks import common, options, report

POWERS = (1 / 2, 1 / 4, 1 / 8, 1 / 16)
# Figure 2's (alpha, beta) and Figure 3's gamma_0, through flags or --picks-from
PICKS = ("alpha", "beta", "lr", "adam_lr")


def _label(q: float) -> str:
    return f"k^-1/{round(1 / q)}"


def run(args) -> dict:
    base = options.resolve_preset(args, optimizer="inna")  # with --alpha, --beta, --lr
    k = len(base.seeds)
    inna_config = dataclasses.replace(base, seeds=base.seeds * len(POWERS))  # q-major
    split = options.load(base)
    inna = common.train(
        inna_config, split, {"decay_power": np.repeat(POWERS, k)}, desc="fig4 INNA x4 q"
    )
    adam = common.train(
        dataclasses.replace(base, optimizer="adam", lr=args.adam_lr), split, desc="fig4 Adam"
    )
    rows = []
    for i, q in enumerate(POWERS):
        part = slice(i * k, (i + 1) * k)
        rows.append(_row(f"INNA {_label(q)}", q, args.lr, inna, part))
    best = min(rows, key=common.final_loss)
    rows.append(_row("Adam", None, args.adam_lr, adam, slice(0, k)))
    return {
        **report.result_header(args, "fig4_decay", 4, split, inna_config),
        "alpha": args.alpha,
        "beta": args.beta,
        "psi_init": inna_config.psi_init,
        "best_q": best["q"],
        "seconds": inna["seconds"] + adam["seconds"],
        "rows": rows,
    }


def _row(name, q, lr, res, part) -> dict:
    return common.result_row(res, part, name=name, q=q, lr=lr)


def plot(result: dict, out: Path) -> Path:
    plt = report.pyplot()
    fig, (ax_q, ax_loss, ax_acc) = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    inna_rows = [r for r in result["rows"] if r["q"] is not None]
    adam = result["rows"][-1]
    best = next(r for r in inna_rows if r["q"] == result["best_q"])
    for row in inna_rows:
        report.train_loss_band(ax_q, row, row["name"])
    labels = [f"{r['name']} (gamma_0={r['lr']:g})" for r in (best, adam)]
    report.loss_accuracy_panels(ax_loss, ax_acc, [best, adam], labels, ["C0", "C3"])
    ax_q.set_title("INNA, gamma_0 (k+1)^-q", fontsize=9)
    ax_q.set_ylabel("log10 mini-batch training loss")
    ax_q.legend(fontsize=8)
    ax_loss.set_title("best q against Adam", fontsize=9)
    ax_loss.legend(fontsize=8)
    fig.suptitle(f"Figure 4: step-size decay, {report.figure_label(result)}", fontsize=10)
    return report.save_figure(fig, out, "fig4_decay", result)


def table(result: dict) -> str:
    n_seeds = len(result["rows"][0]["train_loss_per_seed"])
    lines = [
        f"Figure 4, {report.run_label(result)}: final epoch, mean "
        f"[worst, best] over {n_seeds} seeds",
        f"{'run':>13} {'gamma_0':>8} | {report.STATS_HEADER}",
    ]
    for row in result["rows"]:
        lines.append(f"{row['name']:>13} {row['lr']:>8g} | {report.final_stats(row)}")
    best = next(r for r in result["rows"] if r["q"] == result["best_q"])
    adam = result["rows"][-1]
    ratio = best["train_loss"]["mean"][-1] / adam["train_loss"]["mean"][-1]
    lines.append(
        f"best q = 1/{round(1 / result['best_q'])}: final training loss {ratio:.2f}x Adam's "
        f"({'below' if ratio < 1 else 'above'}); {result['seconds']:.0f} s"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_common_args(p)
    options.add_pick_args(p, PICKS)
    options.add_optimizer_args(p, "psi_init")
    args = p.parse_args(argv)
    args.argv = argv
    options.resolve_picks(args, PICKS)
    return report.finish(args, run(args), "fig4_decay", plot, table)


if __name__ == "__main__":
    sys.exit(main())
