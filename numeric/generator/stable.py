"""Numerically stable forms of a Derivation's expressions, chosen by recognising mathematics.

The Derivation writes the textbook formulas (``1/(1 + exp(-Z))``, ``log(A)``,
``exp(Z)/rowsum(exp(Z))``). Printed as they stand they overflow or take ``log(0)`` for large
``|z|``. Stability is a property of the printed code (DESIGN.md), so the printers first pass
every expression through :func:`stabilize`, which rewrites *mathematical patterns*, never
named activations or losses:

========================================  ===========================================
pattern                                   stable form
========================================  ===========================================
``exp(u)^j / (1 + exp(u))^k``             ``sigmoid(u)^j sigmoid(-u)^(k-j)``
``log(1 + exp(u))``                       ``softplus(u)`` (``softplus(-u) = softplus(u) - u``)
``exp(u_j) / sum_k exp(u_k)``             the same ratio with every ``u`` shifted by ``max u``
``log(sum_k exp(u_k))``                   ``M + log(sum_k exp(u_k - M))``, ``M = max u``
``log(A)``, ``log(1 - A)`` with ``A``     the log written in ``A``'s argument: log-sigmoid,
defined by one of the forms above         log-softmax (so cross-entropies stay finite)
``exp(u) - 1``                            ``expm1(u)``
a branch of a Piecewise on ``z > c``      its exps see ``max(z, c)`` / ``min(z, c)``: ``np.where``
                                          computes every branch everywhere
========================================  ===========================================

Rows are the matrix-level reading (``rowsum``/``rowmax`` over a row of a matrix); at the
scalar level the sums are explicit ``Add`` nodes and the maximum is :class:`maximum`.
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Mul, Pow, exp, log
from sympy.codegen.cfunctions import expm1

from derive.ops import rowsum


class sigmoid(sp.Function):  # noqa: N801  (SymPy function names are lower case)
    """``1 / (1 + exp(-u))``, printed without overflow."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex=1):
        return self * sigmoid(-self.args[0])


class softplus(sp.Function):  # noqa: N801
    """``log(1 + exp(u))``, printed without overflow.

    Canonical in the sign of its argument: ``softplus(-u) = softplus(u) - u``, so
    ``log σ(z) = -softplus(-z)`` and ``log(1 - σ(z)) = -softplus(z)`` combine.

    >>> z = sp.Symbol("z", real=True)
    >>> softplus(-z)
    -z + softplus(z)
    """

    nargs = 1
    is_real = True

    @classmethod
    def eval(cls, u):
        if u.could_extract_minus_sign():
            return cls(-u) + u
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


class rowmax(sp.Function):  # noqa: N801
    """Maximum over each row of a matrix, keeping a column (the shift of a stable softmax)."""

    nargs = 1
    is_real = True


class maximum(sp.Function):  # noqa: N801
    """Elementwise maximum of batch vectors (the shift of a stable scalar-level softmax)."""

    is_real = True


STABLE_FUNCTIONS = (sigmoid, softplus, rowmax, maximum, expm1)


# ---------------------------------------------------------------------------- entry point


def stabilize(expr: sp.Expr, definitions: dict[sp.Symbol, sp.Expr] | None = None) -> sp.Expr:
    """Rewrite ``expr`` into forms that neither overflow nor take the log of 0.

    ``definitions`` maps forward-node symbols to their defining expressions; a ``log`` of a
    node defined by a sigmoid- or softmax-like ratio is rewritten in that node's argument.

    >>> z, a = sp.symbols("z a", real=True)
    >>> stabilize(1 / (1 + exp(-z)))
    sigmoid(z)
    >>> stabilize(-log(a) - log(1 - a), {a: 1 / (1 + exp(-z))})
    -z + 2*softplus(z)
    """
    if not isinstance(expr, sp.Basic) or isinstance(expr, sp.MatrixExpr):
        return expr
    if definitions:
        expr = _logs_of_definitions(expr, definitions)
    return _rewrite(expr)


