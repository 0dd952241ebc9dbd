"""Figures of a training run: the loss curve and, for two inputs, the decision boundary.

Each is written as PDF (for the report) and PNG (to look at); the functions return the PDF.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from .plots import DERIVATIVE_COLOR, FUNCTION_COLOR  # noqa: E402

CLASS_COLORS = ("#c0392b", "#1f5fa8", "#2e7d32", "#8e44ad", "#e67e22", "#16a085")
GRID = 300  # points per side of the boundary's grid


def loss_curve(history, path: Path, ylabel: str = "loss") -> Path:
    """The batch losses (light) and the epoch means against the step; accuracy, when
    measured, on a second axis."""
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    steps = np.arange(1, len(history.step_loss) + 1)
    per_epoch = history.steps_per_epoch
    ax.plot(steps, history.step_loss, color=FUNCTION_COLOR, alpha=0.25, lw=0.8, label="batch")
    ends = per_epoch * np.arange(1, len(history.epoch_loss) + 1)
    ax.plot(ends, history.epoch_loss, color=FUNCTION_COLOR, lw=1.6, label="epoch mean")
    epochs = history.epoch_loss
    if min(epochs) > 0 and max(epochs) > 20 * min(epochs):  # a fall over decades
        ax.set_yscale("log")
    ax.set_xlabel(f"step ({per_epoch} per epoch)")
    ax.set_ylabel(ylabel)
    if history.accuracy:
        right = ax.twinx()
        right.plot(ends, history.accuracy, color=DERIVATIVE_COLOR, lw=1.2, label="accuracy")
        right.set_ylim(0, 1.02)
        right.set_ylabel("accuracy", color=DERIVATIVE_COLOR)
        right.grid(False)
        right.spines["right"].set_visible(True)
    # above the axes: inside, it covers the curve wherever the curve happens to run
    handles = [line for axis in fig.axes for line in axis.get_lines()]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles),
              frameon=False)  # fmt: skip
    return _save(fig, path)


def decision_boundary(kernel, params, X, labels, kind: str, path: Path) -> Path:
    """The plane coloured by the class the trained network predicts, with the points."""
    pad = 0.15 * (X.max(axis=0) - X.min(axis=0)) + 0.1
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    u, v = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    grid = np.c_[u.ravel(), v.ravel()].astype(next(iter(params.values())).dtype)
    out = np.asarray(kernel.forward(params, grid))
    classes = int(labels.max()) + 1
    if kind in ("labels", "one_hot"):
        predicted = out.argmax(axis=1)
    else:
        predicted = (out.reshape(len(grid), -1)[:, 0] > 0.5).astype(int)
    colors = ListedColormap(CLASS_COLORS[: max(classes, 2)])
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.contourf(u, v, predicted.reshape(u.shape), levels=np.arange(-0.5, max(classes, 2)),
                cmap=colors, alpha=0.25)  # fmt: skip
    ax.scatter(X[:, 0], X[:, 1], c=labels, cmap=colors, vmin=-0.5, vmax=max(classes, 2) - 0.5,
               s=14 if len(X) > 50 else 60, edgecolors="white", linewidths=0.5)  # fmt: skip
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.grid(False)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path.with_suffix(".pdf"))
    fig.savefig(path.with_suffix(".png"), dpi=150)
    plt.close(fig)
    return path.with_suffix(".pdf")
