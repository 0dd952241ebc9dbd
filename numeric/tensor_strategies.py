"""Hypothesis strategies for tensor networks: small random stacks of Conv2D / pooling /
Flatten / Dropout / Dense on images, and SelfAttention / MeanOverTime on sequences, with
parameters, data and dropout masks for them.

Example:
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=3)
    ... @given(image_networks())
    ... def test_ends_in_dense(net):
    ...     assert type(net.stages[-1].layer).__name__ == "Dense"
    >>> test_ends_in_dense()
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from derive import registry
from derive.errors import IncompatibleError
from derive.layers import Dense, Dropout
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention
from derive.tensor_network import tensor_network

#: output activation and loss: probabilities, logits (the loss applies its own softmax), reals
HEADS = (("softmax", "cce"), ("linear", "cce_logits"), ("linear", "mse"))


@st.composite
def image_networks(draw, max_convs: int = 2):
    """A network on a small image: 1 to ``max_convs`` convolutions (each maybe pooled), then
    Flatten, maybe Dropout, and a Dense output with a loss that fits it."""
    shape = (draw(st.integers(4, 9)), draw(st.integers(4, 9)), draw(st.integers(1, 2)))
    layers, current = [], shape
    for _ in range(draw(st.integers(1, max_convs))):
        size = draw(st.integers(1, min(3, current[0], current[1])))
        conv = Conv2D(
            draw(st.integers(1, 3)), size, draw(st.sampled_from(("relu", "tanh", "linear"))),
            stride=draw(st.integers(1, 2)), padding=draw(st.sampled_from(("valid", "same"))),
        )  # fmt: skip
        layers.append(conv)
        current = conv.shape(current)
        if min(current[:2]) >= 2 and draw(st.booleans()):
            pool = draw(st.sampled_from((MaxPool2D, AvgPool2D)))(2)
            layers.append(pool)
            current = pool.shape(current)
    layers.append(Flatten())
    if draw(st.booleans()):
        layers.append(Dropout(draw(st.sampled_from((0.25, 0.5)))))
    output, loss = draw(st.sampled_from(HEADS))
    layers.append(Dense(draw(st.integers(2, 3)), output))
    try:
        return tensor_network(shape, layers, loss)
    except IncompatibleError as err:  # pragma: no cover - the draws above always fit
        raise AssertionError(f"drew a network that does not fit: {err}") from err


@st.composite
def sequence_networks(draw):
    """One or two SelfAttention layers on a short sequence, MeanOverTime, a Dense output."""
    shape = (draw(st.integers(2, 5)), draw(st.integers(2, 4)))
    layers = [SelfAttention(draw(st.integers(1, 4))) for _ in range(draw(st.integers(1, 2)))]
    output, loss = draw(st.sampled_from(HEADS))
    return tensor_network(shape, [*layers, MeanOverTime(), Dense(2, output)], loss)


@st.composite
def batches_for(draw, net, m: int | None = None, scale: float = 0.5):
    """``(params, X, Y, masks)`` for ``net`` (see :func:`sample_batch`), from a drawn seed."""
    m = m or draw(st.integers(1, 3))
    return sample_batch(net, m, draw(st.integers(0, 2**32 - 1)), scale)


def sample_batch(net, m: int, seed: int, scale: float = 0.5):
    """``(params, X, Y, masks)``: normal draws, one-hot targets for a loss that takes them (reals
    otherwise), 0/1 keep masks shaped like each dropout layer's input (None without dropout)."""
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) * scale for k, s in net.param_shapes().items()}
    X = rng.normal(size=(m, *net.input_shape))
    n_out = net.n_outputs
    Y = (
        np.eye(n_out)[rng.integers(0, n_out, m)]
        if registry.loss(net.loss).targets == "one_hot"  # cce, cce_logits
        else rng.normal(size=(m, n_out))
    )
    masks = {
        f"M{stage.k}": (rng.random((m, *stage.inputs)) < net.masks[f"M{stage.k}"]).astype(float)
        for stage in net.stages
        if f"M{stage.k}" in net.masks
    }
    return params, X, Y, masks or None


__all__ = ["batches_for", "image_networks", "sample_batch", "sequence_networks"]
