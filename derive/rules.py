"""Derivative rules, derived by SymPy from the registry's definitions.

Everything here is computed, never typed: SymPy differentiates a definition written in index
notation over one row (``a[j]`` as a function of ``z[0..n-1]``), and the result is rewritten
in terms of the forward values a textbook uses (``a(1-a)`` rather than ``e^{-z}/(1+e^{-z})^2``),
so kernels can reuse them. Results are cached: each rule is derived once per process.
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy import Indexed, KroneckerDelta, Piecewise, Sum

from .registry import a, activation, i, j, loss, n, x, y, z

l = sp.Symbol("l", integer=True, nonnegative=True)  # noqa: E741  (the index we differentiate by)
da = sp.IndexedBase("da", real=True)  # adjoint of the activation row
out = sp.Symbol("a", real=True)  # output of an elementwise activation, the partner of x

_TRANSCENDENTAL = (sp.exp, sp.log, sp.tanh, sp.sinh, sp.cosh, sp.sin, sp.cos)


def drop_range_checks(expr: sp.Expr) -> sp.Expr:
    """Remove ``Piecewise((e, 0 <= l <= n-1), (0, True))``: our indices are always in range."""

    def is_range_check(pw):
        (_, cond), (other, always) = pw.args if len(pw.args) == 2 else ((0, 0), (1, False))
        return always == sp.true and other == 0 and cond.free_symbols <= {l, i, j, n}

    return expr.replace(
        lambda e: isinstance(e, Piecewise) and is_range_check(e), lambda e: e.args[0].expr
    )


def split_sums(expr: sp.Expr) -> sp.Expr:
    """Distribute each Sum over its terms, pull out factors free of the index, resolve deltas."""

    def split(s: Sum) -> sp.Expr:
        body, (index, lo, hi) = s.function, s.limits[0]
        total = sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(body)):
            const, rest = term.as_independent(index, as_Add=False)
            total += const * _sum_one_term(rest, index, lo, hi)
        return total

    return expr.replace(lambda e: isinstance(e, Sum), split)


def _sum_one_term(term: sp.Expr, index: sp.Symbol, lo, hi) -> sp.Expr:
    """``sum_index term``; a term carrying ``delta(index, t)`` collapses to the term at ``t``."""
    for delta in term.atoms(KroneckerDelta):
        if index in delta.args:
            (other,) = [arg for arg in delta.args if arg != index] or [index]
            if term.xreplace({delta: sp.S.Zero}) == 0:  # the term vanishes off the diagonal
                return term.xreplace({delta: sp.S.One}).xreplace({index: other})
    return Sum(term, (index, lo, hi))


def index_diff(expr: sp.Expr, base: sp.IndexedBase) -> sp.Expr:
    """``d expr / d base[l]`` in index notation, with range checks and deltas resolved."""
    return split_sums(drop_range_checks(sp.diff(expr, base[l])))


def use_sum_to_one(expr: sp.Expr) -> sp.Expr:
    """Replace ``sum_j y[j]`` by 1: one-hot (or label) targets sum to one in each row."""
    return expr.replace(
        lambda e: isinstance(e, Sum) and isinstance(e.function, Indexed) and e.function.base == y,
        lambda e: sp.Integer(1),
    )


def absorb_sign(expr: sp.Expr) -> sp.Expr:
    """Write ``-a(a - 1)`` as ``a(1 - a)`` and ``(y - a)/(a(a - 1))`` as ``(a - y)/(a(1 - a))``:
    a leading minus goes into a sum factor, of the denominator if need be."""
    if isinstance(expr, sp.Mul) and expr.could_extract_minus_sign():
        coeff, factors = expr.as_coeff_mul()
        for k, f in enumerate(factors):
            if isinstance(f, sp.Add):
                return sp.Mul(-coeff, *factors[:k], -f, *factors[k + 1 :])
    num, den = sp.fraction(expr)
    if den != 1 and num.could_extract_minus_sign():
        factors = list(sp.Mul.make_args(den))
        for k, f in enumerate(factors):
            if isinstance(f, sp.Add):
                factors[k] = -f
                return -num / sp.Mul(*factors)
    return expr


def _is_closed_in_output(expr: sp.Expr) -> bool:
    """True when ``expr`` uses only the output (no input x, no exp/log): cheap to evaluate."""
    return not expr.has(x) and not expr.has(*_TRANSCENDENTAL)


def simplest(expr: sp.Expr) -> sp.Expr:
    """The shortest of a few equivalent forms (ties keep the earlier, more textbook-like one)."""
    forms = [absorb_sign(expr)]
    for rewrite in (
        lambda e: absorb_sign(sp.factor(e)),
        lambda e: sp.factor_terms(sp.expand(e)),
        lambda e: sp.factor_terms(sp.cancel(e)),
    ):
        try:
            forms.append(rewrite(expr))
        except (sp.PolynomialError, NotImplementedError):
            pass
    return absorb_sign(min(forms, key=sp.count_ops))


def _branch_in_output(f: sp.Expr, df: sp.Expr) -> sp.Expr:
    """Rewrite ``df = f'(x)`` in terms of ``out = f(x)`` when that is cheaper."""
    if not df.has(x):
        return df
    substituted = simplest(sp.simplify(df.subs(f, out)))
    cheaper = sp.count_ops(substituted) <= sp.count_ops(df)
    if cheaper and _is_closed_in_output(substituted) and _same_slope(substituted, f, df):
        return substituted  # f' read off f itself (1 - a² for tanh): no inverse to solve for
    candidates = [df.subs(f, out)]
    try:  # x read once: f peels to an inverse (x read twice, as in x tanh(x³), can run away)
        inverses = sp.solve(sp.Eq(out, f), x) if f.count(x) == 1 else []
        candidates += [df.subs(x, inv) for inv in inverses]
    except NotImplementedError:
        pass
    closed = [simplest(sp.simplify(c)) for c in candidates]
    closed = [c for c in closed if _is_closed_in_output(c) and _same_slope(c, f, df)]
    best = min(closed, key=sp.count_ops, default=df)
    return best if sp.count_ops(best) <= sp.count_ops(df) else df


