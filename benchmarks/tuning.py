"""The paper's protocol for comparing optimizers, shared by Figure 3 and the
INNAprop benchmark: gamma_0 searched by training loss on a ladder kept interior,
then every seed trained with the pick.

Step 1: for each candidate, gamma_0 is searched on the first seed for the search
budget over a ladder of factor about 3 (..., 0.03, 0.1, 0.3, ...) centred on the
registry's default, and the gamma_0 with the lowest training loss at the end of the
budget wins. While the winner sits on an edge of the ladder (and that edge did not
diverge) the ladder grows one rung beyond it, so every reported pick is interior.
Test data is never used for choosing. Step 2: the candidate trains on every seed
with its pick (a search run is reused when the budget equals the epochs).
"""

import dataclasses
import math

import numpy as np

from benchmarks import common, report
from inna_optax.training import OPTIMIZERS, Config, Split
from inna_optax.training.data import DATASETS

MAX_RUNGS = 9  # a ladder grows to at most this many rungs
# what one run records per replica, concatenated over the seeds, and of its shape
CURVES = ("train_loss", "test_loss", "test_accuracy", "train_loss_steps")
SHAPE = ("window_end_step", "steps_per_epoch", "n_params")


def lasting(config: Config, evaluations: int) -> Config:
    """`config` for `evaluations` epochs (on text, as many intervals of
    ``eval_every`` steps)."""
    if DATASETS[config.dataset].kind == "text":
        return dataclasses.replace(config, steps=evaluations * config.eval_every)
    return dataclasses.replace(config, epochs=evaluations)


def ladder(center: float, below: int = 2, above: int = 2) -> tuple[float, ...]:
    """A gamma_0 grid of factor about 3 around `center`: ... 0.03, 0.1, 0.3, 1 ...

    Rungs alternate between 1 and 3 times a power of ten (`center` must be one).
    """
    return tuple(rung(center, k) for k in range(-below, above + 1))


