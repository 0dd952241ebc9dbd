"""numeric.verification: a generated kernel against JAX autodiff and finite differences.

:func:`verify` (:mod:`.run`, exported as ``numeric.verify``) draws seeded parameters and a
batch (:mod:`.samples`), runs the kernel, JAX's gradient of the model's forward graph
(:mod:`.jax_route`) and finite differences, and judges every entry against each reference
(:mod:`.comparison`, with the :mod:`.tolerances`). The :class:`Verification` it returns
(:mod:`.results`) prints as ``backprop check`` shows it (:mod:`.report`).

A tensor network is checked by :mod:`.tensor_check`: the kernel against JAX's own primitives
(:mod:`.tensor_route`), central differences and the closed form (:mod:`.tensor_closed_form`,
the derived rules evaluated by :mod:`.tensor_evaluate`).

May import: ``derive``, NumPy, ``numeric.generator``, ``numeric.gradcheck``; JAX only inside
the JAX route, when it runs. Nothing here imports ``reports``.
"""

from .run import *  # noqa: F403  (the module's __all__ is the package's)
from .run import __all__  # noqa: F401
