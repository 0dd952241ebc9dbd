"""The report, one function per section; each returns LaTeX.

Every formula is printed from the derivation by :class:`~reports.latex_printer.TextbookPrinter`
(the only hand-written LaTeX here is prose, table rules and environment names). Long
networks are summarised: a table or a list of steps shows a few members of each family
(``W1``, ``z1``, ...) and says how many more follow the same pattern.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from importlib import metadata

import sympy as sp

from derive import registry
from derive.ops import ActivationOp, LossOp, RowActivationOp, m

from .context import ReportContext, n_params
from .equations import Chunk, Row, align
from .latex_printer import activation_function, format_number, named_factor
from .notation import family
from .plain import choices

#: at most this many rows of one kind before a table or list is summarised
ROW_LIMIT = 40
PER_FAMILY = 2

# ---------------------------------------------------------------------------- helpers


def tex_escape(text: str) -> str:
    """Escape text for LaTeX prose: ``a_b & 50%`` -> ``a\\_b \\& 50\\%``."""
    out = []
    for ch in str(text):
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        else:
            out.append(ch)
    return "".join(out)


def representatives(
    items: list, key: Callable, limit: int = ROW_LIMIT, per_group: int = PER_FAMILY
) -> tuple[list, dict]:
    """All items when there are few; else the first ``per_group`` of each group.

    Returns the items to show and, per group, the items left out.

    >>> representatives(list(range(6)), lambda k: k % 2, limit=4, per_group=1)
    ([0, 1], {0: [2, 4], 1: [3, 5]})
    """
    if len(items) <= limit:
        return list(items), {}
    shown, skipped, seen = [], {}, {}
    for item in items:
        group = key(item)
        seen[group] = seen.get(group, 0) + 1
        if seen[group] <= per_group:
            shown.append(item)
        else:
            skipped.setdefault(group, []).append(item)
    return shown, skipped


def _skipped_note(skipped: dict, describe: Callable, what: str) -> str:
    """One sentence naming what a summarised list left out, e.g. 18 more like $dW_{12}$."""
    if not skipped:
        return ""
    parts = [f"{len(items)} more like ${describe(items[0])}$" for items in skipped.values()]
    return (
        f"\\noindent\\emph{{Not shown: {', '.join(parts)} ({what} of the same form with "
        "other indices).}\n\n"
    )


def _stretched(table: str) -> str:
    """A table with room between its rows when they hold fractions."""
    stretch = "2.3" if "\\frac" in table else "1.25"
    return f"{{\\renewcommand{{\\arraystretch}}{{{stretch}}}\n{table}}}\n"


def _section(title: str, label: str, body: str) -> str:
    return f"\\section{{{title}}}\\label{{sec:{label}}}\n\n{body.strip()}\n"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _elementwise_activation(node) -> str | None:
    """The registry name of the elementwise activation computing ``node``, if it is one."""
    op = node.op
    if isinstance(op, ActivationOp | RowActivationOp):
        if registry.activation(op.name).elementwise:
            return op.name
    return None


def _local_textbook(branch, node, textbook: bool = True):
    """The local derivative of ``branch.child`` with respect to ``node``, as a textbook
    writes it: ``σ'(z)`` for an elementwise activation, else the derived expression."""
    name = _elementwise_activation(branch.child)
    if textbook and name is not None and name != "linear":
        parent = node.symbol
        return activation_function(name)(parent).diff(parent)
    local = branch.local_derivative
    return sp.factor_terms(local) if local is not None else None


# ---------------------------------------------------------------------------- 1. header


