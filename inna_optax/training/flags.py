"""The command line's flags, generated from :class:`~inna_optax.training.Config`'s
fields (their defaults, help, choices and checks), and the documentation's table of
them."""

import argparse
import dataclasses
import typing

from inna_optax.training.config import GROUPS, Config, flag
from inna_optax.training.presets import PRESETS


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None


def _flag_spec(f: dataclasses.Field, kind, default_none: bool = False):
    """The option strings and argparse settings of the flag of Config field `f`."""
    meta = f.metadata
    if kind is bool:
        negative = f.default
        option = f"--no-{f.name.replace('_', '-')}" if negative else flag(f.name)
        return (option,), dict(
            dest=f.name,
            action="store_false" if negative else "store_true",
            default=None if default_none else f.default,
            help=f"turns off: {meta['help']}" if negative else meta["help"],
        )
    base = next(t for t in typing.get_args(kind) or (kind,) if t is not type(None))
    typed = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
    shown = "" if f.default is None or "default" in meta["help"] else f" (default {typed})"
    return (flag(f.name), *meta.get("aliases", ())), dict(
        dest=f.name,
        type=_seed_list if f.name == "seeds" else base,
        default=None if default_none else f.default,
        help=meta["help"] + shown,
        **{k: meta[k] for k in ("choices", "metavar") if k in meta},
    )


PRESET_HELP = {
    "nanogpt-cpu": "nanogpt-cpu, nanoGPT's Tiny Shakespeare recipe for a CPU (4 layers of "
    "128, context 64, batch 12, 2,000 steps, AdamW at 1e-3)",
    "nanogpt-gpu": "nanogpt-gpu, its train_shakespeare_char config (6 layers of 384, "
    "context 256, batch 64, dropout 0.2, 5,000 steps), for a GPU",
}


def _preset_spec() -> dict:
    """The argparse settings of ``--preset`` (a command-line flag, not a Config field:
    it sets the defaults of the others)."""
    figures = ", ".join(k for k, v in PRESETS.items() if "model" not in v)
    return dict(
        choices=tuple(PRESETS),
        help="start from a preset's settings, which the other flags override: "
        f"{figures}, the figure benchmarks' NiN run sizes; " + "; ".join(PRESET_HELP.values()),
    )


def add_preset_flag(parser: argparse.ArgumentParser) -> None:
    """Adds ``--preset`` (:data:`~inna_optax.training.PRESETS`)."""
    parser.add_argument("--preset", **_preset_spec())


def add_flags(parser: argparse.ArgumentParser, names=None, default_none: bool = False) -> None:
    """Adds one flag per Config field (those in `names`, default all), with the
    field's type, default, choices and help, in a group per concern (:data:`GROUPS`).
    `default_none`: every flag defaults to None (unset), for callers that layer it
    over a preset."""
    hints = typing.get_type_hints(Config)
    fields = {f.name: f for f in dataclasses.fields(Config)}
    for group, members in GROUPS.items():
        chosen = [n for n in members if names is None or n in names]
        if chosen:
            section = parser.add_argument_group(group)
            for name in chosen:
                options, settings = _flag_spec(fields[name], hints[name], default_none)
                section.add_argument(*options, **settings)


def flags_table() -> str:
    """The command line's flags as a Markdown table (flag, choices or value, help),
    generated from the Config fields as :func:`add_flags` makes them: the table of
    the documentation's training page."""
    hints = typing.get_type_hints(Config)
    fields = {f.name: f for f in dataclasses.fields(Config)}
    rows = ["| flag | value | what it sets |", "| --- | --- | --- |"]
    preset = _preset_spec()
    choices = " \\| ".join(f"`{c}`" for c in preset["choices"])
    rows.append(f"| `--preset` | {choices} | {preset['help']} |")
    for name in (n for members in GROUPS.values() for n in members):
        f = fields[name]
        options, settings = _flag_spec(f, hints[f.name])
        if "choices" in settings:
            value = " \\| ".join(f"`{c}`" for c in settings["choices"])
        elif "type" in settings:
            value = settings.get("metavar") or f.name.upper()
        else:
            value = ""
        names = ", ".join(f"`{o}`" for o in options)
        text = settings["help"].replace("|", "\\|").replace("<", "\\<")
        rows.append(f"| {names} | {value} | {text} |")
    return "\n".join(rows) + "\n"
