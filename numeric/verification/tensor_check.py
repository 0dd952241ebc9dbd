"""The check of a tensor network's generated kernel, route by route, every route in float64:

1. **JAX**: the same layers written with JAX's own primitives (``lax.conv_general_dilated``,
   ``lax.reduce_window``) through ``jax.value_and_grad`` (:mod:`.tensor_route`), every entry;
2. **FD**: central differences of the kernel's own loss, a sample of entries per parameter;
3. **closed form**: the derivation itself evaluated (:mod:`.tensor_closed_form`): each op's
   index-level definition and the backward rules SymPy derived from it, chained in one reverse
   sweep, every entry.

:func:`check_tensor_network` is what ``numeric.verify(net)`` and ``backprop check net.py`` run
for a tensor network; its :class:`TensorCheck` has ``.ok``, ``.rows`` (one :class:`TensorRow`
per parameter), ``.disagreeing(name)`` and ``.report()``, like a Model's ``Verification``.

    python -m numeric.verification.tensor_check examples/mnist_convnet.py [--dtype float32]
"""

from __future__ import annotations

import argparse
import runpy
import sys
from dataclasses import dataclass

import numpy as np

from derive.errors import BackpropInputError

from .results import Mismatch

ROUTES = ("JAX", "FD", "closed form")
# the kernel against a float64 reference, relative to the parameter's largest entry
RTOL = {"float64": 1e-8, "float32": 2e-4}


@dataclass(frozen=True)
class TensorRow:
    """One parameter: the largest ``|kernel - route|`` per route, absolute and relative to the
    parameter's largest JAX entry (``errors[route] = (abs, rel)``), and the routes that
    disagree with the kernel (``failed``)."""

    name: str
    shape: tuple
    errors: dict
    failed: tuple = ()

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else f"MISMATCH ({', '.join(self.failed)})"