def _rewrite(expr: sp.Expr) -> sp.Expr:
    """Apply the ratio, log and expm1 rules bottom-up until nothing changes."""
    for _ in range(8):
        new = _bottom_up(expr)
        if new == expr:
            return new
        expr = new
    return expr


def _bottom_up(expr: sp.Basic, factor_of_product: bool = False) -> sp.Basic:
    """One pass of the rules, children first. A power that is a factor of a product is left
    to the product, which sees the numerator too (``exp(u)/(1 + exp(u))`` is one sigmoid)."""
    if not expr.args or isinstance(expr, sp.Symbol):
        return expr
    in_product = isinstance(expr, Mul)
    expr = expr.func(*[_bottom_up(arg, in_product) for arg in expr.args])
    if isinstance(expr, log):
        return _stable_log(expr.args[0])
    if isinstance(expr, Mul) or (isinstance(expr, Pow) and not factor_of_product):
        return _stable_ratio(expr)
    if isinstance(expr, Add):
        return _expm1(expr)
    return expr


# ---------------------------------------------------------------------------- sums of exps


def _exp_terms(sum_: sp.Expr) -> tuple[list[sp.Expr], sp.Expr] | None:
    """``sum_k exp(u_k) + c`` -> ``([u_k], c)`` with ``c`` a number; None for other sums."""
    if not isinstance(sum_, Add):
        return None
    exponents, const = [], sp.Integer(0)
    for term in sum_.args:
        if isinstance(term, exp):
            exponents.append(term.args[0])
        elif term.is_Number:
            const += term
        else:
            return None
    return (exponents, const) if exponents else None


def _shifted_sum(exponents: list[sp.Expr], shift: sp.Expr, const: sp.Expr) -> sp.Expr:
    return Add(*[exp(u - shift) for u in exponents]) + const * exp(-shift)


def _max_of(exponents: list[sp.Expr]) -> sp.Expr:
    return maximum(*sorted(set(exponents), key=sp.default_sort_key))


def _stable_log(arg: sp.Expr) -> sp.Expr:
    """``log(1 + exp(u))`` -> softplus; ``log(sum exp)`` and ``log(rowsum(exp))`` shifted."""
    if isinstance(arg, exp):
        return arg.args[0]
    parsed = _exp_terms(arg)
    if parsed is not None:
        exponents, const = parsed
        if len(exponents) == 1 and const == 1:
            return softplus(exponents[0])
        if const == 0 and len(exponents) > 1 and not any(u.has(maximum) for u in exponents):
            shift = _max_of(exponents)
            return shift + log(_shifted_sum(exponents, shift, 0))
    if isinstance(arg, rowsum) and isinstance(arg.args[0], exp):
        u = arg.args[0].args[0]
        if not u.has(rowmax):
            shift = rowmax(u)
            return shift + log(rowsum(exp(u - shift)))
    return log(arg)


# ---------------------------------------------------------------------------- ratios


def _exp_power(factor: sp.Expr, u: sp.Expr) -> sp.Expr | None:
    """``j`` when ``factor`` is ``exp(u)^j`` (SymPy writes it ``exp(j u)``), else None."""
    if not isinstance(factor, exp):
        return None
    ratio = sp.cancel(factor.args[0] / u)
    return ratio if ratio.is_Rational else None


def _stable_ratio(expr: sp.Expr) -> sp.Expr:
    """Sigmoid-like and softmax-like ratios in one product."""
    factors = list(Mul.make_args(expr))
    for k, factor in enumerate(factors):
        base, power = factor.as_base_exp()
        if not (power.is_Integer and power < 0):
            continue
        rest = factors[:k] + factors[k + 1 :]
        if isinstance(base, rowsum) and isinstance(base.args[0], exp):
            new = _softmax_rows(base.args[0].args[0], -power, rest)
        else:
            parsed = _exp_terms(base)
            if parsed is None:
                continue
            exponents, const = parsed
            if len(exponents) == 1 and const == 1:
                new = _sigmoid_ratio(exponents[0], -power, rest)
            elif const == 0 and len(exponents) > 1:
                new = _softmax_terms(exponents, -power, rest)
            else:
                new = None
        if new is not None:
            return new
    return expr


