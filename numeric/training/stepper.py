"""``Stepper``: a rule's printed update code applied to every parameter, with the rule's state.

The update runs over each parameter in slices of ``CHUNK_BYTES``: an Adam step is a dozen
passes over its arrays, and on a slice that stays in the core's L2 cache they cost about
0.6 of what they cost over a whole 784x512 matrix, whose passes go to L3 (measured on the
bench machine, float32). All arrays (state, the one work array, the slices) are made once.

>>> import numpy as np
>>> from derive.optimizers import SGD
>>> params = {"w": np.array([1.0, 2.0])}
>>> stepper = Stepper(SGD(lr=0.5), params)
>>> stepper.step({"w": np.array([2.0, -2.0])})
>>> params["w"]
array([0., 3.])
"""

from __future__ import annotations

import numpy as np

from derive.errors import BackpropInputError
from derive.optimizers import UpdateRule

from .update_code import update_module

CHUNK_BYTES = 256 * 1024  # five arrays of this size (param, signal, 2 moments, scratch) < L2


class Stepper:
    """Updates ``params`` (a dict of float arrays, changed in place) from a signal per
    parameter (gradients; the perceptron's error terms) at each :meth:`step`."""

    def __init__(self, rule: UpdateRule, params: dict[str, np.ndarray], chunk_bytes=CHUNK_BYTES):
        if not isinstance(rule, UpdateRule):
            raise TypeError(f"optimizer must be a derive.optimizers rule, got {rule!r}")
        self.rule = rule
        self.update = update_module(type(rule)).update
        self.values = rule.values
        self.t = 0
        self._names = list(params)
        dtype = _common_dtype(params)
        longest = max((p.size for p in params.values()), default=1)
        chunk = max(1, min(longest, chunk_bytes // dtype.itemsize))
        self.scratch = np.empty(chunk, dtype=dtype)
        self.state = {
            str(s): {name: np.zeros_like(p) for name, p in params.items()} for s in rule.state
        }
        self._slices = {name: _slices(p.size, chunk) for name, p in params.items()}
        self._views = {  # per parameter: (param slice, work slice, state slices) per chunk
            name: [
                (
                    _flat(p)[lo:hi],
                    self.scratch[: hi - lo],
                    [_flat(s[name])[lo:hi] for s in self.state.values()],
                )
                for lo, hi in self._slices[name]
            ]
            for name, p in params.items()
        }

    def step(self, signals: dict[str, np.ndarray]) -> None:
        """One update of every parameter; ``signals`` holds an array per parameter, of its
        shape (a 0-d array or a Python float for a scalar parameter)."""
        self.t += 1
        for name in self._names:
            signal = np.asarray(signals[name]).reshape(-1)  # a view of the kernel's array
            for (param, work, state), (lo, hi) in zip(self._views[name], self._slices[name]):
                self.update(param, signal[lo:hi], work, *state, t=self.t, **self.values)


def _common_dtype(params: dict[str, np.ndarray]) -> np.dtype:
    dtypes = set()
    for name, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise BackpropInputError(
                f"parameter {name} must be a float array, got {type(p).__name__} "
                f"{getattr(p, 'dtype', '')}".rstrip()
            )
        if not p.flags.c_contiguous or not p.flags.writeable:
            raise BackpropInputError(
                f"parameter {name} must be a writable C-contiguous array (it is updated in place)"
            )
        dtypes.add(p.dtype)
    if len(dtypes) > 1:
        raise BackpropInputError(
            f"parameters must share one dtype, got {', '.join(sorted(map(str, dtypes)))}"
        )
    return dtypes.pop() if dtypes else np.dtype("float64")


def _flat(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1)  # a view: the arrays are contiguous


def _slices(size: int, chunk: int) -> list[tuple[int, int]]:
    return [(lo, min(size, lo + chunk)) for lo in range(0, max(size, 1), chunk)]
