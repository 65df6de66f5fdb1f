"""Training speed against PyTorch: our NiN step and the same network in PyTorch.

Each contender runs in its own warm process (compiled, warmed up), and the
processes take turns: in each round every process runs a block of steps while
the others wait, so all see the same machine state. Per shape (MNIST's 28x28x1,
CIFAR's 32x32x3) and NiN width, it prints steps/s and the ratio of ours to
PyTorch with the INNA authors' update (:class:`benchmarks.torch_nin.INNA`):

- ``jax-native``: the training command's step with XLA's convolution and max pooling
  (``--conv native``);
- ``jax-auto``: the same with the default ``--conv auto`` (on a CPU, matrix-product
  convolutions and strided-slice pooling);
- ``jax-auto-kept``: ``jax-auto`` with ``--keep-freed-memory``, and ``jax-auto-one-heap``:
  ``jax-auto`` with its temporaries in one allocation as XLA:CPU places them by
  default (:func:`inna_optax.training.devices.compiler_options` turned off); neither
  is run unless named in ``--contenders``;
- ``torch-inna``, ``torch-sgd``: PyTorch's NiN with INNA and with ``torch.optim.SGD``.

All train INNA or SGD at batch 32 on the same random images, batch
normalisation on (``--no-norm`` for the plain NiN), dropout 0.5, each drawing its
batch from host memory at every step; ours on the CPU devices the command
line would make (one per core). Needs the ``peer`` extra (PyTorch).

    python -m benchmarks.peer_speed                          # widths 0.25, 0.5, 1; both shapes
    python -m benchmarks.peer_speed --widths 0.5 --shapes 28,28,1 --rounds 3

Writes peer_speed.json into --out; prints the table last.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONTENDERS = ("jax-native", "jax-auto", "torch-inna", "torch-sgd")  # the default run
OPTIONAL = ("jax-auto-kept", "jax-auto-one-heap")
SHAPES = ("28,28,1", "32,32,3")
BASE = "torch-inna"


def _images(shape: tuple[int, ...], n: int = 2048):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    return x, y


def jax_settings(spec: dict):
    """The configuration and heap limit of our contender `spec`: ``jax-<conv>``, then
    ``-kept`` (``--keep-freed-memory``) or ``-one-heap`` (XLA's own heaps: no limit
    per allocation)."""
    from inna_optax.training import Config, devices

    config = Config(
        width=spec["width"],
        batch_size=spec["batch_size"],
        norm=spec["norm"],
        dropout=0.5,
        conv=spec["name"].split("-")[1],
        keep_freed_memory=spec["name"].endswith("-kept"),
    )
    one_heap = spec["name"].endswith("-one-heap")
    return config, -1 if one_heap else devices.CPU_HEAP_LIMIT


def _jax_worker(spec: dict):
    """A function running `count` steps of the training command's step."""
    from inna_optax.training import Split, devices, trainer

    config, heap_limit = jax_settings(spec)
    devices.set_cpu_devices(config)  # the command line's devices: one per core
    devices.keep_freed_memory(config)  # with --keep-freed-memory, as the command line
    x, y = _images(tuple(spec["shape"]))
    t = trainer.setup(config, Split(x, y, x[:1], y[:1], 10, "random"), heap_limit=heap_limit)
    bs = config.batch_size
    return stepper(t, x, y, lambda k: np.arange(k * bs, (k + 1) * bs) % len(x))


def stepper(trainer, x, y, batch):
    """`run(count)`: `count` more training steps of `trainer`'s first replica group
    on the examples ``batch(k)`` of each step k, waited for as `fit` waits."""
    import jax

    state, hp, k = trainer.init()[0], trainer.group_hparams(0), 0

    def run(count: int) -> None:
        nonlocal state, k
        steps = range(k, k + count)
        state, loss = trainer.run_to_end(state, 0, x, y, lambda i: batch(i)[None], steps, hp)
        jax.block_until_ready(loss)
        k += count

    return run


def _torch_worker(spec: dict):
    import torch
    import torch.nn.functional as F

    from benchmarks import torch_nin

    torch.manual_seed(0)
    shape = tuple(spec["shape"])
    model = torch_nin.NiN(10, shape[-1], spec["width"], 0.5, spec["norm"]).train()
    if spec["name"] == "torch-inna":
        opt = torch_nin.INNA(model.parameters(), lr=1.0, alpha=0.5, beta=0.1, decay_power=0.5)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = _images(shape)
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(y.astype(np.int64))
    bs, k = spec["batch_size"], 0

    def run(count: int) -> None:
        nonlocal k
        for _ in range(count):
            idx = torch.arange(k * bs, (k + 1) * bs) % len(x)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            k += 1

    return run