def _sigmoid_ratio(u: sp.Expr, k: sp.Integer, rest: list[sp.Expr]) -> sp.Expr | None:
    """``exp(u)^j / (1 + exp(u))^k = sigmoid(u)^j sigmoid(-u)^(k-j)`` for ``0 <= j <= k``."""
    j, others = sp.Integer(0), []
    for factor in rest:
        power = _exp_power(factor, u)
        if power is not None and j == 0:
            j = power
        else:
            others.append(factor)
    if not (j.is_Integer and 0 <= j <= k):
        return None
    return Mul(*others) * sigmoid(u) ** j * sigmoid(-u) ** (k - j)


def _softmax_terms(exponents: list[sp.Expr], k, rest: list[sp.Expr]) -> sp.Expr | None:
    """``prod exp(u_j) / (sum exp(u_i))^k``, balanced, with every exponent shifted by max."""
    if any(u.has(maximum) for u in exponents):
        return None
    shift = _max_of(exponents)
    numerator, others, degree = [], [], sp.Integer(0)
    for factor in rest:
        if isinstance(factor, exp) and factor.args[0] in exponents:
            numerator.append(exp(factor.args[0] - shift))
            degree += 1
        else:
            others.append(factor)
    if degree != k:
        return None
    return Mul(*others, *numerator) / _shifted_sum(exponents, shift, 0) ** k


def _softmax_rows(u: sp.Expr, k, rest: list[sp.Expr]) -> sp.Expr | None:
    """``exp(U)^k / rowsum(exp(U))^k`` with ``U`` shifted by its row maxima."""
    if u.has(rowmax):
        return None
    shift = rowmax(u)
    numerator, others, degree = [], [], sp.Integer(0)
    for factor in rest:
        power = _exp_power(factor, u)
        if power is not None and power.is_Integer:
            numerator.append(exp(u - shift) ** power)
            degree += power
        else:
            others.append(factor)
    if degree != k:
        return None
    return Mul(*others, *numerator) / rowsum(exp(u - shift)) ** k


def _expm1(expr: Add) -> sp.Expr:
    """``exp(u) - 1 + rest`` -> ``expm1(u) + rest`` (exact for small ``u``)."""
    terms = list(expr.args)
    if sp.Integer(-1) in terms:
        for term in terms:
            if isinstance(term, exp):
                terms.remove(term)
                terms.remove(sp.Integer(-1))
                return Add(expm1(term.args[0]), *terms)
    return expr


# ---------------------------------------------------------------------------- branches

_OVERFLOWING = (exp, expm1, sp.sinh, sp.cosh)
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def clamp_branches(expr: sp.Expr) -> sp.Expr:
    """Each branch of a Piecewise computes its exps on its own domain only.

    ``np.where`` evaluates every branch everywhere, so ELU's ``exp(z) - 1`` would overflow
    at ``z = 1000`` although that branch is only taken for ``z <= 0``. Inside the branch
    ``z`` is replaced by ``min(z, 0)``: the same value wherever the branch is selected.

    >>> z = sp.Symbol("z", real=True)
    >>> clamp_branches(sp.Piecewise((z, z > 0), (sp.exp(z) - 1, True)))
    Piecewise((z, z > 0), (exp(Min(0, z)) - 1, True))
    """

    def clamp(piecewise: sp.Piecewise) -> sp.Piecewise:
        pieces, earlier = [], []
        for value, cond in piecewise.args:
            bounds = _bounds(cond, negate=False) + [b for c in earlier for b in _bounds(c, True)]
            for symbol, upper, limit in bounds:
                stand_in = sp.Min(symbol, limit) if upper else sp.Max(symbol, limit)
                value = value.replace(
                    lambda e, s=symbol: isinstance(e, _OVERFLOWING) and e.has(s),
                    lambda e, s=symbol, t=stand_in: e.func(e.args[0].xreplace({s: t})),
                )
            pieces.append((value, cond))
            earlier.append(cond)
        return sp.Piecewise(*pieces)

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), clamp)


