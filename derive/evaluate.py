"""Evaluate a derivation at concrete values, with SymPy alone (no NumPy, no generated code).

This is the slow, obviously-correct route: matrix-level formulas are instantiated entry by
entry on explicit ``sympy.Matrix`` values, scalar-level ones by substitution. Tests use it as
an oracle independent of the kernel printers; reports use it for the worked numeric example.
"""

from __future__ import annotations

import sympy as sp

from .model import Derivation
from .ops import m as batch_symbol
from .ops import rowsum, total


def evaluate(derivation: Derivation, values: dict[str, object], batch: int = 1) -> dict:
    """Every forward value and every adjoint, by name (``"Z1"``, ``"dW1"``).

    ``values`` gives the leaves: at matrix level explicit matrices (``X`` as m×n0, a bias as
    1×n, a scalar as 1×1), at scalar level numbers for one example.

    >>> from derive import logistic_regression
    >>> d = logistic_regression(1).derive()
    >>> evaluate(d, {"x": 2, "w1": 0, "b": 0, "y": 1})["dw1"]
    -1
    """
    model = derivation.model
    if model.level == "scalar":
        return _evaluate_scalar(derivation, values)
    dims = {**model.dims, batch_symbol: batch}
    env = {
        name: sp.Matrix(value) if not isinstance(value, sp.MatrixBase) else value
        for name, value in values.items()
    }
    for node in model.nodes:
        if not node.is_leaf:
            env[node.name] = _matrix_value(node.expr, env, _shape(node.shape, dims), dims)
    for step in derivation.steps[1:]:
        env[step.adjoint.name] = _matrix_value(step.value, env, _shape(step.node.shape, dims), dims)
    return env


def _evaluate_scalar(derivation: Derivation, values: dict) -> dict:
    env = {sp.Symbol(k, real=True): sp.sympify(v) for k, v in values.items()}
    for node in derivation.model.nodes:
        if not node.is_leaf:
            env[node.symbol] = node.expr.xreplace(env).doit()
    for step in derivation.steps[1:]:
        env[step.adjoint] = step.value.xreplace(env).doit()
    return {symbol.name: value for symbol, value in env.items()}


def _shape(shape, dims) -> tuple[int, int]:
    """Concrete (rows, cols); the cost, a plain scalar, is 1×1."""
    return tuple(int(sp.sympify(d).xreplace(dims)) for d in shape) if shape else (1, 1)


def _matrix_value(expr, env, shape, dims) -> sp.Matrix:
    if isinstance(expr, sp.MatrixExpr):
        explicit = {s: sp.ImmutableMatrix(env[s.name]) for s in expr.atoms(sp.MatrixSymbol)}
        ones = {o: sp.ones(*_shape(o.shape, dims)) for o in expr.atoms(sp.OneMatrix)}
        return sp.Matrix(expr.xreplace(ones).xreplace(explicit).doit())
    return sp.Matrix(*shape, lambda r, c: _entry(expr, env, r, c, dims))


def _entry(expr, env, r, c, dims):
    """Entry (r, c) of an elementwise formula; a 1-column or 1-row operand broadcasts."""

    def reduce(call):
        inner = call.args[0]
        rows, cols = _operand_shape(inner, env)
        if isinstance(call, rowsum):
            return sp.Add(*[_entry(inner, env, r, k, dims) for k in range(cols)])
        return sp.Add(*[_entry(inner, env, i, k, dims) for i in range(rows) for k in range(cols)])

    expr = expr.replace(lambda e: isinstance(e, rowsum | total), reduce)
    subs = {}
    for symbol in expr.free_symbols:
        if symbol.name in env:
            value = env[symbol.name]
            subs[symbol] = value[r if value.rows > 1 else 0, c if value.cols > 1 else 0]
        elif symbol == batch_symbol or symbol in dims:
            subs[symbol] = dims[symbol]
    return expr.xreplace(subs).doit()


def _operand_shape(expr, env) -> tuple[int, int]:
    shapes = [env[s.name].shape for s in expr.free_symbols if s.name in env]
    return max(s[0] for s in shapes), max(s[1] for s in shapes)
