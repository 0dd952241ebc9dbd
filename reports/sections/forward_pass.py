"""The forward pass section: each node's equation, then the cost as the mean loss.
``forward_rows`` is also the matrix form's forward pass.
"""

from __future__ import annotations

import sympy as sp

from derive.ops import LossOp, m
from reports.latex.equations import Chunk, Row, align
from reports.latex.layout import representatives, section, skipped_note
from reports.latex.notation import family
from reports.latex.printer import activation_function
from reports.latex.textbook import elementwise_activation

from .context import ReportContext


def forward_section(ctx: ReportContext) -> str:
    """The forward pass as numbered equations, ending in the cost as the mean loss."""
    parts = []
    if ctx.model.kind == "expr":  # an expression: no examples, no batch, no mean
        parts.append(
            "Each node of the expression is computed from the nodes before it:\n"
            + forward_rows(ctx, ctx.scalar)
        )
    elif ctx.scalar is not None:
        parts.append(
            "For one example, each node is computed from the nodes before it:\n"
            + forward_rows(ctx, ctx.scalar)
        )
        parts.append(
            "Over a batch of $m$ examples the cost is the mean of the per-example losses:\n"
            + _mean_cost(ctx, ctx.scalar)
        )
    else:
        parts.append(
            "Layer by layer, for a batch of $m$ examples (one per row of the input):\n"
            + forward_rows(ctx, ctx.matrix)
        )
    return section("Forward pass", "forward", "\n\n".join(parts))


def forward_rows(ctx: ReportContext, derivation) -> str:
    model = derivation.model
    printer = ctx.printer(derivation)
    nodes = [n for n in model.nodes if not n.is_leaf]
    shown, skipped = representatives(nodes, family)
    rows = []
    for node in shown:
        rows.append(
            Row(
                ctx.symbol(derivation, node.name),
                _forward_forms(node, model),
                ctx.label(derivation, node.name),
            )
        )
    note = skipped_note(skipped, lambda n: ctx.symbol(derivation, n.name), "equations")
    return align(rows, printer) + "\n" + note


def _forward_forms(node, model) -> list:
    forms = []
    name = elementwise_activation(node)
    if name is not None and model.level == "scalar" or (name and model.level == "matrix"):
        applied = activation_function(name)(*[p.symbol for p in node.parents])
        forms.append(applied)
        if node.expr.func.__name__ != name and name != "linear":
            forms.append(node.expr)
        return forms
    if isinstance(node.op, LossOp) and len(node.parents) <= 8:
        loss = sp.Function(node.op.name, real=True)(*[p.symbol for p in node.parents])
        forms.append(loss)
    forms.append(node.expr)
    return forms


def _mean_cost(ctx: ReportContext, derivation) -> str:
    n = ctx.notation
    index = sp.Symbol(n.example_index, integer=True)
    term = sp.Symbol("__example_loss__", real=True)
    low, high = (1, m) if n.name == "ng" else (0, m - 1)
    names = dict(ctx.names(derivation))
    names["__example_loss__"] = n.per_example(n.example_index)
    names[m.name] = "m"
    printer = ctx.printer(derivation)
    printer.names.update(names)
    mean = [
        Chunk("", printer.doprint(1 / m)),
        Chunk("", printer.doprint(sp.Sum(term, (index, low, high)))),
    ]
    return align([Row(n.batch_cost, [mean], "eq:cost")], printer)
