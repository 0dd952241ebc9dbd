"""The check of a tensor network's generated kernel, route by route: JAX's own primitives
through ``jax.value_and_grad`` (every gradient entry), and central finite differences of the
kernel's own loss in float64 (a sample of entries per parameter). The closed-form route of the
dense models (the derivation evaluated entry by entry) is the SymPy check of each op's rule at
small sizes (tests/test_conv_derivation.py), not repeated per network.

    python -m numeric.verification.tensor_check examples/mnist_convnet.py [--dtype float32]
"""

from __future__ import annotations

import argparse
import runpy
import sys
from dataclasses import dataclass

import numpy as np

from derive.errors import BackpropInputError


@dataclass(frozen=True)
class TensorCheck:
    """One row per parameter: the largest kernel-minus-route error, absolute and relative to
    the parameter's largest JAX entry, for JAX and FD; ``ok`` when every row is in tolerance."""

    spec: str
    dtype: str
    batch: int
    cost: tuple  # (kernel, JAX)
    rows: list

    @property
    def ok(self) -> bool:
        return all(row[-1] == "ok" for row in self.rows)

    def report(self) -> str:
        lines = [
            f"check of {self.spec}",
            f"  batch {self.batch}, {self.dtype}; cost {self.cost[0]:.8g} (JAX {self.cost[1]:.8g})",
            "",
        ]
        header = ("param", "shape", "|kernel-JAX|", "rel", "|kernel-FD|", "rel", "verdict")
        table = [header] + [
            (name, str(shape), f"{ja:.1e}", f"{jr:.1e}", f"{fa:.1e}", f"{fr:.1e}", verdict)
            for name, shape, ja, jr, fa, fr, verdict in self.rows
        ]
        widths = [max(len(row[k]) for row in table) for k in range(len(header))]
        for row in table:
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        lines += ["", "OK: the kernel agrees with JAX and finite differences" if self.ok else
                  "MISMATCH: see the rows above"]  # fmt: skip
        return "\n".join(lines)


def check_tensor_network(model, dtype="float64", batch=4, seed=0, kernel=None, fd_entries=6):
    """Draw parameters, data and dropout masks for ``model``; compare the kernel's loss and
    gradients with JAX's and with central differences. Returns a :class:`TensorCheck`."""
    from numeric.generator.tensor_kernel import tensor_kernel
    from numeric.tensor_strategies import sample_batch

    from .tensor_route import jax_loss_and_grads

    if batch < 1:
        raise BackpropInputError(f"batch must be a positive integer, got {batch}")
    kernel = kernel or tensor_kernel(model)
    params, X, Y, masks = sample_batch(model, batch, seed, scale=0.3)
    cast = {k: v.astype(dtype) for k, v in params.items()}
    extra = (masks,) if masks is not None else ()
    value, grads = kernel.loss_and_grads(cast, X.astype(dtype), Y.astype(dtype), *extra)
    jax_value, jax_grads = jax_loss_and_grads(model, params, X, Y, masks)
    rtol = 1e-8 if dtype == "float64" else 2e-4
    rng = np.random.default_rng(seed)
    rows = []
    for name in model.param_shapes():
        want = jax_grads[name]
        got = np.asarray(grads[name], dtype=np.float64)
        scale = max(float(np.abs(want).max()), 1e-300)
        jax_abs = float(np.abs(got - want).max())
        entries = [tuple(int(rng.integers(0, s)) for s in want.shape) for _ in range(fd_entries)]
        fd = _central(kernel, params, X, Y, extra, name, entries)
        fd_abs = max(abs(got[e] - f) for e, f in zip(entries, fd))
        ok = jax_abs <= rtol * scale + 1e-12 and fd_abs <= 1e-5 * scale + 1e-7
        rows.append((name, want.shape, jax_abs, jax_abs / scale, fd_abs, fd_abs / scale,
                     "ok" if ok else "MISMATCH"))  # fmt: skip
    cost_ok = abs(value - jax_value) <= rtol * max(1.0, abs(jax_value))
    if not cost_ok:
        rows.append(("cost", (), abs(value - jax_value), 0.0, 0.0, 0.0, "MISMATCH"))
    return TensorCheck(model.source, dtype, batch, (value, jax_value), rows)


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


if __name__ == "__main__":
    sys.exit(main())
