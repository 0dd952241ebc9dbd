"""Layers: a network is a list of them, and a layer is its arguments (as in Keras).

Each layer is a small frozen dataclass whose fields are exactly its constructor's arguments
(``Dense(8, "relu").activation``). It knows its shape rule (:meth:`width`) and how to add its
nodes to a matrix-level graph given the node it reads (:meth:`add`): SymPy definitions only.
Their backward steps come from the ops those nodes carry (``derive.ops``, ``derive.layer_ops``)
through the same reverse sweep as every other graph: nothing here is a derivative.

>>> Dense(8, "relu"), Residual(Dense(8), LayerNorm()).layers[1]
(Dense(units=8, activation='relu'), LayerNorm(eps=1e-05))
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import sympy as sp
from sympy import HadamardProduct, OneMatrix

from . import registry
from .errors import BackpropInputError, IncompatibleError
from .layer_ops import LayerNormOp, RowDeviationOp, deviation_of, normalized_of
from .ops import DenseOp, RowActivationOp, m


def _exact(value: float) -> sp.Rational:
    """A float argument as the rational it was written as (0.2, not 0.2000000000000000111)."""
    return sp.Rational(repr(float(value)))


@dataclass(frozen=True)
class Dense:
    """``Z = A_prev W + 1 b``, ``A = g(Z)``: ``units`` outputs, any registered activation."""

    units: int
    activation: str = "linear"

    def __post_init__(self):
        if isinstance(self.units, bool) or not isinstance(self.units, numbers.Integral):
            raise BackpropInputError(f"Dense units must be a positive integer, got {self.units!r}")
        if self.units < 1:
            raise BackpropInputError(f"Dense units must be a positive integer, got {self.units!r}")
        registry.activation(self.activation)  # an unknown name lists the known ones

    def width(self, width: int) -> int:
        return int(self.units)

    def add(self, graph, prev):
        k = graph.number()
        dim = graph.dim(k, self.units)
        w = graph.param(f"W{k}", (prev.shape[1], dim), latex=f"W^{{[{k}]}}")
        b = graph.param(f"b{k}", (1, dim), array_shape=(dim,), latex=f"b^{{[{k}]}}")
        expr = prev.matrix * w.matrix + OneMatrix(m, 1) * b.matrix
        z = graph.node(f"Z{k}", DenseOp(), (prev, w, b), expr, dim, latex=f"Z^{{[{k}]}}")
        op = RowActivationOp(self.activation, dim)
        return graph.node(f"A{k}", op, (z,), op.definition(z.symbol), dim, latex=f"A^{{[{k}]}}")


@dataclass(frozen=True, init=False)
class Residual:
    """``out = A + inner(A)``: the inner layers must keep the width of their input."""

    layers: tuple

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        if not layers:
            raise BackpropInputError("Residual needs at least one inner layer, got none")
        for layer in layers:
            check_layer(layer)
        object.__setattr__(self, "layers", tuple(layers))

    def width(self, width: int) -> int:
        inner = width
        for layer in self.layers:
            inner = layer.width(inner)
        if inner != width:
            raise IncompatibleError(
                f"a Residual's inner layers must keep the width: its input has {width} "
                f"features, its inner layers ({', '.join(map(repr, self.layers))}) give {inner}"
            )
        return width

    def add(self, graph, prev):
        out = prev
        graph.open_widths.append(prev.shape[1])
        for layer in self.layers:
            out = layer.add(graph, out)
        graph.open_widths.pop()
        k = graph.residual_number()
        expr = prev.matrix + out.matrix
        return graph.node(
            f"R{k}", DenseOp("+"), (prev, out), expr, prev.shape[1], latex=f"R_{{{k}}}"
        )


@dataclass(frozen=True)
class LayerNorm:
    """Each example's features normalized (mean 0, variance 1), then ``gamma x̂ + beta``."""

    eps: float = 1e-5

    def __post_init__(self):
        eps = self.eps
        ok = isinstance(eps, numbers.Real) and not isinstance(eps, bool)
        if not ok or not math.isfinite(eps) or not eps > 0:
            raise BackpropInputError(
                f"LayerNorm eps must be a positive finite number, got {self.eps!r}"
            )

    def width(self, width: int) -> int:
        return width

    def add(self, graph, prev):
        k = graph.number()
        dim = prev.shape[1]
        s = graph.node(
            f"S{k}",
            RowDeviationOp(),
            (prev,),
            deviation_of(prev.symbol, dim, _exact(self.eps)),
            (m, 1),
            latex=rf"\sigma^{{[{k}]}}",
        )
        op = LayerNormOp(dim)
        normal = graph.node(
            f"N{k}", op, (prev, s), normalized_of(prev.symbol, s.symbol, dim), dim,
            latex=rf"\hat{{X}}^{{[{k}]}}",
        )  # fmt: skip
        gamma = graph.param(f"gamma{k}", (1, dim), array_shape=(dim,), latex=rf"\gamma^{{[{k}]}}")
        beta = graph.param(f"beta{k}", (1, dim), array_shape=(dim,), latex=rf"\beta^{{[{k}]}}")
        ones = OneMatrix(m, 1)
        expr = HadamardProduct(ones * gamma.matrix, normal.matrix) + ones * beta.matrix
        return graph.node(
            f"A{k}", DenseOp("⊙"), (normal, gamma, beta), expr, dim, latex=f"A^{{[{k}]}}"
        )


