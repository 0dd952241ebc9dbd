"""Verify a generated kernel: three independent routes to the gradient must agree.

The package exports :func:`verify` as ``numeric.verify``; this module holds it and the
route of the kernel itself, and re-exports the public names of its parts.

1. **kernel** — the generated NumPy kernel's ``loss_and_grads`` (backprop as derived);
2. **JAX** — ``jax.grad`` of the model's *forward* graph printed to ``jax.numpy``
   (:mod:`numeric.verification.jax_route`; never the derived gradients), in float64;
3. **FD** — finite differences of the kernel's own ``loss`` (:mod:`numeric.gradcheck.finite_diff`:
   Richardson 5-point stencils with error bars and one-sided slopes), in float64.

:func:`verify` draws parameters and a batch (seeded, shaped by the data contract of
DESIGN.md: :mod:`numeric.verification.samples`), runs the three routes and compares the kernel with
each reference, entry by entry (:mod:`numeric.verification.comparison`: the tolerances, and how an
entry is judged). The result, a :class:`Verification` (:mod:`numeric.verification.results`),
holds one :class:`Row` per parameter (the table of ``backprop check``), every
:class:`Mismatch`, the kinks, and ``report()`` (:mod:`numeric.verification.report`).

Models with more than ``gradcheck.EXACT_MAX_PARAMS`` parameters are differenced in the fast
mode of :func:`numeric.gradcheck.check.check_gradients` (random projections, bisection to the
wrong entries) plus, elementwise, the entries where the kernel is furthest from JAX and a
few random ones; JAX still covers every entry.

>>> import derive
>>> result = verify(derive.build("logreg:3", for_kernels=True), batch=4)
>>> result.ok, [row.name for row in result.rows], result.rows[0].verdict
(True, ['w', 'b'], 'ok')
"""

from __future__ import annotations

import math
import numbers
import time

import numpy as np

from derive.errors import BackpropInputError
from numeric.gradcheck import check as gradcheck

from .budget import check_bytes
from .comparison import (
    FAST_RANDOM,
    FAST_WORST,
    NOISE_FACTOR,
    ROUTES,
    TOLERANCES,
    Column,
    Tolerance,
    fd_columns,
    judge,
    route_bound,
)
from .jax_route import jax_gradients, jax_version
from .results import Mismatch, Row, Verification
from .samples import (
    check_data,
    check_params,
    data_shapes,
    draw_finite,
    sample_data,
    sample_masks,
    sample_params,
    target_kind,
)


