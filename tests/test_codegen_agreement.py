"""Generated kernels agree with the Derivation evaluated by SymPy, with JAX autodiff of a
forward pass written here, and with finite differences of their own loss: for every builder
and every (activation, output, loss) the registry allows, in float64 and float32, and for a
batch of one example.

Independent routes only: ``derive.evaluate`` runs the scalar-level Derivation by SymPy
substitution, example by example; the JAX forward below is written from the loss
definitions in DESIGN.md, not from anything codegen prints.
"""

from __future__ import annotations

import warnings
import zlib
from functools import cache

import numpy as np
import pytest

import derive
from derive import registry
from numeric import codegen

jax = pytest.importorskip("jax")
jnp = jax.numpy

HIDDEN = [name for name, act in registry.ACTIVATIONS.items() if not act.output_only]
KINKED = {"relu", "leaky_relu", "elu", "step", "sign"}  # keep |z| away from 0


def _valid(build) -> bool:
    try:
        build()
    except derive.BackpropInputError:
        return False
    return True


MLP_COMBOS = [
    (act, out, loss)
    for act in HIDDEN
    for out in registry.ACTIVATIONS
    for loss in registry.LOSSES
    if _valid(lambda act=act, out=out, loss=loss: derive.mlp([2, 2], act, out, loss))
]
CHAIN_COMBOS = [
    (act, loss)
    for act in HIDDEN
    for loss in registry.LOSSES
    if _valid(lambda act=act, loss=loss: derive.chain(2, act, loss))
]


# ---------------------------------------------------------------------------- JAX forward

_JAX_ACT = {
    "linear": lambda z: z,
    "sigmoid": lambda z: jax.nn.sigmoid(z),
    "tanh": lambda z: jnp.tanh(z),
    "relu": lambda z: jnp.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
    "elu": lambda z: jnp.where(z > 0, z, jnp.expm1(jnp.minimum(z, 0.0))),
    "softplus": lambda z: jax.nn.softplus(z),
    "step": lambda z: jnp.where(z > 0, 1.0, 0.0),
    "sign": lambda z: jnp.sign(z),
    "softmax": lambda z: jax.nn.softmax(z, axis=-1),
}


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_NP_ACT = {  # for choosing test points only (moderate values)
    "linear": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "softplus": lambda z: np.logaddexp(0, z),
    "step": lambda z: np.where(z > 0, 1.0, 0.0),
    "sign": np.sign,
    "softmax": _softmax,
}


def _jax_loss(name, A, Y, Z):
    """Per-example loss from DESIGN.md; ``Z`` is the output layer's pre-activation."""
    n = A.shape[-1]
    r = A - Y
    if name == "sse":
        return jnp.sum(r**2, axis=-1)
    if name == "half_sse":
        return jnp.sum(r**2, axis=-1) / 2
    if name == "mse":
        return jnp.sum(r**2, axis=-1) / n
    if name == "mae":
        return jnp.sum(jnp.abs(r), axis=-1) / n
    if name == "huber":
        return jnp.sum(jnp.where(jnp.abs(r) <= 1, r**2 / 2, jnp.abs(r) - 0.5), axis=-1) / n
    if name == "bce":  # needs a sigmoid output: log A and log(1 - A) from the logits
        terms = Y * jax.nn.log_sigmoid(Z) + (1 - Y) * jax.nn.log_sigmoid(-Z)
        return -jnp.sum(terms, axis=-1) / n
    if name == "bce_logits":
        return jnp.sum(jax.nn.softplus(A) - Y * A, axis=-1) / n
    if name in ("cce", "sparse_cce"):  # softmax output
        return -jnp.sum(Y * jax.nn.log_softmax(Z, axis=-1), axis=-1)
    if name == "cce_logits":
        return -jnp.sum(Y * jax.nn.log_softmax(A, axis=-1), axis=-1)
    raise KeyError(name)


