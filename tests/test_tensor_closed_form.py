"""The four-route check of tensor networks through the public API: ``numeric.codegen(net)`` and
``numeric.verify(net)``, the closed-form route (the derived rules of derive.tensor_ops
evaluated) against JAX's own primitives on hypothesis-drawn networks, and wrong gradients
caught by both."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numeric
from derive import BackpropInputError
from derive import tensor_ops as T
from derive.layers import Dense, Dropout
from derive.ops import m
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention
from derive.tensor_network import tensor_network
from numeric.tensor_strategies import image_networks, sample_batch, sequence_networks
from numeric.verification.tensor_closed_form import closed_form_loss_and_grads
from numeric.verification.tensor_evaluate import evaluate
from numeric.verification.tensor_route import jax_loss_and_grads

SLOW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))


def small_convnet(padding="valid"):
    """The seed course's convnet at a size a check runs in a moment."""
    layers = [Conv2D(4, 3, "relu", padding=padding), MaxPool2D(2), Conv2D(6, 3, "relu"),
              MaxPool2D(2), Flatten(), Dropout(0.5), Dense(10, "softmax")]  # fmt: skip
    return tensor_network((12, 12, 1), layers, "cce")


def _kernel_with(net, old: str, new: str):
    """The generated kernel of ``net`` with one line edited: a deliberately wrong gradient."""
    source = numeric.codegen(net).source
    assert source.count(old) == 1, old
    return numeric.Kernel(source.replace(old, new), [], net.param_shapes(), "numpy")


def _kernel_with_wrong_dW(net, name: str, spoil: str):
    """The generated kernel of ``net`` with ``d{name} = code`` replaced by ``spoil`` of code."""
    source = numeric.codegen(net).source
    (line,) = [text for text in source.splitlines() if text.strip().startswith(f"d{name} = ")]
    code = line.split(" = ", 1)[1].split("  #")[0]
    return _kernel_with(net, line, f"    d{name} = " + spoil.format(code))


def _assert_closed_form_is_jax(net, *batch):
    """The derivation evaluated (closed form) against JAX's primitives on one batch."""
    J, grads = closed_form_loss_and_grads(net, *batch)
    want_J, want = jax_loss_and_grads(net, *batch)
    assert J == pytest.approx(want_J, rel=1e-12)
    assert list(grads) == list(net.param_shapes())
    for name in want:
        np.testing.assert_allclose(grads[name], want[name], rtol=1e-9, atol=1e-12)


# -- the public API -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_verify_takes_a_tensor_network_like_a_model(dtype):
    result = numeric.verify(small_convnet(), dtype, batch=3, seed=1)
    assert result.ok, result.report()
    assert [row.name for row in result.rows] == ["W1", "b1", "W3", "b3", "W7", "b7"]
    assert all(set(row.errors) == {"JAX", "FD", "closed form"} for row in result.rows)
    assert "|kernel-CF|" in result.report() and result.dtype == dtype


def test_codegen_takes_a_tensor_network_for_both_targets_and_dtypes():
    net = small_convnet(padding="same")
    kernel = numeric.codegen(net)
    assert isinstance(kernel, numeric.Kernel) and kernel.params == net.param_shapes()
    params, X, Y, masks = sample_batch(net, 2, seed=3, scale=0.2)
    J, grads = kernel.loss_and_grads(params, X, Y, masks=masks)
    want_J, want = jax_loss_and_grads(net, params, X, Y, masks)
    assert J == pytest.approx(want_J, rel=1e-10)
    for name in want:
        np.testing.assert_allclose(grads[name], want[name], rtol=1e-7, atol=1e-10)
    assert "import jax.numpy as jnp" in numeric.codegen(net, target="jax").source
    pixels = np.random.default_rng(0).integers(0, 256, (2, 12, 12, 1)).astype(np.uint8)
    for dtype in ("float32", "float64"):  # integer pixels convert to the dtype asked for
        kernel = numeric.codegen(net, dtype=dtype)
        _, grads = kernel.loss_and_grads(kernel.random_params(dtype=dtype), pixels, Y)
        assert grads["W1"].dtype == np.dtype(dtype)


def test_verify_checks_a_given_kernel_params_and_data():
    net = small_convnet()
    params, X, Y, _ = sample_batch(net, 2, seed=5, scale=0.2)
    result = numeric.verify(net, kernel=numeric.codegen(net), params=params, data=(X, Y))
    assert result.ok, result.report()
    assert result.batch == 2


