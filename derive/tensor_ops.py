"""Tensor ops defined once at index level, their backward rules derived by SymPy.

Channels-last, as Keras: images ``X[n, y, x, c]``, kernels ``K[i, j, c, o]``, sequences
``X[n, t, e]``. Each op is one SymPy definition of an output entry; every backward rule is
:func:`derive.index_calculus.vjp` of that definition, then rewritten to the form a textbook
names (the rewrite is a change of summation variable; tests check it at small sizes):

* convolution ``Z[n,h,w,o] = Σ_{i,j,c} X[n, s h + i, s w + j, c] K[i,j,c,o] + b[o]``:
  ``dK`` = cross-correlation of ``X`` with ``dZ``, ``db = Σ dZ``, ``dX`` = full convolution of
  ``dZ`` (dilated by the stride) with the flipped kernel;
* pooling ``Z = Σ_{i,j} X[n, s h + i, s w + j, c] R[...]`` with ``R = 1/s²`` (average) or the
  arg-max indicator (max, ``Z = max_{i,j} X[...]``; SymPy's ``diff`` of ``Max`` is that
  indicator almost everywhere): ``dX = R ⊙ dZ`` upsampled (each entry's one window is ``⌊y/s⌋``);
* flatten ``Z[n, (y W + x) C + c] = X[n, y, x, c]``: ``dX`` is ``dZ`` reshaped;
* mean over time, and attention's products (``Q = X W_q``, ``S = Q Kᵀ/√d_k``, ``O = P V``);
  attention's softmax rule is the registry's row rule (:func:`derive.rules.activation_vjp`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import sympy as sp
from sympy import IndexedBase, Sum
from sympy.concrete.expr_with_limits import ExprWithLimits

from .index_calculus import Contraction, vjp
from .ops import m

_int = {"integer": True, "nonnegative": True}
_size = {"integer": True, "positive": True}
n, h, w, o, i, j, c = sp.symbols("n h w o i j c", **_int)  # the output entry and summed indices
p, q, r, v = sp.symbols("p q r v", **_int)  # the entry a gradient is taken at
t, u, e, k = sp.symbols("t u e k", **_int)  # sequence positions and features
k_h, k_w, C_in, C_out, H, W, H_out, W_out, s = sp.symbols(
    "k_h k_w C_in C_out H W H_o W_o s", **_size
)
T, d, d_k = sp.symbols("T d d_k", **_size)
X, K, b, Z, dZ = (IndexedBase(name, real=True) for name in ("X", "K", "b", "Z", "dZ"))
R = IndexedBase("R", real=True)  # a pool's weight of each input entry in its window
dZ_full = IndexedBase("dZ_full", real=True)  # dZ dilated by the stride, padded by k - 1

_IMAGE_OUT = ((n, 0, m - 1), (h, 0, H_out - 1), (w, 0, W_out - 1))
_IMAGE_IN = ((0, m - 1), (0, H - 1), (0, W - 1))


@dataclass(frozen=True)
class Rule:
    """An op's derivation: its definition, each operand's gradient as SymPy derived it
    (``derived``), and the named form the kernels print (``named``)."""

    definition: sp.Eq
    derived: dict
    named: dict


# -- convolution ---------------------------------------------------------------------------

CONV = Sum(X[n, s * h + i, s * w + j, c] * K[i, j, c, o], (i, 0, k_h - 1), (j, 0, k_w - 1),
           (c, 0, C_in - 1)) + b[o]  # fmt: skip
_CONV_OUT = (*_IMAGE_OUT, (o, 0, C_out - 1))


@cache
def convolution() -> Rule:
    """The convolution's three gradients, derived from :data:`CONV`.

    >>> convolution().named["K"].body
    X[n, h*s + p, q + s*w, r]*dZ[n, h, w, v]
    """
    entry = (p, q, r, v)
    k_ranges = ((0, k_h - 1), (0, k_w - 1), (0, C_in - 1), (0, C_out - 1))
    derived = {
        "K": vjp(Z[n, h, w, o], CONV, _CONV_OUT, dZ, K, entry, k_ranges),
        "b": vjp(Z[n, h, w, o], CONV, _CONV_OUT, dZ, b, (v,), ((0, C_out - 1),)),
        "X": vjp(Z[n, h, w, o], CONV, _CONV_OUT, dZ, X, entry, (*_IMAGE_IN, (0, C_in - 1))),
    }
    named = dict(derived, X=as_full_convolution(derived["X"]))
    return Rule(sp.Eq(Z[n, h, w, o], CONV, evaluate=False), derived, named)


def as_full_convolution(grad: Contraction) -> Contraction:
    """``Σ_h dZ[.., h, ..] K[q - s h, ..] [0 ≤ q - s h ≤ k_h - 1]`` as a full convolution:
    with ``i = k_h - 1 - (q - s h)`` (the kernel read flipped), ``dZ`` at row ``h`` is
    ``dZ_full`` at row ``q + i = s h + k_h - 1``, and the support is the range of ``i``."""
    body, limits = grad.body, list(grad.limits)
    for old, new, size in ((h, i, k_h), (w, j, k_w)):
        (solution,) = sp.solve(sp.Eq(s * old, _kernel_offset(grad, old) - (size - 1) + new), old)
        body = body.xreplace({old: solution})
        limits = [(new, 0, size - 1) if lim[0] == old else lim for lim in limits]
    body = body.replace(
        lambda f: isinstance(f, sp.Indexed) and f.base == dZ,
        lambda f: dZ_full[tuple(sp.expand(s * ix + sz - 1) if ix.has(i, j) else ix
                                for ix, sz in zip(f.indices, (1, k_h, k_w, 1)))],
    )  # fmt: skip
    return Contraction(grad.target, sp.expand(body), tuple(limits))


dX_cols = IndexedBase("dX_cols", real=True)  # each window's share of dX (col2im's columns)


def as_window_scatter(grad: Contraction) -> tuple[Contraction, dict]:
    """The same ``dX``, read the other way (col2im, a transposed convolution): with
    ``i = q - s h`` each window's share ``dX_cols[n,h,w,i,j,c] = Σ_o dZ[n,h,w,o] K[i,j,c,o]``
    is one matrix product, and goes back to ``dX[n, s h + i, s w + j, c]`` (the placement
    returned, summed over the windows that overlap there)."""
    body = grad.body
    for old, new in ((h, i), (w, j)):
        offset = _kernel_offset(grad, old)  # q, with q - s h the kernel row
        body = body.xreplace({offset: s * old + new})
    body = sp.expand(body)
    (n_, q_, r_, c_) = grad.target.indices
    share = dX_cols[n_, h, w, i, j, c_]
    limits = tuple(lim for lim in grad.limits if lim[0] not in (h, w))
    return Contraction(share, body, limits), {q_: s * h + i, r_: s * w + j}


def _kernel_offset(grad: Contraction, index: sp.Symbol) -> sp.Expr:
    """``q - lo`` of the support ``lo ≤ q - s h``, for the summed ``index`` h."""
    for expr, lo, _ in grad.support:
        if expr.has(index):
            return sp.expand(expr + s * index - lo)
    raise ValueError(f"no support condition on {index} in {grad}")


# -- pooling, flatten, mean over time ------------------------------------------------------


class Maximum(ExprWithLimits):
    """``max_{i, j} f(i, j)`` over index ranges, as :class:`~sympy.Sum` is ``Σ``. At number
    bounds ``doit`` writes it out as SymPy's ``Max`` of the entries, which SymPy differentiates.

    >>> Maximum(X[n, i], (i, 0, 1)).doit()
    Max(X[n, 0], X[n, 1])
    """

    def doit(self, **hints):
        if not all(bound.is_Integer for _, lo, hi in self.limits for bound in (lo, hi)):
            return self
        ranges = [range(int(lo), int(hi) + 1) for _, lo, hi in self.limits]
        indices = [index for index, _, _ in self.limits]
        return sp.Max(*[self.function.xreplace(dict(zip(indices, point)))
                        for point in itertools.product(*ranges)])  # fmt: skip


_WINDOW = ((i, 0, s - 1), (j, 0, s - 1))  # a pool's window: stride s, the window's size
POOL = Sum(X[n, s * h + i, s * w + j, c] * R[n, s * h + i, s * w + j, c], *_WINDOW)
AVERAGE_POOL = Sum(X[n, s * h + i, s * w + j, c], *_WINDOW) / s**2
MAX_POOL = Maximum(X[n, s * h + i, s * w + j, c], *_WINDOW)
_POOL_OUT = (*_IMAGE_OUT, (c, 0, C_in - 1))


def _pool_rule(definition: sp.Expr) -> Rule:
    """A pool's input gradient derived from ``definition``, and its one-window form."""
    ranges = (*_IMAGE_IN, (0, C_in - 1))
    derived = vjp(Z[n, h, w, c], definition, _POOL_OUT, dZ, X, (p, q, r, v), ranges)
    return Rule(sp.Eq(Z[n, h, w, c], definition, evaluate=False), {"X": derived},
                {"X": _one_window(derived)})  # fmt: skip


