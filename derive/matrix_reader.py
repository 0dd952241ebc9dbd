"""The reading of a matrix expression: a whitelist walk over Python's AST (nothing is
evaluated), each node to a value of :mod:`derive.matrix_graph`, shapes checked as it goes.
"""

from __future__ import annotations

import ast

from sympy import HadamardProduct, OneMatrix

from . import registry
from .expressions import _BINARY, check_power, read_number
from .expressions import FUNCTIONS as SCALAR_FUNCTIONS
from .matrix_graph import GraphBuilder, MatrixExpressionError, Value, leaf_value, shape_text, union
from .ops import m, rowsum, total

#: the scalar parser's elementwise functions, one table for both
FUNCTIONS = tuple(SCALAR_FUNCTIONS)
REDUCTIONS = ("sum", "mean", "rowsum")


def _entrywise(expr, shape, parents, node) -> Value:
    """An entrywise result; one SymPy reduced to a number (``(X @ W)**0`` is 1) has lost the
    shape it stands for, so it is refused rather than read as a single number."""
    if shape and not expr.free_symbols - {m}:
        raise MatrixExpressionError(
            f"{_text(node)!r} is the same number ({expr}) in every entry; write the number"
        )
    return Value("elementwise", expr, shape, parents)


def _row_beside(value: Value, other: Value) -> bool:
    """``value`` is a ``(1, n)`` row and ``other`` an ``(r, n)`` matrix of more rows."""
    if not value.shape or not other.shape or value.shape[0] != 1 or other.shape[0] == 1:
        return False
    return value.shape[1] == other.shape[1]


def _broadcast(a: tuple, b: tuple) -> tuple | None:
    """The shape of an elementwise result; a ``(1, n)`` row is handled by the caller."""
    if a == b or not b:
        return a
    if not a:
        return b
    if a[0] == b[0] and 1 in (a[1], b[1]):
        return a if b[1] == 1 else b
    return None