def test_the_jax_target_kernel_of_the_convnet_passes_every_route():
    """Max pools included: the routing mask R must reach the JAX kernel's backward pass."""
    net = small_convnet()
    result = numeric.verify(net, batch=2, seed=5, kernel=numeric.codegen(net, target="jax"))
    assert result.ok, result.report()


def test_verify_and_codegen_refuse_bad_options_for_a_tensor_network():
    net = small_convnet()
    with pytest.raises(BackpropInputError, match="float16"):
        numeric.verify(net, dtype="float16")
    with pytest.raises(BackpropInputError, match="got 'no_such_dtype'"):
        numeric.verify(net, dtype="no_such_dtype")
    with pytest.raises(BackpropInputError, match="batch must be a positive integer, got 0"):
        numeric.verify(net, batch=0)
    other = tensor_network((6, 6, 1), [Conv2D(2, 3), Flatten(), Dense(2, "softmax")], "cce")
    with pytest.raises(BackpropInputError, match="not a kernel for .* the model's are W1, b1"):
        numeric.verify(net, kernel=numeric.codegen(other))
    assert numeric.verify(other, dtype=np.float32, batch=1).dtype == "float32"  # as a Model's
    with pytest.raises(BackpropInputError, match="unknown codegen target 'c'"):
        numeric.codegen(net, target="c")
    params = {"W1": np.zeros((3, 3, 1, 3)), "b1": np.zeros(2), "W3": np.zeros((32, 2))}
    with pytest.raises(BackpropInputError, match="params has W1, b1, W3; the network's are W1"):
        numeric.verify(other, params=params)
    match = r"params\['W1'\] has shape \(3, 3, 1, 3\), not \(3, 3, 1, 2\)"
    with pytest.raises(BackpropInputError, match=match):
        numeric.verify(other, params=params | {"b3": np.zeros(2)})


def test_no_public_function_fails_inside_on_a_tensor_network():
    """Each of numeric's functions, given a network where a user might pass one, either works
    or raises the one error that names what it got and what to pass. Every public function
    has a row: a new one must say which it does."""
    from derive.optimizers import SGD

    net = small_convnet()
    params, X, Y, _ = sample_batch(net, 2, seed=0)
    use_verify = r"got TensorNetwork; to check a network's or Model's kernel, use numeric\.verify"
    refusals = {
        "assert_gradients": (
            lambda: numeric.assert_gradients(net, params=params),
            TypeError, "loss_fn must be a function of params, " + use_verify,
        ),
        "check_gradients": (
            lambda: numeric.check_gradients(loss_and_grad_fn=net, params=params),
            TypeError, "loss_and_grad_fn must be a function of params, " + use_verify,
        ),
        "numeric_gradient": (
            lambda: numeric.numeric_gradient(net, params),
            TypeError, "loss_fn must be a function of params, " + use_verify,
        ),
        "partial_derivative": (
            lambda: numeric.partial_derivative(net, params, "W1", (0, 0, 0, 0)),
            TypeError, "loss_fn must be a function of params, " + use_verify,
        ),
        "load": (
            lambda: numeric.load(net),
            TypeError,
            r"load takes the path of a saved kernel file, got TensorNetwork: .*codegen\(net\)",
        ),
        "train": (
            lambda: numeric.train(net, params, X, Y, SGD(0.1)),
            TypeError, r"train takes a kernel, got TensorNetwork: .*codegen\(net\)",
        ),
        "keep_freed_memory": (
            lambda: numeric.keep_freed_memory(net),
            BackpropInputError, r"threshold must be a whole number of bytes .* got TensorNetwork",
        ),
    }  # fmt: skip
    works = {"codegen", "verify"}
    public = {
        name
        for name in numeric.__all__
        if callable(getattr(numeric, name)) and not isinstance(getattr(numeric, name), type)
    }
    assert public == set(refusals) | works
    for call, error, message in refusals.values():
        with pytest.raises(error, match=message):
            call()
    kernel = numeric.codegen(net)
    assert kernel.params == net.param_shapes()
    assert numeric.verify(net, batch=2).ok
    training = numeric.train(kernel, params, X, Y, SGD(0.1), epochs=1)
    assert np.isfinite(training.history.last_loss)


