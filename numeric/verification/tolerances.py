"""How closely the kernel must agree with each reference route, per dtype.

Shared by the comparison (:mod:`numeric.verification.comparison`) and the printed report
(:mod:`numeric.verification.report`), which states the tolerances it judged by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numeric.gradcheck import check as gradcheck


@dataclass(frozen=True)
class Tolerance:
    """An entry agrees when ``|kernel - ref| <= rtol * |ref| + atol * scale`` (+ noise)."""

    rtol: float
    atol: float


#: dtype -> {route: Tolerance}. JAX: rounding only (the float64 target is 1e-10 relative).
#: FD: as numeric.gradcheck.check judges finite differences.
TOLERANCES = {
    "float64": {
        "JAX": Tolerance(rtol=1e-10, atol=1e-12),
        "FD": Tolerance(*gradcheck.DEFAULT_TOLERANCES[np.dtype(np.float64)]),
    },
    "float32": {
        "JAX": Tolerance(rtol=1e-4, atol=1e-5),
        "FD": Tolerance(*gradcheck.DEFAULT_TOLERANCES[np.dtype(np.float32)]),
    },
}
#: How many times its rounding noise an entry may be off. The noise of a parameter is the
#: largest difference between JAX's float32 and float64 gradients of the same forward graph,
#: scaled to the kernel's dtype (x eps/eps_float32): what finite precision costs this very
#: computation (cancellation in a softmax, a relu that flips within a rounding of 0).
NOISE_FACTOR = 16.0
#: How many finite-difference error bars an entry may be off.
FD_FACTOR = gradcheck.FD_FACTOR
