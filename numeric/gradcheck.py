"""Check a hand-written gradient against finite differences, and say where it is wrong.

:func:`check_gradients` compares ``grad_fn(params)`` with numeric derivatives of
``loss_fn(params)`` and returns a :class:`GradcheckResult` (``.ok``, per-parameter findings,
``.report()``); :func:`assert_gradients` raises ``AssertionError`` with that report.

Two modes, chosen by parameter count (override with ``mode=``):

- ``"exact"`` (at most ``EXACT_MAX_PARAMS`` = 4096 parameters): every entry gets its own
  Richardson derivative with an error bar, refined by the complex step where the loss allows.
- ``"fast"`` (larger models): a few random ±1 projections per tensor compare ``grad . v``
  with an accurate directional derivative; a tensor whose projection disagrees is bisected
  with projections restricted to halves down to a few entries, which are then checked one by
  one. Every failure reported is an entry checked elementwise; projections only point to it.

An entry fails when ``|analytic - numeric| > atol + rtol*|numeric| + 3*fd_error``, where
``fd_error`` is the finite difference's own error estimate. Defaults depend on the params'
dtype (float64: rtol 1e-7, atol 1e-10 × the largest analytic entry; float32: 1e-3, 1e-5).
An entry whose one-sided slopes disagree (relu at 0, a tie in a max) is reported as a kink,
never as a failure. Float32 params are differenced at float64 copies when the loss computes
in float64 there (NumPy code does), since float32 rounding would drown a 1% error; the
float32 tolerances still judge the analytic gradient. ``vectorized=True`` evaluates blocks
of perturbed parameter copies in one call (see :class:`numeric.finite_diff.Evaluator`).

Example:
    >>> import numpy as np
    >>> params = {"w": np.array([1.0, -2.0]), "b": np.array(0.5)}
    >>> loss = lambda p: float(np.sum((p["w"] * 3.0 + p["b"]) ** 2))
    >>> grad = lambda p: {"w": 6 * (p["w"] * 3 + p["b"]), "b": np.array(0.0)}
    >>> result = check_gradients(loss, grad, params)
    >>> result.ok, [f.name for f in result.params if not f.ok]
    (False, ['b'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from numeric import finite_diff as fd
from numeric.hints import Hint, diagnose, ratio_hint

#: Models with at most this many parameters are checked entry by entry (mode="auto").
EXACT_MAX_PARAMS = 4096
#: (rtol, atol relative to the largest analytic gradient entry) per params dtype.
DEFAULT_TOLERANCES = {
    np.dtype(np.float64): (1e-7, 1e-10),
    np.dtype(np.float32): (1e-3, 1e-5),
    np.dtype(np.float16): (3e-2, 1e-2),
}
#: How many finite-difference error estimates an entry may be off before it fails.
FD_FACTOR = 3.0
#: Rounding noise of a correct analytic gradient entry, in ulps of the params' dtype.
ANALYTIC_ULPS = 32.0
#: Random projections per tensor in fast mode.
FAST_DIRECTIONS = 2
#: Bisection stops at this many candidate entries and checks them one by one.
LEAF_SIZE = 4
#: Rounds of "fix the entries found, project again" in fast mode.
FAST_ROUNDS = 3
#: Failing entries listed per parameter in the report.
MAX_LISTED = 5


class GradcheckInputError(ValueError):
    """The inputs cannot be checked: the message names the bad value and what is allowed."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Tolerance:
    """An entry passes when ``|a - n| <= atol + rtol*|n| + fd_factor*fd_error``."""

    rtol: float
    atol: float
    fd_factor: float = FD_FACTOR

    def bound(self, numeric, fd_error):
        return self.atol + self.rtol * np.abs(numeric) + self.fd_factor * np.asarray(fd_error)


