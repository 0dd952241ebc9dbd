"""An update rule's assignments printed as NumPy code that works in place.

Every array operation writes into an array that already exists (the state, the parameter, or
one work array ``scratch``), with ``out=`` or an augmented assignment, so a training step
allocates nothing the size of a parameter. Scalar factors (``1 - beta1``, the bias
corrections) are Python floats. The printer knows sums, products, quotients, squares and
square roots of arrays, which is what the rules in ``derive.optimizers`` are made of.

>>> from derive.optimizers import Momentum
>>> print(update_source(Momentum()).split("def update")[1])
(param, grad, scratch, v, *, t, lr, beta):
    \"\"\"One Momentum step (t = 1, 2, ...) on a parameter array or a slice of one, in place.\"\"\"
    # v = beta*v + grad
    v *= beta
    v += grad
    # param = param - lr*v
    np.multiply(v, lr, out=scratch)
    param -= scratch
<BLANKLINE>
"""

from __future__ import annotations

import types
from functools import cache

import sympy as sp

from derive.optimizers import PYTHON, UpdateRule, theta
from numeric.generator.kernel import module_from_source

SCRATCH = "scratch"


class InPlacePrinter:
    """Prints ``target = expr`` for elementwise array expressions as in-place NumPy lines."""

    def __init__(self, arrays: set[sp.Symbol]):
        self.arrays = arrays

    def assign(self, target: sp.Symbol, expr: sp.Expr) -> list[str]:
        comment = f"# {_name(target)} = {_plain(_python_names(expr), theta)}"
        return [comment, *self._into(expr, _name(target))]

    # -- expressions into a named array

    def _into(self, expr: sp.Expr, out: str) -> list[str]:
        if not self._is_array(expr):
            raise ValueError(f"{expr} holds no array; it cannot be written into {out}")
        if expr.is_Symbol:
            return [] if _name(expr) == out else [f"np.copyto({out}, {_name(expr)})"]
        if expr.is_Add:
            return self._sum(expr, out)
        if expr.is_Mul:
            return self._product(expr, out)
        if expr.is_Pow:
            return self._power(expr, out)
        raise ValueError(f"no in-place form for {expr}")

    def _sum(self, expr: sp.Expr, out: str) -> list[str]:
        terms = [a for a in expr.args if self._is_array(a)]
        constant = sp.Add(*[a for a in expr.args if not self._is_array(a)])
        # the term that reads `out` goes first: it is written before `out` changes
        terms.sort(key=lambda term: not self._reads(term, out))
        if any(self._reads(term, out) for term in terms[1:]):
            raise ValueError(f"{expr} reads {out} twice; it needs a copy")
        lines = self._into(terms[0], out)
        for term in terms[1:]:
            negative = term.could_extract_minus_sign()
            operand = -term if negative else term
            sign = "-" if negative else "+"
            if operand.is_Symbol:
                lines.append(f"{out} {sign}= {_name(operand)}")
            else:
                lines += self._into(operand, self._scratch(out))
                lines.append(f"{out} {sign}= {SCRATCH}")
        if constant != 0:
            lines.append(f"{out} += {_scalar(constant)}")
        return lines

    def _product(self, expr: sp.Expr, out: str) -> list[str]:
        scalar = sp.Mul(*[f for f in expr.args if not self._is_array(f)])
        factors = [f for f in expr.args if self._is_array(f)]
        divisors = [1 / f for f in factors if f.is_Pow and f.exp.is_negative]
        factors = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        if len(divisors) > 1:
            return self._into(sp.Mul(scalar, *factors) / sp.Mul(*divisors), out)
        if divisors:  # the divisor first, into out; then the numerator over it
            (divisor,) = divisors
            if any(self._reads(f, out) for f in factors) or not all(f.is_Symbol for f in factors):
                raise ValueError(f"no in-place form for {expr} into {out}")
            lines = self._into(divisor, out)
            numerator = _name(factors[0]) if factors else _scalar(scalar)
            lines.append(f"np.divide({numerator}, {out}, out={out})")
            lines += [f"{out} *= {_name(f)}" for f in factors[1:]]
            if factors and scalar != 1:
                lines += self._scale(scalar, out)
            return lines
        factors.sort(key=lambda f: not self._reads(f, out))
        first, rest = factors[0], factors[1:]
        if first.is_Symbol and _name(first) != out and scalar != 1:  # one pass, not copy + scale
            lines, scalar = [_scaled(first, scalar, out)], sp.Integer(1)
        else:
            lines = self._into(first, out)
        for factor in rest:
            if factor.is_Symbol:
                lines.append(f"{out} *= {_name(factor)}")
            else:
                lines += self._into(factor, self._scratch(out))
                lines.append(f"{out} *= {SCRATCH}")
        return lines + (self._scale(scalar, out) if scalar != 1 else [])

    def _power(self, expr: sp.Expr, out: str) -> list[str]:
        base, exponent = expr.args
        function = {sp.Integer(2): "np.square", sp.Rational(1, 2): "np.sqrt"}.get(exponent)
        if base.is_Symbol:
            source, lines = _name(base), []
        else:
            source, lines = out, self._into(base, out)
        if function is None:
            return [*lines, f"np.power({source}, {_scalar(exponent)}, out={out})"]
        return [*lines, f"{function}({source}, out={out})"]

    @staticmethod
    def _scale(scalar: sp.Expr, out: str) -> list[str]:
        numerator, denominator = sp.fraction(scalar)
        if numerator == 1:
            return [f"{out} /= {_scalar(denominator)}"]
        if numerator == -1:
            return [f"{out} /= {_scalar(-denominator)}"]
        return [f"{out} *= {_scalar(scalar)}"]

    # -- helpers

    def _is_array(self, expr: sp.Expr) -> bool:
        return bool(expr.free_symbols & self.arrays)

    def _reads(self, expr: sp.Expr, out: str) -> bool:
        return any(_name(s) == out for s in expr.free_symbols & self.arrays)

    @staticmethod
    def _scratch(out: str) -> str:
        if out == SCRATCH:
            raise ValueError("this expression needs a second work array")
        return SCRATCH


