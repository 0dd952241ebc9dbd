"""Printers: SymPy expressions of a Derivation as array code, and as equations for comments.

One visitor per output format, as SymPy's printers are: a ``_print_<Class>`` method per node
type. :class:`KernelPrinter` (:mod:`numeric.generator.kernel_printer`, its arithmetic in
:mod:`numeric.generator.kernel_arithmetic`) holds everything the NumPy and JAX kernels share;
:class:`NumPyPrinter` (:mod:`numeric.generator.numpy_printer`) adds the ``out=`` forms and
:class:`JaxPrinter` (:mod:`numeric.generator.jax_printer`) the ``jax.jit`` wrapping.
:class:`EquationPrinter` (:mod:`numeric.generator.equation_printer`) writes the textbook form of a
formula for the comment beside the line that implements it;
:mod:`numeric.generator.line_layout` keeps the lines within :data:`WIDTH`.

What a printer reads (:mod:`numeric.generator.kernel_forms`):

* elementwise expressions over real symbols named like arrays (``A2 - Y``), read entry by
  entry with broadcasting; ``rowsum``/``total``/``rowmax`` reduce over a row or everything;
* matrix expressions: ``MatMul`` is ``@``, ``Transpose`` is ``.T``, a column of ones on the
  left is a broadcast (``X W + 1 b`` is ``X @ W + b``) and a row of ones is a sum over rows
  (``1ᵀ dZ`` is ``dZ.sum(axis=0)``);
* the stable functions of :mod:`numeric.generator.stable` (``sigmoid``, ``softplus``, ...).

Python numbers stay Python numbers (``1 / m``, ``0.01``): NumPy and JAX treat them as weakly
typed, so a float32 kernel stays float32.
"""

from __future__ import annotations

from .equation_printer import EquationPrinter
from .jax_printer import JaxPrinter
from .kernel_forms import batch_mean, elementwise_form, zeros_like
from .kernel_printer import KernelPrinter
from .line_layout import WIDTH, comment_lines, split_line, wrap_statement
from .numpy_printer import NumPyPrinter

PRINTERS = {"numpy": NumPyPrinter, "jax": JaxPrinter}

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
