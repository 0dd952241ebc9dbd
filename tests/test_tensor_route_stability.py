"""The tensor networks' JAX route where a naive form fails: ``cce`` on a softmax that
underflows (logits 1e3 apart: log 0) is computed as a log softmax, and elu's gradient at
``z = 1e3`` is finite (its ``exp(z)`` branch, not taken, overflows: ``inf * 0``), with
elu'(0) = 1 as in the kernel and the dense route. Each against a float64 oracle written here
and central differences of it, and against the generated kernel."""

import jax
import numpy as np
import pytest
import sympy as sp

import derive
import numeric
from derive import registry
from derive.layers import Dense, Flatten
from numeric.verification import tensor_route
from numeric.verification.jax_route import jax_gradients
from numeric.verification.tensor_route import jax_loss_and_grads

SHAPE = (2, 2, 1)
M = 5


def _central(cost, params, h):
    """Central differences of ``cost(params)``, entry by entry."""
    grads = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[index] += h
            down[index] -= h
            grad[index] = (cost(params | {name: up}) - cost(params | {name: down})) / (2 * h)
        grads[name] = grad
    return grads


def _assert_finite_and_close(grads, want, rtol, atol):
    for name, grad in grads.items():
        assert np.all(np.isfinite(grad)), name
        np.testing.assert_allclose(grad, want[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.fixture
def clean_cache():
    """The route's printed functions printed afresh, and dropped afterwards: a test that
    replaces a step of the printing leaves no naive function in the cache."""
    tensor_route._printed.cache_clear()
    yield
    tensor_route._printed.cache_clear()


# -- cce on a softmax that underflows ---------------------------------------------------------

#: the logits' bias: close together, far apart (the softmax of the others underflows to 0, and
#: the one-hot targets below pick those classes), far apart at a huge offset
CCE_BIASES = {
    "near 0": [0.0, 0.5, -1.0],
    "1e3 apart": [1e3, 0.0, -1e3],
    "1e3 apart near 1e4": [1e4, 1e4 - 1e3, 1e4 + 1e3],
}


@pytest.fixture(scope="module")
def cce_net():
    return derive.network(SHAPE, [Flatten(), Dense(3, "softmax")], "cce")


def _cce_batch(bias, seed=0):
    rng = np.random.default_rng(seed)
    params = {"W2": rng.normal(size=(4, 3)), "b2": np.array(bias)}
    X = rng.normal(size=(M, *SHAPE))
    Y = np.eye(3)[[0, 1, 2, 1, 0]]
    return params, X, Y


def _cce_oracle(X, Y):
    """Mean cross-entropy of the softmax, float64, as a log softmax with each row's maximum
    subtracted: ``log softmax(z) = (z - max z) - log sum exp(z - max z)``."""

    def cost(params):
        Z = X.reshape(len(X), -1) @ params["W2"] + params["b2"]
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -(Y * log_softmax).sum(axis=1).mean()

    return cost


@pytest.mark.parametrize("bias", CCE_BIASES.values(), ids=CCE_BIASES.keys())
def test_cce_route_is_finite_and_right_where_the_softmax_underflows(cce_net, bias):
    params, X, Y = _cce_batch(bias)
    oracle = _cce_oracle(X, Y)
    J, grads = jax_loss_and_grads(cce_net, params, X, Y)
    assert J == pytest.approx(oracle(params), rel=1e-12)
    _assert_finite_and_close(grads, _central(oracle, params, 1e-4), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bias", CCE_BIASES.values(), ids=CCE_BIASES.keys())
def test_the_cce_kernel_writes_the_log_softmax_too(cce_net, bias):
    """The generated NumPy kernel already computes log A as a log softmax: it agrees with the
    oracle, and so with the route, at the same logits."""
    params, X, Y = _cce_batch(bias)
    oracle = _cce_oracle(X, Y)
    J, grads = numeric.codegen(cce_net).loss_and_grads(params, X, Y)
    assert J == pytest.approx(oracle(params), rel=1e-12)
    _assert_finite_and_close(grads, _central(oracle, params, 1e-4), rtol=1e-6, atol=1e-7)


def test_cce_route_in_float32_stays_finite_where_the_softmax_underflows(cce_net):
    params, X, Y = _cce_batch(CCE_BIASES["1e3 apart"])
    oracle = _cce_oracle(X, Y)
    J, grads = jax_loss_and_grads(cce_net, params, X, Y, dtype="float32")
    assert J == pytest.approx(oracle(params), rel=1e-5)
    _assert_finite_and_close(grads, _central(oracle, params, 1e-4), rtol=1e-4, atol=1e-5)


def test_cce_of_the_softmax_without_stabilize_is_not_finite_on_the_same_logits(
    cce_net, monkeypatch, clean_cache
):
    """The data above catches the naive form, ``-sum(Y log(softmax(Z)))``: log 0 = -inf."""
    params, X, Y = _cce_batch(CCE_BIASES["1e3 apart"])
    monkeypatch.setattr(tensor_route, "stabilize", lambda expr, definitions=None: expr)
    J, grads = jax_loss_and_grads(cce_net, params, X, Y)
    assert not np.isfinite(J)
    assert not all(np.all(np.isfinite(g)) for g in grads.values())


# -- elu far out on either side and at its kink -------------------------------------------------

#: pre-activations of the three elu units (the first layer's weights are 0): far out on the
#: linear side (exp(1e3) overflows in the branch not taken), at the kink, far out on the exp side
ELU_Z = np.array([1e3, 0.0, -1e3])


@pytest.fixture(scope="module")
def elu_net():
    return derive.network(SHAPE, [Flatten(), Dense(3, "elu"), Dense(2)], "mse")


def _elu_batch(seed=0):
    rng = np.random.default_rng(seed)
    W3 = rng.normal(size=(3, 2))
    W3[0] *= 1e-3  # the unit at 1e3 adds O(1) to the outputs
    params = {"W2": np.zeros((4, 3)), "b2": ELU_Z.copy(), "W3": W3, "b3": rng.normal(size=2)}
    return params, rng.normal(size=(M, *SHAPE)), rng.normal(size=(M, 2))


def _elu_oracle(X, Y):
    """The mean squared error of the network, float64, elu written with ``np.where`` on a
    clamped exp (its value: the registry's definition is checked against it below)."""

    def elu(z):
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))

    def cost(params):
        A = elu(X.reshape(len(X), -1) @ params["W2"] + params["b2"])
        return np.mean(np.mean((A @ params["W3"] + params["b3"] - Y) ** 2, axis=1))

    return cost


def test_elu_route_gradients_are_finite_and_right_far_out_and_at_the_kink(elu_net):
    """elu is C1 at 0 (both sides' slope is 1), so central differences see elu'(0) = 1 too."""
    params, X, Y = _elu_batch()
    oracle = _elu_oracle(X, Y)
    J, grads = jax_loss_and_grads(elu_net, params, X, Y)
    assert J == pytest.approx(oracle(params), rel=1e-12)
    _assert_finite_and_close(grads, _central(oracle, params, 1e-6), rtol=1e-6, atol=1e-8)


def test_elu_route_agrees_with_the_kernel_far_out_and_at_the_kink(elu_net):
    params, X, Y = _elu_batch(seed=1)
    with np.errstate(over="raise"):  # each branch clamped to its side: no exp(1e3) at all
        J, grads = numeric.codegen(elu_net).loss_and_grads(params, X, Y)
    want_J, want = jax_loss_and_grads(elu_net, params, X, Y)
    assert J == pytest.approx(want_J, rel=1e-12)
    _assert_finite_and_close(grads, want, rtol=1e-12, atol=1e-15)


def test_verify_passes_for_elu_units_far_out_and_at_the_kink(elu_net):
    params, X, Y = _elu_batch(seed=3)
    with np.errstate(over="ignore"):  # the kernel's and the closed form's untaken exp(1e3)
        result = numeric.verify(elu_net, params=params, data=(X, Y))
    assert result.ok, result.report()


def test_elu_slope_of_the_route_is_sympys_derivative_of_the_branch_taken():
    """elu'(0) = 1: at z = 0 the definition takes its exp(z) - 1 branch, whose derivative is
    exp(0) (JAX's jax.nn.elu too); a jnp.minimum clamp would give 1/2 there."""
    slope = sp.diff(registry.activation("elu").scalar, registry.x)
    want = [float(slope.subs(registry.x, z)) for z in ELU_Z]
    with jax.enable_x64(True):
        elu = tensor_route._activation("elu")
        got = jax.vmap(jax.grad(elu))(jax.numpy.asarray(ELU_Z))
        assert np.asarray(got).tolist() == want == [1.0, 1.0, 0.0]
        assert np.asarray(jax.vmap(jax.grad(jax.nn.elu))(ELU_Z)).tolist() == want


def test_elu_slope_at_the_kink_is_the_dense_routes(elu_net):
    """The dense models' JAX route on the same weights (a Dense network on the flattened
    input) gives the tensor route's gradient where every unit sits at z = 0."""
    rng = np.random.default_rng(2)
    params = {"W2": np.zeros((4, 3)), "b2": np.zeros(3), "W3": rng.normal(size=(3, 2)),
              "b3": rng.normal(size=2)}  # fmt: skip
    X, Y = rng.normal(size=(M, *SHAPE)), rng.normal(size=(M, 2))
    dense = derive.network(4, [Dense(3, "elu"), Dense(2)], "mse")
    renamed = {"W1": params["W2"], "b1": params["b2"], "W2": params["W3"], "b2": params["b3"]}
    dense_J, dense_grads = jax_gradients(dense, renamed, X.reshape(M, -1), Y)
    J, grads = jax_loss_and_grads(elu_net, params, X, Y)
    assert J == pytest.approx(dense_J, rel=1e-12)
    for name, dense_name in (("W2", "W1"), ("b2", "b1"), ("W3", "W2"), ("b3", "b2")):
        np.testing.assert_allclose(
            grads[name], np.reshape(dense_grads[dense_name], grads[name].shape), rtol=1e-12
        )


def test_elu_without_the_clamp_has_a_nan_gradient_at_1e3(elu_net, monkeypatch, clean_cache):
    """The data above catches the unclamped form: ``where(z > 0, z, expm1(z))`` at 1e3."""
    params, X, Y = _elu_batch()
    monkeypatch.setattr(tensor_route, "clamp_branches_as_where", lambda expr: expr)
    J, grads = jax_loss_and_grads(elu_net, params, X, Y)
    assert np.isfinite(J)
    assert np.isnan(grads["b2"][0]) and np.all(np.isfinite(grads["b2"][1:]))
