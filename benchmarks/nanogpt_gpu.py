"""nanoGPT's ``train_shakespeare_char`` config on a GPU (the ``nanogpt-gpu`` preset)
with AdamW, 3 seeds as replicas of one program, against nanoGPT's own result; with
``--preset nanogpt-cpu``, its CPU recipe the same way.

nanoGPT (karpathy/nanoGPT) keeps the checkpoint of the lowest validation loss seen
at its evaluations (``always_save_checkpoint = False``) and its README reports that
loss, 1.4697 after 5,000 iterations on one A100. The table gives, per seed, the
lowest validation loss over the evaluations (every 250 steps, 200 batches of 64
windows), the step where it fell, and the loss at the last step.

    python -m benchmarks.nanogpt_gpu --data ../shared/data/tinyshakespeare/input.txt
    python -m benchmarks.nanogpt_gpu --from-run DIR --machine "1 x NVIDIA H200"
    python -m benchmarks.nanogpt_gpu --preset nanogpt-cpu --test-examples 8192 \
        --data ../shared/data/tinyshakespeare/input.txt

The first trains (``python -m inna_optax.train --preset nanogpt-gpu --optimizer adamw
--seeds 0,1,2`` into ``--run-dir``); the second reads a finished run's directory.
Writes nanogpt_gpu.json and .png into --out (nanogpt_cpu.json for the CPU recipe,
nanogpt_cpu_N.json with N validation windows); prints the table last.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks import report

NANOGPT_BEST = 1.4697  # its README, shakespeare_char on one A100
# what nanoGPT's README reports for each preset's recipe: the GPU config's best
# validation loss, the CPU recipe's last
NANOGPT_REPORTED = {"nanogpt-gpu": NANOGPT_BEST, "nanogpt-cpu": 1.88}


def read_run(run_dir: Path) -> dict:
    """The curves of an `inna_optax.train` run of the gpt model: per-evaluation
    validation loss (replicas, evaluations) and per-window training loss."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run_dir / "run.json").read_text())["config"]
    summary = json.loads((run_dir / "summary.json").read_text())
    windows = np.concatenate([np.asarray(r["train_loss_steps"]) for r in records], axis=1)
    every, eval_every = config["log_every"], config["eval_every"]
    return {
        "config": config,
        "seeds": config["seeds"],
        "n_params": summary["n_params"],
        "steps_per_second": summary["steps_per_second"],
        "wall_seconds": summary["wall_seconds"],
        "eval_step": [r["epoch"] * eval_every for r in records],
        "valid_loss_per_seed": np.stack([r["test_loss"] for r in records], axis=1),
        "window_end_step": (np.arange(1, windows.shape[1] + 1) * every).tolist(),
        "train_loss_steps_per_seed": windows,
    }


def _recipe(result: dict) -> str:
    """What the run trained, as the table and the title name it."""
    cpu = result.get("preset") == "nanogpt-cpu"
    return "CPU recipe" if cpu else "shakespeare_char config"


def table(result: dict) -> str:
    valid = np.asarray(result["valid_loss_per_seed"])
    best, at = valid.min(1), np.asarray(result["eval_step"])[valid.argmin(1)]
    last = valid[:, -1]
    steps = result["config"]["steps"]
    recipe = _recipe(result)
    return "\n".join(
        [
            f"nanoGPT's {recipe} ({result['n_params']:,} parameters, "
            f"{steps:,} steps, AdamW) on {result['machine']}: validation loss, mean "
            f"[worst, best] over {len(best)} seeds",
            f"  lowest over the evaluations: {best.mean():.4f} [{best.max():.4f}, "
            f"{best.min():.4f}] at steps {', '.join(str(s) for s in at)} "
            f"(nanoGPT's README: {result['nanogpt_best_valid_loss']})",
            f"  at step {steps:,}: {last.mean():.4f} [{last.max():.4f}, {last.min():.4f}]",
            f"{result['wall_seconds']:.0f} s ({result['steps_per_second']:.1f} steps/s "
            f"of {len(best)} replicas)",
        ]
    )


def plot(result: dict, out: Path) -> Path:
    series = [("AdamW", result["train_loss_steps_per_seed"], result["valid_loss_per_seed"])]
    fig, _, ax_v = report.language_panels(series, result["window_end_step"], result["eval_step"])
    reported, recipe = result["nanogpt_best_valid_loss"], _recipe(result)
    ax_v.axhline(reported, color="k", lw=0.8, ls="--", label=f"nanoGPT's README, {reported}")
    ax_v.legend(fontsize=8)
    fig.suptitle(
        f"nanoGPT's {recipe} ({result['n_params']:,} parameters, dropout "
        f"{result['config']['dropout']:g}) on Tiny Shakespeare, AdamW:\nmean, best and worst "
        f"of {len(result['seeds'])} seeds, on {result['machine']}",
        fontsize=9,
    )
    return report.save_png(fig, out, result.get("name", "nanogpt_gpu"))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="FILE", help="Tiny Shakespeare's input.txt: train")
    source.add_argument("--from-run", metavar="DIR", help="read a finished run instead")
    p.add_argument("--preset", default="nanogpt-gpu", choices=sorted(NANOGPT_REPORTED))
    p.add_argument("--test-examples", type=int, help="validation windows (default: the preset's)")
    p.add_argument("--run-dir", help="where --data trains (default: results/<preset>)")
    p.add_argument("--machine", help="with --from-run: the machine it ran on (default: this)")
    p.add_argument("--out", default="results/figures")
    args = p.parse_args(argv)
    if args.data:
        from inna_optax import train

        flags = ["--preset", args.preset, "--optimizer", "adamw", "--seeds", "0,1,2"]
        if args.test_examples:
            flags += ["--test-examples", str(args.test_examples)]
        run_dir = args.run_dir or f"results/{args.preset}"
        code = train.main([*flags, "--data-dir", args.data, "--out", run_dir])
        if code:
            return code
    run_dir = Path(args.from_run or args.run_dir or f"results/{args.preset}")
    try:
        result = read_run(run_dir)
    except (OSError, KeyError, ValueError) as e:
        raise SystemExit(f"error: {run_dir}: not a finished run of the gpt model ({e})") from None
    name = args.preset.replace("-", "_")
    if args.test_examples:
        name += f"_{args.test_examples}"
    result = {
        "machine": args.machine or report.machine(),
        "command": "python -m benchmarks.nanogpt_gpu " + " ".join(argv),
        "preset": args.preset,
        "name": name,
        "nanogpt_best_valid_loss": NANOGPT_REPORTED[args.preset],
        **result,
    }
    out = Path(args.out)
    report.write_json(out, name, result)  # its "machine" is the run's
    plot(result, out)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
