"""The finite-difference engine: accuracy, honest error bars, kinks, complex step, batching.

Oracles are independent of the code under test: closed-form derivatives, and JAX autodiff
(float64 inside ``jax.enable_x64``) for a small network.
"""

import doctest
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numeric.gradcheck import finite_diff as fd
from numeric.gradcheck.evaluator import ComplexStepUnsupported

SETTINGS = settings(max_examples=40, deadline=None)


def test_docstring_examples_run():
    assert doctest.testmod(fd).failed == 0


@SETTINGS
@given(st.lists(st.floats(-3, 3), min_size=5, max_size=5), st.floats(1e-3, 0.5))
def test_richardson_is_exact_on_quartics(coefs, h):
    t = np.array([-h, -h / 2, h / 2, h])
    poly = np.polynomial.Polynomial(coefs)
    est = fd.stencil_estimate(poly(0.0), t, poly(t), 2.0**-52)
    assert abs(est.value - coefs[1]) <= 1e-9 * (1 + np.abs(coefs).sum())


@SETTINGS
@given(st.lists(st.floats(-3, 3), min_size=4, max_size=4), st.floats(1e-3, 0.5))
def test_one_sided_slopes_agree_on_cubics(coefs, h):
    t = np.array([-h, -h / 2, h / 2, h])
    poly = np.polynomial.Polynomial(coefs)
    assert not fd.stencil_estimate(poly(0.0), t, poly(t), 2.0**-52).kink


def test_error_bar_covers_a_kink_anywhere_in_the_stencil():
    # A slope jump at t0 inside the stencil leaves the Richardson value within 2 error
    # estimates of the true slope at 0, whether or not it is flagged as a kink.
    t = np.array([-1.0, -0.5, 0.5, 1.0])
    for t0 in np.linspace(-0.999, 0.999, 2001):
        est = fd.stencil_estimate(max(0.0, -t0), t, np.maximum(0.0, t - t0), 2.0**-52)
        true = 1.0 if t0 < 0 else 0.0
        assert est.kink or abs(est.value - true) <= 3 * est.error + 1e-12, t0
        assert abs(est.value - true) <= 2 * est.error + 1e-12, t0  # even when flagged


def test_relu_at_zero_is_a_kink_with_its_two_slopes():
    est = fd.partial_derivative(
        lambda p: float(np.maximum(p["z"], 0.0)), {"z": np.array(0.0)}, "z", ()
    )
    assert est.kink
    assert est.backward == pytest.approx(0.0, abs=1e-9)
    assert est.forward == pytest.approx(1.0, abs=1e-9)


def _net(p, X, xp):
    return xp.sum(xp.exp(0.3 * (xp.tanh(X @ p["W1"] + p["b1"]) @ p["W2"])) ** 2) / X.shape[0]


@pytest.fixture(scope="module")
def smooth_net():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 5))
    p = {"W1": rng.normal(size=(5, 4)), "b1": rng.normal(size=4), "W2": rng.normal(size=(4, 3))}
    with jax.enable_x64(True):
        g = jax.grad(lambda q: _net(q, jnp.asarray(X), jnp))(p)
        g = {k: np.asarray(v, dtype=np.float64) for k, v in g.items()}
    return X, p, g


def test_real_stencil_is_within_1e10_of_autodiff_in_float64(smooth_net):
    X, p, g = smooth_net
    num = fd.numeric_gradient(lambda q: float(_net(q, X, np)), p)
    for name in p:
        err = np.abs(num[name].value - g[name])
        assert err.max() <= 1e-10 * np.abs(g[name]).max(), name
        assert (err <= 3 * num[name].error).all(), name


def test_complex_step_is_exact_to_rounding(smooth_net):
    X, p, g = smooth_net
    ev = fd.Evaluator(lambda q: _net(q, X, np), p)
    for name in p:
        idx = np.arange(p[name].size)
        cs = fd.complex_partials(ev, name, idx)
        assert np.abs(cs - g[name].ravel()).max() <= 1e-14 * np.abs(g[name]).max()


