"""The generated tables of the results and performance pages, computed from the committed
JSON.

    python -m benchmarks.tables            # rewrites every generated table in place
    python -m benchmarks.tables --check    # exit 1, naming each table that differs
    python -m benchmarks.tables --unchecked  # the prose's numbers no quote checks yet

Both also check the numbers the prose quotes from a JSON (:data:`benchmarks.quotes.QUOTED`):
each must appear in the page as its JSON gives it, or the command exits 1 naming it.

A generated table sits in a page between two comments, ``<!-- table: KIND ARGUMENT
-->`` and ``<!-- end table -->``; what lies between them is this module's output and
is overwritten. The kinds:

- ``finals STEM``: each arm's learning rate and its final values, mean [worst, best]
  over the seeds, from ``benchmarks/results/STEM.json``;
- ``search STEM``: the learning rates each arm's search tried, the search's final
  loss on each (seed 0), and the pick;
- ``verdicts GROUP``: the claims of ``verdicts.CLAIMS[GROUP]``, each judged by the rule
  on every run it names;
- ``plateau STEM``: a plateau probe (``benchmarks.plateau``), a row per setting;
  ``normalisation STEM``: each optimizer on the plain and the batch-normalised NiN
  (``benchmarks.normalisation``);
- ``peer STEM``: the GPT's steps per second against PyTorch's, a row per shape;
  ``nin_peer STEM``: the NiN's, a row per input and width; ``conv STEM``: where the
  NiN step's time goes, a row per way of computing its convolutions; ``step STEM``:
  one optimizer step against SGD-momentum's; ``profile STEM``: where the GPT's step
  spends its time; ``devices PREFIX``: the NiN on one CPU device and on several, a
  row per ``PREFIX_*.json`` (the performance page).

The verdicts follow the rule stated in RESULTS.md, applied by
:mod:`benchmarks.verdicts`.
"""

import argparse
import dataclasses
import json
import re
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = tuple(
    ROOT / page for page in ("benchmarks/RESULTS.md", "docs/performance.md", "docs/reproducing.md")
)

# files besides the pages whose text quotes a JSON (a help text's run times)
QUOTING_FILES = (ROOT / "benchmarks" / "options.py",)
# what a metric is called, and whether lower is better
METRICS = {
    "train": ("training loss", True),
    "test": ("test accuracy", False),
    "valid": ("validation loss", True),
}


def load(stem: str) -> dict | None:
    path = RESULTS / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else None


def required(stem: str) -> dict:
    """:func:`load` for a table, which cannot be written without its JSON."""
    data = load(stem)
    if data is None:
        raise SystemExit(f"tables: no benchmarks/results/{stem}.json")
    return data


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


def finals_table(stem: str) -> list[str]:
    data = required(stem)
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


# The runs whose JSON records no commit, by their date: the commit that added the JSON
# to the repository (`git log --diff-filter=A -- benchmarks/results/NAME.json`). The
# code that made each is that commit's or older.
COMMITTED_IN = {
    "2026-11-29 19:32": "ad36b97",  # fig3_comparison_mnist_medium
}


def provenance(data: dict) -> str:
    """Where a JSON came from: its date and its commit (or, when it records none, the
    commit that added it: its code is that one's or older, so stale until rerun)."""
    commit = data.get("commit")
    if commit:
        made = f"commit `{commit[:7]}{'+changes' if commit.endswith('+changes') else ''}`"
    elif data.get("date") in COMMITTED_IN:
        made = (
            f"no commit recorded; committed in `{COMMITTED_IN[data['date']]}`, so made by "
            "that commit's code or older: stale until rerun"
        )
    else:
        made = (
            "no commit recorded (the code that made it may differ from today's: stale until rerun)"
        )
    return f"run {data.get('date', 'on an unrecorded date')}, {made}"


def search_table(stem: str) -> list[str]:
    data = required(stem)
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


STEP_NAMES = {"inna_naive_psi": "plain eq. (12) storing ψ"}
STEP_TREES = {"nin_1M": "NiN", "dense_32M": "dense"}


