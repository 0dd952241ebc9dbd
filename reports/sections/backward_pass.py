"""The backward pass sections: the computational graph, the local derivative on each edge,
and the chain rule (the sweep node by node, then each parameter's gradient unrolled).
"""

from __future__ import annotations

import sympy as sp

from reports.latex.equations import Chunk, Row, align
from reports.latex.layout import representatives, section, skipped_note, stretched
from reports.latex.notation import family
from reports.latex.printer import format_number, named_factor
from reports.latex.textbook import activation_in, local_textbook

from .context import ReportContext

# ---------------------------------------------------------------------------- 4. graph


def graph_section(ctx: ReportContext) -> str:
    """The computational graph figure (made by ``figures.py``) and how to read it."""
    fig = ctx.figures.get("graph")
    if fig is None:
        return ""
    derivation = ctx.main
    if derivation.model.level == "scalar":
        hidden = ctx.figures.get("graph_hides_params")
        caption = (
            "The computational graph of one example. Under each node: its forward value "
            "(blue) and the gradient of the cost with respect to it (red), at the example of "
            "Section~\\ref{sec:example}."
        )
        if ctx.figures.get("graph_has_edge_labels"):
            caption += (
                " On each edge, in green, the local derivative of the later node with respect "
                "to the earlier."
                if ctx.figures.get("graph_labels_every_edge")
                else " On the edges with room for it, in green, the local derivative of "
                "the later node with respect to the earlier (Section~\\ref{sec:local} lists "
                "them all)."
            )
        if hidden:
            caption += (
                " The weights and biases are left out of the picture: each enters its $z$ "
                "node (the layer-level graph of Section~\\ref{sec:matrix} shows them)."
            )
        forks = [s for s in derivation.steps if s.is_fork]
        if forks:
            caption += (
                " Orange rings mark forks: a node used by several others gets one gradient "
                "contribution per branch, and these add (the number next to $\\Sigma$)."
            )
        else:
            caption += " No node is used twice here, so no gradients add (no forks)."
    else:
        caption = (
            "The computational graph, layer by layer: each node is a whole matrix, with its "
            "shape underneath (blue) and the shape of its gradient (red), which is always "
            "the same."
        )
    return section(
        "Computational graph",
        "graph",
        "\\begin{figure}[H]\n\\centering\n"
        f"\\includegraphics[{figure_size(ctx, 'graph', 0.78)}]{{{fig.name}}}\n"
        f"\\caption{{{caption}}}\\label{{fig:graph}}\n\\end{{figure}}\n"
        "Figure~\\ref{fig:graph} shows the graph; the backward pass visits it from right to left.",
    )


def figure_size(ctx: ReportContext, name: str, height: float) -> str:
    """``\\includegraphics`` options: the figure at its own size (its texts then have the
    size they were drawn at), shrunk to the text width and ``height`` of the text height."""
    width = ctx.figures.get(f"{name}_width")
    width = f"{width:.2f}in" if width else "\\textwidth"
    return f"width={width},height={height}\\textheight,keepaspectratio"


# ---------------------------------------------------------------------------- 5. local derivatives


def local_derivatives_section(ctx: ReportContext) -> str:
    """One row per edge: the local derivative, derived, and its value at the example."""
    derivation = ctx.main
    model = derivation.model
    printer = ctx.printer(derivation)
    values = ctx.instance.values if ctx.instance is not None and model.level == "scalar" else None
    edges = []
    for step in derivation.steps:
        for branch in step.branches:
            edges.append((step.node, branch))
    edges.reverse()  # forward order reads more naturally in a table
    shown, skipped = representatives(edges, lambda e: (family(e[1].child), family(e[0])))
    rows = []
    for node, branch in shown:
        named = printer.doprint(named_factor(branch.child.symbol, node.symbol))
        if branch.local_derivative is None:
            formula = printer.doprint(branch.term)
            adjoint = ctx.symbol(derivation, "d" + node.name)
            formula = f"\\text{{backward rule: }} {adjoint} \\mathrel{{+}}= {formula}"
            number = ""
        else:
            textbook = local_textbook(branch, node)
            local = sp.factor_terms(branch.local_derivative)
            formula = printer.doprint(local)
            if textbook is not None and textbook != local:
                formula = f"{printer.doprint(textbook)} = {formula}"
            number = ""
            if values is not None:
                number = format_number(_evaluate(branch.local_derivative, values))
        rows.append(f"  {named} & {formula} & {number} \\\\")
    note = skipped_note(
        skipped, lambda e: printer.doprint(named_factor(e[1].child.symbol, e[0].symbol)), "edges"
    )
    intro = (
        "Each edge of the graph carries the derivative of the later node with respect to "
        "the earlier one, taken while every other input of the later node is held fixed. "
        "SymPy differentiates each operation's definition; activations are written in their "
        "forward output (e.g.\\ $\\sigma' = \\sigma(1-\\sigma)$) so the backward pass can "
        "reuse forward values."
    )
    if model.level == "matrix":
        intro += (
            " At the matrix level an edge into a matrix product (or into softmax, whose "
            "Jacobian is not diagonal) carries no elementwise derivative: it carries a backward "
            "rule, the vector--Jacobian product it adds to the gradient."
        )
    head = (
        "\\text{Edge} & \\text{Derived} & \\text{At the example}"
        if values
        else "\\text{Edge} & \\text{Derived} &"
    )
    table = stretched(
        "\\begin{longtable}{@{}>{$\\displaystyle}l<{$}>{$\\displaystyle}l<{$}>{$}r<{$}@{}}\n\\toprule\n"
        f"{head} \\\\\n\\midrule\n\\endhead\n"
        + "\n".join(rows)
        + "\n\\bottomrule\n\\end{longtable}\n"
    )
    return section("Local derivatives", "local", intro + "\n\n" + table + note)


