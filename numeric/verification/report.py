"""The plain-text report of a :class:`~numeric.verification.results.Verification`, as
``backprop check`` prints it: a header, one aligned line per parameter, what disagreed, the
notes and tolerances, and the verdict.
"""

from __future__ import annotations

import math
import textwrap

from numeric.gradcheck.findings import align_columns

from .tolerances import FD_FACTOR, TOLERANCES


def render(v) -> str:
    """The whole report of the Verification ``v`` (``Verification.report()`` returns it)."""
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
    lines += align_columns(table)
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


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1e}"


__all__ = ["render"]
