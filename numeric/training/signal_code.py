"""The perceptron rule's batch signal printed as NumPy code, from its definition.

:meth:`derive.optimizers.Perceptron.batch_signals` sums ``(y - yhat) x`` over a batch's rows
as matrix expressions; SymPy's ``cse`` finds the error ``Y - Yhat`` they share, and the
kernels' printer (:class:`numeric.generator.numpy_printer.NumPyPrinter`) writes each
statement into an array that exists already: the error into the forward pass's output
``Yhat``, the signals into the arrays the loop made once.

>>> print(signal_source().split("def signal")[1])
(X, Y, Yhat, ones, delta_W, delta_b):
    \"\"\"Sums (y - yhat) x over the batch into delta_W, delta_b; returns E, in Yhat.\"\"\"
    # E = Y - Yhat
    E = np.subtract(Y, Yhat, out=Yhat)
    # delta_W = X.T @ E
    np.matmul(X.T, E, out=delta_W)
    # delta_b = ones.T @ E
    np.matmul(ones.T, E, out=delta_b)
    return E
<BLANKLINE>
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from derive.optimizers import Perceptron, Yhat
from numeric.generator.kernel import module_from_source
from numeric.generator.numpy_printer import NumPyPrinter

#: where each batch signal goes: the arrays the loop made once
OUTPUTS = {"weight": "delta_W", "bias": "delta_b"}


def signal_source(rule: Perceptron | None = None) -> str:
    """The module source of ``signal(X, Y, Yhat, ones, delta_W, delta_b)``: every operand
    is a 2-D array (a row per example; ``delta_W`` is inputs x outputs, ``delta_b`` one row)."""
    rule = rule or Perceptron()
    signals = rule.batch_signals()
    ((error, difference),), outputs = sp.cse(list(signals.values()), symbols=_names("E"))
    printer = NumPyPrinter()
    entrywise = _entrywise(difference)  # Y - Yhat, read by both sums: into Yhat's memory
    body = [f"# {error} = {printer.doprint(entrywise)}"]
    body.append(f"{error} = {printer.doprint_into(entrywise, str(Yhat))}")
    for key, expr in zip(signals, outputs):
        body.append(f"# {OUTPUTS[key]} = {printer.doprint(expr)}")
        body.append(printer.doprint_into(expr, OUTPUTS[key]))
    return "\n".join(
        [
            f'"""{rule.title}: its signal on a batch, printed from derive.optimizers.Perceptron.',
            "",
            "(y - yhat) x summed over the rows of the batch, written into arrays that exist:",
            "a step allocates nothing the size of a parameter.",
            '"""',
            "",
            "import numpy as np",
            "",
            "",
            f"def signal(X, Y, Yhat, ones, {', '.join(OUTPUTS.values())}):",
            f'    """Sums (y - yhat) x over the batch into {", ".join(OUTPUTS.values())};'
            f' returns {error}, in Yhat."""',
            *[f"    {line}" for line in body],
            f"    return {error}",
            "",
        ]
    )


@cache
def signal_function():
    """The loaded ``signal`` function (its code does not depend on the learning rate)."""
    source = signal_source()
    return module_from_source(source, "signal_perceptron", "<backprop signal Perceptron>").signal


def _names(first: str):
    yield sp.MatrixSymbol(first, *Yhat.shape)


def _entrywise(expr: sp.MatrixExpr) -> sp.Expr:
    """One entry of an elementwise matrix expression, each matrix as a plain symbol
    (``Y - Yhat``): the form whose ``out=`` code the printer knows."""
    r, j = sp.symbols("r j", integer=True)
    return expr[r, j].replace(
        lambda a: isinstance(a, MatrixElement), lambda a: sp.Symbol(a.parent.name)
    )
