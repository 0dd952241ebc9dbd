"""The pool and flatten forwards printed from their definitions (:mod:`derive.tensor_ops`)
against oracles written here: JAX's ``lax.reduce_window`` for the pools, an index loop for
flatten's row-major order; and ``backprop derive``'s text for them, parsed back."""

import itertools
import re

import jax
import numpy as np
import pytest
import sympy as sp
from jax import lax
from sympy.parsing.sympy_parser import parse_expr

from derive import tensor_ops as T
from derive.layers import Dense
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D
from derive.tensor_network import tensor_network
from numeric.generator.kernel import module_from_source
from numeric.generator.tensor_kernel import tensor_codegen
from reports.cli.tensor_plain import render
from reports.tensor_report import report_tex

jax.config.update("jax_enable_x64", True)


def _passed_through(layer, shape, target, dtype=np.float64):
    """The printed forward of ``layer`` on images of ``shape``, read back through a Flatten
    and a linear Dense with the identity for weights (exact: each output is 1·x + 0·...)."""
    head = [] if isinstance(layer, Flatten) else [Flatten()]
    net = tensor_network(shape, [layer, *head, Dense(1, "linear")], "mse")
    width = net.stages[-1].inputs[0]
    net = tensor_network(shape, [layer, *head, Dense(width, "linear")], "mse")
    kernel = module_from_source(tensor_codegen(net, target), "printed", "<printed>")
    k = net.stages[-1].k
    params = {f"W{k}": np.eye(width, dtype=dtype), f"b{k}": np.zeros(width, dtype=dtype)}

    def forward(X):
        return np.asarray(kernel.forward(params, X))

    return forward


def _images(shape, m=3, seed=0):
    return np.random.default_rng(seed).standard_normal((m, *shape))


def _reduce_window(X, size, op, init):
    """JAX's pool: windows of size × size at stride size, 'VALID' (a partial window dropped)."""
    window = (1, size, size, 1)
    return np.asarray(lax.reduce_window(X, init, op, window, window, "VALID"))


POOLS = [((4, 4, 2), 2), ((7, 5, 3), 2), ((6, 6, 1), 3), ((7, 8, 2), 3), ((3, 3, 2), 1)]


@pytest.mark.parametrize("target", ["numpy", "jax"])
@pytest.mark.parametrize("shape, size", POOLS)
def test_printed_max_pool_forward_is_jax_reduce_window_max(shape, size, target):
    forward = _passed_through(MaxPool2D(size), shape, target)
    X = _images(shape)
    want = _reduce_window(X, size, lax.max, -np.inf)
    np.testing.assert_array_equal(forward(X), want.reshape(len(X), -1))


@pytest.mark.parametrize("target", ["numpy", "jax"])
@pytest.mark.parametrize("shape, size", POOLS)
def test_printed_average_pool_forward_is_jax_reduce_window_mean(shape, size, target):
    forward = _passed_through(AvgPool2D(size), shape, target)
    X = _images(shape)
    want = _reduce_window(X, size, lax.add, 0.0) / size**2
    np.testing.assert_allclose(forward(X), want.reshape(len(X), -1), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("target", ["numpy", "jax"])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5, 1, 3), (1, 1, 1)])
def test_printed_flatten_forward_puts_each_entry_at_its_row_major_position(shape, target):
    forward = _passed_through(Flatten(), shape, target)
    X = _images(shape)
    H, W, C = shape
    want = np.empty((len(X), H * W * C))
    for n, h, w, c in itertools.product(range(len(X)), range(H), range(W), range(C)):
        want[n, (h * W + w) * C + c] = X[n, h, w, c]
    np.testing.assert_array_equal(forward(X), want)


def test_max_pool_ties_and_float32_as_jax():
    """A blank background (every window tied) and float32 inputs: the same maxima as JAX."""
    forward = _passed_through(MaxPool2D(2), (6, 6, 2), "numpy", np.float32)
    X = np.zeros((2, 6, 6, 2), dtype=np.float32)
    X[0, 1, 2, 1] = 3.5
    got = forward(X)
    assert got.dtype == np.float32
    want = _reduce_window(X, 2, lax.max, -np.inf).reshape(2, -1)
    np.testing.assert_array_equal(got, want)


