"""Train the paper's NiN with INNA or a baseline optimizer.

    python -m inna_optax.train                       # embedded digits, INNA, prints test accuracy
    python -m inna_optax.train --dataset mnist --data-dir ../shared/data/mnist --width 0.5

One compiled train step serves every run: it is vmapped over a leading axis of
seeds (`--seeds 0,1,2` trains the replicas together, each with its own
initialisation, data order and dropout), and the batch axis is sharded over all
local devices (parameters replicated). Each epoch appends the mean training
loss, test loss and accuracy to OUT/metrics.jsonl and saves an orbax
checkpoint; OUT/summary.json holds the final figures and the configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import inna_optax
from inna_optax import data as data_lib
from inna_optax.models import NiN, count_params

DEFAULT_LR = {"inna": 0.1, "sgd": 0.1, "adagrad": 0.01, "adam": 1e-3}


@dataclasses.dataclass
class Config:
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    cache_dir: str = "~/.cache/inna_optax"
    optimizer: str = "inna"
    lr: float | None = None  # gamma_0; None: DEFAULT_LR[optimizer]
    alpha: float = 0.5
    beta: float = 0.1
    decay_power: float = 0.5
    psi_init: str = "params"
    epochs: int = 10
    batch_size: int = 32
    width: float = 1.0
    dropout: float | None = None  # None: 0.5 (the paper's NiN), 0 on the 8x8 digits
    train_examples: int | None = None
    seeds: tuple[int, ...] = (0,)
    out: str = "results/train"
    resume: bool = False
    progress: bool = True
    devices: int | None = None  # local devices for data parallelism; None: all


class NonFiniteLoss(RuntimeError):
    pass


def make_optimizer(cfg: Config) -> optax.GradientTransformation:
    """INNA and SGD use gamma_0 (k+1)^-q (paper, 5.2.1); Adam and Adagrad a constant gamma_0."""
    lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.optimizer]
    if cfg.optimizer == "inna":
        return inna_optax.inna(
            inna_optax.inverse_power_decay(lr, cfg.decay_power),
            cfg.alpha,
            cfg.beta,
            psi_init=cfg.psi_init,
        )
    if cfg.optimizer == "sgd":
        return optax.sgd(inna_optax.inverse_power_decay(lr, cfg.decay_power))
    if cfg.optimizer == "adam":
        return optax.adam(lr)
    if cfg.optimizer == "adagrad":
        return optax.adagrad(lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_steps(graphdef, tx):
    """Jitted train and eval steps, vmapped over a leading axis of replicas.

    `tx` is an optax transformation shared by all replicas, or a function of
    per-replica hyperparameters returning one (a sweep: `tx(**hparams)`, with
    `hparams` a dict of (replicas,) arrays passed as the train step's last
    argument, and to `jax.vmap(lambda p, h: tx(**h).init(p))` for the state).
    """
    make_tx = None if isinstance(tx, optax.GradientTransformation) else tx

    def loss_fn(params, x, y, key, train):
        logits = nnx.merge(graphdef, params)(x, train=train, key=key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

    def train_step(params, opt_state, x, y, seed, step, hparams):
        key = jax.random.fold_in(jax.random.key(seed), step)
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y, key, True)
        opt = make_tx(**hparams) if make_tx is not None else tx
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def eval_step(params, x, y, mask):
        logits = nnx.merge(graphdef, params)(x)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
        return jnp.sum(losses * mask), jnp.sum(correct * mask)

    vmapped = jax.jit(jax.vmap(train_step, in_axes=(0, 0, 0, 0, 0, None, 0)), donate_argnums=(0, 1))

    def train_step_fn(params, opt_state, x, y, seeds, step, hparams=None):
        return vmapped(params, opt_state, x, y, seeds, step, {} if hparams is None else hparams)

    eval_step = jax.jit(jax.vmap(eval_step, in_axes=(0, None, None, None)))
    return train_step_fn, eval_step


def init_replicas(cfg: Config, in_channels: int, num_classes: int):
    dropout = cfg.dropout if cfg.dropout is not None else (0.0 if cfg.dataset == "digits" else 0.5)
    models = [
        NiN(num_classes, in_channels, cfg.width, dropout, rngs=nnx.Rngs(s)) for s in cfg.seeds
    ]
    graphdef, _ = nnx.split(models[0])
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *[nnx.split(m)[1] for m in models])
    return graphdef, params, count_params(models[0])


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """Deterministic data order of one replica for one epoch."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def evaluate(eval_step, params, x, y, batch=500):
    n = len(x)
    total_loss, total_correct = 0.0, 0.0
    for start in range(0, n, batch):
        xb, yb = x[start : start + batch], y[start : start + batch]
        mask = np.ones(len(xb), np.float32)
        if len(xb) < batch and n > batch:  # pad to one compiled shape
            pad = batch - len(xb)
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
            mask = np.concatenate([mask, np.zeros(pad, np.float32)])
        loss, correct = eval_step(params, xb, yb, mask)
        total_loss = total_loss + loss
        total_correct = total_correct + correct
    return np.asarray(total_loss) / n, np.asarray(total_correct) / n


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer()


