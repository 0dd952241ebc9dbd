"""The routes that verify and explain a tensor network find each layer's step in a table
keyed by layer type: every type a network takes has an entry in each, a subclass of a known
layer is that layer, and a type with no entry is one error naming it and the types known."""

from dataclasses import dataclass

import numpy as np
import pytest

from derive import tensor_network as tn
from derive.layers import Dense
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D
from numeric.tensor_strategies import sample_batch
from numeric.verification import tensor_closed_form, tensor_route
from numeric.verification.tensor_closed_form import closed_form_loss_and_grads
from numeric.verification.tensor_route import jax_loss_and_grads
from reports import tensor_steps
from reports.tensor_steps import reverse_sweep

TABLES = {
    "closed form forward": tensor_closed_form._FORWARD,
    "closed form backward": tensor_closed_form._BACKWARD,
    "JAX route": tensor_route._LAYERS,
    "steps": tensor_steps._LAYERS,
}


@pytest.mark.parametrize("table", TABLES.values(), ids=TABLES.keys())
def test_every_layer_type_a_network_takes_has_an_entry(table):
    for cls in tn.LAYER_RULES:
        assert any(base in table for base in cls.__mro__), cls.__name__


@dataclass(frozen=True)
class Scale:
    """A layer type a network takes (its shape and parameters registered) that no route knows."""


@pytest.fixture
def scaled_net(monkeypatch):
    rule = tn.LayerRule(lambda layer, shape: shape, lambda layer, k, shape: {}, lambda stage: {})
    monkeypatch.setitem(tn.LAYER_RULES, Scale, rule)
    return tn.tensor_network((4, 4, 1), [Scale(), Flatten(), Dense(2, "softmax")], "cce")


def test_a_layer_type_no_route_knows_is_one_error_naming_it_and_the_known_ones(scaled_net):
    params, X, Y, _ = sample_batch(scaled_net, 2, seed=0)
    known = "Conv2D, Dense, Dropout, Flatten, MaxPool2D, MeanOverTime, SelfAttention"
    with pytest.raises(NotImplementedError, match=rf"closed-form .* Scale\(\); known: {known}$"):
        closed_form_loss_and_grads(scaled_net, params, X, Y)
    known = "AvgPool2D, " + known
    # (raised while jax.jit traces the cost: JAX adds a note on its traceback below the line)
    with pytest.raises(TypeError, match=rf"no JAX route for layer Scale\(\); known: {known}\b"):
        jax_loss_and_grads(scaled_net, params, X, Y)
    with pytest.raises(ValueError, match=rf"no backward rule .* Scale\(\); known: {known}$"):
        reverse_sweep(scaled_net)


@dataclass(frozen=True)
class WidePool(MaxPool2D):
    """A subclass of a known layer: every route takes it as that layer."""


def test_a_subclass_of_a_known_layer_is_that_layer_on_every_route():
    layers = [Conv2D(2, 3, "tanh"), WidePool(2), Flatten(), Dense(2, "softmax")]
    net = tn.tensor_network((6, 6, 1), layers, "cce")
    plain = tn.tensor_network((6, 6, 1), [*layers[:1], MaxPool2D(2), *layers[2:]], "cce")
    batch = sample_batch(net, 2, seed=1)
    for route in (closed_form_loss_and_grads, jax_loss_and_grads):
        J, grads = route(net, *batch)
        want_J, want = route(plain, *batch)
        assert J == want_J
        for name in want:
            np.testing.assert_array_equal(grads[name], want[name])
    assert str(reverse_sweep(net)).replace("WidePool", "MaxPool2D") == str(reverse_sweep(plain))


def test_an_average_pool_is_not_taken_for_the_max_pool_it_subclasses():
    """AvgPool2D subclasses MaxPool2D: each table finds the average's own entry (or, in the
    closed form, the pool entry whose weights R are the average's), not the max."""
    assert issubclass(AvgPool2D, MaxPool2D)
    layers = [Conv2D(2, 3, "tanh"), AvgPool2D(2), Flatten(), Dense(2, "softmax")]
    net = tn.tensor_network((6, 6, 1), layers, "cce")
    batch = sample_batch(net, 2, seed=2)
    J, grads = closed_form_loss_and_grads(net, *batch)
    want_J, want = jax_loss_and_grads(net, *batch)
    assert J == pytest.approx(want_J, rel=1e-12)
    for name in want:
        np.testing.assert_allclose(grads[name], want[name], rtol=1e-9, atol=1e-12)
    assert "dZ / s²" in str(reverse_sweep(net)[2].steps[0].words)
