"""numeric: NumPy kernels generated from a derivation, and gradient checks that prove them.

``codegen`` prints a Derivation as a NumPy (or JAX) module; ``check_gradients`` and
``assert_gradients`` check any gradient, hand-written or generated, against finite
differences. The hypothesis strategies (``numeric.strategies``) and the pytest plugin
(``numeric.pytest_plugin``) need the dev extras and are imported on their own.
"""

from .codegen import codegen
from .finite_diff import numeric_gradient, partial_derivative
from .gradcheck import (
    EntryFinding,
    GradcheckInputError,
    GradcheckResult,
    ParamFinding,
    assert_gradients,
    check_gradients,
)
from .kernel import Kernel

__all__ = [
    "EntryFinding",
    "GradcheckInputError",
    "GradcheckResult",
    "Kernel",
    "ParamFinding",
    "assert_gradients",
    "check_gradients",
    "codegen",
    "numeric_gradient",
    "partial_derivative",
]
