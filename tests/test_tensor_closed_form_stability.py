"""The closed-form route where the heads' definitions, evaluated as written, are not finite:
logits 1e3 apart make a softmax underflow to 0 (``cce``'s ``log 0``, ``0 · log 0``) and
overflow its ``exp`` (``inf / inf``), a sigmoid saturate to 1 (``bce``'s ``log(1 - 1)``), and
``log Σ exp`` / ``log(1 + exp)`` of the logit losses overflow. Each head against JAX's own
``log_softmax`` / ``log_sigmoid`` cost and ``jax.grad``, written here, and through ``verify``
(which reported a correct kernel as mismatched)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import numeric
from derive.layers import Dense
from derive.tensor_layers import Conv2D, Flatten
from derive.tensor_network import tensor_network
from numeric.tensor_strategies import sample_batch
from numeric.verification.tensor_closed_form import closed_form_loss_and_grads

#: output activation, loss, units
HEADS = {
    "softmax+cce": ("softmax", "cce", 3),
    "linear+cce_logits": ("linear", "cce_logits", 3),
    "sigmoid+bce": ("sigmoid", "bce", 3),
    "linear+bce_logits": ("linear", "bce_logits", 3),
}

#: the output layer's bias: close together, 1e3 apart, 1e3 apart at an offset of 1e4
BIASES = {
    "near 0": [0.0, 0.5, -1.0],
    "1e3 apart": [1e3, 0.0, -1e3],
    "1e3 apart near 1e4": [1e4, 1e4 - 1e3, 1e4 + 1e3],
}


def _net(output, loss, units):
    return tensor_network((4, 4, 1), [Conv2D(2, 3, "tanh"), Flatten(), Dense(units, output)], loss)


def _batch(net, bias, seed=0):
    """Targets that pick the classes the softmax underflows on, and 0/1 targets on saturated
    sigmoids (both sides)."""
    params, X, _, _ = sample_batch(net, 5, seed=seed)
    params["b3"] = np.array(bias)
    if net.loss.startswith("cce"):
        Y = np.eye(3)[[0, 1, 2, 1, 2]]
    else:
        Y = np.random.default_rng(seed).integers(0, 2, (5, 3)).astype(float)
    return params, X, Y


def _jax_cost(loss):
    """The network's mean cost in JAX, written from the layers' definitions, the head with
    JAX's own stable functions: ``-Σ y log_softmax(Z)``, ``-mean(y log σ(Z) + (1-y) log σ(-Z))``
    (a sigmoid's ``bce`` and ``bce_logits`` are the same function of the logits)."""

    def cost(params, X, Y):
        Z1 = lax.conv_general_dilated(X, params["W1"], (1, 1), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
        A1 = jnp.tanh(Z1 + params["b1"]).reshape(len(X), -1)
        Z = A1 @ params["W3"] + params["b3"]
        if loss.startswith("cce"):
            losses = -jnp.sum(Y * jax.nn.log_softmax(Z, axis=-1), axis=-1)
        else:
            logs = Y * jax.nn.log_sigmoid(Z) + (1 - Y) * jax.nn.log_sigmoid(-Z)
            losses = -jnp.mean(logs, axis=-1)
        return jnp.mean(losses)

    return cost


def _jax_loss_and_grads(loss, params, X, Y):
    with jax.enable_x64(True):
        value, grads = jax.value_and_grad(_jax_cost(loss))(params, X, Y)
        return float(value), {k: np.asarray(v) for k, v in grads.items()}


@pytest.mark.parametrize("bias", BIASES.values(), ids=BIASES.keys())
@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_closed_form_head_is_finite_and_jaxs_at_logits_1e3_apart(head, bias):
    net = _net(*head)
    params, X, Y = _batch(net, bias)
    # no overflow, no 0 * inf, no log 0, even in between (an exp may underflow to its 0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        J, grads = closed_form_loss_and_grads(net, params, X, Y)
    want_J, want = _jax_loss_and_grads(net.loss, params, X, Y)
    assert J == pytest.approx(want_J, rel=1e-12)
    for name, grad in want.items():
        assert np.all(np.isfinite(grads[name])), name
        np.testing.assert_allclose(grads[name], grad, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_verify_passes_a_correct_kernel_at_logits_1e3_apart(head):
    """The false alarm: the closed form's NaN made verify report the kernel as mismatched."""
    net = _net(*head)
    params, X, Y = _batch(net, BIASES["1e3 apart"], seed=1)
    result = numeric.verify(net, params=params, data=(X, Y))
    assert result.ok, result.report()
    assert all(np.isfinite(cost) for cost in result.costs.values())
