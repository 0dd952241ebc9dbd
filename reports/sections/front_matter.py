"""The report's opening sections: the header (model, notation, seed, versions) and the
notation table (symbol, meaning and shape of each family of nodes).
"""

from __future__ import annotations

import platform
from importlib import metadata

import sympy as sp

from reports.latex.layout import section, tex_escape
from reports.latex.notation import family
from reports.latex.printer import named_factor

from .context import ReportContext, n_params

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
    return tex_escape(", ".join(parts + model.choices()) or model.kind)


def _levels(ctx: ReportContext) -> str:
    levels = []
    if ctx.scalar is not None:
        levels.append("scalar (one node per neuron and weight)")
    if ctx.matrix is not None:
        levels.append("matrix (one node per layer)")
    return "; ".join(levels)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# ---------------------------------------------------------------------------- 2. notation


#: what a node of each role is: (one, several)
_MEANINGS = {
    "input": ("input", "inputs"),
    "target": ("target", "targets"),
    "param": ("parameter", "parameters"),
    "hidden": ("hidden value", "hidden values"),
    "output": ("network output", "network outputs"),
    "loss": ("loss", "losses"),
}


def notation_section(ctx: ReportContext) -> str:
    """Symbol, meaning and shape: one row per family of nodes, then the adjoint convention."""
    rows = []
    for derivation in (ctx.scalar, ctx.matrix):
        if derivation is not None and ctx.model.kind == "expr":
            rows += _expression_rows(ctx, derivation)
        elif derivation is not None:
            rows += _notation_rows(ctx, derivation)
    rows += _convention_rows(ctx)
    body = "\n".join(f"  {a} & {b} & {c} \\\\" for a, b, c in rows)
    intro = f"Symbols follow {tex_escape(ctx.notation.title)}. " + _notation_prose(ctx)
    table = (
        "\\begin{longtable}{@{}>{$}l<{$}p{0.6\\textwidth}>{$}l<{$}@{}}\n\\toprule\n"
        "\\text{Symbol} & Meaning & \\text{Shape} \\\\\n\\midrule\n\\endhead\n"
        f"{body}\n\\bottomrule\n\\end{{longtable}}\n"
    )
    return section("Notation", "notation", intro + "\n\n" + table)


def _notation_prose(ctx: ReportContext) -> str:
    n = ctx.notation
    if ctx.model.kind == "expr":
        output = ctx.symbol(ctx.main, ctx.main.model.cost.name)
        return (
            f"The expression is computed in steps, one node each; for a quantity $v$, "
            f"$d{{v}}$ is the derivative of the output ${output}$ with respect to $v$. "
        )
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


def _expression_rows(ctx: ReportContext, derivation) -> list[tuple[str, str, str]]:
    """One row per node of an expression: its inputs, the steps between, the output."""
    printer = ctx.printer(derivation)
    rows = []
    for node in derivation.model.nodes:
        if node.is_leaf:
            what = "input of the expression (a variable it is differentiated by)"
        else:
            step = (
                "output of the expression" if node is derivation.model.cost else "intermediate node"
            )
            what = f"{step}, ${ctx.symbol(derivation, node.name)} = {printer.doprint(node.expr)}$"
        rows.append((ctx.symbol(derivation, node.name), what, "\\text{scalar}"))
    return rows


def _kind(node) -> tuple:
    """What a scalar node is, whatever its layer: (role, operation, letter)."""
    return (node.role, getattr(node.op, "name", node.label), node.name[:1])


def _meaning(node, model, count: int) -> str:
    one, several = _MEANINGS.get(node.role, (node.role, node.role))
    level = "matrix" if model.level == "matrix" else "scalar"
    batch = level == "matrix" and node.role in ("input", "target")  # X holds m examples
    role = one if count == 1 and not batch else several
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
        what = f"{role} after {tex_escape(op)}"
    elif node.role in ("hidden", "output") and node.label in ("+", "@"):
        what = "pre-activation (weighted input plus bias)"
    else:
        what = role
    if batch:  # the prose says rows are examples; the table says it once, for X and Y
        what += ", one row per example"
    elif node.role in ("input", "target"):
        what += " of one example"
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
