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

The reading is :mod:`derive.matrix_reader`, the nodes it makes :mod:`derive.matrix_graph`,
the elementwise node's backward step :mod:`derive.matrix_elementwise`; this module checks
the shapes given and puts the Model together.
"""

from __future__ import annotations

import sympy as sp

from .expressions import parse_keeping_numbers
from .matrix_elementwise import ElementwiseOp, zeros_like
from .matrix_graph import GraphBuilder, MatrixExpressionError
from .matrix_reader import FUNCTIONS, REDUCTIONS, Reader, shape_text
from .model import Model
from .ops import m

__all__ = [
    "FUNCTIONS",
    "REDUCTIONS",
    "ElementwiseOp",
    "MatrixExpressionError",
    "from_matrix_expr",
    "zeros_like",
]


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
    builder = GraphBuilder(shapes, params)
    try:
        value = Reader(builder).read(tree.body)
    except RecursionError:
        raise MatrixExpressionError(f"{text[:60]!r} is nested too deeply") from None
    if value.kind == "number" or value.shape:
        what = "a number" if value.kind == "number" else f"of shape {shape_text(value.shape)}"
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