@cache
def pooling() -> Rule:
    """A pool's input gradient: ``dX[p, q, r, v] = R[p, q, r, v] dZ[p, ⌊q/s⌋, ⌊r/s⌋, v]``.

    ``R`` is ``1/s²`` for the average and the arg-max indicator for the max (see
    :func:`max_derivative`); the stride is the size, so every entry has one window.
    """
    return _pool_rule(POOL)


@cache
def average_pooling() -> Rule:
    """:data:`AVERAGE_POOL`'s: ``dX[p, q, r, v] = dZ[p, ⌊q/s⌋, ⌊r/s⌋, v] / s²``."""
    return _pool_rule(AVERAGE_POOL)


@cache
def max_pooling() -> Rule:
    """:data:`MAX_POOL` (the largest entry of each window) and its gradient, :func:`pooling`'s
    with ``R = ∂max/∂X`` (:func:`max_derivative`). ``max`` is positively homogeneous, so
    ``max(x) = Σ_l x_l ∂max/∂x_l`` wherever the derivative exists: the max pool *is*
    :data:`POOL` with that ``R``, and its vjp is POOL's (``R`` held at its value: a 0/1 step).
    """
    weighted = pooling()
    return Rule(sp.Eq(Z[n, h, w, c], MAX_POOL, evaluate=False), weighted.derived, weighted.named)


