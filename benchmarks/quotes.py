"""The numbers the prose of ``benchmarks/RESULTS.md`` quotes from a result JSON,
each written as the page writes it and computed from the JSON (:data:`QUOTED`);
``python -m benchmarks.tables --check`` fails on any the page does not say so."""

import re
from collections import Counter

import numpy as np

from benchmarks.tables import (
    METRICS,
    PROFILE_PIECES,
    STEP,
    arm,
    finals,
    initialisation,
    load,
    profile,
    rate,
)
from benchmarks.verdicts import CLAIMS, chain, judged_claim, relation, verdict

# Numbers the prose of RESULTS.md quotes from a JSON: (stem, the text as the page
# writes it, from the JSON). A rerun that changes one makes `--check` fail until the
# prose says the new number.


def _row(data: dict, name: str) -> dict:
    return next(r for r in data["rows"] if arm(r) == name)


def _mean(data: dict, name: str, metric: str = "valid", digits: int = 3) -> str:
    return f"{finals(_row(data, name), metric).mean():.{digits}f}"


def _spread(data: dict, name: str, metric: str = "valid", digits: int = 3) -> str:
    v = finals(_row(data, name), metric)
    worst, best = (v.max(), v.min()) if METRICS[metric][1] else (v.min(), v.max())
    return f"{v.mean():.{digits}f} [{worst:.{digits}f}, {best:.{digits}f}]"


def _at(data: dict, name: str, step: int, digits: int = 3) -> str:
    """The seeds' mean validation loss at evaluation step `step`."""
    i = data["eval_step"].index(step)
    return f"{np.mean([seed[i] for seed in _row(data, name)['valid_loss_per_seed']]):.{digits}f}"


