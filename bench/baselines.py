"""Baselines for ``bench.codegen_speed``: what a generated kernel is measured against.

* **hand-written NumPy backprop**, written the way a careful engineer writes it from the
  textbook (stable log-softmax / softplus loss, activations' derivatives from their outputs,
  no gradient for the data);
* **JAX** ``jit(value_and_grad(cost))`` of a forward pass written here with ``jax.numpy``;
* the **GEMM-only floor**: just the matrix products one forward + backward pass needs, on
  operands of the same shapes, dtype and memory layout (``A.T @ B`` on a transposed view, as
  the kernels do). Nothing else a pass does is free, so ``time / floor`` is the overhead.

Every function takes ``(params, X, Y)`` with the DESIGN.md shapes: MLP ``W1 (n0, n1)``,
``b1 (n1,)``, ..., ``X (m, n0)``, ``Y (m, nL)``; logistic regression ``w (n,)``, ``b`` 0-d,
``Y (m,)``. JAX is imported lazily (only the JAX baselines need it).
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------- NumPy by hand


def numpy_mlp_relu_softmax_ce(params, X, Y):
    """Two-layer ReLU MLP, softmax + cross-entropy on one-hot rows, by hand."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    m = X.shape[0]
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ W2 + b2
    shifted = Z2 - Z2.max(axis=1, keepdims=True)
    E = np.exp(shifted)
    S = E.sum(axis=1, keepdims=True)
    P = E / S
    loss = -np.sum(Y * (shifted - np.log(S))) / m
    dZ2 = (P - Y) / m
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return float(loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def numpy_logreg(params, X, Y):
    """Logistic regression with binary cross-entropy (loss from logits), by hand."""
    w, b = params["w"], params["b"]
    m = X.shape[0]
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))
    loss = np.mean(np.logaddexp(0, z) - Y * z)
    dz = (a - Y) / m
    return float(loss), {"w": X.T @ dz, "b": np.asarray(dz.sum())}


def numpy_mlp_tanh_mse(params, X, Y):
    """A deep tanh MLP (tanh on every layer, the output too), mean squared error, by hand."""
    depth = len(params) // 2
    m, n_out = Y.shape
    activations = [X]
    for layer in range(1, depth + 1):
        Z = activations[-1] @ params[f"W{layer}"] + params[f"b{layer}"]
        activations.append(np.tanh(Z))
    A = activations[-1]
    loss = np.mean((A - Y) ** 2)
    dA = 2 * (A - Y) / (m * n_out)
    grads = {}
    for layer in range(depth, 0, -1):
        A = activations[layer]
        dZ = dA * (1 - A * A)
        grads[f"W{layer}"] = activations[layer - 1].T @ dZ
        grads[f"b{layer}"] = dZ.sum(axis=0)
        if layer > 1:
            dA = dZ @ params[f"W{layer}"].T
    return float(loss), grads


# ---------------------------------------------------------------------------- JAX


def jax_value_and_grad(cost):
    """``jax.jit(jax.value_and_grad(cost))``, returning ``(loss, grads)``."""
    import jax

    return jax.jit(jax.value_and_grad(cost))


def jax_mlp_relu_softmax_ce(params, X, Y):
    import jax
    import jax.numpy as jnp

    A1 = jax.nn.relu(X @ params["W1"] + params["b1"])
    Z2 = A1 @ params["W2"] + params["b2"]
    return -jnp.sum(Y * jax.nn.log_softmax(Z2, axis=1)) / X.shape[0]


def jax_logreg(params, X, Y):
    import jax
    import jax.numpy as jnp

    z = X @ params["w"] + params["b"]
    return jnp.mean(jax.nn.softplus(z) - Y * z)


def jax_mlp_tanh_mse(params, X, Y):
    import jax.numpy as jnp

    A = X
    for layer in range(1, len(params) // 2 + 1):
        A = jnp.tanh(A @ params[f"W{layer}"] + params[f"b{layer}"])
    return jnp.mean((A - Y) ** 2)


# ---------------------------------------------------------------------------- GEMM floor


def mlp_floor(params, X, rng=None):
    """The matrix products of one MLP pass, with operands prepared once.

    Forward ``A_{l-1} @ W_l`` for every layer; backward ``A_{l-1}.T @ dZ_l`` for every layer
    and ``dZ_l @ W_l.T`` for every layer but the first (nobody needs the gradient of X).
    Returns a function of no arguments that runs just those products.
    """
    rng = rng or np.random.default_rng(0)
    depth = len(params) // 2
    dtype = X.dtype
    m = X.shape[0]
    acts = [X] + [
        rng.standard_normal((m, params[f"W{k}"].shape[1])).astype(dtype) for k in range(1, depth)
    ]
    deltas = [rng.standard_normal((m, params[f"W{k}"].shape[1])).astype(dtype)
              for k in range(1, depth + 1)]  # fmt: skip
    weights = [params[f"W{k}"] for k in range(1, depth + 1)]

    def run():
        for A, W in zip(acts, weights):
            A @ W
        for k in range(depth - 1, -1, -1):
            acts[k].T @ deltas[k]
            if k > 0:
                deltas[k] @ weights[k].T

    return run


def logreg_floor(params, X, rng=None):
    """``X @ w`` and ``X.T @ dz``: the two matrix-vector products of logistic regression."""
    rng = rng or np.random.default_rng(0)
    w = params["w"]
    dz = rng.standard_normal(X.shape[0]).astype(X.dtype)

    def run():
        X @ w
        X.T @ dz

    return run


NUMPY = {
    "mlp_relu_softmax_ce": numpy_mlp_relu_softmax_ce,
    "logreg": numpy_logreg,
    "mlp_tanh_mse": numpy_mlp_tanh_mse,
}
JAX = {
    "mlp_relu_softmax_ce": jax_mlp_relu_softmax_ce,
    "logreg": jax_logreg,
    "mlp_tanh_mse": jax_mlp_tanh_mse,
}
FLOORS = {"mlp_relu_softmax_ce": mlp_floor, "logreg": logreg_floor, "mlp_tanh_mse": mlp_floor}
