"""Shared machinery of the figure benchmarks (Figures 2 to 4 of the paper): presets,
picks, tables, JSON and pictures. Training goes through the one loop,
`inna_optax.training.fit`: a figure's curves are replicas of one `fit` call, each
with its seed (the paper's "initialized with the same random weights": replicas
with the same seed start from the same weights and see the same batches) and its
own optimizer hyperparameters (traced, so a whole grid shares one compilation).
"""

import math

import numpy as np

from inna_optax.training import Config, Split, fit


def train(config: Config, data: Split, sweep: dict | None = None, desc: str = "") -> dict:
    """Per-replica, per-epoch curves (R, epochs) of `fit(config, data, sweep)`, a
    diverged replica recorded as inf/NaN, plus the wall time and throughput."""
    history = fit(config, data, sweep=sweep, allow_divergence=True, desc=desc)
    return {
        "train_loss": history.train_loss,
        "test_loss": history.test_loss,
        "test_accuracy": history.test_accuracy,
        "train_loss_steps": history.train_loss_steps,
        "window_end_step": history.window_end_step,
        "steps_per_epoch": history.steps_per_epoch,
        "seconds": history.seconds,
        "replica_steps_per_second": history.replica_steps_per_second,
        "n_params": history.n_params,
    }


def summarise(curves: np.ndarray) -> dict:
    """Mean, best and worst over replicas (axis 0), per epoch; non-finite runs kept."""
    with np.errstate(invalid="ignore"):
        return {
            "mean": np.mean(curves, 0).tolist(),
            "min": np.min(curves, 0).tolist(),
            "max": np.max(curves, 0).tolist(),
        }


def result_row(res: dict, part: slice, **fields) -> dict:
    """One curve family of a figure: `fields`, then summaries and per-seed curves."""
    return {
        **fields,
        "train_loss": summarise(res["train_loss"][part]),
        "test_accuracy": summarise(res["test_accuracy"][part]),
        "test_loss": summarise(res["test_loss"][part]),
        "train_loss_per_seed": res["train_loss"][part],
        "test_loss_per_seed": res["test_loss"][part],
        "test_accuracy_per_seed": res["test_accuracy"][part],
        "train_loss_steps_per_seed": res["train_loss_steps"][part],
        "window_end_step": res["window_end_step"],
        "steps_per_epoch": res["steps_per_epoch"],
        "n_params": res.get("n_params"),
    }


def final_loss(row: dict) -> float:
    """Mean final training loss of a row; inf for a diverged run, so it never wins."""
    loss = row["train_loss"]["mean"][-1]
    return loss if math.isfinite(loss) else math.inf
