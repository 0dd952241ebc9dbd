"""Kernels of derive.network models against independent routes.

The reference forward pass is written here in ``jax.numpy`` from the layers' textbook
definitions (nothing generated from the Model), differentiated by ``jax.grad``; finite
differences of the kernel's own loss are the second route.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derive
from derive.layers import Dense, Dropout, LayerNorm, Residual
from numeric import check_gradients, codegen

ACT = {
    "linear": lambda z: z,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softmax": lambda z: jax.nn.softmax(z, axis=1),
}


def reference_forward(layers, params, X, masks):
    """The network's output, layer by layer, as a textbook writes it."""
    counter = {"k": 0}

    def run(layer, A):
        if isinstance(layer, Residual):
            out = A
            for inner in layer.layers:
                out = run(inner, out)
            return A + out
        counter["k"] += 1
        k = counter["k"]
        if isinstance(layer, Dense):
            return ACT[layer.activation](A @ params[f"W{k}"] + params[f"b{k}"])
        if isinstance(layer, LayerNorm):
            mean = A.mean(axis=1, keepdims=True)
            var = ((A - mean) ** 2).mean(axis=1, keepdims=True)
            xhat = (A - mean) / jnp.sqrt(var + layer.eps)
            return params[f"gamma{k}"] * xhat + params[f"beta{k}"]
        if isinstance(layer, Dropout):
            if masks is None:
                return A  # evaluation: the identity
            return masks[f"M{k}"] * A / (1 - layer.rate)
        raise AssertionError(layer)

    out = X
    for layer in layers:
        out = run(layer, out)
    return out


def reference_cost(layers, loss, decay, params, X, Y, masks):
    out = reference_forward(layers, params, X, masks)
    if loss == "cce":
        per_example = -jnp.sum(Y * jnp.log(out), axis=1)
    else:  # mse: mean over the outputs
        per_example = jnp.mean((out - Y) ** 2, axis=1)
    penalty = sum(jnp.sum(v**2) for name, v in params.items() if name.startswith("W"))
    return jnp.mean(per_example) + decay / 2 * penalty


LAYERS = [
    Dense(5, "tanh"),
    Residual(Dense(7, "relu"), Dense(5)),
    LayerNorm(),
    Dropout(0.25),
    Residual(LayerNorm(1e-3), Dense(5, "sigmoid")),
    Dense(3, "softmax"),
]


def draw(kernel, layers, m=6, seed=0, n_in=4, n_out=3):
    rng = np.random.default_rng(seed)
    params = {
        k: v + 0.3 * rng.standard_normal(v.shape) for k, v in kernel.random_params(seed).items()
    }
    X = rng.standard_normal((m, n_in))
    Y = np.eye(n_out)[rng.integers(0, n_out, m)]
    masks = {"M5": (rng.random((m, 5)) < 0.75).astype(float)}  # Dropout(0.25) is layer 5
    return params, X, Y, masks


@pytest.mark.parametrize("decay", [0.0, 0.05])
@pytest.mark.parametrize("with_masks", [True, False])
def test_kernel_gradients_match_jax_autodiff_of_a_hand_written_forward(decay, with_masks):
    model = derive.network(4, LAYERS, "cce", weight_decay=decay)
    kernel = codegen(model.derive())
    params, X, Y, masks = draw(kernel, LAYERS)
    masks = masks if with_masks else None
    J, grads = kernel.loss_and_grads(params, X, Y, masks=masks)
    with jax.enable_x64(True):
        ref_J, ref = jax.value_and_grad(
            lambda p: reference_cost(LAYERS, "cce", decay, p, X, Y, masks)
        )({k: jnp.asarray(v) for k, v in params.items()})
    assert J == pytest.approx(float(ref_J), rel=1e-12)
    assert list(grads) == list(model.param_shapes())
    for name, value in grads.items():
        np.testing.assert_allclose(value, np.asarray(ref[name]), rtol=1e-9, atol=1e-12)


def test_kernel_gradients_pass_the_finite_difference_check_and_a_wrong_one_fails():
    model = derive.network(4, LAYERS, "cce", weight_decay=0.01)
    kernel = codegen(model.derive())
    params, X, Y, masks = draw(kernel, LAYERS, seed=3)
    result = check_gradients(
        lambda p: kernel.loss(p, X, Y, masks=masks),
        lambda p: kernel.loss_and_grads(p, X, Y, masks=masks)[1],
        params,
    )
    assert result.ok, result.report()

    def wrong(p):  # as if the dropout step lost its 1/keep: gamma4's gradient is keep times
        grads = kernel.loss_and_grads(p, X, Y, masks=masks)[1]
        return {**grads, "gamma4": grads["gamma4"] * 0.75}

    bad = check_gradients(lambda p: kernel.loss(p, X, Y, masks=masks), wrong, params)
    assert not bad.ok
    assert [f.name for f in bad.params if not f.ok] == ["gamma4"]


