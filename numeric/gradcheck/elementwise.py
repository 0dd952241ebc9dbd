"""Check entries one by one: finite-difference estimates (Richardson, refined where suspicious,
complex step where the loss allows), the findings they give, and exact mode for one tensor.
"""

from __future__ import annotations

import math

import numpy as np

from . import finite_diff as fd
from .evaluator import ComplexStepUnsupported
from .findings import MAX_LISTED, EntryFinding, ParamFinding, Tolerance
from .hints import diagnose


def judge(name, shape, flat_idx, analytic, est: fd.Estimate, tol: Tolerance):
    """EntryFindings for failing / kink / nonfinite entries among ``flat_idx``; plus masks."""
    a = analytic
    n = est.value
    bound = tol.bound(n, est.error)
    diff = np.abs(a - n)
    nonfinite = ~np.isfinite(a)
    known = np.isfinite(n) & ~nonfinite
    mismatch = known & (diff > bound)
    kink = mismatch & est.kink
    fail = (mismatch & ~est.kink) | nonfinite
    order = np.argsort(-(np.where(fail, diff / np.maximum(bound, 1e-300), -1.0)))
    entries = []
    for i in [i for i in order if fail[i]][:MAX_LISTED] + list(np.flatnonzero(kink)[:3]):
        entries.append(
            _entry(
                name,
                shape,
                int(flat_idx[i]),
                a[i],
                est.at(i),
                bound[i],
                tol,
                "nonfinite" if nonfinite[i] else ("kink" if kink[i] else "fail"),
            )
        )
    return entries, fail, kink, bound


def _entry(name, shape, flat, a, est: fd.Estimate, bound, tol: Tolerance, status):
    n = float(est.value)
    abs_err = abs(a - n)
    rel_err = abs_err / abs(n) if n != 0 else math.inf
    broke = [w for w, hit in (("rtol", rel_err > tol.rtol), ("atol", abs_err > tol.atol)) if hit]
    return EntryFinding(
        name=name,
        index=tuple(int(i) for i in np.unravel_index(flat, shape)),
        analytic=float(a),
        numeric=n,
        abs_err=float(abs_err),
        rel_err=float(rel_err),
        tol=float(bound),
        fd_error=float(est.error),
        status=status,
        broke="not finite" if status == "nonfinite" else ",".join(broke) or "sum",
        forward=float(est.forward),
        backward=float(est.backward),
        method="complex step" if bool(est.complex_step) else "richardson",
    )


class ComplexState:
    """Whether to use the complex step, and why not once it failed."""

    def __init__(self, wanted: bool):
        self.on = wanted
        self.reason = "" if wanted else "off (complex_step=False)"
        self.used = False

    def off(self, reason: str):
        self.on = False
        self.reason = f"off (loss not complex-safe: {reason.split(':')[0]})"

    def label(self) -> str:
        if self.used:
            return "complex step where it agrees with Richardson, else Richardson"
        return f"Richardson 5-point, complex step {self.reason or 'unused'}"


def _closer_look(ev, name, idx, f0, est: fd.Estimate, analytic, tol) -> fd.Estimate:
    """Re-estimate suspicious entries: a kink, or disagreeing with the analytic value."""
    mismatch = np.abs(analytic - est.value) > tol.bound(est.value, est.error)
    return fd.refine(ev, name, idx, f0, est, est.kink | mismatch)


def estimates(ev, name, idx, f0, cs: ComplexState, analytic, tol) -> fd.Estimate:
    """Real stencil for entries ``idx`` (looked at closer where suspicious), complex step
    where it works."""
    est = _closer_look(ev, name, idx, f0, fd.entry_estimates(ev, name, idx, f0), analytic, tol)
    if cs.on:
        try:
            values = fd.complex_partials(ev, name, idx)
        except ComplexStepUnsupported as exc:
            cs.off(str(exc))
            return est
        est = fd.adopt_complex(est, values, fd.eps_of(ev.params[name].dtype))
        cs.used = cs.used or bool(est.complex_step.any())
    return est


def exact_finding(name, x, g, ev, f0, tol, cs, batch_size) -> ParamFinding:
    """Exact mode for one tensor: every entry estimated and judged, a hint when some fail."""
    idx = np.arange(x.size)
    est = estimates(ev, name, idx, f0, cs, g.reshape(-1), tol)
    a = g.reshape(-1)
    entries, fail, kink, bound = judge(name, x.shape, idx, a, est, tol)
    hint = None
    if fail.any() and np.isfinite(a).all() and np.isfinite(est.value).all():
        hint = diagnose(
            a.reshape(x.shape),
            est.value.reshape(x.shape),
            fail.reshape(x.shape),
            bound.reshape(x.shape),
            batch_size,
        )
    blind_abs, blind_rel = _blind(bound, est.value)
    skipped = int((~np.isfinite(est.value)).sum())
    note = f"{skipped} entries skipped: the loss is not finite next to them" if skipped else ""
    return ParamFinding(
        name=name,
        shape=x.shape,
        checked=x.size,
        failed=int(fail.sum()),
        kinks=int(est.kink.sum()),
        how="elementwise",
        entries=tuple(entries),
        hint=hint,
        note=note,
        blind_abs=blind_abs,
        blind_rel=blind_rel,
    )


def _blind(bound: np.ndarray, numeric: np.ndarray) -> tuple[float, float]:
    """The largest error an entry could have and pass: absolute, and relative to the entry
    (over entries whose derivative is not zero; a float32 loss is blind to 1% on small ones)."""
    known = np.isfinite(bound) & np.isfinite(numeric)
    if not known.any():
        return math.nan, math.nan
    nonzero = known & (numeric != 0)
    rel = float(np.max(bound[nonzero] / np.abs(numeric[nonzero]))) if nonzero.any() else math.nan
    return float(np.max(bound[known])), rel
