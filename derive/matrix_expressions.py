"""A scalar cost written over matrices, as a Model at the matrix level.

``from_matrix_expr("sum((X @ W + b - Y)**2)/m", {"X": ("m", 3), "W": (3, 2), "b": (1, 2),
"Y": ("m", 2)}, params=["W", "b"])`` reads the text with a whitelist walk over Python's AST
(nothing is evaluated) and lays it out as a graph of two kinds of node:

* linear matrix nodes (``@``, ``.T``, ``+``, ``-``, a number times, a row vector broadcast
  over the rows: ``Z = X W + 1 b``), whose backward steps are ``DenseOp``'s matrix calculus
  (``dW = Xᵀ dZ``, ``db = 1ᵀ dZ``);
* elementwise nodes (``* / **``, ``exp log tanh ...``, every registered activation, and the
  reductions ``sum``, ``mean``, ``rowsum``), whose backward steps are SymPy's ``diff`` of the
  expression, entry by entry, a reduction's adjoint spread back over what it summed.

The data are ``X`` (rows are examples) and, if the cost uses it, ``Y``; every other matrix is
a parameter. A ``(1, n)`` row vector is stored as an ``(n,)`` array, as an MLP's bias.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import sympy as sp
from sympy import HadamardProduct, OneMatrix

from . import registry
from .errors import BackpropInputError
from .expressions import _BINARY, check_power, parse_keeping_numbers, read_number
from .expressions import FUNCTIONS as SCALAR_FUNCTIONS
from .graph import Node
from .model import Model
from .ops import DenseOp, _stand_in, m, rowsum, total

#: the scalar parser's elementwise functions, one table for both
FUNCTIONS = tuple(SCALAR_FUNCTIONS)
REDUCTIONS = ("sum", "mean", "rowsum")


class MatrixExpressionError(BackpropInputError):
    """A matrix expression that cannot be read or does not fit its shapes."""


class zeros_like(sp.Function):  # noqa: N801  (printed by the kernels' zeros_like)
    """Zeros shaped like the argument: a reduction's adjoint, spread back over its input."""

    nargs = 1
    is_real = True


@dataclass
class ElementwiseOp:
    """A node computed entry by entry from its parents (with row sums and totals inside);
    ``shapes`` gives each parent symbol's matrix shape (``()`` for a scalar)."""

    shapes: dict
    label: str = "elementwise"

    def backward(self, node: Node, adjoint) -> dict:
        g = _stand_in(adjoint)  # 1 at the cost
        out = {}
        for parent in dict.fromkeys(node.parents):
            if parent.role in ("input", "target"):
                continue
            term = self._full(sp.factor_terms(self._vjp(node.expr, node.shape, g, parent)), parent)
            local = sp.diff(node.expr, parent.symbol) if not node.expr.has(rowsum, total) else None
            out[parent] = (local, term)
        return out

    def _vjp(self, expr, shape, g, parent):
        """``sum over entries of g * d expr / d parent``, in the parent's shape."""
        outer = sorted(
            (e for e in sp.preorder_traversal(expr) if isinstance(e, rowsum | total)),
            key=sp.count_ops,
            reverse=True,
        )
        outer = [r for r in outer if not any(r != o and o.has(r) for o in outer)]
        stand = {r: sp.Dummy("reduced", real=True) for r in outer}
        h, back = expr.xreplace(stand), {d: r for r, d in stand.items()}
        direct = sp.diff(h, parent.symbol).xreplace(back)
        term = self._reduce(g * direct, shape, self.shapes[parent.symbol])
        for r, d in stand.items():
            inner = sp.diff(h, d).xreplace(back)
            if inner == 0:
                continue
            body = r.args[0]
            reduced = (self._shape_of(body)[0], 1) if isinstance(r, rowsum) else ()
            spread = self._reduce(g * inner, shape, reduced)
            term += self._vjp(body, self._shape_of(body), spread, parent)
        return term

    def _shape_of(self, expr) -> tuple:
        """The shape of an elementwise expression: a row sum is a column, a total a number."""
        shapes = [(self._shape_of(r.args[0])[0], 1) for r in expr.atoms(rowsum)]
        unreduced = _unreduced(expr)
        shapes += [self.shapes[s] for s in unreduced.free_symbols if s in self.shapes]
        return max(shapes, key=lambda s: (len(s), s[1] != 1), default=())

    def _arrays(self, expr) -> set:
        return {s for s in expr.free_symbols if self.shapes.get(s, ())}

    def _reduce(self, term, from_shape, to_shape):
        """A term over ``from_shape`` summed down to a broadcast operand of ``to_shape``."""
        if from_shape == to_shape or not self._arrays(term) or term == 0:
            return term
        if to_shape == ():
            return total(term)
        return rowsum(term)  # a column (m, 1) broadcast across the columns

    def _full(self, term, parent):
        """A term as large as the parent: ``dS`` of ``S = sum(E)`` spreads over ``E``."""
        shape = self.shapes[parent.symbol]
        unreduced = _unreduced(term)
        if (
            not shape
            or term == 0
            or any(self.shapes.get(s) == shape for s in unreduced.free_symbols)
        ):
            return term
        return term + zeros_like(parent.symbol)