def header(ctx: ReportContext) -> str:
    """Title and the facts a reader needs to reproduce the report."""
    model = ctx.model
    rows = [
        ("Model", f"\\texttt{{{tex_escape(model.spec)}}} ({_describe(model)})"),
        ("Parameters", f"{n_params(model):,}"),
        ("Levels shown", _levels(ctx)),
        ("Notation", tex_escape(ctx.notation.title)),
        ("Numbers", f"\\texttt{{{ctx.dtype}}}, seed {ctx.seed}"),
        (
            "Versions",
            ", ".join(
                f"{name} {tex_escape(_version(pkg))}"
                for name, pkg in (
                    ("backprop-toolkit", "backprop-toolkit"),
                    ("SymPy", "sympy"),
                    ("NumPy", "numpy"),
                    ("JAX", "jax"),
                    ("matplotlib", "matplotlib"),
                )
            )
            + f", Python {platform.python_version()}",
        ),
    ]
    table = "\n".join(f"  {k} & {v} \\\\" for k, v in rows)
    notes = "".join(f"\n\n\\noindent {tex_escape(note)}" for note in ctx.notes)
    return (
        "\\begin{center}\n{\\LARGE\\bfseries Backpropagation, derived}\\\\[0.4em]\n"
        f"{{\\large \\texttt{{{tex_escape(model.spec)}}}}}\n\\end{{center}}\n\n"
        "\\noindent\\begin{tabularx}{\\textwidth}{@{}lX@{}}\n\\toprule\n"
        f"{table}\n\\bottomrule\n\\end{{tabularx}}\n"
        "\n\\medskip\\noindent Every formula in this report is printed from the symbolic "
        "derivation (SymPy): the derivatives are derived, not typed."
        f"{notes}\n"
    )


def _describe(model) -> str:
    parts = []
    if model.kind == "mlp":
        parts.append("layers " + "--".join(map(str, model.sizes)))
    elif model.kind == "chain":
        parts.append(f"{len(model.sizes) - 1} layers of one neuron")
    elif model.kind == "logreg":
        parts.append(f"logistic regression on {model.sizes[0]} features")
    return tex_escape(", ".join(parts + choices(model)) or model.kind)


def _levels(ctx: ReportContext) -> str:
    levels = []
    if ctx.scalar is not None:
        levels.append("scalar (one node per neuron and weight)")
    if ctx.matrix is not None:
        levels.append("matrix (one node per layer)")
    return "; ".join(levels)


# ---------------------------------------------------------------------------- 2. notation


_MEANINGS = {
    "input": "input of one example",
    "target": "target of one example",
    "param": "parameter",
    "hidden": "hidden value",
    "output": "network output",
    "loss": "loss",
}


def notation_section(ctx: ReportContext) -> str:
    """Symbol, meaning and shape: one row per family of nodes, then the adjoint convention."""
    rows = []
    for derivation in (ctx.scalar, ctx.matrix):
        if derivation is not None:
            rows += _notation_rows(ctx, derivation)
    rows += _convention_rows(ctx)
    body = "\n".join(f"  {a} & {b} & {c} \\\\" for a, b, c in rows)
    intro = f"Symbols follow {tex_escape(ctx.notation.title)}. " + _notation_prose(ctx)
    table = (
        "\\begin{longtable}{@{}>{$}l<{$}p{0.55\\textwidth}>{$}l<{$}@{}}\n\\toprule\n"
        "\\text{Symbol} & Meaning & \\text{Shape} \\\\\n\\midrule\n\\endhead\n"
        f"{body}\n\\bottomrule\n\\end{{longtable}}\n"
    )
    return _section("Notation", "notation", intro + "\n\n" + table)


def _notation_prose(ctx: ReportContext) -> str:
    n = ctx.notation
    if n.name == "ng":
        text = (
            "Superscript $[l]$ is the layer, subscripts are units; for a quantity $v$, "
            "$dv$ is the derivative of the loss (or, for matrices, of the cost $J$) "
            "with respect to $v$. "
        )
    else:
        text = (
            "Superscript $(l)$ is the layer and $C_0$ the cost of one training example, as "
            "in the video; the input is the activation $a^{(0)}$ of layer 0. "
        )
    if ctx.matrix is not None:
        text += (
            "Rows are examples (as in NumPy and Keras), so $W$ of layer $l$ has shape "
            "$n_{l-1}\\times n_l$; at the matrix level, $\\odot$ is the elementwise product, "
            "and powers, quotients and activation functions act entry by entry."
        )
    return text


def _notation_rows(ctx: ReportContext, derivation) -> list[tuple[str, str, str]]:
    """One row per kind of node; at the scalar level all layers of a kind share a row."""
    model = derivation.model
    groups: dict = {}
    for node in model.nodes:
        key = family(node) if model.level == "matrix" else _kind(node)
        groups.setdefault(key, []).append(node)
    rows = []
    for members in groups.values():
        symbols = [ctx.symbol(derivation, n.name) for n in members]
        if len(symbols) == 1:
            symbol = symbols[0]
        elif len(symbols) == 2:
            symbol = f"{symbols[0]},\\ {symbols[1]}"
        else:
            symbol = f"{symbols[0]},\\ \\ldots,\\ {symbols[-1]}"
        head = members[0]
        rows.append((symbol, _meaning(head, model, len(members)), _shape(head, model)))
    return rows


