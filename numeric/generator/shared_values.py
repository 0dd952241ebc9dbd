"""Work a kernel function computes once: common subexpressions as named temporaries
(``Z1_pos = Z1 > 0``, the shifted ``exp`` of a softmax), each named after what it holds and
commented with why it exists, and a softplus shared by the sigmoid of the same argument.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.relational import Relational
from sympy.simplify.cse_main import tree_cse

from derive.ops import m as BATCH

from .printers import EquationPrinter
from .stable import maximum, rowmax, sigmoid, softplus
from .statements import Names, Statement, array_symbols, deps_of, is_matrix


def share_softplus(statements: list[Statement]) -> None:
    """Where a function needs softplus(u) anyway, write sigmoid(u) as exp(u - softplus(u)):
    the same value (its exponent is log sigmoid(u) <= 0, so it never overflows), and the
    softplus is computed once. A softplus layer's derivative then reuses its output."""
    elementwise = [s for s in statements if s.expr is not None and not is_matrix(s.expr)]
    arguments = set()
    for s in elementwise:
        arguments |= {f.args[0] for f in s.expr.atoms(softplus)}
    arguments |= {-u for u in arguments}
    for s in elementwise:
        s.expr = s.expr.replace(
            lambda e: isinstance(e, sigmoid) and e.args[0] in arguments,
            lambda e: sp.exp(e.args[0] - softplus(e.args[0])),
        )


def temp_ranks(statements, ranks) -> dict[str, int]:
    """The number of axes of each shared temporary: that of its widest operand."""
    out = {}
    for s in statements:
        if s.kind == "shared":
            out[s.target] = max(
                (ranks.get(sym.name, 0) for sym in array_symbols(s.expr)), default=0
            )
            ranks = {**ranks, **out}
    return out


def common_subexpressions(statements: list[Statement], p, names: Names) -> list[Statement]:
    """Compute repeated work once: ``Z1 > 0`` for ReLU's forward and backward, the shifted
    ``exp`` of a softmax and its log-sum-exp. Cheap repeats (``1/m``, ``-Y``) stay inline."""
    elementwise = [s for s in statements if s.expr is not None and not is_matrix(s.expr)]
    if not elementwise:
        return statements
    # repeated subtrees only (SymPy's opt_cse would also split products and sums apart)
    temps, reduced = tree_cse(
        [s.expr for s in elementwise], sp.numbered_symbols("_cse", real=True), {}, "none"
    )
    temp_symbols = {t for t, _ in temps}

    def is_array(symbol) -> bool:
        if symbol in temp_symbols:
            return True
        return symbol != BATCH if p.matrix else symbol.name in p.batch_names

    def worth_a_name(value) -> bool:
        """Repeated array work: not a bare array scaled by numbers (``-Y``, ``Y/m``)."""
        if not any(is_array(s) for s in value.free_symbols):
            return False
        arrays = [f for f in sp.Mul.make_args(value) if any(map(is_array, f.free_symbols))]
        if len(arrays) == 1 and isinstance(arrays[0], sp.Symbol):
            return False
        if isinstance(value, sp.Pow):  # 1/s: dividing by s costs what multiplying does
            return not (isinstance(value.base, sp.Symbol) and value.exp.is_Number)
        return True

    # name E rather than -E or 1/E (SymPy finds -max(u) in every u - max(u))
    scaled = {}
    for k, (t, v) in enumerate(temps):
        plain = sp.Symbol(f"{t.name}_", real=True)
        if isinstance(v, sp.Mul):
            coeff, rest = v.as_coeff_Mul()
            if coeff != 1 and coeff.is_Number and rest.free_symbols:
                temps[k] = (plain, rest)
                scaled[t] = coeff * plain
        elif isinstance(v, sp.Pow) and v.exp.is_Number and not v.base.is_Symbol:
            temps[k] = (plain, v.base)
            scaled[t] = plain**v.exp
    if scaled:
        temps = [(t, v.xreplace(scaled)) for t, v in temps]
        reduced = [r.xreplace(scaled) for r in reduced]
        temp_symbols = {t for t, _ in temps}

    inline = {t: v for t, v in temps if not worth_a_name(v)}
    kept = [(t, v) for t, v in temps if t not in inline]
    for _ in range(len(temps)):  # resolve chains of inlined temporaries
        inline = {t: v.xreplace(inline) for t, v in inline.items()}
    kept = [(t, v.xreplace(inline)) for t, v in kept]
    reduced = [r.xreplace(inline) for r in reduced]

    # a temporary that is a whole statement, first used there, takes the statement's name
    renames = {}
    for k, (s, r) in enumerate(zip(elementwise, reduced)):
        if r in dict(kept) and r not in renames:
            first = next(i for i, other in enumerate(reduced) if other.has(r))
            if first == k:
                renames[r] = sp.Symbol(s.target, real=True)
    values = dict(kept)
    for s, r in zip(elementwise, reduced):
        own = renames.get(r)
        s.expr = (
            values[r].xreplace(renames)
            if own is not None and own.name == s.target
            else (r.xreplace(renames))
        )
    kept = [(t, v.xreplace(renames)) for t, v in kept if t not in renames]

    # name the rest after what they hold, and place each just before its first use
    as_names: dict = {}
    shared, full, written_out = {}, {}, {}
    for t, v in kept:
        full[t] = v.xreplace(full)  # written out, for naming: exp(Z2 - rowmax(Z2))
        v = v.xreplace(as_names)
        ident = names.fresh(_temp_name(v, names))
        names.map[ident] = ident
        as_names[t] = sp.Symbol(ident, real=True)
        shared[ident] = Statement(ident, v, "", "shared", provides=frozenset({ident}))
        written_out[ident] = full[t]
    for st in shared.values():
        st.deps = deps_of(st.expr, names)
    for s in elementwise:
        s.expr = s.expr.xreplace(as_names)
        s.deps = deps_of(s.expr, names)

    out, placed = [], set()

    def place(user: Statement, statement: Statement):
        for dep in sorted(statement.deps):
            if dep in shared and dep not in placed:
                placed.add(dep)
                place(user, shared[dep])
                shared[dep].node = user.node
                out.append(shared[dep])

    for s in statements:
        place(s, s)
        out.append(s)
    for temp in shared.values():
        users = [s.target for s in out if temp.target in s.deps and s is not temp]
        temp.equation = _temp_comment(written_out[temp.target], users)
    return out


