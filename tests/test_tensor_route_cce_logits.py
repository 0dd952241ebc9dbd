"""The tensor networks' JAX route computes ``cce_logits`` stably: at logits of size 1e4
(``exp(1e4)`` overflows float64) its cost and gradients are finite and right, against a
float64 oracle written here with each row's maximum subtracted and central differences of it."""

import numpy as np
import pytest

import derive
from derive.layers import Dense, Flatten
from numeric.verification import tensor_route
from numeric.verification.tensor_route import jax_loss_and_grads

from .test_tensor_route_stability import SHAPE, _assert_finite_and_close, _central
from .test_tensor_route_stability import _cce_batch as _batch

#: the logits' bias: close together at a huge offset (a naive exp overflows, yet the softmax
#: is far from one-hot, so the gradients say something), and far apart (saturated rows)
BIASES = {
    "near 0": [0.0, 0.5, -1.0],
    "near +1e4": [1e4, 1e4 + 0.5, 1e4 - 1.0],
    "near -1e4": [-1e4, -1e4 + 0.5, -1e4 - 1.0],
    "1e4 apart": [1e4, 0.0, -1e4],
}


@pytest.fixture(scope="module")
def net():
    return derive.network(SHAPE, [Flatten(), Dense(3, "linear")], "cce_logits")


def _oracle_cost(params, X, Y):
    """Mean softmax cross-entropy of the logits, float64, each row shifted by its maximum:
    ``log sum exp(z) - z_y = log sum exp(z - max z) - (z_y - max z)``."""
    Z = X.reshape(len(X), -1) @ params["W2"] + params["b2"]
    shifted = Z - Z.max(axis=1, keepdims=True)
    losses = np.log(np.exp(shifted).sum(axis=1)) - (Y * shifted).sum(axis=1)
    return losses.mean()


def _oracle_grads(params, X, Y):
    """Central differences of :func:`_oracle_cost`, entry by entry."""
    return _central(lambda p: _oracle_cost(p, X, Y), params, 1e-4)


@pytest.mark.parametrize("bias", BIASES.values(), ids=BIASES.keys())
def test_cce_logits_cost_and_gradients_are_finite_and_right_at_huge_logits(net, bias):
    params, X, Y = _batch(bias)
    J, grads = jax_loss_and_grads(net, params, X, Y)
    assert np.isfinite(J)
    assert J == pytest.approx(_oracle_cost(params, X, Y), rel=1e-12, abs=1e-9)
    _assert_finite_and_close(grads, _oracle_grads(params, X, Y), rtol=1e-6, atol=1e-7)


def test_cce_logits_in_float32_stays_finite_at_huge_logits(net):
    params, X, Y = _batch(BIASES["near +1e4"])
    J, grads = jax_loss_and_grads(net, params, X, Y, dtype="float32")
    # float32 rounds logits of 1e4 to steps of 1e-3: the shifted logits are that close
    assert J == pytest.approx(_oracle_cost(params, X, Y), rel=1e-2)
    want = _oracle_grads(params, X, Y)
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, want[name], atol=1e-2, err_msg=name)


def test_the_loss_printed_without_stabilize_overflows_on_the_same_logits(net, monkeypatch):
    """The data above catches the naive form: the registry's definition printed as it stands
    (``log(sum(exp(Z)))``) gives no finite cost at logits near 1e4."""
    params, X, Y = _batch(BIASES["near +1e4"])
    monkeypatch.setattr(tensor_route, "stabilize", lambda expr, definitions=None: expr)
    tensor_route._printed.cache_clear()
    try:
        J, grads = jax_loss_and_grads(net, params, X, Y)
    finally:
        tensor_route._printed.cache_clear()  # no naive function left in the cache
    assert not np.isfinite(J)
    assert not all(np.all(np.isfinite(g)) for g in grads.values())


@pytest.mark.parametrize("networks", ["image_networks", "sequence_networks"])
def test_the_strategies_draw_cce_logits_heads(networks):
    """The four-route tests on drawn networks meet a linear output with cce_logits too."""
    from hypothesis import find, settings

    from numeric import tensor_strategies

    strategy = getattr(tensor_strategies, networks)()
    net = find(strategy, lambda n: n.loss == "cce_logits", settings=settings(database=None))
    assert net.output == "linear"