def test_a_spoiled_printed_pool_is_caught_by_the_oracle():
    """The check can fail: the max pool's printed code with np.maximum turned into np.minimum,
    or the average's division dropped, disagrees with reduce_window."""
    shape, X = (4, 4, 2), _images((4, 4, 2))
    params = {"W3": np.eye(8), "b3": np.zeros(8)}
    for layer, old, new, op, init, scale in (
        (MaxPool2D(2), "np.maximum(", "np.minimum(", lax.max, -np.inf, 1),
        (AvgPool2D(2), ") / 4", ")", lax.add, 0.0, 4),
    ):
        source = tensor_codegen(tensor_network(shape, [layer, Flatten(), Dense(8)], "mse"))
        assert old in source
        want = (_reduce_window(X, 2, op, init) / scale).reshape(len(X), -1)
        kernel = module_from_source(source, "printed", "<printed>")
        np.testing.assert_allclose(kernel.forward(params, X), want, rtol=1e-14, atol=1e-15)
        spoiled = module_from_source(source.replace(old, new), "spoiled", "<spoiled>")
        assert not np.allclose(spoiled.forward(params, X), want)


def test_printed_forwards_read_like_code_a_person_writes():
    net = tensor_network((11, 11, 4), [MaxPool2D(2), AvgPool2D(1), Flatten(), Dense(3, "softmax")],
                         "cce")  # fmt: skip
    source = tensor_codegen(net)
    forward = source.split("def forward")[1].split("def loss")[0]
    (pooled,) = [ln.strip() for ln in forward.splitlines() if ln.strip().startswith("A1 = ")]
    assert pooled.startswith("A1 = np.maximum(")  # the window's max, one slice at a time
    assert "X[:, :10, :10].reshape(m, 5, 2, 5, 2, 4)" in forward  # Keras's crop, then blocks
    assert "A3 = A2.reshape(m, 100)" in forward
    assert not re.search(r"^\s*for ", forward, re.M)  # no loop in the forward pass
    assert source.count(".shape[") == source.count("m = X.shape[0]")  # sizes: numbers or m


# -- backprop derive's text, parsed back -----------------------------------------------------


def _block(out: str, k: int) -> str:
    match = re.search(rf"^Layer {k}, .*?(?=^Layer |\Z)", out, re.M | re.S)
    assert match, out
    return match[0]


def _header_sizes(block: str) -> dict:
    """``(H = 5, W = 5, C_in = 64)`` after a layer's name, as {symbol name: number}."""
    header = block.splitlines()[0]
    match = re.search(r"\(([^()]*=[^()]*)\)\s*$", header)
    if not match:
        return {}
    return {name.strip(): int(value) for name, value in
            (part.split("=") for part in match[1].split(", "))}  # fmt: skip


CONVNET = tensor_network((9, 9, 2), [Conv2D(3, 3, "relu"), MaxPool2D(2), Flatten(),
                                     Dense(5, "relu"), Dense(4, "softmax")], "cce")  # fmt: skip


def test_derive_prints_flatten_as_an_index_mapping_in_row_major_order():
    out = render(CONVNET)
    assert "KroneckerDelta" not in out and "delta" not in out.lower()
    block = _block(out, 3)
    sizes = _header_sizes(block)
    (definition,) = [ln.strip() for ln in block.splitlines() if ln.strip().startswith("A3[")]
    match = re.fullmatch(r"A3\[n, (.*)\] = A2\[n, h, w, c\]", definition)
    assert match, definition
    flat = parse_expr(match[1]).subs({sp.Symbol(k): v for k, v in sizes.items()})
    H, W, C = sizes["H"], sizes["W"], sizes["C_in"]
    assert (H, W, C) == CONVNET.stages[2].inputs
    positions = [
        int(flat.subs({sp.Symbol("h"): h, sp.Symbol("w"): w, sp.Symbol("c"): c}))
        for h, w, c in itertools.product(range(H), range(W), range(C))
    ]
    # NumPy's row-major order, as the kernels' reshape reads it
    assert positions == list(np.ravel_multi_index(np.indices((H, W, C)).reshape(3, -1), (H, W, C)))


def _sum_bounds(line: str) -> list[str]:
    return [b for part in re.findall(r"Σ_\{([^}]*)\}", line) for b in re.findall(r"<(\w+)", part)]