def _kind(node) -> tuple:
    """What a scalar node is, whatever its layer: (role, operation, letter)."""
    return (node.role, getattr(node.op, "name", node.label), node.name[:1])


def _meaning(node, model, count: int) -> str:
    role = _MEANINGS.get(node.role, node.role)
    level = "matrix" if model.level == "matrix" else "scalar"
    op = getattr(node.op, "name", None)
    if node.role == "param":
        kind = "weight" if node.name[0] in "Ww" else "bias"
        what = kind if count == 1 else {"weight": "weights", "bias": "biases"}[kind]
    elif node.role == "loss":
        what = (
            "cost: the mean loss over the batch of $m$ examples"
            if level == "matrix"
            else f"loss of one example ({tex_escape(model.loss or 'expression')})"
        )
    elif node.role in ("hidden", "output") and op:
        what = f"{role}{'s' if count > 1 else ''} after {tex_escape(op)}"
    elif node.role in ("hidden", "output") and node.label in ("+", "@"):
        what = "pre-activation (weighted input plus bias)"
    else:
        what = role + ("s" if count > 1 else "")
    if level == "matrix" and node.role in ("input", "target", "hidden", "output"):
        what += ", one row per example"
    return what


def _shape(node, model) -> str:
    if model.level != "matrix" or not node.shape:
        return "\\text{scalar}"
    symbolic = " \\times ".join(sp.latex(d) for d in node.shape)
    concrete = " \\times ".join(sp.latex(sp.sympify(d).xreplace(model.dims)) for d in node.shape)
    return symbolic if symbolic == concrete else f"{symbolic} = {concrete}"


def _convention_rows(ctx: ReportContext) -> list[tuple[str, str, str]]:
    rows = []
    main = ctx.main
    cost = main.model.cost
    example = next((n for n in main.model.nodes if n.role in ("hidden", "output")), None)
    if example is not None:
        adj = ctx.symbol(main, "d" + example.name)
        partial = ctx.printer(main).doprint(named_factor(cost.symbol, example.symbol))
        if adj != partial:
            rows.append(
                (
                    adj,
                    f"adjoint: ${partial}$, the same for every node",
                    "\\text{as } " + ctx.symbol(main, example.name),
                )
            )
        else:
            rows.append(
                (
                    adj,
                    "adjoint: how the cost changes with this node",
                    "\\text{as } " + ctx.symbol(main, example.name),
                )
            )
    if ctx.matrix is not None:
        rows.append(
            (
                "\\mathbf{1}",
                "column of ones (sums over examples as $\\mathbf{1}^\\top dZ$)",
                "m \\times 1",
            )
        )
        rows.append(("\\odot", "elementwise (Hadamard) product", ""))
        if any(s.value.has(_rowsum()) or s.named.has(_rowsum()) for s in ctx.matrix.steps):
            rows.append(("\\operatorname{rowsum}", "sum along each row, kept as a column", ""))
    return rows


def _rowsum():
    from derive.ops import rowsum

    return rowsum


# ---------------------------------------------------------------------------- 3. forward pass


def forward_section(ctx: ReportContext) -> str:
    """The forward pass as numbered equations, ending in the cost as the mean loss."""
    parts = []
    if ctx.scalar is not None:
        parts.append(
            "For one example, each node is computed from the nodes before it:\n"
            + _forward_rows(ctx, ctx.scalar)
        )
        parts.append(
            "Over a batch of $m$ examples the cost is the mean of the per-example losses:\n"
            + _mean_cost(ctx, ctx.scalar)
        )
    else:
        parts.append(
            "Layer by layer, for a batch of $m$ examples (one per row of the input):\n"
            + _forward_rows(ctx, ctx.matrix)
        )
    return _section("Forward pass", "forward", "\n\n".join(parts))


def _forward_rows(ctx: ReportContext, derivation) -> str:
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
    note = _skipped_note(skipped, lambda n: ctx.symbol(derivation, n.name), "equations")
    return align(rows, printer) + "\n" + note