def _latest_checkpoint(ckpt_dir: Path):
    epochs = sorted(int(p.name.split("_")[1]) for p in ckpt_dir.glob("epoch_*") if p.is_dir())
    return epochs[-1] if epochs else None


def train(cfg: Config) -> dict:
    """Trains as `cfg` says; returns the figures of OUT/summary.json, plus `params`
    (the final stacked parameters) and `history` (the per-epoch records of
    OUT/metrics.jsonl: lists over seeds of train_loss, test_loss, test_accuracy)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = (out / "checkpoints").absolute()
    start_wall = time.perf_counter()

    download_to = Path(cfg.cache_dir).expanduser() / cfg.dataset if cfg.download else None
    ds = data_lib.load(cfg.dataset, cfg.data_dir, download_to=download_to)
    x_train, y_train = ds.x_train, ds.y_train
    if cfg.train_examples is not None:
        x_train, y_train = data_lib.subset(x_train, y_train, cfg.train_examples)
    mean, std = data_lib.channel_stats(x_train)
    x_train = data_lib.normalize(x_train, mean, std)
    x_test = data_lib.normalize(ds.x_test, mean, std)

    devices = jax.local_devices()[: cfg.devices]
    if cfg.batch_size % len(devices):
        raise ValueError(
            f"--batch-size {cfg.batch_size} must be divisible by the "
            f"{len(devices)} local devices (data parallelism)"
        )
    steps_per_epoch = len(x_train) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(x_train)} training examples: fewer than one batch")
    mesh = jax.make_mesh(
        (len(devices),), ("data",), devices=devices, axis_types=(jax.sharding.AxisType.Auto,)
    )
    batch_sharding = NamedSharding(mesh, PartitionSpec(None, "data"))
    replicated = NamedSharding(mesh, PartitionSpec())

    tx = make_optimizer(cfg)
    graphdef, params, n_params = init_replicas(cfg, x_train.shape[-1], ds.num_classes)
    opt_state = jax.vmap(tx.init)(params)
    first_epoch = 1
    metrics_path = out / "metrics.jsonl"
    if cfg.resume and (last := _latest_checkpoint(ckpt_dir)) is not None:
        target = {"params": params, "opt_state": opt_state}
        with _checkpointer() as checkpointer:
            restored = checkpointer.restore(ckpt_dir / f"epoch_{last}", target)
        params, opt_state = restored["params"], restored["opt_state"]
        first_epoch = last + 1
        kept = (
            [
                line
                for line in metrics_path.read_text().splitlines()
                if json.loads(line)["epoch"] <= last
            ]
            if metrics_path.exists()
            else []
        )
        metrics_path.write_text("".join(line + "\n" for line in kept))
    else:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        metrics_path.write_text("")
    params, opt_state = jax.device_put((params, opt_state), replicated)
    train_step, eval_step = make_steps(graphdef, tx)
    seeds = np.asarray(cfg.seeds, np.uint32)

    checkpointer = _checkpointer()
    step_time, timed_steps = 0.0, 0
    for epoch in range(first_epoch, cfg.epochs + 1):
        orders = np.stack([epoch_order(s, epoch, len(x_train)) for s in cfg.seeds])
        losses = []
        bar = _progress(cfg, steps_per_epoch, epoch)
        t0 = time.perf_counter()
        for i in range(steps_per_epoch):
            idx = orders[:, i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb = jax.device_put(x_train[idx], batch_sharding)
            yb = jax.device_put(y_train[idx], batch_sharding)
            step = (epoch - 1) * steps_per_epoch + i
            params, opt_state, loss = train_step(params, opt_state, xb, yb, seeds, step)
            losses.append(loss)
            if i == 0:  # exclude compilation from the throughput
                jax.block_until_ready(loss)
                t0 = time.perf_counter()
            if bar is not None and (i % 50 == 49 or i == steps_per_epoch - 1):
                recent = np.asarray(jnp.stack(losses[-50:]))
                _check_finite(recent, epoch, i)
                rate = i / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{recent.mean():.4f}", steps_s=f"{rate:.1f}")
                bar.update(i + 1 - bar.n)
        train_losses = np.asarray(jnp.stack(losses)).mean(axis=0)  # (seeds,)
        step_time += time.perf_counter() - t0
        timed_steps += steps_per_epoch - 1
        if bar is not None:
            bar.close()
        _check_finite(train_losses, epoch, steps_per_epoch - 1)
        test_loss, test_acc = evaluate(eval_step, params, x_test, ds.y_test)
        record = {
            "epoch": epoch,
            "train_loss": train_losses.tolist(),
            "test_loss": test_loss.tolist(),
            "test_accuracy": test_acc.tolist(),
        }
        with metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        checkpointer.save(
            ckpt_dir / f"epoch_{epoch}", {"params": params, "opt_state": opt_state}, force=True
        )
        checkpointer.wait_until_finished()  # a checkpoint on disk means a finished epoch
        print(
            f"epoch {epoch}/{cfg.epochs}: train loss {_fmt(train_losses)}, "
            f"test loss {_fmt(test_loss)}, test accuracy {_fmt(test_acc * 100, '.2f')}%",
            flush=True,
        )

    checkpointer.close()
    last = json.loads(metrics_path.read_text().splitlines()[-1])
    steps_per_second = timed_steps / step_time if step_time > 0 else float("nan")
    summary = {
        "test_accuracy": float(np.mean(last["test_accuracy"])),
        "test_loss": float(np.mean(last["test_loss"])),
        "train_loss": float(np.mean(last["train_loss"])),
        "epochs": cfg.epochs,
        "steps_per_second": steps_per_second,
        "replica_steps_per_second": steps_per_second * len(cfg.seeds),
        "wall_seconds": time.perf_counter() - start_wall,
        "n_params": n_params,
        "devices": len(devices),
        "config": dataclasses.asdict(cfg),
    }
    if len(cfg.seeds) > 1:
        for key in ("test_accuracy", "test_loss", "train_loss"):
            values = np.asarray(last[key])
            summary[key + "_per_seed"] = values.tolist()
            summary[key + "_min"] = float(values.min())
            summary[key + "_max"] = float(values.max())
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    summary["params"] = params
    summary["history"] = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    return summary


def _fmt(values, spec=".4f"):
    values = np.atleast_1d(values)
    if len(values) == 1:
        return format(float(values[0]), spec)
    return f"mean {values.mean():{spec}} [{values.min():{spec}}, {values.max():{spec}}]"


def _check_finite(losses, epoch, step):
    if not np.all(np.isfinite(losses)):
        raise NonFiniteLoss(
            f"non-finite training loss at epoch {epoch}, step {step + 1}: stopping. "
            "The last good checkpoint is the previous epoch's; lower --lr or check the data."
        )


def _progress(cfg, total, epoch):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}", unit="step", leave=False, mininterval=1.0)


def parse_args(argv=None) -> Config:
    p = argparse.ArgumentParser(description="Train NiN with INNA or a baseline (see module doc).")
    p.add_argument(
        "--dataset", default="digits", choices=["digits", "mnist", "cifar10", "cifar100", "folder"]
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch mnist/cifar10/cifar100 into --cache-dir (SHA-256 verified)",
    )
    p.add_argument("--cache-dir", default=Config.cache_dir)
    p.add_argument("--optimizer", default="inna", choices=list(DEFAULT_LR))
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="gamma_0 (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")",
    )
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--decay-power", type=float, default=0.5, help="q in gamma_0 (k+1)^-q")
    p.add_argument(
        "--psi-init",
        default="params",
        choices=["gradient", "params"],
        help="INNA's psi_0 (default params: see README, 'Training NiN')",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier of NiN")
    p.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="dropout after blocks 1 and 2 (default 0.5; 0 on digits)",
    )
    p.add_argument("--train-examples", type=int, default=None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--seeds", default=None, help="comma-separated, trained together (vmapped)")
    p.add_argument("--out", default="results/train")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--devices", type=int, default=None, help="use the first N local devices")
    a = p.parse_args(argv)
    if a.seeds is not None:
        seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
    else:
        seeds = (a.seed if a.seed is not None else 0,)
    if a.epochs < 1 or a.batch_size < 1 or a.width <= 0 or not seeds:
        p.error("--epochs and --batch-size must be >= 1, --width > 0, --seeds non-empty")
    if a.lr is not None and not (a.lr > 0 and math.isfinite(a.lr)):
        p.error("--lr must be > 0")
    fields = {f.name for f in dataclasses.fields(Config)}
    kwargs = {k: v for k, v in vars(a).items() if k in fields and k != "seeds"}
    return Config(**kwargs, seeds=seeds)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        summary = train(cfg)
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (data_lib.DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"test accuracy: {summary['test_accuracy'] * 100:.2f}% "
        f"({cfg.dataset}, {cfg.optimizer}, {summary['epochs']} epochs, "
        f"{summary['steps_per_second']:.1f} steps/s, {summary['wall_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
