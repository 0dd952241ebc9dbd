"""The worked example section: each formula with one example's numbers put in, and its value."""

from __future__ import annotations

from reports.latex.equations import Row, align
from reports.latex.layout import representatives, section, skipped_note
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
        + f"\nThe loss of this example is ${ctx.symbol(derivation, model.cost.name)} \\approx "
        + f"{format_number(values[model.cost.name])}$.",
    )


def _unnumbered(block: str) -> str:
    return (
        block.replace("\\begin{align}", "\\begin{align*}")
        .replace("\\end{align}", "\\end{align*}")
        .replace(" \\nonumber", "")
    )