@dataclass(frozen=True)
class EntryFinding:
    """One checked entry that failed, had a kink, or is not finite.

    ``status`` is "fail", "kink" or "nonfinite"; ``broke`` names the tolerances the error
    exceeds on its own ("rtol", "atol", or "sum" when only their sum is exceeded).
    """

    name: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    tol: float
    fd_error: float
    status: str
    broke: str
    forward: float
    backward: float
    method: str

    @property
    def where(self) -> str:
        return f"{self.name}[{', '.join(str(i) for i in self.index)}]"


@dataclass(frozen=True)
class ParamFinding:
    """What the check found for one parameter tensor.

    ``failed`` counts failing entries (a lower bound when ``failed_at_least``); ``checked``
    is how many entries were compared one by one and ``how`` says how the rest were covered.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    failed: int
    kinks: int
    how: str
    entries: tuple[EntryFinding, ...] = ()
    hint: Hint | None = None
    failed_at_least: bool = False
    note: str = ""

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass(frozen=True)
class GradcheckResult:
    """Outcome of :func:`check_gradients`; ``str(result)`` is the report."""

    ok: bool
    mode: str
    dtype: str
    tolerance: Tolerance
    params: tuple[ParamFinding, ...]
    seed: int | None
    complex_step: str
    loss_calls: int
    repro: str
    notes: tuple[str, ...] = field(default=())

    @property
    def failures(self) -> list[EntryFinding]:
        """Failing entries listed in the findings (at most MAX_LISTED per parameter)."""
        return [e for p in self.params for e in p.entries if e.status != "kink"]

    def finding(self, name: str) -> ParamFinding:
        return next(p for p in self.params if p.name == name)

    def report(self) -> str:
        """Plain-text report: verdict, one line per parameter, failing entries, repro."""
        return _render(self)

    def __str__(self) -> str:
        return self.report()


# --------------------------------------------------------------------------- report


def _num(x: float) -> str:
    return f"{x: .6e}" if np.isfinite(x) else f" {x}"


def _align(rows: list[tuple[str, ...]], indent: str) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def _entry_table(entries: list[EntryFinding]) -> list[str]:
    rows = [("entry", "analytic", "numeric", "abs err", "rel err", "tol", "broke")]
    for e in entries:
        rows.append(
            (
                e.where,
                _num(e.analytic),
                _num(e.numeric),
                f"{e.abs_err:.1e}",
                f"{e.rel_err:.1e}",
                f"{e.tol:.1e}",
                e.broke,
            )
        )
    return _align(rows, "    ")


def _param_line(p: ParamFinding) -> tuple[str, ...]:
    if p.ok:
        verdict = "ok"
    else:
        at_least = "≥ " if p.failed_at_least else ""
        verdict = f"{at_least}{p.failed:,} of {p.size:,} wrong"
    extra = f"  ({p.kinks} kink{'s' if p.kinks != 1 else ''})" if p.kinks else ""
    return (p.name, str(p.shape), p.how, verdict + extra)


def _render(r: GradcheckResult) -> str:
    bad = [p for p in r.params if not p.ok]
    n_entries = sum(p.size for p in r.params)
    n_failed = sum(p.failed for p in r.params)
    seed = f", seed {r.seed}" if r.seed is not None else ""
    verdict = "ok" if r.ok else f"FAILED: {n_failed:,} of {n_entries:,} entries wrong"
    t = r.tolerance
    lines = [
        f"gradient check {verdict}",
        f"  {r.mode} mode, {r.dtype}{seed}; numeric: {r.complex_step}; {r.loss_calls} loss calls",
        f"  tolerance: |analytic - numeric| <= atol {t.atol:.1e} + rtol {t.rtol:.0e}·|numeric|"
        f" + {t.fd_factor:g}·fd_error",
    ]
    param_lines = _align([_param_line(p) for p in r.params], "  ")
    for p, line in zip(r.params, param_lines, strict=True):
        lines.append(line)
        if p.hint is not None:
            lines.append(f"    hint: {p.hint}")
        if p.note:
            lines.append(f"    note: {p.note}")
        listed = [e for e in p.entries if e.status != "kink"]
        if listed:
            lines.extend(_entry_table(listed))
        kinks = [e for e in p.entries if e.status == "kink"]
        if kinks:
            where = ", ".join(e.where for e in kinks)
            lines.append(f"    kinks (one-sided slopes differ; not failures): {where}")
    lines.extend(f"  note: {n}" for n in r.notes)
    if bad:
        lines.append(f"  repro: {r.repro}")
        worst = r.failures[0] if r.failures else None
        if worst is not None:
            lines.append(
                f"  numeric side of {worst.where}: numeric.finite_diff.partial_derivative("
                f"loss_fn, params, {worst.name!r}, {worst.index})"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- inputs


def _validate_params(params) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping) or not params:
        raise GradcheckInputError(
            f"params must be a non-empty dict name -> numpy array, got {type(params).__name__}"
        )
    out = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise GradcheckInputError(f"params keys must be str names, got {name!r}")
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            raise GradcheckInputError(
                f"params[{name!r}] has dtype {arr.dtype}; gradient checks need floating-point "
                "arrays (float32 or float64; a scalar is a 0-d array like np.array(0.5))"
            )
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            raise GradcheckInputError(
                f"params[{name!r}] is not finite at index {tuple(int(i) for i in bad[0])} "
                f"(value {arr[tuple(bad[0])]}); gradients can only be checked at finite params"
            )
        out[name] = arr
    return out


def _shape_mismatch(name: str, g: np.ndarray, x: np.ndarray) -> str:
    msg = f"gradient {name!r} has shape {g.shape} but params[{name!r}] has shape {x.shape}"
    if g.ndim == 2 and g.shape == x.shape[::-1]:
        return msg + ": a transpose?"
    if g.size == x.size:
        return msg + ": same size, a reshape or keepdims slip?"
    if g.ndim == x.ndim + 1 and g.shape[1:] == x.shape:
        return msg + ": one gradient per example? sum (or average) over the batch axis"
    return msg


def _validate_grads(grads, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(grads, Mapping):
        raise GradcheckInputError(
            f"the gradient must be a dict name -> array like params, got {type(grads).__name__}"
        )
    missing = [n for n in params if n not in grads]
    extra = [n for n in grads if n not in params]
    if missing or extra:
        parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else ""]
        raise GradcheckInputError(
            "gradient names do not match params: "
            + ", ".join(p for p in parts if p)
            + f" (params are {list(params)}; return one gradient array per param, same names)"
        )
    out = {}
    for name, x in params.items():
        g = np.asarray(grads[name])
        if g.dtype.kind not in "fiu":
            raise GradcheckInputError(
                f"gradient {name!r} has dtype {g.dtype}; expected a real floating-point array"
            )
        if g.shape != x.shape:
            raise GradcheckInputError(_shape_mismatch(name, g, x))
        out[name] = g.astype(np.float64)
    return out


def _is_pair(out) -> bool:
    return isinstance(out, tuple | list) and len(out) == 2 and isinstance(out[1], Mapping)


def _resolve(loss_fn, grad_fn, loss_and_grad_fn, params):
    """Return (plain loss function, analytic gradient dict, how to name it in the repro)."""
    if loss_and_grad_fn is not None:
        if grad_fn is not None:
            raise GradcheckInputError("pass grad_fn or loss_and_grad_fn, not both")
        out = loss_and_grad_fn(dict(params))
        if not _is_pair(out):
            raise GradcheckInputError(
                "loss_and_grad_fn must return (loss, grads) with grads a dict, got "
                f"{type(out).__name__}"
            )
        plain = loss_fn if loss_fn is not None else (lambda p: loss_and_grad_fn(p)[0])
        return plain, out[1], "loss_fn, None, params, loss_and_grad_fn=loss_and_grad_fn"
    if loss_fn is None:
        raise GradcheckInputError("nothing to check: pass loss_fn and grad_fn, or loss_and_grad_fn")
    if grad_fn is not None:
        return loss_fn, grad_fn(dict(params)), "loss_fn, grad_fn, params"
    out = loss_fn(dict(params))
    if not _is_pair(out):
        raise GradcheckInputError(
            f"grad_fn is None, so loss_fn must return (loss, grads); it returned "
            f"{type(out).__name__}. Pass grad_fn=(params -> dict of gradients) as well."
        )
    return (lambda p: loss_fn(p)[0]), out[1], "loss_and_grad_fn, None, params"


def _tolerance(dtype: np.dtype, grads, rtol, atol) -> Tolerance:
    key = dtype if dtype in DEFAULT_TOLERANCES else np.dtype(np.float64)
    rtol_d, atol_rel = DEFAULT_TOLERANCES[key]
    if atol is None:
        finite = [np.max(np.abs(g[np.isfinite(g)]), initial=0.0) for g in grads.values()]
        atol = atol_rel * max(finite, default=0.0) or np.finfo(np.float64).tiny
    return Tolerance(rtol=rtol_d if rtol is None else rtol, atol=float(atol))


def _params_dtype(params) -> np.dtype:
    """The least precise dtype among the params: it sets steps and tolerances."""
    return max((a.dtype for a in params.values()), key=lambda d: np.finfo(d).eps)


# --------------------------------------------------------------------------- judging entries


def _judge(name, shape, flat_idx, analytic, est: fd.Estimate, tol: Tolerance):
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


class _ComplexState:
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


def _estimates(ev, name, idx, f0, cs: _ComplexState, analytic, tol) -> fd.Estimate:
    """Real stencil for entries ``idx`` (looked at closer where suspicious), complex step
    where it works."""
    est = _closer_look(ev, name, idx, f0, fd.entry_estimates(ev, name, idx, f0), analytic, tol)
    if cs.on:
        try:
            values = fd.complex_partials(ev, name, idx)
        except fd.ComplexStepUnsupported as exc:
            cs.off(str(exc))
            return est
        est = fd.adopt_complex(est, values, fd.eps_of(ev.params[name].dtype))
        cs.used = cs.used or bool(est.complex_step.any())
    return est


def _finding_exact(name, x, g, ev, f0, tol, cs, batch_size) -> ParamFinding:
    idx = np.arange(x.size)
    est = _estimates(ev, name, idx, f0, cs, g.reshape(-1), tol)
    a = g.reshape(-1)
    entries, fail, kink, bound = _judge(name, x.shape, idx, a, est, tol)
    hint = None
    if fail.any() and np.isfinite(a).all() and np.isfinite(est.value).all():
        hint = diagnose(
            a.reshape(x.shape),
            est.value.reshape(x.shape),
            fail.reshape(x.shape),
            bound.reshape(x.shape),
            batch_size,
        )
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
    )


# --------------------------------------------------------------------------- fast mode


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


class _Projector:
    """Random ±1/sqrt(k) projections of one tensor's gradient, restricted to index subsets."""

    def __init__(self, ev: fd.Evaluator, grads, f0: float, tol: Tolerance, rng, cs, dtype):
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
            except fd.ComplexStepUnsupported as exc:
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


