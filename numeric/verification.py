"""Verify a generated kernel: three independent routes to the gradient must agree.

The package exports :func:`verify` as ``numeric.verify``; this module holds it, the
:class:`Verification` it returns, and how that is judged and reported.

1. **kernel** — the generated NumPy kernel's ``loss_and_grads`` (backprop as derived);
2. **JAX** — ``jax.grad`` of the model's *forward* graph printed to ``jax.numpy``
   (:mod:`numeric.jax_route`; never the derived gradients), in float64;
3. **FD** — finite differences of the kernel's own ``loss`` (:mod:`numeric.finite_diff`:
   Richardson 5-point stencils with error bars and one-sided slopes), in float64.

:func:`verify` draws parameters and a batch (seeded, shaped by the data contract of
DESIGN.md), runs the three routes and compares the kernel with each reference, entry by
entry. The result, a :class:`Verification`, holds one :class:`Row` per parameter (the table
of ``backprop check``), every :class:`Mismatch`, the kinks, and ``report()``.

How an entry is judged (``ref`` is JAX's or FD's value, ``scale`` the largest JAX gradient
entry of the whole model, ``noise`` the parameter's rounding noise, see ``NOISE_FACTOR``)::

    |kernel - ref| <= rtol * |ref| + atol * scale + 16 * noise  (+ 3 * FD's own error bar)

with :data:`TOLERANCES` per dtype: JAX is exact up to rounding, so its column is tight;
FD uses the tolerances of :mod:`numeric.gradcheck`. An entry whose one-sided differences
disagree (relu at 0, a tie in a max) is a *kink*: reported as such, never as a failure, in
either column. In the table, ``abs`` is the largest ``|kernel - ref|`` of a parameter and
``rel`` that divided by the largest entry of its JAX gradient (normwise: a near-zero entry
cannot blow it up; "-" when the gradient is 0).

Models with more than ``gradcheck.EXACT_MAX_PARAMS`` parameters are differenced in the fast
mode of :func:`numeric.gradcheck.check_gradients` (random projections, bisection to the
wrong entries) plus, elementwise, the entries where the kernel is furthest from JAX and a
few random ones; JAX still covers every entry.

>>> import derive
>>> result = verify(derive.build("logreg:3", for_kernels=True), batch=4)
>>> result.ok, [row.name for row in result.rows], result.rows[0].verdict
(True, ['w', 'b'], 'ok')
"""

from __future__ import annotations

import math
import textwrap
import time
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from derive import registry
from derive.errors import BackpropInputError

from . import finite_diff as fd
from . import gradcheck
from .hints import diagnose
from .jax_route import jax_gradients, jax_version, n_outputs, targets_are_vector


@dataclass(frozen=True)
class Tolerance:
    """An entry agrees when ``|kernel - ref| <= rtol * |ref| + atol * scale`` (+ noise)."""

    rtol: float
    atol: float


#: dtype -> {route: Tolerance}. JAX: rounding only (the float64 target is 1e-10 relative).
#: FD: as numeric.gradcheck judges finite differences.
TOLERANCES = {
    "float64": {
        "JAX": Tolerance(rtol=1e-10, atol=1e-12),
        "FD": Tolerance(*gradcheck.DEFAULT_TOLERANCES[np.dtype(np.float64)]),
    },
    "float32": {
        "JAX": Tolerance(rtol=1e-4, atol=1e-5),
        "FD": Tolerance(*gradcheck.DEFAULT_TOLERANCES[np.dtype(np.float32)]),
    },
}
#: How many times its rounding noise an entry may be off. The noise of a parameter is the
#: largest difference between JAX's float32 and float64 gradients of the same forward graph,
#: scaled to the kernel's dtype (x eps/eps_float32): what finite precision costs this very
#: computation (cancellation in a softmax, a relu that flips within a rounding of 0).
NOISE_FACTOR = 16.0
#: How many finite-difference error bars an entry may be off.
FD_FACTOR = gradcheck.FD_FACTOR
#: Fast mode: entries differenced one by one per parameter (the worst by JAX, then random).
FAST_WORST, FAST_RANDOM = 4, 4
#: Kinks named per parameter in a verdict.
MAX_KINKS = 3
#: Draws of parameters tried for a finite loss (expressions with log or sqrt of a parameter).
DRAWS = 8
ROUTES = ("kernel", "cost", "JAX", "FD")


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Row:
    """One parameter's line of the table: the kernel against JAX and against FD.

    ``jax_abs``/``fd_abs``: the largest ``|kernel - ref|`` (kinks left out); ``jax_rel``/
    ``fd_rel``: the same over the largest JAX gradient entry (NaN when that is 0);
    ``worst``: the entry closest to, or furthest past, its tolerance; ``verdict``: "ok",
    "MISMATCH (...)" or "kink(s) at ...".
    """

    name: str
    shape: tuple[int, ...]
    jax_abs: float
    jax_rel: float
    fd_abs: float
    fd_rel: float
    worst: str
    verdict: str

    @property
    def ok(self) -> bool:
        return not self.verdict.startswith("MISMATCH")