def _one_window(grad: Contraction) -> Contraction:
    """``Σ_h f(h) [0 ≤ q - s h ≤ s - 1]`` is ``f(⌊q/s⌋)``: exactly one ``h`` passes."""
    body = grad.body
    for index in (h, w):
        offset = _kernel_offset(grad, index)
        body = body.xreplace({index: sp.floor(offset / s)})
    limits = tuple(lim for lim in grad.limits if lim[0] not in (h, w))
    return Contraction(grad.target, body, limits)


@cache
def max_derivative(size: int) -> tuple[sp.Expr, ...]:
    """``d max(x_0, ..., x_{k-1}) / d x_l`` for a window of ``size × size`` (``x_l`` its
    entries in row-major order), by SymPy from :data:`MAX_POOL` written out at that size: a
    product of Heaviside steps, 1 where ``x_l`` is the largest (ties: the first, as JAX)."""
    entries = [X[0, row, col, 0] for row in range(size) for col in range(size)]
    window = sp.symbols(f"x0:{size * size}", real=True)
    one = MAX_POOL.xreplace({s: size, n: 0, h: 0, w: 0, c: 0}).doit()
    biggest = one.xreplace(dict(zip(entries, window)))
    return tuple(sp.diff(biggest, x_l) for x_l in window)


FLAT = (h * W + w) * C_in + c  # the row-major position of (h, w, c), as NumPy's reshape


@cache
def flatten() -> Rule:
    """``Z[n, (h W + w) C + c] = X[n, h, w, c]``: an index mapping (a reshape); its adjoint
    ``dX[p, q, r, v] = dZ[p, (q W + r) C + v]`` is the reshape back."""
    image = ((n, 0, m - 1), (h, 0, H - 1), (w, 0, W - 1), (c, 0, C_in - 1))
    grad = vjp(Z[n, FLAT], X[n, h, w, c], image, dZ, X, (p, q, r, v), (*_IMAGE_IN, (0, C_in - 1)))
    return Rule(sp.Eq(Z[n, FLAT], X[n, h, w, c], evaluate=False), {"X": grad}, {"X": grad})


MEAN_OVER_TIME = Sum(X[n, t, e], (t, 0, T - 1)) / T


@cache
def mean_over_time() -> Rule:
    """``dX[p, q, r] = dZ[p, r] / T``: each position gets an equal share."""
    out = ((n, 0, m - 1), (e, 0, d - 1))
    grad = vjp(Z[n, e], MEAN_OVER_TIME, out, dZ, X, (p, q, r), ((0, m - 1), (0, T - 1), (0, d - 1)))
    return Rule(sp.Eq(Z[n, e], MEAN_OVER_TIME, evaluate=False), {"X": grad}, {"X": grad})


