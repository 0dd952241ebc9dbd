"""What a verification found: one :class:`Row` per parameter, every :class:`Mismatch`, and
the :class:`Verification` that holds them (``.ok``, ``.rows``, ``.mismatches``, ``.report()``).

The report's text is printed apart, by :mod:`numeric.verification.report`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .report import render


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
        where = f"{self.param}{index_text(self.index)}"
        text = (
            f"{self.param}: {self.route} disagrees at {self.count:,} of {self.size:,} entries; "
            f"worst {where}: kernel {self.kernel:.10g}, {self.route} {self.reference:.10g}"
        )
        return text + (f"\n    hint: {self.hint}" if self.hint else "")


@dataclass(frozen=True)
class Verification:
    """Outcome of :func:`numeric.verify`: the table (``rows``), what disagreed, and how it
    was run.

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
        return render(self)

    def __str__(self) -> str:
        return self.report()


def index_text(index: tuple[int, ...]) -> str:
    """An entry's index as it is written after the parameter's name: ``[1, 2]``, or ""."""
    return f"[{', '.join(map(str, index))}]" if index else ""


__all__ = ["Mismatch", "Row", "Verification", "index_text"]