@dataclass(frozen=True)
class Mismatch:
    """A disagreement with the kernel on one parameter (or on the cost).

    ``route``: "JAX" or "FD" (gradient values differ), "cost" (the kernel's cost differs
    from JAX's forward graph; ``param`` is then ""), "kernel" (a gradient missing or of the
    wrong shape). ``count`` of ``size`` entries disagree; ``index`` is the worst of them, with
    the kernel's and the reference's values; ``hint`` names a pattern (x2, sign, 1/m, ...).
    """

    param: str
    route: str
    count: int = 0
    size: int = 0
    index: tuple[int, ...] = ()
    kernel: float = math.nan
    reference: float = math.nan
    hint: str = ""

    def __str__(self) -> str:
        if self.route == "kernel":
            return f"{self.param}: {self.hint}"
        if self.route == "cost":
            return (
                f"cost: {self.hint} {self.kernel:.12g}, JAX's forward graph {self.reference:.12g}"
            )
        where = f"{self.param}{_index(self.index)}"
        text = (
            f"{self.param}: {self.route} disagrees at {self.count:,} of {self.size:,} entries; "
            f"worst {where}: kernel {self.kernel:.10g}, {self.route} {self.reference:.10g}"
        )
        return text + (f"\n    hint: {self.hint}" if self.hint else "")


@dataclass(frozen=True)
class Verification:
    """Outcome of :func:`verify`: the table (``rows``), what disagreed, and how it was run.

    ``params``, ``X`` and ``Y`` are the values checked at (to reproduce a finding);
    ``kernel_file`` the file the kernel was read from ("" for a generated kernel).
    """

    model: str
    about: str
    dtype: str
    batch: int
    seed: int
    jax_version: str
    rows: tuple[Row, ...]
    cost_kernel: float
    cost_jax: float
    mismatches: tuple[Mismatch, ...]
    kinks: tuple[tuple[str, tuple[int, ...]], ...]
    fd_mode: str
    notes: tuple[str, ...] = ()
    kernel_file: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    X: np.ndarray | None = field(default=None, repr=False)
    Y: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """All three routes agree (kinks are not disagreements)."""
        return not self.mismatches

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def disagreeing(self, name: str) -> set[str]:
        """The routes that disagree with the kernel on parameter ``name``."""
        return {m.route for m in self.mismatches if m.param == name}

    def report(self) -> str:
        """Plain-text report: header, one aligned line per parameter, what disagreed."""
        return _render(self)

    def __str__(self) -> str:
        return self.report()


# ---------------------------------------------------------------------------- data


def data_shapes(model, m: int) -> dict[str, tuple[int, ...]]:
    """Shapes of ``X`` and ``Y`` for a batch of ``m`` (DESIGN.md contract).

    ``Y`` is ``(m,)`` for logistic regression and integer labels, ``(m, 0)`` for an
    expression (it has no targets; its inputs, if any, are the columns of ``X``).

    >>> import derive
    >>> data_shapes(derive.build("logreg:3", for_kernels=True), 5)
    {'X': (5, 3), 'Y': (5,)}
    >>> data_shapes(derive.build("chain:2"), 5), data_shapes(derive.build("J = a*x"), 5)
    ({'X': (5, 1), 'Y': (5, 1)}, {'X': (5, 0), 'Y': (5, 0)})
    """
    if model.level == "matrix":
        (x,) = model.inputs
        n_in = int(sp.sympify(x.shape[1]).xreplace(model.dims))
    else:
        n_in = len(model.inputs)
    if not model.targets:
        return {"X": (m, n_in), "Y": (m, 0)}
    return {"X": (m, n_in), "Y": (m,) if targets_are_vector(model) else (m, n_outputs(model))}


