"""Training speed of the character-level GPT against the same GPT in PyTorch.

Each contender runs in its own warm process and the processes take turns, as in
`benchmarks.peer_speed`: in each round every process runs a block of steps while the
others wait. Both train with AdamW (weight decay 0.1 on the matrices, gradients
clipped at 1, warm-up then cosine), each drawing its batch of random windows from
host memory at every step:

- ``jax``: the training command's step (`inna_optax.training.setup` and
  `Trainer.step`) on the CPU devices the command line would make (one per core);
- ``jax-innaprop``: the same with INNAprop (0.1, 0.9);
- ``torch``: `benchmarks.torch_gpt` in eager mode with ``torch.optim.AdamW``.

Shapes (``--shapes``): ``cpu``, nanoGPT's CPU recipe for Tiny Shakespeare (4 layers,
4 heads, 128 wide, context 64, batch 12), and ``default``, its train_shakespeare_char
config (6 layers, 6 heads, 384 wide, context 256, batch 64). Needs the ``peer`` extra.

    python -m benchmarks.gpt_peer_speed
    python -m benchmarks.gpt_peer_speed --shapes cpu --rounds 3

Writes gpt_peer_speed.json into --out; prints the table last.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.peer_speed import interleave, serve, start, stepper

SHAPES = {
    "cpu": dict(layers=4, heads=4, embed_dim=128, context=64, batch_size=12),
    "default": dict(layers=6, heads=6, embed_dim=384, context=256, batch_size=64),
}
CONTENDERS = ("jax", "jax-innaprop", "torch")
VOCAB = 65  # Tiny Shakespeare's characters


def _windows(context: int, n: int = 100_000):
    ids = np.random.default_rng(0).integers(0, VOCAB, n + 1).astype(np.int32)
    view = np.lib.stride_tricks.sliding_window_view
    return view(ids[:-1], context), view(ids[1:], context)


def _jax_worker(spec: dict):
    from inna_optax.training import Config, Split, devices, trainer

    shape = SHAPES[spec["shape"]]
    optimizer = "innaprop" if spec["name"] == "jax-innaprop" else "adamw"
    config = Config(
        model="gpt", dataset="text", data_dir="-", optimizer=optimizer, lr=1e-3,
        schedule="cosine", warmup=100, final_lr_ratio=0.1, weight_decay=0.1, clip=1.0,
        steps=10_000, eval_every=10_000, **shape,
    )  # fmt: skip
    devices.set_cpu_devices(config)  # the command line's devices: one per core
    x, y = _windows(config.context)
    t = trainer.setup(config, Split(x, y, x[:1], y[:1], VOCAB, "random"))
    rng, bs = np.random.default_rng(1), config.batch_size
    return stepper(t, x, y, lambda k: rng.integers(0, len(x), bs))


def _torch_worker(spec: dict):
    import torch
    import torch.nn.functional as F

    from benchmarks import torch_gpt

    torch.manual_seed(0)
    shape = SHAPES[spec["shape"]]
    model = torch_gpt.GPT(VOCAB, shape["context"], shape["layers"], shape["heads"],
                          shape["embed_dim"]).train()  # fmt: skip
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": matrices, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3)
    x, y = (torch.from_numpy(a.astype(np.int64)) for a in _windows(shape["context"]))
    rng, bs = np.random.default_rng(1), shape["batch_size"]

    def run(count: int) -> None:
        for _ in range(count):
            idx = torch.from_numpy(rng.integers(0, len(x), bs))
            logits = model(x[idx])
            loss = F.cross_entropy(logits.view(-1, VOCAB), y[idx].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

    return run


def table(result: dict) -> str:
    names = result["contenders"]
    ours = [n for n in names if n.startswith("jax")]
    lines = [
        f"GPT training steps per second, {result['machine']}, {result['rounds']} interleaved "
        f"blocks of {result['block']} steps; ratios to torch (AdamW, eager)",
        f"{'shape':<8} " + " ".join(f"{n:>12}" for n in names)
        + "".join(f" {n + '/torch':>18}" for n in ours if "torch" in names),
    ]  # fmt: skip
    for row in result["rows"]:
        rates = row["steps_per_second"]
        line = f"{row['shape']:<8} " + " ".join(f"{rates[n]:12.1f}" for n in names)
        if "torch" in rates:
            line += "".join(f" {rates[n] / rates['torch']:17.2f}x" for n in ours)
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="cpu,default", help="cpu, default, comma-separated")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--block", type=int, default=20, help="steps per block")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", default="results/peer_speed")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        work = _jax_worker if spec["name"].startswith("jax") else _torch_worker
        serve(work(spec), spec["warmup"])
        return 0
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if unknown := (set(contenders) - set(CONTENDERS)) | (set(shapes) - set(SHAPES)):
        p.error(f"unknown {sorted(unknown)}: contenders {CONTENDERS}, shapes {tuple(SHAPES)}")
    if "torch" in contenders:
        try:
            import torch  # noqa: F401
        except ImportError:
            p.error('PyTorch is not installed: pip install -e ".[peer]"')
    rows, begin = [], time.strftime("%Y-%m-%d")
    for shape in shapes:
        rates = interleave(
            lambda name, shape=shape: start(
                "benchmarks.gpt_peer_speed", dict(name=name, shape=shape, warmup=args.warmup)
            ),
            contenders,
            args.rounds,
            args.block,
        )
        rows.append({"shape": shape, **SHAPES[shape], "steps_per_second": rates})
        print(f"{shape}: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()), flush=True)
    result = {
        "date": begin,
        "contenders": contenders,
        "rounds": args.rounds,
        "block": args.block,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "python -m benchmarks.gpt_peer_speed "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "rows": rows,
    }
    from benchmarks.report import write_json  # the commit of the code that ran, too

    write_json(Path(args.out), "gpt_peer_speed", result)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
