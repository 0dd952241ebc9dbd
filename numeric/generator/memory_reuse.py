"""The memory-reuse plan of a kernel function: which statements write their result into an
array that is already there (``out=``) — one of their own operands that nothing reads
afterwards, or a dead array of the same shape — instead of allocating a new one.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.relational import Relational

from derive.ops import m as BATCH

from .kernel_forms import plain_product, shape_of
from .statements import identifiers, is_matrix


def reuse_plan(statements, returns, shapes, names, prefer=frozenset()) -> dict:
    """For each statement, an array its result may be written into (``out=``), as
    ``(name, is_operand)`` — an operand also with the arrays a factor of the result may be
    computed in, ``(name, True, scratch)``; fewer live arrays keep a deep
    net's working set in cache and spare the allocator fresh pages (each a page fault).

    * an elementwise result may overwrite one of its own operands that nothing reads
      afterwards (``np.tanh(Z1, out=Z1)``, ``np.multiply(dA1, ..., out=dA1)``);
    * a matrix product may take the memory of an array of its shape that is no longer
      needed (the backward ``dA1 = dZ2 @ W2.T`` into ``A1``, once ``dW2`` has read it).

    Only arrays made in this function are reused, never the caller's (X, Y, params).
    """
    returned = set().union(*(identifiers(code) for _, code, _ in returns))
    last_use: dict[str, int] = {}
    for i, s in enumerate(statements):
        for dep in s.deps:
            last_use[dep] = i
    home_of: dict[str, str] = {}  # identifier -> the array it lives in (its first name)
    members: dict[str, list[str]] = {}  # array -> every identifier living in it
    shapes = dict(shapes)
    plan: dict = {}

    def shape_of_symbol(symbol) -> tuple:
        return shapes.get(names.of(symbol), ())

    def free(home: str, i: int, here: bool) -> bool:
        """Nothing reads the array after statement i (or after i - 1)."""
        limit = i if here else i - 1
        return all(last_use.get(n, -1) <= limit and n not in returned for n in members[home])

    def reusable(sym, i: int, shape) -> bool:
        """``sym`` lives in an array of ``shape`` that nothing reads after statement i."""
        home = home_of.get(names.of(sym))
        return bool(home) and shapes.get(home) == shape and free(home, i, here=True)

    for i, s in enumerate(statements):
        if s.code is not None or s.expr is None:
            continue
        target = names(s.target)
        if isinstance(s.expr, (sp.Symbol, sp.MatrixSymbol)):  # an alias: A2 = Z2
            source = names.of(s.expr)
            if source in home_of:
                home_of[target] = home_of[source]
                members[home_of[source]].append(target)
            continue
        matrix = is_matrix(s.expr)
        shape = shapes.get(target) if matrix else shape_of(s.expr, shape_of_symbol)
        if not shape or isinstance(s.expr, (Relational, sp.logic.boolalg.Boolean)):
            continue
        choice = None
        if not matrix or _sum_of_arrays(s.expr):
            operands = _direct_operands(s.expr)  # an adjoint's memory first: dA1 in dZ1
            for sym in sorted(operands, key=lambda o: names.of(o) not in prefer):
                if reusable(sym, i, shape):
                    choice = (names.of(sym), True)
                    break
        elif _product_into(s.expr):
            for home in members:
                if shapes.get(home) == shape and free(home, i, here=False):
                    choice = (members[home][-1], False)
                    break
        if choice is not None and choice[1]:  # other dead operands: where a factor may go
            read = {names.of(a) for a in s.expr.free_symbols}
            scratch = []
            for a in sorted(s.expr.free_symbols, key=sp.default_sort_key):
                if not reusable(a, i, shape) or home_of[names.of(a)] == home_of[choice[0]]:
                    continue
                aliases = set(members[home_of[names.of(a)]]) - {names.of(a)}
                if not aliases & read:  # A2 = Z2 read as both: the factor would clobber Z2
                    scratch.append(names.of(a))
            choice += (tuple(scratch),)
        if choice is not None:
            plan[id(s)] = choice
            home_of[target] = home_of[choice[0]]
            members[home_of[target]].append(target)
            shapes[target] = shape  # a later formula reading it must see its shape, not ()
        elif not matrix or _fresh_matrix(s.expr):
            home_of[target], members[target], shapes[target] = target, [target], shape
    return plan


def _product_into(expr) -> bool:
    """A matrix product the printers can write into a given array (``A @ B``, ``A @ B + b``)."""
    if isinstance(expr, sp.MatAdd):
        return len(expr.args) == 2 and any(plain_product(a) for a in expr.args)
    return plain_product(expr)


def _direct_operands(expr) -> list[sp.Symbol]:
    """Arrays that are themselves operands of the top operation (``dA1`` in
    ``dA1 * (1 - A1**2)``, ``Z1`` in ``tanh(Z1)``, ``A2`` in ``A2 + X``): the ones an
    ``out=`` may overwrite."""
    if _sum_of_arrays(expr):
        return list(expr.args)
    if isinstance(expr, sp.Piecewise):
        args = [expr.args[0].expr]
    elif isinstance(expr, sp.Mul):
        args = list(expr.args)
    elif isinstance(expr, (sp.Add, sp.Function)):
        args = list(expr.args)
    else:
        args = []
    return [a for a in args if isinstance(a, sp.Symbol) and a != BATCH]


def _sum_of_arrays(expr) -> bool:
    """``A2 + X``: a sum of matrices that are arrays (a residual block's output), computed
    like any elementwise sum. Written into a dead operand it takes half the time of a new
    array (3.4 against 6.8 µs, 128×256 float32; float64 6.3 against 12.2) and spares the
    allocator a fresh array per block."""
    return isinstance(expr, sp.MatAdd) and all(isinstance(a, sp.MatrixSymbol) for a in expr.args)


def _fresh_matrix(expr) -> bool:
    """A matrix statement that makes a new array (not ``1 b``, which is ``b`` itself)."""
    if isinstance(expr, sp.MatAdd | sp.HadamardProduct):
        return True
    if isinstance(expr, sp.MatMul):
        matrices = expr.as_coeff_matrices()[1]
        return not isinstance(matrices[0], sp.OneMatrix) or matrices[0].shape[1] != 1
    return False
