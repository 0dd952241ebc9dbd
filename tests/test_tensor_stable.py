"""A tensor network's sigmoid output with binary cross-entropy stays finite where the
sigmoid rounds to 0 or 1: the kernel's cost is written in Z (softplus), as the dense kernels'."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from derive import network
from derive.layers import Conv2D, Dense, Flatten
from numeric.generator.tensor_kernel import tensor_kernel


def _logits_cost(params, X, Y):
    """JAX's own binary cross-entropy from logits, softplus(Z) - y Z: an independent route."""
    Z1 = jax.lax.conv_general_dilated(
        X, params["W1"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    A1 = jax.nn.sigmoid(Z1 + params["b1"]).reshape(X.shape[0], -1)
    Z3 = A1 @ params["W3"] + params["b3"]
    return jnp.mean(jnp.sum(jax.nn.softplus(Z3) - Y * Z3, axis=-1))


@pytest.mark.parametrize("target", ["numpy", "jax"])
@pytest.mark.parametrize("bias", [-60.0, 0.0, 60.0])  # ±60: the output sigmoid rounds to 0 / 1
def test_sigmoid_bce_kernel_is_finite_and_matches_jax_when_saturated(target, bias):
    net = network((4, 4, 1), [Conv2D(1, 2, "sigmoid"), Flatten(), Dense(1, "sigmoid")], "bce")
    rng = np.random.default_rng(1)
    params = {name: rng.normal(size=shape) for name, shape in net.param_shapes().items()}
    params["b3"] = np.array([bias])
    X = rng.normal(size=(5, 4, 4, 1))
    Y = np.array([[0.0], [1.0], [0.0], [1.0], [1.0]])
    with jax.enable_x64(True):  # float64 throughout, the JAX kernel too
        J, grads = tensor_kernel(net, target).loss_and_grads(params, X, Y)
        J_ref, grads_ref = jax.value_and_grad(_logits_cost)(
            {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(X), jnp.asarray(Y)
        )
        J_ref, grads_ref = float(J_ref), {k: np.asarray(v) for k, v in grads_ref.items()}
    assert np.isfinite(J)
    assert J == pytest.approx(J_ref, rel=1e-12, abs=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-9, atol=1e-12)
