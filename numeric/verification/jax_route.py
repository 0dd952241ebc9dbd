"""The JAX route of a verification: autodiff of the model's *forward* definition.

:func:`forward_source` prints the forward graph of a :class:`derive.Model` (every node's
SymPy definition, in the stable form the kernels print, :mod:`numeric.generator.stable`) as one
``jax.numpy`` function ``cost(params, X, Y)``: one line per node, leaves read from
``params``, ``X`` and ``Y`` as the data contract lays them out. Nothing here looks at a
Derivation, so no derived gradient can leak into the reference: :func:`jax_gradients`
differentiates that function with ``jax.grad``, in float64, inside ``jax.enable_x64`` (a
thread-local context manager that restores the caller's setting on exit).

>>> import derive, numpy as np
>>> model = derive.logistic_regression(2, level="matrix")
>>> print(forward_source(model))  # doctest: +ELLIPSIS
import jax
...
def cost(params, X, Y):
    \"\"\"Mean cost over the batch, from the forward graph of logreg:2 (matrix level).\"\"\"
    m = X.shape[0]
    w = params["w"]
    b = params["b"]
    Z = X @ w + b  # Z = X w + 1 b
    A = sigmoid(Z)  # A = 1/(1 + exp(-Z))
    J = ...
    return J
<BLANKLINE>
>>> J, grads = jax_gradients(model, {"w": np.zeros(2), "b": np.array(0.0)},
...                          np.ones((4, 2)), np.array([1.0, 0.0, 1.0, 1.0]))
>>> round(J, 6), grads["b"].tolist()
(0.693147, -0.25)
"""

from __future__ import annotations

import builtins
import keyword
import re
import weakref

import numpy as np
import sympy as sp

from numeric.generator.printers import EquationPrinter, JaxPrinter, elementwise_form
from numeric.generator.stable import clamp_branches_as_where, stabilize

#: Identifiers the printed function uses for itself.
_RESERVED = frozenset(
    {"jax", "jnp", "params", "X", "Y", "m", "cost", "sigmoid", "softplus", "u", "e", "masks"}
)


#: Why the stable helpers are JAX's own here, not the kernels' printed ones.
_HELPER_NOTE = "differentiable at 0 (exp(-|u|) forms are not, under autodiff)"


def _identifiers(model) -> dict[str, str]:
    """Node name -> Python identifier (unique; never a keyword, builtin or reserved name)."""
    taken, out = set(_RESERVED), {}
    for node in model.nodes:
        if model.level == "matrix" and node.role in ("input", "target"):
            out[node.name] = node.name  # X and Y are the arguments themselves
            continue
        ident = re.sub(r"\W", "_", node.name) or "t"
        if ident[0].isdigit():
            ident = f"_{ident}"
        while keyword.iskeyword(ident) or hasattr(builtins, ident) or ident in taken:
            ident += "_"
        taken.add(ident)
        out[node.name] = ident
    return out


def _leaf_code(model, node, ident: dict[str, str], inputs: list) -> str | None:
    """How a leaf is read from the arguments (None: it is an argument itself)."""
    if node.role == "param":
        if node.tensor is None:
            return f'params["{node.name}"]'
        array, index = node.tensor
        return f'params["{array}"][{", ".join(map(str, index))}]'
    if node.role == "mask":  # dropout: the mask given, or the identity (evaluation)
        return f'masks["{node.name}"] if masks is not None else {float(node.op.keep)!r}'
    if model.level == "matrix":
        return None
    array = "X" if node.role == "input" else "Y"
    if node.tensor is None:  # an input of an expression: the columns of X in order
        return f"X[:, {inputs.index(node)}]"
    if array == "Y" and model.real_target_vector:
        return "Y"
    return f"{array}[:, {node.tensor[1][0]}]"