def step_table(stem: str) -> list[str]:
    """One optimizer step against SGD-momentum's (``benchmarks.step_speed``): a row per
    tree and optimizer; INNA's and INNAprop's ratios to their twins in bold."""
    data = required(stem)
    lines = [
        "| tree | optimizer | median ms | vs sgd-momentum | state / params bytes "
        "| bytes / floor | copies | vs adamw |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    adamw = {r["tree"]: r["median_ms"] for r in data["rows"] if r["optimizer"] == "adamw"}
    for r in data["rows"]:
        size = r["n_params"] / 1e6
        tree = f"{STEP_TREES.get(r['tree'], r['tree'])}, {size:.{2 if size < 1 else 1}f}M"
        ours = r["optimizer"] in ("inna", "innaprop")
        name = STEP_NAMES.get(r["optimizer"], r["optimizer"])
        ms = r["median_ms"]
        to_sgd = f"{r['ratio_to_sgd_momentum']:.2f}x"
        # INNAprop's twin is AdamW (the same state size and arrays per step)
        twinned = r["optimizer"] in ("adamw", "innaprop")
        to_adamw = f"{ms / adamw[r['tree']]:.2f}x" if twinned else ""
        copies = f"{r['copies']} (the scalar count)" if r["optimizer"] == "inna" else r["copies"]
        cells = [
            tree,
            f"**{name}**" if ours else name,
            f"{ms:.3f}" if ms < 1 else f"{ms:.2f}",
            f"**{to_sgd}**" if r["optimizer"] == "inna" else to_sgd,
            f"{r['state_over_params_bytes']:.2f}",
            f"{r['bytes_accessed_over_floor']:.2f}",
            str(copies),
            f"**{to_adamw}**" if r["optimizer"] == "innaprop" else to_adamw,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    meta = data["meta"]
    lines.append(
        f"Medians of the {meta['preset']} preset's repetitions, jax {meta['jax']}, optax "
        f"{meta['optax']}; {provenance({'date': meta['date'], **data})}."
    )
    return lines


PEER_SHAPES = {"cpu": "nanoGPT's CPU recipe", "default": "nanoGPT's default"}


def peer_table(stem: str) -> list[str]:
    """The GPT's steps per second against PyTorch's (``benchmarks.gpt_peer_speed``),
    a row per shape."""
    data = required(stem)
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
    lines.append("")
    lines.append(f"Steps per second, the median of the blocks; {provenance(data)}.")
    return lines


NIN_CONTENDERS = {  # peer_speed's contender: the column's heading
    "jax-native": "ours, native",
    "jax-auto": "ours (default)",
    "jax-auto-kept": "ours, kept",
    "jax-auto-one-heap": "ours, one heap",
    "torch-inna": "PyTorch, INNA",
    "torch-sgd": "PyTorch, SGD",
}


def nin_peer_table(stem: str) -> list[str]:
    """The NiN's training steps per second against PyTorch's (``benchmarks.peer_speed``):
    a row per input and width, a column per contender, each of ours with its ratio to
    PyTorch's INNA beside its rate (one cell, so the table fits a page's width)."""
    data = required(stem)
    names = data["contenders"]
    base = "torch-inna"
    heads = [NIN_CONTENDERS.get(n, n) for n in names]
    lines = [
        "| input | NiN width | " + " | ".join(heads) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in heads) + " |",
    ]
    for row in data["rows"]:
        r = row["steps_per_second"]
        cells = [
            f"{r[n]:.1f} ({r[n] / r[base]:.2f}x)"
            if n.startswith("jax") and base in r
            else f"{r[n]:.1f}"
            for n in names
        ]
        lines.append(f"| {row['shape']} | {row['width']:g} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Steps per second, the median of {data['rounds']} interleaved blocks of "
        f"{data['block']} steps, and ours over PyTorch's INNA in brackets; "
        f"{data['machine']}; {provenance(data)}."
    )
    return lines


CONV_VARIANTS = {  # conv_speed's row: how the performance page names it
    "matmul": "matmul (the CPU default)",
    "matmul 1x1 only": "matmul for 1 x 1 only",
    "matmul kxk only": "matmul for k x k only",
    "matmul, no batch norm": "matmul, no batch normalisation",
    "matmul, pool no cond": "matmul, pooling without its conditional",
    "matmul, kxk by rows": "matmul, k x k by kernel rows",
    "matmul, kxk hand grad": "matmul, k x k with a hand-written gradient",
    "matmul, norm hand grad": "matmul, batch normalisation with a hand-written gradient",
}


def conv_table(stem: str) -> list[str]:
    """Milliseconds per forward and forward-and-backward pass of each way of computing
    NiN's convolutions and pooling (``benchmarks.conv_speed``), with the ratio to the
    native row of the same input and width."""
    data = required(stem)
    lines = [
        "| input | width | variant | forward | forward + backward |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    native = {(r["shape"], r["width"]): r for r in data["rows"] if r["variant"] == "native"}
    for r in data["rows"]:
        base = native[r["shape"], r["width"]]
        cells = [
            f"{r[k]:.1f}" if r is base else f"{r[k]:.1f} ({r[k] / base[k]:.2f}x)"
            for k in ("forward_ms", "forward+backward_ms")
        ]
        name = CONV_VARIANTS.get(r["variant"], r["variant"])
        lines.append(f"| {r['shape']} | {r['width']:g} | {name} | {' | '.join(cells)} |")
    lines.append("")
    lines.append(
        f"Milliseconds per call, the median of {data['rounds']} interleaved blocks of "
        f"{data['block']} calls, batch {data['batch_size']}, {data['device']}; "
        f"{data['machine']}; {provenance(data)}."
    )
    return lines


STEP = "step (the command's)"  # gpt_profile's name of the whole step
PROFILE_PARTS = {  # gpt_profile's part: how the performance page names it
    STEP: "the step (`Trainer.run`, the batch gathered on the host)",
    "forward": "forward",
    "forward+backward": "forward and backward",
    "optimizer": "the optimizer's update ({optimizer}, clipping, decay)",
}
PROFILE_PIECES = {  # a piece made trivial: what the forward and backward passes lose
    "GELU": "GELU (what making it the identity saves)",
    "attention": "attention's scores, softmax and weighted sum",
    "layer norm": "layer norm",
}
OPTIMIZER_NAMES = {"adamw": "AdamW", "innaprop": "INNAprop"}


def _ms(value: float) -> str:
    """Milliseconds as the performance page writes them: 44.7, 1.2, 28,300."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def profile(data: dict) -> dict[str, float]:
    """Milliseconds of each row of :func:`profile_table`, by the JSON's part names,
    with each piece's cost and the rest of the step (``rest``) computed."""
    ms = data["ms"]
    fwbw = ms["forward+backward"]
    out = {part: ms[part] for part in PROFILE_PARTS}
    out |= {piece: fwbw - ms[f"forward+backward, no {piece}"] for piece in PROFILE_PIECES}
    out["rest"] = ms[STEP] - fwbw - ms["optimizer"]
    return out


def profile_table(stem: str) -> list[str]:
    """Where the GPT's training step spends its time (``benchmarks.gpt_profile``): the
    step, its parts compiled alone, and what each piece of the blocks costs."""
    data = required(stem)
    ms = profile(data)
    step = ms[STEP]
    optimizer = OPTIMIZER_NAMES.get(data["optimizer"], data["optimizer"])
    names = {k: v.format(optimizer=optimizer) for k, v in PROFILE_PARTS.items()}
    names |= PROFILE_PIECES | {"rest": "the rest: the step less forward, backward and update"}
    lines = ["| part | ms | share of the step |", "| --- | ---: | ---: |"]
    lines += [f"| {names[k]} | {_ms(v)} | {v / step:.0%} |" for k, v in ms.items()]
    shape = data["shape"]
    lines.append("")
    lines.append(
        f"{shape['layers']} layers of {shape['embed_dim']}, context {shape['context']}, batch "
        f"{shape['batch_size']}; milliseconds per call, the median of {data['rounds']} "
        f"interleaved rounds of {data['block']} call{'s' if data['block'] > 1 else ''} on one "
        f"{data['backend'].upper()} device; "
        f"{data['machine']}; {provenance(data)}."
    )
    return lines


def devices_table(prefix: str) -> list[str]:
    """Training steps per second of the NiN on one CPU device and on several
    (``benchmarks.train_speed --cpu-devices N``), a row per run named
    ``PREFIX_*.json``, by input and width."""
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{prefix}_*.json"))]
    if not runs:
        raise SystemExit(f"tables: no benchmarks/results/{prefix}_*.json")
    runs.sort(key=lambda d: ([int(v) for v in d["args"]["shape"].split(",")], d["args"]["width"]))
    n = {d["args"]["cpu_devices"] for d in runs}
    if len(n) != 1:
        raise SystemExit(f"tables: {prefix}_*.json compare different device counts {sorted(n)}")
    (n,) = n
    lines = [
        f"| NiN width, input | steps/s, 1 device | {n} devices | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    ratios = []
    for d in runs:
        rates = {r["optimizer"].split("@")[1]: r["steps_per_second"] for r in d["rows"]}
        one, several = rates["1cpu"], rates[f"{n}cpu"]
        ratios.append(several / one)
        run = f"{d['args']['width']:g}, {d['args']['shape'].replace(',', 'x')}"
        lines.append(f"| {run} | {one:.1f} | {several:.1f} | {several / one:.2f}x |")
    args = runs[0]["args"]
    commits = {d.get("commit") for d in runs}
    dates = sorted(d["date"] for d in runs)
    if len(commits) == 1 and dates[0][:10] == dates[-1][:10]:  # one session's runs
        made = [provenance({**runs[0], "date": f"{dates[0]} to {dates[-1][11:]}"})]
    else:
        made = sorted({provenance(d) for d in runs})
    lines.append("")
    lines.append(
        f"Steps per second of `{args['optimizers']}`, the median of {args['chunks']} "
        f"interleaved chunks of {args['chunk_steps']} steps, batch {args['batch_size']}, random "
        f"data; {runs[0]['machine']}; {'; '.join(made)}. Two devices ran the step "
        f"{min(ratios):.2f}x to {max(ratios):.2f}x as fast as one."
    )
    return lines


def config_of(data: dict):
    """A result's Config, rebuilt from its JSON (fields added since take their defaults)."""
    from inna_optax.training import Config  # JAX, for the tables that need it only

    names = {f.name for f in dataclasses.fields(Config)}
    values = {k: v for k, v in data["config"].items() if k in names}
    return Config(**{**values, "seeds": tuple(values.get("seeds", (0,)))})


def _fraction(q: float) -> str:
    """A decay power as the pages write it: 1/2."""
    return str(Fraction(q).limit_denominator(64))


INITS = {
    "he": "He",
    "lecun": "LeCun",
    "glorot": "Glorot",
    "keras": "Keras 2.2 (std 0.05)",
}


def initialisation(init: str) -> str:
    """A plateau probe's NiN as the page writes it: its kernels, and BatchNorm if added."""
    kernels = INITS[init.removesuffix("+bn")]
    return f"{kernels} + BatchNorm" if init.endswith("+bn") else kernels


def plateau_table(stem: str) -> list[str]:
    """The plateau probe (``benchmarks.plateau``): per setting, the initial loss and
    logits, the pre-activation RMS at initialisation and the dead ReLUs at the end of
    the odd convolutions, and the mean loss of the first and the last window."""
    from benchmarks.report import plain_name  # JAX, as config_of

    data = required(stem)
    steps, window = data["steps"], data["window"]
    lines = [
        "| NiN, optimizer, γ_0 | initial loss, logits' std | pre-activation RMS at "
        f"initialisation | dead ReLUs after {steps} steps | mean loss, steps 1-{window} "
        f"→ {steps - window + 1}-{steps} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in data["rows"]:
        rms = " ".join(f"{v:.2f}" for v in row["preact_rms_init"][::2])
        dead = " ".join(f"{v:.2f}" for v in row["dead_end"][::2])
        first, last = row["loss_windows"][0], row["loss_windows"][-1]
        loss = f"{first:.3f} → {last:.3f}" if np.isfinite([first, last]).all() else "non-finite"
        setting = f"{initialisation(row['init'])}, {arm(row)} {rate(row['lr'])}"
        start = f"{row['init_loss']:.2f}, {row['init_logit_std']:.3f}"
        lines.append(
            f"| {setting} | {start} | {rms} | {dead if np.isfinite(last) else ''} | {loss} |"
        )
    config = config_of(data)
    lines.append("")
    lines.append(
        f"{plain_name(data)}, {data['train_examples']:,} training images, NiN width "
        f"{config.width:g}, seed {config.seeds[0]}, batch {config.batch_size}, dropout "
        f"{config.dropout_rate:g}, q = {_fraction(config.decay_power)}, ψ_0 {config.psi_init}; "
        "RMS and dead fractions of convolutions 1, 3, 5, 7 and 9 in training mode on a "
        f"random batch of 256; `{data['command']}`; {provenance(data)}."
    )
    return lines


def normalisation_table(stem: str) -> list[str]:
    """Each optimizer on the plain NiN and on the batch-normalised one
    (``benchmarks.normalisation``): its γ_0, and the training loss and test accuracy
    of every epoch."""
    from benchmarks.report import plain_name  # JAX, as config_of

    data = required(stem)
    rows = {(r["optimizer"], r["norm"]): r for r in data["rows"]}
    lines = [
        "| optimizer | plain NiN: γ_0, training loss, test accuracy | batch-normalised NiN: "
        "γ_0, training loss, test accuracy |",
        "| --- | --- | --- |",
    ]

    def cell(row):
        loss = " → ".join(f"{v:.3f}" for v in row["train_loss"]["mean"])
        accuracy = " → ".join(f"{100 * v:.2f}%" for v in row["test_accuracy"]["mean"])
        return f"{rate(row['lr'])}: {loss}, {accuracy}"

    for name in dict.fromkeys(r["optimizer"] for r in data["rows"]):
        plain, norm = rows[(name, False)], rows[(name, True)]
        lines.append(f"| {arm(plain)} | {cell(plain)} | {cell(norm)} |")
    config = config_of(data)
    epochs = len(data["rows"][0]["train_loss"]["mean"])
    lines.append("")
    lines.append(
        f"{plain_name(data)}, {data['train_examples']:,} training images, "
        f"{data['test_examples']:,} test images, NiN width {config.width:g}, "
        f"{epochs} epoch{'s' if epochs > 1 else ''} of batch {config.batch_size}, seed "
        f"{config.seeds[0]}, dropout {config.dropout_rate:g}, q = {_fraction(config.decay_power)}, "
        f"ψ_0 {config.psi_init}; the training loss is each epoch's mean mini-batch loss "
        f"(dropout on), epoch by epoch; `{data['command']}`; {provenance(data)}."
    )
    return lines


def render(kind: str, argument: str) -> list[str]:
    if kind == "profile":
        return profile_table(argument)
    if kind == "devices":
        return devices_table(argument)
    if kind == "peer":
        return peer_table(argument)
    if kind == "nin_peer":
        return nin_peer_table(argument)
    if kind == "conv":
        return conv_table(argument)
    if kind == "step":
        return step_table(argument)
    if kind == "finals":
        return finals_table(argument)
    if kind == "plateau":
        return plateau_table(argument)
    if kind == "normalisation":
        return normalisation_table(argument)
    if kind == "search":
        return search_table(argument)
    if kind == "verdicts":
        from benchmarks import verdicts  # it builds on this module

        return {"inna": verdicts.inna_table, "innaprop": verdicts.innaprop_table}[argument]()
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
    p.add_argument(
        "--unchecked",
        action="store_true",
        help="change nothing; list each page's prose numbers that no checked quote covers",
    )
    args = p.parse_args(argv)
    if args.unchecked:
        from benchmarks.quotes import unchecked

        for page in PAGES:
            numbers = unchecked(page)
            print(f"{page.relative_to(ROOT)}: {len(numbers)} numbers outside a checked quote")
            for line in numbers:
                print("  " + line)
        return 0
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
    for page in (*PAGES, *QUOTING_FILES):
        quoted += [f"{page.relative_to(ROOT)} does not say {line}" for line in misquoted(page)]
    for line in quoted:
        print(f"misquoted: {line}")
    return 1 if (stale and args.check) or quoted else 0


if __name__ == "__main__":
    sys.exit(main())
