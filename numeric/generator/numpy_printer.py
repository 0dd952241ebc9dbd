"""The NumPy printer: kernels over NumPy, writing into arrays that are free (``out=``).

A statement whose operand is not needed afterwards reuses it (``np.tanh(Z1, out=Z1)``), and
a dense layer's bias is added in place (``Z1 = X @ W1``, then ``Z1 += b1``); the plan of
which array is free is :mod:`numeric.generator.memory_reuse`'s. The helpers a kernel
defines (``sigmoid``, ``softplus``) are spelled as :mod:`numeric.generator.numpy_forms`
measured fastest.
"""

from __future__ import annotations

import sympy as sp
from sympy import Mul, Pow
from sympy.printing.precedence import PRECEDENCE

from derive.ops import m as BATCH

from .kernel_forms import masked_value, plain_product
from .kernel_printer import KernelPrinter
from .numpy_forms import HELPERS, select_by_masks


class NumPyPrinter(KernelPrinter):
    """Kernels over NumPy: plain functions, importing NumPy only."""

    def helper_source(self, name: str) -> str:
        return HELPERS[name]

    def _print_Piecewise(self, expr):
        """``a if c else b`` as ``a * c + b * ~c`` where both values are finite everywhere
        (:func:`numeric.generator.numpy_forms.select_by_masks`): ``np.where`` mispredicts a
        branch per entry on random signs and costs 2-4x the two products."""
        select = select_by_masks(expr)
        if select is None:
            return super()._print_Piecewise(expr)
        value, cond, other = select
        mul = PRECEDENCE["Mul"]
        return (
            f"{self.parenthesize(value, mul, strict=True)} * {self._condition(cond)} + "
            f"{self.parenthesize(other, mul, strict=True)} * {self._condition(sp.Not(cond))}"
        )

    def parenthesize(self, item, level, strict=False):
        if isinstance(item, sp.Piecewise) and select_by_masks(item) is not None:
            prec = PRECEDENCE["Add"]  # a sum of two products
            return (
                f"({self._print(item)})"
                if prec < level or (not strict and prec <= level)
                else self._print(item)
            )
        return super().parenthesize(item, level, strict)

    def doprint_into(self, expr, out: str | None = None) -> str:
        """Like ``doprint``, writing the result into the array named ``out`` (an operand that
        is not needed afterwards): ``np.tanh(Z1, out=Z1)``. Only the top operation changes;
        a form without an ``out=`` argument prints as usual."""
        if out is not None:
            text = self._into(expr, out)
            if text is not None:
                return text
        return self.doprint(expr)

    def bias_in_place(self, expr, out: str | None = None) -> tuple[str, str] | None:
        """``A @ W + b`` as the product and the term to add to it in place (``Z1 = X @ W1``,
        then ``Z1 += b1``; with ``out``, ``np.matmul(A, W, out=...)``): the sum needs no second
        array (1-2 % of an MLP pass at batch 128). None for any other expression."""
        if not isinstance(expr, sp.MatAdd) or len(expr.args) != 2:
            return None
        product = next((arg for arg in expr.args if plain_product(arg)), None)
        if product is None:
            return None
        other = next(arg for arg in expr.args if arg is not product)
        if isinstance(other, sp.MatMul) and not other.as_coeff_matrices()[0].is_positive:
            return None  # ``Z += -b`` reads worse than the sum; weight decay's ``W/10`` is fine
        return self.doprint_into(product, out), self._print(other)

    def factor_into(self, expr, out: str, scratch: tuple[str, ...], name: str):
        """``dZ1 = dA1 * (1 - A1**2)`` in two lines, neither allocating: the factor is computed
        in the memory of an array nothing reads afterwards (one of ``scratch``), every step
        writing there, and the product goes into ``out``::

            dA1_dZ1 = np.subtract(1, np.square(A1, out=A1), out=A1)
            dZ1 = np.multiply(dA1, dA1_dZ1, out=dA1)

        Returns ``(factor, factor code, array it lives in, product code)``, or None when the
        factor is one array already or cannot be written into any of ``scratch``."""
        if not isinstance(expr, Mul) or any(
            f.as_base_exp()[1].is_negative for f in Mul.make_args(expr) if not isinstance(f, sp.exp)
        ):
            return None
        factors = list(Mul.make_args(expr))
        first = next((f for f in factors if self._print(f) == out), None)
        if first is None:
            return None
        factor = sp.Mul(*[f for f in factors if f is not first])
        if factor.is_Atom:
            return None
        for home in scratch:
            symbol = next((s for s in factor.free_symbols if self._print(s) == home), None)
            if symbol is None:
                continue
            code = self._chain_into(factor, symbol, home)
            if code is not None:
                return factor, code, home, f"{self.module}.multiply({out}, {name}, out={out})"
        return None

    def _chain_into(self, expr, symbol, out: str) -> str | None:
        """``expr`` computed step by step in the memory of ``out``, the array ``symbol``:
        ``np.subtract(1, np.square(A1, out=A1), out=A1)``. Where ``symbol`` is read more than
        once (``A1 * (1 - A1)``), only the last step writes there, after every read. None for
        a step that has no ``out=`` form here."""
        np_ = self.module
        if expr == symbol:
            return out
        if expr.count(symbol) > 1:
            return self._into(expr, out)
        inner = next(a for a in expr.args if a.has(symbol))
        rest = [a for a in expr.args if a is not inner]
        call = self._ufunc(expr)
        if call is not None:
            chain = self._chain_into(inner, symbol, out)
            return chain and f"{call}({chain}, out={out})"
        if isinstance(expr, Pow) and inner is expr.base and expr.exp == 2:
            chain = self._chain_into(inner, symbol, out)
            return chain and f"{np_}.square({chain}, out={out})"
        if isinstance(expr, sp.Add):
            others = self._print(sp.Add(*rest))
            if inner.could_extract_minus_sign():
                chain = self._chain_into(-inner, symbol, out)
                return chain and f"{np_}.subtract({others}, {chain}, out={out})"
            chain = self._chain_into(inner, symbol, out)
            return chain and f"{np_}.add({chain}, {others}, out={out})"
        if isinstance(expr, Mul) and not inner.as_base_exp()[1].is_negative:
            chain = self._chain_into(inner, symbol, out)
            return chain and f"{np_}.multiply({chain}, {self._print(sp.Mul(*rest))}, out={out})"
        return None

    def _ufunc(self, expr) -> str | None:
        """The ufunc an array function of one argument is (``np.tanh``, SciPy's ``erf``), which
        takes ``out=``; None for any other expression."""
        if not isinstance(expr, sp.Function) or len(expr.args) != 1:
            return None
        return self.elementwise_call(expr)

    def _into(self, expr, out: str) -> str | None:
        np_ = self.module
        if isinstance(expr, sp.MatMul):
            coeff, (a, b) = expr.as_coeff_matrices()
            return f"{np_}.matmul({self._print(a)}, {self._print(b)}, out={out})"
        call = self._ufunc(expr)
        if call is not None:
            return f"{call}({self._print(expr.args[0])}, out={out})"
        if isinstance(expr, sp.Piecewise):
            masked = masked_value(expr)
            if masked is None:
                return None
            value, cond = masked
            return f"{np_}.multiply({self._print(value)}, {self._print(cond)}, out={out})"
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
            if denominator != 1 and denominator.free_symbols <= {BATCH}:
                # by a number (the batch size): np.divide takes 1.5-2.6x np.multiply by its
                # reciprocal (256×64 float32 3.2 against 2.0 µs, float64 8.8 against 3.7),
                # which is within an ulp of the quotient (exact for powers of 2)
                reciprocal = self.parenthesize(denominator, PRECEDENCE["Mul"])
                return f"{np_}.multiply({self._print(numerator)}, 1 / {reciprocal}, out={out})"
            if denominator != 1:
                return (
                    f"{np_}.divide({self._print(numerator)}, {self._print(denominator)}, out={out})"
                )
            first = next((f for f in num if self._print(f) == out), num[0])
            others = sp.Mul(coeff, *[f for f in num if f is not first])
            return f"{np_}.multiply({self._print(first)}, {self._print(others)}, out={out})"
        if isinstance(expr, sp.MatAdd) and all(isinstance(a, sp.MatrixSymbol) for a in expr.args):
            first = next((a for a in expr.args if self._print(a) == out), expr.args[0])
            others = [self._print(a) for a in expr.args if a is not first]
            return f"{np_}.add({self._print(first)}, {' + '.join(others)}, out={out})"
        if isinstance(expr, sp.Add):
            terms = sorted(expr.args, key=lambda t: t.could_extract_minus_sign())
            first, others = terms[0], sp.Add(*terms[1:])
            if others.could_extract_minus_sign():
                return f"{np_}.subtract({self._print(first)}, {self._print(-others)}, out={out})"
            return f"{np_}.add({self._print(first)}, {self._print(others)}, out={out})"
        return None
