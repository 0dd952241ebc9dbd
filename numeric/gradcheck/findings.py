"""What a gradient check found, and the report that says it.

:class:`Tolerance` (when an entry passes), :class:`EntryFinding` (one entry that failed, had
a kink or is not finite), :class:`ParamFinding` (one parameter tensor), :class:`GradcheckResult`
(the whole check) and the plain-text report ``GradcheckResult.report()`` renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .hints import Hint

#: How many finite-difference error estimates an entry may be off before it fails.
FD_FACTOR = 3.0
#: Failing entries listed per parameter in the report.
MAX_LISTED = 5


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
    # the largest one-entry error that could still pass (absolute, and as a fraction of the
    # entry where that is largest): what a passing check could not have seen
    blind_abs: float = math.nan
    blind_rel: float = math.nan

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass(frozen=True)
class GradcheckResult:
    """Outcome of :func:`numeric.check_gradients`; ``str(result)`` is the report."""

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


def align_columns(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    """Rows of cells as text lines, each column as wide as its widest cell."""
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
    return align_columns(rows, "    ")


def _blind_spot(p: ParamFinding) -> str:
    """What a passing tensor's check could have missed, from its error bars."""
    if not np.isfinite(p.blind_abs):
        return ""
    rel = ""
    if np.isfinite(p.blind_rel):
        share = f"{p.blind_rel:.0%}" if p.blind_rel >= 0.01 else f"{p.blind_rel:.0e}"
        rel = f" ({share} of the entry where that is most)"
    return f"could miss: an error < {p.blind_abs:.1e} in one entry{rel}"


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
    param_lines = align_columns([_param_line(p) for p in r.params])
    for p, line in zip(r.params, param_lines, strict=True):
        lines.append(line)
        if p.hint is not None:
            lines.append(f"    hint: {p.hint}")
        if p.note:
            lines.append(f"    note: {p.note}")
        if p.ok and _blind_spot(p):
            lines.append(f"    {_blind_spot(p)}")
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
        loss = r.repro.removeprefix("assert_gradients(").split(",")[0]
        if worst is not None:
            lines.append(
                f"  numeric side of {worst.where}: "
                "numeric.gradcheck.finite_diff.partial_derivative("
                f"{loss if loss != 'None' else 'loss_fn'}, params, {worst.name!r}, {worst.index})"
            )
    return "\n".join(lines)