def _bisect(proj: _Projector, name, cand: np.ndarray, grad) -> tuple[np.ndarray, bool]:
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


def _finding_fast(name, x, g, proj: _Projector, ev, f0, tol, cs, batch_size) -> ParamFinding:
    a = g.reshape(-1)
    if x.size <= LEAF_SIZE:
        return _finding_exact(name, x, g, ev, f0, tol, cs, batch_size)
    bad = np.flatnonzero(~np.isfinite(a))
    cand = np.flatnonzero(np.isfinite(a))
    found: list[EntryFinding] = []
    if len(bad):
        est = _estimates(ev, name, bad[:MAX_LISTED], f0, cs, a[bad[:MAX_LISTED]], tol)
        found += _judge(name, x.shape, bad[:MAX_LISTED], a[bad[:MAX_LISTED]], est, tol)[0]
    how = f"{FAST_DIRECTIONS} projections"
    work = np.where(np.isfinite(a), a, 0.0)
    if not any(proj.measure(name, cand, work).mismatch for _ in range(FAST_DIRECTIONS)):
        return ParamFinding(name, x.shape, 0, len(bad), 0, how, tuple(found))
    checked, n_fail, at_least, hint, note = 0, 0, False, None, ""
    for round_ in range(FAST_ROUNDS):
        leaf, tracked = _bisect(proj, name, cand, work)
        est = _estimates(ev, name, leaf, f0, cs, work[leaf], tol)
        entries, fail, _, _ = _judge(name, x.shape, leaf, work[leaf], est, tol)
        checked += len(leaf)
        if not fail.any():
            note = (
                "a projection disagreed but the entries it led to pass one by one"
                if tracked
                else "a projection disagreed; bisection lost the trail"
            )
            break
        found += [e for e in entries if e.status != "kink"]
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


