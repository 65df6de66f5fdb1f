"""Matplotlib helpers shared by the benchmarks and the notebooks.

Not part of the core optimizer: it needs matplotlib (the `train` extra), which
each function imports only when it draws.
"""

from __future__ import annotations

import numpy as np

from inna_optax.paper.nonsmooth import FIG1_MINIMUM, FIG1_START


def fig1_contour(ax, xlim=(-1.6, 1.6), ylim=(-0.5, 2.5), levels=20):
    """Log-spaced contours of J(t1, t2) = 100 (t2 - |t1|)^2 + |1 - t1|, the start
    (-1, 1.5) as a cross and the minimum (1, 1) as a star."""
    t1, t2 = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    z = 100 * (t2 - np.abs(t1)) ** 2 + np.abs(1 - t1)
    ax.contour(t1, t2, np.log10(z + 1e-3), levels=levels, cmap="Greys", linewidths=0.6)
    ax.plot(*FIG1_START, "kx", label="start (-1, 1.5)")
    ax.plot(*FIG1_MINIMUM, "r*", ms=9, label="minimum (1, 1)")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("t1")
    ax.set_ylabel("t2")


def trajectory(ax, thetas, max_points: int = 20_000, **kwargs):
    """A path theta_k in the plane, thinned to at most `max_points` points."""
    thetas = np.asarray(thetas)
    step = max(1, len(thetas) // max_points)
    kwargs.setdefault("lw", 0.7)
    return ax.plot(thetas[::step, 0], thetas[::step, 1], **kwargs)


def band(ax, curves, label=None, log: bool = False, color=None, x=None):
    """Mean over rows (runs) against epochs 1..E, with a pale band from the best to
    the worst run, as in the paper's Figures 2 to 4. `log`: plot log10 values."""
    curves = np.atleast_2d(np.asarray(curves, np.float64))
    x = np.arange(1, curves.shape[1] + 1) if x is None else x
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.log10(curves) if log else curves
        mean, lo, hi = np.mean(y, 0), np.min(y, 0), np.max(y, 0)
    (line,) = ax.plot(x, mean, label=label, color=color, lw=1.6)
    if len(curves) > 1:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    return line


def heatmap(
    ax, values, xs, ys, xlabel: str, ylabel: str, title: str = "", fmt=".2f", vmin=None, vmax=None
):
    """values[i, j] at (xs[j], ys[i]) as colours with the numbers written in; NaN or
    inf cells (diverged runs) are left white and marked 'div'. Give several panels
    the same vmin and vmax to compare their colours."""
    values = np.asarray(values, np.float64)
    finite = np.where(np.isfinite(values), values, np.nan)
    image = ax.imshow(finite, origin="lower", cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
    ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    lo, hi = image.get_clim()
    middle = (lo + hi) / 2
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            text = format(v, fmt) if np.isfinite(v) else "div"
            color = "white" if np.isfinite(v) and v < middle else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    return image