def _evaluate(expr, values: dict[str, float]) -> float:
    subs = {s: values[s.name] for s in expr.free_symbols if s.name in values}
    return float(sp.N(expr.xreplace(subs)))


# ---------------------------------------------------------------------------- 6. chain rule


def chain_rule_section(ctx: ReportContext) -> str:
    """The backward sweep step by step, then each parameter's gradient unrolled."""
    derivation = ctx.main
    parts = [_backward_steps(ctx, derivation)]
    if derivation.model.level == "scalar":
        parts.append(_parameter_chains(ctx, derivation))
    return section("Chain rule", "chain", "\n\n".join(parts))


def _backward_steps(ctx: ReportContext, derivation) -> str:
    model = derivation.model
    printer = ctx.printer(derivation)
    steps = derivation.needed_steps()
    shown, skipped = representatives(steps, lambda s: family(s.node))
    rows = []
    for step in shown:
        rows.append(
            Row(
                ctx.symbol(derivation, "d" + step.node.name),
                _step_forms(ctx, derivation, step),
                ctx.label(derivation, "d" + step.node.name),
            )
        )
    cost = ctx.symbol(derivation, model.cost.name)
    intro = (
        "Backpropagation visits the nodes from the cost back to the parameters. The "
        f"adjoint of a node is the derivative of ${cost}$ with respect to it; it is the sum, "
        "over the node's children, of the child's adjoint times the local derivative on "
        "the edge (Section~\\ref{sec:local}). Each step below shows that sum of named "
        "factors, the factors filled in, and the simplified form when it is shorter, with "
        "the adjoints it uses written out first so that what cancels can be seen."
    )
    forks = [s for s in steps if s.is_fork]
    if forks:
        intro += (
            f" At {len(forks)} fork{'s' if len(forks) > 1 else ''} (nodes used by more than "
            "one child) the sum has one term per branch."
        )
    return (
        "\\subsection*{The backward pass, one node at a time}\n"
        + intro
        + "\n"
        + align(rows, printer)
        + "\n"
        + skipped_note(skipped, lambda st: ctx.symbol(derivation, "d" + st.node.name), "steps")
    )


def _step_forms(ctx: ReportContext, derivation, step) -> list:
    """Named factors; the factors filled in (``σ'(z)``); the derived sum; its simplified form."""
    printer = ctx.printer(derivation)
    cost = derivation.model.cost
    named_chunks, textbook_chunks = [], []
    textbook_differs = False
    for k, branch in enumerate(step.branches):
        child = branch.child
        factor = printer.doprint(named_factor(child.symbol, step.node.symbol))
        adjoint = "" if child is cost else ctx.symbol(derivation, "d" + child.name)
        joiner = "+" if k else ""
        named_chunks.append(Chunk(joiner, _juxtapose(factor, adjoint)))
        textbook = local_textbook(branch, step.node)
        if textbook is None:
            continue
        textbook_differs |= activation_in(textbook)
        local = _factor_tex(printer, textbook) if adjoint else printer.doprint(textbook)
        textbook_chunks.append(Chunk(joiner, _juxtapose(local, adjoint)))
    only_cost = len(step.branches) == 1 and step.branches[0].child is cost
    forms: list = [] if only_cost else [named_chunks]  # ∂L/∂a = ∂L/∂a says nothing
    if textbook_differs and len(textbook_chunks) == len(step.branches):
        forms.append(textbook_chunks)
    forms.append(step.named)
    if step.simplified:
        forms += _substituted(derivation, step) + [step.value]
    return forms


