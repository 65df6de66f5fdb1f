"""A training run as a person sees it on a terminal: the command line runs in a
pseudo-terminal of 120 columns, and a terminal emulator (pyte) keeps what the screen
shows. Writes the final screen and the distinct states of the progress line, as
text (OUT.txt) and as a picture of the screen (OUT.png).

    pip install pyte
    python -m benchmarks.terminal_screen --out benchmarks/results/terminal_screen -- \\
        --dataset mnist --data-dir ../shared/data/mnist --train-examples 4224 --width 0.125

Everything after ``--`` goes to ``python -m inna_optax.train``. ``--source DIR``
runs the command line of another checkout (e.g. a ``git worktree`` of an older
commit) for a before-and-after comparison.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def capture(argv, source=ROOT, cwd=None, columns=120, rows=60, every=0.25):
    """Runs ``python -m inna_optax.train argv`` (of checkout `source`, in folder
    `cwd`, default `source`) in a pseudo-terminal of `columns` x `rows`. Returns
    (exit code, the screen's lines at the end, [(seconds, the cursor's line)] each
    time that line changed, sampled every `every` seconds)."""
    import pyte

    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    main_fd, sub_fd = pty.openpty()
    fcntl.ioctl(sub_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(source), "COLUMNS": str(columns)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=source if cwd is None else cwd,
        stdin=subprocess.DEVNULL,
        stdout=sub_fd,
        stderr=sub_fd,
        env=env,
    )
    os.close(sub_fd)
    start, frames = time.monotonic(), []
    while True:
        ready, _, _ = select.select([main_fd], [], [], every)
        if ready:
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # the process closed the terminal
                break
            if not data:
                break
            stream.feed(data)
        line = screen.display[screen.cursor.y].rstrip()
        if line and (not frames or frames[-1][1] != line):
            frames.append((time.monotonic() - start, line))
    code = proc.wait()
    os.close(main_fd)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return code, lines, frames


def report(title: str, code: int, lines, frames) -> str:
    out = [f"# {title}", f"exit code {code}", "", "## the screen at the end", ""]
    out += [f"    {line}" for line in lines]
    out += ["", "## the cursor's line each time it changed (seconds since the start)", ""]
    out += [f"    {t:7.2f}  {line}" for t, line in frames]
    return "\n".join(out) + "\n"


def draw(path: Path, title: str, lines) -> None:
    """The screen as a picture: white on black, one monospaced row per line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 0.6 + 0.19 * max(len(lines), 1)
    fig = plt.figure(figsize=(13, height), facecolor="black")
    fig.text(0.01, 1 - 0.25 / height, title, color="#9cf", family="monospace", fontsize=9)
    for i, line in enumerate(lines):
        y = 1 - (0.5 + 0.19 * i) / height
        fig.text(0.01, y, line, color="white", family="monospace", fontsize=8, va="top")
    fig.savefig(path, facecolor="black", dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    run_argv = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="terminal_screen", help="OUT of OUT.txt and OUT.png")
    p.add_argument("--source", default=str(ROOT), help="the checkout whose command line runs")
    p.add_argument("--title", default=None, help="the heading (default: the command)")
    p.add_argument("--columns", type=int, default=120)
    args = p.parse_args(own)
    try:
        import pyte  # noqa: F401
    except ModuleNotFoundError:
        raise SystemExit(
            "error: this script emulates a terminal with pyte: pip install pyte"
        ) from None
    code, lines, frames = capture(run_argv, Path(args.source), columns=args.columns)
    title = args.title or "$ python -m inna_optax.train " + " ".join(run_argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text(report(title, code, lines, frames))
    draw(out.with_suffix(".png"), title, lines)
    print(f"exit code {code}; wrote {out.with_suffix('.txt')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
