"""Evaluating a loss at perturbed copies of its parameters: one point at a time, or a whole
block of copies in one vectorized call; real or complex (for the complex step).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

Params = Mapping[str, np.ndarray]
LossFn = Callable[[dict], object]

#: Memory cap for one vectorized block of parameter copies.
MAX_BLOCK_BYTES = 1 << 26


def require_function(fn, role: str) -> None:
    """``fn`` is a function of params, or a TypeError naming what it is (a network or Model
    passed here is checked through its own kernel: numeric.verify)."""
    if not callable(fn):
        raise TypeError(
            f"{role} must be a function of params, got {type(fn).__name__}; to check a "
            "network's or Model's kernel, use numeric.verify(model)"
        )


class ComplexStepUnsupported(Exception):
    """The loss cannot be evaluated at complex parameters (it raised, or dropped the imag)."""


def _scalar(out, want_complex: bool):
    """The loss value as a Python number; for a complex evaluation insist it stayed complex."""
    arr = np.asarray(out)
    if arr.dtype.kind not in "fiucb":  # None, a string, a dict: not a loss at all
        raise TypeError(
            f"loss_fn must return the loss as a real number, got {type(out).__name__} {out!r:.40}"
        )
    if arr.size != 1:
        raise ValueError(f"loss_fn must return a scalar, got an array of shape {arr.shape}")
    value = arr.reshape(())[()]
    if want_complex:
        if not np.iscomplexobj(arr):
            raise ComplexStepUnsupported("real result: loss_fn returned a real value")
        return complex(value)
    return float(np.real(value)) if np.iscomplexobj(arr) else float(value)


def _batch(out, k: int, want_complex: bool) -> np.ndarray:
    arr = np.asarray(out)
    if arr.size != k:
        raise ValueError(
            f"vectorized=True: loss_fn got a batch of {k} parameter copies and must return "
            f"{k} losses, got shape {arr.shape}"
        )
    if want_complex and not np.iscomplexobj(arr):
        raise ComplexStepUnsupported("real result: loss_fn returned real values")
    return arr.reshape(k).astype(np.complex128 if want_complex else np.float64)


class Evaluator:
    """Evaluate a scalar loss at perturbed copies of ``params``, counting calls.

    With ``vectorized=True`` the loss receives every array with a leading axis of k copies
    (unperturbed ones as read-only broadcast views) and must return k losses; blocks are cut
    to stay under ``MAX_BLOCK_BYTES``.

    >>> ev = Evaluator(lambda p: float(p["w"] @ p["w"]), {"w": np.array([1.0, 2.0])})
    >>> ev.at_entries("w", np.array([0, 1]), np.array([3.0, 0.0])).tolist(), ev.calls
    ([13.0, 1.0], 2)
    """

    def __init__(self, loss_fn: LossFn, params: Params, vectorized: bool = False):
        require_function(loss_fn, "loss_fn")
        self.loss_fn = loss_fn
        self.params = dict(params)
        self.vectorized = vectorized
        self.calls = 0

    def base(self) -> float:
        """The loss at ``params`` themselves (a batch of one copy when vectorized)."""
        self.calls += 1
        if self.vectorized:
            return float(_batch(self.loss_fn(self._broadcast(1)), 1, False)[0])
        return _scalar(self.loss_fn(dict(self.params)), False)

    def _call(self, p: dict, want_complex: bool):
        self.calls += 1
        if not want_complex:
            return self.loss_fn(p)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("error", np.exceptions.ComplexWarning)
                return self.loss_fn(p)
        except ComplexStepUnsupported:
            raise
        except Exception as exc:  # any failure means: this loss is not complex-safe
            raise ComplexStepUnsupported(f"{type(exc).__name__}: {exc}") from exc

    def at_entries(self, name: str, flat_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Losses with ``params[name].flat[flat_idx[k]] = values[k]``, one point per k."""
        values = np.asarray(values)
        want_complex = np.iscomplexobj(values)
        base = self.params[name]
        work_dtype = np.result_type(base.dtype, values.dtype)
        if not self.vectorized:
            work = base.astype(work_dtype, copy=True)
            out = np.empty(len(flat_idx), dtype=np.complex128 if want_complex else np.float64)
            p = dict(self.params)
            p[name] = work
            for k, (j, v) in enumerate(zip(flat_idx, values, strict=True)):
                work.flat[j] = v
                out[k] = _scalar(self._call(p, want_complex), want_complex)
                work.flat[j] = base.flat[j]
            return out
        per_copy = max(1, base.size * np.dtype(work_dtype).itemsize)
        chunk = max(1, MAX_BLOCK_BYTES // per_copy)
        parts = []
        for s in range(0, len(flat_idx), chunk):
            idx, vals = flat_idx[s : s + chunk], values[s : s + chunk]
            k = len(idx)
            block = np.repeat(base.astype(work_dtype)[None], k, axis=0).reshape(k, -1)
            block[np.arange(k), idx] = vals
            p = self._broadcast(k)
            p[name] = block.reshape((k,) + base.shape)
            parts.append(_batch(self._call(p, want_complex), k, want_complex))
        return np.concatenate(parts)

    def at_points(self, updates: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        """Losses at ``params`` with some arrays replaced, one point per mapping in ``updates``.

        Complex arrays in the updates make this a complex evaluation (complex step).
        """
        want_complex = any(np.iscomplexobj(a) for u in updates for a in u.values())
        if not self.vectorized:
            dtype = np.complex128 if want_complex else np.float64
            out = np.empty(len(updates), dtype=dtype)
            for k, update in enumerate(updates):
                p = {**self.params, **update}
                out[k] = _scalar(self._call(p, want_complex), want_complex)
            return out
        k = len(updates)
        p = self._broadcast(k)
        for name in updates[0]:
            p[name] = np.stack([u[name] for u in updates])
        return _batch(self._call(p, want_complex), k, want_complex)

    def _broadcast(self, k: int) -> dict:
        return {n: np.broadcast_to(a, (k,) + a.shape) for n, a in self.params.items()}
