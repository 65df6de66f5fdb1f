"""A run's output directory: it belongs to one run, is written by one process at a
time, and never loses or mixes results.

    OUT/run.json        the configuration that made the run (compared on --resume)
    OUT/metrics.jsonl   one line per finished epoch
    OUT/summary.json    final figures, written once at the end
    OUT/checkpoints/    orbax CheckpointManager: atomic saves, the newest few kept
    OUT/.lock           held (flock) while a process writes here

A fresh run refuses a directory holding another run's files unless asked to
overwrite, and then removes only those files. Checkpoints carry a digest of their
arrays, so a corrupted one is reported (file and reason) instead of trained on.
"""

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

import jax
import numpy as np

from inna_optax.training import distributed
from inna_optax.training.config import Config, resumable_fields

RUN_FILES = ("run.json", "metrics.jsonl", "summary.json", "checkpoints")
# What may change when a run is resumed: how it runs, not what it computes.
RESUMABLE = resumable_fields()


class RunDirError(RuntimeError):
    """The output directory cannot be used as asked; the message says why."""


class CheckpointError(RunDirError):
    """A checkpoint is unreadable, corrupt or of another shape."""


def digest(tree) -> str:
    """SHA-256 of every array of `tree`, in leaf order."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(distributed.host_value(leaf)).tobytes())
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunDir:
    """Opens OUT for `config` (fresh, --overwrite or --resume) and takes its lock.

    Nothing is deleted or written but the lock until :meth:`begin`.
    """

    def __init__(self, config: Config):
        self.config = config
        self.path = Path(config.out)
        self._manager = None
        # with several processes, process 0 owns the directory's files and lock; all
        # of them write checkpoints (orbax)
        self.primary = distributed.is_primary()
        self._lock = None
        if not self.primary:
            if config.resume:
                self._check_resume()
            return
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"--out {self.path}: is a file, not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / ".lock", "a+")  # noqa: SIM115 - held until close
        except OSError as e:
            raise RunDirError(f"--out {self.path}: cannot write there ({e.strerror})") from e
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            self._lock.close()
            raise RunDirError(
                f"--out {self.path}: another run (pid {holder}) is writing there"
            ) from None
        self._lock.truncate(0)
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        found = [name for name in RUN_FILES if (self.path / name).exists()]
        if config.resume:
            self._check_resume()
        elif found and not config.overwrite:
            self.close()
            raise RunDirError(
                f"--out {self.path}: holds another run ({', '.join(found)}); pass --resume to "
                "continue it, --overwrite to replace it, or choose another --out"
            )
        elif found and not (self.path / "run.json").exists() and "checkpoints" in found:
            self.close()
            raise RunDirError(
                f"--out {self.path}: its checkpoints/ was not written by a training run "
                "(no run.json): not deleting it; choose another --out"
            )

    # ------------------------------------------------------------------ opening
    def _check_resume(self) -> None:
        meta = self.path / "run.json"
        if not meta.exists():
            self.close()
            raise RunDirError(f"--resume: {self.path} holds no run (no run.json)")
        try:
            stored = json.loads(meta.read_text())["config"]
        except (ValueError, KeyError, TypeError) as e:
            self.close()
            raise RunDirError(f"--resume: {meta} is unreadable ({e})") from e
        new = _as_json(self.config)
        differ = sorted(
            k for k in set(stored) | set(new) if k not in RESUMABLE and stored.get(k) != new.get(k)
        )
        if differ:
            self.close()
            changes = ", ".join(
                f"--{k.replace('_', '-')} {stored.get(k)} -> {new.get(k)}" for k in differ
            )
            raise RunDirError(
                f"--resume: the run in {self.path} was made with other settings ({changes}); "
                "only --epochs may change"
            )

    def begin(self) -> None:
        """A fresh run: removes the previous run's files (--overwrite) and writes
        run.json. A resumed run: nothing."""
        if self.config.resume or not self.primary:
            distributed.barrier("run-dir-begin")
            return
        for name in RUN_FILES:
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        _write_atomic(
            self.path / "run.json", json.dumps({"config": _as_json(self.config)}, indent=1)
        )
        (self.path / "metrics.jsonl").write_text("")
        distributed.barrier("run-dir-begin")

    # -------------------------------------------------------------- checkpoints
    @property
    def manager(self):
        if self._manager is None:
            import orbax.checkpoint as ocp

            self._manager = ocp.CheckpointManager(
                (self.path / "checkpoints").absolute(),
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=self.config.keep_checkpoints, create=True
                ),
            )
        return self._manager

    def restore(self, template, fallback: bool = False):
        """(epoch, state) of the newest good checkpoint, or None when there is none.

        A corrupt or unreadable checkpoint raises CheckpointError naming it, unless
        `fallback`: then older ones are tried (and the bad newer ones removed).
        metrics.jsonl is cut back to the restored epoch.
        """
        import orbax.checkpoint as ocp

        steps = sorted(self.manager.all_steps(), reverse=True)
        problems = []
        for step in steps:
            where = self.path / "checkpoints" / str(step)
            try:
                restored = self.manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()
                    ),
                )
                state, meta = restored["state"], restored["meta"]
                if meta.get("digest") != digest(state):
                    raise CheckpointError(f"{where}: corrupt (its arrays do not match its digest)")
            except CheckpointError as e:
                problems.append(str(e))
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds
                reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
                problems.append(f"{where}: unreadable ({type(e).__name__}: {reason[:200]})")
            else:
                for bad in steps[: steps.index(step)]:
                    self.manager.delete(bad)
                if self.primary:
                    self._cut_metrics(step)
                return step, state
            if not fallback:
                raise CheckpointError(
                    problems[-1] + "; pass --resume-fallback to continue from an older checkpoint"
                )
        if problems:
            raise CheckpointError("no good checkpoint: " + "; ".join(problems))
        if self.primary:
            self._cut_metrics(0)
        return None

    def save(self, epoch: int, state, record: dict) -> None:
        """Appends `record` to metrics.jsonl and saves `state` as checkpoint `epoch`;
        returns once both are on disk."""
        import orbax.checkpoint as ocp

        if self.primary:
            with (self.path / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
        self.manager.save(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                meta=ocp.args.JsonSave({"digest": digest(state)}),
            ),
        )
        self.manager.wait_until_finished()  # a checkpoint on disk means a finished epoch

    def latest_epoch(self) -> int | None:
        return self.manager.latest_step()

    def _cut_metrics(self, epoch: int) -> None:
        path = self.path / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] <= epoch]
        if kept != lines or not path.exists():
            _write_atomic(path, "".join(line + "\n" for line in kept))

    def history(self) -> list[dict]:
        path = self.path / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_summary(self, summary: dict) -> None:
        if self.primary:
            _write_atomic(self.path / "summary.json", json.dumps(summary, indent=1))

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        if self._lock is not None and not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _as_json(config: Config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))
