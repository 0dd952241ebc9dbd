"""The graph of a matrix expression as it is read: values before they are nodes, and the
builder that makes nodes of them (linear ``DenseOp`` nodes, elementwise nodes), with the
data ``X``, ``Y`` and the parameters as leaves (:func:`derive.from_matrix_expr`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import OneMatrix

from .errors import BackpropInputError
from .graph import Node
from .matrix_elementwise import ElementwiseOp
from .ops import DenseOp


class MatrixExpressionError(BackpropInputError):
    """A matrix expression that cannot be read or does not fit its shapes."""


@dataclass
class Value:
    """A subexpression before it is a node: linear (a MatrixExpr over node matrices),
    elementwise (an Expr over node symbols), or a number (an Expr in m only)."""

    kind: str  # "linear", "elementwise", "number"
    expr: object
    shape: tuple
    parents: tuple = ()


class GraphBuilder:
    def __init__(self, shapes: dict, params):
        self.shapes = shapes
        self.nodes: list[Node] = []
        self.leaves: dict[str, Node] = {}
        self.symbol_shapes: dict = {}
        self.counter = 0
        self.params = params
        self.by_value: dict = {}  # (kind, expr) -> its node: X @ W read twice is one node

    # -- nodes

    def leaf(self, name: str) -> Node:
        if name not in self.leaves:
            shape = self.shapes[name]
            role = {"X": "input", "Y": "target"}.get(name, "param")
            if self.params is not None and name not in ("X", "Y") and name not in self.params:
                raise MatrixExpressionError(
                    f"{name!r} is no parameter (params: {', '.join(self.params)}); "
                    "the data of a matrix expression are X and Y"
                )
            if role == "param":
                _check_param_shape(name, shape)
            node = Node(name, role, shape=shape)
            self.nodes.append(node)
            self.leaves[name] = node
            self.symbol_shapes[node.symbol] = shape
        return self.leaves[name]

    def node(self, value: Value, role: str = "hidden", name: str | None = None) -> Node:
        """The node holding a value (a leaf is its node)."""
        if value.kind == "leaf":
            return value.parents[0]
        key = (value.kind, value.expr)
        if name is None and key in self.by_value:
            return self.by_value[key]
        self.counter += 1
        name = name or (f"Z{self.counter}" if value.kind == "linear" else f"E{self.counter}")
        shape = value.shape if value.shape else ()
        op = DenseOp() if value.kind == "linear" else ElementwiseOp(self.symbol_shapes)
        read = value.expr.atoms(sp.MatrixSymbol) | value.expr.free_symbols
        parents = tuple(p for p in value.parents if {p.matrix, p.symbol} & read)  # b - b: no b
        node = Node(name, role, op=op, parents=parents, expr=value.expr, shape=shape)
        self.nodes.append(node)
        self.symbol_shapes[node.symbol] = shape
        self.by_value.setdefault(key, node)
        return node

    def separate_uses(self) -> None:
        """A parameter read both by a matrix product and entry by entry (``X W`` and ``W**2``)
        is read entry by entry through a copy ``Z = W``: its two gradient terms then add as
        matrices (``Xᵀ dZ1 + dZ2``)."""
        for leaf in list(self.leaves.values()):
            users = [n for n in self.nodes if leaf in n.parents]
            entrywise = [n for n in users if isinstance(n.op, ElementwiseOp)]
            if leaf.role != "param" or not entrywise or len(entrywise) == len(users):
                continue
            copy = self.node(Value("linear", leaf.matrix, leaf.shape, (leaf,)))
            self.nodes.remove(copy)
            self.nodes.insert(self.nodes.index(leaf) + 1, copy)
            for user in entrywise:
                user.expr = user.expr.xreplace({leaf.symbol: copy.symbol})
                user.parents = tuple(copy if p is leaf else p for p in user.parents)

    def store_rows_as_vectors(self) -> None:
        """A ``(1, n)`` row that is only broadcast over rows (``1 b``) or read entry by entry
        is an ``(n,)`` array, as an MLP's bias; one that is a factor of a product (``X W``
        with ``X`` of one column) stays ``(1, n)``: NumPy's ``@`` reads ``(n,)`` otherwise."""
        products = [n.expr for n in self.nodes if isinstance(n.expr, sp.MatrixExpr)]
        for node in self.nodes:
            rows, cols = node.shape or (None, None)
            if rows == 1 and cols != 1 and not any(_in_product(node.matrix, e) for e in products):
                node.array_shape = (cols,)

    def as_matrix(self, value: Value):
        if value.kind == "number":
            raise MatrixExpressionError(f"{value.expr} is a number, not a matrix")
        if value.kind == "linear":
            return value.expr, value.parents
        node = self.node(value)
        if not node.shape:
            raise MatrixExpressionError(f"{node.name} is a scalar, not a matrix")
        return node.matrix, (node,)

    def as_elementwise(self, value: Value):
        if value.kind == "number":
            return value.expr, ()
        if value.kind == "elementwise":
            return value.expr, value.parents
        node = self.node(value)
        return node.symbol, (node,)


def _check_param_shape(name: str, shape: tuple) -> None:
    """A parameter is an array of fixed numbers (``PARAMS`` of the kernel); only the data
    have a row per example."""
    if any(not d.is_Integer for d in shape):
        raise MatrixExpressionError(
            f"parameter {name!r} has shape {shape_text(shape)}: a parameter's shape must be "
            "numbers, e.g. (3, 2); m is the batch size, which only the data X and Y may have"
        )


def shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape else "(scalar)"


def _in_product(row, expr) -> bool:
    """Whether ``row`` is a factor of a matrix product in ``expr``, or transposed, other than
    the broadcast ``1 b``."""
    for e in sp.preorder_traversal(expr):
        if isinstance(e, sp.Transpose) and e.arg == row:
            return True
        if isinstance(e, sp.MatMul):
            factors = e.as_coeff_matrices()[1]
            broadcast = len(factors) == 2 and isinstance(factors[0], OneMatrix)
            if row in factors and not (broadcast and factors[1] == row):
                return True
    return False


def leaf_value(node: Node) -> Value:
    return Value("leaf", node.matrix, node.shape, (node,))


def union(a, b) -> tuple:
    """The parents of both, each once, in order."""
    return tuple(dict.fromkeys((*a, *b)))
