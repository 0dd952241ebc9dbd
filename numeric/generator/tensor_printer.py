"""NumPy code for an index-level contraction (:class:`derive.index_calculus.Contraction`).

Each factor's indices say how to view its array: a plain index is an axis; ``s h + i`` is a
window (``sliding_window_view``, every ``s``-th position: im2col), or, where the windows
tile the axis (``i < s``), the axis split in two (a reshape into blocks); ``k - 1 - i`` is
the axis read backwards (a flipped kernel); ``(y W + x) C + c`` splits a flat axis (a
reshape). The views are then contracted by one matrix product where the letters allow it
(``A @ B``), by ``np.einsum`` otherwise; a target entry at ``(y W + x) C + c`` is the result
reshaped (flatten). A reduction other than the sum (a max) reduces the same views. Nothing
here knows which op it prints.

A rule over one row (a softmax, a loss, the softmax's backward) reads whole arrays through
:func:`row_rule`, its sums over the last axis (:class:`RowPrinter`).
"""

from __future__ import annotations

import sympy as sp
from sympy import Indexed

from .numpy_printer import NumPyPrinter

_LETTERS = "nhwoijcpqrvtuekabdfglmsxyz"


class ContractionPrinter:
    """``names``: array base -> variable name; ``sizes``: size symbol -> number (the batch
    size ``m`` stays a name); ``windows``: the variable holding each windowed view already
    printed, so that a view (an im2col copy) is made once and reused."""

    def __init__(self, names: dict, sizes: dict):
        self.names, self.sizes = names, sizes
        self.windows: dict[str, str] = {}
        self.setup: list[str] = []  # lines that must run before the returned expression
        self.im2col = None  # a target's own windows(code, shape, axes, steps, rank, tail)
        self.xp = "np"  # the array module's name in the printed code
        # windows that tile an axis (stride = size) read as that axis reshaped into blocks,
        # not an im2col copy: for a reduction over each window (a pool)
        self.tiles = False

    def letters(self, contraction, target_shape) -> dict:
        targets = [ix for ix, _ in _target_axes(contraction.target, target_shape, self.sizes)]
        symbols = targets + [lim[0] for lim in contraction.limits]
        for factor in contraction.factors():
            found = sp.Add(*factor.indices).free_symbols - set(symbols) - set(self.sizes)
            symbols += sorted(found, key=str)
        letters, used = {}, set()
        for sym in dict.fromkeys(symbols):
            name = str(sym)
            if len(name) != 1 or name in used:
                name = next(x for x in _LETTERS if x not in used and x not in map(str, symbols))
            letters[sym] = name
            used.add(name)
        return letters

    def extents(self, contraction, target_shape) -> dict:
        extent = dict(_target_axes(contraction.target, target_shape, self.sizes))
        for index, lo, hi in contraction.limits:
            extent[index] = sp.sympify(hi - lo + 1).xreplace(self.sizes)
        return extent

    def code(self, contraction, target_shape, reduce: str = "sum") -> str:
        """The right-hand side as one NumPy expression (the setup lines go in ``setup``);
        ``reduce`` names the reduction over the summed indices (``"max"`` for a max pool)."""
        letters = self.letters(contraction, target_shape)
        extent = self.extents(contraction, target_shape)
        operands = [self.view(f, letters, extent) for f in contraction.factors()]
        axes = _target_axes(contraction.target, target_shape, self.sizes)
        out = "".join(letters[ix] for ix, _ in axes)
        lengths = {letters[ix]: _length(size) for ix, size in extent.items() if ix in letters}
        for _, subs in operands:  # window offsets and split axes have their own extents
            lengths.update({x: lengths.get(x, "-1") for x in subs})
        if reduce == "max" and len(operands) == 1:
            text = self._maximum(operands[0], out, lengths)
        elif reduce == "sum":
            text = _contract(operands, out, lengths, self.xp)
        else:
            raise NotImplementedError(f"no {reduce} of {contraction}")
        if len(axes) != len(target_shape):  # an entry at (y W + x) C + c: the result reshaped
            text = f"{text}.reshape({', '.join(map(str, target_shape))})"
        return _scaled(text, contraction.coefficient(), self.sizes)

    def _maximum(self, operand, out: str, lengths: dict) -> str:
        """The max over the letters ``out`` lacks (a window's few positions), one letter at a
        time, as ``maximum`` of that axis's slices; each letter's but the last goes into a
        named array. ``.max(axis=(2, 4))`` loops inside each short axis: the MNIST convnet's
        first pool (m = 128, float32, one core) took 6.2 ms so, 2.2 ms this way."""
        code, subs = operand
        for letter in [x for x in subs if x not in out]:
            lead = ":, " * subs.index(letter)
            slices = [f"{code}[{lead}{k}]" for k in range(int(lengths[letter]))]
            text = slices[0]
            for part in slices[1:]:
                text = f"{self.xp}.maximum({text}, {part})"
            subs = subs.replace(letter, "")
            if all(x in out for x in subs):
                break
            code = f"{code.split('[')[0].removesuffix('_blocks')}_max_{letter}"
            self.setup.append(f"{code} = {text}  # the max over {letter}")
        if subs == out:
            return text
        return f"{text}.transpose({', '.join(str(subs.index(x)) for x in out)})"

    def view(self, factor: Indexed, letters: dict, extent: dict) -> tuple[str, str]:
        """``(code, subscripts)`` of one factor's array, viewed so that each axis is a letter."""
        code = self.names[factor.base.label.name]
        subs, window_axes, window_shape, window_letters, steps = [], [], [], [], []
        flips, splits, tiled = [], {}, False
        for axis, ix in enumerate(factor.indices):
            symbols = sorted(ix.free_symbols & set(letters), key=str)
            if ix in letters:
                subs.append(letters[ix])
            elif len(symbols) == 1 and sp.diff(ix, symbols[0]) == -1:
                flips.append(axis)
                subs.append(letters[symbols[0]])
            elif len(symbols) == 2 and 1 in [sp.diff(ix, sym) for sym in symbols]:
                inner, outer = _window_pair(ix, symbols, extent)
                if self.tiles and sp.diff(ix, outer).xreplace(self.sizes) == extent[inner]:
                    tiled = True  # stride = window: the windows tile the axis, a reshape
                    splits[axis] = [extent[outer], extent[inner]]
                    subs += [letters[outer], letters[inner]]
                    continue
                window_axes.append(axis)
                window_shape.append(int(extent[inner]))
                window_letters.append(letters[inner])
                steps.append((axis, int(sp.diff(ix, outer).xreplace(self.sizes))))
                subs.append(letters[outer])
            else:  # a flat axis read as several: the reshape of a Flatten
                order = sorted(symbols, key=lambda sym: -sp.diff(ix, sym).xreplace(self.sizes))
                splits[axis] = [extent[sym] for sym in order]
                subs.extend(letters[sym] for sym in order)
        if splits:
            dims = []
            for axis, ix in enumerate(factor.indices):
                dims += splits.get(axis, [extent.get(ix, f"{code}.shape[{axis}]")])
            view = f"{code}.reshape({', '.join(map(str, dims))})"
            if tiled:  # read again by the backward pass (a max pool's arg-max): named
                view = self._named_view(code, view, "_blocks", "the windows, side by side")
            code = view
        if flips:
            index = ", ".join("::-1" if a in flips else ":" for a in range(len(factor.indices)))
            code = f"{code}[{index}]"
        if window_axes:
            rank = len(factor.indices)
            tail = rank - 1 not in window_axes  # channels last: the window goes before them
            code = self._windows(code, window_shape, window_axes, steps, rank, tail)
            if tail:
                return code, "".join(subs[:-1] + window_letters + subs[-1:])
        return code, "".join(subs + window_letters)

    def _windows(self, code, shape, axes, steps, rank, tail: bool) -> str:
        """A windowed view of ``code``, made contiguous once (the im2col matrix) and named.
        With ``tail``, the window's axes go before the last axis (``(n, h, w, i, j, c)``): the
        copy then moves whole runs of channels, and the kernel ``(i, j, c, o)`` needs no
        transpose to be its matrix."""
        if self.im2col is not None:  # the target makes its own (JAX has no window view)
            return self._named_view(code, self.im2col(code, shape, axes, steps, rank, tail))
        view = f"sliding_window_view({code}, {tuple(shape)}, axis={tuple(axes)})"
        if any(step != 1 for _, step in steps):
            by_axis = dict(steps)
            view += "[" + ", ".join(f"::{by_axis[a]}" if by_axis.get(a, 1) != 1 else ":"
                                    for a in range(rank)) + "]"  # fmt: skip
        if tail:
            order = [*range(rank - 1), *range(rank, rank + len(shape)), rank - 1]
            view += f".transpose({', '.join(map(str, order))})"
        return self._named_view(code, f"{self.xp}.ascontiguousarray({view})")

    def _named_view(self, code: str, view: str, suffix: str = "_cols",
                    comment: str = "im2col: one row per window") -> str:  # fmt: skip
        """``view`` computed once into a named array (``X_cols``) and reused by its key."""
        key = view
        if key not in self.windows:
            name = f"{code.split('[')[0]}{suffix}"
            while name in self.windows.values():
                name += "_"
            self.windows[key] = name
            self.setup.append(f"{name} = {view}  # {comment}")
        return self.windows[key]


