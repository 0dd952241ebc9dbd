"""``loss_and_grads(..., out=grads)`` of a tensor network's NumPy kernel: the gradients are
written into the caller's arrays, a conv's ``dW`` (an im2col product) and a dense or attention
weight's straight from the matrix product. The numbers must be those of a call without
``out`` (which tests/test_tensor_kernels.py checks against JAX and finite differences), every
entry written, the arrays returned the caller's own; a bad ``out`` is refused; the JAX target
takes none; ``numeric.train`` passes one and trains as before."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import numeric
from derive.errors import BackpropInputError
from derive.layers import Dense, Dropout
from derive.optimizers import Adam
from derive.tensor_layers import Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention
from derive.tensor_network import tensor_network
from numeric import train
from numeric.tensor_strategies import sample_batch


def small_convnet(padding="valid"):
    """The seed course's convnet at a size a test runs in a moment (as test_tensor_closed_form)."""
    layers = [Conv2D(4, 3, "relu", padding=padding), MaxPool2D(2), Conv2D(6, 3, "relu"),
              MaxPool2D(2), Flatten(), Dropout(0.5), Dense(10, "softmax")]  # fmt: skip
    return tensor_network((12, 12, 1), layers, "cce")


def attention_net():
    """Two attention layers (the second's dA flows into the first), then a dense head."""
    layers = [SelfAttention(3), SelfAttention(2), MeanOverTime(), Dropout(0.5),
              Dense(3, "softmax")]  # fmt: skip
    return tensor_network((5, 4), layers, "cce")


NETS = {
    "convnet": small_convnet,
    "convnet-same": lambda: small_convnet("same"),
    "attention": attention_net,
}
_KERNELS: dict = {}


def _kernel(name: str):
    """The Kernel numeric.codegen makes (its calls checked), once per network."""
    if name not in _KERNELS:
        _KERNELS[name] = numeric.codegen(NETS[name]())
    return _KERNELS[name]


def _call(name: str, dtype, with_masks: bool, m: int = 3):
    kernel = _kernel(name)
    params, X, Y, masks = sample_batch(kernel.network, m, seed=4)
    params = {n: p.astype(dtype) for n, p in params.items()}
    masks = {n: v.astype(dtype) for n, v in masks.items()} if with_masks else None
    return kernel, params, X.astype(dtype), Y.astype(dtype), masks