def params_difference(found: dict, wanted: dict) -> str:
    """How a kernel's PARAMS differ from a model's: other names, or other shapes."""
    if set(found) != set(wanted):
        return f"its PARAMS are {', '.join(found)}; the model's are {', '.join(wanted)}"
    return "; ".join(
        f"{name} is {found[name]} in the kernel, {shape} in the model"
        for name, shape in wanted.items()
        if found[name] != shape
    )


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

    ``model`` may also be its Derivation (``model.derive()``). ``kernel`` defaults to
    ``numeric.codegen(model.derive())``; pass another (e.g. a
    deliberately broken one) to check that instead. Parameters (shapes from the kernel's
    ``PARAMS``) and a batch of ``batch`` examples are drawn from ``seed`` in ``dtype``,
    unless ``params`` / ``data=(X, Y)`` are given. Never raises on a wrong gradient: see
    ``.ok``, ``.rows``, ``.mismatches``, ``.report()``. Raises ``BackpropInputError`` (a
    ValueError) for a kernel of other parameters than the model's and for a model whose loss
    has no finite value at any draw; an exception raised by the kernel itself propagates as
    it is. Draws are made with the model's own kernel, so they do not depend on the kernel
    under test.

    A network on images or sequences (a ``TensorNetwork``) is checked by
    :func:`numeric.verification.tensor_check.check_tensor_network`, whose routes are the
    kernel, JAX's own primitives, finite differences and the closed form (the derived rules
    evaluated); it returns a ``TensorCheck`` (``.ok``, ``.rows``, ``.report()``).
    """
    from derive.tensor_network import TensorNetwork

    if isinstance(model, TensorNetwork):
        from .tensor_check import check_tensor_network

        return check_tensor_network(
            model, dtype, batch, seed, kernel, params=params, data=data
        )  # fmt: skip
    model = _model_of(model)
    dtype = check_options(dtype, batch, seed, TOLERANCES)
    check_bytes(model, batch if data is None else len(data[0]))  # refuse before any array
    from numeric.generator.generate import codegen

    timings: dict[str, float] = {}
    start = time.perf_counter()
    reference = None
    if kernel is None or params is None:
        reference = codegen(model.derive())
        timings["derive + codegen"] = time.perf_counter() - start
    kernel = reference if kernel is None else kernel
    if getattr(kernel, "target", "numpy") == "jax":
        kernel = _X64(kernel)
    shapes = {name: tuple(shape) for name, shape in kernel.module.PARAMS.items()}
    if shapes != model.param_shapes():
        name = getattr(kernel, "path", None) or "the kernel"
        raise BackpropInputError(
            f"{name} is not a kernel for {model.spec}: "
            f"{params_difference(shapes, model.param_shapes())}"
        )
    if data is not None:
        data = check_data(model, *data)
    if params is None:
        # the model's own kernel picks the draws: a kernel under test whose loss is never
        # finite is then a failed check (its NaN against JAX's value), not a model with no data
        params, X, Y = draw_finite(model, reference, shapes, dtype, batch, seed, data)
    else:
        X, Y = data if data is not None else sample_data(model, batch, dtype, seed)
    params = check_params(shapes, params)
    batch = X.shape[0]
    masks = sample_masks(model, batch, dtype, seed) or None
    if masks is not None:  # every route sees the same dropout masks
        kernel = _Masked(kernel, masks)
    tol = TOLERANCES[dtype]
    notes: list[str] = []

    start = time.perf_counter()
    cost_k, grads, mismatches = _kernel_grads(kernel, params, X, Y, shapes)
    cost_loss = float(kernel.loss(params, X, Y))
    timings["kernel"] = time.perf_counter() - start

    start = time.perf_counter()
    cost_j, jax_grads = jax_gradients(model, params, X, Y, masks=masks)
    cost_32, jax_32 = jax_gradients(model, params, X, Y, "float32", masks=masks)
    timings["JAX"] = time.perf_counter() - start
    scale = max((float(np.max(np.abs(g), initial=0.0)) for g in jax_grads.values()), default=0.0)
    shrink = np.finfo(dtype).eps / np.finfo(np.float32).eps
    noise = {
        name: NOISE_FACTOR * shrink * _spread(jax_32[name], jax_grads[name]) for name in shapes
    }

    cost_noise = NOISE_FACTOR * shrink * _spread(cost_32, cost_j)
    cost_bound = route_bound(tol["JAX"], max(abs(cost_j), abs(cost_k)), 0.0, cost_noise, dtype)
    for what, value in (("loss", cost_loss), ("loss_and_grads", cost_k)):
        if not abs(value - cost_j) <= cost_bound:
            mismatches.append(
                Mismatch("", "cost", 1, 1, (), value, cost_j, f"the kernel's {what}() gives")
            )

    columns: dict[str, dict[str, Column]] = {name: {} for name in grads}
    t = tol["JAX"]
    for name in grads:
        ref = jax_grads[name].reshape(-1)
        bound = route_bound(t, ref, scale, noise[name], dtype)
        columns[name]["JAX"] = Column(np.arange(ref.size), ref, bound, np.zeros(ref.size, bool))

    start = time.perf_counter()
    n_params = sum(math.prod(s) for s in shapes.values())
    fd_mode = gradcheck.choose_mode(n_params)
    projections = fd_columns(
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
        row, found, where = judge(
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
    if masks is not None:
        notes.append(
            f"dropout: every route takes the same seeded keep masks ({', '.join(masks)}), "
            "so the gradient checked is that of one deterministic function"
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


def check_options(dtype, batch, seed, allowed) -> str:
    """The dtype's name (``np.float32`` or ``"float32"``, one of ``allowed``), once the
    options are known good."""
    try:
        dtype = str(np.dtype(dtype))
    except TypeError:
        dtype = str(dtype)
    if dtype not in allowed:
        raise BackpropInputError(f"dtype must be one of {', '.join(allowed)}, got {dtype!r}")
    for name, value, low in (("batch", batch, 1), ("seed", seed, 0)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            what = "a positive" if low else "a non-negative"
            raise BackpropInputError(f"{name} must be {what} integer, got {value!r}")
    return dtype


def _model_of(model):
    """The Model to check: ``model`` itself, or the one a Derivation was derived from (so
    ``verify(model.derive())`` works too); a TypeError that says what to pass otherwise."""
    if hasattr(model, "param_shapes"):
        return model
    if hasattr(model, "model") and hasattr(model, "steps"):
        return _model_of(model.model)
    if isinstance(model, str):
        raise TypeError(
            f"verify takes a Model, not the text {model!r}: "
            f"verify(derive.build({model!r}, for_kernels=True))"
        )
    raise TypeError(f"verify takes a Model (derive.build(spec)), got {type(model).__name__}")


class _X64:
    """A JAX kernel run in JAX's x64 mode: without it, float64 inputs compute in float32."""

    def __init__(self, kernel):
        self.kernel, self.module, self.path = kernel, kernel.module, getattr(kernel, "path", None)

    def loss(self, *args, **kwargs):
        import jax

        with jax.enable_x64(True):
            return self.kernel.loss(*args, **kwargs)

    def loss_and_grads(self, *args, **kwargs):
        import jax

        with jax.enable_x64(True):
            J, grads = self.kernel.loss_and_grads(*args, **kwargs)
            return J, {name: np.asarray(g) for name, g in grads.items()}


class _Masked:
    """A kernel of a model with dropout, called with fixed keep masks: the routes compare
    the gradient of one deterministic function."""

    def __init__(self, kernel, masks):
        self.kernel, self.masks = kernel, masks
        self.module, self.path = kernel.module, getattr(kernel, "path", None)
        self.target = getattr(kernel, "target", "numpy")

    def loss(self, params, X, Y):
        return self.kernel.loss(params, X, Y, masks=self.masks)

    def loss_and_grads(self, params, X, Y):
        return self.kernel.loss_and_grads(params, X, Y, masks=self.masks)


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


def _spread(a, b) -> float:
    """Largest ``|a - b|`` over the entries where both are finite (0 if there are none)."""
    diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(np.max(diff[np.isfinite(diff)], initial=0.0))


def _about(model) -> str:
    return ", ".join([*model.choices(), f"{model.level} level"])


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
