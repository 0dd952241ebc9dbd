"""derive.network: layers as a graph, their backward steps derived and in textbook form.

Oracles: SymPy's ``diff`` of layer normalization written out at a concrete width; the chain
rule's own structure (the branches at a fork); JAX autodiff of a forward pass written here in
``jax.numpy`` (never generated from the Model) and finite differences, for the kernels.
"""

import random

import numpy as np
import pytest
import sympy as sp

import derive
from derive.layer_ops import layer_norm_vjp, sigma
from derive.layers import Dense, Dropout, LayerNorm, Residual
from derive.ops import as_elementwise
from derive.registry import a, j, n
from derive.rules import da, l


def small_net(weight_decay=0.0):
    return derive.network(
        3,
        [
            Dense(4, "tanh"),
            Residual(Dense(5, "relu"), Dense(4)),
            LayerNorm(),
            Dropout(0.25),
            Dense(2, "softmax"),
        ],
        "cce",
        weight_decay=weight_decay,
    )


def test_params_are_named_by_layer_position_in_layer_order():
    model = derive.network(
        4,
        [
            Dense(8, "relu"),
            LayerNorm(),
            Residual(Dense(8, "tanh"), Residual(LayerNorm(), Dense(8))),
            Dropout(0.1),
            Dense(3, "softmax"),
        ],
        "cce",
    )
    assert list(model.param_shapes()) == [
        "W1", "b1", "gamma2", "beta2", "W3", "b3", "gamma4", "beta4", "W5", "b5", "W7", "b7",
    ]  # fmt: skip
    shapes = model.param_shapes()
    assert shapes["W1"] == (4, 8) and shapes["b1"] == (8,) and shapes["gamma2"] == (8,)
    assert shapes["W7"] == (8, 3)
    assert model.data_shapes(5) == {"X": (5, 4), "Y": (5, 3)}


def test_layers_are_their_arguments():
    assert Dense(8, "relu").units == 8 and Dense(8, "relu").activation == "relu"
    assert Dense(3).activation == "linear"
    inner = (Dense(4), LayerNorm())
    assert Residual(*inner).layers == inner
    assert LayerNorm().eps == 1e-5 and Dropout(0.3).rate == 0.3
    with pytest.raises(AttributeError):
        Dense(3).units = 4  # frozen


def test_residual_fork_sums_its_two_branches():
    derivation = small_net().derive()
    step = derivation.step("A1")  # read by the residual sum R1 and by the inner Z2
    assert step.is_fork
    assert {b.child.name for b in step.branches} == {"R1", "Z2"}
    node = derivation.model.node
    dR1, dZ2 = (sp.MatrixSymbol("d" + name, *node(name).shape) for name in ("R1", "Z2"))
    W2 = node("W2").matrix
    assert sp.MatAdd(step.value, -dR1, -dZ2 * W2.T).doit() == sp.ZeroMatrix(*dR1.shape)


def test_layer_norm_backward_is_the_textbook_closed_form():
    # (1/n)(n dx̂ - Σ dx̂ - x̂ Σ dx̂ x̂)/σ, as the derivation wrote it: a function of the
    # normalized row and σ alone (no mean, no input)
    textbook = n * da[l] - sp.Sum(da[j], (j, 0, n - 1)) - a[l] * sp.Sum(a[j] * da[j], (j, 0, n - 1))
    assert sp.simplify(layer_norm_vjp() - textbook / (n * sigma)) == 0


@pytest.mark.parametrize("width", [2, 3, 5])
def test_layer_norm_backward_matches_sympy_diff_of_the_written_out_definition(width):
    zs = sp.symbols(f"z0:{width}", real=True)
    ds = sp.symbols(f"d0:{width}", real=True)
    eps = sp.Rational(1, 10)
    mean = sum(zs) / width
    sd = sp.sqrt(sum((zk - mean) ** 2 for zk in zs) / width + eps)
    xhat = [(zk - mean) / sd for zk in zs]
    rng = random.Random(width)
    point = {s: sp.Rational(rng.randint(-30, 30), 10) for s in (*zs, *ds)}
    sd_value = sd.subs(point)
    xhat_values = [x.subs(point) for x in xhat]
    for position in range(width):
        oracle = sum(d * sp.diff(x, zs[position]) for d, x in zip(ds, xhat, strict=True))
        rule = layer_norm_vjp().xreplace({n: width, l: position, sigma: sd_value}).doit()
        rule = rule.replace(
            lambda e: isinstance(e, sp.Indexed),
            lambda e: (xhat_values if e.base == a else [point[d] for d in ds])[int(e.indices[0])],
        )
        assert abs(float(rule) - float(oracle.subs(point))) < 1e-12


def test_dropout_backward_multiplies_by_mask_over_keep():
    derivation = small_net().derive()
    step = derivation.step("A4")  # the layer norm's output, read by Dropout(0.25), layer 5
    M5, dA5 = sp.Symbol("M5", real=True), sp.Symbol("dA5", real=True)
    assert sp.simplify(as_elementwise(step.value) - M5 * dA5 / sp.Rational(3, 4)) == 0


def test_weight_decay_adds_lambda_w_to_weights_only():
    plain, decayed = small_net().derive(), small_net(weight_decay=0.01).derive()
    for name in ("W1", "W2", "W3", "W6"):
        W = decayed.model.node(name).matrix
        extra = sp.MatAdd(decayed.gradient(name), -plain.gradient(name)).doit()
        assert extra == sp.Rational(1, 100) * W
    for name in ("b1", "gamma4", "beta4", "b6"):
        assert decayed.gradient(name) == plain.gradient(name)


def test_residual_refuses_a_change_of_width():
    with pytest.raises(derive.BackpropInputError, match="keep the width.*4 features.*give 6"):
        derive.network(3, [Dense(4), Residual(Dense(6))], "mse")


def test_softmax_only_on_the_last_layer():
    with pytest.raises(derive.IncompatibleError, match="softmax is only available"):
        derive.network(3, [Dense(4, "softmax"), Dense(2, "softmax")], "cce")


def test_twenty_mixed_layers_derive_in_time_independent_of_width():
    import time

    def layers(width):
        stack = []
        for _ in range(5):
            stack += [
                Dense(width, "tanh"),
                Residual(Dense(width, "relu")),
                LayerNorm(),
                Dropout(0.1),
            ]
        return stack + [Dense(3, "softmax")]

    derive.network(4, layers(8), "cce").derive()  # rules derived once per process
    start = time.perf_counter()
    derive.network(4, layers(4096), "cce").derive()
    assert time.perf_counter() - start < 1.0


def test_a_network_is_a_matrix_level_model_with_a_spec():
    model = small_net()
    assert model.level == "matrix" and model.kind == "network"
    assert model.spec.startswith("network(3, [Dense(4, 'tanh'), Residual(Dense(5, 'relu')")
    assert model.output == "softmax" and model.loss == "cce"
    assert [node.name for node in model.nodes if node.role == "mask"] == ["M5"]
    assert np.all(model.n_outputs == 2)
