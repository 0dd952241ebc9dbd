"""``Model`` (a computation graph with a cost) and ``Derivation`` (its backward sweep)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from . import registry
from .chain_rule import Step, _stand_in, adjoint_symbol, sweep
from .errors import BackpropInputError
from .graph import Node, topological


@dataclass(eq=False)
class Model:
    """A computation graph ending in a cost, at the ``"scalar"`` or ``"matrix"`` level.

    >>> from derive import chain
    >>> model = chain(2)
    >>> [node.name for node in model.nodes if node.role == "param"]
    ['w1', 'b1', 'w2', 'b2']
    """

    kind: str
    level: str
    nodes: list[Node]
    cost: Node
    sizes: tuple[int, ...] = ()
    activation: str | None = None
    output: str | None = None
    loss: str | None = None
    dims: dict[sp.Symbol, int] = field(default_factory=dict)
    source: str | None = None  # the expression text a user gave, for kind "expr"

    def __post_init__(self):
        self.nodes = topological(self.nodes)
        check_names(self.nodes, self.needs_gradient(), self.cost)

    # -- what the graph holds

    def by_role(self, *roles: str) -> list[Node]:
        return [node for node in self.nodes if node.role in roles]

    @property
    def params(self) -> list[Node]:
        return self.by_role("param")

    @property
    def inputs(self) -> list[Node]:
        return self.by_role("input")

    @property
    def targets(self) -> list[Node]:
        return self.by_role("target")

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r}; nodes: {', '.join(n.name for n in self.nodes)}")

    @property
    def spec(self) -> str:
        """The spec string that builds this model, e.g. ``mlp:4-3-2``."""
        if self.kind in ("network", "matrix_expr"):
            return self.source or "network"
        if self.kind == "expr":
            return self.source or f"{self.cost.name} = {self.cost_expression()}"
        if self.kind == "logreg":
            return f"logreg:{self.sizes[0]}"
        if self.kind == "chain":
            return f"chain:{len(self.sizes) - 1}"
        return "mlp:" + "-".join(map(str, self.sizes))

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Array name -> shape, as the generated kernels take them (DESIGN.md contract)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for node in self.params:
            if self.level == "matrix":
                shapes[node.name] = tuple(self._size(d) for d in node.array_shape)
            elif node.tensor is None:
                shapes[node.name] = ()
            else:
                name, index = node.tensor
                old = shapes.get(name, (0,) * len(index))
                shapes[name] = tuple(max(o, k + 1) for o, k in zip(old, index, strict=True))
        return shapes

    def choices(self, hidden: str = "hidden") -> list[str]:
        """The options it was built with, in words: ``["tanh hidden", "sigmoid output",
        "bce loss"]`` (logistic regression and expressions have fewer)."""
        named = [(self.activation, hidden), (self.output, "output"), (self.loss, "loss")]
        return [f"{value} {role}" for value, role in named if value]

    def data_shapes(self, m: int | sp.Expr | None = None) -> dict[str, tuple]:
        """Shapes of ``X`` and ``Y`` for a batch of ``m`` rows (the symbol ``m`` by default).

        ``Y`` is ``(m,)`` for logistic regression and integer labels, ``(m, 0)`` for an
        expression (no targets; its inputs, if any, are the columns of ``X``).

        >>> from derive import build
        >>> build("mlp:4-3-2").data_shapes(), build("logreg:3").data_shapes(5)
        ({'X': (m, 4), 'Y': (m, 2)}, {'X': (5, 3), 'Y': (5,)})
        """
        from .ops import m as batch

        m = batch if m is None else m
        n_in = self._size(self.inputs[0].shape[1]) if self.level == "matrix" else len(self.inputs)
        if not self.targets:
            return {"X": (m, n_in), "Y": (m, 0)}
        vector = self.labels or self.real_target_vector
        return {"X": (m, n_in), "Y": (m,) if vector else (m, self.n_outputs)}

    @property
    def n_outputs(self) -> int:
        """Output units: columns of ``Y`` (one-hot for labels), 0 for an expression."""
        if self.level == "matrix" and self.targets:
            (target,) = self.targets
            return self._size(target.shape[1])
        return len(self.targets)

    @property
    def labels(self) -> bool:
        """``Y`` holds integer class labels (a sparse loss), one per example."""
        return self.loss is not None and registry.loss(self.loss).targets == "labels"

    @property
    def real_target_vector(self) -> bool:
        """``Y`` holds one real target per example as ``(m,)`` (logistic regression's contract),
        not a column ``(m, 1)``."""
        if self.labels or not self.targets:
            return False
        if self.level == "matrix":
            return len(self.targets[0].array_shape) == 1
        return self.kind == "logreg"

    def _size(self, dim) -> int:
        return int(sp.sympify(dim).xreplace(self.dims))

    def needs_gradient(self) -> set[Node]:
        """Nodes on some path from a parameter to the cost: only these get adjoints."""
        wanted: set[Node] = set()
        for node in self.nodes:
            if node.role == "param" or any(p in wanted for p in node.parents):
                wanted.add(node)
        return wanted

    # -- algebra the derivation needs

    def use_target_facts(self, expr: sp.Expr) -> sp.Expr:
        """Apply what the targets are known to satisfy: one-hot rows sum to 1."""
        if self.loss is None or not registry.loss(self.loss).rows_sum_to_one:
            return expr
        if self.level == "matrix":
            from .ops import rowsum

            (target,) = self.targets
            return expr.xreplace({rowsum(target.symbol): sp.Integer(1)})
        return rows_sum_to_one(expr, [t.symbol for t in self.targets])

    def expand(self, expr: sp.Expr) -> sp.Expr:
        """Replace every forward node by its definition, down to inputs and parameters."""
        return expr.xreplace(self._definitions)

    @cached_property
    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        defs: dict[sp.Symbol, sp.Expr] = {}
        for node in self.nodes:
            if not node.is_leaf:
                defs[node.symbol] = node.expr.xreplace(defs)
        return defs

    def cost_expression(self) -> sp.Expr:
        """The cost written out in inputs and parameters (one example at the scalar level)."""
        return self.expand(self.cost.symbol)

    def derive(self) -> Derivation:
        """Run the reverse-mode chain rule over the graph.

        >>> from derive import logistic_regression
        >>> d = logistic_regression(2).derive()
        >>> d.gradient("b"), d.gradient("b", closed=True)
        (dz, a - y)
        """
        return Derivation(self, sweep(self))

    def __repr__(self) -> str:
        return f"Model({self.spec}, level={self.level!r}, {len(self.nodes)} nodes)"


def check_names(nodes: list[Node], with_adjoint: set[Node], cost: Node) -> None:
    """Refuse names the derivation would confuse: two nodes of one name, a name that is not an
    identifier (it reaches generated code, LaTeX and file names), or a node called ``dx``
    beside a node ``x`` whose adjoint is written ``dx`` (the kernel would overwrite one)."""
    seen: set[str] = set()
    for node in nodes:
        if not isinstance(node.name, str) or not node.name.isidentifier():
            raise BackpropInputError(
                f"node name {node.name!r} is not an identifier: use letters, digits and _"
            )
        if node.name in seen:
            raise BackpropInputError(f"two nodes are named {node.name!r}; names must be unique")
        seen.add(node.name)
    for node in with_adjoint:
        adjoint = adjoint_symbol(node).name
        if node is not cost and adjoint in seen:
            raise BackpropInputError(
                f"the name {adjoint!r} is taken: it is the adjoint of {node.name!r} "
                f"(the derivative of the cost by it); rename {adjoint!r}"
            )


def rows_sum_to_one(expr: sp.Expr, ys: list[sp.Symbol]) -> sp.Expr:
    """Use ``y_1 + ... + y_n = 1`` to shorten an expression that is linear in the targets.

    Writes ``expr = c0 + sum_k c_k y_k`` and takes out the coefficient ``c`` that shortens it
    most: ``c * sum_k y_k = c``. So ``-y_2 + a_2 (y_1 + y_2 + y_3)`` becomes ``a_2 - y_2``,
    and ``a_2 y_1 - y_2 (1 - a_2)`` (two outputs) too.
    """
    split = _linear_in(sp.expand(expr), ys)
    if split is None:
        return expr
    constant, coeffs = split
    values = [coeffs.get(y, sp.Integer(0)) for y in ys]
    best = expr
    for common in set(values) - {sp.Integer(0)}:  # with two outputs no coefficient repeats
        rest = sp.Add(*[(c - common) * y for c, y in zip(values, ys, strict=True)])
        shorter = constant + common + rest
        if sp.count_ops(shorter) < sp.count_ops(best):
            best = shorter
    return best


def _linear_in(expr: sp.Expr, ys: list[sp.Symbol]):
    """``(c0, {y: c_y})`` with ``expr = c0 + sum c_y y``, or None if not linear in ``ys``."""
    targets = set(ys)
    constant, coeffs = sp.Integer(0), {}
    for term in sp.Add.make_args(expr):
        present = term.free_symbols & targets
        if not present:
            constant += term
            continue
        if len(present) > 1:
            return None
        (y,) = present
        coeff = sp.cancel(term / y)
        if coeff.has(y):
            return None
        coeffs[y] = coeffs.get(y, sp.Integer(0)) + coeff
    return constant, coeffs


class Derivation:
    """Every step of the backward sweep, and each parameter's gradient.

    ``steps`` runs from the cost back to the parameters. ``gradient(name)`` gives the
    textbook form: in forward values and the adjoints of later nodes, as the recursion of
    backprop writes it; ``closed=True`` substitutes those adjoints (forward values only);
    ``expanded=True`` writes it in inputs and parameters alone, for cross-checks.
    """

    def __init__(self, model: Model, steps: list[Step]):
        self.model = model
        self.steps = steps
        self._by_node = {step.node: step for step in steps}

    def step(self, node: Node | str) -> Step:
        node = self.model.node(node) if isinstance(node, str) else node
        return self._by_node[node]

    @property
    def gradients(self) -> dict[str, sp.Expr]:
        """Parameter name -> gradient in textbook form."""
        return {p.name: self._by_node[p].value for p in self.model.params if p in self._by_node}

    def gradient(self, name: str, closed: bool = False, expanded: bool = False) -> sp.Expr:
        value = self.step(name).value
        if closed or expanded:
            value = value.xreplace(self._closed_adjoints)
        if expanded:
            value = self.model.expand(value)
        return value

    @cached_property
    def _closed_adjoints(self) -> dict[sp.Symbol, sp.Expr]:
        """Each adjoint symbol -> its value in forward values only (built cost-first)."""
        closed: dict[sp.Symbol, sp.Expr] = {}
        for step in self.steps:
            if isinstance(step.value, sp.MatrixExpr) or step.node is self.model.cost:
                continue
            closed[_stand_in(step.adjoint)] = step.value.xreplace(closed)
        return closed

    def needed_steps(self) -> list[Step]:
        """Steps whose adjoints the parameter gradients use, in backward order."""
        needed: set = set()
        for step in reversed(self.steps):
            if step.node.role == "param" or _stand_in_name(step) in needed:
                needed |= {s.name for s in step.value.free_symbols}
                needed.add(_stand_in_name(step))
        return [
            s for s in self.steps if _stand_in_name(s) in needed and s.node is not self.model.cost
        ]

    def __repr__(self) -> str:
        return f"Derivation({self.model.spec}, level={self.model.level!r}, {len(self.steps)} steps)"


def _stand_in_name(step: Step) -> str:
    return getattr(step.adjoint, "name", "")


__all__ = ["Model", "Derivation", "adjoint_symbol", "rows_sum_to_one"]