def _same_slope(candidate: sp.Expr, f: sp.Expr, df: sp.Expr) -> bool:
    """Whether ``candidate`` (in ``out``) equals ``df`` at sample points where ``df`` is a real
    number: one root of ``out = f(x)`` may hold for ``x > 0`` only (``2 sqrt(a)`` for ``x^2``)."""
    for point in (-2.7, -0.6, 0.45, 1.9):
        want = sp.N(df.subs(x, point))
        if not want.is_real or not want.is_finite:
            continue
        got = sp.N(candidate.xreplace({out: f.subs(x, point)}))
        if not got.is_real or abs(got - want) > 1e-9 * (1 + abs(want)):
            return False
    return True


@cache
def elementwise_derivative(name: str) -> sp.Expr:
    """``g'`` of an elementwise activation, as a function of ``x`` and the output ``a = g(x)``.

    >>> elementwise_derivative("sigmoid")
    a*(1 - a)
    >>> elementwise_derivative("relu")
    Piecewise((1, x > 0), (0, True))
    """
    f = activation(name).scalar
    df = sp.diff(f, x)
    if isinstance(f, Piecewise) and isinstance(df, Piecewise):
        pieces = {cond: expr for expr, cond in f.args}
        return Piecewise(
            *[(_branch_in_output(pieces.get(cond, f), d), cond) for d, cond in df.args]
        )
    return _branch_in_output(f, df)


def _to_row(expr: sp.Expr, index: sp.Symbol) -> sp.Expr:
    """Put an elementwise scalar rule (in x and a) on row position ``index``."""
    return expr.xreplace({x: z[index], out: a[index]})


@cache
def activation_jacobian(name: str) -> sp.Expr:
    """``d a[j] / d z[l]`` in index notation, in terms of outputs where that is cheaper.

    >>> activation_jacobian("softmax")
    KroneckerDelta(j, l)*a[j] - a[j]*a[l]
    """
    act = activation(name)
    if act.elementwise:
        return KroneckerDelta(j, l) * _to_row(elementwise_derivative(name), j)
    jac = split_sums(drop_range_checks(sp.diff(act.definition, z[l])))
    jac = jac.subs(act.definition.xreplace({j: l}), a[l]).subs(act.definition, a[j])
    return sp.expand(jac)


@cache
def activation_vjp(name: str) -> sp.Expr:
    """``dz[l] = sum_j da[j] * d a[j] / d z[l]``, the backward rule of an activation.

    >>> activation_vjp("softmax")
    a[l]*da[l] - a[l]*Sum(a[j]*da[j], (j, 0, n - 1))
    """
    if activation(name).elementwise:  # the sum over j collapses on the diagonal
        return da[l] * _to_row(elementwise_derivative(name), l)
    return split_sums(Sum(da[j] * activation_jacobian(name), (j, 0, n - 1)))


@cache
def loss_gradient(name: str) -> sp.Expr:
    """``d loss / d a[l]`` for one example, in index notation.

    >>> loss_gradient("cce")
    -y[l]/a[l]
    """
    grad = index_diff(loss(name).definition, a)
    return simplest(use_sum_to_one(grad) if loss(name).rows_sum_to_one else grad)


def _substitute_rows(expr: sp.Expr, base: sp.IndexedBase, row_rule: sp.Expr) -> sp.Expr:
    """Replace every ``base[t]`` in ``expr`` by ``row_rule`` written at position ``t``."""
    return expr.replace(
        lambda e: isinstance(e, Indexed) and e.base == base,
        lambda e: row_rule.xreplace({l: e.indices[0]}),
    )


@cache
def head_vjp(output: str, loss_name: str) -> sp.Expr:
    """``d loss / d z[l]`` through the output activation, simplified to the textbook form.

    >>> head_vjp("sigmoid", "bce")
    (a[l] - y[l])/n
    >>> head_vjp("softmax", "cce")
    a[l] - y[l]
    """
    fused = _substitute_rows(activation_vjp(output), da, loss_gradient(loss_name))
    fused = split_sums(sp.expand(fused))
    if loss(loss_name).rows_sum_to_one:
        fused = use_sum_to_one(fused)
    return simplest(fused)


def is_flat(name: str) -> bool:
    """True for step and sign: derivative 0 wherever it exists (undefined at the jump)."""
    act = activation(name)
    return act.elementwise and elementwise_derivative(name) == 0 and act.scalar.has(x)