def test_without_masks_dropout_is_the_identity_and_with_masks_it_scales_by_keep():
    layers = [Dense(5, "tanh"), Dropout(0.2), Dense(2)]
    kernel = codegen(derive.network(3, layers, "mse").derive())
    rng = np.random.default_rng(1)
    params = kernel.random_params(2)
    X = rng.standard_normal((4, 3))
    A1 = np.tanh(X @ params["W1"] + params["b1"])
    np.testing.assert_allclose(kernel.forward(params, X), A1 @ params["W3"] + params["b3"])
    mask = (rng.random((4, 5)) < 0.8).astype(float)
    expected = (mask * A1 / 0.8) @ params["W3"] + params["b3"]
    np.testing.assert_allclose(kernel.forward(params, X, masks={"M2": mask}), expected)


def test_float32_kernel_stays_float32_and_agrees_with_float64():
    model = derive.network(4, LAYERS, "cce", weight_decay=0.01)
    kernel = codegen(model.derive())
    params, X, Y, masks = draw(kernel, LAYERS, seed=5)
    f32 = {k: v.astype(np.float32) for k, v in params.items()}
    masks32 = {k: v.astype(np.float32) for k, v in masks.items()}
    J32, g32 = kernel.loss_and_grads(f32, X.astype(np.float32), Y, masks=masks32)
    J64, g64 = kernel.loss_and_grads(params, X, Y, masks=masks)
    assert all(g.dtype == np.float32 for g in g32.values())
    assert J32 == pytest.approx(J64, rel=1e-4)
    for name in g64:
        np.testing.assert_allclose(g32[name], g64[name], rtol=2e-3, atol=2e-4)


def test_jax_target_kernel_takes_the_same_masks():
    model = derive.network(4, LAYERS, "cce")
    kernel, jax_kernel = codegen(model.derive()), codegen(model.derive(), target="jax")
    params, X, Y, masks = draw(kernel, LAYERS, seed=7)
    J, grads = kernel.loss_and_grads(params, X, Y, masks=masks)
    with jax.enable_x64(True):
        Jj, gj = jax_kernel.loss_and_grads(params, X, Y, masks=masks)
        Je = jax_kernel.loss(params, X, Y)
    assert Jj == pytest.approx(J, rel=1e-12)
    assert Je == pytest.approx(kernel.loss(params, X, Y), rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(np.asarray(gj[name]), grads[name], rtol=1e-9, atol=1e-12)


def test_a_long_bracketed_operand_is_wrapped_without_becoming_a_tuple():
    from numeric.generator.line_layout import split_line

    terms = " + ".join(f"value_number_{k}" for k in range(12))
    code = f"({terms} - other_value * (200 / m)) / 200"
    lines = split_line("J = ", code, "", "    ")
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines)
    values = {f"value_number_{k}": float(k) for k in range(12)}
    text = "\n".join(line[4:] for line in lines)
    namespace = {**values, "other_value": 3.0, "m": 4}
    exec(compile(text, "<wrapped>", "exec"), namespace)  # our own generated line, not user text
    assert namespace["J"] == pytest.approx((sum(range(12)) - 3.0 * 50) / 200)


def test_verify_checks_a_network_with_dropout_on_one_set_of_masks():
    from numeric import verify

    model = derive.network(4, LAYERS, "cce", weight_decay=0.01)
    result = verify(model, batch=5)
    assert result.ok, result.report()
    assert [row.name for row in result.rows] == list(model.param_shapes())
    assert any("M5" in note for note in result.notes)


def test_verify_names_the_parameter_of_a_broken_network_kernel():
    import re

    from numeric import Kernel, verify

    model = derive.network(4, LAYERS, "cce")
    good = codegen(model.derive())
    # the gradient of gamma4 computed without its dropout scaling: a plausible slip
    source, count = re.subn(r"(\n    dgamma4 = [^\n#]*)", r"\1 * 0.75", good.source)
    assert count == 1
    broken = Kernel(source, [], good.params, "numpy", name="broken")
    result = verify(model, batch=5, kernel=broken)
    assert not result.ok
    assert {m.param for m in result.mismatches} == {"gamma4"}
