"""A network on images or sequences: ``network((28, 28, 1), [Conv2D(...), ...], "cce")``.

Each layer's output shape follows from its input's (:mod:`derive.tensor_layers`, and Dense /
Dropout from :mod:`derive.layers` once the input is flat); parameters are named by the layer's
position (``W1, b1`` a conv's kernel and bias, ``Wq3, Wk3, Wv3`` attention's, ``M5`` a
dropout's mask). The backward rule of every layer is one of :mod:`derive.tensor_ops`'s, derived
once by SymPy; :meth:`TensorNetwork.rules` lists the ones this network uses. What a layer type
contributes (shape, parameters, derivations) is one entry of :data:`LAYER_RULES`.

>>> from derive.layers import Dense
>>> from derive.tensor_layers import Conv2D, Flatten, MaxPool2D
>>> net = tensor_network((6, 6, 1), [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(),
...                                  Dense(3, "softmax")], "cce")
>>> net.param_shapes()
{'W1': (3, 3, 1, 2), 'b1': (2,), 'W4': (8, 3), 'b4': (3,)}
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

from . import registry, tensor_ops
from .errors import BackpropInputError, IncompatibleError
from .layers import LAYERS, Dense, Dropout, layer_list
from .tensor_layers import (
    AvgPool2D,
    Conv2D,
    Flatten,
    MaxPool2D,
    MeanOverTime,
    SelfAttention,
)


@dataclass(frozen=True)
class Stage:
    """One layer in place: its position ``k``, the shapes of one example in and out."""

    k: int
    layer: object
    inputs: tuple
    outputs: tuple
    params: dict = field(default_factory=dict)


@dataclass(eq=False)
class TensorNetwork:
    """A list of stages ending in a loss (the mean over the batch)."""

    input_shape: tuple
    stages: list
    loss: str
    source: str
    kind = "tensor_network"
    level = "tensor"

    def param_shapes(self) -> dict:
        return {name: shape for stage in self.stages for name, shape in stage.params.items()}

    @property
    def masks(self) -> dict:
        """Each dropout layer's mask name -> its keep probability."""
        return {
            f"M{st.k}": 1 - st.layer.rate for st in self.stages if isinstance(st.layer, Dropout)
        }

    @property
    def output(self) -> str:
        last = self.stages[-1].layer
        return last.activation if isinstance(last, Dense) else "linear"

    @property
    def n_outputs(self) -> int:
        return self.stages[-1].outputs[0]

    def data_shapes(self, m=None) -> dict:
        from .ops import m as batch

        m = batch if m is None else m
        return {"X": (m, *self.input_shape), "Y": (m, self.n_outputs)}

    def rules(self) -> dict:
        """The derivations this network's backward pass uses, by layer type."""
        found = {}
        for stage in self.stages:
            found.update(layer_rule(stage.layer).rules(stage))
        return found


@dataclass(frozen=True)
class LayerRule:
    """What a tensor network needs of one layer type, kept in one place (as JAX keeps a
    primitive's rules): its output shape, its parameters and the :mod:`derive.tensor_ops`
    derivations its backward pass uses. A tensor layer's shape and parameters are its own
    methods (:mod:`derive.tensor_layers`); Dense's and Dropout's (layers of the dense path too)
    are written here."""

    shape: Callable  # (layer, input shape) -> output shape; refuses an input it cannot take
    params: Callable  # (layer, k, input shape) -> {name: shape}
    rules: Callable  # (stage) -> {name: tensor_ops.Rule}


def _flat_only(layer, shape: tuple) -> tuple:
    if len(shape) != 1:
        raise IncompatibleError(
            f"{layer!r} needs a flat input, got shape {shape}: put a Flatten (images) or "
            "MeanOverTime (sequences) before it"
        )
    return (layer.units,)


def _pool_rules(stage) -> dict:
    average = isinstance(stage.layer, AvgPool2D)
    rule = tensor_ops.average_pooling() if average else tensor_ops.max_pooling()
    return {type(stage.layer).__name__: rule}