def _unreduced(expr):
    """``expr`` with each outermost row sum and total read as 1: the symbols left are the
    arrays it reads at full size. (``replace`` would rebuild an outer sum from its replaced
    inner ones and then not match it: ``rowsum(Z2*rowsum(Z1))`` kept ``Z2``.)"""
    sums = [e for e in sp.preorder_traversal(expr) if isinstance(e, rowsum | total)]
    return expr.xreplace(dict.fromkeys(sums, sp.Integer(1)))


# ---------------------------------------------------------------------------- values


@dataclass
class _Value:
    """A subexpression before it is a node: linear (a MatrixExpr over node matrices),
    elementwise (an Expr over node symbols), or a number (an Expr in m only)."""

    kind: str  # "linear", "elementwise", "number"
    expr: object
    shape: tuple
    parents: tuple = ()


class _Builder:
    def __init__(self, shapes: dict, params):
        self.shapes = shapes
        self.nodes: list[Node] = []
        self.leaves: dict[str, Node] = {}
        self.symbol_shapes: dict = {}
        self.counter = 0
        self.params = params

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
            node = Node(name, role, shape=shape)
            self.nodes.append(node)
            self.leaves[name] = node
            self.symbol_shapes[node.symbol] = shape
        return self.leaves[name]

    def node(self, value: _Value, role: str = "hidden", name: str | None = None) -> Node:
        """The node holding a value (a leaf is its node)."""
        if value.kind == "leaf":
            return value.parents[0]
        self.counter += 1
        name = name or (f"Z{self.counter}" if value.kind == "linear" else f"E{self.counter}")
        shape = value.shape if value.shape else ()
        op = DenseOp() if value.kind == "linear" else ElementwiseOp(self.symbol_shapes)
        read = value.expr.atoms(sp.MatrixSymbol) | value.expr.free_symbols
        parents = tuple(p for p in value.parents if {p.matrix, p.symbol} & read)  # b - b: no b
        node = Node(name, role, op=op, parents=parents, expr=value.expr, shape=shape)
        self.nodes.append(node)
        self.symbol_shapes[node.symbol] = shape
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
            copy = self.node(_Value("linear", leaf.matrix, leaf.shape, (leaf,)))
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

    def as_matrix(self, value: _Value):
        if value.kind == "number":
            raise MatrixExpressionError(f"{value.expr} is a number, not a matrix")
        if value.kind == "linear":
            return value.expr, value.parents
        node = self.node(value)
        if not node.shape:
            raise MatrixExpressionError(f"{node.name} is a scalar, not a matrix")
        return node.matrix, (node,)

    def as_elementwise(self, value: _Value):
        if value.kind == "number":
            return value.expr, ()
        if value.kind == "elementwise":
            return value.expr, value.parents
        node = self.node(value)
        return node.symbol, (node,)


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


def _entrywise(expr, shape, parents, node) -> _Value:
    """An entrywise result; one SymPy reduced to a number (``(X @ W)**0`` is 1) has lost the
    shape it stands for, so it is refused rather than read as a single number."""
    if shape and not expr.free_symbols - {m}:
        raise MatrixExpressionError(
            f"{_text(node)!r} is the same number ({expr}) in every entry; write the number"
        )
    return _Value("elementwise", expr, shape, parents)


def _row_beside(value: _Value, other: _Value) -> bool:
    """``value`` is a ``(1, n)`` row and ``other`` an ``(r, n)`` matrix of more rows."""
    if not value.shape or not other.shape or value.shape[0] != 1 or other.shape[0] == 1:
        return False
    return value.shape[1] == other.shape[1]