@dataclass(frozen=True)
class TensorCheck:
    """A tensor network's check: one :class:`TensorRow` per parameter, the cost by every
    route (``costs``: the kernel's and each reference's), each disagreement (``mismatches``:
    how many entries, the worst), ``ok`` when every route agrees."""

    spec: str
    dtype: str
    batch: int
    seed: int
    costs: dict
    rows: tuple
    cost_failed: tuple = ()
    mismatches: tuple = ()  # a numeric.verification.Mismatch per route and parameter
    notes: tuple = ()

    @property
    def ok(self) -> bool:
        return not self.cost_failed and all(row.ok for row in self.rows)

    @property
    def model(self) -> str:
        """The network's spec, as a Model's ``Verification.model`` is."""
        return self.spec

    def row(self, name: str) -> TensorRow:
        return next(row for row in self.rows if row.name == name)

    def disagreeing(self, name: str) -> set[str]:
        """The routes that disagree with the kernel on parameter ``name`` (``"cost"``: on the
        cost)."""
        return set(self.cost_failed if name == "cost" else self.row(name).failed)

    def report(self) -> str:
        costs = ", ".join(f"{route} {value:.8g}" for route, value in self.costs.items()
                          if route != "kernel")  # fmt: skip
        lines = [
            f"check of {self.spec}",
            f"  batch {self.batch}, seed {self.seed}, {self.dtype}; cost {self.costs['kernel']:.8g}"
            f" ({costs})",
            "",
        ]
        header = ("param", "shape")
        for route in ROUTES:
            header += (f"|kernel-{route.replace('closed form', 'CF')}|", "rel")
        table = [header + ("verdict",)]
        for row in self.rows:
            cells = [f"{value:.1e}" for route in ROUTES for value in row.errors[route]]
            table.append((row.name, str(row.shape), *cells, row.verdict))
        if self.cost_failed:
            table.append(("cost", "()", *[""] * 2 * len(ROUTES),
                          f"MISMATCH ({', '.join(self.cost_failed)})"))  # fmt: skip
        widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
        for row in table:
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        lines.append("")
        lines += [str(mismatch) for mismatch in self.mismatches]
        lines += [f"note: {note}" for note in self.notes]
        if self.ok:
            lines.append("OK: the kernel agrees with JAX, finite differences and the closed form")
        else:
            lines.append("MISMATCH: see the rows above")
        lines.append("  (CF: the closed form, the derived backward rules evaluated entry by entry)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def check_tensor_network(
    model, dtype="float64", batch=4, seed=0, kernel=None, fd_entries=6, *, params=None, data=None
) -> TensorCheck:
    """Draw parameters, data and dropout masks for ``model`` (a TensorNetwork) from ``seed``
    (or take ``params`` and ``data=(X, Y)``); compare the kernel's loss and gradients, computed
    in ``dtype``, with JAX's, with central differences and with the closed form.

    ``kernel`` (a module or :class:`numeric.Kernel` with ``loss`` and ``loss_and_grads``)
    defaults to the generated one. Never raises on a wrong gradient: see ``.ok``."""
    from numeric.generator.tensor_kernel import tensor_kernel
    from numeric.tensor_strategies import sample_batch

    from .run import check_options
    from .tensor_closed_form import closed_form_loss_and_grads
    from .tensor_route import jax_loss_and_grads

    dtype = check_options(dtype, batch, seed, RTOL)
    kernel = tensor_kernel(model) if kernel is None else _checked_kernel(model, kernel)
    drawn, X, Y, masks = sample_batch(model, batch if data is None else len(data[0]), seed, 1.0)
    drawn = {name: value * _scale(value.shape) for name, value in drawn.items()}
    params = _checked_params(model, drawn if params is None else params)
    if data is not None:
        X, Y = (np.asarray(a, dtype=np.float64) for a in data)
    cast = {k: v.astype(dtype) for k, v in params.items()}
    extra = (masks,) if masks is not None else ()
    value, grads = kernel.loss_and_grads(cast, X.astype(dtype), Y.astype(dtype), *extra)
    references = {
        "JAX": jax_loss_and_grads(model, params, X, Y, masks),
        "closed form": closed_form_loss_and_grads(model, params, X, Y, masks),
    }
    rtol = RTOL[dtype]
    # one rounding of the model's largest gradient: a float32 entry far below it (attention's
    # query weights at 2e-7 beside 0.2) is computed from terms of that size, and cannot be
    # closer to float64 than their rounding (1e-10 off there, 5e-4 of itself)
    floor = np.finfo(dtype).eps * max(float(np.abs(g).max(initial=0)) for g in
                                      references["JAX"][1].values())  # fmt: skip
    noise = _rounding_noise(model, params, X, Y, masks, references["JAX"][1], dtype)
    rng = np.random.default_rng(seed)
    rows, mismatches = [], []
    for name, shape in model.param_shapes().items():
        entries = [tuple(int(rng.integers(0, s)) for s in shape) for _ in range(fd_entries)]
        fd = _central(kernel, params, X, Y, extra, name, entries)
        wanted = {route: ref[1][name] for route, ref in references.items()}
        got = np.asarray(grads[name], dtype=np.float64)
        row, found = _compare(name, got, wanted, (entries, fd), (rtol, floor + noise[name]),
                              len(X))  # fmt: skip
        rows.append(row)
        mismatches += found
    costs = {"kernel": float(value)} | {route: ref[0] for route, ref in references.items()}
    cost_failed = tuple(route for route, ref in references.items()
                        if not abs(value - ref[0]) <= rtol * max(1.0, abs(ref[0])))  # fmt: skip
    notes = []
    if masks is not None:
        notes.append(f"dropout: every route takes the same seeded keep masks ({', '.join(masks)})")
    if dtype != "float64":
        notes.append(f"the {dtype} kernel is judged against float64 references")
    return TensorCheck(model.source, dtype, len(X), seed, costs, tuple(rows), cost_failed,
                       tuple(mismatches), tuple(notes))  # fmt: skip


def _rounding_noise(model, params, X, Y, masks, reference, dtype) -> dict[str, float]:
    """What finite precision costs this very computation, per parameter, as the dense check
    measures it (:data:`.tolerances.NOISE_FACTOR`): JAX's float32 gradients against its
    float64 ones, scaled to ``dtype``. A bias gradient that is the sum of softmax outputs
    near 0.5 minus their one-hot targets, cancelling to 3e-5, is off by a rounding of 0.5
    (3e-8, 1e-3 of itself), far above a rounding of the model's largest gradient."""
    from .run import _spread
    from .tensor_route import jax_loss_and_grads
    from .tolerances import NOISE_FACTOR

    _, grads_32 = jax_loss_and_grads(model, params, X, Y, masks, dtype="float32")
    shrink = np.finfo(dtype).eps / np.finfo(np.float32).eps
    return {name: NOISE_FACTOR * shrink * _spread(grads_32[name], reference[name])
            for name in reference}  # fmt: skip


