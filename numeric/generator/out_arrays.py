"""``loss_and_grads(..., out=grads)``: a NumPy kernel that writes its gradients into the
caller's arrays, so a training loop allocates no gradient memory step after step.

Why it matters: glibc hands a freed block of 128 kB or more back to the operating system,
and the next call's fresh pages each fault (a residual MLP's eight 256 kB float32 ``dW``
are 512 faults a call). In a process that runs only the kernel, that made its pass 1.45×
the GEMM floor; writing into the caller's arrays brought it to 1.1× with no faults.

The kernel writes each matrix-product gradient straight into ``out`` (``np.matmul(...,
out=grads_out.get("W1"))``); :data:`HELPER`, printed into the module, copies the few others
there at the end. :func:`check_out` is the call-time check: arrays of the parameters'
shapes and the data's dtype, none sharing memory with the inputs (a ``dW`` written into
``W`` would corrupt the ``dZ Wᵀ`` that reads it next: a silently wrong gradient).
"""

from __future__ import annotations

import numpy as np

from derive.errors import BackpropInputError

#: the name of the dict the printed code writes into (``out`` or an empty dict)
TARGET = "grads_out"

#: the line opening ``loss_and_grads``'s body
FIRST_LINE = f"{TARGET} = out or {{}}  # the caller's gradient arrays, written in place"

#: what the docstring says about ``out``
DOC = (
    "\n\n    out: optional dict of arrays shaped like the parameters (in X's dtype), e.g. the"
    "\n    grads of an earlier call; the gradients are written into them and they are"
    "\n    returned, so a training loop allocates no gradient memory step after step.\n    "
)

#: the function the module defines to copy the remaining gradients into ``out``
HELPER = '''def gradients_into(out, grads):
    """grads, each in out's array of its name where out has one: those not written there
    above are copied in (a training loop keeps the same arrays step after step)."""
    for name, grad in grads.items():
        if name in out and grad is not out[name]:
            {np}.copyto(out[name], grad)
            grads[name] = out[name]
    return grads'''


def into(param: str) -> str:
    """The printed array a gradient of ``param`` is written into (None: a new array)."""
    return f'{TARGET}.get("{param}")'


def check_out(shapes: dict, out, dtype, inputs: dict) -> None:
    """``out`` (name -> array) against the kernel's parameter ``shapes`` and the data's
    ``dtype``; ``inputs`` (name -> array) are what it must not share memory with."""
    if out is None:
        return
    if not isinstance(out, dict):
        raise TypeError(f"out must be a dict of arrays by parameter name, got {type(out).__name__}")
    unknown = [name for name in out if name not in shapes]
    if unknown:
        raise BackpropInputError(
            f"out has {', '.join(map(str, unknown))}, which is no parameter; the kernel's "
            f"parameters are {', '.join(shapes)}"
        )
    for name, array in out.items():
        _check_one(name, array, tuple(shapes[name]), dtype)
    arrays = [*((f"out[{n!r}]", a) for n, a in out.items()), *inputs.items()]
    for i, (name, array) in enumerate(arrays[: len(out)]):
        for other, value in arrays[i + 1 :]:
            if isinstance(value, np.ndarray) and np.may_share_memory(array, value):
                raise BackpropInputError(
                    f"{name} shares memory with {other}: the kernel would overwrite what it "
                    "still reads; pass arrays of their own (np.empty_like)"
                )


def _check_one(name: str, array, shape: tuple, dtype) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"out[{name!r}] must be a NumPy array, got {type(array).__name__}")
    if array.shape != shape or array.dtype != dtype:
        raise BackpropInputError(
            f"out[{name!r}] is a {array.dtype} array of shape {array.shape}; the gradient "
            f"of {name} is {np.dtype(dtype)} of shape {shape}"
        )
    if not array.flags.writeable:
        raise BackpropInputError(f"out[{name!r}] is read-only; the kernel writes into it")
