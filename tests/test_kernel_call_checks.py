"""A dense kernel's call is checked against its model, as a tensor kernel's is: a parameter or
dropout mask of the wrong shape, a missing, misspelt or extra mask, a mask already scaled by
1/keep, or data that is not finite is one BackpropInputError naming what it got and what fits,
never a gradient NumPy broadcast silently. The right call still gives JAX autodiff's
gradients of a forward written here from the model's definition (not from the kernel)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import derive
from derive.errors import BackpropInputError
from derive.layers import Dense, Dropout
from derive.matrix_expressions import from_matrix_expr
from numeric import codegen
from numeric.generator.kernel import Kernel

jax = pytest.importorskip("jax")
jnp = jax.numpy

M = 6  # rows of a batch
KEEP = 0.75  # the network's Dropout(0.25)


def _mlp_cost(p, X, Y, masks=None):  # tanh hidden, softmax output, cross-entropy
    Z2 = jnp.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(Z2), axis=1))


def _dropout_cost(p, X, Y, masks=None):  # relu, inverted dropout (0/1 mask / keep), mse
    A1 = jnp.maximum(X @ p["W1"] + p["b1"], 0)
    A2 = A1 if masks is None else masks["M2"] * A1 / KEEP
    return jnp.mean(jnp.mean((A2 @ p["W3"] + p["b3"] - Y) ** 2, axis=1))


def _matrix_cost(p, X, Y, masks=None):  # the text of MATRIX_COST, in jax.numpy
    return jnp.sum((jnp.tanh(X @ p["W"] + p["b"]) - Y) ** 2) / X.shape[0]


MATRIX_COST = "sum((tanh(X @ W + b) - Y)**2)/m"
MODELS = {  # name -> (the model, its cost written in JAX)
    "mlp": (lambda: derive.mlp([4, 5, 3], "tanh", "softmax", "cce"), _mlp_cost),
    "dropout": (
        lambda: derive.network(4, [Dense(5, "relu"), Dropout(1 - KEEP), Dense(3)], "mse"),
        _dropout_cost,
    ),
    "matrix_expr": (
        lambda: from_matrix_expr(
            MATRIX_COST, {"X": ("m", 4), "W": (4, 3), "b": (1, 3), "Y": ("m", 3)}
        ),
        _matrix_cost,
    ),
}


@pytest.fixture(scope="module")
def kernels():
    return {name: codegen(build().derive()) for name, (build, _) in MODELS.items()}


def _call(kernel, seed=0):
    """Seeded parameters, a batch of M rows and (for dropout) a 0/1 keep mask."""
    rng = np.random.default_rng(seed)
    params = kernel.random_params(seed)
    X = rng.standard_normal((M, 4))
    Y = np.eye(3)[rng.integers(0, 3, M)]
    masks = {"M2": (rng.random((M, 5)) < KEEP).astype(float)}
    return params, X, Y, masks


def _jax_grads(cost, params, X, Y, masks):
    with jax.enable_x64(True):
        J, grads = jax.value_and_grad(cost)({k: jnp.asarray(v) for k, v in params.items()},
                                            X, Y, masks)  # fmt: skip
    return float(J), {k: np.asarray(v) for k, v in grads.items()}


def _assert_equal_to_jax(kernel, cost, params, X, Y, masks=None):
    kw = {} if masks is None else {"masks": masks}
    J, grads = kernel.loss_and_grads(params, X, Y, **kw)
    J_ref, ref = _jax_grads(cost, params, X, Y, masks)
    assert J == pytest.approx(J_ref, rel=1e-12)
    assert set(grads) == set(ref)
    for name in ref:
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_right_call_gives_jax_autodiffs_gradients(kernels, name):
    params, X, Y, masks = _call(kernels[name])
    _assert_equal_to_jax(kernels[name], MODELS[name][1], params, X, Y,
                         masks if name == "dropout" else None)  # fmt: skip


def test_without_masks_dropout_is_the_identity_as_the_contract_says(kernels):
    """Evaluation mode: no masks is allowed, and the dropout layer passes its input on."""
    params, X, Y, _ = _call(kernels["dropout"], seed=1)
    _assert_equal_to_jax(kernels["dropout"], _dropout_cost, params, X, Y, masks=None)


def _wrong_params(kernel):
    """Each parameter in turn transposed, flattened, or (a bias) broadcastable but wrong."""
    for name, shape in kernel.params.items():
        if len(shape) == 2 and shape[0] != shape[1]:
            yield name, shape[::-1]
        if len(shape) == 2:
            yield name, (shape[0] * shape[1],)
        if len(shape) == 1:  # (1, n) and a scalar both broadcast over the rows of X W
            yield name, (1, shape[0])
            yield name, ()


CASES = [pytest.param(name, p, bad, id=f"{name}-{p}-{bad}") for name, (build, _) in MODELS.items()
         for p, bad in _wrong_params(codegen(build().derive()))]  # fmt: skip


@pytest.mark.parametrize("name, param, bad", CASES)
def test_a_parameter_of_the_wrong_shape_is_named_with_the_right_one(kernels, name, param, bad):
    kernel = kernels[name]
    params, X, Y, masks = _call(kernel)
    params[param] = np.ones(bad)
    kw = {"masks": masks} if name == "dropout" else {}
    message = rf"parameter {param} has shape {re.escape(str(bad))}, the kernel's is " + re.escape(
        str(kernel.params[param])
    )
    for function in ("loss_and_grads", "loss"):
        with pytest.raises(BackpropInputError, match=message):
            getattr(kernel, function)(params, X, Y, **kw)
    with pytest.raises(BackpropInputError, match=message):
        kernel.forward(params, X, **kw)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_missing_or_misspelt_parameter_is_named(kernels, name):
    kernel = kernels[name]
    params, X, Y, _ = _call(kernel)
    first = next(iter(params))
    params[first.lower() if first != first.lower() else first.upper()] = params.pop(first)
    with pytest.raises(BackpropInputError, match=rf"params has no {first}; the kernel takes"):
        kernel.loss(params, X, Y)


def test_a_broadcastable_bias_would_have_given_a_gradient_silently(kernels):
    """Why the check matters: the module's own function takes a scalar b1 without a word and
    returns a gradient of the wrong shape for it; the kernel refuses the call."""
    kernel = kernels["mlp"]
    params, X, Y, _ = _call(kernel)
    params["b1"] = np.array(0.1)
    _, grads = kernel.module.loss_and_grads(params, X, Y)  # NumPy broadcasts: no error
    assert grads["b1"].shape != params["b1"].shape
    with pytest.raises(BackpropInputError, match=r"parameter b1 has shape \(\), the kernel's"):
        kernel.loss_and_grads(params, X, Y)


BAD_MASKS = {  # what is wrong -> (the masks, the error naming it)
    "a column (m, 1)": ({"M2": np.ones((M, 1))},
                        r"mask M2 has shape \(6, 1\); for a batch of 6 it must have shape "
                        r"\(6, 5\) \(the shape of its layer's input\)"),
    "a row (n,)": ({"M2": np.ones(5)}, r"mask M2 has shape \(5,\);.*\(6, 5\)"),
    "(1, n)": ({"M2": np.ones((1, 5))}, r"mask M2 has shape \(1, 5\);.*\(6, 5\)"),
    "transposed": ({"M2": np.ones((5, M))}, r"mask M2 has shape \(5, 6\);.*\(6, 5\)"),
    "a scalar": ({"M2": 1.0}, r"mask M2 has shape \(\);.*\(6, 5\)"),
    "missing": ({}, r"masks has no M2; the masks of .* are M2"),
    "misspelt": ({"m2": np.ones((M, 5))}, r"masks has no M2"),
    "extra": ({"M2": np.ones((M, 5)), "M3": np.ones((M, 5))}, r"masks has M3; the masks .* M2"),
    "scaled by 1/keep": ({"M2": np.full((M, 5), 1 / KEEP)},
                         r"mask M2\[0, 0\] is 1.33.*holds 1 \(kept\) and 0 \(dropped\) only"),
    "a value in between": ({"M2": np.where(np.eye(M, 5), 0.5, 1.0)}, r"mask M2\[0, 0\] is 0.5"),
    "not a dict": (np.ones((M, 5)), "masks must be a dict of arrays by name, got ndarray"),
}  # fmt: skip


@pytest.mark.parametrize("masks, message", BAD_MASKS.values(), ids=list(BAD_MASKS))
def test_a_wrong_mask_is_refused_by_every_function(kernels, masks, message):
    kernel = kernels["dropout"]
    params, X, Y, _ = _call(kernel)
    error = TypeError if isinstance(masks, np.ndarray) else BackpropInputError
    for call in (
        lambda: kernel.loss_and_grads(params, X, Y, masks=masks),
        lambda: kernel.loss_and_grads(params, X, Y, masks),  # by position too
        lambda: kernel.loss(params, X, Y, masks=masks),
        lambda: kernel.forward(params, X, masks=masks),
        lambda: kernel.forward(params, X, masks),
    ):
        with pytest.raises(error, match=message):
            call()


def test_a_column_mask_would_have_been_used_silently_and_is_refused(kernels):
    """The worst failure: an (m, 1) mask broadcasts over the layer, and the module's own
    function returns gradients (of another network: one mask entry per example) without a
    word. They differ from autodiff's with the mask drawn for the layer; the kernel refuses."""
    kernel = kernels["dropout"]
    params, X, Y, masks = _call(kernel, seed=2)
    column = {"M2": masks["M2"][:, :1]}
    _, silent = kernel.module.loss_and_grads(params, X, Y, masks=column)
    _, ref = _jax_grads(_dropout_cost, params, X, Y, masks)
    assert not np.allclose(silent["W1"], ref["W1"])
    with pytest.raises(BackpropInputError, match=r"mask M2 has shape \(6, 1\)"):
        kernel.loss_and_grads(params, X, Y, masks=column)