def _compare(name, got, wanted: dict, sampled, tolerance, batch):
    """The kernel's gradient ``got`` against each reference over every entry (``wanted``:
    route -> array) and against the finite differences at the ``sampled`` entries (``(entries,
    values)``), within ``(rtol, floor)``: rtol of the parameter's largest entry, plus the
    rounding floor of the whole model's. The parameter's row, and a Mismatch for each route
    that disagrees (count, worst entry, and the pattern when a route covers every entry: x2,
    sign, transpose, ...)."""
    entries, fd = sampled
    rtol, floor = tolerance
    scale = max(float(np.abs(wanted["JAX"]).max()), 1e-300)
    every = np.arange(got.size)
    sampled = np.array([np.ravel_multi_index(entry, got.shape) for entry in entries])
    columns = {
        "JAX": (every, wanted["JAX"].ravel(), rtol * scale + floor + 1e-12),
        "FD": (sampled, np.asarray(fd, dtype=np.float64), 1e-5 * scale + 1e-7),
        "closed form": (every, wanted["closed form"].ravel(), rtol * scale + floor + 1e-12),
    }
    errors, found = {}, []
    for route, (where, want, bound) in columns.items():
        have = got.ravel()[where]
        diff = np.abs(have - want)
        errors[route] = (float(diff.max()), float(diff.max()) / scale)
        bad = ~(diff <= bound)  # a NaN is a disagreement
        if bad.any():
            worst = int(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0)))
            index = tuple(int(i) for i in np.unravel_index(where[worst], got.shape))
            hint = _hint(got, want, bad, bound, batch, route) if len(where) == got.size else ""
            found.append(Mismatch(name, route, int(bad.sum()), len(where), index,
                                  float(have[worst]), float(want[worst]), hint))  # fmt: skip
    return TensorRow(name, got.shape, errors, tuple(m.route for m in found)), found


def _hint(got, want, bad, bound, batch, route) -> str:
    """gradcheck's name for the pattern of the wrong entries, in the words of this check."""
    from numeric.gradcheck.hints import diagnose

    if not (np.all(np.isfinite(got)) and np.all(np.isfinite(want))):
        return ""
    hint = diagnose(got, want.reshape(got.shape), bad.reshape(got.shape),
                    np.full(got.shape, bound), batch)  # fmt: skip
    return "" if hint is None else str(hint).replace("analytic", "kernel").replace("numeric", route)


def _scale(shape) -> float:
    """A weight's draw over the square root of its fan-in (the inputs each output reads), so
    that activations stay near 1 and the softmax is not saturated (gradients not ~0); 0.3 for
    a bias."""
    return 1 / np.sqrt(np.prod(shape[:-1])) if len(shape) > 1 else 0.3


def _checked_kernel(model, kernel):
    """``kernel`` if its PARAMS are the network's (a JAX kernel run in x64 mode)."""
    from .run import _X64, params_difference

    module = getattr(kernel, "module", kernel)
    shapes = {name: tuple(shape) for name, shape in getattr(module, "PARAMS", {}).items()}
    if shapes != model.param_shapes():
        name = getattr(kernel, "path", None) or "the kernel"
        raise BackpropInputError(
            f"{name} is not a kernel for {model.source}: "
            f"{params_difference(shapes, model.param_shapes())}"
        )
    return _X64(kernel) if getattr(kernel, "target", "numpy") == "jax" else kernel


def _checked_params(model, params) -> dict:
    """``params`` as float64 arrays, with the names and shapes of the model's PARAMS."""
    wanted = model.param_shapes()
    if set(params) != set(wanted):
        raise BackpropInputError(
            f"params has {', '.join(params) or 'no names'}; the network's are {', '.join(wanted)}"
        )
    out = {name: np.asarray(params[name], dtype=np.float64) for name in wanted}
    for name, shape in wanted.items():
        if out[name].shape != shape:
            raise BackpropInputError(f"params[{name!r}] has shape {out[name].shape}, not {shape}")
    return out


def _central(kernel, params, X, Y, extra, name, entries, h=1e-6):
    """``(L(p + h) - L(p - h)) / 2h`` of the kernel's float64 loss at each entry."""
    out = []
    for entry in entries:
        values = []
        for step in (h, -h):
            moved = dict(params, **{name: params[name].copy()})
            moved[name][entry] += step
            values.append(kernel.loss(moved, X, Y, *extra))
        out.append((values[0] - values[1]) / (2 * h))
    return out


def load_model(path: str):
    """The ``model`` a Python file defines (the file is the user's own program: it runs)."""
    try:
        scope = runpy.run_path(path, run_name="__model__")
    except FileNotFoundError as err:
        raise BackpropInputError(f"no such model file: {path!r}") from err
    if "model" not in scope:
        raise BackpropInputError(f"{path} defines no 'model' (a network or Model)")
    return scope["model"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="check a tensor network's generated kernel")
    parser.add_argument("file", help="a Python file defining `model`")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        result = check_tensor_network(load_model(args.file), args.dtype, args.batch, args.seed)
    except BackpropInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.report())
    return 0 if result.ok else 1


__all__ = ["ROUTES", "TensorCheck", "TensorRow", "check_tensor_network", "load_model", "main"]


if __name__ == "__main__":
    sys.exit(main())
