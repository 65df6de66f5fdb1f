"""Writing a run's files: whole or not at all, as JSON that strict parsers read, and
a failure in one line that says why."""

import errno
import json
import math
import os
from pathlib import Path

from inna_optax.training.errors import RunDirError


def write_atomic(path: Path, text: str) -> None:
    """Writes `text` to `path` whole or not at all (a temporary file, then a rename);
    a failure is a RunDirError in one line."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise RunDirError(disk_error(path, e)) from None


def disk_error(path: Path, e: BaseException) -> str:
    """One line for a failed write: the disk is full, or the OS's reason."""
    text = str(e)
    if getattr(e, "errno", None) == errno.ENOSPC or "No space left" in text:
        return f"{path}: the disk is full (no space left on the device)"
    reason = getattr(e, "strerror", None) or (text.strip().splitlines() or [type(e).__name__])[0]
    return f"{path}: cannot be written ({reason[:200]})"


def strict_json(value, **options) -> str:
    """JSON that strict parsers (JavaScript's, Go's, jq) read: inf and NaN (a
    diverged replica's curve, a rate never measured) written as null, which
    ``np.asarray(..., float)`` reads back as NaN."""

    def finite(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x) for x in v]
        return v

    return json.dumps(finite(value), allow_nan=False, **options)