@dataclass(frozen=True)
class Dropout:
    """Inverted dropout: ``A = M ⊙ A_prev / keep`` with ``keep = 1 - rate``. The 0/1 mask ``M``
    is data the kernel takes (``masks={"M3": ...}``); without one the layer is the identity."""

    rate: float

    def __post_init__(self):
        rate = self.rate
        ok = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
        if not ok or not 0 <= rate < 1:
            raise BackpropInputError(
                f"Dropout rate must be a number in [0, 1) (the fraction dropped), got {rate!r}"
            )

    @property
    def keep(self) -> sp.Rational:
        return 1 - _exact(self.rate)

    def width(self, width: int) -> int:
        return width

    def add(self, graph, prev):
        k = graph.number()
        dim = prev.shape[1]
        mask = graph.mask(f"M{k}", dim, self.keep, latex=f"M^{{[{k}]}}")
        expr = HadamardProduct(mask.matrix, prev.matrix) / self.keep
        return graph.node(f"A{k}", DenseOp("⊙"), (prev, mask), expr, dim, latex=f"A^{{[{k}]}}")


LAYERS = (Dense, Residual, LayerNorm, Dropout)


def layer_list(layers) -> list:
    """``layers`` as a non-empty list (any iterable of layers, not a string)."""
    if isinstance(layers, str | bytes) or not hasattr(layers, "__iter__"):
        raise BackpropInputError(f"layers must be a list of layers, got {layers!r}")
    layers = list(layers)
    if not layers:
        raise BackpropInputError("a network needs at least one layer, got an empty list")
    return layers


def check_layer(layer) -> None:
    if not isinstance(layer, LAYERS):
        known = ", ".join(cls.__name__ for cls in LAYERS)
        raise BackpropInputError(f"unknown layer {layer!r}; known: {known} (from derive.layers)")


def activations_of(layer) -> list[str]:
    """The activations a layer uses, nested layers included."""
    if isinstance(layer, Dense):
        return [layer.activation]
    if isinstance(layer, Residual):
        return [name for inner in layer.layers for name in activations_of(inner)]
    return []


# the tensor layers (images and sequences) live beside these; one import for all layers
from .tensor_layers import (  # noqa: E402
    AvgPool2D,
    Conv2D,
    Flatten,
    MaxPool2D,
    MeanOverTime,
    SelfAttention,
)

__all__ = ["AvgPool2D", "Conv2D", "Dense", "Dropout", "Flatten", "LayerNorm", "MaxPool2D",
           "MeanOverTime", "Residual", "SelfAttention"]  # fmt: skip
