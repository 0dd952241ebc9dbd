"""How the kernel is compared with a reference route (JAX or FD), entry by entry.

How an entry is judged (``ref`` is JAX's or FD's value, ``scale`` the largest JAX gradient
entry of the whole model, ``noise`` the parameter's rounding noise, see ``NOISE_FACTOR``)::

    |kernel - ref| <= rtol * |ref| + atol * scale + 16 * noise  (+ 3 * FD's own error bar)

with :data:`TOLERANCES` per dtype: JAX is exact up to rounding, so its column is tight;
FD uses the tolerances of :mod:`numeric.gradcheck.check`. An entry whose one-sided differences
disagree (relu at 0, a tie in a max) is a *kink*: reported as such, never as a failure, in
either column. In the table, ``abs`` is the largest ``|kernel - ref|`` of a parameter and
``rel`` that divided by the largest entry of its JAX gradient (normwise: a near-zero entry
cannot blow it up; "-" when the gradient is 0).

A :class:`Column` holds one reference for one parameter; :func:`fd_columns` fills the FD
ones (every entry, or in fast mode the entries furthest from JAX and a few random ones, with
:func:`numeric.gradcheck.check.check_gradients` covering the rest); :func:`judge` turns a
parameter's columns into its :class:`~numeric.verification.results.Row`, mismatches and kinks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numeric.gradcheck import check as gradcheck
from numeric.gradcheck import finite_diff as fd
from numeric.gradcheck.hints import diagnose

from .results import Mismatch, Row, index_text
from .tolerances import FD_FACTOR, NOISE_FACTOR, TOLERANCES, Tolerance

#: Fast mode: entries differenced one by one per parameter (the worst by JAX, then random).
FAST_WORST, FAST_RANDOM = 4, 4
#: Kinks named per parameter in a verdict.
MAX_KINKS = 3
ROUTES = ("kernel", "cost", "JAX", "FD")


@dataclass
class Column:
    """One reference against the kernel for one parameter (flat arrays over entries ``idx``)."""

    idx: np.ndarray
    ref: np.ndarray
    bound: np.ndarray
    kink: np.ndarray

    def err(self, k: np.ndarray) -> np.ndarray:
        return np.abs(k[self.idx] - self.ref)

    def fails(self, k: np.ndarray) -> np.ndarray:
        return ~self.kink & ~(self.err(k) <= self.bound)  # NaN fails

    def ratio(self, k: np.ndarray) -> np.ndarray:
        """Error over tolerance (inf for NaN, -1 at kinks)."""
        r = self.err(k) / np.maximum(self.bound, 1e-300)
        return np.where(self.kink, -1.0, np.where(np.isnan(r), np.inf, r))

    def numbers(self, k: np.ndarray, top: float, zero: float) -> tuple[float, float]:
        """Largest difference (kinks left out), and that over ``top`` (NaN if ``top <= zero``)."""
        keep = ~self.kink
        if not keep.any():
            return math.nan, math.nan
        err = self.err(k)[keep]
        worst = float(np.max(err)) if np.all(np.isfinite(err)) else math.inf
        return worst, worst / top if top > zero else math.nan


def route_bound(t, ref, scale, noise, dtype, fd_error=0.0):
    """How far the kernel may be from a route's ``ref``: ``rtol |ref| + atol max|grad|`` plus
    rounding noise (and ``FD_FACTOR`` error bars for FD), never below the smallest normal
    number of ``dtype``: XLA flushes subnormals to 0, so 4e-309 against 0 is equal."""
    fd_part = FD_FACTOR * np.asarray(fd_error)
    return t.rtol * np.abs(ref) + t.atol * scale + noise + fd_part + np.finfo(dtype).tiny


def fd_columns(kernel, params, X, Y, grads, columns, t, scale, noise, mode, seed, batch):
    """Fill ``columns[name]["FD"]``; in fast mode return gradcheck's findings as well."""
    X64 = X.astype(np.float64) if X.dtype.kind == "f" else X
    Y64 = Y.astype(np.float64) if Y.dtype.kind == "f" else Y
    ev = fd.Evaluator(
        lambda p: kernel.loss(p, X64, Y64), {n: x.astype(np.float64) for n, x in params.items()}
    )
    f0 = ev.base()
    dtype = X.dtype if X.dtype.kind == "f" else np.float64
    findings = {}
    if mode == "fast" and grads:
        result = gradcheck.check_gradients(
            lambda p: kernel.loss(p, X, Y),
            lambda p: grads,
            {n: params[n] for n in grads},
            mode="fast",
            seed=seed,
            batch_size=batch,
            rtol=t.rtol,
            atol=t.atol * scale + max(noise.values(), default=0.0) or None,
            complex_step=False,  # the kernels return float(J): never complex-safe
        )
        findings = {f.name: f for f in result.params}
    rng = np.random.default_rng(seed)
    for name, g in grads.items():
        a = g.reshape(-1)
        if mode == "exact":
            idx = np.arange(a.size)
        else:
            ratio = columns[name]["JAX"].ratio(a)
            worst = np.argsort(-ratio, kind="stable")[:FAST_WORST]
            others = np.setdiff1d(np.arange(a.size), worst)
            pick = rng.choice(others, min(FAST_RANDOM, len(others)), replace=False)
            idx = np.sort(np.concatenate([worst, pick]))

        def bound_of(est, name=name):
            return route_bound(t, est.value, scale, noise[name], dtype, est.error)

        # entries that look like a kink, or disagree, are looked at again with smaller steps
        est = fd.entry_estimates(ev, name, idx, f0)
        suspect = est.kink | ~(np.abs(a[idx] - est.value) <= bound_of(est))
        est = fd.refine(ev, name, idx, f0, est, suspect)
        columns[name]["FD"] = Column(idx, est.value, bound_of(est), est.kink.astype(bool))
    return findings


