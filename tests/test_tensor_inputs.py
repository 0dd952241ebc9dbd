"""A tensor network's kernel and training loop take what the network says they take: a
wrong-shaped X, Y, parameter or dropout mask is named with the shape it should have, and
``train`` draws dropout masks for a tensor network as it does for a dense model; a linear
output with cce_logits gets a kernel, checked against JAX."""

import shutil

import numpy as np
import pytest

import derive
from derive.errors import BackpropInputError
from derive.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from derive.optimizers import SGD
from numeric import codegen, train

SHAPE = (6, 6, 1)
M = 5


@pytest.fixture(scope="module")
def net():
    layers = [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(), Dropout(0.5), Dense(3, "softmax")]
    return derive.network(SHAPE, layers, "cce")


@pytest.fixture(scope="module")
def kernel(net):
    return codegen(net)


def _data(rows=M, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((rows, *SHAPE))
    Y = np.eye(3)[rng.integers(0, 3, rows)]
    return X, Y


def _masks(rows=M):
    return {"M4": np.ones((rows, 8))}


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda X, Y, p, k: (X[..., 0], Y, p, k), r"X has shape \(5, 6, 6\).*\(5, 6, 6, 1\)"),
        (lambda X, Y, p, k: (X.reshape(M, -1), Y, p, k), r"X has shape \(5, 36\).*\(5, 6, 6, 1\)"),
        (lambda X, Y, p, k: (X, Y[:, :2], p, k), r"Y has shape \(5, 2\).*\(5, 3\)"),
        (lambda X, Y, p, k: (X, Y[:4], p, k), r"Y has shape \(4, 3\).*\(5, 3\)"),
        (
            lambda X, Y, p, k: (X, Y, p | {"W1": np.ones((3, 3, 2))}, k),
            r"W1 has shape \(3, 3, 2\).*\(3, 3, 1, 2\)",
        ),
        (lambda X, Y, p, k: (X, Y, {"W1": p["W1"]}, k), r"params has no b1, W5, b5"),
        (
            lambda X, Y, p, k: (X, Y, p, {"M4": np.ones((M, 3))}),
            r"mask M4 has shape \(5, 3\).*\(5, 8\)",
        ),
        (lambda X, Y, p, k: (X, Y, p, {"M5": np.ones((M, 8))}), r"masks has no M4"),
    ],
)
def test_a_bad_shape_is_named_with_the_expected_one(kernel, change, named):
    X, Y = _data()
    X, Y, params, masks = change(X, Y, kernel.random_params(), _masks())
    with pytest.raises(BackpropInputError, match=named):
        kernel.loss_and_grads(params, X, Y, masks=masks)


@pytest.mark.parametrize("function", ["forward", "loss"])
def test_every_function_checks_x(kernel, function):
    X, Y = _data()
    args = (X[..., 0],) if function == "forward" else (X[..., 0], Y)
    with pytest.raises(BackpropInputError, match=r"X has shape \(5, 6, 6\)"):
        getattr(kernel, function)(kernel.random_params(), *args)


def test_right_shapes_pass_and_masks_are_optional(kernel):
    X, Y = _data()
    params = kernel.random_params()
    J, grads = kernel.loss_and_grads(params, X, Y, masks=_masks())
    assert np.isfinite(J) and {k: g.shape for k, g in grads.items()} == kernel.params
    assert np.isfinite(kernel.loss(params, X, Y))


class _Spy:
    """The kernel, recording the masks train passes it."""

    def __init__(self, kernel):
        self.kernel, self.params, self.network = kernel, kernel.params, kernel.network
        self.forward = kernel.forward
        self.masks = []

    def loss_and_grads(self, params, X, Y, masks=None):
        self.masks.append(masks)
        return self.kernel.loss_and_grads(params, X, Y, masks=masks)