def test_masks_of_bools_or_integers_are_keep_masks_too(kernels):
    kernel = kernels["dropout"]
    params, X, Y, masks = _call(kernel, seed=3)
    J, grads = kernel.loss_and_grads(params, X, Y, masks=masks)
    for same in ({"M2": masks["M2"] == 1}, {"M2": masks["M2"].astype(np.int64)}):
        J2, grads2 = kernel.loss_and_grads(params, X, Y, masks=same)
        assert J2 == J
        for name in grads:
            np.testing.assert_array_equal(grads2[name], grads[name])


@pytest.mark.parametrize("name", ["mlp", "matrix_expr"])
def test_masks_for_a_model_without_dropout_are_refused(kernels, name):
    params, X, Y, masks = _call(kernels[name])
    with pytest.raises(BackpropInputError, match="has no dropout layer: its kernel takes no masks"):
        kernels[name].loss_and_grads(params, X, Y, masks=masks)


NOT_FINITE = [  # NaN reaches the cost through any layer; an infinity through relu and the loss
    *((name, "X", np.nan) for name in MODELS),
    *((name, "Y", np.inf) for name in MODELS),
    ("dropout", "X", -np.inf),
]


@pytest.mark.parametrize("name, which, bad", NOT_FINITE)
def test_data_that_is_not_finite_is_named(kernels, name, which, bad):
    """Seen in the cost or output the call returns (a scan of X before each call would
    cost as much as a logistic regression's whole pass), then named entry by entry."""
    kernel = kernels[name]
    params, X, Y, _ = _call(kernel)
    data = {"X": X, "Y": Y}
    data[which][2, 1] = bad
    with np.errstate(all="ignore"):  # the kernel computes with it, then the check names it
        with pytest.raises(BackpropInputError, match=rf"{which}\[2, 1\] is {bad}: the data"):
            kernel.loss_and_grads(params, data["X"], data["Y"])
        if which == "X":
            with pytest.raises(BackpropInputError, match=rf"X\[2, 1\] is {bad}"):
                kernel.forward(params, data["X"])


