"""The elementwise node of a matrix expression: computed entry by entry from its parents,
with row sums and totals inside; its backward step is SymPy's ``diff``, entry by entry, a
reduction's adjoint spread back over what it summed (:func:`derive.from_matrix_expr`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .graph import Node
from .ops import _stand_in, rowsum, total


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
        outer = sorted(_outermost(expr), key=sp.default_sort_key)
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


def _outermost(expr) -> set:
    """The row sums and totals of ``expr`` that no other one encloses where they stand: in
    ``rowsum(Y) * rowsum(rowsum(Y) * Z)`` both (the first ``rowsum(Y)`` is read outside)."""
    if isinstance(expr, rowsum | total):
        return {expr}
    return set().union(*(_outermost(a) for a in expr.args))


def _unreduced(expr):
    """``expr`` with each outermost row sum and total read as 1: the symbols left are the
    arrays it reads at full size. (``replace`` would rebuild an outer sum from its replaced
    inner ones and then not match it: ``rowsum(Z2*rowsum(Z1))`` kept ``Z2``.)"""
    sums = [e for e in sp.preorder_traversal(expr) if isinstance(e, rowsum | total)]
    return expr.xreplace(dict.fromkeys(sums, sp.Integer(1)))
