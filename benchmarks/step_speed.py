"""Optimizer step speed: INNA against SGD-momentum, Adam and Adagrad; INNAprop
against AdamW.

Times `update` + `optax.apply_updates`, jit-compiled with params and state
donated (as a training loop does), on the same trees, interleaved in one run.
Prints medians, ratios to SGD-momentum (and INNAprop's to AdamW), copies XLA
inserted, and XLA's bytes accessed per step against the floor (every array read
once and written once).

    python -m benchmarks.step_speed                 # quick preset, CPU
    python -m benchmarks.step_speed --preset full   # more repetitions (GPU)
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import inna_optax


def nin_tree():
    """The parameter shapes of the paper's NiN for 10 classes (966,986 parameters)."""
    from flax import nnx

    from inna_optax.training.models import NiN

    abstract = nnx.eval_shape(lambda: NiN(10, 3, rngs=nnx.Rngs(0)))
    shapes = nnx.state(abstract, nnx.Param)
    return jax.tree.map(lambda x: tuple(x.shape), shapes.to_pure_dict())


def big_tree():
    """About 32M parameters in 8 matrices of 2048 x 2048."""
    return {f"w{i}": (2048, 2048) for i in range(8)}


TREES = {"nin_1M": nin_tree, "dense_32M": big_tree}


def naive_inna(learning_rate, alpha=0.5, beta=0.1):
    """A plain tree_map transcription of eq. (12) that stores psi, for comparison."""

    def init(params):
        return jax.tree.map(lambda p: (1 - alpha * beta) * p, params)

    def update(grads, psi, params):
        phi = jax.tree.map(lambda t, s: (1 / beta - alpha) * t - s / beta, params, psi)
        updates = jax.tree.map(lambda f, g: learning_rate * (f - beta * g), phi, grads)
        psi = jax.tree.map(lambda s, f: s + learning_rate * f, psi, phi)
        return updates, psi

    return optax.GradientTransformation(init, update)


# (name, optimizer, arrays read and written per parameter at the floor)
OPTIMIZERS = {
    "sgd_momentum": (lambda: optax.sgd(1e-2, momentum=0.9), 5),
    "inna": (lambda: inna_optax.inna(inna_optax.inverse_power_decay(1e-2)), 5),
    "adam": (lambda: optax.adam(1e-3), 7),
    "adamw": (lambda: optax.adamw(1e-3, weight_decay=0.01), 7),
    "innaprop": (lambda: inna_optax.innaprop(1e-3), 7),
    "adagrad": (lambda: optax.adagrad(1e-2), 5),
    "inna_naive_psi": (lambda: naive_inna(1e-2), 5),
}


def make_step(tx):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def _random_tree(shapes):
    """Parameters (N(0, 0.05)) and gradients (N(0, 0.01)) of the given leaf shapes."""
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda x: isinstance(x, tuple))
    keys = jax.random.split(jax.random.key(0), 2 * len(leaves))

    def draw(keys, scale):
        return treedef.unflatten(
            [
                jax.random.normal(k, s, jnp.float32) * scale
                for k, s in zip(keys, leaves, strict=True)
            ]
        )

    return draw(keys[::2], 0.05), draw(keys[1::2], 0.01)


def _compiled(tx, params0, grads, floor_bytes):
    """The jitted donated step of `tx`, its first carry, and what XLA made of it: the
    copies it inserted, the bytes it accesses against `floor_bytes`, the state's size."""
    params = jax.tree.map(jnp.copy, params0)
    state = tx.init(params)
    step = make_step(tx)
    compiled = step.lower(params, state, grads).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    info = {
        "copies": compiled.as_text().count(" copy("),
        "bytes_accessed": float(cost.get("bytes accessed", float("nan"))),
        "floor_bytes": floor_bytes,
        "state_bytes": sum(
            x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes") and x.ndim > 0
        ),
    }
    carry = step(params, state, grads)  # warm up (and compile)
    jax.block_until_ready(carry)
    return step, carry, info


def _interleaved(steps, carries, grads, reps, calls):
    """Seconds per call of each step, `reps` blocks of `calls`, the optimizers taking
    turns so that each sees the same machine state."""
    times = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            carry = carries[name]
            start = time.perf_counter()
            for _ in range(calls):
                carry = step(*carry, grads)
            jax.block_until_ready(carry)
            times[name].append((time.perf_counter() - start) / calls)
            carries[name] = carry
    return times


def measure(tree_name, reps, calls):
    params0, grads = _random_tree(TREES[tree_name]())
    n_params = sum(x.size for x in jax.tree.leaves(params0))
    param_bytes = sum(x.nbytes for x in jax.tree.leaves(params0))
    steps, carries, info = {}, {}, {}
    for name, (factory, floor_arrays) in OPTIMIZERS.items():
        steps[name], carries[name], info[name] = _compiled(
            factory(), params0, grads, floor_arrays * param_bytes
        )
    times = _interleaved(steps, carries, grads, reps, calls)
    base = np.median(times["sgd_momentum"])
    # INNAprop's twin is AdamW: same state size, same arrays per step
    twin = {"innaprop": float(np.median(times["adamw"]))}
    rows = []
    for name in OPTIMIZERS:
        med = float(np.median(times[name]))
        rows.append(
            {
                "tree": tree_name,
                "optimizer": name,
                "n_params": n_params,
                "median_ms": med * 1e3,
                "ratio_to_sgd_momentum": med / base,
                "ratio_to_adamw": med / twin[name] if name in twin else None,
                "state_over_params_bytes": info[name]["state_bytes"] / param_bytes,
                "bytes_accessed_over_floor": info[name]["bytes_accessed"]
                / info[name]["floor_bytes"],
                "copies": info[name]["copies"],
                "times_ms": [t * 1e3 for t in times[name]],
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["smoke", "quick", "full"], default="quick")
    parser.add_argument(
        "--trees", default=",".join(TREES), help="comma-separated: " + ",".join(TREES)
    )
    parser.add_argument("--out", default="results/step_speed", help="directory for step_speed.json")
    args = parser.parse_args(argv)
    reps = {"smoke": 2, "quick": 15, "full": 50}[args.preset]

    rows = []
    for tree_name in args.trees.split(","):
        calls = 20 if tree_name.startswith("nin") else 3
        rows += measure(tree_name, reps, calls)

    device = jax.devices()[0]
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "backend": jax.default_backend(),
        "device": device.device_kind,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "preset": args.preset,
        "donated": ["params", "opt_state"],
    }
    from benchmarks.report import write_json  # with the commit of the code that ran

    argv = list(sys.argv[1:] if argv is None else argv)
    write_json(Path(args.out), "step_speed", {"meta": meta, "argv": argv, "rows": rows})

    print(
        f"\n{meta['date']}  {meta['backend']} ({meta['device']}, {meta['cpu_count']} cores)  "
        f"jax {meta['jax']}  optax {meta['optax']}  preset {args.preset}, donated params+state"
    )
    header = (
        f"{'tree':<10} {'optimizer':<15} {'median ms':>10} {'vs sgd-mom':>10} "
        f"{'state/params':>12} {'bytes/floor':>11} {'copies':>6} {'vs adamw':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['tree']:<10} {r['optimizer']:<15} {r['median_ms']:10.3f} "
            f"{r['ratio_to_sgd_momentum']:9.2f}x {r['state_over_params_bytes']:12.2f} "
            f"{r['bytes_accessed_over_floor']:11.2f} {r['copies']:6d} "
            + (f"{r['ratio_to_adamw']:8.2f}x" if r["ratio_to_adamw"] is not None else "")
        )


if __name__ == "__main__":
    main()
