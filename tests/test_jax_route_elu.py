"""The dense JAX route at elu's far ends and kink: ``jnp.where`` computes both branches, so
an unclamped ``exp(z)`` at z = 1e3 is inf and its gradient ``inf * 0`` NaN, which made
``verify`` report a correct kernel as a mismatch."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import derive
import numeric
from numeric.verification.jax_route import jax_gradients


def _elu_unit(z: float):
    """One elu unit with pre-activation z for a single example x = 1 (w = z, b = 0)."""
    model = derive.mlp([1, 1, 1], "elu", "linear", "mse")
    params = {"W1": np.array([[z]]), "b1": np.zeros(1), "W2": np.ones((1, 1)), "b2": np.zeros(1)}
    return model, params, np.ones((1, 1)), np.zeros((1, 1))


@pytest.mark.parametrize("z", [1e3, 0.0, -1e3, 0.5, -0.5])
def test_the_route_gives_elu_its_own_derivative_everywhere(z):
    model, params, X, Y = _elu_unit(z)
    cost, grads = jax_gradients(model, params, X, Y)

    # independent oracle: jax.nn.elu (elu'(0) = 1), through the same two-layer cost
    def oracle(w1):
        a = jax.nn.elu(w1 * X[0, 0])
        return (a * params["W2"][0, 0] - Y[0, 0]) ** 2

    with jax.enable_x64(True):
        want = float(jax.grad(oracle)(np.float64(z)))
    assert np.isfinite(grads["W1"]).all()
    np.testing.assert_allclose(grads["W1"][0, 0], want, rtol=1e-12)


def test_verify_passes_a_correct_kernel_with_saturated_elu_units():
    model = derive.mlp([2, 3, 1], "elu", "linear", "mse")
    params = numeric.codegen(model.derive()).random_params(seed=0)
    params["W1"] = np.full((2, 3), 500.0)
    assert numeric.verify(model, params=params, data=(np.ones((4, 2)), np.zeros((4, 1)))).ok