def _forward_forms(node, model) -> list:
    forms = []
    name = _elementwise_activation(node)
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
    return _section(
        "Computational graph",
        "graph",
        "\\begin{figure}[H]\n\\centering\n"
        f"\\includegraphics[width=\\textwidth,height=0.78\\textheight,keepaspectratio]{{{fig.name}}}\n"
        f"\\caption{{{caption}}}\\label{{fig:graph}}\n\\end{{figure}}\n"
        "Figure~\\ref{fig:graph} shows the graph; the backward pass visits it from right to left.",
    )


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
            textbook = _local_textbook(branch, node)
            local = sp.factor_terms(branch.local_derivative)
            formula = printer.doprint(local)
            if textbook is not None and textbook != local:
                formula = f"{printer.doprint(textbook)} = {formula}"
            number = ""
            if values is not None:
                number = format_number(_evaluate(branch.local_derivative, values))
        rows.append(f"  {named} & {formula} & {number} \\\\")
    note = _skipped_note(
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
    table = _stretched(
        "\\begin{longtable}{@{}>{$\\displaystyle}l<{$}>{$\\displaystyle}l<{$}>{$}r<{$}@{}}\n\\toprule\n"
        f"{head} \\\\\n\\midrule\n\\endhead\n"
        + "\n".join(rows)
        + "\n\\bottomrule\n\\end{longtable}\n"
    )
    return _section("Local derivatives", "local", intro + "\n\n" + table + note)


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
    return _section("Chain rule", "chain", "\n\n".join(parts))


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
        "factors, the factors filled in, and the simplified form when it is shorter."
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
        + _skipped_note(skipped, lambda st: ctx.symbol(derivation, "d" + st.node.name), "steps")
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
        textbook = _local_textbook(branch, step.node)
        if textbook is None:
            continue
        textbook_differs |= _activation_in(textbook)
        local = _factor_tex(printer, textbook) if adjoint else printer.doprint(textbook)
        textbook_chunks.append(Chunk(joiner, _juxtapose(local, adjoint)))
    only_cost = len(step.branches) == 1 and step.branches[0].child is cost
    forms: list = [] if only_cost else [named_chunks]  # ∂L/∂a = ∂L/∂a says nothing
    if textbook_differs and len(textbook_chunks) == len(step.branches):
        forms.append(textbook_chunks)
    forms.append(step.named)
    if step.simplified:
        forms.append(step.value)
    return forms


def _juxtapose(*factors: str) -> str:
    """Factors side by side with a thin space, skipping empty ones."""
    return " \\, ".join(f for f in factors if f)


def _factor_tex(printer, expr) -> str:
    """A factor of a product: in parentheses when it is a sum or starts with a minus."""
    text = printer.doprint(expr)
    if isinstance(expr, sp.Add) or text.startswith("-"):
        return printer._add_parens(text) if "\\frac" in text else f"({text})"
    return text


def _activation_in(expr) -> bool:
    return any(isinstance(d, sp.Derivative) for d in expr.atoms(sp.Derivative))


def _parameter_chains(ctx: ReportContext, derivation) -> str:
    model = derivation.model
    printer = ctx.printer(derivation)
    params = [p for p in model.params if p in derivation._by_node]
    shown, skipped = representatives(params, family, limit=24)
    rows = []
    for param in shown:
        named, local = _unroll(ctx, derivation, param)
        lhs = printer.doprint(named_factor(model.cost.symbol, param.symbol))
        forms: list = [named, local]
        closed = derivation.gradient(param.name, closed=True)
        forms.append(closed)
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
        + _skipped_note(skipped, lambda p: ctx.symbol(derivation, p.name), "parameters")
    )


def _unroll(ctx: ReportContext, derivation, node) -> tuple[list[Chunk], list[Chunk]]:
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
                textbook = _local_textbook(branch, current)
                l_terms.append(_factor_tex(printer, textbook) + adjoint)
            named += _sum_chunks(n_terms, bracket=bool(named))
            local += _sum_chunks(l_terms, bracket=bool(local))
            break
        (branch,) = step.branches
        named.append(Chunk("", printer.doprint(named_factor(branch.child.symbol, current.symbol))))
        textbook = _local_textbook(branch, current)
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