def jax_mlp(params, X, Y, acts, loss):
    """Mean loss of an MLP: ``Z_l = A_{l-1} W_l + b_l``, ``A_l = g_l(Z_l)``."""
    A, Z = X, None
    for layer, act in enumerate(acts, start=1):
        Z = A @ params[f"W{layer}"] + params[f"b{layer}"]
        A = _JAX_ACT[act](Z)
    return jnp.mean(_jax_loss(loss, A, Y, Z)), A


def jax_chain(params, X, Y, acts, loss):
    """Mean loss of a chain (one neuron per layer): ``z_l = w_l a_{l-1} + b_l``, scalars."""
    A, Z = X, None
    for layer, act in enumerate(acts, start=1):
        Z = A * params[f"w{layer}"] + params[f"b{layer}"]
        A = _JAX_ACT[act](Z)
    return jnp.mean(_jax_loss(loss, A, Y, Z)), A


def jax_reference(params, X, Y, acts, loss, forward=jax_mlp):
    """Loss, gradients and output by JAX autodiff, in float64."""
    with jax.enable_x64(True):
        p = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
        X, Y = jnp.asarray(X, jnp.float64), jnp.asarray(Y, jnp.float64)
        (J, A), grads = jax.value_and_grad(forward, has_aux=True)(p, X, Y, acts, loss)
        return float(J), {k: np.asarray(v) for k, v in grads.items()}, np.asarray(A)


# ---------------------------------------------------------------------------- data


def targets(loss: str, rng, m: int, n: int):
    """(Y as the kernel takes it, Y as one-hot/real rows for the references)."""
    kind = registry.loss(loss).targets
    if kind == "labels":
        labels = rng.integers(0, n, m)
        return labels, np.eye(n)[labels]
    if kind == "one_hot":
        Y = np.eye(n)[rng.integers(0, n, m)]
        return Y, Y
    if kind == "binary":
        Y = rng.uniform(0, 1, (m, n))  # soft labels in [0, 1]
        return Y, Y
    Y = rng.standard_normal((m, n))
    return Y, Y


