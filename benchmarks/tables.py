"""The tables and verdicts of `benchmarks/RESULTS.md`, computed from the committed JSON.

    python -m benchmarks.tables            # rewrites every generated table in place
    python -m benchmarks.tables --check    # exit 1, naming each table that differs

Both also check the numbers the prose quotes from a JSON (:data:`benchmarks.quotes.QUOTED`):
each must appear in the page as its JSON gives it, or the command exits 1 naming it.

A generated table sits in a page between two comments, ``<!-- table: KIND ARGUMENT
-->`` and ``<!-- end table -->``; what lies between them is this module's output and
is overwritten. The kinds:

- ``finals STEM``: each arm's learning rate and its final values, mean [worst, best]
  over the seeds, from ``benchmarks/results/STEM.json``;
- ``search STEM``: the learning rates each arm's search tried, the search's final
  loss on each (seed 0), and the pick;
- ``verdicts GROUP``: the claims of ``CLAIMS[GROUP]``, each judged by the rule below
  on every run it names.

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

import argparse
import dataclasses
import itertools
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = tuple(
    ROOT / page for page in ("benchmarks/RESULTS.md", "docs/performance.md", "docs/reproducing.md")
)

# what a metric is called, and whether lower is better
METRICS = {
    "train": ("training loss", True),
    "test": ("test accuracy", False),
    "valid": ("validation loss", True),
}


def load(stem: str) -> dict | None:
    path = RESULTS / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else None


def arm(row: dict) -> str:
    """A row's name as the pages write it."""
    if "name" in row:
        return row["name"]
    if "optimizer" in row:
        return {"inna": "INNA", "sgd": "SGD", "adagrad": "Adagrad", "adam": "Adam"}.get(
            row["optimizer"], row["optimizer"]
        )
    return f"({row['alpha']:g}, {row['beta']:g})"


def finals(row: dict, metric: str) -> np.ndarray | None:
    """The seeds' final values of `metric` in `row` (accuracies in percent)."""
    key = {
        "train": "train_loss_per_seed",
        "test": "test_accuracy_per_seed",
        "valid": "valid_loss_per_seed",
    }[metric]
    if key not in row or (metric == "test" and "valid_loss_per_seed" in row):
        return None  # a language model's accuracy is not the claim's
    values = np.array([seed[-1] for seed in row[key]], np.float64)
    return values * 100 if metric == "test" else values


def number(value: float, metric: str) -> str:
    return f"{value:.1f}%" if metric == "test" else f"{value:.3f}"


def spread(values: np.ndarray, metric: str) -> str:
    """mean [worst, best], as the scripts print it."""
    lower = METRICS[metric][1]
    worst, best = (values.max(), values.min()) if lower else (values.min(), values.max())
    digits = 2 if metric == "test" else 4
    return f"{values.mean():.{digits}f} [{worst:.{digits}f}, {best:.{digits}f}]"


def rate(lr: float) -> str:
    """A learning rate as the pages write it: 3e-4, 0.01, 1, 3."""
    if lr >= 0.01:
        return f"{lr:g}"
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e-{int(exponent[1:])}"


# ---------------------------------------------------------------- the rule


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


def verdicts_inna() -> list[str]:
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


def verdicts_innaprop() -> list[str]:
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


def finals_table(stem: str) -> list[str]:
    data = load(stem)
    if data is None:
        raise SystemExit(f"tables: no benchmarks/results/{stem}.json")
    rows = data["rows"]
    metrics = [m for m in METRICS if finals(rows[0], m) is not None]
    seeds = len(finals(rows[0], metrics[0]))
    heads = [f"{METRICS[m][0]}{' %' if m == 'test' else ''}" for m in metrics]
    lines = [
        f"| arm | learning rate | {' | '.join(heads)} |",
        "| --- | ---: |" + " ---: |" * len(metrics),
    ]
    for row in rows:
        lr = row.get("lr", data.get("lr"))
        cells = [spread(finals(row, m), m).replace("%", "") for m in metrics]
        lines.append(f"| {arm(row)} | {rate(lr) if lr else ''} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Final values, mean [worst, best] over {seeds} seeds; {provenance(data)}.")
    return lines