def target_kind(model) -> str:
    """What ``Y`` holds: the registry's word for the loss ("real", "binary", "one_hot",
    "labels"), or "none" for an expression."""
    if model.loss is None or not model.targets:
        return "none"
    return registry.loss(model.loss).targets


def sample_params(shapes, dtype="float64", seed=0, positive: bool = False) -> dict:
    """Random parameters: an ``(n_in, ...)`` array with standard deviation ``1/sqrt(n_in)``,
    a scalar (0-d) with 0.5; ``positive=True`` draws from ``[0.5, 1.5]`` instead (for
    expressions that take the log or square root of a parameter).

    >>> {k: v.shape for k, v in sample_params({"W1": (3, 2), "b": ()}).items()}
    {'W1': (3, 2), 'b': ()}
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        if positive:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * (1 / math.sqrt(shape[0]) if shape else 0.5)
        out[name] = np.asarray(value, dtype=dtype)
    return out


def sample_data(model, m: int, dtype="float64", seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A batch ``(X, Y)`` that fits the model's loss: ``X`` standard normal; ``Y`` one-hot
    rows (cce), integer labels (sparse_cce), 0/1 (bce), standard normal otherwise.

    >>> import derive
    >>> X, Y = sample_data(derive.mlp([3, 4], loss="sparse_cce"), 6)
    >>> X.shape, Y.shape, Y.dtype.kind
    ((6, 3), (6,), 'i')
    """
    rng = np.random.default_rng(seed)
    shapes = data_shapes(model, m)
    X = rng.standard_normal(shapes["X"]).astype(dtype)
    kind = target_kind(model)
    if kind == "labels":
        Y = rng.integers(0, n_outputs(model), m)
    elif kind == "one_hot":
        Y = np.eye(n_outputs(model), dtype=dtype)[rng.integers(0, n_outputs(model), m)]
    elif kind == "binary":
        Y = rng.integers(0, 2, shapes["Y"]).astype(dtype)
    else:
        Y = rng.standard_normal(shapes["Y"]).astype(dtype)
    return X, Y


def _draw(model, kernel, shapes, dtype, batch, seed, data):
    """Seeded params (and data, unless given) at which the kernel's loss is finite.

    Only a loss that is not finite (or a floating-point error: ``1 / 0`` of Python numbers)
    asks for another draw; any other exception of the kernel (a shape error, a typo) is the
    kernel's, and propagates as it is.
    """
    params_seed, data_seed = np.random.SeedSequence(seed).spawn(2)
    X, Y = sample_data(model, batch, dtype, data_seed) if data is None else data
    value = math.nan
    for attempt in range(DRAWS):
        if attempt == 0:
            params = sample_params(shapes, dtype, params_seed)
        else:  # a log or sqrt of a parameter: try again, then with positive values
            seq = np.random.SeedSequence([seed, attempt])
            params = sample_params(shapes, dtype, seq, positive=attempt >= DRAWS // 2)
        with np.errstate(all="ignore"):
            try:
                value = kernel.loss(params, X, Y)
            except ArithmeticError as err:
                value = f"{type(err).__name__}: {err}"
                continue
            if np.isfinite(value):
                return params, X, Y
    raise BackpropInputError(
        f"the loss of {model.spec} is not finite at any of {DRAWS} random draws of the "
        f"parameters (the last gave {value})"
    )


# ---------------------------------------------------------------------------- comparing


@dataclass
class _Column:
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


def _spread(a, b) -> float:
    """Largest ``|a - b|`` over the entries where both are finite (0 if there are none)."""
    diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(np.max(diff[np.isfinite(diff)], initial=0.0))


def _index(index: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, index))}]" if index else ""


def _unravel(flat: int, shape) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


# ---------------------------------------------------------------------------- verify