# -- attention's products ------------------------------------------------------------------

A, B = IndexedBase("A", real=True), IndexedBase("B", real=True)
_SEQ = ((0, m - 1), (0, T - 1))


@cache
def product(kind: str) -> Rule:
    """The three products of attention, per example, and their gradients:

    * ``"dense"``: ``Z[n,k] = Σ_e A[n,e] B[e,k] + b[k]`` (a Dense layer's ``Z = A W + b``);
    * ``"weights"``: ``Z[n,t,k] = Σ_e A[n,t,e] B[e,k]`` (``Q = X W_q``);
    * ``"scores"``: ``Z[n,t,u] = Σ_k A[n,t,k] B[n,u,k] / √d_k`` (``S = Q Kᵀ/√d_k``);
    * ``"mix"``: ``Z[n,t,e] = Σ_u A[n,t,u] B[n,u,e]`` (``O = P V``).
    """
    if kind == "dense":  # Z = A W + 1 b, one row per example
        expr, target = Sum(A[n, e] * B[e, k], (e, 0, d - 1)) + b[k], Z[n, k]
        limits = ((n, 0, m - 1), (k, 0, d_k - 1))
        derived = {
            "A": vjp(target, expr, limits, dZ, A, (p, q), ((0, m - 1), (0, d - 1))),
            "B": vjp(target, expr, limits, dZ, B, (p, q), ((0, d - 1), (0, d_k - 1))),
            "b": vjp(target, expr, limits, dZ, b, (q,), ((0, d_k - 1),)),
        }
        return Rule(sp.Eq(target, expr, evaluate=False), derived, derived)
    if kind == "weights":
        expr, target = Sum(A[n, t, e] * B[e, k], (e, 0, d - 1)), Z[n, t, k]
        out, a_ranges, b_ranges = (k, 0, d_k - 1), (*_SEQ, (0, d - 1)), ((0, d - 1), (0, d_k - 1))
    elif kind == "scores":
        expr, target = Sum(A[n, t, k] * B[n, u, k], (k, 0, d_k - 1)) / sp.sqrt(d_k), Z[n, t, u]
        out, a_ranges, b_ranges = (u, 0, T - 1), (*_SEQ, (0, d_k - 1)), (*_SEQ, (0, d_k - 1))
    else:
        expr, target = Sum(A[n, t, u] * B[n, u, e], (u, 0, T - 1)), Z[n, t, e]
        out, a_ranges, b_ranges = (e, 0, d - 1), (*_SEQ, (0, T - 1)), (*_SEQ, (0, d - 1))
    limits = ((n, 0, m - 1), (t, 0, T - 1), out)
    entry_b = (p, q) if kind == "weights" else (p, q, r)
    derived = {
        "A": vjp(target, expr, limits, dZ, A, (p, q, r), a_ranges),
        "B": vjp(target, expr, limits, dZ, B, entry_b, b_ranges),
    }
    return Rule(sp.Eq(target, expr, evaluate=False), derived, derived)


M = IndexedBase("M", real=True)  # a dropout layer's 0/1 keep mask
keep = sp.Symbol("kappa", positive=True)  # the probability of keeping an entry


@cache
def dropout(rank: int) -> Rule:
    """Inverted dropout on ``rank`` axes: ``Z = M ⊙ A / keep``, hence ``dA = M ⊙ dZ / keep``."""
    out = (n, *sp.symbols(f"a1:{rank}", integer=True, nonnegative=True))
    entry = (p, *sp.symbols(f"b1:{rank}", integer=True, nonnegative=True))
    sizes = sp.symbols(f"N1:{rank}", integer=True, positive=True)
    expr = A[out] * M[out] / keep
    limits = ((n, 0, m - 1), *[(ix, 0, size - 1) for ix, size in zip(out[1:], sizes)])
    ranges = ((0, m - 1), *[(0, size - 1) for size in sizes])
    grad = vjp(Z[out], expr, limits, dZ, A, entry, ranges)
    return Rule(sp.Eq(Z[out], expr, evaluate=False), {"A": grad}, {"A": grad})


__all__ = ["Maximum", "Rule", "average_pooling", "convolution", "dropout", "flatten",
           "max_derivative", "max_pooling", "mean_over_time", "pooling", "product"]  # fmt: skip
