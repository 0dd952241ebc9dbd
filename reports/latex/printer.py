"""SymPy's LaTeX printer, taught the notation of the textbooks.

What changes from :class:`sympy.printing.latex.LatexPrinter`:

* node symbols print through a symbol table (``z1_2`` -> ``z^{[1]}_{2}``), see ``notation.py``;
* at the matrix level, a product of matrix-valued symbols is elementwise and prints with
  ``\\odot`` (``A2*(1 - A2)`` -> ``A^{[2]} \\odot (1 - A^{[2]})``); a row of ones is
  ``\\mathbf{1}^\\top``; a transpose is ``A^{[1]\\top}``;
* ``rowsum(E)`` and ``total(E)`` (``derive.ops``) print as the sums they are;
* an activation applied or differentiated prints as ``\\sigma(z)`` and ``\\sigma'(z)``, never
  as ``\\left.\\frac{d}{d\\xi}\\right|``;
* ``Derivative(z, w)`` of two node symbols prints as the named factor ``\\partial z/\\partial w``;
* with ``values``, node symbols print as numbers: the "substituted numbers" line of a worked
  example comes from the very expression that gives the formula.

>>> import sympy as sp
>>> a, y = sp.symbols("a2 y", real=True)
>>> TextbookPrinter({"a2": "a^{[2]}"}).doprint(a * (1 - a) * (a - y))
'a^{[2]} (1 - a^{[2]}) (a^{[2]} - y)'
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from derive.ops import total
from derive.registry import ACTIVATIONS, LOSSES
from derive.textbook_order import product_factors, sum_terms

#: a negative number in its own parentheses inside a function's: tanh((-1.5)) -> tanh(-1.5)
_NESTED_NUMBER = re.compile(r"\((\(-[0-9.]+(?: \\cdot 10\^\{-?\d+\})?\)) ?\)")
_ENDS_IN_SUPERSCRIPT = re.compile(r"^(?P<base>[^{}^_]*(?:_\{[^{}]*\})?)\^\{(?P<sup>[^{}]*)\}$")


class TextbookPrinter(LatexPrinter):
    """LaTeX in a report's notation.

    ``names`` maps node names (and adjoint names) to LaTeX; ``matrices`` names the symbols
    that stand for whole matrices; ``values`` (name -> number) prints those symbols as
    numbers with ``digits`` significant digits.
    """

    printmethod = "_textbook_latex"

    def __init__(
        self,
        names: dict[str, str] | None = None,
        matrices: set[str] | frozenset = frozenset(),
        values: dict[str, float] | None = None,
        digits: int = 4,
        **settings,
    ):
        settings.setdefault("mat_symbol_style", "plain")
        super().__init__(settings)
        self.names = dict(names or {})
        self.matrices = set(matrices)
        self.values = values
        self.digits = digits

    def doprint(self, expr) -> str:
        return _NESTED_NUMBER.sub(r"\1", plain_parens(super().doprint(expr)))

    def parenthesize(self, item, level, is_neg=False, strict=False) -> str:
        return plain_parens(super().parenthesize(item, level, is_neg, strict))

    # -- symbols

    def _name(self, name: str) -> str | None:
        return self.names.get(name)

    def _print_Symbol(self, expr, style="plain"):
        if self.values is not None and expr.name in self.values:
            return self._number(self.values[expr.name])
        known = self._name(expr.name)
        return known if known is not None else super()._print_Symbol(expr, style)

    def _print_MatrixSymbol(self, expr):
        known = self._name(expr.name)
        return known if known is not None else super()._print_MatrixSymbol(expr)

    def _number(self, value: float) -> str:
        text = format_number(value, self.digits)
        return rf"\left({text}\right)" if text.startswith("-") else text

    # -- matrices

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        return r"\mathbf{1}^{\top}" if rows == 1 and cols != 1 else r"\mathbf{1}"

    def _print_Transpose(self, expr):
        inner = self._print(expr.arg)
        match = _ENDS_IN_SUPERSCRIPT.match(inner)
        if match is not None:  # A^{[1]} -> A^{[1]\top}: one superscript, as Ng writes it
            return f"{match['base']}^{{{match['sup']}\\top}}"
        if isinstance(expr.arg, sp.MatrixSymbol) and "^" not in inner and "\\frac" not in inner:
            return f"{inner}^{{\\top}}"
        return rf"\left({inner}\right)^{{\top}}"

    def _print_MatMul(self, expr):
        args = list(expr.args)
        lead = ""
        if args[0].is_Rational and args[0].is_positive and len(args) > 1:  # \frac{1}{100} W
            lead = self._print(args.pop(0)) + " "
        return lead + " ".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in args)

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in expr.args)

    def _is_matrix_valued(self, expr) -> bool:
        return any(
            getattr(s, "name", None) in self.matrices
            for s in expr.free_symbols | expr.atoms(sp.MatrixSymbol)
        )

    def _print_Mul(self, expr):
        numer, denom = sp.fraction(expr, exact=True)
        if denom != 1 and numer.has(total, sp.Sum) and not denom.has(total, sp.Sum):
            # (1/m)(...): the mean of a cost, as the books write it
            front = self._print(1 / denom)
            if isinstance(numer, sp.Add):
                return rf"{front} \left({self._print(numer)}\right)"
            if numer.could_extract_minus_sign():
                return rf"- {front} {self._print(-numer)}"
            return rf"{front} {self._print(numer)}"
        if self._matrix_factor_count(numer) < 2 and self._matrix_factor_count(denom) < 2:
            return self._scalar_mul(expr)
        sign = ""
        if numer.could_extract_minus_sign():
            sign, numer = "- ", -numer
        top = self._hadamard(numer)
        if denom != 1:
            return rf"{sign}\frac{{{top}}}{{{self._hadamard(denom)}}}"
        return sign + top

    def _as_ordered_terms(self, expr, order=None):
        return sum_terms(super()._as_ordered_terms(expr, order=order))  # w a + b

    def _scalar_mul(self, expr) -> str:
        """A product as a textbook sets it: the weight first (``w a``), and a thin space
        between two symbols, so ``b \\, du`` does not read as one symbol ``bdu``."""
        if not isinstance(expr, sp.Mul) or any(isinstance(a, sp.Number) for a in expr.args[1:]):
            return super()._print_Mul(expr)
        coeff, _ = expr.as_coeff_mul()
        factors = [f for f in expr.as_ordered_factors() if not f.is_Number]
        plain = all(f.is_commutative and not (f.is_Pow and f.exp.is_negative) for f in factors)
        if not plain or not coeff.is_Integer or len(factors) < 2:
            return super()._print_Mul(expr)
        ordered = product_factors(factors)
        separator = self._settings["mul_symbol_latex"]
        parts = [] if abs(coeff) == 1 else [self._print(abs(coeff))]
        for k, factor in enumerate(ordered):
            text = self._print(factor)
            if self._needs_mul_brackets(factor, first=not parts, last=k == len(ordered) - 1):
                text = rf"\left({text}\right)"
            if parts and separator == " " and factor.is_Symbol and ordered[k - 1].is_Symbol and k:
                parts.append(r"\,")
            parts.append(text)
        return ("- " if coeff < 0 else "") + separator.join(parts).replace(
            f"{separator}\\,{separator}", " \\, "
        )

    def _matrix_factor_count(self, expr) -> int:
        factors = sp.Mul.make_args(expr)
        return sum(1 for f in factors if self._is_matrix_valued(f) and not isinstance(f, total))

    def _hadamard(self, product) -> str:
        """Scalars first, juxtaposed; then the matrix factors joined by ``\\odot``."""
        scalars, matrices = [], []
        for factor in sp.Mul.make_args(product):
            matrix = self._is_matrix_valued(factor) and not isinstance(factor, total)
            (matrices if matrix else scalars).append(factor)
        front = super()._print_Mul(sp.Mul(*scalars)) if scalars else ""
        if len(matrices) == 1:
            body = self._print(matrices[0])
        else:
            body = r" \odot ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in matrices)
        return f"{front} {body}".strip()

    def _print_Pow(self, expr):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and exp > 1 and isinstance(base, sp.Symbol):
            inner = self._print(base)
            if "^" in inner or inner.startswith(r"\left("):
                if not inner.startswith(r"\left("):
                    inner = rf"\left({inner}\right)"
                return f"{inner}^{{{exp}}}"
        return super()._print_Pow(expr)

    def _held_branch(self, expr):
        """With numbers put in, the value of the branch of a Piecewise that holds (or None)."""
        if self.values is None:
            return None
        numbers = {
            s: sp.Float(self.values[s.name]) for s in expr.free_symbols if s.name in self.values
        }
        for value, condition in expr.args:
            held = condition.xreplace(numbers)
            if held not in (sp.true, sp.false):
                return None  # a condition on something without a number
            if held == sp.true:
                return value
        return None

    def _print_Piecewise(self, expr):
        """With numbers put in, the branch that holds: ``0``, not "(-0.76) for (-0.76) > 0"."""
        held = self._held_branch(expr)
        return super()._print_Piecewise(expr) if held is None else self._print(held)

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        held = self._held_branch(expr) if isinstance(expr, sp.Piecewise) else None
        return super()._needs_mul_brackets(expr if held is None else held, first, last)

    def _print_rowsum(self, expr, exp=None):
        return rf"\operatorname{{rowsum}}\left({self._print(expr.args[0])}\right)"

    def _print_total(self, expr, exp=None):
        inner = self._print(expr.args[0])
        if isinstance(expr.args[0], sp.Symbol | sp.MatrixSymbol):
            return rf"\sum_{{i,j}} {inner}_{{ij}}"
        return rf"\sum_{{i,j}} \left[{inner}\right]_{{ij}}"

    # -- activations and derivatives

    def _activation_latex(self, func) -> str | None:
        name = getattr(func, "__name__", None)
        if isinstance(func, sp.core.function.UndefinedFunction) and name in ACTIVATIONS:
            return ACTIVATIONS[name].latex
        if isinstance(func, sp.core.function.UndefinedFunction) and name in LOSSES:
            return LOSSES[name].latex
        return None

    def _print_Function(self, expr, exp=None):
        head = self._activation_latex(expr.func) if isinstance(expr, AppliedUndef) else None
        if head is None:
            return super()._print_Function(expr, exp)
        args = ", ".join(self._print(arg) for arg in expr.args)
        text = rf"{head}\left({args}\right)"
        return f"{text}^{{{exp}}}" if exp else text

    def _print_Derivative(self, expr):
        (variable, count), *more = expr.variable_count
        inner = expr.expr
        if (
            not more
            and count == 1
            and isinstance(inner, AppliedUndef)
            and inner.args == (variable,)
        ):
            head = self._activation_latex(inner.func) or self._print(inner.func)
            return rf"{head}'\left({self._print(variable)}\right)"
        if not more and count == 1 and isinstance(inner, sp.Symbol | sp.MatrixSymbol):
            top, bottom = self._print(inner), self._print(variable)
            return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"
        return super()._print_Derivative(expr)

    def _print_Subs(self, subs):
        inner, (old,), (new,) = subs.args
        if isinstance(inner, sp.Derivative) and isinstance(inner.expr, AppliedUndef):
            head = self._activation_latex(inner.expr.func) or self._print(inner.expr.func)
            return rf"{head}'\left({self._print(new)}\right)"
        return super()._print_Subs(subs)


_TALL = re.compile(r"\\(?:frac|dfrac|sum|prod|int|begin|left)(?![A-Za-z])")
_DELIMS = re.compile(r"\\left(?:\(|\[|\\\{|\.|\|)|\\right(?:\)|\]|\\\}|\.|\|)")


def plain_parens(tex: str) -> str:
    """``\\left( a^{(1)} \\right)`` -> ``(a^{(1)})``: plain parentheses wherever nothing tall
    (a fraction, a sum, a cases block) sits inside, as a textbook sets them.

    >>> plain_parens(r"\\left(1 - a\\right) \\left(\\frac{1}{2}\\right)")
    '(1 - a) \\\\left(\\\\frac{1}{2}\\\\right)'
    """
    out: list[str] = []
    stack: list[tuple[int, str]] = []  # (index in out of the opening token, its delimiter)
    pos = 0
    for match in _DELIMS.finditer(tex):
        out.append(tex[pos : match.start()])
        token = match.group(0)
        pos = match.end()
        if token.startswith("\\left"):
            stack.append((len(out), token))
            out.append(token)
            continue
        if not stack:
            out.append(token)
            continue
        start, opener = stack.pop()
        inner = "".join(out[start + 1 :])
        pair = {"\\left(": "\\right)", "\\left[": "\\right]"}
        if pair.get(opener) == token and not _TALL.search(inner):
            out[start] = opener[-1]
            out.append(token[-1])
        else:
            out.append(token)
    out.append(tex[pos:])
    return "".join(out)


def format_number(value: float, digits: int = 4) -> str:
    """A number as a person writes it: ``0.1107``, ``-2.5``, ``3.2 \\cdot 10^{-5}``.

    >>> format_number(0.000032156)
    '3.216 \\\\cdot 10^{-5}'
    >>> format_number(-2.5)
    '-2.5'
    """
    value = float(value)
    if value == 0:
        return "0"
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": r"\text{n/a}", "inf": r"\infty", "-inf": r"-\infty"}[str(value)]
    if 1e-3 <= abs(value) < 1e4:
        text = f"{value:.{digits}g}"
        if "e" in text:  # .4g of 1234.5 is '1234' but of 12345 would be '1.234e+04'
            text = f"{value:.0f}"
        return text
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"


def activation_function(name: str) -> sp.core.function.UndefinedFunction:
    """An undefined SymPy function named after a registry activation: ``g(z)`` prints as
    ``\\sigma(z)`` and ``g(z).diff(z)`` as ``\\sigma'(z)``."""
    return sp.Function(name, real=True)


def named_factor(top: sp.Symbol, bottom: sp.Symbol) -> sp.Derivative:
    """``∂top/∂bottom`` as an unevaluated derivative, printed as a named factor."""
    return sp.Derivative(top, bottom, evaluate=False)