# -- the four routes on random networks -----------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "networks", [image_networks, sequence_networks], ids=["image", "attention"]
)
@SLOW
@given(data=st.data())
def test_random_networks_pass_all_four_routes(networks, dtype, data):
    net = data.draw(networks(), label="net")
    result = numeric.verify(net, dtype, batch=2, seed=0)
    assert result.ok, result.report()


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(net=image_networks(max_convs=2))
def test_closed_form_equals_jax_on_random_networks(net):
    """The derivation evaluated against JAX's primitives, with no generated kernel between."""
    _assert_closed_form_is_jax(net, *sample_batch(net, 2, seed=7, scale=0.4))


def test_closed_form_covers_every_layer_and_average_pooling():
    net = tensor_network(
        (8, 8, 2),
        [Conv2D(3, 2, "tanh", stride=2, padding="same"), AvgPool2D(2), Flatten(),
         Dropout(0.25), Dense(4, "linear")],
        "mse",
    )  # fmt: skip
    seq = tensor_network((4, 3), [SelfAttention(2), SelfAttention(3), MeanOverTime(),
                                  Dense(2, "softmax")], "cce")  # fmt: skip
    for model in (net, seq):
        _assert_closed_form_is_jax(model, *sample_batch(model, 3, seed=2, scale=0.5))


@pytest.mark.parametrize(
    "hidden, output, loss",
    [("elu", "sigmoid", "bce"), ("leaky_relu", "linear", "huber"), ("softplus", "linear", "mae"),
     ("relu", "linear", "half_sse"), ("relu", "linear", "bce_logits")],
)  # fmt: skip
def test_every_route_takes_the_registrys_other_activations_and_losses(hidden, output, loss):
    """JAX has no elu or huber of its own: its route prints the registry's definitions."""
    units = 1 if loss.startswith("bce") else 3
    layers = [Conv2D(2, 3, hidden), MaxPool2D(2), Flatten(), Dense(units, output)]
    result = numeric.verify(tensor_network((6, 6, 1), layers, loss), batch=3)
    assert result.ok, result.report()


def test_every_route_takes_a_registered_activation():
    import derive

    with derive.scoped_registry():
        derive.register_activation("swish", "x * sigmoid(x)")
        layers = [Conv2D(2, 3, "swish"), Flatten(), Dense(2, "softmax")]
        result = numeric.verify(tensor_network((5, 5, 1), layers, "cce"), batch=2)
    assert result.ok, result.report()


def test_max_pool_ties_go_to_the_first_arg_max_on_every_route():
    """Integer pixels on a blank background and a positive bias: whole windows of equal relu
    outputs, whose gradient goes to one entry (JAX's and the kernel's choice), not shared."""
    net = tensor_network((8, 8, 1), [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(),
                                     Dense(3, "softmax")], "cce")  # fmt: skip
    rng = np.random.default_rng(0)
    X = np.zeros((2, 8, 8, 1), dtype=np.uint8)
    X[:, 2:4, 2:4] = rng.integers(1, 255, (2, 2, 2, 1))
    params = {"W1": 0.1 * rng.normal(size=(3, 3, 1, 2)), "b1": np.array([0.5, 0.3]),
              "W4": 0.3 * rng.normal(size=(18, 3)), "b4": np.zeros(3)}  # fmt: skip
    Y = np.eye(3)[[0, 2]]
    _assert_closed_form_is_jax(net, params, X, Y)
    result = numeric.verify(net, params=params, data=(X, Y))
    assert result.ok, result.report()


# -- wrong gradients ------------------------------------------------------------------------


def test_a_flipped_kernel_gradient_is_caught_by_jax_and_the_closed_form():
    """The classic slip: dW as a convolution (kernel flipped) instead of a cross-correlation."""
    net = small_convnet()
    kernel = _kernel_with_wrong_dW(net, "W3", "({})[::-1, ::-1]")
    result = numeric.verify(net, batch=2, kernel=kernel)
    assert not result.ok
    assert [row.name for row in result.rows if not row.ok] == ["W3"]
    assert {"JAX", "closed form"} <= result.disagreeing("W3")
    found = {m.route: m for m in result.mismatches}
    assert found["closed form"].param == "W3" and found["closed form"].size == 3 * 3 * 4 * 6
    assert "W3: closed form disagrees at" in result.report()


