"""The NumPy printer: kernels over NumPy, writing into arrays that are free (``out=``).

A statement whose operand is not needed afterwards reuses it (``np.tanh(Z1, out=Z1)``), and
a dense layer's bias is added in place (``Z1 = X @ W1``, then ``Z1 += b1``); the plan of
which array is free is :mod:`numeric.memory_reuse`'s.
"""

from __future__ import annotations

import sympy as sp
from sympy import Mul, Pow

from .kernel_printer import ELEMENTWISE, KernelPrinter


class NumPyPrinter(KernelPrinter):
    """Kernels over NumPy: plain functions, importing NumPy only."""

    def doprint_into(self, expr, out: str | None = None) -> str:
        """Like ``doprint``, writing the result into the array named ``out`` (an operand that
        is not needed afterwards): ``np.tanh(Z1, out=Z1)``. Only the top operation changes;
        a form without an ``out=`` argument prints as usual."""
        if out is not None:
            text = self._into(expr, out)
            if text is not None:
                return text
        return self.doprint(expr)

    def bias_in_place(self, expr) -> tuple[str, str] | None:
        """``A @ W + b`` as the product and the term to add to it in place (``Z1 = X @ W1``,
        then ``Z1 += b1``): the product is a new array, so the sum needs no second one
        (1-2 % of an MLP pass at batch 128). None for any other expression."""
        if not isinstance(expr, sp.MatAdd) or len(expr.args) != 2:
            return None
        product = next((arg for arg in expr.args if _plain_product(arg)), None)
        if product is None:
            return None
        other = next(arg for arg in expr.args if arg is not product)
        if isinstance(other, sp.MatMul) and other.as_coeff_matrices()[0] != 1:
            return None
        return self._print(product), self._print(other)

    def _into(self, expr, out: str) -> str | None:
        np_ = self.module
        name = type(expr).__name__
        if isinstance(expr, sp.MatMul):
            coeff, (a, b) = expr.as_coeff_matrices()
            return f"{np_}.matmul({self._print(a)}, {self._print(b)}, out={out})"
        if isinstance(expr, sp.MatAdd):
            product = next(arg for arg in expr.args if isinstance(arg, sp.MatMul))
            other = next(arg for arg in expr.args if arg is not product)
            if isinstance(other, sp.MatMul) and other.as_coeff_matrices()[0] != 1:
                return None
            return f"{np_}.add({self._print(product)}, {self._print(other)}, out={out})"
        if isinstance(expr, sp.Function) and name in ELEMENTWISE and len(expr.args) == 1:
            return f"{np_}.{ELEMENTWISE[name]}({self._print(expr.args[0])}, out={out})"
        if isinstance(expr, sp.Piecewise) and len(expr.args) == 2:
            (value, cond), (other, always) = expr.args[0].args, expr.args[1].args
            if always == sp.true and other == 0 and value.free_symbols:
                if not value.has(sp.Function) and not value.has(Pow):
                    return f"{np_}.multiply({self._print(value)}, {self._print(cond)}, out={out})"
            return None
        if isinstance(expr, Mul):
            coeff, rest = expr.as_coeff_Mul()
            num, den = [], []
            for factor in Mul.make_args(rest):
                base, power = factor.as_base_exp()
                if power.is_Rational and power.is_negative and not isinstance(factor, sp.exp):
                    den.append(Pow(base, -power))
                else:
                    num.append(factor)
            p, q = (coeff.p, coeff.q) if coeff.is_Rational else (coeff, 1)
            numerator = sp.Mul(p, *num, evaluate=False) if p != 1 else sp.Mul(*num)
            denominator = sp.Mul(q, *den)
            if denominator != 1:
                return (
                    f"{np_}.divide({self._print(numerator)}, {self._print(denominator)}, out={out})"
                )
            first = next((f for f in num if self._print(f) == out), num[0])
            others = sp.Mul(coeff, *[f for f in num if f is not first])
            return f"{np_}.multiply({self._print(first)}, {self._print(others)}, out={out})"
        if isinstance(expr, sp.Add):
            terms = sorted(expr.args, key=lambda t: t.could_extract_minus_sign())
            first, others = terms[0], sp.Add(*terms[1:])
            if others.could_extract_minus_sign():
                return f"{np_}.subtract({self._print(first)}, {self._print(-others)}, out={out})"
            return f"{np_}.add({self._print(first)}, {self._print(others)}, out={out})"
        return None


def _plain_product(expr) -> bool:
    """``A @ B`` of two matrices, neither a column of ones (that is a broadcast, not a GEMM)."""
    if not isinstance(expr, sp.MatMul):
        return False
    coeff, matrices = expr.as_coeff_matrices()
    return (
        coeff == 1 and len(matrices) == 2 and not any(isinstance(m, sp.OneMatrix) for m in matrices)
    )