# ---------------------------------------------------------------------------- 7. matrix form


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
            "\n" + _forward_rows(ctx, derivation)
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
            f"\\includegraphics[width=\\textwidth,height=0.45\\textheight,keepaspectratio]{{{ctx.figures['layers'].name}}}\n"
            "\\caption{The graph at the matrix level, with the shape of each node (blue) and "
            "of its gradient (red).}\\label{fig:layers}\n\\end{figure}"
        )
    return _section("Vectorized matrix form", "matrix", "\n\n".join(parts))


def _matrix_backward(ctx: ReportContext, derivation, printer) -> str:
    rows = []
    for step in derivation.needed_steps():
        forms: list = []
        if len(step.branches) == 1 and step.branches[0].local_derivative is not None:
            textbook = _local_textbook(step.branches[0], step.node)
            child = step.branches[0].child
            if (
                textbook is not None
                and child is not derivation.model.cost
                and _activation_in(textbook)
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
        + _stretched(
            "\\begin{longtable}{@{}>{$\\displaystyle}l<{$}>{$}l<{$}>{$}l<{$}>{$}l<{$}>{$}c<{$}@{}}\n"
            "\\toprule\n\\text{Gradient} & \\text{Factors} & \\text{Shape} & \\text{Here} & \\\\\n"
            "\\midrule\n\\endhead\n" + "\n".join(rows) + "\n\\bottomrule\n\\end{longtable}\n"
        )
    )


def _dims(shape: Iterable) -> str:
    return " \\times ".join(sp.latex(d) for d in shape)


# ---------------------------------------------------------------------------- 8. worked example


def worked_example_section(ctx: ReportContext) -> str:
    """The formulas again, with the example's numbers put in: formula = numbers = value."""
    if ctx.instance is None or ctx.scalar is None:
        return _section(
            "Worked example",
            "example",
            "A worked example with every number written out needs the scalar level, which "
            "this report does not show: the network is too large to follow by hand.",
        )
    derivation = ctx.scalar
    model = derivation.model
    printer = ctx.printer(derivation)
    numbers = ctx.value_printer(derivation)
    values = ctx.instance.values
    leaves = [n for n in model.nodes if n.is_leaf]
    leaf_text = ", ".join(
        f"${ctx.symbol(derivation, n.name)} = {format_number(ctx.instance.leaves[n.name])}$"
        for n in leaves[:60]
    )
    more = f" and {len(leaves) - 60} more" if len(leaves) > 60 else ""
    intro = (
        f"Draw every parameter and input uniformly from $[-1, 1]$ (seed {ctx.seed}, rounded to "
        f"two decimals) and pick a target: {leaf_text}{more}. Each line below is a formula "
        "from the derivation, the same formula with these numbers substituted, and its value."
    )
    forward = [n for n in model.nodes if not n.is_leaf]
    f_shown, f_skipped = representatives(forward, family, limit=14, per_group=1)
    rows = [
        Row(
            ctx.symbol(derivation, node.name),
            [node.expr, (node.expr, numbers), format_number(values[node.name])],
            relations=["=", "=", "\\approx"],
        )
        for node in f_shown
    ]
    steps = derivation.needed_steps()
    b_shown, b_skipped = representatives(steps, lambda s: family(s.node), limit=14, per_group=1)
    back = [
        Row(
            ctx.symbol(derivation, "d" + step.node.name),
            [step.value, (step.value, numbers), format_number(values["d" + step.node.name])],
            relations=["=", "=", "\\approx"],
        )
        for step in b_shown
    ]
    return _section(
        "Worked example",
        "example",
        intro
        + "\n\\subsection*{Forward}\n"
        + _unnumbered(align(rows, printer))
        + _skipped_note(f_skipped, lambda n: ctx.symbol(derivation, n.name), "nodes")
        + "\n\\subsection*{Backward}\n"
        + _unnumbered(align(back, printer))
        + _skipped_note(b_skipped, lambda st: ctx.symbol(derivation, "d" + st.node.name), "steps")
        + f"\nThe loss of this example is ${ctx.symbol(derivation, model.cost.name)} \\approx "
        + f"{format_number(values[model.cost.name])}$.",
    )


