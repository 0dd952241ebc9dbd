"""erf in tensor networks (an exact GELU in a convolution, a Dense after attention): both
references of ``numeric.verify``, the JAX route and the closed form, evaluate it on arrays
(jax.scipy.special.erf, scipy.special.erf: SymPy's own fallback, math.erf, takes no array),
the check passes in float64 and float32, and a kernel computing tanh in place of erf fails it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numeric
from derive.layers import Dense
from derive.tensor_layers import Conv2D, Flatten, MeanOverTime, SelfAttention
from derive.tensor_network import tensor_network
from numeric.tensor_strategies import sample_batch
from numeric.verification.tensor_closed_form import closed_form_loss_and_grads
from numeric.verification.tensor_route import jax_loss_and_grads

from .test_erf_kernels import SCIPY_IMPORT, _gelu, gelu  # noqa: F401 (gelu: a fixture)


def convnet():
    return tensor_network((5, 5, 1), [Conv2D(2, 3, "gelu"), Flatten(), Dense(2)], "mse")


def attention_net():
    layers = [SelfAttention(2), MeanOverTime(), Dense(3, "gelu"), Dense(2, "softmax")]
    return tensor_network((4, 3), layers, "cce")


NETWORKS = {"convnet": convnet, "attention": attention_net}


def _convnet_cost(p, X, Y):
    """The convnet's cost in jax.numpy, written here: a convolution, GELU, a linear head."""
    layout = ("NHWC", "HWIO", "NHWC")
    Z = jax.lax.conv_general_dilated(X, p["W1"], (1, 1), "VALID", dimension_numbers=layout)
    A = _gelu(Z + p["b1"]).reshape(len(X), -1)
    return jnp.mean(jnp.mean((A @ p["W3"] + p["b3"] - Y) ** 2, axis=1))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("build", NETWORKS.values(), ids=NETWORKS.keys())
def test_verify_passes_for_a_tensor_network_using_erf(build, dtype):
    result = numeric.verify(build(), dtype, batch=3, seed=1)
    assert result.ok, result.report()


def test_both_references_of_the_gelu_convnet_are_jax_autodiff_of_a_cost_written_here():
    net = convnet()
    params, X, Y, _ = sample_batch(net, 3, seed=2)
    with jax.enable_x64(True):
        theta = {name: jnp.asarray(value) for name, value in params.items()}
        want_J, want = jax.value_and_grad(_convnet_cost)(theta, jnp.asarray(X), jnp.asarray(Y))
    for route in (jax_loss_and_grads, closed_form_loss_and_grads):
        J, grads = route(net, params, X, Y)
        assert J == pytest.approx(float(want_J), rel=1e-12)
        for name in params:
            np.testing.assert_allclose(grads[name], want[name], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{route.__name__}: {name}")  # fmt: skip


@pytest.mark.parametrize("build", NETWORKS.values(), ids=NETWORKS.keys())
def test_verify_catches_a_kernel_computing_tanh_for_erf(build):
    """tanh has erf's shape, signs and limits: only the values tell them apart."""
    net = build()
    source = numeric.codegen(net).source
    assert source.count(SCIPY_IMPORT) == 1
    wrong = source.replace(SCIPY_IMPORT, "from numpy import tanh as erf")
    kernel = numeric.Kernel(wrong, [], net.param_shapes(), "numpy")
    result = numeric.verify(net, batch=3, seed=1, kernel=kernel)
    assert not result.ok
    assert result.disagreeing("cost") == {"JAX", "closed form"}
    gelu_weights = "W1" if build is convnet else "W3"
    assert {"JAX", "closed form"} <= result.disagreeing(gelu_weights)
