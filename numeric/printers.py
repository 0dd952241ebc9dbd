"""Printers: SymPy expressions of a Derivation as array code, and as equations for comments.

One visitor per output format, as SymPy's printers are: a ``_print_<Class>`` method per node
type. :class:`KernelPrinter` holds everything the NumPy and JAX kernels share;
:class:`NumPyPrinter` and :class:`JaxPrinter` only name their array module and say how a
function is wrapped (JAX compiles it with ``jax.jit``). :class:`EquationPrinter` writes the
textbook form of a formula for the comment beside the line that implements it.

What a printer reads:

* elementwise expressions over real symbols named like arrays (``A2 - Y``), read entry by
  entry with broadcasting; ``rowsum``/``total``/``rowmax`` reduce over a row or everything;
* matrix expressions: ``MatMul`` is ``@``, ``Transpose`` is ``.T``, a column of ones on the
  left is a broadcast (``X W + 1 b`` is ``X @ W + b``) and a row of ones is a sum over rows
  (``1ᵀ dZ`` is ``dZ.sum(axis=0)``);
* the stable functions of :mod:`numeric.stable` (``sigmoid``, ``softplus``, ...).

Python numbers stay Python numbers (``1 / m``, ``0.01``): NumPy and JAX treat them as weakly
typed, so a float32 kernel stays float32.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy import Mul, Pow
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from derive.errors import BackpropInputError
from derive.ops import total

from .stable import maximum


class batch_mean(sp.Function):  # noqa: N801  (SymPy function names are lower case)
    """Mean over the examples of a batch: a scalar-level gradient is the mean of its
    per-example values, because the cost is the mean loss."""

    nargs = 1
    is_real = True


class zeros_like(sp.Function):  # noqa: N801
    """An array of zeros shaped like its argument: a matrix-level adjoint that is 0 (the
    derivative of a flat activation such as ``step``) still feeds matrix products."""

    nargs = 1
    is_real = True


def elementwise_form(expr, ranks: dict[str, int], rank: int | None = None):
    """A matrix expression as an elementwise one, where its arrays have fewer axes than
    their matrix shapes (a chain network's ``1×1`` weights are 0-d arrays); None when the
    matrix form prints as it should.

    A ``1×1`` factor stored as a number multiplies as one (``X w1`` is ``X * w1``, ``dZ2 w2ᵀ``
    is ``dZ2 * w2``: ``@`` refuses a 0-d operand), and a ``1×1`` result stored as a number
    (``rank`` 0) is a sum over the batch (``Xᵀ dZ1`` is ``total(X * dZ1)``, ``1ᵀ dZ1`` is
    ``total(dZ1)``), not a ``(1, 1)`` array. ``ranks`` gives each array's number of axes.

    >>> m = sp.Symbol("m", integer=True, positive=True)
    >>> X, dZ1 = sp.MatrixSymbol("X", m, 1), sp.MatrixSymbol("dZ1", m, 1)
    >>> w1, b1 = sp.MatrixSymbol("w1", 1, 1), sp.MatrixSymbol("b1", 1, 1)
    >>> ranks = {"X": 2, "dZ1": 2, "w1": 0, "b1": 0, "dw1": 0}
    >>> elementwise_form(X * w1 + sp.OneMatrix(m, 1) * b1, ranks, rank=2)
    X*w1 + b1
    >>> elementwise_form(X.T * dZ1, ranks, rank=0)
    total(X*dZ1)
    """

    def number(matrix) -> bool:
        base = matrix.arg if isinstance(matrix, sp.Transpose) else matrix
        return isinstance(base, sp.MatrixSymbol) and ranks.get(base.name) == 0

    def scales_an_array(product) -> bool:
        matrices = product.as_coeff_matrices()[1]
        return any(map(number, matrices)) and not all(
            number(f) or isinstance(f, sp.OneMatrix) for f in matrices
        )

    products = [e for e in sp.preorder_traversal(expr) if isinstance(e, sp.MatMul)]
    summed = rank == 0 and any(ranks.get(s.name, 2) > 1 for s in expr.atoms(sp.MatrixSymbol))
    if not summed and not any(map(scales_an_array, products)):
        return None

    def convert(e):
        if isinstance(e, sp.MatAdd):
            terms = [convert(term) for term in e.args]
            return None if any(t is None for t in terms) else sp.Add(*terms)
        if isinstance(e, sp.MatrixSymbol) or number(e):
            return sp.Symbol((e.arg if isinstance(e, sp.Transpose) else e).name, real=True)
        if not isinstance(e, sp.MatMul):
            return None
        coeff, matrices = e.as_coeff_matrices()
        numbers = [convert(f) for f in matrices if number(f)]
        # a column of ones times a row broadcasts it (1 b1 is b1)
        rest = [f for f in matrices if not number(f)]
        rest = [f for f in rest if not (isinstance(f, sp.OneMatrix) and f.shape[1] == 1)]
        over_batch = (
            rank == 0 and len(rest) == 2 and isinstance(rest[0], (sp.OneMatrix, sp.Transpose))
        )
        if over_batch:  # 1ᵀ dZ1 sums dZ1, Xᵀ dZ1 sums X * dZ1
            first, second = rest
            rest = [second] if isinstance(first, sp.OneMatrix) else [first.arg, second]
        if len(rest) > 1 + over_batch or not all(isinstance(f, sp.MatrixSymbol) for f in rest):
            return None  # a true matrix product
        body = sp.Mul(*numbers, *[convert(f) for f in rest])
        return coeff * (total(body) if over_batch else body)

    return convert(expr)


# Array functions with the same name in NumPy and jax.numpy (SymPy name -> array name).
_ELEMENTWISE = {
    "exp": "exp",
    "log": "log",
    "tanh": "tanh",
    "sinh": "sinh",
    "cosh": "cosh",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "atan": "arctan",
    "asin": "arcsin",
    "acos": "arccos",
    "asinh": "arcsinh",
    "acosh": "arccosh",
    "atanh": "arctanh",
    "erf": "erf",
    "Abs": "abs",
    "sign": "sign",
    "expm1": "expm1",
    "log1p": "log1p",
    "floor": "floor",
    "ceiling": "ceil",
}

# Helpers a kernel defines once and calls by name: stable forms of two textbook functions.
_HELPERS = {
    "sigmoid": '''def sigmoid(u):
    """Logistic sigmoid 1 / (1 + exp(-u)), without overflow: only exp(-|u|) is taken."""
    e = {np}.exp(-{np}.abs(u))
    return {np}.where(u >= 0, 1, e) / (1 + e)''',
    "softplus": '''def softplus(u):
    """Softplus log(1 + exp(u)) = max(u, 0) + log(1 + exp(-|u|)), without overflow."""
    return {np}.maximum(u, 0) + {np}.log1p({np}.exp(-{np}.abs(u)))''',
}


def natural_key(text: str) -> tuple:
    """Sort key reading digit runs as numbers: ``x2`` before ``x10``."""
    return tuple(int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", text))


def _simple_operand(text: str) -> bool:
    """A name, a number or an attribute (``A1``, ``2``, ``self.x``): ``**`` hugs these."""
    return re.fullmatch(r"-?[A-Za-z_][\w.]*|-?\d+(\.\d*)?", text) is not None


def _is_scalar(expr: sp.Expr) -> bool:
    """Numbers and sizes (integer symbols such as the batch size ``m``): Python numbers."""
    return all(s.is_integer for s in expr.free_symbols)


class KernelPrinter(StrPrinter):
    """Array code for one expression; the base of the NumPy and JAX printers.

    ``names`` maps SymPy names to Python identifiers, ``ranks`` gives the number of axes
    of each array (a row sum of a vector is the vector itself), ``lead`` lists names a
    product prints first (adjoints: ``dA1 * (1 - A1**2)`` reads as the chain rule).

    >>> from numeric.stable import sigmoid
    >>> z, y, m = sp.Symbol("z", real=True), sp.Symbol("y", real=True), sp.Symbol("m")
    >>> NumPyPrinter().doprint((sigmoid(z) - y) / m)
    '(sigmoid(z) - y) / m'
    """

    module = "np"
    target = "numpy"
    imports: tuple[str, ...] = ("import numpy as np",)
    dtype_of_inputs = "X.dtype"

    _default_settings = {
        **StrPrinter._default_settings,
        "names": {},
        "ranks": {},
        "lead": (),
    }

    def __init__(self, settings=None):
        super().__init__(settings)
        self.helpers_used: set[str] = set()

    # -- module-level pieces (what differs between targets)

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
        if isinstance(expr, sp.Function) and name in _ELEMENTWISE and len(expr.args) == 1:
            return f"{np_}.{_ELEMENTWISE[name]}({self._print(expr.args[0])}, out={out})"
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

    def helper_source(self, name: str) -> str:
        """Source of a helper function the printed code called, e.g. the stable sigmoid."""
        return _HELPERS[name].format(np=self.module)

    def function(
        self, name: str, args: str, doc: str, body: list, returns: list[tuple[str, str, bool]]
    ) -> list:
        """A function definition: ``body`` is a list of (code, node, kind), code indented by
        four spaces; ``returns`` lists (name, expression, is_python_float). Returns the lines
        as the same (code, node, kind) triples."""
        out = [(f"def {name}({args}):", None, "def"), (f'    """{doc}"""', None, "doc")]
        out += [(code, node, kind) for code, node, kind in body]
        values = ", ".join(f"float({expr})" if is_float else expr for _, expr, is_float in returns)
        out += [(text, None, "return") for text in wrap_statement("return ", values)]
        return out

    # -- atoms

    def parenthesize(self, item, level, strict=False):
        # a Piecewise may print as a product (``Z1 * (Z1 > 0)``)
        prec = PRECEDENCE["Mul"] if isinstance(item, sp.Piecewise) else precedence(item)
        if prec < level or (not strict and prec <= level):
            return f"({self._print(item)})"
        return self._print(item)

    def _name(self, name: str) -> str:
        return self._settings["names"].get(name, name)

    def _print_Symbol(self, expr):
        return self._name(expr.name)

    _print_Dummy = _print_Symbol

    def _print_MatrixSymbol(self, expr):
        return self._name(expr.name)

    def _print_Integer(self, expr):
        return str(expr.p)

    def _print_Rational(self, expr):
        return f"{expr.p} / {expr.q}"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_NumberSymbol(self, expr):
        return repr(float(expr))

    _print_Pi = _print_Exp1 = _print_EulerGamma = _print_GoldenRatio = _print_NumberSymbol

    def _print_Infinity(self, expr):
        return f"{self.module}.inf"

    def _print_NegativeInfinity(self, expr):
        return f"-{self.module}.inf"

    def _print_ComplexInfinity(self, expr):
        raise BackpropInputError("the expression has no value: it divides by zero (SymPy: zoo)")

    def _print_NaN(self, expr):
        raise BackpropInputError("the expression has no value (SymPy: nan)")

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    # -- arithmetic

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

    # -- functions

    def _args(self, expr) -> str:
        return ", ".join(self._print(arg) for arg in expr.args)

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in _ELEMENTWISE:
            return f"{self.module}.{_ELEMENTWISE[name]}({self._args(expr)})"
        raise NotImplementedError(
            f"{self.target} printer: no array form for the function {name!r} in {expr}"
        )

    _print_exp = _print_log = _print_Abs = _print_sign = _print_Function

    def _helper(self, expr):
        name = type(expr).__name__
        self.helpers_used.add(name)
        return f"{name}({self._args(expr)})"

    _print_sigmoid = _print_softplus = _helper

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
        if pair is not None:  # sum of a product: one dot product, no temporary
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

    # -- conditions

    def _print_Relational(self, expr):
        lhs = self.parenthesize(expr.lhs, PRECEDENCE["Relational"], strict=True)
        rhs = self.parenthesize(expr.rhs, PRECEDENCE["Relational"], strict=True)
        op = {"==": "==", "!=": "!="}.get(expr.rel_op, expr.rel_op)
        return f"{lhs} {op} {rhs}"

    def _condition(self, cond) -> str:
        """A condition as an operand of ``&``, ``|``, ``*``: parenthesised (they bind
        tighter than comparisons in Python)."""
        text = self._print(cond)
        return text if isinstance(cond, sp.Symbol) else f"({text})"

    def _print_And(self, expr):
        return " & ".join(self._condition(arg) for arg in expr.args)

    def _print_Or(self, expr):
        return " | ".join(self._condition(arg) for arg in expr.args)

    def _print_Not(self, expr):
        return f"~{self._condition(expr.args[0])}"

    def _print_Piecewise(self, expr):
        pieces = list(expr.args)
        values = [p.expr for p in pieces]
        if all(not v.free_symbols for v in values):  # step, sign: numbers in the inputs' dtype
            if len(pieces) == 2 and values == [1, 0] and pieces[1].cond == sp.true:
                return f"{self._condition(pieces[0].cond)}.astype({self.dtype_of_inputs})"
            return f"{self._where(pieces)}.astype({self.dtype_of_inputs})"
        if len(pieces) == 2 and pieces[1].cond == sp.true and values[1] == 0:
            value, cond = pieces[0].expr, pieces[0].cond
            if not value.has(sp.Function) and not value.has(Pow):  # safe: finite everywhere
                return f"{self.parenthesize(value, PRECEDENCE['Mul'])} * {self._condition(cond)}"
        return self._where(pieces)

    def _where(self, pieces) -> str:
        (value, cond), rest = pieces[0].args, pieces[1:]
        if cond == sp.true or not rest:
            return self._print(value)
        args = f"{self._print(cond)}, {self._print(value)}, {self._where(rest)}"
        return f"{self.module}.where({args})"

    # -- matrices

    def _print_MatMul(self, expr):
        coeff, matrices = expr.as_coeff_matrices()
        scalar = sp.Mul(*[a for a in expr.args if not isinstance(a, sp.MatrixExpr)])
        if len(matrices) == 2 and isinstance(matrices[0], sp.OneMatrix):
            ones, operand = matrices
            if ones.shape[1] == 1:  # a column of ones times a row: broadcast the row
                text = self._print(operand)
            else:  # a row of ones times a matrix: the sum over rows
                receiver = self.parenthesize(operand, PRECEDENCE["Func"], strict=True)
                text = f"{receiver}.sum(axis=0)" if self._rank(operand) > 1 else f"{receiver}.sum()"
        else:
            text = " @ ".join(self.parenthesize(m, PRECEDENCE["Mul"]) for m in matrices)
        if scalar == 1:
            return text
        factor = scalar * sp.Symbol("__matrix__")
        return self._print(factor).replace("__matrix__", f"({text})" if " " in text else text)

    def _print_MatAdd(self, expr):
        out = ""
        for term in expr.args:
            coeff = term.as_coeff_mmul()[0] if isinstance(term, sp.MatMul) else 1
            negative = getattr(coeff, "is_negative", False)
            text = self._print(-term if negative else term)
            out = (
                (f"-{text}" if negative else text)
                if not out
                else (out + (f" - {text}" if negative else f" + {text}"))
            )
        return out

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Func'], strict=True)}.T"

    def _print_OneMatrix(self, expr):
        raise NotImplementedError(f"a matrix of ones outside a product: {expr}")


class NumPyPrinter(KernelPrinter):
    """Kernels over NumPy: plain functions, importing NumPy only."""


class JaxPrinter(KernelPrinter):
    """The same kernels over ``jax.numpy``, each compiled with ``jax.jit``.

    A compiled function returns arrays; where the contract asks for a Python float (the
    cost), a thin wrapper converts the compiled function's result. ``Aᵀ B`` is printed as a
    contraction over the first axes (XLA would copy the transpose). Float64 inputs need
    JAX's x64 mode (``jax.enable_x64``); without it JAX computes in float32.
    """

    module = "jnp"
    target = "jax"
    imports = ("import jax", "import jax.numpy as jnp")

    def doprint_into(self, expr, out=None) -> str:
        return self.doprint(expr)  # arrays are immutable; XLA reuses buffers by itself

    def bias_in_place(self, expr) -> None:
        return None  # likewise

    def _print_MatMul(self, expr):
        """``Aᵀ B`` as a contraction over the first axes: XLA would copy a transpose."""
        matrices = expr.as_coeff_matrices()[1]
        scalar = sp.Mul(*[a for a in expr.args if not isinstance(a, sp.MatrixExpr)])
        if len(matrices) != 2 or not any(isinstance(m, sp.Transpose) for m in matrices):
            return super()._print_MatMul(expr)
        left, right = matrices
        if isinstance(left, sp.OneMatrix) or isinstance(right, sp.OneMatrix):
            return super()._print_MatMul(expr)
        a, left_axis = (left.arg, 0) if isinstance(left, sp.Transpose) else (left, -1)
        b, right_axis = (right.arg, -1) if isinstance(right, sp.Transpose) else (right, 0)
        text = (
            f"jnp.tensordot({self._print(a)}, {self._print(b)}, axes=({left_axis}, {right_axis}))"
        )
        if scalar == 1:
            return text
        return self._print(scalar * sp.Symbol("__matrix__")).replace("__matrix__", text)

    def function(self, name, args, doc, body, returns):
        if not any(is_float for _, _, is_float in returns):
            inner = super().function(name, args, doc, body, returns)
            return [("@jax.jit", None, "def"), *inner]
        core = f"_{name}"
        plain = [(n, e, False) for n, e, _ in returns]
        out = [("@jax.jit", None, "def")]
        out += super().function(core, args, f"Compiled body of `{name}`.", body, plain)
        names = ", ".join(n for n, _, _ in returns)
        converted = ", ".join(f"float({n})" if f else n for n, _, f in returns)
        out += [
            ("", None, "blank"),
            ("", None, "blank"),
            (f"def {name}({args}):", None, "def"),
            (f'    """{doc}"""', None, "doc"),
            (f"    {names} = {core}({args})", None, "call"),
            (f"    return {converted}", None, "return"),
        ]
        return out


# ---------------------------------------------------------------------------- line layout

WIDTH = 100  # longest printed line: the project's ruff line-length


def wrap_statement(head: str, code: str, comment: str = "", indent: int = 4) -> list[str]:
    """``head + code`` with its comment beside it, or above it and wrapped, when too long.

    >>> wrap_statement("dZ2 = ", "(A2 - Y) / m", "dZ2 = (A2 - Y)/m")
    ['    dZ2 = (A2 - Y) / m  # dZ2 = (A2 - Y)/m']
    """
    pad = " " * indent
    line = f"{pad}{head}{code}"
    if comment and len(line) + 4 + len(comment) <= WIDTH:
        return [f"{line}  # {comment}"]
    lines = comment_lines(comment, pad) if comment else []
    return lines + split_line(head, code, "", pad)


def comment_lines(comment: str, pad: str) -> list[str]:
    """A comment over as many lines as it needs, broken at spaces."""
    lines, current = [], ""
    for word in comment.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and len(pad) + 2 + len(candidate) > WIDTH:
            lines.append(f"{pad}# {current}")
            current = word
        else:
            current = candidate
    return lines + ([f"{pad}# {current}"] if current else [])


_OPENERS, _CLOSERS = "([{", ")]}"


def _top_level(code: str, separators: tuple[str, ...]) -> list[int]:
    """Positions of the separators that are outside brackets and strings."""
    depth, quote, hits = 0, None, []
    for i, c in enumerate(code):
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in _OPENERS:
            depth += 1
        elif c in _CLOSERS:
            depth -= 1
        elif depth == 0 and any(code.startswith(sep, i) for sep in separators):
            hits.append(i)
    return hits


def _outer_bracket(code: str) -> int | None:
    """Index of the bracket that the last character closes, if the code ends with one."""
    if not code or code[-1] not in _CLOSERS:
        return None
    depth, quote = 0, None
    for i in range(len(code) - 1, -1, -1):
        c = code[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in _CLOSERS:
            depth += 1
        elif c in _OPENERS:
            depth -= 1
            if depth == 0:
                return i
    return None


def split_line(head: str, code: str, tail: str, pad: str) -> list[str]:
    """Break a long line: at top-level operators inside parentheses, else one argument (or
    element) per line inside the closing bracket, as a formatter would."""
    if len(pad) + len(head) + len(code) + len(tail) <= WIDTH:
        return [f"{pad}{head}{code}{tail}"]
    inner = pad + "    "
    for ops in ((" + ", " - "), (" * ", " / ", " @ "), (" & ", " | ")):
        hits = _top_level(code, ops)
        if hits and head.endswith("= "):
            bounds = [0, *hits, len(code)]
            pieces = [code[a:b].strip() for a, b in zip(bounds, bounds[1:])]
            out = [f"{pad}{head}("]  # one operand per line, operators leading, as ruff format
            for text in pieces:
                out += split_line("", text, "", inner)
            return out + [f"{pad}){tail}"]
    opener = _outer_bracket(code)
    if opener is not None:
        content = code[opener + 1 : -1]
        commas = _top_level(content, (", ",))
        bounds = [0, *[c + 2 for c in commas]]
        parts = [content[a:b] for a, b in zip(bounds, [*commas, len(content)])]
        out = [f"{pad}{head}{code[: opener + 1]}"]
        for part in parts:
            out += split_line("", part.strip(), ",", inner)
        return out + [f"{pad}{code[-1]}{tail}"]
    return [f"{pad}{head}{code}{tail}"]


PRINTERS = {"numpy": NumPyPrinter, "jax": JaxPrinter}


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

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Pow'])}ᵀ"

    def _print_OneMatrix(self, expr):
        return "1" if expr.shape[1] == 1 else "1ᵀ"

    def _print_MatAdd(self, expr):
        return " + ".join(self._print(t) for t in expr.args).replace("+ -", "- ")

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


__all__ = [
    "PRINTERS",
    "WIDTH",
    "EquationPrinter",
    "JaxPrinter",
    "KernelPrinter",
    "NumPyPrinter",
    "batch_mean",
    "comment_lines",
    "elementwise_form",
    "split_line",
    "wrap_statement",
    "zeros_like",
]


def _plain_product(expr) -> bool:
    """``A @ B`` of two matrices, neither a column of ones (that is a broadcast, not a GEMM)."""
    if not isinstance(expr, sp.MatMul):
        return False
    coeff, matrices = expr.as_coeff_matrices()
    return (
        coeff == 1 and len(matrices) == 2 and not any(isinstance(m, sp.OneMatrix) for m in matrices)
    )
