"""Tensor layers: images ``(H, W, C)`` channels-last and sequences ``(T, d)``, as in Keras.

Each layer is a frozen dataclass whose fields are its arguments (``Conv2D(32, 3, "relu")``).
It knows its shape rule (:meth:`shape`, refusing an input it cannot take, by name) and its
parameters; its math is one index-level definition in :mod:`derive.tensor_ops`, whose
backward rules SymPy derives. Nothing here is a derivative.

>>> Conv2D(32, 3, "relu").shape((28, 28, 1)), MaxPool2D(2).shape((26, 26, 32))
((26, 26, 32), (13, 13, 32))
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from . import registry
from .errors import BackpropInputError, IncompatibleError


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise BackpropInputError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _image(layer, shape: tuple) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise IncompatibleError(
            f"{layer!r} needs an image (H, W, C) as input, got shape {shape}"
            + (" (a flat vector: a Flatten or Dense before it?)" if len(shape) == 1 else "")
        )
    return shape


def _sequence(layer, shape: tuple) -> tuple[int, int]:
    if len(shape) != 2:
        raise IncompatibleError(
            f"{layer!r} needs a sequence (T, d) as input, got shape {shape}"
            + (
                " (a flat vector: attention has no positions to attend over)"
                if len(shape) == 1
                else ""
            )  # fmt: skip
        )
    return shape


@dataclass(frozen=True)
class Conv2D:
    """``Z[n,h,w,o] = Σ_{i,j,c} X[n, s h + i, s w + j, c] W[i,j,c,o] + b[o]``, ``A = g(Z)``.

    ``kernel_size`` is an int or ``(kh, kw)``; ``padding`` ``"valid"`` (no padding) or
    ``"same"`` (zeros around the input so that the output is ``ceil(H / stride)``, as Keras).
    """

    filters: int
    kernel_size: int | tuple
    activation: str = "linear"
    stride: int = 1
    padding: str = "valid"

    def __post_init__(self):
        _positive_int(self.filters, "Conv2D filters")
        _positive_int(self.stride, "Conv2D stride")
        for size in self.kernel:
            _positive_int(size, "Conv2D kernel_size")
        if self.padding not in ("valid", "same"):
            raise BackpropInputError(
                f"Conv2D padding must be 'valid' or 'same', got {self.padding!r}"
            )
        registry.activation(self.activation)
        if not registry.activation(self.activation).elementwise:
            raise IncompatibleError(
                f"a Conv2D activation must act entry by entry, got {self.activation!r}"
            )

    @property
    def kernel(self) -> tuple[int, int]:
        size = self.kernel_size
        return tuple(size) if isinstance(size, tuple | list) and len(size) == 2 else (size, size)

    def pads(self, shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """Zeros added (before, after) each spatial axis: none for ``"valid"``; Keras's
        split for ``"same"`` (the odd one after)."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        pads = []
        for size, k in zip(shape[:2], self.kernel):
            out = -(-size // self.stride)
            total = max((out - 1) * self.stride + k - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)

    def shape(self, shape: tuple) -> tuple:
        height, width, _ = _image(self, shape)
        (top, bottom), (left, right) = self.pads(shape)
        height, width = height + top + bottom, width + left + right
        kh, kw = self.kernel
        if kh > height or kw > width:
            raise IncompatibleError(
                f"{self!r}: its {kh}×{kw} kernel is larger than its {shape[0]}×{shape[1]} "
                "input (padding 'valid'); use a smaller kernel or padding='same'"
            )
        return ((height - kh) // self.stride + 1, (width - kw) // self.stride + 1, self.filters)

    def params(self, k: int, shape: tuple) -> dict:
        return {f"W{k}": (*self.kernel, shape[2], self.filters), f"b{k}": (self.filters,)}


@dataclass(frozen=True)
class MaxPool2D:
    """The largest entry of each ``size × size`` window (stride ``size``). A map the size
    does not divide is cropped, as Keras's ``padding="valid"`` does (``floor(H / size)``):
    the last rows and columns get no gradient."""

    size: int

    def __post_init__(self):
        _positive_int(self.size, f"{type(self).__name__} size")

    def shape(self, shape: tuple) -> tuple:
        height, width, channels = _image(self, shape)
        if self.size > min(height, width):
            raise IncompatibleError(
                f"{self!r}: a {self.size}×{self.size} window does not fit in a {height}×{width} map"
            )
        return (height // self.size, width // self.size, channels)

    def params(self, k: int, shape: tuple) -> dict:
        return {}


@dataclass(frozen=True)
class AvgPool2D(MaxPool2D):
    """The mean of each ``size × size`` window (stride ``size``); cropped like MaxPool2D."""


@dataclass(frozen=True)
class Flatten:
    """``Z[n, (y W + x) C + c] = X[n, y, x, c]``: an image as a vector, in row-major order."""

    def shape(self, shape: tuple) -> tuple:
        size = 1
        for axis in shape:
            size *= axis
        return (size,)

    def params(self, k: int, shape: tuple) -> dict:
        return {}


@dataclass(frozen=True)
class SelfAttention:
    """One head: ``softmax(Q Kᵀ / √d_k) V`` with ``Q = X W_q``, ``K = X W_k``, ``V = X W_v``,
    each ``(d, d_k)``; the output is ``(T, d_k)``."""

    d_k: int

    def __post_init__(self):
        _positive_int(self.d_k, "SelfAttention d_k")

    def shape(self, shape: tuple) -> tuple:
        length, _ = _sequence(self, shape)
        return (length, self.d_k)

    def params(self, k: int, shape: tuple) -> dict:
        return {f"{name}{k}": (shape[1], self.d_k) for name in ("Wq", "Wk", "Wv")}


@dataclass(frozen=True)
class MeanOverTime:
    """``Z[n, e] = Σ_t X[n, t, e] / T``: a sequence as one vector, for a Dense head."""

    def shape(self, shape: tuple) -> tuple:
        _sequence(self, shape)
        return (shape[1],)

    def params(self, k: int, shape: tuple) -> dict:
        return {}


TENSOR_LAYERS = (Conv2D, MaxPool2D, AvgPool2D, Flatten, SelfAttention, MeanOverTime)

__all__ = ["AvgPool2D", "Conv2D", "Flatten", "MaxPool2D", "MeanOverTime", "SelfAttention"]
