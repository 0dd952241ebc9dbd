"""Evaluate a derivation at concrete values, with SymPy alone (no NumPy, no generated code).

This is the slow, obviously-correct route: matrix-level formulas are instantiated entry by
entry on explicit ``sympy.Matrix`` values, scalar-level ones by substitution. Tests use it as
an oracle independent of the kernel printers; reports use it for the worked numeric example.
"""

from __future__ import annotations

import sympy as sp

from .matrix_elementwise import zeros_like
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
    """Entry (r, c) of an elementwise formula; a 1-column or 1-row operand broadcasts.

    Each outermost row sum or total is summed over the entries it reads, and a sum inside it
    (``total(X * rowsum(Z))``) at each of those entries in turn: SymPy's ``replace`` would
    reduce the inner one first, at (r, c) only, and a rebuilt outer sum may leave it unvisited
    (``total`` pulls a number out of itself). ``zeros_like(Z)`` only gives a step its shape
    (a sum's adjoint spread over its operand): each of its entries is 0.
    """
    sums = {call: _reduce(call, env, r, dims) for call in _outermost_sums(expr)}
    expr = expr.xreplace(sums).xreplace({z: sp.Integer(0) for z in expr.atoms(zeros_like)})
    subs = {}
    for symbol in expr.free_symbols:
        if symbol.name in env:
            value = env[symbol.name]
            subs[symbol] = value[r if value.rows > 1 else 0, c if value.cols > 1 else 0]
        elif symbol == batch_symbol or symbol in dims:
            subs[symbol] = dims[symbol]
    return expr.xreplace(subs).doit()


def _outermost_sums(expr) -> list:
    """The row sums and totals in ``expr`` that no other one holds."""
    if isinstance(expr, rowsum | total):
        return [expr]
    return [call for arg in expr.args for call in _outermost_sums(arg)]


def _reduce(call, env, r, dims):
    """A row sum at row ``r``, or a total: the sum of its operand's entries."""
    inner = call.args[0]
    rows, cols = _operand_shape(inner, env)
    if isinstance(call, rowsum):
        return sp.Add(*[_entry(inner, env, r, k, dims) for k in range(cols)])
    return sp.Add(*[_entry(inner, env, i, k, dims) for i in range(rows) for k in range(cols)])


def _operand_shape(expr, env) -> tuple[int, int]:
    """(rows, cols) of an elementwise formula: its operands broadcast, a row sum is one
    column, a total one entry."""
    if isinstance(expr, total):
        return 1, 1
    if isinstance(expr, rowsum):
        return _operand_shape(expr.args[0], env)[0], 1
    if isinstance(expr, sp.Symbol) and expr.name in env:
        return env[expr.name].shape
    shapes = [_operand_shape(arg, env) for arg in expr.args]
    return max((s[0] for s in shapes), default=1), max((s[1] for s in shapes), default=1)