def judge(name, shape, g, cols: dict[str, Column], finding, batch, top, zero):
    """The table row of one parameter, its mismatches and its kinks."""
    k = g.reshape(-1)
    fd_col = cols["FD"]
    kink_flat = fd_col.idx[fd_col.kink]
    cols["JAX"].kink = np.isin(cols["JAX"].idx, kink_flat)  # a kink excuses JAX's value too
    found, ratio = [], np.full(k.size, -1.0)
    for route, col in cols.items():
        r = col.ratio(k)
        ratio[col.idx] = np.maximum(ratio[col.idx], r)
        fails = col.fails(k)
        if fails.any():
            at = int(np.argmax(np.where(fails, r, -1.0)))
            flat = int(col.idx[at])
            found.append(
                Mismatch(
                    name,
                    route,
                    int(fails.sum()),
                    len(col.idx),
                    _unravel(flat, shape),
                    float(k[flat]),
                    float(col.ref[at]),
                    _hint(k, col, fails, shape, batch, route),
                )
            )
    kinks = [_unravel(int(i), shape) for i in kink_flat]
    if finding is not None:  # fast mode: gradcheck's projections cover the rest
        kinks += [e.index for e in finding.entries if e.status == "kink" and e.index not in kinks]
        wrong = [e for e in finding.entries if e.status != "kink"]
        if not finding.ok and not any(m.route == "FD" for m in found):
            e = wrong[0] if wrong else None
            found.append(
                Mismatch(
                    name,
                    "FD",
                    finding.failed,
                    k.size,
                    e.index if e else (),
                    e.analytic if e else math.nan,
                    e.numeric if e else math.nan,
                    _words(str(finding.hint), "FD") if finding.hint else "",
                )
            )
    jax_abs, jax_rel = cols["JAX"].numbers(k, top, zero)
    fd_abs, fd_rel = fd_col.numbers(k, top, zero)
    worst = (
        index_text(_unravel(int(np.argmax(ratio)), shape)) if shape and ratio.max() >= 0 else "-"
    )
    if found:
        verdict = f"MISMATCH ({' and '.join(m.route for m in found)})"
    elif kinks and not shape:
        verdict = "kink"
    elif kinks:
        listed = ", ".join(index_text(i) for i in kinks[:MAX_KINKS])
        more = f" (+{len(kinks) - MAX_KINKS} more)" if len(kinks) > MAX_KINKS else ""
        verdict = f"kink{'s' if len(kinks) > 1 else ''} at {listed}{more}"
    else:
        verdict = "ok"
    return Row(name, shape, jax_abs, jax_rel, fd_abs, fd_rel, worst, verdict), found, kinks


def _unravel(flat: int, shape) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _hint(k, col: Column, fails, shape, batch, route) -> str:
    """The pattern of the failing entries (x2, sign, 1/m, transpose), when the column covers
    the whole parameter."""
    if len(col.idx) != k.size or not np.all(np.isfinite(k)) or not np.all(np.isfinite(col.ref)):
        return ""
    hint = diagnose(
        k.reshape(shape),
        col.ref.reshape(shape),
        fails.reshape(shape),
        col.bound.reshape(shape),
        batch,
    )
    return _words(str(hint), route) if hint is not None else ""


def _words(hint: str, route: str) -> str:
    """A gradcheck hint in the words of this check: the kernel against a route."""
    return hint.replace("analytic", "kernel").replace("numeric", route)


__all__ = [
    "FAST_RANDOM",
    "FAST_WORST",
    "FD_FACTOR",
    "MAX_KINKS",
    "NOISE_FACTOR",
    "ROUTES",
    "TOLERANCES",
    "Column",
    "Tolerance",
    "fd_columns",
    "judge",
]