def _upcast(ev: fd.Evaluator, params, grads, f0: float) -> tuple[fd.Evaluator, float]:
    """An evaluator of the loss at float64 copies of low-precision params, if it computes in
    float64 there; else ``ev`` itself.

    A float32 loss is noisy at 1e-7: its finite differences cannot confirm a 1% error in a
    small entry, let alone in a projection over many entries. The analytic gradient is still
    judged with the float32 tolerances; only the numeric side gets more accurate.
    NumPy code promotes to float64 when handed float64 params; a loss that casts back (or
    runs in JAX float32) does not, which shows as a step far below float32 resolution
    changing nothing. The probe steps along sign(grad) of the largest tensor and must see
    the analytic slope within 1%: a grossly wrong gradient then keeps float32 evaluation,
    where its error is large enough to show anyway.
    """
    if all(x.dtype == np.float64 for x in params.values()):
        return ev, f0
    ev64 = fd.Evaluator(
        ev.loss_fn, {n: x.astype(np.float64) for n, x in params.items()}, ev.vectorized
    )
    name = max(params, key=lambda n: params[n].size)
    g = np.nan_to_num(grads[name])
    v = np.sign(g) / math.sqrt(g.size)
    slope = float(np.sum(g * v))
    try:
        f64 = ev64.base()
        est = fd.directional_estimate(ev64, {name: v}, f64, 1e-7, grads)
    except Exception:  # the loss refuses float64 params: stay in their dtype
        return ev, f0
    if slope > 0 and abs(est.value - slope) <= 0.01 * slope and est.error <= 0.01 * slope:
        return ev64, f64
    return ev, f0


