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

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import jax
import numpy as np

from inna_optax.training import distributed
from inna_optax.training.config import Config, resumable_fields
from inna_optax.training.errors import RunDirError
from inna_optax.training.files import disk_error, strict_json, write_atomic

RUN_FILES = ("run.json", "metrics.jsonl", "summary.json", "checkpoints")
# What may change when a run is resumed: how it runs, not what it computes.
RESUMABLE = resumable_fields()


class CheckpointError(RunDirError):
    """A checkpoint is unreadable, corrupt or of another shape."""


def digest(tree) -> str:
    """SHA-256 of every array of `tree`, in leaf order."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(distributed.host_value(leaf)).tobytes())
    return h.hexdigest()


class RunDir:
    """Opens OUT for `config` (fresh, --overwrite or --resume) and takes its lock.

    Nothing is deleted or written but the lock until :meth:`begin`.
    """

    def __init__(self, config: Config):
        self.config = config
        if config.out is None:
            raise RunDirError("a run directory needs --out")
        self.path = Path(config.out)
        self._manager = None
        # with several processes, process 0 owns the directory's files and lock; all
        # of them write checkpoints (orbax)
        self.primary = distributed.is_primary()
        self._lock = None
        self._made_dir = self._made_lock = self._begun = False
        self._stored: dict = {}  # run.json as --resume found it
        if not self.primary:
            if config.resume:
                self._check_resume()
            return
        try:
            if self.path.exists() and not self.path.is_dir():
                raise RunDirError(f"--out {self.path}: is a file, not a directory")
            self._made_dir = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            self._made_lock = not (self.path / ".lock").exists()
            self._lock = open(self.path / ".lock", "a+")  # noqa: SIM115 - held until close
        except OSError as e:
            self.close()
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
            self._stored = json.loads(meta.read_text())  # check_data reads it too
            stored = self._stored["config"]
            if not isinstance(stored, dict):
                raise TypeError(f"its config is a {type(stored).__name__}, not a mapping")
            old = _as_json(Config(**stored).resolved())
        except (ValueError, KeyError, TypeError) as e:
            self.close()
            raise RunDirError(f"--resume: {meta} is unreadable ({e})") from e
        checkpoints = self.path / "checkpoints"
        if checkpoints.exists() and not checkpoints.is_dir():
            self.close()
            raise RunDirError(
                f"--resume: {checkpoints} is a file, not the run's checkpoints: not "
                "starting again from step 0 over its metrics; move it away or pass --overwrite"
            )
        saved = checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())
        if not saved and self.primary and (epochs := len(self._records())):
            self.close()
            raise RunDirError(
                f"--resume: {checkpoints} holds no checkpoint although metrics.jsonl records "
                f"{epochs} epoch{'s' if epochs != 1 else ''}: not starting again from step 0 "
                "over them; pass --overwrite to start afresh"
            )
        new = _as_json(self.config.resolved())
        differ = sorted(
            k for k in set(old) | set(new) if k not in RESUMABLE and old.get(k) != new.get(k)
        )
        if differ:
            self.close()
            changes = ", ".join(
                f"--{k.replace('_', '-')} {old.get(k)} -> {new.get(k)}" for k in differ
            )
            raise RunDirError(
                f"--resume: the run in {self.path} was made with other settings ({changes}); "
                "only --epochs may change"
            )

    def check_data(self, data_digest: str, classes: int, names: tuple[str, ...] = ()) -> None:
        """Refuses to resume on other data than the run's: another class set, named
        as such (the classes added and removed, where the data name them); other
        examples (files replaced), unless --resume-other-data. `data_digest`,
        `classes` (their count) and `names` against what run.json keeps (runs
        written before it kept them are not checked)."""
        if not self.config.resume:
            return
        kept = self._stored
        old_names = tuple(kept.get("class_names") or ())
        renamed = bool(names and old_names) and names != old_names
        if kept.get("classes") not in (None, classes) or renamed:
            self.close()
            which = _class_change(old_names, names) if names and old_names else ""
            trained = f"{kept['classes']}" + (" others" if classes == kept["classes"] else "")
            raise RunDirError(
                f"--resume: the data set has {classes} classes{which}, the run in {self.path} "
                f"was trained on {trained}: its model cannot go on with them"
            )
        if kept.get("data") not in (None, data_digest) and not self.config.resume_other_data:
            self.close()
            raise RunDirError(
                f"--resume: the data differ from those the run in {self.path} was trained "
                "on (files replaced since); resume on the same data, pass "
                "--resume-other-data to go on with these deliberately, or --overwrite"
            )

    def begin(
        self,
        data_digest: str | None = None,
        classes: int | None = None,
        names: tuple[str, ...] = (),
    ) -> None:
        """A fresh run: removes the previous run's files (--overwrite) and writes
        run.json, with `data_digest` (:func:`~inna_optax.training.data.digest`), the
        class count and the class names (where the data name them) for
        :meth:`check_data`. A resumed run: nothing."""
        self._begun = True
        if self.config.resume or not self.primary:
            distributed.barrier("run-dir-begin")
            return
        for name in RUN_FILES:
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        write_atomic(
            self.path / "run.json",
            json.dumps(
                {
                    "config": _as_json(self.config),
                    "data": data_digest,
                    "classes": classes,
                    "class_names": list(names),
                },
                indent=1,
            ),
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
        """(step, state, meta) of the newest good checkpoint, or None when there is
        none: `step` is the number of training steps it follows (over every replica
        group), `meta` what :meth:`save` stored beside it.

        A corrupt or unreadable checkpoint raises CheckpointError naming it, unless
        `fallback`: then older ones are tried (and the bad newer ones removed, each
        named in a note). metrics.jsonl is cut back to the checkpoint's epochs.
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
                for bad, problem in zip(steps[: steps.index(step)], problems, strict=True):
                    print(
                        f"note: --resume-fallback: skipping and removing {problem}",
                        file=sys.stderr,
                    )
                    self.manager.delete(bad)
                if self.primary:
                    self._cut_metrics(int(meta.get("epochs_done", 0)))
                return step, state, meta
            if not fallback:
                raise CheckpointError(
                    problems[-1] + "; pass --resume-fallback to continue from an older checkpoint"
                )
        if problems:
            raise CheckpointError("no good checkpoint: " + "; ".join(problems))
        if self.primary:
            self._cut_metrics(0)
        return None

    def save(self, step: int, state, record: dict | None = None, **meta) -> None:
        """Saves `state` as checkpoint `step` (the training steps done so far), with
        `meta` (JSON) beside it, after appending an epoch's `record` to
        metrics.jsonl; returns once both are on disk."""
        import orbax.checkpoint as ocp

        if self.primary and record is not None:
            metrics = self.path / "metrics.jsonl"
            try:
                with metrics.open("a") as f:
                    f.write(strict_json(record) + "\n")
            except OSError as e:
                latest = self.manager.latest_step()
                kept = f"checkpoint {latest} is intact" if latest else "no checkpoint was saved yet"
                raise RunDirError(f"{disk_error(metrics, e)} at step {step}; {kept}") from None
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    meta=ocp.args.JsonSave({"digest": digest(state), **meta}),
                ),
            )
            self.manager.wait_until_finished()  # a checkpoint is on disk when this returns
        except Exception as e:  # noqa: BLE001 - orbax and tensorstore raise many kinds
            latest = self.manager.latest_step()
            kept = f"checkpoint {latest} is intact" if latest else "no checkpoint was saved yet"
            raise RunDirError(
                f"{disk_error(self.path / 'checkpoints', e)} while saving step {step}; {kept}"
            ) from None

    def _cut_metrics(self, epoch: int) -> None:
        path = self.path / "metrics.jsonl"
        records = self._records()
        kept = [r for r in records if r["epoch"] <= epoch]
        lines = path.read_text().splitlines() if path.exists() else []
        text = "".join(strict_json(r) + "\n" for r in kept)
        if len(kept) != len(lines) or not path.exists():
            write_atomic(path, text)

    def _records(self) -> list[dict]:
        """metrics.jsonl's records; a cut last line (a crash while appending) is
        dropped with a line saying so, a damaged line before it is an error."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        records = []
        for i, line in enumerate(lines):
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                    raise ValueError("not a record of an epoch")
            except ValueError as e:
                if i < len(lines) - 1:
                    raise RunDirError(f"{path}: line {i + 1} is damaged ({e})") from None
                print(
                    f"note: {path}: its last line was cut (a crash while writing it); dropping it",
                    file=sys.stderr,
                )
                break
            records.append(record)
        return records

    def history(self) -> list[dict]:
        return self._records()

    def write_summary(self, summary: dict) -> None:
        if self.primary:
            write_atomic(self.path / "summary.json", strict_json(summary, indent=1))

    def close(self) -> None:
        if self._manager is not None:
            # a failed save was reported when it failed; closing does not raise it again
            with contextlib.suppress(Exception):
                self._manager.close()
            self._manager = None
        if self._lock is not None and not self._lock.closed:
            # the lock file goes with the lock (a finished or refused run leaves none)
            if self._made_lock or self._begun:
                (self.path / ".lock").unlink(missing_ok=True)
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            if not self._begun:  # refused before writing: leave nothing of ours behind
                if self._made_dir:
                    with contextlib.suppress(OSError):
                        self.path.rmdir()  # only if empty

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _class_change(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    """`` (added: cow; gone: emu)``: the classes of `new` not in `old` and back."""

    def listed(what: str, names: list[str]) -> str:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return f"{what}: {shown}"

    added, gone = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    return " (" + "; ".join(listed(w, c) for w, c in (("added", added), ("gone", gone)) if c) + ")"


def _as_json(config: Config | dict) -> dict:
    values = config if isinstance(config, dict) else dataclasses.asdict(config)
    return json.loads(json.dumps(values))
