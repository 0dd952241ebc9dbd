"""numeric.gradcheck: the gradient checker users call in their own tests.

:func:`check_gradients` and :func:`assert_gradients` (:mod:`.check`) compare any gradient,
hand-written or generated, with finite differences (:mod:`.finite_diff`: Richardson stencils
with error bars), entry by entry (:mod:`.elementwise`) or by random projections and bisection
(:mod:`.projection_search`), and report where and how it is wrong (:mod:`.findings`, with the
likely causes of :mod:`.hints`). :mod:`.inputs` validates what the caller passes.
``numeric.pytest_plugin`` and ``numeric.strategies`` are its pytest and Hypothesis faces.

May import: NumPy and the standard library only (not ``derive``, JAX, or the other
``numeric`` packages): it checks code that knows nothing of this toolkit.
"""

from .check import (
    ANALYTIC_ULPS,
    DEFAULT_TOLERANCES,
    EXACT_MAX_PARAMS,
    FAST_DIRECTIONS,
    FAST_ROUNDS,
    FD_FACTOR,
    LEAF_SIZE,
    MAX_LISTED,
    EntryFinding,
    GradcheckInputError,
    GradcheckResult,
    ParamFinding,
    Tolerance,
    assert_gradients,
    check_gradients,
    choose_mode,
)

__all__ = [
    "ANALYTIC_ULPS",
    "DEFAULT_TOLERANCES",
    "EXACT_MAX_PARAMS",
    "FAST_DIRECTIONS",
    "FAST_ROUNDS",
    "FD_FACTOR",
    "LEAF_SIZE",
    "MAX_LISTED",
    "EntryFinding",
    "GradcheckInputError",
    "GradcheckResult",
    "ParamFinding",
    "Tolerance",
    "assert_gradients",
    "check_gradients",
    "choose_mode",
]
