"""Generated tensor-network kernels against independent routes: JAX's own primitives
(``lax.conv_general_dilated``, ``reduce_window``) through ``jax.value_and_grad``, and central
finite differences. Networks are drawn by hypothesis (bounded: small maps, few examples)."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.layers import Dense, Dropout
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention
from derive.tensor_network import tensor_network
from numeric.generator.tensor_kernel import tensor_kernel
from numeric.tensor_strategies import batches_for, image_networks, sample_batch, sequence_networks
from numeric.verification.tensor_route import jax_loss_and_grads

_SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(kernel, params, X, Y, masks, dtype):
    cast = {k: v.astype(dtype) for k, v in params.items()}
    args = (cast, X.astype(dtype), Y.astype(dtype)) + ((masks,) if masks is not None else ())
    value, grads = kernel.loss_and_grads(*args)
    assert value == pytest.approx(kernel.loss(*args), rel=1e-6 if dtype == "float32" else 1e-12)
    assert all(g.dtype == np.dtype(dtype) for g in grads.values())
    return value, grads


def _agree(kernel_out, jax_out, rtol, atol):
    (value, grads), (want_value, want_grads) = kernel_out, jax_out
    assert value == pytest.approx(want_value, rel=rtol, abs=atol)
    assert set(grads) == set(want_grads)
    for name, want in want_grads.items():
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(grads[name], want, rtol=rtol, atol=atol * scale, err_msg=name)


def _agree_with_jax_in_float64_and_float32(kernel, net, params, X, Y, masks):
    want = jax_loss_and_grads(net, params, X, Y, masks)
    _agree(_run(kernel, params, X, Y, masks, "float64"), want, 1e-9, 1e-12)
    _agree(_run(kernel, params, X, Y, masks, "float32"), want, 2e-4, 2e-5)


@_SETTINGS
@given(st.data())
def test_image_networks_match_jax_and_finite_differences_in_float64_and_float32(data):
    net = data.draw(image_networks())
    params, X, Y, masks = data.draw(batches_for(net))
    kernel = tensor_kernel(net)
    _agree_with_jax_in_float64_and_float32(kernel, net, params, X, Y, masks)
    _agree_with_finite_differences(kernel, params, X, Y, masks, seed=data.draw(st.integers(0, 99)))


def _agree_with_finite_differences(kernel, params, X, Y, masks, seed, entries=2):
    rng = np.random.default_rng(seed)
    _, grads = kernel.loss_and_grads(params, X, Y, *([masks] if masks else []))
    for name, grad in grads.items():
        chosen = [tuple(int(rng.integers(0, s)) for s in grad.shape) for _ in range(entries)]
        want = _finite_differences(kernel, params, X, Y, masks, name, chosen)
        scale = max(1.0, float(np.abs(grad).max()))
        np.testing.assert_allclose([grad[e] for e in chosen], want, rtol=1e-5, atol=1e-7 * scale)


@_SETTINGS
@given(st.data())
def test_attention_networks_match_jax(data):
    net = data.draw(sequence_networks())
    params, X, Y, masks = data.draw(batches_for(net))
    _agree_with_jax_in_float64_and_float32(tensor_kernel(net), net, params, X, Y, masks)


def _finite_differences(kernel, params, X, Y, masks, name, entries, h=1e-6):
    out = []
    for entry in entries:
        values = []
        for step in (h, -h):
            moved = {k: v.copy() for k, v in params.items()}
            moved[name][entry] += step
            values.append(kernel.loss(moved, X, Y, *([masks] if masks else [])))
        out.append((values[0] - values[1]) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize(
    "net",
    [
        tensor_network(
            (7, 7, 2),
            [
                Conv2D(3, 3, "tanh", stride=2, padding="same"),
                AvgPool2D(2),
                Flatten(),
                Dense(3, "softmax"),
            ],
            "cce",
        ),  # fmt: skip
        tensor_network(
            (8, 6, 1),
            [
                Conv2D(2, (3, 2), "tanh"),
                MaxPool2D(2),
                Conv2D(2, 2),
                Flatten(),
                Dropout(0.5),
                Dense(2),
            ],
            "mse",
        ),  # fmt: skip
        tensor_network(
            (4, 3), [SelfAttention(2), SelfAttention(3), MeanOverTime(), Dense(2, "softmax")], "cce"
        ),  # fmt: skip
    ],
    ids=["conv-same-stride-avg", "conv-max-dropout", "attention-twice"],
)
def test_gradients_match_central_finite_differences(net):
    rng = np.random.default_rng(7)
    params, X, Y, masks = sample_batch(net, m=2, seed=5)
    kernel = tensor_kernel(net)
    _, grads = kernel.loss_and_grads(params, X, Y, *([masks] if masks else []))
    for name, grad in grads.items():
        entries = [tuple(rng.integers(0, s) for s in grad.shape) for _ in range(4)]
        want = _finite_differences(kernel, params, X, Y, masks, name, entries)
        got = np.array([grad[e] for e in entries])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)


def test_max_pool_ties_go_where_jax_sends_them():
    """After a relu many windows are all zeros: the gradient goes to the first entry of the
    window, as JAX's reduce_window gradient sends it; a mask marking every maximum would
    send it to all four and disagree."""
    net = tensor_network((6, 6, 1), [Conv2D(2, 1, "relu"), MaxPool2D(2), Flatten(), Dense(2)],
                         "mse")  # fmt: skip
    rng = np.random.default_rng(3)
    params = {k: rng.normal(size=s) for k, s in net.param_shapes().items()}
    params["b1"] = np.array([-5.0, 0.0])  # filter 1 is zero everywhere: every window tied
    X = rng.integers(0, 2, size=(2, 6, 6, 1)).astype(float)  # 0/1 pixels: ties in filter 2 too
    Y = rng.normal(size=(2, 2))
    _agree(tensor_kernel(net).loss_and_grads(params, X, Y),
           jax_loss_and_grads(net, params, X, Y), 1e-9, 1e-12)  # fmt: skip


def test_kernels_loop_over_no_example_or_pixel_and_use_one_product_per_conv():
    net = tensor_network((10, 10, 1), [Conv2D(4, 3, "relu"), MaxPool2D(2), Conv2D(4, 3, "relu"),
                                       Flatten(), Dense(3, "softmax")], "cce")  # fmt: skip
    backprop = tensor_kernel(net).__source__.split("def loss_and_grads")[1]
    loops = re.findall(r"^\s*(?:for|while) .*$", backprop, re.MULTILINE)
    # the only loops: over a pool window's 2 × 2 positions (its arg-max; its max is printed from
    # the definition, no loop) and conv 3's 3 × 3 kernel positions
    # (its dX added back window by window), each line working on every example and pixel
    assert sorted(loop.split(":")[0].strip() for loop in loops) == [
        "for i, j in np.ndindex(2, 2)", "for i, j in np.ndindex(3, 3)",
    ]  # fmt: skip
    assert backprop.count("sliding_window_view(") == 2  # im2col of each conv's input, reused
    # one matrix product each: Z1, Z3, Z5; dense dW5 and dA4; conv 3's dW3 and dX's columns; dW1
    # (a weight's written into the caller's array: np.matmul(..., out=...), matmul_into)
    assert backprop.count(" @ ") + backprop.count("matmul") == 3 + 2 + 2 + 1


def test_a_wrong_gradient_is_caught_by_the_jax_route():
    """The kernel with its kernel read transposed in dX (a flip gone wrong) disagrees with JAX."""
    net = tensor_network((6, 6, 1), [Conv2D(2, 3, "tanh"), Conv2D(2, 2, "tanh"), Flatten(),
                                     Dense(2)], "mse")  # fmt: skip
    kernel = tensor_kernel(net)
    source = kernel.__source__.replace("dA1_cols[:, :, :, i, j]", "dA1_cols[:, :, :, j, i]")
    assert source != kernel.__source__
    wrong = {}
    exec(compile(source, "<wrong kernel>", "exec"), wrong)
    params, X, Y, _ = sample_batch(net, m=2, seed=5)
    want = jax_loss_and_grads(net, params, X, Y)
    _agree(kernel.loss_and_grads(params, X, Y), want, 1e-9, 1e-12)
    with pytest.raises(AssertionError, match="W1"):
        _agree(wrong["loss_and_grads"](params, X, Y), want, 1e-9, 1e-12)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_jax_target_matches_the_jax_route(data):
    """``target="jax"``: the same derived forms printed over jax.numpy (windows by slicing,
    ``.at[...].add`` for the in-place sums)."""
    import jax

    net = data.draw(st.one_of(image_networks(max_convs=1), sequence_networks()))
    params, X, Y, masks = data.draw(batches_for(net))
    want = jax_loss_and_grads(net, params, X, Y, masks)
    kernel = tensor_kernel(net, "jax")
    assert "import jax.numpy as jnp" in kernel.__source__
    with jax.enable_x64(True):
        value, grads = kernel.loss_and_grads(params, X, Y, *([masks] if masks else []))
        got = (value, {k: np.asarray(v) for k, v in grads.items()})
    _agree(got, want, 1e-9, 1e-12)


def test_each_function_keeps_only_the_work_it_returns():
    """loss and forward print no max-pool routing mask and no output activation beside its
    stable log: those are for the backward pass, which only loss_and_grads runs. Read with
    ast: no assignment in any function is left unread."""
    import ast

    from derive import network
    from derive.layers import Conv2D, Dense, Flatten, MaxPool2D
    from numeric.generator.tensor_kernel import tensor_codegen

    net = network((6, 6, 1), [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(),
                              Dense(3, "softmax")], "cce")  # fmt: skip
    for target in ("numpy", "jax"):
        tree = ast.parse(tensor_codegen(net, target))
        prefix = "_" if target == "jax" else ""  # JAX's jitted bodies are _forward, ...
        functions = {
            f.name.removeprefix(prefix): f
            for f in tree.body
            if isinstance(f, ast.FunctionDef) and f.name.startswith(prefix)
            and f.name.removeprefix(prefix) in ("forward", "loss", "loss_and_grads")
        }  # fmt: skip
        assert len(functions) == 3
        stored = {name: _stored_names(f) for name, f in functions.items()}
        assert "R2" not in stored["loss"] and "R2" not in stored["forward"]
        loops = [n for n in ast.walk(functions["loss_and_grads"]) if isinstance(n, ast.For)]
        assert any("R2" in _stored_names(loop) or "R2[" in ast.unparse(loop) for loop in loops)
        assert "A4" not in stored["loss"] and "log_A4" in stored["loss"]
        for name, function in functions.items():
            loaded = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, ast.Load)}  # fmt: skip
            assert stored[name] <= loaded, f"{target} {name} assigns {stored[name] - loaded}"


def _stored_names(function) -> set[str]:
    import ast

    return {
        n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
