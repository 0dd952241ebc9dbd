"""Operations: how one node is computed from its parents, and one backward step through it.

Each op answers ``backward(node, adjoint)`` with, for every parent, the local derivative and
the branch term it contributes to the parent's adjoint. Scalar ops return
``adjoint * d node / d parent``; matrix ops return the vector-Jacobian product. All local
derivatives come from SymPy: ``diff`` of the node's expression, or the registry rules of
``rules.py`` put at concrete positions (scalar level) or lifted to whole matrices (matrix level).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
from sympy import Indexed, Sum, Trace

from . import rules
from .graph import Node
from .registry import a, n, y, z


def _row_constant(factor: sp.Expr) -> bool:
    """Numbers, sizes (integer symbols) and row sums are the same across a row."""
    return isinstance(factor, rowsum) or all(s.is_integer for s in factor.free_symbols)


class _Reduction(sp.Function):
    """A linear sum over matrix entries: it splits over ``+`` and pulls out constants.

    A sum with a constant term stays whole: ``total(1 - A)`` is not ``total(1) - total(A)``,
    as ``total(1)`` has lost the shape it is summed over.
    """

    is_real = True

    @classmethod
    def eval(cls, arg):
        if isinstance(arg, sp.Add):
            if any(cls._pulls_out(term) for term in arg.args):
                return None
            return sp.Add(*[cls(term) for term in arg.args])
        if isinstance(arg, sp.Mul):
            const, rest = sp.Integer(1), sp.Integer(1)
            for factor in arg.args:
                if cls._pulls_out(factor):
                    const *= factor
                else:
                    rest *= factor
            if const != 1:
                return const * cls(rest)
        return None

    @staticmethod
    def _pulls_out(factor) -> bool:
        return all(s.is_integer for s in factor.free_symbols)


class rowsum(_Reduction):
    """Sum over each row of a matrix, keeping a column: ``rowsum(E)[r] = sum_c E[r, c]``."""

    @staticmethod
    def _pulls_out(factor) -> bool:
        return _row_constant(factor)


class total(_Reduction):
    """Sum over every entry of a matrix."""

    @classmethod
    def eval(cls, arg):
        if isinstance(arg, rowsum):
            return cls(arg.args[0])
        return super().eval(arg)


# ---------------------------------------------------------------------------- scalar level


def _derivatives_of(expr: sp.Expr, wrt: list[sp.Symbol]) -> dict[sp.Symbol, sp.Expr]:
    """``d expr / d s`` for each symbol; a sum is differentiated term by term, touching only
    the terms that hold the symbol (a neuron's sum has one term per weight)."""
    wanted = set(wrt)
    result = {s: sp.Integer(0) for s in wrt}
    for term in sp.Add.make_args(expr) if isinstance(expr, sp.Add) else [expr]:
        for s in term.free_symbols & wanted:
            result[s] += _diff_term(term, s)
    return result


def _diff_term(term: sp.Expr, s: sp.Symbol) -> sp.Expr:
    """``d term / d s``; a product holding ``s`` once (``w * x``) is just the other factors."""
    if isinstance(term, sp.Mul) and term.args.count(s) == 1:
        rest = [f for f in term.args if f is not s]
        if not any(f.has(s) for f in rest):
            return sp.Mul(*rest)
    return sp.diff(term, s)


def _label(expr: sp.Expr) -> str:
    if isinstance(expr, sp.Add):
        return "+"
    if isinstance(expr, sp.Mul):
        return "/" if any(e.is_Pow and e.exp == -1 for e in expr.args) else "×"
    if isinstance(expr, sp.Pow):
        return f"^{expr.exp}"
    return type(expr).__name__.lower()


@dataclass
class Primitive:
    """A node defined directly by a SymPy expression in its parents' symbols."""

    label: str = ""

    @classmethod
    def of(cls, expr: sp.Expr) -> Primitive:
        return cls(_label(expr))

    def backward(self, node: Node, adjoint: sp.Expr) -> dict[Node, tuple[sp.Expr, sp.Expr]]:
        parents = list(dict.fromkeys(node.parents))
        local = _derivatives_of(node.expr, [p.symbol for p in parents])
        out = {}
        for parent in parents:
            d = local[parent.symbol]
            if node.expr in d.atoms(type(node.expr)) or d == node.expr:
                d = d.subs(node.expr, node.symbol)  # e.g. d exp(v)/dv = u, reusing u = exp(v)
            out[parent] = (d, adjoint * d)
        return out


def at_position(
    expr: sp.Expr, rows: dict[sp.IndexedBase, list[sp.Symbol]], **indices: int
) -> sp.Expr:
    """Put an index-notation rule at concrete positions: ``a[l]`` with l=2 becomes ``a3``."""
    subs = {sp.Symbol(k, integer=True, nonnegative=True): v for k, v in indices.items()}
    width = len(next(iter(rows.values())))
    expr = expr.xreplace(subs).xreplace({n: width}).doit()
    return expr.replace(
        lambda e: isinstance(e, Indexed) and e.base in rows,
        lambda e: rows[e.base][int(e.indices[0])],
    )


@dataclass
class ActivationOp:
    """``a_j = g(z_0, ..., z_{n-1})``: one output of an activation over a layer's row."""

    name: str
    position: int
    inputs: list[sp.Symbol]
    outputs: list[sp.Symbol]

    @property
    def label(self) -> str:
        return self.name

    def definition(self) -> sp.Expr:
        act = rules.activation(self.name)
        return at_position(act.definition, {z: self.inputs}, j=self.position)

    def backward(self, node: Node, adjoint: sp.Expr) -> dict[Node, tuple[sp.Expr, sp.Expr]]:
        jac = rules.activation_jacobian(self.name)
        rows = {z: self.inputs, a: self.outputs}
        out = {}
        for parent in dict.fromkeys(node.parents):
            d = at_position(jac, rows, j=self.position, l=self.inputs.index(parent.symbol))
            out[parent] = (d, adjoint * d)
        return out


@dataclass
class LossOp:
    """``L = loss(a_0..a_{n-1}, y_0..y_{n-1})`` for one example."""

    name: str
    outputs: list[sp.Symbol]
    targets: list[sp.Symbol]

    @property
    def label(self) -> str:
        return self.name

    def definition(self) -> sp.Expr:
        return at_position(rules.loss(self.name).definition, {a: self.outputs, y: self.targets})

    def backward(self, node: Node, adjoint: sp.Expr) -> dict[Node, tuple[sp.Expr, sp.Expr]]:
        grad = rules.loss_gradient(self.name)
        rows = {a: self.outputs, y: self.targets}
        out = {}
        for parent in dict.fromkeys(node.parents):
            if parent.symbol in self.outputs:
                d = at_position(grad, rows, l=self.outputs.index(parent.symbol))
                out[parent] = (d, adjoint * d)
        return out


# ---------------------------------------------------------------------------- matrix level


def lift(expr: sp.Expr, rows: dict[sp.IndexedBase, sp.Symbol], width: sp.Expr) -> sp.Expr:
    """Turn a rule for one row position into a formula over whole matrices.

    ``x[l]`` (and ``x[j]`` inside a sum) becomes the matrix ``X`` read elementwise, and
    ``sum_j f(x[j])`` becomes ``rowsum(f(X))``, a column broadcast across the row.
    """

    def lift_sum(s: Sum) -> sp.Expr:
        return rowsum(lift(s.function, rows, width))

    expr = expr.replace(lambda e: isinstance(e, Sum), lift_sum)
    expr = expr.replace(lambda e: isinstance(e, Indexed) and e.base in rows, lambda e: rows[e.base])
    return expr.xreplace({n: width})


m = sp.Symbol("m", integer=True, positive=True)  # batch size: rows of X


def _stand_in(adjoint: sp.Expr) -> sp.Symbol:
    """The elementwise stand-in for a matrix adjoint (``dA2`` read entry by entry)."""
    return sp.Symbol(adjoint.name, real=True) if isinstance(adjoint, sp.MatrixSymbol) else adjoint


@dataclass
class DenseOp:
    """``Z = A_prev W + 1 b``: a matrix expression; its backward rules come from SymPy's
    matrix calculus, as the gradient of ``trace(G^T Z)`` with respect to each operand."""

    label: str = "@"

    def backward(self, node: Node, adjoint: sp.MatrixSymbol) -> dict:
        rules_ = _dense_rules(*_generic(node.expr, adjoint))
        back = _renaming(node.expr, adjoint)
        out = {}
        for parent in dict.fromkeys(node.parents):
            if parent.role in ("input", "target", "mask"):
                continue  # no one asks for the gradient with respect to the data
            term = rules_[_generic_name(parent.matrix, node.expr, adjoint)]
            out[parent] = (None, _as_shape(term.xreplace(back[0]).xreplace(back[1]), parent))
        return out


def _operands(expr: sp.MatrixExpr, adjoint: sp.MatrixSymbol) -> list[sp.MatrixSymbol]:
    return sorted(expr.atoms(sp.MatrixSymbol), key=lambda s: s.name) + [adjoint]


def _dims(operands) -> list[sp.Symbol]:
    return sorted({d for s in operands for d in s.shape if d.is_Symbol}, key=lambda d: d.name)


def _generic(expr: sp.MatrixExpr, adjoint: sp.MatrixSymbol):
    """The same expression over placeholder names and sizes, so that every layer of a net
    shares one cached derivation (width and depth cost nothing)."""
    operands = _operands(expr, adjoint)
    dims = {
        d: sp.Symbol(f"_d{k}", integer=True, positive=True) for k, d in enumerate(_dims(operands))
    }
    names = {
        s: sp.MatrixSymbol(f"_M{k}", *[dims.get(d, d) for d in s.shape])
        for k, s in enumerate(operands)
    }
    return expr.xreplace(names).xreplace(dims), names[adjoint]


def _generic_name(symbol, expr, adjoint) -> str:
    return f"_M{_operands(expr, adjoint).index(symbol)}"


def _renaming(expr, adjoint):
    """Placeholders back to the layer's own matrices, then placeholder sizes to its sizes."""
    operands = _operands(expr, adjoint)
    dims = {
        sp.Symbol(f"_d{k}", integer=True, positive=True): d for k, d in enumerate(_dims(operands))
    }
    generic_dims = {v: k for k, v in dims.items()}
    names = {
        sp.MatrixSymbol(f"_M{k}", *[generic_dims.get(d, d) for d in s.shape]): s
        for k, s in enumerate(operands)
    }
    return names, dims


@cache
def _dense_rules(expr: sp.MatrixExpr, adjoint: sp.MatrixSymbol) -> dict[str, sp.MatrixExpr]:
    """VJP of each operand: ``d trace(G^T expr) / d operand`` (SymPy's matrix calculus)."""
    objective = Trace(adjoint.T * expr)
    return {s.name: objective.diff(s) for s in expr.atoms(sp.MatrixSymbol)}


def _as_shape(term: sp.MatrixExpr, parent: Node) -> sp.MatrixExpr:
    """SymPy may return the transpose of what a parameter's shape needs (``(1ᵀG)ᵀ`` for a
    row-vector bias); put it back in the parent's own shape."""
    if term.shape != parent.matrix.shape and term.T.shape == parent.matrix.shape:
        term = term.T
    return term.doit() if hasattr(term, "doit") else term


@dataclass
class RowActivationOp:
    """``A = g(Z)`` applied to each row of ``Z``; ``width`` is the row length."""

    name: str
    width: sp.Expr

    @property
    def label(self) -> str:
        return self.name

    def definition(self, z_sym: sp.Symbol) -> sp.Expr:
        act = rules.activation(self.name)
        return lift(act.definition, {z: z_sym}, self.width)

    def local_derivative(self, node: Node) -> sp.Expr | None:
        """``g'(Z)`` read elementwise, or None when the Jacobian is not diagonal (softmax)."""
        if not rules.activation(self.name).elementwise:
            return None
        rule = rules._to_row(rules.elementwise_derivative(self.name), rules.l)
        return lift(rule, {z: node.parents[0].symbol, a: node.symbol}, self.width)

    def backward(self, node: Node, adjoint: sp.MatrixSymbol) -> dict:
        (parent,) = node.parents
        rows = {rules.da: _stand_in(adjoint), a: node.symbol, z: parent.symbol}
        term = lift(rules.activation_vjp(self.name), rows, self.width)
        return {parent: (self.local_derivative(node), term)}


@dataclass
class CostOp:
    """``J = (1/m) sum over rows of loss(A_row, Y_row)``: the mean loss of a batch."""

    name: str
    width: sp.Expr

    @property
    def label(self) -> str:
        return self.name

    def definition(self, a_sym: sp.Symbol, y_sym: sp.Symbol) -> sp.Expr:
        per_row = lift(rules.loss(self.name).definition, {a: a_sym, y: y_sym}, self.width)
        return total(per_row) / m

    def backward(self, node: Node, adjoint: sp.Expr) -> dict:
        output, target = node.parents
        rows = {a: output.symbol, y: target.symbol}
        grad = lift(rules.loss_gradient(self.name), rows, self.width)
        return {output: (grad, _stand_in(adjoint) * grad / m)}


def as_elementwise(expr: sp.MatrixExpr) -> sp.Expr:
    """A matrix expression that holds no true matrix product, read entry by entry: ``dR1`` is
    the stand-in ``dR1``, ``M ⊙ G`` is ``M*G``, ``1 b`` is ``b`` broadcast over the rows.
    Raises ``NotImplementedError`` for a product such as ``dZ Wᵀ``."""
    if isinstance(expr, sp.MatrixSymbol):
        return _stand_in(expr)
    if isinstance(expr, sp.MatAdd):
        return sp.Add(*[as_elementwise(t) for t in expr.args])
    if isinstance(expr, sp.HadamardProduct):
        return sp.Mul(*[as_elementwise(t) for t in expr.args])
    if isinstance(expr, sp.MatMul):
        coeff, matrices = expr.as_coeff_matrices()
        ones = matrices[0]
        if len(matrices) == 2 and isinstance(ones, sp.OneMatrix) and ones.shape[1] == 1:
            return coeff * as_elementwise(matrices[1])  # a row broadcast over the rows
        if len(matrices) == 1:
            return coeff * as_elementwise(matrices[0])
    raise NotImplementedError(f"{expr} is a matrix product, not an elementwise expression")
