"""The :class:`Program`: every statement a kernel may need, read from a Derivation — one per
forward node, one per backward step, each in the stable form the kernel computes — and
which adjoints make up the returned gradients. :mod:`numeric.generator.module_writer` prints it.
"""

from __future__ import annotations

import sympy as sp

from derive.ops import m as BATCH
from derive.ops import rowsum, total

from .kernel import Kernel
from .module_writer import ModuleWriter
from .printers import EquationPrinter, KernelPrinter, batch_mean, elementwise_form, zeros_like
from .stable import clamp_branches, stabilize
from .statements import Names, Statement, array_symbols, is_matrix

# the row of ones of 1ᵀ dZ, as a vector (m,); "#" keeps it apart from a user's symbol "ones"
ONES = sp.MatrixSymbol("#ones", 1, BATCH)


class Program:
    """Every statement a kernel may need, built from a Derivation, before printing."""

    def __init__(self, derivation):
        self.derivation = derivation
        self.model = model = derivation.model
        self.matrix = model.level == "matrix"
        self.names = Names()
        self.names.map[ONES.name] = "ones"
        if self.matrix:  # the data arrays keep their names (a scalar x named X is renamed)
            self.names.map.update(X="X", Y="Y")
        self.equation = EquationPrinter()
        self.dims = {k: sp.Integer(v) for k, v in model.dims.items()}
        self.ranks = {n.name: len(n.array_shape) for n in model.nodes if n.array_shape is not None}
        self.ranks.update({"d" + name: rank for name, rank in list(self.ranks.items())})
        self.labels = model.labels
        self.definitions = {
            node.symbol: self._prep(node.expr)
            for node in model.nodes
            if not node.is_leaf and node is not model.cost and not is_matrix(node.expr)
        }
        self.batch_names = self._batch_names()
        # the kernel calls the mean cost J; at the scalar level it is the mean of the cost node
        self.cost_name = model.cost.name if self.matrix else "#mean cost"
        self.names.map[self.cost_name] = "J"
        self.forward_statements = self._forward()
        self.backward_statements = self._backward()
        self.gradient_outputs = self._gradients()

    # -- reading the Derivation

    def _prep(self, expr):
        if is_matrix(expr):  # 1ᵀ dZ as ones @ dZ: a matrix-vector product beats dZ.sum(axis=0)
            return expr.replace(
                lambda e: isinstance(e, sp.MatMul) and _sums_matrix_rows(e, self.ranks),
                lambda e: e.func(*[ONES if isinstance(a, sp.OneMatrix) else a for a in e.args]),
            )
        return sp.sympify(expr).xreplace(self.dims)

    def _stable(self, expr, rank: int | None = None):
        """``expr`` as the kernel computes it; ``rank`` is the number of axes of its array."""
        if is_matrix(expr):
            elementwise = elementwise_form(expr, self.ranks, rank)  # 0-d weights of a chain
            if elementwise is None:
                return self._prep(expr)
            expr = elementwise
        return clamp_branches(fold_piecewise(stabilize(self._prep(expr), self.definitions)))

    def _eq(self, expr) -> str:
        return self.equation.doprint(expr)

    def _batch_names(self) -> set[str]:
        """Scalar level: names whose values differ between examples (batch vectors)."""
        data = set()
        for node in self.model.nodes:
            if node.role in ("input", "target") or any(p.name in data for p in node.parents):
                data.add(node.name)
        if self.model.cost.name in data:
            data |= {
                step.adjoint.name
                for step in self.derivation.steps
                if step.node is not self.model.cost
            }
        return data

    def _is_batch(self, expr) -> bool:
        return any(s.name in self.batch_names for s in array_symbols(expr) if s != BATCH)

    def _forward(self) -> list[Statement]:
        out = []
        for node in self.model.nodes:
            if node.is_leaf or node is self.model.cost:
                continue
            out.append(
                Statement(
                    node.name,
                    self._stable(node.expr, self.ranks.get(node.name)),
                    node.name,
                    "forward",
                    f"{node.name} = {self._eq(node.expr)}",
                )
            )
        cost = self.model.cost
        equation = f"{cost.name} = {self._eq(cost.expr)}"
        if self.matrix:
            out.append(Statement(cost.name, self._stable(cost.expr), cost.name, "cost", equation))
        else:
            out.append(Statement(cost.name, self._stable(cost.expr), cost.name, "loss", equation))
            mean = batch_mean(cost.symbol) if self._is_batch(cost.symbol) else cost.symbol
            out.append(
                Statement(
                    self.cost_name,
                    mean,
                    cost.name,
                    "cost",
                    f"J = mean({cost.name}) over the batch",
                )
            )
        return out

    def _backward(self) -> list[Statement]:
        out, constants = [], {}
        for step in self.derivation.needed_steps():
            node, name = step.node, step.adjoint.name
            kind = "gradient" if node.role == "param" else "adjoint"
            expr = self._stable(step.value, self.ranks.get(name))
            equation = f"{name} = {self._eq(step.value)}"
            if not is_matrix(expr):
                expr = expr.xreplace(constants)
                if self.matrix and not expr.free_symbols - {BATCH}:  # flat activation: 0
                    expr = zeros_like(node.symbol) + expr
                elif not self.matrix and node.role == "param":
                    expr = batch_mean(expr) if self._is_batch(expr) else expr
                    equation = f"{name} = mean({self._eq(step.value)}) over the batch"
                elif not self.matrix and expr.is_Number:
                    constants[step.adjoint] = expr  # e.g. 0 through a step activation
            out.append(Statement(name, expr, node.name, kind, equation))
        return out

    def _gradients(self) -> list[tuple[str, str]]:
        """(parameter array, adjoint name or element names) for the returned dict."""
        steps = {s.node.name: s.adjoint.name for s in self.derivation.needed_steps()}
        out = []
        for name, shape in self.model.param_shapes().items():
            if self.matrix or not shape:  # the parameter is one node
                out.append((name, steps.get(name)))
            else:
                elements = {}
                for node in self.model.params:
                    if node.tensor is not None and node.tensor[0] == name:
                        elements[node.tensor[1]] = steps.get(node.name)
                out.append((name, elements))
        return out

    # -- data layout (DESIGN.md contract)

    # -- rendering

    def render(self, printer_class: type[KernelPrinter], dtype: str = "float64") -> Kernel:
        return ModuleWriter(self, printer_class, dtype).kernel()