def rung(center: float, k: int) -> float:
    """The k-th rung above `center` (below it for k < 0) of :func:`ladder`."""
    exponent = math.log10(center)
    base = math.floor(exponent + 1e-9)
    index = 2 * base + (1 if exponent - base > 0.25 else 0) + k  # 1e_n -> 2n, 3e_n -> 2n+1
    value = (3.0 if index % 2 else 1.0) * 10.0 ** (index // 2)
    return float(f"{value:.6g}")


def interior_search(center: float, rungs: tuple[int, int], run_rungs):
    """A ladder of gamma_0 around `center`, grown while the pick is on an edge.

    `rungs`: (below, above) `center` searched first; (0, 0) runs `center` alone.
    `run_rungs(lrs)` trains each learning rate of the list and returns its final
    training loss (inf or NaN for a diverged run, which never wins and is never
    grown past). Returns the sorted grid, its losses and the pick's index.
    """
    finals_of = {}
    todo = list(ladder(center, *rungs))
    while todo:
        for lr, loss in zip(todo, run_rungs(todo), strict=True):
            finals_of[lr] = float(loss) if math.isfinite(loss) else math.inf
        grid = sorted(finals_of)
        finals = [finals_of[lr] for lr in grid]
        pick = int(np.argmin(finals))
        todo = []
        if 1 < len(grid) < MAX_RUNGS and math.isfinite(finals[pick]):
            if pick == 0:
                todo = [rung(grid[0], -1)]
            elif pick == len(grid) - 1:
                todo = [rung(grid[-1], 1)]
    return grid, finals, pick


def search(
    config: Config,
    split: Split,
    rungs: tuple[int, int],
    search_epochs: int,
    label: str,
    by: str = "train_loss",
):
    """:func:`interior_search` of `config.optimizer`'s gamma_0 on the first seed for
    `search_epochs` epochs, each batch of rungs one `fit` call, by the final
    `by` (``"train_loss"``, the paper's protocol, or ``"test_loss"``: the validation
    loss on text). Returns the grid, its final losses, the curves of each rung, the
    pick's index, the run's shape (window ends, steps per epoch) and the seconds
    spent."""
    results, spent, shape = {}, [0.0], {}

    def run_rungs(lrs):
        res = common.train(
            dataclasses.replace(
                lasting(config, search_epochs), seeds=(config.seeds[0],) * len(lrs)
            ),
            split,
            {"lr": lrs},
            desc=f"search {label} {lrs}",
        )
        spent[0] += res["seconds"]
        shape.update({k: res[k] for k in SHAPE})
        for i, lr in enumerate(lrs):
            results[lr] = {k: res[k][i : i + 1] for k in CURVES}
        return [results[lr][by][0, -1] for lr in lrs]

    grid, finals, pick = interior_search(OPTIMIZERS[config.optimizer].lr, rungs, run_rungs)
    return grid, finals, results, pick, shape, spent[0]


def tuned_row(
    config: Config,
    split: Split,
    rungs: tuple[int, int],
    search_epochs: int,
    label: str,
    by: str = "train_loss",
    **fields,
):
    """Searches gamma_0 for `config` (:func:`search`, by the final `by`), then trains
    every seed with the pick. Returns the figure's row (`fields`, the grid, its
    losses as ``search_<by>``, the pick, the summaries and per-seed curves) and the
    seconds spent."""
    grid, finals, results, pick, shape, seconds = search(
        config, split, rungs, search_epochs, label, by
    )
    lr = grid[pick]
    reuse = search_epochs == config.run_length(len(split.x_train))[0]
    seeds = tuple(s for s in config.seeds if not (reuse and s == config.seeds[0]))
    curves = results[lr] if reuse else {}
    if seeds:
        res = common.train(
            dataclasses.replace(config, lr=lr, seeds=seeds), split, desc=f"{label} seeds"
        )
        seconds += res["seconds"]
        shape = {k: res[k] for k in SHAPE}
        curves = {k: np.concatenate([curves[k], res[k]]) if curves else res[k] for k in CURVES}
    row = common.result_row(
        {**curves, **shape},
        slice(None),
        **fields,
        grid=grid,
        **{f"search_{by}": finals},
        lr=lr,
        lr_at_grid_edge=len(grid) > 1 and pick in (0, len(grid) - 1),
    )
    return row, seconds


def table(result: dict, title: str, key: str, heads: tuple[str, str]) -> str:
    """A tuned comparison's table: `title`, then a row per candidate (its `key`, the
    pick, final-epoch statistics, the grid searched) and the ranking by final
    training loss. `heads`: the names of the first two columns."""
    width = max(len(heads[0]), *(len(str(r[key])) for r in result["rows"]))
    lines = [title, f"{heads[0]:>{width}} {heads[1]:>8} | {report.STATS_HEADER}"]
    for row in result["rows"]:
        edge = " (grid edge)" if row["lr_at_grid_edge"] else ""
        grid = ", ".join(f"{g:g}" for g in row["grid"])
        lines.append(
            f"{row[key]:>{width}} {row['lr']:>8g} | {report.final_stats(row)}{edge}  "
            f"(searched {grid})"
        )
    order = sorted(result["rows"], key=common.final_loss)
    ranking = " < ".join(r[key] for r in order)
    lines.append(f"ranked by mean final training loss: {ranking}; {result['seconds']:.0f} s")
    return "\n".join(lines)


def plot(result: dict, out, name: str, title: str, labels: list[str]):
    """A tuned comparison's picture: training loss per step and test accuracy per
    epoch, one band per candidate, saved as `name`'s PNG in `out`."""
    fig, axes = report.pyplot().subplots(1, 2, figsize=(9, 3.4))
    report.loss_accuracy_panels(*axes, result["rows"], labels)
    fig.suptitle(title, fontsize=10)
    return report.save_figure(fig, out, name, result)
