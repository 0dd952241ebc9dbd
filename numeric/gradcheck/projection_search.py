"""Fast mode for large models: random projections of each tensor's gradient, bisection to the
few entries a disagreeing projection points at, and the whole-tensor patterns that explain them.
Every failure reported is an entry checked one by one (:mod:`numeric.gradcheck.elementwise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import finite_diff as fd
from .elementwise import ComplexState, estimates, exact_finding, judge
from .evaluator import ComplexStepUnsupported
from .findings import MAX_LISTED, EntryFinding, ParamFinding, Tolerance
from .hints import Hint, ratio_hint

#: Rounding noise of a correct analytic gradient entry, in ulps of the params' dtype.
ANALYTIC_ULPS = 32.0
#: Random projections per tensor in fast mode.
FAST_DIRECTIONS = 2
#: Bisection stops at this many candidate entries and checks them one by one.
LEAF_SIZE = 4
#: Rounds of "fix the entries found, project again" in fast mode.
FAST_ROUNDS = 3


@dataclass(frozen=True)
class _Measure:
    """One projection: analytic ``grad . v`` against the numeric directional derivative."""

    analytic: float
    numeric: float
    bound: float
    kink: bool

    @property
    def mismatch(self) -> bool:
        return not self.kink and abs(self.analytic - self.numeric) > self.bound


class Projector:
    """Random ±1/sqrt(k) projections of one tensor's gradient, restricted to index subsets."""

    def __init__(
        self, ev: fd.Evaluator, grads, f0: float, tol: Tolerance, rng, cs: ComplexState, dtype
    ):
        self.ev, self.grads, self.f0, self.tol, self.rng, self.cs = ev, grads, f0, tol, rng, cs
        self.dtype = dtype  # of the user's params (ev may hold them upcast to float64)
        self.cs_ok: dict[str, bool] = {}
        self.steps: dict[str, float] = {}
        self.rms: dict[str, float] = {}
        self.count = 0

    def measure(self, name: str, subset: np.ndarray, grad: np.ndarray) -> _Measure:
        """Project ``grad`` (flat) on a random direction supported on ``subset``."""
        for _ in range(3):  # a kink along this direction: draw another one
            m = self._measure(name, subset, grad)
            if not m.kink:
                break
        return m

    def _measure(self, name, subset, grad) -> _Measure:
        x = self.ev.params[name]
        v = np.zeros(x.size)
        v[subset] = self.rng.choice((-1.0, 1.0), len(subset)) / math.sqrt(len(subset))
        gv = grad * v
        analytic = float(np.sum(gv))
        direction = {name: v.reshape(x.shape)}
        self.count += 1
        num, err, kink = self._numeric(name, x, direction)
        # The bound is noise, not the elementwise tolerances: rounding in the analytic entries
        # (~eps * (|g_j| + rms g), random signs), the finite difference's error bar, and the
        # dot product's own rounding. A false alarm only costs a bisection (every failure is
        # confirmed entry by entry); a loose bound would hide one wrong entry among many.
        noise = ANALYTIC_ULPS * fd.eps_of(self.dtype)
        rms = self.rms.setdefault(name, float(np.sqrt(np.mean(grad[np.isfinite(grad)] ** 2))))
        bound = (
            noise * (float(np.linalg.norm(gv)) + rms)
            + self.tol.fd_factor * err
            + 16 * fd.eps_of(np.float64) * float(np.sum(np.abs(gv)))
        )
        return _Measure(analytic, num, bound, kink)

    def _numeric(self, name, x, direction) -> tuple[float, float, bool]:
        eps = fd.eps_of(x.dtype)
        if self.cs.on and self.cs_ok.get(name, True):
            try:
                cs = fd.directional_complex(self.ev, direction, eps**2)
            except ComplexStepUnsupported as exc:
                self.cs.off(str(exc))
            else:
                cs_err = fd.NOISE_ULPS * eps * abs(cs)
                if name in self.cs_ok:
                    return cs, cs_err, False
                real = self._real(x, direction)
                agree = not real[2] and abs(cs - real[0]) <= 3 * real[1] + cs_err
                self.cs_ok[name] = agree
                self.cs.used = self.cs.used or agree
                return (cs, cs_err, False) if agree else real
        return self._real(x, direction)

    def _real(self, x, direction) -> tuple[float, float, bool]:
        (name,) = direction
        if name not in self.steps:
            # eps**(1/4) for a unit direction: smaller than the elementwise eps**(1/5) because
            # every entry moves at once, and each crossing of a relu kink spoils the stencil.
            rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
            self.steps[name] = fd.eps_of(x.dtype) ** 0.25 * max(1.0, rms)
        h = self.steps[name]
        for step in (h, h / 16):  # a kink close by: look closer before giving up
            est = fd.directional_estimate(self.ev, direction, self.f0, step, self.grads)
            if not est.kink:
                break
        return float(est.value), float(est.error), bool(est.kink)


