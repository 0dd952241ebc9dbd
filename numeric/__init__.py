"""numeric: NumPy kernels generated from a derivation, and gradient checks that prove them.

``codegen`` prints a Derivation as a NumPy (or JAX) module, a :class:`Kernel`; ``load``
imports one that was saved. ``verify`` checks a kernel against JAX autodiff of the forward
graph and finite differences, and returns a :class:`Verification` (its table: one
:class:`Row` per parameter, every :class:`Mismatch`). ``check_gradients`` and
``assert_gradients`` check any gradient, hand-written or generated, against finite
differences. ``train`` runs a kernel in a mini-batch loop with an update rule of
``derive.optimizers`` (``numeric.training``); ``keep_freed_memory`` spares a kernel called
over and over the page faults of its arrays (``train`` calls it).

A network on images or sequences (``derive.network((28, 28, 1), [...])``, a TensorNetwork)
goes to both as it is: ``codegen(net)`` gives its Kernel, ``verify(net)`` a ``TensorCheck``
whose routes add the closed form, the derived rules evaluated
(``numeric.verification.tensor_check``).

The functions live in modules named apart from them (``numeric.generator.generate``,
``numeric.verification.run``), so ``numeric.codegen`` and ``numeric.verify`` are always the
functions. Importing ``numeric`` does not import JAX: the JAX route imports it when it runs.
The hypothesis strategies (``numeric.strategies``) and the pytest plugin
(``numeric.pytest_plugin``) need the dev extras and are imported on their own.
"""

from .generator.generate import TARGETS, codegen
from .generator.kernel import Kernel, KernelLine, load
from .gradcheck.check import (
    EntryFinding,
    GradcheckInputError,
    GradcheckResult,
    ParamFinding,
    assert_gradients,
    check_gradients,
)
from .gradcheck.finite_diff import numeric_gradient, partial_derivative
from .memory import keep_freed_memory
from .training.loop import Training, train
from .verification.run import Mismatch, Row, Verification, verify

__all__ = [
    "TARGETS",
    "EntryFinding",
    "GradcheckInputError",
    "GradcheckResult",
    "Kernel",
    "KernelLine",
    "Mismatch",
    "ParamFinding",
    "Row",
    "Training",
    "Verification",
    "assert_gradients",
    "check_gradients",
    "codegen",
    "keep_freed_memory",
    "load",
    "numeric_gradient",
    "partial_derivative",
    "train",
    "verify",
]
