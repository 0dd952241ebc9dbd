"""What a training run records (loss per step and per epoch, accuracy), and its progress bar.

>>> history = History(steps_per_epoch=2, examples=3)
>>> history.add_step(1.0, 2); history.add_step(4.0, 1); history.end_epoch(None)
>>> history.step_loss.tolist(), history.epoch_loss
([1.0, 4.0], [2.0])
"""

from __future__ import annotations

import sys
import time

import numpy as np

ACCURACY_ROWS = 4096  # rows per forward call when measuring accuracy (bounds the memory)


class History:
    """``step_loss`` (the batch's mean cost before each update), ``epoch_loss`` (the mean
    over the epoch's examples), ``accuracy`` (per epoch, on all examples, when the targets
    are classes; else empty) and ``converged_epoch`` (the first epoch, from 1, in which no
    step had any loss: the perceptron made no mistake; None if none did)."""

    def __init__(self, steps_per_epoch: int, examples: int):
        self.steps_per_epoch = steps_per_epoch
        self.examples = examples
        self._steps: list[float] = []
        self.epoch_loss: list[float] = []
        self.accuracy: list[float] = []
        self.converged_epoch: int | None = None
        self._total = 0.0
        self._clean = True

    @property
    def step_loss(self) -> np.ndarray:
        return np.array(self._steps)

    @property
    def last_loss(self) -> float:
        return self._steps[-1]

    def add_step(self, loss: float, rows: int) -> None:
        self._steps.append(loss)
        self._total += loss * rows
        self._clean = self._clean and loss == 0

    def end_epoch(self, accuracy: float | None) -> None:
        self.epoch_loss.append(self._total / self.examples)
        if accuracy is not None:
            self.accuracy.append(accuracy)
        if self._clean and self.converged_epoch is None:
            self.converged_epoch = len(self.epoch_loss)
        self._total, self._clean = 0.0, True


def class_kind(model, Y: np.ndarray) -> str | None:
    """How ``Y`` names classes: ``labels`` (integers, a sparse loss), ``one_hot`` rows, or
    ``binary`` 0/1 for one output; None when the targets are not classes."""
    if model is not None and model.labels:
        return "labels"
    zero_one = bool(np.isin(Y, (0, 1)).all())
    if Y.ndim == 2 and Y.shape[1] > 1:
        return "one_hot" if zero_one and bool((Y.sum(axis=1) == 1).all()) else None
    return "binary" if zero_one else None


def accuracy(kind: str, kernel, params, X: np.ndarray, Y: np.ndarray) -> float:
    """The fraction of examples whose predicted class is the target's."""
    right = 0
    for lo in range(0, len(X), ACCURACY_ROWS):
        out = np.asarray(kernel.forward(params, X[lo : lo + ACCURACY_ROWS]))
        y = Y[lo : lo + ACCURACY_ROWS]
        if kind == "labels":
            right += int((out.argmax(axis=1) == y).sum())
        elif kind == "one_hot":
            right += int((out.argmax(axis=1) == y.argmax(axis=1)).sum())
        else:
            right += int(((out.reshape(y.shape) > 0.5) == (y > 0.5)).sum())
    return right / len(X)


class Progress:
    """A one-line bar on stderr, redrawn at most ten times a second; silent when disabled
    (by default: when stderr is not a terminal)."""

    def __init__(self, epochs: int, steps_per_epoch: int, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self.total = epochs * steps_per_epoch
        self.epochs = epochs
        self.done = 0
        self._shown = 0.0

    def step(self, epoch: int, loss: float) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._shown < 0.1 and self.done < self.total:
            return
        self._shown = now
        filled = round(30 * self.done / self.total)
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(f"\repoch {epoch + 1}/{self.epochs} [{bar}] loss {loss:.4g}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
