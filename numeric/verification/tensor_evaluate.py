"""Evaluate an index-level SymPy expression at every entry, at concrete sizes.

The definitions and derived rules of :mod:`derive.tensor_ops` are expressions in ``Indexed``
entries (``X[n, s h + i, s w + j, c]``), ``Sum``\\ s over index ranges, and ordinary functions
of both. :func:`evaluate` gives such an expression's value at every entry of its free
indices, reading each ``Indexed`` from a NumPy array of the same name:

* an index symbol is an ``arange`` on its own axis, so an index expression (``s h + i``,
  ``⌊q/s⌋``) is an integer array, and an entry is an advanced-indexing read (0 outside the
  array: a support condition or a padding reads nothing there);
* a ``Sum`` of products is a contraction: each factor evaluated on the axes it uses, then one
  ``np.einsum`` over all of them;
* anything else (``exp``, ``Piecewise``, ``KroneckerDelta``, ``floor``, ``Heaviside``) is
  lambdified over the arrays of its ``Indexed`` / ``Sum`` parts and the index grid.

It knows no op by name: the same few lines evaluate a convolution, its gradients, a pooling
adjoint and a softmax row rule. Used by the closed-form route (:mod:`.tensor_closed_form`).

>>> import sympy as sp
>>> i, k = sp.symbols("i k", integer=True)
>>> A, B = sp.IndexedBase("A"), sp.IndexedBase("B")
>>> product = sp.Sum(A[i, k] * B[k], (k, 0, 2))
>>> evaluate(product, {"A": np.arange(6.0).reshape(2, 3), "B": np.ones(3)}, {}, [(i, 2)])
array([ 3., 12.])
"""

from __future__ import annotations

import string
from functools import cache

import numpy as np
import sympy as sp

_equal = sp.Function("equal")  # KroneckerDelta, which SymPy prints as a Python `if`


def evaluate(expr, arrays: dict, sizes: dict, free) -> np.ndarray:
    """``expr`` at every entry of ``free`` (``[(index, size), ...]``, in axis order), with
    ``sizes`` substituted for the size symbols and ``arrays[name]`` read for ``name[...]``."""
    expr = sp.sympify(expr).xreplace({sp.sympify(k): v for k, v in sizes.items()})
    grid = _Grid(arrays, {index: (0, int(size)) for index, size in free})
    shape = tuple(int(size) for _, size in free)
    return np.array(np.broadcast_to(grid.value(expr), shape), dtype=np.float64)


class _Grid:
    """Index symbols -> (start, length) of their axes, in order; values broadcast over them."""

    def __init__(self, arrays: dict, ranges: dict):
        self.arrays, self.ranges = arrays, ranges
        self.axes = {index: k for k, index in enumerate(ranges)}

    def value(self, expr):
        if isinstance(expr, sp.Indexed):
            return self._read(expr)
        if isinstance(expr, sp.Sum):
            return self._sum(expr)
        if expr.is_Number:
            return float(expr)
        if isinstance(expr, sp.Symbol) and expr in self.axes:
            return self._arange(expr)
        return self._lambdified(expr)

    def _arange(self, index):
        start, length = self.ranges[index]
        shape = [1] * len(self.axes)
        shape[self.axes[index]] = length
        return (np.arange(length) + start).reshape(shape)

    def _read(self, entry: sp.Indexed):
        name = entry.base.label.name
        if name not in self.arrays:
            raise KeyError(f"no array for {name} (in {entry})")
        array = np.asarray(self.arrays[name])
        # each index on its own axes (broadcast only by the read itself: no index array of
        # the whole grid), with a mask only where some entry falls outside the array
        inside = True
        clipped = []
        for ix, size in zip(entry.indices, array.shape):
            ix = np.asarray(self.value(ix))
            ix = ix if ix.dtype.kind in "iu" else np.rint(ix).astype(np.int64)
            fits = (ix >= 0) & (ix < size)
            if not fits.all():
                inside = inside & fits
            clipped.append(np.clip(ix, 0, size - 1))
        value = array[tuple(clipped)]
        return value if inside is True else np.where(inside, value, 0.0)

    def _sum(self, total: sp.Sum):
        ranges = dict(self.ranges)
        for index, lo, hi in total.limits:
            lo, hi = int(lo), int(hi)
            ranges[index] = (lo, max(hi - lo + 1, 0))
        inner = _Grid(self.arrays, ranges)
        n_out = len(self.axes)
        result = 0.0
        for term in sp.Add.make_args(sp.expand(total.function, deep=False)):
            factors = [inner.value(f) for f in sp.Mul.make_args(term)]
            result = result + _contract(factors, [ranges[ix][1] for ix in ranges], n_out)
        return result

    def _lambdified(self, expr):
        holes: dict = {}
        _find_holes(expr, holes)
        # plain symbols, equal from call to call, so the lambdified function is cached
        names = {hole: sp.Symbol(f"hole_{k}", real=True) for k, hole in enumerate(holes)}
        body = expr.xreplace(names).replace(sp.KroneckerDelta, _equal)
        indices = sorted(body.free_symbols & set(self.axes), key=str)
        unknown = body.free_symbols - set(self.axes) - set(names.values())
        if unknown:
            raise ValueError(f"no value for {', '.join(map(str, unknown))} in {expr}")
        function = _lambdify((*names.values(), *indices), body)
        args = [self.value(hole) for hole in holes] + [self._arange(ix) for ix in indices]
        return function(*args)


def _find_holes(expr, found: dict) -> None:
    """The outermost ``Indexed`` and ``Sum`` parts of ``expr`` (they have values of their own)."""
    if isinstance(expr, sp.Indexed | sp.Sum):
        found.setdefault(expr, None)
        return
    for arg in expr.args:
        _find_holes(arg, found)


@cache
def _lambdify(args, body):
    # NumPy has no erf (an exact GELU's): SymPy would call math.erf, which takes no arrays
    from scipy.special import erf

    functions = {"equal": lambda a, b: np.equal(a, b).astype(float), "erf": erf}
    return sp.lambdify(args, body, modules=[functions, "numpy"])


def _contract(factors, lengths: list, n_out: int):
    """``Σ`` over the axes past ``n_out`` of the product of ``factors`` (arrays broadcast over
    all ``len(lengths)`` axes), by one einsum over the axes each factor really has."""
    ndim, letters = len(lengths), string.ascii_letters
    operands, subscripts, scale, used = [], [], 1.0, set()
    for factor in factors:
        factor = np.asarray(factor, dtype=np.float64)
        if factor.ndim == 0:
            scale *= float(factor)
            continue
        factor = factor.reshape((1,) * (ndim - factor.ndim) + factor.shape)
        axes = [k for k in range(ndim) if factor.shape[k] > 1]
        operands.append(factor.reshape([factor.shape[k] for k in axes]))
        subscripts.append("".join(letters[k] for k in axes))
        used.update(axes)
    for k in range(n_out, ndim):  # summed over, read by no factor: it counts its terms
        if k not in used:
            scale *= lengths[k]
    out = [k for k in range(n_out) if k in used]
    if not operands:
        return scale
    spec = ",".join(subscripts) + "->" + "".join(letters[k] for k in out)
    value = scale * np.einsum(spec, *operands, optimize=True)
    shape = [lengths[k] if k in used else 1 for k in range(n_out)]
    return value.reshape(shape)


__all__ = ["evaluate"]
