"""The JAX route for a tensor network: the same layers written with JAX's own primitives
(``lax.conv_general_dilated``, ``lax.reduce_window``, ``jax.nn.softmax``) and differentiated
by ``jax.value_and_grad``. It shares nothing with the generated kernel's layer code, only the
Model and the registry: an activation or loss JAX has no function for (elu, gelu's erf, huber,
the cross-entropies, a registered one) is the registry's SymPy definition printed to
``jax.numpy`` as the dense models' JAX route prints their graph, through
:func:`numeric.generator.stable.stabilize` first (``cce_logits``' log-sum-exp with each row's
maximum subtracted: finite at logits of 1e4). The loss reads the output layer's ``Z`` as well
as its ``A``, so that ``stabilize`` writes a log of the output in ``Z`` as the kernels do
(``cce``'s log softmax: finite where the softmax underflows to 0). A branch's exps see only its
own side (:func:`numeric.generator.stable.clamp_branches_as_where`): elu's gradient is finite
at 1e3."""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from derive import registry
from derive.layers import Dense, Dropout
from derive.ops import rowsum
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention
from numeric.generator.stable import clamp_branches_as_where, stabilize
from numeric.generator.tensor_printer import row_rule, row_total

_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: __import__("jax").nn.relu(z),
    "tanh": lambda z: __import__("jax").numpy.tanh(z),
    "sigmoid": lambda z: __import__("jax").nn.sigmoid(z),
    "softmax": lambda z: __import__("jax").nn.softmax(z, axis=-1),
}


def _activation(name: str):
    """JAX's own function for ``name`` where it has one, else the registry's definition."""
    if name in _ACTIVATIONS:
        return _ACTIVATIONS[name]
    return _printed((registry.x,), registry.activation(name).scalar)


def _loss(name: str, output: str, width: int):
    """``losses(Z, A, Y)`` per example, from the output layer's ``Z`` and ``A``: the
    registry's row definition, each ``Sum`` over the row's entries a sum over the last axis
    (kept, so an inner sum broadcasts), a log of ``A`` written in ``Z``."""
    Z, A, Y = sp.symbols("Z A Y", real=True)
    row = row_rule(registry.loss(name).definition, {"a": A, "y": Y}, width)
    function = _printed((Z, A, Y), row.replace(row_total, rowsum), ((A, _output(output, Z)),))
    return lambda z, a, y: function(z, a, y)[..., 0]


def _output(name: str, Z: sp.Symbol) -> sp.Expr:
    """The output activation's definition at ``Z`` (a softmax over each row of ``Z``)."""
    act = registry.activation(name)
    if act.elementwise:
        return act.scalar.xreplace({registry.x: Z})
    return row_rule(act.definition, {"z": Z}).replace(row_total, rowsum)


@cache
def _printed(args: tuple, expr: sp.Expr, definitions: tuple = ()):
    """``expr`` as a jax.numpy function, in the stable form the kernels print, given the
    ``(symbol, definition)`` pairs of the nodes it reads (cached by the expression: a name
    registered again with another definition is printed again)."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import erf

    stable = {
        "rowsum": lambda v: jnp.sum(v, axis=-1, keepdims=True),
        # the shift of a log-sum-exp: the value does not depend on it, so neither does the
        # gradient (jax.nn.logsumexp stops it too; autodiff would add terms that cancel)
        "rowmax": lambda v: jax.lax.stop_gradient(jnp.max(v, axis=-1, keepdims=True)),
        # JAX's own: differentiable at 0, as the dense route's (numeric.verification.jax_route)
        "sigmoid": jax.nn.sigmoid,
        "softplus": jax.nn.softplus,
        "erf": erf,  # jax.numpy has none: SymPy would fall back to math.erf, on arrays
    }
    # each branch's exps on its own side: jnp.where computes both, and elu's exp(1e3) is inf
    stable_expr = clamp_branches_as_where(stabilize(expr, dict(definitions)))
    return sp.lambdify(args, stable_expr, modules=[stable, "jax"])


def jax_cost(model):
    """``cost(params, X, Y, masks=None)`` in JAX for ``model`` (a TensorNetwork)."""
    import jax.numpy as jnp

    *hidden, last = model.stages  # the last is a Dense: the output
    activate = _activation(model.output)

    def cost(params, X, Y, masks=None):
        A = X
        for stage in hidden:
            A = _layer_out(stage.layer)(stage, A, params, masks)
        Z = A @ params[f"W{last.k}"] + params[f"b{last.k}"]
        A = activate(Z)
        if model.loss == "mse":
            losses = jnp.mean((A - Y) ** 2, axis=-1)
        elif model.loss == "sse":
            losses = jnp.sum((A - Y) ** 2, axis=-1)
        else:
            losses = _loss(model.loss, model.output, model.n_outputs)(Z, A, Y)
        return jnp.mean(losses)

    return cost


# -- the layers: each one's output from its input, with JAX's primitives ------------------------


def _conv(stage, A, params, masks):
    from jax import lax

    layer, k = stage.layer, stage.k
    Z = lax.conv_general_dilated(
        A, params[f"W{k}"], (layer.stride, layer.stride), layer.pads(stage.inputs),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    ) + params[f"b{k}"]  # fmt: skip
    return _activation(layer.activation)(Z)


def _average_pool(stage, A, params, masks):
    from jax import lax

    s = stage.layer.size
    return lax.reduce_window(A, 0.0, lax.add, (1, s, s, 1), (1, s, s, 1), "VALID") / (s * s)


def _max_pool(stage, A, params, masks):
    import jax.numpy as jnp
    from jax import lax

    s = stage.layer.size
    return lax.reduce_window(A, -jnp.inf, lax.max, (1, s, s, 1), (1, s, s, 1), "VALID")


def _flatten(stage, A, params, masks):
    return A.reshape(A.shape[0], -1)


def _mean_over_time(stage, A, params, masks):
    return A.mean(axis=1)


def _attention(stage, A, params, masks):
    import jax
    import jax.numpy as jnp

    k = stage.k
    Q, K, V = (A @ params[f"W{p}{k}"] for p in ("q", "k", "v"))
    S = jnp.einsum("ntk,nuk->ntu", Q, K) / jnp.sqrt(stage.layer.d_k)
    return jax.nn.softmax(S, axis=-1) @ V


def _dense(stage, A, params, masks):
    k = stage.k
    return _activation(stage.layer.activation)(A @ params[f"W{k}"] + params[f"b{k}"])


def _dropout(stage, A, params, masks):
    rate = stage.layer.rate
    mask = masks[f"M{stage.k}"] if masks is not None else 1 - rate
    return A * mask / (1 - rate)


#: each layer type's output, ``(stage, A, params, masks) -> A``: a new layer type is one entry
_LAYERS = {Conv2D: _conv, AvgPool2D: _average_pool, MaxPool2D: _max_pool, Flatten: _flatten,
           MeanOverTime: _mean_over_time, SelfAttention: _attention, Dense: _dense,
           Dropout: _dropout}  # fmt: skip


def _layer_out(layer):
    """The entry of ``layer``'s type in :data:`_LAYERS` (a subclass of a known layer is that
    layer; AvgPool2D is found before the MaxPool2D it subclasses), or one error naming the
    layer and the types the route knows."""
    for cls in type(layer).__mro__:
        if cls in _LAYERS:
            return _LAYERS[cls]
    known = ", ".join(sorted(cls.__name__ for cls in _LAYERS))
    raise TypeError(f"no JAX route for layer {layer!r}; known: {known}")


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
