"""nanoGPT's CPU recipe trained in PyTorch, scored on our validation windows: is our
AdamW's loss at 2,000 steps nanoGPT's level?

nanoGPT's README reports one number for its CPU recipe, a loss of 1.88, from one run
scored on 20 random batches. Here the recipe runs as nanoGPT runs it, in PyTorch: the
peer GPT of `benchmarks.torch_gpt` with nanoGPT's own exact GELU and LayerNorm epsilon
1e-5, its training loop transcribed (12 windows drawn at random with replacement per
step, its learning-rate function: a linear warm-up to 1e-3 over 100 steps then a
cosine to 1e-4 at 2,000, AdamW with betas (0.9, 0.99) and weight decay 0.1 on the
tensors of 2 or more dimensions, gradients clipped at 1), with PyTorch's seeds. Each
seed is scored on the same fixed draw of validation windows as ``python -m
inna_optax.train --preset nanogpt-cpu --test-examples N``, so the two compare on the
same text. PyTorch is the optional ``peer`` extra.

    python -m benchmarks.nanogpt_torch --data ../shared/data/tinyshakespeare/input.txt

Writes nanogpt_torch.json into --out; prints the table last.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import report
from inna_optax.training import DataError, prepare, preset

RECIPE = dict(lr=1e-3, min_lr=1e-4, warmup=100, betas=(0.9, 0.99), weight_decay=0.1, clip=1.0)


def nanogpt_lr(it: int, steps: int, lr: float = 1e-3, min_lr: float = 1e-4, warmup: int = 100):
    """nanoGPT's ``get_lr`` with ``lr_decay_iters = steps``."""
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > steps:
        return min_lr
    ratio = (it - warmup) / (steps - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def train_seed(seed: int, split, config, steps: int, eval_every: int) -> dict:
    """One seed of the recipe (`config`'s shape and batch) in PyTorch: the validation
    loss on `split`'s windows every `eval_every` steps, and the seconds."""
    import torch
    import torch.nn.functional as F

    from benchmarks import torch_gpt

    torch.manual_seed(seed)
    context = split.x_train.shape[1]
    model = torch_gpt.GPT(
        split.num_classes,
        context,
        config.layers,
        config.heads,
        config.embed_dim,
        config.dropout_rate,
        bias=False,
        tie_embeddings=True,
        gelu="none",
        eps=1e-5,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": RECIPE["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=RECIPE["lr"], betas=RECIPE["betas"])
    x_valid, y_valid = (
        torch.from_numpy(np.ascontiguousarray(a, np.int64)) for a in (split.x_test, split.y_test)
    )

    def validation_loss() -> float:
        model.eval()
        with torch.no_grad():
            total = sum(
                F.cross_entropy(
                    model(x_valid[i : i + 512]).flatten(0, 1),
                    y_valid[i : i + 512].flatten(),
                    reduction="sum",
                ).item()
                for i in range(0, len(x_valid), 512)
            )
        model.train()
        return total / y_valid.numel()

    curve, start = [], time.perf_counter()
    for it in range(steps):
        for group in opt.param_groups:
            group["lr"] = nanogpt_lr(it, steps)
        ix = torch.randint(len(split.x_train), (config.batch_size,)).numpy()
        x, y = (
            torch.from_numpy(np.asarray(a[ix], np.int64)) for a in (split.x_train, split.y_train)
        )
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), RECIPE["clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (it + 1) % eval_every == 0:
            curve.append(validation_loss())
    return {"valid_loss": curve, "seconds": time.perf_counter() - start}


def table(result: dict) -> str:
    last = np.asarray([r["valid_loss"][-1] for r in result["seeds_runs"]])
    return "\n".join(
        [
            f"nanoGPT's CPU recipe in PyTorch, {result['steps']:,} steps, scored on "
            f"{result['valid_windows']:,} validation windows: mean [worst, best] over "
            f"{len(last)} seeds",
            f"  validation loss {last.mean():.4f} [{last.max():.4f}, {last.min():.4f}] "
            f"(nanoGPT's README: 1.88 on 20 random batches)",
            f"{result['seconds']:.0f} s",
        ]
    )


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, metavar="FILE", help="Tiny Shakespeare's input.txt")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--test-examples", type=int, default=8192, help="validation windows")
    p.add_argument("--threads", type=int, default=2, help="PyTorch's intra-op threads")
    p.add_argument("--out", default="results/figures")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("error: needs PyTorch: pip install -e '.[peer]'") from None
    torch.set_num_threads(args.threads)
    config = preset("nanogpt-cpu", data_dir=args.data, test_examples=args.test_examples)
    try:
        split = prepare(config.validate(), strict=True)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [train_seed(s, split, config, args.steps, args.eval_every) for s in seeds]
    result = {
        "command": "python -m benchmarks.nanogpt_torch " + " ".join(argv),
        "torch": torch.__version__,
        "steps": args.steps,
        "seeds": seeds,
        "valid_windows": len(split.x_test),
        "eval_step": list(range(args.eval_every, args.steps + 1, args.eval_every)),
        "recipe": RECIPE,
        "seconds": sum(r["seconds"] for r in runs),
        "seeds_runs": runs,
    }
    report.write_json(Path(args.out), "nanogpt_torch", result)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