def sample(kernel, acts, loss, sizes, m, seed):
    """Parameters and data with every pre-activation and residual away from a kink."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        params = {k: 1.3 * v for k, v in kernel.random_params(seed=rng.integers(1 << 30)).items()}
        X = rng.standard_normal((m, sizes[0]))
        Y, Yh = targets(loss, rng, m, sizes[-1])
        Zs, A = [], X
        for layer, act in enumerate(acts, start=1):
            Z = A @ params[f"W{layer}"] + params[f"b{layer}"]
            Zs.append((act, Z))
            A = _NP_ACT[act](Z)
        near_kink = any(act in KINKED and np.min(np.abs(Z)) < 0.05 for act, Z in Zs)
        near_kink |= loss == "mae" and np.min(np.abs(A - Yh)) < 0.05
        near_kink |= loss == "huber" and np.min(np.abs(np.abs(A - Yh) - 1)) < 0.05
        if not near_kink:
            return params, X, Y, Yh
    raise AssertionError("no sample away from the kinks")


# ---------------------------------------------------------------------------- SymPy oracle


def sympy_oracle(derivation, params, X, Yh):
    """Loss and batch-mean gradients from ``derive.evaluate`` on a scalar-level Derivation,
    one example at a time (SymPy substitution only)."""
    model = derivation.model
    shapes = model.param_shapes()
    grads = {k: np.zeros(s) for k, s in shapes.items()}
    total, outputs, firsts = 0.0, [], []
    Yh = np.asarray(Yh, dtype=float).reshape(len(X), -1)
    for x, y in zip(X, Yh):
        values = {}
        for position, node in enumerate(model.inputs):
            column = node.tensor[1][0] if node.tensor else position
            values[node.name] = float(x[column])
        for node in model.targets:
            values[node.name] = float(y[node.tensor[1][0]])
        for node in model.params:
            array, index = node.tensor if node.tensor else (node.name, ())
            values[node.name] = float(params[array][index])
        env = derive.evaluate(derivation, values)
        total += float(env[model.cost.name])
        outputs.append([float(env[n.name]) for n in model.nodes if n.role == "output"])
        for node in model.params:
            array, index = node.tensor if node.tensor else (node.name, ())
            grads[array][index] += float(env.get("d" + node.name, 0))
        if not firsts:  # the first example alone: the reference for a batch of one
            firsts.append((total, {k: v.copy() for k, v in grads.items()}))
    m = len(X)
    sympy_oracle.outputs = np.array(outputs)  # the network output, one row per example
    sympy_oracle.first = firsts[0] if firsts else None
    return total / m, {k: v / m for k, v in grads.items()}


@cache
def derivations(kind: str, combo: tuple, sizes: tuple):
    if kind == "chain":
        act, loss = combo
        scalar = derive.chain(len(sizes) - 1, act, loss).derive()
        matrix = derive.chain(len(sizes) - 1, act, loss, level="matrix").derive()
        return scalar, matrix
    act, out, loss = combo
    scalar = derive.mlp(list(sizes), act, out, loss, level="scalar").derive()
    matrix = derive.mlp(list(sizes), act, out, loss, level="matrix").derive()
    return scalar, matrix


# ---------------------------------------------------------------------------- checks


def assert_close(got, want, rtol, atol, what=""):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def assert_gradients(kernel_result, reference, rtol=1e-9, atol=1e-11, what=""):
    J, grads = kernel_result
    J_ref, grads_ref = reference
    assert isinstance(J, float)
    assert_close(J, J_ref, rtol, atol, f"{what} loss")
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        assert_close(grads[name], grads_ref[name], rtol, atol, f"{what} d{name}")


def assert_finite_differences(kernel, params, X, Y, seed=0, directions=2):
    """``g · v`` against central differences of the kernel's own loss along ``v``."""
    _, grads = kernel.loss_and_grads(params, X, Y)
    rng = np.random.default_rng(seed)
    for _ in range(directions):
        v = {k: rng.standard_normal(p.shape) for k, p in params.items()}
        h = 1e-6
        plus = kernel.loss({k: params[k] + h * v[k] for k in params}, X, Y)
        minus = kernel.loss({k: params[k] - h * v[k] for k in params}, X, Y)
        fd = (plus - minus) / (2 * h)
        exact = sum(float(np.sum(grads[k] * v[k])) for k in params)
        assert abs(fd - exact) <= 1e-6 * (1 + abs(exact)), (fd, exact)


def assert_float32_agrees(kernel, params, X, Y, reference):
    """float32 in, float32 out, the float64 values up to float32 rounding."""
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    X32 = X.astype(np.float32)
    Y32 = Y.astype(np.float32) if np.issubdtype(np.asarray(Y).dtype, np.floating) else Y
    J, grads = kernel.loss_and_grads(p32, X32, Y32)
    assert isinstance(J, float)
    assert kernel.forward(p32, X32).dtype == np.float32
    for name, g in grads.items():
        assert g.dtype == np.float32 and g.shape == params[name].shape, name
    scale = max(1.0, max(float(np.max(np.abs(g))) for g in reference[1].values()))
    assert_gradients((J, grads), reference, rtol=2e-3, atol=2e-4 * scale, what="float32")


def assert_batch_of_one(kernel, params, X, Y, reference):
    J, grads = kernel.loss_and_grads(params, X[:1], Y[:1])
    assert_gradients((J, grads), reference, what="batch of 1")
    assert kernel.forward(params, X[:1]).shape[0] == 1


# ---------------------------------------------------------------------------- tests


def _mlp_case(act, out, loss):
    sizes = (2, 2, 2) if registry.loss(loss).min_outputs > 1 or out == "softmax" else (3, 2, 1)
    acts = (act, out)
    scalar, matrix = derivations("mlp", (act, out, loss), sizes)
    matrix_kernel = codegen(matrix)
    seed = zlib.crc32(str(acts + (loss,)).encode())
    params, X, Y, Yh = sample(matrix_kernel, acts, loss, sizes, m=2, seed=seed)
    return scalar, matrix_kernel, params, X, Y, Yh