def _leaf(node: Node) -> _Value:
    return _Value("leaf", node.matrix, node.shape, (node,))


# ---------------------------------------------------------------------------- reading text


def _broadcast(a: tuple, b: tuple) -> tuple | None:
    """The shape of an elementwise result; a ``(1, n)`` row is handled by the caller."""
    if a == b or not b:
        return a
    if not a:
        return b
    if a[0] == b[0] and 1 in (a[1], b[1]):
        return a if b[1] == 1 else b
    return None


class _Reader:
    """The whitelist walk over the AST: each Python node to a :class:`_Value`."""

    def __init__(self, builder: _Builder):
        self.b = builder

    def read(self, node: ast.AST) -> _Value:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return _Value("number", read_number(node, MatrixExpressionError), ())
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.read(node.operand)
            if isinstance(node.op, ast.UAdd):
                return value
            kind = "linear" if value.kind == "leaf" else value.kind
            return _Value(kind, -value.expr, value.shape, value.parents)
        if isinstance(node, ast.Attribute) and node.attr == "T":
            matrix, parents = self.b.as_matrix(self.read(node.value))
            return _Value("linear", matrix.T, matrix.T.shape, parents)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self.call(node.func.id, node.args)
        raise MatrixExpressionError(
            f"unsupported syntax {ast.unparse(node)!r}: use names, numbers, @ .T + - * / ** "
            f"and the functions {', '.join(_known_functions())}"
        )

    def name(self, name: str) -> _Value:
        if name in self.b.shapes:
            return _leaf(self.b.leaf(name))
        if name == "m":
            return _Value("number", m, ())
        if name in _known_functions():
            raise MatrixExpressionError(f"{name!r} is a function; call it, e.g. {name}(X)")
        raise MatrixExpressionError(
            f"unknown symbol {name!r}; the shapes name {', '.join(self.b.shapes)} (and m)"
        )

    def binary(self, node: ast.BinOp) -> _Value:
        left, right = self.read(node.left), self.read(node.right)
        op = type(node.op)
        if op is ast.MatMult:
            a, pa = self.b.as_matrix(left)
            b, pb = self.b.as_matrix(right)
            if a.shape[1] != b.shape[0]:
                raise MatrixExpressionError(
                    f"cannot multiply {_text(node.left)} {_shape(a.shape)} @ {_text(node.right)} "
                    f"{_shape(b.shape)}: the inner sizes differ"
                )
            return _Value("linear", a * b, (a.shape[0], b.shape[1]), _union(pa, pb))
        if op not in _ARITHMETIC:
            raise MatrixExpressionError(f"unsupported operator in {_text(node)!r}")
        if op is ast.Pow:  # before SymPy writes out 10**10**10
            check_power(left.expr, right.expr, node, MatrixExpressionError)
        if left.kind == right.kind == "number":
            return _Value("number", _ARITHMETIC[op](left.expr, right.expr), ())
        linear = self._linear(op, left, right, node)
        if linear is not None:
            return linear
        return self.elementwise(op, left, right, node)

    def _linear(self, op, left: _Value, right: _Value, node) -> _Value | None:
        """``A + B``, ``A - b`` (a row broadcast), ``2 * A``, ``A / m``: still a matrix sum."""
        matrices = {"linear", "leaf"}
        if any(p.role == "target" for p in (*left.parents, *right.parents)):
            return None  # Y stays out of the matrix products: dZ = 2(Z - Y)/m reads as such
        if op in (ast.Add, ast.Sub) and left.kind in matrices and right.kind in matrices:
            a, pa = self.b.as_matrix(left)
            b, pb = self.b.as_matrix(right)
            a, b = self._rows_broadcast(a, b, node)
            total_ = a + b if op is ast.Add else a - b
            return _Value("linear", total_, total_.shape, _union(pa, pb))
        if op is ast.Mult and {left.kind, right.kind} & {"number"}:
            number, other = (left, right) if left.kind == "number" else (right, left)
            if other.kind in matrices:
                matrix, parents = self.b.as_matrix(other)
                return _Value("linear", number.expr * matrix, matrix.shape, parents)
        if op is ast.Div and right.kind == "number" and left.kind in matrices:
            matrix, parents = self.b.as_matrix(left)
            return _Value("linear", matrix / right.expr, matrix.shape, parents)
        return None

    def _rows_broadcast(self, a, b, node):
        if a.shape == b.shape:
            return a, b
        if b.shape[0] == 1 and b.shape[1] == a.shape[1]:
            return a, OneMatrix(a.shape[0], 1) * b
        if a.shape[0] == 1 and a.shape[1] == b.shape[1]:
            return OneMatrix(b.shape[0], 1) * a, b
        raise _mismatch(node, a.shape, b.shape)

    def elementwise(self, op, left: _Value, right: _Value, node) -> _Value:
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
        return _entrywise(_ARITHMETIC[op](a, b), shape, _union(pa, pb), node)

    def _with_row(self, op, left: _Value, right: _Value, node) -> _Value | None:
        """``Z + b``, ``Z * b``, ``Z / b`` for a ``(1, n)`` row ``b`` beside an ``(r, n)``
        matrix: a matrix node that spreads the row over the rows (``Z + 1 b``, ``Z ⊙ 1 b``),
        whose backward step sums the row's gradient over them (``db = 1ᵀ (dZ ⊙ Z)``). A node
        holding ``1 b`` alone would be the row itself in NumPy, not an ``(r, n)`` array."""
        if op is ast.Pow or not (_row_beside(left, right) or _row_beside(right, left)):
            return None
        if op is ast.Div:  # a / b is a times 1/b, the reciprocal taken entry by entry
            inner, parents = self.b.as_elementwise(right)
            right, op = _Value("elementwise", 1 / inner, right.shape, parents), ast.Mult
        if op is ast.Mult:  # of two nodes, a node itself: SymPy's matrix calculus takes
            # the product of matrix symbols only, and fails on Z ⊙ 1b - 1b
            pa, pb = (self.b.node(value) for value in (left, right))
            a, b = self._rows_broadcast(pa.matrix, pb.matrix, node)
            product = _Value("linear", HadamardProduct(a, b), a.shape, _union((pa,), (pb,)))
            return _leaf(self.b.node(product))
        a, pa = self.b.as_matrix(left)
        b, pb = self.b.as_matrix(right)
        a, b = self._rows_broadcast(a, b, node)
        expr = a + b if op is ast.Add else a - b
        return _Value("linear", expr, expr.shape, _union(pa, pb))

    def call(self, name: str, args) -> _Value:
        if name not in _known_functions():
            raise MatrixExpressionError(
                f"unknown function {name!r}; known: {', '.join(_known_functions())}"
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
                return _Value("elementwise", rowsum(inner), (rows, 1), parents)
            scale = 1 if name == "sum" else 1 / (rows * cols)
            return _Value("elementwise", total(inner) * scale, (), parents)
        if name in FUNCTIONS:
            result = SCALAR_FUNCTIONS[name](inner)
        else:
            result = registry.activation(name).scalar.xreplace({registry.x: inner})
        return _entrywise(result, value.shape, parents, args[0])


#: the scalar parser's operators; ``^`` (a power there) stays refused among matrices
_ARITHMETIC = {op: fn for op, fn in _BINARY.items() if op is not ast.BitXor}


def _known_functions() -> list[str]:
    acts = [name for name, act in registry.ACTIVATIONS.items() if act.elementwise]
    return [*REDUCTIONS, *FUNCTIONS, *(a for a in acts if a not in FUNCTIONS)]


def _union(a, b) -> tuple:
    return tuple(dict.fromkeys((*a, *b)))


def _text(node) -> str:
    return ast.unparse(node)


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape else "(scalar)"


def _mismatch(node, a, b) -> MatrixExpressionError:
    return MatrixExpressionError(
        f"shapes do not fit in {_text(node)!r}: {_text(node.left)} is {_shape(a)}, "
        f"{_text(node.right)} is {_shape(b)}"
    )


# ---------------------------------------------------------------------------- the Model


def from_matrix_expr(text_or_sympy, shapes: dict, params=None) -> Model:
    """A scalar cost over matrices, as a matrix-level Model.

    ``shapes`` gives each matrix's ``(rows, cols)``, ``"m"`` for the batch size; ``X`` holds
    the examples (``(m, n)``), ``Y`` the targets if the cost uses them; ``params`` lists the
    matrices to differentiate by (default: every other matrix).

    >>> model = from_matrix_expr("sum((X @ W + b - Y)**2)/m",
    ...     {"X": ("m", 3), "W": (3, 2), "b": (1, 2), "Y": ("m", 2)}, params=["W", "b"])
    >>> d = model.derive()
    >>> d.gradient("W"), d.gradient("b"), d.step("Z1").value
    (X.T*dZ1, 1*dZ1, 2*(-Y + Z1)/m)
    """
    text = _text_of(text_or_sympy)
    shapes = _check_shapes(shapes)
    params = _check_params(params, shapes)
    try:
        tree = parse_keeping_numbers(text)
    except SyntaxError as err:
        raise MatrixExpressionError(f"cannot parse {text!r}: {err.msg}") from None
    builder = _Builder(shapes, params)
    try:
        value = _Reader(builder).read(tree.body)
    except RecursionError:
        raise MatrixExpressionError(f"{text[:60]!r} is nested too deeply") from None
    if value.kind == "number" or value.shape:
        what = "a number" if value.kind == "number" else f"of shape {_shape(value.shape)}"
        raise MatrixExpressionError(
            f"the cost must be a scalar: {text!r} is {what}; wrap it in sum() or mean()"
        )
    if "X" not in builder.leaves:
        raise MatrixExpressionError(f"the cost {text!r} does not use the data X")
    cost = builder.node(value, role="loss", name="J")
    builder.separate_uses()
    builder.store_rows_as_vectors()
    matrices = [n for n in builder.nodes if not n.is_leaf and n.shape and n is not cost]
    if not matrices:
        raise MatrixExpressionError(f"the cost {text!r} computes no matrix from X")
    by_example = [n for n in matrices if n.shape[0] == m]  # forward() returns one per example
    (by_example or matrices)[-1].role = "output"
    return Model("matrix_expr", "matrix", builder.nodes, cost, source=text)


def _text_of(text_or_sympy) -> str:
    if isinstance(text_or_sympy, str):
        if not text_or_sympy.strip():
            raise MatrixExpressionError("empty matrix expression")
        if len(text_or_sympy) > 5_000:
            raise MatrixExpressionError("matrix expression longer than 5,000 characters")
        return text_or_sympy.strip()
    if isinstance(text_or_sympy, sp.Basic):
        return _from_sympy(text_or_sympy)
    raise TypeError(f"expected the cost as text or SymPy, got {type(text_or_sympy).__name__}")


def _from_sympy(expr: sp.Basic) -> str:
    """SymPy matrix expressions read as the same text: ``X*W`` is ``X @ W``."""

    class _Text(sp.printing.str.StrPrinter):
        def _print_MatMul(self, e):
            return " @ ".join(self.parenthesize(a, 60) for a in e.args)

        def _print_Transpose(self, e):
            return f"({self._print(e.arg)}).T"

        def _print_HadamardProduct(self, e):
            return " * ".join(self.parenthesize(a, 50) for a in e.args)

        def _print_Trace(self, e):
            return f"sum({self._print(e.arg)})"

    return _Text().doprint(expr)


def _check_shapes(shapes) -> dict:
    if not isinstance(shapes, dict) or not shapes:
        raise TypeError(f"shapes must be a dict of name -> (rows, cols), got {shapes!r}")
    out = {}
    for name, shape in shapes.items():
        if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
            raise MatrixExpressionError(f"matrix name {name!r} is not an identifier")
        if name in ("J", "m", "ones") or (name[0] in "ZE" and name[1:].isdigit()):
            raise MatrixExpressionError(
                f"matrix name {name!r} is taken by the graph (J, m, ones, Z1, E2, ...)"
            )
        if not isinstance(shape, tuple | list) or len(shape) != 2:
            raise MatrixExpressionError(
                f"shape of {name!r} must be (rows, cols), e.g. ('m', 3) or (3, 2), got {shape!r}"
            )
        dims = []
        for d in shape:
            if d == "m":
                dims.append(m)
            elif isinstance(d, int) and not isinstance(d, bool) and d >= 1:
                dims.append(sp.Integer(d))
            else:
                raise MatrixExpressionError(
                    f"bad size {d!r} in the shape of {name!r}: a positive integer or 'm'"
                )
        out[name] = tuple(dims)
    if "X" in out and out["X"][0] != m:
        raise MatrixExpressionError(
            f"X holds one example per row: its shape is ('m', n), got {shapes['X']!r}"
        )
    return out


def _check_params(params, shapes) -> list[str] | None:
    if params is None:
        return None
    if isinstance(params, str):
        params = [params]
    for name in params:
        if name not in shapes or name in ("X", "Y"):
            others = ", ".join(sorted(set(shapes) - {"X", "Y"}))
            raise MatrixExpressionError(f"parameter {name!r} is not one of the matrices {others}")
    return list(params)