def test_complex_step_garbage_is_not_adopted():
    # w * |w|^2 stays complex, but the complex step differentiates only the first factor.
    p = {"w": np.array([0.7, -1.3])}
    ev = fd.Evaluator(lambda q: np.sum(q["w"] * np.abs(q["w"]) ** 2), p)
    idx = np.arange(2)
    est = fd.entry_estimates(ev, "w", idx, ev.base())
    mixed = fd.adopt_complex(est, fd.complex_partials(ev, "w", idx), fd.eps_of(np.float64))
    assert not mixed.complex_step.any()
    np.testing.assert_allclose(mixed.value, 3 * p["w"] ** 2, rtol=1e-9)


@pytest.mark.parametrize(
    "loss",
    [
        lambda q: float(np.sum(q["w"] ** 2)),  # float() of a complex: ComplexWarning
        lambda q: np.sum(np.real(q["w"]) ** 2),  # drops the imaginary part
        lambda q: np.sum(np.asarray(q["w"], float)),  # casts
    ],
)
def test_losses_that_are_not_complex_safe_say_so(loss):
    ev = fd.Evaluator(loss, {"w": np.array([1.0, 2.0])})
    with pytest.raises(ComplexStepUnsupported):
        fd.complex_partials(ev, "w", np.arange(2))


def test_vectorized_blocks_give_the_same_losses_in_fewer_calls():
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    loop = fd.Evaluator(
        lambda q: float(q["w"] @ A @ q["w"] + q["c"]), {"w": np.ones(2), "c": np.array(0.5)}
    )
    batch = fd.Evaluator(
        lambda q: np.einsum("ki,ij,kj->k", q["w"], A, q["w"]) + q["c"], loop.params, vectorized=True
    )
    idx, vals = np.array([0, 1, 0]), np.array([3.0, -1.0, 0.25])
    np.testing.assert_allclose(batch.at_entries("w", idx, vals), loop.at_entries("w", idx, vals))
    assert (loop.calls, batch.calls) == (3, 1)


def test_vectorized_loss_of_wrong_shape_is_a_clear_error():
    ev = fd.Evaluator(lambda q: float(np.sum(q["w"])), {"w": np.ones(2)}, vectorized=True)
    with pytest.raises(ValueError, match="must return 2 losses"):
        ev.at_entries("w", np.array([0, 1]), np.array([1.0, 2.0]))


@SETTINGS
@given(st.floats(-1e6, 1e6), st.floats(1e-12, 1.0), st.sampled_from([np.float64, np.float32]))
def test_shifted_reports_the_offset_actually_applied(x, h, dtype):
    x = np.asarray([x], dtype=dtype)
    point, offset = fd.shifted(x, np.array([h]))
    exact = Fraction(float(point[0])) - Fraction(float(x[0]))
    assert abs(Fraction(float(offset[0])) - exact) <= abs(exact) * Fraction(2.0**-52)


def test_float32_error_bar_covers_the_float32_noise():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 6)).astype(np.float32)
    w = rng.normal(size=6).astype(np.float32)
    loss = lambda q: np.mean(np.log1p(np.exp(X @ q["w"])), dtype=np.float32)  # noqa: E731
    num = fd.numeric_gradient(loss, {"w": w})["w"]
    z = X.astype(np.float64) @ w.astype(np.float64)
    exact = X.astype(np.float64).T @ (1 / (1 + np.exp(-z))) / len(z)
    assert (np.abs(num.value - exact) <= 3 * num.error).all()
    assert not num.kink.any()


@SETTINGS
@given(st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_quadratic_form_gradient_is_Aw_plus_b(n, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    b = rng.normal(size=n)
    w = rng.normal(size=n)
    num = fd.numeric_gradient(lambda q: float(0.5 * q["w"] @ A @ q["w"] + b @ q["w"]), {"w": w})
    exact = 0.5 * (A + A.T) @ w + b
    assert np.abs(num["w"].value - exact).max() <= 1e-9 * (1 + np.abs(exact).max())