def verify(
    model,
    dtype: str = "float64",
    batch: int = 8,
    seed: int = 0,
    kernel=None,
    *,
    params: dict | None = None,
    data: tuple | None = None,
) -> Verification:
    """Check the kernel of ``model`` against JAX autodiff and finite differences.

    ``kernel`` defaults to ``numeric.codegen(model.derive())``; pass another (e.g. a
    deliberately broken one) to check that instead. Parameters (shapes from the kernel's
    ``PARAMS``) and a batch of ``batch`` examples are drawn from ``seed`` in ``dtype``,
    unless ``params`` / ``data=(X, Y)`` are given. Never raises on a wrong gradient: see
    ``.ok``, ``.rows``, ``.mismatches``, ``.report()``. Raises ``BackpropInputError`` (a
    ValueError) for a kernel of other parameters than the model's and for a loss with no
    finite value at any draw; an exception raised by the kernel itself propagates as it is.
    """
    dtype = str(np.dtype(dtype))
    if dtype not in TOLERANCES:
        raise BackpropInputError(f"dtype must be one of {', '.join(TOLERANCES)}, got {dtype!r}")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if kernel is None:
        from .generator import codegen

        kernel = codegen(model.derive())
        timings["derive + codegen"] = time.perf_counter() - start
    if getattr(kernel, "target", "numpy") == "jax":
        kernel = _X64(kernel)
    shapes = {name: tuple(shape) for name, shape in kernel.module.PARAMS.items()}
    if shapes != model.param_shapes():
        raise BackpropInputError(
            f"the kernel's PARAMS {shapes} are not the parameters of {model.spec} "
            f"{model.param_shapes()}"
        )
    if params is None:
        params, X, Y = _draw(model, kernel, shapes, dtype, batch, seed, data)
    else:
        X, Y = data if data is not None else sample_data(model, batch, dtype, seed)
    params = {name: np.asarray(params[name]) for name in shapes}
    X, Y = np.asarray(X), np.asarray(Y)
    batch = X.shape[0]
    tol = TOLERANCES[dtype]
    notes: list[str] = []

    start = time.perf_counter()
    cost_k, grads, mismatches = _kernel_grads(kernel, params, X, Y, shapes)
    cost_loss = float(kernel.loss(params, X, Y))
    timings["kernel"] = time.perf_counter() - start

    start = time.perf_counter()
    cost_j, jax_grads = jax_gradients(model, params, X, Y)
    cost_32, jax_32 = jax_gradients(model, params, X, Y, "float32")
    timings["JAX"] = time.perf_counter() - start
    scale = max((float(np.max(np.abs(g), initial=0.0)) for g in jax_grads.values()), default=0.0)
    shrink = np.finfo(dtype).eps / np.finfo(np.float32).eps
    noise = {
        name: NOISE_FACTOR * shrink * _spread(jax_32[name], jax_grads[name]) for name in shapes
    }

    cost_bound = (
        tol["JAX"].rtol * max(abs(cost_j), abs(cost_k))
        + NOISE_FACTOR * shrink * _spread(cost_32, cost_j)
        + np.finfo(dtype).tiny  # a float32 cost may underflow where float64 does not
    )
    for what, value in (("loss", cost_loss), ("loss_and_grads", cost_k)):
        if not abs(value - cost_j) <= cost_bound:
            mismatches.append(
                Mismatch("", "cost", 1, 1, (), value, cost_j, f"the kernel's {what}() gives")
            )

    columns: dict[str, dict[str, _Column]] = {name: {} for name in grads}
    t = tol["JAX"]
    for name in grads:
        ref = jax_grads[name].reshape(-1)
        bound = t.rtol * np.abs(ref) + t.atol * scale + noise[name]
        columns[name]["JAX"] = _Column(np.arange(ref.size), ref, bound, np.zeros(ref.size, bool))

    start = time.perf_counter()
    n_params = sum(math.prod(s) for s in shapes.values())
    fd_mode = gradcheck.choose_mode(n_params)
    projections = _fd_route(
        kernel, params, X, Y, grads, columns, tol["FD"], scale, noise, fd_mode, seed, batch
    )
    timings["FD"] = time.perf_counter() - start

    rows, kinks = [], []
    for name, shape in shapes.items():
        if name not in grads:
            nan = math.nan
            rows.append(Row(name, shape, nan, nan, nan, nan, "", "MISMATCH (kernel)"))
            continue
        top = float(np.max(np.abs(jax_grads[name]), initial=0.0))
        zero = tol["JAX"].atol * scale
        row, found, where = _judge(
            name, shape, grads[name], columns[name], projections.get(name), batch, top, zero
        )
        rows.append(row)
        mismatches += found
        kinks += [(name, index) for index in where]
    if fd_mode == "fast":
        notes.append(
            f"FD: {n_params:,} parameters, so each parameter is checked by "
            f"{gradcheck.FAST_DIRECTIONS} random projections (bisected to the wrong entries "
            f"if one disagrees), and one by one at the {FAST_WORST} entries furthest from JAX "
            f"and {FAST_RANDOM} random ones (the FD columns are over those)"
        )
    if dtype != "float64":
        notes.append(
            f"the {dtype} kernel is judged against float64 references: JAX, and finite "
            "differences of the kernel's loss at float64 copies of the same values"
        )
    order = {name: k for k, name in enumerate(shapes)}
    mismatches.sort(key=lambda m: (order.get(m.param, len(order)), ROUTES.index(m.route)))
    return Verification(
        model=model.spec,
        about=_about(model),
        dtype=dtype,
        batch=batch,
        seed=seed,
        jax_version=jax_version(),
        rows=tuple(rows),
        cost_kernel=cost_k,
        cost_jax=cost_j,
        mismatches=tuple(mismatches),
        kinks=tuple(kinks),
        fd_mode=fd_mode,
        kernel_file=str(getattr(kernel, "path", None) or ""),
        notes=tuple(notes),
        timings=timings,
        params=params,
        X=X,
        Y=Y,
    )


