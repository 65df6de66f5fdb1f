"""The paper's Figure 1: INNA on J(t1, t2) = 100 (t2 - |t1|)^2 + |1 - t1| from (-1, 1.5).

Constant gamma = 1e-4, float64, one `lax.scan` per setting. Three (alpha, beta):
(0.5, 0.05), whose beta is too small (oscillations); (0.5, 0.1), with a larger beta;
(1.3, 0.1), with a larger alpha (fewer longitudinal oscillations). The script draws
the whole trajectories over the contour plot (panels a-c, one scale for the three)
and J against iterations on a log scale (panel d).

    python -m benchmarks.fig1_nonsmooth                  # quick = paper: 10^5 steps, seconds
    python -m benchmarks.fig1_nonsmooth --steps 2000     # smoke
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from inna_optax.paper.nonsmooth import FIG1_SETTINGS as SETTINGS


def run(steps: int):
    from inna_optax.paper.nonsmooth import float64

    with float64():  # here, not for whoever called run
        return _run(steps)


def _run(steps: int):
    import jax.numpy as jnp

    from inna_optax.paper.nonsmooth import FIG1_GAMMA, FIG1_START, fig1_loss, run_inna

    results = []
    for alpha, beta in SETTINGS:
        thetas, losses = run_inna(
            fig1_loss, jnp.asarray(FIG1_START, jnp.float64), alpha, beta, FIG1_GAMMA, steps=steps
        )
        thetas, losses = np.asarray(thetas), np.asarray(losses)
        below = np.nonzero(losses < 1e-3)[0]
        results.append(
            {
                "alpha": alpha,
                "beta": beta,
                "final_theta": thetas[-1].tolist(),
                "final_J": float(losses[-1]),
                "first_step_J_below_1e-3": int(below[0]) if len(below) else None,
                "J_increases": int(np.sum(np.diff(losses) > 0)),
                "max_abs_theta": float(np.abs(thetas).max()),
                "thetas": thetas,
                "losses": losses,
            }
        )
    return results


def figure(results):
    """Panels (a)-(c): each setting's whole trajectory over the contours, on the same
    axes (wide enough for the widest swing); panel (d): J along the iterations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inna_optax.paper import plots

    points = np.concatenate([r["thetas"] for r in results])
    pad = 0.05 * (points.max(0) - points.min(0))
    lo, hi = points.min(0) - pad, points.max(0) + pad
    xlim, ylim = (min(lo[0], -1.6), max(hi[0], 1.6)), (min(lo[1], -0.5), max(hi[1], 2.5))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, r, letter in zip(axes[:3], results, "abc", strict=True):
        plots.fig1_contour(ax, xlim, ylim)
        plots.trajectory(ax, r["thetas"], label="θ_k")
        ax.set_title(f"({letter}) α = {r['alpha']}, β = {r['beta']}")
        ax.legend(fontsize=7, loc="lower right")
    for r in results:
        axes[3].semilogy(r["losses"], lw=0.7, label=f"α = {r['alpha']}, β = {r['beta']}")
    axes[3].set_xlabel("iteration k")
    axes[3].set_ylabel("J(θ_k)")
    axes[3].set_title("(d) J along the iterations")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot(results, path: Path):
    import matplotlib.pyplot as plt

    fig = figure(results)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--preset",
        choices=["quick", "paper"],
        default="quick",
        help="both run the paper's 10^5 steps (seconds on a CPU)",
    )
    p.add_argument("--steps", type=int, default=None, help="override the number of steps")
    p.add_argument("--out", default="results/fig1")
    a = p.parse_args(argv)
    steps = a.steps or 100_000
    results = run(steps)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "fig1_nonsmooth.png")
    table = [{k: v for k, v in r.items() if k not in ("thetas", "losses")} for r in results]
    from benchmarks.report import write_json  # date, machine, commit

    command = "python -m benchmarks.fig1_nonsmooth " + " ".join(argv or sys.argv[1:])
    write_json(
        out, "fig1_nonsmooth", {"command": command, "steps": steps, "gamma": 1e-4, "rows": table}
    )
    print(f"\nFigure 1: INNA from (-1, 1.5), gamma = 1e-4, {steps} steps, float64")
    print(
        f"{'alpha':>5} {'beta':>5} {'t1':>9} {'t2':>9} {'final J':>9} "
        f"{'k: J<1e-3':>9} {'J rises':>8} {'max|t|':>7}"
    )
    for r in table:
        print(row_line(r))


def row_line(r: dict) -> str:
    """A setting's line of the printed table (the results page quotes it)."""
    k = r["first_step_J_below_1e-3"]
    return (
        f"{r['alpha']:5.2f} {r['beta']:5.2f} {r['final_theta'][0]:9.5f} "
        f"{r['final_theta'][1]:9.5f} {r['final_J']:9.2e} {k if k is not None else '-':>9} "
        f"{r['J_increases']:8d} {r['max_abs_theta']:7.2f}"
    )


if __name__ == "__main__":
    main()