def _short(expr, names: Names) -> str:
    """A short name for what an expression is: its own name if it has one, else its array."""
    if isinstance(expr, sp.Symbol):
        return names.of(expr)
    if isinstance(expr, sp.Add) and len(expr.args) == 2:  # u - max(u): named after u
        shift = [
            a
            for a in expr.args
            if isinstance(-a, (rowmax, maximum))
            or ((-a).is_Symbol and names.of(-a).endswith("_max"))
        ]
        if shift:
            return _short(expr - shift[0], names)
    named = _temp_name(expr, names)
    if named != "t":
        return named
    symbols = [s for s in sp.preorder_traversal(expr) if isinstance(s, sp.Symbol) and s != BATCH]
    return names.of(symbols[0]) if symbols else "t"


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix.rstrip("_") or names[0]


def _temp_name(expr, names: Names) -> str:
    if isinstance(expr, rowmax):
        return f"{_short(expr.args[0], names)}_max"
    if isinstance(expr, maximum):
        return f"{_common_prefix([_short(a, names) for a in expr.args])}_max"
    if isinstance(expr, Relational) and expr.rhs == 0:
        word = {">": "pos", ">=": "nonneg", "<": "neg", "<=": "nonpos"}.get(expr.rel_op, "mask")
        return f"{_short(expr.lhs, names)}_{word}"
    if isinstance(expr, Relational) and expr.rhs.is_Integer:
        word = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}.get(expr.rel_op, "mask")
        return f"{_short(expr.lhs, names)}_{word}_{int(expr.rhs)}".replace("-", "minus")
    if isinstance(expr, sp.Add) and all(isinstance(a, (sp.Symbol, sp.exp)) for a in expr.args):
        return f"sum_{_common_prefix([_short(a, names) for a in expr.args])}"
    if isinstance(expr, sp.Add) and any(isinstance(a, sp.log) for a in expr.args):
        shifts = [names.of(s) for s in expr.free_symbols if names.of(s).endswith("_max")]
        base = shifts[0].removesuffix("_max") if shifts else _short(expr, names)
        return f"{base}_lse"  # log-sum-exp
    if isinstance(expr, sp.Add) and len(expr.args) == 2:
        positive = [a for a in expr.args if not a.could_extract_minus_sign()]
        negative = [-a for a in expr.args if a.could_extract_minus_sign()]
        if len(positive) == len(negative) == 1:
            return f"{_short(positive[0], names)}_minus_{_short(negative[0], names)}"
    if isinstance(expr, sp.Function):
        name = type(expr).__name__.lower()
        name = {"rowsum": "sum", "abs": "abs"}.get(name, name)
        return f"{name}_{_short(expr.args[0], names)}"
    return "t"


def _temp_comment(value, users: list[str]) -> str:
    """Why a temporary exists: a stability shift, or work several lines share."""
    users = list(dict.fromkeys(u for u in users if u))
    if isinstance(value, (rowmax, maximum)):
        return "largest entry of each row: exp of the shifted values cannot overflow"
    if isinstance(value, sp.exp) and value.args[0].has(rowmax, maximum):
        shifted = EquationPrinter().doprint(value)
        return f"{shifted} <= 1: no overflow; " + (
            f"shared by {', '.join(users)}" if len(users) > 1 else f"used by {users[0]}"
        )
    if len(users) > 1:
        return f"shared by {', '.join(users)}"
    return f"used twice by {users[0]}" if users else ""