def test_a_transposed_kernel_gradient_is_caught_by_jax_and_the_closed_form():
    net = tensor_network((5, 5, 1), [Conv2D(2, 2), Flatten(), Dense(3, "softmax")], "cce")
    kernel = _kernel_with_wrong_dW(net, "W1", "({}).transpose(1, 0, 2, 3)")  # rows, cols
    result = numeric.verify(net, batch=2, kernel=kernel)
    assert result.disagreeing("W1") >= {"JAX", "closed form"}
    assert [row.name for row in result.rows if not row.ok] == ["W1"]


def test_the_closed_form_is_the_derivation_evaluated(monkeypatch):
    """A wrong derived rule (dK doubled) makes the closed form disagree with the kernel and
    JAX: the route reads derive.tensor_ops, it does not carry a backward of its own."""
    net = small_convnet()
    kernel = numeric.codegen(net)  # printed before the rule is spoiled
    rule = T.convolution()
    wrong = dict(rule.named, K=rule.named["K"].__class__(
        rule.named["K"].target, 2 * rule.named["K"].body, rule.named["K"].limits))  # fmt: skip
    monkeypatch.setattr(T, "convolution", lambda: T.Rule(rule.definition, rule.derived, wrong))
    result = numeric.verify(net, batch=2, kernel=kernel)
    assert result.disagreeing("W1") == {"closed form"}
    assert result.disagreeing("W3") == {"closed form"}
    assert result.disagreeing("b1") == set()


# -- the evaluator --------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2])
def test_the_evaluated_convolution_definition_is_laxs_convolution(stride):
    import jax
    from jax import lax

    rng = np.random.default_rng(stride)
    X, K, b = rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 2, 3, 4)), rng.normal(size=4)
    ho, wo = (7 - 3) // stride + 1, (6 - 2) // stride + 1
    sizes = {m: 2, T.k_h: 3, T.k_w: 2, T.C_in: 3, T.C_out: 4, T.H: 7, T.W: 6, T.H_out: ho,
             T.W_out: wo, T.s: stride}  # fmt: skip
    Z = evaluate(T.CONV, {"X": X, "K": K, "b": b}, sizes, [(T.n, 2), (T.h, ho), (T.w, wo),
                                                           (T.o, 4)])  # fmt: skip
    with jax.enable_x64(True):
        want = lax.conv_general_dilated(X, K, (stride, stride), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
        want = np.asarray(want) + b
    np.testing.assert_allclose(Z, want, rtol=1e-12, atol=1e-12)


def test_a_float32_gradient_far_below_the_models_largest_is_judged_by_its_rounding():
    """Attention's second query and key weights get gradients of 2e-7 beside 0.2 elsewhere:
    float32 computes them from terms of the larger size, 1e-10 (5e-4 of themselves) from
    float64. That is rounding, not a wrong gradient (hypothesis drew this network); doubling
    the tiny gradient is still a mismatch."""
    net = tensor_network((2, 2), [SelfAttention(1), SelfAttention(2), MeanOverTime(),
                                  Dense(2, "softmax")], "cce")  # fmt: skip
    assert numeric.verify(net, "float32", batch=2, seed=0).ok
    line = 'dWq2 = np.matmul(A1.reshape(-1, 1).T, dQ2.reshape(-1, 2), out=grads_out.get("Wq2"))'
    wrong = _kernel_with(net, line, line.replace("dWq2 = ", "dWq2 = 2 * "))
    result = numeric.verify(net, "float32", batch=2, seed=0, kernel=wrong)
    assert not result.ok
    assert {m.param for m in result.mismatches} == {"Wq2"}


def test_a_float32_gradient_that_cancels_is_judged_by_the_rounding_of_its_terms():
    """b4 sums softmax outputs near 0.5 minus their one-hot targets and cancels to 3e-5;
    float32 gets it 3e-8 (a rounding of 0.5, 1e-3 of itself) from float64. The check allows
    what JAX's own float32 run of the same graph is off by (hypothesis drew this network and
    the check called it a mismatch); a doubled or negated b4 is still one."""
    net = tensor_network((4, 3), [SelfAttention(4), SelfAttention(2), MeanOverTime(),
                                  Dense(2, "softmax")], "cce")  # fmt: skip
    assert numeric.verify(net, "float32", batch=2, seed=0).ok
    for spoil in ("2 * {}", "-{}"):
        wrong = _kernel_with_wrong_dW(net, "b4", spoil)
        result = numeric.verify(net, "float32", batch=2, seed=0, kernel=wrong)
        assert {m.param for m in result.mismatches} == {"b4"}, spoil