def _lowest(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's lowest validation loss over the evaluations, and its step."""
    valid = np.asarray(data["valid_loss_per_seed"])
    return valid.min(1), np.asarray(data["eval_step"])[valid.argmin(1)]


def _pair(data: dict, name: str, digits: int = 3) -> str:
    """'<mean training loss>, <mean test accuracy>%' of an arm."""
    return f"{_mean(data, name, 'train', digits)}, {_mean(data, name, 'test', 1)}%"


def _range(data: dict, names: list[str], metric: str, digits: int) -> tuple[str, str]:
    """The lowest and highest of the arms' means."""
    means = sorted(finals(_row(data, n), metric).mean() for n in names)
    return f"{means[0]:.{digits}f}", f"{means[-1]:.{digits}f}"


_A, _B, _W = "INNAprop (2, 2)", "INNAprop (0.1, 0.9)", "AdamW"
_ALPHA_HALF = ["(0.5, 0.1)", "(0.5, 0.5)", "(0.5, 1)"]
_Q = {q: f"INNA k^-1/{q}" for q in (2, 4, 8, 16)}


def _alpha_half_within(data: dict) -> str:
    """How close the three alpha = 0.5 settings of Figure 2 end in training loss."""
    lo, hi = _range(data, _ALPHA_HALF, "train", 3)
    return f"end within {float(hi) - float(lo):.2f} of each other ({lo} to {hi})"


def _ratio(data: dict, a: str, b: str, epoch: int, digits: int = 2) -> str:
    """Arm `a`'s training loss over arm `b`'s in `epoch` (1-based; -1 the last), the
    seeds' means, as the page writes it (1.55x)."""
    i = epoch - 1 if epoch > 0 else epoch
    return f"{_epoch_losses(data, a)[i] / _epoch_losses(data, b)[i]:.{digits}f}x"


def _epoch_losses(data: dict, name: str) -> np.ndarray:
    """Arm `name`'s training loss per epoch, the seeds' mean."""
    return np.mean(np.asarray(_row(data, name)["train_loss_per_seed"], float), axis=0)


def _ratios(data: dict, a: str, b: str) -> str:
    """The lowest and highest ratio of arm `a`'s epoch loss to arm `b`'s over the
    epochs ('1.03x to 1.06x')."""
    r = _epoch_losses(data, a) / _epoch_losses(data, b)
    return f"{r.min():.2f}x to {r.max():.2f}x"


def _epoch_accuracy(data: dict, name: str) -> np.ndarray:
    """Arm `name`'s test accuracy (%) per epoch, the seeds' mean."""
    return 100 * np.mean(np.asarray(_row(data, name)["test_accuracy_per_seed"], float), axis=0)


def _windows(data: dict, name: str) -> np.ndarray:
    """Arm `name`'s training loss per window of steps, the seeds' mean."""
    return np.mean(np.asarray(_row(data, name)["train_loss_steps_per_seed"], float), axis=0)


def _epochs_where(mask) -> str:
    """The 1-based epochs where `mask` holds, as runs: '1, 2 and 7 to 10'."""
    runs: list[list[int]] = []
    for e in np.nonzero(mask)[0] + 1:
        if runs and e == runs[-1][1] + 1:
            runs[-1][1] = e
        else:
            runs.append([e, e])
    parts = [f"{a}" if a == b else f"{a}, {b}" if b == a + 1 else f"{a} to {b}" for a, b in runs]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _above_throughout(data: dict, a: str, *others: str) -> str:
    """'stays above' when arm `a`'s mean window loss is above each of `others`' in
    every window."""
    above = all((_windows(data, a) > _windows(data, o)).all() for o in others)
    return "stays above" if above else "crosses"


def _fig3_curves(d: dict) -> str:
    """Figure 3's curves on CIFAR-10: INNA's epoch loss against SGD's and Adam's, and
    the test accuracies' spans."""
    inna, adam = _epoch_accuracy(d, "INNA"), _epoch_accuracy(d, "Adam")
    return (
        f"INNA's epoch loss is within {_ratios(d, 'INNA', 'SGD')} SGD's throughout and "
        f"{_ratios(d, 'INNA', 'Adam')} Adam's, its curve "
        f"{_above_throughout(d, 'INNA', 'SGD', 'Adam')} SGD's and Adam's in every window. "
        "The test accuracies part more than the losses: "
        f"INNA's stays between {inna.min():.0f}% and {inna.max():.0f}%, Adam's climbs from "
        f"{adam[0]:.0f}% to {adam[-1]:.0f}%"
    )


def _fig3_start(d: dict) -> str:
    """Figure 3 on MNIST: Adam's and Adagrad's final losses, and INNA's slow start in
    test accuracy after the first epoch."""
    front = sorted(finals(_row(d, n), "train").mean() for n in ("Adam", "Adagrad"))
    first = {n: _epoch_accuracy(d, n)[0] for n in _FIG3}
    others = [first[n] for n in _FIG3 if n != "INNA"]
    return (
        f"Adam's and Adagrad's {front[0]:.2f} to {front[1]:.2f}. It is also the slowest to "
        f"start: {first['INNA']:.0f}% test accuracy after the first epoch, against "
        f"{min(others):.0f}% to {max(others):.0f}% for the others"
    )


def _gap(d: dict) -> str:
    """How INNA's epoch loss against Adam's and SGD's opens and narrows: each ratio at
    its widest epoch and in the last."""

    def widest(other: str) -> str:
        r = _epoch_losses(d, "INNA") / _epoch_losses(d, other)
        e = int(r.argmax())
        if e == len(r) - 1:  # it does not narrow: the sentence is wrong, and fails
            return f"(the gap to {other} is widest in the last epoch)"
        return f"{r[e]:.1f}x {other}'s in epoch {e + 1} and {r[-1]:.1f}x in epoch {len(r)}"

    return (
        "so the gap opens early and then narrows: INNA's epoch loss is "
        f"{widest('Adam')}, {widest('SGD')}"
    )


def _fig4_mnist(d: dict) -> tuple[str, ...]:
    """Figure 4 on MNIST: q = 1/16's worst seed, where q = 1/4 is below q = 1/2, and
    how little q = 1/16 falls."""
    slowest = _epoch_losses(d, _Q[16])
    return (
        f"its worst seed still at {finals(_row(d, _Q[16]), 'train').max():.2f}",
        "q = 1/4 is below q = 1/2 in epochs "
        + _epochs_where(_epoch_losses(d, _Q[4]) < _epoch_losses(d, _Q[2])),
        f"from {np.log10(slowest[0]):.1f} to {np.log10(slowest[-1]):.1f} in log10 loss over "
        f"{len(slowest)} epochs",
    )


def _fig4_curves(d: dict) -> str:
    """Figure 4's decays epoch by epoch: which is lowest and highest from epoch 2 on,
    and where q = 1/8 is below q = 1/2."""
    losses = np.stack([_epoch_losses(d, n) for n in _Q.values()])
    names = {i: f"q = 1/{q}" for i, q in enumerate(_Q)}
    low, high = set(losses[:, 1:].argmin(0)), set(losses[:, 1:].argmax(0))
    if len(low) != 1 or len(high) != 1:  # the sentence is wrong, and fails
        return "(the lowest or the highest decay changes after epoch 1)"
    below = _epochs_where(losses[2] < losses[0])
    return (
        f"from epoch 2 on {names[low.pop()]} is the lowest and {names[high.pop()]} the "
        f"highest in every epoch; q = 1/8 is below q = 1/2 in epochs {below}"
    )


def _lift(d: dict) -> str:
    """The slower decays' final test accuracies against q = 1/2's."""
    slower = [finals(_row(d, _Q[q]), "test").mean() for q in (4, 8, 16)]
    return (
        f"from {_mean(d, _Q[2], 'test', 1)}% (q = 1/2) to {min(slower):.1f}% to {max(slower):.1f}%"
    )


def _against_adam(d: dict) -> str:
    """INNA at q = 1/4 against Adam at the end: loss ratio and accuracy gap."""
    gap = finals(_row(d, "Adam"), "test").mean() - finals(_row(d, _Q[4]), "test").mean()
    return (
        f"ends at {_ratio(d, _Q[4], 'Adam', -1)} Adam's training loss and {gap:.1f} points "
        f"below it in test accuracy ({_mean(d, _Q[4], 'test', 1)}% against "
        f"{_mean(d, 'Adam', 'test', 1)}%); its curve {_above_throughout(d, _Q[4], 'Adam')} "
        "Adam's"
    )


def _reached(row: dict, levels) -> str:
    """The first step at which the seeds' mean window loss is at or below each level
    (the tables' "first step with the windows' mean loss <= ...")."""
    windows = np.mean(np.asarray(row["train_loss_steps_per_seed"], float), axis=0)
    ends = np.asarray(row["window_end_step"])
    hits = [np.nonzero(windows <= level)[0] for level in levels]
    return " / ".join(f"{ends[h[0]]:,}" if len(h) else "not reached" for h in hits)


def _per_epoch(row: dict, epochs=(1, 2, 4, 8)) -> str:
    """The seeds' mean training loss after each of `epochs`."""
    losses = np.mean(np.asarray(row["train_loss_per_seed"], float), axis=0)
    return ", ".join(f"{losses[e - 1]:.3f}" for e in epochs)


def _accuracies(row: dict, epoch: int) -> np.ndarray:
    """The seeds' test accuracies (%) after `epoch`."""
    return 100 * np.asarray(row["test_accuracy_per_seed"], float)[:, epoch - 1]


def _accuracy_after(row: dict, epoch: int) -> str:
    """'90.3% [86.3, 93.0]': the test accuracy after `epoch`, mean [worst, best]."""
    acc = _accuracies(row, epoch)
    return f"{acc.mean():.1f}% [{acc.min():.1f}, {acc.max():.1f}]"


def _searched(row: dict) -> str:
    """'0.3: 1.855, 1: 0.851, **3: 0.711**, 10: 3.083 | 3 (interior)': the rungs of a
    search with their losses, the pick in bold, and the pick."""
    rungs = ", ".join(
        f"**{rate(lr)}: {loss:.3f}**" if lr == row["lr"] else f"{rate(lr)}: {loss:.3f}"
        for lr, loss in zip(row["grid"], row["search_train_loss"], strict=True)
    )
    edge = "at an edge" if row["lr_at_grid_edge"] else "interior"
    return f"{rungs} | {rate(row['lr'])} ({edge})"


def _curve_cells() -> tuple:
    """The cells of the three hand-laid tables of per-epoch losses and first-reach
    steps (Figure 3 medium and long, Figure 4 long), row by row."""

    def rows(stem, arms, cells):
        return tuple((stem, lambda d, name=name: cells(_row(d, name))) for name in arms)

    fig3, fig4 = ("INNA", "SGD", "Adagrad", "Adam"), (*_Q.values(), "Adam")
    low = (0.5, 0.3, 0.2, 0.15)
    return (
        *rows(
            "fig3_comparison_mnist_medium",
            fig3,
            lambda r: f"| {_accuracy_after(r, 1)} | {_reached(r, (1, 0.5, 0.3, 0.2))} |",
        ),
        *rows(
            "fig3_comparison_mnist_long",
            fig3,
            lambda r: f"| {_searched(r)} | {_per_epoch(r)} | {_reached(r, low)} |",
        ),
        *rows(
            "fig4_decay_mnist_long",
            fig4,
            lambda r: (
                f"| {_per_epoch(r)} | {_reached(r, low)} | "
                + ", ".join(f"{_accuracies(r, e).mean():.1f}%" for e in (1, 8))
                + " |"
            ),
        ),
    )


def _valid(data: dict, name: str) -> np.ndarray:
    """Arm `name`'s validation losses, seeds by evaluations."""
    return np.asarray(_row(data, name)["valid_loss_per_seed"], float)


def _steps(data: dict, a: str, b: str, how: str) -> list[int]:
    """The evaluation steps at which arm `a` is, against arm `b`: "ahead" (a lower
    mean validation loss), "behind" (not ahead), "apart" (every seed of `a` below
    every seed of `b`) or "apart above" (every seed of `a` above every seed of `b`)."""
    va, vb = _valid(data, a), _valid(data, b)
    keep = {
        "ahead": va.mean(0) < vb.mean(0),
        "behind": va.mean(0) >= vb.mean(0),
        "apart": va.max(0) < vb.min(0),
        "apart above": va.min(0) > vb.max(0),
    }[how]
    return [int(s) for s, k in zip(data["eval_step"], keep, strict=True) if k]


def _spans(data: dict, steps: list[int]) -> list[tuple[int, int]]:
    """`steps` as runs of consecutive evaluations: (first, last) of each."""
    order = {s: i for i, s in enumerate(data["eval_step"])}
    spans: list[list[int]] = []
    for s in steps:
        if spans and order[s] == order[spans[-1][1]] + 1:
            spans[-1][1] = s
        else:
            spans.append([s, s])
    return [(a, b) for a, b in spans]


def _next(data: dict, step: int) -> int:
    """The evaluation after `step`."""
    return data["eval_step"][data["eval_step"].index(step) + 1]


def _reaches(data: dict, a: str, b: str) -> str:
    """The first evaluation at which arm `a`'s mean validation loss is at or below arm
    `b`'s final mean."""
    level = _valid(data, b).mean(0)[-1]
    means = zip(data["eval_step"], _valid(data, a).mean(0), strict=True)
    return f"{next(s for s, v in means if v <= level):,}"


def _closest(data: dict, a: str, b: str, start: int) -> str:
    """The largest gap between two arms' mean validation losses from `start` on."""
    gap = np.abs(_valid(data, a).mean(0) - _valid(data, b).mean(0))
    return f"{max(g for s, g in zip(data['eval_step'], gap, strict=True) if s >= start):.3f}"


def _decay(data: dict, name: str) -> str:
    """The effective weight-decay rate of INNAprop arm `name`
    (:func:`inna_optax.decay_rate` of the run's weight decay at its alpha and beta)."""
    from inna_optax import decay_rate

    row = _row(data, name)
    return f"{decay_rate(data['config']['weight_decay'], row['alpha'], row['beta']):.2g}"


def _gpt_same_lr(d: dict) -> tuple[str, ...]:
    """The verdict paragraph of protocol (a) at 2,000 steps."""
    (first, _), *_ = _spans(d, _steps(d, _A, _W, "ahead"))
    before = d["eval_step"][d["eval_step"].index(first) - 1]
    return (
        f"it reaches AdamW's final level at step {_reaches(d, _A, _W)}",
        f"passes AdamW between steps {before:,} and {first:,}",
        f"within {_closest(d, _B, _W, 750)} of AdamW's mean at every evaluation from step 750",
        f"at {_decay(d, _B)} per unit of summed step sizes under AdamW and INNAprop (0.1, 0.9)",
        f"but at {_decay(d, _A)} under INNAprop (2, 2)",
    )


def _gpt_same_lr_long(d: dict) -> tuple[str, ...]:
    """The verdict paragraph of protocol (a) at 10,000 steps."""
    (a, b), *_ = _spans(d, _steps(d, _B, _W, "ahead"))
    return (
        f"at every evaluation from step {a:,} to step {b:,}",
        f"AdamW passes it between steps {b:,} and {_next(d, b):,}",
        "INNAprop (2, 2) leads at steps {:,} and {:,} only".format(*_steps(d, _A, _W, "ahead")),
        f"({_decay(d, _A)} per unit of summed step sizes under (2, 2), {_decay(d, _B)} under",
    )


def _gpt_tuned_long(d: dict) -> tuple[str, ...]:
    """The verdict paragraph of protocol (b) at 10,000 steps: where INNAprop (0.1, 0.9)
    leads AdamW, trails it, and where the seeds' ranges are apart."""
    ahead, behind = (_spans(d, _steps(d, _B, _W, how)) for how in ("ahead", "behind"))
    apart, above = _steps(d, _B, _W, "apart"), _steps(d, _B, _W, "apart above")
    first, gap, last = ahead  # ahead, an evaluation ahead inside the behind span, ahead
    (one, _), (run_a, run_b) = _spans(d, [s for s in apart if s <= first[1]])
    return (
        f"It leads AdamW's mean at every evaluation from step {first[0]:,} to {first[1]:,}",
        f"the ranges apart at step {one:,} and from {run_a:,} to {run_b:,}",
        f"behind in the mean from step {behind[1][0]:,} to {behind[2][1]:,} but for step "
        f"{gap[0]:,}",
        "(the ranges apart at step {:,} only)".format(
            *[s for s in above if behind[1][0] <= s <= behind[2][1]]
        ),
        f"ahead in the mean again from step {last[0]:,} on",
        "(the ranges apart at steps {:,} and {:,})".format(*[s for s in apart if s >= last[0]]),
    )


_QUICK = tuple(  # the figure scripts' quick runs
    f"{figure}_{dataset}"
    for figure in ("fig2_sensitivity", "fig3_comparison", "fig4_decay")
    for dataset in ("mnist", "cifar10")
)


_FIG3 = ["INNA", "SGD", "Adagrad", "Adam"]


def _orders(data: dict) -> str:
    """Figure 3's arms in the order of their final training loss and test accuracy,
    as the verdict tables chain them."""
    rows = {arm(r): r for r in data["rows"]}
    return (
        f"training loss {chain(_FIG3, rows, 'train')}; test accuracy {chain(_FIG3, rows, 'test')}"
    )


def _first_steps(row: dict, levels) -> list[float]:
    return [float(s.replace(",", "")) for s in _reached(row, levels).split(" / ")]


def _medium(d: dict) -> tuple[str, ...]:
    """The medium preset's section: the seeds' accuracy ranges, the first-reach steps
    and the diverging rung of INNA's search."""
    acc = {n: finals(_row(d, n), "test") for n in _FIG3}
    levels = (1, 0.5, 0.3)  # the levels INNA reaches
    steps = np.divide(*(_first_steps(_row(d, n), levels) for n in ("INNA", "SGD")))
    reach = sorted(_first_steps(_row(d, n), (0.3,))[0] for n in ("Adam", "Adagrad"))
    widest = max(_FIG3, key=lambda n: np.ptp(_accuracies(_row(d, n), 1)))
    epoch_1 = _accuracies(_row(d, widest), 1)
    inna = _row(d, "INNA")
    return (
        f"its test accuracies ({acc['INNA'].min():.1f}% to {acc['INNA'].max():.1f}%) lie "
        "below every seed of Adagrad's and Adam's "
        f"({min(acc['Adagrad'].min(), acc['Adam'].min()):.1f}% and up)",
        f"reach a loss of 0.3 by step {reach[0]:.0f} to {reach[1]:.0f}",
        f"needs {steps.min():.1f}x to {steps.max():.1f}x SGD's steps to reach a loss of 1, 0.5 "
        "and 0.3",
        f"{widest}'s band is the widest after epoch 1 ({epoch_1.min():.1f}% to "
        f"{epoch_1.max():.1f}%)",
        f"(all four at {min(a.min() for a in acc.values()):.1f}% or more after "
        f"{inna['window_end_step'][-1]} steps)",
        "stayed near the uniform prediction "
        f"({inna['search_train_loss'][inna['grid'].index(3.0)]:.2f})",
    )


def _fig1_row(r: dict) -> str:
    """A row of Figure 1's printed table, its spaces as the page's flattened text."""
    from benchmarks.fig1_nonsmooth import row_line

    return " ".join(row_line(r).split())


def _fig1(d: dict) -> tuple[str, ...]:
    small, base, damped = (
        next(r for r in d["rows"] if (r["alpha"], r["beta"]) == ab)
        for ab in ((0.5, 0.05), (0.5, 0.1), (1.3, 0.1))
    )
    return (
        f"run {d['date'][:10]}, commit {d['commit'][:7]})",
        *(_fig1_row(r) for r in d["rows"]),
        f"its largest |θ| is {small['max_abs_theta']:.2f}, against "
        f"{base['max_abs_theta']:.2f} with β = 0.1",
        f"({damped['J_increases']:,} against {base['J_increases']:,})",
        f"({damped['first_step_J_below_1e-3']:,} steps against "
        f"{base['first_step_J_below_1e-3']:,})",
    )


_FIG3_RUNS = ("fig3_comparison_mnist", "fig3_comparison_cifar10", "fig3_comparison_mnist_long")
_FIG4_RUNS = ("fig4_decay_mnist", "fig4_decay_cifar10", "fig4_decay_mnist_long")
_SAYS = {"holds": "holds", "partly": "holds partly", "not reproduced": "is not reproduced"}
_INNA_CLAIMS = {  # the section's name for each of the INNA paper's claims
    "sensitivity": 0,
    "speed": 1,
    "decay": 2,
    "as fast as Adam": 3,
    "accuracy": 4,
}


def _claim(name: str):
    """The quote of a section's verdict on the INNA paper's claim `name`, as the rule
    of :mod:`benchmarks.verdicts` reaches it on the section's run: 'speed claim holds
    partly'."""
    claim = CLAIMS["inna"][_INNA_CLAIMS[name]]
    label = f'"{name}"' if name == "as fast as Adam" else f"{name} claim"
    return lambda d: f"{label} {_SAYS[judged_claim(claim, d)]}"


_VERB = {"ahead": "outperforms", "level": "matches", "behind": "trails"}
_PLURAL = {"outperforms": "outperform", "matches": "match", "trails": "trail"}
_WORD = {"holds": "Reproduced", "partly": "Partly reproduced", "not reproduced": "Not reproduced"}


def _against_adamw(where: str, metrics=("valid",)):
    """The quote of an INNAprop section's verdict: the INNAprop paper's claim
    ("matches or outperforms AdamW") judged by the rule for both settings on
    `metrics`, and how each setting stands against AdamW: 'Reproduced at this budget:
    INNAprop (2, 2) outperforms AdamW, (0.1, 0.9) matches it'."""

    def found(d, name):
        return [relation(finals(_row(d, name), m), finals(_row(d, _W), m), m) for m in metrics]

    def quote(d):
        verbs = []
        for name in (_A, _B):
            relations = set(found(d, name))
            if len(relations) != 1:  # no one word says it: the sentence fails
                return f"({name} stands otherwise on each of {metrics})"
            verbs.append(_VERB[relations.pop()])
        held = ["fails" if r == "behind" else "holds" for n in (_A, _B) for r in found(d, n)]
        a, b = verbs
        stands = (
            f"both INNAprop settings {_PLURAL[a]} AdamW"
            if a == b
            else f"INNAprop (2, 2) {a} AdamW, (0.1, 0.9) {b} it"
        )
        return f"{_WORD[verdict(held)]} {where}: {stands}"

    return quote


def _gpt_quick(d: dict) -> tuple[str, ...]:
    """The small GPT's quick run: the common target, where AdamW leads, the levels at
    step 150 and at the end, where AdamW passed INNAprop's final level, and the rung
    above each INNAprop pick."""
    names = (_A, _B, _W)
    means = {n: _valid(d, n).mean(0) for n in names}
    leads = all((means[_W] < means[n]).all() for n in (_A, _B))
    at = d["eval_step"].index(150)
    early = [means[n][at] for n in names]
    worst = max(names, key=lambda n: means[n][-1])
    best = min((_A, _B), key=lambda n: means[n][-1])  # of INNAprop's

    def above(name):
        row = _row(d, name)
        i = row["grid"].index(row["lr"])
        return f"{row['search_train_loss'][i + 1]:.3f}"

    return (
        f"({worst}'s {d['target_valid_loss']:.3f})",
        f"AdamW leads at {'every' if leads else 'not every'} evaluation: all three fall to "
        f"{min(early):.2f} to {max(early):.2f} nats per character in the first 150 steps",
        f"AdamW keeps falling, to {means[_W][-1]:.2f} at step {d['eval_step'][-1]}, while "
        f"INNAprop descends slowly, to {means[_A][-1]:.2f} and {means[_B][-1]:.2f}, a level "
        f"AdamW passed at step {_reaches(d, _W, best)}",
        f"does worse ({above(_A)} and {above(_B)})",
    )


def _reach_ratios(d: dict, slow: str, fast: str, levels) -> np.ndarray:
    """Arm `slow`'s first-reach steps over arm `fast`'s at each level both reach."""
    a = np.asarray(_first_steps(_row(d, slow), levels))
    b = np.asarray(_first_steps(_row(d, fast), levels))
    both = ~(np.isnan(a) | np.isnan(b))
    return a[both] / b[both]


def _long3(d: dict) -> tuple[str, ...]:
    """Figure 3's long run: INNA's and SGD's accuracy ranges, INNA's slow start, its
    first-reach steps against SGD's and Adam's, and its fall over the last epochs."""
    inna, sgd = (finals(_row(d, n), "test") for n in ("INNA", "SGD"))
    others = [n for n in _FIG3 if n != "INNA"]
    first = [_epoch_losses(d, n)[0] for n in others]
    acc_1 = [_epoch_accuracy(d, n)[0] for n in others]
    levels = (0.5, 0.3, 0.2, 0.15)
    vs_sgd = _reach_ratios(d, "INNA", "SGD", levels)
    vs_adam = _reach_ratios(d, "INNA", "Adam", levels)

    def fall(n):  # epoch 4 to 8, in percent
        loss = _epoch_losses(d, n)
        return 100 * (loss[7] / loss[3] - 1)

    falls = sorted(fall(n) for n in others)
    return (
        f"({inna.min():.1f} to {inna.max():.1f}% against {sgd.min():.1f} to {sgd.max():.1f}%)",
        f"(its epoch-1 loss {_epoch_losses(d, 'INNA')[0]:.2f} against {min(first):.2f} to "
        f"{max(first):.2f}; {_epoch_accuracy(d, 'INNA')[0]:.1f}% test accuracy after the "
        f"first epoch against {min(acc_1):.1f}% to {max(acc_1):.1f}%)",
        f"needs {vs_sgd.min():.1f} to {vs_sgd.max():.1f} times SGD's steps and "
        f"{vs_adam.min():.1f} to {vs_adam.max():.1f} times Adam's to reach each loss level",
        f"(−{-fall('INNA'):.0f}% from epoch 4 to 8, against −{-falls[-1]:.0f}% to "
        f"−{-falls[0]:.0f}% for the others)",
    )


def _long4(d: dict) -> tuple[str, ...]:
    """Figure 4's long run: q = 1/16 after one epoch, q = 1/4 against Adam in test
    accuracy, and how much sooner Adam reaches each level."""
    q4, adam = (finals(_row(d, n), "test") for n in (_Q[4], "Adam"))
    sooner = _reach_ratios(d, _Q[4], "Adam", (0.5, 0.3, 0.2, 0.15))
    return (
        f"({_epoch_accuracy(d, _Q[16])[0]:.0f}% test accuracy after one epoch at q = 1/16)",
        f"{adam.mean() - q4.mean():.1f} points below it in test accuracy ({q4.mean():.1f}% "
        f"against {adam.mean():.1f}%, the seeds' ranges {q4.min():.2f} to {q4.max():.2f}% "
        f"and {adam.min():.2f} to {adam.max():.2f}%)",
        f"Adam reaches each loss level of the table {sooner.min():.1f} to {sooner.max():.1f} "
        "times sooner",
    )


def _probe(d: dict, setting: str) -> dict:
    """A plateau probe's row for `setting`, written as on its command line
    ('he+bn:inna:1')."""
    init, optimizer, lr = setting.split(":")
    return next(
        r
        for r in d["rows"]
        if (r["init"], r["optimizer"]) == (init, optimizer) and r["lr"] == float(lr)
    )


def _last(d: dict, *settings: str) -> str:
    """The mean loss of the last window of each setting: '2.299 and 2.353'."""
    values = [f"{_probe(d, s)['loss_windows'][-1]:.3f}" for s in settings]
    return ", ".join(values[:-1]) + " and " + values[-1] if len(values) > 1 else values[0]


def _dead3(d: dict, setting: str) -> str:
    """The percentage of convolution 3's ReLUs dead after the run."""
    return f"{100 * _probe(d, setting)['dead_end'][2]:.0f}%"


def _rms(d: dict, setting: str) -> str:
    """The smallest and largest pre-activation RMS of the odd convolutions at
    initialisation: '0.04 to 0.15'."""
    rms = _probe(d, setting)["preact_rms_init"][::2]
    return f"{min(rms):.2f} to {max(rms):.2f}"


def _plateau_mnist(d: dict) -> tuple[str, ...]:
    """The MNIST probe at width 0.5, as the paragraph under its table reads it."""
    he = _probe(d, "he:sgd:0.1")
    return (
        "from {:.2f} at convolution 1 to {:.2f} at convolution {}".format(
            he["preact_rms_init"][0],
            max(he["preact_rms_init"]),
            1 + int(np.argmax(he["preact_rms_init"])),
        ),
        f"a random batch's loss at initialisation is {he['init_loss']:.2f} and the logits' "
        f"standard deviation {he['init_logit_std']:.1f}",
        f"({_dead3(d, 'he:sgd:0.1')} and {_dead3(d, 'he:inna:0.1')} of convolution 3's ReLUs "
        f"dead, a mean loss of {_last(d, 'he:sgd:0.1', 'he:inna:0.1')} over the last 50 steps)",
        f"(SGD at 0.03 and 0.01: {_last(d, 'he:sgd:0.03', 'he:sgd:0.01')})",
        f"(RMS {_rms(d, 'lecun:sgd:1')} and {_rms(d, 'glorot:sgd:1')})",
        f"SGD: {_last(d, 'lecun:sgd:1', 'lecun:inna:1', 'glorot:sgd:1')})",
        f"at γ_0 = 0.1 ({_last(d, 'lecun:sgd:0.1')}) nor with INNA at 3 "
        f"({_last(d, 'lecun:inna:3')}, {_dead3(d, 'lecun:inna:3')} of convolution 3 dead)",
        f"(RMS {_rms(d, 'he+bn:sgd:1')})",
        f"reach {_last(d, 'he+bn:sgd:1', 'he+bn:inna:1')}, near Adam's "
        f"{_last(d, 'he:adam:0.001')} on the plain NiN",
        f"at γ_0 = 0.1 they are slow ({_last(d, 'he+bn:sgd:0.1', 'he+bn:inna:0.1')})",
    )


def _recipe_many_windows(d: dict) -> tuple[str, ...]:
    """nanoGPT's CPU recipe with AdamW scored on many validation windows
    (``nanogpt_cpu_8192``): its final loss, how much harder the preset's 240 windows
    are, and how it stands against nanoGPT's loop in PyTorch on the same windows."""
    ours = np.asarray(d["valid_loss_per_seed"])[:, -1]
    few = finals(_row(load("gpt_shakespeare_nanogpt-cpu_same-lr"), _W), "valid")
    torch = np.asarray([r["valid_loss"][-1] for r in load("nanogpt_torch")["seeds_runs"]])
    word = {"ahead": "ahead of", "level": "level with", "behind": "behind"}
    lower = "ours" if ours.mean() < torch.mean() else "PyTorch's"
    return (
        f"the same seeds end at {ours.mean():.4f} [{ours.max():.4f}, {ours.min():.4f}]",
        f"the preset's 240 windows are {few.mean() - ours.mean():.3f} harder",
        f"{word[relation(torch, ours, 'valid')]} ours by the rule, {lower} "
        f"{abs(torch.mean() - ours.mean()):.3f} lower in the mean",
        f"{d['nanogpt_best_valid_loss']} lies below every seed of both"
        if d["nanogpt_best_valid_loss"] < min(ours.min(), torch.min())
        else "(nanoGPT's reported loss lies within the seeds)",
    )


def _normed(d: dict, optimizer: str, norm: bool, metric: str = "test") -> str:
    """A normalisation run's last value: '95.52%' (test accuracy) or '0.722'."""
    row = next(r for r in d["rows"] if (r["optimizer"], r["norm"]) == (optimizer, norm))
    if metric == "test":
        return f"{100 * row['test_accuracy']['mean'][-1]:.2f}%"
    return f"{row['train_loss']['mean'][-1]:.3f}"


def _normalisation_mnist(d: dict) -> tuple[str, ...]:
    """What the MNIST normalisation run's paragraphs read off it."""
    return (
        f"INNA and SGD end at {_normed(d, 'inna', False)} and {_normed(d, 'sgd', False)} "
        f"test accuracy, at chance, while Adam reaches {_normed(d, 'adam', False)}",
        f"INNA {_normed(d, 'inna', True)}, SGD {_normed(d, 'sgd', True)}, Adagrad "
        f"{_normed(d, 'adagrad', True)} and Adam {_normed(d, 'adam', True)}",
        f"the plain NiN's Adagrad, at γ_0 = 0.01, reaches {_normed(d, 'adagrad', False)}",
    )


_PROBES = {  # the probes of CIFAR-10 and of full width, as the page names them
    "plateau_cifar10_w0.5_300": "CIFAR-10 at width 0.5",
    "plateau_mnist_w1_300": "MNIST at full width",
    "plateau_cifar10_w1_300": "CIFAR-10 at full width",
}


def _wider(_d: dict) -> tuple[str, ...]:
    """The paragraph under the probes of CIFAR-10 and of full width: He's growth by
    convolution 7, the collapse and the non-finite runs of the plain NiN, LeCun's flat
    start, and the batch-normalised runs' last losses."""
    runs = {stem: load(stem) for stem in _PROBES}
    rms7 = [_probe(d, "he:sgd:0.1")["preact_rms_init"][6] for d in runs.values()]
    broken = [
        f"{_PROBES[stem]}, {initialisation(r['init'])}, {arm(r)} {rate(r['lr'])}"
        for stem, d in runs.items()
        for r in d["rows"]
        if not np.isfinite(r["loss_windows"][-1])
    ]
    lecun = [r for d in runs.values() for r in d["rows"] if r["init"] == "lecun"]
    flat = [v for r in lecun for v in r["preact_rms_init"][::2]]
    slow = [f"{arm(r)} {r['loss_windows'][-1]:.3f}" for r in lecun]
    normed = [
        f"{arm(r)} {r['loss_windows'][-1]:.3f}"
        for d in runs.values()
        for r in d["rows"]
        if r["init"] == "he+bn"
    ]
    cifar = runs["plateau_cifar10_w0.5_300"]
    return (
        f"to {min(rms7):.1f} to {max(rms7):.1f} times unit scale by convolution 7",
        f"({_dead3(cifar, 'he:sgd:0.1')} of convolution 3's on CIFAR-10 at width 0.5 with SGD "
        f"at 0.1, a mean loss of {_last(cifar, 'he:sgd:0.1')} over the last 50 steps)",
        "(" + "; ".join(broken) + ")",
        f"(RMS {min(flat):.2f} to {max(flat):.2f}) and leaves the plateau slowly if at all "
        f"({', '.join(slow)})",
        "(the last 50 steps' mean loss, in the tables' order: " + ", ".join(normed) + ")",
    )


def _keras(d: dict) -> tuple[str, ...]:
    """The probe of Keras 2.2's kernels (one epoch, windows of 125 steps)."""
    first = _probe(d, "keras:sgd:0.01")
    rms = [f"{v:.2f}" for v in first["preact_rms_init"][::2]]
    sgd = [f"{_probe(d, f'keras:sgd:{lr}')['loss_windows'][-1]:.3f}" for lr in ("0.01", "0.1", "1")]
    inna = [f"{_probe(d, f'keras:inna:{lr}')['loss_windows'][-1]:.3f}" for lr in ("0.1", "1")]
    if len(set(sgd + inna)) == 1:
        last = f"is {sgd[0]} for SGD at γ_0 = 0.01, 0.1 and 1 and for INNA at 0.1 and 1"
    else:
        last = (
            f"is {', '.join(sgd[:2])} and {sgd[2]} for SGD at γ_0 = 0.01, 0.1 and 1 and "
            f"{inna[0]} and {inna[1]} for INNA at 0.1 and 1"
        )
    return (
        f"(pre-activation RMS {', '.join(rms[:4])} and {rms[4]} at convolutions 1, 3, 5, 7 "
        f"and 9; initial logits' standard deviation {first['init_logit_std']:.3f})",
        f"the mean loss of the last {d['window']} steps {last}",
    )


def _normalisation_cifar(d: dict) -> tuple[str, ...]:
    """What the CIFAR-10 normalisation run's paragraph reads off it."""
    return (
        f"(training loss {_normed(d, 'inna', False, 'train')} and "
        f"{_normed(d, 'sgd', False, 'train')} in the second epoch, test accuracy "
        f"{_normed(d, 'inna', False)} and {_normed(d, 'sgd', False)})",
        f"Adam included ({_normed(d, 'adam', False)} → {_normed(d, 'adam', True)})",
    )


def _minutes(stem: str) -> float:
    """The training time a run's JSON records, in minutes."""
    return load(stem)["seconds"] / 60


def _quick_minutes(_data: dict) -> str:
    """The shortest and longest training time of the NiN figures' quick runs."""
    times = [_minutes(stem) for stem in _QUICK if load(stem)]
    return f"{min(times):.0f} to {max(times):.0f} minutes per figure"


def _ran(data: dict) -> str:
    """How a rerun's section opens: its training time, date and commit."""
    minutes, seconds = divmod(round(data["seconds"]), 60)
    made = f"{data['date'][:10]}, commit {data['commit'][:7]}"
    return f"({minutes} min {seconds} s of training, {made};"


def _hours(stem: str) -> str:
    """A run's training time as the pages write it: 1 h 23 min, or 25 min."""
    hours, minutes = divmod(round(_minutes(stem)), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


QUOTED = (
    # ratios of the curves, epoch by epoch
    ("fig3_comparison_mnist", _gap),
    (
        "fig3_comparison_mnist_medium",
        lambda d: (
            f"({_ratio(d, 'INNA', 'SGD', 1)} SGD's mean loss over epoch 1, "
            f"{_ratio(d, 'INNA', 'SGD', 2)} over epoch 2)"
        ),
    ),
    (
        "fig3_comparison_mnist_medium",
        lambda d: (
            f"narrows from {_ratio(d, 'INNA', 'Adam', 1)} to {_ratio(d, 'INNA', 'Adam', 2)} "
            "between the two epochs"
        ),
    ),
    (
        "fig3_comparison_mnist_long",
        lambda d: (
            f"INNA's loss is {_ratio(d, 'INNA', 'SGD', 2)} SGD's after 2 epochs, "
            f"{_ratio(d, 'INNA', 'SGD', 4)} after 4 and {_ratio(d, 'INNA', 'SGD', 8)} after 8"
        ),
    ),
    ("fig3_comparison_mnist", lambda d: f"({_ratio(d, 'INNA', 'SGD', -1)} at the quick preset's"),
    (
        "fig3_comparison_mnist_long",
        lambda d: (
            f"Against Adagrad the ratio goes from {_ratio(d, 'INNA', 'Adagrad', 2, 1)} to "
            f"{_ratio(d, 'INNA', 'Adagrad', 8, 1)}"
        ),
    ),
    ("fig4_decay_mnist_long", lambda d: f"ends at {_ratio(d, _Q[4], 'Adam', -1)} Adam's training"),
    (
        "fig4_decay_mnist_long",
        lambda d: (
            f"{_ratio(d, _Q[4], 'Adam', 2)} after 2 epochs, {_ratio(d, _Q[4], 'Adam', 4)} "
            f"after 4, {_ratio(d, _Q[4], 'Adam', 8)} after 8"
        ),
    ),
    ("fig4_decay_mnist", lambda d: f"({_ratio(d, _Q[4], 'Adam', -1)} in the quick preset's"),
    (
        "fig2_sensitivity_mnist",
        lambda d: "end within {} to {} training loss and {}% to {}% test accuracy".format(
            *_range(d, _ALPHA_HALF, "train", 2), *_range(d, _ALPHA_HALF, "test", 1)
        ),
    ),
    (
        "fig2_sensitivity_mnist",
        lambda d: (
            "(0.1, 0.1) is clearly slower: {} and {}%, with a wide band "
            "({:.1f}% to {:.1f}%)".format(
                _mean(d, "(0.1, 0.1)", "train", 2),
                _mean(d, "(0.1, 0.1)", "test", 1),
                finals(_row(d, "(0.1, 0.1)"), "test").min(),
                finals(_row(d, "(0.1, 0.1)"), "test").max(),
            )
        ),
    ),
    (
        "fig2_sensitivity_cifar10",
        _alpha_half_within,
    ),
    ("fig2_sensitivity_cifar10", lambda d: f"is again clearly slower ({_pair(d, '(0.1, 0.1)')})"),
    (
        "fig2_sensitivity_cifar10",
        lambda d: "reach {:.1f}% to {:.1f}% test accuracy".format(
            min(100 * r["test_accuracy"]["mean"][-1] for r in d["rows"]),
            max(100 * r["test_accuracy"]["mean"][-1] for r in d["rows"]),
        ),
    ),
    (
        "fig3_comparison_mnist",
        lambda d: (
            f"{_mean(d, 'INNA', 'train')} final training loss against SGD's "
            f"{_mean(d, 'SGD', 'train')}"
        ),
    ),
    (
        "fig3_comparison_mnist",
        lambda d: (
            f"INNA's test accuracy ({_mean(d, 'INNA', 'test', 1)}%) is the lowest, "
            f"{float(_mean(d, 'Adam', 'test', 1)) - float(_mean(d, 'INNA', 'test', 1)):.1f} points "
            f"behind Adam ({_mean(d, 'Adam', 'test', 1)}%)"
        ),
    ),
    (
        "fig3_comparison_cifar10",
        lambda d: (
            f"Adam is fastest ({_pair(d, 'Adam')}) and Adagrad second ({_pair(d, 'Adagrad')})"
        ),
    ),
    (
        "fig3_comparison_cifar10",
        lambda d: (
            f"INNA is last: {_mean(d, 'INNA', 'train')} and {_mean(d, 'INNA', 'test', 1)}% "
            f"test accuracy, behind SGD ({_pair(d, 'SGD')})"
        ),
    ),
    (
        "fig3_comparison_mnist_medium",
        lambda d: (
            f"INNA ends last ({_mean(d, 'INNA', 'train')} training loss, "
            f"{_mean(d, 'INNA', 'test', 1)}% test accuracy), behind SGD ({_pair(d, 'SGD')}), "
            f"Adagrad ({_pair(d, 'Adagrad')}) and Adam ({_pair(d, 'Adam')})"
        ),
    ),
    (
        "fig3_comparison_mnist_long",
        lambda d: (
            f"INNA is still last ({_mean(d, 'INNA', 'train')} training loss, "
            f"{_mean(d, 'INNA', 'test', 1)}% test accuracy), behind SGD ({_pair(d, 'SGD')}), "
            f"Adam ({_pair(d, 'Adam')}) and Adagrad ({_pair(d, 'Adagrad')})"
        ),
    ),
    (
        "fig4_decay_mnist",
        lambda d: f"({_mean(d, _Q[4], 'train')} against {_mean(d, _Q[2], 'train')} for q = 1/2",
    ),
    (
        "fig4_decay_mnist",
        lambda d: f"q = 1/8 ({_mean(d, _Q[8], 'train')}) and q = 1/16 ({_mean(d, _Q[16], 'train')}",
    ),
    (
        "fig4_decay_cifar10",
        lambda d: f"({_mean(d, _Q[4], 'train')} against {_mean(d, _Q[2], 'train')} at q = 1/2)",
    ),
    (
        "fig4_decay_cifar10",
        lambda d: f"(1/8: {_mean(d, _Q[8], 'train')}; 1/16: {_mean(d, _Q[16], 'train')})",
    ),
    (
        "fig4_decay_mnist_long",
        lambda d: f"({_mean(d, _Q[4], 'train')} against {_mean(d, _Q[2], 'train')} at q = 1/2)",
    ),
    (
        "fig4_decay_mnist_long",
        lambda d: (
            f"q = 1/8 ends at {_mean(d, _Q[8], 'train')} and q = 1/16 at "
            f"{_mean(d, _Q[16], 'train')}"
        ),
    ),
    ("innaprop_cifar_cifar10", _ran),
    ("fig2_sensitivity_cifar10", _ran),
    ("fig2_sensitivity_mnist", _ran),
    (
        "innaprop_cifar_cifar10",
        lambda d: (
            "ends at {} against AdamW's {}, well inside the seeds' spread; its test "
            "accuracy ends {:.1f} points lower".format(
                _mean(d, _B, "train"),
                _mean(d, _W, "train"),
                finals(_row(d, _W), "test").mean() - finals(_row(d, _B), "test").mean(),
            )
        ),
    ),
    (
        "innaprop_cifar_cifar10",
        lambda d: "ends at a higher training loss ({} against {}) and {:.1f} points lower".format(
            _mean(d, _A, "train"),
            _mean(d, _W, "train"),
            finals(_row(d, _W), "test").mean() - finals(_row(d, _A), "test").mean(),
        ),
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr",
        lambda d: f"ends at {_mean(d, _A)} against AdamW's {_mean(d, _W)}",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr",
        lambda d: (
            f"({_at(d, _A, 250, 2)} against {_at(d, _W, 250, 2)} at step 250, "
            f"{_at(d, _A, 500, 2)} against {_at(d, _W, 500, 2)} at step 500"
        ),
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr",
        lambda d: f"({_mean(d, _B)} against {_mean(d, _W)} at the end)",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr_10000",
        lambda d: f"AdamW ends at {_mean(d, _W)} validation loss",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr_10000",
        lambda d: f"INNAprop (2, 2) ({_mean(d, _A)}) and of INNAprop (0.1, 0.9) ({_mean(d, _B)})",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr_10000",
        lambda d: (
            f"({_mean(d, _W, 'train')}, level with (0.1, 0.9)'s {_mean(d, _B, 'train')}; "
            f"(2, 2) trails at {_mean(d, _A, 'train')})"
        ),
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr_10000",
        lambda d: f"({_at(d, _B, 3000)} against {_at(d, _W, 3000)} at step 3,000)",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr",
        lambda d: f"AdamW, 3 seeds, 2,000 steps: validation loss {_spread(d, _W, digits=4)}",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_same-lr",
        lambda d: "against nanoGPT's reported 1.88: {:.0f} times the range of the seeds".format(
            (finals(_row(d, _W), "valid").mean() - 1.88) / np.ptp(finals(_row(d, _W), "valid"))
        ),
    ),
    (
        "nanogpt_gpu",
        lambda d: "with the training loss at {:.2f}".format(
            np.asarray(d["train_loss_steps_per_seed"])[:, -1].mean()
        ),
    ),
    (
        "gpt_shakespeare_nanogpt-cpu",
        lambda d: "(2, 2) keeps 1e-3 ({}; 3e-3 is worse for it, {:.3f})".format(
            _mean(d, _A),
            _row(d, _A)["search_test_loss"][_row(d, _A)["grid"].index(3e-3)],
        ),
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_10000",
        lambda d: "with INNAprop's mean {:.3f} lower".format(
            finals(_row(d, _W), "valid").mean() - finals(_row(d, _B), "valid").mean()
        ),
    ),
    *(("fig1_nonsmooth", lambda d, i=i: _fig1(d)[i]) for i in range(7)),
    ("fig3_comparison_cifar10", _ran),
    ("fig4_decay_cifar10", _ran),
    ("fig3_comparison_cifar10", _fig3_curves),
    ("fig4_decay_cifar10", _fig4_curves),
    ("fig4_decay_cifar10", _lift),
    ("fig4_decay_cifar10", _against_adam),
    ("fig4_decay_mnist", _ran),
    ("fig4_decay_mnist", _against_adam),
    *(("fig4_decay_mnist", lambda d, i=i: _fig4_mnist(d)[i]) for i in range(3)),
    ("fig3_comparison_mnist_long", _ran),
    *(("fig3_comparison_mnist_long", lambda d, i=i: _long3(d)[i]) for i in range(4)),
    ("fig4_decay_mnist_long", _ran),
    *(("plateau_mnist_w0.5_625", lambda d, i=i: _keras(d)[i]) for i in range(2)),
    *(("plateau_cifar10_w1_300", lambda d, i=i: _wider(d)[i]) for i in range(5)),
    *(("normalisation_mnist", lambda d, i=i: _normalisation_mnist(d)[i]) for i in range(3)),
    *(("normalisation_cifar10", lambda d, i=i: _normalisation_cifar(d)[i]) for i in range(2)),
    *(("nanogpt_cpu_8192", lambda d, i=i: _recipe_many_windows(d)[i]) for i in range(4)),
    (
        "nanogpt_cpu_8192",
        lambda d: "{:.0f} s on cores shared with editing, {}, commit {}".format(
            d["wall_seconds"], d["date"][:10], d["commit"][:7]
        ),
    ),
    *(("plateau_mnist_w0.5_300", lambda d, i=i: _plateau_mnist(d)[i]) for i in range(10)),
    *(("fig4_decay_mnist_long", lambda d, i=i: _long4(d)[i]) for i in range(3)),
    (
        "fig4_decay_mnist_long",
        lambda d: "{} here against {}".format(
            _mean(d, _Q[2], "train"), _mean(load("fig3_comparison_mnist_long"), "INNA", "train")
        ),
    ),
    ("gpt_shakespeare", _against_adamw("at this scale")),
    ("gpt_shakespeare", _ran),
    *(("gpt_shakespeare", lambda d, i=i: _gpt_quick(d)[i]) for i in range(4)),
    ("fig3_comparison_mnist", _fig3_start),
    ("fig3_comparison_mnist", _ran),
    (
        "fig2_sensitivity_mnist",
        lambda d: "({} against {} at γ_0 = 1)".format(
            _mean(d, "(0.5, 1)", "train"), _mean(d, "(0.5, 0.1)", "train")
        ),
    ),
    ("fig2_sensitivity_mnist", _claim("sensitivity")),
    ("fig2_sensitivity_cifar10", _claim("sensitivity")),
    *((stem, _claim(c)) for stem in _FIG3_RUNS for c in ("speed", "accuracy")),
    *((stem, _claim(c)) for stem in _FIG4_RUNS for c in ("decay", "as fast as Adam")),
    ("innaprop_cifar_cifar10", _against_adamw("by the rule", ("train", "test"))),
    ("gpt_shakespeare_nanogpt-cpu_same-lr", _against_adamw("at this budget")),
    ("gpt_shakespeare_nanogpt-cpu_same-lr_10000", _against_adamw("at 10,000 steps")),
    (
        "gpt_shakespeare_nanogpt-cpu",
        _against_adamw("when each optimizer gets its own learning rate"),
    ),
    ("gpt_shakespeare_nanogpt-cpu_10000", _against_adamw("at 10,000 steps, tuned")),
    ("fig3_comparison_mnist", _quick_minutes),  # the presets' table
    ("fig3_comparison_mnist_medium", _orders),
    *(("fig3_comparison_mnist_medium", lambda d, i=i: _medium(d)[i]) for i in range(6)),
    *(("gpt_shakespeare_nanogpt-cpu_same-lr", lambda d, i=i: _gpt_same_lr(d)[i]) for i in range(5)),
    *(
        ("gpt_shakespeare_nanogpt-cpu_same-lr_10000", lambda d, i=i: _gpt_same_lr_long(d)[i])
        for i in range(4)
    ),
    *(
        ("gpt_shakespeare_nanogpt-cpu_10000", lambda d, i=i: _gpt_tuned_long(d)[i])
        for i in range(6)
    ),
    (
        "gpt_shakespeare_nanogpt-cpu",
        lambda d: f"AdamW reaches INNAprop (0.1, 0.9)'s final level at step {_reaches(d, _W, _B)}",
    ),
    ("gpt_shakespeare_nanogpt-cpu", lambda d: f"from 1.938 to {_mean(d, _W)}"),
    ("gpt_shakespeare_nanogpt-cpu", lambda d: f"(0.1, 0.9) gains from 3e-3 ({_mean(d, _B)})"),
    (
        "gpt_shakespeare_nanogpt-cpu_10000",
        lambda d: f"INNAprop (0.1, 0.9) ends at {_spread(d, _B)} against AdamW's {_spread(d, _W)}",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_10000",
        lambda d: f"({_at(d, _B, 3000)} against {_at(d, _W, 3000)} at step 3,000;",
    ),
    (
        "gpt_shakespeare_nanogpt-cpu_10000",
        lambda d: f"({_mean(d, _B, 'train')} against {_mean(d, _W, 'train')})",
    ),
    ("gpt_shakespeare_nanogpt-cpu_10000", lambda d: f"ends at {_mean(d, _A)}, every seed above"),
    (
        "nanogpt_torch",
        lambda d: "ends at {:.4f} [{:.4f}, {:.4f}] over 3 seeds".format(
            *(lambda v: (v.mean(), v.max(), v.min()))(
                np.asarray([r["valid_loss"][-1] for r in d["seeds_runs"]])
            )
        ),
    ),
    (
        "nanogpt_gpu",
        lambda d: "{:.4f} [{:.4f}, {:.4f}] (at steps {})".format(
            _lowest(d)[0].mean(),
            _lowest(d)[0].max(),
            _lowest(d)[0].min(),
            ", ".join(f"{s:,}" for s in _lowest(d)[1][:-1]) + f" and {_lowest(d)[1][-1]:,}",
        ),
    ),
    (
        "nanogpt_gpu",
        lambda d: "at step 5,000 the validation loss is {:.4f} [{:.4f}, {:.4f}]".format(
            *(lambda v: (v.mean(), v.max(), v.min()))(np.asarray(d["valid_loss_per_seed"])[:, -1])
        ),
    ),
    *_curve_cells(),
)


#: The numbers other pages quote, by the page's path in the repository.
def _step_row(data: dict, tree: str, optimizer: str) -> dict:
    """`optimizer`'s row on `tree` in `benchmarks.step_speed`'s JSON."""
    return next(r for r in data["rows"] if r["tree"] == tree and r["optimizer"] == optimizer)


def _step(data: dict, tree: str, optimizer: str, key: str = "ratio_to_sgd_momentum") -> str:
    """A ratio of `benchmarks.step_speed`'s JSON, as the page writes it (1.14x)."""
    return f"{_step_row(data, tree, optimizer)[key]:.2f}x"


def _tokens_per_step(data: dict) -> int:
    """A GPT run's tokens per replica step: its batch times its context."""
    return data["config"]["batch_size"] * data["config"]["context"]


def _speedup(row: dict, over: str, to: str) -> float:
    """Contender `over`'s steps per second over `to`'s in a row of a peer benchmark's
    JSON (``peer_speed``, ``gpt_peer_speed``)."""
    return row["steps_per_second"][over] / row["steps_per_second"][to]


def _nin_range(data: dict, over: str, to: str = "torch-inna") -> str:
    """The lowest and highest ratio of contender `over` to `to` across the rows of
    ``benchmarks.peer_speed``'s JSON, as the page writes them (0.83x to 1.24x)."""
    ratios = [_speedup(r, over, to) for r in data["rows"]]
    return f"{min(ratios):.2f}x to {max(ratios):.2f}x"


def _gpt_ratio(data: dict, shape: str) -> str:
    """Our AdamW step over PyTorch's at `shape` (``gpt_peer_speed``), as the page
    writes it (0.83x)."""
    row = next(r for r in data["rows"] if r["shape"] == shape)
    return f"{_speedup(row, 'jax', 'torch'):.2f}x"


_NO_COND = "matmul, pool no cond"
_GROUPS = (("28x28x1", 0.5), ("28x28x1", 1.0), ("32x32x3", 0.5), ("32x32x3", 1.0))


def _conv_ms(data: dict, variant: str, part: str = "forward+backward") -> list[float]:
    """``benchmarks.conv_speed``'s milliseconds of `variant` in each input and width
    group, in the page's order (MNIST 0.5, MNIST 1, CIFAR 0.5, CIFAR 1)."""
    rows = {(r["shape"], r["width"], r["variant"]): r for r in data["rows"]}
    return [rows[shape, width, variant][f"{part}_ms"] for shape, width in _GROUPS]


def _conv_pairs(data: dict, before: str, after: str, part: str = "forward+backward") -> str:
    """'a → b, ...' of two rows' times in each group, as the page writes them."""
    pairs = zip(_conv_ms(data, before, part), _conv_ms(data, after, part), strict=True)
    return ", ".join(f"{a:.1f} → {b:.1f}" for a, b in pairs)


def _conv_change(data: dict, before: str, after: str, part: str = "forward+backward") -> str:
    """The lowest and highest change from `before` to `after` across the groups, in
    percent of `before` ('10% to 14%'); negative: `after` is faster."""
    pairs = zip(_conv_ms(data, before, part), _conv_ms(data, after, part), strict=True)
    changes = sorted(100 * (b / a - 1) for a, b in pairs)
    return f"{changes[0]:.0f}% to {changes[-1]:.0f}%"


def _conv_ratios(data: dict, over: str, to: str, part: str = "forward+backward") -> str:
    """The lowest and highest ratio of two rows across the groups ('0.93x to 1.01x')."""
    pairs = zip(_conv_ms(data, over, part), _conv_ms(data, to, part), strict=True)
    ratios = sorted(a / b for a, b in pairs)
    return f"{ratios[0]:.2f}x to {ratios[-1]:.2f}x"


def _profile_shares(data: dict) -> str:
    """The GPT step's profile at the recipe's shape (``gpt_profile``), as the
    performance page's sentence gives it."""
    ms = profile(data)
    step, fwbw = ms[STEP], ms["forward+backward"]
    return (
        f"the forward costs {ms['forward'] / fwbw:.0%} of the forward and backward passes, "
        f"the optimizer {ms['optimizer'] / step:.0%} of the step, and the step took "
        f"{step / fwbw:.2f}x its forward and backward passes alone"
    )


def _rest_of_passes(data: dict) -> str:
    """The share of the forward and backward passes no piece of the profile explains."""
    ms = profile(data)
    pieces = sum(ms[piece] for piece in PROFILE_PIECES)
    return f"(about {1 - pieces / ms['forward+backward']:.0%})"


def _rest_of_step(data: dict) -> str:
    """The share and seconds of the step outside its parts."""
    ms = profile(data)
    return f"{ms['rest'] / ms[STEP]:.0%} of the step ({ms['rest'] / 1000:.1f} s)"


QUOTED_ELSEWHERE = {
    "docs/performance.md": (
        ("gpt_profile_cpu", _profile_shares),
        ("gpt_profile_cpu", _rest_of_passes),
        ("gpt_profile_default", _rest_of_step),
        (
            "train_speed_devices_28x28x1_w0.25",
            lambda d: "({:.2f}x at 0.25 on MNIST's shape, {:.0f} steps a second on one".format(
                d["rows"][1]["steps_per_second"] / d["rows"][0]["steps_per_second"],
                d["rows"][0]["steps_per_second"],
            ),
        ),
        *(
            ("conv_speed", quote)
            for quote in (
                lambda d: f"costs {_conv_change(d, 'matmul', 'matmul, vmapped')}** of",
                lambda d: f"({_conv_pairs(d, 'matmul', 'matmul, vmapped')})",
                lambda d: f"by {_conv_change(d, 'matmul, native pool', 'matmul')} (",
                lambda d: f"({_conv_pairs(d, 'matmul, native pool', 'matmul')})",
                lambda d: (
                    f"the passes take {_conv_change(d, 'matmul, native pool', _NO_COND)} more"
                ),
                lambda d: (
                    f"and {_conv_change(d, 'matmul', 'matmul, pool no cond')} more than the default"
                ),
                lambda d: f"is {_conv_ratios(d, 'matmul', 'native', 'forward')} native's",
                lambda d: f"passes {_conv_ratios(d, 'matmul', 'native')})",
                lambda d: f"({_conv_ratios(d, 'matmul 1x1 only', 'native')} native alone)",
                lambda d: (
                    f"changes the passes by {_conv_change(d, 'matmul 1x1 only', 'matmul')}, within"
                ),
                lambda d: f"slower ({_conv_ratios(d, 'matmul kxk only', 'native')})",
                lambda d: f"summed) {_conv_ratios(d, 'matmul, kxk by rows', 'matmul')};",
                lambda d: f"added up) {_conv_ratios(d, 'matmul, kxk hand grad', 'matmul')}.",
                lambda d: f"costs {_conv_change(d, 'matmul, no batch norm', 'matmul')} of the",
                lambda d: f"({_conv_pairs(d, 'matmul', 'matmul, no batch norm')} without it)",
                lambda d: f"ran {_conv_ratios(d, 'matmul, norm hand grad', 'matmul')} the gradient",
                lambda d: (
                    f"change the passes by {_conv_change(d, 'matmul, no dropout', 'matmul')} ("
                ),
            )
        ),
        ("peer_speed", lambda d: f"Our default step runs at {_nin_range(d, 'jax-auto')} PyTorch's"),
        (
            "peer_speed",
            lambda d: (
                f"On top of the heaps it ran {_nin_range(d, 'jax-auto-kept', 'jax-auto')} the"
            ),
        ),
        (
            "peer_speed",
            lambda d: "(kept / default {:.2f}x and {:.2f}x at width 0.125".format(
                *(
                    _speedup(r, "jax-auto-kept", "jax-auto")
                    for r in d["rows"]
                    if r["width"] == 0.125
                )
            ),
        ),
        (
            "gpt_peer_speed",
            lambda d: f"at both shapes: {_gpt_ratio(d, 'cpu')} at the recipe's",
        ),
        (
            "peer_speed",
            lambda d: f"(kept / default from {_nin_range(d, 'jax-auto-kept', 'jax-auto')}",
        ),
        ("step_speed", lambda d: f"it took {_step(d, 'dense_32M', 'inna')} momentum's time"),
        (
            "step_speed",
            lambda d: (
                f"({_step(d, 'nin_1M', 'inna_naive_psi')} and "
                f"{_step(d, 'dense_32M', 'inna_naive_psi')} in the table)"
            ),
        ),
        (
            "step_speed",
            lambda d: (
                f"runs at {_step(d, 'nin_1M', 'innaprop', 'ratio_to_adamw')} and "
                f"{_step(d, 'dense_32M', 'innaprop', 'ratio_to_adamw')} AdamW's step"
            ),
        ),
        (
            "gpt_peer_speed",
            lambda d: (
                "at nanoGPT's default shape (10.7M parameters, 16,384 tokens a step) "
                f"it runs at {_gpt_ratio(d, 'default')}"
            ),
        ),
        (
            "nanogpt_gpu",
            lambda d: "| {:.1f} | {:.1f} |".format(
                d["steps_per_second"], len(d["seeds"]) * d["steps_per_second"]
            ),
        ),
        ("nanogpt_gpu", lambda d: f"nanoGPT's GPU config ({d['n_params'] / 1e6:.1f}M parameters"),
        (
            "nanogpt_gpu",
            lambda d: "in one program run {:.2f}M tokens a second".format(
                len(d["seeds"]) * d["steps_per_second"] * _tokens_per_step(d) / 1e6
            ),
        ),
        (
            "step_speed",
            lambda d: "bytes / floor {:.2f} against momentum's {:.2f}".format(
                *(
                    _step_row(d, "nin_1M", name)["bytes_accessed_over_floor"]
                    for name in ("inna", "sgd_momentum")
                )
            ),
        ),
    ),
    "benchmarks/options.py": (  # --preset's help
        ("fig3_comparison_mnist", _quick_minutes),
        (
            "fig3_comparison_mnist_medium",
            lambda d: f"about {_hours('fig3_comparison_mnist_medium')}",
        ),
        (
            "fig3_comparison_mnist_long",
            lambda d: "{:.0f} to {:.0f} minutes on a CPU".format(
                *sorted(
                    _minutes(s) for s in ("fig3_comparison_mnist_long", "fig4_decay_mnist_long")
                )
            ),
        ),
    ),
    "docs/reproducing.md": (
        (
            "normalisation_mnist",
            lambda d: f"# without and with it, {_minutes('normalisation_mnist'):.0f} minutes",
        ),
        ("fig3_comparison_mnist", _quick_minutes),
        ("gpt_shakespeare", lambda d: f"(the GPT's quick preset took {_hours('gpt_shakespeare')})"),
        (
            "fig3_comparison_mnist_medium",
            lambda d: f"on a CPU in about {_hours('fig3_comparison_mnist_medium')} (Figure 3)",
        ),
        (
            "fig3_comparison_mnist_long",
            lambda d: (
                "({:,} per run on MNIST: {:.0f} minutes for Figure 3, {:.0f} for Figure 4".format(
                    d["config"]["epochs"]
                    * (d["config"]["train_examples"] // d["config"]["batch_size"]),
                    _minutes("fig3_comparison_mnist_long"),
                    _minutes("fig4_decay_mnist_long"),
                )
            ),
        ),
        (
            "nanogpt_gpu",
            lambda d: f"reports a best validation loss of {d['nanogpt_best_valid_loss']:.4f}",
        ),
    ),
}


def _quoted_for(page) -> tuple:
    where = page.relative_to(page.parents[1]).as_posix()
    return QUOTED_ELSEWHERE.get(where, QUOTED if page.name == "RESULTS.md" else ())


_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:x|%)?")


def unchecked(page) -> list[str]:
    """The numbers of `page`'s prose that no checked quote covers, each with the words
    around it: outside the generated tables, code, tables written by hand, links and
    the quotes of :func:`misquoted`. Settings, dates and the papers' own numbers are
    among them; read-off results are what the quotes should grow to cover."""
    from benchmarks.tables import BLOCK

    text = BLOCK.sub(" ", page.read_text())
    text = re.sub(r"```.*?```|`[^`]*`|!?\[([^\]]*)\]\([^)]*\)", r" \1 ", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("|"))
    flat = " ".join(text.split())
    covered = []
    for stem, quote in _quoted_for(page):
        data = load(stem)
        if data is not None:
            expected = quote(data)
            covered += [(m.start(), m.end()) for m in re.finditer(re.escape(expected), flat)]
    return [
        f"{m.group()}: ...{flat[max(0, m.start() - 50) : m.end() + 30]}..."
        for m in _NUMBER.finditer(flat)
        if not any(a <= m.start() < b for a, b in covered)
    ]


def misquoted(page) -> list[str]:
    """The quoted numbers of `page` (RESULTS.md's :data:`QUOTED`, or another page's
    in :data:`QUOTED_ELSEWHERE`; a path, or the results page's text) that it does not
    say as their JSON does, each as the text expected; line breaks count as spaces."""
    if isinstance(page, str):
        text, quoted = page, QUOTED
    else:
        text, quoted = page.read_text(), _quoted_for(page)
    flat = " ".join(text.split())
    missing, wanted = [], Counter()
    for stem, quote in quoted:
        data = load(stem)
        if data is None:
            continue
        expected = quote(data)
        wanted[expected] += 1  # a text several runs expect: once per run
        if flat.count(expected) < wanted[expected]:
            missing.append(f"{stem}: {expected!r}")
    return missing
