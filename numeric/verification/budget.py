"""How much memory a check of a model needs, worked out from its shapes before any array is
made: ``backprop check mlp:99999999-1`` is refused at once with the figure, rather than after
40 s and 12 GB inside JAX.
"""

from __future__ import annotations

import math
import os

from derive.errors import BackpropInputError

#: bytes a check may use; BACKPROP_MEMORY_LIMIT_GB overrides it
DEFAULT_LIMIT_GB = 4.0
#: copies of the parameters a check holds at once (the draw, the kernel's and JAX's
#: gradients, finite-difference copies, JAX's buffers)
PARAM_COPIES = 12
#: arrays of batch x width a check holds per layer (forward values, adjoints, JAX's)
ACTIVATION_COPIES = 12


def memory_limit() -> float:
    """The limit in bytes."""
    text = os.environ.get("BACKPROP_MEMORY_LIMIT_GB", "")
    try:
        gigabytes = float(text) if text else DEFAULT_LIMIT_GB
    except ValueError:
        raise BackpropInputError(
            f"BACKPROP_MEMORY_LIMIT_GB must be a number of gigabytes, got {text!r}"
        ) from None
    return gigabytes * 2**30


def check_bytes(model, batch: int, itemsize: int = 8) -> float:
    """Bytes a check of ``model`` on ``batch`` examples needs, about; BackpropInputError
    when that is over the limit.

    >>> import derive
    >>> check_bytes(derive.build("mlp:4-3-2"), 8) < 1e6
    True
    """
    n_params = sum(math.prod(shape) for shape in model.param_shapes().values())
    widths = sum(model.sizes) if model.sizes else len(model.nodes)
    need = itemsize * (PARAM_COPIES * n_params + ACTIVATION_COPIES * batch * widths)
    limit = memory_limit()
    if need > limit:
        raise BackpropInputError(
            f"checking {model.spec} on a batch of {batch} would run out of memory: it needs "
            f"about {need / 2**30:.1f} GB ({n_params:,} parameters); the limit is "
            f"{limit / 2**30:.1f} GB "
            "(set BACKPROP_MEMORY_LIMIT_GB to change it)"
        )
    return need