def test_a_parameter_that_is_not_finite_passes_through():
    """Only what is surely wrong is refused: a NaN weight gives a NaN cost, as it is (the
    gradient checker and verify name such parameters)."""
    kernel = codegen(MODELS["mlp"][0]().derive())
    params, X, Y, _ = _call(kernel)
    params["W1"][0, 0] = np.nan
    with np.errstate(all="ignore"):
        assert np.isnan(kernel.loss(params, X, Y))


def test_a_kernel_file_checks_its_parameters_against_its_params(kernels, tmp_path):
    kernel = Kernel.from_file(kernels["mlp"].save(tmp_path / "mlp.py"))
    params, X, Y, _ = _call(kernel)
    params["b2"] = np.ones((1, 3))
    with pytest.raises(BackpropInputError, match=r"parameter b2 has shape \(1, 3\)"):
        kernel.loss_and_grads(params, X, Y)


def test_the_jax_kernel_refuses_the_same_mask():
    kernel = codegen(MODELS["dropout"][0]().derive(), target="jax")
    params, X, Y, masks = _call(kernel)
    with pytest.raises(BackpropInputError, match=r"mask M2 has shape \(6, 1\)"):
        kernel.loss_and_grads(params, X, Y, masks={"M2": masks["M2"][:, :1]})
