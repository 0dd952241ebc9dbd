"""numeric.generator: the kernel generator, from a Derivation to a readable NumPy (or JAX)
module.

:func:`codegen` (exported as ``numeric.codegen``) reads a Derivation into statements
(:mod:`.program`, :mod:`.statements`), lays them out as a module (:mod:`.module_writer`,
with :mod:`.shared_values`, :mod:`.memory_reuse`, :mod:`.data_lines`, :mod:`.line_layout`)
and prints every formula through the printers (:mod:`.printers`: :mod:`.numpy_printer`,
:mod:`.jax_printer`, :mod:`.equation_printer`, over :mod:`.kernel_printer`,
:mod:`.kernel_forms`, :mod:`.kernel_arithmetic` and the stable forms of :mod:`.stable`).
:class:`Kernel` (:mod:`.kernel`) is the loaded module.

May import: ``derive``, NumPy, the standard library. Not JAX (a JAX kernel imports it when
it is loaded), nor ``numeric.gradcheck``, ``numeric.verification`` or ``reports``.
"""

from .generate import DTYPES, TARGETS, Kernel, KernelLine, Program, codegen

__all__ = ["DTYPES", "TARGETS", "Kernel", "KernelLine", "Program", "codegen"]
