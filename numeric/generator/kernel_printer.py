"""The kernel printer: SymPy expressions of a Derivation as array code, for NumPy and JAX.

:class:`KernelPrinter` holds everything the NumPy and JAX kernels share — atoms, calls of
array functions and of the helpers a kernel defines (the stable ``sigmoid`` and ``softplus``),
conditions, matrix products — on top of the arithmetic of
:class:`numeric.generator.kernel_arithmetic.KernelArithmetic`. The targets
(:mod:`numeric.generator.numpy_printer`, :mod:`numeric.generator.jax_printer`) name their
array module and say how a function is wrapped.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from derive.errors import BackpropInputError

from .kernel_arithmetic import KernelArithmetic
from .kernel_forms import masked_value
from .line_layout import wrap_statement

# Array functions with the same name in NumPy and jax.numpy (SymPy name -> array name).
ELEMENTWISE = {
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
    "Abs": "abs",
    "sign": "sign",
    "expm1": "expm1",
    "log1p": "log1p",
    "floor": "floor",
    "ceiling": "ceil",
}

# Functions neither array module has, imported by name from the SciPy beside it (SymPy name
# -> the import, by array module): an exact GELU's erf (measured in numpy_forms).
SCIPY_SPECIAL = {
    "erf": {"np": "from scipy.special import erf", "jnp": "from jax.scipy.special import erf"},
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


class KernelPrinter(KernelArithmetic):
    """Array code for one expression; the base of the NumPy and JAX printers.

    ``names`` maps SymPy names to Python identifiers, ``ranks`` gives the number of axes
    of each array (a row sum of a vector is the vector itself), ``shapes`` the shape of each
    identifier where known (a column times a matrix is no dot product), ``lead`` lists names a
    product prints first (adjoints: ``dA1 * (1 - A1**2)`` reads as the chain rule).

    >>> from numeric.generator.numpy_printer import NumPyPrinter
    >>> from numeric.generator.stable import sigmoid
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
        "shapes": {},
        "lead": (),
    }

    def __init__(self, settings=None):
        super().__init__(settings)
        self.helpers_used: set[str] = set()
        self.imports_used: set[str] = set()  # beyond the target's: ``from scipy.special ...``

    # -- module-level pieces (what differs between targets)

    def doprint_into(self, expr, out: str | None = None) -> str:
        """Like ``doprint``, writing the result into the array named ``out`` where the target
        can (:class:`numeric.generator.numpy_printer.NumPyPrinter`); here, a new array."""
        return self.doprint(expr)

    def factor_into(self, expr, out: str, scratch: tuple[str, ...], name: str):
        """A product's factor computed in the memory of a dead array, where the target can
        (:class:`numeric.generator.numpy_printer.NumPyPrinter`); here, None."""
        return None

    def bias_in_place(self, expr, out: str | None = None) -> tuple[str, str] | None:
        """``A @ W + b`` as the product (into ``out``) and the term to add to it in place,
        where the target can (:class:`numeric.generator.numpy_printer.NumPyPrinter`); here, None."""
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
        prec = precedence(item)
        if isinstance(item, sp.Piecewise):  # a product (Z1 * (Z1 > 0)) or a call (np.where)
            prec = PRECEDENCE["Mul"] if masked_value(item) else PRECEDENCE["Func"]
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

    # -- functions

    def _print_Function(self, expr):
        name = self.elementwise_call(expr)
        if name is not None:
            return f"{name}({self._args(expr)})"
        raise NotImplementedError(
            f"{self.target} printer: no array form for the function {type(expr).__name__!r} "
            f"in {expr}"
        )

    def elementwise_call(self, expr) -> str | None:
        """The name an array function of ``expr``'s kind is called by (``np.tanh``; ``erf``,
        imported from the SciPy beside the array module), or None if it has none."""
        name = type(expr).__name__
        if name in ELEMENTWISE:
            return f"{self.module}.{ELEMENTWISE[name]}"
        if name in SCIPY_SPECIAL:
            self.imports_used.add(SCIPY_SPECIAL[name][self.module])
            return name
        return None

    _print_exp = _print_log = _print_Abs = _print_sign = _print_Function

    def _helper(self, expr):
        name = type(expr).__name__
        self.helpers_used.add(name)
        return f"{name}({self._args(expr)})"

    _print_sigmoid = _print_softplus = _helper

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
        masked = masked_value(expr)
        if masked:
            value, cond = masked
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
        elif len(matrices) == 1:
            text = self._print(matrices[0])
        else:
            text = " @ ".join(self.parenthesize(m, PRECEDENCE["Mul"]) for m in matrices)
        if scalar == 1:
            return text
        factor = scalar * sp.Symbol("__matrix__")
        bare = " " not in text or isinstance(expr.args[-1], sp.HadamardProduct)  # a product too
        return self._print(factor).replace("__matrix__", text if bare else f"({text})")

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

    def _print_HadamardProduct(self, expr):
        """``A ⊙ B`` is the array product ``A * B`` (``1 γ ⊙ N`` broadcasts the row γ)."""
        factors = [self.parenthesize(arg, PRECEDENCE["Mul"], strict=True) for arg in expr.args]
        return " * ".join(factors)

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Func'], strict=True)}.T"

    def _print_OneMatrix(self, expr):
        raise NotImplementedError(f"a matrix of ones outside a product: {expr}")
