"""``network(n_inputs, layers, loss)``: a model from a list of layers, at the matrix level.

Each layer adds its nodes (``derive.layers``); parameters are named by the layer's position,
counting the layers inside a Residual in place (``W1, b1, gamma2, beta2, W3, b3, ...``), and
every width is a symbol, so the derivation costs the same whatever the widths (each op's
backward rule is derived once on placeholder shapes and reused).

>>> from derive.layers import Dense, LayerNorm, Residual
>>> model = network(4, [Dense(8, "relu"), Residual(Dense(8, "tanh")), LayerNorm(),
...                     Dense(3, "softmax")], "cce")
>>> list(model.param_shapes())
['W1', 'b1', 'W2', 'b2', 'gamma3', 'beta3', 'W4', 'b4']
>>> model.derive().gradient("W4")
A3.T*dZ4
"""

from __future__ import annotations

import math
import numbers

import sympy as sp

from . import registry
from .errors import BackpropInputError, IncompatibleError
from .graph import Node
from .layer_ops import DecayedCostOp, Mask
from .layers import Dense, _exact, activations_of, check_layer, layer_list
from .model import Model
from .ops import CostOp, m
from .tensor_layers import TENSOR_LAYERS


class _Graph:
    """The nodes being laid out, with the counters that name them."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.dims: dict[sp.Symbol, int] = {}
        self.layer_count = 0
        self.residual_count = 0
        self.open_widths: list[sp.Symbol] = []  # inputs of the Residuals being laid out

    def number(self) -> int:
        """The position of the next layer that has nodes of its own (1, 2, ...)."""
        self.layer_count += 1
        return self.layer_count

    def residual_number(self) -> int:
        self.residual_count += 1
        return self.residual_count

    def dim(self, k: int, size: int) -> sp.Symbol:
        """The size symbol of layer k's outputs; inside a Residual, a width equal to the
        Residual's input is that same symbol (the sum needs the shapes to match)."""
        for symbol in reversed(self.open_widths):
            if self.dims[symbol] == size:
                return symbol
        symbol = sp.Symbol(f"n{k}", integer=True, positive=True)
        self.dims[symbol] = int(size)
        return symbol

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def param(self, name, shape, array_shape=None, latex=None) -> Node:
        return self.add(Node(name, "param", shape=shape, array_shape=array_shape, latex=latex))

    def mask(self, name, width, keep, latex=None) -> Node:
        return self.add(Node(name, "mask", op=Mask(keep), shape=(m, width), latex=latex))

    def node(self, name, op, parents, expr, width, latex=None) -> Node:
        shape = width if isinstance(width, tuple) else (m, width)
        return self.add(
            Node(name, "hidden", op=op, parents=tuple(parents), expr=expr, shape=shape, latex=latex)
        )


def network(n_inputs: int, layers, loss: str, weight_decay: float = 0.0) -> Model:
    """A network of ``layers`` on ``n_inputs`` features, trained with ``loss`` (the mean over
    the batch), plus ``weight_decay/2`` times the sum of the squared weights (not biases).

    ``layers`` are :mod:`derive.layers` objects; each Dense takes any registered activation,
    softmax on the last layer only (with ``cce`` or ``sparse_cce``). A shape tuple
    ``n_inputs`` (``(28, 28, 1)`` images, ``(T, d)`` sequences) or a tensor layer (Conv2D,
    SelfAttention, ...) gives a :class:`derive.tensor_network.TensorNetwork` instead.
    """
    if isinstance(n_inputs, tuple) or any(isinstance(x, TENSOR_LAYERS) for x in _iterable(layers)):
        return _tensor_network(n_inputs, layers, loss, weight_decay)
    n_in = _inputs(n_inputs)
    layers = _layer_list(layers)
    decay = _decay(weight_decay)
    loss_ = registry.loss(loss)
    widths = [n_in]
    for layer in layers:
        widths.append(layer.width(widths[-1]))
    _check_activations(layers, loss_, widths[-1])

    graph = _Graph()
    x_dim = sp.Symbol("n0", integer=True, positive=True)
    graph.dims[x_dim] = n_in
    out = graph.add(Node("X", "input", shape=(m, x_dim)))
    for layer in layers:
        out = layer.add(graph, out)
    out.role = "output"
    vector = loss_.targets == "labels"
    target = graph.add(Node("Y", "target", shape=out.shape, array_shape=(m,) if vector else None))
    weights = [node for node in graph.nodes if node.role == "param" and node.name[0] == "W"]
    width = sp.Integer(widths[-1])
    if decay:
        op = DecayedCostOp(loss_.name, width, decay)
        parents = (out, target, *weights)
        expr = op.definition(out.symbol, target.symbol, weights)
    else:
        op = CostOp(loss_.name, width)
        parents, expr = (out, target), op.definition(out.symbol, target.symbol)
    cost = graph.add(Node("J", "loss", op=op, parents=parents, expr=expr))
    last = _last_dense(layers)
    model = Model(
        "network",
        "matrix",
        graph.nodes,
        cost,
        tuple(widths),
        None,
        last.activation if last is not None else "linear",
        loss_.name,
        graph.dims,
        source=_describe(n_in, layers, loss_.name, weight_decay),
    )
    return model


def _iterable(layers) -> list:
    return list(layers) if isinstance(layers, list | tuple) else []


def _tensor_network(n_inputs, layers, loss, weight_decay):
    from .tensor_network import tensor_network

    if weight_decay:
        raise BackpropInputError(
            f"weight_decay={weight_decay!r} is not available on tensor inputs yet; use 0"
        )
    shape = n_inputs if isinstance(n_inputs, tuple) else (_inputs(n_inputs),)
    return tensor_network(shape, layers, loss)


def _inputs(n_inputs) -> int:
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, numbers.Integral) or n_inputs < 1:
        raise BackpropInputError(
            f"n_inputs must be a positive integer (the number of features), got {n_inputs!r}"
        )
    return int(n_inputs)


def _layer_list(layers) -> list:
    layers = layer_list(layers)
    for layer in layers:
        check_layer(layer)
    return layers


def _decay(weight_decay) -> sp.Rational:
    value = weight_decay
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise BackpropInputError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    return _exact(value) if value else sp.Integer(0)


def _last_dense(layers):
    """The Dense layer that makes the output, or None when the output is not a Dense's."""
    last = layers[-1]
    return last if isinstance(last, Dense) else None


def _check_activations(layers, loss_, n_out: int) -> None:
    names = [name for layer in layers for name in activations_of(layer)]
    last = _last_dense(layers)
    output = last.activation if last is not None else "linear"
    for k, name in enumerate(names):
        act = registry.activation(name)
        if act.output_only and not (k == len(names) - 1 and last is not None):
            raise IncompatibleError(
                f"{name} is only available as the output activation (the last layer's)"
            )
    registry.check_head(registry.activation(output), loss_, n_out)


def _describe(n_in, layers, loss, weight_decay) -> str:
    text = f"network({n_in}, [{', '.join(map(_short, layers))}], {loss!r}"
    return text + (f", weight_decay={weight_decay!r})" if weight_decay else ")")


def _short(layer) -> str:
    """``Dense(8, 'relu')``: a layer as a person writes it, positional arguments only."""
    from dataclasses import fields

    if hasattr(layer, "layers"):  # a Residual: its inner layers
        return f"{type(layer).__name__}({', '.join(map(_short, layer.layers))})"
    args = [repr(getattr(layer, f.name)) for f in fields(layer)]
    return f"{type(layer).__name__}({', '.join(args)})"


__all__ = ["network"]
