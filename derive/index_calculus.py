"""Reverse mode at index level: the vector-Jacobian product of a sum over indexed arrays.

A tensor op is defined once as an entry of its output, ``Z[n, h, w, o] = Σ_{i,j,c} X[...] K[...]``.
Its backward rule with respect to an operand ``A`` is SymPy's ``diff`` of the contraction
``Σ_out G[out] Z[out]`` by one entry ``A[entry]``: a sum of products of Kronecker deltas, which
:func:`collapse_deltas` sums out (``Σ_i δ(i, p) f(i) = f(p)``), keeping as a *support*
condition the range check of an index that was solved for (``0 ≤ q - s h ≤ k_h - 1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp
from sympy import Indexed, KroneckerDelta, Sum


@dataclass(frozen=True)
class Contraction:
    """``target = Σ_{limits} body`` where ``support`` holds: the form every derived rule takes.

    ``body`` is a product of ``Indexed`` factors and a coefficient; ``support`` lists the
    conditions ``(expr, lo, hi)``, meaning ``lo <= expr <= hi``, left by collapsed deltas
    (empty when the sum's own bounds are the support).
    """

    target: Indexed
    body: sp.Expr
    limits: tuple = ()
    support: tuple = field(default=())

    def expr(self) -> sp.Expr:
        """The right-hand side as one SymPy expression (a Piecewise when there is a support)."""
        body = self.body
        if self.support:
            inside = sp.And(*[sp.Le(lo, cond) & sp.Le(cond, hi) for cond, lo, hi in self.support])
            body = sp.Piecewise((body, inside), (0, True))
        return Sum(body, *self.limits) if self.limits else body

    def equation(self) -> sp.Eq:
        return sp.Eq(self.target, self.expr(), evaluate=False)

    def factors(self) -> list[Indexed]:
        return [f for f in sp.Mul.make_args(self.body) if isinstance(f, Indexed)]

    def coefficient(self) -> sp.Expr:
        return sp.Mul(*[f for f in sp.Mul.make_args(self.body) if not isinstance(f, Indexed)])


def flatten_sums(expr: sp.Expr) -> tuple[sp.Expr, list]:
    """``Sum(f * Sum(g, b), a)`` as ``(f * g, [a, b])``: one product under all the limits."""
    limits = []
    while True:
        expr = sp.expand(expr)
        if isinstance(expr, Sum):
            limits += list(expr.limits)
            expr = expr.function
            continue
        if isinstance(expr, sp.Mul) and any(isinstance(f, Sum) for f in expr.args):
            inner = next(f for f in expr.args if isinstance(f, Sum))
            rest = expr.func(*[f for f in expr.args if f is not inner])
            limits += list(inner.limits)
            expr = rest * inner.function
            continue
        return expr, limits


def collapse_deltas(body, limits, ranges: dict) -> tuple[sp.Expr, list, list]:
    """Sum out every summed index a delta pins (``δ(q, s h + i)`` solves ``i = q - s h``).

    The simplest deltas go first (``δ(n, p)``). The solved index's range becomes a support
    condition ``(expr, lo, hi)``, unless ``ranges`` (the free indices' bounds) imply it.
    """
    limits, support = list(limits), []
    while True:
        pinned = _first_pin(body, limits)
        if pinned is None:
            break
        delta, k, solution = pinned
        index, lo, hi = limits.pop(k)
        body = body.xreplace({delta: sp.S.One}).xreplace({index: solution})
        support = [(cond.xreplace({index: solution}), a, b) for cond, a, b in support]
        support.append((solution, lo, hi))
    kept = [(cond, lo, hi) for cond, lo, hi in support if not _implied(cond, lo, hi, ranges)]
    return body, limits, kept


def _first_pin(body, limits):
    """The simplest delta with a summed index of slope ±1, that index and its solution."""
    deltas = sorted(body.atoms(KroneckerDelta), key=lambda dl: (sp.count_ops(dl), str(dl)))
    for delta in deltas:
        difference = delta.args[0] - delta.args[1]
        for k, (index, _, _) in enumerate(limits):
            slope = sp.diff(difference, index)
            if slope in (1, -1) and sp.diff(difference, index, 2) == 0:
                return delta, k, sp.expand(index - difference / slope)
    return None


def _implied(expr, lo, hi, ranges: dict) -> bool:
    """Whether ``lo <= expr <= hi`` holds for every free index in its range (``expr`` linear
    with coefficients of known sign: the extremes are at the corners of the box)."""
    low = high = sp.expand(expr)
    lo, hi = sp.sympify(lo), sp.sympify(hi)
    for index, (a, b) in ranges.items():
        slope = sp.diff(expr, index)
        if slope.is_nonnegative:
            low, high = low.xreplace({index: sp.sympify(a)}), high.xreplace({index: sp.sympify(b)})
        elif slope.is_nonpositive:
            low, high = low.xreplace({index: sp.sympify(b)}), high.xreplace({index: sp.sympify(a)})
        else:
            return False
    return (
        sp.expand(low - lo).is_nonnegative is True and sp.expand(hi - high).is_nonnegative is True
    )


def vjp(target: Indexed, definition, out_limits, adjoint, operand, entry, ranges) -> Contraction:
    """``d/d operand[entry]`` of ``Σ_out adjoint[out] definition``, deltas summed out.

    ``target`` is the output entry the definition gives (``Z[n, h, w, o]``), ``out_limits``
    the bounds of its indices, ``ranges`` the bounds of ``entry``.
    """
    contraction = Sum(adjoint[target.indices] * definition, *out_limits)
    raw = sp.diff(contraction, operand[entry])
    body, limits = flatten_sums(raw)
    terms = sp.Add.make_args(body)
    if len(terms) != 1:
        raise NotImplementedError(f"a vjp with several terms is not a contraction: {body}")
    body, limits, support = collapse_deltas(body, limits, dict(zip(entry, ranges)))
    target = sp.IndexedBase("d" + str(operand.label), real=True)[entry]
    return Contraction(target, body, tuple(limits), tuple(support))


__all__ = ["Contraction", "collapse_deltas", "flatten_sums", "vjp"]