def _unnumbered(block: str) -> str:
    return (
        block.replace("\\begin{align}", "\\begin{align*}")
        .replace("\\end{align}", "\\end{align*}")
        .replace(" \\nonumber", "")
    )


# ---------------------------------------------------------------------------- 9. verification


def verification_section(ctx: ReportContext) -> str:
    """Kernel vs JAX vs finite differences (``numeric.verify``), then the worked example
    by every route this report can take."""
    parts = []
    if ctx.verification is not None:
        parts.append(_numeric_verification(ctx, ctx.verification))
    if ctx.checks is not None:
        parts.append(_example_checks(ctx, ctx.checks))
    if not parts:
        parts.append(
            "No verification was run for this report: it needs the generated kernel "
            "(\\texttt{numeric.codegen}) for networks too large for the scalar level."
        )
    return _section("Verification", "verification", "\n\n".join(parts))


def _numeric_verification(ctx: ReportContext, verification) -> str:
    """The table of ``numeric.verify``: per parameter, kernel against JAX and against FD."""
    rows = list(getattr(verification, "rows", ()) or ())
    if not rows or not hasattr(rows[0], "jax_abs"):
        return _external_verification(verification)
    lines = []
    for row in rows:
        shape = f"$({', '.join(map(str, row.shape))})$" if row.shape else "scalar"
        verdict = "$\\checkmark$" if row.verdict == "ok" else tex_escape(row.verdict)
        cells = [f"${_array_symbol(ctx, row.name)}$", shape]
        cells += [f"${format_number(v, 2)}$" for v in (row.jax_abs, row.jax_rel)]
        cells += [f"${format_number(v, 2)}$" for v in (row.fd_abs, row.fd_rel)]
        lines.append("  " + " & ".join(cells + [verdict]) + " \\\\")
    about = (
        f"\\texttt{{{tex_escape(getattr(verification, 'dtype', ''))}}}, a random batch of "
        f"{getattr(verification, 'batch', '?')} examples, seed {getattr(verification, 'seed', '?')}"
    )
    ok = getattr(verification, "ok", all(r.ok for r in rows))
    verdict = (
        "The kernel agrees with JAX and with finite differences."
        if ok
        else "\\textbf{The kernel disagrees with a reference: see the verdicts.}"
    )
    notes = "".join(f"\n\n\\noindent {tex_escape(n)}" for n in getattr(verification, "notes", ()))
    return (
        "\\subsection*{The kernel against JAX and finite differences}\n"
        f"\\texttt{{numeric.verify}} ran the generated kernel on {about}, and compared its "
        "gradients with JAX autodiff and with finite differences of its loss: the largest "
        "absolute difference per parameter array, and the same relative to the largest "
        "reference entry.\n\n"
        "\\begin{center}\\small\n\\begin{tabular}{@{}llrrrrl@{}}\n\\toprule\n"
        " & & \\multicolumn{2}{c}{vs JAX} & \\multicolumn{2}{c}{vs finite differences} & \\\\\n"
        "\\cmidrule(lr){3-4}\\cmidrule(lr){5-6}\n"
        "Array & Shape & abs & rel & abs & rel & \\\\\n\\midrule\n"
        + "\n".join(lines)
        + "\n\\bottomrule\n\\end{tabular}\n\\end{center}\n"
        + verdict
        + notes
    )