class _X64:
    """A JAX kernel run in JAX's x64 mode: without it, float64 inputs compute in float32."""

    def __init__(self, kernel):
        self.kernel, self.module, self.path = kernel, kernel.module, getattr(kernel, "path", None)

    def loss(self, *args):
        import jax

        with jax.enable_x64(True):
            return self.kernel.loss(*args)

    def loss_and_grads(self, *args):
        import jax

        with jax.enable_x64(True):
            J, grads = self.kernel.loss_and_grads(*args)
            return J, {name: np.asarray(g) for name, g in grads.items()}


def _kernel_grads(kernel, params, X, Y, shapes):
    """The kernel's cost and gradients (float64), and a Mismatch for each malformed one."""
    cost, grads = kernel.loss_and_grads(params, X, Y)
    out, bad = {}, []
    for name, shape in shapes.items():
        if name not in grads:
            bad.append(Mismatch(name, "kernel", hint="the kernel returned no gradient for it"))
            continue
        g = np.asarray(grads[name])
        if g.shape != shape:
            why = f"the kernel's gradient has shape {g.shape}, the parameter {shape}"
            if g.ndim == 2 and g.shape == shape[::-1]:
                why += " (transposed?)"
            bad.append(Mismatch(name, "kernel", hint=why))
            continue
        out[name] = g.astype(np.float64)
    extra = sorted(set(grads) - set(shapes))
    if extra:
        bad.append(Mismatch(", ".join(extra), "kernel", hint="gradients of no parameter"))
    return float(cost), out, bad


def _fd_route(kernel, params, X, Y, grads, columns, t, scale, noise, mode, seed, batch):
    """Fill ``columns[name]["FD"]``; in fast mode return gradcheck's findings as well."""
    X64 = X.astype(np.float64) if X.dtype.kind == "f" else X
    Y64 = Y.astype(np.float64) if Y.dtype.kind == "f" else Y
    ev = fd.Evaluator(
        lambda p: kernel.loss(p, X64, Y64), {n: x.astype(np.float64) for n, x in params.items()}
    )
    f0 = ev.base()
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
            return t.rtol * np.abs(est.value) + t.atol * scale + noise[name] + FD_FACTOR * est.error

        # entries that look like a kink, or disagree, are looked at again with smaller steps
        est = fd.entry_estimates(ev, name, idx, f0)
        suspect = est.kink | ~(np.abs(a[idx] - est.value) <= bound_of(est))
        est = fd.refine(ev, name, idx, f0, est, suspect)
        columns[name]["FD"] = _Column(idx, est.value, bound_of(est), est.kink.astype(bool))
    return findings


