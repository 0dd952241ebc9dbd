"""Baselines for ``bench.codegen_speed``: what a generated kernel is measured against.

* **hand-written NumPy backprop**, written the way a careful engineer writes it from the
  textbook (stable log-softmax / softplus loss, activations' derivatives from their outputs,
  no gradient for the data);
* **JAX** ``jit(value_and_grad(cost))`` of a forward pass written here with ``jax.numpy``;
* **torch** (CPU, eager autograd): the same forward pass written with ``torch``, then
  ``loss.backward()``, on tensors that share the NumPy arrays' memory;
* the **GEMM-only floor**: just the matrix products one forward + backward pass needs, on
  operands of the same shapes, dtype and memory layout (``A.T @ B`` on a transposed view, as
  the kernels do). Nothing else a pass does is free, so ``time / floor`` is the overhead.

Every function takes ``(params, X, Y)`` with the DESIGN.md shapes: MLP ``W1 (n0, n1)``,
``b1 (n1,)``, ..., ``X (m, n0)``, ``Y (m, nL)``; logistic regression ``w (n,)``, ``b`` 0-d,
``Y (m,)``; the residual MLP's layers are ``W1, b1, ...`` in layer order (each residual
block's two dense layers, then the output layer). JAX and torch
are imported lazily (only their baselines need them).
"""

from __future__ import annotations

import re

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


def _pairs(params):
    """``[(W name, b name), ...]`` of a network's dense layers in layer order, read from the
    names (``W3``, ``b3``: layer 3), not from the dict's order, which JAX sorts."""
    names = sorted(params, key=lambda name: (int(re.sub(r"\D", "", name)), name[0] == "b"))
    return list(zip(names[0::2], names[1::2]))


def numpy_resmlp(params, X, Y):
    """Residual MLP, by hand: blocks ``H + (relu(H Wa + ba) Wb + bb)``, then a softmax output
    with cross-entropy on one-hot rows (from the logits, as a careful engineer writes it)."""
    layers = _pairs(params)
    blocks, (Wo, bo) = layers[:-1], layers[-1]
    m = X.shape[0]
    H, saved = X, []
    for (Wa, ba), (Wb, bb) in zip(blocks[0::2], blocks[1::2]):
        Z = H @ params[Wa] + params[ba]
        A = np.maximum(Z, 0)
        saved.append((H, Z, A))
        H = H + (A @ params[Wb] + params[bb])
    Z = H @ params[Wo] + params[bo]
    shifted = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(shifted)
    S = E.sum(axis=1, keepdims=True)
    loss = -np.sum(Y * (shifted - np.log(S))) / m
    dZ = (E / S - Y) / m
    grads = {Wo: H.T @ dZ, bo: dZ.sum(axis=0)}
    dH = dZ @ params[Wo].T
    for k in range(len(saved) - 1, -1, -1):
        (Wa, ba), (Wb, bb) = blocks[2 * k], blocks[2 * k + 1]
        H_in, Z, A = saved[k]
        grads[Wb], grads[bb] = A.T @ dH, dH.sum(axis=0)
        dZ = (dH @ params[Wb].T) * (Z > 0)
        grads[Wa], grads[ba] = H_in.T @ dZ, dZ.sum(axis=0)
        if k > 0:  # the fork: the skip branch and the block's branch add up
            dH = dH + dZ @ params[Wa].T
    return float(loss), {name: grads[name] for name in params}


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


def jax_resmlp(params, X, Y):
    import jax
    import jax.numpy as jnp

    layers = _pairs(params)
    blocks, (Wo, bo) = layers[:-1], layers[-1]
    H = X
    for (Wa, ba), (Wb, bb) in zip(blocks[0::2], blocks[1::2]):
        H = H + jax.nn.relu(H @ params[Wa] + params[ba]) @ params[Wb] + params[bb]
    Z = H @ params[Wo] + params[bo]
    return -jnp.sum(Y * jax.nn.log_softmax(Z, axis=1)) / X.shape[0]


# ---------------------------------------------------------------------------- torch


def torch_value_and_grad(cost, params, X, Y):
    """A function of no arguments: ``cost`` and its gradients by torch autograd, on leaf
    tensors that share ``params``' memory, returning ``(loss, {name: gradient})``."""
    import torch

    leaves = {k: torch.from_numpy(v).requires_grad_() for k, v in params.items()}
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)

    def step():
        for leaf in leaves.values():
            leaf.grad = None
        loss = cost(leaves, tX, tY)
        loss.backward()
        return loss.item(), {k: leaf.grad for k, leaf in leaves.items()}

    return step


def torch_mlp_relu_softmax_ce(params, X, Y):
    import torch

    A1 = torch.relu(X @ params["W1"] + params["b1"])
    Z2 = A1 @ params["W2"] + params["b2"]
    return -torch.sum(Y * torch.log_softmax(Z2, dim=1)) / X.shape[0]


def torch_logreg(params, X, Y):
    import torch

    z = X @ params["w"] + params["b"]
    return torch.mean(torch.nn.functional.softplus(z) - Y * z)


