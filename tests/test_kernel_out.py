"""``loss_and_grads(..., out=grads)``: a NumPy kernel writes its gradients into the caller's
arrays. The gradients must be the same numbers as a call without ``out`` (which the
four-route tests check against JAX and finite differences), every entry written, and the
arrays returned the caller's own."""

from __future__ import annotations

import numpy as np
import pytest

import derive
from derive.errors import BackpropInputError
from derive.layers import Dense, Dropout, LayerNorm, Residual
from numeric import codegen
from numeric.verification.samples import sample_data, sample_masks


def _models():
    return {
        "mlp": derive.mlp([5, 4, 3], "relu", "softmax", "cce"),
        "network": derive.network(
            5,
            [Residual(Dense(5, "tanh"), Dense(5)), LayerNorm(), Dropout(0.5), Dense(3, "sigmoid")],
            "bce",
            weight_decay=0.1,
        ),
        "matrix expression": derive.from_matrix_expr(
            "sum((tanh(X @ W + b) - Y)**2)/m + sum(W*W)",
            {"X": ("m", 5), "W": (5, 3), "b": (1, 3), "Y": ("m", 3)},
            params=["W", "b"],
        ),
        "logistic regression": derive.logistic_regression(5),
        "chain": derive.chain(3),
    }


@pytest.mark.parametrize("name", list(_models()))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_written_into_out_are_those_of_a_call_without_it(name, dtype):
    kernel = codegen(_models()[name].derive())
    model = kernel.derivation.model
    params = kernel.random_params(seed=1, dtype=dtype)
    X, Y = sample_data(model, 7, dtype, seed=3)
    masks = sample_masks(model, 7, dtype, seed=4)
    extra = {"masks": masks} if masks else {}
    loss, grads = kernel.loss_and_grads(params, X, Y, **extra)
    out = {n: np.full_like(p, np.nan) for n, p in params.items()}  # any entry left is nan
    loss_out, grads_out = kernel.loss_and_grads(params, X, Y, out=out, **extra)
    assert loss_out == loss
    for n in params:
        assert grads_out[n] is out[n], n
        np.testing.assert_array_equal(out[n], grads[n], err_msg=n)
    # the next step reuses the same arrays, with new numbers in them
    params = {n: p - 0.1 * g for n, p in params.items() for g in [grads[n]]}
    _, again = kernel.loss_and_grads(params, X, Y, **extra)
    _, again_out = kernel.loss_and_grads(params, X, Y, out=out, **extra)
    for n in params:
        assert again_out[n] is out[n]
        np.testing.assert_array_equal(out[n], again[n], err_msg=n)


def test_a_matrix_product_gradient_is_computed_in_the_callers_array():
    """No new array for dW: the product is written into out's (the point of out=)."""
    kernel = codegen(derive.mlp([4, 3, 2], "relu", "softmax", "cce").derive())
    assert 'dW1 = np.matmul(X.T, dZ1, out=grads_out.get("W1"))' in kernel.source
    assert 'db2 = np.matmul(ones, dZ2, out=grads_out.get("b2"))' in kernel.source


def _mlp_call():
    kernel = codegen(derive.mlp([4, 3, 2], "relu", "softmax", "cce").derive())
    params = kernel.random_params(seed=1)
    X, Y = sample_data(kernel.derivation.model, 5, "float64", seed=2)
    return kernel, params, X, Y


BAD_OUT = {  # what is wrong -> (change to a good out, the error it gets)
    "shape": (lambda out, p: out.update(W1=np.zeros((3, 4))),
              r"out\['W1'\] is a float64 array of shape \(3, 4\); the gradient of W1 is "
              r"float64 of shape \(4, 3\)"),
    "dtype": (lambda out, p: out.update(b2=np.zeros(2, np.float32)),
              r"out\['b2'\] is a float32 array .* float64 of shape \(2,\)"),
    "name": (lambda out, p: out.update(W9=np.zeros((4, 3))),
             r"out has W9, which is no parameter; the kernel's parameters are W1, b1, W2, b2"),
    "a parameter": (lambda out, p: out.update(W1=p["W1"]), r"out\['W1'\] shares memory with W1"),
    "another out": (lambda out, p: out.update(W2=out["W1"][:3, :2]),
                    r"out\['W1'\] shares memory with out\['W2'\]"),
}  # fmt: skip


