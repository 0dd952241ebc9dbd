"""The checker never passes what it should fail: tolerances must be numbers >= 0, a passing
report says how small an error it could have missed, and an error above that is caught."""

import math

import numpy as np
import pytest

from numeric import check_gradients
from numeric.gradcheck import GradcheckInputError


def _quadratic(scale):
    def loss(p):
        return float(np.sum(scale * p["w"] ** 2))

    return loss, lambda p: {"w": 2 * scale * p["w"]}


@pytest.mark.parametrize("which", ["rtol", "atol"])
@pytest.mark.parametrize("value", [float("nan"), -1e-3, float("inf"), -0.0 - 1])
def test_a_tolerance_that_is_not_a_finite_number_at_least_zero_is_refused(which, value):
    loss, grad = _quadratic(1.0)
    wrong = lambda p: {"w": 7 * grad(p)["w"]}  # noqa: E731  (7x wrong: NaN used to pass it)
    with pytest.raises(GradcheckInputError, match=f"{which} must be a finite number >= 0"):
        check_gradients(loss, wrong, {"w": np.array([1.0, 2.0])}, **{which: value})


@pytest.mark.parametrize("value", ["1e-3", [1e-3], True])
def test_a_tolerance_of_the_wrong_type_says_what_to_pass(value):
    loss, grad = _quadratic(1.0)
    with pytest.raises(TypeError, match="rtol must be a number >= 0"):
        check_gradients(loss, grad, {"w": np.array([1.0])}, rtol=value)


def _float32_loss(p):
    w = p["w"].astype(np.float32)  # truly float32: float64 params are cast back
    return np.float32(1000) + np.sum(np.float32(1e-2) * w**2)


def _float32_grad(p, wrong_entry=None):
    g = (2e-2 * p["w"]).astype(np.float32)
    if wrong_entry is not None:
        g[wrong_entry] *= 1.01
    return {"w": g}


def test_a_float32_pass_admits_the_one_percent_error_it_missed():
    # small entries of a loss that computes in float32: finite differences cannot see 1 %
    params = {"w": np.linspace(0.1, 2.0, 6).astype(np.float32)}
    missed = check_gradients(
        _float32_loss, lambda p: _float32_grad(p, wrong_entry=0), params, complex_step=False
    )
    assert missed.ok  # what float32 allows; the report must then say so
    (w,) = missed.params
    assert w.blind_rel > 0.01
    assert f"could miss: an error < {w.blind_abs:.1e} in one entry" in missed.report()


@pytest.mark.parametrize("seed", range(5))
def test_an_error_above_the_stated_blind_spot_is_caught(seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 10.0, 8)
    loss, grad = _quadratic(scale)
    params = {"w": rng.normal(size=8)}
    passing = check_gradients(loss, grad, params)
    (w,) = passing.params
    assert passing.ok and 0 < w.blind_abs < math.inf
    entry = int(rng.integers(8))

    def planted(p):
        g = grad(p)["w"].copy()
        g[entry] += 2 * w.blind_abs
        return {"w": g}

    failing = check_gradients(loss, planted, params)
    assert not failing.ok
    assert [e.index for e in failing.failures] == [(entry,)]


def test_fast_mode_states_its_blind_spot_and_catches_an_error_above_it():
    rng = np.random.default_rng(3)
    params = {"W": rng.normal(size=(80, 80))}
    loss, grad = _quadratic(1.5)
    loss2 = lambda p: float(np.sum(1.5 * p["W"] ** 2))  # noqa: E731
    grad2 = lambda p: {"W": 3.0 * p["W"]}  # noqa: E731
    passing = check_gradients(loss2, grad2, params, mode="fast", seed=0)
    (W,) = passing.params
    assert passing.ok and 0 < W.blind_abs < math.inf

    def planted(p):
        g = grad2(p)["W"].copy()
        g[7, 11] += 4 * W.blind_abs
        return {"W": g}

    failing = check_gradients(loss2, planted, params, mode="fast", seed=0)
    assert not failing.ok and failing.failures[0].index == (7, 11)


@pytest.mark.parametrize("returned", ["0.5", None, {"loss": 1.0}])
def test_a_loss_that_returns_no_number_is_a_type_error_saying_what_to_return(returned):
    with pytest.raises(TypeError, match="loss_fn must return the loss as a real number"):
        check_gradients(lambda p: returned, lambda p: {"w": p["w"]}, {"w": np.ones(2)})


def test_the_repro_line_names_the_callers_functions_and_this_test():
    def my_loss(p):
        return float(np.sum(p["w"] ** 2))

    def my_grad(p):
        return {"w": 3 * p["w"]}  # wrong: 2 * w

    report = check_gradients(my_loss, my_grad, {"w": np.array([1.0, 2.0])}).report()
    here = "tests/test_gradcheck_hardening.py::" + (
        "test_the_repro_line_names_the_callers_functions_and_this_test"
    )
    assert (
        f"repro: assert_gradients(my_loss, my_grad, params, mode='exact')  # in pytest '{here}'"
        in report
    )
    assert "partial_derivative(my_loss, params, 'w', " in report
