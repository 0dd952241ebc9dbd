"""A computation graph: named nodes, each defined from its parents by one operation.

A ``Node`` is what a teacher draws as a circle: ``z1``, ``a1``, ``W1``. Its ``op`` knows how
to take one backward step through it (the local derivative, or at matrix level the
vector-Jacobian product); the graph itself knows nothing about calculus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

ROLES = ("input", "target", "param", "hidden", "output", "loss", "mask")


@dataclass(eq=False)
class Node:
    """One named value of the graph.

    ``expr`` defines the node from its parents' symbols (None for leaves). At the scalar level
    ``symbol`` is a plain SymPy symbol; at the matrix level it stands for the whole matrix in
    elementwise formulas, and ``matrix`` is the ``MatrixSymbol`` used in matrix products.
    ``tensor`` says which array element a scalar node is, e.g. ``("W1", (0, 2))``;
    ``array_shape`` is the NumPy shape of a matrix node when it is not the matrix shape
    (a bias ``1×n`` is stored as ``(n,)``).
    """

    name: str
    role: str
    op: object = None
    parents: tuple[Node, ...] = ()
    expr: sp.Expr | None = None
    shape: tuple = ()
    tensor: tuple[str, tuple[int, ...]] | None = None
    array_shape: tuple | None = None
    latex: str | None = None
    symbol: sp.Symbol = field(init=False)
    matrix: sp.MatrixSymbol | None = field(init=False, default=None)

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; known: {', '.join(ROLES)}")
        self.symbol = sp.Symbol(self.name, real=True)
        if self.shape:
            self.matrix = sp.MatrixSymbol(self.name, *self.shape)
            if self.array_shape is None:
                self.array_shape = self.shape

    @property
    def is_leaf(self) -> bool:
        return self.expr is None

    @property
    def label(self) -> str:
        """Short name of the operation, for graph pictures: ``sigmoid``, ``+``, ``@``."""
        return getattr(self.op, "label", self.role)

    def __repr__(self) -> str:
        if self.is_leaf:
            return f"Node({self.name}: {self.role})"
        return f"Node({self.name} = {self.expr})"


def topological(nodes: list[Node]) -> list[Node]:
    """Order nodes so that every parent comes before its children (stable for ties)."""
    seen: set[int] = set()
    order: list[Node] = []

    def visit(node: Node) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.parents:
            visit(parent)
        order.append(node)

    for node in nodes:
        visit(node)
    return order


def children_of(nodes: list[Node]) -> dict[Node, list[Node]]:
    """Map each node to the nodes that use it, in graph order."""
    children: dict[Node, list[Node]] = {node: [] for node in nodes}
    for node in nodes:
        for parent in dict.fromkeys(node.parents):
            children[parent].append(node)
    return children