def torch_mlp_tanh_mse(params, X, Y):
    import torch

    A = X
    for layer in range(1, len(params) // 2 + 1):
        A = torch.tanh(A @ params[f"W{layer}"] + params[f"b{layer}"])
    return torch.mean((A - Y) ** 2)


def torch_resmlp(params, X, Y):
    import torch

    layers = _pairs(params)
    blocks, (Wo, bo) = layers[:-1], layers[-1]
    H = X
    for (Wa, ba), (Wb, bb) in zip(blocks[0::2], blocks[1::2]):
        H = H + torch.relu(H @ params[Wa] + params[ba]) @ params[Wb] + params[bb]
    Z = H @ params[Wo] + params[bo]
    return -torch.sum(Y * torch.log_softmax(Z, dim=1)) / X.shape[0]


# ---------------------------------------------------------------------------- GEMM floor


def mlp_floor(params, X, rng=None):
    """The matrix products of one MLP pass: forward ``A_{l-1} @ W_l`` for every layer;
    backward ``A_{l-1}.T @ dZ_l`` for every layer and ``dZ_l @ W_l.T`` for every layer but
    the first (nobody needs the gradient of X). Returns ``(operands, products)``: arrays
    made once, and a function of them returning the products (NumPy or jax.numpy)."""
    rng = rng or np.random.default_rng(0)
    depth = len(params) // 2
    m = X.shape[0]
    widths = [params[f"W{k}"].shape[1] for k in range(1, depth + 1)]
    operands = {
        "acts": [X] + [_draw(rng, m, n, X.dtype) for n in widths[:-1]],
        "deltas": [_draw(rng, m, n, X.dtype) for n in widths],
        "weights": [params[f"W{k}"] for k in range(1, depth + 1)],
    }

    def products(ops):
        acts, deltas, weights = ops["acts"], ops["deltas"], ops["weights"]
        out = [A @ W for A, W in zip(acts, weights)]
        for k in range(depth - 1, -1, -1):
            out.append(acts[k].T @ deltas[k])
            if k > 0:
                out.append(deltas[k] @ weights[k].T)
        return out

    return operands, products


def logreg_floor(params, X, rng=None):
    """``X @ w`` and ``X.T @ dz``: the two matrix-vector products of logistic regression."""
    rng = rng or np.random.default_rng(0)
    operands = {"X": X, "w": params["w"], "dz": rng.standard_normal(len(X)).astype(X.dtype)}
    return operands, lambda ops: [ops["X"] @ ops["w"], ops["X"].T @ ops["dz"]]


def resmlp_floor(params, X, rng=None):
    """The matrix products of one residual-MLP pass: per block ``H Wa`` and ``A Wb`` forward,
    ``Aᵀ dH``, ``dH Wbᵀ``, ``Hᵀ dZ`` and ``dZ Waᵀ`` backward (not the last for the first
    block: nobody needs the gradient of X); the output layer's ``H Wo``, ``Hᵀ dZ``, ``dZ Woᵀ``.
    ``(operands, products)`` as :func:`mlp_floor`."""
    rng = rng or np.random.default_rng(0)
    layers = [params[w] for w, _ in _pairs(params)]
    blocks, Wo = layers[:-1], layers[-1]
    m, width = X.shape
    Was, Wbs = blocks[0::2], blocks[1::2]
    operands = {
        "Was": Was, "Wbs": Wbs, "Wo": Wo,
        "H": [X] + [_draw(rng, m, width, X.dtype) for _ in Was],  # each block's input, the last
        "A": [_draw(rng, m, Wa.shape[1], X.dtype) for Wa in Was],
        "dH": _draw(rng, m, width, X.dtype),
        "dZ": [_draw(rng, m, Wa.shape[1], X.dtype) for Wa in Was],
        "dZo": _draw(rng, m, Wo.shape[1], X.dtype),
    }  # fmt: skip

    def products(ops):
        H, A, dH, dZ, dZo = ops["H"], ops["A"], ops["dH"], ops["dZ"], ops["dZo"]
        out = []
        for k, (Wa, Wb) in enumerate(zip(ops["Was"], ops["Wbs"])):
            out += [H[k] @ Wa, A[k] @ Wb]
        out += [H[-1] @ ops["Wo"], H[-1].T @ dZo, dZo @ ops["Wo"].T]
        for k in range(len(A) - 1, -1, -1):
            out += [A[k].T @ dH, dH @ ops["Wbs"][k].T, H[k].T @ dZ[k]]
            if k > 0:
                out.append(dZ[k] @ ops["Was"][k].T)
        return out

    return operands, products


def _draw(rng, m, n, dtype):
    return rng.standard_normal((m, n)).astype(dtype)


def numpy_floor(kind, params, X):
    """The GEMM-only floor in NumPy: a function of no arguments running the products."""
    operands, products = FLOORS[kind](params, X)
    return lambda: products(operands)


def jax_floor(kind, params, X):
    """The same products under ``jax.jit`` (XLA's own matrix products, not OpenBLAS's),
    on the same operands: what JAX's ``value_and_grad`` could reach at best."""
    import jax

    operands, products = FLOORS[kind](params, X)
    on_device, compiled = jax.device_put(operands), jax.jit(products)
    return lambda: jax.block_until_ready(compiled(on_device))


NUMPY = {
    "mlp_relu_softmax_ce": numpy_mlp_relu_softmax_ce,
    "logreg": numpy_logreg,
    "mlp_tanh_mse": numpy_mlp_tanh_mse,
    "resmlp": numpy_resmlp,
}
JAX = {
    "mlp_relu_softmax_ce": jax_mlp_relu_softmax_ce,
    "logreg": jax_logreg,
    "mlp_tanh_mse": jax_mlp_tanh_mse,
    "resmlp": jax_resmlp,
}
TORCH = {
    "mlp_relu_softmax_ce": torch_mlp_relu_softmax_ce,
    "logreg": torch_logreg,
    "mlp_tanh_mse": torch_mlp_tanh_mse,
    "resmlp": torch_resmlp,
}
FLOORS = {
    "mlp_relu_softmax_ce": mlp_floor,
    "logreg": logreg_floor,
    "mlp_tanh_mse": mlp_floor,
    "resmlp": resmlp_floor,
}