def _window_pair(ix, symbols, extent):
    """Which index of ``s h + i`` moves inside the window (``i``, slope 1, the smaller range)."""
    unit = [sym for sym in symbols if sp.diff(ix, sym) == 1]
    if len(unit) == 1:
        (inner,) = unit
    else:
        inner = min(symbols, key=lambda sym: (extent[sym], str(sym)))
    (outer,) = [sym for sym in symbols if sym != inner]
    return inner, outer


def _target_axes(target: Indexed, shape, sizes: dict) -> list:
    """``[(index, length), ...]`` of the target's axes, a flat entry ``(y W + x) C + c`` read
    as its indices (row-major: each index's length is the next larger stride over its own)."""
    axes = []
    for ix, length in zip(target.indices, shape):
        if ix.is_Symbol:
            axes.append((ix, length))
            continue
        flat = sp.expand(ix.xreplace(sizes))
        order = sorted(flat.free_symbols, key=lambda sym: -flat.coeff(sym))
        strides = [flat.coeff(sym) for sym in order]
        if flat != sum(st * sym for st, sym in zip(strides, order)) or strides[-1] != 1:
            raise NotImplementedError(f"no reshape gives the target entry {target}")
        bigger = [int(length), *strides[:-1]]  # each index's stride times its length
        axes += [(sym, int(big) // int(st)) for sym, big, st in zip(order, bigger, strides)]
    return axes


def _length(size) -> str:
    return str(size)


def _contract(operands, out: str, lengths: dict, xp: str) -> str:
    """``A @ B`` (one matrix product, batched or of reshaped views), else ``np.einsum``."""
    if len(operands) == 1:
        ((code, subs),) = operands
        if subs == out:
            return code
        if sorted(subs) == sorted(out):
            return f"{code}.transpose({', '.join(str(subs.index(x)) for x in out)})"
        if set(out) <= set(subs):
            kept = [x for x in subs if x in out]
            axes = tuple(k for k, x in enumerate(subs) if x not in out)
            total = f"{code}.sum(axis={axes[0] if len(axes) == 1 else axes})"
            return total if "".join(kept) == out else f'{xp}.einsum("{subs}->{out}", {code})'
        if [x for x in out if x in subs] == list(subs):  # the same entry for every new letter
            index = ", ".join(":" if x in subs else "None" for x in out)
            shape = ", ".join(lengths[x] for x in out)
            return f"{xp}.broadcast_to({code}[{index}], ({shape}))"
        return f'{xp}.einsum("{subs}->{out}", {code})'
    if all(subs == out for _, subs in operands):  # entry by entry (a dropout mask)
        return " * ".join(code for code, _ in operands)
    if len(operands) == 2:
        pairs = (operands, operands[::-1])
        for a, b in pairs:
            text = _matmul(a, b, out, xp)
            if text:
                return text
        texts = [_gemm(a, b, out, lengths) for a, b in pairs]
        texts = sorted((t for t in texts if t), key=lambda t: (".transpose(" in t, len(t)))
        if texts:
            return texts[0]
    spec = ",".join(subs for _, subs in operands) + "->" + out
    args = ", ".join(code for code, _ in operands)
    return f'{xp}.einsum("{spec}", {args}, optimize=True)'


def _gemm(a, b, out: str, lengths: dict) -> str | None:
    """One matrix product of the two arrays seen as matrices: the summed letters a block at
    one end of each (a contiguous array reshapes for free; a transposed one BLAS reads as is)."""
    (ca, sa), (cb, sb) = a, b
    summed = [x for x in sa if x in sb and x not in out]
    if not summed or any(x in sb and x in out for x in sa):
        return None
    free_a = [x for x in sa if x not in summed]
    free_b = [x for x in sb if x not in summed]
    block = "".join(summed)
    if sa.startswith(block):
        lhs = _as_matrix(ca, block, free_a, lengths, first=True)
        lhs = lhs and f"{lhs}.T"
    elif sa.endswith(block):
        lhs = _as_matrix(ca, block, free_a, lengths, first=False)
    else:
        return None
    want_b = block + "".join(free_b)
    if sb.endswith(block) and sb != want_b:  # (free, summed): its transpose, as BLAS reads it
        rhs = _as_matrix(cb, block, free_b, lengths, first=False)
        rhs = rhs and f"{rhs}.T"
    else:
        order = ", ".join(str(sb.index(x)) for x in want_b)
        rhs_code = cb if sb == want_b else f"{cb}.transpose({order})"
        rhs = _as_matrix(rhs_code, block, free_b, lengths, first=True)
    if lhs is None or rhs is None:
        return None
    result = "".join(free_a + free_b)
    shape = ", ".join(lengths[x] for x in result)
    text = f"({lhs} @ {rhs}).reshape({shape})"
    if result != out:
        text += f".transpose({', '.join(str(result.index(x)) for x in out)})"
    return text


def _as_matrix(code, block, free, lengths, first: bool) -> str:
    """``code`` reshaped to (summed, free) when ``first``, else (free, summed)."""
    sizes = [_product([lengths[x] for x in block]), _product([lengths[x] for x in free])]
    sizes = sizes if first else sizes[::-1]
    if all(size != "-1" and "m" in size for size in sizes) or sizes.count("-1") > 1:
        return None
    if "-1" not in sizes:  # one of them may be left to NumPy
        k = next((n for n, size in enumerate(sizes) if "m" in size), 1)
        sizes[k] = "-1"
    return f"{code}.reshape({', '.join(sizes)})"


def _product(sizes) -> str:
    if not sizes:
        return "1"
    if "-1" in sizes:
        return "-1"
    numbers = [int(x) for x in sizes if x.isdigit()]
    names = [x for x in sizes if not x.isdigit()]
    total = 1
    for x in numbers:
        total *= x
    return " * ".join(names + ([str(total)] if total != 1 or not names else []))


def _matmul(a, b, out: str, xp: str) -> str | None:
    """``A @ B`` when ``A``'s last letter is the one summed and ``B`` is ``[summed, free]``,
    or with batch letters leading both (``Q @ K.T`` per example)."""
    (ca, sa), (cb, sb) = a, b
    summed = [x for x in sa if x in sb and x not in out]
    batch = [x for x in sa if x in sb and x in out]
    if len(summed) != 1:
        return None
    (k,) = summed
    free_a = [x for x in sa if x not in sb]
    free_b = [x for x in sb if x not in sa]
    if len(free_b) != 1 or (batch and len(free_a) != 1):
        return None
    if "".join(batch + free_a + free_b) != out:
        return None
    lhs = _arranged(ca, sa, "".join(batch + free_a + [k]), xp)
    rhs = _arranged(cb, sb, "".join(batch + [k] + free_b), xp)
    if lhs is None or rhs is None:
        return None
    return f"{lhs} @ {rhs}"


def _arranged(code: str, subs: str, want: str, xp: str) -> str | None:
    if subs == want:
        return code
    if sorted(subs) != sorted(want):
        return None
    if len(subs) == 2 or subs[:-2] == want[:-2] and subs[-2:] == want[-1:-3:-1]:
        return f"{code}.T" if len(subs) == 2 else f"{xp}.swapaxes({code}, -1, -2)"
    return f"{code}.transpose({', '.join(str(subs.index(x)) for x in want)})"


def _scaled(text: str, coefficient, sizes: dict) -> str:
    """``text`` times ``coefficient``: divided by its inverse where that is a whole number or
    a size given as a float (``/ keep``, as a dropout is defined), else times it."""
    inverse = sp.sympify((1 / coefficient).xreplace(sizes))
    coefficient = sp.sympify(coefficient.xreplace(sizes))
    if coefficient == 1:
        return text
    if inverse.is_Integer:
        return f"{text} / {inverse}"
    if inverse.is_Float:
        return f"{text} / {float(inverse)!r}"
    return f"{text} * {float(coefficient)!r}"


def upsampled(contraction, names: dict, sizes: dict) -> str:
    """``R[p,q,r,v] dZ[p, ⌊q/s⌋, ⌊r/s⌋, v]`` in the blocks layout ``(m, H/s, s, W/s, s, C)``:
    a factor read at ``⌊q/s⌋`` gets a new axis after that one (the position in the window);
    a factor read at ``q`` is stored in that layout already."""
    parts = []
    for factor in contraction.factors():
        code = names[factor.base.label.name]
        if any(isinstance(ix, sp.floor) for ix in factor.indices):
            index = []
            for ix in factor.indices:
                index += [":", "None"] if isinstance(ix, sp.floor) else [":"]
            code = f"{code}[{', '.join(index)}]"
        parts.append(code)
    return _scaled(" * ".join(parts), contraction.coefficient(), sizes)


class row_total(sp.Function):  # noqa: N801  (SymPy function names are lower case)
    """Sum over the last axis of an array, kept as an axis of length 1."""


class RowPrinter(NumPyPrinter):
    """Row reductions over the last axis (an example's row, or a row of its scores)."""

    def _print_row_total(self, expr):
        return self._method(expr, "sum(axis=-1, keepdims=True)")

    _print_rowsum = _print_row_total

    def _print_rowmax(self, expr):
        return self._method(expr, "max(axis=-1, keepdims=True)")


def row_rule(expr: sp.Expr, arrays: dict, width: int | None = None) -> sp.Expr:
    """A rule over one row (``a[j]``, ``Sum(.., (j, 0, n - 1))``) on whole arrays; ``width``
    is the row's length ``n`` where the rule reads it outside a sum."""
    expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda e: row_total(e.function))
    expr = expr.replace(lambda e: isinstance(e, sp.Indexed), lambda e: arrays[e.base.label.name])
    if width is None:
        return expr
    return expr.xreplace({sp.Symbol("n", integer=True, positive=True): width})


def var(name: str) -> sp.Symbol:
    """An array of the kernel, as a SymPy name (a rule over rows reads whole arrays)."""
    return sp.Symbol(name, real=True)


__all__ = ["ContractionPrinter", "RowPrinter", "row_rule", "row_total", "upsampled", "var"]
