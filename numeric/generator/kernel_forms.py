"""The forms a kernel's expressions take before printing.

Two SymPy functions the program adds to a derivation's formulas (:class:`batch_mean`,
:class:`zeros_like`); two tests of a form, shared by the printers and the memory plan
(:func:`plain_product`, a matrix product that can be written into a given array, and
:func:`masked_value`, a Piecewise that is a product with a mask); and
:func:`elementwise_form`, which rewrites a matrix expression over arrays stored with fewer
axes (a chain network's ``1×1`` weights are numbers). Math only: how each prints is the
printers' business.
"""

from __future__ import annotations

import sympy as sp

from derive.ops import rowsum, total

from .stable import rowmax


class batch_mean(sp.Function):  # noqa: N801  (SymPy function names are lower case)
    """Mean over the examples of a batch: a scalar-level gradient is the mean of its
    per-example values, because the cost is the mean loss."""

    nargs = 1
    is_real = True


class zeros_like(sp.Function):  # noqa: N801
    """An array of zeros shaped like its argument: a matrix-level adjoint that is 0 (the
    derivative of a flat activation such as ``step``) still feeds matrix products."""

    nargs = 1
    is_real = True


def plain_product(expr) -> bool:
    """``A @ B`` of two matrices, neither a column of ones (that is a broadcast, not a GEMM):
    a product that can be written into a given array."""
    if not isinstance(expr, sp.MatMul):
        return False
    coeff, matrices = expr.as_coeff_matrices()
    return (
        coeff == 1 and len(matrices) == 2 and not any(isinstance(m, sp.OneMatrix) for m in matrices)
    )


def masked_value(expr) -> tuple | None:
    """``(value, condition)`` when ``expr`` is a Piecewise that is ``value`` where the condition
    holds and 0 elsewhere, ``value`` finite everywhere (no function, no power): it prints as
    the product ``value * (condition)``, no ``np.where``. None for anything else."""
    if not isinstance(expr, sp.Piecewise) or len(expr.args) != 2:
        return None
    (value, cond), (other, always) = expr.args[0].args, expr.args[1].args
    if always != sp.true or other != 0 or not value.free_symbols:
        return None
    if value.has(sp.Function) or value.has(sp.Pow):
        return None
    return value, cond


def elementwise_form(expr, ranks: dict[str, int], rank: int | None = None):
    """A matrix expression as an elementwise one, where its arrays have fewer axes than
    their matrix shapes (a chain network's ``1×1`` weights are 0-d arrays); None when the
    matrix form prints as it should.

    A ``1×1`` factor stored as a number multiplies as one (``X w1`` is ``X * w1``, ``dZ2 w2ᵀ``
    is ``dZ2 * w2``: ``@`` refuses a 0-d operand), and a ``1×1`` result stored as a number
    (``rank`` 0) is a sum over the batch (``Xᵀ dZ1`` is ``total(X * dZ1)``, ``1ᵀ dZ1`` is
    ``total(dZ1)``), not a ``(1, 1)`` array. ``ranks`` gives each array's number of axes.

    >>> m = sp.Symbol("m", integer=True, positive=True)
    >>> X, dZ1 = sp.MatrixSymbol("X", m, 1), sp.MatrixSymbol("dZ1", m, 1)
    >>> w1, b1 = sp.MatrixSymbol("w1", 1, 1), sp.MatrixSymbol("b1", 1, 1)
    >>> ranks = {"X": 2, "dZ1": 2, "w1": 0, "b1": 0, "dw1": 0}
    >>> elementwise_form(X * w1 + sp.OneMatrix(m, 1) * b1, ranks, rank=2)
    X*w1 + b1
    >>> elementwise_form(X.T * dZ1, ranks, rank=0)
    total(X*dZ1)
    """

    def number(matrix) -> bool:
        base = matrix.arg if isinstance(matrix, sp.Transpose) else matrix
        return isinstance(base, sp.MatrixSymbol) and ranks.get(base.name) == 0

    def scales_an_array(product) -> bool:
        matrices = product.as_coeff_matrices()[1]
        return any(map(number, matrices)) and not all(
            number(f) or isinstance(f, sp.OneMatrix) for f in matrices
        )

    products = [e for e in sp.preorder_traversal(expr) if isinstance(e, sp.MatMul)]
    summed = rank == 0 and any(ranks.get(s.name, 2) > 1 for s in expr.atoms(sp.MatrixSymbol))
    if not summed and not any(map(scales_an_array, products)):
        return None

    def convert(e):
        if isinstance(e, sp.MatAdd):
            terms = [convert(term) for term in e.args]
            return None if any(t is None for t in terms) else sp.Add(*terms)
        if isinstance(e, sp.MatrixSymbol) or number(e):
            return sp.Symbol((e.arg if isinstance(e, sp.Transpose) else e).name, real=True)
        if not isinstance(e, sp.MatMul):
            return None
        coeff, matrices = e.as_coeff_matrices()
        numbers = [convert(f) for f in matrices if number(f)]
        # a column of ones times a row broadcasts it (1 b1 is b1)
        rest = [f for f in matrices if not number(f)]
        rest = [f for f in rest if not (isinstance(f, sp.OneMatrix) and f.shape[1] == 1)]
        over_batch = (
            rank == 0 and len(rest) == 2 and isinstance(rest[0], (sp.OneMatrix, sp.Transpose))
        )
        if over_batch:  # 1ᵀ dZ1 sums dZ1, Xᵀ dZ1 sums X * dZ1
            first, second = rest
            rest = [second] if isinstance(first, sp.OneMatrix) else [first.arg, second]
        if len(rest) > 1 + over_batch or not all(isinstance(f, sp.MatrixSymbol) for f in rest):
            return None  # a true matrix product
        body = sp.Mul(*numbers, *[convert(f) for f in rest])
        return coeff * (total(body) if over_batch else body)

    return convert(expr)


def shape_of(expr, shape_of_symbol) -> tuple | None:
    """The NumPy shape of an elementwise expression (broadcasting), None if unknown;
    ``shape_of_symbol`` gives each symbol's (``()`` for a number such as the batch size).

    >>> a, m = sp.Symbol("A", real=True), sp.Symbol("m")
    >>> def shape_of_symbol(s):
    ...     return {a: (m, 3)}.get(s, ())
    >>> shape_of(a * rowsum(a) + 1, shape_of_symbol), shape_of(rowsum(a) / m, shape_of_symbol)
    ((m, 3), (m, 1))
    """
    if isinstance(expr, (sp.Symbol, sp.MatrixSymbol)):
        return shape_of_symbol(expr)
    if expr.is_Atom or isinstance(expr, (total, batch_mean)):
        return ()
    if isinstance(expr, (rowsum, rowmax)):
        inner = shape_of(expr.args[0], shape_of_symbol)
        return None if inner is None else (inner[:1] + (1,) if len(inner) == 2 else inner)
    if isinstance(expr, sp.MatrixExpr) or not expr.args:
        return None
    out: tuple = ()
    for arg in expr.args:
        shape = shape_of(arg, shape_of_symbol) if isinstance(arg, sp.Basic) else ()
        if shape is None:
            return None
        out = _broadcast(out, shape)
        if out is None:
            return None
    return out


def _broadcast(a: tuple, b: tuple) -> tuple | None:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)
