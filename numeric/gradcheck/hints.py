"""Say what shape a gradient error has, so the person can find the line that made it.

Wrong gradients are rarely random: a term is off by a constant factor (x2, a sign, a missing
1/m), a matrix is transposed, or whole rows or columns are wrong (one unit, one example, one
output). :func:`diagnose` looks at the analytic and numeric gradient of one tensor and names
the first pattern that explains every failing entry; :func:`ratio_hint` words a constant
ratio. Both only describe; the caller decides what fails.

Example:
    >>> import numpy as np
    >>> n = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> str(diagnose(-n, n, np.ones((2, 2), bool), np.full((2, 2), 1e-9)))
    'analytic = -1 × numeric: a sign flip'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative closeness for calling a ratio "exactly" 2, 1/2, an integer, ...
RATIO_RTOL = 1e-3


@dataclass(frozen=True)
class Hint:
    """A named error pattern (``kind``) and the sentence that explains it (``message``).

    ``ratio`` is set when analytic = ratio × numeric on the entries the hint covers.
    """

    kind: str
    message: str
    ratio: float | None = None

    def __str__(self) -> str:
        return self.message


def _close(x: float, target: float) -> bool:
    return abs(x - target) <= RATIO_RTOL * abs(target)


def _integer(x: float) -> bool:
    """``x`` is a whole number, to within 0.01 absolute: any ratio above 1000 is within
    RATIO_RTOL of one, and 16001.3 is no batch size."""
    return round(x) != 0 and abs(x - round(x)) <= min(RATIO_RTOL * abs(x), 0.01)


def _fmt(r: float) -> str:
    return f"{r:.0f}" if _integer(r) else f"{r:.4g}"


def ratio_hint(r: float, batch_size: int | None = None, where: str = "") -> Hint:
    """Explain ``analytic = r × numeric`` (``where`` prefixes the scope, e.g. "row 2: ").

    >>> ratio_hint(128.0).message.split(": ")[1]
    'a constant factor 128 (a missing 1/m if 128 is your batch size; pass batch_size)'
    >>> ratio_hint(128.0, batch_size=128).message
    'analytic = 128 × numeric: the 1/m of the batch mean is missing (batch_size = 128)'
    """
    head = f"{where}analytic = {_fmt(r)} × numeric: "
    sign = "a sign flip and " if r < 0 else ""
    a = abs(r)
    if _close(r, -1.0):
        return Hint("sign", f"{head}a sign flip", r)
    if batch_size and batch_size > 1 and _close(a, batch_size):
        why = f"the 1/m of the batch mean is missing (batch_size = {batch_size})"
        return Hint("missing_1/m", head + sign + why, r)
    if batch_size and batch_size > 1 and _close(a, 1 / batch_size):
        why = f"divided by m twice? (batch_size = {batch_size})"
        return Hint("extra_1/m", head + sign + why, r)
    # without a batch size to compare with, a factor is only a factor: say what it would
    # mean, not that it is so (a missing 1/sqrt(d) with d = 4 is also x2)
    if _close(a, 2.0):
        return Hint("x2", head + sign + "off by ×2 (a factor 2 or ½ dropped somewhere?)", r)
    if _close(a, 0.5):
        return Hint("x1/2", head + sign + "off by ×½ (a factor 2 or ½ dropped somewhere?)", r)
    if a > 2 and _integer(a):
        m = round(a)
        why = f"a constant factor {m} (a missing 1/m if {m} is your batch size; pass batch_size)"
        return Hint("factor", head + sign + why, r)
    if a < 0.5 and _integer(1 / a):
        m = round(1 / a)
        head = f"{where}analytic = numeric / {_fmt(m * np.sign(r))}: "
        why = f"a constant factor 1/{m} (an extra 1/m if {m} is your batch size)"
        return Hint("factor", head + sign + why, r)
    if r < 0:
        return Hint("sign", head + "a sign flip and a constant factor", r)
    return Hint("scale", head + "a constant factor", r)


def _ratio_fits(a, n, bound, mask) -> float | None:
    """The constant r with a ≈ r·n on ``mask`` (within r·bound), or None."""
    sig = mask & (np.abs(n) > bound)
    if not sig.any():
        return None
    r = float(np.median(a[sig] / n[sig]))
    if not np.isfinite(r) or r == 0 or _close(r, 1.0):
        return None
    ok = np.abs(a[mask] - r * n[mask]) <= abs(r) * bound[mask] + RATIO_RTOL * np.abs(a[mask])
    return r if ok.all() else None


def _lines(mask_2d: np.ndarray, axis: int) -> np.ndarray:
    """Indices of rows (axis=1) or columns (axis=0) that hold every failing entry."""
    return np.flatnonzero(mask_2d.any(axis=axis))


def _idx_list(ix: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(str(i) for i in ix[:limit])
    return f"[{shown}{', ...' if len(ix) > limit else ''}]"


def _line_hint(a, n, fails, bound, batch_size) -> Hint | None:
    """Whole rows or columns wrong, the rest right (2-D tensors)."""
    for axis, word in ((1, "row"), (0, "column")):
        lines = _lines(fails, axis)
        total = fails.shape[1 - axis]
        if len(lines) == 0 or len(lines) == fails.shape[1 - axis] or total < 2:
            continue
        block = np.take(fails, lines, axis=1 - axis)
        sig = np.take(np.abs(n) > bound, lines, axis=1 - axis) | block
        if block.sum() < max(2, 0.5 * sig.sum()):
            continue
        where = f"{word}{'s' if len(lines) > 1 else ''} {_idx_list(lines)}"
        line_mask = np.zeros_like(fails)
        if axis == 1:
            line_mask[lines, :] = True
        else:
            line_mask[:, lines] = True
        r = _ratio_fits(a, n, bound, line_mask)
        msg = f"{where} wrong, all other {word}s right"
        if r is not None:
            on = "them" if len(lines) > 1 else "it"
            msg += f"; on {on}: " + ratio_hint(r, batch_size).message
        return Hint(f"{word}s", msg, r)
    return None


def diagnose(analytic, numeric, fails, bound, batch_size: int | None = None) -> Hint | None:
    """Name the pattern of the failing entries of one tensor, or None if there is none.

    ``fails`` marks failing entries and ``bound`` is each entry's tolerance; entries whose
    numeric value is below its tolerance carry no information about a ratio.

    >>> n = np.arange(1.0, 7.0).reshape(2, 3)
    >>> a = n.copy(); a[1] *= 2
    >>> diagnose(a, n, a != n, np.full(n.shape, 1e-9)).kind
    'rows'
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    fails = np.asarray(fails, dtype=bool)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), a.shape)
    if not fails.any():
        return None
    if np.all(a[fails] == 0) and fails.sum() > 1:
        return Hint(
            "zero",
            "analytic is exactly 0 where numeric is not: a term never "
            "computed or never written back?",
        )
    everywhere = fails | (np.abs(n) > bound)
    r = _ratio_fits(a, n, bound, everywhere)
    if r is not None and fails.sum() > 1:
        return ratio_hint(r, batch_size)
    if a.ndim == 2 and a.shape[0] == a.shape[1] > 1:
        if np.all(np.abs(a - n.T) <= bound + bound.T):
            return Hint(
                "transpose",
                "analytic = numeric.T: a transposed product "
                "(e.g. dZ.T @ A_prev instead of A_prev.T @ dZ)?",
            )
    if a.ndim == 2 and fails.sum() > 1:
        hint = _line_hint(a, n, fails, bound, batch_size)
        if hint is not None:
            return hint
    if fails.sum() == 1 and a.size > 1:
        (i,) = np.flatnonzero(fails)
        idx = np.unravel_index(i, a.shape)
        idx_s = ", ".join(str(int(j)) for j in idx)
        r1 = a.flat[i] / n.flat[i] if n.flat[i] != 0 else np.inf
        ratio = f" (analytic/numeric = {r1:.4g})" if np.isfinite(r1) else ""
        return Hint(
            "single",
            f"only entry [{idx_s}] is wrong{ratio}, all others right: "
            "an indexing slip or a stray in-place update?",
        )
    r = _ratio_fits(a, n, bound, fails)
    if r is not None:
        return ratio_hint(r, batch_size, where="on the failing entries, ")
    return None
