"""The worked example section: each formula with one example's numbers put in, and its value."""

from __future__ import annotations

import sympy as sp

from derive.graph import children_of
from reports.latex.equations import Row, align
from reports.latex.layout import section, skipped_note
from reports.latex.notation import family
from reports.latex.printer import format_number

from .context import ReportContext


def worked_example_section(ctx: ReportContext) -> str:
    """The formulas again, with the example's numbers put in: formula = numbers = value."""
    if ctx.instance is None or ctx.scalar is None:
        return section(
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
    steps = derivation.needed_steps()
    b_shown, b_skipped = live_path(model, steps, lambda s: s.node, values, "d")
    forward = [n for n in model.nodes if not n.is_leaf]
    followed = {step.node for step in b_shown}
    f_shown, f_skipped = live_path(model, forward, lambda n: n, values, "", followed)
    known = _known_targets(model, ctx.instance.leaves)

    def row(name: str, expr) -> Row:
        """formula = the numbers put in = value; a formula that is one symbol skips the
        middle (``db = dz ≈ -0.88``, not ``= (-0.88) ≈ -0.88``)."""
        value = values[name]
        middle = [] if isinstance(expr, sp.Symbol) else [(expr.xreplace(known), numbers)]
        forms = [expr, *middle, format_number(value)]
        relations = ["="] * (len(forms) - 1) + [_relation(value)]
        return Row(ctx.symbol(derivation, name), forms, relations=relations)

    rows = [row(node.name, node.expr) for node in f_shown]
    back = [row("d" + step.node.name, step.value) for step in b_shown]
    return section(
        "Worked example",
        "example",
        intro
        + "\n\\subsection*{Forward}\n"
        + _unnumbered(align(rows, printer))
        + skipped_note(f_skipped, lambda n: ctx.symbol(derivation, n.name), "nodes")
        + "\n\\subsection*{Backward}\n"
        + _unnumbered(align(back, printer))
        + skipped_note(b_skipped, lambda st: ctx.symbol(derivation, "d" + st.node.name), "steps")
        + f"\nThe loss of this example is ${ctx.symbol(derivation, model.cost.name)} "
        + f"{_relation(values[model.cost.name])} "
        + f"{format_number(values[model.cost.name])}$.",
    )


def _unnumbered(block: str) -> str:
    return (
        block.replace("\\begin{align}", "\\begin{align*}")
        .replace("\\end{align}", "\\end{align*}")
        .replace(" \\nonumber", "")
    )


def _relation(value: float) -> str:
    """``=`` before a number printed exactly (0, 3), ``\\approx`` before a rounded one."""
    text = format_number(value)
    try:
        return "=" if float(text) == value else "\\approx"
    except ValueError:  # 3.2 \\cdot 10^{-5}
        return "\\approx"


def _known_targets(model, leaves: dict[str, float]) -> dict:
    """Whole-number targets (a one-hot label, a 0/1 class) put in before printing, so the
    numbers line reads ``-\\log(0.1208)``, not ``-0 \\cdot \\log(0.1294) - ...``."""
    return {
        node.symbol: sp.Integer(int(leaves[node.name]))
        for node in model.targets
        if float(leaves[node.name]).is_integer()
    }


def live_path(model, items: list, node_of, values, prefix: str, followed=frozenset(), limit=14):
    """All items when there are few; else one of each family (``W1``, ``z1``, ...) along one
    path through the network that carries gradient: families are visited from the inputs
    on, and each picks the member joined to most of those already picked (its parent, its
    child, a sibling feeding the same node), then the largest ``|value|`` (a dead relu unit
    has zero adjoints and would teach nothing). Returns the items shown and, per family,
    the items left out (as :func:`reports.latex.layout.representatives`)."""
    if len(items) <= limit:
        return list(items), {}
    children = {node: set(users) for node, users in children_of(model.nodes).items()}
    place = {node: k for k, node in enumerate(model.nodes)}
    groups: dict = {}
    for item in items:
        groups.setdefault(family(node_of(item)), []).append(item)
    picked: list = []

    def score(item):
        node = node_of(item)
        links = sum(
            node in other.parents
            or other in node.parents
            or bool(children.get(node, set()) & children.get(other, set()))
            for other in picked
        )
        return (node in followed, links, abs(values.get(prefix + node.name, 0.0)))

    chosen = {}
    for name in sorted(groups, key=lambda g: min(place[node_of(i)] for i in groups[g])):
        chosen[name] = max(groups[name], key=score)
        picked.append(node_of(chosen[name]))
    shown = [item for item in items if chosen[family(node_of(item))] is item]
    skipped = {
        name: [i for i in members if i is not chosen[name]]
        for name, members in groups.items()
        if len(members) > 1
    }
    return shown, skipped