@pytest.mark.parametrize("act,out,loss", MLP_COMBOS, ids=["-".join(c) for c in MLP_COMBOS])
def test_mlp_kernels_agree_with_sympy_and_finite_differences(act, out, loss):
    """Both levels' kernels against the scalar-level Derivation run by SymPy."""
    scalar, matrix_kernel, params, X, Y, Yh = _mlp_case(act, out, loss)
    oracle = sympy_oracle(scalar, params, X, Yh)
    outputs, first = sympy_oracle.outputs, sympy_oracle.first
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no invalid value, no log of 0
        for kernel in (matrix_kernel, codegen(scalar)):
            level = kernel.derivation.model.level
            result = kernel.loss_and_grads(params, X, Y)
            assert_gradients(result, oracle, what=f"{level} kernel vs SymPy")
            assert_close(kernel.forward(params, X), outputs, 1e-9, 1e-12, f"{level} forward")
            assert kernel.loss(params, X, Y) == pytest.approx(result[0], rel=1e-12)
        assert_finite_differences(matrix_kernel, params, X, Y)
        assert_float32_agrees(matrix_kernel, params, X, Y, oracle)
        assert_batch_of_one(matrix_kernel, params, X, Y, first)


# every output/loss head once, every hidden activation once: JAX compiles per shape and op
JAX_COMBOS = sorted(
    {c for c in MLP_COMBOS if c[0] == "tanh"}
    | {c for c in MLP_COMBOS if c[1:] in {("softmax", "cce"), ("linear", "mse")}}
)


@pytest.mark.parametrize("act,out,loss", JAX_COMBOS, ids=["-".join(c) for c in JAX_COMBOS])
def test_matrix_kernel_agrees_with_jax_autodiff(act, out, loss):
    """The matrix-level kernel against ``jax.value_and_grad`` of the forward pass above."""
    _, kernel, params, X, Y, Yh = _mlp_case(act, out, loss)
    J, grads, A = jax_reference(params, X, Yh, (act, out), loss)
    assert_gradients(kernel.loss_and_grads(params, X, Y), (J, grads), what="vs JAX")
    assert_close(kernel.forward(params, X), A, 1e-9, 1e-12, "forward")


def _chain_case(act, loss):
    """A 2-layer chain's derivations and a batch of 4 away from every kink."""
    scalar, matrix = derivations("chain", (act, loss), (1, 1, 1))
    rng = np.random.default_rng(7)
    for _ in range(200):
        params = {k: np.asarray(rng.normal(0, 1.2)) for k in scalar.model.param_shapes()}
        X = rng.standard_normal((4, 1))
        Y, Yh = targets(loss, rng, 4, 1)
        z1 = X * params["w1"] + params["b1"]
        z2 = _NP_ACT[act](z1) * params["w2"] + params["b2"]
        A = _NP_ACT[act](z2)
        ok = not (act in KINKED and min(np.min(np.abs(z1)), np.min(np.abs(z2))) < 0.05)
        ok &= not (loss == "mae" and np.min(np.abs(A - Yh)) < 0.05)
        ok &= not (loss == "huber" and np.min(np.abs(np.abs(A - Yh) - 1)) < 0.05)
        if ok:
            break
    return scalar, matrix, params, X, Y, Yh


