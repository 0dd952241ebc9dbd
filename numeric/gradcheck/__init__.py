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

from .check import *  # noqa: F403  (the module's __all__ is the package's)
from .check import __all__  # noqa: F401
