"""The verdicts of the results page: the claims of the papers (:data:`CLAIMS`), each
judged by the rule on every run it names, and the tables of them.

The rule (stated in RESULTS.md, applied here). An arm's final value is its mean over
the seeds, with the range from its worst seed to its best. One arm is *ahead* of
another when its worst seed is better than the other's best (the ranges apart), *level*
when the two ranges overlap, *behind* otherwise. A claim is a list of comparisons,
each "ahead" (A ahead of B), "not behind" (A level with or ahead of B, the INNAprop
paper's "matches or outperforms") or "level". A comparison *holds* when its ranges say so, holds
*in the mean only* when an "ahead" has the better mean but overlapping ranges, and
*fails* otherwise. The claim **holds** when every comparison holds, is **not
reproduced** when none holds even in the mean, and holds **partly** otherwise.
"""

import dataclasses
import itertools

import numpy as np

from benchmarks.tables import METRICS, arm, finals, load, number


def relation(a: np.ndarray, b: np.ndarray, metric: str) -> str:
    """The relation, "ahead", "level" or "behind", of `a`'s seeds against `b`'s by the rule."""
    sign = 1.0 if METRICS[metric][1] else -1.0
    a, b = sign * a, sign * b
    if a.max() < b.min():
        return "ahead"
    if a.min() > b.max():
        return "behind"
    return "level"


def better_mean(a: np.ndarray, b: np.ndarray, metric: str) -> bool:
    return (a.mean() < b.mean()) if METRICS[metric][1] else (a.mean() > b.mean())


@dataclasses.dataclass(frozen=True)
class Comparison:
    a: str
    claim: str  # "ahead", "not behind" or "level"
    b: str
    metric: str


def judge(comparison: Comparison, rows: dict) -> str:
    """The judgement, "holds", "mean" (an "ahead" in the mean only) or "fails"."""
    a = finals(rows[comparison.a], comparison.metric)
    b = finals(rows[comparison.b], comparison.metric)
    found = relation(a, b, comparison.metric)
    if comparison.claim == "ahead":
        if found == "ahead":
            return "holds"
        return "mean" if better_mean(a, b, comparison.metric) else "fails"
    if comparison.claim == "not behind":
        return "fails" if found == "behind" else "holds"
    if comparison.claim == "level":
        return "holds" if found == "level" else "fails"
    raise ValueError(f"unknown claim {comparison.claim!r}")


def verdict(judgements: list[str]) -> str:
    if all(j == "holds" for j in judgements):
        return "holds"
    if all(j == "fails" for j in judgements):
        return "not reproduced"
    return "partly"


def chain(names: list[str], rows: dict, metric: str) -> str:
    """The arms from best to worst mean, "<" (or ">" for accuracies) between two
    whose ranges are apart, "≈" between two whose ranges overlap."""
    values = {n: finals(rows[n], metric) for n in names}
    lower = METRICS[metric][1]
    order = sorted(names, key=lambda n: values[n].mean(), reverse=not lower)
    parts = [f"{order[0]} {number(values[order[0]].mean(), metric)}"]
    for previous, name in zip(order, order[1:], strict=False):
        apart = relation(values[previous], values[name], metric) == "ahead"
        sign = ("<" if lower else ">") if apart else "≈"
        parts.append(f"{sign} {name} {number(values[name].mean(), metric)}")
    return " ".join(parts)


@dataclasses.dataclass(frozen=True)
class Claim:
    text: str
    comparisons: tuple[Comparison, ...]
    figure: str  # the JSON stem without its run suffix


def _all(pairs, claim, metric):
    return tuple(Comparison(a, claim, b, metric) for a, b in pairs)