@pytest.mark.parametrize("level", ["scalar", "matrix"])
@pytest.mark.parametrize("act,loss", CHAIN_COMBOS, ids=["-".join(c) for c in CHAIN_COMBOS])
def test_chain_kernels_agree_with_sympy_and_finite_differences(act, loss, level):
    """Both levels of a chain (the matrix level's 1×1 weights are 0-d arrays, as the
    contract says) against the scalar-level Derivation run by SymPy."""
    scalar, matrix, params, X, Y, Yh = _chain_case(act, loss)
    kernel = codegen(scalar if level == "scalar" else matrix)
    oracle = sympy_oracle(scalar, params, X, Yh)
    outputs = sympy_oracle.outputs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = kernel.loss_and_grads(params, X, Y)
        assert_gradients(result, oracle, what=f"{level} kernel vs SymPy")
        assert kernel.forward(params, X).shape == (4, 1)
        assert_close(kernel.forward(params, X), outputs, 1e-9, 1e-12, "forward")
        assert_finite_differences(kernel, params, X, Y)
        assert kernel.params == {"w1": (), "b1": (), "w2": (), "b2": ()}
        for name in kernel.params:
            assert result[1][name].shape == () and result[1][name].dtype == np.float64
        if level == "matrix":
            assert_float32_agrees(kernel, params, X, Y, oracle)
            assert_batch_of_one(kernel, params, X, Y, sympy_oracle.first)


@pytest.mark.parametrize("act,loss", CHAIN_COMBOS, ids=["-".join(c) for c in CHAIN_COMBOS])
def test_chain_matrix_kernel_agrees_with_the_scalar_kernel_and_jax_autodiff(act, loss):
    scalar, matrix, params, X, Y, Yh = _chain_case(act, loss)
    kernel = codegen(matrix)
    result = kernel.loss_and_grads(params, X, Y)
    assert_gradients(result, codegen(scalar).loss_and_grads(params, X, Y), what="vs scalar")
    J, grads, A = jax_reference(params, X, Yh, (act, act), loss, forward=jax_chain)
    assert_gradients(result, (J, grads), what="vs JAX")
    assert_close(kernel.forward(params, X), A, 1e-9, 1e-12, "forward")


@pytest.mark.parametrize("level", ["scalar", "matrix"])
def test_logistic_regression_kernels_agree_with_sympy(level):
    derivation = derive.logistic_regression(3, level=level).derive()
    kernel = codegen(derivation)
    scalar = derive.logistic_regression(3).derive()
    rng = np.random.default_rng(3)
    params = kernel.random_params(seed=4)
    X, Y = rng.standard_normal((5, 3)), rng.uniform(0, 1, 5)
    result = kernel.loss_and_grads(params, X, Y)
    assert_gradients(result, sympy_oracle(scalar, params, X, Y), what=level)
    assert kernel.forward(params, X).shape == (5,)
    assert result[1]["b"].shape == () and result[1]["w"].shape == (3,)
    assert_finite_differences(kernel, params, X, Y)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    J32, g32 = kernel.loss_and_grads(p32, X.astype(np.float32), Y.astype(np.float32))
    assert g32["b"].dtype == np.float32 and g32["w"].dtype == np.float32
    assert J32 == pytest.approx(result[0], rel=1e-5)


EXPRESSIONS = [
    ("J = 3*(a + b*c)", {}),
    ("L = (sigmoid(w*x + b) - y)**2", {"inputs": ["x", "y"]}),
    ("J = log(1 + exp(w*x)) - y*w*x", {"inputs": ["x", "y"]}),
    ("J = tanh(a*x)**2 + exp(-b*x**2) / (1 + c**2)", {"inputs": ["x"]}),
]


@pytest.mark.parametrize("text,roles", EXPRESSIONS, ids=[e for e, _ in EXPRESSIONS])
def test_expression_kernels_agree_with_sympy(text, roles):
    derivation = derive.from_expr(text, **roles).derive()
    kernel = codegen(derivation)
    model = derivation.model
    rng = np.random.default_rng(5)
    params = {k: np.asarray(rng.normal(0, 0.8)) for k in kernel.params}
    X = rng.standard_normal((6, len(model.inputs)))
    J, grads = kernel.loss_and_grads(params, X, None)
    assert_gradients((J, grads), sympy_oracle(derivation, params, X, np.zeros((6, 0))))
    per_row = kernel.forward(params, X)
    assert per_row.shape == (6,) and float(np.mean(per_row)) == pytest.approx(J, rel=1e-12)
    assert_finite_differences(kernel, params, X, None)