def _substituted(derivation, step) -> list:
    """The children's adjoints written out before simplifying, so the cancellation is seen:
    ``a da (1 - a)`` with ``da = (a - y)/(a(1 - a))`` put in, then ``a - y``."""
    if derivation.model.level != "scalar":
        return []
    known = {}
    for branch in step.branches:
        child = derivation._by_node.get(branch.child)
        if child is not None and not isinstance(child.value, sp.Symbol):
            known[child.adjoint] = child.value
    if not known or not step.named.has(*known):
        return []
    with sp.evaluate(False):
        written_out = step.named.xreplace(known)
    return [written_out]


def _juxtapose(*factors: str) -> str:
    """Factors side by side with a thin space, skipping empty ones."""
    return " \\, ".join(f for f in factors if f)


def _factor_tex(printer, expr) -> str:
    """A factor of a product: in parentheses when it is a sum or starts with a minus."""
    text = printer.doprint(expr)
    if isinstance(expr, sp.Add) or text.startswith("-"):
        return printer._add_parens(text) if "\\frac" in text else f"({text})"
    return text


def _parameter_chains(ctx: ReportContext, derivation) -> str:
    model = derivation.model
    printer = ctx.printer(derivation)
    params = [p for p in model.params if p in derivation._by_node]
    shown, skipped = representatives(params, family, limit=24)
    rows = []
    for param in shown:
        named, local = unroll(ctx, derivation, param)
        lhs = printer.doprint(named_factor(model.cost.symbol, param.symbol))
        closed = derivation.gradient(param.name, closed=True)
        product = _path_product(derivation, param)
        same = product is not None and sp.expand(product - closed) == 0
        forms: list = [named] if same and not activation_in(product) else [named, local]
        forms.append(closed)  # "c 3 = 3 c" says nothing twice: the closed form alone
        rows.append(Row(lhs, forms, f"eq:grad:{param.name}"))
    intro = (
        "Unrolling the recursion gives each parameter's gradient as a product of local "
        "derivatives along the path from the parameter to the cost. Where the path meets a "
        "fork, the gradient is a sum over the branches, written out below with the "
        "branches' adjoints. The last line of each equation is the gradient in forward "
        "values alone."
    )
    return (
        "\\subsection*{Each parameter's gradient}\n"
        + intro
        + "\n"
        + align(rows, printer)
        + "\n"
        + skipped_note(skipped, lambda p: ctx.symbol(derivation, p.name), "parameters")
    )


def _path_product(derivation, node):
    """The product of the local derivatives from ``node`` to the cost, or None at a fork."""
    product = sp.Integer(1)
    while node is not derivation.model.cost:
        step = derivation.step(node)
        if step.is_fork:
            return None
        (branch,) = step.branches
        product *= local_textbook(branch, node)
        node = branch.child
    return product


def unroll(ctx: ReportContext, derivation, node) -> tuple[list[Chunk], list[Chunk]]:
    """Named factors and local derivatives from ``node`` to the cost, as printed chunks.

    A single-child path continues to the child; at a fork the sum over branches is written
    out, each branch ending with the child's adjoint.
    """
    printer = ctx.printer(derivation)
    cost = derivation.model.cost
    named: list[Chunk] = []
    local: list[Chunk] = []
    current = node
    while current is not cost:
        step = derivation.step(current)
        if step.is_fork:
            n_terms, l_terms = [], []
            for branch in step.branches:
                child = branch.child
                factor = printer.doprint(named_factor(child.symbol, current.symbol))
                adjoint = (
                    "" if child is cost else " \\, " + ctx.symbol(derivation, "d" + child.name)
                )
                n_terms.append(factor + adjoint)
                textbook = local_textbook(branch, current)
                l_terms.append(_factor_tex(printer, textbook) + adjoint)
            named += _sum_chunks(n_terms, bracket=bool(named))
            local += _sum_chunks(l_terms, bracket=bool(local))
            break
        (branch,) = step.branches
        named.append(Chunk("", printer.doprint(named_factor(branch.child.symbol, current.symbol))))
        textbook = local_textbook(branch, current)
        if textbook != 1:
            local.append(Chunk("", _factor_tex(printer, textbook)))
        current = branch.child
    if not local:
        local = [Chunk("", "1")]
    return named, local


def _sum_chunks(terms: list[str], bracket: bool) -> list[Chunk]:
    chunks = []
    for k, term in enumerate(terms):
        sign = "" if k == 0 else "+"
        text = term
        if term.startswith("- ") and k:
            sign, text = "-", term[2:]
        chunks.append(Chunk(sign, text))
    if bracket:
        chunks[0].tex = "\\left(" + chunks[0].tex
        chunks[-1].tex += "\\right)"
    return chunks
