"""The tensor report's two pictures: one output position's receptive field in a convolution,
and a max pool's gradient going back to each window's arg-max."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _grid(ax, values, x0, y0, highlight=(), colour="#f4a261", fmt="{:g}"):
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            face = colour if (r, c) in highlight else "white"
            ax.add_patch(_square(x0 + c, y0 - r, face))
            ax.text(x0 + c + 0.5, y0 - r + 0.5, fmt.format(values[r, c]), ha="center",
                    va="center", fontsize=8)  # fmt: skip


def _square(x, y, face):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1, 1, facecolor=face, edgecolor="black", linewidth=0.6)


def _figure(width, height):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_aspect("equal")
    ax.axis("off")
    return plt, fig, ax


def draw_receptive_field(path: Path) -> Path:
    """A 6×6 input, a 3×3 kernel, the 4×4 output: Z[1, 2] reads the window X[1:4, 2:5]."""
    plt, fig, ax = _figure(7.5, 2.8)
    x = np.arange(36).reshape(6, 6) % 7
    window = {(r, c) for r in range(1, 4) for c in range(2, 5)}
    _grid(ax, x, 0, 5, window)
    _grid(ax, np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]), 7.5, 4, set(), fmt="{:d}")
    z = np.zeros((4, 4), dtype=int)
    _grid(ax, z, 12, 4.5, {(1, 2)}, fmt="")
    ax.text(3, -1.4, "input X (one channel)", ha="center", fontsize=9)
    ax.text(9, 0.4, "kernel W", ha="center", fontsize=9)
    ax.text(14, -0.2, "output Z", ha="center", fontsize=9)
    ax.annotate("", xy=(14.5, 4.0), xytext=(5, 3.5),
                arrowprops={"arrowstyle": "->", "color": "#e76f51"})  # fmt: skip
    ax.text(8, 7.0, r"$Z_{1,2} = \sum_{i,j} X_{1+i,\,2+j}\, W_{i,j}$; back: "
            r"$dW_{i,j} += X_{1+i,2+j}\, dZ_{1,2}$, $dX_{1+i,2+j} += "
            r"W_{i,j}\, dZ_{1,2}$", ha="center", fontsize=9)  # fmt: skip
    ax.set_xlim(-0.5, 16.5)
    ax.set_ylim(-2, 7.6)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def draw_pool_gradient(path: Path) -> Path:
    """A 4×4 map, 2×2 max pool: each window's dZ goes to its largest entry (the first of a tie)."""
    plt, fig, ax = _figure(7.0, 2.4)
    x = np.array([[1, 3, 2, 0], [3, 2, 1, 1], [0, 4, 5, 5], [2, 1, 0, 5]])
    blocks = x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    first = blocks.argmax(axis=-1)
    winners = {
        (2 * r + first[r, c] // 2, 2 * c + first[r, c] % 2) for r in range(2) for c in range(2)
    }
    _grid(ax, x, 0, 3, winners)
    dz = np.array([[0.1, -0.2], [0.3, 0.4]])
    _grid(ax, dz, 6, 2, set(), fmt="{:+.1f}")
    dx = np.zeros((4, 4))
    for r, c in winners:
        dx[r, c] = dz[r // 2, c // 2]
    _grid(ax, dx, 10, 3, winners, fmt="{:+.1f}")
    ax.text(2, -1.5, "X (ties: 3, 3 and 5, 5)", ha="center", fontsize=9)
    ax.text(7, -0.5, "dZ", ha="center", fontsize=9)
    ax.text(12, -1.5, "dX = R ⊙ dZ upsampled", ha="center", fontsize=9)
    ax.set_xlim(-0.5, 14.5)
    ax.set_ylim(-2, 4.5)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
