"""Tensor layers refuse what they cannot take, with one message naming the bad value."""

import numpy as np
import pytest

import derive
from derive.errors import BackpropInputError
from derive.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    LayerNorm,
    MaxPool2D,
    MeanOverTime,
    SelfAttention,
)
from numeric.generator.tensor_kernel import tensor_kernel
from numeric.verification.tensor_route import jax_loss_and_grads


@pytest.mark.parametrize(
    "shape, layers, message",
    [
        ((5, 5, 1), [Conv2D(2, 7), Flatten(), Dense(2)], r"7×7 kernel is larger than its 5×5"),
        ((5, 5, 1), [Flatten(), Conv2D(2, 3), Flatten(), Dense(2)], r"needs an image .* \(25,\)"),
        ((6, 6, 1), [MaxPool2D(7), Flatten(), Dense(2)], r"7×7 window does not fit in a 6×6"),
        ((8,), [SelfAttention(4), MeanOverTime(), Dense(2)], r"SelfAttention.*sequence \(T, d\)"),
        ((4, 4, 1), [Conv2D(2, 2), Dense(2)], r"Dense.*flat input.*Flatten"),
        ((4, 4, 1), [Conv2D(2, 2), Flatten()], r"last layer must be a Dense"),
        ((4, 4, 1), [Conv2D(2, 2), Flatten(), LayerNorm(), Dense(2)], r"LayerNorm.*not available"),
        ((4, 0, 1), [Flatten(), Dense(2)], r"input shape .* \(4, 0, 1\)"),
    ],
)
def test_bad_networks_are_refused_by_name(shape, layers, message):
    with pytest.raises(BackpropInputError, match=message):
        derive.network(shape, layers, "mse")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Conv2D(0, 3), r"filters must be a positive integer, got 0"),
        (lambda: Conv2D(2, 3, padding="full"), r"'valid' or 'same', got 'full'"),
        (lambda: Conv2D(2, 3, stride=0), r"stride must be a positive integer, got 0"),
        (lambda: Conv2D(2, 3, "swoosh"), r"unknown activation 'swoosh'"),
        (lambda: Conv2D(2, 3, "softmax"), r"entry by entry, got 'softmax'"),
        (lambda: MaxPool2D(1.5), r"size must be a positive integer, got 1.5"),
        (lambda: SelfAttention(-1), r"d_k must be a positive integer, got -1"),
    ],
)
def test_bad_layer_arguments_are_refused_by_name(make, message):
    with pytest.raises(BackpropInputError, match=message):
        make()


def test_weight_decay_on_tensor_inputs_is_refused_not_ignored():
    with pytest.raises(BackpropInputError, match="weight_decay=0.1"):
        derive.network((4, 4, 1), [Flatten(), Dense(2)], "mse", weight_decay=0.1)


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
def test_a_pool_that_does_not_divide_the_map_floors_like_keras(pool):
    """Keras's pooling (padding 'valid') drops the last row and column of an odd map: an
    11×11 map pools to 5×5, and the dropped entries get no gradient (JAX's VALID agrees)."""
    net = derive.network((11, 11, 1), [pool(2), Flatten(), Dense(2)], "mse")
    assert net.stages[0].outputs == (5, 5, 1)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=s) for k, s in net.param_shapes().items()}
    X, Y = rng.normal(size=(2, 11, 11, 1)), rng.normal(size=(2, 2))
    value, grads = tensor_kernel(net).loss_and_grads(params, X, Y)
    want_value, want_grads = jax_loss_and_grads(net, params, X, Y)
    assert value == pytest.approx(want_value, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(grads[name], want_grads[name], rtol=1e-10, atol=1e-12)