def fold_piecewise(expr: sp.Expr) -> sp.Expr:
    """Lift each Piecewise to the top of its elementwise expression (``dA1 * [Z1 > 0]`` is
    ``np.where(Z1 > 0, dA1, 0)``), but never out of a sum over entries: a condition holds
    entry by entry, a sum does not."""
    reductions = [
        e for e in sp.preorder_traversal(expr) if isinstance(e, (rowsum, total, batch_mean))
    ]
    if not reductions:
        return sp.piecewise_fold(expr)
    outer = reductions[0]
    inner = outer.func(fold_piecewise(outer.args[0]))
    stand_in = sp.Dummy("reduction", real=True)
    return fold_piecewise(expr.xreplace({outer: stand_in})).xreplace({stand_in: inner})


def _sums_matrix_rows(expr: sp.MatMul, ranks: dict[str, int]) -> bool:
    """``1ᵀ dZ`` with ``dZ`` a matrix (a vector's sum is just ``dZ.sum()``)."""
    matrices = expr.as_coeff_matrices()[1]
    if len(matrices) != 2 or not isinstance(matrices[0], sp.OneMatrix):
        return False
    ones, operand = matrices
    return (
        ones.shape[0] == 1
        and isinstance(operand, sp.MatrixSymbol)
        and (ranks.get(operand.name, 2) > 1)
    )
