"""The units a kernel function is built from: a :class:`Statement` (one assignment, with the
node it implements and the identifiers it reads and writes), the :class:`Names` that turn
SymPy names into Python identifiers, and :func:`live`, which keeps only the statements a
function's results need.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass

import sympy as sp

from derive.ops import m as BATCH

# Identifiers a kernel uses for itself; graph names that collide get a trailing underscore.
_RESERVED = {
    "np", "jnp", "jax", "params", "X", "Y", "m", "J", "PARAMS", "sigmoid", "softplus",
    "forward", "loss", "loss_and_grads", "grads", "ones", "masks",
}  # fmt: skip


@dataclass
class Statement:
    """One assignment of a kernel function.

    ``expr`` is what is computed (SymPy, already in stable form), or None for a line given as
    ``code`` (unpacking parameters, reading columns of X). ``node`` is the forward node or
    backward step the line implements; ``equation`` the formula for its comment.
    """

    target: str
    expr: sp.Basic | None
    node: str
    kind: str
    equation: str = ""
    code: str | None = None
    provides: frozenset[str] = frozenset()
    deps: frozenset[str] = frozenset()


def is_matrix(expr) -> bool:
    return isinstance(expr, sp.MatrixExpr)


def array_symbols(expr) -> set:
    """The arrays and numbers an expression reads (not the sizes inside matrix shapes)."""
    if expr is None:
        return set()
    if is_matrix(expr):
        return set(expr.atoms(sp.MatrixSymbol))
    return set(expr.free_symbols)


class Names:
    """SymPy names -> Python identifiers, unique, never a keyword, builtin or reserved name."""

    def __init__(self):
        self.map: dict[str, str] = {}
        self.taken: set[str] = set(_RESERVED)

    def __call__(self, name: str) -> str:
        if name not in self.map:
            self.map[name] = self.fresh(name)
        return self.map[name]

    def fresh(self, wanted: str) -> str:
        ident = re.sub(r"\W", "_", wanted) or "t"
        if ident[0].isdigit():
            ident = f"_{ident}"
        while keyword.iskeyword(ident) or hasattr(builtins, ident) or ident in self.taken:
            ident += "_"
        self.taken.add(ident)
        return ident

    def of(self, symbol) -> str:
        return "m" if symbol == BATCH else self(symbol.name)

    def scope(self) -> Names:
        """A copy for one function: its shared temporaries get names there, not globally."""
        inner = Names()
        inner.map, inner.taken = dict(self.map), set(self.taken)
        return inner


def deps_of(expr, names: Names) -> frozenset[str]:
    """The identifiers an expression reads."""
    return frozenset(names.of(s) for s in array_symbols(expr))


def binding(lhs: str, code: str, node: str, comment: str = "", provides=None, deps=()):
    """A line given as code: unpacking parameters, reading columns, converting targets."""
    provides = frozenset(provides if provides is not None else {lhs})
    return Statement(lhs, None, node, "data", comment, code=code, provides=provides,
                     deps=frozenset(deps))  # fmt: skip


def live(statements: list[Statement], needed: set[str]) -> list[Statement]:
    """The statements whose results are needed, directly or through later statements."""
    needed, kept = set(needed), []
    for s in reversed(statements):
        if s.provides & needed:
            kept.append(s)
            needed |= s.deps
    return kept[::-1]


def identifiers(code: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", code))