@pytest.mark.parametrize("k", [4, 5])
def test_derive_prints_a_dense_layers_widths_as_numbers(k):
    block = _block(render(CONVNET), k)
    stage = CONVNET.stages[k - 1]
    assert not _header_sizes(block)  # no size names to look up
    names = {str(s) for line in block.splitlines() for s in _symbols(line)}
    assert "d_k" not in names and "d" not in names
    lines = [ln.strip() for ln in block.splitlines()]
    (definition,) = [ln for ln in lines if ln.startswith(f"Z{k}[")]
    assert _sum_bounds(definition) == [str(stage.inputs[0])]  # Σ over the input's width
    (back,) = [ln for ln in lines if ln.startswith(f"dA{k - 1}[")]
    assert _sum_bounds(back) == [str(stage.layer.units)]  # Σ over the layer's units


def _symbols(line: str) -> set:
    """The names a printed rule line reads (its array names, indices and sizes)."""
    if " = " not in line:
        return set()
    text = re.sub(r"Σ_\{[^}]*\}|max_\{[^}]*\}", "", line.split(" = ", 1)[1])
    text = re.sub(r"\s*\[[^\]]*≤[^\]]*\]", "", text)
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))


def test_derive_prints_the_max_pool_as_the_max_over_its_window():
    """The printed definition, read back and evaluated at the layer's sizes on random values,
    is JAX's reduce_window max."""
    block = _block(render(CONVNET), 2)
    sizes = {sp.Symbol(k): v for k, v in _header_sizes(block).items()}
    lines = [ln.strip() for ln in block.splitlines()]
    (k,) = [k for k, ln in enumerate(lines) if ln.startswith("A2[n, h, w, c] = ")]
    match = re.fullmatch(r"= max_\{i<s, j<s\} A1\[(.*)\]", lines[k + 1])  # the same entry
    assert match, lines[k + 1]
    read = [parse_expr(ix).subs(sizes) for ix in match[1].split(", ")]
    X = _images(CONVNET.stages[1].inputs, m=1)
    ho, wo, channels = CONVNET.stages[1].outputs
    s = int(sizes[sp.Symbol("s")])
    got = np.empty((1, ho, wo, channels))
    for h, w, c in itertools.product(range(ho), range(wo), range(channels)):
        entries = []
        for i, j in itertools.product(range(s), range(s)):
            at = {sp.Symbol(n): v for n, v in zip("nhwcij", (0, h, w, c, i, j))}
            entries.append(X[tuple(int(ix.subs(at)) for ix in read)])
        got[0, h, w, c] = max(entries)
    np.testing.assert_array_equal(got, _reduce_window(X, s, lax.max, -np.inf))


def test_the_latex_report_writes_flatten_without_a_kronecker_delta():
    tex = report_tex(CONVNET)
    flatten = tex.split(r"\section{Flatten}")[1].split(r"\section")[0]
    assert "delta" not in flatten and "KroneckerDelta" not in flatten
    assert re.search(r"\{Z\}_\{n,[^=]*\}\s*=\s*\{X\}_\{n,h,w,c\}", flatten), flatten


# -- the definitions themselves --------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3])
def test_max_pool_is_pool_with_r_its_derivative_euler(size):
    """max is homogeneous of degree one: max(x) = Σ_l x_l ∂max/∂x_l away from ties, so the
    max pool is POOL with R = max_derivative (the identity max_pooling's gradient rests on)."""
    window = sp.symbols(f"x0:{size * size}", real=True)
    rng = np.random.default_rng(size)
    for _ in range(5):
        values = dict(zip(window, map(float, rng.permutation(size * size) - 2.5)))
        slopes = [d.xreplace(values) for d in T.max_derivative(size)]
        assert sum(v * sl for v, sl in zip(values.values(), slopes)) == max(values.values())


def test_average_pooling_rule_is_sympy_diff_of_the_written_out_average():
    h, s = 4, 2
    sizes = {T.m: 1, T.H: h, T.W: h, T.s: s, T.C_in: 1, T.H_out: 2, T.W_out: 2}
    X, dZ = T.X, T.dZ
    cost = sum(
        dZ[0, y, x, 0]
        * sum(X[0, s * y + i, s * x + j, 0] for i in range(s) for j in range(s))
        / s**2
        for y, x in itertools.product(range(2), range(2))
    )
    named = T.average_pooling().named["X"]
    for q, r in itertools.product(range(h), range(h)):
        at = {T.p: 0, T.q: q, T.r: r, T.v: 0}
        got = named.body.xreplace(sizes).xreplace(at)
        assert sp.expand(got - sp.diff(cost, X[0, q, r, 0])) == 0
