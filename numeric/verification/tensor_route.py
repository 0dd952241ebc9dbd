"""The JAX route for a tensor network: the same layers written with JAX's own primitives
(``lax.conv_general_dilated``, ``lax.reduce_window``, ``jax.nn.softmax``) and differentiated
by ``jax.value_and_grad``. It shares nothing with the generated kernel but the Model."""

from __future__ import annotations

import numpy as np

from derive.layers import Dense, Dropout
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention

_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: __import__("jax").nn.relu(z),
    "tanh": lambda z: __import__("jax").numpy.tanh(z),
    "sigmoid": lambda z: __import__("jax").nn.sigmoid(z),
    "softmax": lambda z: __import__("jax").nn.softmax(z, axis=-1),
}


def jax_cost(model):
    """``cost(params, X, Y, masks=None)`` in JAX for ``model`` (a TensorNetwork)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def layer_out(stage, A, params, masks):
        layer, k = stage.layer, stage.k
        if isinstance(layer, Conv2D):
            pads = layer.pads(stage.inputs)
            Z = lax.conv_general_dilated(
                A, params[f"W{k}"], (layer.stride, layer.stride), pads,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            ) + params[f"b{k}"]  # fmt: skip
            return _ACTIVATIONS[layer.activation](Z)
        if isinstance(layer, AvgPool2D):
            s = layer.size
            total = lax.reduce_window(A, 0.0, lax.add, (1, s, s, 1), (1, s, s, 1), "VALID")
            return total / (s * s)
        if isinstance(layer, MaxPool2D):
            s = layer.size
            return lax.reduce_window(A, -jnp.inf, lax.max, (1, s, s, 1), (1, s, s, 1), "VALID")
        if isinstance(layer, Flatten):
            return A.reshape(A.shape[0], -1)
        if isinstance(layer, MeanOverTime):
            return A.mean(axis=1)
        if isinstance(layer, SelfAttention):
            Q, K, V = (A @ params[f"W{p}{k}"] for p in ("q", "k", "v"))
            S = jnp.einsum("ntk,nuk->ntu", Q, K) / jnp.sqrt(layer.d_k)
            return jax.nn.softmax(S, axis=-1) @ V
        if isinstance(layer, Dense):
            return _ACTIVATIONS[layer.activation](A @ params[f"W{k}"] + params[f"b{k}"])
        if isinstance(layer, Dropout):
            mask = masks[f"M{k}"] if masks is not None else 1 - layer.rate
            return A * mask / (1 - layer.rate)
        raise TypeError(f"no JAX route for {layer!r}")

    def cost(params, X, Y, masks=None):
        A = X
        for stage in model.stages:
            A = layer_out(stage, A, params, masks)
        if model.loss == "cce":
            losses = -jnp.sum(Y * jnp.log(A), axis=-1)
        elif model.loss == "mse":
            losses = jnp.mean((A - Y) ** 2, axis=-1)
        elif model.loss == "sse":
            losses = jnp.sum((A - Y) ** 2, axis=-1)
        else:
            raise NotImplementedError(f"no JAX route for loss {model.loss!r}")
        return jnp.mean(losses)

    return cost


def jax_loss_and_grads(model, params, X, Y, masks=None, dtype="float64"):
    """JAX's value and gradient of the model's cost, as float64 NumPy arrays."""
    import jax

    with jax.enable_x64(dtype == "float64"):
        cast = {k: jax.numpy.asarray(np.asarray(v, dtype=dtype)) for k, v in params.items()}
        x, y = (jax.numpy.asarray(np.asarray(a, dtype=dtype)) for a in (X, Y))
        if masks is not None:
            masks = {k: jax.numpy.asarray(np.asarray(v, dtype=dtype)) for k, v in masks.items()}
        value, grads = jax.jit(jax.value_and_grad(jax_cost(model)))(cast, x, y, masks)
        return float(value), {k: np.asarray(v, dtype=np.float64) for k, v in grads.items()}


__all__ = ["jax_cost", "jax_loss_and_grads"]
