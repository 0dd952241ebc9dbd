"""The vectorized matrix form section: forward and backward over a batch, and a check of
every gradient's shape.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from reports.latex.equations import Chunk, Row, align
from reports.latex.layout import section, stretched
from reports.latex.textbook import activation_in, local_textbook

from .backward_pass import figure_size
from .context import ReportContext
from .forward_pass import forward_rows


def matrix_section(ctx: ReportContext) -> str:
    """The vectorized form: forward and backward over a batch, and a check of every shape."""
    derivation = ctx.matrix
    if derivation is None:
        return ""
    printer = ctx.printer(derivation)
    parts = []
    if ctx.scalar is not None:
        parts.append(
            "The same network, one node per layer: each row of $X$ is one example, so the "
            "equations above hold row by row, and the sums over units become matrix products."
            "\n" + forward_rows(ctx, derivation)
        )
        parts.append(
            "The backward pass in matrix form:\n" + _matrix_backward(ctx, derivation, printer)
        )
    else:
        parts.append(
            "The backward pass of Section~\\ref{sec:chain} already works on whole matrices; "
            "here every gradient's shape is checked against the shape of what it is the "
            "gradient of."
        )
    parts.append(_shape_table(ctx, derivation, printer))
    if "layers" in ctx.figures and ctx.scalar is not None:
        parts.append(
            "\\begin{figure}[htbp]\n\\centering\n"
            f"\\includegraphics[{figure_size(ctx, 'layers', 0.45)}]"
            f"{{{ctx.figures['layers'].name}}}\n"
            "\\caption{The graph at the matrix level, with the shape of each node (blue) and "
            "of its gradient (red).}\\label{fig:layers}\n\\end{figure}"
        )
    return section("Vectorized matrix form", "matrix", "\n\n".join(parts))


def _matrix_backward(ctx: ReportContext, derivation, printer) -> str:
    rows = []
    for step in derivation.needed_steps():
        forms: list = []
        if len(step.branches) == 1 and step.branches[0].local_derivative is not None:
            textbook = local_textbook(step.branches[0], step.node)
            child = step.branches[0].child
            if (
                textbook is not None
                and child is not derivation.model.cost
                and activation_in(textbook)
            ):
                adjoint = ctx.symbol(derivation, "d" + child.name)
                forms.append([Chunk("", f"{adjoint} \\odot {printer.doprint(textbook)}")])
        forms.append(step.named)
        if step.simplified:
            forms.append(step.value)
        rows.append(
            Row(
                ctx.symbol(derivation, "d" + step.node.name),
                forms,
                ctx.label(derivation, "d" + step.node.name),
            )
        )
    return align(rows, printer)


def _shape_table(ctx: ReportContext, derivation, printer) -> str:
    model = derivation.model
    dims = dict(model.dims)
    rows = []
    for step in derivation.needed_steps():
        node = step.node
        target = node.shape
        value = step.value
        if isinstance(value, sp.MatrixExpr):
            factors = value.args if isinstance(value, sp.MatMul) else (value,)
            product = "".join(f"({_dims(f.shape)})" for f in factors)
            got = value.shape
        else:
            product = "\\text{elementwise}"
            got = target
        ok = tuple(sp.simplify(a - b) for a, b in zip(got, target)) == (0, 0)
        concrete = _dims(tuple(sp.sympify(d).xreplace(dims) for d in target))
        stored = ""
        if node.array_shape and tuple(node.array_shape) != tuple(node.shape):
            arr = tuple(sp.sympify(d).xreplace(dims) for d in node.array_shape)
            stored = (
                f" \\ (\\text{{stored as }} ({', '.join(sp.latex(d) for d in arr)}))"
                if arr
                else " \\ (\\text{stored as a scalar})"
            )
        mark = "\\checkmark" if ok else "\\times"
        rows.append(
            f"  {ctx.symbol(derivation, 'd' + node.name)} & {product} & {_dims(got)} & "
            f"{concrete}{stored} & {mark} \\\\"
        )
    return (
        "\\subsection*{Shape check}\nEach gradient must have the shape of what it is the "
        "gradient of. Matrix products are checked factor by factor; elementwise formulas keep "
        "the shape of their operands (a $\\mathrm{rowsum}$ is a column, broadcast across the "
        "row).\n\n"
        + stretched(
            "\\begin{longtable}{@{}>{$\\displaystyle}l<{$}>{$}l<{$}>{$}l<{$}>{$}l<{$}>{$}c<{$}@{}}\n"
            "\\toprule\n\\text{Gradient} & \\text{Factors} & \\text{Shape} & \\text{Here} & \\\\\n"
            "\\midrule\n\\endhead\n" + "\n".join(rows) + "\n\\bottomrule\n\\end{longtable}\n"
        )
    )


def _dims(shape: Iterable) -> str:
    return " \\times ".join(sp.latex(d) for d in shape)
