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
of perturbed parameter copies in one call (see :class:`numeric.gradcheck.finite_diff.Evaluator`).

This module runs the check; the parts live in :mod:`numeric.gradcheck.inputs` (validation,
default tolerances), :mod:`numeric.gradcheck.elementwise` (entry-by-entry estimates, exact
mode), :mod:`numeric.gradcheck.projection_search` (fast mode) and
:mod:`numeric.gradcheck.findings` (results, report).
Their public names are re-exported here.

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
import os
from collections.abc import Callable, Mapping

import numpy as np

from . import finite_diff as fd
from .elementwise import ComplexState, exact_finding
from .findings import (
    FD_FACTOR,
    MAX_LISTED,
    EntryFinding,
    GradcheckResult,
    ParamFinding,
    Tolerance,
)
from .inputs import (
    DEFAULT_TOLERANCES,
    GradcheckInputError,
    default_tolerance,
    params_dtype,
    resolve,
    validate_grads,
    validate_params,
)
from .projection_search import (
    ANALYTIC_ULPS,
    FAST_DIRECTIONS,
    FAST_ROUNDS,
    LEAF_SIZE,
    Projector,
    fast_finding,
)

__all__ = [
    "ANALYTIC_ULPS",
    "DEFAULT_TOLERANCES",
    "EXACT_MAX_PARAMS",
    "FAST_DIRECTIONS",
    "FAST_ROUNDS",
    "FD_FACTOR",
    "LEAF_SIZE",
    "MAX_LISTED",
    "EntryFinding",
    "GradcheckInputError",
    "GradcheckResult",
    "ParamFinding",
    "Tolerance",
    "assert_gradients",
    "check_gradients",
    "choose_mode",
]

#: Models with at most this many parameters are checked entry by entry (mode="auto").
EXACT_MAX_PARAMS = 4096


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
    params = validate_params(params)
    if mode not in ("auto", "exact", "fast"):
        raise GradcheckInputError(f"mode must be 'auto', 'exact' or 'fast', got {mode!r}")
    plain, grads, fn_args = resolve(loss_fn, grad_fn, loss_and_grad_fn, params)
    grads = validate_grads(grads, params)
    misshapen = {n: g for n, g in grads.items() if isinstance(g, str)}
    grads = {n: g for n, g in grads.items() if n not in misshapen}
    dtype = params_dtype(params)
    tol = default_tolerance(dtype, grads, rtol, atol)
    ev = fd.Evaluator(plain, params, vectorized)
    f0 = ev.base()
    if not np.isfinite(f0):
        raise GradcheckInputError(f"loss_fn(params) = {f0}: the loss must be finite here")
    n_params = sum(x.size for x in params.values())
    mode = choose_mode(n_params) if mode == "auto" else mode
    if mode == "fast" and seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    cs = ComplexState(complex_step)
    ev_num, f0_num = _upcast(ev, params, grads, f0) if grads else (ev, f0)
    if mode == "exact":
        found = {
            n: exact_finding(n, x, grads[n], ev_num, f0_num, tol, cs, batch_size)
            for n, x in params.items()
            if n in grads
        }
    else:
        proj = Projector(ev_num, grads, f0_num, tol, np.random.default_rng(seed), cs, dtype)
        found = {
            n: fast_finding(n, x, grads[n].reshape(-1), proj, batch_size)
            for n, x in params.items()
            if n in grads
        }
    found |= {n: _misshapen(n, params[n], why) for n, why in misshapen.items()}
    findings = [found[n] for n in params]
    return GradcheckResult(
        ok=all(f.ok for f in findings),
        mode=mode,
        dtype=str(dtype),
        tolerance=tol,
        params=tuple(findings),
        seed=seed,
        complex_step=cs.label(),
        loss_calls=ev.calls + (ev_num.calls if ev_num is not ev else 0),
        notes=() if ev_num is ev else (_upcast_note(dtype),),
        repro=_repro(fn_args, mode, seed, vectorized),
    )


def _misshapen(name: str, x: np.ndarray, why: str) -> ParamFinding:
    """A gradient of the wrong shape: every entry wrong, none compared."""
    return ParamFinding(name, x.shape, 0, x.size, 0, "not compared", note=why)


def _upcast_note(dtype: np.dtype) -> str:
    return (
        f"numeric side evaluated at the {dtype} params upcast "
        "to float64 (the loss computes in float64 there)"
    )


def _repro(fn_args: str, mode: str, seed: int | None, vectorized: bool) -> str:
    """The ``assert_gradients(...)`` call that repeats this check, with the caller's own
    function names, and in a pytest run the test that makes it."""
    extra = f", mode={mode!r}" + (f", seed={seed}" if mode == "fast" else "")
    extra += ", vectorized=True" if vectorized else ""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    where = f"  # in pytest '{test}'" if test else ""
    return f"assert_gradients({fn_args}{extra}){where}"


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