def test_train_draws_dropout_masks_for_a_tensor_network(kernel):
    X, Y = _data(rows=200)
    spy = _Spy(kernel)
    train(spy, kernel.random_params(), X, Y, SGD(lr=0.1), epochs=2, batch_size=64, progress=False)
    assert len(spy.masks) == 2 * 4  # batches of 64, 64, 64, 8 per epoch
    rows = [mask["M4"].shape for mask in spy.masks]
    assert rows == [(64, 8), (64, 8), (64, 8), (8, 8)] * 2
    entries = np.concatenate([mask["M4"].ravel() for mask in spy.masks])
    assert set(np.unique(entries)) == {0.0, 1.0}
    assert abs(entries.mean() - 0.5) < 0.05  # keep 0.5; 3200 entries: sd 0.009
    assert not np.array_equal(spy.masks[0]["M4"][:8], spy.masks[3]["M4"])  # fresh per batch


def test_train_with_dropout_matches_a_loop_drawing_the_documented_masks(net, kernel):
    """The order the loop's docstring gives: per epoch a permutation, then per batch one
    ``rng.random((rows, *shape)) < keep`` per dropout layer; SGD moves each parameter by
    ``-lr g``."""
    X, Y = _data(rows=12, seed=3)
    lr, seed, epochs, size = 0.2, 7, 3, 5
    start = kernel.random_params(seed=2)
    run = train(kernel, {k: v.copy() for k, v in start.items()}, X, Y, SGD(lr=lr),
                epochs=epochs, batch_size=size, seed=seed, progress=False)  # fmt: skip

    def loop(with_masks):
        params = {k: v.copy() for k, v in start.items()}
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for lo in range(0, len(X), size):
                rows = order[lo : lo + size]
                masks = {"M4": (rng.random((len(rows), 8)) < net.masks["M4"]).astype(X.dtype)}
                masks = masks if with_masks else None  # drawn either way: the same stream
                _, grads = kernel.module.loss_and_grads(params, X[rows], Y[rows], masks=masks)
                for name in params:
                    params[name] -= lr * grads[name]
        return params

    params = loop(with_masks=True)
    for name in params:
        np.testing.assert_allclose(run.params[name], params[name], rtol=1e-12, atol=1e-14)
    # without the masks the same steps land elsewhere: dropout took part
    assert not np.allclose(run.params["W5"], loop(with_masks=False)["W5"])


# -- a linear output with cce_logits: the head's gradient is the registry's (softmax - Y), in
# the stable log-softmax form


@pytest.fixture(scope="module")
def logits_net():
    layers = [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(), Dropout(0.5), Dense(3, "linear")]
    return derive.network(SHAPE, layers, "cce_logits")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("target", ["numpy", "jax"])
def test_cce_logits_head_passes_every_route(logits_net, dtype, target):
    from numeric import verify

    result = verify(logits_net, dtype, kernel=codegen(logits_net, target=target))
    assert result.ok, result.report()


def test_cce_logits_cost_and_gradient_stay_finite_and_right_for_far_apart_logits(logits_net):
    from numeric.verification.tensor_route import jax_loss_and_grads

    kernel = codegen(logits_net)
    X, Y = _data()
    params = kernel.random_params(seed=4)
    params["b5"] = np.array([800.0, 0.0, -800.0])  # exp(800) overflows float64
    J, grads = kernel.loss_and_grads(params, X, Y)
    # the oracle: JAX's route (written naively) where the logits are shifted down by 800 in
    # every row, which changes neither the cost nor any gradient, and nothing overflows
    shifted = params | {"b5": params["b5"] - 800.0}
    want_J, want = jax_loss_and_grads(logits_net, shifted, X, Y)
    assert np.isfinite(J) and J == pytest.approx(want_J, rel=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, want[name], rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")
def test_cce_logits_report_compiles(logits_net, tmp_path):
    from reports.latex.pdflatex import problems
    from reports.tensor_report import write_tensor_report

    pdf = write_tensor_report(logits_net, tmp_path / "logits")  # cce_logits: an underscore
    assert problems(pdf.with_suffix(".log").read_text()) == []
    assert r"cce\_logits" in pdf.with_suffix(".tex").read_text()