# --------------------------------------------------------------------------- public API


def choose_mode(n_params: int) -> str:
    """ "exact" up to EXACT_MAX_PARAMS parameters, "fast" above.

    >>> choose_mode(100), choose_mode(407_050)
    ('exact', 'fast')
    """
    return "exact" if n_params <= EXACT_MAX_PARAMS else "fast"


def check_gradients(
    loss_fn: Callable | None = None,
    grad_fn: Callable | None = None,
    params: Mapping[str, np.ndarray] | None = None,
    *,
    loss_and_grad_fn: Callable | None = None,
    mode: str = "auto",
    vectorized: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    complex_step: bool = True,
) -> GradcheckResult:
    """Compare an analytic gradient with finite differences; never raises on a wrong gradient.

    ``loss_fn(params) -> float`` and ``grad_fn(params) -> {name: array}`` over ``params``, a
    dict name -> float array (0-d for scalars). Instead of ``grad_fn`` give
    ``loss_and_grad_fn(params) -> (loss, grads)``, or leave ``grad_fn=None`` and let
    ``loss_fn`` itself return that pair, e.g. ``lambda p: kernel.loss_and_grads(p, X, Y)``.

    ``mode``: "auto" (exact up to EXACT_MAX_PARAMS parameters, else fast), "exact" or "fast".
    ``vectorized=True`` promises that ``loss_fn`` accepts params whose arrays all carry a
    leading axis of k copies and returns k losses; blocks of perturbed copies are then
    evaluated in one call. ``rtol``/``atol`` override the dtype defaults (``atol`` absolute).
    ``seed`` fixes the random projections of fast mode (drawn and reported when None).
    ``batch_size`` lets a hint name a missing 1/m precisely. ``complex_step=False`` skips it.
    Raises GradcheckInputError (a ValueError) for inputs that cannot be checked.

    >>> import numpy as np
    >>> p = {"W": np.array([[1.0, 2.0], [3.0, 4.0]])}
    >>> r = check_gradients(lambda q: float(np.sum(q["W"] ** 2)), lambda q: {"W": 2 * q["W"]}, p)
    >>> r.ok, r.mode
    (True, 'exact')
    """
    params = _validate_params(params)
    if mode not in ("auto", "exact", "fast"):
        raise GradcheckInputError(f"mode must be 'auto', 'exact' or 'fast', got {mode!r}")
    plain, grads, fn_args = _resolve(loss_fn, grad_fn, loss_and_grad_fn, params)
    grads = _validate_grads(grads, params)
    dtype = _params_dtype(params)
    tol = _tolerance(dtype, grads, rtol, atol)
    ev = fd.Evaluator(plain, params, vectorized)
    f0 = ev.base()
    if not np.isfinite(f0):
        raise GradcheckInputError(f"loss_fn(params) = {f0}: the loss must be finite here")
    n_params = sum(x.size for x in params.values())
    mode = choose_mode(n_params) if mode == "auto" else mode
    if mode == "fast" and seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    cs = _ComplexState(complex_step)
    ev_num, f0_num = _upcast(ev, params, grads, f0)
    notes = (
        ()
        if ev_num is ev
        else (
            f"numeric side evaluated at the {dtype} params upcast "
            "to float64 (the loss computes in float64 there)",
        )
    )
    if mode == "exact":
        findings = [
            _finding_exact(n, x, grads[n], ev_num, f0_num, tol, cs, batch_size)
            for n, x in params.items()
        ]
    else:
        rng = np.random.default_rng(seed)
        proj = _Projector(ev_num, grads, f0_num, tol, rng, cs, dtype)
        findings = [
            _finding_fast(n, x, grads[n].reshape(-1), proj, ev_num, f0_num, tol, cs, batch_size)
            for n, x in params.items()
        ]
    extra = f", mode={mode!r}" + (f", seed={seed}" if mode == "fast" else "")
    extra += ", vectorized=True" if vectorized else ""
    return GradcheckResult(
        ok=all(f.ok for f in findings),
        mode=mode,
        dtype=str(dtype),
        tolerance=tol,
        params=tuple(findings),
        seed=seed,
        complex_step=cs.label(),
        loss_calls=ev.calls + (ev_num.calls if ev_num is not ev else 0),
        notes=notes,
        repro=f"assert_gradients({fn_args}{extra})",
    )


def assert_gradients(*args, **kwargs) -> GradcheckResult:
    """:func:`check_gradients`, raising ``AssertionError(report)`` when a gradient is wrong.

    >>> import numpy as np
    >>> p = {"w": np.array([1.0, 2.0])}
    >>> assert_gradients(lambda q: float(q["w"] @ q["w"]), lambda q: {"w": q["w"]}, p)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: gradient check FAILED: 2 of 2 entries wrong
    ...
    """
    __tracebackhide__ = True
    result = check_gradients(*args, **kwargs)
    if not result.ok:
        raise AssertionError(result.report())
    return result