def provenance(data: dict) -> str:
    """Where a JSON came from: its date, its commit (or that it predates their
    recording, so its code may differ from today's) and its command."""
    commit = data.get("commit")
    made = (
        f"commit `{commit[:7]}{'+changes' if commit.endswith('+changes') else ''}`"
        if commit
        else "no commit recorded (the run predates their recording: stale until rerun)"
    )
    return f"run {data.get('date', 'on an unrecorded date')}, {made}"


def search_table(stem: str) -> list[str]:
    data = load(stem)
    if data is None:
        raise SystemExit(f"tables: no benchmarks/results/{stem}.json")
    key, what = next(
        (k, w)
        for k, w in (
            ("search_train_loss", "final training loss"),
            ("search_test_loss", "final validation loss"),
        )
        if k in data["rows"][0]
    )
    lines = [
        f"| arm | learning rates searched ({what}, seed 0) | pick |",
        "| --- | --- | --- |",
    ]
    for row in data["rows"]:
        tried = []
        for lr, loss in zip(row["grid"], row[key], strict=True):
            cell = f"{rate(lr)} ({loss:.3f})"
            tried.append(f"**{cell}**" if lr == row["lr"] else cell)
        where = "on the ladder's edge" if row.get("lr_at_grid_edge") else "interior"
        lines.append(f"| {arm(row)} | {', '.join(tried)} | {rate(row['lr'])}, {where} |")
    return lines


PEER_SHAPES = {"cpu": "nanoGPT's CPU recipe", "default": "nanoGPT's default"}


def peer_table(stem: str) -> list[str]:
    """The GPT's steps per second against PyTorch's (``benchmarks.gpt_peer_speed``),
    a row per shape."""
    data = load(stem)
    if data is None:
        raise SystemExit(f"tables: no benchmarks/results/{stem}.json")
    lines = [
        "| shape | ours, AdamW (steps/s) | ours, INNAprop | PyTorch, AdamW | ours / PyTorch "
        "| INNAprop / PyTorch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in data["rows"]:
        r = row["steps_per_second"]
        shape = (
            f"{PEER_SHAPES.get(row['shape'], row['shape'])}: {row['layers']} layers of "
            f"{row['embed_dim']}, context {row['context']}, batch {row['batch_size']}"
        )
        rates = [f"{r[k]:.3g}" for k in ("jax", "jax-innaprop", "torch")]
        ratios = [f"{r[k] / r['torch']:.2f}x" for k in ("jax", "jax-innaprop")]
        lines.append(f"| {shape} | {' | '.join(rates)} | {' | '.join(ratios)} |")
    return lines


def render(kind: str, argument: str) -> list[str]:
    if kind == "peer":
        return peer_table(argument)
    if kind == "finals":
        return finals_table(argument)
    if kind == "search":
        return search_table(argument)
    if kind == "verdicts":
        return {"inna": verdicts_inna, "innaprop": verdicts_innaprop}[argument]()
    raise SystemExit(f"tables: unknown table kind {kind!r}")


BLOCK = re.compile(r"(<!-- table: (\w+) ([\w.-]+) -->\n)(.*?)(<!-- end table -->)", re.DOTALL)


def regenerate(text: str) -> tuple[str, list[str]]:
    """`text` with every generated table rendered anew, and the names of those that
    changed."""
    changed = []

    def fill(match):
        body = "\n".join(render(match[2], match[3])) + "\n"
        if body != match[4]:
            changed.append(f"{match[2]} {match[3]}")
        return match[1] + body + match[5]

    return BLOCK.sub(fill, text), changed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.tables",
        description="Rewrite the generated tables of the results pages from their JSON.",
    )
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = p.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text()
        new, changed = regenerate(text)
        stale += [f"{page.relative_to(ROOT)}: {name}" for name in changed]
        if changed and not args.check:
            page.write_text(new)
    for line in stale:
        print(("stale: " if args.check else "rewrote: ") + line)
    from benchmarks.quotes import misquoted  # it builds on this module

    quoted = []
    for page in PAGES:
        quoted += [f"{page.relative_to(ROOT)} does not say {line}" for line in misquoted(page)]
    for line in quoted:
        print(f"misquoted: {line}")
    return 1 if (stale and args.check) or quoted else 0


if __name__ == "__main__":
    sys.exit(main())
