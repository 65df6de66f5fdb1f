"""`python -m inna_optax`: INNA on the paper's Figure 1 problem, a quick self-check.

Runs 10^5 steps of INNA (constant gamma = 1e-4, as in the paper) from (-1, 1.5)
on J(t1, t2) = 100 (t2 - |t1|)^2 + |1 - t1| for the paper's three (alpha, beta)
settings of Figure 1 and prints where each ends.
"""

import argparse
import time

import jax.numpy as jnp

from inna_optax.paper.nonsmooth import (
    FIG1_GAMMA,
    FIG1_SETTINGS,
    FIG1_START,
    fig1_loss,
    float64,
    run_inna,
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m inna_optax", description=__doc__.split("\n\n")[1].replace("\n", " ")
    )
    parser.add_argument(
        "--steps", type=int, default=100_000, help="INNA steps per setting (default 100000)"
    )
    args = parser.parse_args(argv)
    with float64():  # here, not for whoever called main
        _run(args.steps)


def _run(steps: int) -> None:
    theta0 = jnp.asarray(FIG1_START, jnp.float64)
    print(
        f"INNA on J(t1,t2) = 100 (t2-|t1|)^2 + |1-t1| from {FIG1_START}, "
        f"gamma = {FIG1_GAMMA}, {steps} steps, float64"
    )
    print(f"{'alpha':>6} {'beta':>6} {'t1':>10} {'t2':>10} {'J':>10} {'seconds':>8}")
    for alpha, beta in FIG1_SETTINGS:
        start = time.perf_counter()
        thetas, losses = run_inna(fig1_loss, theta0, alpha, beta, steps=steps)
        t1, t2 = (float(x) for x in thetas[-1])
        print(
            f"{alpha:6.2f} {beta:6.2f} {t1:10.6f} {t2:10.6f} {float(losses[-1]):10.2e} "
            f"{time.perf_counter() - start:8.2f}"
        )


if __name__ == "__main__":
    main()
