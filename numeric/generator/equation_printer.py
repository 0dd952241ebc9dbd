"""The equation printer: the textbook form of a formula, for the comment beside its code."""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from derive.textbook_order import product_factors

from .kernel_arithmetic import natural_key


class EquationPrinter(StrPrinter):
    """The textbook form of a formula, for comments: ``A1ᵀ dZ2``, ``X W1 + 1 b1``, ``A1²``.

    >>> A, W = sp.MatrixSymbol("A1", 3, 2), sp.MatrixSymbol("W2", 2, 4)
    >>> EquationPrinter().doprint(A * W)
    'A1 W2'
    """

    def _print_MatMul(self, expr):
        coeff, matrices = expr.as_coeff_matrices()
        parts = [self.parenthesize(m, PRECEDENCE["Mul"]) for m in matrices]
        text = " ".join(parts)
        return text if coeff == 1 else f"{self._print(coeff)}*{text}"

    def _print_HadamardProduct(self, expr):
        return " ⊙ ".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in expr.args)

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Pow'])}ᵀ"

    def _print_OneMatrix(self, expr):
        return "1" if expr.shape[1] == 1 else "1ᵀ"

    def _print_MatAdd(self, expr):
        return " + ".join(self._print(t) for t in expr.args).replace("+ -", "- ")

    def _print_Mul(self, expr):
        return textbook_product(self, expr, super()._print_Mul)

    def _print_Add(self, expr, order=None):
        terms = sorted(  # as the kernels order them: w*x + b, x2 before x10
            expr.args,
            key=lambda t: (t.could_extract_minus_sign(), t.is_Symbol, natural_key(self._print(t))),
        )
        out = self._print(terms[0])
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                out += f" - {self.parenthesize(-term, PRECEDENCE['Add'], strict=True)}"
            else:
                out += f" + {self.parenthesize(term, PRECEDENCE['Add'], strict=True)}"
        return out

    def _print_Pow(self, expr, rational=False):
        base, power = expr.args
        superscripts = {2: "²", 3: "³"}
        if power.is_Integer and int(power) in superscripts:
            return (
                self.parenthesize(base, PRECEDENCE["Pow"], strict=False) + superscripts[int(power)]
            )
        return super()._print_Pow(expr, rational)

    def _print_Piecewise(self, expr):
        (value, cond), rest = expr.args[0].args, expr.args[1:]
        if not rest or cond == sp.true:
            return self._print(value)
        if len(rest) == 1 and rest[0].cond == sp.true and (value, rest[0].expr) == (1, 0):
            return f"[{self._print(cond)}]"  # Iverson bracket
        other = self._print(sp.Piecewise(*rest)) if len(rest) > 1 else self._print(rest[0].expr)
        return f"({self._print(value)} if {self._print(cond)} else {other})"

    def _print_batch_mean(self, expr):
        return f"mean({self._print(expr.args[0])})"

    def _print_Symbol(self, expr):
        return expr.name


def textbook_product(printer: StrPrinter, expr, fallback) -> str:
    """``w2*a1``, not SymPy's ``a1*w2``: a plain product (whole powers, no quotient) with its
    weights first (:mod:`derive.textbook_order`); anything else as ``fallback`` prints it."""
    coeff, rest = expr.as_coeff_mul()
    factors = [f for f in expr.as_ordered_factors() if not f.is_Number]
    ordered = product_factors(factors)
    plain = all(f.is_commutative and not (f.is_Pow and f.exp.is_negative) for f in factors)
    if ordered == factors or not plain or not coeff.is_Integer:
        return fallback(expr)
    parts = [] if abs(coeff) == 1 else [printer._print(abs(coeff))]
    parts += [printer.parenthesize(f, PRECEDENCE["Mul"]) for f in ordered]
    return ("-" if coeff < 0 else "") + "*".join(parts)