class Reader:
    """The whitelist walk over the AST: each Python node to a :class:`Value`."""

    def __init__(self, builder: GraphBuilder):
        self.b = builder

    def read(self, node: ast.AST) -> Value:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return Value("number", read_number(node, MatrixExpressionError), ())
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.read(node.operand)
            if isinstance(node.op, ast.UAdd):
                return value
            kind = "linear" if value.kind == "leaf" else value.kind
            return Value(kind, -value.expr, value.shape, value.parents)
        if isinstance(node, ast.Attribute) and node.attr == "T":
            matrix, parents = self.b.as_matrix(self.read(node.value))
            return Value("linear", matrix.T, matrix.T.shape, parents)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self.call(node.func.id, node.args)
        raise MatrixExpressionError(
            f"unsupported syntax {ast.unparse(node)!r}: use names, numbers, @ .T + - * / ** "
            f"and the functions {', '.join(known_functions())}"
        )

    def name(self, name: str) -> Value:
        if name in self.b.shapes:
            return leaf_value(self.b.leaf(name))
        if name == "m":
            return Value("number", m, ())
        if name in known_functions():
            raise MatrixExpressionError(f"{name!r} is a function; call it, e.g. {name}(X)")
        raise MatrixExpressionError(
            f"unknown symbol {name!r}; the shapes name {', '.join(self.b.shapes)} (and m)"
        )

    def binary(self, node: ast.BinOp) -> Value:
        left, right = self.read(node.left), self.read(node.right)
        op = type(node.op)
        if op is ast.MatMult:
            a, pa = self.b.as_matrix(left)
            b, pb = self.b.as_matrix(right)
            if a.shape[1] != b.shape[0]:
                raise MatrixExpressionError(
                    f"cannot multiply {_text(node.left)} {shape_text(a.shape)} @ "
                    f"{_text(node.right)} {shape_text(b.shape)}: the inner sizes differ"
                )
            return Value("linear", a * b, (a.shape[0], b.shape[1]), union(pa, pb))
        if op not in _ARITHMETIC:
            raise MatrixExpressionError(f"unsupported operator in {_text(node)!r}")
        if op is ast.Pow:  # before SymPy writes out 10**10**10
            check_power(left.expr, right.expr, node, MatrixExpressionError)
        if left.kind == right.kind == "number":
            return Value("number", _ARITHMETIC[op](left.expr, right.expr), ())
        linear = self._linear(op, left, right, node)
        if linear is not None:
            return linear
        return self.elementwise(op, left, right, node)

    def _linear(self, op, left: Value, right: Value, node) -> Value | None:
        """``A + B``, ``A - b`` (a row broadcast), ``2 * A``, ``A / m``: still a matrix sum."""
        matrices = {"linear", "leaf"}
        if any(p.role == "target" for p in (*left.parents, *right.parents)):
            return None  # Y stays out of the matrix products: dZ = 2(Z - Y)/m reads as such
        if op in (ast.Add, ast.Sub) and left.kind in matrices and right.kind in matrices:
            a, pa = self.b.as_matrix(left)
            b, pb = self.b.as_matrix(right)
            a, b = self._rows_broadcast(a, b, node)
            total_ = a + b if op is ast.Add else a - b
            return Value("linear", total_, total_.shape, union(pa, pb))
        if op is ast.Mult and {left.kind, right.kind} & {"number"}:
            number, other = (left, right) if left.kind == "number" else (right, left)
            if other.kind in matrices:
                matrix, parents = self.b.as_matrix(other)
                return Value("linear", number.expr * matrix, matrix.shape, parents)
        if op is ast.Div and right.kind == "number" and left.kind in matrices:
            matrix, parents = self.b.as_matrix(left)
            return Value("linear", matrix / right.expr, matrix.shape, parents)
        return None

    def _rows_broadcast(self, a, b, node):
        if a.shape == b.shape:
            return a, b
        if b.shape[0] == 1 and b.shape[1] == a.shape[1]:
            return a, OneMatrix(a.shape[0], 1) * b
        if a.shape[0] == 1 and a.shape[1] == b.shape[1]:
            return OneMatrix(b.shape[0], 1) * a, b
        raise _mismatch(node, a.shape, b.shape)

    def elementwise(self, op, left: Value, right: Value, node) -> Value:
        with_row = self._with_row(op, left, right, node)
        if with_row is not None:
            return with_row
        shape = _broadcast(left.shape, right.shape)
        if shape is None:
            raise _mismatch(node, left.shape, right.shape)
        if op is ast.Pow and right.kind != "number":
            raise MatrixExpressionError(f"the power in {_text(node)!r} must be a number")
        a, pa = self.b.as_elementwise(left)
        b, pb = self.b.as_elementwise(right)
        return _entrywise(_ARITHMETIC[op](a, b), shape, union(pa, pb), node)

    def _with_row(self, op, left: Value, right: Value, node) -> Value | None:
        """``Z + b``, ``Z * b``, ``Z / b`` for a ``(1, n)`` row ``b`` beside an ``(r, n)``
        matrix: a matrix node that spreads the row over the rows (``Z + 1 b``, ``Z ⊙ 1 b``),
        whose backward step sums the row's gradient over them (``db = 1ᵀ (dZ ⊙ Z)``). A node
        holding ``1 b`` alone would be the row itself in NumPy, not an ``(r, n)`` array."""
        if op is ast.Pow or not (_row_beside(left, right) or _row_beside(right, left)):
            return None
        if op is ast.Div:  # a / b is a times 1/b, the reciprocal taken entry by entry
            inner, parents = self.b.as_elementwise(right)
            right, op = Value("elementwise", 1 / inner, right.shape, parents), ast.Mult
        if op is ast.Mult:  # of two nodes, a node itself: SymPy's matrix calculus takes
            # the product of matrix symbols only, and fails on Z ⊙ 1b - 1b
            pa, pb = (self.b.node(value) for value in (left, right))
            a, b = self._rows_broadcast(pa.matrix, pb.matrix, node)
            product = Value("linear", HadamardProduct(a, b), a.shape, union((pa,), (pb,)))
            return leaf_value(self.b.node(product))
        a, pa = self.b.as_matrix(left)
        b, pb = self.b.as_matrix(right)
        a, b = self._rows_broadcast(a, b, node)
        expr = a + b if op is ast.Add else a - b
        return Value("linear", expr, expr.shape, union(pa, pb))

    def call(self, name: str, args) -> Value:
        if name not in known_functions():
            raise MatrixExpressionError(
                f"unknown function {name!r}; known: {', '.join(known_functions())}"
            )
        if len(args) != 1:
            raise MatrixExpressionError(f"{name} takes one argument, got {len(args)}")
        value = self.read(args[0])
        inner, parents = self.b.as_elementwise(value)
        if name in REDUCTIONS:
            if value.kind == "number" or not value.shape:
                raise MatrixExpressionError(f"{name}() needs a matrix, got {_text(args[0])!r}")
            rows, cols = value.shape
            if name == "rowsum":
                return Value("elementwise", rowsum(inner), (rows, 1), parents)
            scale = 1 if name == "sum" else 1 / (rows * cols)
            return Value("elementwise", total(inner) * scale, (), parents)
        if name in FUNCTIONS:
            result = SCALAR_FUNCTIONS[name](inner)
        else:
            result = registry.activation(name).scalar.xreplace({registry.x: inner})
        return _entrywise(result, value.shape, parents, args[0])


#: the scalar parser's operators; ``^`` (a power there) stays refused among matrices
_ARITHMETIC = {op: fn for op, fn in _BINARY.items() if op is not ast.BitXor}


def known_functions() -> list[str]:
    acts = [name for name, act in registry.ACTIVATIONS.items() if act.elementwise]
    return [*REDUCTIONS, *FUNCTIONS, *(a for a in acts if a not in FUNCTIONS)]


def _text(node) -> str:
    return ast.unparse(node)


def _mismatch(node, a, b) -> MatrixExpressionError:
    return MatrixExpressionError(
        f"shapes do not fit in {_text(node)!r}: {_text(node.left)} is {shape_text(a)}, "
        f"{_text(node.right)} is {shape_text(b)}"
    )