def _judge(name, shape, g, cols: dict[str, _Column], finding, batch, top, zero):
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
    worst = _index(_unravel(int(np.argmax(ratio)), shape)) if shape and ratio.max() >= 0 else "-"
    if found:
        verdict = f"MISMATCH ({' and '.join(m.route for m in found)})"
    elif kinks and not shape:
        verdict = "kink"
    elif kinks:
        listed = ", ".join(_index(i) for i in kinks[:MAX_KINKS])
        more = f" (+{len(kinks) - MAX_KINKS} more)" if len(kinks) > MAX_KINKS else ""
        verdict = f"kink{'s' if len(kinks) > 1 else ''} at {listed}{more}"
    else:
        verdict = "ok"
    return Row(name, shape, jax_abs, jax_rel, fd_abs, fd_rel, worst, verdict), found, kinks


def _hint(k, col: _Column, fails, shape, batch, route) -> str:
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


def _about(model) -> str:
    parts = []
    if model.kind != "expr":
        if model.activation and model.kind != "logreg":
            parts.append(f"{model.activation} hidden")
        if model.output:
            parts.append(f"{model.output} output")
        if model.loss:
            parts.append(f"{model.loss} loss")
    return ", ".join(parts + [f"{model.level} level"])


# ---------------------------------------------------------------------------- report


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1e}"


def _align(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _render(v: Verification) -> str:
    t = TOLERANCES[v.dtype]
    fd_how = "every entry" if v.fd_mode == "exact" else "projections + sampled entries (note)"
    lines = [
        f"backprop check {v.model} ({v.about})",
        *([f"  kernel: {v.kernel_file}"] if v.kernel_file else []),
        f"  {v.dtype}, batch {v.batch}, seed {v.seed}",
        f"  JAX {v.jax_version}: jax.grad of the forward graph, float64",
        f"  FD: finite differences of the kernel's loss, float64, {fd_how}",
        f"  cost J: kernel {v.cost_kernel:.12g}, JAX {v.cost_jax:.12g}",
        "",
    ]
    table = [("param", "shape", "JAX abs", "JAX rel", "FD abs", "FD rel", "worst", "verdict")]
    for r in v.rows:
        cells = (r.jax_abs, r.jax_rel, r.fd_abs, r.fd_rel)
        table.append((r.name, str(r.shape), *map(_num, cells), r.worst, r.verdict))
    lines += _align(table)
    lines.append("")
    lines += [f"  {m}" for m in v.mismatches]
    for note in v.notes:
        lines += textwrap.wrap(note, 96, initial_indent="  note: ", subsequent_indent="    ")
    lines += [
        "  abs = max |kernel - ref|, rel = abs / max |JAX gradient| (per parameter)",
        "  tolerance: |kernel - ref| <= rtol |ref| + atol max|grad| + rounding noise"
        f" (+ {FD_FACTOR:g} fd_error for FD)",
        f"    JAX rtol {t['JAX'].rtol:.0e}, atol {t['JAX'].atol:.0e};"
        f" FD rtol {t['FD'].rtol:.0e}, atol {t['FD'].atol:.0e}",
    ]
    if v.timings:
        lines.append("  time: " + ", ".join(f"{k} {s:.2f} s" for k, s in v.timings.items()))
    if v.ok:
        n = len(v.kinks)
        kinks = f" ({n} kink{'s' if n > 1 else ''}: not {'failures' if n > 1 else 'a failure'})"
        kinks = kinks if n else ""
        lines.append(f"ok: kernel, JAX and FD agree{kinks}")
    else:
        n = len(v.mismatches)
        lines.append(f"MISMATCH: {n} disagreement{'s' if n > 1 else ''} with the kernel")
    return "\n".join(lines)


__all__ = [
    "TOLERANCES",
    "Mismatch",
    "Row",
    "Tolerance",
    "Verification",
    "data_shapes",
    "sample_data",
    "sample_params",
    "target_kind",
    "verify",
]
