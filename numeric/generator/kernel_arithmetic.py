"""Arithmetic over arrays, as the kernel printers write it: sums, products, quotients, powers,
and the reductions (row sums and maxima, totals as dot products, means, elementwise maxima).

:class:`KernelArithmetic` is the part of
:class:`numeric.generator.kernel_printer.KernelPrinter` that decides operand order and
where a scalar factor goes (``x * (2 / (3 * m))`` makes one pass over the array). It reads
the printer's ``module`` (``np`` or ``jnp``) and its ``ranks``, ``shapes`` and ``lead`` settings.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy import Mul, Pow
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from .kernel_forms import shape_of
from .stable import maximum


def natural_key(text: str) -> tuple:
    """Sort key reading digit runs as numbers: ``x2`` before ``x10``."""
    return tuple(int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", text))


def _simple_operand(text: str) -> bool:
    """A name, a number or an attribute (``A1``, ``2``, ``self.x``): ``**`` hugs these."""
    return re.fullmatch(r"-?[A-Za-z_][\w.]*|-?\d+(\.\d*)?", text) is not None


def _is_scalar(expr: sp.Expr) -> bool:
    """Numbers and sizes (integer symbols such as the batch size ``m``): Python numbers."""
    return all(s.is_integer for s in expr.free_symbols)


class KernelArithmetic(StrPrinter):
    """Sums, products, powers and reductions of arrays; the base of :class:`KernelPrinter`."""

    def _print_Add(self, expr, order=None):
        content, primitive = expr.primitive()
        if (
            content != 1
            and content.is_Rational
            and (  # 2*(a - y), which SymPy keeps expanded
                content.p != 1 or not any(t.is_Number for t in primitive.args)
            )
        ):
            return self._print_Mul_positive(content, primitive)
        # positive terms first; among them products before bare names (w x + b); x2 before x10
        printed = []
        for term in expr.args:
            negative = term.could_extract_minus_sign()
            text = self.parenthesize(-term if negative else term, PRECEDENCE["Add"], strict=True)
            printed.append(((negative, term.is_Symbol, natural_key(text)), negative, term, text))
        out = ""
        for _, negative, term, text in sorted(printed, key=lambda p: p[0]):
            if not out:
                out = f"-{self._unary(-term)}" if negative else text
            else:
                out += f" - {text}" if negative else f" + {text}"
        return out

    def _unary(self, expr) -> str:
        """The operand of a leading minus: Python's ``-`` binds tighter than ``*`` and ``/``
        but looser than ``**``, so only sums need parentheses."""
        return self.parenthesize(expr, PRECEDENCE["Add"], strict=False)

    def _print_Mul(self, expr):
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_negative:
            inner = self._print_Mul_positive(-coeff, rest)
            return f"-{inner}" if precedence(-expr) >= PRECEDENCE["Mul"] else f"-({inner})"
        return self._print_Mul_positive(coeff, rest)

    def _print_Mul_positive(self, coeff, rest) -> str:
        arrays_num, arrays_den, scalars_num, scalars_den = [], [], [], []
        if coeff.is_Rational:
            if coeff.p != 1:
                scalars_num.append(sp.Integer(coeff.p))
            if coeff.q != 1:
                scalars_den.append(sp.Integer(coeff.q))
        elif coeff != 1:
            scalars_num.append(coeff)
        for factor in self._ordered_factors(rest):
            base, power = factor.as_base_exp()
            denominator = power.is_Rational and power.is_negative and not isinstance(factor, sp.exp)
            part = Pow(base, -power) if denominator else factor
            if _is_scalar(part):
                (scalars_den if denominator else scalars_num).append(part)
            else:
                (arrays_den if denominator else arrays_num).append(part)

        def product(factors, strict=False) -> str:
            return " * ".join(self.parenthesize(f, PRECEDENCE["Mul"], strict) for f in factors)

        def divisor(factors) -> str:
            if len(factors) == 1:
                return self.parenthesize(factors[0], PRECEDENCE["Mul"], strict=False)
            return f"({product(factors)})"

        if arrays_den:
            num = product(scalars_num + arrays_num) or "1"
            return f"{num} / {divisor(arrays_den + scalars_den)}"
        if not arrays_num:
            num = product(scalars_num) or "1"
            return f"{num} / {divisor(scalars_den)}" if scalars_den else num
        if scalars_den and scalars_num:  # one pass over the array: x * (2 / (3 * m))
            return f"{product(arrays_num)} * ({product(scalars_num)} / {divisor(scalars_den)})"
        if scalars_den:
            return f"{product(arrays_num)} / {divisor(scalars_den)}"
        return product(scalars_num + arrays_num)

    def _ordered_factors(self, expr) -> list:
        factors = list(Mul.make_args(expr)) if isinstance(expr, Mul) else [expr]
        factors = sorted(factors, key=sp.default_sort_key) if len(factors) > 1 else factors
        lead = list(self._settings["lead"])
        first = [f for f in factors if isinstance(f, sp.Symbol) and f.name in lead]
        first.sort(key=lambda f: lead.index(f.name))
        return first + [f for f in factors if f not in first]

    def _print_Pow(self, expr, rational=False):
        base, power = expr.args
        if power == sp.Rational(1, 2):
            return f"{self.module}.sqrt({self._print(base)})"
        if power == -sp.Rational(1, 2):
            return f"1 / {self.module}.sqrt({self._print(base)})"
        if power.is_Rational and power.is_negative:
            return f"1 / {self.parenthesize(Pow(base, -power), PRECEDENCE['Mul'], strict=False)}"
        base_text = self.parenthesize(base, PRECEDENCE["Pow"], strict=False)
        if base.is_Number and base.is_negative:
            base_text = f"({base_text})"
        power_text = self.parenthesize(power, PRECEDENCE["Pow"], strict=False)
        if _simple_operand(base_text) and _simple_operand(power_text):
            return f"{base_text}**{power_text}"  # A1**2, as a formatter writes it
        return f"{base_text} ** {power_text}"

    # -- reductions

    def _args(self, expr) -> str:
        return ", ".join(self._print(arg) for arg in expr.args)

    def _method(self, expr, call: str) -> str:
        (arg,) = expr.args
        return f"{self.parenthesize(arg, PRECEDENCE['Func'], strict=True)}.{call}"

    def _rank(self, expr) -> int:
        ranks = self._settings["ranks"]
        symbols = (
            expr.atoms(sp.MatrixSymbol) if isinstance(expr, sp.MatrixExpr) else expr.free_symbols
        )
        return max((ranks.get(s.name, 0) for s in symbols), default=0)

    def _print_rowsum(self, expr):
        if self._rank(expr.args[0]) <= 1:  # a row of one entry (logistic regression)
            return self._print(expr.args[0])
        return self._method(expr, "sum(axis=1, keepdims=True)")

    def _print_rowmax(self, expr):
        if self._rank(expr.args[0]) <= 1:
            return self._print(expr.args[0])
        return self._method(expr, "max(axis=1, keepdims=True)")

    def _print_total(self, expr):
        (arg,) = expr.args
        if not arg.free_symbols:
            raise NotImplementedError(f"a sum over entries of a constant needs a shape: {expr}")
        pair = self._two_arrays(arg)
        if pair is not None and self._one_shape(*pair[1:]):  # one dot product, no temporary
            scalar, a, b = pair
            dot = self._dot(a, b)
            return (
                dot
                if scalar == 1
                else self._print(scalar * sp.Symbol("__dot__")).replace("__dot__", dot)
            )
        return f"{self.parenthesize(arg, PRECEDENCE['Func'], strict=True)}.sum()"

    def _two_arrays(self, expr):
        """``(c, a, b)`` when ``expr = c a b`` (or ``c a²``) for arrays a, b and a number c."""
        factors = sp.Mul.make_args(expr)
        scalars = [f for f in factors if _is_scalar(f)]
        arrays = [f for f in factors if not _is_scalar(f)]
        if len(arrays) == 1 and isinstance(arrays[0], Pow) and arrays[0].exp == 2:
            arrays = [arrays[0].base, arrays[0].base]
        if len(arrays) != 2 or any(isinstance(a, Pow) and a.exp.is_negative for a in arrays):
            return None
        return sp.Mul(*scalars), arrays[0], arrays[1]

    def _one_shape(self, a, b) -> bool:
        """Whether two factors are arrays of one shape, as ``np.vdot`` needs; a column
        ``(m, 1)`` times an ``(m, n)`` matrix broadcasts, so its sum is ``(a * b).sum()``.
        Without the ``shapes`` setting (identifier -> shape), every pair is taken as one."""
        shapes, names = self._settings["shapes"], self._settings["names"]
        if not shapes:
            return True

        def shape_of_symbol(symbol):
            return shapes.get(names.get(symbol.name, symbol.name), ())

        return shape_of(a, shape_of_symbol) == shape_of(b, shape_of_symbol)

    def _dot(self, a, b) -> str:
        left, right = (self.parenthesize(x, PRECEDENCE["Mul"]) for x in (a, b))
        if max(self._rank(a), self._rank(b)) <= 1:
            return f"{left} @ {right}"
        return f"{self.module}.vdot({self._print(a)}, {self._print(b)})"

    def _print_batch_mean(self, expr):
        return f"{self.module}.mean({self._print(expr.args[0])})"

    def _print_zeros_like(self, expr):
        return f"{self.module}.zeros_like({self._print(expr.args[0])})"

    def _print_maximum(self, expr):
        if len(expr.args) == 1:
            return self._print(expr.args[0])
        if len(expr.args) == 2:
            return f"{self.module}.maximum({self._args(expr)})"
        return f"{self.module}.max({self.module}.stack([{self._args(expr)}]), axis=0)"

    def _print_Max(self, expr):
        return self._print_maximum(maximum(*sorted(expr.args, key=lambda e: e.is_Number)))

    def _print_Min(self, expr):
        if len(expr.args) == 2:  # the array first: np.minimum(Z1, 0)
            a, b = sorted(expr.args, key=lambda e: e.is_Number)
            return f"{self.module}.minimum({self._print(a)}, {self._print(b)})"
        return f"{self.module}.min({self.module}.stack([{self._args(expr)}]), axis=0)"