def update_source(rule: UpdateRule) -> str:
    """The module of ``rule``'s update: ``update(param, signal, scratch, *state, t, **hyper)``
    works on arrays of one shape (a parameter, or matching slices of one) in place."""
    arrays = {theta, rule.signal, *rule.state}
    printer = InPlacePrinter(arrays)
    body = [line for lhs, rhs in rule.assignments for line in printer.assign(lhs, rhs)]
    arguments = ", ".join(
        [_name(theta), _name(rule.signal), SCRATCH, *map(_name, rule.state), "*", "t", *rule.values]
    )
    title = type(rule).__name__
    return "\n".join(
        [
            f'"""{rule.title}: the update step, printed from derive.optimizers.{title}.',
            "",
            "Every array is written in place; `scratch` is a work array of the parameter's",
            "shape, so a step allocates nothing of that size.",
            '"""',
            "",
            "import numpy as np",
            "",
            "",
            f"def update({arguments}):",
            f'    """One {title} step (t = 1, 2, ...) on a parameter array or a slice of one,'
            ' in place."""',
            *[f"    {line}" for line in body],
            "",
        ]
    )


@cache
def update_module(rule_type: type[UpdateRule]) -> types.ModuleType:
    """The loaded update module of a rule class (its code does not depend on the values)."""
    name = rule_type.__name__
    source = update_source(rule_type())
    return module_from_source(source, f"update_{name.lower()}", f"<backprop update {name}>")


def _name(symbol: sp.Symbol) -> str:
    return PYTHON.get(symbol, str(symbol))


def _python_names(expr: sp.Expr) -> sp.Expr:
    return expr.xreplace({s: sp.Symbol(_name(s)) for s in expr.free_symbols})


def _plain(expr: sp.Expr, first: sp.Symbol) -> str:
    """``param - lr*v`` rather than SymPy's ``-lr*v + param``: the parameter leads."""
    lead = sp.Symbol(_name(first))
    if expr.is_Add and lead in expr.args:
        rest = expr - lead
        sign, rest = ("-", -rest) if rest.could_extract_minus_sign() else ("+", rest)
        return f"{lead} {sign} {sp.sstr(rest)}"
    return sp.sstr(expr)


def _scalar(expr: sp.Expr) -> str:
    """A scalar factor as Python (it stands alone: an argument, or after ``*=``)."""
    return sp.sstr(_python_names(expr))


def _scaled(symbol: sp.Symbol, scalar: sp.Expr, out: str) -> str:
    numerator, denominator = sp.fraction(scalar)
    if numerator == 1:
        return f"np.divide({_name(symbol)}, {_scalar(denominator)}, out={out})"
    return f"np.multiply({_name(symbol)}, {_scalar(scalar)}, out={out})"
