"""Figure 2 of the paper: INNA's sensitivity to (alpha, beta) when training NiN.

The paper's four settings (alpha, beta) = (0.1, 0.1), (0.5, 0.1), (0.5, 0.5),
(0.5, 1) each train on every seed of the preset (one `fit` call); the
plot shows log10 of the training loss and the test accuracy against epochs, the
mean over seeds with a pale band from the best to the worst seed. gamma_k =
gamma_0 (k+1)^-q with the paper's q = 1/2, dropout 0.5 and gradient-aligned psi_0
in every preset (flags change them).

    python -m benchmarks.fig2_sensitivity --data-dir ../shared/data/mnist
    python -m benchmarks.fig2_sensitivity --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg
    python -m benchmarks.fig2_sensitivity --preset paper --dataset cifar10 --data-dir DIR  # a GPU

Writes fig2_sensitivity_<dataset>.json and .png into --out; prints a table last.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from benchmarks import common, options, report

SETTINGS = ((0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.5, 1.0))


def run(args) -> dict:
    base = options.resolve_preset(args, optimizer="inna")
    settings = [(a, b) for a, b in SETTINGS for _ in base.seeds]
    config = dataclasses.replace(base, seeds=base.seeds * len(SETTINGS))  # setting-major
    split = options.load(config)
    sweep = {"alpha": [a for a, _ in settings], "beta": [b for _, b in settings]}
    res = common.train(config, split, sweep, desc="fig2 INNA x4")
    k = len(base.seeds)
    rows = []
    for i, (alpha, beta) in enumerate(SETTINGS):
        part = slice(i * k, (i + 1) * k)
        rows.append(common.result_row(res, part, alpha=alpha, beta=beta))
    return {
        **report.result_header(args, "fig2_sensitivity", 2, split, config),
        "n_params": res["n_params"],
        "lr": config.learning_rate,
        "decay_power": config.decay_power,
        "psi_init": config.psi_init,
        "seconds": res["seconds"],
        "replica_steps_per_second": res["replica_steps_per_second"],
        "rows": rows,
    }


def plot(result: dict, out: Path) -> Path:
    plt = report.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    labels = [f"alpha={r['alpha']:g}, beta={r['beta']:g}" for r in result["rows"]]
    report.loss_accuracy_panels(*axes, result["rows"], labels)
    fig.suptitle(
        f"Figure 2: INNA, four (alpha, beta), {report.figure_label(result)}",
        fontsize=10,
    )
    return report.save_figure(fig, out, "fig2_sensitivity", result)


def table(result: dict) -> str:
    lines = [
        f"Figure 2, {report.run_label(result)}: INNA, gamma_0 = "
        f"{result['lr']:g}, q = {result['decay_power']:g}; final epoch, mean [worst, best] "
        f"over {len(result['rows'][0]['train_loss_per_seed'])} seeds",
        f"{'alpha':>6} {'beta':>5} | {report.STATS_HEADER}",
    ]
    for row in result["rows"]:
        lines.append(f"{row['alpha']:>6g} {row['beta']:>5g} | {report.final_stats(row)}")
    best = min(result["rows"], key=common.final_loss)
    lines.append(
        f"lowest mean training loss: (alpha, beta) = ({best['alpha']:g}, {best['beta']:g}); "
        f"{result['seconds']:.0f} s, {result['replica_steps_per_second']:.1f} replica-steps/s"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_common_args(p)
    options.add_optimizer_args(p, "lr", "decay_power", "psi_init")
    args = p.parse_args(argv)
    args.argv = argv
    return report.finish(args, run(args), "fig2_sensitivity", plot, table)


if __name__ == "__main__":
    sys.exit(main())
