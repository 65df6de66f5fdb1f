"""Train a model of the registry with INNA or a baseline: the command line.

    python -m inna_optax.train                       # embedded digits, NiN, INNA
    python -m inna_optax.train --dataset mnist --data-dir ../shared/data/mnist --width 0.5
    python -m inna_optax.train --model gpt --dataset text \
        --data-dir ../shared/data/tinyshakespeare/input.txt --optimizer innaprop

This module only parses flags (generated from `training.Config`), calls
`training.fit` and turns errors into one-line messages and exit codes: 0 done,
2 bad input (a flag, the data, the output directory; nothing is deleted) or a full
disk,
3 non-finite loss, 130 and 143 stopped by Ctrl-C (SIGINT) and SIGTERM: the run
saves a checkpoint at the current step first (continue with --resume).
"""

import argparse
import dataclasses
import logging
import math
import os
import sys
import threading
import warnings
from pathlib import Path

# the train extra's packages: without them, one line says what to install
TRAIN_EXTRA = {"flax", "orbax", "sklearn", "tqdm", "PIL", "matplotlib"}
try:
    from inna_optax.training import (
        Config,
        ConfigError,
        DataError,
        NonFiniteLoss,
        RunDir,
        devices,
        distributed,
        fit,
        prepare,
    )
    from inna_optax.training.flags import add_flags, add_preset_flag
    from inna_optax.training.loop import Interrupted
    from inna_optax.training.models import MODELS
    from inna_optax.training.preemption import StopSignals
    from inna_optax.training.presets import preset_values
    from inna_optax.training.run_dir import RunDirError
except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] not in TRAIN_EXTRA:
        raise
    print(
        f"error: the training command line needs the train extra (no module {e.name!r}): "
        "pip install 'inna-optax[train]'",
        file=sys.stderr,
    )
    raise SystemExit(2) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, as for every other bad input
        self.exit(2, f"error: {message}\n")


DESCRIPTION = (
    "Train the paper's NiN on images (digits, MNIST, CIFAR, an image folder) or a "
    "character-level GPT on a text file, with INNA, INNAprop or a baseline optimizer. "
    "Each run writes a directory (--out) with its configuration, metrics.jsonl, "
    "summary.json and orbax checkpoints; SIGTERM and Ctrl-C save one at the current "
    "step, and --resume continues from it."
)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m inna_optax.train", description=DESCRIPTION)
    add_preset_flag(p)
    add_flags(p)
    return p


def parse_args(argv=None) -> Config:
    """The Config of the command line: a --preset's values under the flags given."""
    args = parser().parse_args(argv)
    if args.preset is not None:
        # the optimizer (the preset's unless one is given), then the preset's settings
        # of that optimizer
        first = parser()
        first.set_defaults(**preset_values(args.preset, args.dataset))
        optimizer = first.parse_args(argv).optimizer
        final = parser()
        final.set_defaults(**preset_values(args.preset, args.dataset, optimizer))
        args = final.parse_args(argv)
    values = vars(args)
    values.pop("preset")
    return Config(**values)


def _fresh_out(config: Config) -> Config:
    """The default --out: a new directory per run."""
    base = config.default_out()
    out, k = base, 1
    while Path(out).exists():
        k += 1
        out = f"{base}-{k}"
    return dataclasses.replace(config, out=out)


def print_line(line: str) -> None:
    print(line, flush=True)


def _quiet(args) -> None:
    """An exception of one of orbax's checkpoint-writing threads reaches the main
    thread, which reports it in one line: no traceback of theirs on the way. Any
    other thread's exception is printed as Python does."""
    tb = args.exc_traceback
    while tb is not None:
        if "orbax" in tb.tb_frame.f_code.co_filename:
            return
        tb = tb.tb_next
    threading.__excepthook__(args)


def _unraisable(args) -> None:
    """After a failed checkpoint read or write, reported in one line by the main
    thread, orbax's abandoned coroutines and tensorstore's callbacks into a closed
    event loop report their own copies of the error as unraisable exceptions: those
    are dropped, any other is printed as usual."""
    closed = isinstance(args.exc_value, RuntimeError) and "Event loop is closed" in str(
        args.exc_value
    )
    code = getattr(args.object, "cr_code", None)
    orbax = code is not None and "orbax" in code.co_filename
    if not (closed or orbax):
        sys.__unraisablehook__(args)


def main(argv=None) -> int:
    run = None
    threading.excepthook = _quiet
    sys.unraisablehook = _unraisable
    # Python warns, at exit, of each orbax coroutine a failed save left unawaited
    # (the command line runs no coroutines of its own)
    warnings.filterwarnings("ignore", r"coroutine '.*' was never awaited", RuntimeWarning)
    # orbax logs a failed save with its tracebacks before raising it to us
    for name in ("absl", "asyncio", "orbax"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        config = parse_args(argv).validate()
        devices.set_cpu_devices(config)  # before any device is touched
        devices.keep_freed_memory(config)  # likewise, before JAX starts its threads
        distributed.initialize(config)
        distributed.check(config)
        # everything that can be refused is checked before the output directory is made
        data = prepare(config, strict=True)
        devices.mesh_for(config)
        if config.out is None:
            config = _fresh_out(config)
        run = RunDir(config)
        primary = distributed.is_primary()
        with run, StopSignals() as stop:
            history = fit(
                config, data=data, run=run, log=print_line if primary else None, stop=stop
            )
    except (ConfigError, DataError, RunDirError, distributed.DistributedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk, the file system: one line, not a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except SystemExit as e:  # argparse: a bad flag, already reported in one line
        return e.code if isinstance(e.code, int) else 2
    except Interrupted as e:
        name = stop.received.name if stop.received else "a signal"
        print(f"\n{name}: {e} (in {config.out})", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:  # before training started: nothing was written
        print("\ninterrupted before training started: nothing was written", file=sys.stderr)
        return 130
    if not primary:
        return 0
    print(final_line(config, history))
    return 0


def final_line(config: Config, history) -> str:
    """The run's last line: its final figure, what ran, how fast, where it went."""
    epochs = history.train_loss.shape[1]
    if MODELS[config.model].data == "text":
        figure = f"validation loss: {history.test_loss[:, -1].mean():.4f}"
        length = f"{epochs * history.steps_per_epoch} steps"
    else:
        figure = f"test accuracy: {100 * history.test_accuracy[:, -1].mean():.2f}%"
        length = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    rate = history.steps_per_second
    speed = f"{rate:.1f} steps/s, " if math.isfinite(rate) else ""
    return (
        f"{figure} ({config.model} on {config.dataset}, {config.optimizer}, {length}, "
        f"{speed}{history.seconds:.0f} s); results in {config.out}"
    )


def exit_process(code: int) -> None:
    """Ends the process with `code`. After a checkpoint save that failed (the
    checkpoints folder made unwritable or replaced mid-run), orbax leaves threads
    waiting, for its coordination timeout of many minutes, on a signal the failed
    save never sends; Python's exit would join them first and the run, its error
    already printed, would seem to hang. Those threads hold nothing to write, so the
    process ends without them."""
    stuck = [
        t
        for t in threading.enumerate()
        if t.is_alive() and not t.daemon and type(t).__module__.startswith("orbax")
    ]
    if stuck:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_process(main())
