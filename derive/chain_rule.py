"""Reverse-mode multivariate chain rule: one backward sweep over a computation graph.

Walking from the cost back to the parameters, the *adjoint* of a node (the derivative of
the cost with respect to it) is the sum, over the node's children, of the child's adjoint
times the local derivative of the child with respect to the node. Each term of that sum is a
*branch*; a node with several children is a *fork*, where branches add. Every step is kept,
in order, so a report can show the calculus a teacher writes on the board.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .graph import Node
from .ops import as_elementwise
from .rules import simplest


@dataclass
class Branch:
    """One path from a child back to a node: ``term = adjoint(child) * local_derivative``."""

    child: Node
    local_derivative: sp.Expr | None
    term: sp.Expr


@dataclass
class Step:
    """The backward step at one node.

    ``named`` is the sum of the branch terms, written with the children's adjoints (the
    chain rule as a product of named factors); ``value`` is the form the kernels use: the
    same sum, or, where substituting the children's closed forms makes it shorter, the
    simplified result (``a - y`` for sigmoid with cross-entropy).
    """

    node: Node
    adjoint: sp.Expr
    branches: list[Branch] = field(default_factory=list)
    named: sp.Expr = sp.Integer(1)
    value: sp.Expr = sp.Integer(1)

    @property
    def is_fork(self) -> bool:
        return len(self.branches) > 1

    @property
    def simplified(self) -> bool:
        return self.value != self.named


def adjoint_symbol(node: Node) -> sp.Expr:
    """``dz1`` for a scalar node, the matrix ``dZ1`` (same shape as ``Z1``) at matrix level."""
    name = "d" + node.name
    if node.matrix is not None:
        return sp.MatrixSymbol(name, *node.shape)
    return sp.Symbol(name, real=True)


def _stand_in(adjoint: sp.Expr) -> sp.Symbol:
    return sp.Symbol(adjoint.name, real=True) if isinstance(adjoint, sp.MatrixSymbol) else adjoint


def _sum(terms: list[sp.Expr]) -> sp.Expr:
    matrices = [isinstance(t, sp.MatrixExpr) for t in terms]
    if all(matrices):
        return sp.MatAdd(*terms).doit() if len(terms) > 1 else terms[0]
    if any(matrices):  # a fork read by a layer norm (entry by entry) and by a residual sum
        return sp.Add(*[as_elementwise(t) if m else t for t, m in zip(terms, matrices)])
    return sp.Add(*terms)


def sweep(model) -> list[Step]:
    """The backward sweep: one step per node that lies between a parameter and the cost.

    Classic reverse-mode accumulation: once a node's adjoint is known, its op is asked once
    for the branch it sends to each parent; a parent is visited after all its children.
    """
    wanted = model.needs_gradient()
    pending: dict[Node, list[Branch]] = {node: [] for node in model.nodes}
    steps: list[Step] = []
    by_node: dict[Node, Step] = {}
    adjoint_names: set[sp.Symbol] = set()
    for node in reversed(model.nodes):
        if node is model.cost:
            step = Step(node, sp.Integer(1))
        elif node in wanted and pending[node]:
            step = Step(node, adjoint_symbol(node), pending[node])
            step.named = _sum([b.term for b in step.branches])
            step.value = _textbook_value(step, by_node, adjoint_names, model)
            adjoint_names.add(_stand_in(step.adjoint))
        else:
            continue
        steps.append(step)
        by_node[node] = step
        if node.is_leaf:
            continue
        for parent, (local, term) in node.op.backward(node, step.adjoint).items():
            if parent in wanted:
                pending[parent].append(Branch(node, local, term))
    return steps


def _textbook_value(step: Step, by_node: dict, adjoint_names: set, model) -> sp.Expr:
    """Substitute the children's closed forms and keep the result when it is no longer.

    A parameter keeps its named form (``dW = a_prev dz`` is the textbook), and the costly
    simplification is tried only where a fraction can cancel (sigmoid with cross-entropy);
    elsewhere the facts about the targets are all that can shorten a sum.
    """
    if isinstance(step.named, sp.MatrixExpr) or step.node.role == "param":
        return step.named
    closed = {}
    for branch in step.branches:
        child_value = by_node[branch.child].value
        if isinstance(child_value, sp.MatrixExpr) or child_value.free_symbols & adjoint_names:
            return step.named
        closed[_stand_in(by_node[branch.child].adjoint)] = child_value
    budget = sp.count_ops(step.named)
    candidate = model.use_target_facts(step.named.xreplace(closed))
    if sp.count_ops(candidate) > budget and _has_fraction(candidate):
        candidate = simplest(candidate)
    if sp.count_ops(candidate) > budget:
        return step.named
    return sp.factor_terms(candidate)  # (A - Y)/m rather than A/m - Y/m


def _has_fraction(expr: sp.Expr) -> bool:
    return any(p.exp.is_negative for p in expr.atoms(sp.Pow))