@pytest.mark.parametrize("change, message", BAD_OUT.values(), ids=list(BAD_OUT))
def test_out_arrays_of_the_wrong_shape_dtype_or_memory_are_refused(change, message):
    """A dW written into W would corrupt the dZ Wᵀ that reads W next: a silently wrong
    gradient. Each bad out gets one error naming it, and nothing is computed."""
    kernel, params, X, Y = _mlp_call()
    out = {n: np.empty_like(p) for n, p in params.items()}
    change(out, params)
    before = {n: p.copy() for n, p in params.items()}
    with pytest.raises(BackpropInputError, match=message):
        kernel.loss_and_grads(params, X, Y, out=out)
    for n in params:
        np.testing.assert_array_equal(params[n], before[n])


def test_out_that_is_no_dict_or_a_read_only_array_is_refused():
    kernel, params, X, Y = _mlp_call()
    with pytest.raises(TypeError, match="out must be a dict of arrays by parameter name, got list"):
        kernel.loss_and_grads(params, X, Y, out=[])
    out = {n: np.empty_like(p) for n, p in params.items()}
    out["b1"].flags.writeable = False
    with pytest.raises(BackpropInputError, match=r"out\['b1'\] is read-only"):
        kernel.loss_and_grads(params, X, Y, out=out)


def test_out_may_hold_some_parameters_only():
    """The others come back as new arrays, as without out."""
    kernel, params, X, Y = _mlp_call()
    _, grads = kernel.loss_and_grads(params, X, Y)
    out = {"W1": np.empty_like(params["W1"])}
    _, written = kernel.loss_and_grads(params, X, Y, out=out)
    assert written["W1"] is out["W1"]
    for n in params:
        np.testing.assert_array_equal(written[n], grads[n], err_msg=n)


def test_out_is_checked_again_when_it_or_the_parameters_change_between_calls():
    """The check of out and the parameters is kept for the next call with the same arrays (a
    training loop's); any change to them is checked anew, and the data every call."""
    kernel, params, X, Y = _mlp_call()
    out = {n: np.empty_like(p) for n, p in params.items()}
    kernel.loss_and_grads(params, X, Y, out=out)
    out["W1"] = params["W1"][:]  # a view of W1, in the same dict
    with pytest.raises(BackpropInputError, match=r"out\['W1'\] shares memory with W1"):
        kernel.loss_and_grads(params, X, Y, out=out)
    out["W1"] = np.empty_like(params["W1"])
    kernel.loss_and_grads(params, X, Y, out=out)
    other = dict(params, W2=out["W2"])  # new parameters, one of them an out array
    with pytest.raises(BackpropInputError, match=r"out\['W2'\] shares memory with W2"):
        kernel.loss_and_grads(other, X, Y, out=out)
    kernel.loss_and_grads(params, X, Y, out=out)
    buffer = np.empty(28)  # W1's out array in its first 12 entries, X in entries 8-27
    out["W1"] = buffer[:12].reshape(4, 3)
    overlapping = buffer[8:].reshape(5, 4)
    overlapping[...] = X
    with pytest.raises(BackpropInputError, match=r"out\['W1'\] shares memory with X"):
        kernel.loss_and_grads(params, overlapping, Y, out=out)
    kernel.loss_and_grads(params, X, Y, out=out)  # the same out, with X of its own: fine


def test_out_for_integer_pixels_is_any_float_array():
    """uint8 X is computed in codegen's dtype (float32 here): out of that dtype is taken."""
    kernel = codegen(derive.mlp([4, 3, 2], "relu", "softmax", "cce").derive(), dtype="float32")
    params = kernel.random_params(seed=1, dtype="float32")
    X = np.arange(20, dtype=np.uint8).reshape(5, 4)
    Y = np.eye(2, dtype=np.float32)[[0, 1, 1, 0, 1]]
    _, grads = kernel.loss_and_grads(params, X, Y)
    out = {n: np.empty_like(p) for n, p in params.items()}
    _, written = kernel.loss_and_grads(params, X, Y, out=out)
    for n in params:
        np.testing.assert_array_equal(written[n], grads[n], err_msg=n)
    with pytest.raises(BackpropInputError, match=r"is a int64 array .* is a float array"):
        kernel.loss_and_grads(params, X, Y, out=dict(out, b1=np.zeros(3, np.int64)))