def _example_checks(ctx: ReportContext, checks) -> str:
    """The worked example's gradients by every route: closed form, JAX, FD, kernel."""
    routes = checks.routes
    head = " & ".join(["Array", "Shape"] + [tex_escape(r) for r in routes] + ["Largest $|g|$", ""])
    rows = []
    for row in checks.rows:
        shape = f"$({', '.join(map(str, row.shape))})$" if row.shape else "scalar"
        cells = [f"${_array_symbol(ctx, row.array)}$", shape]
        cells += [f"${format_number(row.differences[r], 2)}$" for r in routes]
        cells.append(f"${format_number(row.scale, 3)}$")
        cells.append("$\\checkmark$" if row.ok(checks.tolerance) else "\\textbf{mismatch}")
        rows.append("  " + " & ".join(cells) + " \\\\")
    spec = "@{}ll" + "r" * len(routes) + "rc@{}"
    text = (
        "\\subsection*{The worked example by every route}\n"
        f"The gradients of the worked example by the {tex_escape(checks.reference)} are the "
        "reference. Each column gives the largest absolute difference from it over the "
        "entries of one parameter array: the closed form in inputs and parameters alone, "
        "JAX autodiff of the cost, central finite differences in \\texttt{float64}"
        + (", and the generated NumPy kernel" if "kernel" in routes else "")
        + f". A row passes when every difference is below ${format_number(checks.tolerance)}$ "
        "times the largest gradient (at least 1).\n\n"
        f"\\begin{{center}}\\small\n\\begin{{tabular}}{{{spec}}}\n\\toprule\n"
        f"{head} \\\\\n\\midrule\n"
        + "\n".join(rows)
        + "\n\\bottomrule\n\\end{tabular}\n\\end{center}\n"
    )
    for note in checks.notes:
        text += f"\n\\noindent {tex_escape(note)}\n"
    verdict = (
        "All routes agree."
        if checks.ok
        else "\\textbf{Some routes disagree: see the rows marked mismatch.}"
    )
    return text + "\n" + verdict


def _array_symbol(ctx: ReportContext, array: str) -> str:
    """A parameter array in the notation: its matrix-level symbol when there is one."""
    for derivation in (ctx.matrix, ctx.scalar):
        if derivation is not None and array in ctx.names(derivation):
            return ctx.symbol(derivation, array)
    return tex_escape(array)


def _external_verification(verification) -> str:
    """A verification result from ``numeric.verify``: its table, or its text report."""
    rows = getattr(verification, "rows", None)
    if rows:
        keys = list(_row_dict(rows[0]))
        head = " & ".join(tex_escape(k) for k in keys)
        body = "\n".join(
            "  " + " & ".join(_cell(v) for v in _row_dict(r).values()) + " \\\\" for r in rows
        )
        return (
            "\\begin{center}\\small\n"
            f"\\begin{{tabular}}{{@{{}}{'l' * len(keys)}@{{}}}}\n\\toprule\n"
            f"{head} \\\\\n\\midrule\n{body}\n\\bottomrule\n\\end{{tabular}}\n\\end{{center}}\n"
        )
    text = verification.report() if hasattr(verification, "report") else str(verification)
    return "\\begin{verbatim}\n" + text.replace("\\end{verbatim}", "") + "\n\\end{verbatim}\n"


def _row_dict(row) -> dict:
    if isinstance(row, dict):
        return row
    if hasattr(row, "__dataclass_fields__"):
        return {k: getattr(row, k) for k in row.__dataclass_fields__}
    return dict(vars(row))


def _cell(value) -> str:
    if isinstance(value, bool):
        return "$\\checkmark$" if value else "\\textbf{no}"
    if isinstance(value, float):
        return f"${format_number(value, 3)}$"
    return tex_escape(str(value))


# ---------------------------------------------------------------------------- 10. listing


def listing_section(ctx: ReportContext) -> str:
    """The generated NumPy kernel, each line tied to the equation it implements."""
    kernel = ctx.kernel
    if kernel is None or not getattr(kernel, "source", None):
        return _section(
            "Generated NumPy kernel",
            "listing",
            "The kernel generator (\\texttt{numeric.codegen}) is not available in this "
            "installation, so no listing is shown.",
        )
    lines = kernel.source.rstrip("\n").split("\n")
    tie = _line_names(kernel)
    derivation = getattr(kernel, "derivation", None)
    level = derivation.model.level if derivation is not None else None
    out = []
    for number, line in enumerate(lines, start=1):
        name = tie.get(number)
        label = ctx.equation_label(name, level) if name else None
        safe = _ascii_listing(line.replace("\t", "    "))
        if label:
            hash_ = "" if "#" in safe else "  #"
            out.append(f"{safe}{hash_}  (*@\\hfill\\eqref{{{label}}}@*)")
        else:
            out.append(safe)
    body = "\n".join(out)
    return _section(
        "Generated NumPy kernel",
        "listing",
        "The kernel below is generated from the derivation (\\texttt{numeric.codegen}); the "
        "number at the right of a line is the equation it implements.\n\n"
        "\\begin{lstlisting}[language=Python]\n" + body + "\n\\end{lstlisting}\n",
    )


