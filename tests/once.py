"""What the test session makes once for all its xdist workers."""

import fcntl
import os
import shutil
from pathlib import Path


def made_once(name: str, make) -> Path:
    """`make(path)` run once in the test session, whichever xdist worker asks first
    (the others wait for it and read what it made): for module fixtures that take
    seconds (a two-process run, the built site), which each worker would otherwise
    make again. The folder is the session's (tests/conftest.py); tests only read it."""
    base = Path(os.environ["INNA_OPTAX_TEST_SHARED"])
    path, done = base / name, base / f"{name}.done"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)  # a failed attempt's
            path.mkdir()
            make(path)
            done.touch()
    return path