def _bounds(cond, negate: bool) -> list[tuple[sp.Symbol, bool, sp.Expr]]:
    """``z > 0`` -> [(z, False, 0)]: a lower bound; negated, an upper bound."""
    if not isinstance(cond, sp.core.relational.Relational) or cond.rel_op not in _NEGATED:
        return []
    if not (cond.lhs.is_Symbol and cond.rhs.is_Number):
        return []
    op = _NEGATED[cond.rel_op] if negate else cond.rel_op
    return [(cond.lhs, op in ("<", "<="), cond.rhs)]


# ---------------------------------------------------------------------------- logs of nodes


def _logs_of_definitions(expr: sp.Expr, definitions: dict[sp.Symbol, sp.Expr]) -> sp.Expr:
    """``log(A)`` and ``log(1 - A)`` with ``A`` a sigmoid/softmax node, in ``A``'s argument."""

    def expandable(symbol, depth=0) -> bool:
        """Defined by exps, or by one such symbol and numbers (``p = 1 + v``, ``v = exp(u)``:
        an expression split into nodes one operation at a time)."""
        definition = definitions.get(symbol)
        if definition is None or depth > 4:
            return False
        if definition.has(exp):
            return True
        inner = definition.free_symbols
        return len(inner) == 1 and expandable(next(iter(inner)), depth + 1)

    def rewrite(node: log) -> sp.Expr:
        arg = node.args[0]
        inner = arg
        for _ in range(5):
            used = {s: definitions[s] for s in inner.free_symbols if expandable(s)}
            if not used:
                break
            inner = inner.xreplace(used)
        if inner == arg:
            return node
        candidate = _rewrite(sp.expand_log(log(sp.together(inner)), force=True))
        return candidate if _logs_are_stable(candidate) else node

    new = expr.replace(lambda e: isinstance(e, log), rewrite)
    if new == expr:
        return expr
    return min([new, sp.factor_terms(_expand_sums(new))], key=sp.count_ops)


def _expand_sums(expr: sp.Expr) -> sp.Expr:
    """Expand, inside reductions too: ``total(Y(Z - s) + (1 - Y)s)`` -> ``total(s) - total(YZ)``."""
    expr = expr.replace(
        lambda e: isinstance(e, sp.Function) and len(e.args) == 1 and e.func.__name__ in _LINEAR,
        lambda e: e.func(sp.expand(e.args[0])),
    )
    return sp.expand(expr)


_LINEAR = ("total", "rowsum")


def _logs_are_stable(expr: sp.Expr) -> bool:
    """Every log left is of a max-shifted sum of exps (at least 1, never overflowing)."""
    for node in expr.atoms(log):
        arg = node.args[0]
        if isinstance(arg, rowsum):
            arg = arg.args[0]
        if not (arg.has(rowmax) or arg.has(maximum)) or not arg.has(exp):
            return False
    return True


def clamp_branches_as_where(expr: sp.Expr) -> sp.Expr:
    """:func:`clamp_branches` for a route that JAX differentiates: each clamp it adds is a
    Piecewise (``where(z > 0, 0, z)``), not ``Min``: ``jnp.minimum`` splits the derivative at
    the tie, and elu'(0) would be 1/2, not 1. A ``Min`` of the definition's own stays."""
    own = expr.atoms(sp.Min, sp.Max)

    def as_where(clamp):
        (limit,) = [arg for arg in clamp.args if arg.is_Number]
        (value,) = [arg for arg in clamp.args if arg != limit]
        beyond = value > limit if isinstance(clamp, sp.Min) else value < limit
        return sp.Piecewise((limit, beyond), (value, True))

    added = lambda e: isinstance(e, sp.Min | sp.Max) and e not in own  # noqa: E731
    return clamp_branches(expr).replace(added, as_where)
