"""An MLP with its own activation per hidden layer (``activation=["relu", "tanh"]``, or
``--activation relu,tanh`` on the command line), against JAX autodiff of the same network
written here in jax.numpy."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derive
from derive.ops import RowActivationOp
from numeric import codegen, verify
from reports.cli.main import main
from reports.sections.context import counterpart

jax.config.update("jax_enable_x64", True)


def _layer_activations(model) -> list[str]:
    return [node.op.name for node in model.nodes if isinstance(node.op, RowActivationOp)]


@pytest.mark.parametrize("activation", [["relu", "tanh"], "relu,tanh", ("relu", " tanh")])
def test_each_hidden_layer_takes_its_own_activation(activation):
    model = derive.mlp([3, 4, 3, 2], activation=activation)
    assert _layer_activations(model) == ["relu", "tanh", "softmax"]
    assert model.activation == "relu,tanh"


def test_one_name_still_means_every_hidden_layer():
    model = derive.mlp([3, 4, 3, 2], activation="tanh")
    assert _layer_activations(model) == ["tanh", "tanh", "softmax"]
    assert model.activation == "tanh"


def test_per_layer_gradients_match_jax():
    model = derive.mlp([3, 4, 3, 1], activation=["tanh", "sigmoid"], output="linear", loss="mse")
    kernel = codegen(model.derive())
    params = kernel.random_params(seed=4)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))

    def cost(p):
        A1 = jnp.tanh(X @ p["W1"] + p["b1"])
        A2 = jax.nn.sigmoid(A1 @ p["W2"] + p["b2"])
        return jnp.mean((A2 @ p["W3"] + p["b3"] - Y) ** 2)

    J, grads = kernel.loss_and_grads(params, X, Y)
    truth = jax.grad(cost)(params)
    assert J == pytest.approx(float(cost(params)), rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], truth[name], rtol=1e-10, atol=1e-13)


def test_a_swapped_activation_would_be_caught():
    """The oracle above can fail: the layers in the other order give other gradients."""
    swapped = derive.mlp([3, 4, 3, 1], activation=["sigmoid", "tanh"], output="linear", loss="mse")
    ordered = derive.mlp([3, 4, 3, 1], activation=["tanh", "sigmoid"], output="linear", loss="mse")
    a, b = (codegen(m.derive()) for m in (swapped, ordered))
    params = a.random_params(seed=4)
    X, Y = np.ones((2, 3)), np.zeros((2, 1))
    assert not np.allclose(
        a.loss_and_grads(params, X, Y)[1]["W1"], b.loss_and_grads(params, X, Y)[1]["W1"]
    )


def test_the_scalar_counterpart_keeps_each_layer_and_passes_the_check():
    model = derive.mlp([2, 3, 2, 1], activation="relu,tanh")
    scalar = counterpart(model, "scalar")
    assert scalar.activation == "relu,tanh"
    assert verify(model, batch=4).ok and verify(scalar, batch=4).ok


def test_cli_derive_shows_each_layer_activation(capsys):
    assert main(["derive", "mlp:3-4-3-2", "--activation", "relu,tanh"]) == 0
    out = capsys.readouterr().out
    assert "A1 = Piecewise((Z1, Z1 > 0), (0, True))" in out
    assert "A2 = tanh(Z2)" in out
    assert "dZ2 = dA2*(1 - A2**2)" in out


@pytest.mark.parametrize(
    "activation,pattern",
    [
        ("relu,tanh,relu", "3 activations .* for 2 hidden layers"),
        ("relu,,tanh", "unknown activation ''"),
        ("relu,softmax", "only available as the output"),
        ("relu,rleu", "unknown activation 'rleu'"),
    ],
)
def test_cli_bad_activation_lists_are_one_line(capsys, activation, pattern):
    assert main(["derive", "mlp:3-4-3-2", "--activation", activation]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(pattern, err)


def test_api_count_mismatch_names_the_counts():
    with pytest.raises(derive.SpecError, match="2 activations .* for 1 hidden layer"):
        derive.mlp([3, 4, 2], activation=["relu", "tanh"])
    with pytest.raises(TypeError, match="a name or a list of names"):
        derive.mlp([3, 4, 2], activation=3)