SETTINGS = ("(0.1, 0.1)", "(0.5, 0.1)", "(0.5, 0.5)", "(0.5, 1)")
Q = {4: "INNA k^-1/4", 2: "INNA k^-1/2", 8: "INNA k^-1/8"}
CLAIMS = {
    # Castera et al.: one column per run of each figure script
    "inna": (
        Claim(
            "INNA is not very sensitive to (α, β): the four settings level (Fig. 2)",
            _all(itertools.combinations(SETTINGS, 2), "level", "train"),
            "fig2_sensitivity",
        ),
        Claim(
            "INNA and Adam train faster than SGD and Adagrad (Fig. 3)",
            _all(
                [(x, y) for x in ("INNA", "Adam") for y in ("SGD", "Adagrad")],
                "ahead",
                "train",
            ),
            "fig3_comparison",
        ),
        Claim(
            "slower decays train faster, unless too slow: q = 1/4 and 1/8 ahead of 1/2 (Fig. 4)",
            _all([(Q[4], Q[2]), (Q[8], Q[2])], "ahead", "train"),
            "fig4_decay",
        ),
        Claim(
            "INNA with a k^(−1/4) decay trains at least as fast as Adam (Fig. 4)",
            _all([(Q[4], "Adam")], "not behind", "train"),
            "fig4_decay",
        ),
        Claim(
            "INNA's test accuracy is competitive: not behind SGD, Adagrad, Adam (Fig. 3)",
            _all([("INNA", o) for o in ("SGD", "Adagrad", "Adam")], "not behind", "test"),
            "fig3_comparison",
        ),
    ),
    # Bolte et al.: "consistently matches or outperforms AdamW"
    "innaprop": tuple(
        Claim(
            f"{name} matches or outperforms AdamW",
            _all([(name, "AdamW")], "not behind", metric),
            "",
        )
        for name in ("INNAprop (2, 2)", "INNAprop (0.1, 0.9)")
        for metric in ("train", "test", "valid")
    ),
}
# the columns of the INNA claims: run suffix -> heading
INNA_RUNS = {
    "_mnist": "MNIST, quick (1,000 steps)",
    "_cifar10": "CIFAR-10, quick (500 steps)",
    "_mnist_long": "MNIST, long (10,000 steps)",
}
# the rows of the INNAprop claims: stem -> (the paper's setting, ours)
INNAPROP_RUNS = {
    "innaprop_cifar_cifar10": (
        "CIFAR-10 (their VGG and ResNets, 200 epochs)",
        "NiN width 0.125, 3,200 images, 800 steps, each rate searched by training loss",
    ),
    "gpt_shakespeare_nanogpt-cpu_same-lr": (
        "GPT-2 from scratch (OpenWebText, 100k steps, one learning rate for all)",
        "nanoGPT's CPU recipe on Tiny Shakespeare, 2,000 steps, every arm at 1e-3",
    ),
    "gpt_shakespeare_nanogpt-cpu_same-lr_10000": (
        "the same",
        "the same, 10,000 steps",
    ),
    "gpt_shakespeare_nanogpt-cpu": (
        "the same",
        "the same recipe, each rate picked by validation loss, 2,000 steps",
    ),
    "gpt_shakespeare_nanogpt-cpu_10000": (
        "the same",
        "the same, 10,000 steps (on a GPU)",
    ),
    "gpt_shakespeare": (
        "the same",
        "context 128, batch 32, 400 steps, each rate searched by training loss",
    ),
}


def _rows(data: dict) -> dict:
    return {arm(row): row for row in data["rows"]}


def _judged(claim: Claim, rows: dict) -> tuple[str, str] | None:
    """(verdict, evidence) of `claim` on one run, or None when the run lacks a
    metric or an arm the claim needs."""
    needed = {n for c in claim.comparisons for n in (c.a, c.b)}
    metric = claim.comparisons[0].metric
    if not needed <= rows.keys() or any(finals(rows[n], metric) is None for n in needed):
        return None
    judgements = [judge(c, rows) for c in claim.comparisons]
    mean_only = sum(j == "mean" for j in judgements)
    held = sum(j == "holds" for j in judgements)
    count = f"{held} of {len(judgements)}" + (f" (+{mean_only} in the mean)" if mean_only else "")
    evidence = f"{count}: {chain(sorted(needed), rows, metric)}"
    return verdict(judgements), evidence


def judged_claim(claim: Claim, data: dict) -> str:
    """The verdict on `claim` of the run whose JSON is `data`."""
    judged = _judged(claim, _rows(data))
    if judged is None:
        raise ValueError(f"the run lacks an arm or a metric of {claim.text!r}")
    return judged[0]


def inna_table() -> list[str]:
    lines = [
        "| the paper's claim | " + " | ".join(INNA_RUNS.values()) + " |",
        "| --- |" + " --- |" * len(INNA_RUNS),
    ]
    for claim in CLAIMS["inna"]:
        cells = []
        for suffix in INNA_RUNS:
            data = load(claim.figure + suffix)
            judged = data and _judged(claim, _rows(data))
            cells.append(f"**{judged[0]}**, {judged[1]}" if judged else "not run")
        lines.append(f"| {claim.text} | " + " | ".join(cells) + " |")
    return lines


def innaprop_table() -> list[str]:
    lines = [
        "| the claim, on | our setting | arm, on | verdict, comparisons holding: order |",
        "| --- | --- | --- | --- |",
    ]
    for stem, (theirs, ours) in INNAPROP_RUNS.items():
        data = load(stem)
        if data is None:
            continue
        rows = _rows(data)
        first = True
        for claim in CLAIMS["innaprop"]:
            judged = _judged(claim, rows)
            if judged is None:
                continue
            label = f"{claim.comparisons[0].a}, {METRICS[claim.comparisons[0].metric][0]}"
            head = f"| {theirs} | {ours} |" if first else "| | |"
            lines.append(f"{head} {label} | **{judged[0]}**, {judged[1]} |")
            first = False
    return lines