def worker(spec: dict) -> None:
    """Builds the contender, then serves it (:func:`serve`)."""
    serve((_jax_worker if spec["name"].startswith("jax") else _torch_worker)(spec), spec["warmup"])


def serve(run, warmup: int) -> None:
    """A worker's loop: `run(count)` runs `count` steps; warms up, then runs blocks of
    steps on request: reads a count per line on stdin, answers the seconds it took."""
    run(warmup)
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        start = time.perf_counter()
        run(int(line))
        print(time.perf_counter() - start, flush=True)


def _start(name: str, args, shape, width: float) -> subprocess.Popen:
    spec = dict(
        name=name,
        shape=shape,
        width=width,
        norm=args.norm,
        batch_size=args.batch_size,
        warmup=args.warmup,
    )
    return start("benchmarks.peer_speed", spec)


def start(module: str, spec: dict) -> subprocess.Popen:
    """The worker of contender `spec` (``python -m <module> --worker <spec>``), ready."""
    name = spec["name"]
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--worker", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"peer_speed: the {name} worker failed to start (its stderr is above)")
    return proc


def measure(args, shape: tuple[int, ...], width: float) -> dict[str, float]:
    """Median steps/s of each contender, in interleaved blocks."""
    return interleave(
        lambda name: _start(name, args, list(shape), width),
        args.contenders,
        args.rounds,
        args.block,
    )


def interleave(start_one, names, rounds: int, block: int) -> dict[str, float]:
    """Median steps/s of each contender `start_one(name)` starts, the workers taking
    turns for `rounds` rounds of `block` steps each."""
    procs = {}
    try:
        for name in names:  # one at a time: compiling would disturb a running one
            procs[name] = start_one(name)
        rates = {name: [] for name in procs}
        for _ in range(rounds):
            for name, proc in procs.items():
                proc.stdin.write(f"{block}\n")
                proc.stdin.flush()
                rates[name].append(block / float(proc.stdout.readline()))
        return {name: float(np.median(r)) for name, r in rates.items()}
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()


def table(result: dict) -> str:
    names = result["contenders"]
    ours = [n for n in names if n.startswith("jax")]
    rate_w = {n: max(11, len(n)) for n in names}  # each column as wide as its name
    ratio_w = {n: max(22, len(n) + len(BASE) + 1) for n in ours}
    norm = "with" if result["norm"] else "without"
    lines = [
        f"NiN {norm} batch normalisation, batch {result['batch_size']}, {result['machine']}, "
        f"{result['rounds']} interleaved blocks of {result['block']} steps; ratios to {BASE}",
        f"{'shape':<9} {'width':>5} "
        + " ".join(f"{n:>{rate_w[n]}}" for n in names)
        + "".join(f" {n + '/' + BASE:>{ratio_w[n]}}" for n in ours),
    ]
    for row in result["rows"]:
        rates = row["steps_per_second"]
        line = f"{row['shape']:<9} {row['width']:>5g} " + " ".join(
            f"{rates[n]:{rate_w[n]}.1f}" for n in names
        )
        if BASE in rates:
            line += "".join(f" {rates[n] / rates[BASE]:{ratio_w[n] - 1}.2f}x" for n in ours)
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="0.25,0.5,1", help="NiN widths, comma-separated")
    p.add_argument("--shapes", default=";".join(SHAPES), help="H,W,C;H,W,C")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--block", type=int, default=20, help="steps per block")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--no-norm", dest="norm", action="store_false")
    p.add_argument("--out", default="results/peer_speed")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    if unknown := set(args.contenders) - set(CONTENDERS + OPTIONAL):
        p.error(
            f"--contenders: unknown {sorted(unknown)}; choose from {list(CONTENDERS + OPTIONAL)}"
        )
    if any(c.startswith("torch") for c in args.contenders):
        try:
            import torch  # noqa: F401
        except ImportError:
            p.error('PyTorch is not installed: pip install -e ".[peer]"')
    rows = []
    for shape_text in args.shapes.split(";"):
        shape = tuple(int(v) for v in shape_text.split(","))
        for width in (float(w) for w in args.widths.split(",")):
            rates = measure(args, shape, width)
            rows.append(
                {"shape": "x".join(map(str, shape)), "width": width, "steps_per_second": rates}
            )
            print(
                f"{shape_text} width {width:g}: "
                + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()),
                flush=True,
            )
    result = {
        "contenders": args.contenders,
        "norm": args.norm,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "block": args.block,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "argv": list(sys.argv[1:] if argv is None else argv),
        "rows": rows,
    }
    from benchmarks.report import write_json  # the commit of the code that ran, too

    write_json(Path(args.out), "peer_speed", result)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