def forward_source(model) -> str:
    """Python source of ``cost(params, X, Y)`` over ``jax.numpy``: the model's forward graph.

    Each node's definition is printed after :func:`numeric.generator.stable.stabilize` (a
    property of the printed code, as in the kernels); gradients are left to ``jax.grad``. The stable
    ``sigmoid`` and ``softplus`` are JAX's own: the kernels' forms, written with ``|u|`` and
    ``max(u, 0)``, are exact as values but autodiff takes their derivative at ``u = 0`` from
    the wrong pieces (softplus'(0) comes out 0, not 1/2).
    """
    ident = _identifiers(model)
    matrix = model.level == "matrix"
    dims = {k: sp.Integer(v) for k, v in model.dims.items()}
    ranks, shapes = {}, {}
    if matrix:
        for node in model.nodes:
            if node.array_shape is not None:
                ranks[node.name] = len(node.array_shape)
                shapes[ident[node.name]] = tuple(
                    sp.sympify(d).xreplace(dims) for d in node.array_shape
                )
    printer = JaxPrinter({"names": ident, "ranks": ranks, "shapes": shapes})
    equation = EquationPrinter()

    def prep(expr, rank=None):
        if isinstance(expr, sp.MatrixExpr):  # X w1 with a 0-d w1 (a chain) is X * w1
            elementwise = elementwise_form(expr, ranks, rank)
            if elementwise is None:
                return expr
            expr = elementwise
        return sp.sympify(expr).xreplace(dims)

    definitions = {
        node.symbol: prep(node.expr)
        for node in model.nodes
        if not node.is_leaf and node is not model.cost and not isinstance(node.expr, sp.MatrixExpr)
    }
    body = ["m = X.shape[0]"]
    if model.labels:
        body.append(f"Y = jnp.eye({model.n_outputs}, dtype=X.dtype)[Y]  # one-hot labels")
    inputs = model.inputs
    for node in model.nodes:
        if node.is_leaf:
            code = _leaf_code(model, node, ident, inputs)
            if code is not None:
                body.append(f"{ident[node.name]} = {code}")
            continue
        expr = prep(node.expr, ranks.get(node.name))
        if not isinstance(expr, sp.MatrixExpr):
            expr = clamp_branches_as_where(stabilize(expr, definitions))
        code = printer.doprint(expr)
        body.append(f"{ident[node.name]} = {code}  # {node.name} = {equation.doprint(node.expr)}")
    cost = ident[model.cost.name]
    if matrix:
        body.append(f"return {cost}")
    else:  # a scalar-level cost is one example's loss: average it over the batch
        body.append(f"return jnp.mean(jnp.broadcast_to({cost}, (m,)))")
    level = "matrix" if matrix else "scalar"
    masks = ", masks=None" if model.by_role("mask") else ""  # dropout keep masks
    lines = ["import jax", "import jax.numpy as jnp", ""]
    for helper in sorted(printer.helpers_used):
        lines.append(f"{helper} = jax.nn.{helper}  # {_HELPER_NOTE}")
    lines += [
        "",
        "",
        f"def cost(params, X, Y{masks}):",
        f'    """Mean cost over the batch, from the forward graph of {model.spec} '
        f'({level} level)."""',
    ]
    lines += [f"    {line}" for line in body]
    return "\n".join(lines) + "\n"


def forward_function(model):
    """The function :func:`forward_source` prints, loaded (``cost(params, X, Y)``)."""
    namespace: dict = {}
    source = forward_source(model)
    exec(compile(source, f"<jax forward of {model.spec}>", "exec"), namespace)
    return namespace["cost"]


#: model -> its compiled ``value_and_grad`` (compiling costs more than running)
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def jax_gradients(
    model, params, X, Y, dtype="float64", masks=None
) -> tuple[float, dict[str, np.ndarray]]:
    """``(cost, {name: gradient})`` by ``jax.value_and_grad`` of the forward graph.

    Computed in ``dtype`` (float64 by default; float32 measures how much rounding the same
    graph suffers in single precision): params and float data are cast to it, integer labels
    stay integers. The caller's JAX configuration is left as it was. Gradients come back as
    float64 NumPy arrays. ``masks`` are the dropout layers' keep masks (None: evaluation).
    """
    import jax
    import jax.numpy as jnp

    if model not in _COMPILED:
        _COMPILED[model] = jax.jit(jax.value_and_grad(forward_function(model)))
    value_and_grad = _COMPILED[model]
    dtype = np.dtype(dtype)
    with jax.enable_x64(True):
        p = {name: jnp.asarray(np.asarray(v, dtype=dtype)) for name, v in params.items()}
        x = jnp.asarray(np.asarray(X, dtype=dtype))
        y = np.asarray(Y)
        y = jnp.asarray(y if y.dtype.kind in "iub" else y.astype(dtype))
        if masks is not None:
            masks = {name: jnp.asarray(np.asarray(v, dtype=dtype)) for name, v in masks.items()}
        with np.errstate(all="ignore"):
            args = (p, x, y) if masks is None else (p, x, y, masks)
            value, grads = value_and_grad(*args)
            out = {name: np.asarray(g, dtype=np.float64) for name, g in grads.items()}
        return float(value), out


def jax_version() -> str:
    """The installed JAX version, without importing more of JAX than that."""
    try:
        from importlib.metadata import version

        return version("jax")
    except Exception:  # not installed as a distribution: ask the module
        import jax

        return jax.__version__


__all__ = ["forward_function", "forward_source", "jax_gradients", "jax_version"]
