"""``loss_and_grads(..., out=grads)``: a NumPy kernel that writes its gradients into the
caller's arrays, so a training loop allocates no gradient memory step after step.

Why it matters: glibc hands a freed block of 128 kB or more back to the operating system,
and the next call's fresh pages each fault (a residual MLP's eight 256 kB float32 ``dW``
are 512 faults a call). In a process that runs only the kernel, that made its pass 1.40×
JAX's time; writing into the caller's arrays brought it to 1.11× with no faults
(``bench.fresh_process``). In a warm process, kept arrays are 2-6 % slower (written cold).

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


def check_out(shapes: dict, out, dtype, inputs: dict, data: dict | None = None) -> None:
    """``out`` (name -> array) against the kernel's parameter ``shapes`` and the data's
    ``dtype`` (None for integer data, which the kernel computes in its own float dtype: any
    float then); none of its arrays may share memory with another, with ``inputs`` (the
    parameters) or with ``data`` (X, Y, masks). A training loop passes the same ``out`` and
    parameters every step: that part is checked once, then only the new data (a full check
    of a 20-parameter net's arrays took 300 µs, a third of its pass)."""
    if out is None:
        return
    if not isinstance(out, dict):
        raise TypeError(f"out must be a dict of arrays by parameter name, got {type(out).__name__}")
    key = (id(shapes), dtype, id(out), *map(id, out.values()), None, *map(id, inputs.values()))
    if _last.get("key") != key:
        _last.clear()
        _check_arrays(shapes, out, dtype)
        kept = (shapes, out, *out.values(), inputs, *inputs.values())
        _last.update(key=key, bounds=_no_overlap(out, inputs), keep=kept)
    if data:
        _no_overlap(out, data, _last["bounds"])


#: the last check that passed: its key (the ids of what it checked, which ``keep`` holds
#: alive so that no new array takes one of them) and the out arrays' memory bounds
_last: dict = {}


def _check_arrays(shapes: dict, out: dict, dtype) -> None:
    unknown = [name for name in out if name not in shapes]
    if unknown:
        raise BackpropInputError(
            f"out has {', '.join(map(str, unknown))}, which is no parameter; the kernel's "
            f"parameters are {', '.join(shapes)}"
        )
    for name, array in out.items():
        _check_one(name, array, tuple(shapes[name]), dtype)


def _no_overlap(out: dict, others: dict, bounds=None) -> list[tuple[int, int]]:
    """The out arrays' memory bounds ``[(lo, hi), ...]``, after checking that none overlaps
    another out array or one of ``others`` (a view of a parameter counts: it is the
    parameter's memory). Plain Python: a NumPy call on these short lists costs more."""
    names = list(out)
    if bounds is None:
        bounds = [_bounds(a) for a in out.values()]
        for i, (lo, hi) in enumerate(bounds):
            for j in range(i + 1, len(bounds)):
                if lo < bounds[j][1] and bounds[j][0] < hi:
                    _overlap(names[i], f"out[{names[j]!r}]")
    for other, array in others.items():
        if isinstance(array, np.ndarray):
            other_lo, other_hi = _bounds(array)
            for i, (lo, hi) in enumerate(bounds):
                if lo < other_hi and other_lo < hi:
                    _overlap(names[i], other)
    return bounds


def _overlap(name: str, other: str):
    raise BackpropInputError(
        f"out[{name!r}] shares memory with {other}: the kernel would overwrite what it still "
        "reads; pass arrays of their own (np.empty_like)"
    )


def _bounds(array: np.ndarray) -> tuple[int, int]:
    """The first and one-past-last byte an array uses (an empty one uses none)."""
    if array.size == 0:
        return (0, 0)
    return np.lib.array_utils.byte_bounds(array)


def _check_one(name: str, array, shape: tuple, dtype) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"out[{name!r}] must be a NumPy array, got {type(array).__name__}")
    if array.shape != shape or array.dtype != (dtype or array.dtype) or array.dtype.kind != "f":
        wanted = np.dtype(dtype) if dtype else "a float array"
        raise BackpropInputError(
            f"out[{name!r}] is a {array.dtype} array of shape {array.shape}; the gradient "
            f"of {name} is {wanted} of shape {shape}"
        )
    if not array.flags.writeable:
        raise BackpropInputError(f"out[{name!r}] is read-only; the kernel writes into it")