_LISTING_SYMBOLS = {
    "ᵀ": r"$^{\top}$",
    "²": "$^2$",
    "³": "$^3$",
    "⊙": r"$\odot$",
    "·": r"$\cdot$",
    "×": r"$\times$",
    "→": r"$\to$",
    "≈": r"$\approx$",
    "−": "-",
    "σ": r"$\sigma$",
    "Σ": r"$\Sigma$",
    "∂": r"$\partial$",
    "ε": r"$\varepsilon$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "—": "--",
    "–": "-",
}


def _ascii_listing(line: str) -> str:
    """A source line pdflatex's listings can set: other characters as escaped LaTeX."""
    out = []
    for ch in line:
        if ord(ch) < 128:
            out.append(ch)
        else:
            out.append(f"(*@{_LISTING_SYMBOLS.get(ch, '?')}@*)")
    return "".join(out)


#: kinds of kernel lines that implement an equation of the report
_EQUATION_KINDS = {"forward", "loss", "cost", "adjoint", "gradient"}


def _line_names(kernel) -> dict[int, str]:
    """Line number (1-based) -> node or step name, from the kernel's line table.

    ``numeric.codegen`` gives ``kernel.lines``, a list of ``(line, node, kind, function)``;
    a plain mapping ``{line: name}`` is taken too.
    """
    lines = getattr(kernel, "lines", None)
    if isinstance(lines, dict):
        return {int(k): str(v) for k, v in lines.items() if v}
    out = {}
    for entry in lines or ():
        kind = getattr(entry, "kind", "forward")
        if kind not in _EQUATION_KINDS:
            continue
        name = str(entry.node)
        if kind in ("adjoint", "gradient") and not name.startswith("d"):
            name = "d" + name  # a backward line names the node whose adjoint it computes
        out[int(entry.line)] = name
    return out


# ---------------------------------------------------------------------------- 11. plots


def plots_section(ctx: ReportContext) -> str:
    """The activation functions with their derivatives, and the finite-difference V curve."""
    parts = []
    if "activations" in ctx.figures:
        panels = len(ctx.figures.get("activation_names", [])) or 1
        width = min(1.0, 0.5 * panels)
        parts.append(
            "\\begin{figure}[htbp]\n\\centering\n"
            f"\\includegraphics[width={width:.2f}\\textwidth]{{{ctx.figures['activations'].name}}}\n"
            "\\caption{Each activation of the network (blue) and its derivative (orange), "
            "both computed from the one SymPy definition in the registry. The derivative is "
            "written in the activation's output where that is cheaper, as the backward pass "
            "uses it.}\\label{fig:activations}\n\\end{figure}"
        )
    if "vcurve" in ctx.figures:
        param = ctx.figures.get("vcurve_param", "")
        parts.append(
            "\\begin{figure}[htbp]\n\\centering\n"
            f"\\includegraphics[width=0.72\\textwidth]{{{ctx.figures['vcurve'].name}}}\n"
            "\\caption{Error of the central difference "
            "$\\bigl(f(\\theta+h) - f(\\theta-h)\\bigr)/2h$ "
            f"against the exact derivative, for the parameter ${param}$ "
            + (
                "on a random batch of 4 examples (exact: the kernel's float64 gradient). "
                if ctx.figures.get("vcurve_batch")
                else "at the worked example. "
            )
            + "For large $h$ the truncation error falls like $h^2$; for small $h$ rounding "
            "error grows like $\\varepsilon/h$. The best step sits near $\\varepsilon^{1/3}$ "
            "(dotted), far larger in \\texttt{float32} than in \\texttt{float64}.}"
            "\\label{fig:vcurve}\n\\end{figure}"
        )
    if not parts:
        return ""
    said = []
    if "activations" in ctx.figures:
        said.append("Figure~\\ref{fig:activations} shows the activations and their derivatives")
    if "vcurve" in ctx.figures:
        said.append("Figure~\\ref{fig:vcurve} shows why finite differences need a well-chosen step")
    text = "; ".join(said) + "."
    return _section("Plots", "plots", text + "\n\n" + "\n\n".join(parts))


SECTIONS = (
    header,
    notation_section,
    forward_section,
    graph_section,
    local_derivatives_section,
    chain_rule_section,
    matrix_section,
    worked_example_section,
    verification_section,
    listing_section,
    plots_section,
)