@pytest.mark.parametrize("with_masks", [True, False], ids=["masks", "no-masks"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(NETS))
def test_gradients_written_into_out_are_those_of_a_call_without_it(name, dtype, with_masks):
    kernel, params, X, Y, masks = _call(name, dtype, with_masks)
    loss, grads = kernel.loss_and_grads(params, X, Y, masks=masks)
    assert all(np.isfinite(g).all() for g in grads.values())
    out = {n: np.full_like(p, np.nan) for n, p in params.items()}  # an entry left is nan
    loss_out, written = kernel.loss_and_grads(params, X, Y, masks=masks, out=out)
    assert loss_out == loss
    for n in params:
        assert written[n] is out[n], n
        np.testing.assert_array_equal(out[n], grads[n], err_msg=n)
    # the next step: new parameters, the same arrays, new numbers in them
    params = {n: p - dtype(0.1) * grads[n] for n, p in params.items()}
    _, again = kernel.loss_and_grads(params, X, Y, masks=masks)
    _, again_out = kernel.loss_and_grads(params, X, Y, masks=masks, out=out)
    for n in params:
        assert again_out[n] is out[n], n
        np.testing.assert_array_equal(out[n], again[n], err_msg=n)
        assert not np.array_equal(again[n], grads[n]), n  # the second call wrote anew


@pytest.mark.parametrize("name", list(NETS))
def test_the_products_are_computed_in_the_callers_arrays_not_copied_there(name, monkeypatch):
    """What out= is for: no new array for a weight's gradient. By the time the kernel
    returns, each weight's gradient already is the caller's memory (a bias's too: a sum
    with out=), so gradients_into has nothing left to copy."""
    kernel, params, X, Y, masks = _call(name, np.float64, True)
    seen = {}

    def spy(out, grads):
        seen.update({n: np.shares_memory(g, out[n]) for n, g in grads.items()})
        return original(out, grads)

    original = kernel.module.gradients_into
    monkeypatch.setattr(kernel.module, "gradients_into", spy)
    out = {n: np.empty_like(p) for n, p in params.items()}
    kernel.loss_and_grads(params, X, Y, masks=masks, out=out)
    assert seen == dict.fromkeys(params, True)


def test_the_printed_lines_write_each_product_into_out():
    source = _kernel("convnet").source
    lines = {line.split(" = ")[0].strip(): line for line in source.splitlines() if " = " in line}
    # a conv's im2col product into its array seen as a matrix, reshaped back to the kernel's
    # (kh, kw, c, o); the dense layer's product as it is
    for conv, shape in (("W1", "(3, 3, 1, 4)"), ("W3", "(3, 3, 4, 6)")):
        code = lines[f"d{conv}"].split(" = ", 1)[1].split("  #")[0]
        assert code.startswith("matmul_into(") and code.endswith(f'{conv}")).reshape{shape}')
    assert lines["dW7"].strip().startswith("dW7 = np.matmul(")
    assert 'out=grads_out.get("W7"))' in lines["dW7"]
    assert 'out=grads_out.get("b1"))' in lines["db1"]
    assert "def loss_and_grads(params, X, Y, masks=None, out=None):" in source
    assert "return J, gradients_into(grads_out, {" in source
    # attention's weights: products of (rows, d) matrices, (d, d_k) as they come
    attention = _kernel("attention").source
    for name in ("Wq1", "Wk1", "Wv1", "Wq2", "Wk2", "Wv2"):
        (line,) = [x for x in attention.splitlines() if x.strip().startswith(f"d{name} = ")]
        assert f"d{name} = np.matmul(" in line and f'out=grads_out.get("{name}"))  #' in line


WRITES = {  # a gradient's printed code -> the same written into out (None: left as it is)
    "A3.T @ dZ4": 'np.matmul(A3.T, dZ4, out=grads_out.get("W"))',
    "(X_cols.reshape(-1, 18).T @ dZ1.reshape(-1, 4)).reshape(3, 3, 2, 4)":
        'matmul_into(X_cols.reshape(-1, 18).T, dZ1.reshape(-1, 4), grads_out.get("W"))'
        ".reshape(3, 3, 2, 4)",
    "(A1.reshape(-1, 4).T @ dQ2.reshape(-1, 2)).reshape(4, 2)":
        'np.matmul(A1.reshape(-1, 4).T, dQ2.reshape(-1, 2), out=grads_out.get("W"))',
    "dZ1.sum(axis=(0, 1, 2))": 'dZ1.sum(axis=(0, 1, 2), out=grads_out.get("W"))',
    # its brackets are not one pair around a product: the product of two bracketed operands
    "(A) @ (B).reshape(3, 3, 2, 4)":
        'np.matmul((A), (B).reshape(3, 3, 2, 4), out=grads_out.get("W"))',
    # not a plain product or sum: computed as printed, copied into out on return
    "A3.T @ dZ4 / 4": None,
    "(A @ B).reshape(3, 3, 2, 4).transpose(1, 0, 2, 3)": None,
    "(A.reshape(-1, 18).T @ B.reshape(-1, 4)).reshape(9, 8)": None,  # not W's shape
    "(A.reshape(-1, 18).T @ B.reshape(-1, 4)).reshape(3, 3, 2, 4) / 4": None,
    "np.einsum('ij,jk->ik', A, B)": None,
}  # fmt: skip


@pytest.mark.parametrize("code", list(WRITES))
def test_a_gradient_is_written_into_out_only_where_its_code_is_a_plain_product(code):
    from numeric.generator.tensor_targets import TARGETS

    shape = (4, 2) if code.endswith("(4, 2)") else (3, 3, 2, 4)
    shape = (3,) if ".sum(" in code else shape
    want = WRITES[code] or code
    assert TARGETS["numpy"].into_out("W", shape, code) == want
    assert TARGETS["jax"].into_out("W", shape, code) == code


def test_out_arrays_whose_memory_is_not_row_major_get_the_gradients_by_copy():
    """A column-major out (a transposed array) has no matrix view for the conv's product:
    the product is a new array, copied into out on return. A kernel that skipped that copy
    leaves out's nan, which the comparison catches."""
    kernel, params, X, Y, masks = _call("convnet", np.float64, True)
    _, grads = kernel.loss_and_grads(params, X, Y, masks=masks)
    out = {n: np.full(p.shape[::-1], np.nan).T for n, p in params.items()}
    assert not out["W1"].flags.c_contiguous
    _, written = kernel.loss_and_grads(params, X, Y, masks=masks, out=out)
    for n in params:
        assert written[n] is out[n]
        np.testing.assert_array_equal(out[n], grads[n], err_msg=n)
    source = kernel.source.replace("np.copyto(out[name], grad)", "pass")
    assert source != kernel.source
    broken = numeric.Kernel(source, [], kernel.params, "numpy", network=kernel.network)
    out = {n: np.full(p.shape[::-1], np.nan).T for n, p in params.items()}
    _, written = broken.loss_and_grads(params, X, Y, masks=masks, out=out)
    with pytest.raises(AssertionError, match="W1"):
        np.testing.assert_array_equal(written["W1"], grads["W1"], err_msg="W1")


BAD_OUT = {  # what is wrong -> (change to a good out, the error it gets)
    "shape": (lambda out, p: out.update(W1=np.zeros((3, 3, 4, 1))),
              r"out\['W1'\] is a float64 array of shape \(3, 3, 4, 1\); the gradient of W1 is "
              r"float64 of shape \(3, 3, 1, 4\)"),
    "dtype": (lambda out, p: out.update(W3=out["W3"].astype(np.float32)),
              r"out\['W3'\] is a float32 array .* float64 of shape \(3, 3, 4, 6\)"),
    "name": (lambda out, p: out.update(W2=np.zeros(3)),
             r"out has W2, which is no parameter; the kernel's parameters are W1, b1, W3, b3, "
             r"W7, b7"),
    "a parameter": (lambda out, p: out.update(W3=p["W3"]), r"out\['W3'\] shares memory with W3"),
    "a view of a parameter": (lambda out, p: out.update(b7=p["W7"][0]),
                              r"out\['b7'\] shares memory with W7"),
}  # fmt: skip


@pytest.mark.parametrize("change, message", BAD_OUT.values(), ids=list(BAD_OUT))
def test_bad_out_arrays_are_refused_before_anything_is_computed(change, message):
    """A dW written into W would corrupt the dZ Wᵀ that reads W next: a silently wrong
    gradient. The Kernel checks out against the network's parameter shapes first."""
    kernel, params, X, Y, masks = _call("convnet", np.float64, True)
    out = {n: np.full_like(p, np.nan) for n, p in params.items()}
    change(out, params)

    def arrays():
        return {**params, **{f"out[{n!r}]": a for n, a in out.items()}}

    before = {n: a.copy() for n, a in arrays().items()}
    with pytest.raises(BackpropInputError, match=message):
        kernel.loss_and_grads(params, X, Y, masks=masks, out=out)
    for n, a in arrays().items():
        np.testing.assert_array_equal(a, before[n], err_msg=n)  # nothing written


def test_out_that_is_no_dict_is_refused():
    kernel, params, X, Y, masks = _call("attention", np.float64, True)
    with pytest.raises(TypeError, match="out must be a dict of arrays by parameter name"):
        kernel.loss_and_grads(params, X, Y, masks=masks, out=list(params.values()))


def test_the_jax_target_takes_no_out():
    """JAX arrays are immutable: its kernel has nothing to write into."""
    kernel = numeric.codegen(small_convnet(), target="jax")
    assert "out" not in inspect.signature(kernel.module.loss_and_grads).parameters
    assert "grads_out" not in kernel.source and "matmul_into" not in kernel.source


def test_train_hands_a_tensor_kernel_the_same_out_every_step_and_trains_as_without_it():
    """The loop's out= for a tensor network, as for a dense model: one dict of arrays for
    every step where freed memory is not kept (keep_memory=False, or off glibc), and the
    run step for step the one of a kernel that cannot take out."""
    kernel = _kernel("convnet")
    outs = []

    class Plain:  # the same kernel, with the signature of one that cannot write into out
        params, network = kernel.params, kernel.network
        forward = staticmethod(kernel.forward)

        def loss_and_grads(self, params, X, Y, masks=None):
            return kernel.loss_and_grads(params, X, Y, masks=masks)

    class Watching(Plain):
        def loss_and_grads(self, params, X, Y, masks=None, out=None):
            outs.append(out)
            return kernel.loss_and_grads(params, X, Y, masks=masks, out=out)

    rng = np.random.default_rng(0)
    X = rng.random((24, 12, 12, 1))
    Y = np.eye(10)[rng.integers(0, 10, 24)]
    options = dict(epochs=8, batch_size=8, seed=1, progress=False, keep_memory=False)
    runs = [train(k, kernel.random_params(seed=5), X, Y, Adam(lr=0.01), **options)
            for k in (Plain(), Watching())]  # fmt: skip
    assert len(outs) == 8 * 3 and all(out is outs[0] for out in outs)
    assert set(outs[0]) == set(kernel.params)
    for name, value in runs[0].params.items():
        np.testing.assert_array_equal(runs[1].params[name], value, err_msg=name)
    losses = runs[1].history.step_loss
    np.testing.assert_array_equal(losses, runs[0].history.step_loss)
    assert np.mean(losses[-3:]) < np.mean(losses[:3])  # it learns: 24 examples, 8 epochs
