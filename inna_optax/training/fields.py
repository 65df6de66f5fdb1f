"""The building blocks of :class:`~inna_optax.training.Config`'s fields: the error a
bad value raises, the field with its help, check and flag settings, the checks
themselves, and a field's flag name."""

import dataclasses
import math
from typing import Any


class ConfigError(ValueError):
    """A configuration value is not acceptable; the message names its flag."""


def field(default: Any, help: str, check=None, **flag) -> Any:
    """A Config field: `check(value)` returns None when fine, else what is wrong;
    `flag` holds extra argparse settings (choices, metavar, aliases),
    ``resumable=True`` for a setting of how a run runs, not what it computes, which
    may change when the run is resumed, and ``only=(...)`` for a field that applies
    to those models or kinds of data set alone (:meth:`Config.validate` refuses it
    set with others)."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check, **flag})


FLOAT32_MAX = 3.4028234663852886e38


def finite(lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False, what=None):
    """A check for a finite number in a range, and within float32's (training runs
    in float32: a larger value would become inf there)."""
    lo_ok = (lambda v: v > lo) if lo_open else (lambda v: v >= lo)
    hi_ok = (lambda v: v < hi) if hi_open else (lambda v: v <= hi)
    lo_text = f"{'>' if lo_open else '>='} {lo:g}" if lo > -math.inf else ""
    hi_text = f"{'<' if hi_open else '<='} {hi:g}" if hi < math.inf else ""
    text = what or " and ".join(t for t in (lo_text, hi_text) if t) or "finite"

    def check(v):
        if v is None:
            return None
        if not (math.isfinite(v) and lo_ok(v) and hi_ok(v)):
            return f"must be a finite number {text}, got {v!r}"
        if abs(v) > FLOAT32_MAX or 0 < abs(v) < 1e-30:
            return f"must be within float32's range (1e-30 to 3.4e38 in size), got {v!r}"
        return None

    return check


def int_at_least(lo):
    def check(v):
        if v is not None and v < lo:
            return f"must be >= {lo}, got {v}"
        return None

    return check


def host_port(v):
    if v is None:
        return None
    host, _, port = v.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"must be HOST:PORT, got {v!r}"
    return None


def not_empty(v):
    return "must not be empty" if v is not None and not v.strip() else None


def seed_list(v):
    if not v:
        return "needs at least one seed"
    if any(s < 0 or s >= 2**32 for s in v):
        return f"seeds must be in [0, 2^32), got {list(v)}"
    return None


def flag(name: str) -> str:
    """The command-line flag of a Config field: ``"--" + name`` with dashes."""
    return "--" + name.replace("_", "-")
