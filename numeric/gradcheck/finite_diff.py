"""Finite differences worth trusting.

Every numeric derivative here comes with an error bar and with its two one-sided slopes,
so a caller can tell "the analytic gradient is wrong" from "the finite difference is noisy"
and from "the function has a kink here" (relu at 0, a tie in a max).

- Real steps: a 5-point stencil at offsets -h, -h/2, 0, +h/2, +h with
  ``h = eps**(1/5) * max(1, |x|)`` per entry (``eps`` of the params' dtype). Its derivative is
  the Richardson extrapolation of the central differences with steps h and h/2 (error O(h^4));
  their disagreement is the truncation part of the error estimate, and a rounding part
  ``~ eps*|f| / h`` covers noise in the loss itself. (``eps**(1/3)`` is the best step for a
  plain central difference; once Richardson cancels the h^2 term the balance of truncation
  and rounding moves to ``eps**(1/5)``: on a tanh MLP in float64 the worst error relative to
  the largest gradient entry drops from 8e-10 to 8e-12.)
- Complex step: ``Im f(x + i*hc) / hc`` has no subtractive cancellation and is exact to
  machine precision, when ``f`` is written with complex-safe operations. Callers use it only
  where it agrees with the real stencil (a function using ``abs`` or ``np.real`` returns
  garbage here rather than an error).
- Evaluation goes through :class:`Evaluator`, which either loops over points in Python or,
  with ``vectorized=True``, hands the loss a whole block of parameter copies at once
  (every array gets a leading batch axis of size k; the loss returns k values).

Example:
    >>> import numpy as np
    >>> p = {"w": np.array([0.5, -1.0])}
    >>> est = partial_derivative(lambda q: float(np.sum(np.sin(q["w"]))), p, "w", (0,))
    >>> bool(abs(est.value - np.cos(0.5)) < 1e-10)
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .evaluator import Evaluator, LossFn, Params

#: Loss noise is modelled as NOISE_ULPS * eps * |f|: a few roundings per operation chain.
NOISE_ULPS = 8.0
#: One-sided slopes must differ by this many times their noise to call it a kink.
KINK_FACTOR = 10.0


def eps_of(dtype) -> float:
    """Machine epsilon of a floating dtype, e.g. ``eps_of(np.float32) == 2**-23``."""
    return float(np.finfo(dtype).eps)


def step_sizes(x: np.ndarray) -> np.ndarray:
    """Per-entry real step ``eps**(1/5) * max(1, |x|)`` in float64 (eps of ``x``'s dtype).

    >>> float(step_sizes(np.array([0.0, 100.0]))[1] / step_sizes(np.array([0.0]))[0])
    100.0
    """
    return eps_of(x.dtype) ** 0.2 * np.maximum(1.0, np.abs(x.astype(np.float64)))


def shifted(x: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x + delta)`` rounded to ``x``'s dtype and the exact offset actually applied.

    Rounding ``x + delta`` changes the step by up to an ulp of ``x``; using the true offset
    in the difference quotient keeps that error (eps/h relative) out of the derivative.
    """
    x64 = x.astype(np.float64)
    if x.dtype != np.float64:
        point = (x64 + delta).astype(x.dtype)
        return point, point.astype(np.float64) - x64
    point = x64 + delta
    # TwoSum: x + delta == point + err exactly, so the applied offset is delta - err.
    back = point - x64
    err = (x64 - (point - back)) + (delta - back)
    return point, delta - err


def lagrange_slope(t: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derivative at 0 of the polynomial through nodes ``t[..., k]`` with values ``f[..., k]``.

    Returns ``(slope, sum_abs_weights)``; the second factor turns loss noise into slope noise.

    >>> t = np.array([-1.0, 0.0, 1.0]); float(lagrange_slope(t, 3 * t + t**2)[0])
    3.0
    """
    k = t.shape[-1]
    weights = []
    for i in range(k):
        w = np.zeros(t.shape[:-1])
        for j in range(k):
            if j == i:
                continue
            term = 1.0 / (t[..., i] - t[..., j])
            for m in range(k):
                if m not in (i, j):
                    term = term * (-t[..., m]) / (t[..., i] - t[..., m])
            w = w + term
        weights.append(w)
    w = np.stack(weights, axis=-1)
    return np.sum(w * f, axis=-1), np.sum(np.abs(w), axis=-1)


@dataclass(frozen=True)
class Estimate:
    """Finite-difference derivatives (arrays of equal shape) with what is needed to judge them.

    ``value`` is the best estimate and ``error`` its estimated absolute error; ``forward`` and
    ``backward`` are second-order one-sided slopes, and ``kink`` marks entries where they
    disagree beyond noise (the derivative jumps within the step). ``complex_step`` marks
    entries whose value came from the complex step.
    """

    value: np.ndarray
    error: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    kink: np.ndarray
    complex_step: np.ndarray

    def at(self, i) -> Estimate:
        """The estimate of entry ``i`` (same fields, 0-d)."""
        return Estimate(*(np.asarray(getattr(self, f))[i] for f in self.__dataclass_fields__))


def stencil_estimate(f0, t: np.ndarray, f: np.ndarray, eps: float) -> Estimate:
    """Judge a derivative from values ``f`` at offsets ``t = [-h, -h/2, +h/2, +h]`` (last axis).

    ``f0`` is the loss at offset 0 and ``eps`` the machine epsilon of the computation.

    >>> t = np.array([-0.2, -0.1, 0.1, 0.2])
    >>> est = stencil_estimate(0.0, t, np.abs(t), 2.0**-52)
    >>> bool(est.kink), float(est.forward), float(est.backward)
    (True, 1.0, -1.0)
    """
    f0 = np.asarray(f0, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    f0b = np.broadcast_to(f0, f.shape[:-1])[..., None]
    zero = np.zeros_like(t[..., :1])
    value, wsum = lagrange_slope(
        np.concatenate([t[..., :2], zero, t[..., 2:]], -1),
        np.concatenate([f[..., :2], f0b, f[..., 2:]], -1),
    )
    inner = (f[..., 2] - f[..., 1]) / (t[..., 2] - t[..., 1])
    outer = (f[..., 3] - f[..., 0]) / (t[..., 3] - t[..., 0])
    noise = NOISE_ULPS * eps * np.maximum(np.abs(f0b[..., 0]), np.max(np.abs(f), axis=-1))
    spread = np.abs(inner - outer)
    forward, wf = lagrange_slope(
        np.concatenate([zero, t[..., 2:]], -1), np.concatenate([f0b, f[..., 2:]], -1)
    )
    backward, wb = lagrange_slope(
        np.concatenate([t[..., :2], zero], -1), np.concatenate([f[..., :2], f0b], -1)
    )
    # A kink within the stencil also inflates `spread`, so it cannot be the yardstick alone.
    # The error bar counts the one-sided disagreement too: then a slope jump anywhere in the
    # stencil that the kink test lets through (too small to tell from noise) still leaves R
    # within 2 error bars of the true slope (checked over all kink positions).
    jump = np.abs(forward - backward)
    kink = (jump > KINK_FACTOR * noise * (wf + wb)) & (jump > 0.5 * spread)
    return Estimate(
        value=value,
        error=spread / 3.0 + jump / 4.0 + noise * wsum,
        forward=forward,
        backward=backward,
        kink=kink,
        complex_step=np.zeros(value.shape, dtype=bool),
    )


def complex_step_size(x: np.ndarray) -> np.ndarray:
    """Complex step ``eps**2 * max(1, |x|)``: its O(hc^2) truncation is far below rounding."""
    return eps_of(x.dtype) ** 2 * np.maximum(1.0, np.abs(x.astype(np.float64)))


def entry_estimates(
    ev: Evaluator, name: str, flat_idx: np.ndarray, f0: float, step_scale: float = 1.0
) -> Estimate:
    """Estimate d loss / d params[name].flat[j] for each j in ``flat_idx`` (real stencil).

    ``step_scale`` shrinks the steps, e.g. to look closer at an entry that showed a kink.
    """
    x = ev.params[name].reshape(-1)[flat_idx]
    h = step_sizes(x) * step_scale
    offsets, points = [], []
    for c in (-1.0, -0.5, 0.5, 1.0):
        point, offset = shifted(x, c * h)
        points.append(point)
        offsets.append(offset)
    t = np.stack(offsets, axis=-1)
    vals = ev.at_entries(name, np.tile(flat_idx, 4), np.concatenate(points))
    return stencil_estimate(f0, t, vals.reshape(4, -1).T, eps_of(x.dtype))


def _replace(est: Estimate, at: np.ndarray, other: Estimate, pick) -> Estimate:
    """``est`` with entries ``at[pick]`` taken from ``other`` (an estimate of entries ``at``)."""
    fields = {f: np.array(getattr(est, f)) for f in Estimate.__dataclass_fields__}
    for f in fields:
        fields[f][at[pick]] = np.asarray(getattr(other, f))[pick]
    return Estimate(**fields)


def refine(
    ev: Evaluator, name: str, flat_idx: np.ndarray, f0: float, est: Estimate, suspect: np.ndarray
) -> Estimate:
    """Look again, with smaller steps, at the ``suspect`` entries of ``est``.

    Smaller steps (h/8, h/64) cross fewer kinks but see more rounding noise. Going down in
    step, an estimate that disagrees with the next smaller one beyond the sum of their error
    bars is distrusted (several kinks inside one stencil can fool its own error bar); of
    estimates that agree, the one with the smallest error bar wins. A remaining kink is then
    looked at 1000x closer: a kink at x keeps its slope jump, a kink merely near x falls
    outside the stencil, and a smooth function's one-sided slopes converge (O(h^3)).
    """
    at = np.flatnonzero(suspect)
    if len(at) == 0:
        return est
    for scale in (1 / 8, 1 / 64):
        closer = entry_estimates(ev, name, flat_idx[at], f0, step_scale=scale)
        value, error, kink = est.value[at], est.error[at], est.kink[at]
        disagree = np.abs(value - closer.value) > error + closer.error
        take = disagree | (~closer.kink & (kink | (closer.error < error)))
        est = _replace(est, at, closer, take)
    at = np.flatnonzero(est.kink)
    if len(at):
        closer = entry_estimates(ev, name, flat_idx[at], f0, step_scale=1e-3)
        jump = np.abs(est.forward[at] - est.backward[at])
        stays = closer.kink & (np.abs(closer.forward - closer.backward) >= 0.1 * jump)
        est = _replace(est, at, closer, ~stays)
    return est


def complex_partials(ev: Evaluator, name: str, flat_idx: np.ndarray) -> np.ndarray:
    """Complex-step partials ``Im f(x + i*hc*e_j) / hc``; raises ComplexStepUnsupported."""
    x = ev.params[name].reshape(-1)[flat_idx]
    hc = complex_step_size(x)
    ctype = np.result_type(x.dtype, np.complex64)
    vals = ev.at_entries(name, flat_idx, x.astype(ctype) + (1j * hc).astype(ctype))
    return vals.imag / hc


def adopt_complex(est: Estimate, cs: np.ndarray, eps: float) -> Estimate:
    """Use complex-step values where they agree with the real stencil and it saw no kink."""
    cs = np.asarray(cs, dtype=np.float64)
    cs_err = NOISE_ULPS * eps * np.abs(cs)
    agree = np.isfinite(cs) & ~est.kink & (np.abs(cs - est.value) <= 3 * est.error + cs_err)
    return Estimate(
        value=np.where(agree, cs, est.value),
        error=np.where(agree, cs_err, est.error),
        forward=est.forward,
        backward=est.backward,
        kink=est.kink,
        complex_step=agree,
    )


def directional_estimate(
    ev: Evaluator,
    direction: Mapping[str, np.ndarray],
    f0: float,
    h: float,
    grads: Mapping[str, np.ndarray] | None = None,
) -> Estimate:
    """Estimate d/dt loss(params + t * direction) at t = 0 with the 5-point stencil of step h.

    Rounding ``x + t*v`` to the params' dtype moves each point slightly off the line; with
    ``grads`` (the analytic gradient) that first-order drift ``grads . (rounded - exact)`` is
    subtracted. It is ulp-sized, so even a wrong gradient cannot hide an error through it.
    """
    dtype = np.result_type(*(ev.params[n].dtype for n in direction))
    t = np.array([-h, -h / 2, h / 2, h])
    # Work on the support of the direction only: bisection directions are sparse.
    support = {n: np.flatnonzero(v) for n, v in direction.items()}
    updates, drift = [], np.zeros(4)
    for k, tk in enumerate(t):
        update = {}
        for name, v in direction.items():
            x, idx = ev.params[name], support[name]
            step = tk * v.reshape(-1)[idx]
            moved, offset = shifted(x.reshape(-1)[idx], step)
            point = x.copy()
            point.reshape(-1)[idx] = moved
            update[name] = point
            if grads is not None:
                drift[k] += float(np.dot(grads[name].reshape(-1)[idx], offset - step))
        updates.append(update)
    vals = ev.at_points(updates) - drift
    return stencil_estimate(f0, t, vals, eps_of(dtype))


def directional_complex(ev: Evaluator, direction: Mapping[str, np.ndarray], hc: float) -> float:
    """Complex-step directional derivative ``Im loss(params + i*hc*direction) / hc``."""
    update = {}
    for name, v in direction.items():
        x = ev.params[name]
        ctype = np.result_type(x.dtype, np.complex64)
        update[name] = x.astype(ctype) + (1j * hc * v).astype(ctype)
    return float(ev.at_points([update])[0].imag / hc)


def partial_derivative(
    loss_fn: LossFn, params: Params, name: str, index, complex_step: bool = False
) -> Estimate:
    """Numeric d loss / d params[name][index] with error bar and one-sided slopes (0-d fields).

    The one-line repro of a gradient-check finding: the stencil at steps h, h/8, h/64 (see
    :func:`refine`), then the complex step if asked for and it agrees.

    >>> p = {"W": np.array([[1.0, 2.0], [3.0, 4.0]])}
    >>> est = partial_derivative(lambda q: float(np.sum(q["W"] ** 2)), p, "W", (1, 0))
    >>> round(float(est.value), 8), bool(est.kink)
    (6.0, False)
    """
    params = {n: np.asarray(a) for n, a in params.items()}
    ev = Evaluator(loss_fn, params)
    shape = params[name].shape
    flat = int(np.ravel_multi_index(tuple(index), shape)) if shape else 0
    idx = np.atleast_1d(flat)
    f0 = ev.base()
    est = refine(ev, name, idx, f0, entry_estimates(ev, name, idx, f0), np.ones(1, bool))
    if complex_step:
        est = adopt_complex(est, complex_partials(ev, name, idx), eps_of(params[name].dtype))
    return est.at(0)


def numeric_gradient(
    loss_fn: LossFn, params: Params, vectorized: bool = False
) -> dict[str, Estimate]:
    """Elementwise finite-difference gradient of every parameter (real stencil only).

    >>> g = numeric_gradient(lambda q: float(np.sum(q["w"] ** 3)), {"w": np.array([1.0, 2.0])})
    >>> np.round(g["w"].value, 8).tolist()
    [3.0, 12.0]
    """
    params = {n: np.asarray(a) for n, a in params.items()}
    ev = Evaluator(loss_fn, params, vectorized)
    f0 = ev.base()
    out = {}
    for name, x in params.items():
        est = entry_estimates(ev, name, np.arange(x.size), f0)
        out[name] = Estimate(
            *(np.reshape(getattr(est, f), x.shape) for f in Estimate.__dataclass_fields__)
        )
    return out