def _bisect(proj: Projector, name, cand: np.ndarray, grad) -> tuple[np.ndarray, bool]:
    """Halve the candidate set, following the half whose projection disagrees."""
    while len(cand) > LEAF_SIZE:
        halves = (cand[: len(cand) // 2], cand[len(cand) // 2 :])
        picked = None
        for _ in range(2):  # a second look with fresh directions before giving up
            picked = next((h for h in halves if proj.measure(name, h, grad).mismatch), None)
            if picked is not None:
                break
        if picked is None:
            return cand, False
        cand = picked
    return cand, True


def _consistent(proj, name, subset, grad) -> bool:
    return not proj.measure(name, subset, grad).mismatch


def _fast_pattern(proj, name, x, a, cand, first: EntryFinding, tol, batch_size):
    """Test whole-tensor explanations of the first failing entry: (hint, failing count)."""
    r = first.analytic / first.numeric if first.numeric != 0 else math.inf
    if np.isfinite(r) and r != 0 and abs(r - 1) > 1e-3 and _consistent(proj, name, cand, a / r):
        true = a / r
        count = int(np.sum(np.abs(a - true) > tol.bound(true, 0.0)))
        return ratio_hint(r, batch_size), count
    if x.ndim == 2 and x.shape[0] == x.shape[1] > 1:
        at = a.reshape(x.shape).T.reshape(-1)
        if _consistent(proj, name, cand, at):
            count = int(np.sum(np.abs(a - at) > tol.bound(at, 0.0)))
            hint = Hint(
                "transpose",
                "analytic = numeric.T: a transposed product "
                "(e.g. dZ.T @ A_prev instead of A_prev.T @ dZ)?",
            )
            return hint, count
    return None, 0


def _line_pattern(proj, name, x, cand, work, found: list[EntryFinding]) -> Hint | None:
    """After some entries were fixed and the rest still disagrees: one row or column?"""
    if x.ndim != 2:
        return None
    rows, cols = np.unravel_index(cand, x.shape)
    for axis, word, lines in ((0, "row", rows), (1, "column", cols)):
        ids = {e.index[axis] for e in found}
        if len(ids) != 1:
            continue
        (i,) = ids
        outside = cand[lines != i]
        if len(outside) and _consistent(proj, name, outside, work):
            return Hint(
                f"{word}s",
                f"{word} [{i}] wrong ({len(found)} entries confirmed), "
                f"all other {word}s agree in projection",
            )
    return None


def fast_finding(name, x, g, proj: Projector, batch_size) -> ParamFinding:
    """One tensor in fast mode: project, and bisect to the wrong entries if a projection
    disagrees. Tensors of at most LEAF_SIZE entries are checked elementwise."""
    ev, f0, tol, cs = proj.ev, proj.f0, proj.tol, proj.cs
    a = g.reshape(-1)
    if x.size <= LEAF_SIZE:
        return exact_finding(name, x, g, ev, f0, tol, cs, batch_size)
    bad = np.flatnonzero(~np.isfinite(a))
    cand = np.flatnonzero(np.isfinite(a))
    found: list[EntryFinding] = []
    if len(bad):
        est = estimates(ev, name, bad[:MAX_LISTED], f0, cs, a[bad[:MAX_LISTED]], tol)
        found += judge(name, x.shape, bad[:MAX_LISTED], a[bad[:MAX_LISTED]], est, tol)[0]
    how = f"{FAST_DIRECTIONS} projections"
    work = np.where(np.isfinite(a), a, 0.0)
    measures = [proj.measure(name, cand, work) for _ in range(FAST_DIRECTIONS)]
    if not any(m.mismatch for m in measures):
        # one entry off by e moves a ±1/sqrt(k) projection by e/sqrt(k)
        blind = min(m.bound for m in measures) * math.sqrt(max(len(cand), 1))
        return ParamFinding(name, x.shape, 0, len(bad), 0, how, tuple(found), blind_abs=blind)
    checked, n_fail, at_least, hint, note = _search(proj, name, x, a, cand, work, found, batch_size)
    how += f" + bisection, {checked} entries elementwise"
    return ParamFinding(
        name,
        x.shape,
        checked,
        n_fail + len(bad),
        0,
        how,
        tuple(found[:MAX_LISTED]),
        hint,
        at_least,
        note,
    )


def _search(
    proj: Projector, name, x, a, cand, work, found: list[EntryFinding], batch_size
) -> tuple[int, int, bool, Hint | None, str]:
    """Rounds of bisect, confirm elementwise, fix the entries found in ``work`` and project
    again; appends to ``found``. Returns (checked, failed, failed_at_least, hint, note)."""
    ev, f0, tol, cs = proj.ev, proj.f0, proj.tol, proj.cs
    checked, n_fail, at_least, hint, note = 0, 0, False, None, ""
    for round_ in range(FAST_ROUNDS):
        leaf, tracked = _bisect(proj, name, cand, work)
        est = estimates(ev, name, leaf, f0, cs, work[leaf], tol)
        entries, fail, _, _ = judge(name, x.shape, leaf, work[leaf], est, tol)
        checked += len(leaf)
        if not fail.any():
            note = (
                "a projection disagreed but the entries it led to pass one by one"
                if tracked
                else "a projection disagreed; bisection lost the trail"
            )
            break
        found.extend(e for e in entries if e.status != "kink")
        n_fail += int(fail.sum())
        work[leaf[fail]] = est.value[fail]
        if round_ == 0:
            hint, count = _fast_pattern(proj, name, x, a, cand, found[-1], tol, batch_size)
            if hint is not None:
                n_fail, note = max(count, n_fail), "count from the pattern, not entry by entry"
                break
        if _consistent(proj, name, cand, work):
            break
    else:
        at_least = True
        hint = _line_pattern(proj, name, x, cand, work, found)
    return checked, n_fail, at_least, hint, note