LAYER_RULES: dict[type, LayerRule] = {
    Conv2D: LayerRule(Conv2D.shape, Conv2D.params,
                      lambda stage: {"Conv2D": tensor_ops.convolution()}),
    MaxPool2D: LayerRule(MaxPool2D.shape, MaxPool2D.params, _pool_rules),
    AvgPool2D: LayerRule(AvgPool2D.shape, AvgPool2D.params, _pool_rules),
    Flatten: LayerRule(Flatten.shape, Flatten.params,
                       lambda stage: {"Flatten": tensor_ops.flatten()}),
    SelfAttention: LayerRule(SelfAttention.shape, SelfAttention.params, lambda stage: {
        f"SelfAttention {kind}": tensor_ops.product(kind) for kind in ("weights", "scores", "mix")
    }),
    MeanOverTime: LayerRule(MeanOverTime.shape, MeanOverTime.params,
                            lambda stage: {"MeanOverTime": tensor_ops.mean_over_time()}),
    Dense: LayerRule(
        _flat_only,
        lambda layer, k, shape: {f"W{k}": (shape[0], layer.units), f"b{k}": (layer.units,)},
        lambda stage: {"Dense": tensor_ops.product("dense")},
    ),
    Dropout: LayerRule(lambda layer, shape: shape, lambda layer, k, shape: {},
                       lambda stage: {"Dropout": tensor_ops.dropout(len(stage.inputs) + 1)}),
}  # fmt: skip


def _find_rule(layer) -> LayerRule | None:
    for cls in type(layer).__mro__:  # a subclass of a known layer is that layer
        if cls in LAYER_RULES:
            return LAYER_RULES[cls]
    return None


def layer_rule(layer) -> LayerRule:
    """The :class:`LayerRule` of ``layer``'s type.

    >>> layer_rule(MaxPool2D(2)).shape(MaxPool2D(2), (5, 4, 3))
    (2, 2, 3)
    """
    rule = _find_rule(layer)
    if rule is None:
        raise BackpropInputError(f"no tensor-network rule for layer {layer!r}")
    return rule


def tensor_network(input_shape, layers, loss: str) -> TensorNetwork:
    """A network on inputs of ``input_shape`` per example: ``(H, W, C)`` images, ``(T, d)``
    sequences or ``(n,)`` vectors. Dense layers need a flat input (a Flatten or MeanOverTime
    before them); the last layer is a Dense, whose activation meets the loss."""
    shape = _shape(input_shape)
    layers = _layers(layers)
    loss_ = registry.loss(loss)
    if loss_.targets == "labels":
        raise IncompatibleError(
            f"{loss!r} takes integer labels; a tensor network takes one-hot targets: use "
            "'cce' (or 'cce_logits')"
        )
    stages = []
    for k, layer in enumerate(layers, start=1):
        rule = layer_rule(layer)
        out = rule.shape(layer, shape)
        stages.append(Stage(k, layer, shape, out, rule.params(layer, k, shape)))
        shape = out
    _check_head(layers, loss_, shape)
    return TensorNetwork(stages[0].inputs, stages, loss_.name, _describe(input_shape, layers, loss))


def _shape(input_shape) -> tuple:
    ok = isinstance(input_shape, tuple) and 1 <= len(input_shape) <= 3
    ok = ok and all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in input_shape
    )
    if not ok:
        raise BackpropInputError(
            "the input shape must be a tuple of 1 to 3 positive integers ((H, W, C) for "
            f"images, (T, d) for sequences), got {input_shape!r}"
        )
    return tuple(int(s) for s in input_shape)


def _layers(layers) -> list:
    layers = layer_list(layers)
    for layer in layers:
        if _find_rule(layer) is None:
            known = ", ".join(c.__name__ for c in LAYER_RULES)
            what = "is not available on tensor inputs" if isinstance(layer, LAYERS) else "unknown"
            raise BackpropInputError(f"layer {layer!r} {what}; known here: {known}")
    return layers


def _check_head(layers, loss_, shape) -> None:
    last = layers[-1]
    if not isinstance(last, Dense):
        raise IncompatibleError(f"the last layer must be a Dense (the output), got {last!r}")
    for layer in layers[:-1]:
        name = getattr(layer, "activation", "linear")
        if registry.activation(name).output_only:
            raise IncompatibleError(
                f"{name} is only available as the output activation (the last layer's)"
            )
    registry.check_head(registry.activation(last.activation), loss_, shape[0])


def _describe(input_shape, layers, loss) -> str:
    return f"network({tuple(input_shape)!r}, [{', '.join(map(repr, layers))}], {loss!r})"


__all__ = ["LAYER_RULES", "LayerRule", "Stage", "TensorNetwork", "layer_rule", "tensor_network"]
