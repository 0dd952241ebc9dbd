"""The data lines at the top of a kernel function: the inputs as floats, parameters unpacked
from ``params`` (grouped into lines that fit), targets in the inputs' dtype or one-hot, the
batch size, and at the scalar level each parameter element and each column of X and Y as
its own name.
"""

from __future__ import annotations

from .printers import WIDTH
from .statements import Statement, binding


class DataLines:
    """The data lines of one kernel module, for a Program and an array module (``np``)."""

    def __init__(self, program, module: str, dtype: str = "float64"):
        self.p = program
        self.model = program.model
        self.names = program.names
        self.np = module
        self.dtype = dtype
        #: dropout masks the kernel takes, by name -> the probability of keeping an entry
        self.masks = {node.name: node.op.keep for node in self.model.nodes if node.role == "mask"}

    def bindings(self) -> list[Statement]:
        """Inputs as floats, parameters, targets in the inputs' dtype, elements and columns,
        batch size."""
        np_, model = self.np, self.model
        # integer inputs (uint8 pixels) would make the targets integers too: Y in X's dtype
        code = f'X if X.dtype.kind == "f" else X.astype({np_}.{self.dtype})'
        comment = f"integer inputs (pixels) in {self.dtype}"
        out = [binding("X", code, "X", comment=comment, deps={"X"})]
        shapes = model.param_shapes()
        for name in shapes:
            ident = self.names(name)
            out.append(binding(ident, f'params["{name}"]', name))
        if model.targets:
            if self.p.labels:
                code = f"{np_}.eye({self.model.n_outputs}, dtype=X.dtype)[Y]"
                comment = "one-hot rows of the integer labels"
            else:
                code, comment = f"{np_}.asarray(Y, dtype=X.dtype)", "targets in the inputs' dtype"
            out.append(binding("Y", code, "Y", comment=comment))
        for name, keep in self.masks.items():
            code = (
                f'{np_}.asarray(masks["{name}"], dtype=X.dtype) if masks is not None '
                f"else {float(keep)!r}"
            )
            comment = f"dropout keep mask (0/1); without masks, {float(keep)!r}: the identity"
            out.append(binding(self.names(name), code, name, comment=comment))
        if not self.p.matrix:
            out += self._element_bindings(shapes)
            out += self._column_bindings("X", model.inputs, vector=False)
            out += self._column_bindings("Y", model.targets, self.p.model.real_target_vector)
        out.append(binding("m", "X.shape[0]", "m", comment="batch size"))
        code = f"{np_}.ones(m, dtype=X.dtype)"
        out.append(
            binding("ones", code, "ones", comment="the 1 of 1ᵀ dZ (sum over examples)", deps={"m"})
        )
        return out

    def _element_bindings(self, shapes) -> list[Statement]:
        """Scalar level: unpack each parameter array into its elements, a row per line."""
        out = []
        for name, shape in shapes.items():
            if not shape:
                continue
            grid = {}
            for node in self.model.params:
                if node.tensor is not None and node.tensor[0] == name:
                    grid[node.tensor[1]] = self.names(node.name)
            rows = sorted({index[:-1] for index in grid})
            for row in rows:
                cells = [grid.get((*row, k)) for k in range(shape[-1])]
                source = f"{self.names(name)}[{', '.join(map(str, row))}]" if row else name
                out += self._unpack(cells, source, name, single=f"{source}[{{k}}]")
        return out

    def _column_bindings(self, array: str, nodes, vector: bool) -> list[Statement]:
        """Scalar level: one batch vector per input (a column of X) or target (of Y)."""
        cells: dict[int, str] = {}
        for position, node in enumerate(nodes):
            if node.tensor is None:  # an expression's inputs: X's columns, in order
                cells[position] = self.names(node.name)
            elif node.tensor[0] == array:
                cells[node.tensor[1][0]] = self.names(node.name)
        if not cells:
            return []
        if vector:
            ((_, ident),) = cells.items()
            return [binding(ident, array, array, deps={array})]
        row = [cells.get(k) for k in range(max(cells) + 1)]
        return self._unpack(row, f"{array}.T", array, single=f"{array}[:, {{k}}]")

    def _unpack(self, cells: list, source: str, node: str, single: str) -> list[Statement]:
        """``a, b, c = source`` in chunks that fit a line (``_`` for unused slots)."""
        base = source.split("[")[0].split(".")[0]
        if len(cells) == 1:
            return [binding(cells[0], single.format(k=0), node, deps={base})]
        out, start = [], 0
        while start < len(cells):
            stop = start
            while stop < len(cells):
                lhs = ", ".join(c or "_" for c in cells[start : stop + 1])
                if stop > start and len(lhs) + len(source) + 20 > WIDTH:
                    break
                stop += 1
            chunk = cells[start:stop]
            whole = start == 0 and stop == len(cells)
            rhs = source if whole else f"{source}[{start}:{stop}]"
            lhs = ", ".join(c or "_" for c in chunk)
            if len(chunk) == 1:
                lhs = f"({lhs},)"
            out.append(binding(lhs, rhs, node, provides={c for c in chunk if c}, deps={base}))
            start = stop
        return out


def group_parameters(statements: list[Statement]) -> list[Statement]:
    """``W1, b1, W2, b2 = params["W1"], ...`` in lines that fit, instead of one per array."""
    params = [s for s in statements if s.code is not None and s.code.startswith("params[")]
    if len(params) < 2:
        return statements

    def fits(group) -> bool:
        text = ", ".join(t.target for t in group) + " = " + ", ".join(t.code for t in group)
        return len(text) + 4 <= WIDTH

    size = len(params)  # the largest even chunk that fits: W1, b1, W2, b2 stay in pairs
    while size > 1 and not all(fits(params[k : k + size]) for k in range(0, len(params), size)):
        size -= 2 if size > 2 and size % 2 == 0 else 1
    groups = [params[k : k + size] for k in range(0, len(params), size)]
    merged = [
        binding(", ".join(t.target for t in g), ", ".join(t.code for t in g), "params")
        for g in groups
    ]
    rest = [s for s in statements if s not in params]
    return merged + rest
